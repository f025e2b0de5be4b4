"""An SFT collator that decodes each clip and tokenises each conversation once, for the demo's many small steps."""

from r1video.data.video import load_video_frames
from r1video.trainer.sft_collator import VideoSFTCollator
from r1video.trainer.step_videos import pack


class CachedSFTCollator(VideoSFTCollator):
    """[`VideoSFTCollator`] with the preprocessed frames of each clip and the tokens of each conversation cached.

    A demo stage sees the same few thousand rows many times; decoding and tokenising them again every step cost more
    than the model's own forward and backward pass. The rows must all have a decodable video (the synthetic ones do):
    a bad clip raises instead of being dropped.
    """

    def __init__(self, processor, num_frames: int, **kwargs):
        super().__init__(processor, num_frames=num_frames, **kwargs)
        self._pixels, self._encoded = {}, {}

    def __call__(self, rows: list[dict]) -> dict:
        batch = self._pad([self._encode_cached(row) for row in rows])
        batch["pixel_values_videos"] = pack([self._pixels_of(row["video"]) for row in rows])
        return batch

    def _pixels_of(self, path: str):
        if path not in self._pixels:
            frames = load_video_frames(path, self.frame_kwargs["num_frames"]).frames
            self._pixels[path] = self.processor.preprocess_frames(frames)
        return self._pixels[path]

    def _encode_cached(self, row: dict):
        key = (row["video"], repr(row["messages"]))
        if key not in self._encoded:
            self._encoded[key] = self._encode(row)
        return self._encoded[key]

"""The videos of one GRPO generation batch, and the per-row batch keys that carry them.

A generation batch holds every prompt G times (TRL's sampler repeats it), so decoding per row would decode each clip G
times. [`load_step_videos`] decodes the distinct paths once (through the policy's `decode_clip`) and keeps, for every
row, the index of its clip. [`row_video_keys`] turns that table into keys with one entry per row, which TRL's
buffering, shuffling and `steps_per_generation` slicing carry like any other key (they permute and slice every list
and tensor along its first dimension, so a key shaped per clip would be mis-sliced); [`batch_clips`] turns any slice
of those rows back into the distinct clips and the row → clip map the policy's `model_inputs` takes.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from r1video.data.bad_samples import BadSampleTracker
from r1video.data.video import VideoDecodeError
from r1video.policies.base import Clip, pack

__all__ = ["VIDEO_KEYS", "BatchClips", "StepVideos", "batch_clips", "load_step_videos", "pack", "row_video_keys"]

VIDEO_KEYS = ("video_index", "video_clip", "video_encoding")


@dataclass
class StepVideos:
    """Distinct clips of a batch and the row → clip map.

    Attributes:
        clips: one [`Clip`] per distinct video (the family's inputs for it).
        index: `[rows]` long tensor, the distinct clip of each row; -1 for a text-only row.
        bad_rows: `[rows]` bool tensor, rows whose clip failed to decode (they were given black frames and must get
            no loss).
        encodings: per distinct clip, the frozen part of the vision path's output (the policy's `encode`), when
            computed ahead.
    """

    clips: list[Clip]
    index: torch.LongTensor
    bad_rows: torch.BoolTensor
    encodings: list | None = None


def load_step_videos(
    paths: list[str | None],
    decode: Callable[..., Clip],
    tracker: BadSampleTracker,
    blank: Callable[[int | None, Clip | None], Clip],
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    autorotate: bool = True,
) -> StepVideos:
    """Decode the distinct clips of a batch.

    Args:
        paths: the `video` column of the batch's rows (repeats allowed; `None` for a text-only row).
        decode: `(path, num_frames=, fps=, max_frames=, autorotate=) -> Clip` (the policy's `decode_clip` with its
            processor); raises `VideoDecodeError` for a bad clip.
        tracker: counts clips that fail to decode and stops the run past its limit.
        blank: `(num_frames, like) -> Clip`, black frames for a bad clip (the policy's `blank_clip`).
        num_frames, fps, max_frames, autorotate: frame sampling, as `load_video_frames`.
    """
    distinct = list(dict.fromkeys(path for path in paths if path is not None))
    frames = {"num_frames": num_frames, "fps": fps, "max_frames": max_frames, "autorotate": autorotate}
    decoded = {}
    for path in distinct:
        try:
            decoded[path] = decode(path, **frames)
        except VideoDecodeError as exc:
            tracker.record_bad(path, exc)
            decoded[path] = None
        else:
            tracker.record_good()
    clips = {path: clip for path, clip in decoded.items() if clip is not None}
    if len(clips) < len(distinct):
        # A bad clip still needs inputs of a usable shape so the batch runs; its rows are masked out of the loss.
        like = next(iter(clips.values())) if clips else None
        for path in distinct:
            if path not in clips:
                clips[path] = blank(num_frames, like)
    position = {path: i for i, path in enumerate(distinct)}
    return StepVideos(
        clips=[clips[path] for path in distinct],
        index=torch.tensor([position.get(path, -1) for path in paths], dtype=torch.long),
        bad_rows=torch.tensor([path is not None and decoded[path] is None for path in paths], dtype=torch.bool),
    )


def row_video_keys(videos: StepVideos) -> dict:
    """The batch keys that give every row its clip (the row → clip contract of `VideoGRPOTrainer`).

    Returns:
        `video_index`: `[rows]` long tensor, the row's clip in this generation batch (-1: text-only). Rows of one clip
            share the number, so after any shuffle or slice it still tells which rows share a clip.
        `video_clip`: list of `rows` entries, the row's [`Clip`] (`None`: text-only).
        `video_encoding`: list of `rows` entries, the row's cached encoding (the policy's `encode`), or `None` when
            none was computed ahead (then every pass runs the whole vision path on the clips).
        Rows of one clip hold the same objects: nothing is copied per row.
    """
    rows = videos.index.tolist()

    def per_row(table):
        return [None if clip < 0 else table[clip] for clip in rows]

    return {
        "video_index": videos.index,
        "video_clip": per_row(videos.clips),
        "video_encoding": None if videos.encodings is None else per_row(videos.encodings),
    }


@dataclass
class BatchClips:
    """The distinct clips of some rows, in the form the policy's `model_inputs` takes.

    Attributes:
        clips: the distinct clips, ordered by their clip number.
        encodings: their cached encodings, or `None`.
        numbers: the clip number (`video_index`) of each entry of `clips`.
    """

    clips: list[Clip]
    encodings: list | None
    numbers: list[int]

    def index(self, video_index: torch.LongTensor) -> torch.LongTensor:
        """Clip numbers (one per row, -1: text-only) -> positions in `clips` (-1 kept)."""
        position = {number: i for i, number in enumerate(self.numbers)}
        return torch.tensor(
            [position[n] if n >= 0 else -1 for n in video_index.tolist()], dtype=torch.long, device=video_index.device
        )


def batch_clips(batch: Mapping) -> BatchClips:
    """The distinct clips of a batch's rows (keys of [`row_video_keys`], any slice or order of them)."""
    encodings = batch.get("video_encoding")
    table, cached = {}, {}
    for row, number in enumerate(batch["video_index"].tolist()):
        if number >= 0 and number not in table:
            table[number] = batch["video_clip"][row]
            if encodings is not None:
                cached[number] = encodings[row]
    numbers = sorted(table)
    return BatchClips(
        clips=[table[n] for n in numbers],
        encodings=None if encodings is None else [cached[n] for n in numbers],
        numbers=numbers,
    )

"""Frames for an evaluation sample: the training sampler by default, MVBench's own readers where the original used them.

Frame counts follow the original evaluation: `num_frames` frames (16 by default), or with `fps` set,
`max(1, int(duration * fps))` frames capped at `max_frames` (the original's "1 fps, at most 64/128 frames").

Readers (seed-facts §3 and §9):

- `uniform`: `np.linspace(0, T - 1, N, dtype=int)` over the decoded frames, with
  [`r1video.data.video.load_video_frames`], the sampler used in training. The original read MVBench's plain video
  tasks, MMVU (pytorchvideo), Video-MME and MLVU (PyAV seek) with this same index rule.
- `segments`: MVBench's `.avi` / `.webm` tasks. The original (decord) splits `[start, end]` (the whole clip when
  the task has no bound) into N equal segments and takes the centre of each:
  `int(start_idx + seg / 2 + round(seg * i))`, with `start_idx = max(0, round(start * fps))`,
  `end_idx = min(round(end * fps), T - 1)` and `seg = (end_idx - start_idx) / N`. Same here, decoded with PyAV.
- `frame_dir`: MVBench's episodic reasoning task ships 1-based `00001.jpg` frames at 3 fps; the same segment-centre
  rule with `first_idx = 1` and `T` = the number of files, as in the original.
- `lvb`: LongVideoBench (TinyLLaVA-Video `eval/lvbenchdataset.py`, decord): over the *annotated* duration `d` and the
  stream's average frame rate, `n = min(N, int(d))` frames (so an 8 s clip gives 8 of 16; with `fps` the count is
  `max(1, int(d * fps))` capped by `max_frames`, the original's `-1` mode at 1 fps) at indices
  `int(int(d * fps_stream) / n) * i`: evenly spaced from frame 0, the tail of the clip unsampled. Their timestamps
  (`index / fps_stream`) place the subtitles in the prompt.
"""

import glob
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from r1video.data import video as video_io
from r1video.data.frame_folder import read_frame_files
from r1video.data.video import VideoDecodeError, fps_frame_count, load_video_frames
from r1video.eval.samples import FRAME_DIR, LVB, SEGMENTS, UNIFORM, EvalSample

if TYPE_CHECKING:
    from r1video.policies import Clip

__all__ = [
    "FRAME_DIR_FPS",
    "SampleFrames",
    "load_sample_clip",
    "load_sample_frames",
    "load_sample_video",
    "load_video_clip",
    "lvb_frame_count",
    "lvb_frame_indices",
    "segment_centre_indices",
    "video_average_fps",
]

FRAME_DIR_FPS = 3.0  # MVBench's tvqa frame folders (frames_fps3_hq)
_UNBOUNDED = (-100000.0, 100000.0)  # the original's stand-in for "no bound"


def segment_centre_indices(
    num_frames: int, fps: float, max_frame: int, bound: tuple[float, float] | None = None, first_idx: int = 0
) -> list[int]:
    """MVBench's frame indices: the centres of `num_frames` equal segments of `[start, end]`.

    Args:
        num_frames: How many indices.
        fps: Frame rate used to turn the bound (seconds) into frame numbers.
        max_frame: Largest valid index (`T - 1` for a video, the file count for a 1-based frame folder).
        bound: `(start, end)` in seconds, or `None` for the whole clip.
        first_idx: Smallest valid index (1 for frame folders).
    """
    start, end = bound if bound is not None else _UNBOUNDED
    start_idx = max(first_idx, round(start * fps))
    end_idx = min(round(end * fps), max_frame)
    segment = (end_idx - start_idx) / num_frames
    return [int(start_idx + segment / 2 + np.round(segment * i)) for i in range(num_frames)]


class SampleFrames(NamedTuple):
    """A sample's frames: uint8 `[N, H, W, 3]` RGB `frames` (or a frame transform's outputs concatenated), the source
    frame `indices` used, and the source's frame rate `fps` (what families that time their frames, like Qwen2.5-VL,
    need)."""

    frames: Any
    indices: list[int]
    fps: float


def load_sample_frames(
    sample: EvalSample,
    num_frames: int | None = 16,
    fps: float | None = None,
    max_frames: int | None = None,
    frame_transform: Callable[[np.ndarray], Any] | None = None,
) -> tuple[Any, list[int]]:
    """`(frames, indices)` of [`load_sample_video`]."""
    video = load_sample_video(sample, num_frames, fps, max_frames, frame_transform)
    return video.frames, video.indices


def load_sample_video(
    sample: EvalSample,
    num_frames: int | None = 16,
    fps: float | None = None,
    max_frames: int | None = None,
    frame_transform: Callable[[np.ndarray], Any] | None = None,
) -> SampleFrames:
    """Read a sample's frames, with their indices and the source's frame rate.

    Args:
        sample: The sample; its `reader` picks the method (see the module docstring).
        num_frames: Frames per video (ignored when `fps` is set).
        fps: Sample this many frames per second of video instead.
        max_frames: Cap on the frame count in `fps` mode.
        frame_transform: Called on each frame as soon as it is decoded, as a `(1, H, W, 3)` uint8 batch of one (the
            policy's `frame_transform`), as [`load_video_frames`] does: only one full-size frame is alive at a
            time, so a 4K clip costs the transform's output size, not the source's.

    Returns:
        A [`SampleFrames`].

    Raises:
        VideoDecodeError: The video (or a frame file) is missing, corrupt or truncated.
    """
    if sample.reader == UNIFORM:
        return _load_uniform(sample.video, num_frames, fps, max_frames, frame_transform)
    if sample.reader == SEGMENTS:
        return SampleFrames(*_load_segments(sample.video, sample.bound, num_frames, fps, max_frames, frame_transform))
    if sample.reader == FRAME_DIR:
        frames, indices = _load_frame_dir(sample.video, sample.bound, num_frames, fps, max_frames, frame_transform)
        return SampleFrames(frames, indices, float(FRAME_DIR_FPS))
    if sample.reader == LVB:
        return SampleFrames(*_load_lvb(sample.video, sample.duration, num_frames, fps, max_frames, frame_transform))
    raise ValueError(f"unknown frame reader {sample.reader!r}")


def load_sample_clip(
    policy, processor, sample: EvalSample, num_frames: int | None = 16, fps: float | None = None,
    max_frames: int | None = None,
) -> tuple["Clip", list[int]]:  # fmt: skip
    """A sample's frames as the family's clip, with their timing: `(clip, source frame indices)`.

    The frames are read by [`load_sample_video`] (each preprocessed as decoded by the policy's `frame_transform`)
    and handed to the policy's `clip_from_frames` with the source's frame rate and the frame indices, so families that
    place frames in time (Qwen2.5-VL's `second_per_grid_ts`, Qwen3-VL's timestamps) see the clip's real timing.

    Args:
        policy: the model family ([`r1video.policies.VideoPolicy`]).
        processor: its processor.
        sample, num_frames, fps, max_frames: as [`load_sample_video`].

    Raises:
        VideoDecodeError: as [`load_sample_video`].
    """
    video = load_sample_video(sample, num_frames, fps, max_frames, policy.frame_transform(processor))
    return _clip(policy, processor, video), video.indices


def load_video_clip(
    policy, processor, path: str | os.PathLike, num_frames: int | None = 16, fps: float | None = None,
    max_frames: int | None = None,
) -> "Clip":  # fmt: skip
    """A video file read with the training sampler (the `uniform` reader: `num_frames` frames, or `fps` frames per
    second capped by `max_frames`) as the family's clip, timed as [`load_sample_clip`] times it (the lmms-eval
    adapter, whose tasks name a video file).

    Raises:
        VideoDecodeError: the video is missing, corrupt or truncated.
    """
    video = _load_uniform(path, num_frames, fps, max_frames, policy.frame_transform(processor))
    return _clip(policy, processor, video)


def _clip(policy, processor, video: SampleFrames) -> "Clip":
    return policy.clip_from_frames(processor, video.frames, fps=video.fps, frame_indices=video.indices)


def _load_uniform(path, num_frames, fps, max_frames, frame_transform) -> SampleFrames:
    if fps is not None:
        result = load_video_frames(path, fps=fps, max_frames=max_frames, frame_transform=frame_transform)
    else:
        result = load_video_frames(path, num_frames=num_frames, frame_transform=frame_transform)
    return SampleFrames(result.frames, result.indices, result.fps)


def _count(duration: float, num_frames, fps, max_frames) -> int:
    return fps_frame_count(duration, fps, max_frames) if fps is not None else num_frames


def _load_segments(path, bound, num_frames, fps, max_frames, frame_transform) -> tuple[Any, list[int], float]:
    return _decode_chosen(
        path,
        lambda total, stream_fps: _segment_indices(total, stream_fps, bound, num_frames, fps, max_frames),
        frame_transform,
    )


def _decode_chosen(path, choose, frame_transform, header_rate: bool = False) -> tuple[Any, list[int], float]:
    """Decode the frames `choose(total_frames, stream_fps)` picks; returns `(frames, indices, stream_fps)`.

    `header_rate`: take the container's average frame rate when it has one (decord's `get_avg_fps`, what
    LongVideoBench's loader read) instead of the rate measured from the timestamps.
    """
    # load_video_frames only samples uniformly, so this reuses its timestamp index and seeking decoder directly.
    # TODO(data owner): an `indices=` argument on load_video_frames would let this use the public function.
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "missing (no such file)", "missing")
    convert = video_io._converter(autorotate=True, frame_transform=frame_transform)
    container = video_io._open(path)
    try:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream", "no_video_stream")
        stream = container.streams.video[0]
        index = video_io._build_index(container, stream, path)
        if index is not None and index.pts:
            total = len(index.pts)
            stream_fps = video_io._stream_fps(stream, index, total)
            if header_rate and stream.average_rate:
                stream_fps = float(stream.average_rate)
            indices = choose(total, stream_fps)
            return video_io._decode_at(container, stream, path, index, indices, convert), indices, stream_fps
    finally:
        container.close()
    # No timestamps (a raw stream): count the frames in one decode, keep the chosen ones in a second.
    total, stream_fps = video_io._count_frames(path)
    indices = choose(total, stream_fps)
    frames, _ = video_io._decode_by_position(path, indices, convert)
    return frames, indices, stream_fps


def _segment_indices(total: int, stream_fps: float, bound, num_frames, fps, max_frames) -> list[int]:
    count = _count(total / stream_fps, num_frames, fps, max_frames)  # the original's duration: T / fps
    return segment_centre_indices(count, stream_fps, total - 1, bound)


def _load_frame_dir(folder, bound, num_frames, fps, max_frames, frame_transform) -> tuple[Any, list[int]]:
    if not os.path.isdir(folder):
        raise VideoDecodeError(folder, "missing (no such frame folder)", "missing")
    total = len(glob.glob(os.path.join(folder, "*.jpg")))
    if total == 0:
        raise VideoDecodeError(folder, "no .jpg frames in the folder", "no_frames")
    count = _count(total / FRAME_DIR_FPS, num_frames, fps, max_frames)
    indices = segment_centre_indices(count, FRAME_DIR_FPS, total, bound, first_idx=1)
    paths = [os.path.join(folder, f"{i:05d}.jpg") for i in indices]
    return read_frame_files(paths, frame_transform=frame_transform), indices


def lvb_frame_count(duration: float, num_frames: int | None, fps: float | None, max_frames: int | None) -> int:
    """LongVideoBench's frame count: `min(num_frames, int(duration))`, or in `fps` mode `max(1, int(duration * fps))`
    capped by `max_frames` (the original's `num_frame=-1`: `min(max_frame, int(duration))` at 1 fps). At least 1
    (the original divides by zero on a clip under a second)."""
    if fps is not None:
        return fps_frame_count(duration, fps, max_frames)
    return max(1, min(num_frames, int(duration)))


def lvb_frame_indices(duration: float, stream_fps: float, count: int) -> list[int]:
    """`int(int(duration * stream_fps) / count) * i` for `i < count`, as TinyLLaVA-Video's LongVideoBench loader."""
    step = int(int(duration * stream_fps) / count)
    return [step * i for i in range(count)]


def video_average_fps(path: str | os.PathLike) -> float:
    """The stream's average frame rate (decord's `get_avg_fps`), read from the container header.

    Raises:
        VideoDecodeError: The file is missing or has no video stream.
    """
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "missing (no such file)", "missing")
    container = video_io._open(path)
    try:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream", "no_video_stream")
        stream = container.streams.video[0]
        return float(stream.average_rate or stream.guessed_rate or 0.0)
    finally:
        container.close()


def _load_lvb(path, duration, num_frames, fps, max_frames, frame_transform) -> tuple[Any, list[int], float]:
    if duration is None:
        raise ValueError(f"{path}: the lvb reader needs the annotated duration")
    count = lvb_frame_count(duration, num_frames, fps, max_frames)

    def choose(total: int, stream_fps: float) -> list[int]:
        # decord would fail past the last frame (an annotated duration longer than the stream): stay inside it
        return [min(i, total - 1) for i in lvb_frame_indices(duration, stream_fps, count)]

    return _decode_chosen(path, choose, frame_transform, header_rate=True)

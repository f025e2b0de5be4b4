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
"""

import glob
import os
from typing import NamedTuple

import numpy as np

from r1video.data import video as video_io
from r1video.data.frame_folder import read_frame_files
from r1video.data.video import VideoDecodeError, fps_frame_count, load_video_frames
from r1video.eval.samples import FRAME_DIR, SEGMENTS, UNIFORM, EvalSample

__all__ = ["FRAME_DIR_FPS", "SampleFrames", "load_sample_frames", "load_sample_video", "segment_centre_indices"]

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
    """A sample's frames: uint8 `[N, H, W, 3]` RGB `frames`, the source frame `indices` used, and the source's frame
    rate `fps` (what families that time their frames, like Qwen2.5-VL, need)."""

    frames: np.ndarray
    indices: list[int]
    fps: float


def load_sample_video(
    sample: EvalSample, num_frames: int | None = 16, fps: float | None = None, max_frames: int | None = None
) -> SampleFrames:
    """Read a sample's frames, with their indices and the source's frame rate.

    Args:
        sample: The sample; its `reader` picks the method (see the module docstring).
        num_frames: Frames per video (ignored when `fps` is set).
        fps: Sample this many frames per second of video instead.
        max_frames: Cap in `fps` mode.

    Raises:
        VideoDecodeError: The video (or a frame file) is missing, corrupt or truncated.
    """
    if sample.reader == UNIFORM:
        if fps is not None:
            result = load_video_frames(sample.video, fps=fps, max_frames=max_frames)
        else:
            result = load_video_frames(sample.video, num_frames=num_frames)
        return SampleFrames(result.frames, result.indices, result.fps)
    if sample.reader == SEGMENTS:
        return SampleFrames(*_load_segments(sample.video, sample.bound, num_frames, fps, max_frames))
    if sample.reader == FRAME_DIR:
        frames, indices = _load_frame_dir(sample.video, sample.bound, num_frames, fps, max_frames)
        return SampleFrames(frames, indices, float(FRAME_DIR_FPS))
    raise ValueError(f"unknown frame reader {sample.reader!r}")


def load_sample_frames(
    sample: EvalSample, num_frames: int | None = 16, fps: float | None = None, max_frames: int | None = None
) -> tuple[np.ndarray, list[int]]:
    """`(frames, indices)` of [`load_sample_video`]: uint8 `[N, H, W, 3]` RGB frames and the frame indices used.

    Raises:
        VideoDecodeError: The video (or a frame file) is missing, corrupt or truncated.
    """
    video = load_sample_video(sample, num_frames, fps, max_frames)
    return video.frames, video.indices


def _count(duration: float, num_frames, fps, max_frames) -> int:
    return fps_frame_count(duration, fps, max_frames) if fps is not None else num_frames


def _load_segments(path, bound, num_frames, fps, max_frames) -> tuple[np.ndarray, list[int], float]:
    # load_video_frames only samples uniformly, so this reuses its timestamp index and seeking decoder directly.
    # TODO(data owner): an `indices=` argument on load_video_frames would let this use the public function.
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "missing (no such file)", "missing")
    container = video_io._open(path)
    try:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream", "no_video_stream")
        stream = container.streams.video[0]
        index = video_io._build_index(container, stream, path)
        if index is not None and index.pts:
            total = len(index.pts)
            stream_fps = video_io._stream_fps(stream, index, total)
            indices = _segment_indices(total, stream_fps, bound, num_frames, fps, max_frames)
            return video_io._decode_at(container, stream, path, index, indices), indices, stream_fps
    finally:
        container.close()
    # No timestamps (a raw stream): decode every frame once, then pick.
    every = load_video_frames(path)
    indices = _segment_indices(every.num_total_frames, every.fps, bound, num_frames, fps, max_frames)
    return every.frames[indices], indices, every.fps


def _segment_indices(total: int, stream_fps: float, bound, num_frames, fps, max_frames) -> list[int]:
    count = _count(total / stream_fps, num_frames, fps, max_frames)  # the original's duration: T / fps
    return segment_centre_indices(count, stream_fps, total - 1, bound)


def _load_frame_dir(folder, bound, num_frames, fps, max_frames) -> tuple[np.ndarray, list[int]]:
    if not os.path.isdir(folder):
        raise VideoDecodeError(folder, "missing (no such frame folder)", "missing")
    total = len(glob.glob(os.path.join(folder, "*.jpg")))
    if total == 0:
        raise VideoDecodeError(folder, "no .jpg frames in the folder", "no_frames")
    count = _count(total / FRAME_DIR_FPS, num_frames, fps, max_frames)
    indices = segment_centre_indices(count, FRAME_DIR_FPS, total, bound, first_idx=1)
    return read_frame_files([os.path.join(folder, f"{i:05d}.jpg") for i in indices]), indices

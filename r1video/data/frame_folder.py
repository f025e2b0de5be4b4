"""Clips stored as a folder of frame images (`00001.jpg`, `00002.jpg`, ...), read like a video file.

MVBench ships one of its tasks this way, and some data sets extract frames ahead of training. Frames are the folder's
`.jpg` / `.jpeg` / `.png` files in natural name order (`frame_2` before `frame_10`). A folder states no frame rate, so
it is sampled by count (`num_frames`), not per second, and timed at [`r1video.data.video.RATELESS_FPS`] (2 fps,
qwen-vl-utils' rate for a list of frames): frame `i` at `i / 2` s, a folder of `T` frames lasting `T / 2` s, which is
what families that place frames in time (Qwen2.5-VL, Qwen3-VL, Qwen3.5, SmolVLM2) read from `fps` and `duration`.
"""

import os
import re

import numpy as np
from PIL import Image

from r1video.data.video import VideoDecodeError, VideoFrames, VideoLayout, _stack, rateless_fps, uniform_indices

__all__ = ["FRAME_EXTENSIONS", "list_frame_files", "load_frame_folder", "probe_frame_folder", "read_frame_files"]

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


def list_frame_files(folder: str | os.PathLike) -> list[str]:
    """The frame images of `folder` in natural name order.

    Raises:
        VideoDecodeError: The folder holds no frame image.
    """
    names = [name for name in os.listdir(folder) if name.lower().endswith(FRAME_EXTENSIONS)]
    if not names:
        raise VideoDecodeError(folder, f"a folder with no frame images ({', '.join(FRAME_EXTENSIONS)})", "no_frames")
    names.sort(key=lambda name: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)])
    return [os.path.join(folder, name) for name in names]


def read_frame_files(paths: list[str], frame_transform=None):
    """Read frame images as RGB: `(N, H, W, 3)` uint8, or the `frame_transform` outputs of each `(1, H, W, 3)` frame
    concatenated (as [`load_video_frames`] does).

    Raises:
        VideoDecodeError: A file cannot be read as an image, or the frames differ in size.
    """
    frames, shapes = [], set()
    for path in paths:
        try:
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"))
        except OSError as exc:
            raise VideoDecodeError(path, f"unreadable frame ({exc})", "corrupt") from exc
        shapes.add(array.shape)
        frames.append(array[None] if frame_transform is None else frame_transform(array[None]))
    if len(shapes) > 1:
        raise VideoDecodeError(os.path.dirname(paths[0]), f"frames of different sizes {sorted(shapes)}", "corrupt")
    return _stack(frames)


def _folder_indices(folder, num_frames, fps, max_frames) -> tuple[list[str], list[int]]:
    if fps is not None:
        raise VideoDecodeError(folder, "a frame folder has no frame rate: sample it with num_frames, not fps")
    paths = list_frame_files(folder)
    total = len(paths)
    count = num_frames if num_frames is not None else min(total, max_frames or total)
    return paths, uniform_indices(total, count)


def probe_frame_folder(folder: str | os.PathLike, num_frames=None, fps=None, max_frames=None) -> VideoLayout:
    """[`r1video.data.video.probe_video`] for a frame folder: the frames [`load_frame_folder`] would return, their
    size and timing, from the listing and the first chosen image's header (no image decoded).

    Raises:
        VideoDecodeError: No frame images, an unreadable first image, or `fps` sampling.
    """
    paths, indices = _folder_indices(folder, num_frames, fps, max_frames)
    try:
        with Image.open(paths[indices[0]]) as image:
            width, height = image.size
    except OSError as exc:
        raise VideoDecodeError(paths[indices[0]], f"unreadable frame ({exc})", "corrupt") from exc
    fps, total = rateless_fps(), len(paths)
    return VideoLayout(indices, fps, duration=total / fps, num_total_frames=total, height=height, width=width)


def load_frame_folder(
    folder: str | os.PathLike,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    frame_transform=None,
) -> VideoFrames:
    """[`load_video_frames`] for a frame folder: the same `linspace(0, T - 1, N)` rule over its `T` images, timed at
    2 fps (`fps` 2.0, `duration` `T / 2`; see the module docstring).

    Raises:
        VideoDecodeError: No frame images, an unreadable or odd-sized one, or `fps` sampling (a folder has no rate).
    """
    paths, indices = _folder_indices(folder, num_frames, fps, max_frames)
    frames = read_frame_files([paths[i] for i in indices], frame_transform)
    fps = rateless_fps()
    return VideoFrames(frames, indices, fps, duration=len(paths) / fps, num_total_frames=len(paths))

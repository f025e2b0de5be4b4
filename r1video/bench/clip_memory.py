"""`clip-memory`: peak memory of turning 4K clips into model inputs, before and after preprocessing while decoding.

Before (r1video up to issue 15): every distinct clip of a step was decoded to full-resolution RGB frames, all clips
were held, then each was resized to the model's input. After: each frame goes through the processor as soon as it
is decoded (`load_video_frames(..., frame_transform=...)`, what `load_step_videos` and the SFT collator do), so one
full-size frame is alive at a time.

How it is measured. Each variant runs in its own Python process (`python -m r1video.bench.clip_memory`), so one
variant's freed memory cannot hide the other's peak. After imports and a warm-up, the process resets its peak RSS
(`/proc/self/clear_refs`), notes its RSS, runs the variant, and reports the peak RSS (`VmHWM`) above that level:
decoder buffers, numpy frames and tensors included. The processor is the family's (through its policy): for
TinyLLaVA-Video SigLIP's at 384 px, the released models' size.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction

from r1video.bench.runner import EntryResult

NAME = "clip-memory"
FAMILY = "tinyllava"  # the model_type whose processor turns frames into inputs
VARIANTS = ("before", "after")


def write_clip(path: str, width: int, height: int, count: int, fps: int = 30) -> None:
    """A clip of moving gradients and grain (so the encoder does real work), written frame by frame."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28", "g": "8"}
        for i in range(count):
            frame = np.empty((height, width, 3), np.uint8)
            frame[..., 0] = (x + 37 * i) % 256
            frame[..., 1] = (y + 11 * i) % 256
            frame[..., 2] = rng.integers(0, 256, (height // 8, width // 8), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _measure_here(variant: str, paths: list[str], num_frames: int, image_size: int) -> dict:
    """Run one variant in this process and return its peak RSS above the level it started from."""
    import numpy as np

    from r1video.data.bad_samples import BadSampleTracker
    from r1video.data.video import load_video_frames
    from r1video.policies import policy_for
    from r1video.trainer.step_videos import load_step_videos

    policy = policy_for(FAMILY)
    model, processor = policy.build_tiny(None, vision_image_size=image_size)  # the family's processor at that size
    del model

    def preprocess(frames):
        return policy.clip_from_frames(processor, frames).inputs

    preprocess(np.zeros((1, 64, 64, 3), np.uint8))  # warm-up: lazy imports and allocations
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    start = _status("VmRSS")
    if variant == "before":
        decoded = [load_video_frames(path, num_frames=num_frames) for path in paths]
        inputs = [preprocess(video.frames) for video in decoded]
    else:
        videos = load_step_videos(
            paths,
            lambda path, **frames: policy.decode_clip(processor, path, **frames),
            BadSampleTracker(),
            lambda frames, like: policy.blank_clip(processor, frames, like),
            num_frames=num_frames,
        )
        inputs = [clip.inputs for clip in videos.clips]
    pixels = [tensor for clip_inputs in inputs for tensor in clip_inputs.values()]
    assert len(inputs) == len(paths)
    return {"peak_bytes": _status("VmHWM") - start, "input_bytes": sum(p.numel() * p.element_size() for p in pixels)}


def measure(variant: str, paths: list[str], num_frames: int, image_size: int) -> dict:
    """Run one variant in a fresh Python process (see the module docstring)."""
    command = [sys.executable, "-m", "r1video.bench.clip_memory", variant, *paths]
    command += ["--num-frames", str(num_frames), "--image-size", str(image_size)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _mib(num_bytes: int) -> str:
    return f"{num_bytes / 2**20:,.0f} MiB"


def run(quick: bool = False, repeats: int | None = None) -> EntryResult:
    width, height, count = (1280, 720, 8) if quick else (3840, 2160, 32)
    num_frames, image_size, num_clips = (4, 64, 2) if quick else (16, 384, 4)
    results = {}
    with tempfile.TemporaryDirectory(prefix="r1video-bench-") as tmp:
        first = os.path.join(tmp, "clip_0.mp4")
        write_clip(first, width, height, count)
        paths = [first]
        for i in range(1, num_clips):  # distinct files, as distinct clips of a step are
            paths.append(shutil.copy(first, os.path.join(tmp, f"clip_{i}.mp4")))
        for clips in sorted({1 if not quick else num_clips, num_clips}):  # --quick: two processes only
            for variant in VARIANTS:
                results[(clips, variant)] = measure(variant, paths[:clips], num_frames, image_size)
    counts = sorted({clips for clips, _ in results})
    rows = []
    for clips in counts:
        before, after = results[(clips, "before")], results[(clips, "after")]
        rows.append(
            (
                f"{clips} distinct {width}x{height} clip{'s' if clips > 1 else ''}, {num_frames} frames each",
                f"peak RSS before +{_mib(before['peak_bytes'])}, after +{_mib(after['peak_bytes'])} "
                f"(model inputs {_mib(after['input_bytes'])})",
            )
        )
    before, after = results[(num_clips, "before")], results[(num_clips, "after")]
    full_frames = num_clips * num_frames * width * height * 3
    return EntryResult(
        name=NAME,
        target="after: peak below the full-size frames of the step's clips, and below before",
        met=after["peak_bytes"] < min(full_frames, before["peak_bytes"]),
        rows=rows,
        metrics={f"{variant}_{clips}_clips": value for (clips, variant), value in results.items()},
        settings={
            "width": width,
            "height": height,
            "clip_frames": count,
            "num_frames": num_frames,
            "image_size": image_size,
            "clips": num_clips,
        },
        notes=[
            "peak RSS above the level after imports and warm-up, one fresh process per variant (VmHWM after "
            "clear_refs); 'before' decodes every clip to full-size frames and then preprocesses, 'after' preprocesses "
            "each frame as it is decoded."
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One clip-memory variant (run by `r1video bench clip-memory`).")
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=384)
    args = parser.parse_args(argv)
    print(json.dumps(_measure_here(args.variant, args.paths, args.num_frames, args.image_size)))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

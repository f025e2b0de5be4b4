"""`temporal-contrast`: the vision-reuse GRPO step with `temporal_contrast` off and on.

Same tiny model, clips, G and completion length as `vision-reuse` (vision once on both sides). With the option on, each
prompt also gets `G // 2` rollouts on its clip with the frames shuffled, made from a permutation of the tower features
the step already has: the tower should see the same frames, and the extra time should be those rollouts' generation.
"""

import os
import tempfile
import time

from r1video.bench.grpo_setup import (
    PhaseTimes,
    build_model,
    grpo_settings,
    make_video_trainer,
    run_step,
    synthetic_rows,
)
from r1video.bench.runner import EntryResult, interleaved, median, spread
from r1video.bench.vision_reuse import QUICK, TINY, count_tower_frames

NAME = "temporal-contrast"


def run(quick: bool = False, repeats: int | None = None, num_generations: int = 8) -> EntryResult:
    repeats = repeats or (1 if quick else 5)
    shapes = QUICK if quick else TINY
    frames = 4 if quick else 16
    completion = 4 if quick else 64
    num_generations = 2 if quick else num_generations
    with tempfile.TemporaryDirectory(prefix="r1video-bench-") as tmp:
        model_dir = build_model(os.path.join(tmp, "model"), **shapes)
        rows = synthetic_rows(os.path.join(tmp, "data"), size=shapes["vision_image_size"], frames=frames)
        trainers = {
            contrast: make_video_trainer(
                model_dir,
                rows,
                **grpo_settings(
                    os.path.join(tmp, f"out-{contrast}"),
                    num_generations,
                    completion,
                    frames,
                    temporal_contrast=contrast,
                ),
            )
            for contrast in (False, True)
        }
        shuffled = trainers[True].args.temporal_contrast_generations
        tower_frames = {contrast: count_tower_frames(trainer) for contrast, trainer in trainers.items()}
        phases = {contrast: PhaseTimes(trainer) for contrast, trainer in trainers.items()}
        cpu = {False: [], True: []}

        def step(contrast: bool) -> float:
            start = time.process_time()  # this process's CPU seconds: steadier than wall time on a shared machine
            seconds = run_step(trainers[contrast])
            cpu[contrast].append(time.process_time() - start)
            return seconds

        timings = interleaved({"off": lambda: step(False), "on": lambda: step(True)}, repeats)
    off, on = median(timings["off"]), median(timings["on"])
    cpu_off, cpu_on = median(cpu[False][-repeats:]), median(cpu[True][-repeats:])  # the timed runs, not the warm-up
    generate = {contrast: median(phases[contrast].generate) for contrast in (False, True)}
    frames_off, frames_on = (sum(tower_frames[c].values()) for c in (False, True))
    rows_out = [
        ("rollouts per prompt", f"off {num_generations}, on {num_generations} + {shuffled} shuffled"),
        ("tower frames per step, off", f"{frames_off} (policy {tower_frames[False]['policy']})"),
        ("tower frames per step, on", f"{frames_on} (policy {tower_frames[True]['policy']})"),
        ("step time, off", spread(timings["off"])),
        ("step time, on", spread(timings["on"])),
        ("step time on/off (ratio of medians)", f"{on / off:.2f}x"),
        ("CPU seconds per step, off / on", f"{cpu_off:.2f} / {cpu_on:.2f} (medians; ratio {cpu_on / cpu_off:.2f}x)"),
        (
            "generation (ordered + shuffled rollouts), off / on",
            f"{generate[False]:.2f} s / {generate[True]:.2f} s (medians); the step grew by {on - off:.2f} s, "
            f"generation by {generate[True] - generate[False]:.2f} s",
        ),
    ]
    return EntryResult(
        name=NAME,
        target="tower sees no extra frame; the extra time is the shuffled rollouts' generation",
        met=frames_on == frames_off,
        rows=rows_out,
        metrics={
            "step_seconds_off": timings["off"],
            "step_seconds_on": timings["on"],
            "median_off": off,
            "median_on": on,
            "cpu_seconds_median": {"off": cpu_off, "on": cpu_on},
            "generate_seconds_median": {"off": generate[False], "on": generate[True]},
            "tower_frames_off": tower_frames[False],
            "tower_frames_on": tower_frames[True],
        },
        settings={
            "num_generations": num_generations,
            "shuffled_generations": shuffled,
            "prompts_per_step": 1,
            "frames": frames,
            "completion_tokens": completion,
            "repeats": repeats,
            "beta": 0.01,
            "tiny_model": shapes,
        },
        notes=[
            "step time is TRL's step_time (no optimizer step); both trainers alternate in one process, medians over "
            "repeats. CPU seconds are this process's CPU time over the whole one-step train() call (torch runs one "
            "thread). The shuffled rollouts are generated, decoded and scored, and enter no loss or log-prob pass.",
        ],
    )

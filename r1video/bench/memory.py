"""`memory`: peak memory of a GRPO step as G grows, vision reuse on and off, and the share of the vision tower.

How it is measured. On CPU torch's allocations are invisible to `tracemalloc` and RSS mixes them with the allocator's
caching, so the step runs under `torch.profiler` with `profile_memory=True`, which records every tensor allocation and
free. Replaying those events in time order gives the live tensor bytes at every moment; the **step peak** is the
highest level reached above the level at the start of the step (weights, optimizer state and the reference model are
already allocated then and are not counted). The **vision-tower peak** is, over the tower's calls in the step, the
highest level reached during a call above the level at the start of that call (its activations and output): it is
what the vision part adds on top of everything else. Each configuration gets a warm-up step first; figures are exact
for a given configuration (no timing noise), so one measured step is enough.
"""

import os
import tempfile

from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile, record_function

from r1video.bench.grpo_setup import build_model, grpo_settings, make_video_trainer, run_step, synthetic_rows
from r1video.bench.runner import EntryResult
from r1video.bench.vision_reuse import QUICK, TINY

NAME = "memory"
TOWER_SCOPE = "r1video_bench_vision_tower"


def _mark_tower_calls(policy, model) -> list:
    """Wrap every forward of `model`'s frozen vision encoder (the policy's `vision_module`) in a profiler range;
    returns the hook handles."""
    tower = policy.vision_module(model)
    open_ranges = []

    def enter(module, args):
        scope = record_function(TOWER_SCOPE)
        scope.__enter__()
        open_ranges.append(scope)

    def leave(module, args, output):
        open_ranges.pop().__exit__(None, None, None)

    return [tower.register_forward_pre_hook(enter), tower.register_forward_hook(leave)]


def _walk(nodes):
    for node in nodes:
        yield node
        yield from _walk(node.children)


def peaks_from_profile(prof) -> dict:
    """Step peak and vision-tower peak (bytes) from a finished `torch.profiler.profile` (see the module docstring)."""
    nodes = list(_walk(prof.profiler.kineto_results.experimental_event_tree()))
    allocations = sorted(
        (node.start_time_ns, node.extra_fields.alloc_size)  # negative for a free
        for node in nodes
        if node.tag == _EventType.Allocation and str(node.extra_fields.device) == "cpu"
    )
    towers = sorted((node.start_time_ns, node.end_time_ns) for node in nodes if node.name == TOWER_SCOPE)
    live, step_peak, tower_peak = 0, 0, 0
    tower_index, tower_start_level = 0, None
    for time, delta in allocations:
        while tower_index < len(towers) and time > towers[tower_index][1]:  # past the end of this tower call
            tower_index, tower_start_level = tower_index + 1, None
        inside = tower_index < len(towers) and towers[tower_index][0] <= time
        if inside and tower_start_level is None:
            tower_start_level = live
        live += delta
        step_peak = max(step_peak, live)
        if inside:
            tower_peak = max(tower_peak, live - tower_start_level)
    return {"step_peak_bytes": step_peak, "vision_tower_peak_bytes": tower_peak, "tower_calls": len(towers)}


def measure(trainer) -> dict:
    """Profile one step of `trainer` (after a warm-up step) and return its peaks."""
    run_step(trainer)
    handles = _mark_tower_calls(trainer.policy, trainer.model)
    if trainer.ref_model is not None:
        handles += _mark_tower_calls(trainer.policy, trainer.ref_model)
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run_step(trainer)
    finally:
        for handle in handles:
            handle.remove()
    return peaks_from_profile(prof)


def _mib(num_bytes: int) -> str:
    return f"{num_bytes / 2**20:.1f} MiB"


def run(quick: bool = False, repeats: int | None = None) -> EntryResult:
    group_sizes = (2, 4) if quick else (2, 4, 8, 16)
    shapes = QUICK if quick else TINY
    frames = 4 if quick else 16
    completion = 4 if quick else 64
    results = {}
    with tempfile.TemporaryDirectory(prefix="r1video-bench-") as tmp:
        model_dir = build_model(os.path.join(tmp, "model"), **shapes)
        rows = synthetic_rows(os.path.join(tmp, "data"), size=shapes["vision_image_size"], frames=frames)
        for g in group_sizes:
            for reuse in (True, False):
                settings = grpo_settings(os.path.join(tmp, "out"), g, completion, frames, reuse_vision=reuse)
                results[(g, reuse)] = measure(make_video_trainer(model_dir, rows, **settings))
    table = []
    for g in group_sizes:
        on, off = results[(g, True)], results[(g, False)]
        table.append(
            (
                f"G={g:<2} step peak / vision-tower peak",
                f"reuse {_mib(on['step_peak_bytes'])} / {_mib(on['vision_tower_peak_bytes'])}   "
                f"no reuse {_mib(off['step_peak_bytes'])} / {_mib(off['vision_tower_peak_bytes'])}",
            )
        )
    vision_on = [results[(g, True)]["vision_tower_peak_bytes"] for g in group_sizes]
    flat = max(vision_on) == min(vision_on)
    return EntryResult(
        name=NAME,
        target="vision-tower memory does not grow with G (reuse on)",
        met=flat,
        rows=table,
        metrics={
            "by_group_size": [
                {"num_generations": g, "reuse_vision": reuse, **peaks} for (g, reuse), peaks in results.items()
            ]
        },
        settings={
            "num_generations": list(group_sizes),
            "prompts_per_step": 1,
            "frames": frames,
            "completion_tokens": completion,
            "tiny_model": shapes,
            "method": "torch.profiler profile_memory: live tensor bytes replayed from allocation events",
        },
        notes=[
            "peaks are tensor bytes above the level at the start of the step (torch.profiler allocation events); "
            "vision-tower peak: the most a single tower call adds while it runs. RSS and Python objects not counted."
        ],
    )

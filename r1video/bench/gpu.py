"""`r1video bench gpu`: the GPU acceptance run, one command on one CUDA GPU with nothing to download.

It builds the family's paper-size model through its policy (`acceptance_checkpoint`; TinyLLaVA-Video:
TinyLLaVA-Video-Qwen2.5-3B-Group-16-512 from its released config, `r1video/model/configs/`, seed-facts §2.2, with
Qwen2.5-3B's `text_config`; no `vision_config`, so SigLIP-so400m-patch14-384's applies) with random bf16 weights on
`sdpa`, writes it as a checkpoint and loads it back the way a user's checkpoint loads. Qwen2.5's tokenizer cannot be downloaded: the tiny
test tokenizer stands in (its ids are a subset of the 151,936 rows; sampled ids outside it decode to nothing).

Then, on synthetic clips drawn in memory ([`r1video.data.synth.draw_clips`]; no PyAV, no files):

- the paper's GRPO step (G = 8 rollouts of one prompt, 16 frames, 512 new tokens pinned with `min_new_tokens`,
  β = 0.01, LLM + connector trained, tower frozen), with vision reuse on and off: seconds per step split into rollout
  (generation), log-prob passes (clip preprocessing, tower, rewards and the reference pass) and update (policy
  forward and backward; TRL's `step_time` ends before the optimizer step, which the `train()` wall time includes),
  peak GPU memory, rollout tokens per second;
- `r1video eval`-style batched greedy generation ([`r1video.eval.runner.generate_batch`]): clips per second at batch 1
  and 8.

Every figure goes to `gpu_acceptance.json` and a markdown table `gpu_acceptance.md` in `--out`. `--tiny` runs the same
code on CPU with the tiny test model in seconds (a test in the default suite).
"""

import argparse
import gc
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from r1video.bench.grpo_setup import PhaseTimes, grpo_settings, make_video_trainer, run_step
from r1video.data.bad_samples import BadSampleTracker
from r1video.data.records import grpo_example
from r1video.data.synth import draw_clips
from r1video.data.video import VideoFrames, uniform_indices
from r1video.model.templates import REASON_INSTRUCTION
from r1video.policies import policy_for

FAMILY = "tinyllava"  # the model_type whose paper-size model the run builds


@dataclass(frozen=True)
class Plan:
    """What one run measures. `PAPER` is TinyLLaVA-Video-R1's GRPO setting (seed-facts §5); `TINY` checks the code."""

    num_generations: int
    frames: int
    completion_tokens: int
    eval_new_tokens: int
    eval_batch_sizes: tuple[int, ...]
    warmup_steps: int
    timed_steps: int
    eval_batches: int


# Budget on one H200 (estimate, not yet measured): ~1.5 min to build, save and load the policy and reference,
# 3 GRPO steps x 2 sides of ~20 s (512 tokens x 8 rollouts through HF generate), 3 x 2 eval batches of 256 tokens.
PAPER = Plan(8, 16, 512, 256, (1, 8), warmup_steps=1, timed_steps=2, eval_batches=2)
TINY = Plan(2, 4, 4, 4, (1, 8), warmup_steps=1, timed_steps=1, eval_batches=1)


class InMemoryClips(BadSampleTracker):
    """The trainer's video reader over frames held in memory: `load(path)` samples frames of the clip named `path`
    by the same rule as [`r1video.data.video.load_video_frames`] (uniform indices, `num_frames` of them), and applies
    its `frame_transform` (the processor) to them. Set as the trainer's `bad_videos` and `video_reader`."""

    def __init__(self, clips: dict[str, np.ndarray], fps: float = 16.0):
        super().__init__(max_bad_fraction=0.0)
        self.clips, self.fps = clips, fps

    def load(self, path, num_frames=None, fps=None, max_frames=None, frame_transform=None, **kwargs) -> VideoFrames:
        if fps is not None:
            raise ValueError("in-memory clips are sampled by frame count (num_frames), not fps")
        frames = self.clips[str(path)]
        indices = uniform_indices(len(frames), num_frames or len(frames))
        kept = frames[indices] if frame_transform is None else frame_transform(frames[indices])
        return VideoFrames(kept, indices, self.fps, len(frames) / self.fps, len(frames))


def synthetic_rows(n: int, size: int, frames: int):
    """`n` GRPO rows in the trainer's format (R1 reasoning prompt) and their clips, keyed by the rows' `video`."""
    from datasets import Dataset

    rows, clips = [], {}
    for i, sample in enumerate(draw_clips(n, size=size, beats=max(frames, 8), seed=0)):
        record = {
            "problem": sample["problem"],
            "solution": f"<answer>{sample['letter']}</answer>",
            "video_filename": f"clip-{i}.mp4",
        }
        row = grpo_example(record, "synthetic", question_template="{Question} " + REASON_INSTRUCTION)
        clips[row["video"]] = sample["frames"]
        rows.append(row)
    return Dataset.from_list(rows), clips


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_reset():
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def grpo_side(model_dir: str, dataset, clips, plan: Plan, reuse: bool, gpu: bool, out_dir: str) -> dict:
    """Warm-up and timed GRPO steps of one trainer (vision reuse on or off); per-step seconds, memory, tokens/s."""
    settings = grpo_settings(
        out_dir,
        plan.num_generations,
        plan.completion_tokens,
        plan.frames,
        reuse_vision=reuse,
        freeze_vision_tower=True,
    )
    if gpu:
        settings.update(use_cpu=False, bf16=True)  # TRL builds the reference in the policy's dtype (bf16)
    trainer = make_video_trainer(model_dir, dataset, dtype=torch.bfloat16 if gpu else torch.float32, **settings)
    trainer.bad_videos = InMemoryClips(clips)
    trainer.video_reader = trainer.bad_videos.load
    frozen = trainer.policy.frozen_modules(trainer.model)
    trained = {
        "llm": "language_model" not in frozen,
        "connector": "connector" not in frozen,
        "vision_tower": "vision" not in frozen,
    }
    for _ in range(plan.warmup_steps):
        run_step(trainer)
    phases = PhaseTimes(trainer)
    steps = []
    for _ in range(plan.timed_steps):
        _peak_reset()
        _sync()
        start = time.perf_counter()
        step_time = run_step(trainer)
        _sync()
        wall = time.perf_counter() - start
        generate, rollout = phases.generate[-1], phases.rollout[-1]
        steps.append(
            {
                "train_call_seconds": wall,
                "step_time": step_time,
                "rollout_seconds": generate,
                "logprob_passes_seconds": rollout - generate,
                "update_seconds": step_time - rollout,
                "peak_gpu_gib": _peak_gib(),
                "rollout_tokens_per_second": plan.num_generations * plan.completion_tokens / generate,
            }
        )
    del trainer, phases
    gc.collect()  # the trainer holds reference cycles (callbacks, accelerator): free its GPU memory before the next
    if gpu:
        torch.cuda.empty_cache()
    return {"trained": trained, "steps": steps, "median": _medians(steps)}


def _medians(steps: list[dict]) -> dict:
    return {key: (None if steps[0][key] is None else float(np.median([s[key] for s in steps]))) for key in steps[0]}


def eval_generation(model_dir: str, clips, plan: Plan, gpu: bool) -> dict:
    """Batched greedy generation as `r1video eval` runs it: clips per second at each batch size."""
    from r1video.eval.runner import generate_batch
    from r1video.policies import load_policy

    policy, model, processor = load_policy(model_dir, dtype=torch.bfloat16 if gpu else torch.float32)
    model = model.to("cuda" if gpu else "cpu").eval()
    frames = [clip[uniform_indices(len(clip), plan.frames)] for clip in clips.values()]
    conversation = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
    prompt = policy.render_prompt(processor, conversation)
    gen_kwargs = {"max_new_tokens": plan.eval_new_tokens, "min_new_tokens": plan.eval_new_tokens, "do_sample": False}
    results = {}
    for batch_size in plan.eval_batch_sizes:
        videos = [frames[i % len(frames)] for i in range(batch_size)]
        generate_batch(model, processor, [prompt] * batch_size, videos, gen_kwargs, policy=policy)  # warm-up
        _peak_reset()
        _sync()
        start = time.perf_counter()
        for _ in range(plan.eval_batches):
            generate_batch(model, processor, [prompt] * batch_size, videos, gen_kwargs, policy=policy)
        _sync()
        seconds = time.perf_counter() - start
        results[f"batch_{batch_size}"] = {
            "clips_per_second": batch_size * plan.eval_batches / seconds,
            "seconds_per_batch": seconds / plan.eval_batches,
            "peak_gpu_gib": _peak_gib(),
        }
    del model
    gc.collect()
    return results


def machine() -> dict:
    import transformers
    import trl

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpu_memory_gib": torch.cuda.get_device_properties(0).total_memory / 2**30
        if torch.cuda.is_available()
        else None,
        "cpus": os.cpu_count(),
    }
    return info


def markdown(report: dict) -> str:
    """The short table: one row per GRPO side and eval batch size."""

    def fmt(value, digits=2):
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [
        f"GPU acceptance ({report['mode']}): {report['machine']['gpu'] or 'CPU'}, torch {report['machine']['torch']}, "
        f"transformers {report['machine']['transformers']}, trl {report['machine']['trl']}; "
        f"{report['model']['parameters'] / 1e6:,.1f}M parameters, G={report['plan']['num_generations']}, "
        f"{report['plan']['frames']} frames, {report['plan']['completion_tokens']} new tokens, beta 0.01",
        "",
        "| GRPO step | step s | rollout s | log-prob passes s | update s | train() s | peak GiB | rollout tok/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for side, label in (("reuse", "vision reuse on"), ("no_reuse", "vision reuse off")):
        m = report["grpo"][side]["median"]
        lines.append(
            f"| {label} | {fmt(m['step_time'])} | {fmt(m['rollout_seconds'])} | {fmt(m['logprob_passes_seconds'])} | "
            f"{fmt(m['update_seconds'])} | {fmt(m['train_call_seconds'])} | {fmt(m['peak_gpu_gib'], 1)} | "
            f"{fmt(m['rollout_tokens_per_second'], 0)} |"
        )
    lines += ["", "| eval (greedy) | clips/s | s per batch | peak GiB |", "|---|---|---|---|"]
    for key, value in report["eval"].items():
        lines.append(
            f"| {key.replace('_', ' ')} | {fmt(value['clips_per_second'], 3)} | {fmt(value['seconds_per_batch'])} | "
            f"{fmt(value['peak_gpu_gib'], 1)} |"
        )
    lines += [
        "",
        f"total wall time {report['total_seconds']:.0f} s (medians of {report['plan']['timed_steps']} steps)",
    ]
    return "\n".join(lines) + "\n"


def run(out_dir: str, tiny: bool) -> dict:
    """Run everything; write `gpu_acceptance.json` and `gpu_acceptance.md` to `out_dir`; return the report."""
    started = time.perf_counter()
    gpu = not tiny
    if gpu and not torch.cuda.is_available():
        raise RuntimeError(
            "the acceptance run needs a CUDA GPU (torch.cuda.is_available() is False); use --tiny on CPU"
        )
    plan = TINY if tiny else PAPER
    os.makedirs(out_dir, exist_ok=True)
    timings = {}
    with tempfile.TemporaryDirectory(prefix="r1video-gpu-") as tmp:
        model_dir = os.path.join(tmp, "model")
        start = time.perf_counter()
        shapes = policy_for(FAMILY).acceptance_checkpoint(
            model_dir, tiny=tiny, device="cuda" if gpu else "cpu", dtype=torch.bfloat16 if gpu else torch.float32
        )
        timings["build_and_save_seconds"] = time.perf_counter() - start
        if gpu:
            torch.cuda.empty_cache()
        size = shapes["image_size"]
        dataset, clips = synthetic_rows(1, size=size, frames=plan.frames)
        grpo = {}
        for reuse, key in ((True, "reuse"), (False, "no_reuse")):
            print(f"GRPO steps, vision reuse {'on' if reuse else 'off'} ...", flush=True)  # noqa: T201
            grpo[key] = grpo_side(model_dir, dataset, clips, plan, reuse, gpu, os.path.join(tmp, f"out-{key}"))
        print("eval generation ...", flush=True)  # noqa: T201
        _, eval_clips = synthetic_rows(8, size=size, frames=plan.frames)
        evaluation = eval_generation(model_dir, eval_clips, plan, gpu)
    report = {
        "mode": "tiny (CPU)" if tiny else "paper (GPU)",
        "machine": machine(),
        "model": shapes,
        "plan": asdict(plan),
        "grpo": grpo,
        "eval": evaluation,
        "timings": timings,
        "total_seconds": time.perf_counter() - started,
    }
    with open(os.path.join(out_dir, "gpu_acceptance.json"), "w") as f:
        json.dump(report, f, indent=2)
    table = markdown(report)
    with open(os.path.join(out_dir, "gpu_acceptance.md"), "w") as f:
        f.write(table)
    print(table)  # noqa: T201
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="r1video bench gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_acceptance", help="folder for gpu_acceptance.json and .md")
    parser.add_argument("--tiny", action="store_true", help="the tiny test model on CPU: checks the run end to end")
    args = parser.parse_args(argv)
    if args.tiny:
        torch.set_num_threads(1)
    run(args.out, tiny=args.tiny)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

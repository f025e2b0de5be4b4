"""`vision-reuse --policy qwen2_5_vl`: a GRPO step of a tiny Qwen2.5-VL at G rollouts, three ways, on the same clips.

- reuse on: r1video's `VideoGRPOTrainer`; the frozen ViT runs once per distinct clip per generation batch, the
  patch merger (trained) runs on its cached output in each pass.
- reuse off: the same trainer with `reuse_vision: false`; every row takes its clip through the whole vision path in
  every pass (generation, reference, policy).
- TRL: TRL's own `GRPOTrainer` given the same frames as a list of images per row (what users do today: TRL takes no
  video), with the same model, weights and settings. Each frame is then an image of one temporal patch (Qwen repeats
  it to fill the patch), so the ViT sees every frame twice over and the prompt holds twice the vision tokens.

The tiny model is sized so that its vision/LLM forward FLOPs match Qwen2.5-VL-3B's at the paper's settings (16
frames of a 640×360 clip; [`r1video.policies.qwen2_5_vl_flops`]); both ratios are printed. All three trainers are built
in one process from the same saved weights and data, and their steps alternate.
"""

import logging
import os
import tempfile

import torch
from PIL import Image

from r1video.bench.grpo_setup import grpo_settings, quiet, run_step, synthetic_rows
from r1video.bench.runner import EntryResult, interleaved, median, spread
from r1video.policies.qwen2_5_vl_flops import QUICK, TINY, TINY_FRAME_SIZE, model_split, real_split

logger = logging.getLogger(__name__)

NAME = "vision-reuse"
POLICY = "qwen2_5_vl"


def _policy():
    from r1video.policies.qwen2_5_vl import Qwen2_5_VLPolicy

    return Qwen2_5_VLPolicy()


def make_trainers(model_dir: str, rows, settings: dict, out: str) -> dict:
    """The three trainers (`reuse`, `no_reuse`, `trl`) on the model saved in `model_dir`."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from r1video.data.video import load_video_frames
    from r1video.trainer import VideoGRPOTrainer
    from r1video.trainer.grpo_config import VideoGRPOConfig
    from rewards import get_reward_funcs

    policy = _policy()
    trainers = {}
    for name, reuse in (("reuse", True), ("no_reuse", False)):
        model, processor = policy.load(model_dir)
        args = VideoGRPOConfig(**dict(settings, output_dir=os.path.join(out, name), reuse_vision=reuse))
        trainers[name] = quiet(
            VideoGRPOTrainer(
                model=model,
                reward_funcs=get_reward_funcs(["accuracy"]),
                args=args,
                train_dataset=rows,
                processing_class=processor,
                policy=policy,
            )
        )
    # TRL: the same frames (r1video's reader, the same frame rule) as a list of images; the question as text.
    frames = {
        path: [Image.fromarray(f) for f in load_video_frames(path, settings["num_frames"]).frames]
        for path in dict.fromkeys(rows["video"])
    }
    images = Dataset.from_dict(
        {
            "prompt": [[{"role": "user", "content": row["prompt"][0]["content"][-1]["text"]}] for row in rows],
            "images": [frames[row["video"]] for row in rows],
            "solution": list(rows["solution"]),
        }
    )
    model, processor = policy.load(model_dir)
    policy.freeze(model, vision=True)  # the same trainable parts as r1video's side: LLM + merger
    trl_settings = {key: value for key, value in settings.items() if key in GRPOConfig.__dataclass_fields__}
    trainers["trl"] = quiet(
        GRPOTrainer(
            model=model,
            reward_funcs=get_reward_funcs(["accuracy"]),
            args=GRPOConfig(**dict(trl_settings, output_dir=os.path.join(out, "trl"))),
            train_dataset=images,
            processing_class=processor,
        )
    )
    return trainers


def count_vision_frames(trainer, video: bool) -> dict[str, int]:
    """Run one step with forward hooks on the policy's and the reference model's ViT; frames each saw (a video's
    temporal patch holds 2 frames; an image is 1 frame)."""
    seen = {"policy": 0, "reference": 0}
    handles = []
    for name, model in (("policy", trainer.model), ("reference", trainer.ref_model)):
        if model is None:
            continue

        def hook(module, args, kwargs, output, name=name):
            grid = kwargs["grid_thw"] if "grid_thw" in kwargs else args[1]
            seen[name] += int(grid[:, 0].sum()) * 2 if video else len(grid)

        handles.append(model.model.visual.register_forward_hook(hook, with_kwargs=True))
    try:
        run_step(trainer)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def run(quick: bool = False, repeats: int | None = None, num_generations: int = 8) -> EntryResult:
    repeats = repeats or (1 if quick else 5)
    shapes = QUICK if quick else TINY
    frames = 4 if quick else 16
    completion = 4 if quick else 64
    num_generations = 2 if quick else num_generations
    policy = _policy()
    with tempfile.TemporaryDirectory(prefix="r1video-bench-qwen-") as tmp:
        model_dir = os.path.join(tmp, "model")
        model, processor = policy.build_tiny(model_dir, **shapes)
        rows = synthetic_rows(os.path.join(tmp, "data"), size=TINY_FRAME_SIZE[0], frames=frames)
        settings = grpo_settings(os.path.join(tmp, "out"), num_generations, completion, frames)
        trainers = make_trainers(model_dir, rows, settings, tmp)
        prompt = policy.render_prompt(processor, rows[0]["prompt"])
        text_tokens = len(processor.tokenizer(prompt)["input_ids"]) - 1 + completion
        tiny, real = model_split(model.config, frames, TINY_FRAME_SIZE, text_tokens), real_split()
        seen = {name: count_vision_frames(trainer, video=name != "trl") for name, trainer in trainers.items()}
        timings = interleaved({name: (lambda t=trainer: run_step(t)) for name, trainer in trainers.items()}, repeats)
    total = {name: sum(counts.values()) for name, counts in seen.items()}
    steps = {name: median(values) for name, values in timings.items()}
    vs_trl, vs_off = steps["trl"] / steps["reuse"], steps["no_reuse"] / steps["reuse"]
    rows_out = [
        (
            "vision/LLM forward FLOPs, real",
            f"{real['vision_to_llm']:.2f} (Qwen2.5-VL-3B ViT+merger x{real['frames']} frames of 640x360 "
            f"{real['vision_gflops']:.0f} GFLOP / LLM x{real['tokens_per_sequence']} tokens {real['llm_gflops']:.0f} "
            "GFLOP)",
        ),
        (
            "vision/LLM forward FLOPs, tiny",
            f"{tiny['vision_to_llm']:.2f} ({tiny['vision_gflops']:.2f} / {tiny['llm_gflops']:.2f} GFLOP at {frames} "
            f"frames, {tiny['tokens_per_sequence']} tokens)",
        ),
    ]
    for name, label in (
        ("reuse", "reuse on"),
        ("no_reuse", "reuse off"),
        ("trl", "TRL GRPOTrainer, frames as images"),
    ):
        rows_out.append(
            (
                f"vision frames per step, {label}",
                f"{total[name]} (policy {seen[name]['policy']}, reference {seen[name]['reference']})",
            )
        )
    for name, label in (("reuse", "reuse on"), ("no_reuse", "reuse off"), ("trl", "TRL GRPOTrainer")):
        rows_out.append((f"step time, {label}", spread(timings[name])))
    rows_out += [
        ("frames reuse on / TRL", f"1/{total['trl'] / max(total['reuse'], 1):g} (G={num_generations})"),
        ("speed-up vs TRL (ratio of medians)", f"{vs_trl:.2f}x"),
        ("speed-up vs reuse off", f"{vs_off:.2f}x"),
    ]
    met = vs_trl >= 1.5 and total["reuse"] * (2 * num_generations + 1) <= total["trl"]
    return EntryResult(
        name=f"{NAME} ({POLICY})",
        target="step >= 1.5x TRL's; vision frames <= 1/(2G+1) of TRL's",
        met=met,
        rows=rows_out,
        metrics={
            "step_seconds": timings,
            "median_seconds": steps,
            "speedup_vs_trl": vs_trl,
            "speedup_vs_no_reuse": vs_off,
            "vision_frames": seen,
            "flops_real": real,
            "flops_tiny": tiny,
        },
        settings={
            "policy": POLICY,
            "num_generations": num_generations,
            "prompts_per_step": 1,
            "frames": frames,
            "frame_size": TINY_FRAME_SIZE,
            "completion_tokens": completion,
            "repeats": repeats,
            "beta": settings["beta"],
            "tiny_model": shapes,
            "torch_threads": torch.get_num_threads(),
        },
        notes=[
            "step time is TRL's step_time (generation, rewards, reference and policy passes, backward; no optimizer "
            "step); the three trainers alternate in one process, medians over repeats.",
            "TRL's side gets each frame as an image: Qwen fills a temporal patch by repeating it, so its prompt holds "
            "twice the vision tokens of the video form, and every row re-encodes its frames in generation, reference "
            "and policy passes (3*G*F frames per step).",
        ],
    )

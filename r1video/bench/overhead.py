"""`overhead`: `VideoGRPOTrainer` against stock `trl.GRPOTrainer` on the same text-only model, batch and settings.

Both trainers get the same tiny TinyLLaVA-Video model (loaded from the same directory), the same processor, the same
rows (prompts without a video) and the same config values and seed, so their rollouts are identical and any
difference in step time is what the video seams cost when there is no video.
"""

import os
import tempfile

import trl
from datasets import Dataset

from r1video.bench.grpo_setup import build_model, grpo_settings, make_video_trainer, quiet, run_step, synthetic_rows
from r1video.bench.runner import EntryResult, interleaved, median, spread
from r1video.policies import load_policy
from rewards import get_reward_funcs

NAME = "overhead"
TINY = dict(text_hidden_size=256, text_intermediate_size=1376, text_num_hidden_layers=4, text_num_attention_heads=4)


def text_rows(video_rows) -> Dataset:
    """The synthetic questions as text-only rows (no video part, no `video` column)."""
    return Dataset.from_list(
        [{"prompt": [{"role": "user", "content": row["problem"]}], "solution": row["solution"]} for row in video_rows]
    )


def make_stock_trainer(model_dir: str, dataset, **settings) -> trl.GRPOTrainer:
    video_only = ("num_frames", "fps", "max_frames", "max_bad_video_fraction", "reuse_vision")
    video_only += ("freeze_vision_tower", "advantage_noise_std")
    _, model, processor = load_policy(model_dir)
    args = trl.GRPOConfig(**{key: value for key, value in settings.items() if key not in video_only})
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=get_reward_funcs(["accuracy"]),
        args=args,
        train_dataset=dataset,
        processing_class=processor,
    )
    return quiet(trainer)


def run(quick: bool = False, repeats: int | None = None, num_generations: int = 8) -> EntryResult:
    repeats = repeats or (1 if quick else 7)
    num_generations = 2 if quick else num_generations
    completion = 4 if quick else 64
    shapes = {} if quick else TINY
    with tempfile.TemporaryDirectory(prefix="r1video-bench-") as tmp:
        model_dir = build_model(os.path.join(tmp, "model"), **shapes)
        rows = text_rows(synthetic_rows(os.path.join(tmp, "data"), size=32, frames=8))
        settings = grpo_settings(os.path.join(tmp, "out"), num_generations, completion, frames=16)
        trainers = {
            "video": make_video_trainer(model_dir, rows, **settings),
            "stock": make_stock_trainer(model_dir, rows, **settings),
        }
        timings = interleaved({name: (lambda t=trainer: run_step(t)) for name, trainer in trainers.items()}, repeats)
        completions = {
            name: trainer.state.log_history[-2].get("completions/mean_length") for name, trainer in trainers.items()
        }
    ours, stock = median(timings["video"]), median(timings["stock"])
    ratio = ours / stock
    return EntryResult(
        name=NAME,
        target="VideoGRPOTrainer / trl.GRPOTrainer <= 1.10x",
        met=ratio <= 1.10,
        rows=[
            ("step time, VideoGRPOTrainer", spread(timings["video"])),
            ("step time, trl.GRPOTrainer", spread(timings["stock"])),
            ("ratio of medians", f"{ratio:.3f}x"),
        ],
        metrics={
            "step_seconds_video": timings["video"],
            "step_seconds_stock": timings["stock"],
            "median_video": ours,
            "median_stock": stock,
            "ratio": ratio,
            "completion_mean_length": completions,
        },
        settings={
            "num_generations": num_generations,
            "prompts_per_step": 1,
            "completion_tokens": completion,
            "repeats": repeats,
            "tiny_model": shapes or "build_tiny_model defaults",
        },
        notes=["text-only rows: same model weights, processor, rows, seed and config values on both sides."],
    )

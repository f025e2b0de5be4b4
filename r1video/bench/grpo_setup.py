"""Tiny models, synthetic clips and GRPO trainers for the step-time and memory entries."""

import logging
import os
import time

from transformers import PrinterCallback

from r1video.data.loaders import load_grpo_dataset
from r1video.data.synth import generate_synthetic_dataset
from r1video.model.templates import QUESTION_TEMPLATES
from r1video.policies import load_policy, policy_for
from r1video.trainer import VideoGRPOTrainer
from r1video.trainer.grpo_config import VideoGRPOConfig
from rewards import get_reward_funcs

logger = logging.getLogger(__name__)


FAMILY = "tinyllava"  # the model_type of the bench's tiny models (its shapes are this family's config fields)


def build_model(out_dir: str | os.PathLike, family: str = FAMILY, **overrides) -> str:
    """Save a random tiny model (seed 0) of `family` (a `model_type`) with `overrides` (see the policy's `build_tiny`)
    to `out_dir`; returns the path."""
    policy_for(family).build_tiny(out_dir, seed=0, **overrides)
    return str(out_dir)


def synthetic_rows(out_dir: str | os.PathLike, size: int, frames: int, n: int = 2):
    """`n` GRPO rows on synthetic `size`-pixel clips of `max(frames, 8)` frames, with the R1 reasoning prompt."""
    dataset = generate_synthetic_dataset(
        out_dir, n=n, n_test=1, n_coldstart=1, size=size, beats=max(frames, 8), frames_per_beat=1
    )
    return load_grpo_dataset(dataset.grpo_train, dataset.root, question_template=QUESTION_TEMPLATES["r1"])


def grpo_settings(output_dir: str, num_generations: int, completion_tokens: int, frames: int, **overrides) -> dict:
    """One prompt × G rollouts per step, the paper's β and loss, every rollout `completion_tokens` long.

    `min_new_tokens` pins the completion length, so that both sides of a comparison do the same work whatever a random
    model samples.
    """
    settings = dict(
        output_dir=output_dir,
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=num_generations,
        num_generations=num_generations,
        max_completion_length=completion_tokens,
        generation_kwargs={"min_new_tokens": completion_tokens},
        max_steps=1,
        learning_rate=1e-6,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        gradient_checkpointing=False,
        disable_tqdm=True,
        num_frames=frames,
        beta=0.01,
        loss_type="grpo",
        seed=0,
    )
    settings.update(overrides)
    return settings


def make_video_trainer(model_dir: str, dataset, dtype=None, **settings) -> VideoGRPOTrainer:
    """A [`VideoGRPOTrainer`] on the model in `model_dir` (loaded in `dtype`, float32 by default) with the `accuracy`
    reward."""
    policy, model, processor = load_policy(model_dir, **({} if dtype is None else {"dtype": dtype}))
    trainer = VideoGRPOTrainer(
        policy=policy,
        model=model,
        reward_funcs=get_reward_funcs(["accuracy"]),
        args=VideoGRPOConfig(**settings),
        train_dataset=dataset,
        processing_class=processor,
    )
    return quiet(trainer)


def quiet(trainer):
    """Stop the trainer printing its log dict after every step (the bench prints its own table)."""
    trainer.remove_callback(PrinterCallback)
    return trainer


def run_step(trainer) -> float:
    """Run one GRPO step (`max_steps=1`: each call trains on the same first batch again) and return TRL's
    `step_time`: generation, scoring, reference and policy passes and backward, without the optimizer step."""
    trainer.train()
    return next(entry["step_time"] for entry in reversed(trainer.state.log_history) if "step_time" in entry)


class PhaseTimes:
    """Seconds spent in generation and in the whole rollout (decode, vision, generation, rewards, reference pass) of
    each step of `trainer`, by wrapping its `_generate` and `_generate_and_score_completions`."""

    def __init__(self, trainer):
        self.generate: list[float] = []
        self.rollout: list[float] = []
        self._wrap(trainer, "_generate", self.generate)
        self._wrap(trainer, "_generate_and_score_completions", self.rollout)

    @staticmethod
    def _wrap(trainer, name: str, sink: list[float]):
        method = getattr(trainer, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                sink.append(time.perf_counter() - start)

        setattr(trainer, name, timed)

"""RL learns through the vision path: GRPO takes a policy at chance to ≥90% sampled accuracy on a colour → letter task.

Slow (a few minutes on 2 cores): `python -m pytest -m slow tests/test_grpo_learning.py`. The right letter is fixed by
the colour the clip shows, so the only way up is through frames → vision tower → connector → LLM; it checks that
advantages, masks, gradients and the vision-once path are wired right.
"""

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video.data.video import write_video
from r1video.model import build_tiny_model, load_pretrained
from r1video.trainer import VideoGRPOTrainer
from r1video.trainer.grpo_config import VideoGRPOConfig
from rewards import get_reward_funcs

COLOURS = {"A": (220, 30, 30), "B": (30, 200, 30), "C": (30, 30, 220), "D": (230, 220, 40)}
QUESTION = "What colour is the clip?\nA. red\nB. green\nC. blue\nD. yellow"
FRAMES, SIZE = 8, 32


def _clip(letter: str, rng: np.random.Generator) -> np.ndarray:
    frames = np.tile(np.array(COLOURS[letter], dtype=np.uint8), (FRAMES, SIZE, SIZE, 1))
    return np.clip(frames.astype(int) + rng.integers(-20, 21, frames.shape), 0, 255).astype(np.uint8)


class StopAtAccuracy(TrainerCallback):
    """Records sampled accuracy per logging step; stops once the mean of the last `window` logs reaches `target`."""

    def __init__(self, target: float = 0.9, window: int = 5):
        self.target, self.window, self.history = target, window, []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "rewards/accuracy_reward/mean" in logs:
            self.history.append(logs["rewards/accuracy_reward/mean"])
            if len(self.history) >= self.window and np.mean(self.history[-self.window :]) >= self.target:
                control.should_training_stop = True


@pytest.mark.slow
def test_grpo_learns_a_colour_to_letter_mapping_from_chance(tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(32):
        letter = "ABCD"[i % 4]
        path = tmp_path / f"clip{i}.mp4"
        write_video(path, _clip(letter, rng), fps=8)
        prompt = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}]
        rows.append({"prompt": prompt, "video": str(path), "solution": letter})
    build_tiny_model(tmp_path / "model", seed=0)
    model, processor = load_pretrained(str(tmp_path / "model"))

    # Warm start to chance: answer " X<|endoftext|>" with a uniformly random letter whatever the clip shows.
    text = processor.apply_chat_template(rows[0]["prompt"], tokenize=False, add_generation_prompt=True)
    eos = processor.tokenizer.eos_token
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        letters = rng.choice(list("ABCD"), 8)
        batch = processor(
            text=[f"{text} {letter}{eos}" for letter in letters],
            videos=[_clip(rng.choice(list("ABCD")), rng) for _ in letters],
        )
        labels = batch["input_ids"].clone()
        labels[:, :-2] = -100  # the letter and the end-of-text
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    stopper = StopAtAccuracy(target=0.9, window=5)
    args = VideoGRPOConfig(
        output_dir=str(tmp_path / "run"),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=32,  # 4 prompts × 8 rollouts
        num_generations=8,
        max_completion_length=3,
        max_steps=700,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        beta=0.0,
        loss_type="grpo",
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        gradient_checkpointing=False,
        num_frames=FRAMES,
        seed=0,
    )
    trainer = VideoGRPOTrainer(
        model=model,
        reward_funcs=get_reward_funcs(["accuracy"]),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=processor,
        callbacks=[stopper],
    )
    trainer.train()
    start, best = (
        np.mean(stopper.history[:5]),
        max(np.mean(stopper.history[i : i + 5]) for i in range(len(stopper.history) - 4)),
    )
    assert start < 0.4, f"the policy did not start near chance: {stopper.history[:5]}"
    assert best >= 0.9, f"sampled accuracy peaked at {best:.2f} (25-step mean) in {trainer.state.global_step} steps"

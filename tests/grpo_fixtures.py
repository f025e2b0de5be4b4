"""The tiny CPU GRPO set-up the trainer tests share: one place for its settings and its varied reward."""

from r1video.trainer.grpo_config import VideoGRPOConfig

FRAMES = 4


def tiny_grpo_config(tmp_path, **overrides) -> VideoGRPOConfig:
    """A one-step CPU `VideoGRPOConfig` (4 rows, groups of 2, 6 new tokens, `FRAMES` frames); `overrides` win."""
    settings = dict(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=6,
        max_steps=1,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        num_frames=FRAMES,
        seed=0,
    )
    settings.update(overrides)
    return VideoGRPOConfig(**settings)


def varied_reward(completions, **kwargs):
    """Deterministic, different per completion: gives non-zero advantages whatever the model says."""
    return [float(len(str(c)) % 7) for c in completions]

"""Trainers: `VideoGRPOTrainer` (GRPO with grouped video rollouts, each video encoded once per step)."""

from r1video.trainer.grpo_trainer import VideoGRPOTrainer

__all__ = ["VideoGRPOTrainer"]

"""Trainers: `VideoGRPOTrainer` (GRPO with grouped video rollouts, each video encoded once per step) and
`VideoSFTTrainer` with its `VideoSFTCollator` (the cold-start stage)."""

from r1video.trainer.grpo_trainer import VideoGRPOTrainer
from r1video.trainer.sft_collator import VideoSFTCollator
from r1video.trainer.sft_trainer import VideoSFTTrainer

__all__ = ["VideoGRPOTrainer", "VideoSFTCollator", "VideoSFTTrainer"]

"""Trainers and their configs (TRL's layout): `VideoGRPOTrainer` + `VideoGRPOConfig` (GRPO with grouped video
rollouts, each video encoded once per step) and `VideoSFTTrainer` + `VideoSFTConfig` with its `VideoSFTCollator` (the
cold-start stage)."""

from r1video.trainer.grpo_config import VideoGRPOConfig
from r1video.trainer.grpo_trainer import VideoGRPOTrainer
from r1video.trainer.sft_collator import VideoSFTCollator
from r1video.trainer.sft_config import VideoSFTConfig
from r1video.trainer.sft_trainer import VideoSFTTrainer

__all__ = ["VideoGRPOConfig", "VideoGRPOTrainer", "VideoSFTCollator", "VideoSFTConfig", "VideoSFTTrainer"]

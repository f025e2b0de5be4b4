"""Trainers and their configs (TRL's layout): `VideoGRPOTrainer` + `VideoGRPOConfig` (GRPO with grouped video
rollouts, each video encoded once per step) and `VideoSFTTrainer` + `VideoSFTConfig` with its `VideoSFTCollator` (the
cold-start stage).

The names are imported on first use, so `r1video.trainer.video_options` (read by `r1video grpo --help`) loads without
torch.
"""

import importlib

_MODULES = {
    "VideoGRPOConfig": "r1video.trainer.grpo_config",
    "VideoGRPOTrainer": "r1video.trainer.grpo_trainer",
    "VideoSFTCollator": "r1video.trainer.sft_collator",
    "VideoSFTConfig": "r1video.trainer.sft_config",
    "VideoSFTTrainer": "r1video.trainer.sft_trainer",
}

__all__ = list(_MODULES)


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module 'r1video.trainer' has no attribute {name!r}")

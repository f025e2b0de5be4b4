"""`VideoGRPOConfig`: TRL's `GRPOConfig` plus the video options of `VideoGRPOTrainer`."""

from dataclasses import dataclass

import trl

from r1video.trainer.video_options import VideoGRPOOptions


@dataclass
class VideoGRPOConfig(VideoGRPOOptions, trl.GRPOConfig):
    r"""
    [`trl.GRPOConfig`] plus the video options of [`VideoGRPOTrainer`]: the fields of [`VideoGRPOOptions`] (frames, bad
    clips, vision tower, CPU threads, vision reuse, advantage noise, KL clamp), documented there.
    """

    def __post_init__(self):
        super().__post_init__()
        if self.advantage_noise_std < 0:
            raise ValueError(f"advantage_noise_std must be >= 0, got {self.advantage_noise_std}")
        if self.kl_clamp is not None:
            if self.kl_clamp <= 0:
                raise ValueError(f"kl_clamp must be > 0, got {self.kl_clamp}")
            if self.loss_type != "grpo" or self.use_bias_correction_kl:
                raise ValueError(
                    "kl_clamp reproduces the original's loss: it needs loss_type='grpo' and "
                    f"use_bias_correction_kl=False (got loss_type={self.loss_type!r}, "
                    f"use_bias_correction_kl={self.use_bias_correction_kl})"
                )

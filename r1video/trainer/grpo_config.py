"""`VideoGRPOConfig`: TRL's `GRPOConfig` plus the video options of `VideoGRPOTrainer`."""

from dataclasses import dataclass

import trl

from r1video.trainer.video_options import VideoGRPOOptions


@dataclass
class VideoGRPOConfig(VideoGRPOOptions, trl.GRPOConfig):
    r"""
    [`trl.GRPOConfig`] plus the video options of [`VideoGRPOTrainer`]: the fields of [`VideoGRPOOptions`] (frames, bad
    clips, vision tower, CPU threads, vision reuse, advantage noise, KL clamp, temporal contrast), documented there.
    """

    def __post_init__(self):
        super().__post_init__()
        if self.advantage_noise_std < 0:
            raise ValueError(f"advantage_noise_std must be >= 0, got {self.advantage_noise_std}")
        if self.temporal_contrast:
            self._check_temporal_contrast()
        if self.kl_clamp is not None:
            if self.kl_clamp <= 0:
                raise ValueError(f"kl_clamp must be > 0, got {self.kl_clamp}")
            if self.loss_type != "grpo" or self.use_bias_correction_kl:
                raise ValueError(
                    "kl_clamp reproduces the original's loss: it needs loss_type='grpo' and "
                    f"use_bias_correction_kl=False (got loss_type={self.loss_type!r}, "
                    f"use_bias_correction_kl={self.use_bias_correction_kl})"
                )

    def _check_temporal_contrast(self):
        if self.temporal_contrast_generations is None:
            self.temporal_contrast_generations = self.num_generations // 2
        if self.temporal_contrast_generations < 1:
            raise ValueError(
                "temporal_contrast needs at least one shuffled rollout per prompt: set temporal_contrast_generations "
                f"(num_generations // 2 is {self.num_generations // 2})"
            )
        if self.temporal_contrast_alpha < 0 or self.temporal_contrast_mu < 0:
            raise ValueError(
                "temporal_contrast_alpha and temporal_contrast_mu must be >= 0, got "
                f"{self.temporal_contrast_alpha} and {self.temporal_contrast_mu}"
            )

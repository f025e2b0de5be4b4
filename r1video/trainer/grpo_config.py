"""`VideoGRPOConfig`: TRL's `GRPOConfig` plus the video options of `VideoGRPOTrainer`."""

from dataclasses import dataclass, field

import trl

from r1video.data.video import check_frame_rule


@dataclass
class VideoGRPOConfig(trl.GRPOConfig):
    r"""
    [`trl.GRPOConfig`] plus the video options of [`VideoGRPOTrainer`].

    > Parameters that control the frames

    num_frames (`int` or `None`, defaults to `16`): frames per clip, uniform `linspace(0, T-1, N)` (the original rule).
    fps (`float` or `None`): sample this many frames per second instead (then `num_frames` must be `None`).
    max_frames (`int` or `None`): cap on the frame count in fps mode.
    max_bad_video_fraction (`float`, defaults to `0.05`): a clip that fails to decode is skipped (its rollouts get no
        loss) and counted; past this fraction the run stops with an error listing bad files.

    > Parameters that control the vision path

    reuse_vision (`bool`, defaults to `True`): within a step, run the frozen vision tower once per distinct video and the
        connector once per distinct video per forward pass, sharing the result among its rollouts and the old,
        reference and policy log-prob passes. `False` re-encodes the video for every rollout, as the original does.
    freeze_vision_tower (`bool`, defaults to `True`): keep the vision tower frozen (LLM and connector train).

    > Parameters that control the advantages

    advantage_noise_std (`float`, defaults to `0.0`): standard deviation of Gaussian noise added to each advantage after
        the group z-score (TinyLLaVA-Video-R1 uses 0.02); seeded by `seed`, the step and the process.

    > Parameters that control the loss

    kl_clamp (`float` or `None`, defaults to `None`): clamp each token's k3 KL estimate to `[-kl_clamp, kl_clamp]`
        before it enters the loss (TinyLLaVA-Video-R1 clamps to 100, seed-facts §5.3); a clamped token's KL gives no
        gradient. Needs `loss_type="grpo"` and `use_bias_correction_kl=False` (the original's loss).

    > Parameters that control temporal contrast (T-GRPO, Video-R1, arXiv 2503.21776 §3.2)

    temporal_contrast (`bool`, defaults to `False`): for each video prompt, also sample
        `temporal_contrast_generations` rollouts on the same clip with its frames in a seeded random order, and add a
        `temporal` reward: `temporal_contrast_alpha` to each correct rollout of the ordered group when the group's
        accuracy `p` satisfies `p >= temporal_contrast_mu * p_shuffled`. The shuffled rollouts only measure
        `p_shuffled`: they get no loss. Rows without a video are unaffected. Training steps only.
    temporal_contrast_alpha (`float`, defaults to `0.3`): the bonus α (the paper's value).
    temporal_contrast_mu (`float`, defaults to `0.8`): the margin μ (the paper's value).
    temporal_contrast_generations (`int` or `None`, defaults to `None`): shuffled rollouts per prompt;
        `None` means `num_generations // 2` (Video-R1's trainer).
    temporal_contrast_reward (`str` or `None`, defaults to `None`): the reward (its metric name, e.g.
        `"accuracy_reward"`) whose answer rule decides which rollouts are correct; `None` takes the first of
        `accuracy_reward` and `tinyllava_r1_reward` in `reward_funcs`.
    """

    num_frames: int | None = field(default=16, metadata={"help": "Uniformly sampled frames per clip."})
    fps: float | None = field(default=None, metadata={"help": "Frames per second of video (instead of num_frames)."})
    max_frames: int | None = field(default=None, metadata={"help": "Cap on frames per clip in fps mode."})
    max_bad_video_fraction: float = field(
        default=0.05, metadata={"help": "Stop once more than this fraction of clips failed to decode."}
    )
    reuse_vision: bool = field(
        default=True, metadata={"help": "Encode each distinct video once per step and share it (vision-once)."}
    )
    freeze_vision_tower: bool = field(default=True, metadata={"help": "Keep the vision tower frozen."})
    advantage_noise_std: float = field(
        default=0.0, metadata={"help": "Std of Gaussian noise added to advantages (TinyLLaVA-Video-R1: 0.02)."}
    )
    kl_clamp: float | None = field(
        default=None, metadata={"help": "Clamp each token's KL to [-kl_clamp, kl_clamp] (TinyLLaVA-Video-R1: 100)."}
    )

    temporal_contrast: bool = field(
        default=False, metadata={"help": "T-GRPO: bonus for answers that beat frame-shuffled rollouts of the clip."}
    )
    temporal_contrast_alpha: float = field(default=0.3, metadata={"help": "Temporal bonus α (Video-R1: 0.3)."})
    temporal_contrast_mu: float = field(default=0.8, metadata={"help": "Temporal margin μ (Video-R1: 0.8)."})
    temporal_contrast_generations: int | None = field(
        default=None, metadata={"help": "Shuffled rollouts per video prompt (default num_generations // 2)."}
    )
    temporal_contrast_reward: str | None = field(
        default=None, metadata={"help": "Metric name of the reward whose answer rule judges correctness."}
    )

    def __post_init__(self):
        super().__post_init__()
        check_frame_rule(self.num_frames, self.fps, self.max_frames)
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

"""The video options of r1video's trainer configs, as plain dataclasses with no torch import.

`VideoTrainingOptions` (frames, bad clips, vision tower, CPU threads) is shared by `VideoSFTConfig` and
`VideoGRPOConfig`; `VideoSFTOptions` and `VideoGRPOOptions` add each stage's own. Each config inherits them ahead of its TRL parent, so
the fields are defined once, and `r1video grpo --help` can list them without loading torch.
"""

from dataclasses import dataclass, field


@dataclass
class VideoTrainingOptions:
    r"""
    Options of both training stages.

    > Parameters that control the frames

    num_frames (`int` or `None`, defaults to `16`): frames per clip, uniform `linspace(0, T-1, N)` (the original rule).
    fps (`float` or `None`): sample this many frames per second instead (then `num_frames` must be `None`).
    max_frames (`int` or `None`): cap on the frame count in fps mode; unset, 128 (a warning says when it cuts a clip's
        count: a 2-hour clip at 1 fps would be 7,200 frames); `0`: no cap.
    autorotate (`bool`, defaults to `True`): turn frames as players show them, by the clip's display rotation (phone
        clips); `False` keeps the stored orientation, as the original's decord did.
    max_bad_video_fraction (`float`, defaults to `0.05`): a clip that fails to decode is skipped (GRPO: its rollouts
        get no loss; SFT: it is dropped from its batch) and counted; past this fraction the run stops with an error
        listing bad files.

    > Parameters that control the model and the machine

    freeze_vision_tower (`bool`, defaults to `True`): keep the vision tower frozen (LLM and connector train);
        `false` trains it too.
    cpu_threads (`int`, defaults to `1`): torch threads per process when training on CPU, set at the start of the run
        (`0` keeps torch's default, one per core). Measured on a shared 2-core machine (load 7-12, 3 runs each),
        median training time of the tiny smoke recipes: GRPO 1.9 s with 1 thread vs 41.7 s with 2 (torch's default);
        SFT 1.9 s vs 21.9 s. Several processes per machine (accelerate) want 1 each. Ignored on GPU.
    """

    num_frames: int | None = field(default=16, metadata={"help": "Uniformly sampled frames per clip."})
    fps: float | None = field(default=None, metadata={"help": "Frames per second of video (instead of num_frames)."})
    max_frames: int | None = field(
        default=None, metadata={"help": "Cap on frames per clip in fps mode (unset: 128; 0: none)."}
    )
    autorotate: bool = field(
        default=True, metadata={"help": "Turn frames by the clip's display rotation; false keeps stored orientation."}
    )
    max_bad_video_fraction: float = field(
        default=0.05, metadata={"help": "Stop once more than this fraction of clips failed to decode."}
    )
    freeze_vision_tower: bool = field(
        default=True, metadata={"help": "Keep the vision tower frozen (false: train it too)."}
    )
    cpu_threads: int = field(
        default=1, metadata={"help": "Torch threads per process when training on CPU (0: torch's default)."}
    )

    def __post_init__(self):
        parent_post_init = getattr(super(), "__post_init__", None)  # the TRL config's, when mixed into one
        if parent_post_init is not None:
            parent_post_init()
        from r1video.data.video import check_frame_rule

        check_frame_rule(self.num_frames, self.fps, self.max_frames)
        if self.cpu_threads < 0:
            raise ValueError(f"cpu_threads must be >= 0 (0: torch's default), got {self.cpu_threads}")


@dataclass
class VideoGRPOOptions(VideoTrainingOptions):
    r"""
    [`VideoTrainingOptions`] plus the GRPO-only ones.

    > Parameters that control the vision path

    reuse_vision (`bool`, defaults to `True`): within a step, run the frozen vision tower once per distinct video and the
        connector once per distinct video per forward pass, sharing the result among its rollouts and the old,
        reference and policy log-prob passes. `False` re-encodes the video for every rollout, as the original does.

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

    reuse_vision: bool = field(
        default=True, metadata={"help": "Encode each distinct video once per step and share it (vision-once)."}
    )
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


@dataclass
class VideoSFTOptions(VideoTrainingOptions):
    r"""
    [`VideoTrainingOptions`] plus the SFT-only ones.

    > Parameters that control the stage

    conversation_format (`str`, defaults to `"chat"`): how a record becomes text and labels. `chat`: the model's
        chat template (TinyLLaVA-Video: `qwen2_base` / `phi`), only the replies and their end-of-text supervised.
        `pretrain`: TinyLLaVA-Video's connector stage, `<image>` + the caption + a new line, no system line, roles or
        end-of-text, only the video placeholder masked (one reply per record).
    freeze_language_model (`bool`, defaults to `False`): keep the LLM (its LM head included) frozen; with
        `freeze_vision_tower` the connector alone trains (TinyLLaVA-Video's pretrain stage).

    > Parameters that control the data pipeline

    cache_clips (`bool`, defaults to `False`): keep each clip's preprocessed frames and each conversation's tokens in
        memory after their first use: for small data sets seen many times (the demo's), where decoding and
        tokenising again every step costs more than the model's step. Memory grows with the distinct clips.
    """

    cache_clips: bool = field(
        default=False, metadata={"help": "Keep decoded clips and tokenised rows in memory (small data sets)."}
    )
    conversation_format: str = field(
        default="chat",
        metadata={
            "help": "chat: the model's chat template, replies supervised; pretrain: '<image>' + caption + newline, "
            "only the video masked (TinyLLaVA-Video's connector stage).",
            "choices": ["chat", "pretrain"],
        },
    )
    freeze_language_model: bool = field(
        default=False,
        metadata={"help": "Keep the LLM and its LM head frozen (with the tower frozen: connector only)."},
    )

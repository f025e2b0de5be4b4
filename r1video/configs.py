"""Recipe dataclasses: every key of a YAML recipe is a field of one of these (or of TRL's `ModelConfig`).

`TrlParser` reads them as one flat namespace, so field names are unique across the classes; unknown keys are errors.
"""

from dataclasses import dataclass, field

import trl


def check_frame_rule(num_frames: int | None, fps: float | None, max_frames: int | None) -> None:
    """Frames are chosen either uniformly (`num_frames`) or per second (`fps`, capped by `max_frames`)."""
    if (num_frames is None) == (fps is None):
        raise ValueError(
            f"Set exactly one of num_frames ({num_frames}) and fps ({fps}): uniform frames or frames per second."
        )
    if max_frames is not None and fps is None:
        raise ValueError("max_frames caps fps sampling; with num_frames it has no effect. Drop one of them.")


@dataclass
class VideoScriptArguments(trl.ScriptArguments):
    r"""
    Data and reward selection for the `r1video grpo` / `r1video sft` entry points.

    > Parameters that control the data

    train_file (`str`): annotation file (GRPO jsonl, or LLaVA-style SFT json); see `data_cards/`.
    video_root (`str`): directory the videos of `train_file` are relative to.
    question_template (`str`): `"r1"` appends the TinyLLaVA-Video-R1 reasoning instruction to each problem (the
        original's training prompt); `"none"` uses the problem text as it is.

    > Parameters that control the rewards

    reward_funcs (`list[str]`): registry names, `"package.module:attr"`, or entry-point names (`r1video.rewards`).
    reward_kwargs (`dict`): arguments per reward name, checked against each reward's signature before any model loads.
    """

    dataset_name: str | None = field(
        default=None, metadata={"help": "Unused: r1video reads local files (train_file)."}
    )
    train_file: str | None = field(default=None, metadata={"help": "Annotation file: GRPO jsonl or SFT json."})
    video_root: str = field(default=".", metadata={"help": "Directory the video paths are relative to."})
    question_template: str = field(
        default="r1",
        metadata={
            "help": "'r1' appends the R1 reasoning instruction to each problem; 'none' keeps it as is.",
            "choices": ["r1", "none"],
        },
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["tinyllava_r1"],
        metadata={"help": "Reward names: registry name, 'package.module:attr' or an r1video.rewards entry point."},
    )
    reward_kwargs: dict = field(default_factory=dict, metadata={"help": "Per-reward arguments: {name: {arg: value}}."})


@dataclass
class VideoGRPOConfig(trl.GRPOConfig):
    r"""
    [`trl.GRPOConfig`] plus the video options of [`VideoGRPOTrainer`].

    > Parameters that control the frames

    num_frames (`int` or `None`, defaults to `16`): frames per clip, uniform `linspace(0, T-1, N)` (the original rule).
    fps (`float` or `None`): sample this many frames per second instead (then `num_frames` must be `None`).
    max_frames (`int` or `None`): cap on the frame count in fps mode.
    autorotate (`bool`, defaults to `True`): turn frames as players show them, by the clip's display rotation (phone
        clips); `False` keeps the stored orientation, as the original's decord did.
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
    """

    num_frames: int | None = field(default=16, metadata={"help": "Uniformly sampled frames per clip."})
    fps: float | None = field(default=None, metadata={"help": "Frames per second of video (instead of num_frames)."})
    max_frames: int | None = field(default=None, metadata={"help": "Cap on frames per clip in fps mode."})
    autorotate: bool = field(
        default=True, metadata={"help": "Turn frames by the clip's display rotation; False keeps stored orientation."}
    )
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

    def __post_init__(self):
        super().__post_init__()
        check_frame_rule(self.num_frames, self.fps, self.max_frames)
        if self.advantage_noise_std < 0:
            raise ValueError(f"advantage_noise_std must be >= 0, got {self.advantage_noise_std}")


@dataclass
class VideoSFTConfig(trl.SFTConfig):
    r"""
    [`trl.SFTConfig`] plus the video options of [`VideoSFTTrainer`] (the cold-start stage).

    Rows are decoded and tokenised on the fly by [`VideoSFTCollator`], so TRL's own dataset preparation is skipped
    (`dataset_kwargs={"skip_prepare_dataset": True}`) and the `video` and `messages` columns are kept
    (`remove_unused_columns=False`); both are forced, since TRL's defaults would tokenise nothing and drop the videos.
    Packing and padding-free batches are not supported.

    > Parameters that control the frames

    num_frames (`int` or `None`, defaults to `16`): frames per clip, uniform `linspace(0, T-1, N)` (the original rule).
    fps (`float` or `None`): sample this many frames per second instead (then `num_frames` must be `None`).
    max_frames (`int` or `None`): cap on the frame count in fps mode.
    autorotate (`bool`, defaults to `True`): turn frames as players show them, by the clip's display rotation (phone
        clips); `False` keeps the stored orientation, as the original's decord did.
    max_bad_video_fraction (`float`, defaults to `0.05`): a clip that fails to decode is dropped from its batch and
        counted; past this fraction the run stops with an error listing bad files.

    > Parameters that control the training

    freeze_vision_tower (`bool`, defaults to `True`): keep the vision tower frozen (LLM and connector train).
    max_length (`int` or `None`, defaults to `3072`): the original's `model_max_length`; longer rows lose their end
        (an error if that would cut the video placeholders).
    """

    num_frames: int | None = field(default=16, metadata={"help": "Uniformly sampled frames per clip."})
    fps: float | None = field(default=None, metadata={"help": "Frames per second of video (instead of num_frames)."})
    max_frames: int | None = field(default=None, metadata={"help": "Cap on frames per clip in fps mode."})
    autorotate: bool = field(
        default=True, metadata={"help": "Turn frames by the clip's display rotation; False keeps stored orientation."}
    )
    max_bad_video_fraction: float = field(
        default=0.05, metadata={"help": "Stop once more than this fraction of clips failed to decode."}
    )
    freeze_vision_tower: bool = field(default=True, metadata={"help": "Keep the vision tower frozen."})
    max_length: int | None = field(
        default=3072, metadata={"help": "Tokens per row (video placeholders included); longer rows are cut."}
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Must stay False: the collator reads the `video` and `messages` columns."}
    )
    dataset_kwargs: dict | str | None = field(
        default_factory=lambda: {"skip_prepare_dataset": True},
        metadata={"help": "Must keep skip_prepare_dataset=True: the collator tokenises on the fly."},
    )

    def __post_init__(self):
        super().__post_init__()
        check_frame_rule(self.num_frames, self.fps, self.max_frames)
        if self.remove_unused_columns:
            raise ValueError("remove_unused_columns must be False: the video collator reads `video` and `messages`.")
        dataset_kwargs = dict(self.dataset_kwargs or {})
        if not dataset_kwargs.setdefault("skip_prepare_dataset", True):
            raise ValueError("dataset_kwargs.skip_prepare_dataset must be True: the video collator tokenises rows.")
        self.dataset_kwargs = dataset_kwargs
        if self.packing or self.padding_free:
            raise ValueError("packing and padding_free are not supported for video SFT; set both to False.")

"""`VideoSFTConfig`: TRL's `SFTConfig` plus the video options of `VideoSFTTrainer`."""

from dataclasses import dataclass, field

import trl

from r1video.data.video import check_frame_rule


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

    freeze_vision_tower (`bool`, defaults to `True`): keep the vision tower frozen (LLM and connector train); `False`
        trains it too (the demo's base stage, which stands in for pretraining).
    cache_clips (`bool`, defaults to `False`): keep each clip's preprocessed frames and each conversation's tokens in
        memory after their first use: for small data sets seen many times (the demo's), where decoding and
        tokenising again every step costs more than the model's step. Memory grows with the distinct clips.
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
    cache_clips: bool = field(
        default=False, metadata={"help": "Keep decoded clips and tokenised rows in memory (small data sets)."}
    )
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

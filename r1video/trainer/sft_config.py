"""`VideoSFTConfig`: TRL's `SFTConfig` plus the video options of `VideoSFTTrainer`."""

from dataclasses import dataclass, field

import trl

from r1video.trainer.video_options import VideoSFTOptions


@dataclass
class VideoSFTConfig(VideoSFTOptions, trl.SFTConfig):
    r"""
    [`trl.SFTConfig`] plus the video options of [`VideoSFTTrainer`] (the cold-start stage).

    Rows are decoded and tokenised on the fly by [`VideoSFTCollator`], so TRL's own dataset preparation is skipped
    (`dataset_kwargs={"skip_prepare_dataset": True}`) and the `video` and `messages` columns are kept
    (`remove_unused_columns=False`); both are forced, since TRL's defaults would tokenise nothing and drop the videos.
    Packing and padding-free batches are not supported.

    The frame, bad-clip, vision-tower, CPU-thread and clip-cache options are those of [`VideoSFTOptions`].

    > Parameters that control the training

    max_length (`int` or `None`, defaults to `3072`): the original's `model_max_length`; a longer row is an error
        (`r1video sft` names them before step 1): cutting it would drop the end of its reply.
    """

    max_length: int | None = field(
        default=3072, metadata={"help": "Tokens per row (video placeholders included); longer rows are refused."}
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
        if self.remove_unused_columns:
            raise ValueError("remove_unused_columns must be False: the video collator reads `video` and `messages`.")
        dataset_kwargs = dict(self.dataset_kwargs or {})
        if not dataset_kwargs.setdefault("skip_prepare_dataset", True):
            raise ValueError("dataset_kwargs.skip_prepare_dataset must be True: the video collator tokenises rows.")
        self.dataset_kwargs = dataset_kwargs
        if self.packing or self.padding_free:
            raise ValueError("packing and padding_free are not supported for video SFT; set both to False.")

"""`VideoSFTTrainer`: TRL's SFTTrainer for TinyLLaVA-Video (the cold-start stage).

The constructor builds a [`VideoSFTCollator`] from the [`VideoSFTConfig`] when none is given and freezes the vision
tower; resuming loads the released-layout checkpoint weights by name ([`ResumeMixin`]). Loss, logging, saving and
distribution are TRL's: the loss is the fused LM head's
negative log-likelihood over the tokens whose label is not -100 (the assistant replies and their end-of-text).
"""

from trl import SFTTrainer

from r1video.trainer.checkpoints import BadVideoTally, ResumeMixin
from r1video.trainer.model_card import ModelCardMixin
from r1video.trainer.sft_collator import VideoSFTCollator
from r1video.trainer.sft_config import VideoSFTConfig


class VideoSFTTrainer(ModelCardMixin, ResumeMixin, SFTTrainer):
    """SFT on video rows (`messages` + `video` columns, as `r1video.data.loaders.load_sft_dataset` gives).

    Arguments as [`trl.SFTTrainer`]; `args` is a [`VideoSFTConfig`] and `processing_class` a
    [`TinyLlavaVideoProcessor`]. `data_collator` defaults to `VideoSFTCollator.from_config(processing_class, args)`.
    """

    _tag_names = ["trl", "sft", "r1video"]
    card_stage = "supervised fine-tuning (cold start)"

    def __init__(self, model, args: VideoSFTConfig, processing_class, data_collator=None, **kwargs):
        if not isinstance(args, VideoSFTConfig):
            raise TypeError(f"VideoSFTTrainer needs a VideoSFTConfig, got {type(args).__name__}")
        if not hasattr(processing_class, "preprocess_frames"):
            raise TypeError("processing_class must be a TinyLlavaVideoProcessor (it preprocesses the frames)")
        if data_collator is None:
            data_collator = VideoSFTCollator.from_config(processing_class, args)
        super().__init__(
            model=model, args=args, processing_class=processing_class, data_collator=data_collator, **kwargs
        )
        if getattr(data_collator, "tracker", None) is not None:
            self.add_callback(BadVideoTally(data_collator.tracker))
        if args.freeze_vision_tower:
            self.model.vision_tower.requires_grad_(False)

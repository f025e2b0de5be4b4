"""`VideoSFTTrainer`: TRL's SFTTrainer for video LMs (the cold-start stage).

The model family is a [`VideoPolicy`] (`policy=`, or the one registered for the model's `model_type`). The constructor
builds a [`VideoSFTCollator`] from the [`VideoSFTConfig`] when none is given and freezes the vision tower through the
policy; resuming loads the released-layout checkpoint weights by name ([`ResumeMixin`]). Loss, logging, saving and
distribution are TRL's: the loss is the fused LM head's
negative log-likelihood over the tokens whose label is not -100 (the assistant replies and their end-of-text).
"""

from trl import SFTTrainer

from r1video.policies import VideoPolicy, policy_for, policy_of_checkpoint
from r1video.trainer.checkpoints import BadVideoTally, ResumeMixin
from r1video.trainer.model_card import ModelCardMixin
from r1video.trainer.sft_collator import VideoSFTCollator
from r1video.trainer.sft_config import VideoSFTConfig


class VideoSFTTrainer(ModelCardMixin, ResumeMixin, SFTTrainer):
    """SFT on video rows (`messages` + `video` columns, as `r1video.data.loaders.load_sft_dataset` gives).

    Arguments as [`trl.SFTTrainer`]; `args` is a [`VideoSFTConfig`], `processing_class` the model family's processor
    and `policy` the family (by default the one registered for the model's `model_type`). `data_collator` defaults to
    `VideoSFTCollator.from_config(processing_class, args, policy)`.
    """

    _tag_names = ["trl", "sft", "r1video"]
    card_stage = "supervised fine-tuning (cold start)"

    def __init__(
        self,
        model,
        args: VideoSFTConfig,
        processing_class,
        data_collator=None,
        policy: VideoPolicy | None = None,
        **kwargs,
    ):
        if not isinstance(args, VideoSFTConfig):
            raise TypeError(f"VideoSFTTrainer needs a VideoSFTConfig, got {type(args).__name__}")
        if policy is None:
            policy = policy_of_checkpoint(model) if isinstance(model, str) else policy_for(model)
        self.policy = policy
        if data_collator is None:
            data_collator = VideoSFTCollator.from_config(processing_class, args, policy)
        super().__init__(
            model=model, args=args, processing_class=processing_class, data_collator=data_collator, **kwargs
        )
        if getattr(data_collator, "tracker", None) is not None:
            self.add_callback(BadVideoTally(data_collator.tracker))
        if args.freeze_vision_tower:
            self.policy.freeze(self.accelerator.unwrap_model(self.model), vision=True)

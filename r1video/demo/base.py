"""Stage 1, the base: a random tiny TinyLLaVA-Video trained to answer with the option letter.

It stands in for the pretrained TinyLLaVA-Video that the paper starts from, so everything trains here, the vision
tower included. Captions of the same clips ("Describe the video." → what it shows) are mixed in: they teach the
model to see, and they are the text its cold-start thinking reuses.
"""

import logging

from datasets import concatenate_datasets

from r1video.data.loaders import load_sft_dataset
from r1video.demo.collate import CachedSFTCollator
from r1video.demo.data import DemoData
from r1video.demo.settings import DemoSettings
from r1video.demo.training import common_args, save_stage, train
from r1video.model import build_tiny_model
from r1video.trainer import VideoSFTTrainer
from r1video.trainer.sft_config import VideoSFTConfig

logger = logging.getLogger(__name__)


def base_dataset(data: DemoData):
    """Option-format questions and captions of the train clips, in one data set."""
    return concatenate_datasets([load_sft_dataset(path, data.root) for path in data.base_files])


def train_base(data: DemoData, settings: DemoSettings, out_dir: str):
    """Build a random tiny model, train it on the base data, save it to `out_dir`.

    Returns:
        `(model, processor, log_history)`.
    """
    model, processor = build_tiny_model(seed=settings.seed, **settings.model)
    args = VideoSFTConfig(
        **common_args(out_dir, settings.seed, settings.base_steps, settings.base_lr, settings.num_frames),
        per_device_train_batch_size=settings.base_batch_size,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, settings.base_steps // 30),
        freeze_vision_tower=settings.base_freeze_vision,
    )
    trainer = VideoSFTTrainer(
        model=model,
        args=args,
        train_dataset=base_dataset(data),
        processing_class=processor,
        data_collator=CachedSFTCollator(processor, settings.num_frames),
    )
    train(trainer, settings.progress)
    save_stage(trainer, out_dir)
    return trainer.model, processor, trainer.state.log_history

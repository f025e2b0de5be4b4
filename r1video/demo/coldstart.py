"""Stage 2, the cold start: the base learns the reasoning format from 16 samples, chosen by validation accuracy.

Each sample's thinking is the base's own caption of the clip, which names the answer ("A red square moves right."),
so the format costs the base little. Base-stage rows are
replayed alongside the 16 samples (on average `coldstart_replay` per batch) so the base does not forget how to see;
the reasoning data stays the same 16 samples. The vision tower is frozen, as in the paper. The run is validated every
`coldstart_eval_every` steps on the validation split (never the test split), and the best step is the cold start:
it is tuned for its own best held-out reason-mode accuracy.
"""

import logging

import numpy as np
from datasets import concatenate_datasets

from r1video.data.loaders import load_sft_dataset
from r1video.demo.base import base_dataset
from r1video.demo.collate import CachedSFTCollator
from r1video.demo.data import DemoData
from r1video.demo.evaluate import Evaluator
from r1video.demo.settings import DemoSettings
from r1video.demo.training import ValidationCallback, common_args, save_stage, train
from r1video.trainer import VideoSFTTrainer
from r1video.trainer.sft_config import VideoSFTConfig

logger = logging.getLogger(__name__)


def coldstart_dataset(data: DemoData, settings: DemoSettings):
    """The 16 reasoning samples, repeated to fill the run, mixed with as many base rows as the replay share asks."""
    samples = load_sft_dataset(data.coldstart_file, data.root)
    per_step = settings.coldstart_batch_size + settings.coldstart_replay
    copies = -(-settings.coldstart_steps * settings.coldstart_batch_size // len(samples))
    parts = [samples] * copies
    if settings.coldstart_replay:
        base = base_dataset(data)
        wanted = settings.coldstart_steps * settings.coldstart_replay
        rng = np.random.default_rng(settings.seed)
        parts.append(base.select(rng.choice(len(base), wanted, replace=wanted > len(base))))
    logger.info("cold start: 16 reasoning samples, %d rows per step", per_step)
    return concatenate_datasets(parts)


def train_coldstart(model, processor, data: DemoData, settings: DemoSettings, out_dir: str, validation: Evaluator):
    """Train the cold start from the base `model` (in place), keep its best validated step, save it to `out_dir`.

    Returns:
        `(model, log_history, best)`: `best` holds the chosen step and its validation accuracy.
    """
    args = VideoSFTConfig(
        **common_args(out_dir, settings.seed, settings.coldstart_steps, settings.coldstart_lr, settings.num_frames),
        per_device_train_batch_size=settings.coldstart_batch_size + settings.coldstart_replay,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, settings.coldstart_steps // 40),
        freeze_vision_tower=True,
    )
    callback = ValidationCallback(validation, settings.coldstart_eval_every, keep_best=True)
    trainer = VideoSFTTrainer(
        model=model,
        args=args,
        train_dataset=coldstart_dataset(data, settings),
        processing_class=processor,
        data_collator=CachedSFTCollator(processor, settings.num_frames),
        callbacks=[callback],
    )
    train(trainer, settings.progress)
    callback.restore_best(trainer.model)
    logger.info("cold start: step %d chosen (validation accuracy %.1f%%)", callback.best_step, callback.best_accuracy)
    save_stage(trainer, out_dir)
    best = {"step": callback.best_step, "val_accuracy": callback.best_accuracy, "history": callback.history}
    return trainer.model, trainer.state.log_history, best

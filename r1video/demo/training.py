"""What the demo's training stages share: trainer arguments, validation during training, saving a stage."""

import logging
import os

import torch
from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from r1video.demo.evaluate import Evaluator

logger = logging.getLogger(__name__)


def common_args(out_dir: str, seed: int, steps: int, lr: float, num_frames: int) -> dict:
    """Trainer arguments every stage uses: CPU, float32, no intermediate checkpoints, logs every few steps."""
    return dict(
        output_dir=out_dir,
        use_cpu=True,
        bf16=False,
        max_steps=steps,
        learning_rate=lr,
        logging_steps=max(1, min(10, steps // 20)),
        save_strategy="no",
        report_to="none",
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        num_frames=num_frames,
        seed=seed,
        data_seed=seed,
        disable_tqdm=False,
    )


class ValidationCallback(TrainerCallback):
    """Every `every` steps (and at the end), measure reason-mode accuracy on held-out questions and log it
    (`val_accuracy`, `val_format` in the trainer's log history); with `keep_best`, remember the best weights.

    Args:
        evaluator: The validation questions.
        every: Steps between two measurements.
        keep_best: Keep a copy of the weights of the best measurement (ties: the earliest), see [`restore_best`].
    """

    def __init__(self, evaluator: Evaluator, every: int, keep_best: bool = False):
        self.evaluator, self.every, self.keep_best = evaluator, every, keep_best
        self.best_accuracy, self.best_step, self.best_state = -1.0, None, None
        self.history: list[dict] = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self._measure(state, model)

    def _measure(self, state, model) -> None:
        if self.history and self.history[-1]["step"] == state.global_step:
            return
        result = self.evaluator.evaluate(model, "reason")
        entry = {"step": state.global_step, "val_accuracy": result.accuracy, "val_format": result.format}
        self.history.append(entry)
        state.log_history.append(dict(entry))
        logger.info(
            "step %d: validation accuracy %.1f%%, format %.1f%%", state.global_step, result.accuracy, result.format
        )
        if self.keep_best and result.accuracy > self.best_accuracy:
            self.best_accuracy, self.best_step = result.accuracy, state.global_step
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore_best(self, model) -> None:
        """Load the best weights seen into `model`."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


def train(trainer, progress: bool) -> None:
    """Run `trainer`; without `progress`, no step bars and no per-step log lines (the log history is kept)."""
    if not progress:
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
    trainer.train()


def save_stage(trainer, out_dir: str) -> None:
    """Save the model, processor and `trainer_state.json` (the curves of `r1video plot`)."""
    trainer.save_model(out_dir)
    trainer.state.save_to_json(os.path.join(out_dir, "trainer_state.json"))


def set_torch_threads(threads: int) -> int:
    """Set torch's intra-op threads; returns the previous value."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    return previous

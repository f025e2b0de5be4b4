"""What a training run prints: one short line per logging step (the full metrics still go to `trainer_state.json`
and `report_to`), and where the model was saved."""

from transformers.trainer_callback import PrinterCallback, ProgressCallback

# Shown in this order when logged; `rewards/<name>/mean` are shown by reward name after `reward`.
_KEYS = ("loss", "reward", "completions/mean_length", "kl", "grad_norm", "learning_rate", "step_time")
_SHORT = {"completions/mean_length": "length", "learning_rate": "lr"}


def compact_line(logs: dict, step: int, max_steps: int) -> str:
    """One line for a `logs` dict of `Trainer.log`: `step 3/4 | loss 0.0123 | reward 0.5 ± 0.2 | accuracy_reward 0.5 ...`.

    Eval logs (`eval_*` keys) are shown as `eval step N | ...`; the final training summary as `trained N steps in ...`.
    """
    if "train_runtime" in logs:
        loss = f", train_loss {logs['train_loss']:.4g}" if "train_loss" in logs else ""
        return f"trained {step} steps in {logs['train_runtime']:.1f} s{loss}"
    prefix = "eval_" if any(key.startswith("eval_") for key in logs) else ""
    parts = []
    for key in _KEYS:
        value = logs.get(prefix + key)
        if value is None:
            continue
        parts.append(f"{_SHORT.get(key, key)} {_number(value)}")
        if key == "reward":
            if prefix + "reward_std" in logs:
                parts[-1] += f" ± {_number(logs[prefix + 'reward_std'])}"
            head = f"{prefix}rewards/"
            for other, reward in logs.items():
                if other.startswith(head) and other.endswith("/mean"):
                    parts.append(f"{other[len(head) : -len('/mean')]} {_number(reward)}")
    head = f"eval step {step}" if prefix else f"step {step}/{max_steps}"
    return " | ".join([head, *parts])


def use_compact_console(trainer) -> None:
    """Replaces the trainer's console printer (transformers' `ProgressCallback` or `PrinterCallback`, which print the
    whole metrics dict) by one that prints [`compact_line`]; logging integrations (`report_to`) are untouched."""
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(CompactProgressCallback)
    elif trainer.pop_callback(PrinterCallback) is not None:
        trainer.add_callback(CompactPrinterCallback)


def print_saved(trainer, path: str) -> None:
    """The run's last console line: where the model is (main process only)."""
    if trainer.is_world_process_zero():
        print(f"saved to {path}", flush=True)  # noqa: T201


class CompactProgressCallback(ProgressCallback):
    """transformers' progress bar, with one short line per log instead of the metrics dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(compact_line(logs, state.global_step, state.max_steps))


class CompactPrinterCallback(PrinterCallback):
    """transformers' printer (`disable_tqdm=True`), with one short line per log instead of the metrics dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_local_process_zero and logs:
            print(compact_line(logs, state.global_step, state.max_steps), flush=True)  # noqa: T201


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

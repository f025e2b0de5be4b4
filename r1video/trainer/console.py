"""What a training run prints: one short line per logging step (the full metrics still go to `trainer_state.json`
and `report_to`), plain lines when the output is not a terminal, and a closing summary of a few lines.

- On a terminal, transformers' progress bar stays, with one short line per log written above it; piped or redirected,
  there are no progress bars (transformers', huggingface_hub's, datasets') and no escape codes, only the lines.
- The step lines follow the run's log level: `log_level: error` (what `--quiet` sets) keeps only errors and the
  summary ([`print_summary`]), which is always printed by the main process.
"""

import logging
import os
import sys
import warnings

from transformers.trainer_callback import PrinterCallback, ProgressCallback

# Shown in this order when logged; `rewards/<name>/mean` are shown by reward name after `reward`.
_KEYS = ("loss", "reward", "completions/mean_length", "kl", "grad_norm", "learning_rate", "step_time")
_SHORT = {"completions/mean_length": "length", "learning_rate": "lr"}

# TRL 1.16 reads `model.is_gradient_checkpointing`, which transformers 5.24 deprecates: a warning on every run that
# neither the user nor r1video can act on.
_LIBRARY_WARNINGS = (r"`is_gradient_checkpointing` is deprecated",)


def is_terminal(stream=None) -> bool:
    """Whether `stream` (default stderr, where progress bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    return hasattr(stream, "isatty") and stream.isatty()


def plain_output(quiet: bool = False) -> None:
    """Progress bars off (transformers', huggingface_hub's, datasets') when stderr is not a terminal or `quiet`; with
    `quiet`, Python warnings off too. Call it before the model loads (its `Loading weights` bar)."""
    if quiet or not is_terminal():
        import datasets
        import huggingface_hub.utils
        import transformers

        transformers.utils.logging.disable_progress_bar()
        huggingface_hub.utils.disable_progress_bars()
        datasets.disable_progress_bars()
    if quiet:
        warnings.simplefilter("ignore")


def compact_line(logs: dict, step: int, max_steps: int) -> str | None:
    """One line for a `logs` dict of `Trainer.log`: `step 3/4 | loss 0.0123 | reward 0.5 ± 0.2 | accuracy_reward 0.5 ...`.

    Eval logs (`eval_*` keys) are shown as `eval step N | ...`; the end-of-training log (`train_runtime`) gives `None`:
    [`print_summary`] reports it.
    """
    if "train_runtime" in logs:
        return None
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
    whole metrics dict) by one that prints [`compact_line`]: above a progress bar on a terminal, as plain lines
    otherwise. Logging integrations (`report_to`) are untouched."""
    for message in _LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)
    had_bar = trainer.pop_callback(ProgressCallback) is not None
    trainer.pop_callback(PrinterCallback)
    quiet = trainer.args.get_process_log_level() > logging.WARNING
    trainer.add_callback(
        CompactProgressCallback if had_bar and is_terminal() and not quiet else CompactPrinterCallback
    )


def quarter_means(values: list[float]) -> tuple[float, float] | None:
    """Mean of the first and of the last quarter of `values` (at least one value each); `None` when empty."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    quarter = max(1, len(values) // 4)
    return sum(values[:quarter]) / quarter, sum(values[-quarter:]) / quarter


def summary_lines(trainer, eval_metrics: dict | None = None) -> list[str]:
    """The closing summary: steps trained by this run, the reward (GRPO) or loss trend over this run's logged steps,
    the format rate of the sampled completions (GRPO), the evaluation, and where the model and logs are."""
    state, args = trainer.state, trainer.args
    start = next((cb.start_step for cb in trainer.callback_handler.callbacks if isinstance(cb, _ConsoleState)), 0)
    logged = [e for e in state.log_history if e.get("step", 0) > start and "train_runtime" not in e]
    train_logs = [e for e in logged if not any(key.startswith("eval_") for key in e)]
    runtime = next((e["train_runtime"] for e in reversed(state.log_history) if "train_runtime" in e), None)
    trained = state.global_step - start
    line = f"trained {trained} step{'s' if trained != 1 else ''}"
    line += f" in {runtime:.1f} s" if runtime is not None else ""
    if start:
        line += f" (resumed at step {start}; now at step {state.global_step} of {state.max_steps})"
    lines = [line]
    key = "reward" if any("reward" in e for e in train_logs) else "loss"
    trend = quarter_means([e.get(key) for e in train_logs])
    if trend is not None:
        n = sum(1 for e in train_logs if e.get(key) is not None)
        lines.append(f"{key} {_number(trend[0])} → {_number(trend[1])} (first → last quarter of {n} logged steps)")
    from r1video.trainer.completions import CompletionsLog

    completions = next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, CompletionsLog)), None)
    if completions is not None:
        formats = quarter_means([rate for step, rate in sorted(completions.format_rates.items()) if step > start])
        if formats is not None:
            lines.append(
                f"format {formats[0]:.0%} → {formats[1]:.0%} of sampled completions in the strict "
                "<think>…</think><answer>…</answer> form (first → last quarter)"
            )
    if eval_metrics:
        parts = [f"{name[len('eval_rewards/') : -len('/mean')]} {_number(value)}"
                 for name, value in eval_metrics.items()
                 if name.startswith("eval_rewards/") and name.endswith("/mean") and value is not None]  # fmt: skip
        reward = eval_metrics.get("eval_reward", eval_metrics.get("eval_loss"))
        head = "reward" if "eval_reward" in eval_metrics else "loss"
        lines.append(f"eval: {head} {_number(reward)}" + "".join(f", {p}" for p in parts))
    lines.append(f"model  {args.output_dir}")
    logs = [os.path.join(args.output_dir, "trainer_state.json")]
    if completions is not None and os.path.isfile(completions.path):
        logs.append(completions.path)
    lines.append(f"logs   {', '.join(logs)}")
    return lines


def print_summary(trainer, eval_metrics: dict | None = None) -> None:
    """Print [`summary_lines`] (main process only), whatever the log level."""
    if trainer.is_world_process_zero():
        print("\n".join(summary_lines(trainer, eval_metrics)), flush=True)  # noqa: T201


class _ConsoleState:
    """Remembers the step a run started at, so that a resumed run reports the steps it trained itself; after training,
    logs (the closing evaluation's) are left to the summary."""

    start_step = 0
    done = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_step = state.global_step  # a resumed run's state is loaded by now
        self.done = False
        return super().on_train_begin(args, state, control, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        self.done = True
        return super().on_train_end(args, state, control, **kwargs)

    def _print_line(self, args, state, logs) -> str | None:
        if not logs or self.done or args.get_process_log_level() > logging.WARNING:
            return None
        return compact_line(logs, state.global_step, state.max_steps)


class CompactProgressCallback(_ConsoleState, ProgressCallback):
    """transformers' progress bar, with one short line per log instead of the metrics dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            line = self._print_line(args, state, logs)
            if line is not None:
                self.training_bar.write(line)


class CompactPrinterCallback(_ConsoleState, PrinterCallback):
    """transformers' printer (no progress bar), with one short line per log instead of the metrics dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            line = self._print_line(args, state, logs)
            if line is not None:
                print(line, flush=True)  # noqa: T201


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


__all__ = [
    "CompactPrinterCallback",
    "CompactProgressCallback",
    "compact_line",
    "is_terminal",
    "plain_output",
    "print_summary",
    "quarter_means",
    "summary_lines",
    "use_compact_console",
]

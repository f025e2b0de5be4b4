"""What the GRPO policy writes, per logging step: a few samples on the console and every sample in a file.

[`CompletionsLog`] is a callback. At each training log it reads the step's rollouts that TRL's `GRPOTrainer` keeps for
its own completions table (`trainer._logs`: prompts, completions, each reward, advantages; gathered from every
process), and

- appends one JSON record per rollout to `OUTPUT_DIR/completions.jsonl`: `step`, `prompt` (its text; the video is
  not stored), `completion`, `rewards` (`{reward name: value}`, `null` where a reward does not apply), `reward` (the
  weighted sum the advantage is computed from), `advantage`, `format` (strict `<think>…</think><answer>…</answer>`);
- prints, unless the log level is above warnings (`--quiet`), the best and the worst rollout of the step (or
  `num_completions_to_print` of them, best to worst): the rewards, the advantage, the prompt shortened and the whole
  completion, or its start and its end when it is long (the end holds the answer), wrapped to the terminal's width
  (100 columns when piped), never cut.

A resumed run keeps the records up to the step it resumes from. TRL's own table (`log_completions: true`) is printed
with `rich`, cut to 80 columns when piped, and again after the last step; r1video's log replaces it unless a tracker
that receives the table (`wandb`, `trackio`) is on.
"""

import json
import logging
import math
import os
import shutil
import textwrap

from tqdm import tqdm
from transformers import TrainerCallback

from rewards.parsing import completion_text, parse_think_answer

FILE_NAME = "completions.jsonl"
DEFAULT_SHOWN = 2  # per logging step: the best and the worst rollout
_TABLE_TRACKERS = ("wandb", "trackio")  # where TRL sends its completions table


def log_completions(trainer) -> "CompletionsLog":
    """Attach a [`CompletionsLog`] to a `GRPOTrainer` and turn TRL's own console table off where the log replaces it
    (no `wandb` / `trackio` tracker); returns the callback."""
    if trainer.log_completions and not any(name in (trainer.args.report_to or []) for name in _TABLE_TRACKERS):
        trainer.log_completions = False
    callback = CompletionsLog(trainer)
    trainer.add_callback(callback)
    return callback


class CompletionsLog(TrainerCallback):
    """Writes `completions.jsonl` and prints a few samples per logging step (see the module docstring).

    Attributes:
        path: The jsonl file.
        format_rates: `{step: fraction of the step's rollouts in the strict think/answer form}` for the logged steps.
    """

    def __init__(self, trainer, shown: int | None = None):
        self.trainer = trainer
        self.path = os.path.join(trainer.args.output_dir, FILE_NAME)
        self.shown = shown or trainer.args.num_completions_to_print or DEFAULT_SHOWN
        self.format_rates: dict[int, float] = {}
        self._last_step = -1

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_step = state.global_step
        if state.is_world_process_zero:
            _keep_records_up_to(self.path, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "train_runtime" in logs or any(key.startswith("eval_") for key in logs):
            return
        if state.global_step == self._last_step or not state.is_world_process_zero:
            return
        self._last_step = state.global_step
        records = self.records(state.global_step)
        if not records:
            return
        self.format_rates[state.global_step] = sum(r["format"] for r in records) / len(records)
        with open(self.path, "a", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        if args.get_process_log_level() <= logging.WARNING:
            tqdm.write(format_samples(records, self.shown))  # above a progress bar, if any

    def records(self, step: int) -> list[dict]:
        """One record per rollout of the latest logged generation batch (see the module docstring)."""
        logs = self.trainer._logs
        names = list(logs["rewards"])
        weights = dict(zip(self.trainer.reward_func_names, self.trainer.reward_weights.tolist(), strict=True))
        records = []
        for i, (prompt, completion) in enumerate(zip(logs["prompt"], logs["completion"], strict=True)):
            rewards = {name: _finite(logs["rewards"][name][i]) for name in names}
            text = completion_text(completion)
            records.append(
                {
                    "step": step,
                    "prompt": completion_text(prompt),
                    "completion": text,
                    "rewards": rewards,
                    "reward": sum(weights.get(n, 1.0) * v for n, v in rewards.items() if v is not None),
                    "advantage": _finite(logs["advantages"][i]),
                    "format": parse_think_answer(text) is not None,
                }
            )
        return records


def format_samples(records: list[dict], shown: int = DEFAULT_SHOWN, width: int | None = None) -> str:
    """The console text of a step's samples: `shown` records from the best to the worst reward, each as a head line
    (rank, reward, advantage, each reward), the prompt (shortened; once for consecutive samples of one prompt) and the completion (start … end when long), wrapped to `width`
    (the terminal's, 100 when not a terminal)."""
    width = width or min(max(shutil.get_terminal_size((100, 24)).columns, 40), 160)
    order = sorted(range(len(records)), key=lambda i: -records[i]["reward"])
    if shown >= len(order):
        picked = order
    elif shown == 1:
        picked = order[:1]
    else:  # evenly spaced ranks, the best and the worst included
        picked = sorted({order[round(k * (len(order) - 1) / (shown - 1))] for k in range(shown)}, key=order.index)
    lines, last_prompt = [], None
    for i in picked:
        record = records[i]
        rank = order.index(i) + 1
        scores = ", ".join(f"{name} {_short_number(v)}" for name, v in record["rewards"].items())
        advantage = "-" if record["advantage"] is None else f"{record['advantage']:+.3g}"
        head = (f"  sample {rank}/{len(records)} of step {record['step']} | reward {_short_number(record['reward'])} "
                f"| advantage {advantage} | {scores}")  # fmt: skip
        lines += textwrap.wrap(head, width, subsequent_indent="    ")
        if record["prompt"] != last_prompt:  # a group's rollouts share their prompt: shown once
            lines += _wrapped("prompt", _shorten(record["prompt"], 2 * width - 16, keep_end=False), width)
            last_prompt = record["prompt"]
        lines += _wrapped("completion", _shorten(record["completion"], 4 * width - 24, keep_end=True), width)
    return "\n".join(lines)


def _wrapped(label: str, text: str, width: int) -> list[str]:
    return textwrap.wrap(
        text or "(empty)",
        width,
        initial_indent=f"    {label}: ",
        subsequent_indent=" " * 6,
        break_long_words=True,
        replace_whitespace=True,
        drop_whitespace=True,
    )


def _shorten(text: str, limit: int, keep_end: bool) -> str:
    """`text` with whitespace runs collapsed; over `limit` characters, its start (and, with `keep_end`, its last two
    thirds of the budget: where the answer is) around an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if not keep_end:
        return text[: limit - 1].rstrip() + "…"
    tail = 2 * limit // 3
    return text[: limit - tail - 3].rstrip() + " … " + text[-tail:].lstrip()


def _finite(value) -> float | None:
    value = None if value is None else float(value)
    return None if value is None or math.isnan(value) else value


def _short_number(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _keep_records_up_to(path: str, step: int) -> None:
    """Drop the records after `step` (a fresh run: all of them; a resumed run: those of steps it will redo)."""
    if not os.path.isfile(path):
        return
    if step == 0:
        os.remove(path)
        return
    with open(path, encoding="utf-8") as f:
        kept = [line for line in f if _step_of(line) <= step]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(kept)


def _step_of(line: str) -> float:
    try:
        return json.loads(line).get("step", math.inf)
    except (json.JSONDecodeError, AttributeError):
        return math.inf  # a line cut by a crash

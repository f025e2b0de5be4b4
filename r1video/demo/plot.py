"""`r1video plot RUN_DIR`: draw the curves of a run from its logs (the `trainer_state.json` of each stage).

Any folder works: every run under it is one stage, named by its folder (the run folder's own name when `RUN_DIR` is
a single run); a run's checkpoints hold copies of its log, so only its final `trainer_state.json` is read (the newest
checkpoint's when the run has none yet).

The figure has one row per stage and one panel per quantity, each with its own y axis and the stage's own steps on
the x axis (stages ran one after another, not together): the reward (GRPO; training, and the `eval_file` reward
where it was evaluated) or the loss (SFT), the mean of each reward function (a panel each), the validation accuracy
a demo logs (`val_accuracy`, `val_format`), and the mean completion length (GRPO). When the folder holds a demo's `results.json`, a last row
shows the held-out test accuracy of each stage. Legends sit beside their panel, never over the data.
"""

import json
import os
import re

from r1video.usage import ArgumentParser

# One panel per quantity: (title, [(logged key pattern, label, line style)]); a stage gets the panels it logged.
PANELS = [
    ("reward", [("reward", "train", "-"), ("eval_reward", "eval_file", "o--")]),
    ("loss", [("loss", "train", "-"), ("eval_loss", "eval_file", "o--")]),
    ("{name} (mean)", [(r"rewards/{name}/mean", "train", "-"), (r"eval_rewards/{name}/mean", "eval_file", "o--")]),
    ("validation accuracy (%)", [("val_accuracy", "accuracy", "o-"), ("val_format", "format", "s--")]),
    ("completion length (tokens)", [("completions/mean_length", "train", "-"), ("eval_completions/mean_length",
                                                                                 "eval_file", "o--")]),
]  # fmt: skip
_CHECKPOINT = re.compile(r"checkpoint-(\d+)$")
STAGE_ORDER = ("base", "coldstart", "grpo")  # the demo's stages, in the order they ran


def find_logs(run_dir: str) -> dict[str, list[dict]]:
    """Stage name → its `log_history`, one per run: a run folder's own `trainer_state.json`, else its newest
    `checkpoint-N/trainer_state.json`. A stage is named by its folder relative to `run_dir`, or by `run_dir`'s own
    name when `run_dir` is the run."""
    states = {}  # run folder -> (checkpoint step or inf for the final state, path)
    for folder, _, files in os.walk(run_dir):
        if "trainer_state.json" not in files:
            continue
        match = _CHECKPOINT.search(os.path.basename(folder))
        run, rank = (os.path.dirname(folder), int(match.group(1))) if match else (folder, float("inf"))
        if run not in states or rank > states[run][0]:
            states[run] = (rank, os.path.join(folder, "trainer_state.json"))
    logs = {}
    for run, (_, path) in sorted(states.items(), key=lambda item: _stage_rank(os.path.relpath(item[0], run_dir))):
        with open(path) as f:
            name = os.path.relpath(run, run_dir)
            name = os.path.basename(os.path.abspath(run)) if name == "." else name
            logs[name] = json.load(f).get("log_history", [])
    return logs


def _stage_rank(name: str) -> tuple:
    return (STAGE_ORDER.index(name) if name in STAGE_ORDER else len(STAGE_ORDER), name)


def matching_keys(history: list[dict], pattern: str) -> list[str]:
    """The logged keys that match `pattern` in full (a plain key matches itself), sorted."""
    return sorted({key for entry in history for key in entry if re.fullmatch(pattern, key)})


def series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    """`(steps, values)` of one logged key, one value per step (a resumed run's log repeats steps: the last wins)."""
    by_step = {entry["step"]: float(entry[key]) for entry in history
               if entry.get(key) is not None and "step" in entry}  # fmt: skip
    points = sorted(by_step.items())
    return [s for s, _ in points], [v for _, v in points]


def stage_panels(history: list[dict]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The panels a stage's log fills: `(title, [(key, label, style), ...])`; a GRPO stage (it logs `reward`) shows
    its reward, not its surrogate loss."""
    grpo = bool(matching_keys(history, "reward"))
    rewards = [key.split("/")[1] for key in matching_keys(history, r"(eval_)?rewards/[^/]+/mean")]
    panels = []
    for title, lines in PANELS:
        if title == "loss" and grpo:
            continue
        for name in dict.fromkeys(rewards) if "{name}" in title else [None]:  # one panel per reward function
            found = [(key, label, style) for pattern, label, style in lines
                     for key in matching_keys(history, pattern.format(name=re.escape(name or "")))]  # fmt: skip
            if any(series(history, key)[0] for key, _, _ in found):
                panels.append((title.format(name=name), found))
    return panels


def held_out_accuracy(run_dir: str) -> dict | None:
    """The demo's held-out evaluations (`results.json` → `evaluations`: stage → answer type → `accuracy`,
    `stderr`), or `None` when `run_dir` holds no demo results."""
    path = os.path.join(run_dir, "results.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f).get("evaluations") or None


def plot_run(run_dir: str, out_path: str | None = None, held_out: dict | None = None) -> str:
    """Draw the curves of every stage under `run_dir` into a PNG (default `RUN_DIR/curves.png`); returns its path.

    Args:
        held_out: Stage → answer type → `{"accuracy", "stderr"}` (percent), drawn as a last row of bars; read from
            `RUN_DIR/results.json` when not given.

    Raises:
        FileNotFoundError: no `trainer_state.json` under `run_dir`.
    """
    import matplotlib.pyplot as plt

    fig = draw_run(run_dir, held_out)
    out_path = out_path or os.path.join(run_dir, "curves.png")
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def draw_run(run_dir: str, held_out: dict | None = None):
    """The figure [`plot_run`] saves (a matplotlib `Figure`, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    logs = find_logs(run_dir)
    if not logs:
        raise FileNotFoundError(f"no trainer_state.json under {run_dir}: nothing to plot")
    held_out = held_out if held_out is not None else held_out_accuracy(run_dir)
    rows = [(stage, stage_panels(history)) for stage, history in logs.items()]
    rows = [(stage, panels) for stage, panels in rows if panels]
    columns = max([len(panels) for _, panels in rows] + [1])
    fig, axes = plt.subplots(
        len(rows) + bool(held_out),
        columns,
        figsize=(4.6 * columns, 2.9 * (len(rows) + bool(held_out))),
        squeeze=False,
        layout="constrained",
    )
    for row, (stage, panels) in enumerate(rows):
        history = logs[stage]
        for column in range(columns):
            ax = axes[row][column]
            if column >= len(panels):
                ax.axis("off")
                continue
            title, lines = panels[column]
            for key, label, style in lines:
                steps, values = series(history, key)
                if steps:
                    style = "." + style if style == "-" and len(steps) < 30 else style
                    ax.plot(steps, values, style, markersize=4, label=label)
            ax.set_title(f"{stage}: {title}", fontsize=10)
            ax.set_xlabel(f"{stage} step")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if "(%)" in title:
                ax.set_ylim(-3, 103)
            ax.grid(alpha=0.3)
            if len(ax.lines) > 1:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    if held_out:
        _held_out_row(axes[-1], held_out)
    fig.suptitle(os.path.basename(os.path.abspath(run_dir)))
    return fig


def _held_out_row(axes, evaluations: dict) -> None:
    """Bars of held-out accuracy per stage (one bar per answer type, ± its sampling error) in the first panel."""
    ax = axes[0]
    for other in axes[1:]:
        other.axis("off")
    stages = sorted(evaluations, key=_stage_rank)
    answer_types = sorted({a for stage in stages for a in evaluations[stage]}, key=["option", "reason"].index)
    width = 0.8 / max(len(answer_types), 1)
    for i, answer_type in enumerate(answer_types):
        xs = [s + (i - (len(answer_types) - 1) / 2) * width for s in range(len(stages))]
        results = [evaluations[stage].get(answer_type, {}) for stage in stages]
        heights = [r.get("accuracy", 0.0) for r in results]
        bars = ax.bar(xs, heights, width, yerr=[r.get("stderr", 0.0) for r in results], capsize=3, label=answer_type)
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
    ax.set_xticks(range(len(stages)), stages)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("held-out test accuracy per stage", fontsize=10)
    ax.legend(title="answer", fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="r1video plot", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run folder (any trainer_state.json below it is drawn)")
    parser.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.run_dir):
        parser.error(f"run folder not found: {args.run_dir}")
    try:
        path = plot_run(args.run_dir, args.out)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

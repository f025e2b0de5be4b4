"""`r1video plot RUN_DIR`: draw the curves of a run from its logs (the `trainer_state.json` of each stage).

Any folder works: every run under it is one stage, named by its folder; a run's checkpoints hold copies of its log, so
only its final `trainer_state.json` is read (the newest checkpoint's when the run has none yet). The figure has three
panels against the training step: reward (GRPO stages) or loss (SFT stages), the mean of each reward function and
accuracy (`rewards/<name>/mean` of training and evaluation, held-out validation accuracy), and mean completion length
(GRPO).
"""

import argparse
import json
import os
import re

PANELS = [
    ("reward / loss", ["reward", "loss"]),
    ("each reward's mean, accuracy", [r"(eval_)?rewards/[^/]+/mean", "val_accuracy"]),
    ("completion length (tokens)", ["completions/mean_length"]),
]
PERCENT_KEYS = {"val_accuracy"}  # logged in percent; drawn as fractions next to the sampled accuracy
_CHECKPOINT = re.compile(r"checkpoint-(\d+)$")


def find_logs(run_dir: str) -> dict[str, list[dict]]:
    """Stage name (the folder, relative to `run_dir`) → its `log_history`, one per run: a run folder's own
    `trainer_state.json`, else its newest `checkpoint-N/trainer_state.json`."""
    states = {}  # run folder -> (checkpoint step or inf for the final state, path)
    for folder, _, files in os.walk(run_dir):
        if "trainer_state.json" not in files:
            continue
        match = _CHECKPOINT.search(os.path.basename(folder))
        run, rank = (os.path.dirname(folder), int(match.group(1))) if match else (folder, float("inf"))
        if run not in states or rank > states[run][0]:
            states[run] = (rank, os.path.join(folder, "trainer_state.json"))
    logs = {}
    for run, (_, path) in sorted(states.items()):
        with open(path) as f:
            logs[os.path.relpath(run, run_dir)] = json.load(f).get("log_history", [])
    return logs


def matching_keys(history: list[dict], pattern: str) -> list[str]:
    """The logged keys that match `pattern` in full (a plain key matches itself), sorted."""
    return sorted({key for entry in history for key in entry if re.fullmatch(pattern, key)})


def series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    """`(steps, values)` of one logged key, one value per step (a resumed run's log repeats steps: the last wins)."""
    by_step = {entry["step"]: float(entry[key]) for entry in history if key in entry and "step" in entry}
    points = sorted(by_step.items())
    scale = 0.01 if key in PERCENT_KEYS else 1.0
    return [s for s, _ in points], [v * scale for _, v in points]


def plot_run(run_dir: str, out_path: str | None = None) -> str:
    """Draw the curves of every stage under `run_dir` into a PNG (default `RUN_DIR/curves.png`); returns its path.

    Raises:
        FileNotFoundError: no `trainer_state.json` under `run_dir`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = find_logs(run_dir)
    if not logs:
        raise FileNotFoundError(f"no trainer_state.json under {run_dir}: nothing to plot")
    out_path = out_path or os.path.join(run_dir, "curves.png")
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 3.8))
    for ax, (title, keys) in zip(axes, PANELS, strict=True):
        for stage, history in logs.items():
            for key in (key for pattern in keys for key in matching_keys(history, pattern)):
                steps, values = series(history, key)
                if key == "loss" and series(history, "reward")[0]:
                    continue  # a GRPO stage: its reward says more than its surrogate loss
                if steps:
                    ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=f"{stage}: {key}")
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(os.path.basename(os.path.abspath(run_dir)))
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="r1video plot", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run folder (any trainer_state.json below it is drawn)")
    parser.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    args = parser.parse_args(argv)
    try:
        path = plot_run(args.run_dir, args.out)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

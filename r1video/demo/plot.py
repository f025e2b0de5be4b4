"""`r1video plot RUN_DIR`: draw the curves of a run from its logs (the `trainer_state.json` of each stage).

Any folder works: every `trainer_state.json` under it is one stage, named by its folder. The figure has three panels
against the training step: reward (GRPO stages) or loss (SFT stages), accuracy (sampled training accuracy of GRPO, its sampled accuracy on
an `eval_file`, and held-out validation accuracy), and mean completion length (GRPO).
"""

import argparse
import json
import os
import re

PANELS = [
    ("reward / loss", ["reward", "loss"]),
    ("accuracy", ["rewards/accuracy_reward/mean", "eval_rewards/accuracy_reward/mean", "val_accuracy"]),
    ("completion length (tokens)", ["completions/mean_length"]),
]
PERCENT_KEYS = {"val_accuracy"}  # logged in percent; drawn as fractions next to the sampled accuracy


def find_logs(run_dir: str) -> dict[str, list[dict]]:
    """Stage name (the folder, relative to `run_dir`) → its `log_history`, for every `trainer_state.json` found.

    A `checkpoint-N` folder is skipped when the folder above it has its own `trainer_state.json` (the whole run's).
    """
    logs = {}
    for folder, _, files in sorted(os.walk(run_dir)):
        parent = os.path.dirname(folder)
        if re.fullmatch(r"checkpoint-\d+", os.path.basename(folder)) and os.path.exists(
            os.path.join(parent, "trainer_state.json")
        ):
            continue
        if "trainer_state.json" in files:
            with open(os.path.join(folder, "trainer_state.json")) as f:
                history = json.load(f).get("log_history", [])
            logs[os.path.relpath(folder, run_dir)] = history
    return logs


def series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    """`(steps, values)` of one logged key."""
    points = [(entry["step"], float(entry[key])) for entry in history if key in entry and "step" in entry]
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
            for key in keys:
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

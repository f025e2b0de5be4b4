"""Greedy held-out evaluation of a stage's checkpoint with `r1video eval`'s runner, on a demo benchmark folder.

Two answer types, as in the paper's table: `option` asks for the letter directly (TinyLLaVA-Video's prompt), `reason`
asks for `<think>…</think> <answer>…</answer>` (TinyLLaVA-Video-R1's prompt). Answers are read by the runner's
`robust` protocol (the one reader, as the training reward reads them). Added here from the runner's predictions: the
accuracy per synthetic task, its sampling error, and format compliance (the strict think/answer rule of the
`tinyllava_r1` reward).
"""

import math
import os

from r1video.eval.predictions import PredictionLog
from r1video.eval.runner import EvalConfig, run_evaluation
from rewards.parsing import parse_think_answer

ANSWER_TYPES = {"option": "Option", "reason": "Reason"}


def evaluate(
    model_dir: str,
    benchmark: tuple[str, str],
    tasks: dict[str, str],
    answer_type: str,
    output_dir: str,
    num_frames: int,
    settings,
) -> dict:
    """Evaluate the checkpoint in `model_dir` on a demo benchmark folder, as `r1video eval --benchmark mmvu` would.

    Args:
        model_dir: A checkpoint folder.
        benchmark: `(folder, video folder)` of the questions, in MMVU's layout ([`DemoData.benchmarks`]).
        tasks: Question id → task.
        answer_type: `"option"` or `"reason"` (the runner's `prompt`).
        output_dir: The runner's output folder (predictions, results tables); overwritten.
        num_frames: Frames per clip.
        settings: A [`DemoSettings`] (`eval_max_tokens`, `eval_batch_size`, `seed`, `progress`).

    Returns:
        `{"answer_type", "accuracy", "stderr", "per_task", "format", "n", "examples"}`: accuracies in percent,
        `stderr` the binomial sampling error in points, `format` the percent of strict think/answer replies (reason
        mode; `None` in option mode).
    """
    data_dir, video_dir = benchmark
    config = EvalConfig(
        benchmark="mmvu",
        data_dir=data_dir,
        video_dir=video_dir,
        model=model_dir,
        output_dir=output_dir,
        prompt=answer_type,
        num_frames=num_frames,
        batch_size=settings.eval_batch_size,
        max_new_tokens=settings.eval_max_tokens,
        seed=settings.seed,
        device="cpu",
        overwrite=True,
    )
    run_evaluation(config, progress=settings.progress)
    records = list(PredictionLog(os.path.join(output_dir, "predictions.jsonl")).records().values())
    correct = [r["prediction"] == r["answer"] for r in records]
    by_task: dict[str, list[bool]] = {}
    for record, right in zip(records, correct, strict=True):
        by_task.setdefault(tasks[record["id"]], []).append(right)
    n = len(records)
    accuracy = 100.0 * sum(correct) / n
    formatted = [parse_think_answer(r["completion"]) is not None for r in records]
    return {
        "answer_type": answer_type,
        "accuracy": accuracy,
        "stderr": 100.0 * math.sqrt(accuracy / 100 * (1 - accuracy / 100) / n),
        "per_task": {task: 100.0 * sum(v) / len(v) for task, v in by_task.items()},
        "format": 100.0 * sum(formatted) / n if answer_type == "reason" else None,
        "n": n,
        "examples": [{"task": tasks[r["id"]], "gold": r["answer"], "reply": r["completion"]} for r in records[:4]],
    }

"""MLVU dev set (MLVU/MVLU), the 7 multiple-choice tasks: one JSON file per task, one video folder per task.

Layout read (as published, and as TinyLLaVA-Video-R1's `eval_mlvu.py` reads it)::

    DIR/json/1_plotQA.json ... 7_topic_reasoning.json    [{"video", "duration", "question", "candidates",
                                                            "answer", "question_type"}]
    DIR/video/1_plotQA/<video> ...

`answer` is the text of the right candidate. Scoring: the **macro** mean of the task accuracies ("M-Avg"), as the
original reports it, plus one row per task. The generation tasks (8_sub_scene, 9_summary) are not read.
"""

import os

from r1video.eval.benchmarks._common import (
    answer_letter_from_text,
    check_choices,
    field,
    read_json_list,
    select,
    video_path,
)
from r1video.eval.samples import EvalSample

# task name -> file stem (json/<stem>.json, video/<stem>/)
TASKS = {
    "plotQA": "1_plotQA",
    "needle": "2_needle",
    "ego": "3_ego",
    "count": "4_count",
    "order": "5_order",
    "anomaly_reco": "6_anomaly_reco",
    "topic_reasoning": "7_topic_reasoning",
}
ALIASES = {stem: name for name, stem in TASKS.items()}


def load(
    data_dir: str | os.PathLike, tasks: list[str] | None = None, video_dir: str | os.PathLike | None = None
) -> list[EvalSample]:
    """Read MLVU dev multiple-choice questions.

    Args:
        data_dir: The MLVU copy (holding `json/` and `video/`).
        tasks: Task names (`plotQA` or `1_plotQA`) to keep; all 7 by default.
        video_dir: The video root holding one folder per task, if not `data_dir/video`.

    Raises:
        BenchmarkDataError: A task file is missing or a record is malformed, or its video path leaves the task's
            video folder.
    """
    video_root = os.fspath(video_dir) if video_dir else os.path.join(data_dir, "video")
    samples = []
    for task in select(list(TASKS), tasks, ALIASES, "MLVU"):
        stem = TASKS[task]
        path = os.path.join(data_dir, "json", f"{stem}.json")
        for i, record in enumerate(read_json_list(path, f"MLVU task file for {task}")):
            where = f"{path}: record {i}"
            choices = check_choices(field(record, "candidates", list, where), where)
            samples.append(
                EvalSample(
                    id=f"{stem}/{i}",
                    group=task,
                    question=field(record, "question", str, where),
                    choices=choices,
                    answer=answer_letter_from_text(field(record, "answer", str, where), list(choices), where),
                    video=video_path(os.path.join(video_root, stem), field(record, "video", str, where), where),
                    source=path,
                )
            )
    return samples

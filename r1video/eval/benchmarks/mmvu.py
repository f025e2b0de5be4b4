"""MMVU validation set (yale-nlp/MMVU), multiple-choice questions only (TinyLLaVA-Video-R1's "MMVU (mc)").

Layout read (as published)::

    DIR/validation.json     [{"id", "video", "question_type", "question", "choices": {"A": ...}, "answer": "A",
                              "metadata": {"subject", ...}, ...}]
    DIR/videos/<subject>/<n>.mp4

`video` holds the download URL `https://huggingface.co/datasets/yale-nlp/MMVU/resolve/main/videos/...`; as in the
original, that prefix is replaced by the local copy (a relative path is read relative to it). Open-ended questions
are skipped, as in R1 (TinyLLaVA-Video scored them too, by substring match; its MMVU numbers are not comparable).
Scoring: micro accuracy.
"""

import os

from r1video.eval.benchmarks._common import check_choices, field, read_json_list, select, video_path
from r1video.eval.samples import LETTERS, BenchmarkDataError, EvalSample

URL_PREFIX = "https://huggingface.co/datasets/yale-nlp/MMVU/resolve/main/"
GROUP = "multiple-choice"


def load(
    data_dir: str | os.PathLike, tasks: list[str] | None = None, video_dir: str | os.PathLike | None = None
) -> list[EvalSample]:
    """Read MMVU multiple-choice questions.

    Args:
        data_dir: The MMVU copy (holding `validation.json` and `videos/`).
        tasks: Only `multiple-choice` exists.
        video_dir: The folder that replaces the download URL prefix, if not `data_dir`.

    Raises:
        BenchmarkDataError: `validation.json` is missing or a record is malformed.
    """
    select([GROUP], tasks, {"mc": GROUP}, "MMVU")
    path = os.path.join(data_dir, "validation.json")
    video_root = os.fspath(video_dir) if video_dir else os.fspath(data_dir)
    samples = []
    for i, record in enumerate(read_json_list(path, "the MMVU validation questions")):
        where = f"{path}: record {i}"
        if field(record, "question_type", str, where) != GROUP:
            continue
        choices_map = field(record, "choices", dict, where)
        letters = LETTERS[: len(choices_map)]
        if "".join(choices_map) != letters:
            raise BenchmarkDataError(f"{where}: choice keys {list(choices_map)} should be {list(letters)}")
        answer = field(record, "answer", str, where).strip()
        if answer not in letters:
            raise BenchmarkDataError(f"{where}: answer {answer!r} is not one of the choice letters {list(letters)}")
        video = field(record, "video", str, where)
        video = video.removeprefix(URL_PREFIX) if video.startswith(URL_PREFIX) else video
        samples.append(
            EvalSample(
                id=str(record.get("id", i)),
                group=GROUP,
                question=field(record, "question", str, where),
                choices=check_choices(list(choices_map.values()), where),
                answer=answer,
                video=video_path(video_root, video, where),
                source=path,
            )
        )
    return samples

"""Video-MME (lmms-lab/Video-MME), without subtitles: one parquet file, videos named by `videoID`.

Layout read (as published, and as TinyLLaVA-Video-R1's `eval_videomme.py` reads it)::

    DIR/videomme/test-00000-of-00001.parquet   columns video_id, duration (short/medium/long), domain,
                                               sub_category, url, videoID, question_id, task_type, question,
                                               options (["A. ...", "B. ...", ...]), answer ("A")
    DIR/data/<videoID>.mp4                     the unzipped videos_chunked_*.zip (they unzip to `data/`;
                                               a `videos/` folder is used when there is no `data/`)

Scoring: accuracy per duration, as the original reports it (it ran short, medium and long separately), plus the
accuracy over all selected questions.
"""

import os
import re

from r1video.eval.benchmarks._common import field, select, video_path
from r1video.eval.samples import LETTERS, BenchmarkDataError, EvalSample, require_file

DURATIONS = ["short", "medium", "long"]
PARQUET = os.path.join("videomme", "test-00000-of-00001.parquet")
# "A. text" exactly: the prompt writes the option back as "A. " + text, byte for byte as the original joins them.
_OPTION = re.compile(r"^([A-Z])\. (.*)$", re.DOTALL)


def load(
    data_dir: str | os.PathLike, tasks: list[str] | None = None, video_dir: str | os.PathLike | None = None
) -> list[EvalSample]:
    """Read Video-MME questions.

    Args:
        data_dir: The Video-MME copy (holding `videomme/test-00000-of-00001.parquet` and `data/`).
        tasks: Durations to keep (`short`, `medium`, `long`); all by default.
        video_dir: The folder of `<videoID>.mp4` files, if not `data_dir/data` (or `data_dir/videos`).

    Raises:
        BenchmarkDataError: The parquet file is missing, unreadable, lacks a column, or a row is malformed.
    """
    import pyarrow.parquet as pq  # a dependency of datasets

    path = require_file(os.path.join(data_dir, PARQUET), "the Video-MME question table")
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise BenchmarkDataError(f"{path}: not a readable parquet file ({exc})") from exc
    video_root = os.fspath(video_dir) if video_dir else _default_video_root(data_dir)
    wanted = set(select(DURATIONS, tasks, {}, "Video-MME"))
    samples = []
    for i, row in enumerate(rows):
        where = f"{path}: row {i}"
        duration = field(row, "duration", str, where)
        if duration not in DURATIONS:
            raise BenchmarkDataError(f"{where}: duration {duration!r} is not one of {DURATIONS}")
        if duration not in wanted:
            continue
        choices = _parse_options(field(row, "options", (list, tuple), where), where)
        answer = field(row, "answer", str, where).strip()
        if answer not in LETTERS[: len(choices)]:
            raise BenchmarkDataError(f"{where}: answer {answer!r} is not an option letter")
        samples.append(
            EvalSample(
                id=str(field(row, "question_id", str, where)),
                group=duration,
                question=field(row, "question", str, where),
                choices=choices,
                answer=answer,
                video=video_path(video_root, f"{field(row, 'videoID', str, where)}.mp4", where, "videoID"),
                source=path,
            )
        )
    return samples


def _default_video_root(data_dir) -> str:
    data = os.path.join(data_dir, "data")
    videos = os.path.join(data_dir, "videos")
    return videos if not os.path.isdir(data) and os.path.isdir(videos) else data


def _parse_options(options, where: str) -> tuple[str, ...]:
    """`["A. Apples.", "B. Pears."]` -> `("Apples.", "Pears.")`; the letters must run A, B, C, ..."""
    texts = []
    for position, option in enumerate(options):
        match = _OPTION.match(option) if isinstance(option, str) else None
        if match is None or match.group(1) != LETTERS[position]:
            raise BenchmarkDataError(
                f"{where}: option {position} {option!r} does not start with '{LETTERS[position]}. '"
            )
        texts.append(match.group(2))
    if not texts:
        raise BenchmarkDataError(f"{where}: no options")
    return tuple(texts)

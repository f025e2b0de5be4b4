"""LongVideoBench validation set (longvideobench/LongVideoBench), as TinyLLaVA-Video evaluates it.

Layout read (as published, after `tar -xvf videos.tar` and `tar -xvf subtitles.tar`)::

    DIR/lvb_val.json               [{"id", "video_id", "video_path": "<id>.mp4", "subtitle_path": "<id>_en.json",
                                     "question", "candidates": [...], "correct_choice": 0-based index,
                                     "duration", "duration_group": 15 | 60 | 600 | 3600,
                                     "starting_timestamp_for_subtitles", "question_category", ...}]
    DIR/videos/<id>.mp4
    DIR/subtitles/<id>_en.json     [{"start": "00:00:01.000", "end": "...", "line": "..."}] or
                                   [{"timestamp": [start, end], "text": "..."}]

The original (TinyLLaVA-Video `eval/eval_lvbench.py` + `eval/lvbenchdataset.py`, seed-facts §9), kept here:

- frames: the `lvb` reader (see `r1video.eval.frames`): `min(16, int(duration))` frames at
  `int(int(duration * fps) / n) * i`;
- the prompt interleaves the subtitles with the frames: frames become the text `[image]` in time order, a subtitle line
  goes after the frames shown up to its midpoint and is kept only if some frame falls inside it (a line under a second
  is widened to one second around its midpoint); the whole is written before the question as
  `subtitles:{interleaved}\\nquestion: \\n{question}\\n{A. c1}\\n...`, with the one video placeholder in front (the
  original wrote `question: <image>`, and its template moved the placeholder to the start);
- the option prompt: `{question}\\nA. c1\\nB. c2...\\nAnswer with the option's letter from the given choices directly.`;
- scoring: accuracy over all questions (here also per duration group, LongVideoBench's own split). With
  `--protocol original` answers are read by the original's parser (see `r1video.eval.scoring.original_option_choice`;
  its option texts drop their last character, as the original's `split('. ')[1][:-1]`).

Deviations on purpose: frames are decoded with PyAV (same indices; an index past the stream's last frame is clamped,
where decord would fail); a clip under a second gets one frame (the original divides by zero).
"""

import json
import os

from r1video.eval.benchmarks._common import check_choices, field, read_json_list, select, video_path
from r1video.eval.samples import LETTERS, LVB, BenchmarkDataError, EvalSample, require_file

ANNOTATIONS = "lvb_val.json"
# LongVideoBench's duration groups (the `duration_group` value is the group's upper bound in seconds).
DURATION_GROUPS = {15: "8-15s", 60: "15-60s", 600: "180-600s", 3600: "900-3600s"}
FRAME_TOKEN = "[image]"  # how the original writes a frame in the interleaved subtitles


def load(
    data_dir: str | os.PathLike, tasks: list[str] | None = None, video_dir: str | os.PathLike | None = None
) -> list[EvalSample]:
    """Read LongVideoBench validation questions with their subtitles.

    Args:
        data_dir: The LongVideoBench copy (holding `lvb_val.json`, `videos/` and `subtitles/`).
        tasks: Duration groups to keep (`8-15s`, `15-60s`, `180-600s`, `900-3600s`, or the `duration_group` values
            `15`, `60`, `600`, `3600`); all by default.
        video_dir: The folder of the videos, if not `data_dir/videos`.

    Raises:
        BenchmarkDataError: `lvb_val.json` or a subtitle file is missing or malformed (the message names the file
            and record).
    """
    path = os.path.join(data_dir, ANNOTATIONS)
    video_root = os.fspath(video_dir) if video_dir else os.path.join(data_dir, "videos")
    aliases = {str(value): name for value, name in DURATION_GROUPS.items()}
    wanted = set(select(list(DURATION_GROUPS.values()), tasks, aliases, "LongVideoBench"))
    subtitle_cache: dict[str, list] = {}
    samples = []
    for i, record in enumerate(read_json_list(path, "the LongVideoBench validation questions")):
        where = f"{path}: record {i}"
        group_value = field(record, "duration_group", int, where)
        group = DURATION_GROUPS.get(group_value, f"{group_value}s")
        if group not in wanted:
            continue
        choices = check_choices(field(record, "candidates", list, where), where)
        correct = field(record, "correct_choice", int, where)
        if not 0 <= correct < len(choices):
            raise BenchmarkDataError(
                f"{where}: correct_choice {correct} is not an index of the {len(choices)} candidates"
            )
        duration = float(field(record, "duration", (int, float), where))
        subtitle_file = field(record, "subtitle_path", str, where)
        if subtitle_file not in subtitle_cache:
            subtitle_path = video_path(os.path.join(data_dir, "subtitles"), subtitle_file, where, "subtitle_path")
            subtitle_cache[subtitle_file] = _read_subtitles(subtitle_path, where)
        start = float(record.get("starting_timestamp_for_subtitles") or 0.0)
        samples.append(
            EvalSample(
                id=str(field(record, "id", str, where)),
                group=group,
                question=field(record, "question", str, where),
                choices=choices,
                answer=LETTERS[correct],
                video=video_path(video_root, field(record, "video_path", str, where), where, "video_path"),
                reader=LVB,
                source=path,
                duration=duration,
                subtitles=subtitle_spans(subtitle_cache[subtitle_file], start, duration),
            )
        )
    return samples


def _read_subtitles(path: str, where: str) -> list:
    require_file(path, f"the subtitles named by {where}")
    try:
        with open(path, encoding="utf-8-sig") as f:
            subtitles = json.load(f)
    except json.JSONDecodeError as exc:
        raise BenchmarkDataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(subtitles, list):
        raise BenchmarkDataError(f"{path}: expected a JSON list of subtitle lines, got {type(subtitles).__name__}")
    return subtitles


def timestamp_seconds(timestamp: str) -> float:
    """`"HH:MM:SS.fff"` -> seconds."""
    hours, minutes, seconds = timestamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def subtitle_spans(
    subtitles: list, starting_timestamp: float, duration: float
) -> tuple[tuple[float, float, str], ...]:
    """Subtitle lines as `(start, end, text)` in seconds of the video, by the original's rules: a `timestamp` line
    whose end is not a float (the last line's `null`) ends at `duration`; every time is shifted back by the video's
    `starting_timestamp_for_subtitles`."""
    spans = []
    for n, line in enumerate(subtitles):
        try:
            if "timestamp" in line:
                start, end = line["timestamp"]
                end = end if isinstance(end, float) else duration
                text = line["text"]
            else:
                start, end, text = timestamp_seconds(line["start"]), timestamp_seconds(line["end"]), line["line"]
        except (KeyError, TypeError, ValueError) as exc:
            raise BenchmarkDataError(f"subtitle line {n} is malformed ({exc!r}): {line!r}") from exc
        spans.append((float(start) - starting_timestamp, float(end) - starting_timestamp, str(text)))
    return tuple(spans)


def interleave_subtitles(frame_times: list[float], subtitles) -> str:
    """The original's subtitles-with-frames text: `[image]` per frame and the subtitle lines, in time order.

    Each line comes after the frames at or before its midpoint; it is kept only if a frame lies strictly inside it
    (a line shorter than a second counts as the second around its midpoint); the frames after the last line close
    the text. Lines are joined with nothing between them, as the original concatenates them.
    """
    pieces, shown = [], 0
    for start, end, text in subtitles:
        middle = (start + end) / 2
        while shown < len(frame_times) and frame_times[shown] <= middle:
            pieces.append(FRAME_TOKEN)
            shown += 1
        if end - start < 1:
            start, end = middle - 0.5, middle + 0.5
        if any(start < t < end for t in frame_times):
            pieces.append(text)
    pieces += [FRAME_TOKEN] * (len(frame_times) - shown)
    return "".join(pieces)


def question_prefix(sample: EvalSample, frame_indices: list[int]) -> str:
    """The text the original writes before the question: the interleaved subtitles, then `question: ` and a new line
    (its `<image>` moved to the start of the turn)."""
    fps = _average_fps(sample.video)
    times = [index / fps for index in frame_indices]
    return f"subtitles:{interleave_subtitles(times, sample.subtitles)}\nquestion: \n"


def _average_fps(path: str) -> float:
    from r1video.eval.frames import video_average_fps

    return video_average_fps(path)

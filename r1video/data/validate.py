"""Check every record of an annotation file, and its video, before anyone spends GPU hours on it."""

import os
from dataclasses import asdict, dataclass, field

from r1video.data.jsonio import iter_records
from r1video.data.lengths import FrameSampling, RecordClips, conversation_length, model_max_length, prompt_length
from r1video.data.paths import PathEscapeError, resolve_video_path
from r1video.data.records import RecordError, check_record
from r1video.data.video import VideoDecodeError, check_video_file, load_video_frames

__all__ = ["Issue", "ValidationReport", "format_report", "validate_file"]

# VideoDecodeError.kind -> issue code
_VIDEO_CODES = {"missing": "video_missing", "no_frames": "video_no_frames"}


@dataclass
class Issue:
    """One problem in one record.

    Attributes:
        line: 1-based line where the record starts.
        field: The field at fault (`"video_filename"`, `"conversations[1]"`, `"record"`, ...).
        code: The kind of problem: `invalid_json`, `missing_field`, `wrong_type`, `bad_conversation`,
            `answer_not_an_option`, `reserved_field`, `prompt_too_long`, `conversation_too_long`, `duplicate`,
            `path_escape`, `video_missing`, `video_corrupt`,
            `video_no_frames`, `no_records`.
        message: A sentence for a human.
    """

    line: int
    field: str
    code: str
    message: str


@dataclass
class ValidationReport:
    """What [`validate_file`] found."""

    file: str
    num_records: int = 0
    num_videos: int = 0
    issues: list[Issue] = field(default_factory=list)
    rotated_videos: dict[str, int] = field(default_factory=dict)  # path -> display rotation (degrees, CCW)

    @property
    def ok(self) -> bool:
        return not self.issues

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for issue in self.issues:
            counts[issue.code] = counts.get(issue.code, 0) + 1
        return counts

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "ok": self.ok,
            "records": self.num_records,
            "videos_checked": self.num_videos,
            "bad_records": len({issue.line for issue in self.issues}),
            "counts": self.counts(),
            "issues": [asdict(issue) for issue in self.issues],
            "rotated_videos": dict(self.rotated_videos),
        }


def validate_file(
    path: str | os.PathLike,
    video_root: str | os.PathLike,
    num_frames: int = 4,
    check_videos: bool = True,
    progress: bool | None = None,
    processor=None,
    question_template: str | None = None,
    full_decode: bool = True,
    sampling: FrameSampling | None = None,
    policy=None,
) -> ValidationReport:
    """Check an annotation file (GRPO JSONL or LLaVA-style SFT JSON) and the videos it points to.

    Checks, per record: the JSON parses; it is an object with the fields of its format, of the right types; a
    conversation alternates human/assistant turns; the solution is one of the question's options (when the question
    has lettered options); the video path stays inside `video_root`; the video exists, `num_frames` frames spread
    over the whole clip decode (so truncated files fail) and, with `full_decode`, every frame decodes without an
    FFmpeg error or a frame FFmpeg flags as damaged (damaged bytes in a clip); the record is not a duplicate (same
    video and question, or same `id`) of an earlier one; with a `processor`, the prompt (and an SFT record's whole
    conversation) fits the model's maximum length, counted with the record's own clip as training samples it
    (`sampling`; read from the video's container, [`RecordClips`]). Each distinct video is decoded once.

    Args:
        path: The annotation file.
        video_root: Directory the video paths are relative to.
        num_frames: Frames decoded per video (first and last included).
        check_videos: Decode the videos (otherwise only paths are checked).
        progress: Show a progress bar; by default only for files of 200 records or more on a terminal.
        processor: The model's processor: prompts, and SFT conversations, longer than its tokenizer's
            `model_max_length` (counted as the model sees them, video tokens included) are reported. Not checked
            without one.
        question_template: The GRPO question template training applies (`{Question}` field), for those lengths.
        full_decode: Decode every frame of each video, as `ffmpeg -i FILE -f null -` does (`False`: only the
            `num_frames` sampled ones, faster on long clips).
        sampling: The frames training samples per clip (the recipe's `num_frames` / `fps` / `max_frames` /
            `autorotate`; default 16 uniform frames), for the video tokens of each record's prompt. A record whose
            video cannot be read is counted without its clip (the family's upper bound), and its message says so.
        policy: The model's family (`VideoPolicy`; Qwen3.5 shares Qwen3-VL's processor); the processor's by default.

    Returns:
        A [`ValidationReport`]; `report.ok` is `True` when nothing is wrong.
    """
    from tqdm.auto import tqdm

    report = ValidationReport(file=str(path))
    records = list(iter_records(path))
    report.num_records = len(records)
    if not records:
        report.issues.append(
            Issue(1, "file", "no_records", f"{path}: no records (the file is empty or an empty list)")
        )
    video_results: dict[str, Issue | None] = {}  # resolved path -> the problem with it (None: fine)
    first_seen: dict[tuple, int] = {}
    limit = model_max_length(processor, policy) if processor is not None else None
    clips = RecordClips(video_root, processor, sampling, policy) if limit is not None else None
    disable = (not progress) if progress is not None else (len(records) < 200 or None)
    for record in tqdm(records, desc=f"validate {os.path.basename(path)}", unit="rec", disable=disable):
        if record.error:
            report.issues.append(Issue(record.line, "record", "invalid_json", record.error))
            continue
        try:
            fmt, video_name, question = check_record(record.value)
        except RecordError as exc:
            report.issues.append(Issue(record.line, exc.field, exc.code, str(exc)))
            continue
        video_field = "video" if fmt == "sft" else "video_filename"
        _check_duplicates(record, fmt, video_name, question, first_seen, report)
        if limit is not None:
            clip, note = clips.clip(record.value)
            counted = note or (
                "its clip's video tokens included" if clip is not None else "video placeholders included"
            )
            tokens = prompt_length(processor, record.value, question_template, policy, clip)
            if tokens > limit:
                where = "conversations" if fmt == "sft" else "problem"
                message = f"prompt is {tokens} tokens ({counted}), over the model's maximum {limit}"
                report.issues.append(Issue(record.line, where, "prompt_too_long", message))
            elif fmt == "sft" and (tokens := conversation_length(processor, record.value, policy, clip)) > limit:
                message = (
                    f"conversation is {tokens} tokens ({counted}), over the model's maximum {limit}: training would "
                    "cut the end of its reply (max_length)"
                )
                report.issues.append(Issue(record.line, "conversations", "conversation_too_long", message))
        try:
            video_path = resolve_video_path(video_root, video_name)
        except PathEscapeError as exc:
            report.issues.append(Issue(record.line, video_field, "path_escape", str(exc)))
            continue
        if video_path not in video_results:
            video_results[video_path] = _check_video(video_path, num_frames, check_videos, full_decode, report)
        problem = video_results[video_path]
        if problem is not None:
            report.issues.append(Issue(record.line, video_field, problem.code, problem.message))
    report.num_videos = len(video_results)
    return report


def _check_duplicates(record, fmt, video_name, question, first_seen, report) -> None:
    keys = [("content", os.path.normpath(video_name.removeprefix("./").lstrip("/")), question.strip())]
    if "id" in record.value:
        keys.append(("id", str(record.value["id"])))
    for key in keys:
        if key in first_seen:
            what = "id" if key[0] == "id" else "video and question"
            message = f"same {what} as the record on line {first_seen[key]}"
            report.issues.append(Issue(record.line, "id" if key[0] == "id" else "record", "duplicate", message))
        else:
            first_seen[key] = record.line


def _check_video(
    video_path: str, num_frames: int, decode: bool, full_decode: bool, report: ValidationReport
) -> Issue | None:
    if not decode:
        if os.path.isfile(video_path) or os.path.isdir(video_path):  # a folder of frame images is a clip too
            return None
        return Issue(0, "", "video_missing", f"{video_path}: missing (no such file)")
    try:
        video = load_video_frames(video_path, num_frames=num_frames)
        if full_decode and not os.path.isdir(video_path):
            check_video_file(video_path)
    except VideoDecodeError as exc:
        return Issue(0, "", _VIDEO_CODES.get(exc.kind, "video_corrupt"), str(exc))
    if video.rotation:
        report.rotated_videos[video_path] = video.rotation
    return None


def format_report(report: ValidationReport, max_issues: int = 50) -> str:
    """A summary table (problem kind, count, first lines) and the first `max_issues` problems, one per line."""
    lines = [f"{report.file}: {report.num_records} records, {report.num_videos} videos checked"]
    if report.rotated_videos:
        rotated = ", ".join(f"{path} ({degrees:+d} deg)" for path, degrees in list(report.rotated_videos.items())[:5])
        count = len(report.rotated_videos)
        lines.append(
            f"note: {count} video{' carries' if count == 1 else 's carry'} a display rotation, turned upright in "
            f"training (autorotate: false keeps them as stored): {rotated}"
        )
    if report.ok:
        lines.append("OK: no problems found")
        return "\n".join(lines)
    counts = report.counts()
    width = max(len("problem"), *(len(code) for code in counts))
    lines.append(f"{'problem':<{width}}  {'count':>5}  first lines")
    for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        first = sorted({issue.line for issue in report.issues if issue.code == code})[:5]
        lines.append(f"{code:<{width}}  {count:>5}  {', '.join(map(str, first))}")
    bad_records = len({issue.line for issue in report.issues})
    lines.append(f"{len(report.issues)} problems in {bad_records} of {report.num_records} records")
    lines.append("")
    for issue in report.issues[:max_issues]:
        lines.append(f"line {issue.line}: [{issue.code}] {issue.message}")
    if len(report.issues) > max_issues:
        lines.append(f"... {len(report.issues) - max_issues} more (use --json to see all)")
    return "\n".join(lines)

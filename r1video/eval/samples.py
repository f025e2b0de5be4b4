"""One evaluation question, as every benchmark loader returns it, and the error for a bad benchmark copy."""

import os
from dataclasses import dataclass

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# How the frames of a sample are read (see `r1video.eval.frames`).
UNIFORM = "uniform"  # a video file, frames at linspace(0, T - 1, N) (the training sampler)
SEGMENTS = "segments"  # a video file, MVBench's segment-centre indices inside an optional time bound
FRAME_DIR = "frame_dir"  # a folder of 1-based `00001.jpg` frames at 3 fps (MVBench's episodic reasoning)
LVB = "lvb"  # a video file, LongVideoBench's `int(duration * fps / N) * i` indices over its annotated duration
READERS = (UNIFORM, SEGMENTS, FRAME_DIR, LVB)


class BenchmarkDataError(ValueError):
    """A benchmark copy that is missing, incomplete or malformed; the message names the file (and record)."""


@dataclass(frozen=True)
class EvalSample:
    """A multiple-choice question about one video.

    Args:
        id (`str`): Unique within the benchmark; the key of the predictions file (resuming skips done ids).
        group (`str`): What the benchmark scores separately: the MVBench / MLVU task, the Video-MME duration.
        question (`str`): The question text, without options.
        choices (`tuple[str, ...]`): Option texts; their letters are A, B, C, ... in this order.
        answer (`str`): The correct letter.
        video (`str`): The video file, or the frame folder for `reader="frame_dir"`.
        reader (`str`): `"uniform"`, `"segments"` or `"frame_dir"`.
        bound (`tuple[float, float]`, *optional*): Start and end in seconds, used by the `segments` and
            `frame_dir` readers.
        source (`str`): The annotation file the sample came from, for error messages.
        duration (`float`, *optional*): The annotated duration in seconds (LongVideoBench's frame rule uses it).
        subtitles (`tuple`): `(start, end, text)` per subtitle line, in seconds of the video, interleaved with the
            frames in the prompt (LongVideoBench, see `r1video.eval.benchmarks.longvideobench`).
    """

    id: str
    group: str
    question: str
    choices: tuple[str, ...]
    answer: str
    video: str
    reader: str = UNIFORM
    bound: tuple[float, float] | None = None
    source: str = ""
    duration: float | None = None
    subtitles: tuple[tuple[float, float, str], ...] = ()

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.choices)]


def require_file(path: str | os.PathLike, what: str) -> str:
    """Return `path` if it is a file, else raise [`BenchmarkDataError`] saying what was expected there."""
    if not os.path.isfile(path):
        raise BenchmarkDataError(f"{path}: missing ({what})")
    return str(path)


def check_videos_exist(samples: list[EvalSample], limit: int = 5) -> None:
    """Raise [`BenchmarkDataError`] naming the first missing videos (a partly downloaded or unzipped copy)."""
    missing = [s for s in samples if not os.path.exists(s.video)]
    if missing:
        names = "\n".join(f"  {s.video}  (from {s.source}, sample {s.id})" for s in missing[:limit])
        more = f"\n  ... and {len(missing) - limit} more" if len(missing) > limit else ""
        raise BenchmarkDataError(f"{len(missing)} of {len(samples)} videos are missing:\n{names}{more}")

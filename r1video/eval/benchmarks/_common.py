"""Helpers shared by the benchmark loaders: reading annotation files and checking records."""

import json
import os

from r1video.data.paths import resolve_video_path
from r1video.eval.samples import LETTERS, BenchmarkDataError, require_file


def read_json_list(path: str | os.PathLike, what: str) -> list:
    """A JSON file holding a list; a missing file or bad JSON raises [`BenchmarkDataError`] naming it."""
    require_file(path, what)
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark, if any, is skipped
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise BenchmarkDataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(data, list):
        raise BenchmarkDataError(f"{path}: expected a JSON list of questions, got {type(data).__name__}")
    return data


def field(record, key: str, kind: type | tuple[type, ...], where: str):
    """`record[key]`, checked to be of `kind`; otherwise a [`BenchmarkDataError`] naming `where` and the field."""
    if not isinstance(record, dict):
        raise BenchmarkDataError(f"{where}: expected an object, got {type(record).__name__}")
    if key not in record:
        raise BenchmarkDataError(f"{where}: missing field {key!r}")
    value = record[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BenchmarkDataError(f"{where}: field {key!r} should be {names}, got {type(value).__name__}")
    return value


def video_path(video_root: str | os.PathLike, name: str, where: str, key: str = "video") -> str:
    """The video `name` of a record resolved inside `video_root` by the training rule ([`resolve_video_path`]).

    Raises:
        BenchmarkDataError: The path is empty or leaves `video_root` (`..`, an absolute path elsewhere); the message
            names `where` and the field `key`.
    """
    try:
        return resolve_video_path(video_root, name)
    except ValueError as exc:
        raise BenchmarkDataError(f"{where}: field {key!r}: {exc}") from exc


def answer_letter_from_text(answer: str, choices: list[str], where: str) -> str:
    """The letter of the candidate equal to `answer` (MVBench and MLVU store the answer text)."""
    if answer not in choices:
        raise BenchmarkDataError(f"{where}: answer {answer!r} is not one of the candidates {choices!r}")
    return LETTERS[choices.index(answer)]


def check_choices(choices, where: str) -> tuple[str, ...]:
    if not choices or not all(isinstance(c, str) for c in choices):
        raise BenchmarkDataError(f"{where}: candidates should be a non-empty list of strings")
    if len(choices) > len(LETTERS):
        raise BenchmarkDataError(f"{where}: {len(choices)} candidates, at most {len(LETTERS)} are supported")
    return tuple(str(c) for c in choices)


def select(names: list[str], wanted: list[str] | None, aliases: dict[str, str], benchmark: str) -> list[str]:
    """Resolve a `--tasks` selection (names or aliases, any case) against the known names."""
    if not wanted:
        return names
    lookup = {_key(n): n for n in names} | {_key(a): n for a, n in aliases.items()}
    unknown = [w for w in wanted if _key(w) not in lookup]
    if unknown:
        raise ValueError(f"unknown {benchmark} task(s) {unknown}; choose from: {', '.join(names)}")
    chosen = {lookup[_key(w)] for w in wanted}
    return [n for n in names if n in chosen]


def _key(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "_")

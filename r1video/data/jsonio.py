"""Read annotation files record by record, keeping the line number of each record for error messages."""

import json
import os
from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["JsonRecord", "iter_records", "read_records"]


class JsonRecord(NamedTuple):
    """One record of an annotation file.

    Attributes:
        line: 1-based line where the record starts.
        value: The parsed JSON value, or `None` when it did not parse.
        error: The JSON error message, or `None`.
    """

    line: int
    value: object
    error: str | None = None


def iter_records(path: str | os.PathLike) -> Iterator[JsonRecord]:
    """Yield the records of a JSON Lines file (one object per line) or a JSON file holding a list.

    The format is read from the content, not the extension: a file whose first non-blank character is `[` is a JSON
    list. A bad JSONL line is yielded as an error and reading goes on; a JSON list stops at its first syntax error.
    A UTF-8 byte-order mark (what some Windows editors write) is skipped.
    """
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from _iter_json_list(text)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield JsonRecord(number, json.loads(line))
        except json.JSONDecodeError as exc:
            yield JsonRecord(number, None, f"invalid JSON: {exc.msg} (column {exc.colno})")


def _iter_json_list(text: str) -> Iterator[JsonRecord]:
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    while True:
        position = _skip_blank(text, position)
        if text.startswith("]", position):
            return
        line = text.count("\n", 0, position) + 1
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            yield JsonRecord(exc.lineno, None, f"invalid JSON: {exc.msg} (column {exc.colno})")
            return
        yield JsonRecord(line, value)
        position = _skip_blank(text, position)
        if text.startswith(",", position):
            position += 1
        elif not text.startswith("]", position):
            line = text.count("\n", 0, position) + 1
            yield JsonRecord(line, None, "invalid JSON: expected ',' or ']' after a list item")
            return


def _skip_blank(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def read_records(path: str | os.PathLike) -> list[JsonRecord]:
    """All records of a file, raising `ValueError` with the file and line number at the first JSON error."""
    records = []
    for record in iter_records(path):
        if record.error:
            raise ValueError(f"{path}:{record.line}: {record.error}")
        records.append(record)
    return records

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
    A UTF-8 byte-order mark (what some Windows editors write) is skipped; a file with a UTF-16 or UTF-32 byte-order
    mark (what Windows PowerShell's `>` writes) is read in that encoding. Bytes that are not UTF-8 are an error of
    their line (a JSON list stops there).
    """
    with open(path, "rb") as f:
        data = f.read()
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            yield JsonRecord(
                1, None, f"not {encoding.upper()} text ({exc.reason} at byte {exc.start}); save it as UTF-8"
            )
            return
        data = text.encode("utf-8")
    data = data.removeprefix(_UTF8_BOM)
    if b"\x00" in data[:4]:  # JSON text never holds a NUL: UTF-16/32 without its byte-order mark
        yield JsonRecord(
            1, None, "not UTF-8 text: NUL bytes (UTF-16 or UTF-32 without a byte-order mark?); save it as UTF-8"
        )
        return
    if data.lstrip().startswith(b"["):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield JsonRecord(data.count(b"\n", 0, exc.start) + 1, None, _not_utf8(data, exc))
            return
        yield from _iter_json_list(text)
        return
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield JsonRecord(number, None, _not_utf8(raw, exc))
            continue
        if not line.strip():
            continue
        try:
            yield JsonRecord(number, json.loads(line))
        except json.JSONDecodeError as exc:
            yield JsonRecord(number, None, f"invalid JSON: {exc.msg} (column {exc.colno})")


_UTF8_BOM = b"\xef\xbb\xbf"
# UTF-32 first: its little-endian mark starts with UTF-16's.
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    """`not UTF-8 text: byte 0x.. at column N; save the file as UTF-8` for a decode error in `data` (one line)."""
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column}; save the file as UTF-8"


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

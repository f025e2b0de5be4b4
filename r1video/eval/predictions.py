"""The predictions file: JSON Lines written one record at a time, so an interrupted run resumes where it stopped.

Each line is flushed and synced to disk before the next sample is generated. A run killed while writing leaves at
most one partial last line, which the next run drops (with a warning) before appending.
"""

import json
import logging
import os

logger = logging.getLogger(__name__)


class PredictionLog:
    """Append-only JSONL of prediction records keyed by `id`.

    Args:
        path: The `.jsonl` file; created (with its folder) on the first append.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._records = self._read()

    def _read(self) -> dict[str, dict]:
        if not os.path.exists(self.path):
            return {}
        with open(self.path, "rb") as f:
            lines = f.read().split(b"\n")
        records, good_bytes = {}, 0
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                good_bytes += len(line) + 1
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if number == len(lines):  # the last line, cut by an interruption (maybe inside a character)
                    logger.warning("%s: dropping an incomplete last line (interrupted run)", self.path)
                    with open(self.path, "r+b") as f:
                        f.truncate(good_bytes)
                    break
                if isinstance(exc, UnicodeDecodeError):
                    column = exc.start + 1
                    reason = f"not UTF-8 text: byte 0x{line[exc.start]:02x} at column {column}"
                    raise ValueError(f"{self.path}:{number}: not a prediction record ({reason})") from None
                raise ValueError(f"{self.path}:{number}: not a prediction record ({exc.msg})") from exc
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                what = "no string 'id'" if isinstance(record, dict) else f"a JSON {type(record).__name__}"
                raise ValueError(
                    f"{self.path}:{number}: not a prediction record ({what}, expected an object with an id)"
                )
            records[record["id"]] = record
            good_bytes += len(line) + 1
        else:
            if lines[-1].strip():  # a complete last record whose newline was never written
                with open(self.path, "ab") as f:
                    f.write(b"\n")
        return records

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self._records

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> dict[str, dict]:
        """All records by id (a copy)."""
        return dict(self._records)

    def append(self, record: dict) -> None:
        """Write one record and make it durable before returning.

        Raises:
            OSError: the write failed (e.g. `ENOSPC`), with this file as its `filename`.
        """
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:  # a failed write (a full disk) names no file by itself
            if exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror, self.path) from exc
        self._records[record["id"]] = record

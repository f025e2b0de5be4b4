"""Load annotation files into `datasets.Dataset`s of TRL conversational examples with a `video` column."""

import os

from r1video.data.jsonio import read_records
from r1video.data.records import RecordError, detect_format, grpo_example, sft_example

__all__ = ["load_grpo_dataset", "load_sft_dataset", "load_video_dataset"]


def load_grpo_dataset(path: str | os.PathLike, video_root: str | os.PathLike, question_template: str | None = None):
    """Load a GRPO file (`problem`, `solution`, `video_filename` per record; JSONL or a JSON list).

    Args:
        path: The annotation file.
        video_root: Directory the `video_filename`s are relative to.
        question_template: Optional format string with a `{Question}` field for the prompt text.

    Returns:
        A `datasets.Dataset` with the record's columns plus `prompt`, `video`, `answer` and `choices`
        (see [`grpo_example`]).

    Raises:
        ValueError: A record is malformed or its video path leaves the root; the message names file and line.
            Run `r1video data validate` to see every problem at once.
    """
    return _load(path, lambda record: grpo_example(record, str(video_root), question_template), "grpo")


def load_sft_dataset(path: str | os.PathLike, video_root: str | os.PathLike):
    """Load a LLaVA-style SFT file (`video`, `conversations`) into `id`, `video`, `messages`, `answer`, `choices`."""
    return _load(path, lambda record: sft_example(record, str(video_root)), "sft")


def load_video_dataset(path: str | os.PathLike, video_root: str | os.PathLike, **kwargs):
    """Load either format, told apart by the first record (`conversations` means SFT)."""
    records = read_records(path)
    if records and isinstance(records[0].value, dict) and detect_format(records[0].value) == "sft":
        return load_sft_dataset(path, video_root)
    return load_grpo_dataset(path, video_root, **kwargs)


def _load(path, to_example, expected_format: str):
    from datasets import Dataset  # heavy import, paid only when loading

    examples = []
    for record in read_records(path):
        if isinstance(record.value, dict) and detect_format(record.value) != expected_format:
            raise ValueError(
                f"{path}:{record.line}: expected a {expected_format} record, got {detect_format(record.value)}"
            )
        try:
            examples.append(to_example(record.value))
        except (RecordError, ValueError) as exc:
            raise ValueError(f"{path}:{record.line}: {exc}") from exc
    if not examples:
        raise ValueError(f"{path}: no records")
    return Dataset.from_list(examples)

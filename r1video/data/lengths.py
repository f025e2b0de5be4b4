"""Prompt lengths in tokens, against the model's maximum: a record too long for the model is named before training.

A prompt is counted as the model sees it, by the model family's policy (`r1video.policies`): rendered with the
processor's chat template and tokenised with each video placeholder expanded to the family's video tokens
(TinyLLaVA-Video: `num_queries`). For a GRPO record that is its prompt (through the question template); for an SFT
record the conversation up to its first reply.

The functions take the policy as `policy`; without one they look it up from the processor (the registry is imported
there, at call time, so that `r1video.data` keeps no import of the families at module level).

An SFT record is also counted whole ([`conversation_length`]): training cuts a longer row at `max_length`, which
would drop the end of its reply (its `<answer>`), so such rows are reported and refused too.
"""

import logging
import os

from r1video.data.jsonio import iter_records
from r1video.data.records import RecordError, check_record, detect_format, prompt_messages, sft_messages

__all__ = [
    "check_conversation_lengths",
    "check_prompt_lengths",
    "conversation_length",
    "model_max_length",
    "prompt_length",
]

logger = logging.getLogger(__name__)


def _policy(processor, policy):
    if policy is not None:
        return policy
    from r1video.policies import policy_for

    return policy_for(processor)


def model_max_length(processor, policy=None) -> int | None:
    """The prompt-length limit: the tokenizer's `model_max_length` (3072 for the released TinyLLaVA-Video models), or
    `None` when it sets no limit."""
    return _policy(processor, policy).max_length(processor)


def prompt_length(processor, record: dict, question_template: str | None = None, policy=None) -> int:
    """Tokens of a checked record's prompt as the model sees it (video placeholders included).

    Args:
        processor: The model family's processor.
        record: A record that passed [`check_record`].
        question_template: The GRPO question template (`{Question}` field), as training uses it.
        policy: The model family (`VideoPolicy`); the processor's by default.
    """
    policy = _policy(processor, policy)
    messages = prompt_messages(record, question_template)
    return policy.prompt_length(processor, policy.render_prompt(processor, messages, add_generation_prompt=True))


def conversation_length(processor, record: dict, policy=None) -> int:
    """Tokens of a checked SFT record's whole conversation, replies included, as the model sees it (counted by the
    family's `prompt_length`)."""
    policy = _policy(processor, policy)
    text = policy.render_prompt(processor, sft_messages(record), add_generation_prompt=False)
    return policy.prompt_length(processor, text)


def check_conversation_lengths(
    path: str | os.PathLike, processor, max_length: int | None, max_listed: int = 5, policy=None
) -> None:
    """Refuse an SFT file with conversations longer than `max_length` (the SFT config's), naming the records.

    Training would cut such a row at `max_length` and with it the end of its reply: the model would be taught replies
    without their `<answer>`. Called by `r1video sft` once the processor is loaded, before step 1; malformed records
    are skipped (the loaders and `r1video data validate` report those).

    Raises:
        ValueError: some conversations are too long; the message gives file:line, id, tokens and the limit.
    """
    if max_length is None:
        return
    too_long = []
    for record in iter_records(path):
        try:
            check_record(record.value)
        except RecordError:
            continue
        if detect_format(record.value) != "sft":
            continue
        tokens = conversation_length(processor, record.value, policy)
        if tokens > max_length:
            too_long.append(f"{_where(path, record)}: {tokens}")
    if too_long:
        listed = "\n  ".join(too_long[:max_listed])
        more = f"\n  ... and {len(too_long) - max_listed} more" if len(too_long) > max_listed else ""
        raise ValueError(
            f"{len(too_long)} conversations are longer than max_length={max_length} tokens (video placeholders "
            "included): training would cut the end of their replies. Shorten or drop them, or raise max_length "
            f"(`r1video data validate --model` lists them all):\n  {listed}{more}"
        )


def _where(path, record) -> str:
    record_id = record.value.get("id")
    return f"{path}:{record.line}{f' (id {record_id!r})' if record_id is not None else ''}"


def check_prompt_lengths(
    path: str | os.PathLike,
    processor,
    question_template: str | None = None,
    max_length: int | None = None,
    max_listed: int = 5,
    policy=None,
) -> None:
    """Refuse a data file whose prompts are longer than the model takes, naming the records.

    Called where training prepares its data set (the model and processor loaded), so a too-long question stops the
    run before step 1 with its line and id, instead of a generic tokenizer warning. Malformed records are skipped:
    the loaders and `r1video data validate` report those.

    Args:
        path: The annotation file the data set was loaded from.
        processor: The model's processor.
        question_template: The GRPO question template training applies.
        max_length: The limit; the tokenizer's `model_max_length` by default (no check when it sets none).
        max_listed: Records named in the error.
        policy: The model family (`VideoPolicy`); the processor's by default.

    Raises:
        ValueError: Some prompts are too long; the message gives file:line, id, tokens and the limit.
    """
    policy = _policy(processor, policy)
    limit = max_length if max_length is not None else model_max_length(processor, policy)
    if limit is None:
        logger.warning("%s: the tokenizer sets no maximum length; prompt lengths are not checked", path)
        return
    too_long = []
    for record in iter_records(path):
        try:
            check_record(record.value)
        except RecordError:
            continue
        tokens = prompt_length(processor, record.value, question_template, policy)
        if tokens > limit:
            too_long.append(f"{_where(path, record)}: {tokens}")
    if too_long:
        listed = "\n  ".join(too_long[:max_listed])
        more = f"\n  ... and {len(too_long) - max_listed} more" if len(too_long) > max_listed else ""
        raise ValueError(
            f"{len(too_long)} prompts are longer than the model's maximum of {limit} tokens (video placeholders "
            f"included); shorten or drop them (`r1video data validate --model` lists them all):\n  {listed}{more}"
        )

"""Turn annotation records into training examples: TRL conversational prompts with a video part.

Two input formats:

- GRPO (`nextqa_0-30s.jsonl`): `{"problem": str, "solution": str, "video_filename": str, ...}`; other keys pass
  through (TRL hands every dataset column to the reward functions), except the names r1video fills itself
  ([`FILLED_COLUMNS`]) or TRL passes itself ([`RESERVED_COLUMNS`]): a record with one is refused.
- LLaVA-style SFT (`nextqa-coldstart-16.json`, LLaVA-Video-178K): `{"id", "video", "conversations": [{"from":
  "human", "value": "<image>\\n..."}, {"from": "gpt", "value": "..."}, ...]}`; `user`/`assistant` roles, `role`/
  `content` keys and a `<video>` placeholder are accepted too.

Both become a `video` column (the resolved path) and chat messages in which one user turn carries a
`{"type": "video"}` part. The placeholder that marks the clip is the one a turn starts (or ends) with, as LLaVA data
writes it (`"<image>\\n..."`): it is removed from the text, since the chat template puts it back, and its turn gets
the video (the first human turn when no turn has one). Any other `<image>`/`<video>` inside a question is text and
stays (`"What does the <video> tag do?"`). A record whose turns mark two clips is refused.
"""

import re

from r1video.data.paths import resolve_video_path
from r1video.model.templates import split_marker
from rewards.parsing import extract_answer

__all__ = [
    "RecordError",
    "answer_letter",
    "check_record",
    "detect_format",
    "grpo_example",
    "parse_choices",
    "prompt_messages",
    "sft_example",
    "sft_messages",
]

# Names TRL 1.16's `GRPOTrainer._calculate_rewards` itself passes to reward functions (`prompts`, `completions`,
# `completion_ids` as arguments; `trainer_state`, `log_extra`, `log_metric`, `environments` added to the column
# keywords) or drops from the columns (`completion`). A record column with one of these names would collide with
# TRL's argument at the first reward call, or never reach the rewards.
RESERVED_COLUMNS = (
    "prompts",
    "completions",
    "completion_ids",
    "completion",
    "trainer_state",
    "log_extra",
    "log_metric",
    "environments",
)
# Columns r1video fills in each example itself (see `grpo_example` / `sft_example`). A record holding one would have its
# value silently replaced (and a reward plugin reading it would get r1video's), so such a record is refused; the user
# renames the column. An SFT record's `video` is its input, not a collision.
FILLED_COLUMNS = {
    "prompt": "the chat prompt built from `problem`",
    "video": "the clip path resolved from `video_filename`",
    "answer": "the solution's option letter",
    "choices": "the options parsed from the question",
    "messages": "the chat built from `conversations`",
}
_FILLED = {"grpo": ("prompt", "video", "answer", "choices"), "sft": ("messages", "answer", "choices")}
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
# `A. text`, `A) text`, `(A) text`, one option per line.
_CHOICE_LINE = re.compile(r"^\s*(?:\(([A-Z])\)|([A-Z])[.)])\s*(.+?)\s*$")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_LEADING_LETTER = re.compile(r"^\(?([A-Z])\)?(?:[.):]|$)")


class RecordError(ValueError):
    """A record that cannot become an example.

    Args:
        field: The offending field (`"problem"`, `"conversations[1].value"`, ...).
        message: What is wrong.
        code: A short machine-readable kind: `missing_field`, `wrong_type`, `bad_conversation`,
            `answer_not_an_option`, `reserved_field`.
    """

    def __init__(self, field: str, message: str, code: str = "bad_field"):
        self.field = field
        self.code = code
        super().__init__(f"{field}: {message}")


def parse_choices(text: str) -> list[dict[str, str]]:
    """The lettered options of a multiple-choice question, one per line: `A. x`, `A) x` or `(A) x`.

    Only a run of consecutive letters starting at `A` counts, so a stray line like `I) ...` is not an option.

    Returns:
        `[{"letter": "A", "text": "x"}, ...]`, empty when the question has fewer than two options.
    """
    choices: list[dict[str, str]] = []
    for line in text.splitlines():
        match = _CHOICE_LINE.match(line)
        if not match:
            continue
        letter = match.group(1) or match.group(2)
        if letter == "A":
            choices = []
        if letter == chr(ord("A") + len(choices)):
            choices.append({"letter": letter, "text": match.group(3)})
    return choices if len(choices) >= 2 else []


def question_stem(text: str) -> str:
    """The question without its option lines."""
    return "\n".join(line for line in text.splitlines() if not _CHOICE_LINE.match(line)).strip()


def answer_letter(solution: str) -> str | None:
    """The option letter of a solution: `"<answer>C</answer>"`, `"C"`, `"(C)"` or `"C. pick up"` → `"C"`."""
    match = _ANSWER_TAG.search(solution)
    inner = (match.group(1) if match else solution).strip()
    letter = _LEADING_LETTER.match(inner)
    return letter.group(1) if letter else None


def detect_format(record: dict) -> str:
    """`"sft"` for a record with `conversations`, else `"grpo"`."""
    return "sft" if "conversations" in record else "grpo"


def _require_str(record: dict, field: str) -> str:
    if field not in record:
        raise RecordError(field, "missing", "missing_field")
    value = record[field]
    if not isinstance(value, str):
        raise RecordError(field, f"expected a string, got {type(value).__name__}", "wrong_type")
    if not value.strip():
        raise RecordError(field, "empty", "wrong_type")
    return value


def _check_answer(question: str, solution: str, field: str) -> None:
    choices = parse_choices(question)
    if not choices:
        return  # open-ended question: nothing to check against
    letter = answer_letter(solution)
    answer_text = _ANSWER_TAG.search(solution)
    answer_text = (answer_text.group(1) if answer_text else solution).strip().lower()
    if letter in {c["letter"] for c in choices} or answer_text in {c["text"].lower() for c in choices}:
        return
    options = ", ".join(c["letter"] for c in choices)
    raise RecordError(
        field, f"answer {solution.strip()!r} is not one of the options {options}", "answer_not_an_option"
    )


def _video_turn(pairs: list[tuple[str, str]]) -> int:
    """Index of the turn that carries the clip: the human turn holding the marker, else the first human turn.

    Raises:
        RecordError: more than one turn marks a clip (a record has one video).
    """
    marked = [i for i, (role, text) in enumerate(pairs) if role == "user" and split_marker(text)[1]]
    if len(marked) > 1:
        raise RecordError(
            f"conversations[{marked[1]}]",
            f"a second video placeholder (turn {marked[0]} already marks the clip); a record has one video",
            "bad_conversation",
        )
    return marked[0] if marked else next(i for i, (role, _) in enumerate(pairs) if role == "user")


def _video_prompt(text: str) -> dict:
    return {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}


def _text_message(role: str, text: str) -> dict:
    return {"role": role, "content": [{"type": "text", "text": text}]}


def _conversation(record: dict) -> list[tuple[str, str]]:
    """Check `conversations` and return `(role, text)` pairs with normalised roles."""
    turns = record.get("conversations")
    if turns is None:
        raise RecordError("conversations", "missing", "missing_field")
    if not isinstance(turns, list) or not turns:
        raise RecordError("conversations", "expected a non-empty list of turns", "wrong_type")
    pairs = []
    for i, turn in enumerate(turns):
        field = f"conversations[{i}]"
        if not isinstance(turn, dict):
            raise RecordError(field, f"expected an object, got {type(turn).__name__}", "wrong_type")
        role = turn.get("from", turn.get("role"))
        text = turn.get("value", turn.get("content"))
        if role not in ROLES:
            raise RecordError(
                field, f"unknown speaker {role!r} (expected human/gpt or user/assistant)", "bad_conversation"
            )
        if not isinstance(text, str):
            raise RecordError(field, f"expected a string value, got {type(text).__name__}", "wrong_type")
        pairs.append((ROLES[role], text))
    speakers = [role for role, _ in pairs if role != "system"]
    if not speakers or speakers[0] != "user" or speakers[-1] != "assistant":
        raise RecordError(
            "conversations", "must start with a human turn and end with an assistant turn", "bad_conversation"
        )
    if any(a == b for a, b in zip(speakers, speakers[1:], strict=False)):
        raise RecordError("conversations", "human and assistant turns must alternate", "bad_conversation")
    return pairs


def check_record(record: object) -> tuple[str, str, str]:
    """Check a record's fields without touching the disk.

    Returns:
        `(format, video_name, question)`: `"grpo"` or `"sft"`, the stored video path and the first question
        (used to find duplicates).

    Raises:
        RecordError: the first problem found.
    """
    if not isinstance(record, dict):
        raise RecordError("record", f"expected a JSON object, got {type(record).__name__}", "wrong_type")
    filled = [name for name in _FILLED[detect_format(record)] if name in record]
    if filled:
        raise RecordError(
            filled[0],
            f"r1video fills this column itself ({FILLED_COLUMNS[filled[0]]}), which would replace your values; "
            f"rename it (e.g. to 'my_{filled[0]}')",
            "reserved_field",
        )
    if detect_format(record) == "sft":
        pairs = _conversation(record)
        _video_turn(pairs)
        video = _require_str(record, "video")
        # The first question carries the options; the reply right after it must pick one.
        asked = next(i for i, (role, _) in enumerate(pairs) if role == "user")
        _check_answer(pairs[asked][1], pairs[asked + 1][1], f"conversations[{asked + 1}]")
        question = pairs[asked][1]
        return "sft", video, question
    reserved = [name for name in RESERVED_COLUMNS if name in record]
    if reserved:
        raise RecordError(
            reserved[0],
            "this column name is an argument TRL passes to reward functions itself "
            f"({', '.join(RESERVED_COLUMNS)}); rename it",
            "reserved_field",
        )
    problem = _require_str(record, "problem")
    solution = _require_str(record, "solution")
    if not extract_answer(solution).text:
        # Every reward of such a row is None: its steps would train nothing.
        raise RecordError("solution", f"empty gold answer {solution.strip()!r}", "empty_answer")
    video = _require_str(record, "video_filename")
    _check_answer(problem, solution, "solution")
    return "grpo", video, problem


def grpo_example(record: dict, video_root: str, question_template: str | None = None) -> dict:
    """A GRPO record as a TRL conversational-prompt example.

    Args:
        record: `{"problem", "solution", "video_filename", ...}`.
        video_root: Directory the video paths are relative to.
        question_template: Optional format string with a `{Question}` field for the prompt text, e.g. the R1
            reasoning instruction; by default the problem text is used as it is.

    Returns:
        The record's own fields plus `prompt` (one user message: a video part and the question), `video` (resolved
        path), `answer` (the solution's option letter, or `None`) and `choices` (parsed options).
    """
    check_record(record)
    return {
        **record,
        "prompt": prompt_messages(record, question_template),
        "video": resolve_video_path(video_root, record["video_filename"]),
        "answer": answer_letter(record["solution"]),
        "choices": parse_choices(record["problem"]),
    }


def sft_example(record: dict, video_root: str) -> dict:
    """A LLaVA-style SFT record as a TRL conversational example.

    Returns:
        `{"id", "video", "messages", "answer", "choices"}`: `messages` is the whole conversation, the turn that marks the
        clip (by default the first human turn) carrying the video part; `answer` is the option letter of the reply to the first question (or `None`),
        `choices` the options parsed from that question.
    """
    check_record(record)
    messages = sft_messages(record)
    asked = next(i for i, m in enumerate(messages) if m["role"] == "user")
    question = next(part["text"] for part in messages[asked]["content"] if part["type"] == "text")
    return {
        "id": str(record.get("id", "")),
        "video": resolve_video_path(video_root, record["video"]),
        "messages": messages,
        "answer": answer_letter(messages[asked + 1]["content"][0]["text"]),
        "choices": parse_choices(question),
    }


def sft_messages(record: dict) -> list[dict]:
    """The whole conversation of a checked SFT record as TRL messages (the clip's turn carrying the video part)."""
    pairs = _conversation(record)
    video_turn = _video_turn(pairs)
    messages = []
    for i, (role, text) in enumerate(pairs):
        if i == video_turn:
            messages.append(_video_prompt(split_marker(text)[0].strip()))
        else:
            messages.append(_text_message(role, text))  # later turns keep their whitespace, as the original
    return messages


def prompt_messages(record: dict, question_template: str | None = None) -> list[dict]:
    """The messages a model is prompted with for a checked record (no disk access).

    GRPO: one user message, the video part and the problem (its marker placeholder removed, then put through
    `question_template`). SFT: the conversation up to its first assistant reply.
    """
    if detect_format(record) == "sft":
        messages = sft_messages(record)
        return messages[: next(i for i, m in enumerate(messages) if m["role"] == "assistant")]
    problem = split_marker(record["problem"])[0]
    return [_video_prompt(question_template.format(Question=problem) if question_template else problem)]

"""Answer extraction shared by the rewards and the evaluation code.

Everything here works on decoded completion text: a plain string, or TRL's conversational form (a list of messages
whose last one holds the completion).
"""

import re
from typing import NamedTuple

DEFAULT_LETTERS = "ABCDEFGHIJ"

_THINK_ANSWER = re.compile(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
# "C", "c.", "C)", "(C)", "C. text", "C: text", "C" then a new line; a letter followed by a word ("A dog") is not one.
_LEADING_LETTER = re.compile(r"\(?([A-Za-z])(?:\)|[.:](?=\s|$)|$|(?=\n))")
# "Option C", "the answer is (c)", "Answer: C." and, upper case only, "Option C is right".
_NAMED_PREFIX = re.compile(r"(?:the\s+)?(?:correct\s+)?(?:option|answer|choice)(?:\s+is)?\s*[:\-]?\s*", re.IGNORECASE)
_NAMED_UPPER = re.compile(r"\(?([A-Z])\b")
_PAREN_LETTER = re.compile(r"\(([A-Z])\)")


class Answer(NamedTuple):
    """What [`extract_answer`] found in a completion.

    Args:
        text (`str` or `None`):
            The stripped content of the first `<answer>…</answer>`, or the whole stripped completion when it has no
            answer tags (`None` instead when tags are required). An empty `<answer></answer>` gives `""`.
        letter (`str` or `None`):
            The upper-case option letter read from `text`, or `None` when `text` names no option.
    """

    text: str | None
    letter: str | None


class ThinkAnswer(NamedTuple):
    """The two parts of a completion in the strict format: stripped think content and stripped answer content."""

    think: str
    answer: str


def completion_text(completion: str | list[dict]) -> str:
    """Returns the text of one completion, stripped.

    Args:
        completion (`str` or `list[dict]`):
            A decoded string, or conversational messages such as `[{"role": "assistant", "content": "..."}]`; the
            content of the last message is used, and a content given as parts (`[{"type": "text", "text": ...}]`) is
            joined.

    Returns:
        `str`: the completion text with surrounding whitespace removed.
    """
    if isinstance(completion, str):
        return completion.strip()
    if not completion:
        return ""
    content = completion[-1].get("content") or ""
    if not isinstance(content, str):
        content = "".join(part.get("text", "") for part in content if part.get("type", "text") == "text")
    return content.strip()


def parse_think_answer(completion: str | list[dict]) -> ThinkAnswer | None:
    """Splits a completion in the strict `<think>…</think><answer>…</answer>` format.

    The format holds when, after stripping, the whole text is one think block followed (whitespace allowed) by one
    answer block, and each of the four tags occurs exactly once. This is TinyLLaVA-Video-R1's rule.

    Args:
        completion (`str` or `list[dict]`):
            One completion, as accepted by [`completion_text`].

    Returns:
        [`ThinkAnswer`] or `None`: the stripped parts, or `None` when the format does not hold.
    """
    text = completion_text(completion)
    match = _THINK_ANSWER.fullmatch(text)
    if match is None or any(text.count(tag) != 1 for tag in _TAGS):
        return None
    return ThinkAnswer(think=match.group(1).strip(), answer=match.group(2).strip())


def extract_answer(
    completion: str | list[dict],
    *,
    letters: str = DEFAULT_LETTERS,
    first_char: bool = False,
    require_tags: bool = False,
) -> Answer:
    """Extracts the answer, and the option letter if there is one, from a completion.

    The answer text is the content of the first `<answer>…</answer>` (it may span several lines). Without answer tags
    it is the whole completion, as in TinyLLaVA-Video-R1's accuracy reward, unless `require_tags` is set, as its
    evaluation does. The option letter is read from the answer text by the first rule that applies:

    1. with `first_char=True` only, the original rule: the first character, if it is one of `letters` (any case);
       otherwise the rules below;
    2. a leading letter: `C`, `c`, `C.`, `(C)`, `C)`, `C. pick up the cup`, `C: …`;
    3. a named letter: `Option C`, `Answer: C`, `The answer is (C)`;
    4. a bracketed upper-case letter anywhere, `… so it is (C) …`.

    Rules 2 to 4 give no letter when the answer also brackets another option, as in `(A) or (B)`.

    There is no random fallback: when nothing matches, `letter` is `None` and the caller decides.

    Args:
        completion (`str` or `list[dict]`):
            One completion, as accepted by [`completion_text`].
        letters (`str`, *optional*, defaults to `"ABCDEFGHIJ"`):
            The option letters that count, upper case.
        first_char (`bool`, *optional*, defaults to `False`):
            Apply the original first-character rule before the others. It also reads "Because…" as option B.
        require_tags (`bool`, *optional*, defaults to `False`):
            Return `Answer(None, None)` when the completion has no `<answer>…</answer>`.

    Returns:
        [`Answer`]: the answer text and the option letter (each possibly `None`).

    Example:
    ```python
    >>> extract_answer("<think>The cup moves.</think><answer>(C) pick up</answer>")
    Answer(text='(C) pick up', letter='C')
    >>> extract_answer("Option b", letters="ABCD")
    Answer(text='Option b', letter='B')
    ```
    """
    text = completion_text(completion)
    match = _ANSWER.search(text)
    if match is not None:
        text = match.group(1).strip()
    elif require_tags:
        return Answer(text=None, letter=None)
    return Answer(text=text, letter=_option_letter(text, letters.upper(), first_char))


def _option_letter(text: str, letters: str, first_char: bool) -> str | None:
    if not text:
        return None
    if first_char and text[0].upper() in letters:
        return text[0].upper()
    candidates = [_LEADING_LETTER.match(text)]
    prefix = _NAMED_PREFIX.match(text)
    if prefix is not None and prefix.end() > 0:
        rest = text[prefix.end() :]
        candidates += [_LEADING_LETTER.match(rest), _NAMED_UPPER.match(rest)]
    bracketed = {letter for letter in _PAREN_LETTER.findall(text) if letter in letters}
    for match in candidates:
        if match is not None and match.group(1).upper() in letters:
            letter = match.group(1).upper()
            # "(A) or (B)" names two options: a hedge is no answer.
            return letter if bracketed <= {letter} else None
    return bracketed.pop() if len(bracketed) == 1 else None

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

# Wrappers that models put around an answer: markdown emphasis and code, LaTeX maths and boxes, square brackets.
_LATEX_GROUP = re.compile(r"\\(?:boxed|text|textbf|mathbf|mathrm|fbox)\s*\{([^{}]*)\}")
_LATEX_DELIMITERS = re.compile(r"\\[()\[\]]")
_EMPHASIS = re.compile(r"[*`$]+")
_SQUARE_LETTER = re.compile(r"\[\s*([A-Za-z])\s*\]")
_STRAY_TAG = re.compile(r"</?(?:answer|think)>")
# "C", "c.", "C)", "(C)", "C. text", "C: text", "C, …", "C - text", "C" then a new line; a letter followed by a word
# ("A dog") is not.
_LEADING_LETTER = re.compile(r"\(?([A-Za-z])(?:\)|[.:,](?=\s|$)|$|(?=\n)|(?=\s+[-–—]\s))")
# "Option C", "the answer is (c)", "Answer: C.", "Final answer: C" and, upper case only, "Option C is right".
_NAMED_PREFIX = re.compile(
    r"(?:the\s+|my\s+)?(?:final\s+|correct\s+)?(?:option|answer|choice)(?:\s+is)?\s*[:\-]?\s*", re.IGNORECASE
)
_NAMED_UPPER = re.compile(r"\(?([A-Z])\b")
_PAREN_LETTER = re.compile(r"\(([A-Za-z])\)")
# Option mentions, for hedges: "(A)", an upper-case letter standing alone before punctuation, a line end, "or" or
# "and" ("A.", "B)", "C:", "A or"), and one after "or", "and", "/", "," or "&" ("or C") unless a word follows
# ("C, I think").
_MENTIONS = (
    _PAREN_LETTER,
    re.compile(r"(?<![A-Za-z0-9'])([A-Z])(?=[.):,;/]|[ \t]*$|[ \t]*\n|\s+(?:or|and)\b|\s+[-–—]\s)", re.MULTILINE),
    re.compile(r"(?:\bor|\band|[/,&])\s+\(?([A-Z])(?![A-Za-z0-9])(?!\s+(?!or\b|and\b)[a-z])"),
)


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
    completion: str | list[dict], *, letters: str = DEFAULT_LETTERS, require_tags: bool = False
) -> Answer:
    r"""Reads the answer, and the option letter if there is one, from a completion: the one answer reader.

    The rewards, `r1video eval`, the lmms-eval adapter and the demo all read answers with this function.

    The answer text is the stripped content of the first `<answer>…</answer>` (it may span several lines). Without
    answer tags it is the whole completion, as in TinyLLaVA-Video-R1's accuracy reward, unless `require_tags` is set.
    The option letter is read from the answer text, after unwrapping markdown and LaTeX (`**C**`, `*C*`, `` `C` ``,
    `$C$`, `\boxed{C}`, `\text{C}`, `[C]` read as `C`; stray `<answer>`/`<think>` tags are dropped), by the first
    rule that applies:

    1. a hedge gives no letter: an answer that names two or more options (`A or B`, `A. or B.`, `(A) or (B)`,
       `A) red B) blue`, `A: red, B: blue`, an echoed option list `A. red\nB. blue`);
    2. a leading letter, either case: `C`, `c`, `C.`, `(C)`, `C)`, `C. pick up the cup`, `C: …`, `C, …`, `C - …`,
       `(b)`;
    3. a named letter: `Option C`, `Answer: C`, `The answer is (c)`, `Final answer: C`, `Option C is right`;
    4. a bracketed letter anywhere, either case: `… so it is (C) …`.

    A letter followed by a word (`A dog`, `Because`) is not an option. There is no random fallback: when nothing
    matches, `letter` is `None` and the caller decides. TinyLLaVA-Video-R1's own rules, quirks included, are
    [`rewards.original.original_accuracy`] (training) and `r1video.eval.scoring.original_choice` (evaluation).

    Args:
        completion (`str` or `list[dict]`):
            One completion, as accepted by [`completion_text`].
        letters (`str`, *optional*, defaults to `"ABCDEFGHIJ"`):
            The option letters that count, upper case.
        require_tags (`bool`, *optional*, defaults to `False`):
            Return `Answer(None, None)` when the completion has no `<answer>…</answer>`.

    Returns:
        [`Answer`]: the answer text and the option letter (each possibly `None`).

    Example:
    ```python
    >>> extract_answer("<think>The cup moves.</think><answer>**C. pick up**</answer>")
    Answer(text='**C. pick up**', letter='C')
    >>> extract_answer("<answer>A or B</answer>")
    Answer(text='A or B', letter=None)
    ```
    """
    text = completion_text(completion)
    match = _ANSWER.search(text)
    if match is not None:
        text = match.group(1).strip()
    elif require_tags:
        return Answer(text=None, letter=None)
    return Answer(text=text, letter=option_letter(text, letters.upper()))


def unwrap(text: str) -> str:
    r"""Removes markdown and LaTeX wrappers and stray think/answer tags: `"**\boxed{(c)}**"` → `"(c)"`.

    `[X]` becomes `(X)`, so square brackets read as round ones.
    """
    text = _STRAY_TAG.sub(" ", text)
    previous = None
    while previous != text:
        previous, text = text, _LATEX_GROUP.sub(r"\1", text)
    text = _EMPHASIS.sub("", _LATEX_DELIMITERS.sub("", text))
    return _SQUARE_LETTER.sub(r"(\1)", text).strip()


def option_letter(text: str, letters: str = DEFAULT_LETTERS) -> str | None:
    """Returns the option letter an answer text names (upper case), or `None`; see [`extract_answer`] for the rules."""
    text = unwrap(text)
    if not text:
        return None
    mentioned = {m.upper() for pattern in _MENTIONS for m in pattern.findall(text)} & set(letters)
    if len(mentioned) > 1:
        return None
    candidates = [_LEADING_LETTER.match(text)]
    prefix = _NAMED_PREFIX.match(text)
    if prefix is not None and prefix.end() > 0:
        rest = text[prefix.end() :]
        candidates += [_LEADING_LETTER.match(rest), _NAMED_UPPER.match(rest)]
    candidates += [_PAREN_LETTER.search(text)]
    for match in candidates:
        if match is not None and match.group(1).upper() in letters:
            return match.group(1).upper()
    return None

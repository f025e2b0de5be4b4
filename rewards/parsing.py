"""Answer extraction shared by the rewards and the evaluation code.

Everything here works on decoded completion text: a plain string, or TRL's conversational form (a list of messages
whose last one holds the completion).
"""

import re
import string
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

DEFAULT_LETTERS = "ABCDEFGHIJ"

_THINK_ANSWER = re.compile(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
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
# Plain final answers anywhere in a reply (`plain=True`): "…, so the correct option is B.", "Final answer: (b)", a last
# line "Answer: B". The letter is upper case or bracketed, and ends its clause (punctuation or a line end follows).
_STATEMENT = re.compile(
    r"(?i:\b(?:final\s+answer|(?:correct|right|best)\s+(?:answer|option|choice)|answer|option|choice)"
    r"(?:\s+(?:is|would\s+be|should\s+be|must\s+be))?)\s*[:=]?\s*"
    r"(?:\(([A-Za-z])\)|([A-Z]))(?=[ \t]*(?:[.,;!]|$))",
    re.MULTILINE,
)
# What may come before an option's text: "The answer is", "so the correct option is:", "Final answer:".
_STATEMENT_PREFIX = re.compile(
    r"(?i:\b(?:final\s+answer|(?:correct|right|best)\s+(?:answer|option|choice)|answer|option|choice)"
    r"(?:\s+(?:is|would\s+be|should\s+be|must\s+be)|\s*:))"
)
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


def completion_content(completion: str | list[dict]) -> str:
    """Returns the text of one completion as the model wrote it (not stripped).

    Args:
        completion (`str` or `list[dict]`):
            A decoded string, or conversational messages such as `[{"role": "assistant", "content": "..."}]` (what
            `GRPOTrainer` passes for conversational data); the content of the last message is used, and a content
            given as parts (`[{"type": "text", "text": ...}]`) is joined.

    Returns:
        `str`: the completion text.
    """
    if isinstance(completion, str):
        return completion
    if not completion:
        return ""
    content = completion[-1].get("content") or ""
    if not isinstance(content, str):
        content = "".join(part.get("text", "") for part in content if part.get("type", "text") == "text")
    return content


def completion_text(completion: str | list[dict]) -> str:
    """Returns the text of one completion ([`completion_content`]), stripped."""
    return completion_content(completion).strip()


def outside_thinking(text: str) -> str:
    """Returns the part of a completion that is not thinking, where an answer may be.

    `<think>…</think>` blocks are removed; everything before a `</think>` left without its opening tag is thinking (a
    prompt may open the block); everything after a `<think>` that is never closed is thinking (a completion cut off
    while thinking): `"<think>Is it (A)?"` → `""`, `"<think>x</think> B"` → `"  B"`.
    """
    text = _THINK_BLOCK.sub(" ", text)
    if "</think>" in text:
        text = text[text.rindex("</think>") + len("</think>") :]
    if "<think>" in text:
        text = text[: text.index("<think>")]
    return text


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
    require_tags: bool = False,
    plain: bool = False,
    choices: Sequence[str] | None = None,
) -> Answer:
    r"""Reads the answer, and the option letter if there is one, from a completion: the one answer reader.

    The rewards, `r1video eval`, the lmms-eval adapter and the demo all read answers with this function.

    Thinking is never the answer: `<think>…</think>` blocks are set aside first, and so is everything after a
    `<think>` that is never closed (a completion cut off while thinking, `<think>Is it (A)?`, has no answer). The
    answer text is then the stripped content of the first `<answer>…</answer>` (it may span several lines). Without a
    complete answer block it is the rest of the completion, up to an `<answer>` that is never closed (a cut-off answer
    is no answer), as in TinyLLaVA-Video-R1's accuracy reward; with `require_tags` there is none. The option letter is
    read from the answer text, after unwrapping markdown and LaTeX (`**C**`, `*C*`, `` `C` ``, `$C$`, `\boxed{C}`,
    `\text{C}`, `[C]` read as `C`; stray tags are dropped), by the first rule that applies:

    0. with `plain` only, a final-answer statement anywhere, the last one: `… so the correct option is B.`,
       `…\nFinal answer: B`, `The answer is (b), since …` (a hedge after it, `… is A or B`, gives no letter);
    1. a hedge gives no letter: an answer that names two or more options (`A or B`, `A. or B.`, `(A) or (B)`,
       `A) red B) blue`, `A: red, B: blue`, an echoed option list `A. red\nB. blue`);
    2. a leading letter, either case: `C`, `c`, `C.`, `(C)`, `C)`, `C. pick up the cup`, `C: …`, `C, …`, `C - …`,
       `(b)`;
    3. a named letter: `Option C`, `Answer: C`, `The answer is (c)`, `Final answer: C`, `Option C is right`;
    4. a bracketed letter anywhere, either case: `… so it is (C) …`;
    5. with `choices` only, an option's text instead of its letter: the answer (or what follows its last `The answer
       is` / `Final answer:`) equals one option's text after normalising case, punctuation and whitespace.

    A letter followed by a word (`A dog`, `Because`) is not an option. There is no random fallback: when nothing
    matches, `letter` is `None` and the caller decides. Training rewards read with the defaults, so they pay only
    an option letter in the answer the prompt asks for; `r1video eval` reads with `plain` and the sample's
    `choices`. TinyLLaVA-Video-R1's own rules, quirks included, are [`rewards.original.original_accuracy`]
    (training) and `r1video.eval.scoring.original_choice` (evaluation).

    Args:
        completion (`str` or `list[dict]`):
            One completion, as accepted by [`completion_text`].
        letters (`str`, *optional*, defaults to `"ABCDEFGHIJ"`):
            The option letters that count, upper case.
        require_tags (`bool`, *optional*, defaults to `False`):
            Return `Answer(None, None)` when the completion has no `<answer>…</answer>` outside its thinking.
        plain (`bool`, *optional*, defaults to `False`):
            Also read a final-answer statement anywhere in the answer (rule 0), as a plain reply writes it.
        choices (`Sequence[str]`, *optional*):
            The option texts, in the order of `letters`; an answer that is one of them names it (rule 5).

    Returns:
        [`Answer`]: the answer text and the option letter (each possibly `None`).

    Example:
    ```python
    >>> extract_answer("<think>The cup moves.</think><answer>**C. pick up**</answer>")
    Answer(text='**C. pick up**', letter='C')
    >>> extract_answer("<answer>A or B</answer>")
    Answer(text='A or B', letter=None)
    >>> extract_answer("<think>Is it (A)?")
    Answer(text='', letter=None)
    >>> extract_answer("The cup rises, so the correct option is B.", plain=True).letter
    'B'
    >>> extract_answer("<answer>pick up the cup</answer>", choices=["put down the cup", "pick up the cup"]).letter
    'B'
    ```
    """
    text = outside_thinking(completion_text(completion))
    match = _ANSWER.search(text)
    if match is not None:
        text = match.group(1).strip()
    elif require_tags:
        return Answer(text=None, letter=None)
    else:
        text = text.partition("<answer>")[0].strip()
    return Answer(text=text, letter=option_letter(text, letters.upper(), plain=plain, choices=choices))


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


def option_letter(
    text: str, letters: str = DEFAULT_LETTERS, *, plain: bool = False, choices: Sequence[str] | None = None
) -> str | None:
    """Returns the option letter an answer text names (upper case), or `None`; see [`extract_answer`] for the rules."""
    text = unwrap(text)
    if not text:
        return None
    if plain:
        stated = _stated_letter(text, letters)
        if stated is not None:
            return stated
    mentioned = _mentioned(text, letters)
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
    if choices:
        return _option_by_text(text, letters, choices)
    return None


def normalize_text(text: str) -> str:
    """Lower-cases, applies NFKC, drops punctuation and collapses whitespace: `" The  Red ball. "` → `"the red ball"`."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(
        " " if unicodedata.category(char).startswith("P") or char in string.punctuation else char for char in text
    )
    return " ".join(text.split())


def _mentioned(text: str, letters: str) -> set[str]:
    return {m.upper() for pattern in _MENTIONS for m in pattern.findall(text)} & set(letters)


def _stated_letter(text: str, letters: str) -> str | None:
    """The letter of the last final-answer statement in `text`, unless the statement hedges (`… is A or B`)."""
    statements = list(_STATEMENT.finditer(text))
    if not statements:
        return None
    last = statements[-1]
    letter = (last.group(1) or last.group(2)).upper()
    if letter not in letters or _mentioned(text[last.start() :], letters) - {letter}:
        return None
    return letter


def _option_by_text(text: str, letters: str, choices: Sequence[str]) -> str | None:
    """The letter of the one option whose text the answer is (or its last `The answer is …` states), else `None`."""
    prefixes = list(_STATEMENT_PREFIX.finditer(text))
    answers = {normalize_text(text)}
    if prefixes:
        answers.add(normalize_text(text[prefixes[-1].end() :]))
    answers.discard("")
    named = {letter for letter, choice in zip(letters, choices, strict=False) if normalize_text(choice) in answers}
    return named.pop() if len(named) == 1 else None

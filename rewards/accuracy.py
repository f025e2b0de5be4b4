"""Answer accuracy: option letters, numbers (through math-verify) and normalised free text."""

import re

from .original import original_accuracy
from .parsing import DEFAULT_LETTERS, extract_answer, normalize_text
from .registry import register_reward

RULES = ("robust", "original")

# Gold answers that go through math-verify: numbers ("12", "-0.5", "1,000", "50%") or LaTeX.
_MATH_GOLD = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?%?|\$.*\$|.*\\(?:frac|boxed|sqrt|pi|cdot).*", re.DOTALL)
# math-verify runs here without its signal-based timeout (that only works on the main thread), so very long answers
# are not parsed at all: they cannot stall a training step.
_MATH_MAX_CHARS = 1000


@register_reward("accuracy")
def get_accuracy_reward(
    letters: str = DEFAULT_LETTERS, require_tags: bool = False, rule: str = "robust", first_char: bool | None = None
) -> "AccuracyReward":
    r"""Builds the accuracy reward: 1.0 when the completion's answer matches the `solution` column, else 0.0.

    With `rule="robust"` (the default), the gold answer is the content of `<answer>…</answer>` in `solution`, or the
    whole stripped `solution`. The completion's answer comes from [`extract_answer`], so the rewards and the
    evaluation read answers the same way. Then, by the kind of gold answer:

    - an option letter (`"C"`, `"(C)"`, `"C. pick up the cup"`): the completion's option letter must equal it;
    - a number or LaTeX (`"12"`, `"0.5"`, `"\frac{1}{2}"`): `math_verify.verify` decides, so `"1/2"` and `"0.5"`
      match, as do `"12"` and `"12 apples"`;
    - anything else: equality after normalising case, unicode form, punctuation and whitespace.

    An empty or missing solution gives `None` (the reward does not apply to that sample).

    With `rule="original"` the score is TinyLLaVA-Video-R1's own `accuracy_reward`, quirks included
    ([`rewards.original.original_accuracy`]: math-verify first, single-line `<answer>` regex, case-sensitive
    first-character match); `letters` and `require_tags` do not apply to it.

    Args:
        letters (`str`, *optional*, defaults to `"ABCDEFGHIJ"`):
            The option letters.
        require_tags (`bool`, *optional*, defaults to `False`):
            Score 0 when the completion has no `<answer>…</answer>`; by default the whole completion is the answer,
            as in TinyLLaVA-Video-R1.
        rule (`str`, *optional*, defaults to `"robust"`):
            `"robust"` (r1video's reader) or `"original"` (TinyLLaVA-Video-R1's rule, bit for bit).
        first_char (*removed*):
            Raises `ValueError`: it never reproduced the original; use `rule="original"`.

    Returns:
        [`AccuracyReward`]: a picklable reward function with `__name__ == "accuracy_reward"` that reads the
        `solution` column.

    Raises:
        `ValueError`: bad `letters`, an unknown `rule`, or `first_char` given.

    Example:
    ```python
    >>> reward = get_accuracy_reward()
    >>> reward(["<think>…</think><answer>C. pick up</answer>", "<answer>B</answer>"], solution=["C", "<answer>C</answer>"])
    [1.0, 0.0]
    ```
    """
    if not letters or not letters.isalpha():
        raise ValueError(f"letters must be a non-empty string of letters, got {letters!r}")
    check_rule(rule, first_char)
    return AccuracyReward(letters=letters.upper(), require_tags=require_tags, rule=rule)


def check_rule(rule: str, first_char: bool | None = None) -> None:
    """Raises `ValueError` for an unknown answer rule, or for the removed `first_char` option."""
    if first_char is not None:
        raise ValueError(
            "the reward option first_char was removed: it never reproduced TinyLLaVA-Video-R1's rule. "
            "Use rule: original for the original accuracy reward, or leave it out for r1video's reader."
        )
    if rule not in RULES:
        raise ValueError(f"unknown answer rule {rule!r}; use one of {RULES}")


class AccuracyReward:
    """Reward function made by [`get_accuracy_reward`]; a class so that it pickles."""

    __name__ = "accuracy_reward"

    def __init__(self, letters: str = DEFAULT_LETTERS, require_tags: bool = False, rule: str = "robust"):
        self.letters = letters
        self.require_tags = require_tags
        self.rule = rule

    def __call__(self, completions: list, solution: list[str], **kwargs) -> list[float | None]:
        return [self.score(completion, gold) for completion, gold in zip(completions, solution, strict=True)]

    def score(self, completion: str | list[dict], solution: str | None) -> float | None:
        """Scores one completion against one solution: 1.0, 0.0, or `None` when there is no solution."""
        gold = extract_answer(solution or "", letters=self.letters)
        if not gold.text:
            return None
        if self.rule == "original":
            return original_accuracy(completion, solution)
        answer = extract_answer(completion, letters=self.letters, require_tags=self.require_tags)
        if not answer.text:
            return 0.0
        if gold.letter is not None:
            return float(answer.letter == gold.letter)
        if normalize_text(answer.text) == normalize_text(gold.text):
            return 1.0
        if _MATH_GOLD.fullmatch(gold.text):
            return float(math_equal(gold.text, answer.text))
        return 0.0


def math_equal(gold: str, answer: str) -> bool:
    """Returns whether math-verify finds `answer` equal to `gold`; safe to call off the main thread."""
    if len(answer) > _MATH_MAX_CHARS:
        return False
    from math_verify import parse, verify  # imported here: it takes half a second and most runs score letters

    gold_parsed = parse(gold, parsing_timeout=None)
    if not gold_parsed:
        return False
    return verify(gold_parsed, parse(answer, parsing_timeout=None), timeout_seconds=None)

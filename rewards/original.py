"""TinyLLaVA-Video-R1's own accuracy rule, quirks included, for runs that must reproduce the paper exactly.

The rule (seed-facts §6.1 and §14, from `R1:tinyllava/train/train.py: accuracy_reward`):

1. math-verify on the whole stripped completion against the whole solution, `verify(parse(completion),
   parse(solution))` in that order; a match scores 1 (letter solutions parse to nothing, so this matters for numbers);
2. otherwise the gold text is the stripped content of the first `<answer>(.*?)</answer>` in the solution, or the
   whole stripped solution, and the answer is the same for the completion; both regexes lack DOTALL, so an answer
   spanning lines is not found and the whole completion is compared instead;
3. the score is 1 when the answer equals the gold text or its first character does, case-sensitively: gold `B`
   scores `B`, `B. text`, `BB` and `Because`, but not `b`, `(B)`, `Option B` or a multi-line answer.

r1video's default reader ([`rewards.parsing.extract_answer`]) fixes these quirks; this module keeps them.
"""

import re

from .parsing import completion_text

_ANSWER_ONE_LINE = re.compile(r"<answer>(.*?)</answer>")


def original_accuracy(completion: str | list[dict], solution: str) -> float:
    """TinyLLaVA-Video-R1's accuracy term for one completion: 1.0 or 0.0 (see the module docstring).

    Args:
        completion (`str` or `list[dict]`):
            The decoded completion (stripped here, as the original stripped it after decoding), or conversational
            messages as accepted by [`completion_text`].
        solution (`str`):
            The dataset's `solution` text, tags included.

    Returns:
        `float`: 1.0 or 0.0.
    """
    from math_verify import parse, verify  # imported here: it takes half a second

    content = completion_text(completion)
    # The original relied on math-verify's signal timeouts, which only work on the main thread; none here.
    answer_parsed = parse(content, parsing_timeout=None)
    if float(verify(answer_parsed, parse(solution, parsing_timeout=None), timeout_seconds=None)):
        return 1.0
    gold = _answer_or_whole(solution)
    answer = _answer_or_whole(content)
    if answer and (answer == gold or gold == answer[0]):
        return 1.0
    return 0.0


def _answer_or_whole(text: str) -> str:
    match = _ANSWER_ONE_LINE.search(text)
    return match.group(1).strip() if match else text.strip()

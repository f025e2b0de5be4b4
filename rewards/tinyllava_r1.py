"""TinyLLaVA-Video-R1's combined reward: accuracy and format multiplied together, not summed."""

import struct

from .accuracy import AccuracyReward, check_rule
from .format import think_length_score
from .parsing import DEFAULT_LETTERS, parse_think_answer
from .registry import register_reward


@register_reward("tinyllava_r1")
def get_tinyllava_r1_reward(
    max_think_chars: int = 1200,
    format_weight: float = 0.5,
    length_weight: float = 0.5,
    zero_reward: float = -2.0,
    letters: str = DEFAULT_LETTERS,
    rule: str = "robust",
    first_char: bool | None = None,
) -> "TinyLLaVAR1Reward":
    r"""Builds the reward of TinyLLaVA-Video-R1 (its trainer's combination, which a weighted sum cannot express).

    $$
    R = acc + (2 \cdot acc - 1) \cdot fmt, \qquad R := -2 \text{ where } R = 0,
    $$

    where $acc \in \{0, 1\}$ is [`get_accuracy_reward`]'s score and, when the strict format of [`format_reward`]
    holds, $fmt = 0.5 + 0.5 \cdot \min(|\text{think}| / 1200, 1)$ (think length in characters), else $fmt = 0$.
    The outcomes fall in four bands:

    | answer | format | reward |
    |---|---|---|
    | right | broken | 1.0 |
    | right | kept | 1.5 to 2.0, more for longer thinking |
    | wrong | kept | -0.5 to -1.0, more negative for longer thinking |
    | wrong | broken | -2.0 |

    The combination is computed in float32, as the original trainer combines its float32 reward columns, so the
    values are those of the original bit for bit. Reads the `solution` column; a sample without a solution (or with
    an empty gold answer) gets `None`. By default
    $acc$ reads answers as [`extract_answer`] does; `rule="original"` makes it TinyLLaVA-Video-R1's own
    `accuracy_reward`, bit for bit ([`rewards.original.original_accuracy`]), as the parity recipe needs.

    Args:
        max_think_chars (`int`, *optional*, defaults to `1200`):
            Think length at which the length bonus stops growing.
        format_weight (`float`, *optional*, defaults to `0.5`):
            Part of `fmt` for keeping the format.
        length_weight (`float`, *optional*, defaults to `0.5`):
            Part of `fmt` for thinking `max_think_chars` characters or more.
        zero_reward (`float`, *optional*, defaults to `-2.0`):
            Value that replaces a combined reward of exactly 0 (wrong answer, broken format).
        letters (`str`, *optional*, defaults to `"ABCDEFGHIJ"`):
            The option letters.
        rule (`str`, *optional*, defaults to `"robust"`):
            `"robust"` (r1video's reader) or `"original"` (the original accuracy rule, quirks included).
        first_char (*removed*):
            Raises `ValueError`; use `rule="original"`.

    Returns:
        [`TinyLLaVAR1Reward`]: a picklable reward function with `__name__ == "tinyllava_r1_reward"`.

    Example:
    ```python
    >>> reward = get_tinyllava_r1_reward()
    >>> reward(["<think></think><answer>A</answer>", "A", "<think></think><answer>B</answer>", "B"], solution=["A"] * 4)
    [1.5, 1.0, -0.5, -2.0]
    ```
    """
    if max_think_chars <= 0:
        raise ValueError(f"max_think_chars must be positive, got {max_think_chars}")
    check_rule(rule, first_char)
    return TinyLLaVAR1Reward(
        accuracy=AccuracyReward(letters=letters.upper(), rule=rule),
        max_think_chars=max_think_chars,
        format_weight=format_weight,
        length_weight=length_weight,
        zero_reward=zero_reward,
    )


class TinyLLaVAR1Reward:
    """Reward function made by [`get_tinyllava_r1_reward`]; a class so that it pickles."""

    __name__ = "tinyllava_r1_reward"

    def __init__(
        self,
        accuracy: AccuracyReward,
        max_think_chars: int,
        format_weight: float,
        length_weight: float,
        zero_reward: float,
    ):
        self.accuracy = accuracy
        self.max_think_chars = max_think_chars
        self.format_weight = format_weight
        self.length_weight = length_weight
        self.zero_reward = zero_reward

    def __call__(self, completions: list, solution: list[str], **kwargs) -> list[float | None]:
        rewards = []
        for completion, gold in zip(completions, solution, strict=True):
            acc = self.accuracy.score(completion, gold)
            if acc is None:
                rewards.append(None)
                continue
            parts = parse_think_answer(completion)
            fmt = 0.0
            if parts is not None:
                fmt = self.format_weight + think_length_score(parts.think, self.max_think_chars, self.length_weight)
            reward = combine_float32(acc, fmt)
            rewards.append(self.zero_reward if reward == 0 else reward)
        return rewards


def combine_float32(acc: float, fmt: float) -> float:
    """`acc + (2·acc − 1)·fmt` with both terms and every operation in float32, as the original's tensors compute it.

    Python computes each operation in float64; rounding that exact-enough result to float32 gives the float32
    operation's result (float64 holds more than twice float32's precision), so no torch is needed here.
    """
    acc, fmt = _float32(acc), _float32(fmt)
    sign = _float32(_float32(2.0 * acc) - 1.0)
    return _float32(acc + _float32(sign * fmt))


def _float32(value: float) -> float:
    """`value` rounded to the nearest float32 (ties to even), as a Python float."""
    return struct.unpack("f", struct.pack("f", value))[0]

"""Format rewards: the strict think-then-answer format and the thinking-length term of TinyLLaVA-Video-R1."""

from .parsing import parse_think_answer
from .registry import register_reward


@register_reward("format")
def format_reward(completions: list, **kwargs) -> list[float]:
    r"""Rewards completions that are exactly `<think>…</think>` then `<answer>…</answer>`.

    $$
    r = \begin{cases} 1 & \text{one think block, then one answer block, each tag exactly once, nothing outside} \\
    0 & \text{otherwise} \end{cases}
    $$

    Whitespace around the completion and between the two blocks is allowed; an empty answer block still counts as
    the format. Reads no dataset column.

    Args:
        completions (`list[str]` or `list[list[dict]]`):
            The completions, as strings or as conversational messages.
        **kwargs:
            Dataset columns and trainer extras, ignored.

    Returns:
        `list[float]`: 1.0 or 0.0 per completion.

    Example:
    ```python
    >>> format_reward(["<think>The ball rolls left.</think> <answer>A</answer>", "<answer>A</answer>"])
    [1.0, 0.0]
    ```
    """
    return [float(parse_think_answer(completion) is not None) for completion in completions]


@register_reward("think_length")
def get_think_length_reward(max_chars: int = 1200, weight: float = 0.5) -> "ThinkLengthReward":
    r"""Builds TinyLLaVA-Video-R1's thinking-length term.

    $$
    r = w \cdot \min\left(\frac{|\text{think}|}{L}, 1\right)
    $$

    where $|\text{think}|$ is the number of characters of the stripped think content, when the strict format of
    [`format_reward`] holds, and $r = 0$ otherwise. With the defaults, `0.5 * format_reward + think_length_reward`
    is the paper's format term `fmt`. Reads no dataset column.

    Args:
        max_chars (`int`, *optional*, defaults to `1200`):
            Think length $L$, in characters, at which the reward stops growing.
        weight (`float`, *optional*, defaults to `0.5`):
            Reward $w$ at or past `max_chars`.

    Returns:
        [`ThinkLengthReward`]: a picklable reward function with `__name__ == "think_length_reward"`.

    Example:
    ```python
    >>> reward = get_think_length_reward(max_chars=10)
    >>> reward(["<think>abcde</think><answer>A</answer>", "<think>abcde</think>"])
    [0.25, 0.0]
    ```
    """
    if max_chars <= 0:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    return ThinkLengthReward(max_chars=max_chars, weight=weight)


class ThinkLengthReward:
    """Reward function made by [`get_think_length_reward`]; a class so that it pickles."""

    __name__ = "think_length_reward"

    def __init__(self, max_chars: int, weight: float):
        self.max_chars = max_chars
        self.weight = weight

    def __call__(self, completions: list, **kwargs) -> list[float]:
        rewards = []
        for completion in completions:
            parts = parse_think_answer(completion)
            rewards.append(0.0 if parts is None else think_length_score(parts.think, self.max_chars, self.weight))
        return rewards


def think_length_score(think: str, max_chars: int, weight: float) -> float:
    """Returns `weight * min(len(think) / max_chars, 1)`, the length of `think` counted in characters."""
    return weight * min(len(think) / max_chars, 1.0)

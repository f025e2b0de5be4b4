"""Reward functions for r1video: pure Python over completion text and dataset columns (no torch model, no trainer).

Rewards follow TRL's contract, `reward(completions, **columns) -> list[float | None]`, and are found by name with
[`get_reward_funcs`]: a registered name, a `"package.module:attr"` path, or an entry point of the group
`r1video.rewards`.
"""

from . import trl_rewards  # noqa: F401  (registers the trl.rewards names)
from .accuracy import AccuracyReward, get_accuracy_reward, math_equal, normalize_text
from .calling import RewardError, SafeReward, call_reward, check_reward
from .format import ThinkLengthReward, format_reward, get_think_length_reward
from .parsing import DEFAULT_LETTERS, Answer, ThinkAnswer, completion_text, extract_answer, parse_think_answer
from .registry import (
    ENTRY_POINT_GROUP,
    BoundReward,
    available_rewards,
    build_reward,
    get_reward_funcs,
    is_reward_function,
    register_reward,
    resolve_reward,
    reward_name,
)
from .tinyllava_r1 import TinyLLaVAR1Reward, get_tinyllava_r1_reward

# Ready-made instances with default arguments, for direct use in Python.
accuracy_reward = get_accuracy_reward()
think_length_reward = get_think_length_reward()
tinyllava_r1_reward = get_tinyllava_r1_reward()

__all__ = [
    "DEFAULT_LETTERS",
    "ENTRY_POINT_GROUP",
    "AccuracyReward",
    "Answer",
    "BoundReward",
    "RewardError",
    "SafeReward",
    "ThinkAnswer",
    "ThinkLengthReward",
    "TinyLLaVAR1Reward",
    "accuracy_reward",
    "available_rewards",
    "build_reward",
    "call_reward",
    "check_reward",
    "completion_text",
    "extract_answer",
    "format_reward",
    "get_accuracy_reward",
    "get_reward_funcs",
    "get_think_length_reward",
    "get_tinyllava_r1_reward",
    "is_reward_function",
    "math_equal",
    "normalize_text",
    "parse_think_answer",
    "register_reward",
    "resolve_reward",
    "reward_name",
    "think_length_reward",
    "tinyllava_r1_reward",
]

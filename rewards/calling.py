"""Calling reward functions the way `GRPOTrainer` does: completions handed over as the docs promise (text, unless
the reward asks for messages), and a broken reward failing loudly, naming itself and the sample."""

import inspect
import logging
import math
from collections.abc import Callable
from numbers import Real

from .parsing import completion_content
from .registry import reward_name

logger = logging.getLogger(__name__)
_SHOWN_SOLUTIONS = 8


class RewardError(RuntimeError):
    """A reward function raised, or returned something that is not one finite number or `None` per completion."""


def call_reward(func: Callable, completions: list, **columns) -> list[float | None]:
    """Calls a reward function with what `GRPOTrainer` gives it, and checks what it returns.

    `GRPOTrainer` passes each completion of conversational data (r1video's prompts are messages) as a list of
    messages, `[{"role": "assistant", "content": text}]`. The reward receives each completion's text instead (the
    last message's content, as generated), unless it asks for messages by annotating its `completions` parameter
    with them (`completions: list[list[dict]]`, as TRL's and open-r1's rewards do; see [`takes_messages`]).

    When the function raises, it is called again one sample at a time to find the first sample that fails; the error
    then names the reward and that sample's index.

    Args:
        func (`Callable`):
            A reward function following TRL's contract.
        completions (`list`):
            The completions, as strings or conversational messages.
        **columns:
            Dataset columns (one value per completion) and trainer extras (`prompts`, `completion_ids`,
            `trainer_state`, ...), passed on unchanged.

    Returns:
        `list[float | None]`: the rewards, one per completion. When every one is `None` (the reward applies to no
        row, e.g. every gold answer is empty, so the step trains nothing from it), a warning names the reward and
        the rows' `solution` values.

    Raises:
        [`RewardError`]: the function raised, returned a list of the wrong length, or a value that is not a finite
            number or `None`.
    """
    name = reward_name(func)
    if not takes_messages(func):
        completions = [completion_content(completion) for completion in completions]
    try:
        rewards = func(completions=completions, **columns)
    except Exception as error:
        index = _first_failing_sample(func, completions, columns)
        where = f"on sample {index}" if index is not None else f"on a batch of {len(completions)}"
        raise RewardError(f"Reward {name!r} raised {where}: {type(error).__name__}: {error}") from error
    if not isinstance(rewards, list | tuple) or len(rewards) != len(completions):
        got = f"{len(rewards)} values" if isinstance(rewards, list | tuple) else repr(rewards)
        raise RewardError(f"Reward {name!r} returned {got} for {len(completions)} completions.")
    for index, value in enumerate(rewards):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise RewardError(
                f"Reward {name!r} returned {value!r} for sample {index}; expected a finite number or None."
            )
    if rewards and all(value is None for value in rewards):
        _warn_all_none(name, columns.get("solution"))
    return list(rewards)


def check_reward(func: Callable, completions: list[str], **columns) -> list[float | None]:
    """Calls a reward on completion texts the way `r1video grpo` calls it in training, to check a plugin.

    Each text becomes the conversational completion `GRPOTrainer` passes (`[{"role": "assistant", "content": text}]`),
    the trainer's own keyword arguments are added (`prompts`, `completion_ids`, `trainer_state`, `log_extra`,
    `log_metric`; any given in `columns` win), and the call goes through [`call_reward`], as [`SafeReward`] does.

    Args:
        func (`Callable`):
            The reward, e.g. from [`get_reward_funcs`].
        completions (`list[str]`):
            Completion texts.
        **columns:
            Dataset columns, one value per completion (`solution=[...]`, `problem=[...]`).

    Returns:
        `list[float | None]`: the rewards, one per completion.

    Raises:
        [`RewardError`]: as [`call_reward`].

    Example:
    ```python
    >>> from rewards import check_reward, get_reward_funcs
    >>> (reward,) = get_reward_funcs(["tinyllava_r1"])
    >>> check_reward(reward, ["<think>It rolls left.</think><answer>A</answer>"], solution=["A"])
    [1.505833387374878]
    ```
    """
    trainer_arguments = {
        "prompts": [[{"role": "user", "content": ""}] for _ in completions],
        "completion_ids": [[] for _ in completions],
        "trainer_state": None,
        "log_extra": lambda column, values: None,
        "log_metric": lambda name, value: None,
    }
    messages = [[{"role": "assistant", "content": text}] for text in completions]
    return call_reward(func, messages, **{**trainer_arguments, **columns})


def takes_messages(func: Callable) -> bool:
    """Whether a reward asks for completions as messages: its `completions` parameter is annotated with `dict`s
    (`list[list[dict[str, str]]]`, or the same as a string annotation). Wrappers with `.func` (`SafeReward`,
    `BoundReward`, `functools.partial`) are looked through."""
    while hasattr(func, "func"):
        func = func.func
    try:
        parameter = inspect.signature(func).parameters.get("completions")
    except (TypeError, ValueError):
        return False
    if parameter is None or parameter.annotation is inspect.Parameter.empty:
        return False
    return "dict" in str(parameter.annotation).lower()


def _warn_all_none(name: str, solutions) -> None:
    if isinstance(solutions, list):
        distinct = list(dict.fromkeys(map(repr, solutions)))
        more = f" and {len(distinct) - _SHOWN_SOLUTIONS} more" if len(distinct) > _SHOWN_SOLUTIONS else ""
        shown = f"; the rows' solutions: {', '.join(distinct[:_SHOWN_SOLUTIONS])}{more}"
    else:
        shown = "; the rows have no 'solution' column"
    logger.warning(
        "Reward %r gave None for every completion of this step, so it trains nothing%s. "
        "Check the data with `r1video data validate`.",
        name,
        shown,
    )


class SafeReward:
    """Wraps a reward function so that every call goes through [`call_reward`] (completions as text unless it asks
    for messages; errors naming the reward); keeps its name and pickles. `r1video grpo` hands the trainer its rewards
    wrapped in this.

    Args:
        func (`Callable`):
            A reward function following TRL's contract.
    """

    def __init__(self, func: Callable):
        self.func = func
        self.__name__ = reward_name(func)

    def __call__(self, completions: list, **columns) -> list[float | None]:
        return call_reward(self.func, completions, **columns)

    def __repr__(self) -> str:
        return f"SafeReward({self.func!r})"


def _first_failing_sample(func: Callable, completions: list, columns: dict) -> int | None:
    size = len(completions)
    for index in range(size):
        # Per-sample columns are sliced; trainer extras (trainer_state, log_metric, ...) are passed as they are.
        sample_columns = {
            key: value[index : index + 1] if isinstance(value, list) and len(value) == size else value
            for key, value in columns.items()
        }
        try:
            func(completions=completions[index : index + 1], **sample_columns)
        except Exception:
            return index
    return None

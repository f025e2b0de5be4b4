"""Temporal contrast (T-GRPO): the parts `VideoGRPOTrainer` uses when `temporal_contrast` is on.

Video-R1 (Feng et al., arXiv 2503.21776, §3.2, and its trainer) samples, next to the G ordered rollouts of a video
prompt, a group of rollouts on the same clip with its frames in a random order. With `p` and `p̃` the accuracies of the
ordered and shuffled groups, every correct ordered rollout gets a bonus `α` when `p ≥ μ·p̃` (α = 0.3, μ = 0.8); the
shuffled rollouts only measure `p̃` and never enter the loss. The bonus is r1video's `temporal` reward column, so TRL
weights, sums, normalises and logs it like any other reward.

The shuffled clip is a permutation of the step's clip at the model family's temporal unit (the policy's
`temporal_units`, `permute_clip`, `permute_encoding`; frames for TinyLLaVA-Video): of its cached encoding too when the
frozen encoder ran once ahead (it sees no extra frame; for TinyLLaVA-Video the per-frame tower features
`[F * tokens, Dv]` in frame blocks, [`permute_frames`]), else of its pixels. Correctness is read by the answer rule of the recipe's accuracy reward ([`answer_judge`]), so the bonus
and the accuracy reward always agree on what counts as correct.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rewards import AccuracyReward, reward_name

TEMPORAL_REWARD = "temporal"
# Rewards whose answer rule the contrast reads when `temporal_contrast_reward` is not set (the recipe's first one).
JUDGED_REWARDS = ("accuracy_reward", "tinyllava_r1_reward")


def frame_permutation(num_frames: int, *, seed: int, step: int, process: int, group: int) -> torch.LongTensor:
    """The frame order of one shuffled clip: a random permutation of `range(num_frames)`, never the identity.

    Drawn from a generator seeded by `(seed, step, process, group)` (numpy's `SeedSequence` mixes them), so a resumed
    run draws the same orders. The identity is redrawn: it would contrast the clip with itself.

    Raises:
        ValueError: `num_frames < 2` (one frame has no order to shuffle).
    """
    if num_frames < 2:
        raise ValueError(f"a clip of {num_frames} frame(s) cannot be shuffled")
    state = np.random.SeedSequence([seed, step, process, group]).generate_state(2, dtype=np.uint64)
    generator = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
    identity = torch.arange(num_frames)
    while True:
        permutation = torch.randperm(num_frames, generator=generator)
        if not torch.equal(permutation, identity):
            return permutation


def permute_frames(clip: torch.Tensor, permutation: torch.LongTensor) -> torch.Tensor:
    """Reorders a clip's frames: `clip` is frame-major, `[F, ...]` pixels or `[F * tokens, Dv]` tower features.

    Rows `f * tokens : (f + 1) * tokens` of the features belong to frame `f`, and move as one block.

    Raises:
        ValueError: the first dimension is not a multiple of the permutation's length.
    """
    frames = len(permutation)
    if clip.shape[0] % frames:
        raise ValueError(f"a clip of first dimension {clip.shape[0]} does not split into {frames} frames")
    return clip.unflatten(0, (frames, -1))[permutation.to(clip.device)].flatten(0, 1)


def answer_judge(reward_funcs: Sequence[Callable], name: str | None = None) -> AccuracyReward:
    """The answer rule of the recipe's accuracy reward, to tell correct rollouts from wrong ones.

    Args:
        reward_funcs: the trainer's reward functions (wrappers with `.func`, such as `SafeReward`, are looked through).
        name: the metric name of the reward to read (`temporal_contrast_reward`); `None` takes the first reward, in
            the recipe's order, named in `JUDGED_REWARDS`.

    Returns:
        The [`AccuracyReward`] itself, or the one a combined reward holds as `.accuracy` (`tinyllava_r1`): its
        `score(completion, solution)` is 1.0 for a correct answer.

    Raises:
        ValueError: no such reward, or it has no answer rule the contrast can read.
    """
    wanted = (name,) if name is not None else JUDGED_REWARDS
    names = [reward_name(func) for func in reward_funcs]
    found = [(candidate, func) for candidate, func in zip(names, reward_funcs, strict=True) if candidate in wanted]
    if not found:
        raise ValueError(
            f"temporal_contrast reads correctness from the reward {' or '.join(map(repr, wanted))}, which is not "
            f"among the reward functions {names}: add it (e.g. reward_funcs: [accuracy]) or set "
            "temporal_contrast_reward"
        )
    candidate, func = found[0]
    while hasattr(func, "func"):  # SafeReward, BoundReward, functools.partial
        func = func.func
    judge = getattr(func, "accuracy", func)
    if not isinstance(judge, AccuracyReward):
        raise ValueError(
            f"the reward {candidate!r} has no answer rule temporal_contrast can read: it needs an AccuracyReward "
            "(the `accuracy` reward) or a reward holding one as `.accuracy` (`tinyllava_r1`)"
        )
    return judge


@dataclass
class ShuffledGroup:
    """The shuffled rollouts of one prompt on one process.

    Attributes:
        group: the prompt's group in the step's gathered rows (rows `group * G : (group + 1) * G`).
        row: a local row of that group (its columns, e.g. `solution`, score the shuffled completions).
        permutation: the frame order of the shuffled clip.
        completions: the decoded shuffled completions.
    """

    group: int
    row: int
    permutation: list[int]
    completions: list[str]


@dataclass
class TemporalBonus:
    """What [`temporal_bonus`] decided for a step's groups (`groups` prompts of `G` rows each).

    Attributes:
        bonus: `[groups * G]`, α or 0 per ordered rollout; NaN where the contrast does not apply (no video, no
            shuffled rollout, no gold answer).
        contrasted: `[groups]` bool, groups with both accuracies.
        granted: `[groups]` bool, contrasted groups where `p >= μ·p̃`.
        ordered_accuracy, shuffled_accuracy: `[groups]`, `p` and `p̃` (NaN where not contrasted).
    """

    bonus: torch.Tensor
    contrasted: torch.Tensor
    granted: torch.Tensor
    ordered_accuracy: torch.Tensor
    shuffled_accuracy: torch.Tensor


def temporal_bonus(
    ordered_correct: torch.Tensor,
    shuffled_correct: torch.Tensor,
    shuffled_count: torch.Tensor,
    group_size: int,
    alpha: float,
    mu: float,
) -> TemporalBonus:
    """Video-R1's temporal reward, per group: `α` for each correct ordered rollout when `p ≥ μ·p̃`, else 0.

    Args:
        ordered_correct: `[groups * G]` float, 1.0 correct, 0.0 wrong, NaN not judged, in TRL's group order.
        shuffled_correct, shuffled_count: `[groups]`, correct and judged shuffled rollouts per group.
        group_size: `G`, the ordered rollouts per prompt.
        alpha, mu: the bonus and the margin.
    """
    grouped = ordered_correct.view(-1, group_size)
    judged = ~torch.isnan(grouped)
    ordered = torch.nanmean(grouped, dim=1)
    shuffled = shuffled_correct / shuffled_count.clamp(min=1)
    contrasted = (shuffled_count > 0) & judged.any(dim=1)
    granted = contrasted & (ordered >= mu * shuffled)
    bonus = alpha * (grouped == 1).float() * granted.unsqueeze(1).float()
    bonus = bonus.masked_fill(~(judged & contrasted.unsqueeze(1)), float("nan"))
    nan = torch.full_like(ordered, float("nan"))
    return TemporalBonus(
        bonus=bonus.flatten(),
        contrasted=contrasted,
        granted=granted,
        ordered_accuracy=torch.where(contrasted, ordered, nan),
        shuffled_accuracy=torch.where(contrasted, shuffled, nan),
    )


class TemporalReward:
    """The `temporal` reward column: TRL calls it like any reward function; `compute(completions, columns)` (the
    trainer's) returns the bonus of the rows."""

    __name__ = TEMPORAL_REWARD

    def __init__(self, compute: Callable[[list, dict], list[float | None]]):
        self.compute = compute

    def __call__(self, completions: list, **columns) -> list[float | None]:
        return self.compute(completions, columns)

"""Reading the chosen option from a completion, and accuracies (micro, macro, per group).

Extraction is shared with training: [`rewards.extract_answer`] with the original evaluation's rules, i.e. the
first character of the `<answer>` content if it is an option letter (any case), otherwise a bracketed or named
letter (`(C)`, `Option C`). With the reason prompt the `<answer>` tag is required, as in the original; with the
option prompt the whole completion is read.

When no letter is found the original guesses uniformly at random (unseeded). Here every prediction records why it
has no letter, and both accuracies are computed: no answer counted wrong (our default headline) and the
original's guess, made reproducible by seeding it with the run seed and the sample id. An empty
`<answer></answer>` is wrong under both, as in the original.

Deviations from the original parser, all small: `rewards` reads an `<answer>` spanning several lines (the original
regex has no DOTALL, so it guessed), accepts `Option C` / `Answer: C` forms, and reads `(A) or (B)` as no answer
(the original took the first listed option).
"""

import random
from dataclasses import dataclass
from typing import NamedTuple

from rewards import extract_answer

NO_ANSWER_POLICIES = ("wrong", "random")

# Why a prediction has (or lacks) a letter.
ANSWERED = "answered"
NO_TAG = "no_tag"  # reason prompt: no <answer>...</answer> at all -> the original guesses
NO_LETTER = "no_letter"  # an answer that names no option -> the original guesses
EMPTY = "empty"  # reason prompt: <answer></answer> -> wrong in the original too
VIDEO_ERROR = "video_error"  # the video could not be decoded; no generation, counted wrong


class Extraction(NamedTuple):
    letter: str | None
    status: str


def extract_prediction(completion: str, letters: str, prompt_type: str) -> Extraction:
    """Read the chosen letter from a completion.

    Args:
        completion: The generated text.
        letters: The sample's option letters (`"ABCD"`).
        prompt_type: `"reason"` requires `<answer>` tags; `"option"` reads the whole completion.
    """
    answer = extract_answer(completion, letters=letters, first_char=True, require_tags=prompt_type == "reason")
    if answer.letter is not None:
        return Extraction(answer.letter, ANSWERED)
    if answer.text is None:
        return Extraction(None, NO_TAG)
    if answer.text == "" and prompt_type == "reason":
        return Extraction(None, EMPTY)
    return Extraction(None, NO_LETTER)


def seeded_guess(seed: int, sample_id: str, letters: str) -> str:
    """The original's random guess, reproducible: the same seed and sample always give the same letter."""
    return random.Random(f"{seed}:{sample_id}").choice(letters)


def is_correct(record: dict, no_answer: str = "wrong", seed: int = 0) -> bool:
    """Whether a prediction record scores, under a no-answer policy (`"wrong"` or `"random"`).

    `record` needs `prediction`, `status`, `answer`, `id` and `num_choices` (see `r1video.eval.runner`).
    """
    if no_answer not in NO_ANSWER_POLICIES:
        raise ValueError(f"unknown no-answer policy {no_answer!r}; use one of {NO_ANSWER_POLICIES}")
    if record["prediction"] is not None:
        return record["prediction"] == record["answer"]
    if no_answer == "random" and record["status"] in (NO_TAG, NO_LETTER):
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: record["num_choices"]]
        return seeded_guess(seed, record["id"], letters) == record["answer"]
    return False


@dataclass(frozen=True)
class GroupScore:
    """Correct answers in one group (a task, a duration)."""

    name: str
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        """Percent correct (0 for an empty group)."""
        return 100.0 * self.correct / self.total if self.total else 0.0


@dataclass(frozen=True)
class Scores:
    """Per-group scores with both averages.

    Attributes:
        groups: One [`GroupScore`] per group, in benchmark order.
        micro: Percent correct over all questions (each question weighs the same).
        macro: Mean of the group accuracies (each group weighs the same; MLVU's "M-Avg").
    """

    groups: list[GroupScore]

    @property
    def correct(self) -> int:
        return sum(g.correct for g in self.groups)

    @property
    def total(self) -> int:
        return sum(g.total for g in self.groups)

    @property
    def micro(self) -> float:
        return 100.0 * self.correct / self.total if self.total else 0.0

    @property
    def macro(self) -> float:
        scored = [g for g in self.groups if g.total]
        return sum(g.accuracy for g in scored) / len(scored) if scored else 0.0


def score_records(records: list[dict], group_order: list[str], no_answer: str = "wrong", seed: int = 0) -> Scores:
    """Group prediction records and count the correct ones.

    Args:
        records: Prediction records (each with `group`, see [`is_correct`] for the rest).
        group_order: Group names in display order; groups with no record are left out.
        no_answer: `"wrong"` or `"random"` (the original's guess, seeded).
        seed: Seed of the guesses.
    """
    counts = {name: [0, 0] for name in group_order}
    for record in records:
        count = counts.setdefault(record["group"], [0, 0])
        count[0] += is_correct(record, no_answer, seed)
        count[1] += 1
    return Scores([GroupScore(name, c, t) for name, (c, t) in counts.items() if t])

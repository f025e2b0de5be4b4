"""Reading the chosen option from a completion, and accuracies (micro, macro, per group).

Two answer-reading protocols (`r1video eval --protocol`):

- `robust` (the default) reads answers with the one reader [`rewards.extract_answer`], as training does, and also
  reads plain final answers: the `<answer>` content (several lines allowed), or the completion outside its thinking
  when it has no tags; wrapped letters (`**C**`, `\\boxed{C}`), `Answer: C`, `Option C`, `C. text` and `(C)` give C;
  so do a final-answer statement anywhere (`…, so the correct option is C.`, a last line `Final answer: C`) and the
  text of option C written instead of its letter; hedges (`A or B`, an echoed option list) and thinking (a reply cut
  off inside `<think>`) give no answer.
- `original` reproduces the original evaluation's parser, quirks included. With the reason prompt,
  TinyLLaVA-Video-R1's `parse_multi_choice_response` (seed-facts §9): the first `<answer>\\s*(.*?)\\s*</answer>`
  without DOTALL; its first character if it is an option letter (either case); otherwise the first option, in letter
  order, written `(X)` or `(x)` in it; otherwise a random guess, as is a completion without a match. An empty answer
  is wrong. With the option prompt, TinyLLaVA-Video's MMMU-style parser ([`original_option_choice`]).

When no letter is found the original guesses uniformly at random (unseeded). Here every prediction records why it
has no letter, and both accuracies are computed: no answer counted wrong and the original's guess, made
reproducible by seeding it with the run seed and the sample id.
"""

import random
import re
from dataclasses import dataclass
from typing import NamedTuple

from rewards import extract_answer

PROTOCOLS = ("robust", "original")
NO_ANSWER_POLICIES = ("wrong", "random")

# Why a prediction has (or lacks) a letter.
ANSWERED = "answered"
NO_TAG = "no_tag"  # no <answer>...</answer> (and, robust, no letter in the whole completion) -> the original guesses
NO_LETTER = "no_letter"  # an answer that names no option -> the original guesses
EMPTY = "empty"  # <answer></answer> -> wrong in the original too
VIDEO_ERROR = "video_error"  # the video could not be decoded; no generation, counted wrong

_ORIGINAL_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>")


class Extraction(NamedTuple):
    letter: str | None
    status: str


def extract_prediction(
    completion: str,
    letters: str,
    protocol: str = "robust",
    prompt: str = "reason",
    option_texts: tuple[str, ...] | list[str] = (),
    choices: tuple[str, ...] | None = None,
) -> Extraction:
    """Read the chosen letter from a completion.

    Args:
        completion: The generated text.
        letters: The sample's option letters (`"ABCD"`).
        protocol: `"robust"` (the one reader, with plain final answers read) or `"original"` (the original
            evaluation's parser).
        prompt: With `original`: `"reason"` reads as TinyLLaVA-Video-R1, `"option"` as TinyLLaVA-Video.
        option_texts: With `original` and `option`: the option texts the original's parser matches (its
            `index2ans`).
        choices: The sample's option texts, in letter order; `robust` reads an option's text written instead of
            its letter.

    Raises:
        ValueError: An unknown protocol.
    """
    if protocol == "original":
        if prompt == "option":
            return original_option_choice(completion, letters, option_texts)
        return original_choice(completion, letters)
    if protocol != "robust":
        raise ValueError(f"unknown answer protocol {protocol!r}; use one of {PROTOCOLS}")
    answer = extract_answer(completion, letters=letters, plain=True, choices=choices)
    if answer.letter is not None:
        return Extraction(answer.letter, ANSWERED)
    tagged = extract_answer(completion, letters=letters, require_tags=True)
    if tagged.text is None:
        return Extraction(None, NO_TAG)
    if tagged.text == "":
        return Extraction(None, EMPTY)
    return Extraction(None, NO_LETTER)


def original_choice(completion: str, letters: str) -> Extraction:
    """TinyLLaVA-Video-R1's evaluation parser, without its random guess (the caller makes it, seeded).

    Returns the letter it reads, or `None` with the reason: `no_tag` and `no_letter` are where the original guessed
    at random, `empty` where it returned `None` (counted wrong).
    """
    match = _ORIGINAL_ANSWER.search(completion)
    if match is None:
        return Extraction(None, NO_TAG)
    answer = match.group(1).strip()
    if not answer:
        return Extraction(None, EMPTY)
    if answer[0] in letters or answer[0] in letters.lower():
        return Extraction(answer[0].upper(), ANSWERED)
    for letter in letters:
        if f"({letter})" in answer or f"({letter.lower()})" in answer:
            return Extraction(letter, ANSWERED)
    return Extraction(None, NO_LETTER)


def original_option_choice(completion: str, letters: str, option_texts) -> Extraction:
    """TinyLLaVA-Video's evaluation parser for the option prompt (MMMU-style, every `eval_*.py` of the original),
    without its random guess (the caller makes it, seeded).

    1. Strip blanks, then each of `, . ! ? ; : '` in turn from both ends; an empty answer is guessed.
    2. A first character that is an option letter (upper case) is the answer.
    3. Otherwise, in `" " + answer + " "`: the letters written `(X)`; if none, the letters written ` X `; if none and
       the answer has more than 5 words, the options whose text it contains (case-insensitive).
    4. One candidate is the answer; several: the one written last (its last occurrence, ties to the first letter);
       none: guessed.

    Returns `no_letter` wherever the original guesses.
    """
    response = completion.strip()
    for char in ",.!?;:'":
        response = response.strip(char)
    if not response:
        return Extraction(None, NO_LETTER)
    if response[0] in letters:
        return Extraction(response[0], ANSWERED)
    response = f" {response} "
    candidates = [letter for letter in letters if f"({letter})" in response]
    marker = "({})" if candidates else " {} "
    if not candidates:
        candidates = [letter for letter in letters if f" {letter} " in response]
    texts = dict(zip(letters, option_texts, strict=False))
    by_text = False
    if not candidates and len(response.split()) > 5:
        candidates = [letter for letter, text in texts.items() if text.lower() in response.lower()]
        by_text = True
    if not candidates:
        return Extraction(None, NO_LETTER)
    if by_text:
        positions = [response.lower().rfind(texts[letter].lower()) for letter in candidates]
    else:
        positions = [response.rfind(marker.format(letter)) for letter in candidates]
    return Extraction(candidates[positions.index(max(positions))], ANSWERED)


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

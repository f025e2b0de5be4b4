"""Prompts per benchmark, answer extraction as the original evaluation reads it, and accuracy arithmetic."""

import pytest

from r1video.eval import (
    EvalSample,
    build_prompt,
    build_question,
    extract_prediction,
    get_benchmark,
    is_correct,
    score_records,
    seeded_guess,
)
from r1video.model.templates import OPTION_INSTRUCTION, QWEN2_BASE_SYSTEM, REASON_INSTRUCTION
from r1video.policies import policy_for

SAMPLE = EvalSample("t/0", "task", "What moves?", ("a cup", "a ball"), "B", "v.mp4")


# The original evaluation scripts' question construction (TinyLLaVA-Video-R1 tinyllava/eval/eval_*.py, seed-facts §9),
# written out; `instruction` is the reason or option line.
def original_mvbench(question, candidates, instruction, paren=False):
    text = f"{question}\n" if paren else f"{question}\nOptions:\n"
    for idx, c in enumerate(candidates):
        text += f"({chr(ord('A') + idx)}) {c}\n" if paren else f"{chr(ord('A') + idx)}. {c}\n"
    return text.rstrip() + "\n" + instruction


def original_mlvu(question, candidates, instruction):
    text = f"{question}\n"
    for idx, c in enumerate(candidates):
        text += f"({chr(ord('A') + idx)}) {c}\n"
    return text.rstrip() + "\n" + instruction


def original_videomme(question, options, instruction, header="\nOptions:\n"):
    return question + header + "\n".join(options) + "\n" + instruction


def original_mmvu(question, choices, instruction):
    return question + "\n" + "\n".join([f"{key}. {value}" for key, value in choices.items()]) + "\n" + instruction


QUESTIONS = [
    ("What moves?", ("a cup", "a ball")),
    ("Is the cube moving? ", ("Yes", "No")),  # the question's trailing space stays
    ("Which one?", ("The red cube", "The blue cube ")),  # MVBench/MLVU drop the last option's trailing space
    (" Leading space?\n", (" a", "b  ", "c\n")),
    ("Count them.", ("1", "2", "3", "4", "5 ")),
]


class TestPrompts:
    @pytest.mark.parametrize(("question", "choices"), QUESTIONS)
    def test_each_benchmark_matches_the_original_construction_byte_for_byte(self, question, choices):
        sample = EvalSample("t/0", "task", question, choices, "A", "v.mp4")
        letters = "ABCDE"[: len(choices)]
        expected = {
            ("mvbench", "reason"): original_mvbench(question, choices, REASON_INSTRUCTION),
            ("mvbench", "option"): original_mvbench(question, choices, OPTION_INSTRUCTION, paren=True),
            ("mlvu", "reason"): original_mlvu(question, choices, REASON_INSTRUCTION),
            ("mlvu", "option"): original_mlvu(question, choices, OPTION_INSTRUCTION),
            ("videomme", "reason"): original_videomme(
                question, [f"{x}. {c}" for x, c in zip(letters, choices, strict=True)], REASON_INSTRUCTION
            ),
            ("videomme", "option"): original_videomme(
                question, [f"{x}. {c}" for x, c in zip(letters, choices, strict=True)], OPTION_INSTRUCTION, "\n"
            ),
            ("mmvu", "reason"): original_mmvu(question, dict(zip(letters, choices, strict=True)), REASON_INSTRUCTION),
            ("mmvu", "option"): original_mmvu(question, dict(zip(letters, choices, strict=True)), OPTION_INSTRUCTION),
        }
        for (benchmark, prompt), text in expected.items():
            assert build_question(sample, prompt, get_benchmark(benchmark).layouts) == text, (benchmark, prompt)

    def test_the_issue_examples(self):
        mvbench = get_benchmark("mvbench").layouts
        moving = EvalSample("t/0", "task", "Is the cube moving? ", ("Yes", "The blue cube "), "A", "v.mp4")
        text = build_question(moving, "reason", mvbench)
        assert "moving? \nOptions:" in text and "B. The blue cube\nOutput" in text
        assert "B. The blue cube \nOutput" in build_question(moving, "reason", get_benchmark("videomme").layouts)

    def test_full_prompt_is_qwen2_base_ending_in_assistant_colon(self):
        prompt = build_prompt(SAMPLE, "reason", get_benchmark("mvbench").layouts, policy_for("tinyllava"))
        assert prompt.startswith(f"{QWEN2_BASE_SYSTEM}USER: <image>\nWhat moves?\nOptions:\n")
        assert prompt.endswith("</answer> tags. ASSISTANT:")


class TestExtraction:
    @pytest.mark.parametrize(
        ("completion", "robust", "original"),
        [
            ("<think>It rolls.</think> <answer>B</answer>", ("B", "answered"), ("B", "answered")),
            ("<think>x</think><answer> b. a ball </answer>", ("B", "answered"), ("B", "answered")),
            ("<think>x</think><answer>It is (A) a cup</answer>", ("A", "answered"), ("A", "answered")),
            # the original's first-character quirk; the reader sees a word
            ("<think>x</think><answer>Because it rolls</answer>", (None, "no_letter"), ("B", "answered")),
            ("<think>x</think><answer>\nA\n</answer>", ("A", "answered"), ("A", "answered")),
            # "Answer: B": the original read A (its first character)
            ("<think>x</think><answer>Answer: B</answer>", ("B", "answered"), ("A", "answered")),
            ("<think>x</think><answer>**B**</answer>", ("B", "answered"), (None, "no_letter")),
            ("<think>x</think><answer>A or B</answer>", (None, "no_letter"), ("A", "answered")),
            # no <answer>: the reader reads the whole completion, as the training reward does; the original guesses
            ("<think>It rolls, so B.</think>", (None, "no_tag"), (None, "no_tag")),
            ("B", ("B", "answered"), (None, "no_tag")),
            ("<think>x</think><answer>the round one</answer>", (None, "no_letter"), (None, "no_letter")),
            ("<think>x</think><answer></answer>", (None, "empty"), (None, "empty")),
            ("<think>x</think><answer>E</answer>", (None, "no_letter"), (None, "no_letter")),
            # a multi-line answer: the original's regex (no DOTALL) does not match, so it guesses
            ("<think>x</think><answer>B\nbecause it rolls</answer>", ("B", "answered"), (None, "no_tag")),
        ],
    )
    def test_both_protocols(self, completion, robust, original):
        assert extract_prediction(completion, "AB") == robust
        assert extract_prediction(completion, "AB", "original") == original

    def test_unknown_protocol(self):
        with pytest.raises(ValueError, match="unknown answer protocol"):
            extract_prediction("B", "AB", "reason")


def _record(sample_id, group, answer, prediction, status="answered", num_choices=4):
    return {
        "id": sample_id,
        "group": group,
        "answer": answer,
        "prediction": prediction,
        "status": status,
        "num_choices": num_choices,
    }


class TestNoAnswerPolicy:
    def test_seeded_guess_is_reproducible_and_varies_with_the_sample(self):
        assert seeded_guess(0, "q1", "ABCD") == seeded_guess(0, "q1", "ABCD")
        guesses = {seeded_guess(0, f"q{i}", "ABCD") for i in range(40)}
        assert guesses == set("ABCD")

    def test_no_answer_is_wrong_by_default_and_guessed_on_request(self):
        guess = seeded_guess(7, "q1", "ABCD")
        record = _record("q1", "g", guess, None, status="no_tag")
        assert not is_correct(record)
        assert is_correct(record, "random", seed=7)

    def test_empty_answer_is_never_guessed(self):
        record = _record("q1", "g", seeded_guess(7, "q1", "ABCD"), None, status="empty")
        assert not is_correct(record, "random", seed=7)

    def test_guess_accuracy_is_near_chance(self):
        records = [_record(f"q{i}", "g", "A", None, status="no_letter") for i in range(2000)]
        assert 22 < score_records(records, ["g"], "random").micro < 28


class TestAverages:
    def test_micro_weighs_questions_and_macro_weighs_groups(self):
        records = (
            [_record(f"a{i}", "big", "A", "A") for i in range(9)]  # 9 / 9 right
            + [_record("a9", "big", "A", "B")]  # 9 / 10 = 90 %
            + [_record("b0", "small", "A", "B"), _record("b1", "small", "A", "A")]  # 1 / 2 = 50 %
        )
        scores = score_records(records, ["big", "small"])
        assert [(g.name, g.correct, g.total) for g in scores.groups] == [("big", 9, 10), ("small", 1, 2)]
        assert scores.micro == pytest.approx(100 * 10 / 12)  # 83.3
        assert scores.macro == pytest.approx((90 + 50) / 2)  # 70.0

    def test_groups_keep_benchmark_order_and_empty_groups_are_left_out(self):
        records = [_record("x", "long", "A", "A"), _record("y", "short", "A", "B")]
        scores = score_records(records, ["short", "medium", "long"])
        assert [g.name for g in scores.groups] == ["short", "long"]
        assert scores.macro == 50.0

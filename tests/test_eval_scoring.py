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

SAMPLE = EvalSample("t/0", "task", "What moves?", ("a cup", "a ball"), "B", "v.mp4")


class TestPrompts:
    @pytest.mark.parametrize(
        ("benchmark", "prompt", "expected"),
        [
            ("mvbench", "reason", f"What moves?\nOptions:\nA. a cup\nB. a ball\n{REASON_INSTRUCTION}"),
            ("mvbench", "option", f"What moves?\n(A) a cup\n(B) a ball\n{OPTION_INSTRUCTION}"),
            ("videomme", "reason", f"What moves?\nOptions:\nA. a cup\nB. a ball\n{REASON_INSTRUCTION}"),
            ("videomme", "option", f"What moves?\nA. a cup\nB. a ball\n{OPTION_INSTRUCTION}"),
            ("mlvu", "reason", f"What moves?\n(A) a cup\n(B) a ball\n{REASON_INSTRUCTION}"),
            ("mlvu", "option", f"What moves?\n(A) a cup\n(B) a ball\n{OPTION_INSTRUCTION}"),
            ("mmvu", "reason", f"What moves?\nA. a cup\nB. a ball\n{REASON_INSTRUCTION}"),
        ],
    )
    def test_question_layout_per_benchmark_matches_the_original(self, benchmark, prompt, expected):
        assert build_question(SAMPLE, prompt, get_benchmark(benchmark).layouts) == expected

    def test_full_prompt_is_qwen2_base_ending_in_assistant_colon(self):
        prompt = build_prompt(SAMPLE, "reason", get_benchmark("mvbench").layouts)
        assert prompt.startswith(f"{QWEN2_BASE_SYSTEM}USER: <image>\nWhat moves?\nOptions:\n")
        assert prompt.endswith("</answer> tags. ASSISTANT:")


class TestExtraction:
    @pytest.mark.parametrize(
        ("completion", "letter", "status"),
        [
            ("<think>It rolls.</think> <answer>B</answer>", "B", "answered"),
            ("<think>x</think><answer> b. a ball </answer>", "B", "answered"),  # first character, any case
            ("<think>x</think><answer>It is (A) a cup</answer>", "A", "answered"),  # bracketed letter inside
            ("<think>x</think><answer>Because it rolls</answer>", "B", "answered"),  # the original's first-char quirk
            ("<think>x</think><answer>\nA\n</answer>", "A", "answered"),
            ("<think>It rolls, so B.</think>", None, "no_tag"),  # no <answer>: the original guesses
            ("<think>x</think><answer>the round one</answer>", None, "no_letter"),  # names no option: guesses
            ("<think>x</think><answer></answer>", None, "empty"),  # empty: wrong in the original too
            ("<think>x</think><answer>E</answer>", None, "no_letter"),  # not one of this question's letters
        ],
    )
    def test_reason_prompt(self, completion, letter, status):
        assert extract_prediction(completion, "AB", "reason") == (letter, status)

    @pytest.mark.parametrize(
        ("completion", "letter", "status"),
        [
            ("B", "B", "answered"),
            ("(A) a cup", "A", "answered"),
            ("The answer is B.", "B", "answered"),
            ("", None, "no_letter"),
            ("round", None, "no_letter"),
        ],
    )
    def test_option_prompt_reads_the_whole_completion(self, completion, letter, status):
        assert extract_prediction(completion, "AB", "option") == (letter, status)


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

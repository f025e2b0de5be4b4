"""Golden tables for the built-in rewards and for the answer extraction they share with the evaluation code."""

import pickle
import subprocess
import sys

import pytest

import rewards
from rewards import (
    extract_answer,
    format_reward,
    get_accuracy_reward,
    get_think_length_reward,
    get_tinyllava_r1_reward,
    parse_think_answer,
)


def think_answer(think: str, answer: str) -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


def conversational(completions: list[str]) -> list[list[dict]]:
    return [[{"role": "assistant", "content": completion}] for completion in completions]


class TestExtractAnswer:
    @pytest.mark.parametrize(
        "completion, letter",
        [
            ("<answer>C</answer>", "C"),
            ("<answer>C.</answer>", "C"),
            ("<answer>(C)</answer>", "C"),
            ("<answer>C)</answer>", "C"),
            ("<answer>C. pick up the cup</answer>", "C"),
            ("<answer>C: pick up the cup</answer>", "C"),
            ("<answer>Option C</answer>", "C"),
            ("<answer>option (c)</answer>", "C"),
            ("<answer>The answer is C.</answer>", "C"),
            ("<answer>Option C is right</answer>", "C"),
            ("<answer>c</answer>", "C"),
            ("<answer>\n  C\n  because the cup moves\n</answer>", "C"),  # multi-line answer
            ("<answer>it must be (B), the ball rolls left</answer>", "B"),
            ("<think>(A) is wrong</think><answer>B</answer>", "B"),  # the answer block wins over the thinking
            ("<answer>A</answer><answer>B</answer>", "A"),  # the first answer block, as the original
            ("B. the ball rolls left", "B"),  # no tags: the whole completion
            ("<answer>A dog runs</answer>", None),  # a word, not an option
            ("<answer>the answer is a dog</answer>", None),
            ("<answer>Because the man turns</answer>", None),
            ("<answer>(A) or (B)</answer>", None),  # ambiguous
            ("<answer>K</answer>", None),  # not an option letter
            ("<answer></answer>", None),
            ("<answer>Ｃ。</answer>", None),  # full-width letter: not read as an option
            ("", None),
        ],
    )
    def test_option_letter(self, completion, letter):
        assert extract_answer(completion).letter == letter

    def test_answer_text_is_stripped_tag_content_or_whole_completion(self):
        assert extract_answer("<think>x</think><answer>\n 12 apples \n</answer>").text == "12 apples"
        assert extract_answer("  12 apples  ").text == "12 apples"
        assert extract_answer("<think>x</think><answer></answer>").text == ""

    def test_require_tags_gives_nothing_without_an_answer_block(self):
        # The evaluation falls back to a random choice in this case; the extraction never guesses.
        assert extract_answer("C", require_tags=True) == (None, None)
        assert extract_answer("<answer>C</answer>", require_tags=True) == ("C", "C")
        assert extract_answer("<think>x</think><answer>C", require_tags=True) == (None, None)  # truncated

    def test_a_letter_followed_by_a_word_is_no_option(self):
        assert extract_answer("<answer>Because the man turns</answer>").letter is None
        assert extract_answer("<answer>a dog runs</answer>").letter is None
        assert extract_answer("<answer>(C) the cup</answer>").letter == "C"

    def test_letters_limit_the_options(self):
        assert extract_answer("<answer>E</answer>", letters="ABCD").letter is None
        assert extract_answer("<answer>e.</answer>", letters="abcde").letter == "E"

    def test_conversational_completion(self):
        assert extract_answer(conversational(["<answer>(D)</answer>"])[0]).letter == "D"
        parts = [{"role": "assistant", "content": [{"type": "text", "text": "<answer>D</answer>"}]}]
        assert extract_answer(parts).letter == "D"


FORMAT_TABLE = [
    (think_answer("The ball rolls left.", "A"), 1.0),
    ("  <think>a</think>\n\n<answer>A</answer>\n", 1.0),  # whitespace around and between the blocks
    (think_answer("line one\nline two", "A.\nthe ball"), 1.0),  # multi-line blocks
    (think_answer("球向左滚动 🎾", "A"), 1.0),  # unicode
    (think_answer("", ""), 1.0),  # empty blocks keep the format (the original's rule)
    ("Sure! " + think_answer("a", "A"), 0.0),  # text before <think>
    (think_answer("a", "A") + " Done.", 0.0),  # text after </answer>
    ("<think>a</think> so <answer>A</answer>", 0.0),  # text between the blocks
    ("<think>a</think><think>b</think><answer>A</answer>", 0.0),  # duplicate think blocks
    ("<think>a <think>b</think><answer>A</answer>", 0.0),  # nested opening tag
    (think_answer("a", "A") + "<answer>B</answer>", 0.0),  # duplicate answer blocks
    (think_answer("a </answer>", "A"), 0.0),  # stray closing tag inside the thinking
    ("<answer>A</answer><think>a</think>", 0.0),  # wrong order
    ("<answer>A</answer>", 0.0),
    ("<think>a</think>A", 0.0),
    ("<think>a</think><answer>A", 0.0),  # truncated
    ("A", 0.0),
    ("", 0.0),
]


class TestFormatReward:
    @pytest.mark.parametrize("completion, expected", FORMAT_TABLE)
    def test_golden(self, completion, expected):
        assert format_reward([completion]) == [expected]

    def test_conversational_matches_strings(self):
        completions = [completion for completion, _ in FORMAT_TABLE]
        assert format_reward(conversational(completions)) == format_reward(completions)

    def test_parse_think_answer_strips_both_parts(self):
        assert parse_think_answer("<think>\n  look \n</think>\n<answer> B </answer>") == ("look", "B")


class TestThinkLengthReward:
    @pytest.mark.parametrize(
        "completion, expected",
        [
            (think_answer("", "A"), 0.0),
            (think_answer("x" * 300, "A"), 0.125),
            (think_answer("x" * 600, "A"), 0.25),
            (think_answer("x" * 1200, "A"), 0.5),
            (think_answer("x" * 5000, "A"), 0.5),  # capped
            (think_answer("\n   " + "x" * 600 + "   \n", "A"), 0.25),  # surrounding whitespace not counted
            (think_answer("球" * 600, "A"), 0.25),  # characters, not bytes (1800 bytes in UTF-8)
            ("<answer>A</answer><think>" + "x" * 1200 + "</think>", 0.0),  # format broken: no length reward
            ("Hi " + think_answer("x" * 1200, "A"), 0.0),
        ],
    )
    def test_golden(self, completion, expected):
        assert get_think_length_reward()([completion]) == [pytest.approx(expected)]

    def test_limits_are_configurable(self):
        reward = get_think_length_reward(max_chars=100, weight=1.0)
        assert reward([think_answer("x" * 50, "A"), think_answer("x" * 100, "A")]) == [0.5, 1.0]

    def test_rejects_non_positive_limit(self):
        with pytest.raises(ValueError, match="max_chars"):
            get_think_length_reward(max_chars=0)


ACCURACY_TABLE = [
    # option letters
    ("<answer>C</answer>", "C", 1.0),
    ("<answer>C.</answer>", "<answer>C</answer>", 1.0),
    ("<answer>(C)</answer>", " <answer> C </answer> ", 1.0),
    ("<answer>C. pick up the cup</answer>", "C", 1.0),
    ("<answer>Option C</answer>", "C", 1.0),
    ("<answer>c</answer>", "C", 1.0),
    ("<answer>(C) pick up</answer>", "C. pick up the cup", 1.0),
    ("<think>(C) looks wrong</think><answer>\nB.\nThe ball rolls.\n</answer>", "B", 1.0),
    ("C. because the cup moves", "C", 1.0),  # no tags: the whole completion, as the original
    ("<answer>B</answer>", "C", 0.0),
    ("<answer>(B) or (C)</answer>", "C", 0.0),
    ("<answer>Because it moves</answer>", "B", 0.0),
    ("<answer></answer>", "C", 0.0),
    ("", "C", 0.0),
    # numbers through math-verify
    ("<answer>12</answer>", "12", 1.0),
    ("<answer>12 apples</answer>", "<answer>12</answer>", 1.0),
    ("<answer>\\frac{1}{2}</answer>", "0.5", 1.0),
    ("<answer>1,000</answer>", "1000", 1.0),
    ("<answer>13</answer>", "12", 0.0),
    ("<answer>twelve</answer>", "12", 0.0),
    # free text
    ("<answer>The Red  Ball.</answer>", "the red ball", 1.0),
    ("<answer>Café</answer>", "café", 1.0),
    ("<answer>红色</answer>", "红色。", 1.0),
    ("<answer>blue ball</answer>", "red ball", 0.0),
]


class TestAccuracyReward:
    @pytest.mark.parametrize("completion, solution, expected", ACCURACY_TABLE)
    def test_golden(self, completion, solution, expected):
        assert get_accuracy_reward()([completion], solution=[solution]) == [expected]

    def test_conversational_matches_strings(self):
        completions = [row[0] for row in ACCURACY_TABLE]
        solution = [row[1] for row in ACCURACY_TABLE]
        reward = get_accuracy_reward()
        assert reward(conversational(completions), solution=solution) == reward(completions, solution=solution)

    def test_missing_solution_is_not_applicable(self):
        assert get_accuracy_reward()(["<answer>C</answer>"] * 3, solution=[None, "", "<answer> </answer>"]) == [
            None,
            None,
            None,
        ]

    def test_original_rule(self):
        completions = ["<answer>Because it moves</answer>", "<answer>A dog</answer>", "<answer>b</answer>"]
        assert get_accuracy_reward(rule="original")(completions, solution=["B", "A", "B"]) == [1.0, 1.0, 0.0]
        assert get_accuracy_reward()(completions, solution=["B", "A", "B"]) == [0.0, 0.0, 1.0]

    def test_require_tags(self):
        reward = get_accuracy_reward(require_tags=True)
        assert reward(["C", "<answer>C</answer>"], solution=["C", "C"]) == [0.0, 1.0]

    def test_math_works_off_the_main_thread(self):
        # math-verify's default timeout uses signals, which fail outside the main thread (dataloader workers).
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(get_accuracy_reward(), ["<answer>1/2</answer>"], solution=["0.5"]).result()
        assert result == [1.0]


def r1_completion(think_chars: int, answer: str) -> str:
    return think_answer("x" * think_chars, answer)


class TestTinyLLaVAR1Reward:
    @pytest.mark.parametrize(
        "completion, expected",
        [
            # right answer, broken format: 1.0
            ("A", 1.0),
            ("<answer>A</answer>", 1.0),
            ("Let me see. " + r1_completion(1200, "A"), 1.0),  # text before <think>
            (r1_completion(1200, "A") + "<answer>A</answer>", 1.0),  # duplicate answer tag
            # right answer, format kept: 1.5 .. 2.0, longer thinking is better
            (r1_completion(0, "A"), 1.5),
            (r1_completion(600, "A"), 1.75),
            (r1_completion(1200, "A"), 2.0),
            (r1_completion(3000, "A"), 2.0),
            (think_answer("x" * 600, "\n(A)\nthe ball rolls left\n"), 1.75),  # multi-line answer
            (think_answer("球" * 600, "A"), 1.75),  # unicode thinking counts characters
            # wrong answer, format kept: -0.5 .. -1.0, longer wrong thinking is penalised more
            (r1_completion(0, "B"), -0.5),
            (r1_completion(600, "B"), -0.75),
            (r1_completion(1200, "B"), -1.0),
            (r1_completion(600, ""), -0.75),  # empty answer is wrong but keeps the format
            # wrong answer, broken format: -2.0
            ("B", -2.0),
            ("", -2.0),
            ("<think>a</think><think>b</think><answer>B</answer>", -2.0),
        ],
    )
    def test_paper_bands(self, completion, expected):
        assert get_tinyllava_r1_reward()([completion], solution=["A"]) == [pytest.approx(expected)]

    def test_bands_hold_for_every_think_length(self):
        reward = get_tinyllava_r1_reward()
        lengths = list(range(0, 2000, 50))
        right = reward([r1_completion(n, "A") for n in lengths], solution=["A"] * len(lengths))
        wrong = reward([r1_completion(n, "B") for n in lengths], solution=["A"] * len(lengths))
        assert all(1.5 <= r <= 2.0 for r in right) and right == sorted(right)
        assert all(-1.0 <= r <= -0.5 for r in wrong) and wrong == sorted(wrong, reverse=True)

    def test_equals_the_paper_formula_from_the_parts(self):
        completions = [row for row, _ in FORMAT_TABLE] + [r1_completion(n, a) for n in (0, 700, 1500) for a in "AB"]
        solution = ["A"] * len(completions)
        acc = get_accuracy_reward()(completions, solution=solution)
        fmt = [
            0.5 * f + t
            for f, t in zip(format_reward(completions), get_think_length_reward()(completions), strict=True)
        ]
        expected = [a + (2 * a - 1) * m for a, m in zip(acc, fmt, strict=True)]
        expected = [-2.0 if r == 0 else r for r in expected]
        assert get_tinyllava_r1_reward()(completions, solution=solution) == pytest.approx(expected)

    def test_limits_are_configurable(self):
        reward = get_tinyllava_r1_reward(max_think_chars=100, zero_reward=-1.0)
        assert reward([r1_completion(50, "A"), "B"], solution=["A", "A"]) == [1.75, -1.0]

    def test_original_rule_matches_the_original(self):
        completions = [think_answer("", "Because it moves"), "Because it moves"]
        assert get_tinyllava_r1_reward(rule="original")(completions, solution=["B", "B"]) == [1.5, 1.0]
        assert get_tinyllava_r1_reward()(completions, solution=["B", "B"]) == [-0.5, -2.0]

    def test_missing_solution_is_not_applicable(self):
        assert get_tinyllava_r1_reward()([r1_completion(10, "A")], solution=[None]) == [None]

    def test_conversational_matches_strings(self):
        completions = [r1_completion(600, "A"), "A", r1_completion(600, "B"), "B"]
        reward = get_tinyllava_r1_reward()
        solution = ["A"] * 4
        assert reward(conversational(completions), solution=solution) == reward(completions, solution=solution)


BUILT_INS = [
    (format_reward, "format_reward"),
    (rewards.accuracy_reward, "accuracy_reward"),
    (rewards.think_length_reward, "think_length_reward"),
    (rewards.tinyllava_r1_reward, "tinyllava_r1_reward"),
]


@pytest.mark.parametrize("reward, name", BUILT_INS)
def test_extra_dataset_columns_are_ignored(reward, name):
    completions = [r1_completion(600, "A"), "B"]
    plain = reward(completions, solution=["A", "A"])
    with_extras = reward(
        completions=completions,
        solution=["A", "A"],
        prompts=["Q1", "Q2"],
        completion_ids=[[1, 2], [3]],
        problem=["What moves?", "What moves?"],
        video_filename=["a.mp4", "b.mp4"],
        trainer_state=None,
        log_metric=lambda *args: None,
        log_extra=lambda *args: None,
    )
    assert with_extras == plain
    assert reward.__name__ == name


@pytest.mark.parametrize("reward, name", BUILT_INS)
def test_rewards_pickle(reward, name):
    restored = pickle.loads(pickle.dumps(reward))
    completions = [r1_completion(600, "A"), r1_completion(10, "B"), "A"]
    assert restored.__name__ == name
    assert restored(completions, solution=["A"] * 3) == reward(completions, solution=["A"] * 3)


def test_import_stays_light():
    # Rewards run in the trainer and in dataloader workers; importing them must not pull in torch or TRL.
    code = "import rewards, sys; print(sorted(m for m in ('torch', 'transformers', 'trl', 'r1video') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""The one answer reader: every form models write, read the same way by the rewards, `r1video eval` and the demo.

The table below is the contract: completion -> (letter read, strict format kept, `tinyllava_r1` reward). Gold is
always `C` (options A-D) unless a row says otherwise.
"""

import logging
import re

import pytest

from r1video.eval.scoring import extract_prediction
from rewards import call_reward, extract_answer, format_reward, get_accuracy_reward, get_tinyllava_r1_reward

THINK = "The cube slides left."  # 21 characters: fmt = 0.5 + 0.5 * 21 / 1200
FMT = 0.5 + 0.5 * len(THINK) / 1200

# Answer text inside <answer>…</answer> -> the letter it names (None: no answer).
ANSWERS = [
    # plain letters and the usual decorations
    ("C", "C"),
    ("c", "C"),
    ("C.", "C"),
    ("c.", "C"),
    ("(C)", "C"),
    ("(c)", "C"),
    ("C)", "C"),
    ("C:", "C"),
    ("C. pick up the cup", "C"),
    ("C: pick up the cup", "C"),
    ("(C) pick up the cup", "C"),
    ("C) pick up the cup", "C"),
    ("C, the cup", "C"),
    ("C, I think", "C"),
    ("C - pick up the cup", "C"),
    (" C ", "C"),
    # wrapped letters
    ("**C**", "C"),
    ("*C*", "C"),
    ("`C`", "C"),
    ("$C$", "C"),
    ("\\boxed{C}", "C"),
    ("$\\boxed{C}$", "C"),
    ("[C]", "C"),
    ("**C. pick up the cup**", "C"),
    ("**C.** pick up the cup", "C"),
    ("$(b)$", "B"),
    ("\\boxed{(c)}", "C"),
    ("\\text{C}", "C"),
    ("\\(C\\)", "C"),
    ("**(C)**", "C"),
    ("[c]", "C"),
    ("**Answer: C**", "C"),
    # named letters
    ("Answer: C", "C"),
    ("answer: c", "C"),
    ("Option C", "C"),
    ("option c", "C"),
    ("Option: C", "C"),
    ("Choice C", "C"),
    ("The answer is C.", "C"),
    ("The answer is (c)", "C"),
    ("The correct answer is C", "C"),
    ("Final answer: C", "C"),
    ("Final answer: **D**", "D"),
    ("Option C is right", "C"),
    ("Answer: (B) the ball", "B"),
    # a bracketed letter inside a sentence
    ("I think it is (C).", "C"),
    ("So it must be (a) here", "A"),
    # other letters
    ("A", "A"),
    ("B. a ball", "B"),
    ("D", "D"),
    ("(D) nothing", "D"),
    # hedges and echoed option lists: no answer
    ("A or B", None),
    ("A or B or C", None),
    ("A, B or C", None),
    ("A / C", None),
    ("A and C", None),
    ("C or D", None),
    ("A. or B.", None),
    ("(A) or (B)", None),
    ("(a) or (c)", None),
    ("A) red B) blue", None),
    ("A: red, B: blue", None),
    ("A. red\nB. blue\nC. green\nD. yellow", None),
    ("(A) red\n(B) blue\n(C) green", None),
    ("**A** or **C**", None),
    ("B or C is right", None),
    ("A - red, B - blue", None),
    # no option named
    ("", None),
    ("A dog", None),
    ("Because the cup moves", None),
    ("the cup", None),
    ("It is the red one.", None),
    ("E", None),  # not one of A-D
    ("U.S.A.", None),
    ("Answer:", None),
]

# Whole completions (not wrapped in the shapes below) -> (letter, format kept).
COMPLETIONS = [
    # multi-line answers
    (f"<think>{THINK}</think><answer>\nC\n</answer>", "C", True),
    (f"<think>{THINK}</think>\n<answer>\n  (C) pick up\n</answer>", "C", True),
    (f"<think>{THINK}</think><answer>The answer is\nC</answer>", "C", True),
    (f"<think>{THINK}</think><answer>C\nbecause it slides</answer>", "C", True),
    (f"<think>{THINK}</think><answer>\nA. red\nB. blue\n</answer>", None, True),
    (f"<think>{THINK}\nSo C.</think>\n\n<answer>C</answer>", "C", True),
    # nested and duplicated tags
    (f"<think>{THINK}</think><answer><answer>C</answer></answer>", "C", False),
    (f"<think>{THINK}</think><answer>C</answer><answer>A</answer>", "C", False),
    (f"<think>{THINK}</think><answer>A</answer><answer>C</answer>", "A", False),
    (f"<think><think>{THINK}</think></think><answer>C</answer>", "C", False),
    (f"<think>{THINK}</think><think>more</think><answer>C</answer>", "C", False),
    (f"<think>{THINK}</think><answer>C</answer> trailing text", "C", False),
    (f"Sure. <think>{THINK}</think><answer>C</answer>", "C", False),
    # broken or missing tags: the whole completion is the answer
    (f"<think>{THINK}</think><answer>C", None, False),
    (f"<think>{THINK}</think>", None, False),
    ("C", "C", False),
    ("C. pick up the cup", "C", False),
    ("The answer is C.", "C", False),
    ("**C**", "C", False),
    ("Because the cup moves", None, False),
    ("A or C", None, False),
    ("", None, False),
    (f"<think>{THINK}</think><answer></answer>", None, True),
    (f"<think>{THINK}</think><answer> </answer>", None, True),
    ("<think></think><answer>C</answer>", "C", True),
    (f"  <think>{THINK}</think> <answer>C</answer>  ", "C", True),
]

SHAPES = [
    (lambda a: f"<think>{THINK}</think><answer>{a}</answer>", True),
    (lambda a: f"<think>{THINK}</think>\n<answer>{a}</answer>", True),
    (lambda a: f"<answer>{a}</answer>", False),
]


def _reward(letter, fmt_kept, gold="C", think=THINK):
    fmt = (0.5 + 0.5 * len(think) / 1200) if fmt_kept else 0.0
    acc = float(letter == gold)
    reward = acc + (2 * acc - 1) * fmt
    return -2.0 if reward == 0 else reward


def _table():
    rows = []
    for inner, letter in ANSWERS:
        for shape, fmt in SHAPES:
            rows.append((shape(inner), letter, fmt))
    for completion, letter, fmt in COMPLETIONS:
        rows.append((completion, letter, fmt))
    return [(c, letter, fmt, _reward(letter, fmt, think=_think_of(c))) for c, letter, fmt in rows]


def _think_of(completion):
    match = re.search(r"<think>(.*?)</think>", completion, re.DOTALL)
    return match.group(1).strip() if match else ""


TABLE = _table()


def test_the_table_is_large():
    assert len(TABLE) >= 150


@pytest.mark.parametrize(("completion", "letter", "fmt", "reward"), TABLE)
def test_reader_format_reward_and_eval(completion, letter, fmt, reward):
    """Each row once: the reader's letter, the format, the combined reward, and `r1video eval` reading the same."""
    assert extract_answer(completion, letters="ABCD").letter == letter
    assert format_reward([completion]) == [float(fmt)]
    assert get_tinyllava_r1_reward(letters="ABCD")([completion], solution=["<answer>C</answer>"]) == [
        pytest.approx(reward)
    ]
    assert extract_prediction(completion, "ABCD").letter == letter


# A letter (or number) only in the thinking is no answer: a reply cut off while thinking, or one whose answer block is
# empty of it. Gold is the letter (or number) the thinking names; the original rule pays none of these either, except
# an answer block inside the thinking (its regex takes the first `<answer>`), a quirk `rule: original` keeps.
THINKING_ONLY = [
    ("<think>Is it (A)?", "A"),
    ("<think>The cube slides left. So the answer is A.", "A"),
    ("<think>Final answer: A", "A"),
    ("<think>It is (A).</think>", "A"),
    ("<think>It is (A).</think><answer>", "A"),
    ("<think>It is (A).</think><answer>not sure</answer>", "A"),
    ("<think>maybe <answer>A</answer></think><answer>B</answer>", "A"),
    ("<answer>B</answer><think>or (A)?", "A"),
    ("It is (A)?</think> no idea", "A"),  # a prompt that opens the thinking: all before </think> is thinking
    ("<think>There are 12 cubes", "12"),
    ("<think>12</think>", "12"),
]


@pytest.mark.parametrize(("completion", "gold"), THINKING_ONLY)
def test_no_reward_pays_for_a_letter_outside_the_answer(completion, gold):
    assert extract_answer(completion, letters="ABCD").letter != gold
    assert extract_prediction(completion, "ABCD").letter != gold
    solution = [f"<answer>{gold}</answer>"]
    assert get_accuracy_reward()([completion], solution=solution) == [0.0]
    (reward,) = get_tinyllava_r1_reward()([completion], solution=solution)
    assert reward == -2.0 or -1.0 <= reward <= -0.5  # wrong, format broken or kept
    if "<answer>A</answer></think>" not in completion:
        assert get_tinyllava_r1_reward(rule="original")([completion], solution=solution) == [reward]


def test_thinking_then_a_plain_answer_is_read_after_the_thinking():
    assert extract_answer("<think>Is it (A)?</think> B", letters="ABCD").letter == "B"
    assert extract_answer("Is it (A)?</think><answer>B</answer>", letters="ABCD").letter == "B"
    assert get_accuracy_reward()(["<think>It is (A).</think><answer>B</answer>"], solution=["B"]) == [1.0]


CHOICES = ("the blue ball", "the red ball", "the green cube", "nothing moves")
# Plain final answers, as replies without the think/answer format (or inside <answer>) write them: the letter `r1video
# eval` reads. Training rewards pay none of them (not the letter the format asks for).
STATEMENTS = [
    ("The ball rolls to the right.\nFinal answer: B", "B"),
    ("The ball rolls to the right, so the correct option is B.", "B"),
    ("Option A is wrong because it is blue. The answer is (b), the red one.", "B"),
    ("**Final answer:** B", "B"),
    ("The red ball rolls right. The answer would be B.", "B"),
    ("<think>It is red.</think><answer>It rolls right, so the correct option is B.</answer>", "B"),
    # still no answer
    ("The answer is A or B.", None),
    ("A ball rolls. Final answer: A or B", None),
    ("The answer is a dog.", None),
    ("<think>Final answer: B</think>", None),
]
# An option's text instead of its letter: read with the sample's options.
OPTION_TEXTS = [
    ("the red ball", "B"),
    ("The red ball.", "B"),
    ("The ball that moves is the red one, so the answer is: the red ball", "B"),
    ("<think>It is red.</think><answer>the red ball</answer>", "B"),
    ("the ball", None),
    ("<think>the red ball</think>", None),
]


@pytest.mark.parametrize(("completion", "letter"), STATEMENTS)
def test_eval_reads_plain_final_answers(completion, letter):
    assert extract_prediction(completion, "ABCD").letter == letter
    assert extract_prediction(completion, "ABCD", choices=CHOICES).letter == letter


@pytest.mark.parametrize(("completion", "letter"), OPTION_TEXTS)
def test_eval_reads_an_options_text_written_instead_of_its_letter(completion, letter):
    assert extract_prediction(completion, "ABCD", choices=CHOICES).letter == letter
    assert extract_answer(completion, letters="ABCD", plain=True, choices=CHOICES).letter == letter


@pytest.mark.parametrize(
    "completion",
    [
        "The ball rolls to the right.\nFinal answer: B",
        "The ball rolls to the right, so the correct option is B.",
        "the red ball",
        "<think>It is red.</think><answer>the red ball</answer>",
    ],
)
def test_training_rewards_pay_only_the_letter_the_format_asks_for(completion):
    for rule in ("robust", "original"):
        assert get_accuracy_reward(rule=rule)([completion], solution=["B"]) == [0.0], rule


def test_the_eval_runner_reads_option_texts_with_each_samples_options():
    from r1video.eval.runner import rescore
    from r1video.eval.samples import EvalSample

    sample = EvalSample(id="q1", group="g", question="Which ball rolls?", choices=CHOICES, answer="B", video="v.mp4")
    record = {"status": "no_tag", "prediction": None, "completion": "The answer is the red ball."}
    assert rescore(record, sample, "robust")["prediction"] == "B"
    assert rescore(record, sample, "original")["prediction"] is None  # the original parser is unchanged


@pytest.mark.parametrize(
    ("completion", "solution", "expected"),
    [
        ("<think>x</think><answer>12</answer>", "<answer>12</answer>", 1.0),
        ("<think>x</think><answer>12 apples</answer>", "<answer>12</answer>", 1.0),
        ("<think>x</think><answer>\\boxed{12}</answer>", "<answer>12</answer>", 1.0),
        ("<think>x</think><answer>1/2</answer>", "<answer>0.5</answer>", 1.0),
        ("<think>x</think><answer>\n3\n</answer>", "<answer>3</answer>", 1.0),
        ("<think>x</think><answer>13</answer>", "<answer>12</answer>", 0.0),
        ("<think>x</think><answer>twelve</answer>", "<answer>12</answer>", 0.0),
        ("<think>x</think><answer>**red**</answer>", "<answer>red</answer>", 1.0),
        ("<think>x</think><answer>The Red ball.</answer>", "<answer>the red ball</answer>", 1.0),
        ("<think>x</think><answer>blue</answer>", "<answer>red</answer>", 0.0),
        ("<think>x</think><answer>**C**</answer>", "<answer>C. pick up the cup</answer>", 1.0),
        ("<think>x</think><answer>A or C</answer>", "<answer>C</answer>", 0.0),
    ],
)
def test_numeric_and_free_text_answers(completion, solution, expected):
    assert get_accuracy_reward()([completion], solution=[solution]) == [expected]


def test_the_demo_reads_with_the_one_reader():
    """The demo evaluates with `r1video eval`'s runner, whose robust protocol is the one reader."""
    from r1video.demo import evaluate
    from r1video.eval import runner, scoring

    assert evaluate.run_evaluation is runner.run_evaluation
    assert scoring.extract_answer is extract_answer


@pytest.mark.parametrize("factory", [get_accuracy_reward, get_tinyllava_r1_reward])
def test_first_char_is_removed_with_a_clear_error(factory):
    with pytest.raises(ValueError, match="first_char was removed.*rule: original"):
        factory(first_char=True)
    with pytest.raises(ValueError, match="unknown answer rule"):
        factory(rule="strict")


def test_a_step_with_every_reward_none_warns_naming_reward_and_solutions(caplog):
    reward = get_tinyllava_r1_reward()
    with caplog.at_level(logging.WARNING, logger="rewards.calling"):
        rewards = call_reward(reward, ["<answer>C</answer>"] * 2, solution=["<answer> </answer>", ""])
    assert rewards == [None, None]
    (record,) = caplog.records
    assert "'tinyllava_r1_reward'" in record.getMessage()
    assert "'<answer> </answer>'" in record.getMessage() and "''" in record.getMessage()


def test_a_step_with_some_rewards_does_not_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="rewards.calling"):
        call_reward(get_tinyllava_r1_reward(), ["C", "C"], solution=["<answer> </answer>", "C"])
    assert not caplog.records

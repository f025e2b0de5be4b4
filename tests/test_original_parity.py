"""The original rules, bit for bit: `rule="original"` and `--protocol original` agree with transcriptions of
TinyLLaVA-Video-R1's own functions (seed-facts §6.1 and §9) on a large seeded set of varied completions.

The two oracles below are written out from the original code's description, quirks included; they are the
reference the r1video options must match, not code r1video runs.
"""

import random
import re

import pytest
import torch
from math_verify import parse, verify

from r1video.eval.scoring import ANSWERED, EMPTY, NO_LETTER, NO_TAG, extract_prediction
from rewards import get_accuracy_reward, get_tinyllava_r1_reward

GUESS = "<random guess>"


def oracle_accuracy_reward(completions, solution):
    """R1 `train.py: accuracy_reward`: math-verify first, then single-line tag regex and first-character match."""
    contents = [completion[0]["content"] for completion in completions]
    rewards = []
    for content, sol in zip(contents, solution, strict=True):
        reward = 0.0
        answer = parse(content)
        if float(verify(answer, parse(sol))) > 0:
            reward = 1.0
        if reward == 0.0:
            sol_match = re.search(r"<answer>(.*?)</answer>", sol)
            ground_truth = sol_match.group(1).strip() if sol_match else sol.strip()
            content_match = re.search(r"<answer>(.*?)</answer>", content)
            student_answer = content_match.group(1).strip() if content_match else content.strip()
            if len(student_answer) > 0:
                if student_answer == ground_truth or ground_truth == student_answer[0]:
                    reward = 1.0
        rewards.append(reward)
    return rewards


def oracle_parse_multi_choice_response(response, all_choices, choose=lambda choices: GUESS):
    """R1 `eval_*.py: parse_multi_choice_response` (identical in the four scripts); `choose` stands for
    `random.choice`, so a guess is visible."""
    all_choices_lower = [choice.lower() for choice in all_choices]
    match = re.search(r"<answer>\s*(.*?)\s*</answer>", response)
    if match:
        response = match.group(1).strip()
        if len(response) > 0:
            if response[0] in all_choices or response[0] in all_choices_lower:
                return response[0].upper()
            for choice in all_choices:
                if f"({choice})" in response or f"({choice.lower()})" in response:
                    return choice
            return choose(all_choices)
        return None
    return choose(all_choices)


# Pieces the generator combines.
_LETTERS = "ABCDE"
_ANSWERS = [
    "{L}",
    "{l}",
    "{L}.",
    "({L})",
    "({l})",
    "{L})",
    "{L}. the red cube",
    "{l}. the red cube",
    "{L}: it moves",
    "**{L}**",
    "*{L}*",
    "`{L}`",
    "${L}$",
    "\\boxed{{{L}}}",
    "[{L}]",
    "$({l})$",
    "\\boxed{{({l})}}",
    "Answer: {L}",
    "Option {L}",
    "option {l}",
    "The answer is ({L}).",
    "The answer is {L}",
    "I think ({l})",
    "{L} or {M}",
    "({L}) or ({M})",
    "{L}. or {M}.",
    "{L}) red {M}) blue",
    "{L}: red, {M}: blue",
    "A. red\nB. blue\nC. green\nD. yellow",
    "{L}\nbecause it moves",
    "\n{L}\n",
    "{L}{L}",
    "Because",
    "because",
    "the red cube",
    "",
    " ",
    "12",
    "12.0",
    "3 cubes",
    "\\frac{{1}}{{2}}",
    "0.5",
    "{L} (twelve)",
    "E",
]
_THINKS = ["", "The cube moves left.", "It rolls, so {L}.\nThen it stops.", "x" * 1300, "12 is the count"]
_SHAPES = [
    "<think>{T}</think><answer>{A}</answer>",
    "<think>{T}</think>\n<answer>{A}</answer>",
    "<think>{T}</think> <answer> {A} </answer>",
    "<answer>{A}</answer>",
    "{A}",
    "<think>{T}</think>",
    "<think>{T}</think><answer>{A}",
    "<think>{T}</think><answer>{A}</answer><answer>{B}</answer>",
    "<answer><answer>{A}</answer></answer>",
    "Sure! <think>{T}</think><answer>{A}</answer> Done.",
    "<think>{T}</think><answer>\n{A}\n</answer>",
    "  <think>{T}</think><answer>{A}</answer>\n",
]
_GOLDS = [
    "<answer>{L}</answer>",
    "{L}",
    "<answer> {L} </answer>",
    "<answer>12</answer>",
    "<answer>0.5</answer>",
    "<answer>red</answer>",
    "<answer>({L})</answer>",
]


def varied_cases(count: int, seed: int = 0):
    """`count` seeded (completion, solution, option letters) triples mixing every form the pieces allow."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        letters = _LETTERS[: rng.randint(2, 5)]
        picks = {k: rng.choice(letters) for k in ("L", "M", "G", "N")}
        if rng.random() < 0.5:  # half the golds name the letter the answer uses
            picks["G"] = picks["L"]
        fill = {"L": picks["L"], "l": picks["L"].lower(), "M": picks["M"]}
        answer = rng.choice(_ANSWERS).format(**fill)
        other = rng.choice(_ANSWERS).format(L=picks["N"], l=picks["N"].lower(), M=picks["M"])
        think = rng.choice(_THINKS).format(**fill)
        completion = rng.choice(_SHAPES).format(T=think, A=answer, B=other)
        gold = rng.choice(_GOLDS).format(L=picks["G"])
        cases.append((completion, gold, letters))
    return cases


def _check_accuracy(cases):
    reward = get_accuracy_reward(rule="original")
    combined = get_tinyllava_r1_reward(rule="original")
    mismatches = []
    for completion, gold, _ in cases:
        expected = oracle_accuracy_reward([[{"role": "assistant", "content": completion.strip()}]], [gold])[0]
        got = reward([completion], solution=[gold])[0]
        if got != expected or combined.accuracy.score(completion, gold) != expected:
            mismatches.append((completion, gold, expected, got))
    return mismatches


def _check_eval(cases):
    mismatches = []
    for completion, _, letters in cases:
        expected = oracle_parse_multi_choice_response(completion, list(letters))
        letter, status = extract_prediction(completion, letters, "original")
        got = GUESS if status in (NO_TAG, NO_LETTER) else letter
        if got != expected or (status == EMPTY) != (expected is None) or (status == ANSWERED) != (letter is not None):
            mismatches.append((completion, letters, expected, (letter, status)))
    return mismatches


def test_original_rule_matches_the_oracle_on_named_quirks():
    reward = get_accuracy_reward(rule="original")
    cases = {
        "<answer>BB</answer>": 1.0,  # first character
        "<answer>Because</answer>": 1.0,
        "<answer>b</answer>": 0.0,  # case-sensitive
        "<answer>(B)</answer>": 0.0,
        "<answer>Option B</answer>": 0.0,
        "<answer>\nB\n</answer>": 0.0,  # no DOTALL: the whole completion is compared
        "B. red": 1.0,  # no tags: the whole completion
        "<answer></answer>": 0.0,
    }
    for completion, expected in cases.items():
        assert reward([completion], solution=["<answer>B</answer>"]) == [expected], completion
        oracle = oracle_accuracy_reward([[{"content": completion}]], ["<answer>B</answer>"])
        assert oracle == [expected], completion


def test_original_eval_protocol_quirks():
    assert extract_prediction("<answer>\nb\n</answer>", "ABCD", "original") == ("B", ANSWERED)  # \s* spans lines
    assert extract_prediction("<answer>Because</answer>", "ABCD", "original") == ("B", ANSWERED)
    assert extract_prediction("<answer>x (d) or (a)</answer>", "ABCD", "original") == ("A", ANSWERED)  # letter order
    assert extract_prediction("<answer>**C**</answer>", "ABCD", "original") == (None, NO_LETTER)  # guessed
    assert extract_prediction("<answer>A\nB</answer>", "ABCD", "original") == (None, NO_TAG)  # no match: guessed
    assert extract_prediction("<answer>  </answer>", "ABCD", "original") == (None, EMPTY)  # wrong


def test_original_options_agree_with_the_oracles_on_varied_completions():
    cases = varied_cases(600, seed=1)
    assert _check_accuracy(cases) == []
    assert _check_eval(cases) == []


@pytest.mark.slow
def test_original_options_agree_with_the_oracles_on_12000_completions():
    cases = varied_cases(12_000, seed=0)
    assert len({c for c, _, _ in cases}) > 3000  # varied, not one case repeated
    accuracy, evaluation = _check_accuracy(cases), _check_eval(cases)
    print(f"\n{len(cases)} completions: {len(accuracy)} accuracy mismatches, {len(evaluation)} eval mismatches")
    assert accuracy == [] and evaluation == []


def oracle_combined_reward(acc: list[float], fmt: list[float]) -> list[float]:
    """R1 `LLaVATrainer_Reason`: the accuracy and format rewards as float32 columns, combined in float32, 0 -> -2."""
    acc_t, fmt_t = torch.tensor(acc, dtype=torch.float32), torch.tensor(fmt, dtype=torch.float32)
    combined = acc_t + (2 * acc_t - 1) * fmt_t
    combined[combined == 0] = -2
    return combined.tolist()


def oracle_format_reward(completion: str) -> float:
    """R1 `train.py: format_reward`: strict fullmatch, one of each tag, then 0.5 + 0.5 * min(len(think) / 1200, 1)."""
    content = completion.strip()
    tags = ("<think>", "</think>", "<answer>", "</answer>")
    if not re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", content, re.DOTALL):
        return 0.0
    if any(content.count(tag) != 1 for tag in tags):
        return 0.0
    think = re.search(r"<think>(.*?)</think>", content, re.DOTALL).group(1).strip()
    return 0.5 + 0.5 * min(len(think) / 1200, 1.0)


def test_combined_original_reward_is_the_originals_float32_value_bit_for_bit():
    """Every think length from 0 to 1,500 characters with the right answer, and every 25th with a wrong one or a broken
    format: the values TRL trains on are the original's float32 ones exactly (a float64 combination, stored in float32,
    was one ulp off for 320 of the 1,501 right answers)."""
    kept, broken = "<think>{think}</think><answer>{answer}</answer>", "{answer} <think>{think}</think>"
    cases = [(kept, length, "A") for length in range(1501)]
    cases += [(shape, length, answer) for length in range(0, 1501, 25) for shape, answer in
              ((kept, "B"), (broken, "A"), (broken, "B"))]  # fmt: skip
    completions = [shape.format(think="x" * length, answer=answer) for shape, length, answer in cases]
    acc = [float(answer == "A") for _, _, answer in cases]  # the original's rule: first character against gold A
    expected = oracle_combined_reward(acc, [oracle_format_reward(c) for c in completions])
    got = get_tinyllava_r1_reward(rule="original")(completions, solution=["<answer>A</answer>"] * len(completions))
    stored = torch.tensor(got, dtype=torch.float32).tolist()  # as TRL stores each reward
    mismatches = [(c[-30:], e, s) for c, e, s in zip(completions, expected, stored, strict=True) if e != s]
    assert mismatches == []
    assert stored == got  # float32 values already: what the reward returns is what TRL trains on


def test_float32_combination_over_12000_accuracy_and_format_values():
    from rewards.tinyllava_r1 import combine_float32

    rng = random.Random(0)
    acc = [float(rng.random() < 0.5) for _ in range(12_000)]
    fmt = [rng.choice([0.0, 0.5 + 0.5 * min(rng.randint(0, 1500) / 1200, 1.0), rng.uniform(0.0, 1.0)]) for _ in acc]
    expected = oracle_combined_reward(acc, fmt)
    got = [combine_float32(a, f) for a, f in zip(acc, fmt, strict=True)]
    assert [-2.0 if g == 0 else g for g in got] == expected


def test_a_later_sft_question_keeps_its_whitespace_as_the_original(tmp_path):
    """The original's `qwen2_base` writes each later question as given, `"USER: {Q2} "`; only the video question is
    stripped."""
    from r1video.data.records import sft_example
    from r1video.model import build_tiny_model
    from r1video.model.templates import EOS, QWEN2_BASE_SYSTEM
    from r1video.trainer.sft_collator import tokenize_conversation

    _, processor = build_tiny_model(tmp_path)
    record = {
        "video": "clip.mp4",
        "conversations": [
            {"from": "human", "value": "<image>\n Q1? "},
            {"from": "gpt", "value": "A1"},
            {"from": "human", "value": "  Q2? \n"},
            {"from": "gpt", "value": " A2"},
        ],
    }
    messages = sft_example(record, str(tmp_path))["messages"]
    expected = f"{QWEN2_BASE_SYSTEM}USER: <image>\nQ1? ASSISTANT: A1{EOS}USER:   Q2? \n ASSISTANT:  A2{EOS}"
    assert processor.apply_chat_template(messages, tokenize=False) == expected
    input_ids, _ = tokenize_conversation(processor, messages)
    assert processor.tokenizer.decode(input_ids) == processor.expand_placeholders(expected)

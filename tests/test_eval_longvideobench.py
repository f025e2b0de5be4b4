"""LongVideoBench: the published layout, the original's frames, subtitle interleaving, option prompt and parser.

The original is TinyLLaVA-Video's `eval/eval_lvbench.py` and `eval/lvbenchdataset.py` (seed-facts §9); each rule is
written out below next to the test that checks it.
"""

import os

import numpy as np
import pytest
from eval_fixtures import frame_index, make_longvideobench, write_json

from r1video.eval import BenchmarkDataError, EvalConfig, get_benchmark, load_samples, run_evaluation
from r1video.eval.benchmarks import longvideobench
from r1video.eval.frames import load_sample_frames, lvb_frame_count, lvb_frame_indices
from r1video.eval.prompts import build_prompt
from r1video.eval.scoring import ANSWERED, NO_LETTER, extract_prediction, original_option_choice
from r1video.model import build_tiny_model, load_pretrained
from r1video.model.templates import QWEN2_BASE_SYSTEM
from r1video.policies import policy_for


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    return make_longvideobench(tmp_path_factory.mktemp("lvb") / "LongVideoBench")


def test_reads_lvb_val_with_answer_letters_groups_and_subtitles(copy):
    samples = longvideobench.load(copy)
    assert [(s.id, s.group, s.answer) for s in samples] == [
        ("vidA_0", "8-15s", "B"),
        ("vidA_1", "8-15s", "D"),
        ("vidB_2", "15-60s", "A"),
    ]
    first = samples[0]
    assert first.video == os.path.join(copy, "videos", "vidA.mp4") and first.reader == "lvb"
    assert first.duration == 3.0 and first.choices[1] == "A cat sleeps."
    # "HH:MM:SS.fff" times, shifted back by starting_timestamp_for_subtitles (10 s)
    assert [(round(a, 3), round(b, 3), t) for a, b, t in first.subtitles] == [
        (0.2, 0.6, "Hello there."),
        (1.0, 2.8, "Look at this."),
        (10.0, 11.0, "Never shown."),
    ]
    # `timestamp` lines: an end that is not a float (the last line's null) is the video's duration
    assert samples[2].subtitles == ((0.0, 1.5, "First words."), (1.5, 2.5, "Last words."))


def test_duration_group_selection_by_name_or_value(copy):
    assert [s.id for s in longvideobench.load(copy, tasks=["60"])] == ["vidB_2"]
    assert len(longvideobench.load(copy, tasks=["8-15s"])) == 2
    with pytest.raises(ValueError, match="unknown LongVideoBench task.*8-15s"):
        longvideobench.load(copy, tasks=["long"])


def test_missing_subtitles_and_bad_answers_are_named(tmp_path):
    root = make_longvideobench(tmp_path / "LVB")
    os.remove(os.path.join(root, "subtitles", "vidB_en.json"))
    with pytest.raises(
        BenchmarkDataError, match=r"subtitles/vidB_en.json: missing \(the subtitles named by .*record 2"
    ):
        longvideobench.load(root)
    write_json(os.path.join(root, "lvb_val.json"), [{"duration_group": 15, "candidates": ["a"], "correct_choice": 3}])
    with pytest.raises(BenchmarkDataError, match="record 0: correct_choice 3 is not an index"):
        longvideobench.load(root)


def test_frames_follow_the_originals_rule(copy):
    """lvbenchdataset.py `load_video`: n = int(min(N, int(duration))), indices int(int(duration * fps) / n) * i.
    vidA: 24 frames at 8 fps, annotated 3.0 s -> n = 3 of 16, step int(24 / 3) = 8; vidB (2.5 s): n = 2, step 10."""
    assert lvb_frame_count(3.0, 16, None, None) == 3 and lvb_frame_count(700.0, 16, None, None) == 16
    assert lvb_frame_count(700.0, None, 1.0, 64) == 64 and lvb_frame_count(30.5, None, 1.0, 64) == 30  # -1 mode
    assert lvb_frame_indices(563.37, 29.97, 16) == [1055 * i for i in range(16)]
    samples = longvideobench.load(copy)
    frames, indices = load_sample_frames(samples[0], 16)
    assert indices == [0, 8, 16] and [frame_index(f) for f in frames] == [0, 8, 16]
    assert load_sample_frames(samples[2], 16)[1] == [0, 10]
    assert load_sample_frames(samples[0], None, fps=1.0, max_frames=2)[1] == [0, 12]


def test_subtitles_interleave_with_frames_as_the_original():
    """insert_subtitles_into_frames: frames up to a line's midpoint come before it; a line is kept only if a frame is
    strictly inside it, a line under a second widened to the second around its midpoint; leftover frames last."""
    frame_times = [0.0, 1.0, 2.0]
    lines = [(0.2, 0.6, "Hi"), (1.4, 1.8, "there"), (5.0, 6.0, "gone")]
    assert longvideobench.interleave_subtitles(frame_times, lines) == "[image]Hi[image]there[image]"
    assert longvideobench.interleave_subtitles(frame_times, []) == "[image][image][image]"


def test_prompt_is_the_originals_option_prompt_with_subtitles(copy):
    """eval_lvbench.py: question = "subtitles:" + interleaved + "\\n" + "question: <image>" + "\\n" + "{q}\\nA. ..\\n
    Answer with the option's letter from the given choices directly."; the qwen2_base template removes <image>,
    strips, and starts the turn with "<image>\\n"."""
    # vidB: frames 0 and 10 at 8 fps -> 0 s and 1.25 s; "Last words." (1.5-2.5 s) holds no frame and is left out
    sample = longvideobench.load(copy)[2]
    benchmark = get_benchmark("longvideobench")
    prefix = benchmark.question_prefix(sample, [0, 10])
    assert prefix == "subtitles:[image]First words.[image]\nquestion: \n"
    prompt = build_prompt(sample, "option", benchmark.layouts, policy_for("tinyllava"), None, prefix)
    assert prompt == (
        f"{QWEN2_BASE_SYSTEM}USER: <image>\nsubtitles:[image]First words.[image]\nquestion: \n"
        "What happens in clip vidB? Think. Think.\nA. Yes\nB. No\n"
        "Answer with the option's letter from the given choices directly. ASSISTANT:"
    )


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("B", ("B", ANSWERED)),
        ("B. A cat sleeps.", ("B", ANSWERED)),
        ("  'C'.", ("C", ANSWERED)),  # blanks, then , . ! ? ; : ' stripped in turn
        ("The answer is (D), not (A).", ("A", ANSWERED)),  # several (X): the one written last
        ("I think it is C here", ("C", ANSWERED)),  # " X " when no "(X)"
        ("a cat is sleeping on the sofa all day", (None, NO_LETTER)),  # texts lose their last char: "A cat sleeps"
        ("In the clip a cat sleeps. Then a dog runs.", ("A", ANSWERED)),  # > 5 words: option text, the last one
        ("b", (None, NO_LETTER)),  # lower case is not a letter here (the original guesses)
        ("", (None, NO_LETTER)),
    ],
)
def test_original_option_parser(completion, expected, copy):
    """The original's parse_multi_choice_response (MMMU-style) with its index2ans `"A. text".split(". ")[1][:-1]`."""
    sample = longvideobench.load(copy)[0]
    texts = get_benchmark("longvideobench").original_option_texts(sample)
    assert texts == ("A dog runs", "A cat sleeps", "Rain falls", "Nothing")
    assert tuple(original_option_choice(completion, sample.letters, texts)) == expected
    assert tuple(extract_prediction(completion, sample.letters, "original", "option", texts)) == expected


def test_end_to_end_both_protocols(copy, tmp_path):
    model_dir = tmp_path / "model"
    build_tiny_model(model_dir)
    tiny = load_pretrained(str(model_dir))
    common = dict(output_dir=str(tmp_path / "out"), max_new_tokens=3, prompt="option")
    robust = run_evaluation(EvalConfig("longvideobench", copy, "tiny", **common), *tiny, progress=False)
    assert robust.results["counts"]["questions"] == 3 and robust.num_generated == 3
    original = run_evaluation(
        EvalConfig("longvideobench", copy, "tiny", protocol="original", **common), *tiny, progress=False
    )
    assert original.num_generated == 0 and original.results["headline"]["reported"] == "random"
    assert [len(s.choices) for s in load_samples(EvalConfig("longvideobench", copy, "m"))] == [4, 5, 2]


def oracle_tv_parse(response, all_choices, index2ans):
    """TinyLLaVA-Video's `parse_multi_choice_response` (eval_lvbench.py), transcribed step by step, guess -> None."""
    response = response.strip()
    for char in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(char)
    if len(response) == 0:
        return None
    if response[0] in all_choices:
        return response[0]
    response = " " + response + " "
    index_ans, ans_with_brack, candidates = True, False, []
    for choice in all_choices:
        if f"({choice})" in response:
            candidates.append(choice)
            ans_with_brack = True
    if len(candidates) == 0:
        for choice in all_choices:
            if f" {choice} " in response:
                candidates.append(choice)
    if len(candidates) == 0 and len(response.split()) > 5:
        for index, ans in index2ans.items():
            if ans.lower() in response.lower():
                candidates.append(index)
                index_ans = False
    if len(candidates) == 0:
        return None
    if len(candidates) == 1:
        return candidates[0]
    if index_ans:
        marker = "({})" if ans_with_brack else " {} "
        starts = [response.rfind(marker.format(can)) for can in candidates]
    else:
        starts = [response.lower().rfind(index2ans[can].lower()) for can in candidates]
    return candidates[int(np.argmax(starts))]


def test_original_option_parser_agrees_with_the_transcription_on_varied_completions():
    rng = np.random.default_rng(0)
    options = ["A dog runs.", "A cat sleeps.", "Rain falls.", "Nothing happens at all."]
    letters = "ABCD"
    index2ans = {L: f"{L}. {o}".split(". ")[1][:-1] for L, o in zip(letters, options, strict=True)}
    pieces = ["A", "B", "(C)", "(d)", " D ", "cat sleeps", "rain falls", "nothing", "the answer is", "I think", ".", "'",
              "!", "dog runs", "Option", "b", "(A)", "so", "and", "maybe", " C ", "\n"]  # fmt: skip
    for _ in range(3000):
        completion = " ".join(rng.choice(pieces, size=int(rng.integers(0, 9))))
        expected = oracle_tv_parse(completion, list(letters), index2ans)
        ours = original_option_choice(completion, letters, tuple(index2ans.values()))
        assert ours.letter == expected, completion
        assert (ours.status == NO_LETTER) == (expected is None)

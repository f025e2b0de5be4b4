"""The synthetic video-QA set: deterministic, answers right by construction, balanced, readable by the loaders."""

import filecmp
import hashlib
import json
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from r1video.data.cli import main
from r1video.data.loaders import load_grpo_dataset, load_sft_dataset
from r1video.data.records import parse_choices, question_stem
from r1video.data.synth import BACKGROUND, COLOURS, generate_synthetic_dataset
from r1video.data.validate import validate_file
from r1video.data.video import load_video_frames

ANNOTATIONS = [
    "grpo_train.jsonl",
    "test.jsonl",
    "sft_train.json",
    "sft_caption.json",
    "sft_openqa.json",
    "coldstart.json",
    "manifest.json",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synth") / "a", n=32, n_test=16, seed=5)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def answer_from_pixels(frames: np.ndarray, task: str) -> str:
    """Work the answer out of the decoded frames `(T, H, W, 3)`, with no access to how the clip was made."""
    foreground = np.abs(frames.astype(int) - BACKGROUND).max(axis=-1) > 40  # (T, H, W)
    visible = foreground.sum(axis=(1, 2)) > 4

    def colour_of(frame, mask):
        mean = frame[mask].mean(axis=0)
        return min(["red", "green", "blue", "yellow"], key=lambda name: np.abs(mean - COLOURS[name]).sum())

    if task == "direction":
        ys, xs = zip(*(np.argwhere(mask).mean(axis=0) for mask in foreground), strict=True)
        dx, dy = xs[-1] - xs[0], ys[-1] - ys[0]
        if abs(dx) > abs(dy):
            return "right" if dx > 0 else "left"
        return "down" if dy > 0 else "up"
    if task == "colour":
        return colour_of(frames[-1], foreground[-1])
    if task == "count":
        return str(int(visible[0]) + int(np.sum(visible[1:] & ~visible[:-1])))
    return colour_of(frames[0], foreground[0])  # order: only the first square is there at the start


def test_same_seed_same_bytes(data, tmp_path):
    again = generate_synthetic_dataset(tmp_path / "b", n=32, n_test=16, seed=5)
    for name in ANNOTATIONS:
        assert filecmp.cmp(f"{data.root}/{name}", f"{again.root}/{name}", shallow=False), name
    other = generate_synthetic_dataset(tmp_path / "c", n=32, n_test=16, seed=6)
    assert not filecmp.cmp(data.grpo_train, other.grpo_train, shallow=False)


def _hashes(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_synth_twice_gives_identical_bytes_in_every_file(tmp_path):
    # Two processes, as a user runs it: x264 read a few uninitialised bytes past each picture, so about 1 clip in 50
    # came out with other bytes (on 666becb, 200 clips differed in 5 of 6 pairs of runs).
    command = [sys.executable, "-m", "r1video", "data", "synth", "--seed", "0", "--n", "200", "--n-test", "4"]
    for name in ("a", "b"):
        subprocess.run([*command, "--out", str(tmp_path / name)], check=True, capture_output=True, timeout=300)
    first, second = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert len(first) == 200 + 4 + 16 + len(ANNOTATIONS)
    assert [name for name in first if first[name] != second.get(name)] == []


@pytest.mark.parametrize("split", ["grpo_train", "test"])
def test_answers_are_right_by_construction(data, split):
    for record in read_jsonl(getattr(data, split)):
        frames = load_video_frames(f"{data.root}/{record['video_filename']}", num_frames=16).frames
        letter = re.fullmatch(r"<answer>([A-D])</answer>", record["solution"]).group(1)
        options = {c["letter"]: c["text"] for c in parse_choices(record["problem"])}
        assert answer_from_pixels(frames, record["task"]) == options[letter], record


def test_letters_and_tasks_are_balanced(data):
    records = read_jsonl(data.grpo_train)
    assert Counter(r["solution"] for r in records) == {f"<answer>{x}</answer>": 8 for x in "ABCD"}
    assert Counter(r["task"] for r in records) == {"direction": 8, "colour": 8, "count": 8, "order": 8}
    for task in ("direction", "colour", "count", "order"):
        assert set(Counter(r["solution"] for r in records if r["task"] == task).values()) == {2}


def test_text_alone_does_not_give_the_answer(data):
    records = read_jsonl(data.grpo_train) + read_jsonl(data.test)
    for task in ("direction", "colour", "count", "order"):
        problems = [r["problem"] for r in records if r["task"] == task]
        option_lists = {tuple(c["text"] for c in parse_choices(p)) for p in problems}
        assert len(option_lists) == 1  # every question of a task offers the same options in the same order
        for record in (r for r in records if r["task"] == task):
            options = {c["letter"]: c["text"] for c in parse_choices(record["problem"])}
            answer = options[record["solution"][8]]
            assert not re.search(rf"\b{answer}\b", question_stem(record["problem"]))


def test_shuffled_options_stay_balanced_and_correct(tmp_path):
    data = generate_synthetic_dataset(tmp_path / "s", n=16, n_test=0, n_coldstart=0, seed=1, shuffle_options=True)
    records = read_jsonl(data.grpo_train)
    assert Counter(r["solution"] for r in records) == {f"<answer>{x}</answer>": 4 for x in "ABCD"}
    assert len({r["problem"] for r in records if r["task"] == "colour"}) > 1  # option order varies
    for record in records:
        frames = load_video_frames(f"{data.root}/{record['video_filename']}", num_frames=16).frames
        options = {c["letter"]: c["text"] for c in parse_choices(record["problem"])}
        assert answer_from_pixels(frames, record["task"]) == options[record["solution"][8]]


def test_square_size_sets_the_squares_and_answers_stay_right(tmp_path):
    data = generate_synthetic_dataset(tmp_path / "big", n=8, n_test=0, n_coldstart=0, size=32, square=10)
    for record in read_jsonl(data.grpo_train):
        frames = load_video_frames(f"{data.root}/{record['video_filename']}", num_frames=16).frames
        foreground = np.abs(frames.astype(int) - BACKGROUND).max(axis=-1) > 40  # (T, H, W)
        if record["task"] != "order":  # one square: its bounding box is the square, whatever frame it shows in
            ys, xs = np.nonzero(foreground.any(axis=0) if record["task"] != "direction" else foreground[0])
            assert abs(ys.max() - ys.min() + 1 - 10) <= 2 and abs(xs.max() - xs.min() + 1 - 10) <= 2  # H.264 edges
        options = {c["letter"]: c["text"] for c in parse_choices(record["problem"])}
        assert answer_from_pixels(frames, record["task"]) == options[record["solution"][8]]
    with pytest.raises(ValueError, match="square must be between 2 and size // 2 - 2 = 14"):
        generate_synthetic_dataset(tmp_path / "too-big", n=4, size=32, square=15)


def test_coldstart_is_16_correct_reasoning_samples(data):
    records = json.load(open(data.coldstart))
    assert len(records) == 16
    letters = [re.search(r"<answer>([A-D])</answer>$", r["conversations"][1]["value"]).group(1) for r in records]
    assert Counter(zip((r["task"] for r in records), letters, strict=True)) == {
        (task, letter): 1 for task in ("direction", "colour", "count", "order") for letter in "ABCD"
    }
    for record in records:
        human, gpt = (turn["value"] for turn in record["conversations"])
        assert human.startswith("<image>\n") and human.endswith("in <answer> </answer> tags.")
        think, letter = re.fullmatch(r"<think>(.+)</think> <answer>([A-D])</answer>", gpt).groups()
        # The instruction follows the last option on its line (as in the original), hence `startswith` below.
        answer = {c["letter"]: c["text"] for c in parse_choices(human)}[letter]
        frames = load_video_frames(f"{data.root}/{record['video']}", num_frames=16).frames
        truth = answer_from_pixels(frames, record["task"])
        assert answer.startswith(truth) and re.search(rf"\b{truth}\b", think)


def test_files_load_and_validate(data):
    assert len(load_grpo_dataset(data.grpo_train, data.root)) == 32
    assert len(load_grpo_dataset(data.test, data.root)) == 16
    option_sft = load_sft_dataset(data.sft_train, data.root)
    grpo = read_jsonl(data.grpo_train)
    assert [row["messages"][1]["content"][0]["text"] for row in option_sft] == [r["solution"][8] for r in grpo]
    assert len(load_sft_dataset(data.coldstart, data.root)) == 16
    for path in (data.grpo_train, data.test, data.sft_train, data.sft_caption, data.coldstart):
        report = validate_file(path, data.root)
        assert report.ok, report.issues


def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", "--out", str(out), "--n", "8", "--n-test", "4", "--seed", "2", "--size", "32"]) == 0
    assert "train 8, test 4, coldstart 16" in capsys.readouterr().out
    frames = load_video_frames(out / "videos" / "train" / "000000.mp4").frames
    assert frames.shape == (48, 32, 32, 3)  # 16 beats x 3 frames, at the requested size


def test_captions_and_open_qa_are_written_in_the_llava_video_format(data):
    """TinyLLaVA-Video's two stages read LLaVA-Video-178K files: captions (pretrain) and open QA (finetune), a JSON
    list of `{"id", "video", "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", ...}]}`."""
    with open(data.sft_openqa) as f:
        openqa = json.load(f)
    with open(data.sft_caption) as f:
        captions = json.load(f)
    grpo = read_jsonl(data.grpo_train)
    assert len(openqa) == len(captions) == len(grpo) == 32
    for record, caption, question in zip(openqa, captions, grpo, strict=True):
        turns = record["conversations"]
        assert [t["from"] for t in turns] == ["human", "gpt", "human", "gpt"]
        assert record["video"] == caption["video"] == question["video_filename"].removeprefix("./")
        assert turns[0]["value"] == "<image>\n" + question_stem(question["problem"])  # no options: open-ended
        letter = question["solution"].removeprefix("<answer>").removesuffix("</answer>")
        option = {c["letter"]: c["text"] for c in parse_choices(question["problem"])}[letter]
        assert turns[1]["value"] == f"{option.capitalize()}."
        assert turns[3]["value"] == caption["conversations"][1]["value"]
    assert len(load_sft_dataset(data.sft_openqa, data.root)) == 32
    assert validate_file(data.sft_openqa, data.root).ok

"""Annotation files → `datasets.Dataset`s of TRL conversational examples with a resolved `video` column."""

import json

import pytest
from video_fixtures import write_numbered_clip

from r1video.data.bad_samples import BadSampleTracker, TooManyBadSamplesError
from r1video.data.loaders import load_grpo_dataset, load_sft_dataset, load_video_dataset
from r1video.data.paths import PathEscapeError, resolve_video_path
from r1video.data.records import answer_letter, parse_choices

PROBLEM = "What does the man do after sitting down?\nA. stands up\nB. waves\nC. eats\nD. sleeps"


@pytest.fixture
def root(tmp_path):
    (tmp_path / "NextQA").mkdir()
    write_numbered_clip(tmp_path / "NextQA" / "a.mp4", count=10)
    return tmp_path


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_grpo_jsonl_becomes_conversational_prompts(root):
    record = {"problem": PROBLEM, "solution": "<answer>C</answer>", "video_filename": "./NextQA/a.mp4", "qid": 7}
    data = load_grpo_dataset(write_jsonl(root / "train.jsonl", [record]), root)
    row = data[0]
    assert row["prompt"][0]["role"] == "user"
    assert [part["type"] for part in row["prompt"][0]["content"]] == ["video", "text"]
    assert row["prompt"][0]["content"][1]["text"] == PROBLEM
    assert row["video"] == str(root / "NextQA" / "a.mp4")
    assert (row["solution"], row["answer"], row["qid"]) == ("<answer>C</answer>", "C", 7)  # extra columns pass through
    assert [c["letter"] for c in row["choices"]] == ["A", "B", "C", "D"]
    assert row["choices"][2]["text"] == "eats"


def test_question_template(root):
    record = {"problem": PROBLEM, "solution": "C", "video_filename": "NextQA/a.mp4"}
    data = load_grpo_dataset(write_jsonl(root / "t.jsonl", [record]), root, question_template="{Question} Think.")
    assert data[0]["prompt"][0]["content"][1]["text"] == PROBLEM + " Think."


@pytest.mark.parametrize(
    ("human", "gpt", "keys"),
    [("human", "gpt", ("from", "value")), ("user", "assistant", ("role", "content"))],
)
@pytest.mark.parametrize("token", ["<image>", "<video>"])
def test_llava_sft_json(root, human, gpt, keys, token):
    speaker, text = keys
    record = {
        "id": "v1",
        "video": "NextQA/a.mp4",
        "conversations": [
            {speaker: human, text: f"{token}\n{PROBLEM}"},
            {speaker: gpt, text: "B. waves"},
            {speaker: human, text: "Why?"},
            {speaker: gpt, text: "Because he sees a friend."},
        ],
    }
    (root / "sft.json").write_text(json.dumps([record], indent=2))
    row = load_sft_dataset(root / "sft.json", root)[0]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "user", "assistant"]
    first = row["messages"][0]["content"]
    assert first[0]["type"] == "video" and first[1]["text"] == PROBLEM  # the placeholder token is gone
    assert row["messages"][1]["content"][0]["text"] == "B. waves"
    assert row["video"] == str(root / "NextQA" / "a.mp4") and row["id"] == "v1"
    assert len(row["choices"]) == 4


def test_load_video_dataset_tells_formats_apart(root):
    grpo = write_jsonl(root / "g.jsonl", [{"problem": "Q?", "solution": "yes", "video_filename": "NextQA/a.mp4"}])
    sft = root / "s.json"
    sft.write_text(
        json.dumps(
            [
                {
                    "video": "NextQA/a.mp4",
                    "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "yes"}],
                }
            ]
        )
    )
    assert "prompt" in load_video_dataset(grpo, root).column_names
    assert "messages" in load_video_dataset(sft, root).column_names


def test_bad_record_names_file_and_line(root):
    records = [{"problem": PROBLEM, "solution": "C", "video_filename": "NextQA/a.mp4"}, {"problem": PROBLEM}]
    path = write_jsonl(root / "bad.jsonl", records)
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: solution: missing"):
        load_grpo_dataset(path, root)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Q?\nA. red\nB. blue", [("A", "red"), ("B", "blue")]),
        ("Q?\n(A) red\n(B) blue\n(C) green", [("A", "red"), ("B", "blue"), ("C", "green")]),
        ("Q?\nOptions:\nA) red\nB) blue", [("A", "red"), ("B", "blue")]),
        ("A man walks. What next?\nA. sits\nB. runs", [("A", "sits"), ("B", "runs")]),
        ("Q?\nB. only one", []),
        ("What is the weather?", []),
    ],
)
def test_parse_choices(text, expected):
    assert [(c["letter"], c["text"]) for c in parse_choices(text)] == expected


@pytest.mark.parametrize(
    ("solution", "letter"),
    [
        ("<answer>C</answer>", "C"),
        ("C", "C"),
        ("(C)", "C"),
        ("C. pick up", "C"),
        ("<answer> B </answer>", "B"),
        ("A man", None),
    ],
)
def test_answer_letter(solution, letter):
    assert answer_letter(solution) == letter


def test_paths_resolve_inside_the_root(root):
    target = str(root / "NextQA" / "a.mp4")
    assert resolve_video_path(root, "./NextQA/a.mp4") == target  # the released files' "./" form
    assert resolve_video_path(root, "NextQA/a.mp4") == target
    assert resolve_video_path(root, "/NextQA/a.mp4") == target  # what the original's root + name[1:] built
    assert resolve_video_path(root, target) == target  # absolute, already inside
    assert resolve_video_path(root, "NextQA/../NextQA/a.mp4") == target


@pytest.mark.parametrize("name", ["../secret.mp4", "NextQA/../../secret.mp4", "/etc/passwd"])
def test_paths_that_escape_the_root_are_errors(root, name):
    with pytest.raises(PathEscapeError):
        resolve_video_path(root, name)


def test_bad_sample_tracker_skips_then_stops(root):
    good = str(root / "NextQA" / "a.mp4")
    tracker = BadSampleTracker(max_bad_fraction=0.25, min_samples=8)
    results = [tracker.load(path, num_frames=2) for path in [good, good, good, root / "missing.mp4"]]
    assert results[3] is None and results[0].frames.shape[0] == 2
    assert (tracker.num_good, tracker.num_bad) == (3, 1)
    for _ in range(3):
        tracker.load(good, num_frames=2)
    # 2 bad of 8 tried = 25%: still allowed. The next bad one passes the limit.
    assert tracker.load(root / "missing.mp4", num_frames=2) is None
    with pytest.raises(TooManyBadSamplesError, match=r"3 of 9 videos .* limit of 25\.0%.*missing\.mp4"):
        tracker.load(root / "gone.mp4", num_frames=2)


def test_bad_sample_tracker_waits_for_min_samples(root):
    tracker = BadSampleTracker(max_bad_fraction=0.1, min_samples=6)
    assert tracker.load(root / "NextQA" / "a.mp4", num_frames=2) is not None
    for _ in range(4):
        assert tracker.load(root / "missing.mp4") is None  # 80% bad, but too few tried to judge
    with pytest.raises(TooManyBadSamplesError, match="5 of 6 videos"):
        tracker.load(root / "missing.mp4")


@pytest.mark.parametrize(("limit", "stops_at"), [(0.05, 3), (0.1, 4), (0.5, 10)])
def test_when_every_clip_fails_the_tracker_stops_before_min_samples(root, limit, stops_at):
    # A run whose clips all fail trained at loss 0 until 20 clips were tried; the first `n` failing in a row is
    # stopped once a data set within the limit would do that with a chance under 0.1% (limit ** n < 0.001).
    tracker = BadSampleTracker(max_bad_fraction=limit, min_samples=20)
    for _ in range(stops_at - 1):
        assert tracker.load(root / "missing.mp4") is None
    with pytest.raises(TooManyBadSamplesError, match=f"the first {stops_at} videos all failed to decode"):
        tracker.load(root / "missing.mp4")
    never = BadSampleTracker(max_bad_fraction=1.0, min_samples=20)  # "every clip may fail" is never stopped
    for _ in range(30):
        assert never.load(root / "missing.mp4") is None

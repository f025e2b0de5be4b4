"""Annotation files as real data sets have them: empty files, byte-order marks, reserved column names, duplicate ids."""

import json

import pytest
from video_fixtures import write_numbered_clip

from r1video.data.cli import main
from r1video.data.loaders import load_grpo_dataset
from r1video.data.validate import validate_file

PROBLEM = "What colour is the box?\nA. red\nB. blue\nC. green\nD. white"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    (root / "videos").mkdir()
    for name in ("a", "b"):
        write_numbered_clip(root / "videos" / f"{name}.mp4", count=8)
    return root


def grpo(video="a.mp4", problem=PROBLEM, **extra):
    return {"problem": problem, "solution": "<answer>B</answer>", "video_filename": f"videos/{video}", **extra}


@pytest.mark.parametrize("content", ["", "  \n\t\n", "[]", " [ ]\n"], ids=["empty", "blank", "list", "spaced"])
def test_a_file_without_records_is_reported_and_fails(root, content, capsys):
    path = root / "empty.jsonl"
    path.write_text(content)
    report = validate_file(path, root)
    assert not report.ok and [issue.code for issue in report.issues] == ["no_records"]
    assert main(["validate", str(path), "--video-root", str(root)]) == 1
    assert "no records" in capsys.readouterr().out


@pytest.mark.parametrize("layout", ["json_list", "jsonl"])
def test_a_byte_order_mark_is_read_past(root, layout):
    records = [grpo("a.mp4"), grpo("b.mp4")]
    text = json.dumps(records, indent=2) if layout == "json_list" else "".join(json.dumps(r) + "\n" for r in records)
    path = root / f"bom_{layout}.json"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    report = validate_file(path, root)
    assert report.ok, report.issues
    assert report.num_records == 2
    assert len(load_grpo_dataset(path, root)) == 2


def test_reserved_names_are_trl_reward_arguments():
    """The names come from TRL's reward call; if TRL adds or renames one, this test says so."""
    import inspect

    from trl import GRPOTrainer

    from r1video.data.records import RESERVED_COLUMNS

    source = inspect.getsource(GRPOTrainer._calculate_rewards)
    for name in RESERVED_COLUMNS:
        assert f'"{name}"' in source or f"{name}=" in source, name


@pytest.mark.parametrize("column", ["completions", "prompts", "completion_ids", "trainer_state", "log_metric"])
def test_a_column_named_like_a_trl_reward_argument_is_refused(root, column):
    path = root / "reserved.jsonl"
    path.write_text(json.dumps(grpo("a.mp4")) + "\n" + json.dumps(grpo("b.mp4", **{column: "x"})) + "\n")
    report = validate_file(path, root)
    assert [(issue.line, issue.field, issue.code) for issue in report.issues] == [(2, column, "reserved_field")]
    with pytest.raises(ValueError, match=rf"reserved\.jsonl:2: {column}: .*TRL passes to reward functions"):
        load_grpo_dataset(path, root)


def test_duplicate_ids_in_grpo_records_are_reported(root):
    records = [grpo("a.mp4", id="q1"), grpo("b.mp4", id="q2"), grpo("b.mp4", problem="Other?", id="q1")]
    path = root / "ids.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = validate_file(path, root)
    assert [(issue.line, issue.field, issue.code) for issue in report.issues] == [(3, "id", "duplicate")]
    assert "line 1" in report.issues[0].message

"""Annotation files as real data sets have them: empty files, byte-order marks, reserved column names, duplicate ids."""

import json
import re

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


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from r1video.model import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-model")
    build_tiny_model(out, seed=0)
    return str(out)


LONG_PROBLEM = "Which word comes last? " + "word " * 4000 + "\nA. word\nB. other"  # about 20,000 characters


def write_long_file(root, fmt):
    if fmt == "grpo":
        path = root / "long.jsonl"
        long = grpo("b.mp4", problem=LONG_PROBLEM, id="long-one")
        path.write_text(json.dumps(grpo("a.mp4", id="short")) + "\n" + json.dumps(long) + "\n")
        return path, 2, "problem"
    path = root / "long.json"
    conversations = [{"from": "human", "value": "<image>\n" + LONG_PROBLEM}, {"from": "gpt", "value": "A"}]
    path.write_text(json.dumps([{"id": "long-one", "video": "videos/a.mp4", "conversations": conversations}]))
    return path, 1, "conversations"


@pytest.mark.parametrize("fmt", ["grpo", "sft"])
def test_validate_with_a_model_flags_prompts_over_its_maximum(root, model_dir, fmt, capsys):
    path, line, field = write_long_file(root, fmt)
    assert main(["validate", str(path), "--video-root", str(root)]) == 0  # lengths need the model's tokenizer
    capsys.readouterr()
    assert main(["validate", str(path), "--video-root", str(root), "--model", model_dir, "--json"]) == 1
    issues = json.loads(capsys.readouterr().out)["issues"]
    assert [(i["line"], i["field"], i["code"]) for i in issues] == [(line, field, "prompt_too_long")]
    assert "over the model's maximum 4096" in issues[0]["message"]


@pytest.mark.parametrize("stage", ["grpo", "sft"])
def test_training_names_the_record_whose_prompt_is_too_long(root, model_dir, stage, tmp_path):
    from r1video import grpo, sft

    path, line, _ = write_long_file(root, stage)
    entry = grpo if stage == "grpo" else sft
    argv = ["--model_name_or_path", model_dir, "--train_file", str(path), "--video_root", str(root)]
    argv += ["--output_dir", str(tmp_path), "--use_cpu", "true", "--report_to", "none", "--num_frames", "2"]
    argv += ["--max_steps", "1", "--save_strategy", "no", "--per_device_train_batch_size", "2"]
    if stage == "grpo":
        argv += ["--reward_funcs", "format", "--num_generations", "2", "--max_completion_length", "2"]
    with pytest.raises(ValueError, match=rf"long\.jsonl?:{line} \(id 'long-one'\): \d+") as caught:
        entry.main(argv)
    assert "maximum of 4096 tokens" in str(caught.value)


@pytest.mark.parametrize("layout", ["json_list", "jsonl"])
def test_a_utf16_file_as_windows_powershell_writes_it_is_read(root, layout, capsys):
    records = [grpo("a.mp4", note="café"), grpo("b.mp4")]
    text = json.dumps(records, indent=2) if layout == "json_list" else "".join(json.dumps(r) + "\n" for r in records)
    path = root / f"utf16_{layout}.json"
    path.write_bytes(text.encode("utf-16"))  # with its byte-order mark, as `>` in PowerShell 5 writes
    report = validate_file(path, root)
    assert report.ok, report.issues
    assert load_grpo_dataset(path, root)["note"] == ["café", None]
    assert main(["validate", str(path), "--video-root", str(root)]) == 0


def test_utf16_without_its_byte_order_mark_is_named_not_a_traceback(root):
    path = root / "utf16le.jsonl"
    path.write_bytes((json.dumps(grpo("a.mp4")) + "\n").encode("utf-16-le"))
    report = validate_file(path, root)
    assert [(issue.line, issue.code) for issue in report.issues] == [(1, "invalid_json")]
    assert "UTF-16 or UTF-32 without a byte-order mark" in report.issues[0].message
    with pytest.raises(ValueError, match=rf"^{path}:1: not UTF-8 text: NUL bytes"):
        load_grpo_dataset(path, root)


def test_bytes_that_are_not_utf8_are_named_by_file_and_line(root):
    path = root / "latin1.jsonl"
    lines = [json.dumps(grpo("a.mp4")).encode(), json.dumps(grpo("b.mp4", note="café"), ensure_ascii=False).encode()]
    path.write_bytes(lines[0] + b"\n" + lines[1].replace("é".encode(), b"\xe9") + b"\n")  # a Latin-1 é on line 2
    report = validate_file(path, root)
    assert [(issue.line, issue.code) for issue in report.issues] == [(2, "invalid_json")]
    assert "not UTF-8 text: byte 0xe9" in report.issues[0].message
    with pytest.raises(ValueError, match=rf"^{path}:2: not UTF-8 text: byte 0xe9 at column \d+"):
        load_grpo_dataset(path, root)


def test_a_prediction_line_that_is_not_utf8_is_named_by_file_and_line(tmp_path):
    from r1video.eval.predictions import PredictionLog

    path = tmp_path / "predictions.jsonl"
    path.write_bytes(b'{"id": "q1", "completion": "A"}\n{"id": "q2", "completion": "caf\xe9"}\n{"id": "q3"}\n')
    with pytest.raises(ValueError, match=rf"^{path}:2: not a prediction record \(not UTF-8 text: byte 0xe9"):
        PredictionLog(path)


@pytest.mark.parametrize("column", ["answer", "prompt", "video", "choices"])
def test_a_grpo_column_r1video_fills_itself_is_refused_naming_file_line_and_column(root, column):
    path = root / f"filled_{column}.jsonl"
    records = [grpo("a.mp4"), {**grpo("b.mp4"), column: "the user's own value"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    # On 666becb the row loaded with r1video's value in place of the user's ("B", the prompt, the path, the options).
    with pytest.raises(ValueError, match=rf"^{path}:2: {column}: r1video fills this column itself"):
        load_grpo_dataset(path, root)
    report = validate_file(path, root)
    assert [(issue.line, issue.field, issue.code) for issue in report.issues] == [(2, column, "reserved_field")]


@pytest.mark.parametrize("column", ["answer", "choices", "messages"])
def test_an_sft_column_r1video_fills_itself_is_refused(root, column):
    from r1video.data.loaders import load_sft_dataset

    record = {"id": "x", "video": "videos/a.mp4", column: "mine", "conversations": [
        {"from": "human", "value": "<image>\n" + PROBLEM}, {"from": "gpt", "value": "B"}]}  # fmt: skip
    path = root / f"sft_filled_{column}.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(ValueError, match=rf"^{path}:1: {column}: r1video fills this column itself"):
        load_sft_dataset(path, root)


def write_long_reply_file(root, words: int):
    """One SFT record whose question is short and whose reply (ending in its <answer>) is `words` words long."""
    path = root / f"long_reply_{words}.json"
    reply = "<think>" + "word " * words + "</think> <answer>A</answer>"
    conversations = [{"from": "human", "value": "<image>\n" + PROBLEM}, {"from": "gpt", "value": reply}]
    path.write_text(json.dumps([{"id": "long-reply", "video": "videos/a.mp4", "conversations": conversations}]))
    return path


def test_validate_with_a_model_flags_an_sft_reply_that_training_would_cut(root, model_dir, capsys):
    path = write_long_reply_file(root, 1400)  # a 73-token prompt, a 4288-token conversation; the limit is 4096
    assert main(["validate", str(path), "--video-root", str(root), "--model", model_dir, "--json"]) == 1
    issues = json.loads(capsys.readouterr().out)["issues"]
    assert [(i["line"], i["field"], i["code"]) for i in issues] == [(1, "conversations", "conversation_too_long")]
    assert re.search(r"conversation is 4288 tokens .*over the model's maximum 4096", issues[0]["message"])


def test_sft_training_refuses_a_row_whose_reply_max_length_would_cut(root, model_dir, tmp_path):
    from r1video import sft

    path = write_long_reply_file(root, 400)  # 1288 tokens: over max_length 1024, within the model's 4096
    argv = ["--model_name_or_path", model_dir, "--train_file", str(path), "--video_root", str(root)]
    argv += ["--output_dir", str(tmp_path), "--use_cpu", "true", "--report_to", "none", "--num_frames", "2"]
    argv += ["--max_steps", "1", "--save_strategy", "no", "--per_device_train_batch_size", "1", "--max_length", "1024"]
    # On 666becb the row trained cut at 1024 tokens, its "</think> <answer>A</answer>" never supervised.
    with pytest.raises(ValueError, match=r"long_reply_400\.json:1 \(id 'long-reply'\): 1288") as caught:
        sft.main(argv)
    assert "longer than max_length=1024" in str(caught.value)
    assert not (tmp_path / "model.safetensors").exists()


def test_the_sft_collator_never_cuts_reply_tokens(root, model_dir):
    from r1video.data.loaders import load_sft_dataset
    from r1video.model import load_pretrained
    from r1video.trainer import VideoSFTCollator

    _, processor = load_pretrained(model_dir)
    row = load_sft_dataset(write_long_reply_file(root, 400), root)[0]
    with pytest.raises(
        ValueError, match=r"'long-reply' is 1288 tokens, over max_length=1024: cutting it would drop \d+ tokens"
    ):
        VideoSFTCollator(processor, num_frames=2, max_length=1024)([row])
    assert VideoSFTCollator(processor, num_frames=2, max_length=2048)([row])["labels"].shape[1] < 2048

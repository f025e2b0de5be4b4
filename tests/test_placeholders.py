"""Only the placeholder that marks the clip is removed: `<image>`/`<video>` written inside a question is text, in SFT
and GRPO; a conversation may mark the clip in a later human turn."""

import json

import pytest
import torch
from video_fixtures import write_numbered_clip

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video.data.loaders import load_grpo_dataset, load_sft_dataset
from r1video.data.validate import validate_file
from r1video.model import build_tiny_model, load_pretrained
from r1video.trainer import VideoGRPOConfig, VideoGRPOTrainer, VideoSFTCollator
from r1video.trainer.step_videos import row_video_keys

QUESTION = "What does the <video> tag do? Is <image> an HTML tag?\nA. plays a clip\nB. nothing"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("placeholders")
    write_numbered_clip(root / "a.mp4", count=8)
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    build_tiny_model(out, seed=0)
    return str(out), load_pretrained(out)


def text_between_placeholders(processor, ids) -> str:
    return processor.tokenizer.decode([i for i in ids if i != processor.video_token_id])


def sft_file(root, conversations, name="sft.json"):
    path = root / name
    path.write_text(json.dumps([{"id": "r1", "video": "a.mp4", "conversations": conversations}], indent=2))
    return path


def test_grpo_keeps_placeholder_text_in_the_question(root, tiny, tmp_path):
    model_dir, (_, processor) = tiny
    path = root / "grpo.jsonl"
    path.write_text(json.dumps({"problem": QUESTION, "solution": "A", "video_filename": "a.mp4"}) + "\n")
    data = load_grpo_dataset(path, root)
    assert data[0]["prompt"][0]["content"][1]["text"] == QUESTION

    model, processor = load_pretrained(model_dir)
    args = VideoGRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, per_device_train_batch_size=2, num_generations=2, num_frames=2
    )
    trainer = VideoGRPOTrainer(
        model=model,
        reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
        args=args,
        train_dataset=data,
        processing_class=processor,
    )
    with trainer._scoring(row_video_keys(trainer._load_videos([data[0]]))):
        prompt_ids, _, _ = trainer._tokenize_prompts([data[0]["prompt"]])
    assert prompt_ids[0].count(processor.video_token_id) == processor.num_queries  # one clip, no more
    assert "USER: What does the <video> tag do? Is <image> an HTML tag?" in text_between_placeholders(
        processor, prompt_ids[0]
    ).replace("\n", "")


def test_grpo_removes_only_a_leading_marker(root):
    path = root / "marked.jsonl"
    path.write_text(json.dumps({"problem": "<image>\n" + QUESTION, "solution": "A", "video_filename": "a.mp4"}) + "\n")
    assert load_grpo_dataset(path, root)[0]["prompt"][0]["content"][1]["text"] == QUESTION


def test_sft_keeps_placeholder_text_and_trains_on_it(root, tiny):
    _, (model, processor) = tiny
    path = sft_file(root, [{"from": "human", "value": "<image>\n" + QUESTION}, {"from": "gpt", "value": "A"}])
    assert validate_file(path, root).ok
    row = load_sft_dataset(path, root)[0]
    assert row["messages"][0]["content"][1]["text"] == QUESTION
    batch = VideoSFTCollator(processor, num_frames=2)([row])
    ids = batch["input_ids"][0].tolist()
    assert ids.count(processor.video_token_id) == processor.num_queries
    assert "What does the <video> tag do? Is <image> an HTML tag?" in text_between_placeholders(processor, ids)
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)


def test_a_clip_marked_in_a_later_human_turn_goes_there(root, tiny):
    _, (model, processor) = tiny
    conversations = [
        {"from": "human", "value": "Let us talk about a clip."},
        {"from": "gpt", "value": "Sure."},
        {"from": "human", "value": "<image>\n" + QUESTION},
        {"from": "gpt", "value": "A"},
    ]
    path = sft_file(root, conversations, "later.json")
    assert validate_file(path, root).ok
    row = load_sft_dataset(path, root)[0]
    assert [part["type"] for part in row["messages"][0]["content"]] == ["text"]
    assert [part["type"] for part in row["messages"][2]["content"]] == ["video", "text"]
    batch = VideoSFTCollator(processor, num_frames=2)([row])
    ids = batch["input_ids"][0].tolist()
    assert ids.count(processor.video_token_id) == processor.num_queries
    first_placeholder = ids.index(processor.video_token_id)
    assert "Sure." in processor.tokenizer.decode(ids[:first_placeholder])  # the clip sits in the later turn
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)


def test_two_turns_marking_a_clip_are_refused_with_line_and_turn(root):
    conversations = [
        {"from": "human", "value": "<image>\nWhat is shown?"},
        {"from": "gpt", "value": "A box."},
        {"from": "human", "value": "<image>\nAnd now?"},
        {"from": "gpt", "value": "A ball."},
    ]
    path = sft_file(root, conversations, "two.json")
    report = validate_file(path, root)
    assert [(issue.line, issue.field, issue.code) for issue in report.issues] == [
        (2, "conversations[2]", "bad_conversation")
    ]
    with pytest.raises(ValueError, match=r"two\.json:2: conversations\[2\]: a second video placeholder"):
        load_sft_dataset(path, root)


def test_evaluation_prompts_keep_placeholder_text_too(tiny):
    """`r1video eval`/`infer` build their prompts with `qwen2_base_prompt`: the same rule holds there."""
    from r1video.model.templates import qwen2_base_prompt

    _, (_, processor) = tiny
    prompt = qwen2_base_prompt("<image>\n" + QUESTION)
    frames = torch.zeros(2, 3, 32, 32)
    batch = processor(text=[prompt, qwen2_base_prompt("Q?")], videos=[frames, frames], padding_side="left")
    ids = batch["input_ids"][0].tolist()
    assert ids.count(processor.video_token_id) == processor.num_queries
    assert "What does the <video> tag do? Is <image> an HTML tag?" in text_between_placeholders(processor, ids)
    assert batch["attention_mask"][1][0] == 0  # the shorter prompt is left-padded

"""TinyLLaVA-Video's own two training stages: the `pretrain` and `qwen2_base` label rules against the original's, the
connector-only option, the recipes, and (slow) compose → pretrain → finetune → infer on CPU.

The original's rules (TV:tinyllava/data/template/*.py, seed-facts §1.4 and §4), transcribed here as the oracle:

- Tokenising: the prompt string is split on "<image>", each piece tokenised on its own (`tokenizer(piece)`), the
  pieces joined by one -200 (the video, spliced into `num_queries` embeddings by the model; their labels -100).
- `qwen2_base` training string: system line, then per round `"USER: {q} ASSISTANT: {a}<|endoftext|>"`, the first
  question that holds "<image>" rewritten as "<image>\\n" + the question without "<image>", stripped.
  Labels: the string is cut into rounds at each "<|endoftext|>"; a round is cut at " ASSISTANT: "; its instruction
  (first part + " ASSISTANT: ", token count minus one) is -100, the rest of the round and its end-of-text keep their
  ids; everything after the last round is -100.
- `pretrain` string: "<image>" + the (one) reply + "\\n"; no system line, no roles, no end-of-text; labels: the
  tokens of "<image>" alone (the -200) are -100, every other token keeps its id.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from compose_fixtures import train_text_lm, write_parts
from released_fixture import write_released_checkpoint
from safetensors.torch import load_file

import r1video.model  # noqa: F401  (registers the Auto classes)
from r1video import sft
from r1video.data.records import sft_example
from r1video.data.synth import generate_synthetic_dataset
from r1video.eval import infer as infer_cli
from r1video.model import TinyLlavaVideoConfig, TinyLlavaVideoForConditionalGeneration, TinyLlavaVideoProcessor
from r1video.model.compose import compose_model
from r1video.model.templates import EOS, QWEN2_BASE_SYSTEM
from r1video.policies import IGNORE_INDEX, policy_for
from r1video.trainer import VideoSFTCollator

REPO = Path(__file__).resolve().parents[1]
ORIGINAL_VIDEO = -200
SEP = " ASSISTANT: "

RECORDS = {
    "caption": {"id": "c", "video": "a.mp4", "conversations": [
        {"from": "human", "value": "<image>\nDescribe the video in detail."},
        {"from": "gpt", "value": "A man in a red coat opens a door, then waves at the camera."},
    ]},
    "open_qa": {"id": "q", "video": "a.mp4", "conversations": [
        {"from": "human", "value": "What is the man holding?\n<image>"},
        {"from": "gpt", "value": "He holds a blue umbrella."},
    ]},
    "multi_turn": {"id": "m", "video": "a.mp4", "conversations": [
        {"from": "human", "value": "<image>\nWhere does this happen?"},
        {"from": "gpt", "value": "In a kitchen, at night."},
        {"from": "human", "value": "Who enters first?"},
        {"from": "gpt", "value": "A woman carrying two bags."},
    ]},
}  # fmt: skip


# ---- the original's rules, as the oracle ----------------------------------------------------------------------


def original_tokens(tokenizer, prompt: str) -> list[int]:
    ids = []
    for i, piece in enumerate(prompt.split("<image>")):
        if i:
            ids.append(ORIGINAL_VIDEO)
        ids += tokenizer(piece).input_ids
    return ids


def original_qwen2_base(tokenizer, record) -> tuple[list[int], list[int]]:
    prompt = QWEN2_BASE_SYSTEM
    turns = record["conversations"]
    for question, answer in zip(turns[::2], turns[1::2], strict=True):
        text = question["value"]
        if "<image>" in text:
            text = ("<image>\n" + text.replace("<image>", "").strip()).strip()
        prompt += f"USER: {text} ASSISTANT: {answer['value']}{EOS}"
    ids = original_tokens(tokenizer, prompt)
    labels = list(ids)
    position = 0
    for round_text in prompt.split(EOS):
        parts = round_text.split(SEP)
        if round_text == "" or len(parts) != 2:
            break
        instruction = len(original_tokens(tokenizer, parts[0] + SEP)) - 1
        labels[position : position + instruction] = [IGNORE_INDEX] * instruction
        position += len(original_tokens(tokenizer, round_text)) + len(tokenizer.encode(EOS))
    labels[position:] = [IGNORE_INDEX] * (len(labels) - position)
    return ids, labels


def original_pretrain(tokenizer, record) -> tuple[list[int], list[int]]:
    ids = original_tokens(tokenizer, "<image>" + record["conversations"][1]["value"] + "\n")
    masked = len(original_tokens(tokenizer, "<image>"))
    return ids, [IGNORE_INDEX] * masked + ids[masked:]


def collapse_video(processor, ids, labels) -> tuple[list[int], list[int]]:
    """Ours with each run of `num_queries` placeholder ids as the original's one -200 (its labels must be -100)."""
    out_ids, out_labels, i = [], [], 0
    while i < len(ids):
        if ids[i] == processor.video_token_id:
            run = ids[i : i + processor.num_queries]
            assert run == [processor.video_token_id] * processor.num_queries
            assert labels[i : i + processor.num_queries] == [IGNORE_INDEX] * processor.num_queries
            out_ids.append(ORIGINAL_VIDEO)
            out_labels.append(IGNORE_INDEX)
            i += processor.num_queries
        else:
            out_ids.append(ids[i])
            out_labels.append(labels[i])
            i += 1
    return out_ids, out_labels


@pytest.fixture(scope="module")
def qwen_processor(tmp_path_factory):
    """Qwen2.5's tokenizer rules: a slow Qwen2Tokenizer (Qwen2.5's pre-tokenizer) from the released layout."""
    out = tmp_path_factory.mktemp("released")
    write_released_checkpoint(out)
    return TinyLlavaVideoProcessor.from_pretrained(out)


@pytest.mark.parametrize("name", list(RECORDS))
def test_qwen2_base_labels_equal_the_originals(qwen_processor, name):
    processor, record = qwen_processor, RECORDS[name]
    messages = sft_example(record, "/data")["messages"]
    ids, labels = policy_for(processor).tokenize_conversation(processor, messages)
    assert collapse_video(processor, ids, labels) == original_qwen2_base(processor.tokenizer, record)


@pytest.mark.parametrize("name", ["caption", "open_qa"])
def test_pretrain_labels_equal_the_originals(qwen_processor, name):
    processor, record = qwen_processor, RECORDS[name]
    messages = sft_example(record, "/data")["messages"]
    ids, labels = policy_for(processor).tokenize_pretrain(processor, messages)
    assert collapse_video(processor, ids, labels) == original_pretrain(processor.tokenizer, record)
    # what is supervised: the caption and its new line, no end-of-text
    supervised = [i for i, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
    assert processor.tokenizer.decode(supervised) == record["conversations"][1]["value"] + "\n"
    assert processor.tokenizer.eos_token_id not in ids


def test_pretrain_format_takes_one_caption_per_record(qwen_processor):
    messages = sft_example(RECORDS["multi_turn"], "/data")["messages"]
    with pytest.raises(ValueError, match="one caption per record.*2 replies"):
        policy_for(qwen_processor).tokenize_pretrain(qwen_processor, messages)


def test_collator_reads_the_conversation_format(qwen_processor):
    row = sft_example(RECORDS["caption"], "/data")
    policy = policy_for(qwen_processor)
    pretrain = VideoSFTCollator(qwen_processor, conversation_format="pretrain")._encode(row, None)
    assert pretrain == policy.tokenize_pretrain(qwen_processor, row["messages"])
    assert VideoSFTCollator(qwen_processor)._encode(row, None) == policy.tokenize_conversation(
        qwen_processor, row["messages"]
    )
    with pytest.raises(ValueError, match="conversation_format must be 'chat' or 'pretrain'"):
        VideoSFTCollator(qwen_processor, conversation_format="plain")


def test_freezing_the_language_model_freezes_its_untied_head_too():
    """The original's `tune_type_llm frozen` froze the whole causal LM; Phi-2's LM head is untied (and biased)."""
    from transformers import PhiConfig, SiglipVisionConfig

    config = TinyLlavaVideoConfig(
        text_config=PhiConfig(
            vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
        ),
        vision_config=SiglipVisionConfig(
            image_size=16,
            patch_size=8,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
        ),
        num_queries=4,
        group=2,
        image_token_id=63,
    )
    model = TinyLlavaVideoForConditionalGeneration(config)
    policy = policy_for(model)
    policy.freeze(model, vision=True, language_model=True)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("model.connector.") for name in trainable)
    assert policy.frozen_modules(model) == ["vision", "language_model"]


def test_stage_recipes_carry_the_readme_settings():
    expected = {  # stage -> (format, LLM frozen, lr, per-device × accumulation (× 4 GPUs = global batch))
        "pretrain": ("pretrain", True, 1e-4, 8 * 4),
        "finetune": ("chat", False, 2e-5, 8 * 2),
    }
    for model, precision in (("Qwen2.5-3B", "bf16"), ("Phi-2", "fp16")):
        for stage, (form, frozen, lr, batch) in expected.items():
            recipe = REPO / "recipes" / f"TinyLLaVA-Video-{model}" / f"{stage}.yaml"
            _, args, model_args = sft.make_parser().parse_args_and_config(
                ["--config", str(recipe), "--bf16", "false", "--fp16", "false", "--use_cpu", "true"]
            )
            raw = yaml.safe_load(recipe.read_text())
            assert (args.conversation_format, args.freeze_language_model, args.freeze_vision_tower) == (
                form,
                frozen,
                True,
            )
            assert (args.learning_rate, args.lr_scheduler_type, args.warmup_steps, args.num_train_epochs) == (
                lr,
                "cosine",
                0.03,
                1,
            )
            assert args.per_device_train_batch_size * args.gradient_accumulation_steps * 4 == batch * 4
            assert raw[precision] is True and args.max_length == 3072
        pretrain = yaml.safe_load((REPO / "recipes" / f"TinyLLaVA-Video-{model}" / "pretrain.yaml").read_text())
        finetune = yaml.safe_load((REPO / "recipes" / f"TinyLLaVA-Video-{model}" / "finetune.yaml").read_text())
        assert finetune["model_name_or_path"] == pretrain["output_dir"]  # the finetune loads the pretrain output


# ---- the whole path on CPU -----------------------------------------------------------------------------------


def _losses(output_dir) -> list[float]:
    state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def _texts(data) -> list[str]:
    """The synthetic captions and the open-QA conversations as plain text (what the tiny LM learns to read)."""
    with open(data.sft_caption) as f:
        texts = [record["conversations"][1]["value"] + "\n" for record in json.load(f)]
    with open(data.sft_openqa) as f:
        for record in json.load(f):
            turns = [turn["value"].replace("<image>", "").strip() for turn in record["conversations"]]
            texts.append(
                f"{QWEN2_BASE_SYSTEM}USER: {turns[0]} ASSISTANT: {turns[1]}{EOS}USER: {turns[2]} ASSISTANT: {turns[3]}"
            )
    return texts


@pytest.mark.slow  # ~70 s: a tiny LM's text training, two SFT runs (64 and 32 steps) and a generation
def test_compose_pretrain_finetune_then_infer_on_cpu(tmp_path, monkeypatch, capsys):
    """`r1video compose` on a tiny Qwen2 (language-modelled on the synthetic texts, so it is a pretrained LM) and a
    tiny SigLIP, then the two stages through `r1video.sft` and the tiny recipes: pretrain changes the connector alone,
    both losses fall, and the result answers through `r1video infer`."""
    monkeypatch.chdir(tmp_path)
    data = generate_synthetic_dataset("runs/synth", n=32, n_test=0, n_coldstart=0, size=32, beats=8, frames_per_beat=1)
    parts = write_parts(tmp_path / "parts", families=("qwen2",))
    train_text_lm(parts["qwen2"], _texts(data))
    compose_model(
        parts["qwen2"], parts["siglip"], "runs/tiny-composed", num_queries=16, group=4, num_resampler_layers=2
    )

    assert sft.main(["--config", str(REPO / "recipes/tiny/pretrain_smoke.yaml")]) == 0
    before, after = (
        load_file("runs/tiny-composed/model.safetensors"),
        load_file("runs/pretrain-smoke/model.safetensors"),
    )
    changed = sorted(name for name in before if not torch.equal(before[name], after[name]))
    assert changed and all(name.startswith("connector._connector.") for name in changed)
    assert len(changed) == sum(name.startswith("connector._connector.") for name in before)  # all of it trained
    pretrain_losses = _losses("runs/pretrain-smoke")

    assert sft.main(["--config", str(REPO / "recipes/tiny/finetune_smoke.yaml")]) == 0
    finetuned = load_file("runs/finetune-smoke/model.safetensors")
    changed = {name.split(".")[0] for name in after if not torch.equal(after[name], finetuned[name])}
    assert changed == {"language_model", "connector"}  # the tower stays frozen
    finetune_losses = _losses("runs/finetune-smoke")

    # The first logged loss is the model before any update; the end is averaged over the last 8 (noisy) steps.
    assert len(pretrain_losses) == 64 and np.mean(pretrain_losses[-8:]) < 0.9 * pretrain_losses[0], pretrain_losses
    assert len(finetune_losses) == 32 and np.mean(finetune_losses[-8:]) < 0.6 * finetune_losses[0], finetune_losses
    capsys.readouterr()
    question = "Which direction does the square move?"
    video = os.path.join("runs/synth", "videos/train/000000.mp4")
    assert infer_cli.main(["--model", "runs/finetune-smoke", "--video", video, "--question", question, "--frames", "8",
                           "--max-new-tokens", "8"]) == 0  # fmt: skip
    answer = capsys.readouterr().out
    assert answer.strip()
    print(
        f"\npretrain loss: first step {pretrain_losses[0]:.3f}, last 8 steps {np.mean(pretrain_losses[-8:]):.3f}; "
        f"finetune loss: first step {finetune_losses[0]:.3f}, last 8 steps {np.mean(finetune_losses[-8:]):.3f}; "
        f"infer: {answer.strip()!r}"
    )

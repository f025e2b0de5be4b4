"""Cold-start SFT: label masks, padding with pad == eos, bad clips, learning, frozen tower, SFT → GRPO hand-off."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from released_fixture import write_released_checkpoint

import r1video.model  # noqa: F401  (registers TinyLLaVA-Video with the Auto classes)
from r1video import grpo, sft
from r1video.data.bad_samples import BadSampleTracker, TooManyBadSamplesError
from r1video.data.loaders import load_sft_dataset
from r1video.data.synth import generate_synthetic_dataset
from r1video.demo import plot
from r1video.model import TinyLlavaVideoProcessor, build_tiny_model, load_pretrained
from r1video.model.templates import EOS, REASON_INSTRUCTION, qwen2_base_prompt
from r1video.trainer import VideoSFTCollator, VideoSFTTrainer
from r1video.trainer.sft_collator import IGNORE_INDEX, tokenize_conversation
from r1video.trainer.sft_config import VideoSFTConfig

REPO = Path(__file__).resolve().parents[1]
FRAMES = 4


def user(text, video=False):
    return {"role": "user", "content": ([{"type": "video"}] if video else []) + [{"type": "text", "text": text}]}


def assistant(text):
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


QUESTION = f"Which way does the red square move?\nA. left\nB. right {REASON_INSTRUCTION}"
CONVERSATIONS = {
    "reasoning": [
        user(QUESTION, video=True),
        assistant("<think>It starts right and ends left.</think> <answer>A</answer>"),
    ],
    "letter": [user("What colour is the ball?\nA. red\nB. blue", video=True), assistant("B")],
    "multi_turn": [
        user(QUESTION, video=True),
        assistant("<think>It moves left.</think> <answer>A</answer>"),
        user("Why?"),
        assistant("Because it ends at the left."),
    ],
    "tag_lookalikes": [
        user(QUESTION, video=True),
        assistant("<think>USER: is it left? ASSISTANT: yes</think> <answer>A</answer> </answer> <think>"),
    ],
    "system": [
        {"role": "system", "content": "You are terse."},
        user(QUESTION, video=True),
        assistant("<answer>A</answer>"),
    ],
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model trains several times faster on one thread than on two on these shared 2-core machines."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    build_tiny_model(out)
    return str(out)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return generate_synthetic_dataset(root, n=8, n_test=2, n_coldstart=4, size=32, beats=8, frames_per_beat=1)


@pytest.fixture(scope="module", params=["tiny", "released_qwen2"])
def processor(request, model_dir, tmp_path_factory):
    """The tiny BPE tokenizer, and a Qwen2Tokenizer (Qwen2.5's pre-tokenizer) from the released layout."""
    if request.param == "tiny":
        return TinyLlavaVideoProcessor.from_pretrained(model_dir)
    out = tmp_path_factory.mktemp("released")
    write_released_checkpoint(out)
    return TinyLlavaVideoProcessor.from_pretrained(out)


def supervised_runs(labels):
    """Maximal runs of positions whose label is not -100, as (start, end) pairs."""
    runs, start = [], None
    for i, label in enumerate([*labels, IGNORE_INDEX]):
        if label != IGNORE_INDEX and start is None:
            start = i
        elif label == IGNORE_INDEX and start is not None:
            runs.append((start, i))
            start = None
    return runs


# ---- label masks ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_labels_are_exactly_each_reply_and_its_end_of_text(processor, name):
    messages = CONVERSATIONS[name]
    tokenizer = processor.tokenizer
    input_ids, labels = tokenize_conversation(processor, messages)
    replies = [m["content"][0]["text"] for m in messages if m["role"] == "assistant"]

    runs = supervised_runs(labels)
    assert len(runs) == len(replies)
    for (start, end), reply in zip(runs, replies, strict=True):
        assert labels[start:end] == input_ids[start:end]
        assert input_ids[end - 1] == tokenizer.eos_token_id
        # The reply as the model generates it after "ASSISTANT:": a space, the text, end-of-text.
        assert tokenizer.decode(input_ids[start:end]) == f" {reply}{EOS}"
    # Every other token is masked, the video placeholders among them, and the sequence is the one the original
    # tokenises from the whole rendered string.
    assert input_ids.count(processor.video_token_id) == processor.num_queries
    assert all(
        label == IGNORE_INDEX for i, label in zip(input_ids, labels, strict=True) if i == processor.video_token_id
    )
    rendered = processor.expand_placeholders(processor.apply_chat_template(messages, tokenize=False))
    assert input_ids == tokenizer(rendered, add_special_tokens=False)["input_ids"]


def test_single_turn_sequence_is_the_qwen2_base_training_string(processor):
    messages = CONVERSATIONS["reasoning"]
    input_ids, _ = tokenize_conversation(processor, messages)
    expected = qwen2_base_prompt(QUESTION, messages[1]["content"][0]["text"])
    assert processor.tokenizer.decode(input_ids) == processor.expand_placeholders(expected)


@pytest.mark.parametrize("text", [f"<answer>A</answer>{EOS}", "<image> shows <answer>A</answer>"])
def test_reply_holding_special_token_text_is_rejected(processor, text):
    with pytest.raises(ValueError, match="special token text"):
        tokenize_conversation(processor, [user(QUESTION, video=True), assistant(text)])


# ---- batches ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def coldstart(synth):
    """The synthetic cold-start rows (reasoning replies, one clip each)."""
    dataset = load_sft_dataset(synth.coldstart, synth.root)
    return [dataset[i] for i in range(len(dataset))]


def test_padded_batch_attends_and_supervises_real_end_of_text_but_not_padding(model_dir, coldstart):
    model, processor = load_pretrained(model_dir)
    short = {"id": "short", "video": coldstart[0]["video"], "messages": CONVERSATIONS["letter"]}
    long = {"id": "long", "video": coldstart[1]["video"], "messages": CONVERSATIONS["multi_turn"]}
    collator = VideoSFTCollator(processor, num_frames=FRAMES)
    batch = collator([short, long])
    eos = processor.tokenizer.eos_token_id
    assert processor.tokenizer.pad_token_id == eos  # Qwen2.5-base: pad == eos

    length = int(batch["attention_mask"][0].sum())
    assert length < batch["input_ids"].shape[1]  # the short row is padded
    assert batch["input_ids"][0, length - 1] == eos and batch["labels"][0, length - 1] == eos
    assert (batch["input_ids"][0, length:] == eos).all()
    assert (batch["attention_mask"][0, length:] == 0).all() and (batch["labels"][0, length:] == IGNORE_INDEX).all()
    assert batch["attention_mask"][1].all()
    assert batch["pixel_values_videos"].shape[:2] == (2, FRAMES)

    # Padding changes nothing: the short row's loss is the same in the batch and alone.
    def summed_nll(inputs):
        with torch.no_grad():
            logits = model(**{k: v for k, v in inputs.items() if k != "labels"}).logits
        return F.cross_entropy(logits[:, :-1].transpose(1, 2), inputs["labels"][:, 1:], reduction="none").sum(-1)

    alone = summed_nll(collator([short]))
    assert summed_nll(batch)[0] == pytest.approx(alone[0].item(), rel=1e-5)


def test_text_only_rows_mix_with_video_rows(model_dir, coldstart):
    model, processor = load_pretrained(model_dir)
    text_only = {"id": "text", "video": None, "messages": [user("Say yes."), assistant("yes")]}
    batch = VideoSFTCollator(processor, num_frames=FRAMES)([text_only, coldstart[0]])
    assert batch["pixel_values_videos"].shape[0] == 1
    placeholders = batch["input_ids"] == processor.video_token_id
    assert placeholders.sum(-1).tolist() == [0, processor.num_queries]
    assert processor.tokenizer.decode(batch["input_ids"][0][batch["labels"][0] != IGNORE_INDEX]) == f" yes{EOS}"
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)


def test_corrupt_clip_is_dropped_from_its_batch_and_counted(model_dir, coldstart, tmp_path):
    _, processor = load_pretrained(model_dir)
    good = coldstart[0]
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video" * 100)
    bad = {**coldstart[1], "id": "bad", "video": str(corrupt)}
    collator = VideoSFTCollator(processor, num_frames=FRAMES)

    batch = collator([good, bad])
    assert collator.tracker.num_bad == 1 and collator.tracker.num_good == 1
    reference = VideoSFTCollator(processor, num_frames=FRAMES)([good])
    for key in ("input_ids", "attention_mask", "labels", "pixel_values_videos"):
        assert torch.equal(batch[key], reference[key])

    # A batch of bad clips still reaches the model (every process must step), with nothing to learn.
    batch = collator([bad])
    assert batch["input_ids"].shape[0] == 1 and (batch["labels"] == IGNORE_INDEX).all()


def test_cached_batches_equal_uncached_ones_and_bad_clips_still_count(model_dir, coldstart, tmp_path):
    """`cache_clips` (the demo's setting) changes no batch; a bad clip is still dropped and counted every time."""
    _, processor = load_pretrained(model_dir)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(Path(coldstart[0]["video"]).read_bytes())
    good = {**coldstart[0], "video": str(clip)}
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video" * 100)
    bad = {**coldstart[1], "id": "bad", "video": str(corrupt)}
    cached = VideoSFTCollator(processor, num_frames=FRAMES, cache=True)
    reference = VideoSFTCollator(processor, num_frames=FRAMES)([good])
    for _ in range(2):
        batch = cached([good, bad])
        for key in ("input_ids", "attention_mask", "labels", "pixel_values_videos"):
            assert torch.equal(batch[key], reference[key])
        clip.unlink(missing_ok=True)  # the second batch is served from the cache
    assert cached.tracker.num_bad == 2 and cached.tracker.num_good == 2


def test_too_many_corrupt_clips_stop_the_run(model_dir, coldstart, tmp_path):
    _, processor = load_pretrained(model_dir)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00" * 64)
    bad = {**coldstart[0], "video": str(corrupt)}
    collator = VideoSFTCollator(processor, num_frames=FRAMES, tracker=BadSampleTracker(0.05, min_samples=4))
    with pytest.raises(TooManyBadSamplesError, match="failed to decode"):
        for _ in range(4):
            collator([bad])


def test_truncation_that_would_cut_the_video_is_an_error(model_dir, coldstart):
    _, processor = load_pretrained(model_dir)
    collator = VideoSFTCollator(processor, num_frames=FRAMES, max_length=processor.num_queries)
    with pytest.raises(ValueError, match="cut the video placeholders"):
        collator(coldstart[:1])


# ---- training ---------------------------------------------------------------------------------------------------


def sft_config(tmp_path, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=4,
        max_steps=10,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        gradient_checkpointing=False,
        num_frames=FRAMES,
        seed=0,
    )
    return VideoSFTConfig(**{**settings, **overrides})


def test_a_few_steps_learn_the_replies_with_the_vision_tower_frozen(model_dir, synth, tmp_path):
    """4 rows, batch 4: every step sees the same batch, so its loss must fall. Only LLM and connector move."""
    model, processor = load_pretrained(model_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = VideoSFTTrainer(
        model=model,
        args=sft_config(tmp_path),
        train_dataset=load_sft_dataset(synth.coldstart, synth.root),
        processing_class=processor,
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 10 and losses[-1] < 0.65 * losses[0], losses  # measured: 6.47 -> 3.81

    changed = {name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])}
    assert not any(name.startswith("model.vision_tower.") for name in changed)
    assert any(name.startswith("model.connector.") for name in changed)
    assert any(name.startswith("model.language_model.") for name in changed)


def test_config_keeps_the_columns_and_skips_trl_tokenisation(tmp_path):
    config = sft_config(tmp_path)
    assert config.remove_unused_columns is False and config.dataset_kwargs == {"skip_prepare_dataset": True}
    with pytest.raises(ValueError, match="remove_unused_columns"):
        sft_config(tmp_path, remove_unused_columns=True)
    with pytest.raises(ValueError, match="exactly one of num_frames"):
        sft_config(tmp_path, fps=1.0)


def test_paper_coldstart_recipe_matches_the_original_settings():
    recipe = REPO / "recipes/TinyLLaVA-Video-Qwen2.5-3B/coldstart_sft.yaml"
    script_args, args, model_args = sft.make_parser().parse_args_and_config(
        ["--config", str(recipe), "--bf16", "false", "--use_cpu", "true"]
    )
    assert model_args.model_name_or_path == "Zhang199/TinyLLaVA-Video-Group-16-512"
    assert (args.learning_rate, args.lr_scheduler_type, args.warmup_steps) == (1e-5, "constant", 0)
    assert (args.num_train_epochs, args.per_device_train_batch_size, args.gradient_accumulation_steps) == (1, 1, 1)
    assert (args.num_frames, args.max_length, args.weight_decay) == (16, 3072, 0.0)
    assert args.freeze_vision_tower and args.gradient_checkpointing
    assert yaml.safe_load(recipe.read_text())["bf16"] is True
    grpo_recipe = yaml.safe_load((REPO / "recipes/TinyLLaVA-Video-Qwen2.5-3B/grpo_nextqa.yaml").read_text())
    assert args.output_dir.endswith(grpo_recipe["model_name_or_path"].split("/")[-1])


def test_sft_checkpoint_feeds_the_grpo_smoke_recipe_unchanged(model_dir, synth, tmp_path):
    """The cold-start output is the GRPO run's policy and reference model: GRPO loads it as it is."""
    sft_out = str(tmp_path / "coldstart")
    paths = ["--train_file", synth.coldstart, "--video_root", synth.root]
    assert sft.main(["--config", str(REPO / "recipes/tiny/coldstart_smoke.yaml"), "--model_name_or_path", model_dir,
                     *paths, "--output_dir", sft_out]) == 0  # fmt: skip

    # `r1video plot` draws an `r1video sft` output folder (its trainer_state.json)
    assert plot.main([sft_out]) == 0 and (tmp_path / "coldstart" / "curves.png").stat().st_size > 0

    tuned, _ = load_pretrained(sft_out)
    base, _ = load_pretrained(model_dir)
    base_weights = dict(base.named_parameters())
    changed = {name for name, p in tuned.named_parameters() if not torch.equal(p, base_weights[name])}
    assert {name.split(".")[1] for name in changed} == {"language_model", "connector"}

    grpo_out = tmp_path / "grpo"
    grpo_args = ["--config", str(REPO / "recipes/tiny/grpo_smoke.yaml"), "--model_name_or_path", sft_out,
                 "--train_file", synth.grpo_train, "--video_root", synth.root, "--output_dir", str(grpo_out),
                 "--max_steps", "1", "--save_strategy", "no"]  # fmt: skip
    trainer = grpo.train(*grpo.make_parser().parse_args_and_config(grpo_args))
    assert (grpo_out / "model.safetensors").exists()
    # Before its first update the policy equals the reference model only if both are the cold-start checkpoint.
    assert trainer.state.log_history[0]["kl"] == 0.0

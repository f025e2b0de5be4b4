"""LLaVA-OneVision behind the policy seam, on a tiny random model built offline (SigLIP + projector + Qwen2) with the
real `LlavaOnevisionProcessor` and real mp4 clips of different lengths (so the clips of one batch have different
token counts and cannot share the model's `pixel_values_videos [videos, F, ...]` input)."""

import numpy as np
import pytest
import torch
import yaml
from family_fixtures import RECIPES, TEXT_ONLY, batch, check_paper_recipe, token_logps, trainable, video_prompt
from transformers import (
    AutoProcessor,
    LlavaOnevisionForConditionalGeneration,
    LlavaOnevisionProcessor,
    LlavaOnevisionVideoProcessor,
)
from video_fixtures import moving_square_frames, write_clips_of_lengths

from r1video.policies import policy_for
from r1video.policies.llava_onevision import LlavaOnevisionPolicy

POLICY = LlavaOnevisionPolicy()
TOKENS_PER_FRAME = 4  # 32 px frames, 8 px patches: 4x4 patches, 2x2 after pooling


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ov")
    model, processor = POLICY.build_tiny(folder / "model")
    paths = write_clips_of_lengths(folder)
    clips = [POLICY.decode_clip(processor, path, fps=5) for path in paths]  # 4, 8, 12 frames
    POLICY.freeze(model, vision=True, connector=True)
    return model, processor, clips, folder


class TowerCalls:
    """Counts calls of the SigLIP tower and the frames they see (`args[0].shape[0]`, as `r1video bench` counts)."""

    def __init__(self, model):
        self.calls = self.frames = 0
        self.handle = POLICY.vision_module(model).register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.calls += 1
        self.frames += args[0].shape[0]

    def reset(self):
        self.calls = self.frames = 0

    def close(self):
        self.handle.remove()


def pixel_path(model, input_ids, mask, clips, index):
    """The model's own vision path per row: `get_video_features` on the row's pixels, spliced by the forward."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    features = [
        model.model.get_video_features(clips[i].inputs["pixel_values_videos"][None], return_dict=True).pooler_output
        for i in index.tolist()
        if i >= 0
    ]
    video = BaseModelOutputWithPooling(pooler_output=torch.cat([f[0] for f in features])[None])
    return token_logps(model, input_ids, mask, mm_encoder_outputs={"video": video})


# ---- builder and inputs -------------------------------------------------------------------------------------------


def test_tiny_model_reloads_offline_with_the_real_processor(tiny):
    model, _, clips, folder = tiny
    processor = AutoProcessor.from_pretrained(folder / "model")
    reloaded = LlavaOnevisionForConditionalGeneration.from_pretrained(folder / "model")
    assert type(processor) is LlavaOnevisionProcessor
    assert type(processor.video_processor) is LlavaOnevisionVideoProcessor
    assert isinstance(policy_for(reloaded), LlavaOnevisionPolicy) and isinstance(policy_for(processor),
                                                                                  LlavaOnevisionPolicy)  # fmt: skip
    for (name, p), (_, q) in zip(model.state_dict().items(), reloaded.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    assert POLICY.render_prompt(processor, video_prompt("what?")) == (
        "<|im_start|>user <video>\nwhat?<|im_end|><|im_start|>assistant\n"
    )
    assert POLICY.render_prompt(processor, TEXT_ONLY) == "<|im_start|>user \nhello<|im_end|><|im_start|>assistant\n"
    assert [POLICY.video_token_count(processor, c) for c in clips] == [4 * 4 + 1, 8 * 4 + 1, 12 * 4 + 1]


def test_prompt_ids_pixels_and_logits_equal_the_processors_own_call(tiny):
    """tokenize_prompts + clip_from_frames give what `LlavaOnevisionProcessor(text, videos)` gives, and the seam's
    inputs (pixel path and cached encoding) give the logits of the processor's own call."""
    model, processor, _, _ = tiny
    frames = moving_square_frames(6, 40, 56)
    clip = POLICY.clip_from_frames(processor, frames)
    text = POLICY.render_prompt(processor, video_prompt("what moves left?"))
    own = processor(text=[text], videos=[frames], return_tensors="pt")
    assert POLICY.tokenize_prompts(processor, [text], [clip]) == own["input_ids"].tolist()
    assert torch.equal(clip.inputs["pixel_values_videos"], own["pixel_values_videos"][0])
    with torch.no_grad():
        expected = model(**own).logits
        for encodings, reuse in ((None, False), (POLICY.encode(model, [clip]), True)):
            kwargs = POLICY.model_inputs(model, own["input_ids"], [clip], torch.tensor([0]), encodings, reuse=reuse)
            logits = model(input_ids=own["input_ids"], attention_mask=own["attention_mask"], **kwargs).logits
            assert (logits - expected).abs().max().item() <= 1e-6


def test_a_placeholder_count_that_does_not_match_the_row_is_named(tiny):
    _, processor, clips, _ = tiny
    text = POLICY.render_prompt(processor, video_prompt("what?"))
    with pytest.raises(ValueError, match="row 1: the prompt holds 1 video placeholders"):
        POLICY.tokenize_prompts(processor, [text, text], [clips[0], None])


# ---- vision once, exact -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("connector_trains", [False, True])
def test_reused_encoding_gives_the_pixel_paths_log_probs(tiny, connector_trains):
    """Rows of three clips of 4, 8 and 12 frames, shuffled, with a text-only row: per-token log-probs with the tower
    run once equal the model's own per-row vision path (fp32, <= 1e-6); the tower sees each clip once."""
    model, processor, clips, _ = tiny
    index = torch.tensor([2, 0, 1, -1, 0, 2, 1, 2])
    input_ids, mask = batch(POLICY, processor, clips, index)
    calls = TowerCalls(model)
    try:
        with trainable(POLICY, model, connector=connector_trains), torch.no_grad():
            pixel = pixel_path(model, input_ids, mask, clips, index)
            assert calls.frames == 2 * 12 + 2 * 4 + 2 * 8 + 12  # every video row re-encodes its clip
            seam = token_logps(model, input_ids, mask, **POLICY.model_inputs(model, input_ids, clips, index, None,
                                                                               reuse=False))  # fmt: skip
            assert torch.equal(seam, pixel)  # different lengths: the seam's pixel path is the same per-row path
            calls.reset()
            encodings = POLICY.encode(model, clips)
            assert (calls.calls, calls.frames) == (1, 4 + 8 + 12)  # one call, each distinct clip once
            calls.reset()
            for _ in range(2):  # e.g. the old and the reference pass of a step
                reused = token_logps(
                    model,
                    input_ids,
                    mask,
                    **POLICY.model_inputs(model, input_ids, clips, index, encodings, reuse=True),  # fmt: skip
                )
                assert (reused - pixel).abs().max().item() <= 1e-6
            assert calls.calls == 0  # the cached encoding is used, the tower does not run again
    finally:
        calls.close()
    shapes = [tuple(e.shape) for e in encodings]
    if connector_trains:
        assert shapes == [(4, 16, 32), (8, 16, 32), (12, 16, 32)]  # the tower's patches, before the projector
    else:
        assert shapes == [(4 * 4 + 1, 64), (8 * 4 + 1, 64), (12 * 4 + 1, 64)]  # the video features, newline last


def test_clips_of_one_length_go_through_the_models_own_pixel_input(tiny):
    """Rows whose clips share a frame count: `pixel_values_videos [rows, F, C, S, S]` inside the forward (FSDP
    gathers the tower there), equal to the reused encoding."""
    model, processor, clips, _ = tiny
    same = [clips[1], POLICY.permute_clip(clips[1], torch.arange(7, -1, -1))]
    index = torch.tensor([0, 1, -1, 0])
    input_ids, mask = batch(POLICY, processor, same, index)
    inputs = POLICY.model_inputs(model, input_ids, same, index, None, reuse=True)
    assert inputs["pixel_values_videos"].shape == (3, 8, 3, 32, 32)
    with torch.no_grad():
        pixel = token_logps(model, input_ids, mask, **inputs)
        reused = token_logps(model, input_ids, mask, **POLICY.model_inputs(model, input_ids, same, index,
                                                                             POLICY.encode(model, same), reuse=True))  # fmt: skip
    assert (reused - pixel).abs().max().item() <= 1e-6


def test_a_trainable_connector_gets_the_pixel_paths_gradients_from_the_cached_tower_output(tiny):
    model, processor, clips, _ = tiny
    index = torch.tensor([1, 2, 1, 0])
    input_ids, mask = batch(POLICY, processor, clips, index)

    def connector_grads(encodings):
        model.zero_grad()
        if encodings is None:
            logps = pixel_path(model, input_ids, mask, clips, index)
        else:
            logps = token_logps(model, input_ids, mask, **POLICY.model_inputs(model, input_ids, clips, index,
                                                                               encodings, reuse=True))  # fmt: skip
        logps.sum().backward()
        grads = {n: p.grad.clone() for n, p in model.model.multi_modal_projector.named_parameters()}
        return {**grads, "image_newline": model.model.image_newline.grad.clone()}

    with trainable(POLICY, model, connector=True):
        pixel = connector_grads(None)
        cached = connector_grads(POLICY.encode(model, clips))
        assert all(p.grad is None for p in POLICY.vision_module(model).parameters())  # the tower is frozen
    for name in pixel:
        assert torch.allclose(cached[name], pixel[name], atol=1e-6, rtol=1e-5), name


def test_generate_with_the_cached_encoding_equals_the_pixel_path(tiny):
    model, processor, clips, _ = tiny
    index = torch.tensor([1, 1, 0, -1, 2, 2])
    ids, mask = batch(POLICY, processor, clips, index, completion=0)
    calls = TowerCalls(model)

    def generate(inputs):
        return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, do_sample=False,
                              output_scores=True, return_dict_in_generate=True, **inputs)  # fmt: skip

    try:
        with torch.no_grad():
            pixel = generate(POLICY.model_inputs(model, ids, clips, index, None, reuse=False))
            encodings = POLICY.encode(model, clips)
            calls.reset()
            reused = generate(POLICY.model_inputs(model, ids, clips, index, encodings, reuse=True))
    finally:
        calls.close()
    assert calls.calls == 0
    assert torch.equal(pixel.sequences, reused.sequences)
    assert max((a - b).abs().max().item() for a, b in zip(pixel.scores, reused.scores, strict=True)) <= 1e-5


# ---- temporal contrast --------------------------------------------------------------------------------------------


def test_permutation_reorders_frames_of_clip_and_encoding_alike(tiny):
    model, processor, _, _ = tiny
    frames = moving_square_frames(5, 32, 48)
    clip = POLICY.clip_from_frames(processor, frames, frame_indices=[0, 3, 6, 9, 12])
    assert POLICY.temporal_units(clip) == 5
    permutation = [2, 0, 4, 1, 3]
    shuffled = POLICY.permute_clip(clip, permutation)
    expected = POLICY.clip_from_frames(processor, frames[permutation])
    assert torch.equal(shuffled.inputs["pixel_values_videos"], expected.inputs["pixel_values_videos"])
    assert shuffled.frame_indices == [6, 0, 12, 3, 9]
    for connector_trains in (False, True):
        with trainable(POLICY, model, connector=connector_trains):
            (encoding,) = POLICY.encode(model, [clip])
            (direct,) = POLICY.encode(model, [shuffled])
            assert (POLICY.permute_encoding(encoding, clip, permutation) - direct).abs().max().item() <= 1e-6
    with pytest.raises(ValueError, match="5 frames"):
        POLICY.permute_clip(clip, [1, 0])


# ---- SFT ----------------------------------------------------------------------------------------------------------


def test_sft_labels_keep_only_the_reply_after_the_generation_prompt(tiny):
    """The reply follows the generation prompt `<|im_start|>assistant\\n` exactly as in GRPO (the template's own
    render of a past turn, `assistant \\n{reply}`, is not what the model generates), then `<|im_end|>`."""
    _, processor, clips, _ = tiny
    reply = "<think> the square moves right </think> <answer> B </answer>"
    messages = [*video_prompt("what moves?"), {"role": "assistant", "content": reply}]
    ids, labels = POLICY.tokenize_conversation(processor, messages, clips[1])
    prompt = POLICY.tokenize_prompts(processor, [POLICY.render_prompt(processor, messages[:1])], [clips[1]])[0]
    assert ids[: len(prompt)] == prompt
    assert all(label == -100 for label in labels[: len(prompt)])
    assert processor.tokenizer.decode(labels[len(prompt) :]) == reply + "<|im_end|>"
    assert ids.count(processor.video_token_id) == 8 * TOKENS_PER_FRAME + 1
    # a second turn: its user text comes from the template, its reply again after the generation prompt
    more = [*messages, {"role": "user", "content": [{"type": "text", "text": "sure?"}]},
            {"role": "assistant", "content": "yes"}]  # fmt: skip
    ids2, labels2 = POLICY.tokenize_conversation(processor, more, clips[1])
    assert ids2[: len(ids)] == ids
    kept = processor.tokenizer.decode([t for t in labels2 if t != -100])
    assert kept == reply + "<|im_end|>yes<|im_end|>"
    assert (
        processor.tokenizer.decode(ids2[len(ids) :])
        == "<|im_start|>user \nsure?<|im_end|><|im_start|>assistant\nyes<|im_end|>"
    )


def test_sft_collate_refuses_clips_of_different_lengths_in_one_line(tiny):
    _, _, clips, _ = tiny
    assert POLICY.collate_clips([clips[0], None, clips[0]])["pixel_values_videos"].shape == (2, 4, 3, 32, 32)
    with pytest.raises(ValueError, match=r"one frame count per batch, got clips of \[4, 8\] frames"):
        POLICY.collate_clips([clips[0], clips[1]])


def test_freeze_says_what_is_frozen(tiny):
    model, _, _, _ = tiny
    assert POLICY.frozen_modules(model) == ["vision", "connector"]
    with trainable(POLICY, model, connector=True):
        assert POLICY.frozen_modules(model) == ["vision"]
        POLICY.vision_module(model).requires_grad_(True)
        assert POLICY.encode(model, [None]) is None  # a trainable tower has nothing to cache
        POLICY.freeze(model, language_model=True)
        assert POLICY.frozen_modules(model) == ["vision", "language_model"]
        assert not model.lm_head.weight.requires_grad


# ---- recipes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["coldstart_sft", "grpo_nextqa"])
def test_llava_onevision_recipes_keep_the_paper_settings_and_build_at_tiny_size(stage, tmp_path):
    _, _, args, _ = check_paper_recipe("LLaVA-OneVision-0.5B", stage)
    model, processor = POLICY.build_tiny(tmp_path / "tiny")
    POLICY.freeze(model, vision=args.freeze_vision_tower)
    assert POLICY.frozen_modules(model) == ["vision"]  # the tower frozen; projector, newline and LLM trained
    clip = POLICY.clip_from_frames(processor, moving_square_frames(args.num_frames, 32, 48))
    assert POLICY.temporal_units(clip) == args.num_frames
    (encoding,) = POLICY.encode(model, [clip])
    assert encoding.shape[0] == args.num_frames  # the tower's output: the connector runs in every pass


def test_real_size_prompt_fits_the_recipes_max_length():
    """16 frames of LLaVA-OneVision-0.5B (384 px, 14 px patches: 27x27 -> 14x14 after pooling) are 3,137 video
    tokens; the recipes' `max_length` leaves room for the prompt and the reply."""
    from types import SimpleNamespace

    processor = SimpleNamespace(num_image_tokens=729)
    assert POLICY.video_token_count(processor, None) == 16 * 196 + 1
    for stage in ("coldstart_sft", "grpo_nextqa"):
        ours = yaml.safe_load((RECIPES / "LLaVA-OneVision-0.5B" / f"{stage}.yaml").read_text())
        if "max_length" in ours:
            assert ours["max_length"] >= 16 * 196 + 1 + 512


def test_frames_are_numpy_or_torch(tiny):
    _, processor, _, _ = tiny
    frames = moving_square_frames(3, 32, 32)
    a = POLICY.clip_from_frames(processor, frames)
    b = POLICY.clip_from_frames(processor, torch.from_numpy(np.ascontiguousarray(frames)))
    assert torch.equal(a.inputs["pixel_values_videos"], b.inputs["pixel_values_videos"])


def test_the_trap_videos_of_different_lengths_cannot_travel_as_qwens_tuple_or_a_stack(tiny):
    """Why the seam packs the rows' videos as one `[1, tokens, D]` tensor: `get_video_features` gives one tensor per
    call and the forward flattens its first two dims, so Qwen's form (a tuple, one entry per video) fails, and clips of
    4 and 8 frames (17 and 33 tokens) cannot be stacked as `[videos, tokens, D]`."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    model, processor, clips, _ = tiny
    index = torch.tensor([0, 1])
    input_ids, mask = batch(POLICY, processor, clips, index)
    encodings = POLICY.encode(model, clips)
    with torch.no_grad(), pytest.raises(AttributeError, match="flatten"):
        tuple_form = BaseModelOutputWithPooling(pooler_output=(encodings[0], encodings[1]))
        model(input_ids=input_ids, attention_mask=mask, mm_encoder_outputs={"video": tuple_form})
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        torch.stack(encodings[:2])
    packed = POLICY.model_inputs(model, input_ids, clips, index, encodings, reuse=True)["mm_encoder_outputs"]
    assert packed["video"].pooler_output.shape == (1, 17 + 33, 64)


def test_sft_collator_batch_trains_the_replies_only(tiny, tmp_path):
    """The SFT collator with LLaVA-OneVision's processor: rows of real clips at a fixed frame count, labels on the
    replies; the forward takes the collated pixels and gives a finite loss."""
    from r1video.trainer.sft_collator import VideoSFTCollator

    model, processor, _, folder = tiny
    (path, *_) = write_clips_of_lengths(tmp_path)
    reply = "<think> right </think> <answer> B </answer>"
    rows = [
        {"video": path, "messages": [*video_prompt("what moves?"), {"role": "assistant", "content": reply}]},
        {"messages": [*TEXT_ONLY, {"role": "assistant", "content": "hi"}]},
    ]
    collated = VideoSFTCollator(processor, num_frames=6)(rows)
    assert collated["pixel_values_videos"].shape == (1, 6, 3, 32, 32)
    kept = [processor.tokenizer.decode([t for t in row if t != -100]) for row in collated["labels"].tolist()]
    assert kept == [reply + "<|im_end|>", "hi<|im_end|>"]
    with torch.no_grad():
        loss = model(**collated).loss
    assert torch.isfinite(loss)


def test_a_checkpoint_loads_back_into_the_training_model_by_name(tmp_path):
    """Resume: transformers saves LLaVA-OneVision under the llava-hf names (`language_model.model.*`,
    `vision_tower.*`, ...); the Trainer's `load_state_dict(strict=False)` would match no key (a resume from the initial
    weights); `load_checkpoint` reads the checkpoint with transformers' own renaming and loads every weight in place."""
    from safetensors.torch import load_file

    model = POLICY.build_tiny(seed=1)[0]
    model.save_pretrained(tmp_path / "checkpoint")
    saved = {name: p.detach().clone() for name, p in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    stored = load_file(tmp_path / "checkpoint" / "model.safetensors")
    assert "image_newline" in stored and any(key.startswith("vision_tower.") for key in stored)  # llava-hf layout
    assert not set(stored) & set(model.state_dict())  # what `load_state_dict(strict=False)` would load: nothing
    parameter = model.model.multi_modal_projector.linear_1.weight
    assert POLICY.load_checkpoint(model, tmp_path / "checkpoint")
    assert model.model.multi_modal_projector.linear_1.weight is parameter  # in place: the optimizer still points at it
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name

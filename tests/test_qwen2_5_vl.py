"""Qwen2.5-VL behind the policy seam, on a tiny random model built offline with the real Qwen2.5-VL processor and
real mp4 clips of different lengths and sizes (so `video_grid_thw` differs between the clips of one batch)."""

import numpy as np
import pytest
import torch
from family_fixtures import batch, check_paper_recipe, token_logps, trainable, video_prompt
from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor, Qwen2VLVideoProcessor
from transformers.video_utils import VideoMetadata
from video_fixtures import moving_square_frames, write_clips_of_lengths

from r1video.policies.qwen2_5_vl import Clip, Qwen2_5_VLPolicy
from r1video.policies.qwen2_5_vl_tiny import build_tiny_qwen, load_qwen2_5_vl_chat_template

POLICY = Qwen2_5_VLPolicy()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qwen")
    model, processor = build_tiny_qwen(folder / "model")
    paths = write_clips_of_lengths(folder)
    clips = [POLICY.decode_clip(processor, path, fps=5) for path in paths]
    POLICY.freeze(model, vision=True, connector=True)
    return model, processor, clips, folder


class VisionCalls:
    """Counts the clips (rows of `grid_thw`) the vision encoder sees, with a forward hook on `model.model.visual`."""

    def __init__(self, model):
        self.clips = 0
        self.calls = 0
        self.handle = model.model.visual.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        self.calls += 1
        self.clips += len(kwargs["grid_thw"] if "grid_thw" in kwargs else args[1])

    def reset(self):
        self.clips = self.calls = 0

    def close(self):
        self.handle.remove()


# ---- builder and inputs -------------------------------------------------------------------------------------------


def test_tiny_model_reloads_offline_with_the_real_processor(tiny):
    model, _, _, folder = tiny
    processor = AutoProcessor.from_pretrained(folder / "model")
    reloaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder / "model")
    assert type(processor) is Qwen2_5_VLProcessor and type(processor.video_processor) is Qwen2VLVideoProcessor
    assert processor.tokenizer.chat_template == load_qwen2_5_vl_chat_template()
    assert processor.tokenizer.padding_side == "left"
    for (name, p), (_, q) in zip(model.state_dict().items(), reloaded.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    text = POLICY.render_prompt(processor, video_prompt("what?"))
    assert text.endswith("<|vision_start|><|video_pad|><|vision_end|>what?<|im_end|>\n<|im_start|>assistant\n")


def test_clips_of_different_lengths_have_their_own_grid_and_timing(tiny):
    _, _, clips, _ = tiny
    grids = [clip.inputs["video_grid_thw"].tolist()[0] for clip in clips]
    assert [clip.num_frames for clip in clips] == [4, 8, 12]  # 0.8 s, 1.6 s, 2.4 s at 5 fps
    assert grids == [[2, 4, 4], [4, 6, 4], [6, 4, 6]]  # t = frames / 2; h, w follow each clip's size
    for clip in clips:  # 5 frames per second sampled: 2 frames per temporal patch = 0.4 s
        assert clip.inputs["second_per_grid_ts"].tolist() == pytest.approx([0.4])


def test_prompt_ids_and_pixels_equal_the_processors_own_call(tiny):
    """tokenize_prompts + clip_from_frames give what `Qwen2_5_VLProcessor(text, videos, metadata)` gives."""
    _, processor, _, _ = tiny
    frames = moving_square_frames(10, 40, 56)
    indices = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    clip = POLICY.clip_from_frames(processor, frames, fps=25, frame_indices=indices, num_total_frames=50)
    text = POLICY.render_prompt(processor, video_prompt("what moves left?"))
    metadata = VideoMetadata(total_num_frames=50, fps=25.0, frames_indices=indices)
    own = processor(text=[text], videos=[frames], videos_kwargs={"video_metadata": [metadata]}, return_tensors="pt")
    assert POLICY.tokenize_prompts(processor, [text], [clip]) == own["input_ids"].tolist()
    assert torch.equal(clip.inputs["pixel_values_videos"], own["pixel_values_videos"])
    assert torch.equal(clip.inputs["video_grid_thw"], own["video_grid_thw"])
    assert clip.inputs["second_per_grid_ts"].tolist() == pytest.approx(own["second_per_grid_ts"].tolist())
    model = tiny[0]
    inputs = POLICY.model_inputs(model, own["input_ids"], [clip], torch.tensor([0]), None, reuse=False)
    assert torch.equal(inputs["mm_token_type_ids"], own["mm_token_type_ids"])
    # and the forward: the seam's inputs (pixel path and cached encoding) give the logits of the processor's own call
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


@pytest.mark.parametrize("merger_trains", [False, True])
def test_reused_encoding_gives_the_pixel_paths_log_probs(tiny, merger_trains):
    """Rows of three clips of different lengths, shuffled, with a text-only row: per-token log-probs with the encoding
    run once equal those of the per-row pixel path (fp32, <= 1e-6), and the encoder sees each clip once."""
    model, processor, clips, _ = tiny
    index = torch.tensor([2, 0, 1, -1, 0, 2, 1, 2])
    input_ids, mask = batch(POLICY, processor, clips, index)
    calls = VisionCalls(model)
    with trainable(POLICY, model, connector=merger_trains):
        with torch.no_grad():
            pixel = token_logps(model, input_ids, mask, **POLICY.model_inputs(model, input_ids, clips, index, None,
                                                                              reuse=False))  # fmt: skip
            assert calls.clips == 7  # every video row re-encodes its clip
            calls.reset()
            encodings = POLICY.encode(model, clips)
            assert calls.clips == 3 and calls.calls == 1  # once per distinct clip
            calls.reset()
            for _ in range(2):  # e.g. the old and the reference pass of a step
                reused = token_logps(
                    model,
                    input_ids,
                    mask,
                    **POLICY.model_inputs(model, input_ids, clips, index, encodings, reuse=True),
                )
                assert (reused - pixel).abs().max().item() <= 1e-6
            assert calls.clips == 0  # the cached encoding is used, the ViT does not run again
            shared = token_logps(
                model, input_ids, mask, **POLICY.model_inputs(model, input_ids, clips, index, None, reuse=True)
            )
            assert calls.clips == 7  # no cache (FSDP, a trainable ViT): the pixel path inside the forward
            assert torch.equal(shared, pixel)
    calls.close()
    expected = [e.shape[0] for e in encodings]
    patches = [int(c.inputs["video_grid_thw"].prod()) for c in clips]
    assert expected == (patches if merger_trains else [p // 4 for p in patches])


def test_a_trainable_merger_gets_the_pixel_paths_gradients_from_the_cached_vit_output(tiny):
    model, processor, clips, _ = tiny
    index = torch.tensor([1, 2, 1, 0])
    input_ids, mask = batch(POLICY, processor, clips, index)

    def merger_grads(encodings, reuse):
        model.zero_grad()
        token_logps(model, input_ids, mask, **POLICY.model_inputs(model, input_ids, clips, index, encodings,
                                                                  reuse=reuse)).sum().backward()  # fmt: skip
        return {n: p.grad.clone() for n, p in model.model.visual.merger.named_parameters()}

    with trainable(POLICY, model, connector=True):
        pixel = merger_grads(None, reuse=False)
        cached = merger_grads(POLICY.encode(model, clips), reuse=True)
        assert all(p.grad is None for p in model.model.visual.blocks.parameters())  # the ViT is frozen
    for name in pixel:
        assert torch.allclose(cached[name], pixel[name], atol=1e-6, rtol=1e-5), name


def test_positions_are_recomputed_after_a_generate_on_other_rows(tiny):
    """M-RoPE: the model keeps `rope_deltas` from its last call. After generating on batch A, a forward on batch B
    (same row count) with the seam's inputs equals one on a fresh model; an embeds-only forward would inherit A's
    deltas and differ, so this call sequence exposes inherited state."""
    model, processor, clips, _ = tiny
    a_index, b_index = torch.tensor([2, 2, 0, -1]), torch.tensor([0, 1, -1, 1])
    a_ids, a_mask = batch(POLICY, processor, clips, a_index, completion=0)
    b_ids, b_mask = batch(POLICY, processor, clips, b_index, seed=1)
    encodings = POLICY.encode(model, clips)
    b_inputs = POLICY.model_inputs(model, b_ids, clips, b_index, encodings, reuse=True)
    with torch.no_grad():
        model.model.rope_deltas = None
        fresh = token_logps(model, b_ids, b_mask, **b_inputs)
        model.generate(
            input_ids=a_ids, attention_mask=a_mask, max_new_tokens=3, do_sample=False,
            **POLICY.model_inputs(model, a_ids, clips, a_index, encodings, reuse=True),
        )  # fmt: skip
        after = token_logps(model, b_ids, b_mask, **b_inputs)
        assert torch.equal(after, fresh)
        # the trap: the same rows as embeddings without input_ids take the deltas A's generate left on the model
        embeds = model.get_input_embeddings()(b_ids)
        video = torch.cat(b_inputs["mm_encoder_outputs"]["video"].pooler_output)
        embeds = embeds.masked_scatter((b_ids == model.config.video_token_id)[..., None], video)
        logits = model(inputs_embeds=embeds, attention_mask=b_mask).logits.float()
    inherited = torch.log_softmax(logits[:, :-1], -1).gather(-1, b_ids[:, 1:, None])[..., 0] * b_mask[:, 1:]
    assert (inherited - fresh).abs().max().item() > 1e-4


def test_generate_with_the_cached_encoding_equals_the_pixel_path(tiny):
    model, processor, clips, _ = tiny
    index = torch.tensor([1, 1, 0, -1, 2, 2])
    ids, mask = batch(POLICY, processor, clips, index, completion=0)
    calls = VisionCalls(model)

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
    assert calls.clips == 0
    assert torch.equal(pixel.sequences, reused.sequences)
    assert max((a - b).abs().max().item() for a, b in zip(pixel.scores, reused.scores, strict=True)) <= 1e-5


# ---- temporal contrast --------------------------------------------------------------------------------------------


def test_permutation_reorders_temporal_patches_of_clip_and_encoding_alike(tiny):
    model, processor, _, _ = tiny
    frames = moving_square_frames(8, 32, 48)
    clip = POLICY.clip_from_frames(processor, frames, fps=25, frame_indices=list(range(0, 16, 2)), num_total_frames=16)
    assert POLICY.temporal_units(clip) == 4  # 2 frames per temporal patch
    permutation = [2, 0, 3, 1]
    shuffled = POLICY.permute_clip(clip, permutation)
    pairs = np.concatenate([frames[2 * u : 2 * u + 2] for u in permutation])
    expected = POLICY.clip_from_frames(processor, pairs, fps=25, frame_indices=list(range(0, 16, 2)),
                                       num_total_frames=16)  # fmt: skip
    assert torch.equal(shuffled.inputs["pixel_values_videos"], expected.inputs["pixel_values_videos"])
    assert torch.equal(shuffled.inputs["video_grid_thw"], clip.inputs["video_grid_thw"])
    assert shuffled.frame_indices == [8, 10, 0, 2, 12, 14, 4, 6]
    for merger_trains in (False, True):
        with trainable(POLICY, model, connector=merger_trains):
            (encoding,) = POLICY.encode(model, [clip])
            (direct,) = POLICY.encode(model, [shuffled])
            assert (POLICY.permute_encoding(encoding, clip, permutation) - direct).abs().max().item() <= 1e-6
    with pytest.raises(ValueError, match="4 temporal patches"):
        POLICY.permute_clip(clip, [1, 0])


# ---- SFT ----------------------------------------------------------------------------------------------------------


def test_sft_labels_keep_only_the_reply_and_its_end_token(tiny):
    _, processor, clips, _ = tiny
    reply = "<think> the square moves right </think> <answer> B </answer>"
    messages = [*video_prompt("what moves?"), {"role": "assistant", "content": reply}]
    ids, labels = POLICY.tokenize_conversation(processor, messages, clips[1])
    prompt = POLICY.tokenize_prompts(processor, [POLICY.render_prompt(processor, messages[:1])], [clips[1]])[0]
    assert ids[: len(prompt)] == prompt  # the reply follows the generation prompt, as in GRPO
    assert all(label == -100 for label in labels[: len(prompt)])
    kept = [token for token in labels if token != -100]
    assert processor.tokenizer.decode(kept) == reply + "<|im_end|>"
    assert labels[-1] == -100 and processor.tokenizer.decode(ids[-1:]) == "\n"  # never generated
    assert ids.count(processor.video_token_id) == int(clips[1].inputs["video_grid_thw"].prod()) // 4


def test_sft_batch_gets_the_positions_of_the_pixel_path(tiny):
    """`collate_clips` builds `mm_token_type_ids` from the padded ids: an SFT forward on it equals the seam's pixel
    path; without the ids it refuses (the video tokens would silently get 1-D positions)."""
    model, processor, clips, _ = tiny
    index = torch.tensor([1, -1, 0])
    input_ids, mask = batch(POLICY, processor, clips, index)
    rows = [None if i < 0 else clips[i] for i in index.tolist()]
    with torch.no_grad():
        sft = token_logps(
            model, input_ids, mask, **POLICY.collate_clips(rows, input_ids=input_ids, processor=processor)
        )
        seam = token_logps(model, input_ids, mask, **POLICY.model_inputs(model, input_ids, clips, index, None,
                                                                           reuse=False))  # fmt: skip
    assert torch.equal(sft, seam)
    with pytest.raises(ValueError, match="mm_token_type_ids"):
        POLICY.collate_clips(rows)


def test_freeze_says_what_is_frozen(tiny):
    model, _, _, _ = tiny
    assert POLICY.frozen_modules(model) == ["vision", "connector"]
    with trainable(POLICY, model, connector=True):
        assert POLICY.frozen_modules(model) == ["vision"]
        model.model.visual.blocks[0].requires_grad_(True)
        assert POLICY.encode(model, [Clip({}, 0)]) is None  # a trainable ViT has nothing to cache
        POLICY.freeze(model, language_model=True)
        assert POLICY.frozen_modules(model) == ["vision", "language_model"]
        assert not model.lm_head.weight.requires_grad


# ---- recipes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["coldstart_sft", "grpo_nextqa"])
def test_qwen_recipes_keep_the_paper_settings_and_build_at_tiny_size(tiny, stage, tmp_path):
    _, _, args, _ = check_paper_recipe("Qwen2.5-VL-3B", stage)
    # the model at tiny size, frozen as the recipe says: the ViT frozen, the merger and the LLM trained
    model, processor = POLICY.build_tiny(tmp_path / "tiny")
    POLICY.freeze(model, vision=args.freeze_vision_tower)
    assert POLICY.frozen_modules(model) == ["vision"]
    clip = POLICY.clip_from_frames(processor, moving_square_frames(args.num_frames, 32, 48), fps=25)
    assert POLICY.temporal_units(clip) == args.num_frames // 2
    (encoding,) = POLICY.encode(model, [clip])
    assert encoding.shape[0] == int(clip.inputs["video_grid_thw"].prod())  # pre-merger: the merger trains


def test_a_checkpoint_loads_back_into_the_training_model_by_name(tiny, tmp_path):
    """Resume: transformers saves Qwen2.5-VL under the released names (`visual.*`, `model.layers.*`); loaded with the
    Trainer's `strict=False` nearly nothing would match (a resume from the initial weights); `load_checkpoint` maps
    the names back and loads every parameter in place."""
    from safetensors.torch import load_file

    model = POLICY.build_tiny(seed=1)[0]
    model.save_pretrained(tmp_path / "checkpoint")
    saved = {name: p.detach().clone() for name, p in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    stored = load_file(tmp_path / "checkpoint" / "model.safetensors")
    assert any(key.startswith("visual.") for key in stored)  # the released layout
    matched = set(stored) & set(model.state_dict())
    assert len(matched) < len(stored) / 10  # what `load_state_dict(strict=False)` would load
    parameter = model.model.visual.merger.mlp[0].weight
    assert POLICY.load_checkpoint(model, tmp_path / "checkpoint")
    assert model.model.visual.merger.mlp[0].weight is parameter  # in place: the optimizer still points at it
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name

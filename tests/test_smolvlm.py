"""SmolVLM2 behind the policy seam, on a tiny random model built offline (SigLIP-like encoder + pixel-shuffle connector
+ Llama) with the real `SmolVLMProcessor` and real mp4 clips of different lengths: the frames are images to the model
(`get_image_features`, modality key "image"), the prompt writes the clip's frame times, and the model's own pixel input
pads shorter clips with all-zero frames and a `pixel_attention_mask`."""

import pytest
import torch
from family_fixtures import batch, check_paper_recipe, token_logps, trainable, video_prompt
from transformers import AutoProcessor, SmolVLMForConditionalGeneration, SmolVLMProcessor, SmolVLMVideoProcessor
from transformers.video_utils import VideoMetadata
from video_fixtures import moving_square_frames, write_clips_of_lengths

from r1video.policies import policy_for
from r1video.policies.base import VideoPolicy
from r1video.policies.smolvlm import SmolVLMPolicy

POLICY = SmolVLMPolicy()
TOKENS_PER_FRAME = 4  # 32 px frames, 8 px patches: 4x4 patches, pixel shuffle by 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smol")
    model, processor = POLICY.build_tiny(folder / "model")
    paths = write_clips_of_lengths(folder)
    clips = [POLICY.decode_clip(processor, path, fps=5) for path in paths]  # 4, 8, 12 frames
    POLICY.freeze(model, vision=True, connector=True)
    return model, processor, clips, folder


class EncoderCalls:
    """Counts calls of the vision encoder and the frames they see (its `pixel_values`)."""

    def __init__(self, model):
        self.calls = self.frames = 0
        self.handle = POLICY.vision_module(model).register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        self.calls += 1
        self.frames += (kwargs.get("pixel_values") if "pixel_values" in kwargs else args[0]).shape[0]

    def reset(self):
        self.calls = self.frames = 0

    def close(self):
        self.handle.remove()


# ---- builder and inputs -------------------------------------------------------------------------------------------


def test_tiny_model_reloads_offline_with_the_real_processor(tiny):
    model, _, clips, folder = tiny
    processor = AutoProcessor.from_pretrained(folder / "model")
    reloaded = SmolVLMForConditionalGeneration.from_pretrained(folder / "model")
    assert type(processor) is SmolVLMProcessor and type(processor.video_processor) is SmolVLMVideoProcessor
    assert isinstance(policy_for(reloaded), SmolVLMPolicy) and isinstance(policy_for(processor), SmolVLMPolicy)
    for (name, p), (_, q) in zip(model.state_dict().items(), reloaded.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    assert POLICY.render_prompt(processor, video_prompt("what?")) == (
        "<|im_start|>User: <video>what?<end_of_utterance>\nAssistant:"
    )
    assert not hasattr(model.model, "get_video_features")  # frames are images to SmolVLM
    assert [POLICY.video_token_count(processor, c) for c in clips] == [4 * 4, 8 * 4, 12 * 4]


def test_prompt_ids_pixels_and_logits_equal_the_processors_own_call(tiny):
    """tokenize_prompts + clip_from_frames give what `SmolVLMProcessor(text, videos, video_metadata)` gives (the
    frame times written in the prompt included), and the seam's inputs give the logits of the processor's own call."""
    model, processor, _, _ = tiny
    frames = moving_square_frames(6, 40, 56)
    indices = [0, 15, 30, 45, 60, 75]  # at 25 fps: 0.0, 0.6, 1.2, ... 3.0 s of a 3.2 s clip
    clip = POLICY.clip_from_frames(processor, frames, fps=25, frame_indices=indices, num_total_frames=80)
    text = POLICY.render_prompt(processor, video_prompt("what moves left?"))
    metadata = VideoMetadata(total_num_frames=80, fps=25.0, frames_indices=indices, duration=80 / 25)
    own = processor(text=[text], videos=[frames], videos_kwargs={"video_metadata": [metadata]}, return_tensors="pt")
    ids = POLICY.tokenize_prompts(processor, [text], [clip])
    assert ids == own["input_ids"].tolist()
    decoded = processor.tokenizer.decode(ids[0])
    assert "series of six frames from a 0:00:03 [H:MM:SS] video." in decoded
    assert decoded.count("Frame from 00:0") == 6 and "Frame from 00:03:" in decoded
    assert torch.equal(clip.inputs["pixel_values"], own["pixel_values"][0])
    assert torch.equal(clip.inputs["pixel_attention_mask"], own["pixel_attention_mask"][0])
    pixels = {k: own[k] for k in ("pixel_values", "pixel_attention_mask")}
    with torch.no_grad():
        expected = model(input_ids=own["input_ids"], attention_mask=own["attention_mask"], **pixels).logits
        for encodings, reuse in ((None, False), (POLICY.encode(model, [clip]), True)):
            kwargs = POLICY.model_inputs(model, own["input_ids"], [clip], torch.tensor([0]), encodings, reuse=reuse)
            logits = model(input_ids=own["input_ids"], attention_mask=own["attention_mask"], **kwargs).logits
            assert (logits - expected).abs().max().item() <= 1e-6


def test_a_placeholder_count_that_does_not_match_the_row_is_named(tiny):
    _, processor, clips, _ = tiny
    text = POLICY.render_prompt(processor, video_prompt("what?"))
    with pytest.raises(ValueError, match="row 1: the prompt holds 1 video placeholders"):
        POLICY.tokenize_prompts(processor, [text, text], [clips[0], None])


def test_prompt_length_is_exact_with_a_clip_and_a_bound_without(tiny):
    _, processor, clips, _ = tiny
    text = POLICY.render_prompt(processor, video_prompt("what?"))
    for clip in clips:
        assert POLICY.prompt_length(processor, text, clip) == len(
            POLICY.tokenize_prompts(processor, [text], [clip])[0]
        )
    assert POLICY.prompt_length(processor, text) >= POLICY.prompt_length(processor, text, clips[2]) + 4 * 4


# ---- vision once, exact -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("connector_trains", [False, True])
def test_reused_encoding_gives_the_pixel_paths_log_probs(tiny, connector_trains):
    """Rows of three clips of 4, 8 and 12 frames, shuffled, with a text-only row: per-token log-probs with the encoder
    run once equal those of the model's own pixel input (shorter clips padded with zero frames, the
    `pixel_attention_mask`), fp32 <= 1e-6; the encoder sees each clip once."""
    model, processor, clips, _ = tiny
    index = torch.tensor([2, 0, 1, -1, 0, 2, 1, 2])
    input_ids, mask = batch(POLICY, processor, clips, index)
    calls = EncoderCalls(model)
    try:
        with trainable(POLICY, model, connector=connector_trains), torch.no_grad():
            pixel_inputs = POLICY.model_inputs(model, input_ids, clips, index, None, reuse=False)
            assert pixel_inputs["pixel_values"].shape == (7, 12, 3, 32, 32)  # padded to the longest clip
            assert pixel_inputs["pixel_attention_mask"][1, 4:].sum() == 0  # the 4-frame row's padding frames
            pixel = token_logps(model, input_ids, mask, **pixel_inputs)
            assert calls.frames == 3 * 12 + 2 * 4 + 2 * 8  # every video row re-encodes its clip, padding dropped
            calls.reset()
            encodings = POLICY.encode(model, clips)
            assert (calls.calls, calls.frames) == (1, 4 + 8 + 12)  # one call, each distinct clip once
            calls.reset()
            for _ in range(2):  # e.g. the old and the reference pass of a step
                reused = token_logps(
                    model,
                    input_ids,
                    mask,
                    **POLICY.model_inputs(model, input_ids, clips, index, encodings, reuse=True),
                )
                assert (reused - pixel).abs().max().item() <= 1e-6
            assert calls.calls == 0  # the cached encoding is used, the encoder does not run again
            shared = token_logps(
                model, input_ids, mask, **POLICY.model_inputs(model, input_ids, clips, index, None, reuse=True)
            )
            assert torch.equal(shared, pixel)  # no cache (FSDP, a trainable encoder): the pixel path
    finally:
        calls.close()
    shapes = [tuple(e.shape) for e in encodings]
    if connector_trains:
        assert shapes == [(4, 16, 32), (8, 16, 32), (12, 16, 32)]  # the encoder's patches, before the connector
    else:
        assert shapes == [(4 * 4, 64), (8 * 4, 64), (12 * 4, 64)]  # the frames' image features


def test_a_trainable_connector_gets_the_pixel_paths_gradients_from_the_cached_encoder_output(tiny):
    model, processor, clips, _ = tiny
    index = torch.tensor([1, 2, 1, 0])
    input_ids, mask = batch(POLICY, processor, clips, index)

    def connector_grads(encodings, reuse):
        model.zero_grad()
        inputs = POLICY.model_inputs(model, input_ids, clips, index, encodings, reuse=reuse)
        token_logps(model, input_ids, mask, **inputs).sum().backward()
        return {n: p.grad.clone() for n, p in POLICY.vision_module(model).named_parameters() if p.grad is not None} | {
            n: p.grad.clone() for n, p in model.model.connector.named_parameters()
        }

    with trainable(POLICY, model, connector=True):
        pixel = connector_grads(None, reuse=False)
        cached = connector_grads(POLICY.encode(model, clips), reuse=True)
    assert pixel.keys() == cached.keys() == {"modality_projection.proj.weight"}  # the encoder is frozen
    for name in pixel:
        assert torch.allclose(cached[name], pixel[name], atol=1e-6, rtol=1e-5), name


def test_generate_with_the_cached_encoding_equals_the_pixel_path(tiny):
    model, processor, clips, _ = tiny
    index = torch.tensor([1, 1, 0, -1, 2, 2])
    ids, mask = batch(POLICY, processor, clips, index, completion=0)
    calls = EncoderCalls(model)

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


# ---- the traps ----------------------------------------------------------------------------------------------------


def test_a_blank_clip_is_black_frames_not_zero_tensors(tiny):
    """A row whose clip failed to decode gets black frames. The seam's default (zero tensors shaped as a clip of the
    batch) would be all-zero frames, which `get_image_features` drops as padding: the row's image tokens would then
    have no features and the forward fails. SmolVLM's blank clip sends black frames through the processor."""
    model, processor, clips, _ = tiny
    index = torch.tensor([0, 1])
    default = VideoPolicy.blank_clip(POLICY, processor, None, like=clips[1])
    ours = POLICY.blank_clip(processor, None, like=clips[1])
    assert ours.num_frames == 8 and torch.equal(ours.inputs["timestamps"], clips[1].inputs["timestamps"])
    assert (ours.inputs["pixel_values"] != 0).all()  # black is -1 after SmolVLM's normalisation
    input_ids, mask = batch(POLICY, processor, [clips[0], ours], index)
    with torch.no_grad():
        token_logps(model, input_ids, mask, **POLICY.model_inputs(model, input_ids, [clips[0], ours], index, None,
                                                                  reuse=False))  # fmt: skip
        with pytest.raises(ValueError, match="Image features and image tokens do not match"):
            token_logps(model, input_ids, mask, **POLICY.model_inputs(model, input_ids, [clips[0], default], index,
                                                                      None, reuse=False))  # fmt: skip


# ---- temporal contrast --------------------------------------------------------------------------------------------


def test_permutation_reorders_frames_of_clip_and_encoding_alike(tiny):
    model, processor, _, _ = tiny
    frames = moving_square_frames(5, 32, 48)
    clip = POLICY.clip_from_frames(processor, frames, fps=5, frame_indices=[0, 3, 6, 9, 12])
    assert POLICY.temporal_units(clip) == 5
    permutation = [2, 0, 4, 1, 3]
    shuffled = POLICY.permute_clip(clip, permutation)
    expected = POLICY.clip_from_frames(processor, frames[permutation], fps=5, frame_indices=[0, 3, 6, 9, 12])
    for key in ("pixel_values", "pixel_attention_mask", "timestamps"):
        assert torch.equal(shuffled.inputs[key], expected.inputs[key]), key  # frame times stay in order
    assert shuffled.frame_indices == [6, 0, 12, 3, 9]
    for connector_trains in (False, True):
        with trainable(POLICY, model, connector=connector_trains):
            (encoding,) = POLICY.encode(model, [clip])
            (direct,) = POLICY.encode(model, [shuffled])
            assert (POLICY.permute_encoding(encoding, clip, permutation) - direct).abs().max().item() <= 1e-6
    with pytest.raises(ValueError, match="5 frames"):
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
    assert processor.tokenizer.decode(kept) == " " + reply + "<end_of_utterance>"
    assert labels[-1] == -100 and processor.tokenizer.decode(ids[-1:]) == "\n"  # never generated
    assert ids.count(processor.image_token_id) == 8 * TOKENS_PER_FRAME


def test_sft_collator_batch_pads_clips_of_different_lengths(tiny, tmp_path):
    """The SFT collator with SmolVLM's processor: clips of 4 and 8 frames in one batch (fps sampling) padded as the
    processor pads a batch; the forward takes them and gives a finite loss on the replies."""
    from r1video.trainer.sft_collator import VideoSFTCollator

    model, processor, _, _ = tiny
    paths = write_clips_of_lengths(tmp_path)
    reply = "<think> right </think> <answer> B </answer>"
    rows = [
        {"video": paths[0], "messages": [*video_prompt("what moves?"), {"role": "assistant", "content": reply}]},
        {"video": paths[1], "messages": [*video_prompt("how many?"), {"role": "assistant", "content": "two"}]},
    ]
    collated = VideoSFTCollator(processor, num_frames=None, fps=5)(rows)
    assert collated["pixel_values"].shape == (2, 8, 3, 32, 32)
    assert collated["pixel_attention_mask"][0, 4:].sum() == 0
    kept = [processor.tokenizer.decode([t for t in row if t != -100]) for row in collated["labels"].tolist()]
    assert kept == [" " + reply + "<end_of_utterance>", " two<end_of_utterance>"]
    with torch.no_grad():
        assert torch.isfinite(model(**collated).loss)


def test_freeze_says_what_is_frozen(tiny):
    model, _, _, _ = tiny
    assert POLICY.frozen_modules(model) == ["vision", "connector"]
    with trainable(POLICY, model, connector=True):
        assert POLICY.frozen_modules(model) == ["vision"]
        POLICY.vision_module(model).requires_grad_(True)
        assert POLICY.encode(model, [None]) is None  # a trainable encoder has nothing to cache
        POLICY.freeze(model, language_model=True)
        assert POLICY.frozen_modules(model) == ["vision", "language_model"]
        assert not model.lm_head.weight.requires_grad


# ---- recipes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["coldstart_sft", "grpo_nextqa"])
def test_smolvlm2_recipes_keep_the_paper_settings_and_build_at_tiny_size(stage, tmp_path):
    ours, _, args, _ = check_paper_recipe("SmolVLM2-2.2B", stage)
    model, processor = POLICY.build_tiny(tmp_path / "tiny")
    POLICY.freeze(model, vision=args.freeze_vision_tower)
    assert POLICY.frozen_modules(model) == ["vision"]  # the encoder frozen; connector and LLM trained
    clip = POLICY.clip_from_frames(processor, moving_square_frames(args.num_frames, 32, 48), fps=25)
    assert POLICY.temporal_units(clip) == args.num_frames
    (encoding,) = POLICY.encode(model, [clip])
    assert encoding.shape[0] == args.num_frames  # the encoder's output: the connector runs in every pass
    if "max_length" in ours:  # SmolVLM2-2.2B: 81 image tokens per frame (+3 around them, + the frame's time)
        assert ours["max_length"] >= 16 * (81 + 3 + 8) + 512

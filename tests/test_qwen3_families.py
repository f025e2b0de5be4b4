"""Qwen3-VL and Qwen3.5 behind the policy seam, on tiny random models built offline with the real `Qwen3VLProcessor`
and real mp4 clips of different lengths and sizes (so `video_grid_thw` and the timestamps differ between the clips of
one batch)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from family_fixtures import TEXT_ONLY, batch, token_logps, trainable, video_prompt
from safetensors.torch import load_file
from transformers import AutoProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor
from transformers.video_utils import VideoMetadata
from video_fixtures import moving_square_frames, write_clips_of_lengths

from r1video.policies import policy_for
from r1video.policies.qwen3_5 import Qwen3_5Policy
from r1video.policies.qwen3_vl import Qwen3VLPolicy
from r1video.policies.qwen3_vl_tiny import FAMILIES, load_family_chat_template

POLICIES = {"qwen3_vl": Qwen3VLPolicy(), "qwen3_5": Qwen3_5Policy()}


@pytest.fixture(scope="module", params=list(POLICIES))
def tiny(request, tmp_path_factory):
    policy = POLICIES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    model, processor = policy.build_tiny(folder / "model")
    paths = write_clips_of_lengths(folder)
    clips = [policy.decode_clip(processor, path, fps=5) for path in paths]
    policy.freeze(model, vision=True, connector=True)
    return policy, model, processor, clips, folder


class VisionCalls:
    """Counts the calls of the vision encoder and the clips (rows of `grid_thw`) it sees, with a forward hook."""

    def __init__(self, policy, model):
        self.clips = self.calls = 0
        self.handle = policy.vision_module(model).register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        self.calls += 1
        self.clips += len(kwargs["grid_thw"] if "grid_thw" in kwargs else args[1])

    def reset(self):
        self.clips = self.calls = 0

    def close(self):
        self.handle.remove()


# ---- builder and inputs -------------------------------------------------------------------------------------------


def test_tiny_model_reloads_offline_with_the_real_processor(tiny):
    policy, model, _, _, folder = tiny
    processor = AutoProcessor.from_pretrained(folder / "model")
    reloaded, _ = policy.load(str(folder / "model"))
    assert type(processor) is Qwen3VLProcessor and type(processor.video_processor) is Qwen3VLVideoProcessor
    assert not processor.video_processor.do_sample_frames  # r1video samples the frames
    assert processor.tokenizer.chat_template == load_family_chat_template(policy.name)
    assert type(reloaded).__name__ == FAMILIES[policy.name][1].__name__
    for (name, p), (_, q) in zip(model.state_dict().items(), reloaded.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    assert policy_for(reloaded) is not None and policy_for(reloaded).name == policy.name


def test_clips_carry_the_timestamps_of_their_real_frame_rate(tiny):
    policy, _, processor, clips, _ = tiny
    assert [clip.num_frames for clip in clips] == [4, 8, 12]  # 0.8 s, 1.6 s, 2.4 s at 5 fps
    assert [clip.inputs["video_grid_thw"][0, 0].item() for clip in clips] == [2, 4, 6]
    # 5 fps of a 25 fps source; a temporal patch is stamped with its 2 frames' mean source time
    indices = clips[0].frame_indices
    assert indices == [0, 6, 12, 19]
    assert clips[0].inputs["video_timestamps"].tolist() == pytest.approx([(0 + 6) / 50, (12 + 19) / 50])
    text = policy.render_prompt(processor, video_prompt("what?"))
    (ids,) = policy.tokenize_prompts(processor, [text], [clips[0]])
    assert "<0.1 seconds><|vision_start|><|video_pad|>" in processor.tokenizer.decode(ids)
    assert "<0.6 seconds><|vision_start|><|video_pad|>" in processor.tokenizer.decode(ids)


def test_prompt_ids_and_pixels_equal_the_processors_own_call(tiny):
    """tokenize_prompts + clip_from_frames give what `Qwen3VLProcessor(text, videos, metadata)` gives (timestamps
    from the real fps and frame indices, the processor's own sampling off), and the seam's inputs give its logits."""
    policy, model, processor, _, _ = tiny
    frames = moving_square_frames(10, 40, 56)
    indices = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    clip = policy.clip_from_frames(processor, frames, fps=25, frame_indices=indices, num_total_frames=50)
    text = policy.render_prompt(processor, video_prompt("what moves left?"))
    metadata = VideoMetadata(total_num_frames=50, fps=25.0, frames_indices=indices)
    own = processor(text=[text], videos=[frames], videos_kwargs={"video_metadata": [metadata]}, return_tensors="pt")
    assert policy.tokenize_prompts(processor, [text], [clip]) == own["input_ids"].tolist()
    assert "<1.7 seconds>" in processor.tokenizer.decode(own["input_ids"][0])  # frames 40, 45 at 25 fps
    assert policy.prompt_length(processor, text, clip) == own["input_ids"].shape[1]
    assert policy.prompt_length(processor, text) >= own["input_ids"].shape[1]  # the bound without a clip
    assert torch.equal(clip.inputs["pixel_values_videos"], own["pixel_values_videos"])
    assert torch.equal(clip.inputs["video_grid_thw"], own["video_grid_thw"])
    inputs = policy.model_inputs(model, own["input_ids"], [clip], torch.tensor([0]), None, reuse=False)
    assert torch.equal(inputs["mm_token_type_ids"], own["mm_token_type_ids"])
    with torch.no_grad():
        expected = model(**own).logits
        for encodings, reuse in ((None, False), (policy.encode(model, [clip]), True)):
            kwargs = policy.model_inputs(model, own["input_ids"], [clip], torch.tensor([0]), encodings, reuse=reuse)
            logits = model(input_ids=own["input_ids"], attention_mask=own["attention_mask"], **kwargs).logits
            assert (logits - expected).abs().max().item() <= 1e-6


def test_the_processors_own_frame_sampling_never_drops_r1videos_frames(tiny):
    """The released processors sample frames themselves (`do_sample_frames=True`, 2 fps, at least 4 frames): given
    r1video's 12 frames of a 25 fps clip (2.4 s) it would keep 4. `clip_from_frames` turns that off per call, so every
    frame r1video sampled reaches the model, stamped with its real time."""
    policy, _, processor, _, _ = tiny
    video = processor.video_processor
    frames = moving_square_frames(12, 32, 32)
    indices = [5 * i for i in range(12)]
    as_a_video = VideoMetadata(total_num_frames=12, fps=5.0)  # the 12 frames as the processor sees them
    video.do_sample_frames = True  # the Hub default
    try:
        own = video(videos=[frames], video_metadata=[as_a_video], return_metadata=True, return_tensors="pt")
        clip = policy.clip_from_frames(processor, frames, fps=25, frame_indices=indices, num_total_frames=60)
    finally:
        video.do_sample_frames = False
    assert own["video_grid_thw"][0, 0].item() == 2  # the processor's own sampling: 4 of the 12 frames
    assert clip.inputs["video_grid_thw"][0, 0].item() == 6  # all 12
    assert clip.inputs["video_timestamps"].tolist() == pytest.approx([(10 * u + 2.5) / 25 for u in range(6)])


def test_a_one_frame_clip_and_a_blank_clip(tiny):
    """The processor refuses fewer frames than a temporal patch (`t:1 must be larger than temporal_factor:2`); a
    one-frame clip repeats its frame, as the processor does for an odd count. A blank clip keeps the timestamps of the
    clip it stands in for."""
    policy, model, processor, clips, _ = tiny
    frame = moving_square_frames(1, 32, 32)
    clip = policy.clip_from_frames(processor, frame, fps=25, frame_indices=[10], num_total_frames=20)
    twice = policy.clip_from_frames(processor, np.concatenate([frame, frame]), fps=25, frame_indices=[10, 10],
                                    num_total_frames=20)  # fmt: skip
    assert clip.num_frames == 1 and clip.inputs["video_grid_thw"].tolist() == [[1, 4, 4]]
    assert torch.equal(clip.inputs["pixel_values_videos"], twice.inputs["pixel_values_videos"])
    assert clip.inputs["video_timestamps"].tolist() == pytest.approx([0.4])
    blank = policy.blank_clip(processor, None, like=clips[1])
    assert torch.equal(blank.inputs["video_timestamps"], clips[1].inputs["video_timestamps"])
    assert not blank.inputs["pixel_values_videos"].any()
    assert policy.blank_clip(processor, 1).inputs["video_grid_thw"][0, 0].item() == 1


# ---- vision once, exact -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("merger_trains", [False, True])
def test_reused_encoding_gives_the_pixel_paths_log_probs(tiny, merger_trains):
    """Rows of three clips of different lengths, shuffled, with a text-only row: per-token log-probs with the encoding
    run once equal those of the per-row pixel path (fp32, <= 1e-6), and the encoder sees each clip once."""
    policy, model, processor, clips, _ = tiny
    index = torch.tensor([2, 0, 1, -1, 0, 2, 1, 2])
    input_ids, mask = batch(policy, processor, clips, index)
    calls = VisionCalls(policy, model)
    try:
        with trainable(policy, model, connector=merger_trains), torch.no_grad():
            pixel = token_logps(model, input_ids, mask, **policy.model_inputs(model, input_ids, clips, index, None,
                                                                              reuse=False))  # fmt: skip
            assert calls.clips == 7  # every video row re-encodes its clip
            calls.reset()
            encodings = policy.encode(model, clips)
            assert calls.clips == 3 and calls.calls == 1  # once per distinct clip
            calls.reset()
            for _ in range(2):  # e.g. the old and the reference pass of a step
                kwargs = policy.model_inputs(model, input_ids, clips, index, encodings, reuse=True)
                reused = token_logps(model, input_ids, mask, **kwargs)
                assert (reused - pixel).abs().max().item() <= 1e-6
            assert calls.clips == 0  # the cached encoding is used, the ViT does not run again
    finally:
        calls.close()
    keys = {"hidden"} if merger_trains else {"embeds"}
    if policy.name == "qwen3_vl":
        keys |= {"deepstack_hidden"} if merger_trains else {"deepstack"}
    assert set(encodings[0]) == keys
    patches = [int(c.inputs["video_grid_thw"].prod()) for c in clips]
    first = "hidden" if merger_trains else "embeds"
    assert [e[first].shape[0] for e in encodings] == (patches if merger_trains else [p // 4 for p in patches])


def test_deepstack_features_travel_with_the_embeddings(tiny):
    """Qwen3-VL's trap: the main embeddings alone (as prompt embeddings would carry them) change the logits; the
    seam's `mm_encoder_outputs` carry the deepstack features and are exact. Qwen3.5 has no deepstack layers."""
    policy, model, processor, clips, _ = tiny
    index = torch.tensor([1, 0])
    input_ids, mask = batch(policy, processor, clips, index)
    kwargs = policy.model_inputs(model, input_ids, clips, index, policy.encode(model, clips), reuse=True)
    video = kwargs["mm_encoder_outputs"]["video"]
    if policy.name == "qwen3_5":
        assert getattr(video, "deepstack_features", None) is None
        return
    assert len(video.deepstack_features) == len(model.config.vision_config.deepstack_visual_indexes)
    with torch.no_grad():
        pixel = policy.model_inputs(model, input_ids, clips, index, None, reuse=False)
        expected = model(input_ids=input_ids, attention_mask=mask, **pixel).logits
        exact = model(input_ids=input_ids, attention_mask=mask, **kwargs).logits
        # the main embeddings alone: deepstack features of zeros add nothing to the LM's hidden states
        video.deepstack_features = [tuple(torch.zeros_like(t) for t in layer) for layer in video.deepstack_features]
        embeds_only = model(input_ids=input_ids, attention_mask=mask, **kwargs).logits
    assert (exact - expected).abs().max().item() <= 1e-6
    assert (embeds_only - expected).abs().max().item() > 1e-2


def test_a_trainable_merger_gets_the_pixel_paths_gradients_from_the_cached_vit_output(tiny):
    policy, model, processor, clips, _ = tiny
    index = torch.tensor([1, 2, 1, 0])
    input_ids, mask = batch(policy, processor, clips, index)
    visual = policy.vision_module(model)

    def merger_grads(encodings, reuse):
        model.zero_grad()
        kwargs = policy.model_inputs(model, input_ids, clips, index, encodings, reuse=reuse)
        token_logps(model, input_ids, mask, **kwargs).sum().backward()
        return {n: p.grad.clone() for n, p in visual.named_parameters() if p.requires_grad}

    with trainable(policy, model, connector=True):
        pixel = merger_grads(None, reuse=False)
        cached = merger_grads(policy.encode(model, clips), reuse=True)
        assert all(p.grad is None for p in visual.blocks.parameters())  # the ViT is frozen
    assert any(name.startswith("deepstack") for name in pixel) == (policy.name == "qwen3_vl")
    for name in pixel:
        assert torch.allclose(cached[name], pixel[name], atol=1e-6, rtol=1e-5), name


def test_generate_with_the_cached_encoding_equals_the_pixel_path(tiny):
    policy, model, processor, clips, _ = tiny
    index = torch.tensor([1, 1, 0, -1])
    ids, mask = batch(policy, processor, clips, index, completion=0)
    calls = VisionCalls(policy, model)

    def generate(inputs):
        return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False,
                              output_scores=True, return_dict_in_generate=True, **inputs)  # fmt: skip

    try:
        with torch.no_grad():
            pixel = generate(policy.model_inputs(model, ids, clips, index, None, reuse=False))
            encodings = policy.encode(model, clips)
            calls.reset()
            reused = generate(policy.model_inputs(model, ids, clips, index, encodings, reuse=True))
    finally:
        calls.close()
    assert calls.clips == 0
    assert torch.equal(pixel.sequences, reused.sequences)
    assert max((a - b).abs().max().item() for a, b in zip(pixel.scores, reused.scores, strict=True)) <= 1e-5


# ---- temporal contrast --------------------------------------------------------------------------------------------


def test_permutation_shuffles_temporal_patches_under_the_original_timeline(tiny):
    policy, model, processor, _, _ = tiny
    frames = moving_square_frames(8, 32, 48)
    indices = list(range(0, 16, 2))
    clip = policy.clip_from_frames(processor, frames, fps=25, frame_indices=indices, num_total_frames=16)
    assert policy.temporal_units(clip) == 4  # 2 frames per temporal patch
    permutation = [2, 0, 3, 1]
    shuffled = policy.permute_clip(clip, permutation)
    pairs = np.concatenate([frames[2 * u : 2 * u + 2] for u in permutation])
    expected = policy.clip_from_frames(processor, pairs, fps=25, frame_indices=indices, num_total_frames=16)
    assert torch.equal(shuffled.inputs["pixel_values_videos"], expected.inputs["pixel_values_videos"])
    assert torch.equal(shuffled.inputs["video_grid_thw"], clip.inputs["video_grid_thw"])
    assert shuffled.frame_indices == [8, 10, 0, 2, 12, 14, 4, 6]
    # the prompt keeps the original, increasing timestamps: the same text as the unshuffled clip's
    text = policy.render_prompt(processor, video_prompt("what?"))
    assert policy.tokenize_prompts(processor, [text], [shuffled]) == policy.tokenize_prompts(processor, [text], [clip])
    for merger_trains in (False, True):
        with trainable(policy, model, connector=merger_trains):
            (encoding,) = policy.encode(model, [clip])
            (direct,) = policy.encode(model, [shuffled])
            permuted = policy.permute_encoding(encoding, clip, permutation)
            assert set(permuted) == set(direct)
            for key in direct:
                assert (permuted[key] - direct[key]).abs().max().item() <= 1e-6, key
    with pytest.raises(ValueError, match="4 temporal patches"):
        policy.permute_clip(clip, [1, 0])


# ---- SFT ----------------------------------------------------------------------------------------------------------


def test_sft_labels_keep_only_the_reply_and_its_end_token(tiny):
    """The reply follows the generation prompt exactly as in GRPO (for Qwen3.5 after the template's empty think
    block; the template's own render would move `<think>...</think>` into that block), reply + `<|im_end|>`
    supervised, nothing else."""
    policy, _, processor, clips, _ = tiny
    reply = "<think> the square moves right </think> <answer> B </answer>"
    messages = [*video_prompt("what moves?"), {"role": "assistant", "content": reply}]
    ids, labels = policy.tokenize_conversation(processor, messages, clips[1])
    prompt = policy.tokenize_prompts(processor, [policy.render_prompt(processor, messages[:1])], [clips[1]])[0]
    assert ids[: len(prompt)] == prompt
    assert all(label == -100 for label in labels[: len(prompt)])
    kept = [token for token in labels if token != -100]
    assert processor.tokenizer.decode(kept) == reply + "<|im_end|>"
    assert labels[-1] == -100 and processor.tokenizer.decode(ids[-1:]) == "\n"  # never generated
    assert ids.count(processor.video_token_id) == int(clips[1].inputs["video_grid_thw"].prod()) // 4


def test_qwen3_5_sft_refuses_a_conversation_whose_earlier_replies_its_template_rewrites(tiny):
    policy, _, processor, _, _ = tiny
    if policy.name != "qwen3_5":
        pytest.skip("Qwen3-VL's template renders every turn as a prefix")
    turns = [*video_prompt("what?"), {"role": "assistant", "content": "A"}, *TEXT_ONLY]
    with pytest.raises(ValueError, match=r"^qwen3_5 SFT needs a conversation ending with its only assistant turn"):
        policy.tokenize_conversation(processor, [*turns, {"role": "assistant", "content": "B"}], None)


def test_sft_batch_gets_the_positions_of_the_pixel_path(tiny):
    policy, model, processor, clips, _ = tiny
    index = torch.tensor([1, -1, 0])
    input_ids, mask = batch(policy, processor, clips, index)
    rows = [None if i < 0 else clips[i] for i in index.tolist()]
    with torch.no_grad():
        sft = token_logps(
            model, input_ids, mask, **policy.collate_clips(rows, input_ids=input_ids, processor=processor)
        )
        seam = token_logps(model, input_ids, mask, **policy.model_inputs(model, input_ids, clips, index, None,
                                                                           reuse=False))  # fmt: skip
    assert torch.equal(sft, seam)
    with pytest.raises(ValueError, match="mm_token_type_ids"):
        policy.collate_clips(rows)


def test_freeze_says_what_is_frozen(tiny):
    policy, model, _, _, _ = tiny
    assert policy.frozen_modules(model) == ["vision", "connector"]
    with trainable(policy, model, connector=True):
        assert policy.frozen_modules(model) == ["vision"]
        policy.vision_module(model).blocks[0].requires_grad_(True)
        assert policy.encode(model, [clips_placeholder()]) is None  # a trainable ViT has nothing to cache
        policy.freeze(model, language_model=True)
        assert policy.frozen_modules(model) == ["vision", "language_model"]


def clips_placeholder():
    from r1video.policies import Clip

    return Clip({}, 0)


# ---- checkpoints --------------------------------------------------------------------------------------------------


def test_a_checkpoint_resumes_every_weight_through_transformers_path(tiny, tmp_path):
    """Unlike Qwen2.5-VL (saved under the released names, so `load_state_dict(strict=False)` matched almost nothing),
    these families save under their module names: the Trainer's own load (`strict=False`) restores every weight
    in place, and `load_checkpoint` leaves it to transformers."""
    policy = tiny[0]
    model = policy.build_tiny(seed=1)[0]
    model.save_pretrained(tmp_path / "checkpoint")
    saved = {name: p.detach().clone() for name, p in model.state_dict().items()}
    stored = load_file(tmp_path / "checkpoint" / "model.safetensors")
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    assert set(stored) == set(saved) - tied
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert policy.load_checkpoint(model, tmp_path / "checkpoint") is False
    result = model.load_state_dict(stored, strict=False)  # transformers' Trainer._load_from_checkpoint
    assert set(result.missing_keys) <= tied and not result.unexpected_keys
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name


RECIPES = Path(__file__).resolve().parents[1] / "recipes"

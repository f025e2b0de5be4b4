"""vLLM's native video route for LLaVA-OneVision, and why SmolVLM2 has none: everything around the engine, on CPU.

vLLM needs CUDA and is not installed here, so what vLLM 0.30 does is played by the real HF processor called the way
vLLM's code calls it (file:line below, into vLLM 0.30.0's source) on real mp4 clips, and by a transformers stand-in
for the engine in the GRPO step. The real engine runs only in the test marked `cuda`.
"""

import importlib.util
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import save_file
from test_vllm_native import RecordedNativeGeneration, RecordingLLM
from transformers import AutoConfig, AutoProcessor, LlavaOnevisionForConditionalGeneration
from video_fixtures import write_clips_of_lengths

from r1video.policies import policy_for
from r1video.policies.llava_onevision import LlavaOnevisionPolicy
from r1video.policies.smolvlm import SmolVLMPolicy
from r1video.policies.vllm_video import (
    llava_onevision_video,
    native_request_for,
    vllm_sent_name,
    vllm_weight_name,
)
from r1video.trainer.vllm_native import NativeVideoVLLMGeneration, build_video_requests

OV = LlavaOnevisionPolicy()


@pytest.fixture(scope="module")
def onevision(tmp_path_factory):
    """The tiny LLaVA-OneVision (saved, as `load_policy` reads it) and real mp4 clips of different lengths and sizes."""
    folder = tmp_path_factory.mktemp("ov")
    model, processor = OV.build_tiny(folder / "model")
    paths = write_clips_of_lengths(folder, specs=((20, 32, 32), (40, 48, 32), (60, 90, 50), (7, 24, 200)))
    return model, processor, paths, folder


def vllm_processor_call(processor, frames, mm_processor_kwargs):
    """`pixel_values_videos [F, C, S, S]` of one video as vLLM 0.30 computes it for LLaVA-OneVision: each video alone,
    with the text `<video>` and the video itself (not a list) (`vllm/model_executor/models/llava_onevision.py:
    383-390`), through `call_hf_processor` (`vllm/multimodal/processing/context.py:314-343`: the request's
    `mm_processor_kwargs`, `truncation=False`, `return_tensors="pt"`), keeping row 0."""
    kwargs = {**mm_processor_kwargs, "truncation": False, "return_tensors": "pt"}
    out = processor(text=processor.video_token, videos=frames, **kwargs)
    return out["pixel_values_videos"][0]


def vllm_video_token_count(config, num_frames: int) -> int:
    """vLLM 0.30's token count for a LLaVA-OneVision video of `num_frames` frames (`llava_onevision.py:190-217`):
    `ceil(patch_grid / spatial_pool_stride)² * num_frames + 1`, the patch grid `image_size // patch_size` of the
    tower (`SiglipEncoderInfo.get_patch_grid_length`, `siglip.py:257-259`), the stride 2 unless the config sets one."""
    stride = getattr(config, "spatial_pool_stride", 2)
    pooled = math.ceil((config.vision_config.image_size // config.vision_config.patch_size) / stride)
    return pooled * pooled * num_frames + 1


def expand_like_vllm(prompt_token_ids, video_token_id, count):
    """vLLM's prompt update: each `<video>` token replaced by `count` of them (`llava_onevision.py:403-443`)."""
    return [t for token in prompt_token_ids for t in ([token] * (count if token == video_token_id else 1))]


# ---- LLaVA-OneVision: the request form ------------------------------------------------------------------------------

# (clip, frame selection): 4 to 12 frames of clips from 24x200 to 90x50 pixels, so every clip is resized to the tower
# input and the clips have different token counts
SELECTIONS = [(0, {"fps": 5}), (1, {"fps": 5}), (2, {"fps": 5}), (2, {"num_frames": 5}), (3, {"num_frames": 7})]


@pytest.mark.parametrize(("clip_index", "selection"), SELECTIONS)
def test_the_processor_call_vllm_makes_reproduces_the_onevision_clip(onevision, clip_index, selection):
    """vLLM processes the request's frames with the request's keywords; that gives the clip's own pixels bit for bit
    (max |diff| = 0.0), and vLLM's token count for the video is the HF processor's and the policy's."""
    model, processor, paths, _ = onevision
    clip = OV.decode_clip(processor, paths[clip_index], **selection)
    request = llava_onevision_video(processor, clip)
    frames = request["multi_modal_data"]["video"]
    assert frames.dtype == np.uint8 and frames.shape == (clip.num_frames, 32, 32, 3)
    pixels = vllm_processor_call(processor, frames, request["mm_processor_kwargs"])
    assert pixels.dtype == clip.inputs["pixel_values_videos"].dtype
    assert torch.equal(pixels, clip.inputs["pixel_values_videos"])
    hf_ids = processor(text=processor.video_token, videos=frames, **request["mm_processor_kwargs"])["input_ids"][0]
    hf_count = hf_ids.count(processor.video_token_id)  # the HF processor's own expansion
    assert vllm_video_token_count(model.config, len(frames)) == hf_count == OV.video_token_count(processor, clip)


def test_the_vllm_prompt_is_the_training_prompt(onevision):
    """Rows of clips of different lengths: the request's ids (one `<video>` per video), expanded as vLLM expands
    them, are the trainer's prompt ids, which are what the HF processor writes for the rendered prompt and the
    request's frames (the video tokens in the same place); rows of one clip share one request form."""
    model, processor, paths, _ = onevision
    assert native_request_for("llava_onevision") is llava_onevision_video and OV.vllm_route == "native"
    clips = [OV.decode_clip(processor, path, fps=5) for path in paths[:2]]
    text = OV.render_prompt(processor, [{"role": "user", "content": [{"type": "video"}, {"type": "text",
                                                                      "text": "what moves?"}]}])  # fmt: skip
    rows = [clips[0], clips[1], clips[0], None]
    texts = [text] * 3 + [OV.render_prompt(processor, [{"role": "user", "content": "hello"}])]
    prompt_ids = OV.tokenize_prompts(processor, texts, rows)
    requests = build_video_requests(OV, processor, prompt_ids, rows)
    for request, clip, ids, row_text in zip(requests, rows, prompt_ids, texts, strict=True):
        if clip is None:
            assert request == {"prompt_token_ids": ids}
            continue
        frames = request["multi_modal_data"]["video"]
        assert request["prompt_token_ids"].count(processor.video_token_id) == 1
        count = vllm_video_token_count(model.config, len(frames))
        assert expand_like_vllm(request["prompt_token_ids"], processor.video_token_id, count) == ids
        hf = processor(text=row_text, videos=frames, **request["mm_processor_kwargs"])
        assert hf["input_ids"][0] == ids
    assert requests[0]["multi_modal_data"] is requests[2]["multi_modal_data"]
    assert len(requests[0]["multi_modal_data"]["video"]) == 4 and len(requests[1]["multi_modal_data"]["video"]) == 8


def test_vllms_inputs_give_the_training_forwards_log_probs(onevision):
    """What vLLM computes from the request (pixels, expanded ids) through the HF model gives the logits of the
    training forward on the clip (the policy's own inputs), exactly, in fp32."""
    model, processor, paths, _ = onevision
    clip = OV.decode_clip(processor, paths[2], num_frames=6)
    text = OV.render_prompt(processor, [{"role": "user", "content": [{"type": "video"}]}])
    ids = OV.tokenize_prompts(processor, [text], [clip])
    (request,) = build_video_requests(OV, processor, ids, [clip])
    frames = request["multi_modal_data"]["video"]
    pixels = vllm_processor_call(processor, frames, request["mm_processor_kwargs"])
    vllm_ids = expand_like_vllm(request["prompt_token_ids"], processor.video_token_id,
                                vllm_video_token_count(model.config, len(frames)))  # fmt: skip
    input_ids = torch.tensor(ids)
    with torch.no_grad():
        trained = model(
            input_ids=input_ids, **OV.model_inputs(model, input_ids, [clip], torch.tensor([0]), None, reuse=False)
        ).logits
        sampled = model(input_ids=torch.tensor([vllm_ids]), pixel_values_videos=pixels[None]).logits  # fmt: skip
    assert torch.equal(sampled, trained)


# ---- LLaVA-OneVision: weight names ---------------------------------------------------------------------------------

VLLM_ROOTS = ("vision_tower.vision_model.", "multi_modal_projector.", "image_newline", "language_model.model.",
              "language_model.lm_head.")  # fmt: skip


def test_every_onevision_parameter_maps_into_vllms_modules(onevision, tmp_path):
    """Every name of the real tiny model's state dict, as the sync sends it and as vLLM's `hf_to_vllm_mapper` then
    maps it, lands under one of vLLM's modules (`llava_onevision.py:475-484`, 497-523); the tower's under
    `vision_tower.vision_model.` (vLLM's `SiglipVisionModel`, `siglip.py:821-828`). The sent names are checkpoint
    names: transformers loads a checkpoint written under them back into the same parameters."""
    model, *_ = onevision
    state = model.state_dict()
    sent = {name: vllm_sent_name("llava_onevision", name) for name in state}
    mapped = {name: vllm_weight_name("llava_onevision", new) for name, new in sent.items()}
    assert all(new.startswith(VLLM_ROOTS) for new in mapped.values()), mapped
    assert len(set(mapped.values())) == len(state)
    assert mapped["model.vision_tower.embeddings.patch_embedding.weight"] == (
        "vision_tower.vision_model.embeddings.patch_embedding.weight"
    )
    assert mapped["model.vision_tower.encoder.layers.0.self_attn.q_proj.weight"] == (
        "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight"  # vLLM stacks it into qkv_proj itself
    )
    # vLLM builds the tower without its post-norm (`require_post_norm=False`, `llava_onevision.py:506-510`) and drops
    # those names on load (`siglip.py:722-730`): sent, harmlessly
    assert mapped["model.vision_tower.post_layernorm.weight"] == "vision_tower.vision_model.post_layernorm.weight"
    assert mapped["model.image_newline"] == "image_newline"
    assert mapped["lm_head.weight"] == "language_model.lm_head.weight"
    assert mapped["model.language_model.layers.1.mlp.up_proj.weight"] == (
        "language_model.model.layers.1.mlp.up_proj.weight"
    )
    # Without the renaming, the tower's names would reach no vLLM module ("vision_tower.embeddings...").
    assert vllm_weight_name("llava_onevision", "model.vision_tower.embeddings.patch_embedding.weight") == (
        "vision_tower.embeddings.patch_embedding.weight"
    )
    with pytest.raises(ValueError, match="'visual.blocks.0.attn.qkv.weight' has none of the prefixes"):
        vllm_weight_name("llava_onevision", "visual.blocks.0.attn.qkv.weight")

    folder = tmp_path / "sent"
    model.config.save_pretrained(folder)
    save_file({sent[name]: tensor.clone() for name, tensor in state.items()}, folder / "model.safetensors",
              metadata={"format": "pt"})  # fmt: skip
    loaded, info = LlavaOnevisionForConditionalGeneration.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert all(torch.equal(loaded.state_dict()[name], tensor) for name, tensor in state.items())


def test_use_vllm_with_several_onevision_feature_layers_is_refused_at_start_up(tmp_path):
    """vLLM's projector reads one tower layer; a config that concatenates several would fail inside vLLM at the first
    weight sync (a shape mismatch): refused at start-up in one line instead."""
    from datasets import Dataset
    from grpo_fixtures import tiny_grpo_config, varied_reward

    from r1video.trainer import VideoGRPOTrainer

    base, processor = OV.build_tiny()
    config = AutoConfig.for_model(**base.config.to_dict())
    config.vision_feature_layer = [-2, -1]  # the projector reads both layers, concatenated
    model = LlavaOnevisionForConditionalGeneration(config)
    data = Dataset.from_list([{"prompt": "hello", "solution": "A"}])
    args = tiny_grpo_config(tmp_path)
    args.use_vllm = True  # set after construction: TRL's config checks that vLLM is installed
    with pytest.raises(
        ValueError, match=r"^use_vllm: vLLM 0.30 runs LLaVA-OneVision on one vision feature layer"
    ) as e:
        VideoGRPOTrainer(model, [varied_reward], args, train_dataset=data, processing_class=processor)
    assert "\n" not in str(e.value) and "[-2, -1]" in str(e.value) and "set use_vllm: false" in str(e.value)


# ---- LLaVA-OneVision: the engine seams -----------------------------------------------------------------------------


def test_the_onevision_sync_sends_checkpoint_names_and_clears_the_caches(onevision, tmp_path):
    model, processor, paths, _ = onevision
    engine = RecordedNativeGeneration(
        policy_name="llava_onevision", export_dir=tmp_path / "export", model=model,
        accelerator=Accelerator(cpu=True), processing_class=processor,
        eos_token_ids=[processor.tokenizer.eos_token_id], banned_token_ids=[processor.video_token_id],
        dtype=torch.float32,
    )  # fmt: skip
    engine.sync_weights()
    assert engine.llm.events == ["load_weights", "reset_prefix_cache", "reset_encoder_cache", "reset_mm_cache"]
    names = [name for name, _ in model.named_parameters()]
    assert engine.llm.loaded == [vllm_sent_name("llava_onevision", name) for name in names]
    assert "model.vision_tower.vision_model.embeddings.patch_embedding.weight" in engine.llm.loaded
    assert AutoConfig.from_pretrained(engine.export_dir).architectures == ["LlavaOnevisionForConditionalGeneration"]
    assert engine._llm_kwargs(engine.export_dir)["limit_mm_per_prompt"] == {"image": 0, "video": 1}


class HFOneVisionEngine(RecordingLLM):
    """vLLM's part for LLaVA-OneVision, played on CPU by transformers: the model class named in the exported config,
    the processor saved there, each weight loaded where vLLM's mapper puts it (its vLLM name, the HF module of the
    same role), and each request processed as vLLM 0.30 processes it ([`vllm_processor_call`], the placeholder
    expanded to vLLM's count) and sampled token by token with the processed log-probs."""

    def __init__(self, model_dir, eos, seed=0):
        super().__init__(model_dir, eos)
        config = AutoConfig.from_pretrained(model_dir)
        assert config.architectures == ["LlavaOnevisionForConditionalGeneration"]
        self.model = LlavaOnevisionForConditionalGeneration(config).float().eval()
        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.by_vllm_name = {
            vllm_weight_name("llava_onevision", vllm_sent_name("llava_onevision", name)): param
            for name, param in self.model.named_parameters()
        }
        self.generator = torch.Generator().manual_seed(seed)

    def load_weights(self, weights):
        super().load_weights(weights)
        for name, tensor in weights:
            self.by_vllm_name[vllm_weight_name("llava_onevision", name)].data.copy_(tensor)

    @torch.no_grad()
    def generate(self, requests, sampling_params, use_tqdm):
        self.events.append("generate")
        self.requests.append((requests, sampling_params))
        video = self.processor.video_token_id
        bias = torch.zeros(self.model.config.text_config.vocab_size)
        for token, value in (sampling_params.get("logit_bias") or {}).items():
            bias[token] = value
        results = []
        for request in requests:
            inputs, ids = {}, list(request["prompt_token_ids"])
            if "multi_modal_data" in request:
                frames = request["multi_modal_data"]["video"]
                pixels = vllm_processor_call(self.processor, frames, request["mm_processor_kwargs"])
                ids = expand_like_vllm(ids, video, vllm_video_token_count(self.model.config, len(frames)))
                inputs = {"pixel_values_videos": pixels[None]}
            tokens_out, logprobs = [], []
            for _ in range(sampling_params["max_tokens"]):
                logits = self.model(input_ids=torch.tensor([ids + tokens_out]), **inputs).logits[0, -1] + bias
                logp = torch.log_softmax(logits / sampling_params["temperature"], dim=-1)
                token = int(torch.multinomial(logp.exp(), 1, generator=self.generator))
                tokens_out.append(token)
                logprobs.append({token: SimpleNamespace(logprob=float(logp[token]), rank=1)})
                if token == self.eos:
                    break
            completion = SimpleNamespace(token_ids=tokens_out, logprobs=logprobs)
            results.append(SimpleNamespace(prompt_token_ids=ids, outputs=[completion]))
        return results


def test_a_grpo_step_through_the_native_route_with_llava_onevision(onevision, tmp_path):
    """The trainer routes LLaVA-OneVision to `NativeVideoVLLMGeneration`; clips of 4 and 8 frames reach the engine
    as frames, and the engine's log-probs are the trainer's own (importance-sampling ratio 1), which holds only if
    vLLM's prompt and pixels are the training forward's."""
    from datasets import Dataset
    from grpo_fixtures import tiny_grpo_config, varied_reward

    from r1video.policies import load_policy
    from r1video.trainer import VideoGRPOTrainer

    class CPUNativeGeneration(NativeVideoVLLMGeneration):
        def _make_llm(self, model_dir):
            return HFOneVisionEngine(model_dir, self.eos_token_ids[0])

        def _sampling_params(self):
            return self.sampling_kwargs()

    class HFEngineTrainer(VideoGRPOTrainer):
        def _make_vllm_generation(self):
            assert self.policy.vllm_route == "native"
            engine = CPUNativeGeneration.from_trainer(self)
            assert engine.banned_token_ids == [self.processing_class.video_token_id]
            engine.banned_token_ids = []  # so that the engine's log-probs are the policy's, not renormalised
            engine.dtype = torch.float32
            return engine

    _, _, paths, folder = onevision
    policy, model, processor = load_policy(str(folder / "model"))
    assert policy.name == "llava_onevision"
    rows = [
        {
            "prompt": [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves?"}]}],
            "video": path,
            "solution": "<answer>A</answer>",
        }
        for path in paths[:2]
    ]
    args = tiny_grpo_config(tmp_path, beta=0.0, num_frames=None, fps=5)
    args.use_vllm = True  # after construction: TRL's config checks that vLLM is installed
    trainer = HFEngineTrainer(
        model=model, reward_funcs=[varied_reward], args=args, train_dataset=Dataset.from_list(rows),
        processing_class=processor,
    )  # fmt: skip
    engine = trainer.vllm_generation
    trainer.train()
    assert engine.llm.events[:5] == [
        "load_weights", "reset_prefix_cache", "reset_encoder_cache", "reset_mm_cache", "generate",
    ]  # fmt: skip
    (requests, _), *_ = engine.llm.requests
    assert {len(r["multi_modal_data"]["video"]) for r in requests} == {4, 8}  # 0.8 s and 1.6 s at 5 fps
    logged = trainer.state.log_history[0]
    assert logged["completions/mean_length"] > 0
    assert math.isclose(logged["sampling/importance_sampling_ratio/mean"], 1.0, abs_tol=1e-5)
    assert logged["sampling/sampling_logp_difference/max"] < 1e-5  # 9.5e-7 measured


@pytest.mark.cuda
@pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None, reason="needs CUDA and vllm"
)
def test_vllm_samples_llava_onevision_clips_and_forgets_the_old_tower_after_a_sync(onevision, tmp_path):
    """On a GPU with vLLM 0.30: the engine on the exported tiny LLaVA-OneVision, a sync, rollouts from two clips of
    different lengths; after the tower changes and is synced, the same clips give other log-probs (a stale encoder
    cache, or a tower weight vLLM did not load, would give the old ones)."""
    model, processor, paths, _ = onevision
    model = model.to("cuda")
    engine = NativeVideoVLLMGeneration(
        policy_name="llava_onevision", export_dir=tmp_path / "export", model=model, accelerator=Accelerator(),
        processing_class=processor, eos_token_ids=[processor.tokenizer.eos_token_id],
        banned_token_ids=[processor.video_token_id], gpu_memory_utilization=0.2, max_model_length=1024,
        max_num_seqs=4, temperature=1.0, max_completion_length=8, generation_kwargs={"seed": 0},
    )  # fmt: skip
    clips = [OV.decode_clip(processor, path, fps=5) for path in paths[:2]]
    text = OV.render_prompt(processor, [{"role": "user", "content": [{"type": "video"}]}])
    requests = build_video_requests(OV, processor, OV.tokenize_prompts(processor, [text] * 2, clips), clips)
    engine.sync_weights()
    first_ids, first_logprobs = engine.generate_videos(requests)
    assert all(len(ids) > 0 for ids in first_ids)
    assert all(np.isfinite(lp).all() for lp in first_logprobs)
    with torch.no_grad():
        for param in model.model.vision_tower.parameters():
            param.add_(torch.randn_like(param))
    engine.sync_weights()
    changed_ids, changed_logprobs = engine.generate_videos(requests)
    assert changed_ids != first_ids or changed_logprobs != first_logprobs


# ---- SmolVLM2: no route, and why -----------------------------------------------------------------------------------


def test_use_vllm_with_smolvlm_is_refused_with_the_reason(tmp_path):
    from grpo_fixtures import tiny_grpo_config, varied_reward

    from r1video.trainer import VideoGRPOTrainer

    policy = policy_for("smolvlm")
    assert policy.vllm_route is None
    model, processor = SmolVLMPolicy().build_tiny()
    args = tiny_grpo_config(tmp_path)
    args.use_vllm = True  # set after construction: TRL's config checks that vLLM is installed
    with pytest.raises(NotImplementedError) as caught:
        VideoGRPOTrainer(model, [varied_reward], args, processing_class=processor)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("use_vllm is not supported for smolvlm models: vLLM 0.30 takes no video for SmolVLM")
    assert "idefics3.py:107-108" in message and "get_number_of_image_patches" in message
    assert message.endswith("see docs/vllm.md; set use_vllm: false (HF generate)")


def test_smolvlm_frames_sent_as_images_cannot_be_the_video_prompt():
    """The transformers facts behind the refusal, with the real SmolVLM processors. The video prompt gives each
    frame one global tile of `image_seq_len` tokens. vLLM's Idefics3 path cuts each image's pixels by
    `get_number_of_image_patches` (`idefics3.py:110-141, 279-288`, `flat_from_sizes`, `:298-312`): without image
    splitting that is 0 while the processor gives one tile per frame (the frames would reach the model without
    pixels); with splitting, as the released processors do, a frame at the tile size becomes a 4x4 grid plus the
    global tile (17 tiles), not one."""
    from transformers import SmolVLMImageProcessor

    model, processor = SmolVLMPolicy().build_tiny()
    side = processor.image_processor.max_image_size["longest_edge"]
    frames = np.random.default_rng(0).integers(0, 256, (3, side, side, 3), dtype=np.uint8)
    processed = processor(images=list(frames), do_image_splitting=False, return_tensors="pt")
    assert processed["pixel_values"].shape[:2] == (1, 3)  # one tile per frame
    assert processor.image_processor.get_number_of_image_patches(side, side, {"do_image_splitting": False})[0] == 0

    released = SmolVLMImageProcessor()  # transformers' defaults: splitting on, 4 x 364 longest edge, 364 tiles
    assert released.do_image_splitting
    tile = released.max_image_size["longest_edge"]
    assert released.get_number_of_image_patches(tile, tile, {}) == (17, 4, 4)

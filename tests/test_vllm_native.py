"""vLLM's native video route (`vllm_route == "native"`): everything around the engine call, on CPU.

vLLM needs CUDA, so the engine is a recording stand-in (`RecordingLLM`: the calls r1video makes, in order); the
request form is checked by running the real HF Qwen2.5-VL processor exactly as vLLM 0.30 calls it
(`vllm/multimodal/processing/context.py:314-343`: `processor(text=..., videos=[frames], **mm_processor_kwargs)`).
The real engine runs only in the test marked `cuda`.
"""

import importlib.util
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoConfig,
    AutoProcessor,
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)
from transformers.video_utils import VideoMetadata

from r1video.policies import Clip, VideoPolicy
from r1video.policies.base import VLLM_ROUTES
from r1video.policies.vllm_video import (
    VLLM_WEIGHT_PREFIXES,
    collapse_placeholders,
    native_request_for,
    qwen2_5_vl_video,
    vllm_weight_name,
)
from r1video.trainer.vllm_native import NativeVideoVLLMGeneration, build_video_requests

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"]
SPECIALS += ["<|image_pad|>", "<|video_pad|>"]
VIDEO_PAD = "<|video_pad|>"
SIZES = dict(
    patch_size=4, temporal_patch_size=2, merge_size=2, size={"shortest_edge": 16 * 16, "longest_edge": 48 * 48}
)


@pytest.fixture(scope="module")
def processor():
    """The real Qwen2.5-VL processor (tiny patches) on a word-level tokenizer with Qwen's special tokens."""
    vocab = {token: i for i, token in enumerate([*SPECIALS, "what", "happens", "?", "[UNK]"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", extra_special_tokens=SPECIALS[1:]
    )
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**SIZES),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**SIZES, cap_pixels_per_frame=False),
    )


def qwen_clip(processor, frames, fps=None, step=1) -> Clip:
    """A clip as the Qwen2.5-VL policy makes it (branch `qwen`, `Qwen2_5_VLPolicy.clip_from_frames`): the video
    processor with the clip's metadata, `second_per_grid_ts = temporal_patch_size / sampled fps`."""
    count = len(frames)
    metadata = VideoMetadata(
        total_num_frames=count * step,
        fps=2.0 if fps is None else fps,
        frames_indices=list(range(0, count * step, step)),
    )
    out = processor.video_processor(
        videos=[frames], video_metadata=[metadata], return_metadata=True, return_tensors="pt"
    )
    seconds = processor.video_processor.temporal_patch_size / out["video_metadata"][0].sampled_fps
    inputs = {
        "pixel_values_videos": out["pixel_values_videos"],
        "video_grid_thw": out["video_grid_thw"],
        "second_per_grid_ts": torch.tensor([seconds], dtype=torch.float32),
    }
    return Clip(inputs, count, list(range(0, count * step, step)))


def random_frames(count, height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def video_tokens(processor, clip) -> int:
    return int(clip.inputs["video_grid_thw"].prod()) // processor.video_processor.merge_size**2


# ---- the request form ---------------------------------------------------------------------------------------------


def test_collapse_placeholders_keeps_one_token_per_run():
    assert collapse_placeholders([1, 7, 7, 7, 2, 7, 3], [7]) == [1, 7, 2, 7, 3]
    assert collapse_placeholders([7], [7]) == [7]
    assert collapse_placeholders([1, 2, 3], [7]) == [1, 2, 3]


# frames, frame size, source fps, every n-th source frame: odd and even counts, frames above and below the
# processor's pixel limits, a clip given without its rate (taken as 2 fps, as the Qwen policy does)
CLIPS = [(3, (37, 61), 30.0, 5), (4, (64, 64), None, 1), (7, (90, 50), 12.5, 3), (16, (24, 200), 24.0, 12)]


@pytest.mark.parametrize(("count", "size", "fps", "step"), CLIPS)
def test_the_processor_call_vllm_makes_reproduces_the_clip(processor, count, size, fps, step):
    """vLLM runs the family's processor on the request's video with its `mm_processor_kwargs`; that must give the
    clip's own pixels, grid and seconds per temporal patch (the M-RoPE time scale), bit for bit."""
    clip = qwen_clip(processor, random_frames(count, *size, seed=count), fps=fps, step=step)
    request = qwen2_5_vl_video(processor, clip)
    frames = request["multi_modal_data"]["video"]
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
    prompt = f"<|vision_start|>{VIDEO_PAD}<|vision_end|>"
    out = processor(text=[prompt], videos=[frames], return_tensors="pt", **request["mm_processor_kwargs"])
    assert torch.equal(out["pixel_values_videos"], clip.inputs["pixel_values_videos"])
    assert torch.equal(out["video_grid_thw"], clip.inputs["video_grid_thw"])
    assert torch.equal(
        torch.as_tensor(out["second_per_grid_ts"], dtype=torch.float32), clip.inputs["second_per_grid_ts"]
    )
    assert out["input_ids"][0].tolist().count(processor.video_token_id) == video_tokens(processor, clip)


def test_without_the_metadata_keyword_the_clip_would_be_timed_at_24_fps(processor):
    """Why `video_metadata` travels as a processor keyword: vLLM 0.30 drops a `(frames, metadata)` tuple's metadata
    for Qwen2.5-VL, and the processor then times the frames at 24 fps."""
    clip = qwen_clip(processor, random_frames(4, 32, 32), fps=30.0, step=15)  # 2 fps sampled: 1 s per patch
    request = qwen2_5_vl_video(processor, clip)
    kwargs = {k: v for k, v in request["mm_processor_kwargs"].items() if k != "video_metadata"}
    out = processor(text=[VIDEO_PAD], videos=[request["multi_modal_data"]["video"]], return_tensors="pt", **kwargs)
    assert float(clip.inputs["second_per_grid_ts"]) == 1.0
    assert out["second_per_grid_ts"][0] == pytest.approx(2 / 24)


class QwenRequests(VideoPolicy):
    """The parts of the Qwen2.5-VL policy the requests use (branch `qwen`): its name, which keys its registered
    request form, and its placeholder."""

    name = "qwen2_5_vl"
    vllm_route = "native"

    def video_token_ids(self, processor):
        return [processor.video_token_id]


def expanded_ids(processor, text, clip):
    """The trainer's prompt ids: the placeholder expanded to the clip's token count (`tokenize_prompts`)."""
    if clip is not None:
        text = text.replace(VIDEO_PAD, VIDEO_PAD * video_tokens(processor, clip))
    return processor.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_requests_for_rows_of_clips_of_different_lengths(processor):
    policy = QwenRequests()
    assert policy.vllm_video.__func__ is VideoPolicy.vllm_video  # the registered function, found by name
    assert native_request_for("qwen2_5_vl") is qwen2_5_vl_video
    short = qwen_clip(processor, random_frames(3, 40, 40, seed=1), fps=10.0, step=2)
    long = qwen_clip(processor, random_frames(9, 48, 32, seed=2), fps=25.0, step=5)
    video_text = f"<|im_start|> what <|vision_start|>{VIDEO_PAD}<|vision_end|> happens ? <|im_end|>"
    rows = [(video_text, short), (video_text, long), (video_text, short), ("<|im_start|> what ? <|im_end|>", None)]
    prompt_ids = [expanded_ids(processor, text, clip) for text, clip in rows]
    requests = build_video_requests(policy, processor, prompt_ids, [clip for _, clip in rows])

    video = processor.video_token_id
    for request, (text, clip), ids in zip(requests, rows, prompt_ids, strict=True):
        assert request["prompt_token_ids"] == expanded_ids(processor, text, None)  # one placeholder, as typed
        # vLLM's expansion (`PromptReplacement`: each placeholder → grid.prod() / merge² tokens) gives the trainer's
        # ids back, so the vLLM prompt and the training prompt are the same sequence.
        if clip is None:
            assert "multi_modal_data" not in request and "mm_processor_kwargs" not in request
            assert request["prompt_token_ids"] == ids
            continue
        expanded = []
        for token in request["prompt_token_ids"]:
            expanded += [token] * (video_tokens(processor, clip) if token == video else 1)
        assert expanded == ids
        assert request["mm_processor_kwargs"]["video_metadata"]["total_num_frames"] == len(
            request["multi_modal_data"]["video"]
        )
    assert len(requests[0]["multi_modal_data"]["video"]) == 4 and len(requests[1]["multi_modal_data"]["video"]) == 10
    # rows of one clip share its request form (one conversion, one object to hash); other clips do not
    assert requests[0]["multi_modal_data"] is requests[2]["multi_modal_data"]
    assert requests[0]["multi_modal_data"] is not requests[1]["multi_modal_data"]


def test_requests_refuse_a_row_whose_placeholders_do_not_match_its_clip(processor):
    clip = qwen_clip(processor, random_frames(2, 32, 32))
    ids = expanded_ids(processor, "what ? <|im_end|>", None)
    with pytest.raises(ValueError, match=r"row 1: the prompt holds 0 video placeholder runs but the row has 1"):
        build_video_requests(QwenRequests(), processor, [ids, ids], [None, clip])


def test_a_family_without_a_request_form_says_so():
    class Unregistered(VideoPolicy):
        name = "no_request_form"

    with pytest.raises(NotImplementedError, match="no_request_form has no native vLLM request form"):
        Unregistered().vllm_video(None, None)


# ---- weight names -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_qwen(processor):
    """A random tiny Qwen2.5-VL (the real class, the qwen branch's tiny shapes) with the processor's token ids."""
    ids = processor.tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=len(processor.tokenizer),
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            patch_size=4,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=16,
            fullatt_block_indexes=[1],
            out_hidden_size=64,
        ),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids(VIDEO_PAD),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def test_the_real_state_dict_maps_into_vllms_qwen2_5_vl_modules(tiny_qwen):
    names = [name for name, _ in tiny_qwen.named_parameters()]
    mapped = {name: vllm_weight_name("qwen2_5_vl", name) for name in names}
    roots = ("visual.", "language_model.model.", "language_model.lm_head.")
    assert all(new.startswith(roots) for new in mapped.values()), mapped
    assert len(set(mapped.values())) == len(names)
    assert any(new.startswith("visual.merger.") for new in mapped.values())
    assert mapped["model.language_model.layers.0.self_attn.q_proj.weight"] == (
        "language_model.model.layers.0.self_attn.q_proj.weight"  # vLLM stacks it into qkv_proj itself
    )
    assert mapped["model.visual.blocks.0.attn.qkv.weight"] == "visual.blocks.0.attn.qkv.weight"
    assert "lm_head.weight" not in names  # tied: the embeddings carry it, vLLM ties its head the same way
    # the untied head and the pre-4.52 checkpoint layout load too
    assert vllm_weight_name("qwen2_5_vl", "lm_head.weight") == "language_model.lm_head.weight"
    assert vllm_weight_name("qwen2_5_vl", "model.layers.0.mlp.up_proj.weight") == (
        "language_model.model.layers.0.mlp.up_proj.weight"
    )
    with pytest.raises(ValueError, match="'connector.proj.weight' has none of the prefixes"):
        vllm_weight_name("qwen2_5_vl", "connector.proj.weight")
    assert vllm_weight_name("a_family_without_a_table", "anything") is None
    assert "qwen2_5_vl" in VLLM_WEIGHT_PREFIXES  # other families: their own tests (test_vllm_native_qwen3.py)


# ---- the engine seams ---------------------------------------------------------------------------------------------


class RecordingLLM:
    """The `vllm.LLM` calls r1video makes, recorded in order: weight loading through TRL's colocate path, the three
    cache resets, sleep/wake, generation (one completion `[5, eos]` per request)."""

    def __init__(self, model_dir, eos):
        self.model_dir, self.eos, self.events, self.loaded, self.requests = model_dir, eos, [], [], []
        model = SimpleNamespace(load_weights=self.load_weights)
        self.llm_engine = SimpleNamespace(
            model_executor=SimpleNamespace(driver_worker=SimpleNamespace(model_runner=SimpleNamespace(model=model))),
            reset_encoder_cache=lambda: self.events.append("reset_encoder_cache"),
        )

    def load_weights(self, weights):
        self.loaded += [name for name, _ in weights]
        if self.events[-1:] != ["load_weights"]:
            self.events.append("load_weights")

    def reset_prefix_cache(self):
        self.events.append("reset_prefix_cache")

    def reset_mm_cache(self):
        self.events.append("reset_mm_cache")

    def sleep(self, level):
        self.events.append(f"sleep({level})")

    def wake_up(self, tags=None):
        self.events.append(f"wake_up({','.join(tags)})")

    def generate(self, requests, sampling_params, use_tqdm):
        self.events.append("generate")
        self.requests.append((requests, sampling_params))
        completion = SimpleNamespace(token_ids=[5, self.eos], logprobs=None)
        return [SimpleNamespace(prompt_token_ids=r["prompt_token_ids"], outputs=[completion]) for r in requests]


class RecordedNativeGeneration(NativeVideoVLLMGeneration):
    """The real class with `RecordingLLM` as its engine and the sampling parameters left as a dict."""

    def _make_llm(self, model_dir):
        return RecordingLLM(model_dir, self.eos_token_ids[0])

    def _sampling_params(self):
        return self.sampling_kwargs()


def make_engine(model, processor, export_dir, **kwargs):
    settings = dict(
        policy_name="qwen2_5_vl",
        export_dir=export_dir,
        model=model,
        accelerator=Accelerator(cpu=True),
        processing_class=processor,
        eos_token_ids=[processor.tokenizer.eos_token_id],
        banned_token_ids=[processor.video_token_id],
        dtype=torch.float32,
    )
    settings.update(kwargs)
    return RecordedNativeGeneration(**settings)


def video_requests(processor, clips=2):
    policy = QwenRequests()
    rows = [qwen_clip(processor, random_frames(2 + i, 32, 32, seed=i)) for i in range(clips)]
    text = f"what <|vision_start|>{VIDEO_PAD}<|vision_end|> happens ?"
    return build_video_requests(policy, processor, [expanded_ids(processor, text, clip) for clip in rows], rows)


def test_every_weight_sync_clears_the_caches_before_the_next_generation(tiny_qwen, processor, tmp_path):
    engine = make_engine(tiny_qwen, processor, tmp_path)
    requests = video_requests(processor)
    for _ in range(2):  # two optimizer steps: the trainer syncs, then generates
        engine.sync_weights()
        completion_ids, logprobs = engine.generate_videos(requests)
    assert completion_ids == [[5, processor.tokenizer.eos_token_id]] * 2 and logprobs is None
    cycle = ["load_weights", "reset_prefix_cache", "reset_encoder_cache", "reset_mm_cache", "generate"]
    assert engine.llm.events == cycle * 2
    # every parameter, the vision tower included (vLLM runs it), under its HF name: vLLM's load_weights maps it
    names = [name for name, _ in tiny_qwen.named_parameters()]
    assert engine.llm.loaded == names * 2
    assert engine.llm.requests[0][0] is requests


def test_sleep_mode_re_pushes_the_weights_and_clears_the_caches_before_generating(tiny_qwen, processor, tmp_path):
    engine = make_engine(tiny_qwen, processor, tmp_path, enable_sleep_mode=True)
    assert engine.llm.events == ["sleep(2)"]
    engine.generate_videos(video_requests(processor, clips=1))
    assert engine.llm.events == [
        "sleep(2)",
        "wake_up(weights)",  # level 2 dropped the weights: TRL's sync wakes them and pushes them again
        "load_weights",
        "reset_prefix_cache",
        "reset_encoder_cache",
        "reset_mm_cache",
        "wake_up(kv_cache)",
        "generate",
        "sleep(2)",
    ]


def test_a_parameter_vllm_would_not_know_stops_the_sync_before_the_engine(tiny_qwen, processor, tmp_path):
    engine = make_engine(tiny_qwen, processor, tmp_path)
    engine.model = torch.nn.ModuleDict({"wrapper": tiny_qwen})  # a prefix TRL's iteration does not strip
    with pytest.raises(ValueError, match="'wrapper.model.visual.patch_embed.proj.weight' has none of the prefixes"):
        engine.sync_weights()
    assert engine.llm.loaded == []


def test_sampling_kwargs_follow_trls_mapping(tiny_qwen, processor, tmp_path, monkeypatch):
    from test_vllm_rollouts import trl_sampling_kwargs

    engine = make_engine(
        tiny_qwen, processor, tmp_path, temperature=0.7, top_p=0.9, top_k=20, repetition_penalty=1.05,
        max_completion_length=33, generation_kwargs={"seed": 3},
    )  # fmt: skip
    trl_kwargs = trl_sampling_kwargs(engine, monkeypatch)
    assert trl_kwargs["temperature"] == 0.7 and trl_kwargs["max_tokens"] == 33 and trl_kwargs["seed"] == 3
    assert engine.sampling_kwargs() == {
        **trl_kwargs,
        "detokenize": False,
        "logit_bias": {processor.video_token_id: -100.0},
    }


def test_the_engine_loads_the_exported_multimodal_model_with_trls_colocate_settings(tiny_qwen, processor, tmp_path):
    engine = make_engine(tiny_qwen, processor, tmp_path / "export", dtype=torch.bfloat16, max_num_seqs=8)
    assert engine.llm.model_dir == str(tmp_path / "export")
    kwargs = engine._llm_kwargs(engine.export_dir)
    assert kwargs["model"] == str(tmp_path / "export") and "enable_prompt_embeds" not in kwargs
    assert kwargs["limit_mm_per_prompt"] == {"image": 0, "video": 1}
    assert kwargs["load_format"] == "dummy" and kwargs["dtype"] == "bfloat16"
    assert kwargs["distributed_executor_backend"] == "external_launcher"
    assert kwargs["logprobs_mode"] == "processed_logprobs" and kwargs["max_num_seqs"] == 8

    config = AutoConfig.from_pretrained(engine.export_dir)
    assert config.architectures == ["Qwen2_5_VLForConditionalGeneration"]  # what vLLM resolves its class by
    assert config.text_config.hidden_size == tiny_qwen.config.text_config.hidden_size
    exported = AutoProcessor.from_pretrained(engine.export_dir)
    assert exported.video_processor.size == processor.video_processor.size
    assert exported.video_processor.patch_size == processor.video_processor.patch_size
    eos = GenerationConfig.from_pretrained(engine.export_dir).eos_token_id
    assert eos in ([processor.tokenizer.eos_token_id], processor.tokenizer.eos_token_id)


# ---- trainer routing ----------------------------------------------------------------------------------------------


def test_use_vllm_with_an_unknown_route_is_refused_at_start_up(tmp_path):
    from grpo_fixtures import tiny_grpo_config

    from r1video.policies.tinyllava_video import TinyLlavaVideoPolicy
    from r1video.trainer import VideoGRPOTrainer
    from rewards import get_reward_funcs

    class UnknownRoute(TinyLlavaVideoPolicy):
        name = "unknown_route"
        vllm_route = "embeds"  # a typo of a route

    assert VLLM_ROUTES == ("prompt_embeds", "native")
    model, processor = TinyLlavaVideoPolicy().build_tiny()
    with pytest.raises(NotImplementedError) as caught:
        VideoGRPOTrainer(
            model=model,
            reward_funcs=get_reward_funcs(["accuracy"]),
            args=tiny_grpo_config(tmp_path, use_vllm=True),
            processing_class=processor,
            policy=UnknownRoute(),
        )
    message = str(caught.value)
    assert "\n" not in message and "unknown_route" in message and "'embeds'" in message
    assert "prompt_embeds, native" in message and "use_vllm: false" in message


# ---- the real engine ----------------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None, reason="needs CUDA and vllm"
)
def test_vllm_samples_from_clips_and_forgets_the_old_encoder_after_a_sync(tiny_qwen, processor, tmp_path):
    """On a GPU with vLLM 0.30: the engine on the exported directory, a sync, rollouts from two clips; after the
    vision tower changes and is synced, the same clips give the new encoder's log-probs (a stale encoder cache would
    give the old ones)."""

    class RealEngine(NativeVideoVLLMGeneration):
        pass

    model = tiny_qwen.to("cuda")
    engine = RealEngine(
        policy_name="qwen2_5_vl",
        export_dir=tmp_path / "export",
        model=model,
        accelerator=Accelerator(),
        processing_class=processor,
        eos_token_ids=[processor.tokenizer.eos_token_id],
        banned_token_ids=[processor.video_token_id],
        gpu_memory_utilization=0.2,
        max_model_length=1024,
        max_num_seqs=4,
        temperature=1.0,
        max_completion_length=8,
        generation_kwargs={"seed": 0},
    )
    requests = video_requests(processor)
    engine.sync_weights()
    first_ids, first_logprobs = engine.generate_videos(requests)
    assert all(len(ids) > 0 for ids in first_ids)
    assert all(np.isfinite(lp).all() for lp in first_logprobs)
    again_ids, again_logprobs = engine.generate_videos(requests)
    assert again_ids == first_ids  # seeded: the same weights give the same rollouts
    with torch.no_grad():
        for param in model.model.visual.parameters():
            param.add_(torch.randn_like(param))
    engine.sync_weights()
    changed_ids, changed_logprobs = engine.generate_videos(requests)
    assert changed_ids != first_ids or changed_logprobs != first_logprobs


# ---- with the Qwen2.5-VL policy (branch `qwen`; skipped until it is merged) ------------------------------------------


@pytest.mark.parametrize("num_frames", [5, 8])
def test_the_qwen_policys_clips_reach_vllm_as_the_training_forward_sees_them(tmp_path, num_frames):
    """A real mp4 through the Qwen2.5-VL policy; the request vLLM gets, processed as vLLM processes it and expanded
    as vLLM expands it, is the training forward's input: same ids, same pixels, same grid and time scale, so the
    same logits (M-RoPE positions included)."""
    qwen = pytest.importorskip("r1video.policies.qwen2_5_vl")
    from video_fixtures import write_numbered_clip

    policy = qwen.Qwen2_5_VLPolicy()
    model, processor = policy.build_tiny()
    model.eval()
    clip = policy.decode_clip(processor, write_numbered_clip(tmp_path / "clip.mp4", count=40), num_frames=num_frames)
    text = policy.question_prompt(processor, "What happens?")
    ids = policy.tokenize_prompts(processor, [text], [clip])
    (request,) = build_video_requests(policy, processor, ids, [clip])

    video = processor.video_token_id
    processed = processor(
        text=[f"<|vision_start|>{VIDEO_PAD}<|vision_end|>"],
        videos=[request["multi_modal_data"]["video"]],
        return_tensors="pt",
        **request["mm_processor_kwargs"],
    )
    tokens = int(processed["video_grid_thw"].prod()) // processor.video_processor.merge_size**2
    vllm_ids = []
    for token in request["prompt_token_ids"]:
        vllm_ids += [token] * (tokens if token == video else 1)
    assert vllm_ids == ids[0]

    input_ids = torch.tensor(ids)
    with torch.no_grad():
        trained = model(
            input_ids=input_ids,
            **policy.model_inputs(model, input_ids, [clip], torch.tensor([0]), None, reuse=False),
        ).logits
        sampled = model(
            input_ids=input_ids,
            pixel_values_videos=processed["pixel_values_videos"],
            video_grid_thw=processed["video_grid_thw"],
            second_per_grid_ts=torch.as_tensor(processed["second_per_grid_ts"]),
            mm_token_type_ids=(input_ids == video).int()
            * 2,  # Qwen's video token type, as vLLM marks the placeholders
        ).logits
    assert torch.equal(sampled, trained)


class HFNativeEngine(RecordingLLM):
    """vLLM's part for the native route, played on CPU by transformers: the model class named in the exported
    config, the processor saved there (what vLLM loads), weights loaded by HF name, and each request processed as vLLM
    0.30 processes it (the family's processor on the video with the request's `mm_processor_kwargs`, each
    placeholder expanded to the clip's token count) and sampled token by token with the processed log-probs."""

    def __init__(self, model_dir, eos, seed=0):
        super().__init__(model_dir, eos)
        import transformers

        config = AutoConfig.from_pretrained(model_dir)
        self.model = getattr(transformers, config.architectures[0])(config).float().eval()
        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.generator = torch.Generator().manual_seed(seed)

    def load_weights(self, weights):
        super().load_weights(weights)
        for name, tensor in weights:
            self.model.get_parameter(name).data.copy_(tensor)

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
                processed = self.processor(
                    text=[self.processor.video_token],
                    videos=[request["multi_modal_data"]["video"]],
                    return_tensors="pt",
                    **request["mm_processor_kwargs"],
                )
                tokens = int(processed["video_grid_thw"].prod()) // self.processor.video_processor.merge_size**2
                ids = [t for token in ids for t in ([token] * (tokens if token == video else 1))]
                inputs = {
                    "pixel_values_videos": processed["pixel_values_videos"],
                    "video_grid_thw": processed["video_grid_thw"],
                    "second_per_grid_ts": torch.as_tensor(processed["second_per_grid_ts"]),
                }
            tokens_out, logprobs = [], []
            for _ in range(sampling_params["max_tokens"]):
                input_ids = torch.tensor([ids + tokens_out])
                type_ids = (input_ids == video).int() * 2
                logits = self.model(input_ids=input_ids, mm_token_type_ids=type_ids, **inputs).logits[0, -1] + bias
                logp = torch.log_softmax(logits / sampling_params["temperature"], dim=-1)
                token = int(torch.multinomial(logp.exp(), 1, generator=self.generator))
                tokens_out.append(token)
                logprobs.append({token: SimpleNamespace(logprob=float(logp[token]), rank=1)})
                if token == self.eos:
                    break
            completion = SimpleNamespace(token_ids=tokens_out, logprobs=logprobs)
            results.append(SimpleNamespace(prompt_token_ids=ids, outputs=[completion]))
        return results


def test_a_grpo_step_through_the_native_route_with_the_qwen_policy(tmp_path):
    """The trainer routes a `"native"` family to `NativeVideoVLLMGeneration`: the engine on the exported directory,
    a sync (caches cleared) before the rollouts, requests from clips of different lengths; the engine's log-probs
    are the trainer's own (importance-sampling ratio 1), which holds only if vLLM's prompt, pixels and M-RoPE time
    scale are the training forward's."""
    pytest.importorskip("r1video.policies.qwen2_5_vl")
    from datasets import Dataset
    from grpo_fixtures import tiny_grpo_config, varied_reward
    from video_fixtures import write_clips_of_lengths

    from r1video.policies import load_policy
    from r1video.trainer import VideoGRPOTrainer

    class CPUNativeGeneration(NativeVideoVLLMGeneration):
        def _make_llm(self, model_dir):
            return HFNativeEngine(model_dir, self.eos_token_ids[0])

        def _sampling_params(self):
            return self.sampling_kwargs()

    class HFEngineTrainer(VideoGRPOTrainer):
        def _make_vllm_generation(self):
            assert self.policy.vllm_route == "native"
            engine = CPUNativeGeneration.from_trainer(self)
            assert engine.banned_token_ids == [self.processing_class.video_token_id]
            # unbanned here so that the engine's log-probs are the policy's, not renormalised without the placeholder
            engine.banned_token_ids = []
            engine.dtype = torch.float32
            return engine

    from r1video.policies.qwen2_5_vl import Qwen2_5_VLPolicy

    Qwen2_5_VLPolicy().build_tiny(tmp_path / "qwen")
    policy, model, processor = load_policy(str(tmp_path / "qwen"))
    assert policy.vllm_route == "native"
    paths = write_clips_of_lengths(tmp_path, specs=((20, 32, 32), (40, 48, 32)))
    rows = [
        {
            "prompt": [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves?"}]}],
            "video": path,
            "solution": "<answer>A</answer>",
        }
        for path in paths
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

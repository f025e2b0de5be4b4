"""vLLM's native video route for Qwen3-VL and Qwen3.5, on CPU: the request form, the prompt form, the weight names,
and a GRPO step through the route with transformers in vLLM's place.

vLLM needs CUDA and is not installed here, so [`vllm_processes`] plays vLLM 0.30's part for one video request, line
by line from `vllm/model_executor/models/qwen3_vl.py` (`Qwen3VLMultiModalProcessor`, which vLLM also runs for
Qwen3.5: `vllm/model_executor/models/qwen3_5.py:468-473`) on the family's real HF processor: the `(frames, metadata)`
pair, the timestamps vLLM computes from the metadata, the HF processor call, and the prompt update that replaces the
one `<|video_pad|>` by the per-frame timestamp text and video tokens. The clips are real mp4s through the policy's own
reader, of different lengths, sizes and frame rates; everything is compared bit for bit with the clip the policy
built and the prompt ids the trainer trains on.
"""

import importlib.util
import math

import pytest
import torch
from transformers import AutoConfig, AutoProcessor
from transformers.processing_utils import ProcessorMixin
from transformers.video_utils import VideoMetadata
from video_fixtures import moving_square_frames, write_clips_of_lengths, write_vfr_clip

from r1video.data.video import write_video
from r1video.policies import VideoPolicy
from r1video.policies.qwen3_5 import Qwen3_5Policy
from r1video.policies.qwen3_vl import TIMESTAMPS, Qwen3VLPolicy
from r1video.policies.vllm_video import (
    QWEN3_VL_DUMMY_TEXT,
    VLLM_WEIGHT_PREFIXES,
    native_processing_problem,
    native_request_for,
    qwen3_vl_expansion,
    qwen3_vl_video,
    vllm_weight_name,
)
from r1video.trainer.vllm_native import build_video_requests, export_multimodal_model

POLICIES = {"qwen3_vl": Qwen3VLPolicy(), "qwen3_5": Qwen3_5Policy()}
# vLLM's model class per family: the HF architecture name the exported config carries and vLLM 0.30's registry
# resolves (`vllm/model_executor/models/registry.py:592, 597`)
ARCHITECTURES = {"qwen3_vl": "Qwen3VLForConditionalGeneration", "qwen3_5": "Qwen3_5ForConditionalGeneration"}
VIDEO_PROMPT = QWEN3_VL_DUMMY_TEXT  # `get_dummy_text`, qwen3_vl.py:1108-1115


@pytest.fixture(scope="module", params=list(POLICIES))
def tiny(request, tmp_path_factory):
    """`(policy, model, processor, folder)`: a tiny random model of the family, saved and reloaded the way vLLM
    loads the exported directory (the processor from disk)."""
    policy = POLICIES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    model, _ = policy.build_tiny(folder / "model")
    return policy, model, AutoProcessor.from_pretrained(folder / "model"), folder


# ---- vLLM 0.30's Qwen3-VL processing of one video request ---------------------------------------------------------


def vllm_timestamps(metadata, temporal_patch_size: int) -> list[float]:
    """`Qwen3VLProcessingInfo._get_video_second_idx` without frame sampling (qwen3_vl.py:1056-1104) →
    `_calculate_timestamps` (`:1041-1054`): the mean of `index / fps` over each temporal patch."""
    indices = metadata["frames_indices"]
    if not isinstance(indices, list):
        indices = indices.tolist()
    if len(indices) % temporal_patch_size != 0:
        indices = indices + [indices[-1]] * (temporal_patch_size - len(indices) % temporal_patch_size)
    seconds = [index / metadata["fps"] for index in indices]
    return [
        (seconds[i] + seconds[i + temporal_patch_size - 1]) / 2 for i in range(0, len(seconds), temporal_patch_size)
    ]


def vllm_video_repl(tokenizer, timestamps, tokens_per_frame: int, config) -> list[int]:
    """`Qwen3VLMultiModalProcessor.get_video_repl` (qwen3_vl.py:1627-1690), no pruning: per frame group its
    timestamp text tokenized alone, then `<|vision_start|>`, the video tokens, `<|vision_end|>` (token ids from the
    model's config, `:1540-1542`)."""
    ids = []
    for timestamp in timestamps:
        ids += tokenizer.encode(f"<{timestamp:.1f} seconds>", add_special_tokens=False)
        ids += [config.vision_start_token_id, *[config.video_token_id] * tokens_per_frame, config.vision_end_token_id]
    return ids


def vllm_processes(processor, config, request: dict):
    """What vLLM 0.30 does with a Qwen3-VL / Qwen3.5 `TokensPrompt` holding one video, on the real HF processor:
    everything that decides the pixels, grid, timestamps and prompt. (vLLM then calls the processor once more, on its
    dummy text without the video, `qwen3_vl.py:1484-1493`; its output is not used, but transformers 5.24 refuses
    that call: `test_vllm_0_30s_text_only_processor_call_is_refused_by_this_transformers`.)

    Returns:
        `(processed, timestamps, prompt_ids)`: the HF processor's output vLLM keeps (`pixel_values_videos`,
        `video_grid_thw`), the timestamps vLLM writes, and the prompt ids after vLLM's prompt update.
    """
    video = request["multi_modal_data"]["video"]
    # a 2-tuple is one video (vllm/multimodal/parse.py:768-769) whose metadata is kept (`:654-662, 788-795`,
    # `video_needs_metadata=True`, qwen3_vl.py:927-933); a bare array would be refused
    assert isinstance(video, tuple) and len(video) == 2
    frames, metadata = video
    kwargs = dict(request["mm_processor_kwargs"])  # qwen3_vl.py:1370
    if "do_sample_frames" not in kwargs:  # `:1392-1397`
        kwargs["do_sample_frames"] = metadata.get("do_sample_frames", False)
    assert kwargs["do_sample_frames"] is False  # (with sampling, vLLM re-derives the indices: `:1078-1102`)
    metadata = VideoMetadata(**{k: metadata[k] for k in metadata if k != "do_sample_frames"})  # `:1399-1401`
    timestamps = vllm_timestamps(metadata, processor.video_processor.temporal_patch_size)  # `:1404-1409`
    # `call_hf_processor` (vllm/multimodal/processing/context.py:314-343): the request's kwargs, truncation off,
    # tensors; vLLM itself passes the videos and their metadata (qwen3_vl.py:1412-1430)
    processed = processor(
        text=VIDEO_PROMPT,
        videos=[[frames]],
        video_metadata=[[metadata]],
        **{"truncation": False, "return_tensors": "pt", **kwargs},
    )
    # `_get_prompt_updates` (`:1529-1625`): the target is the bare `<|video_pad|>`, as transformers ≥ 5.10's
    # processor overrides `replace_video_token` (`:1319-1325`); tokens per frame from the image processor's merge
    assert type(processor).replace_video_token is not ProcessorMixin.replace_video_token
    grid = processed["video_grid_thw"][0]
    assert len(timestamps) == int(grid[0])  # vLLM asserts it (`:1564-1567`)
    per_frame = int(grid[1:].prod()) // processor.image_processor.merge_size**2
    replacement = vllm_video_repl(processor.tokenizer, timestamps, per_frame, config)
    ids = list(request["prompt_token_ids"])
    assert ids.count(config.video_token_id) == 1  # one video, one placeholder (processor.py:1658-1675)
    at = ids.index(config.video_token_id)
    return processed, timestamps, ids[:at] + replacement + ids[at + 1 :]


# ---- the request form ---------------------------------------------------------------------------------------------


def decoded_clips(policy, processor, folder):
    """Real mp4s through the policy's reader: different lengths, sizes, source frame rates and sampling (odd and
    even frame counts, fewer frames than a temporal patch, a variable-frame-rate clip)."""
    paths = write_clips_of_lengths(folder, specs=((20, 32, 32), (40, 48, 32), (60, 32, 48)), fps=25)
    slow = str(folder / "slow_12fps.mp4")
    write_video(slow, moving_square_frames(37, 40, 24), fps=12)
    vfr = write_vfr_clip(folder / "vfr.mp4", [40, 40, 120, 40, 200, 40, 40, 80, 40, 40])
    return {
        "20f@25fps, 5 fps": policy.decode_clip(processor, paths[0], fps=5),
        "40f@25fps, 7 frames": policy.decode_clip(processor, paths[1], num_frames=7),
        "60f@25fps, 16 frames": policy.decode_clip(processor, paths[2], num_frames=16),
        "37f@12fps, 3 fps": policy.decode_clip(processor, slow, fps=3),
        "37f@12fps, 1 frame": policy.decode_clip(processor, slow, num_frames=1),
        "vfr, every frame": policy.decode_clip(processor, vfr),
    }


@pytest.fixture(scope="module")
def clips(tiny):
    policy, _, processor, folder = tiny
    return decoded_clips(policy, processor, folder)


def trainer_ids(policy, processor, clip, question="What moves?"):
    """The prompt ids the trainer trains on: the family's chat template, the clip's expansion (`tokenize_prompts`)."""
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    text = policy.render_prompt(processor, messages)
    return policy.tokenize_prompts(processor, [text], [clip])[0]


def test_the_processor_call_vllm_makes_reproduces_each_clip_bit_for_bit(tiny, clips):
    """vLLM runs the family's processor on the request's `(frames, metadata)` with its `mm_processor_kwargs`, writes
    its own timestamps and expands the one placeholder: the pixels, grid, timestamps and the whole prompt must be
    the clip's and the trainer's exactly (max |Δ| = 0)."""
    policy, model, processor, _ = tiny
    for name, clip in clips.items():
        request = qwen3_vl_video(processor, clip)
        assert "video_metadata" not in request["mm_processor_kwargs"]  # vLLM passes it itself: a duplicate keyword
        ids = trainer_ids(policy, processor, clip)
        (prompt,) = build_video_requests(policy, processor, [ids], [clip])
        processed, timestamps, vllm_ids = vllm_processes(processor, model.config, prompt)
        pixels = processed["pixel_values_videos"]
        assert pixels.dtype == clip.inputs["pixel_values_videos"].dtype, name
        assert (pixels - clip.inputs["pixel_values_videos"]).abs().max().item() == 0.0, name
        assert torch.equal(processed["video_grid_thw"], clip.inputs["video_grid_thw"]), name
        assert timestamps == clip.inputs[TIMESTAMPS].tolist(), name  # the floats themselves, not only their text
        assert vllm_ids == ids, name


def test_the_prompt_vllm_gets_is_the_template_with_one_placeholder(tiny, clips):
    """The request's ids are the rendered template before expansion: one `<|video_pad|>` between the template's own
    `<|vision_start|>` / `<|vision_end|>`, no timestamp text; the expansion they drop is the trainer's exactly."""
    policy, _, processor, _ = tiny
    clip = clips["40f@25fps, 7 frames"]
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves?"}]}]
    template = processor.tokenizer(policy.render_prompt(processor, messages), add_special_tokens=False)["input_ids"]
    (request,) = build_video_requests(policy, processor, [trainer_ids(policy, processor, clip)], [clip])
    assert request["prompt_token_ids"] == template
    expansion = policy._placeholder(processor, clip)
    assert expansion.count("seconds>") == 4  # 7 frames: 4 temporal patches, the last frame repeated
    assert qwen3_vl_expansion(processor, clip) == processor.tokenizer(expansion, add_special_tokens=False)["input_ids"]


def test_a_shuffled_clip_reaches_vllm_with_its_frames_shuffled_and_its_timeline_kept(tiny, clips):
    """Temporal contrast samples from permuted clips through the same route: vLLM must see the permuted patches
    under the original, increasing timestamps, as the trainer's prompt has them."""
    policy, model, processor, _ = tiny
    clip = clips["60f@25fps, 16 frames"]
    permuted = policy.permute_clip(clip, torch.tensor([3, 0, 7, 1, 6, 2, 5, 4]))
    ids = trainer_ids(policy, processor, permuted)
    assert ids == trainer_ids(policy, processor, clip)
    (request,) = build_video_requests(policy, processor, [ids], [permuted])
    processed, timestamps, vllm_ids = vllm_processes(processor, model.config, request)
    assert torch.equal(processed["pixel_values_videos"], permuted.inputs["pixel_values_videos"])
    assert not torch.equal(processed["pixel_values_videos"], clip.inputs["pixel_values_videos"])
    assert timestamps == sorted(timestamps) == clip.inputs[TIMESTAMPS].tolist()
    assert vllm_ids == ids


def test_requests_for_rows_of_clips_of_different_lengths(tiny, clips):
    policy, model, processor, _ = tiny
    assert policy.vllm_route == "native"
    assert policy.vllm_video.__func__ is VideoPolicy.vllm_video  # the registered function, found by name
    assert native_request_for(policy.name) is qwen3_vl_video
    short, long = clips["20f@25fps, 5 fps"], clips["60f@25fps, 16 frames"]
    rows = [(short, "What moves?"), (long, "How many?"), (short, "What moves?"), (None, "Hello")]
    prompt_ids = []
    for clip, question in rows:
        if clip is None:
            text = policy.render_prompt(processor, [{"role": "user", "content": question}])
            prompt_ids.append(policy.tokenize_prompts(processor, [text], [None])[0])
        else:
            prompt_ids.append(trainer_ids(policy, processor, clip, question))
    requests = build_video_requests(policy, processor, prompt_ids, [clip for clip, _ in rows])
    for request, ids, (clip, _) in zip(requests, prompt_ids, rows, strict=True):
        if clip is None:
            assert request == {"prompt_token_ids": ids}
            continue
        assert vllm_processes(processor, model.config, request)[2] == ids
    assert len(requests[0]["multi_modal_data"]["video"][0]) == 4
    assert len(requests[1]["multi_modal_data"]["video"][0]) == 16
    # rows of one clip share its request form (one conversion, one object for vLLM to hash); other clips do not
    assert requests[0]["multi_modal_data"] is requests[2]["multi_modal_data"]
    assert requests[0]["multi_modal_data"] is not requests[1]["multi_modal_data"]


def test_a_row_whose_prompt_was_expanded_for_another_clip_is_refused(tiny, clips):
    policy, _, processor, _ = tiny
    short, long = clips["20f@25fps, 5 fps"], clips["60f@25fps, 16 frames"]
    ids = [trainer_ids(policy, processor, short), trainer_ids(policy, processor, short)]
    with pytest.raises(ValueError, match=r"^row 1: the prompt does not hold its clip's video tokens as vLLM writes"):
        build_video_requests(policy, processor, ids, [short, long])


def test_the_exported_directory_is_what_vllm_resolves_and_processes_as_the_trainer(tiny, clips, tmp_path):
    """vLLM picks its model class by the config's `architectures` and loads the processor saved beside it: the
    reloaded processor gives the same request form and the same processed clip."""
    policy, model, processor, _ = tiny
    export_multimodal_model(model, processor, tmp_path, eos_token_ids=[processor.tokenizer.eos_token_id])
    assert AutoConfig.from_pretrained(tmp_path).architectures == [ARCHITECTURES[policy.name]]
    exported = AutoProcessor.from_pretrained(tmp_path)
    clip = clips["37f@12fps, 3 fps"]
    ids = trainer_ids(policy, processor, clip)
    (request,) = build_video_requests(policy, exported, [ids], [clip])
    processed, _, vllm_ids = vllm_processes(exported, model.config, request)
    assert torch.equal(processed["pixel_values_videos"], clip.inputs["pixel_values_videos"]) and vllm_ids == ids


# ---- what stops the route on vLLM 0.30 with transformers 5.24 -------------------------------------------------------


def test_vllm_0_30s_text_only_processor_call_is_refused_by_this_transformers(tiny):
    """After processing a video, vLLM 0.30 calls the HF processor on its dummy text without the video
    (qwen3_vl.py:1340, 1347, 1484-1493); transformers 5.24's `ProcessorMixin.validate_inputs` refuses a placeholder
    without its video. The family's processing check makes that call and reports it (if a transformers release
    accepts it again, this test fails: the check then passes and the route runs)."""
    policy, _, processor, _ = tiny
    with pytest.raises(ValueError, match=r"Found 1 <\|video_pad\|> tokens in the text but no videos were passed"):
        processor(text=VIDEO_PROMPT, do_resize=False, do_sample_frames=False, truncation=False, return_tensors="pt")
    problem = native_processing_problem(policy.name, processor)
    assert problem is not None and "\n" not in problem
    assert "qwen3_vl.py:1484-1493" in problem and "no videos were passed" in problem
    assert native_processing_problem("qwen2_5_vl", processor) is None  # no check registered: its vLLM call has no text


def test_use_vllm_is_refused_at_start_up_while_vllm_cannot_process_the_video(tiny, tmp_path):
    """The trainer builds the native engine at start-up; before vLLM is imported or the weights leave the trainer,
    the family's processing check stops it with one line naming the cause."""
    from datasets import Dataset
    from grpo_fixtures import tiny_grpo_config

    from r1video.trainer import VideoGRPOTrainer
    from rewards import get_reward_funcs

    policy, model, processor, _ = tiny
    args = tiny_grpo_config(tmp_path)
    args.use_vllm = True  # after construction: TRL's config checks that vLLM is installed
    prompt = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves?"}]}]
    data = Dataset.from_list([{"prompt": prompt, "video": "clip.mp4", "solution": "<answer>A</answer>"}])
    with pytest.raises(NotImplementedError) as caught:
        VideoGRPOTrainer(
            model=model, reward_funcs=get_reward_funcs(["accuracy"]), args=args, train_dataset=data,
            processing_class=processor, policy=policy,
        )  # fmt: skip
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"use_vllm is not supported for {policy.name} models here")
    assert "no videos were passed" in message and "use_vllm: false" in message


# ---- weight names -------------------------------------------------------------------------------------------------


def test_the_real_state_dict_maps_into_vllms_modules(tiny):
    """Every name the sync sends (the parameters; the state dict adds the tied head) maps to vLLM's module tree:
    `visual.*` (deepstack mergers included for Qwen3-VL), `language_model.model.*`, `language_model.lm_head.*`."""
    policy, model, _, _ = tiny
    names = [name for name, _ in model.named_parameters()]
    mapped = {name: vllm_weight_name(policy.name, name) for name in model.state_dict()}
    roots = ("visual.", "language_model.model.", "language_model.lm_head.")
    assert all(new.startswith(roots) for new in mapped.values()), mapped
    assert len(set(mapped.values())) == len(mapped) and set(names) <= set(mapped)
    assert "lm_head.weight" not in names and mapped["lm_head.weight"] == "language_model.lm_head.weight"
    assert mapped["model.visual.blocks.0.attn.qkv.weight"] == "visual.blocks.0.attn.qkv.weight"
    assert mapped["model.visual.merger.linear_fc1.weight"] == "visual.merger.linear_fc1.weight"
    assert mapped["model.language_model.layers.1.self_attn.q_proj.weight"] == (
        "language_model.model.layers.1.self_attn.q_proj.weight"  # vLLM stacks it into qkv_proj itself
    )
    if policy.name == "qwen3_vl":
        assert (
            mapped["model.visual.deepstack_merger_list.1.norm.weight"] == "visual.deepstack_merger_list.1.norm.weight"
        )
    else:  # Gated DeltaNet projections, which vLLM's Qwen3.5 loader stacks into in_proj_qkvz / in_proj_ba
        assert mapped["model.language_model.layers.0.linear_attn.in_proj_qkv.weight"] == (
            "language_model.model.layers.0.linear_attn.in_proj_qkv.weight"
        )
        assert not any("deepstack" in name for name in names)
    # vLLM's Qwen3-VL mapper has no bare `model.` entry (unlike Qwen2.5-VL's): an old-layout name is refused here
    with pytest.raises(ValueError, match=r"'model.layers.0.mlp.up_proj.weight' has none of the prefixes"):
        vllm_weight_name(policy.name, "model.layers.0.mlp.up_proj.weight")
    assert set(VLLM_WEIGHT_PREFIXES) >= {"qwen2_5_vl", "qwen3_vl", "qwen3_5"}


# ---- a GRPO step through the route --------------------------------------------------------------------------------


def hf_qwen3_engine_class():
    """`HFNativeEngine` (tests/test_vllm_native.py) with Qwen3-VL's request processing: each request processed as
    [`vllm_processes`] does, the model run with `mm_token_type_ids` as vLLM marks the placeholders. It plays a vLLM
    without the text-only processor call that transformers 5.24 refuses (the engine class's `_make_llm`, which runs
    the processing check, is replaced by the test)."""
    from test_vllm_native import HFNativeEngine

    class HFQwen3Engine(HFNativeEngine):
        @torch.no_grad()
        def generate(self, requests, sampling_params, use_tqdm):
            from types import SimpleNamespace

            self.events.append("generate")
            self.requests.append((requests, sampling_params))
            video = self.model.config.video_token_id
            results = []
            for request in requests:
                inputs, ids = {}, list(request["prompt_token_ids"])
                if "multi_modal_data" in request:
                    processed, _, ids = vllm_processes(self.processor, self.model.config, request)
                    inputs = {key: processed[key] for key in ("pixel_values_videos", "video_grid_thw")}
                tokens_out, logprobs = [], []
                for _ in range(sampling_params["max_tokens"]):
                    input_ids = torch.tensor([ids + tokens_out])
                    type_ids = (input_ids == video).int() * 2
                    logits = self.model(input_ids=input_ids, mm_token_type_ids=type_ids, **inputs).logits[0, -1]
                    logp = torch.log_softmax(logits / sampling_params["temperature"], dim=-1)
                    token = int(torch.multinomial(logp.exp(), 1, generator=self.generator))
                    tokens_out.append(token)
                    logprobs.append({token: SimpleNamespace(logprob=float(logp[token]), rank=1)})
                    if token == self.eos:
                        break
                completion = SimpleNamespace(token_ids=tokens_out, logprobs=logprobs)
                results.append(SimpleNamespace(prompt_token_ids=ids, outputs=[completion]))
            return results

    return HFQwen3Engine


@pytest.mark.parametrize("family", list(POLICIES))
def test_a_grpo_step_through_the_native_route(tmp_path, family):
    """The trainer routes Qwen3-VL / Qwen3.5 to `NativeVideoVLLMGeneration`: the engine on the exported directory, a
    sync (caches cleared) before the rollouts, requests from clips of different lengths; the engine's log-probs are
    the trainer's own (importance-sampling ratio 1), which holds only if vLLM's prompt (timestamps included), pixels
    and grid are the training forward's."""
    from datasets import Dataset
    from grpo_fixtures import tiny_grpo_config, varied_reward

    from r1video.policies import load_policy
    from r1video.trainer import VideoGRPOTrainer
    from r1video.trainer.vllm_native import NativeVideoVLLMGeneration

    engine_class = hf_qwen3_engine_class()

    class CPUNativeGeneration(NativeVideoVLLMGeneration):
        def _make_llm(self, model_dir):
            return engine_class(model_dir, self.eos_token_ids[0])

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

    POLICIES[family].build_tiny(tmp_path / "model")
    policy, model, processor = load_policy(str(tmp_path / "model"))
    assert policy.name == family and policy.vllm_route == "native"
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
    assert set(engine.llm.loaded) == {name for name, _ in model.named_parameters()}  # the vision tower too
    (requests, _), *_ = engine.llm.requests
    assert {len(r["multi_modal_data"]["video"][0]) for r in requests} == {4, 8}  # 0.8 s and 1.6 s at 5 fps
    logged = trainer.state.log_history[0]
    assert logged["completions/mean_length"] > 0
    assert math.isclose(logged["sampling/importance_sampling_ratio/mean"], 1.0, abs_tol=1e-5)
    assert logged["sampling/sampling_logp_difference/max"] < 1e-5


# ---- the real engine ----------------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None, reason="needs CUDA and vllm"
)
@pytest.mark.parametrize("family", list(POLICIES))
def test_vllm_expands_the_prompt_as_the_trainer_and_forgets_the_old_encoder_after_a_sync(tmp_path, family):
    """On a GPU with vLLM 0.30: the engine on the exported directory, a sync, rollouts from two real clips. vLLM's
    own expanded prompt (timestamps and video tokens) is the trainer's, id for id; after the vision tower changes and
    is synced, the same clips give the new encoder's rollouts (a stale encoder cache would give the old ones).

    While the family's processing check finds a problem (vLLM 0.30 with transformers 5.24), this checks the check
    instead: vLLM itself, built without it, fails on the transformers error the check reports."""
    from accelerate import Accelerator

    from r1video.trainer.vllm_native import NativeVideoVLLMGeneration
    from r1video.trainer.vllm_rollouts import ColocateVLLMGeneration

    class Unchecked(NativeVideoVLLMGeneration):
        def _make_llm(self, model_dir):
            return ColocateVLLMGeneration._make_llm(self, model_dir)  # vLLM as it is, without the processing check

    policy = POLICIES[family]
    model, processor = policy.build_tiny()
    model = model.to("cuda")
    paths = write_clips_of_lengths(tmp_path, specs=((20, 32, 32), (40, 48, 32)))
    clips = [policy.decode_clip(processor, path, fps=5) for path in paths]
    ids = [trainer_ids(policy, processor, clip) for clip in clips]
    requests = build_video_requests(policy, processor, ids, clips)
    settings = dict(
        policy_name=family,
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
    if native_processing_problem(family, processor) is not None:
        with pytest.raises(Exception) as caught:  # at start-up (profiling a dummy video) or at the first request
            engine = Unchecked(**settings)
            engine.sync_weights()
            engine.generate_videos(requests)
        chain, error = [], caught.value
        while error is not None:
            chain.append(str(error))
            error = error.__cause__ or error.__context__
        assert any("no videos were passed" in text for text in chain), chain
        return
    engine = NativeVideoVLLMGeneration(**settings)
    engine.sync_weights()
    outputs = engine.llm.generate(requests, sampling_params=engine._sampling_params(), use_tqdm=False)
    assert [list(output.prompt_token_ids) for output in outputs] == ids
    first_ids, first_logprobs = engine.generate_videos(requests)
    assert all(len(row) > 0 for row in first_ids)
    assert engine.generate_videos(requests)[0] == first_ids  # seeded: the same weights give the same rollouts
    with torch.no_grad():
        for param in policy.vision_module(model).parameters():
            param.add_(torch.randn_like(param))
    engine.sync_weights()
    changed_ids, changed_logprobs = engine.generate_videos(requests)
    assert changed_ids != first_ids or changed_logprobs != first_logprobs

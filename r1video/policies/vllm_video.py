"""The `"native"` vLLM route's request forms: a row's [`Clip`] → what vLLM 0.30 takes as the row's video.

A family whose policy has `vllm_route = "native"` is run by vLLM itself (vLLM ships its model class): the rollout
request carries the prompt's token ids with ONE placeholder token per video ([`VideoPolicy.vllm_prompt_ids`]; vLLM
expands it to the clip's tokens, `vllm/multimodal/processing/processor.py:1600-1637`), the clip under
`multi_modal_data={"video": ...}` and the processor keywords under `mm_processor_kwargs` (`vllm/inputs/llm.py:64-112`,
`TokensPrompt`). vLLM then runs the family's own HF processor on the video
(`vllm/multimodal/processing/context.py:314-343`, every keyword passes to a processor whose `__call__` takes
`**kwargs`), its vision encoder, and its M-RoPE / deepstack positions: the rollouts see what the training forward
sees, which prompt embeddings cannot give those families.

Each family registers one function `(processor, clip) -> {"multi_modal_data": ..., "mm_processor_kwargs": ...}` here
under its policy `name` ([`native_request`]); [`VideoPolicy.vllm_video`] looks it up, so a family module needs only
`vllm_route = "native"`. The function must make vLLM's processor call reproduce the clip's own inputs exactly (the
test runs the HF processor as vLLM calls it and compares).
"""

from collections.abc import Callable

import numpy as np
import torch

from r1video.policies.base import Clip

NativeRequest = Callable[[object, Clip], dict]
_NATIVE_REQUESTS: dict[str, NativeRequest] = {}


def native_request(name: str) -> Callable[[NativeRequest], NativeRequest]:
    """Register the request-form function of the family whose policy `name` is `name`."""

    def register(function: NativeRequest) -> NativeRequest:
        _NATIVE_REQUESTS[name] = function
        return function

    return register


def native_request_for(name: str) -> NativeRequest | None:
    """The request-form function registered for policy `name`, `None` if there is none."""
    return _NATIVE_REQUESTS.get(name)


ProcessingCheck = Callable[[object], str | None]
_PROCESSING_CHECKS: dict[str, ProcessingCheck] = {}


def native_processing_check(name: str) -> Callable[[ProcessingCheck], ProcessingCheck]:
    """Register a check `(processor) -> problem | None` of family `name`: why vLLM 0.30 cannot process the family's
    video with the installed transformers (it runs before the engine is built; `None`: nothing known against it)."""

    def register(function: ProcessingCheck) -> ProcessingCheck:
        _PROCESSING_CHECKS[name] = function
        return function

    return register


def native_processing_problem(name: str, processor) -> str | None:
    """The problem family `name`'s registered check finds with `processor`, `None` if none (or no check)."""
    check = _PROCESSING_CHECKS.get(name)
    return None if check is None else check(processor)


def collapse_placeholders(ids: list[int], placeholder_ids) -> list[int]:
    """`ids` with every run of placeholder tokens collapsed to its first token: the form vLLM expands itself.

    The trainer's prompt ids hold each video's placeholder expanded to the clip's token count; vLLM replaces each
    placeholder token it finds by the full run (`PromptReplacement`, `vllm/model_executor/models/qwen2_5_vl.py:
    1207-1214`), so an already expanded prompt would be expanded again.
    """
    placeholders = set(placeholder_ids)
    out = []
    for i, token in enumerate(ids):
        if token in placeholders and i > 0 and ids[i - 1] == token:
            continue
        out.append(token)
    return out


def unnormalized_frames(pixel_values_videos: torch.Tensor, video_processor) -> np.ndarray:
    """Invert a video processor's fused rescale-and-normalize on one clip: its frames back to the uint8 frames the
    processor resized them to (LLaVA-OneVision's frames as they are, Qwen's once unpatchified) (transformers 5.24 `video_processing_utils.py`, `_preprocess`: resize, then
    `rescale_and_normalize`; the resize works on uint8, so every value is `(k * rescale - mean) / std` for an integer
    `k`, which rounding recovers exactly).

    Args:
        pixel_values_videos: `[F, C, S, S]` the clip's frames (any float dtype, any device).
        video_processor: the processor that made them (mean, std, rescale factor).

    Returns:
        `[F, S, S, C]` uint8 frames.
    """
    frames = pixel_values_videos.detach().to("cpu", torch.float64)
    if video_processor.do_normalize:
        mean = torch.tensor(video_processor.image_mean, dtype=torch.float64).view(1, -1, 1, 1)
        std = torch.tensor(video_processor.image_std, dtype=torch.float64).view(1, -1, 1, 1)
        frames = frames * std + mean
    if video_processor.do_rescale:
        frames = frames / video_processor.rescale_factor
    return frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


# ---- Qwen2.5-VL ----------------------------------------------------------------------------------------------------


def qwen_patches_to_frames(pixel_values_videos: torch.Tensor, grid_thw, video_processor) -> np.ndarray:
    """Invert `Qwen2VLVideoProcessor` (transformers 5.24 `video_processing_qwen2_vl.py`: `patchify` and the fused
    rescale-and-normalize) on one clip: its patches back to the uint8 frames it resized them from.

    Args:
        pixel_values_videos: `[t*h*w, C*tp*P*P]` the clip's patches (any float dtype, any device).
        grid_thw: `(t, h, w)` in patches.
        video_processor: the processor that made them (`patch_size`, `temporal_patch_size`, `merge_size`, mean, std,
            rescale factor).

    Returns:
        `[t*tp, h*P, w*P, C]` uint8 frames (an odd frame count comes back with the processor's repeated last frame).
    """
    t, h, w = (int(x) for x in grid_thw)
    p, tp, m = video_processor.patch_size, video_processor.temporal_patch_size, video_processor.merge_size
    values = pixel_values_videos.detach().to("cpu", torch.float64)
    channels = values.shape[-1] // (tp * p * p)
    # patchify views [t, tp, C, h/m, m, P, w/m, m, P] and permutes to [t, h/m, w/m, m, m, C, tp, P, P]
    patches = values.reshape(t, h // m, w // m, m, m, channels, tp, p, p)
    frames = patches.permute(0, 6, 5, 1, 3, 7, 2, 4, 8).reshape(t * tp, channels, h * p, w * p)
    return unnormalized_frames(frames, video_processor)


@native_request("qwen2_5_vl")
def qwen2_5_vl_video(processor, clip: Clip) -> dict:
    """Qwen2.5-VL's request form: the clip's frames at the size the trainer's processor resized them to, with the
    metadata that gives its `second_per_grid_ts`.

    vLLM 0.30 takes Qwen2.5-VL video as frames (`vllm/multimodal/parse.py:745-799`) or as precomputed embeddings
    (`video_embeds` + `video_grid_thw`, `vllm/model_executor/models/qwen2_vl.py:804-845`). The embeddings form is not
    exact: its field table has no `second_per_grid_ts` (`qwen2_vl.py:764-801`; unknown keys are dropped,
    `vllm/multimodal/inputs.py:955`), so vLLM would time the temporal M-RoPE positions as 1 s per temporal patch
    (`vllm/model_executor/models/qwen2_5_vl.py:1282-1288`) whatever the clip's frame rate. Frames it is:

    - the uint8 frames are recovered from the clip's own patches ([`qwen_patches_to_frames`]), so the clip needs
      nothing beyond what the policy already keeps, and vLLM processes the very pixels the trainer trained on;
    - `do_resize: False`: they are at the trainer's size already (vLLM's processor may be configured otherwise);
    - `do_sample_frames: False`: every frame is kept;
    - `video_metadata`: vLLM 0.30 drops a `(frames, metadata)` tuple's metadata for Qwen2.5-VL
      (`video_needs_metadata` is off, `parse.py:787-797`), and without metadata transformers takes the clip as
      sampled at 24 fps (`VideoMetadata.sampled_fps`); given as a processor keyword it reaches the processor, whose
      `second_per_grid_ts = temporal_patch_size / sampled_fps` is then the clip's.

    Returns:
        `{"multi_modal_data": {"video": [T, H, W, 3] uint8}, "mm_processor_kwargs": {...}}`.
    """
    video_processor = processor.video_processor
    grid = clip.inputs["video_grid_thw"].reshape(-1, 3)[0].tolist()
    frames = qwen_patches_to_frames(clip.inputs["pixel_values_videos"], grid, video_processor)
    seconds_per_patch = float(clip.inputs["second_per_grid_ts"].reshape(-1)[0])
    count = len(frames)
    metadata = {
        "total_num_frames": count,
        "fps": video_processor.temporal_patch_size / seconds_per_patch,
        "frames_indices": list(range(count)),
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
    }
    return {
        "multi_modal_data": {"video": frames},
        "mm_processor_kwargs": {"video_metadata": metadata, "do_resize": False, "do_sample_frames": False},
    }


# ---- Qwen3-VL and Qwen3.5 ----------------------------------------------------------------------------------------
# Both ship `Qwen3VLProcessor`; vLLM 0.30 runs both through `Qwen3VLMultiModalProcessor` (`vllm/model_executor/models/
# qwen3_vl.py:1317`, registered for Qwen3.5 at `vllm/model_executor/models/qwen3_5.py:468-473`), so one request form
# and one prompt form serve both.


def qwen3_vl_expansion(processor, clip: Clip) -> list[int]:
    """The token ids vLLM 0.30 writes in place of a Qwen3-VL / Qwen3.5 clip's one `<|video_pad|>`.

    `Qwen3VLMultiModalProcessor.get_video_repl` (`vllm/model_executor/models/qwen3_vl.py:1627-1690`, called from
    `_get_prompt_updates`, `:1529-1625`): per temporal patch, the timestamp text `<{t:.1f} seconds>` tokenized on
    its own, `<|vision_start|>`, `h*w / merge²` `<|video_pad|>` (merge from the image processor, `:1544`),
    `<|vision_end|>`. `t` are the clip's timestamps, which the request form hands vLLM unchanged
    ([`qwen3_vl_video`]).

    Returns:
        The ids; they equal the trainer's expansion when the tokenizer splits at the special tokens (the test checks
        it on the real processors).
    """
    from r1video.policies.qwen3_vl import TIMESTAMPS

    tokenizer = processor.tokenizer
    merge = processor.image_processor.merge_size
    grid = clip.inputs["video_grid_thw"].reshape(-1, 3)[0].tolist()
    frame = [processor.vision_start_token_id, *[processor.video_token_id] * (grid[1] * grid[2] // merge**2)]
    frame.append(processor.vision_end_token_id)
    ids = []
    for t in clip.inputs[TIMESTAMPS].tolist():
        ids += tokenizer.encode(f"<{t:.1f} seconds>", add_special_tokens=False) + frame
    return ids


def qwen3_vl_prompt_ids(processor, ids: list[int], clip: Clip | None) -> list[int]:
    """A Qwen3-VL / Qwen3.5 row's prompt ids as vLLM takes them: the clip's expansion (timestamps, frame markers and
    video tokens, [`qwen3_vl_expansion`]) back to the one `<|video_pad|>` it came from, between the template's
    `<|vision_start|>` / `<|vision_end|>`. vLLM 0.30 replaces that bare token (transformers ≥ 5.10's processor
    expands only it, `vllm/model_executor/models/qwen3_vl.py:1319-1325, 1604-1614`) by the same expansion, so it
    rebuilds the trainer's ids exactly.

    Raises:
        ValueError: the ids do not hold the clip's expansion as vLLM writes it (the timestamp text tokenized
            differently in context, or a prompt built for another clip).
    """
    if clip is None:
        return collapse_placeholders(ids, [processor.video_token_id])
    expansion = qwen3_vl_expansion(processor, clip)
    first_video = expansion.index(processor.video_token_id)
    start = ids.index(processor.video_token_id) - first_video if processor.video_token_id in ids else -1
    if start < 0 or ids[start : start + len(expansion)] != expansion:
        raise ValueError(
            "the prompt does not hold its clip's video tokens as vLLM writes them (per temporal patch the timestamp "
            "text tokenized alone, <|vision_start|>, the frame's <|video_pad|> tokens, <|vision_end|>)"
        )
    return ids[:start] + [processor.video_token_id] + ids[start + len(expansion) :]


@native_request("qwen3_5")
@native_request("qwen3_vl")
def qwen3_vl_video(processor, clip: Clip) -> dict:
    """Qwen3-VL's (and Qwen3.5's) request form: the clip's frames at the trainer's size, as a `(frames, metadata)`
    pair whose metadata gives vLLM the clip's own timestamps.

    vLLM 0.30 parses Qwen3-VL video with `video_needs_metadata=True` (`vllm/model_executor/models/qwen3_vl.py:
    927-933`): a `(frames, metadata)` tuple keeps its metadata (`vllm/multimodal/parse.py:761-797, 654-662`), a bare
    array is refused. `Qwen3VLMultiModalProcessor._apply_hf_processor_main` (`qwen3_vl.py:1327-1518`) then

    - builds `VideoMetadata` from the dict (`:1399-1401`) and computes the prompt's timestamps itself,
      `_get_video_second_idx` → `_calculate_timestamps(frames_indices, fps, temporal_patch_size)` (`:1041-1104`):
      the mean of `index / fps` over each temporal patch's frames. The metadata here is the clip on a 1-fps clock
      whose frame indices are seconds, every frame of temporal patch `k` at the clip's timestamp `t_k`: vLLM gets
      `(t_k / 1 + t_k / 1) / 2 = t_k` exactly, whatever fps and frame indices the clip was decoded with, and a
      clip permuted for temporal contrast keeps its (unpermuted) timeline as the trainer's prompt does;
    - calls the HF processor on `videos=[[frames]]`, `video_metadata=[[metadata]]` with the request's
      `mm_processor_kwargs` (`:1412-1430`; `vllm/multimodal/processing/context.py:314-343`) and keeps only its
      `pixel_values_videos` / `video_grid_thw` (`:1432-1434`); `do_resize: False` (the frames are at the trainer's
      size already) and `do_sample_frames: False` (keep every frame; vLLM would default to the metadata's
      `do_sample_frames`, `:1392-1397`). The metadata must not also be a processor keyword: vLLM passes it as
      `video_metadata` itself, and a second one is a duplicate keyword.

    The frames are recovered from the clip's own patches ([`qwen_patches_to_frames`]: Qwen3-VL's video processor
    patchifies as Qwen2-VL's). Precomputed `video_embeds` (`qwen3_vl.py:897-908`) would skip vLLM's encoder but need
    its deepstack features concatenated in vLLM's layout (`:2922-2961`); the frames form needs nothing new.

    Returns:
        `{"multi_modal_data": {"video": ([T, H, W, 3] uint8, metadata dict)}, "mm_processor_kwargs": {...}}`.
    """
    from r1video.policies.qwen3_vl import TIMESTAMPS

    video_processor = processor.video_processor
    grid = clip.inputs["video_grid_thw"].reshape(-1, 3)[0].tolist()
    frames = qwen_patches_to_frames(clip.inputs["pixel_values_videos"], grid, video_processor)
    per_patch = video_processor.temporal_patch_size
    seconds = [t for t in clip.inputs[TIMESTAMPS].tolist() for _ in range(per_patch)]
    metadata = {
        "total_num_frames": len(frames),
        "fps": 1.0,
        "frames_indices": seconds,
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
    }
    return {
        "multi_modal_data": {"video": (frames, metadata)},
        "mm_processor_kwargs": {"do_resize": False, "do_sample_frames": False},
    }


QWEN3_VL_DUMMY_TEXT = "<|vision_start|><|video_pad|><|vision_end|>"  # vllm/model_executor/models/qwen3_vl.py:1108-1115


@native_processing_check("qwen3_5")
@native_processing_check("qwen3_vl")
def qwen3_vl_text_only_call(processor) -> str | None:
    """vLLM 0.30's Qwen3-VL processor calls the HF processor twice per uncached video: on the video (what
    [`qwen3_vl_video`] makes exact), then once more on its dummy text `<|vision_start|><|video_pad|><|vision_end|>`
    WITHOUT the video (`Qwen3VLMultiModalProcessor._apply_hf_processor_main`,
    `vllm/model_executor/models/qwen3_vl.py:1340, 1484-1493`; the videos were popped at `:1347`). It does so for every
    request with a video it has not cached and for the dummy video it profiles at start-up
    (`vllm/v1/worker/gpu_model_runner.py:5829-5833`). transformers 5.24 refuses a placeholder without its video
    (`ProcessorMixin.validate_inputs`, `transformers/processing_utils.py:767, 809-821`: "Found 1 <|video_pad|> tokens in
    the text but no videos were passed"). No request form avoids it: the text is vLLM's, and no processor keyword
    skips the check. This makes the call as vLLM makes it, with the request form's keywords.

    Returns:
        The problem in one line, or `None` when the installed transformers accepts the call.
    """
    import transformers

    try:
        processor(
            text=QWEN3_VL_DUMMY_TEXT, do_resize=False, do_sample_frames=False, truncation=False, return_tensors="pt"
        )
    except ValueError as error:
        reason = " ".join(str(error).split())
        return (
            f"vLLM 0.30 cannot process its video with transformers {transformers.__version__}: after each video it "
            f"calls the processor on {QWEN3_VL_DUMMY_TEXT!r} without the video (vllm/model_executor/models/"
            f"qwen3_vl.py:1484-1493, also when profiling at start-up), which transformers refuses ({reason})"
        )
    return None


# ---- weight names --------------------------------------------------------------------------------------------------

# Each native family's HF → vLLM parameter prefixes, as its vLLM model class maps them in `load_weights`, applied in
# order as vLLM's `WeightsMapper._map_name_with_shard` applies them (`vllm/model_executor/models/utils.py:81-125`).
# The engine sends HF names (vLLM maps them, and stacks q/k/v and gate/up itself); the table lets the sync refuse a
# name vLLM would not know before it reaches the engine, and lets the tests check the real state dict against it.
VLLM_WEIGHT_PREFIXES: dict[str, dict[str, str]] = {
    # `Qwen2_5_VLForConditionalGeneration.hf_to_vllm_mapper`, vllm/model_executor/models/qwen2_5_vl.py:1246-1256
    "qwen2_5_vl": {
        "model.language_model.": "language_model.model.",
        "model.visual.": "visual.",
        "lm_head.": "language_model.lm_head.",
        "model.": "language_model.model.",
    },
    # `Qwen3VLForConditionalGeneration.hf_to_vllm_mapper`, vllm/model_executor/models/qwen3_vl.py:1821-1827 (no bare
    # `model.` entry: transformers names every weight `model.visual.*`, `model.language_model.*` or `lm_head.*`);
    # the tower's own mapper stacks only split `attn.q/k/v` (`:556-562`), which transformers' fused `attn.qkv` never
    # sends.
    "qwen3_vl": {
        "model.visual.": "visual.",
        "lm_head.": "language_model.lm_head.",
        "model.language_model.": "language_model.model.",
    },
    # `Qwen3_5ForConditionalGeneration.hf_to_vllm_mapper` = Qwen3-VL's | `{"mtp.": None}`, vllm/model_executor/models/
    # qwen3_5.py:476-479. `mtp.*` (a checkpoint's multi-token-prediction head) is dropped by vLLM and never sent:
    # transformers' model has no such parameters (`Qwen3_5PreTrainedModel` ignores them on load,
    # `modeling_qwen3_5.py:919`). The LM's loader then stacks `in_proj_qkv`/`in_proj_z` and `in_proj_b`/`in_proj_a`
    # itself (`qwen3_5.py:220-228`).
    "qwen3_5": {
        "model.visual.": "visual.",
        "lm_head.": "language_model.lm_head.",
        "model.language_model.": "language_model.model.",
    },
}


def vllm_weight_name(policy_name: str, name: str) -> str | None:
    """The name vLLM's model of family `policy_name` gives the HF parameter `name`; `None` when no table is known.

    Raises:
        ValueError: `name` matches none of the family's prefixes (vLLM would raise "There is no module or parameter
            named ..." mid-sync, `vllm/model_executor/models/utils.py:400-417`).
    """
    prefixes = VLLM_WEIGHT_PREFIXES.get(policy_name)
    if prefixes is None:
        return None
    mapped = name
    for prefix, new in prefixes.items():
        if mapped.startswith(prefix):
            mapped = new + mapped.removeprefix(prefix)
    if mapped == name:
        raise ValueError(
            f"Parameter {name!r} has none of the prefixes vLLM's {policy_name} model loads ({', '.join(prefixes)})"
        )
    return mapped


# Per family, HF module-name prefix → the checkpoint prefix vLLM's loader expects, where the two differ.
VLLM_SENT_NAMES: dict[str, dict[str, str]] = {}


def vllm_sent_name(policy_name: str, name: str) -> str:
    """The name under which the weight sync sends the HF parameter `name` to vLLM's `load_weights`: `name` itself,
    or, for a family whose transformers module names differ from its checkpoints' (the names vLLM's loader is
    written for), the checkpoint's name ([`VLLM_SENT_NAMES`])."""
    for prefix, new in VLLM_SENT_NAMES.get(policy_name, {}).items():
        if name.startswith(prefix):
            return new + name.removeprefix(prefix)
    return name


# ---- LLaVA-OneVision -----------------------------------------------------------------------------------------------


@native_request("llava_onevision")
def llava_onevision_video(processor, clip: Clip) -> dict:
    """LLaVA-OneVision's request form: the clip's frames at the tower's input size, not resized again, not sampled.

    vLLM 0.30 runs LLaVA-OneVision itself (`LlavaOnevisionForConditionalGeneration`, registered under the same
    architecture name, `vllm/model_executor/models/registry.py:505-508`) and takes its video only as frames: the
    model's field table has `pixel_values_videos` and no video embeddings (`llava_onevision.py:318-328`). Each video is
    processed alone, `processor(text="<video>", videos=frames, **mm_processor_kwargs)`, and the first row of its
    `pixel_values_videos` kept (`llava_onevision.py:383-390`, through `call_hf_processor`,
    `vllm/multimodal/processing/context.py:314-343`, which adds `truncation=False` and `return_tensors="pt"`).
    vLLM then replaces the prompt's one `<video>` token by `F * ceil(S/P / 2)² + 1` of them (`get_num_video_tokens`,
    `llava_onevision.py:190-217`, with `F = len(frames)`, `llava_onevision.py:403-443`), which is the HF processor's
    own count (`replace_video_token`) when `num_image_tokens = (S/P)²`.

    - the uint8 frames are recovered from the clip's own pixels ([`unnormalized_frames`]), so the clip needs
      nothing beyond what the policy keeps, and vLLM processes the very pixels the trainer trained on;
    - `do_resize: False`: they are at the tower's size already;
    - `do_sample_frames: False`: every frame is kept (a checkpoint may turn the processor's sampling on).

    Returns:
        `{"multi_modal_data": {"video": [F, S, S, 3] uint8}, "mm_processor_kwargs": {...}}`.
    """
    frames = unnormalized_frames(clip.inputs["pixel_values_videos"], processor.video_processor)
    return {
        "multi_modal_data": {"video": frames},
        "mm_processor_kwargs": {"do_resize": False, "do_sample_frames": False},
    }


# `LlavaOnevisionForConditionalGeneration.hf_to_vllm_mapper`, vllm/model_executor/models/llava_onevision.py:475-484
VLLM_WEIGHT_PREFIXES["llava_onevision"] = {
    "model.language_model.": "language_model.model.",
    "model.vision_tower.": "vision_tower.",
    "model.multi_modal_projector.": "multi_modal_projector.",
    "model.image_newline": "image_newline",
    "lm_head.": "language_model.lm_head.",
}
# transformers 5.24's SigLIP tower has no `vision_model` module (its checkpoints' `vision_tower.vision_model.*` are
# loaded by `PrefixChange(prefix_to_remove="vision_model")`, `conversion_mapping.py:971` via `:89`), but vLLM's
# `SiglipVisionModel` keeps it (`vllm/model_executor/models/siglip.py:821-828`), and its loader has no rule for the
# bare name (`AutoWeightsLoader` would raise "There is no module or parameter named 'vision_tower.embeddings'",
# `vllm/model_executor/models/utils.py:400-417`): the tower is sent under the checkpoint's names.
VLLM_SENT_NAMES["llava_onevision"] = {"model.vision_tower.": "model.vision_tower.vision_model."}

"""The `"native"` vLLM route's request forms: a row's [`Clip`] → what vLLM 0.30 takes as the row's video.

A family whose policy has `vllm_route = "native"` is run by vLLM itself (vLLM ships its model class): the rollout
request carries the prompt's token ids with ONE placeholder token per video (vLLM expands it to the clip's token
count, `vllm/multimodal/processing/processor.py:1600-1637`), the clip under `multi_modal_data={"video": ...}` and the
processor keywords under `mm_processor_kwargs` (`vllm/inputs/llm.py:64-112`, `TokensPrompt`). vLLM then runs the
family's own HF processor on the video (`vllm/multimodal/processing/context.py:314-343`, every keyword passes to a
processor whose `__call__` takes `**kwargs`), its vision encoder, and its M-RoPE / deepstack positions: the rollouts
see what the training forward sees, which prompt embeddings cannot give those families.

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
    if video_processor.do_normalize:
        mean = torch.tensor(video_processor.image_mean, dtype=torch.float64).view(1, -1, 1, 1)
        std = torch.tensor(video_processor.image_std, dtype=torch.float64).view(1, -1, 1, 1)
        frames = frames * std + mean
    if video_processor.do_rescale:
        frames = frames / video_processor.rescale_factor
    return frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


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


def llava_onevision_frames(pixel_values_videos: torch.Tensor, video_processor) -> np.ndarray:
    """Invert `LlavaOnevisionVideoProcessor`'s fused rescale-and-normalize on one clip: its frames back to the uint8
    frames the processor resized them to (transformers 5.24 `video_processing_utils.py`, `_preprocess`: resize, then
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

    - the uint8 frames are recovered from the clip's own pixels ([`llava_onevision_frames`]), so the clip needs
      nothing beyond what the policy keeps, and vLLM processes the very pixels the trainer trained on;
    - `do_resize: False`: they are at the tower's size already;
    - `do_sample_frames: False`: every frame is kept (a checkpoint may turn the processor's sampling on).

    Returns:
        `{"multi_modal_data": {"video": [F, S, S, 3] uint8}, "mm_processor_kwargs": {...}}`.
    """
    frames = llava_onevision_frames(clip.inputs["pixel_values_videos"], processor.video_processor)
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

"""GRPO rollouts through vLLM's own model of the family (CUDA, `use_vllm: true`, colocate mode): the `"native"` route.

The route of a family whose policy has `vllm_route == "native"` (Qwen2.5-VL, LLaVA-OneVision, Qwen3-VL, Qwen3.5: the
families vLLM ships a model class for): vLLM runs the whole multimodal model. Each rollout request is a vLLM
`TokensPrompt` (`vllm/inputs/llm.py:64-123`): the prompt ids with one placeholder token per video
([`VideoPolicy.vllm_prompt_ids`]), and the row's clip as `multi_modal_data={"video": ...}` plus `mm_processor_kwargs`
in the family's request form
([`VideoPolicy.vllm_video`], `r1video.policies.vllm_video`). vLLM computes the M-RoPE (and deepstack) positions
itself, which spliced prompt embeddings cannot carry.

vLLM caches multimodal work across requests by content hash (vLLM PR#22711): the processed inputs (`mm` cache) and the
vision encoder's outputs (`encoder` cache). The same clip comes back in later steps, and after a weight sync the
cached encoder output is the old encoder's; so every weight sync ends by clearing both caches (as verl PR#6522):
`LLMEngine.reset_encoder_cache()` (`vllm/v1/engine/llm_engine.py:364-370` → `EngineCore.reset_encoder_cache`,
`vllm/v1/engine/core.py:799-817`: the scheduler's encoder-cache manager and the GPU runner's cache) and
`LLM.reset_mm_cache()` (`vllm/entrypoints/llm.py:407-409`), after TRL's `LLM.reset_prefix_cache()`
(`vllm/entrypoints/llm.py:796-801`, the prompts' KV blocks).

The pieces, each testable without vLLM:

- [`export_multimodal_model`]: the directory vLLM loads (config, the trainer's processor, generation config; no weights).
- [`build_video_requests`]: one request per row, rows of one clip sharing its video object.
- [`NativeVideoVLLMGeneration`]: the engine on that directory, weight sync under HF names (LLaVA-OneVision's tower
  under its checkpoints' names; each checked against the family's vLLM names) followed by the cache resets, and `generate_videos`.

`vllm` is imported only when the engine is built or sampling parameters are made, so CPU machines never import it.
"""

import os
from collections.abc import Sequence

import torch
from transformers import GenerationConfig

from r1video.policies.base import Clip
from r1video.policies.vllm_video import native_processing_problem, vllm_sent_name, vllm_weight_name
from r1video.trainer.vllm_rollouts import ColocateVLLMGeneration


def export_multimodal_model(
    model, processor, output_dir: str | os.PathLike, eos_token_ids: Sequence[int], dtype: torch.dtype = torch.bfloat16
) -> str:
    """Write what vLLM needs to build the family's model, without weights: the config (with `architectures`, which
    vLLM resolves its model class by), the trainer's processor (so vLLM's processor call sizes the clips as the
    trainer's did) and `generation_config.json` with the EOS ids.

    Returns:
        `output_dir` as a string.
    """
    output_dir = str(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    config = model.config.__class__.from_dict(model.config.to_dict())
    config.architectures = [type(model).__name__]
    config.dtype = dtype
    config.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    GenerationConfig(eos_token_id=list(eos_token_ids)).save_pretrained(output_dir)
    return output_dir


def build_video_requests(policy, processor, prompt_ids: list[list[int]], clips: Sequence[Clip | None]) -> list[dict]:
    """One vLLM `TokensPrompt` per row: the row's ids with its video's expansion collapsed to the one placeholder
    token vLLM expands itself ([`VideoPolicy.vllm_prompt_ids`]), and its clip in the family's request form
    (computed once per distinct clip; rows of one clip share the object).

    Args:
        policy ([`VideoPolicy`]): the family (`vllm_video`, `vllm_prompt_ids`, `video_token_ids`).
        processor: the family's processor.
        prompt_ids (`list[list[int]]`): unpadded prompt ids, placeholders expanded (`policy.tokenize_prompts`).
        clips: the row's clip, `None` for a text-only row.

    Raises:
        ValueError: a row's prompt cannot be collapsed, or its collapsed prompt holds a number of placeholders other
            than 1 (with a clip) or 0 (without); names the row.
    """
    if len(prompt_ids) != len(clips):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(clips)} clips (one per row, None for a text-only row)")
    placeholder_ids = set(policy.video_token_ids(processor))
    videos: dict[int, dict] = {}
    requests = []
    for row, (ids, clip) in enumerate(zip(prompt_ids, clips, strict=True)):
        try:
            ids = policy.vllm_prompt_ids(processor, list(ids), clip)
        except ValueError as error:
            raise ValueError(f"row {row}: {error}") from None
        found, expected = sum(token in placeholder_ids for token in ids), int(clip is not None)
        if found != expected:
            raise ValueError(
                f"row {row}: the prompt holds {found} video placeholder runs but the row has {expected} clip(s)"
            )
        request = {"prompt_token_ids": ids}
        if clip is not None:
            if id(clip) not in videos:
                videos[id(clip)] = policy.vllm_video(processor, clip)
            request.update(videos[id(clip)])
        requests.append(request)
    return requests


class NativeVideoVLLMGeneration(ColocateVLLMGeneration):
    """The `"native"` route's engine: [`ColocateVLLMGeneration`] on the family's own vLLM model.

    On top of the shared class: the engine loads [`export_multimodal_model`]'s directory (one video per prompt, no
    images); weight sync sends every parameter under its HF name (`vllm_sent_name`: LLaVA-OneVision's tower under its
    checkpoints' names), which the family's vLLM `load_weights` maps
    (e.g. `vllm/model_executor/models/qwen2_5_vl.py:2040-2042`), each checked first against the family's table in
    `r1video.policies.vllm_video`; every sync ends with [`reset_multimodal_caches`]; [`generate_videos`] samples
    from [`build_video_requests`]' requests.

    Args:
        policy_name (`str`): the family's policy name (its weight-name table).
        **kwargs: as [`ColocateVLLMGeneration`].
    """

    def __init__(self, *, policy_name: str, **kwargs):
        self.policy_name = policy_name
        super().__init__(**kwargs)

    @classmethod
    def from_trainer(cls, trainer) -> "NativeVideoVLLMGeneration":
        return super().from_trainer(trainer, policy_name=trainer.policy.name)

    def _make_llm(self, model_dir: str):
        """`vllm.LLM` on the exported directory, once the family's processing check passes (at trainer start-up).

        Raises:
            NotImplementedError: vLLM 0.30 cannot process the family's video with the installed transformers
                (`r1video.policies.vllm_video.native_processing_problem`; Qwen3-VL and Qwen3.5 with transformers
                5.24); one line, naming the cause.
        """
        problem = native_processing_problem(self.policy_name, self.processing_class)
        if problem is not None:
            raise NotImplementedError(
                f"use_vllm is not supported for {self.policy_name} models here: {problem}; set use_vllm: false "
                "(HF generate) or see docs/vllm.md"
            )
        return super()._make_llm(model_dir)

    def _export_engine_model(self) -> None:
        export_multimodal_model(
            self.accelerator.unwrap_model(self.model),
            self.processing_class,
            self.export_dir,
            self.eos_token_ids,
            dtype=self.dtype,
        )

    def _llm_kwargs(self, model_dir: str) -> dict:
        """TRL's colocate settings on the exported directory; one video and no image per prompt
        (`limit_mm_per_prompt`, `vllm/engine/arg_utils.py:587`), which also sizes vLLM's encoder profiling."""
        return {**super()._llm_kwargs(model_dir), "limit_mm_per_prompt": {"image": 0, "video": 1}}

    # ---- weight sync ----

    def _iter_named_params(self):
        # TRL's iteration (gathers, PEFT merge, wrapper prefixes); the vision tower is sent too, since vLLM runs it,
        # under the name vLLM's loader expects (LLaVA-OneVision's tower: its checkpoints' names).
        for name, param in super()._iter_named_params():
            sent = vllm_sent_name(self.policy_name, name)
            vllm_weight_name(self.policy_name, sent)  # raises on a name vLLM's model would not load
            yield sent, param

    def sync_weights(self):
        """TRL's weight sync (which ends with `reset_prefix_cache`), then [`reset_multimodal_caches`]."""
        super().sync_weights()
        self.reset_multimodal_caches()

    def reset_multimodal_caches(self) -> None:
        """Forget every cached vision-encoder output and processed input: after a weight sync they are the old
        weights' (vLLM PR#22711 caches them by content hash across requests; verl PR#6522 clears them likewise)."""
        self.llm.llm_engine.reset_encoder_cache()  # vllm/v1/engine/llm_engine.py:364-370
        self.llm.reset_mm_cache()  # vllm/entrypoints/llm.py:407-409

    # ---- generation ----

    def generate_videos(self, requests: list[dict], profiler=None) -> tuple[list[list[int]], list[list[float]] | None]:
        """Sample one completion per request from [`build_video_requests`].

        Returns:
            `(completion_ids, logprobs)` as `completions_from_outputs`, one entry per row.
        """
        return self._generate_requests(requests, profiler=profiler)

"""GRPO rollouts through vLLM with prompt embeddings (CUDA, `use_vllm: true`, colocate mode).

The route of a family whose policy has `vllm_route == "prompt_embeds"` (TinyLLaVA-Video): vLLM never sees the
multimodal model. The trainer splices the video embeddings into each prompt's token embeddings (the policy's
`embed_prompts`) and hands vLLM one `(prompt_len, hidden)` tensor per prompt; vLLM runs only the stock causal LM
(`Qwen2ForCausalLM` for TinyLLaVA-Video-R1), exported once from `model.language_model` (transformers' multimodal
layout: `model.language_model.*` + `lm_head`, everything else vision). After each optimizer step the language-model
weights are pushed into vLLM under their stock names.

The pieces, each testable without vLLM:

- [`export_language_model`]: the directory vLLM loads (config, tokenizer, generation config; weights optional, since
  the first weight sync happens before the first generation).
- [`vllm_weight_name`]: the policy's parameter names → stock LM names (`None` for vision tower and connector).
- [`build_prompt_embeds`]: one detached CPU tensor per distinct prompt, the same object for its duplicates.
- [`completions_from_outputs`]: vLLM `RequestOutput`s → `(completion_ids, logprobs)` as the trainer uses them.
- [`ColocateVLLMGeneration`]: TRL's `VLLMGeneration` in colocate mode on a directory r1video exports, with TRL's
  sampling mapping; the part both routes share (the `"native"` route's class is in `r1video.trainer.vllm_native`).
- [`PromptEmbedsVLLMGeneration`]: the engine built on the exported language model (`enable_prompt_embeds=True`),
  renamed weight sync, and `generate_embeds`.

`vllm` is imported only when the engine is built or sampling parameters are made, so CPU machines never import it.
"""

import copy
import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import torch
from accelerate.utils import DistributedType, is_peft_model
from safetensors.torch import save_file
from transformers import GenerationConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from trl.generation.vllm_generation import VLLMGeneration, extract_logprobs
from trl.import_utils import is_vllm_available
from trl.trainer.utils import ensure_master_addr_port

_LM_PREFIX = "model.language_model."
_EXCLUDED_PREFIXES = ("model.vision_tower.", "model.connector.")  # the vision path of the prompt-embeds families
# vLLM clamps logit biases to [-100, 100]; -100 makes a token's probability ~e^-100 relative to the others.
_BANNED_TOKEN_BIAS = -100.0

SERVER_MODE_UNSUPPORTED = (
    "vllm_mode='server' is not supported with video prompts yet: the rollouts need prompt embeddings, and TRL's "
    "VLLMClient can only send token ids (its image route, /inference/v1/generate, does not accept embeddings). "
    "Missing pieces: a client call that POSTs base64 `torch.save` tensors to /v1/completions `prompt_embeds` "
    "(n=num_generations, logprobs=0, return_token_ids), a server started on the exported language model with "
    "--enable-prompt-embeds, and a barrier after each weight sync so no rank generates before the server has "
    "finished loading. Use vllm_mode='colocate'."
)

FSDP_UNSUPPORTED = (
    "use_vllm is not supported with FSDP yet: the prompt embeddings for vLLM are computed outside the model's "
    "forward (the token-embedding lookup, and the vision tower when reuse_vision is off), where FSDP keeps those "
    "weights sharded. Use DDP or DeepSpeed ZeRO-2/3 with use_vllm, or FSDP with use_vllm: false (HF generate)."
)


# ---- export -------------------------------------------------------------------------------------------------------


def causal_lm_architecture(text_config) -> str:
    """The stock transformers/vLLM class name for the language model, e.g. `"Qwen2ForCausalLM"`."""
    try:
        return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[text_config.model_type]
    except KeyError:
        raise ValueError(
            f"No causal-LM class is registered for language model type {text_config.model_type!r}"
        ) from None


def vllm_weight_name(name: str, tie_word_embeddings: bool) -> str | None:
    """The stock causal-LM name of a policy parameter, or `None` if vLLM's model does not have it.

    `model.language_model.X` → `model.X`; `lm_head.*` stays as it is when the head is untied and is dropped when it
    is tied (vLLM raises on a tied `lm_head.weight` sent without `model.embed_tokens.weight`, and syncing the
    embeddings updates the head). Vision tower and connector are dropped.

    Args:
        name (`str`): a name from the policy's `named_parameters()` (after TRL strips PEFT and wrapper prefixes).
        tie_word_embeddings (`bool`): whether `lm_head` shares the input embeddings.

    Raises:
        ValueError: for a name that belongs to none of the policy's parts (vLLM would raise on it mid-sync).
    """
    if name.startswith(_LM_PREFIX):
        return "model." + name.removeprefix(_LM_PREFIX)
    if name.startswith("lm_head."):
        return None if tie_word_embeddings else name
    if name.startswith(_EXCLUDED_PREFIXES):
        return None
    raise ValueError(f"Parameter {name!r} is not part of the language model, the vision tower or the connector")


def export_language_model(
    model,
    tokenizer,
    output_dir: str | os.PathLike,
    eos_token_ids: Sequence[int],
    dtype: torch.dtype = torch.bfloat16,
    save_weights: bool = False,
) -> str:
    """Write the policy's language model as a stock causal-LM checkpoint directory that vLLM can load.

    Args:
        model: the (unwrapped) policy model, with the language model at `model.language_model`.
        tokenizer: the LLM tokenizer (the processor's, with the video placeholder token).
        output_dir: where to write `config.json`, `generation_config.json` and the tokenizer files.
        eos_token_ids (`Sequence[int]`): the ids that end a completion (the trainer's `eos_token_ids`); vLLM reads
            them from `generation_config.json`.
        dtype (`torch.dtype`, defaults to `torch.bfloat16`): the dtype vLLM runs the model in.
        save_weights (`bool`, defaults to `False`): also write `model.safetensors` under the stock names. Not needed
            for training (the engine starts from dummy weights and the first sync fills them).

    Returns:
        `output_dir` as a string.
    """
    output_dir = str(output_dir)
    config = copy.deepcopy(model.config.text_config)
    config.architectures = [causal_lm_architecture(config)]
    # The trainer's embedding matrix may have more rows than the tokenizer has tokens (padding, added tokens).
    config.vocab_size = model.get_input_embeddings().num_embeddings
    config.tie_word_embeddings = bool(model.config.tie_word_embeddings)
    config.eos_token_id = eos_token_ids[0]
    config.pad_token_id = tokenizer.pad_token_id
    config.dtype = dtype
    config.save_pretrained(output_dir)
    generation_config = GenerationConfig(
        eos_token_id=list(eos_token_ids), pad_token_id=tokenizer.pad_token_id, bos_token_id=config.bos_token_id
    )
    generation_config.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    if save_weights:
        state_dict = {}
        for name, param in model.named_parameters():
            lm_name = vllm_weight_name(name, config.tie_word_embeddings)
            if lm_name is not None:
                state_dict[lm_name] = param.detach().to("cpu", dtype).contiguous()
        save_file(state_dict, os.path.join(output_dir, "model.safetensors"), metadata={"format": "pt"})
    return output_dir


def vllm_export_dir(output_dir: str | os.PathLike, process_index: int) -> str:
    """Where process `process_index` exports the language model for vLLM: `<output_dir>/vllm_lm/process-<index>`.

    The path is the same on every start of a run, because vLLM keys its compile cache on it (a new temporary directory
    per start recompiles every time). One directory per process: ranks never write a file another rank is reading,
    whether or not `output_dir` is shared between nodes.
    """
    return os.path.join(str(output_dir), "vllm_lm", f"process-{process_index}")


# ---- prompts in, completions out ----------------------------------------------------------------------------------


def build_prompt_embeds(
    policy,
    model,
    prompt_ids: list[list[int]],
    row_videos: Sequence[int],
    video_inputs: Callable[[torch.LongTensor], dict],
    pad_token_id: int,
    dtype: torch.dtype,
) -> list[torch.Tensor]:
    """Spliced prompt embeddings for vLLM: one tensor per distinct prompt, shared by its duplicates.

    Args:
        policy ([`VideoPolicy`]): the model family; its `embed_prompts` splices the video embeddings over the
            placeholders.
        model: the (unwrapped) policy model.
        prompt_ids (`list[list[int]]`): one token-id list per row (placeholders expanded), duplicates included.
        row_videos (`Sequence[int]`): the distinct-video index of each row, `-1` for a text-only row.
        video_inputs (`Callable`): `(distinct-video indices [rows], input_ids [rows, L]) -> ` the model keyword
            arguments that give those rows their videos (the trainer's `_video_inputs_fn`).
        pad_token_id (`int`): id used to right-pad the distinct prompts into one batch (padding is cut off again).
        dtype (`torch.dtype`): the vLLM model dtype.

    Returns:
        `list[torch.Tensor]`, one per row: detached, on CPU, `dtype`, shape `(len(prompt_ids[row]), hidden_size)`.
        Rows with the same prompt ids and video get the same tensor object (vLLM hashes the bytes for prefix caching;
        the same object costs one CPU copy).
    """
    keys = [(tuple(ids), int(video)) for ids, video in zip(prompt_ids, row_videos, strict=True)]
    first_row = {}
    for row, key in enumerate(keys):
        first_row.setdefault(key, row)
    rows = list(first_row.values())
    device = model.get_input_embeddings().weight.device
    lengths = [len(prompt_ids[row]) for row in rows]
    input_ids = torch.full((len(rows), max(lengths)), pad_token_id, dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : lengths[i]] = torch.tensor(prompt_ids[row])
    videos = torch.tensor([int(row_videos[row]) for row in rows], dtype=torch.long, device=device)
    with torch.no_grad():
        input_ids = input_ids.to(device)
        embeds = policy.embed_prompts(model, input_ids, **video_inputs(videos, input_ids))  # [distinct, L, hidden]
    distinct = [embeds[i, :length].detach().to("cpu", dtype).clone() for i, length in enumerate(lengths)]
    by_key = dict(zip(first_row, distinct, strict=True))
    return [by_key[key] for key in keys]


def completions_from_outputs(
    outputs, eos_token_ids: Sequence[int]
) -> tuple[list[list[int]], list[list[float]] | None]:
    """vLLM `RequestOutput`s → the trainer's `(completion_ids, logprobs)`.

    Each completion is cut after its first EOS (vLLM stops there already; the cut guards against stop settings in
    `generation_kwargs`), and its log-probs with it. Log-probs are those of the sampled tokens (`logprobs=0`).

    Returns:
        `completion_ids` (`list[list[int]]`, one per sequence, prompt-major) and `logprobs` (`list[list[float | None]]`
        of the same lengths), or `None` for `logprobs` when vLLM returned none.
    """
    eos = set(eos_token_ids)
    completion_ids = [list(completion.token_ids) for output in outputs for completion in output.outputs]
    top_logprobs, _ = extract_logprobs(outputs)  # [sequence][token][rank], rank 0 first
    logprobs = None if top_logprobs is None else [[token[0] for token in seq] for seq in top_logprobs]
    for i, ids in enumerate(completion_ids):
        end = next((t + 1 for t, token in enumerate(ids) if token in eos), len(ids))
        completion_ids[i] = ids[:end]
        if logprobs is not None:
            logprobs[i] = logprobs[i][:end]
    return completion_ids, logprobs


# ---- engine -------------------------------------------------------------------------------------------------------


class ColocateVLLMGeneration(VLLMGeneration):
    """TRL's [`trl.generation.vllm_generation.VLLMGeneration`] in colocate mode with the engine on a directory r1video
    writes, the shared part of the two routes (`PromptEmbedsVLLMGeneration`, `NativeVideoVLLMGeneration` in
    `r1video.trainer.vllm_native`).

    Changes to TRL's class: the engine loads what [`_export_engine_model`] writes (dummy weights: the first weight sync,
    before the first generation, fills them); requests are built by the trainer and sampled by [`_generate_requests`]
    with TRL's sampling mapping plus r1video's additions ([`sampling_kwargs`]). Weight sync (ZeRO-3 gathers, FSDP,
    PEFT merge) and sleep mode are TRL's.

    Args:
        export_dir (`str`): where the engine's model directory is written ([`vllm_export_dir`]: a stable path,
            since vLLM's compile cache is keyed on it).
        eos_token_ids (`list[int]`): ids that end a completion.
        banned_token_ids (`list[int]`, *optional*): ids never sampled (the video placeholder, whose embedding the
            training forward would replace).
        dtype (`torch.dtype`, defaults to `torch.bfloat16`): the dtype vLLM runs the model in.
        **kwargs: as [`trl.generation.vllm_generation.VLLMGeneration`].

    Raises:
        NotImplementedError: under FSDP ([`FSDP_UNSUPPORTED`]) or in server mode ([`SERVER_MODE_UNSUPPORTED`]).
    """

    def __init__(
        self,
        *,
        export_dir: str | os.PathLike,
        eos_token_ids: list[int],
        banned_token_ids: list[int] | None = None,
        dtype: torch.dtype = torch.bfloat16,
        **kwargs,
    ):
        if kwargs["accelerator"].distributed_type == DistributedType.FSDP:
            raise NotImplementedError(FSDP_UNSUPPORTED)
        self.export_dir = str(export_dir)
        self.eos_token_ids = list(eos_token_ids)
        self.banned_token_ids = list(banned_token_ids or [])
        self.dtype = dtype
        unwrapped = kwargs["accelerator"].unwrap_model(kwargs["model"])
        self.tie_word_embeddings = bool(unwrapped.config.tie_word_embeddings)
        self.hidden_size = unwrapped.config.text_config.hidden_size
        super().__init__(**kwargs)  # builds the engine (`_init_vllm`) last

    @classmethod
    def from_trainer(cls, trainer, **kwargs) -> "ColocateVLLMGeneration":
        """The engine for a [`VideoGRPOTrainer`], configured from its `args` as TRL configures its own; `kwargs` go
        to the class as they are."""
        args = trainer.args
        return cls(
            export_dir=vllm_export_dir(args.output_dir, trainer.accelerator.process_index),
            model=trainer.model,
            accelerator=trainer.accelerator,
            processing_class=trainer.processing_class,
            mode=args.vllm_mode,
            structured_outputs_regex=args.vllm_structured_outputs_regex,
            tensor_parallel_size=args.vllm_tensor_parallel_size,
            gpu_memory_utilization=args.vllm_gpu_memory_utilization,
            max_model_length=args.vllm_max_model_length,
            max_num_seqs=args.per_device_train_batch_size * args.vllm_tensor_parallel_size * args.steps_per_generation,
            enable_sleep_mode=args.vllm_enable_sleep_mode,
            model_impl=args.vllm_model_impl,
            trust_remote_code=args.trust_remote_code,
            repetition_penalty=args.repetition_penalty,
            temperature=args.temperature,
            top_p=args.top_p,
            top_k=args.top_k,
            min_p=args.min_p,
            max_completion_length=args.max_completion_length,
            logprobs=0,  # the sampled tokens' log-probs, for the importance-sampling correction
            generation_kwargs=args.generation_kwargs,
            eos_token_ids=trainer.eos_token_ids,
            banned_token_ids=trainer.policy.video_token_ids(trainer.processing_class),
            dtype=torch.float16 if args.fp16 else torch.bfloat16,
            **kwargs,
        )

    # ---- engine construction ----

    def _llm_kwargs(self, lm_dir: str) -> dict:
        """`vllm.LLM` arguments: TRL's colocate settings (`trl/generation/vllm_generation.py:347-364`), on the
        exported directory `lm_dir`."""
        return dict(
            model=lm_dir,
            load_format="dummy",  # the first weight sync (before the first generation) fills the weights
            dtype=str(self.dtype).removeprefix("torch."),
            tensor_parallel_size=self.tensor_parallel_size,
            gpu_memory_utilization=self.gpu_memory_utilization,
            max_model_len=self.max_model_length,
            max_num_seqs=self.max_num_seqs,
            enable_sleep_mode=self.enable_sleep_mode,
            model_impl=self.model_impl,
            distributed_executor_backend="external_launcher",
            seed=self.accelerator.process_index // self.tensor_parallel_size,  # same sampling within a TP group
            max_num_batched_tokens=4096,
            logprobs_mode="processed_logprobs",  # log-probs after temperature and logit processing, as TRL
            trust_remote_code=self.trust_remote_code,
        )

    def _init_vllm(self):
        if self.mode != "colocate":
            raise NotImplementedError(SERVER_MODE_UNSUPPORTED)
        accelerator = self.accelerator
        tp = self.tensor_parallel_size
        if accelerator.num_processes % tp != 0:
            raise ValueError(
                f"tensor_parallel_size ({tp}) must divide world size ({accelerator.num_processes}) evenly."
            )
        if tp > 1:
            self.tp_group, _ = torch.distributed.new_subgroups_by_enumeration(
                [list(range(i * tp, (i + 1) * tp)) for i in range(accelerator.num_processes // tp)]
            )
        os.environ["RANK"] = str(accelerator.process_index)
        os.environ["LOCAL_RANK"] = str(accelerator.local_process_index)
        os.environ["WORLD_SIZE"] = str(accelerator.num_processes)
        ensure_master_addr_port()

        # Each process exports its own copy (a few MB without weights): no shared filesystem or ordering needed.
        self._export_engine_model()
        self.llm = self._make_llm(self.export_dir)
        if self.enable_sleep_mode:
            self.llm.sleep(level=2)
        self._llm_weights_sleeping = self.enable_sleep_mode  # level 2 drops the weights: generate re-pushes them
        accelerator.wait_for_everyone()

    def _make_llm(self, lm_dir: str):
        """The `vllm.LLM` engine on the exported directory `lm_dir`."""
        if not is_vllm_available():
            raise ImportError(
                "use_vllm needs vLLM, which runs on CUDA only: pip install -e '.[vllm]' from the clone on a GPU machine "
                "(supported versions: docs/vllm.md), or set use_vllm to false."
            )
        from vllm import LLM

        return LLM(**self._llm_kwargs(lm_dir))

    def _export_engine_model(self) -> None:
        """Write the directory the engine loads to `self.export_dir`."""
        raise NotImplementedError

    # ---- generation ----

    def sampling_kwargs(self) -> dict:
        """`vllm.SamplingParams` keyword arguments: TRL's colocate mapping (one sequence per row, the sampled token's
        log-prob), with `generation_kwargs` on top and the banned ids kept banned.

        vLLM does not detokenize (the trainer decodes the ids itself) unless `generation_kwargs` has `stop` strings,
        which vLLM matches on the detokenized text only (`SamplingParams` raises on `stop` with `detokenize=False`).
        A stop string ends the completion at the token that completes it; the ids up to there are kept.

        Raises:
            ValueError: `generation_kwargs` sets `stop` strings and `detokenize: false` together.
        """
        kwargs = {
            "n": 1,  # rows already hold each prompt num_generations times
            "repetition_penalty": self.repetition_penalty,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": 0.0 if self.min_p is None else self.min_p,
            "max_tokens": self.max_completion_length,
            "logprobs": self.logprobs,
            "detokenize": False,
        }
        kwargs.update(self.generation_kwargs)
        if kwargs.get("stop"):
            if self.generation_kwargs.get("detokenize") is False:
                raise ValueError(
                    f"generation_kwargs sets stop={kwargs['stop']!r} and detokenize=False: vLLM matches stop strings "
                    "on detokenized text only. Drop detokenize (r1video turns it on for stop strings), or give the "
                    "stop tokens as stop_token_ids."
                )
            kwargs["detokenize"] = True
        if self.banned_token_ids:
            kwargs["logit_bias"] = {
                **(kwargs.get("logit_bias") or {}),
                **dict.fromkeys(self.banned_token_ids, _BANNED_TOKEN_BIAS),
            }
        if self.structured_outputs_regex is not None:
            kwargs["structured_outputs"] = {"regex": self.structured_outputs_regex}
        return kwargs

    def _sampling_params(self):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        kwargs = self.sampling_kwargs()
        if isinstance(kwargs.get("structured_outputs"), dict):
            kwargs["structured_outputs"] = StructuredOutputsParams(**kwargs["structured_outputs"])
        return SamplingParams(**kwargs)

    def _generate_requests(
        self, requests: list[dict], profiler=None
    ) -> tuple[list[list[int]], list[list[float]] | None]:
        """Sample one completion per vLLM request (a prompt dict of `vllm/inputs/llm.py`: `TokensPrompt` or
        `EmbedsPrompt`), with TRL's colocate handling of sleep mode and tensor parallelism
        (`trl/generation/vllm_generation.py:588-589, 688-752`).

        Returns:
            `(completion_ids, logprobs)` as [`completions_from_outputs`], one entry per request.
        """
        if self.enable_sleep_mode and self._llm_weights_sleeping:
            self.sync_weights()
        sampling_params = self._sampling_params()

        mine = slice(0, len(requests))
        if self.tensor_parallel_size > 1:
            # Every rank of a TP group runs the group's prompts; each keeps its own share of the outputs.
            gathered = [None] * self.tensor_parallel_size
            torch.distributed.all_gather_object(gathered, requests, group=self.tp_group)
            start = sum(len(rank_requests) for rank_requests in gathered[: torch.distributed.get_rank(self.tp_group)])
            mine = slice(start, start + len(requests))
            requests = [request for rank_requests in gathered for request in rank_requests]

        if self.enable_sleep_mode:
            self.llm.wake_up(tags=["kv_cache"])
        if is_peft_model(self.model) and self.tensor_parallel_size > 1:
            # As TRL (trl#3671): with PEFT the gradient all-reduce is tiny and finishes fast, and on GPUs without
            # NVLink vLLM's tensor-parallel NCCL calls can then race NCCL's channel cleanup and hang. A barrier on the
            # default group drains NCCL first; device_ids keeps NCCL from guessing the device.
            torch.distributed.barrier(device_ids=[self.accelerator.local_process_index])
        with profiler or nullcontext():
            outputs = self.llm.generate(requests, sampling_params=sampling_params, use_tqdm=False)
        completion_ids, logprobs = completions_from_outputs(outputs, self.eos_token_ids)
        completion_ids = completion_ids[mine]
        logprobs = None if logprobs is None else logprobs[mine]
        if self.enable_sleep_mode:
            self.llm.sleep(level=2)
            self._llm_weights_sleeping = True
        return completion_ids, logprobs


class PromptEmbedsVLLMGeneration(ColocateVLLMGeneration):
    """The `"prompt_embeds"` route: vLLM runs only the exported language model on spliced prompt embeddings.

    On top of [`ColocateVLLMGeneration`]: the engine loads the exported language model with
    `enable_prompt_embeds=True`; weight sync sends only the language model under stock names; [`generate_embeds`]
    samples from the embeddings.
    """

    def _export_engine_model(self) -> None:
        export_language_model(
            self.accelerator.unwrap_model(self.model),
            self.processing_class.tokenizer,
            self.export_dir,
            self.eos_token_ids,
            dtype=self.dtype,
        )

    def _llm_kwargs(self, lm_dir: str) -> dict:
        """`vllm.LLM` arguments: TRL's colocate settings, on the exported directory, with prompt embeddings on."""
        return {**super()._llm_kwargs(lm_dir), "enable_prompt_embeds": True}

    # ---- weight sync ----

    def _iter_named_params(self):
        # TRL's iteration (gathers, PEFT merge, wrapper prefixes) under the stock language-model names. Every
        # parameter is still walked, since gathering is collective; the vision tower and connector are not sent.
        for name, param in super()._iter_named_params():
            lm_name = vllm_weight_name(name, self.tie_word_embeddings)
            if lm_name is not None:
                yield lm_name, param

    # ---- generation ----

    def generate_embeds(
        self, prompt_embeds: list[torch.Tensor], profiler=None
    ) -> tuple[list[list[int]], list[list[float]] | None]:
        """Sample one completion per row from prompt embeddings.

        Args:
            prompt_embeds (`list[torch.Tensor]`): one `(prompt_len, hidden_size)` CPU tensor per row, from
                [`build_prompt_embeds`] (duplicates share one object).
            profiler: optional context manager around the engine call.

        Returns:
            `(completion_ids, logprobs)` as [`completions_from_outputs`], one entry per row.
        """
        for embeds in prompt_embeds:
            # Offline vLLM does not check the width; a wrong one reads the wrong memory without an error.
            if embeds.dim() != 2 or embeds.shape[1] != self.hidden_size:
                raise ValueError(
                    f"prompt embeddings must be (prompt_len, {self.hidden_size}), got {tuple(embeds.shape)}"
                )
        return self._generate_requests([{"prompt_embeds": embeds} for embeds in prompt_embeds], profiler=profiler)

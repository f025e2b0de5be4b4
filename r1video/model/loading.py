"""Load a TinyLLaVA-Video checkpoint (ours or a released one) with a processor that matches it."""

import json
import os
import re

import torch
from safetensors.torch import load_file

from r1video.model.modeling import TinyLlavaVideoForConditionalGeneration
from r1video.model.processing import TinyLlavaVideoProcessor


def load_pretrained(
    path: str, dtype: torch.dtype | str = torch.float32, attn_implementation: str | None = None, **kwargs
) -> tuple[TinyLlavaVideoForConditionalGeneration, TinyLlavaVideoProcessor]:
    """Load model and processor from a checkpoint directory (or Hub id), offline when the files are local.

    A released checkpoint has no placeholder token id in its config (the original spliced at a sentinel -200):
    the processor adds `<image>` to the tokenizer if needed, and the model takes that id, growing its embeddings only
    if the id falls outside them (Qwen2.5's embedding matrix has spare rows, so it does not).

    Args:
        path: checkpoint directory or Hub id.
        dtype: weight dtype (`torch.float32` by default, as the original evaluation; `"auto"` keeps the saved dtype).
        attn_implementation: `"sdpa"` (default), `"eager"`, or `"flash_attention_2"` where installed.
        **kwargs: passed to `from_pretrained` of both (e.g. `revision`, `local_files_only`).
    """
    processor = TinyLlavaVideoProcessor.from_pretrained(path, **kwargs)
    model = TinyLlavaVideoForConditionalGeneration.from_pretrained(
        path, dtype=dtype, attn_implementation=attn_implementation, **kwargs
    )
    # Save in the released layout, however the model was loaded. transformers reverses on save the key-renaming rules
    # recorded at load time; under DeepSpeed ZeRO-3 it records every candidate rule (used or not), which would write
    # doubled prefixes (`language_model.model.model.*`). Record exactly the released-name rules instead.
    from r1video.model.registration import released_key_renames

    model._weight_conversions = released_key_renames()
    token_id = processor.image_token_id
    if model.config.image_token_id != token_id:
        if token_id >= model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(processor.tokenizer))
        model.config.image_token_id = token_id
    eos_id = processor.tokenizer.eos_token_id
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = processor.tokenizer.pad_token_id or eos_id
    return model, processor


def module_key(released_key: str) -> str:
    """A released checkpoint key (`language_model.model.layers.0...`) -> this model's parameter name."""
    from r1video.model.registration import RELEASED_KEY_PATTERNS

    for pattern, replacement in RELEASED_KEY_PATTERNS:
        if re.match(pattern, released_key):
            return re.sub(pattern, replacement, released_key, count=1)
    return released_key


def load_checkpoint_weights(model: TinyLlavaVideoForConditionalGeneration, checkpoint_dir: str | os.PathLike) -> None:
    """Load the safetensors weights of a checkpoint directory (released layout) into an existing model, in place.

    For resuming a run: the model keeps its identity (optimizer and wrappers point at its parameters). Every parameter
    must be found, except tied ones the checkpoint stores once; anything else is an error, never a silent skip.
    """
    checkpoint_dir = str(checkpoint_dir)
    index_file = os.path.join(checkpoint_dir, "model.safetensors.index.json")
    if os.path.exists(index_file):
        with open(index_file) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    state_dict = {}
    for shard in shards:
        for key, tensor in load_file(os.path.join(checkpoint_dir, shard), device="cpu").items():
            state_dict[module_key(key)] = tensor
    result = model.load_state_dict(state_dict, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or {}) if model.config.tie_word_embeddings else set()
    missing = set(result.missing_keys) - tied
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{checkpoint_dir} does not match the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(result.unexpected_keys)[:5]}"
        )

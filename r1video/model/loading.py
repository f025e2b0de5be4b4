"""Load a TinyLLaVA-Video checkpoint (ours or a released one) with a processor that matches it."""

import torch

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
    token_id = processor.image_token_id
    if model.config.image_token_id != token_id:
        if token_id >= model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(processor.tokenizer))
        model.config.image_token_id = token_id
    eos_id = processor.tokenizer.eos_token_id
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = processor.tokenizer.pad_token_id or eos_id
    return model, processor

"""What the tiny builders of the transformers families share: a byte-level BPE trained in memory on prompt words,
the `text_*` / `vision_*` config
overrides, and the finishing of a random model (generation stops, save).

The families' own modules keep what differs: special tokens, eos / pad, chat template, config and processor.
"""

import os

from r1video.model.templates import OPTION_INSTRUCTION, REASON_INSTRUCTION

# The prompts' own words, so a tiny tokenizer splits them as a real one would (Qwen2.5-VL, Qwen3-VL/3.5,
# LLaVA-OneVision; SmolVLM adds its video text and number words to its own corpus).
PROMPT_CORPUS = [
    "system user assistant You are a helpful assistant.",
    REASON_INSTRUCTION,
    f"{OPTION_INSTRUCTION} Options:",
    "A. B. C. D. E. (A) (B) (C) (D) (E) A B C D E 0 1 2 3 4 5 6 7 8 9 10 ? . , : ;",
    "what which how many does the a an of in on at to from is are was were do did video clip frame frames object "
    "ball square circle box dot shape colour color red green blue yellow white black moves move left right up down "
    "first second last before after then appears changes count number one two three four answer question think",
]


def train_bpe_tokenizer(corpus: list[str], special_tokens: list[str], vocab_size: int, **fast_kwargs):
    """A byte-level BPE trained in memory on `corpus` (4 passes) with `special_tokens` first in its vocabulary.

    Args:
        corpus: the training texts.
        special_tokens: added tokens, ids 0.. in this order.
        vocab_size: the BPE's vocabulary size (special tokens and the 256 byte symbols included).
        **fast_kwargs: `PreTrainedTokenizerFast` arguments (eos / pad tokens, padding side, chat template, ...).

    Returns:
        A `PreTrainedTokenizerFast`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **fast_kwargs)


def split_sub_overrides(overrides: dict, text: dict, vision: dict) -> None:
    """Move the `text_*` / `vision_*` keys of `overrides` into `text` / `vision` without their prefix
    (`text_hidden_size=128` sets `text["hidden_size"]`); the other keys stay (top-level config fields)."""
    for key in [k for k in overrides if k.startswith(("text_", "vision_"))]:
        prefix, field = key.split("_", 1)
        (text if prefix == "text" else vision)[field] = overrides.pop(key)


def finish_tiny_model(model, tokenizer, processor, output_dir: str | os.PathLike | None = None):
    """Generation stops at eos or pad, pads with pad, starts with no bos; the model and processor are saved to
    `output_dir` when given (a folder `from_pretrained` reloads offline).

    Returns:
        `(model, processor)`.
    """
    generation = model.generation_config
    generation.eos_token_id = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    generation.pad_token_id = tokenizer.pad_token_id
    generation.bos_token_id = None
    if output_dir is not None:
        model.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
    return model, processor

"""Random tiny TinyLLaVA-Video models and tokenizers, built offline in about a second (tests, demo, smoke runs)."""

import os

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, SiglipVisionConfig

from r1video.model.configuration import TinyLlavaVideoConfig
from r1video.model.modeling import TinyLlavaVideoForConditionalGeneration
from r1video.model.processing import TinyLlavaVideoProcessor, make_frame_processor
from r1video.model.templates import (
    EOS,
    OPTION_INSTRUCTION,
    QWEN2_BASE_SYSTEM,
    REASON_INSTRUCTION,
    VIDEO_PLACEHOLDER,
)

# Text the tiny BPE is trained on: the prompt templates plus the words of short video questions and reasoning, so
# that prompts and answers tokenise into few tokens.
_CORPUS_WORDS = (
    "what which how many does the a an of in on at to from is are was were do did video clip frame frames object "
    "objects ball square circle box dot shape colour color red green blue yellow white black orange purple pink cyan "
    "moves move moving left right up down top bottom first second third last before after then appears appear "
    "changes change changed turns flashes flash time times count number one two three four five six seven eight nine ten zero "
    "option options answer question think thinking process final because so therefore I see the I can see at "
    "start end begins ends becomes direction towards order which appears first happens "
)
_TINY_CORPUS = [
    QWEN2_BASE_SYSTEM,
    REASON_INSTRUCTION,
    OPTION_INSTRUCTION,
    "USER: ASSISTANT: <think> </think> <answer> </answer> Options:",
    "A. B. C. D. E. (A) (B) (C) (D) (E) A B C D E 0 1 2 3 4 5 6 7 8 9 10 ? . , : ;",
    _CORPUS_WORDS,
    _CORPUS_WORDS.title(),
]


def build_tiny_tokenizer(vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Byte-level BPE (any text round-trips) with Qwen2.5-base's special tokens: eos = pad = `<|endoftext|>`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, VIDEO_PLACEHOLDER],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_TINY_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS,
        pad_token=EOS,
        extra_special_tokens=[VIDEO_PLACEHOLDER],
        padding_side="left",
        model_max_length=4096,
    )


def tiny_config(vocab_size: int, image_token_id: int, eos_token_id: int, **overrides) -> TinyLlavaVideoConfig:
    """A tiny config with the real model's structure. `overrides` set any TinyLlavaVideoConfig field, and
    `text_*` / `vision_*` keys set fields of the sub-configs (e.g. `text_hidden_size=128`)."""
    text = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
    )
    vision = dict(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    )
    for key in [k for k in overrides if k.startswith(("text_", "vision_")) and k != "vision_feature_layer"]:
        if key == "vision_feature_select_strategy":
            continue
        prefix, field = key.split("_", 1)
        (text if prefix == "text" else vision)[field] = overrides.pop(key)
    fields = dict(
        connector_type="groupresampler",
        group=4,
        num_queries=16,
        num_resampler_layers=2,
        resampler_heads=2,
        resampler_dim_head=16,
        image_token_id=image_token_id,
        llm_model_name_or_path="tiny-qwen2",
        vision_model_name_or_path="tiny-siglip",
        tokenizer_padding_side="left",
    )
    fields.update(overrides)
    return TinyLlavaVideoConfig(
        text_config=Qwen2Config(**text),
        vision_config=SiglipVisionConfig(vision_use_head=False, **vision),
        **fields,
    )


def build_tiny_model(
    output_dir: str | os.PathLike | None = None, seed: int = 0, **config_overrides
) -> tuple[TinyLlavaVideoForConditionalGeneration, TinyLlavaVideoProcessor]:
    """Build a random tiny model and its processor; save both to `output_dir` when given.

    Args:
        output_dir: where to save (config.json, model.safetensors, tokenizer and processor files).
        seed: weight initialisation seed; the same seed gives the same weights.
        **config_overrides: TinyLlavaVideoConfig fields, or `text_*` / `vision_*` sub-config fields.

    Returns:
        `(model, processor)`. The model is in eval mode, float32, on CPU.
    """
    tokenizer = build_tiny_tokenizer()
    image_token_id = tokenizer.convert_tokens_to_ids(VIDEO_PLACEHOLDER)
    config = tiny_config(len(tokenizer), image_token_id, tokenizer.eos_token_id, **config_overrides)
    torch.manual_seed(seed)
    model = TinyLlavaVideoForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    processor = TinyLlavaVideoProcessor(
        make_frame_processor(config.vision_config.image_size), tokenizer, num_queries=config.num_queries
    )
    if output_dir is not None:
        model.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
    return model, processor

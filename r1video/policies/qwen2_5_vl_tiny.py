"""Random tiny Qwen2.5-VL models, built offline in about a second (tests, bench, demo).

The model is transformers' own `Qwen2_5_VLForConditionalGeneration` from a tiny config; the processor is the real
`Qwen2_5_VLProcessor` with the real `Qwen2VLVideoProcessor` (and `Qwen2VLImageProcessor`); only the tokenizer is
small: a byte-level BPE trained in memory on prompt words, carrying Qwen2.5-VL's special tokens
(`<|im_start|>`, `<|im_end|>`, `<|vision_start|>`, `<|video_pad|>`, ...) and Qwen2.5-VL's chat template
(`chat_templates/qwen2_5_vl.jinja`, byte-identical to the one the released checkpoints ship; TRL keeps the same copy).
Saved with `output_dir`, the folder reloads offline with `from_pretrained` like a Hub checkpoint.
"""

import os
from importlib import resources

import torch
from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

from r1video.policies.tiny_tokenizer import PROMPT_CORPUS, finish_tiny_model, split_sub_overrides, train_bpe_tokenizer

# Qwen2.5-VL's special tokens, in the released tokenizer's order (ids 151643-151656 there).
ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
SPECIAL_TOKENS = [
    ENDOFTEXT,
    IM_START,
    IM_END,
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    VISION_START,
    VISION_END,
    "<|vision_pad|>",
    IMAGE_PAD,
    VIDEO_PAD,
]

# Tiny shapes with the real model's structure: window attention plus full-attention blocks, 2x2 spatial merge,
# 2-frame temporal patches, M-RoPE sections that sum to half the LM head dimension.
TEXT_DEFAULTS = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
)
VISION_DEFAULTS = dict(
    depth=2,
    hidden_size=32,
    intermediate_size=64,
    num_heads=2,
    patch_size=8,
    spatial_merge_size=2,
    temporal_patch_size=2,
    window_size=32,
    fullatt_block_indexes=[1],
    tokens_per_second=2,
)
# Frames are resized to a multiple of patch_size * merge_size (16 px) with at most this many pixels.
MIN_PIXELS = 16 * 16
MAX_PIXELS = 48 * 48


def load_qwen2_5_vl_chat_template() -> str:
    """Qwen2.5-VL's chat template, as the released checkpoints ship it."""
    return resources.files("r1video.policies").joinpath("chat_templates", "qwen2_5_vl.jinja").read_text()


def build_tiny_qwen_tokenizer(vocab_size: int = 512):
    """A byte-level BPE with Qwen2.5-VL's special tokens and chat template: eos `<|im_end|>`, pad `<|endoftext|>`,
    left padding (what TRL's generation and Qwen's `mm_token_type_ids` need)."""
    return train_bpe_tokenizer(
        PROMPT_CORPUS,
        SPECIAL_TOKENS,
        vocab_size,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        extra_special_tokens=SPECIAL_TOKENS[1:],
        padding_side="left",
        model_max_length=8192,
        chat_template=load_qwen2_5_vl_chat_template(),
    )


def qwen_token_fields(tokenizer, text: dict, vision: dict) -> dict:
    """The Qwen token ids of `tokenizer` in the sub-configs `text` / `vision` (updated in place: vocabulary, eos,
    pad, no bos; the ViT's output width defaults to the LM's) and the top-level config fields they give (image,
    video and vision start / end token ids, tied embeddings)."""
    vision.setdefault("out_hidden_size", text["hidden_size"])
    ids = tokenizer.convert_tokens_to_ids
    text.update(vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=ids(IM_END), pad_token_id=ids(ENDOFTEXT))
    return dict(
        image_token_id=ids(IMAGE_PAD),
        video_token_id=ids(VIDEO_PAD),
        vision_start_token_id=ids(VISION_START),
        vision_end_token_id=ids(VISION_END),
        tie_word_embeddings=True,
    )


def tiny_qwen_config(tokenizer, **overrides) -> Qwen2_5_VLConfig:
    """A tiny `Qwen2_5_VLConfig` whose token ids are `tokenizer`'s. `text_*` / `vision_*` keys set fields of the
    sub-configs (e.g. `text_hidden_size=128`, `vision_depth=4`); other keys set top-level fields."""
    text, vision = dict(TEXT_DEFAULTS), dict(VISION_DEFAULTS)
    split_sub_overrides(overrides, text, vision)
    fields = qwen_token_fields(tokenizer, text, vision)
    fields.update(overrides)
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **fields)


def processor_sizes(vision, min_pixels: int, max_pixels: int) -> dict:
    """The image / video processor arguments matching a Qwen vision config's patch, temporal patch and merge
    sizes, frames resized to between `min_pixels` and `max_pixels`."""
    return dict(
        patch_size=vision.patch_size,
        temporal_patch_size=vision.temporal_patch_size,
        merge_size=vision.spatial_merge_size,
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
    )


def build_tiny_qwen_processor(config: Qwen2_5_VLConfig, tokenizer=None) -> Qwen2_5_VLProcessor:
    """The real Qwen2.5-VL processor at the tiny model's patch sizes (frames up to `MAX_PIXELS`)."""
    tokenizer = tokenizer if tokenizer is not None else build_tiny_qwen_tokenizer()
    sizes = processor_sizes(config.vision_config, MIN_PIXELS, MAX_PIXELS)
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**sizes),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**sizes, cap_pixels_per_frame=False),
        chat_template=tokenizer.chat_template,
    )


def build_tiny_qwen(
    output_dir: str | os.PathLike | None = None, seed: int = 0, **config_overrides
) -> tuple[Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor]:
    """Build a random tiny Qwen2.5-VL and its processor; save both to `output_dir` when given.

    Args:
        output_dir: where to save (config.json, model.safetensors, tokenizer, processor and video processor files).
        seed: weight initialisation seed; the same seed gives the same weights.
        **config_overrides: `Qwen2_5_VLConfig` fields, or `text_*` / `vision_*` sub-config fields.

    Returns:
        `(model, processor)`; the model is in eval mode, float32, on CPU.
    """
    tokenizer = build_tiny_qwen_tokenizer()
    config = tiny_qwen_config(tokenizer, **config_overrides)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    processor = build_tiny_qwen_processor(config, tokenizer)
    return finish_tiny_model(model, tokenizer, processor, output_dir)


def main(argv: list[str] | None = None) -> int:
    """`python -m r1video.policies.qwen2_5_vl_tiny --out DIR`: save a random tiny Qwen2.5-VL (smoke runs, tests)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m r1video.policies.qwen2_5_vl_tiny", description=main.__doc__)
    parser.add_argument("--out", default="runs/tiny-qwen", help="directory to save the model (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model, _ = build_tiny_qwen(args.out, seed=args.seed)
    params = sum(p.numel() for p in model.parameters())
    print(f"built a {params / 1e3:.0f}k-parameter Qwen2.5-VL in {args.out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

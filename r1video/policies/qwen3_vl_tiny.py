"""Random tiny Qwen3-VL and Qwen3.5 models, built offline in about a second (tests, recipes' tiny builds).

The models are transformers' own `Qwen3VLForConditionalGeneration` / `Qwen3_5ForConditionalGeneration` from tiny
configs with the released structure (Qwen3-VL: deepstack mergers feeding early LM layers; Qwen3.5: a Gated-DeltaNet /
full-attention hybrid LM, which runs on CPU through transformers' PyTorch fallback). The processor is the real
`Qwen3VLProcessor` (both families ship it) with the real `Qwen3VLVideoProcessor`; only the tokenizer is small: the
byte-level BPE of [`r1video.policies.qwen2_5_vl_tiny`] (Qwen's special tokens) with the family's released chat
template (`chat_templates/qwen3_vl.jinja`; `chat_templates/qwen3_5.jinja` = Qwen3.5-2B's, thinking off by default;
both byte-identical to TRL's copies of the originals).

The video processor's own frame sampling is off (`do_sample_frames=False`): r1video samples frames itself and passes
the real fps and frame indices as metadata ([`r1video.policies.qwen3_vl.Qwen3VLPolicy.clip_from_frames`]).
"""

import os
from importlib import resources

import torch
from transformers import (
    Qwen2VLImageProcessor,
    Qwen3_5Config,
    Qwen3_5ForConditionalGeneration,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)

from r1video.policies.qwen2_5_vl_tiny import build_tiny_qwen_tokenizer, processor_sizes, qwen_token_fields
from r1video.policies.tiny_tokenizer import finish_tiny_model, split_sub_overrides

FAMILIES = {
    "qwen3_vl": (Qwen3VLConfig, Qwen3VLForConditionalGeneration, "qwen3_vl.jinja"),
    "qwen3_5": (Qwen3_5Config, Qwen3_5ForConditionalGeneration, "qwen3_5.jinja"),
}
# Tiny shapes with the released structure: M-RoPE sections summing to half the rotary dimension (interleaved),
# 2x2 spatial merge, 2-frame temporal patches, a learned 4x4 position grid in the ViT.
TEXT_DEFAULTS = {
    "qwen3_vl": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 5000000.0,
            "mrope_section": [2, 3, 3],
            "mrope_interleaved": True,
        },  # fmt: skip
    ),
    "qwen3_5": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        layer_types=["linear_attention", "full_attention"],  # the released 3:1 hybrid, at 1:1
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        linear_key_head_dim=16,
        linear_value_head_dim=16,
        linear_conv_kernel_dim=4,
        max_position_embeddings=4096,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000000.0,
            "partial_rotary_factor": 0.5,
            "mrope_section": [3, 3, 2],
            "mrope_interleaved": True,
        },  # fmt: skip
    ),
}
VISION_DEFAULTS = dict(
    depth=3,
    hidden_size=32,
    intermediate_size=64,
    num_heads=2,
    patch_size=8,
    spatial_merge_size=2,
    temporal_patch_size=2,
    num_position_embeddings=16,
)
DEEPSTACK_DEFAULT = [0, 1]  # Qwen3-VL only: ViT layers whose merged output is added to LM layers 0, 1
# Qwen3-VL's video processor budgets pixels over the whole clip (t*h*w): up to 16 frames of 48x48.
MIN_PIXELS = 16 * 16 * 2
MAX_PIXELS = 48 * 48 * 16


def load_family_chat_template(family: str) -> str:
    """The family's released chat template."""
    return resources.files("r1video.policies").joinpath("chat_templates", FAMILIES[family][2]).read_text()


def tiny_qwen3_config(family: str, tokenizer, **overrides):
    """A tiny config of `family` (`qwen3_vl` or `qwen3_5`) whose token ids are `tokenizer`'s. `text_*` / `vision_*`
    keys set fields of the sub-configs; other keys top-level fields."""
    text, vision = dict(TEXT_DEFAULTS[family]), dict(VISION_DEFAULTS)
    if family == "qwen3_vl":
        vision["deepstack_visual_indexes"] = list(DEEPSTACK_DEFAULT)
    split_sub_overrides(overrides, text, vision)
    fields = qwen_token_fields(tokenizer, text, vision)
    fields.update(overrides)
    return FAMILIES[family][0](text_config=text, vision_config=vision, **fields)


def build_tiny_processor(family: str, config, tokenizer) -> Qwen3VLProcessor:
    """The real `Qwen3VLProcessor` at the tiny model's patch sizes, its own frame sampling off."""
    sizes = processor_sizes(config.vision_config, MIN_PIXELS, MAX_PIXELS)
    return Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**sizes),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(**sizes, do_sample_frames=False, cap_pixels_per_frame=False),
        chat_template=tokenizer.chat_template,
    )


def build_tiny_qwen3(family: str, output_dir: str | os.PathLike | None = None, seed: int = 0, **config_overrides):
    """Build a random tiny model of `family` (`qwen3_vl` or `qwen3_5`) and its processor; save both to `output_dir`
    when given.

    Returns:
        `(model, processor)`; the model is in eval mode, float32, on CPU.
    """
    tokenizer = build_tiny_qwen_tokenizer()
    tokenizer.chat_template = load_family_chat_template(family)
    config = tiny_qwen3_config(family, tokenizer, **config_overrides)
    torch.manual_seed(seed)
    model = FAMILIES[family][1](config).eval()
    processor = build_tiny_processor(family, config, tokenizer)
    return finish_tiny_model(model, tokenizer, processor, output_dir)


def main(argv: list[str] | None = None) -> int:
    """`python -m r1video.policies.qwen3_vl_tiny --family qwen3_vl --out DIR`: save a random tiny Qwen3-VL or Qwen3.5
    (smoke runs with `recipes/tiny/qwen_*_smoke.yaml --model_name_or_path DIR`, tests)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m r1video.policies.qwen3_vl_tiny", description=main.__doc__)
    parser.add_argument("--family", choices=sorted(FAMILIES), default="qwen3_vl")
    parser.add_argument("--out", default=None, help="directory to save the model (default: runs/tiny-<family>)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out or f"runs/tiny-{args.family.replace('_', '-')}"
    model, _ = build_tiny_qwen3(args.family, out, seed=args.seed)
    params = sum(p.numel() for p in model.parameters())
    print(f"built a {params / 1e3:.0f}k-parameter {args.family} in {out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

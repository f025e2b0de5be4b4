"""Forward FLOPs of a Qwen2.5-VL model's vision path and LLM, from its config (matmuls and attention scores), and the
tiny shapes whose vision/LLM ratio matches the released 3B model's at the paper's settings.

Same counting rules as [`r1video.bench.flops`]: a matmul `[n, a] @ [a, b]` costs `2·n·a·b`; attention over `n` queries
and `m` keys costs `2·2·n·m·d`. Vision: patch embedding (a Conv3d over `2×P×P` pixel cubes), every ViT block (QKV,
output, gated SiLU MLP; window attention over `window_size/P` squared patches except the full-attention blocks,
which attend within a temporal patch) and the patch merger (2-layer MLP on 4 merged patches). LLM: a causal Qwen2
decoder (gated MLP) plus the LM head.

Paper's settings: 16 uniform frames of a NextQA clip (640×360; Qwen's processor resizes it to 644×364, 46×26
patches) -> 8 temporal patches, 9,568 ViT patches, 2,392 video tokens; a sequence holds those plus ~512 prompt and
completion tokens, as TinyLLaVA-Video's bench counts `512 video tokens + ~512`.
"""

import json
import math
from importlib import resources

REAL_CONFIG = "Qwen2.5-VL-3B-Instruct.json"  # the released config.json
PAPER_FRAMES = 16
PAPER_FRAME_SIZE = (360, 640)  # NextQA's clips (height, width)
TEXT_TOKENS = 512  # prompt + completion beside the video tokens

# Tiny shapes near the 3B's proportions (ViT MLP/hidden 2.3 (3B: 2.7), heads of 64; LM MLP/hidden 5.375, GQA) at a tiny
# frame size: vision/LLM forward FLOPs 0.66 against the 3B's 0.66 (`r1video bench vision-reuse --policy qwen2_5_vl`
# prints both; the bench's prompt is 84 tokens + 64 completion tokens). 16 frames of 64×64 px with 8 px patches -> 8
# temporal patches of 8×8 patches, 128 video tokens.
TINY = dict(
    vision_depth=4,
    vision_hidden_size=192,
    vision_intermediate_size=448,
    vision_num_heads=3,
    vision_patch_size=8,
    vision_window_size=32,
    vision_fullatt_block_indexes=[3],
    text_hidden_size=256,
    text_intermediate_size=1376,
    text_num_hidden_layers=4,
    text_num_attention_heads=4,
    text_num_key_value_heads=2,
    text_rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [8, 12, 12]},
)
TINY_FRAME_SIZE = (64, 64)
QUICK = dict(TINY, vision_depth=1, vision_fullatt_block_indexes=[0], text_num_hidden_layers=1)


def resized(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen's `smart_resize`: both sides multiples of `factor`, the area within `[min_pixels, max_pixels]`."""
    h, w = round(height / factor) * factor, round(width / factor) * factor
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h, w = max(factor, math.floor(height / beta / factor) * factor), max(factor, math.floor(width / beta / factor) * factor)  # fmt: skip
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h, w


def vision_flops(vision: dict, frames: int, grid_h: int, grid_w: int) -> dict:
    """ViT and merger FLOPs of one clip of `frames` frames whose frames are `grid_h × grid_w` patches."""
    t = -(-frames // vision["temporal_patch_size"])
    per_unit = grid_h * grid_w
    patches = t * per_unit
    d, mlp, p = vision["hidden_size"], vision["intermediate_size"], vision["patch_size"]
    window = (vision["window_size"] // p) ** 2
    full = set(vision["fullatt_block_indexes"])
    embed = 2 * patches * 3 * vision["temporal_patch_size"] * p * p * d
    blocks = 0
    for layer in range(vision["depth"]):
        keys = per_unit if layer in full else min(window, per_unit)
        blocks += 2 * patches * (4 * d * d + 3 * d * mlp) + 4 * patches * keys * d
    merged, unit = patches // vision["spatial_merge_size"] ** 2, d * vision["spatial_merge_size"] ** 2
    merger = 2 * merged * (unit * unit + unit * vision["out_hidden_size"])
    return {"vit": embed + blocks, "merger": merger, "video_tokens": merged}


def llm_flops(text: dict, tokens: int) -> float:
    """One forward of the causal LM over `tokens` tokens (causal attention: half the score matrix)."""
    d, heads = text["hidden_size"], text["num_attention_heads"]
    head_dim = text.get("head_dim") or d // heads
    q, kv = heads * head_dim, text["num_key_value_heads"] * head_dim
    layer = 2 * tokens * (d * q + 2 * d * kv + q * d + 3 * d * text["intermediate_size"]) + 2 * tokens * tokens * q
    return text["num_hidden_layers"] * layer + 2 * tokens * d * text["vocab_size"]


def real_config() -> dict:
    """Qwen2.5-VL-3B-Instruct's `config.json` (flat text fields, `vision_config`)."""
    return json.loads(resources.files("r1video.policies").joinpath("configs", REAL_CONFIG).read_text())


def split(vision: dict, text: dict, frames: int, grid_h: int, grid_w: int, text_tokens: int) -> dict:
    """Vision (ViT + merger) and LLM forward FLOPs for one clip and one sequence, and their ratio."""
    flops = vision_flops(vision, frames, grid_h, grid_w)
    tokens = flops["video_tokens"] + text_tokens
    llm = llm_flops(text, tokens)
    return {
        "frames": frames,
        "patches_per_frame": grid_h * grid_w,
        "video_tokens": flops["video_tokens"],
        "tokens_per_sequence": tokens,
        "vision_gflops": (flops["vit"] + flops["merger"]) / 1e9,
        "merger_gflops": flops["merger"] / 1e9,
        "llm_gflops": llm / 1e9,
        "vision_to_llm": (flops["vit"] + flops["merger"]) / llm,
    }


def real_split() -> dict:
    """The 3B at the paper's settings (16 frames of 640×360, `TEXT_TOKENS` more tokens)."""
    config = real_config()
    vision = config["vision_config"]
    factor = vision["patch_size"] * vision["spatial_merge_size"]
    h, w = resized(*PAPER_FRAME_SIZE, factor, 56 * 56, 28 * 28 * 768)
    return split(vision, config, PAPER_FRAMES, h // vision["patch_size"], w // vision["patch_size"], TEXT_TOKENS)


def model_split(config, frames: int, frame_size: tuple[int, int], text_tokens: int) -> dict:
    """A built model's split (`config`: a `Qwen2_5_VLConfig`) for frames of `frame_size` pixels (already a multiple
    of patch × merge)."""
    vision, text = config.vision_config.to_dict(), config.text_config.to_dict()
    p = vision["patch_size"]
    return split(vision, text, frames, frame_size[0] // p, frame_size[1] // p, text_tokens)

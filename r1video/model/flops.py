"""Forward FLOPs of the three parts of a TinyLLaVA-Video model, from its config (matmuls and attention scores).

A matmul of `[n, a] @ [a, b]` costs `2·n·a·b`; attention over `n` queries and `m` keys costs `2·2·n·m·d` (scores and
weighted sum). Norms, activations, softmax and embedding look-ups are left out: they are a few percent at most.
"""

from transformers import Qwen2Config, SiglipVisionConfig

from r1video.model.configuration import TinyLlavaVideoConfig


def vision_tower_flops(config: TinyLlavaVideoConfig, frames: int) -> float:
    """SigLIP over `frames` frames: patch embedding plus every encoder layer (all of them run, even though the
    features are taken from the penultimate one)."""
    vision = config.vision_config
    tokens = (vision.image_size // vision.patch_size) ** 2
    d, mlp = vision.hidden_size, vision.intermediate_size
    patch_embed = 2 * tokens * 3 * vision.patch_size**2 * d
    layer = 2 * tokens * (4 * d * d + 2 * d * mlp) + 4 * tokens * tokens * d
    return frames * (patch_embed + vision.num_hidden_layers * layer)


def vision_tokens_per_frame(config: TinyLlavaVideoConfig) -> int:
    """Tokens a frame gives the connector (`patch` drops token 0)."""
    vision = config.vision_config
    tokens = (vision.image_size // vision.patch_size) ** 2
    return tokens - 1 if config.vision_feature_select_strategy == "patch" else tokens


def connector_flops(config: TinyLlavaVideoConfig, frames: int) -> float:
    """The Perceiver resampler over one video of `frames` frames (group resampler: `group` chunks, each read by
    `num_queries // group` latents; naive: one chunk and `num_queries` latents)."""
    d = config.text_config.hidden_size
    inner = config.resampler_heads * config.resampler_dim_head
    media = frames * vision_tokens_per_frame(config)
    groups = config.group if config.connector_type == "groupresampler" else 1
    latents = config.num_queries // groups
    chunk = media / groups
    keys = chunk + latents  # keys and values come from media and latents together
    per_layer_per_chunk = (
        2 * latents * d * inner  # to_q
        + 2 * keys * d * 2 * inner  # to_kv
        + 4 * latents * keys * inner  # attention
        + 2 * latents * inner * d  # to_out
        + 2 * latents * d * 4 * d * 2  # feed-forward, mult 4
    )
    return (
        2 * media * config.vision_config.hidden_size * d + groups * config.num_resampler_layers * per_layer_per_chunk
    )


def llm_flops(text: Qwen2Config, tokens: int) -> float:
    """One forward of the causal LM over a sequence of `tokens` tokens (causal attention: half the score matrix)."""
    d, heads = text.hidden_size, text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or d // heads
    kv = text.num_key_value_heads * head_dim
    q = heads * head_dim
    layer = 2 * tokens * (d * q + 2 * d * kv + q * d + 3 * d * text.intermediate_size) + 2 * tokens * tokens * q
    return text.num_hidden_layers * layer + 2 * tokens * d * text.vocab_size


def real_config() -> TinyLlavaVideoConfig:
    """TinyLLaVA-Video-Qwen2.5-3B's shapes (seed facts §1): SigLIP-so400m-patch14-384 + group resampler + Qwen2.5-3B."""
    text = Qwen2Config(
        vocab_size=151936,
        hidden_size=2048,
        intermediate_size=11008,
        num_hidden_layers=36,
        num_attention_heads=16,
        num_key_value_heads=2,
    )
    vision = SiglipVisionConfig(
        image_size=384, patch_size=14, hidden_size=1152, intermediate_size=4304, num_hidden_layers=27
    )
    return TinyLlavaVideoConfig(
        text_config=text, vision_config=vision, connector_type="groupresampler", group=16, num_queries=512
    )


def compute_split(config: TinyLlavaVideoConfig, frames: int, tokens_per_sequence: int) -> dict:
    """Vision tower, connector and LLM forward FLOPs for one video and one sequence, and their ratios to the LLM."""
    vision = vision_tower_flops(config, frames)
    connector = connector_flops(config, frames)
    llm = llm_flops(config.text_config, tokens_per_sequence)
    return {
        "frames": frames,
        "tokens_per_sequence": tokens_per_sequence,
        "vision_tower_gflops": vision / 1e9,
        "connector_gflops": connector / 1e9,
        "llm_gflops": llm / 1e9,
        "vision_to_llm": vision / llm,
        "connector_to_llm": connector / llm,
    }

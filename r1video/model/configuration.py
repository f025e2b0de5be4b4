"""`TinyLlavaVideoConfig`: reads the released TinyLLaVA-Video `config.json` as it is, offline.

The released checkpoints (`Zhang199/TinyLLaVA-Video-*`) carry `model_type: "tinyllava"`, an embedded `text_config`,
connector fields (`connector_type`, `group`, `num_queries`, `num_resampler_layers`) and tokenizer fields. The original
code re-fetched the LLM and vision configs from the Hub by name; here the embedded configs are used as they are, and a
missing `vision_config` falls back to SigLIP-so400m-patch14-384's (the tower every released model uses).
"""

from dataclasses import field
from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

# google/siglip-so400m-patch14-384, vision part (seed-facts §1.1).
SIGLIP_SO400M_VISION = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "image_size": 384,
    "patch_size": 14,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
}

# The original picks the LLM class by substring of `llm_model_name_or_path` (TV:tinyllava/model/llm/*.py).
_LLM_MODEL_TYPES = (("qwen2", "qwen2"), ("phi", "phi"), ("gemma", "gemma"), ("llama", "llama"))


def _guess_text_model_type(llm_name: str | None) -> str:
    name = (llm_name or "").lower()
    for needle, model_type in _LLM_MODEL_TYPES:
        if needle in name:
            return model_type
    return "qwen2"


# The original's `group` default (TV `ModelArguments`, the GROUP=16 of its scripts; seed-facts §1.2).
DEFAULT_GROUP = 16


@strict
class TinyLlavaVideoConfig(PreTrainedConfig):
    r"""
    Configuration of a TinyLLaVA-Video model: SigLIP vision tower + Perceiver resampler connector + causal LM.

    Parameters that control the architecture:
        text_config (`dict` or `PreTrainedConfig`): config of the language model (any causal LM: Qwen2, Phi, ...).
        vision_config (`dict` or `PreTrainedConfig`, *optional*): SigLIP vision config; SigLIP-so400m-patch14-384 if absent.
        connector_type (`str`): `"groupresampler"` (the video-level group resampler) or `"naiveresampler"`.
        group (`int`): number of chunks the video's token axis is split into by the group resampler; `None` (what the
            original writes to config.json when the group was left at its default) means that default, 16.
        num_queries (`int`): visual tokens per video given to the LLM (512 in every released model).
        num_resampler_layers (`int`): attention + feed-forward blocks in the resampler.
        resampler_heads, resampler_dim_head (`int`): resampler attention shape (8 × 64 in the original, fixed there).
        vision_feature_layer (`int`): hidden state of the tower used as features (-2: the penultimate layer).
        vision_feature_select_strategy (`str`): `"patch"` drops token 0 (728 tokens per 384 px frame), `"cls_patch"`
            keeps all.

    Parameters that control tokens:
        image_token_id (`int`, *optional*): vocabulary id of the video placeholder token. The processor expands each
            placeholder to `num_queries` copies of it, and the model writes the video embeddings at those positions.
            Released configs lack it (the original spliced at a sentinel id); `load_pretrained` fills it from the
            processor.
        image_token_index (`int`): the original's sentinel id (-200), kept so released configs round-trip.

    The `llm_model_name_or_path`, `vision_model_name_or_path` and `tokenizer_*` fields are kept as records of where
    the parts came from; nothing is ever fetched from them.
    """

    model_type = "tinyllava"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2"),
        "vision_config": SubConfigSpec(
            config_class=AutoConfig, model_type="siglip_vision_model", init_kwargs=SIGLIP_SO400M_VISION
        ),
    }

    text_config: dict | PreTrainedConfig | None = None
    vision_config: dict | PreTrainedConfig | None = None
    connector_type: Literal["groupresampler", "naiveresampler"] = "groupresampler"
    group: int | None = DEFAULT_GROUP
    num_queries: int = 512
    num_resampler_layers: int = 3
    resampler_heads: int = 8
    resampler_dim_head: int = 64
    vision_feature_layer: int = -2
    vision_feature_select_strategy: Literal["patch", "cls_patch"] = "patch"
    image_token_id: int | None = None
    image_token_index: int = -200
    ignore_index: int = -100
    image_aspect_ratio: str = "square"
    llm_model_name_or_path: str | None = None
    vision_model_name_or_path: str | None = None
    tokenizer_name_or_path: str | None = None
    tokenizer_model_max_length: int = 3072
    tokenizer_padding_side: str = "right"
    tokenizer_use_fast: bool = False
    tie_word_embeddings: bool | None = None
    # TRL resolves the model class through `config.auto_map or {}`; an empty map means "use the Auto classes".
    auto_map: dict = field(default_factory=dict)

    def __post_init__(self, **kwargs):
        if self.group is None:
            self.group = DEFAULT_GROUP
        if isinstance(self.text_config, dict) and "model_type" not in self.text_config:
            self.text_config = {**self.text_config, "model_type": _guess_text_model_type(self.llm_model_name_or_path)}
        super().__post_init__(**kwargs)
        if self.tie_word_embeddings is None:
            self.tie_word_embeddings = bool(getattr(self.text_config, "tie_word_embeddings", False))
        if self.num_queries % self.group:
            raise ValueError(
                f"num_queries ({self.num_queries}) must be divisible by group ({self.group}): each of the "
                f"{self.group} chunks is resampled to num_queries // group latents."
            )

    @property
    def vision_tokens_per_frame(self) -> int:
        """Tokens the vision tower yields per frame: 729 for SigLIP-384/14, 728 after the `patch` strategy."""
        patches = (self.vision_config.image_size // self.vision_config.patch_size) ** 2
        return patches - 1 if self.vision_feature_select_strategy == "patch" else patches


__all__ = ["TinyLlavaVideoConfig", "SIGLIP_SO400M_VISION"]

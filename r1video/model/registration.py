"""Make `model_type: "tinyllava"` known to transformers: Auto classes and the released checkpoint key names."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
)
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import WeightRenaming

from r1video.model.configuration import TinyLlavaVideoConfig
from r1video.model.modeling import TinyLlavaVideoForConditionalGeneration, TinyLlavaVideoModel
from r1video.model.processing import TinyLlavaVideoProcessor

# Released key name -> module path here (reversed on save, so checkpoints keep the released layout).
RELEASED_KEY_PATTERNS = (
    (r"^language_model\.lm_head", "lm_head"),
    (r"^language_model\.model", "model.language_model"),
    (r"^vision_tower", "model.vision_tower"),
    (r"^connector", "model.connector"),
)


def released_key_renames() -> list[WeightRenaming]:
    """Fresh renaming rules for the released names (transformers keeps per-load state on them)."""
    return [WeightRenaming(source_patterns=s, target_patterns=t) for s, t in RELEASED_KEY_PATTERNS]


def register() -> None:
    """Idempotent: safe to call from several imports."""
    AutoConfig.register(TinyLlavaVideoConfig.model_type, TinyLlavaVideoConfig, exist_ok=True)
    AutoModel.register(TinyLlavaVideoConfig, TinyLlavaVideoModel, exist_ok=True)
    AutoModelForCausalLM.register(TinyLlavaVideoConfig, TinyLlavaVideoForConditionalGeneration, exist_ok=True)
    AutoModelForImageTextToText.register(TinyLlavaVideoConfig, TinyLlavaVideoForConditionalGeneration, exist_ok=True)
    AutoProcessor.register(TinyLlavaVideoConfig, TinyLlavaVideoProcessor, exist_ok=True)
    register_checkpoint_conversion_mapping(TinyLlavaVideoConfig.model_type, released_key_renames(), overwrite=True)

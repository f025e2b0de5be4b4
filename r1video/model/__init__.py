"""TinyLLaVA-Video in transformers: config, model, processor, prompt templates and a tiny builder."""

from r1video.model.configuration import TinyLlavaVideoConfig
from r1video.model.loading import load_pretrained
from r1video.model.modeling import (
    TinyLlavaVideoForConditionalGeneration,
    TinyLlavaVideoModel,
    TinyLlavaVideoPreTrainedModel,
)
from r1video.model.processing import TinyLlavaVideoProcessor
from r1video.model.registration import register
from r1video.model.tiny import build_tiny_model, build_tiny_tokenizer

register()

__all__ = [
    "TinyLlavaVideoConfig",
    "TinyLlavaVideoForConditionalGeneration",
    "TinyLlavaVideoModel",
    "TinyLlavaVideoPreTrainedModel",
    "TinyLlavaVideoProcessor",
    "build_tiny_model",
    "build_tiny_tokenizer",
    "load_pretrained",
]

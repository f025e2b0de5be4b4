"""The SigLIP vision tower, stored as `vision_tower._vision_tower.vision_model.*` like the released checkpoints."""

import torch
from torch import nn
from transformers import SiglipVisionModel

from r1video.model.configuration import TinyLlavaVideoConfig


class _SiglipHolder(nn.Module):
    """Keeps the `vision_model.` level of the released key names in the module path itself.

    transformers 5 flattened `SiglipVisionModel` and strips `vision_model.` when loading; it only adds it back on save
    for models that were loaded with it, so a model built from scratch would save a different layout. Holding the tower
    under a `vision_model` attribute makes every save the released layout.
    """

    def __init__(self, config):
        super().__init__()
        self.vision_model = SiglipVisionModel(config)


class VisionTower(nn.Module):
    """Frames `[N, 3, S, S]` -> features `[N, tokens_per_frame, vision_hidden]`.

    Features are SigLIP's `hidden_states[vision_feature_layer]` (the penultimate layer, before `post_layernorm`). With
    the `patch` strategy token 0 is dropped: SigLIP has no CLS token, so this drops a real patch, exactly as the
    original does (729 -> 728 tokens per 384 px frame).
    """

    def __init__(self, config: TinyLlavaVideoConfig):
        super().__init__()
        self._vision_tower = _SiglipHolder(config.vision_config)
        self.feature_layer = config.vision_feature_layer
        self.select_strategy = config.vision_feature_select_strategy

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        tower = self._vision_tower.vision_model
        outputs = tower(pixel_values.to(tower.dtype), output_hidden_states=True)
        features = outputs.hidden_states[self.feature_layer]
        if self.select_strategy == "patch":
            features = features[:, 1:]
        return features

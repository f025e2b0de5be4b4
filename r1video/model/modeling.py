"""TinyLLaVA-Video as a transformers-native model.

Layout (as transformers' own LLaVA): `TinyLlavaVideoModel` holds `language_model` (the LLM backbone), `vision_tower`
and `connector`; `TinyLlavaVideoForConditionalGeneration` adds `lm_head`. A checkpoint conversion mapping translates
to and from the released key names (`language_model.model.*`, `language_model.lm_head.*`,
`vision_tower._vision_tower.*`, `connector._connector.*`), so released checkpoints load as they are and
`save_pretrained` writes the released layout again.

Videos enter as `pixel_values_videos` `[B, F, 3, S, S]` (or a list of `[F_i, 3, S, S]` when frame counts differ).
Each video becomes `num_queries` embeddings written, in order, over the `image_token_id` placeholders of `input_ids`
(the processor expands one placeholder per video to `num_queries` tokens, so positions and lengths are real).
"""

import torch
from torch import nn
from transformers import AutoModel, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from r1video.model.configuration import TinyLlavaVideoConfig
from r1video.model.connectors import Connector, PerceiverResampler
from r1video.model.vision import VisionTower

VideoInput = torch.Tensor | list[torch.Tensor]


def as_video_list(videos: VideoInput) -> list[torch.Tensor]:
    """Per-video tensors from a stacked tensor, a nested tensor (videos of different lengths) or a list."""
    if isinstance(videos, torch.Tensor) and videos.is_nested:
        return list(videos.unbind())
    return list(videos)


class TinyLlavaVideoPreTrainedModel(PreTrainedModel):
    config_class = TinyLlavaVideoConfig
    config: TinyLlavaVideoConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _skip_keys_device_placement = ["cache"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_attention_backend = True

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, PerceiverResampler):
            init.normal_(module.latents, mean=0.0, std=1.0)  # the original draws latents with torch.randn


class TinyLlavaVideoModel(TinyLlavaVideoPreTrainedModel):
    """Vision tower + connector + LLM backbone; returns the LLM's last hidden state (what TRL's fused head reads)."""

    def __init__(self, config: TinyLlavaVideoConfig):
        super().__init__(config)
        self.language_model = AutoModel.from_config(config.text_config)
        self.vision_tower = VisionTower(config)
        self.connector = Connector(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_video_tower_features(self, pixel_values_videos: VideoInput) -> list[torch.Tensor]:
        """Run the vision tower once over every frame of every video.

        Returns one `[F_i * tokens_per_frame, vision_hidden]` tensor per video (frames flattened along the token axis,
        as the connector expects).
        """
        videos = as_video_list(pixel_values_videos)
        frame_counts = [video.shape[0] for video in videos]
        features = self.vision_tower(torch.cat(videos, dim=0))  # [sum F_i, P, Dv]
        return [chunk.flatten(0, 1) for chunk in features.split(frame_counts, dim=0)]

    def get_video_features(
        self,
        pixel_values_videos: VideoInput | None = None,
        video_tower_features: list[torch.Tensor] | None = None,
        video_index: torch.LongTensor | None = None,
    ) -> torch.Tensor:
        """Videos -> `[num_placeholder_groups, num_queries, D]` embeddings for the LLM.

        `video_tower_features` (from `get_video_tower_features`) skips the vision tower, so a caller that reuses one
        video many times (GRPO's G rollouts and its several log-prob passes) pays for the frozen tower once.
        `video_index[i]` names the video of the i-th placeholder group; with it, the given videos are the distinct
        ones and the connector runs once per distinct video, its output shared by every row that shows that video.
        """
        if video_tower_features is None:
            video_tower_features = self.get_video_tower_features(pixel_values_videos)
        video_tower_features = as_video_list(video_tower_features)
        lengths = {features.shape[0] for features in video_tower_features}
        if len(lengths) == 1:  # same frame count: one batched connector call
            embeds = self.connector(torch.stack(video_tower_features))
        else:
            embeds = torch.cat([self.connector(features.unsqueeze(0)) for features in video_tower_features])
        return embeds if video_index is None else embeds[video_index.to(embeds.device)]

    def embed_inputs(
        self,
        input_ids: torch.LongTensor,
        pixel_values_videos: VideoInput | None = None,
        video_tower_features: list[torch.Tensor] | None = None,
        video_index: torch.LongTensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings with each video's embeddings written over its placeholder tokens."""
        inputs_embeds = self.get_input_embeddings()(input_ids)
        if pixel_values_videos is None and video_tower_features is None:
            return inputs_embeds
        if self.config.image_token_id is None:
            raise ValueError(
                "config.image_token_id is not set, so the model cannot find the video placeholders. Load the model "
                "with r1video.model.load_pretrained(path), which takes it from the processor."
            )
        video_embeds = self.get_video_features(pixel_values_videos, video_tower_features, video_index)
        placeholder = input_ids == self.config.image_token_id
        if placeholder.sum().item() != video_embeds.shape[0] * video_embeds.shape[1]:
            raise ValueError(
                f"The prompts hold {placeholder.sum().item()} video placeholder tokens but {video_embeds.shape[0]} "
                f"video(s) × {video_embeds.shape[1]} queries were given: each video needs exactly num_queries "
                "placeholders (the processor expands them; truncating a prompt would cut them)."
            )
        video_embeds = video_embeds.to(inputs_embeds.device, inputs_embeds.dtype)
        return inputs_embeds.masked_scatter(placeholder.unsqueeze(-1), video_embeds)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: VideoInput | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        video_tower_features: list[torch.Tensor] | None = None,
        video_index: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_inputs(input_ids, pixel_values_videos, video_tower_features, video_index)
        return self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            **kwargs,
        )


class TinyLlavaVideoForConditionalGeneration(TinyLlavaVideoPreTrainedModel, GenerationMixin):
    """TinyLLaVA-Video with its LM head: training forward, log-probs through TRL's fused head, and `generate`."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}

    def __init__(self, config: TinyLlavaVideoConfig):
        super().__init__(config)
        text_config = config.text_config
        self.model = TinyLlavaVideoModel(config)
        # Phi's head has a bias, Qwen2's does not.
        lm_head_bias = getattr(text_config, "model_type", "") == "phi"
        self.lm_head = nn.Linear(text_config.hidden_size, text_config.vocab_size, bias=lm_head_bias)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    @property
    def language_model(self):
        return self.model.language_model

    @property
    def vision_tower(self):
        return self.model.vision_tower

    @property
    def connector(self):
        return self.model.connector

    def prepare_inputs_for_generation(self, *args, is_first_iteration: bool | None = False, **kwargs):
        inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        # Like pixel values, precomputed video features belong to the prefill only: later steps read the KV cache.
        if not is_first_iteration and kwargs.get("use_cache", True):
            inputs.pop("video_tower_features", None)
            inputs.pop("video_index", None)
        return inputs

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: VideoInput | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        video_tower_features: list[torch.Tensor] | None = None,
        video_index: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        outputs = self.model(
            input_ids=input_ids,
            pixel_values_videos=pixel_values_videos,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            video_tower_features=video_tower_features,
            video_index=video_index,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, keep, :])
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = ["TinyLlavaVideoModel", "TinyLlavaVideoForConditionalGeneration", "TinyLlavaVideoPreTrainedModel"]

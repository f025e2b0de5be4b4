"""TinyLLaVA-Video behind the policy seam (`model_type: "tinyllava"`): SigLIP tower (frozen) + resampler connector
(trains) + Qwen2.5 LLM.

- A clip is `{"pixel_values_videos": [F, 3, S, S]}`, SigLIP-preprocessed frame by frame as decoded.
- A prompt holds one `<image>` per video; tokenising expands it to `num_queries` placeholder ids.
- The cached encoding of a clip is the vision tower's output `[F * tokens, Dv]` (frame-major); the connector runs on it
  inside every pass (`video_tower_features`), once per distinct clip with `video_index` mapping rows to clips.
- Temporal contrast permutes frames: pixels `[F, ...]` and tower features in blocks of `tokens` rows.
- vLLM runs the exported Qwen2 language model on prompt embeddings spliced by `embed_inputs`.
- Checkpoints are in the released layout; resuming loads them by name (`load_checkpoint_weights`).

This module and `r1video/model/` are the only places that name TinyLLaVA-Video's classes and methods.
"""

import json
from collections.abc import Sequence

import torch

from r1video.data.video import load_video_frames
from r1video.policies.base import (
    IGNORE_INDEX,
    Clip,
    ModelCardFacts,
    VideoPolicy,
    check_replies,
    conversation_segments,
    pack,
)
from r1video.policies.registry import register

_PIXELS = "pixel_values_videos"


def _permute(tensor: torch.Tensor, permutation: torch.LongTensor) -> torch.Tensor:
    """Frame-major `[F * k, ...]` with its `F` blocks reordered by `permutation`."""
    frames = len(permutation)
    if tensor.shape[0] % frames:
        raise ValueError(f"a clip of first dimension {tensor.shape[0]} does not split into {frames} frames")
    return tensor.unflatten(0, (frames, -1))[permutation.to(tensor.device)].flatten(0, 1)


@register
class TinyLlavaVideoPolicy(VideoPolicy):
    name = "tinyllava_video"
    model_types = ("tinyllava",)
    processor_class_names = ("TinyLlavaVideoProcessor",)
    vllm_route = "prompt_embeds"
    model_card_tags = ("tinyllava-video", "video-text-to-text")

    # ---- loading ----

    def load(self, name_or_path, *, dtype="float32", attn_implementation=None, revision=None, trust_remote_code=False):
        from r1video.model import load_pretrained  # registers the Auto classes

        kwargs = {} if revision is None else {"revision": revision}
        return load_pretrained(str(name_or_path), dtype=dtype, attn_implementation=attn_implementation, **kwargs)

    def load_processor(self, name_or_path, *, revision=None, trust_remote_code=False):
        from r1video.model import TinyLlavaVideoProcessor

        kwargs = {} if revision is None else {"revision": revision}
        return TinyLlavaVideoProcessor.from_pretrained(str(name_or_path), **kwargs)

    def build_tiny(self, output_dir=None, *, seed: int = 0, **overrides):
        from r1video.model import build_tiny_model

        return build_tiny_model(output_dir, seed=seed, **overrides)

    def compose_command(self, args) -> int:
        """`r1video compose` (TinyLLaVA-Video only): a new checkpoint from a causal LM and a SigLIP tower."""
        from r1video.model.compose import run

        return run(args)

    def unknown_tiny_keys(self, overrides) -> list[str]:
        """Keys that are neither `TinyLlavaVideoConfig` fields nor `text_*` / `vision_*` fields of the Qwen2 / SigLIP
        sub-configs."""
        import inspect

        from transformers import Qwen2Config, SiglipVisionConfig

        from r1video.model.configuration import TinyLlavaVideoConfig

        fields = inspect.signature(TinyLlavaVideoConfig.__init__).parameters

        def known(key: str) -> bool:
            for prefix, config in (("text_", Qwen2Config), ("vision_", SiglipVisionConfig)):
                if key.startswith(prefix) and hasattr(config(), key.removeprefix(prefix)):
                    return True
            return key in fields

        return [key for key in overrides if not known(key)]

    def forward_flops(self, config, frames: int, tokens_per_sequence: int, frame_size=None) -> dict:
        """`frame_size` is ignored: every frame is resized to the tower's square input."""
        from r1video.model.flops import compute_split

        return compute_split(config, frames, tokens_per_sequence)

    def reference_flops(self) -> dict:
        """SigLIP-so400m over 16 frames against Qwen2.5-3B over ~1k tokens (512 video tokens + prompt + completion)."""
        from r1video.model.flops import real_config

        return self.forward_flops(real_config(), 16, 1024)

    def bench_shapes(self, quick: bool) -> dict:
        """The tiny shapes of `r1video bench vision-reuse` (vision/LLM FLOPs near the released model's)."""
        from r1video.bench.vision_reuse import QUICK, TINY

        return dict(QUICK if quick else TINY)

    def reference_config(self):
        from r1video.model.flops import real_config

        return real_config()

    def acceptance_checkpoint(self, output_dir, *, tiny: bool, device, dtype) -> dict:
        from r1video.model.acceptance import write_checkpoint

        return write_checkpoint(output_dir, tiny, device, dtype)

    @staticmethod
    def backbone(model):
        """The TinyLLaVA-Video backbone inside `model`, whatever wraps it (DDP, DeepSpeed, a PEFT adapter)."""
        from r1video.model.modeling import TinyLlavaVideoModel

        return next(m for m in model.modules() if isinstance(m, TinyLlavaVideoModel))

    # ---- clips ----

    def decode_clip(
        self, processor, path, *, num_frames=None, fps=None, max_frames=None, autorotate=True, reader=None
    ) -> Clip:
        # Each frame is preprocessed as soon as it is decoded: one full-size frame alive at a time.
        video = (reader or load_video_frames)(
            path,
            num_frames=num_frames,
            fps=fps,
            max_frames=max_frames,
            autorotate=autorotate,
            frame_transform=processor.preprocess_frames,
        )
        return Clip({_PIXELS: video.frames}, len(video.indices), [int(i) for i in video.indices])

    def clip_from_frames(self, processor, frames, *, fps=None, frame_indices=None) -> Clip:
        pixels = frames if isinstance(frames, torch.Tensor) and frames.is_floating_point() else None
        if pixels is None:
            pixels = processor.preprocess_frames(frames)
        indices = list(range(len(pixels))) if frame_indices is None else [int(i) for i in frame_indices]
        return Clip({_PIXELS: pixels}, len(pixels), indices)

    def frame_transform(self, processor):
        return processor.preprocess_frames

    def blank_clip(self, processor, num_frames, like=None) -> Clip:
        if like is not None:
            return Clip({_PIXELS: torch.zeros(like.inputs[_PIXELS].shape)}, like.num_frames, list(like.frame_indices))
        import numpy as np

        frames = num_frames or 1
        pixels = torch.zeros_like(processor.preprocess_frames(np.zeros((frames, 8, 8, 3), dtype=np.uint8)))
        return Clip({_PIXELS: pixels}, frames, list(range(frames)))

    def collate_clips(self, clips: Sequence[Clip], *, input_ids=None, processor=None) -> dict:
        return {_PIXELS: pack([clip.inputs[_PIXELS] for clip in clips])} if clips else {}

    # ---- prompts ----

    def video_token(self, processor) -> str:
        return processor.video_token

    def video_token_ids(self, processor) -> list[int]:
        return [processor.video_token_id]

    def video_token_count(self, processor, clip=None) -> int:
        return processor.num_queries

    def question_prompt(self, processor, question: str) -> str:
        """The original evaluation's prompt: system line, `USER: <image>\\n{question} ASSISTANT:` (byte for byte)."""
        from r1video.model.templates import qwen2_base_prompt

        return qwen2_base_prompt(question)

    def tokenize_prompts(self, processor, texts, clips=None) -> list[list[int]]:
        return processor.tokenize_prompts(list(texts))

    def prompt_length(self, processor, text: str) -> int:
        return len(processor.encode(text))

    def tokenize_conversation(self, processor, messages, clip=None) -> tuple[list[int], list[int]]:
        """Reply segments keep their ids as labels, every other token -100 (the label rule of
        `r1video.trainer.sft_collator`); each segment is tokenised on its own, placeholders expanded.

        Raises:
            ValueError: a reply contains a special token's text (e.g. `<|endoftext|>` or `<image>`).
        """
        check_replies(messages, {*processor.tokenizer.all_special_tokens, processor.video_token})
        segments = conversation_segments(processor, messages)
        input_ids, labels = [], []
        for text, supervised in segments:
            ids = processor.encode(text, add_special_tokens=False)
            input_ids += ids
            labels += ids if supervised else [IGNORE_INDEX] * len(ids)
        return input_ids, labels

    def tokenize_pretrain(self, processor, messages, clip=None) -> tuple[list[int], list[int]]:
        """TinyLLaVA-Video's `pretrain` format (`TV:tinyllava/data/template/pretrain_template.py`): the text is
        `"<image>" + caption + "\\n"` (the question is dropped; no system line, roles or end-of-text) and only the
        tokens up to the video placeholder (a BOS, if the tokenizer adds one, and the placeholder) are masked.

        Raises:
            ValueError: the record does not have exactly one reply (the original writes one `<image>` per round, so
                a record of several rounds would need several clips), or the reply holds a special token's text.
        """
        replies = [m for m in messages if m["role"] == "assistant"]
        if len(replies) != 1:
            raise ValueError(
                f"the pretrain format takes one caption per record (one human turn, one reply); this record has "
                f"{len(replies)} replies"
            )
        check_replies(messages, {*processor.tokenizer.all_special_tokens, processor.video_token})
        content = replies[0]["content"]
        caption = content if isinstance(content, str) else "".join(p.get("text") or "" for p in content)
        input_ids = processor.encode(f"{processor.video_token}{caption}\n")
        prompt_length = len(processor.encode(processor.video_token))
        return input_ids, [IGNORE_INDEX] * prompt_length + input_ids[prompt_length:]

    # ---- the vision path ----

    def vision_module(self, model) -> torch.nn.Module:
        return self.backbone(model).vision_tower

    def freeze(self, model, *, vision=True, connector=False, language_model=False) -> None:
        backbone = self.backbone(model)
        for frozen, module in (
            (vision, backbone.vision_tower),
            (connector, backbone.connector),
            (language_model, backbone.language_model),
        ):
            if frozen:
                module.requires_grad_(False)
        if language_model:  # the LM head is part of the LLM (the original froze the whole causal LM)
            for head in self._lm_heads(model):
                head.requires_grad_(False)

    @staticmethod
    def _lm_heads(model) -> list[torch.nn.Module]:
        from r1video.model.modeling import TinyLlavaVideoForConditionalGeneration

        return [m.lm_head for m in model.modules() if isinstance(m, TinyLlavaVideoForConditionalGeneration)]

    def frozen_modules(self, model) -> list[str]:
        backbone = self.backbone(model)
        parts = {"vision": backbone.vision_tower, "connector": backbone.connector, "language_model": None}
        parts["language_model"] = torch.nn.ModuleList([backbone.language_model, *self._lm_heads(model)])
        return [name for name, module in parts.items() if not any(p.requires_grad for p in module.parameters())]

    def encode(self, model, clips: Sequence[Clip]) -> list[torch.Tensor] | None:
        """The vision tower's output `[F * tokens, Dv]` per clip, or `None` when the tower trains."""
        backbone = self.backbone(model)
        if not clips or any(p.requires_grad for p in backbone.vision_tower.parameters()):
            return None
        with torch.no_grad():
            return backbone.get_video_tower_features([clip.inputs[_PIXELS] for clip in clips])

    def model_inputs(self, model, input_ids, clips, index, encodings, *, reuse: bool) -> dict:
        """`video_tower_features` (with `encodings`) or `pixel_values_videos`, per distinct clip with `video_index`
        (`reuse`), else one copy per row in row order (the original's cost)."""
        index = index[index >= 0]  # placeholder groups appear in row order; text-only rows have none
        if index.numel() == 0:
            return {}
        if encodings is not None:
            key, table = "video_tower_features", list(encodings)
        else:
            key, table = _PIXELS, [clip.inputs[_PIXELS] for clip in clips]
        if not reuse:
            return {key: pack([table[clip] for clip in index.tolist()])}
        used, remapped = torch.unique(index, return_inverse=True)
        return {key: pack([table[clip] for clip in used.tolist()]), "video_index": remapped}

    # ---- temporal contrast ----

    def temporal_units(self, clip: Clip) -> int:
        return clip.inputs[_PIXELS].shape[0]

    def permute_clip(self, clip: Clip, permutation) -> Clip:
        order = permutation.tolist()
        indices = [clip.frame_indices[i] for i in order] if len(clip.frame_indices) == len(order) else []
        return Clip({_PIXELS: _permute(clip.inputs[_PIXELS], permutation)}, clip.num_frames, indices)

    def permute_encoding(self, encoding, clip, permutation):
        return _permute(encoding, permutation)

    # ---- vLLM ----

    def embed_prompts(self, model, input_ids, **model_inputs) -> torch.Tensor:
        return self.backbone(model).embed_inputs(input_ids, **model_inputs)

    # ---- checkpoints ----

    def load_checkpoint(self, model, checkpoint_dir) -> bool:
        from r1video.model import TinyLlavaVideoPreTrainedModel
        from r1video.model.loading import load_checkpoint_weights

        # A PEFT-wrapped model is not a TinyLlavaVideoPreTrainedModel: adapters keep transformers' own path.
        if not isinstance(model, TinyLlavaVideoPreTrainedModel):
            return False
        load_checkpoint_weights(model, checkpoint_dir)
        return True

    def model_card_facts(self, model, load_path: str) -> ModelCardFacts:
        """The paper's architecture with this model's connector and LLM, `load_pretrained`, the released layout."""
        config = model.config
        connector = getattr(config, "connector_type", "resampler")
        llm = getattr(config.get_text_config(), "model_type", "causal")
        return ModelCardFacts(
            description=(
                f"A [TinyLLaVA-Video](https://arxiv.org/abs/2501.15513) model (SigLIP vision tower, {connector} "
                f"connector,\n{llm} language model)"
            ),
            following="[TinyLLaVA-Video-R1](https://arxiv.org/abs/2504.09641)",
            python=(
                "import r1video.model  # registers TinyLLaVA-Video with the transformers Auto classes\n"
                "from r1video.model import load_pretrained\n\n"
                f"model, processor = load_pretrained({json.dumps(load_path)})"
            ),
            weights=(
                "The weights use the released TinyLLaVA-Video key layout (`language_model.*`, "
                "`vision_tower._vision_tower.*`,\n`connector._connector.*`) in safetensors."
            ),
        )

    def sync_reference(self, model, ref_model) -> None:
        # TRL reloads the reference model from the checkpoint path; a released checkpoint's config lacks the
        # placeholder id that load_pretrained gave the policy.
        ref_model.config.image_token_id = model.config.image_token_id

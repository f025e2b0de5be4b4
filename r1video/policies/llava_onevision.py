"""LLaVA-OneVision behind the policy-family seam: how `LlavaOnevisionForConditionalGeneration` takes a video.

The architecture closest to TinyLLaVA-Video: a SigLIP tower, a projector (the connector) and a Qwen2 LM with 1-D
positions. A clip is decoded by r1video's PyAV reader and turned into the family's tensors by its own
`LlavaOnevisionVideoProcessor` (every frame resized to the tower's square input):

    pixel_values_videos  [F, C, S, S]   one clip's frames

Each frame becomes `tokens_per_frame = ceil(S/P / 2)²` tokens (the tower's `(S/P)²` patch features, projected, then
2x2 bilinear pooling), and the clip ends with one `image_newline` token: a prompt's `<video>` expands to
`F * tokens_per_frame + 1` tokens ([`tokenize_prompts`]), as `LlavaOnevisionProcessor` expands it.

Vision once ([`encode`], [`model_inputs`]). The tower is frozen; it runs once per distinct clip under `no_grad`. What
trains runs in every pass on the cached output:
- connector trainable (the recipes: projector + `image_newline`, like TinyLLaVA-Video's connector): the cache is the
  tower's selected layer `[F, (S/P)², Dv]` (`vision_feature_layer`, `vision_feature_select_strategy` of the config),
  and projector, pooling and newline run on it inside the pass, exactly as `get_video_features` runs them;
- connector frozen too: the cache is `get_video_features`' output for the clip, `[F * tokens_per_frame + 1, D]`.

The trap. `get_video_features` returns ONE tensor `[videos, F * tokens_per_frame + 1, D]` (not a tuple per video as
Qwen's) and `forward` flattens its first two dimensions, so clips of different frame counts cannot share it as
`[videos, ...]`: the seam gives the forward `mm_encoder_outputs={"video": pooler_output [1, sum of the rows' tokens, D]}`
(the rows' videos in row order, each with its newline), which the forward flattens to what `masked_scatter` needs. The
pixel path (`pixel_values_videos [videos, F, C, S, S]`) exists only for clips of one frame count; rows of clips of
different lengths go through `get_video_features` one video at a time.
"""

import math

import numpy as np
import torch

from r1video.policies.base import IGNORE_INDEX, Clip, HFVideoPolicy, check_replies, reply_texts
from r1video.policies.registry import register
from r1video.policies.tiny_tokenizer import PROMPT_CORPUS, finish_tiny_model, split_sub_overrides, train_bpe_tokenizer

# Frames assumed by the prompt-length bound when no clip is at hand (the recipes' 16 frames).
DEFAULT_BOUND_FRAMES = 16


def _tower(core):
    return core.vision_tower  # transformers' own name for LLaVA-OneVision's SigLIP encoder


def _connector_parameters(core) -> list:
    return [*core.multi_modal_projector.parameters(), core.image_newline]


def _pack(features: list[torch.Tensor]):
    """`mm_encoder_outputs["video"]` for the rows' videos in row order: one `[1, tokens, D]` tensor (the forward
    flattens dims 0 and 1), so videos of different lengths travel together."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    return BaseModelOutputWithPooling(pooler_output=torch.cat(features)[None])


def _frames(clip: Clip) -> torch.Tensor:
    return clip.inputs["pixel_values_videos"]


@register
class LlavaOnevisionPolicy(HFVideoPolicy):
    """LLaVA-OneVision (`model_type` `llava_onevision`): stateless; the processor and model are passed in."""

    name = "llava_onevision"
    model_types = ("llava_onevision",)
    processor_class_names = ("LlavaOnevisionProcessor",)
    model_card_tags = ("llava_onevision",)
    vllm_route = "native"  # vLLM runs the family itself; request form: r1video.policies.vllm_video
    model_class_name = "LlavaOnevisionForConditionalGeneration"
    core_class_name = "LlavaOnevisionModel"
    model_card_title = "[LLaVA-OneVision](https://arxiv.org/abs/2408.03326)"
    model_card_parts = "SigLIP vision tower, MLP projector, {llm} language model"
    checkpoint_keys = ("vision_tower.*", "multi_modal_projector.*", "image_newline", "language_model.*")
    head_keys = ()  # an untied head is saved under language_model.lm_head

    # ---- vLLM -----------------------------------------------------------------------------------------------------

    def check_vllm(self, model) -> None:
        """vLLM 0.30's LLaVA-OneVision reads one tower layer: its projector takes `vision_config.hidden_size` inputs
        (`vllm/model_executor/models/llava_onevision.py:446-454`) and its tower stops at the deepest feature layer
        (`llava.py:437-454`), where transformers concatenates several.

        Raises:
            ValueError: `vision_feature_layer` is a list.
        """
        layer = self._core(model).config.vision_feature_layer
        if not isinstance(layer, int):
            raise ValueError(
                f"use_vllm: vLLM 0.30 runs LLaVA-OneVision on one vision feature layer (its projector reads one, "
                f"vllm/model_executor/models/llava_onevision.py:446-454), this model's vision_feature_layer is "
                f"{layer}; set use_vllm: false (HF generate)"
            )

    # ---- loading ------------------------------------------------------------------------------------------------

    def build_tiny(self, output_dir=None, *, seed: int = 0, **overrides):
        """A random tiny LLaVA-OneVision with the real processor ([`build_tiny_llava_onevision`])."""
        return build_tiny_llava_onevision(output_dir, seed=seed, **overrides)

    # ---- prompts --------------------------------------------------------------------------------------------------

    def video_token(self, processor) -> str:
        return processor.video_token  # "<video>"

    def _placeholder(self, processor, clip: Clip) -> str:
        """`<video>` repeated `F * tokens_per_frame + 1` times."""
        return self.video_token(processor) * self.video_token_count(processor, clip)

    def video_token_ids(self, processor) -> list[int]:
        return [processor.video_token_id]

    @staticmethod
    def tokens_per_frame(processor) -> int:
        """`ceil(sqrt(num_image_tokens) / 2)²`: the tower's patch grid after 2x2 bilinear pooling."""
        side = math.ceil(int(math.sqrt(processor.num_image_tokens)) / 2)
        return side * side

    def video_token_count(self, processor, clip: Clip | None) -> int:
        """`F * tokens_per_frame + 1` (the newline); without a clip, that of `DEFAULT_BOUND_FRAMES` frames."""
        frames = DEFAULT_BOUND_FRAMES if clip is None else int(_frames(clip).shape[0])
        return frames * self.tokens_per_frame(processor) + 1

    def layout_clip(self, processor, video) -> Clip:
        """The clip's frame count without pixels (`pixel_values_videos [F, 0]`), from the frames the reader would
        return (`video`, a [`r1video.data.video.VideoLayout`]): every frame is resized to the tower's square input,
        so its tokens do not depend on the source's size."""
        indices = list(video.indices)
        return Clip({"pixel_values_videos": torch.zeros(len(indices), 0)}, len(indices), indices)

    def prompt_length(self, processor, text: str, clip: Clip | None = None) -> int:
        """Tokens of a rendered prompt with its placeholder expanded: exactly for `clip`, else for
        `DEFAULT_BOUND_FRAMES` frames (every frame has the same token count)."""
        token = self.video_token(processor)
        base = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
        return base + text.count(token) * (self.video_token_count(processor, clip) - 1)

    @staticmethod
    def _parts(messages: list[dict]) -> list[dict]:
        """Messages with string contents as one text part: LLaVA-OneVision's template iterates content parts and
        would render a string content as nothing."""
        return [
            {**m, "content": [{"type": "text", "text": m["content"]}]} if isinstance(m["content"], str) else m
            for m in messages
        ]

    def render_prompt(self, processor, messages, *, add_generation_prompt=True, chat_template=None, **kwargs) -> str:
        """Conversational messages (a `{"type": "video"}` part per video) through LLaVA-OneVision's chat template."""
        return processor.apply_chat_template(
            self._parts(messages),
            chat_template=chat_template,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
            **kwargs,
        )

    def tokenize_conversation(self, processor, messages: list[dict], clip: Clip | None):
        """SFT: `(ids, labels)`; every assistant reply follows the generation prompt, as in GRPO.

        LLaVA-OneVision's template renders a past assistant turn as `<|im_start|>assistant \\n{reply}<|im_end|>` but
        its generation prompt is `<|im_start|>assistant\\n`, so the render of a conversation does not hold the
        sequence the model generates. The SFT sequence is therefore: the generation prompt of each assistant turn
        (the template's render of the turns since the previous reply), then the reply and `<|im_end|>` (labelled);
        everything else is -100.

        Raises:
            ValueError: a reply holds a special token's text; the template does not render prefixes as prefixes;
                the placeholder count does not match `clip`.
        """
        tokenizer = processor.tokenizer
        check_replies(messages, tokenizer.all_special_tokens)
        messages = self._parts(messages)
        replies = iter(reply_texts(messages))
        ids, labels, done, used_clip = [], [], "", False
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self.render_prompt(processor, messages[:i], add_generation_prompt=True)
            if not prompt.startswith(done):
                raise ValueError(
                    "the chat template does not render a conversation's prefixes as prefixes of it, so the replies "
                    f"cannot be located (turn {i})"
                )
            segment = prompt[len(done) :]
            token_count = segment.count(self.video_token(processor))
            segment = self._expand(processor, segment, clip if token_count and not used_clip else None, i)
            used_clip = used_clip or token_count > 0
            prompt_ids = tokenizer(segment, add_special_tokens=False)["input_ids"]
            reply_ids = tokenizer(next(replies) + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
            ids += prompt_ids + reply_ids
            labels += [IGNORE_INDEX] * len(prompt_ids) + reply_ids
            done = self.render_prompt(processor, messages[: i + 1], add_generation_prompt=False)
        if clip is not None and not used_clip:
            raise ValueError("the conversation holds no video placeholder before its replies but a clip was given")
        return ids, labels

    # ---- clips ----------------------------------------------------------------------------------------------------

    def decode_clip(
        self, processor, path, *, num_frames=None, fps=None, max_frames=None, autorotate=True, reader=None
    ) -> Clip:
        """Decode `path` with r1video's PyAV reader (or `reader`, same signature) and process the frames with
        LLaVA-OneVision's video processor.

        Raises:
            VideoDecodeError: as `r1video.data.video.load_video_frames`.
        """
        from r1video.data.video import load_video_frames

        read = reader or load_video_frames
        video = read(path, num_frames=num_frames, fps=fps, max_frames=max_frames, autorotate=autorotate)
        return self.clip_from_frames(processor, video.frames, fps=video.fps, frame_indices=list(video.indices))

    def clip_from_frames(self, processor, frames, *, fps=None, frame_indices=None) -> Clip:
        """A clip from frames already decoded: `frames [T, H, W, 3]` uint8 through the family's video processor
        (every frame resized to the tower's square input; no frame sampling, no timing: positions are 1-D)."""
        frames = np.asarray(frames)
        indices = list(range(len(frames))) if frame_indices is None else [int(i) for i in frame_indices]
        # r1video's reader chose the frames: the processor must not sample again (a checkpoint may turn it on)
        out = processor.video_processor(videos=[frames], do_sample_frames=False, return_tensors="pt")
        return Clip(inputs={"pixel_values_videos": out["pixel_values_videos"][0]}, num_frames=len(frames),
                    frame_indices=indices)  # fmt: skip

    def collate_clips(self, clips: list, *, input_ids=None, processor=None) -> dict:
        """`pixel_values_videos [videos, F, C, S, S]` of the rows' clips in row order (`None` rows skipped).

        Raises:
            ValueError: clips of different frame counts (the model's pixel input holds one frame count); sample a
                fixed `num_frames`.
        """
        frames = [_frames(clip) for clip in clips if clip is not None]
        if not frames:
            return {}
        counts = sorted({f.shape[0] for f in frames})
        if len(counts) > 1:
            raise ValueError(
                f"LLaVA-OneVision's pixel input takes one frame count per batch, got clips of {counts} frames; "
                "sample a fixed num_frames (or use a batch size of 1)"
            )
        return {"pixel_values_videos": torch.stack(frames)}

    # ---- temporal contrast ----------------------------------------------------------------------------------------

    def temporal_units(self, clip: Clip) -> int:
        """Frames: the tower, the projector and the pooling see each frame alone."""
        return int(_frames(clip).shape[0])

    @staticmethod
    def _check(permutation, units: int) -> torch.LongTensor:
        permutation = torch.as_tensor(permutation, dtype=torch.long)
        if sorted(permutation.tolist()) != list(range(units)):
            raise ValueError(f"a permutation of {len(permutation)} units for a clip of {units} frames")
        return permutation

    def permute_clip(self, clip: Clip, permutation) -> Clip:
        """The clip with its frames in `permutation`'s order."""
        permutation = self._check(permutation, self.temporal_units(clip))
        inputs = dict(clip.inputs)
        inputs["pixel_values_videos"] = _frames(clip)[permutation.to(_frames(clip).device)]
        indices = [clip.frame_indices[u] for u in permutation.tolist()] if clip.frame_indices else []
        return Clip(inputs=inputs, num_frames=clip.num_frames, frame_indices=indices)

    def permute_encoding(self, encoding: torch.Tensor, clip: Clip, permutation) -> torch.Tensor:
        """A cached encoding with its frames reordered: the tower's `[F, patches, Dv]` along dim 0, or the connector's
        `[F * tokens_per_frame + 1, D]` by blocks of a frame's tokens, the newline staying last."""
        units = self.temporal_units(clip)
        permutation = self._check(permutation, units).to(encoding.device)
        if encoding.dim() == 3:
            return encoding[permutation]
        frames, newline = encoding[:-1], encoding[-1:]
        return torch.cat([frames.unflatten(0, (units, -1))[permutation].flatten(0, 1), newline])

    # ---- freezing -------------------------------------------------------------------------------------------------

    def freeze(self, model, *, vision: bool = True, connector: bool = False, language_model: bool = False) -> None:
        """Freeze the named parts (a part set `False` is left as it is): `vision` the SigLIP tower, `connector` the
        projector and `image_newline`, `language_model` the decoder and `lm_head`."""
        core = self._core(model)
        if vision:
            _tower(core).requires_grad_(False)
        if connector:
            for p in _connector_parameters(core):
                p.requires_grad_(False)
        if language_model:
            self._freeze_language_model(model, core.language_model)

    def frozen_modules(self, model) -> list[str]:
        """The parts (`vision`, `connector`, `language_model`) whose every parameter is frozen."""
        core = self._core(model)
        parts = {
            "vision": list(_tower(core).parameters()),
            "connector": _connector_parameters(core),
            "language_model": list(core.language_model.parameters()),
        }
        return [name for name, params in parts.items() if not any(p.requires_grad for p in params)]

    def vision_module(self, model):
        """The SigLIP tower: its forward hook sees `(pixel_values [frames, C, S, S],)` per call."""
        return _tower(self._core(model))

    # ---- checkpoints ----------------------------------------------------------------------------------------------

    def load_checkpoint(self, model, checkpoint_dir) -> bool:
        """Load a checkpoint's weights into `model` in place (resume). transformers saves LLaVA-OneVision under the
        llava-hf checkpoints' names (`language_model.model.*`, `vision_tower.*`, `multi_modal_projector.*`,
        `image_newline`), not the module's (`model.language_model.*`, ...), and its Trainer loads with
        `strict=False`, which would match no key and resume from the initial weights. The checkpoint is read back by
        `from_pretrained` (transformers' own renaming rules) and copied into `model`'s parameters.

        Returns:
            `False` for a model that is not a plain `LlavaOnevisionForConditionalGeneration` (a PEFT wrapper keeps
            transformers' path).

        Raises:
            ValueError: the checkpoint lacks some of the model's weights.
        """
        from transformers import LlavaOnevisionForConditionalGeneration

        if type(model) is not LlavaOnevisionForConditionalGeneration:
            return False
        saved, info = LlavaOnevisionForConditionalGeneration.from_pretrained(
            str(checkpoint_dir), dtype=model.dtype, output_loading_info=True
        )
        tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
        missing = set(info["missing_keys"]) - tied
        if missing or info["unexpected_keys"]:
            raise ValueError(
                f"{checkpoint_dir} does not match the model: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(info['unexpected_keys'])[:5]}"
            )
        with torch.no_grad():
            model.load_state_dict(saved.state_dict(), strict=True)
        return True

    # ---- vision once ----------------------------------------------------------------------------------------------

    @staticmethod
    def _selected(core, pixels: torch.Tensor) -> torch.Tensor:
        """The tower's features `get_video_features` projects: layer `vision_feature_layer` (several concatenated),
        the CLS-like first token dropped under the `default` strategy."""
        config = core.config
        out = _tower(core)(pixels, output_hidden_states=True, return_dict=True)
        layer = config.vision_feature_layer
        if isinstance(layer, int):
            selected = out.hidden_states[layer]
        else:
            selected = torch.cat([out.hidden_states[i] for i in layer], dim=-1)
        return selected[:, 1:] if config.vision_feature_select_strategy == "default" else selected

    @staticmethod
    def _connect(core, selected: torch.Tensor) -> torch.Tensor:
        """Projector, 2x2 pooling and newline on one clip's tower features `[F, patches, Dv]` ->
        `[F * tokens_per_frame + 1, D]`: `get_video_features`' own steps after the tower."""
        features = core.apply_pooling(core.multi_modal_projector(selected))
        return torch.cat([features.flatten(0, 1), core.image_newline[None].to(features.dtype)])

    def encode(self, model, clips: list) -> list | None:
        """Run the frozen part of the vision path once over `clips` (distinct clips, their frames in one tower call),
        under `no_grad`.

        Returns:
            One tensor per clip: the tower's selected features `[F, patches, Dv]` when the connector trains, else the
            whole video features `[F * tokens_per_frame + 1, D]`; `None` when the tower itself trains.
        """
        if not clips:
            return []
        core = self._core(model)
        tower = _tower(core)
        if any(p.requires_grad for p in tower.parameters()):
            return None
        connector_trains = any(p.requires_grad for p in _connector_parameters(core))
        device = next(tower.parameters()).device
        pixels = torch.cat([_frames(clip) for clip in clips]).to(device, tower.dtype)
        with torch.no_grad():
            selected = self._selected(core, pixels).split([_frames(clip).shape[0] for clip in clips])
            if connector_trains:
                return list(selected)
            return [self._connect(core, features) for features in selected]

    def model_inputs(self, model, input_ids, clips: list, index, encodings: list | None, *, reuse: bool) -> dict:
        """Keyword arguments for `model(input_ids=..., attention_mask=..., **kw)` and `model.generate(...)`.

        Args:
            input_ids: `[rows, L]` the padded ids, or `None` (not needed: positions are 1-D).
            clips: the batch's distinct clips; `index[r]` is row `r`'s (-1: text-only).
            encodings: [`encode`]'s output for `clips`, or `None`.
            reuse: with `encodings`, each distinct clip's cached output goes through what trains once and its rows
                share the result. Without `encodings`, or with `reuse=False`, every row's clip goes through the whole
                vision path (one copy per row): inside the forward as `pixel_values_videos` when the rows' clips have
                one frame count (FSDP gathers the tower there), else through `get_video_features` one row at a time.

        Returns:
            `mm_encoder_outputs={"video": pooler_output [1, tokens of the rows' videos, D]}` or `pixel_values_videos
            [rows with a video, F, C, S, S]`; `{}` for a batch without video.
        """
        rows = [int(i) for i in torch.as_tensor(index).tolist()]
        used = [i for i in rows if i >= 0]
        if not used:
            return {}
        core = self._core(model)
        device = input_ids.device if input_ids is not None else next(core.parameters()).device
        if not reuse or encodings is None:
            frames = [_frames(clips[i]).to(device) for i in used]
            if len({f.shape[0] for f in frames}) == 1:
                return {"pixel_values_videos": torch.stack(frames)}
            features = [core.get_video_features(f[None], return_dict=True).pooler_output[0] for f in frames]
            return {"mm_encoder_outputs": {"video": _pack(features)}}
        by_clip = {}
        for i in dict.fromkeys(used):
            encoding = encodings[i].to(device)
            by_clip[i] = self._connect(core, encoding) if encoding.dim() == 3 else encoding
        return {"mm_encoder_outputs": {"video": _pack([by_clip[i] for i in used])}}


# ---- a random tiny model, offline ----------------------------------------------------------------------------------

# LLaVA-OneVision's chat template, as the llava-hf checkpoints ship it (transformers' processor tests keep a copy).
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}{# Render all images first #}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}"
    "{{ '<video>' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\\n' + content['text'] }}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ '\\n' + content['text'] }}{% endgeneration %}{% endfor %}{% endif %}{{'<|im_end|>'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
TEXT_DEFAULTS = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=4096, tie_word_embeddings=True,
)  # fmt: skip
# SigLIP at 32 px with 8 px patches: 16 patch features per frame, 4 tokens per frame after the 2x2 pooling.
VISION_DEFAULTS = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8,
    vision_use_head=False,
)  # fmt: skip


def build_tiny_llava_onevision_tokenizer(vocab_size: int = 512):
    """A byte-level BPE with the Qwen2 special tokens LLaVA-OneVision uses plus `<image>` / `<video>`, its chat
    template, eos `<|im_end|>`, pad `<|endoftext|>`, left padding."""
    return train_bpe_tokenizer(
        PROMPT_CORPUS,
        SPECIAL_TOKENS,
        vocab_size,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=SPECIAL_TOKENS[1:],
        padding_side="left",
        model_max_length=32768,
        chat_template=CHAT_TEMPLATE,
    )


def tiny_llava_onevision_config(tokenizer, **overrides):
    """A tiny `LlavaOnevisionConfig` (SigLIP + Qwen2) whose token ids are `tokenizer`'s; `text_*` / `vision_*` keys
    set sub-config fields, other keys top-level fields."""
    from transformers import LlavaOnevisionConfig

    text, vision = dict(TEXT_DEFAULTS), dict(VISION_DEFAULTS)
    split_sub_overrides(overrides, text, vision)
    ids = tokenizer.convert_tokens_to_ids
    text.update(model_type="qwen2", vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=ids("<|im_end|>"),
                pad_token_id=ids("<|endoftext|>"))  # fmt: skip
    vision["model_type"] = "siglip_vision_model"
    fields = dict(
        image_token_index=ids("<image>"),
        video_token_index=ids("<video>"),
        vision_feature_layer=-1,  # llava-onevision-qwen2-*-ov-hf: the last layer, every patch ("full")
        vision_feature_select_strategy="full",
        tie_word_embeddings=text["tie_word_embeddings"],
        image_grid_pinpoints=[[vision["image_size"], vision["image_size"]]],
    )
    fields.update(overrides)
    return LlavaOnevisionConfig(text_config=text, vision_config=vision, **fields)


def build_tiny_llava_onevision_processor(config, tokenizer=None):
    """The real `LlavaOnevisionProcessor` (its image and video processors) at the tiny tower's input size."""
    from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor

    tokenizer = tokenizer if tokenizer is not None else build_tiny_llava_onevision_tokenizer()
    size = config.vision_config.image_size
    square = {"height": size, "width": size}
    return LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=square, image_grid_pinpoints=[[size, size]]),
        tokenizer=tokenizer,
        video_processor=LlavaOnevisionVideoProcessor(size=square),
        num_image_tokens=(size // config.vision_config.patch_size) ** 2,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_llava_onevision(output_dir=None, seed: int = 0, **config_overrides):
    """Build a random tiny LLaVA-OneVision and its real processor offline; save both to `output_dir` when given.

    Returns:
        `(model, processor)`; the model is in eval mode, float32, on CPU.
    """
    from transformers import LlavaOnevisionForConditionalGeneration

    tokenizer = build_tiny_llava_onevision_tokenizer()
    config = tiny_llava_onevision_config(tokenizer, **config_overrides)
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    processor = build_tiny_llava_onevision_processor(config, tokenizer)
    return finish_tiny_model(model, tokenizer, processor, output_dir)

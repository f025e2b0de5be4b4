"""The policy-family seam: how one model family takes video, behind one interface.

The GRPO trainer, the SFT trainer and collator, the eval runner, `infer`, the lmms-eval adapter, the prompt-length
check, temporal contrast, `bench` and the demo are written once against [`VideoPolicy`]; each family (TinyLLaVA-Video,
Qwen2.5-VL, ...) is one module implementing it, registered by its config's `model_type`
([`r1video.policies.registry`]). Nothing outside a family's module and `r1video/model/` names a family's classes.

Contract (a policy instance is stateless: the model and the processor are passed in):

Loading
    `load(name_or_path, *, dtype, attn_implementation, revision, trust_remote_code=False) -> (model, processor)`
        a local folder or a Hub id; never remote code unless asked. `load_processor(...)` the processor alone.

Clips (one decoded clip in the family's own input form, [`Clip`])
    `decode_clip(processor, path, *, num_frames, fps, max_frames, autorotate, reader=None) -> Clip`
        r1video's PyAV reader (`r1video.data.video.load_video_frames`, or `reader` with its signature: in-memory
        clips in `bench gpu`) + the family's processor; raises `VideoDecodeError` like the reader.
    `clip_from_frames(processor, frames [T, H, W, 3] uint8, *, fps=None, frame_indices=None) -> Clip`
        the same for frames already decoded (eval, infer, tests).
    `blank_clip(processor, num_frames, like=None) -> Clip`
        black frames for a row whose clip failed to decode (its rows get no loss); `like`: a clip of the batch whose
        shapes it copies.
    `collate_clips(clips, *, input_ids=None, processor=None) -> dict`
        the batch tensors that give a forward its clips by the pixel path, one clip per video placeholder group in
        row order (SFT, eval); `input_ids` (the padded batch) and `processor` for families whose inputs are per token
        (Qwen2.5-VL's `mm_token_type_ids`).

Prompts
    `video_token(processor) -> str`
        the placeholder string a rendered prompt holds per video, before expansion.
    `video_token_ids(processor) -> list[int]`
        the ids an expanded placeholder consists of (never sampled by vLLM; counted by the SFT collator).
    `video_token_count(processor, clip) -> int`
        how many of those ids one clip's placeholder expands to (TinyLLaVA-Video: `num_queries`).
    `render_prompt(processor, messages, *, add_generation_prompt=True, chat_template=None, **kw) -> str`
        conversational messages with `{"type": "video"}` parts -> text with one `video_token` per video.
    `question_prompt(processor, question) -> str`
        the generation prompt of one question about one video (eval, infer, lmms-eval).
    `tokenize_prompts(processor, texts, clips) -> list[list[int]]`
        unpadded ids, each placeholder expanded to its clip's real token count (`clips[i]` is `None` for a text-only
        row).
    `prompt_length(processor, text) -> int`
        tokens of a rendered prompt as the model sees it, without a clip at hand (an upper bound where the count
        depends on the clip; the data checks use it for a record whose video cannot be read).
    `layout_clip(processor, video: VideoLayout) -> Clip | None`
        a clip without pixels: what the family's placeholder expansion reads of a clip (Qwen: the patch grid and
        timestamps; SmolVLM2: the frame count and times), from the frames the reader would return and their size
        ([`r1video.data.video.probe_video`], the container alone), by the processor's own resize rule.
        `tokenize_prompts` / `tokenize_conversation` with it give the ids the decoded clip gives (the data checks
        count each record's prompt with it); never a model input. `None`: the count does not depend on the clip
        (TinyLLaVA-Video: `num_queries`).
    `max_length(processor) -> int | None`
        the prompt-length limit (the tokenizer's `model_max_length`), `None` when none is set.
    `tokenize_conversation(processor, messages, clip) -> (ids, labels)`
        SFT: every token outside the assistant replies labelled -100, reply tokens (their end-of-text included)
        labelled with their ids.
    `tokenize_pretrain(processor, messages, clip) -> (ids, labels)`
        SFT in the `pretrain` conversation format (TinyLLaVA-Video's connector stage): the video placeholder then the
        record's one reply (a caption), no system line, no roles, no end-of-text; only the placeholder is masked.
        Families without such a stage raise `NotImplementedError`.

The vision path, once per clip
    `encode(model, clips) -> list | None`
        the FROZEN part of the vision path run once over each clip under `no_grad`, one entry per clip; `None` when
        the family cannot reuse it (the frozen part trains).
    `model_inputs(model, input_ids, clips, index, encodings, *, reuse) -> dict`
        keyword arguments for `model(input_ids=..., attention_mask=..., **kw)` and for `generate`: row `r` shows
        clip `clips[index[r]]` (-1: text-only). With `encodings` the frozen part is not re-run and what trains runs on
        the cached output inside this pass; without them the pixel path. With `reuse` each distinct clip goes through
        what trains once per pass, its output shared by its rows; without it every row gets its own copy (the
        original implementations' cost, for comparisons). Position state must be exact: no call may inherit a
        previous call's state.
    `vision_module(model) -> torch.nn.Module`
        the module that runs the frozen part (bench and tests hook it to count its calls and frames).
    `freeze(model, *, vision=True, connector=False, language_model=False)` / `frozen_modules(model)`
        freeze the named parts (a part set `False` is left as it is); what is frozen now. `encode` caches exactly
        the frozen part.

Temporal contrast
    `temporal_units(clip) -> int`
        how many units a permutation permutes (TinyLLaVA-Video: frames).
    `permute_clip(clip, permutation) -> Clip` / `permute_encoding(encoding, clip, permutation)`
        the clip (and its cached encoding) with its units reordered.

Rollouts through vLLM
    `vllm_route: str | None`
        one of [`VLLM_ROUTES`], or `None` (no route yet; `use_vllm` with `None` or an unknown route is refused at
        trainer start-up):
        `"prompt_embeds"`: vLLM runs only the exported language model on spliced prompt embeddings (1-D positions
        only: TinyLLaVA-Video);
        `"native"`: vLLM runs the family's own model class on the prompt ids and the clip as multimodal data (M-RoPE,
        deepstack: Qwen2.5-VL and later), `r1video.trainer.vllm_native`.
    `vllm_route_reason: str | None`
        with `vllm_route = None`, why the family has no route (one line; the `use_vllm` refusal says it).
    `embed_prompts(model, input_ids, **model_inputs) -> Tensor [rows, L, hidden]`
        the prompt embeddings with each video's embeddings over its placeholders (`vllm_route == "prompt_embeds"`).
    `vllm_video(processor, clip) -> {"multi_modal_data": ..., "mm_processor_kwargs": ...}`
        the clip as vLLM takes it (`vllm_route == "native"`); by default the function registered for the family's
        `name` in `r1video.policies.vllm_video`, so a family needs only `vllm_route = "native"` when one is there.
    `check_vllm(model)`
        raise `ValueError` (one line) at trainer start-up when `model`'s configuration is one the family's vLLM model
        cannot run (LLaVA-OneVision: several vision feature layers); by default nothing.
    `vllm_prompt_ids(processor, ids, clip) -> list[int]`
        a row's prompt ids as vLLM takes them with its clip (`vllm_route == "native"`): each video's expansion
        back to the one placeholder vLLM expands itself; by default each run of placeholder tokens collapsed to one
        (Qwen3-VL and Qwen3.5, whose expansion holds timestamp text between runs, override it).

Checkpoints and references
    `load_checkpoint(model, checkpoint_dir) -> bool`
        load a checkpoint's weights into `model` in place when the family saves under other names than its
        parameters; `False` leaves it to transformers.
    `sync_reference(model, ref_model)`
        make a reference model that TRL reloaded from the checkpoint path agree with the policy model on what the
        loader set.

Tests and tools
    `build_tiny(output_dir=None, *, seed=0, **overrides) -> (model, processor)`
        a random tiny model and processor, offline, saved to `output_dir` when given.
    `unknown_tiny_keys(overrides) -> list[str]`
        the keys `build_tiny` would not take (the demo checks its `model.yaml` with it).
    `forward_flops(config, frames, tokens_per_sequence, frame_size=None) -> dict`, `reference_config()`
        analytic forward FLOPs of vision and LLM (`vision_to_llm`, ...) for a config (`frame_size`: `(height, width)`
        of the frames, for families whose processor keeps it), and the paper-size model's config (bench sizes its
        tiny model so the ratios match).
    `reference_flops() -> dict`
        `forward_flops` of the paper-size model at the paper's settings (frames, frame size, tokens).
    `bench_shapes(quick) -> dict`
        the `build_tiny` overrides `r1video bench vision-reuse` uses (`{}`: the builder's defaults).
    `encoder_frames(module, args, kwargs) -> int`
        the frames one call of `vision_module` took, from its forward hook's arguments (bench and tests count them).
    `acceptance_checkpoint(output_dir, *, tiny, device, dtype) -> dict`
        a random-weight checkpoint of the paper-size model (or the tiny one) with a stand-in tokenizer, offline;
        returns its shapes (`r1video bench gpu`).
    `model_card_tags: tuple[str, ...]`
        the family's tags on the model card.
    `model_card_facts(model, load_path) -> ModelCardFacts`
        what the model card written next to every save says about the family: what the model is, the Python lines
        that load the folder `load_path`, the layout of the saved weights ([`ModelCardFacts`]).
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

IGNORE_INDEX = -100
# How rollouts reach vLLM (`VideoPolicy.vllm_route`); the GRPO trainer has one engine class per route.
VLLM_ROUTES = ("prompt_embeds", "native")


@dataclass(eq=False)
class Clip:
    """One decoded clip in the family's own input form.

    Clips travel per row in the GRPO batch (rows of one clip hold the same object, so carrying them copies nothing)
    and are saved with the rollout buffer (`r1video.trainer.rollout_buffer`), so `inputs` holds tensors only.

    Attributes:
        inputs: the family's tensors for this clip alone (TinyLLaVA-Video: `{"pixel_values_videos": [F, 3, S, S]}`).
        num_frames: frames decoded.
        frame_indices: the source frame indices used.
    """

    inputs: dict[str, torch.Tensor]
    num_frames: int
    frame_indices: list[int] = field(default_factory=list)

    def to(self, device) -> "Clip":
        """The clip with its tensors on `device` (itself when they are there already)."""
        if all(tensor.device == torch.device(device) for tensor in self.inputs.values()):
            return self
        inputs = {key: tensor.to(device) for key, tensor in self.inputs.items()}
        return Clip(inputs, self.num_frames, list(self.frame_indices))


@dataclass(frozen=True)
class ModelCardFacts:
    """What the model card (`r1video/trainer/templates/model_card.md`) says about a model's family; markdown.

    Attributes:
        description: what the model is, the card's first words up to "trained with ...": "A [Family](paper) model
            (its parts)".
        python: the Python lines that load the saved folder (the "How to use" snippet).
        weights: one sentence on the layout of the saved weights; empty: none is written.
        python_intro: the line before the Python snippet; empty: none (it then follows "With r1video installed").
        following: the published recipe the card says the run follows (markdown); empty: none.
    """

    description: str
    python: str
    weights: str = ""
    python_intro: str = ""
    following: str = ""


class VideoPolicy:
    """One model family behind the interface of this module's docstring. Subclasses set `name` and `model_types`
    and implement the methods that raise `NotImplementedError` here."""

    name: str = ""
    model_types: tuple[str, ...] = ()
    processor_class_names: tuple[str, ...] = ()  # the processors of this family (`policy_for(processor)`)
    vllm_route: str | None = None
    vllm_route_reason: str | None = None  # why `vllm_route` is None, one line (the `use_vllm` refusal says it)
    model_card_tags: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ---- loading ----

    def load(
        self,
        name_or_path: str,
        *,
        dtype="float32",
        attn_implementation: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ):
        raise NotImplementedError

    def load_processor(self, name_or_path: str, *, revision: str | None = None, trust_remote_code: bool = False):
        raise NotImplementedError

    def build_tiny(self, output_dir=None, *, seed: int = 0, **overrides):
        raise NotImplementedError(f"{self.name} has no tiny model builder")

    def unknown_tiny_keys(self, overrides) -> list[str]:
        return []

    def forward_flops(self, config, frames: int, tokens_per_sequence: int, frame_size=None) -> dict:
        raise NotImplementedError(f"{self.name} has no FLOP model")

    def reference_config(self):
        raise NotImplementedError(f"{self.name} has no reference (paper-size) config")

    def reference_flops(self) -> dict:
        raise NotImplementedError(f"{self.name} has no FLOP model")

    def bench_shapes(self, quick: bool) -> dict:
        return {}

    def encoder_frames(self, module, args: tuple, kwargs: dict) -> int:
        """Frames in one call of `vision_module(model)`: the first dimension of its `pixel_values` (keyword, as
        SmolVLM2 passes it) or of its first positional argument (`[frames, C, H, W]`)."""
        pixels = kwargs["pixel_values"] if "pixel_values" in kwargs else args[0]
        return int(pixels.shape[0])

    def acceptance_checkpoint(self, output_dir, *, tiny: bool, device, dtype) -> dict:
        raise NotImplementedError(f"{self.name} has no GPU acceptance checkpoint")

    # ---- clips ----

    def decode_clip(
        self,
        processor,
        path,
        *,
        num_frames: int | None = None,
        fps: float | None = None,
        max_frames: int | None = None,
        autorotate: bool = True,
        reader: Callable | None = None,
    ) -> Clip:
        raise NotImplementedError

    def clip_from_frames(self, processor, frames, *, fps: float | None = None, frame_indices=None) -> Clip:
        raise NotImplementedError

    def frame_transform(self, processor) -> Callable | None:
        """What to apply to each frame as it is decoded (`load_video_frames(..., frame_transform=...)`), so that a 4K
        clip is never held at full size; its output must be accepted by `clip_from_frames`. `None`: frames are kept
        as decoded (uint8 `[H, W, 3]`)."""
        return None

    def blank_clip(self, processor, num_frames: int | None, like: Clip | None = None) -> Clip:
        """Black frames: zeros shaped as `like` when given, else `num_frames` black 8×8 frames through the processor."""
        if like is not None:
            inputs = {
                key: torch.zeros_like(value) if value.is_floating_point() else value.clone()
                for key, value in like.inputs.items()
            }
            return Clip(inputs, like.num_frames, list(like.frame_indices))
        frames = np.zeros((num_frames or 1, 8, 8, 3), dtype=np.uint8)
        return self.clip_from_frames(processor, frames, frame_indices=list(range(len(frames))))

    def collate_clips(self, clips: Sequence[Clip], *, input_ids=None, processor=None) -> dict:
        raise NotImplementedError

    # ---- prompts ----

    def video_token(self, processor) -> str:
        raise NotImplementedError

    def video_token_ids(self, processor) -> list[int]:
        raise NotImplementedError

    def video_token_count(self, processor, clip: Clip | None) -> int:
        raise NotImplementedError

    def render_prompt(
        self, processor, messages: list[dict], *, add_generation_prompt: bool = True, chat_template=None, **kwargs
    ) -> str:
        return processor.apply_chat_template(
            messages,
            chat_template=chat_template,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
            **kwargs,
        )

    def question_prompt(self, processor, question: str) -> str:
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
        return self.render_prompt(processor, messages)

    def tokenize_prompts(self, processor, texts: Sequence[str], clips: Sequence[Clip | None]) -> list[list[int]]:
        raise NotImplementedError

    def prompt_length(self, processor, text: str) -> int:
        return len(self.tokenize_prompts(processor, [text], [None])[0])

    def layout_clip(self, processor, video) -> Clip | None:
        return None

    def max_length(self, processor) -> int | None:
        limit = getattr(getattr(processor, "tokenizer", processor), "model_max_length", None)
        return int(limit) if limit is not None and limit < 10**12 else None  # transformers' "no limit" is ~1e30

    def tokenize_conversation(self, processor, messages: list[dict], clip: Clip | None) -> tuple[list, list]:
        raise NotImplementedError

    def tokenize_pretrain(self, processor, messages: list[dict], clip: Clip | None) -> tuple[list, list]:
        raise NotImplementedError(f"the {self.name} family has no pretrain conversation format")

    # ---- the vision path ----

    def encode(self, model, clips: Sequence[Clip]) -> list | None:
        return None

    def model_inputs(
        self,
        model,
        input_ids: torch.LongTensor | None,
        clips: Sequence[Clip],
        index: torch.LongTensor,
        encodings: Sequence | None,
        *,
        reuse: bool,
    ) -> dict:
        raise NotImplementedError

    def vision_module(self, model) -> torch.nn.Module:
        raise NotImplementedError

    def freeze(self, model, *, vision: bool = True, connector: bool = False, language_model: bool = False) -> None:
        raise NotImplementedError

    def frozen_modules(self, model) -> list[str]:
        raise NotImplementedError

    # ---- temporal contrast ----

    def temporal_units(self, clip: Clip) -> int:
        return clip.num_frames

    def permute_clip(self, clip: Clip, permutation: torch.LongTensor) -> Clip:
        raise NotImplementedError

    def permute_encoding(self, encoding, clip: Clip, permutation: torch.LongTensor):
        raise NotImplementedError

    # ---- vLLM ----

    def check_vllm(self, model) -> None:
        """Raise `ValueError` (one line) when vLLM's model of the family cannot run `model`'s configuration."""

    def embed_prompts(self, model, input_ids: torch.LongTensor, **model_inputs) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} has no prompt-embeddings route to vLLM")

    def vllm_video(self, processor, clip: Clip) -> dict:
        """One clip as vLLM takes it: `{"multi_modal_data": {"video": ...}, "mm_processor_kwargs": {...}}`, the
        parts of a vLLM `TokensPrompt` besides the ids (`vllm_route == "native"`).

        Raises:
            NotImplementedError: no request form is registered for the family (`r1video.policies.vllm_video`).
        """
        from r1video.policies.vllm_video import native_request_for

        request = native_request_for(self.name)
        if request is None:
            raise NotImplementedError(f"{self.name} has no native vLLM request form (r1video/policies/vllm_video.py)")
        return request(processor, clip)

    def vllm_prompt_ids(self, processor, ids: list[int], clip: Clip | None) -> list[int]:
        """A row's prompt ids (placeholders expanded, `tokenize_prompts`) as vLLM takes them with its clip: every run
        of the family's video tokens collapsed to its first token, which vLLM expands to the clip's token count
        itself (`vllm_route == "native"`).

        Raises:
            ValueError: the ids cannot be brought back to the form vLLM expands (a family's override says why).
        """
        from r1video.policies.vllm_video import collapse_placeholders

        return collapse_placeholders(ids, self.video_token_ids(processor))

    # ---- checkpoints ----

    def load_checkpoint(self, model, checkpoint_dir) -> bool:
        return False

    def model_card_facts(self, model, load_path: str) -> ModelCardFacts:
        """What the model card says about the family (see [`ModelCardFacts`]); `load_path` is the folder or Hub id
        the card's snippet loads. By default the family's `name` and r1video's own loader."""
        return ModelCardFacts(
            description=f"A `{self.name}` model",
            python=(
                "from r1video.policies import load_policy\n\n"
                f"policy, model, processor = load_policy({json.dumps(load_path)})"
            ),
        )

    def sync_reference(self, model, ref_model) -> None:
        return None


# ---- helpers for implementations -----------------------------------------------------------------------------------


class HFVideoPolicy(VideoPolicy):
    """A family whose model and processor are transformers' own classes: `load`, `load_processor` and the core
    model lookup written once. Subclasses set `model_class_name` (the `...ForConditionalGeneration` class) and
    `core_class_name` (the inner model holding the vision tower and the LM), both names in `transformers`."""

    model_class_name: str = ""
    core_class_name: str = ""
    # The model card: the family's name (a markdown link to its paper where one is known), its parts (`{llm}`: the
    # language model's `model_type`), and the key patterns `save_pretrained` writes for `model_class_name`
    # (`checkpoint_keys`, plus `head_keys` when the output head is not tied to the input embeddings).
    model_card_title: str = ""
    model_card_parts: str = ""
    checkpoint_keys: tuple[str, ...] = ()
    head_keys: tuple[str, ...] = ("lm_head.*",)

    def load(self, name_or_path, *, dtype=torch.float32, attn_implementation=None, revision=None,
             trust_remote_code=False):  # fmt: skip
        """`(model, processor)` from a local folder or a Hub id; the tokenizer pads on the left (generation, and
        the per-token inputs built from the padded ids)."""
        import transformers

        processor = self.load_processor(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
        model = getattr(transformers, self.model_class_name).from_pretrained(
            name_or_path,
            dtype=dtype,
            attn_implementation=attn_implementation,
            revision=revision,
            trust_remote_code=trust_remote_code,
        )
        return model, processor

    def load_processor(self, name_or_path, *, revision=None, trust_remote_code=False):
        """The family's processor, padding on the left."""
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(
            name_or_path, padding_side="left", revision=revision, trust_remote_code=trust_remote_code
        )

    def saved_key_patterns(self, model) -> tuple[str, ...]:
        """The `fnmatch` patterns of the keys `save_pretrained` writes for `model`: `checkpoint_keys`, plus
        `head_keys` when the output head has its own weights (a tied head is not saved)."""
        head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
        untied = head is not None and head.weight is not embeddings.weight
        return self.checkpoint_keys + (self.head_keys if untied else ())

    def model_card_facts(self, model, load_path: str) -> ModelCardFacts:
        """The family's name and parts, transformers' own classes to load the folder, the saved key layout."""
        title = self.model_card_title or self.name
        llm = getattr(model.config.get_text_config(), "model_type", "causal")
        parts = f":\n{self.model_card_parts.format(llm=llm)}" if self.model_card_parts else ""
        path = json.dumps(load_path)
        keys = ", ".join(f"`{pattern}`" for pattern in self.saved_key_patterns(model))
        return ModelCardFacts(
            description=f"A {title} model (transformers' `{self.model_class_name}`{parts})",
            python_intro="Or with transformers alone:",
            python=(
                f"from transformers import AutoProcessor, {self.model_class_name}\n\n"
                f"model = {self.model_class_name}.from_pretrained({path})\n"
                f"processor = AutoProcessor.from_pretrained({path})"
            ),
            weights=(
                "The weights are in safetensors, in the key layout transformers' `save_pretrained` writes for\n"
                f"`{self.model_class_name}`" + (f" ({keys})." if keys else ".")
            ),
        )

    def _placeholder(self, processor, clip: Clip) -> str:
        """The text the processor writes for `clip` in place of one `video_token`."""
        raise NotImplementedError

    def _expand(self, processor, text: str, clip: Clip | None, row: int = 0) -> str:
        """`text` with its placeholder replaced by `_placeholder(processor, clip)`; unchanged without a clip.

        Raises:
            ValueError: the placeholder count is not 1 (with a clip) or 0 (without); names the row.
        """
        token = self.video_token(processor)
        expected = 0 if clip is None else 1
        if text.count(token) != expected:
            raise ValueError(
                f"row {row}: the prompt holds {text.count(token)} video placeholders {token!r} but the row has "
                f"{'no' if clip is None else 'one'} clip; a row with a video needs exactly one {{'type': 'video'}} "
                "part, a text-only row none"
            )
        return text if clip is None else text.replace(token, self._placeholder(processor, clip))

    def tokenize_prompts(self, processor, texts: list[str], clips: list) -> list[list[int]]:
        """Unpadded ids, each placeholder expanded as the processor expands it for its row's clip ([`_placeholder`]).

        Raises:
            ValueError: a row's placeholder count is not 1 (with a clip) or 0 (without); names the row.
        """
        if len(texts) != len(clips):
            raise ValueError(f"{len(texts)} prompts but {len(clips)} clips (one per row, None for a text-only row)")
        rows = enumerate(zip(texts, clips, strict=True))
        expanded = [self._expand(processor, text, clip, row) for row, (text, clip) in rows]
        return processor.tokenizer(expanded, add_special_tokens=False)["input_ids"]

    @staticmethod
    def _freeze_language_model(model, language_model) -> None:
        """Freeze `language_model` (the core's LM) and the model's output head (tied or not)."""
        language_model.requires_grad_(False)
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if head is not None:
            head.requires_grad_(False)

    def _core(self, model):
        """The `core_class_name` module inside `model`, whatever wraps it (DDP, DeepSpeed, a PEFT adapter).

        Raises:
            TypeError: `model` holds no such module.
        """
        import transformers

        core_class = getattr(transformers, self.core_class_name)
        for module in model.modules():
            if isinstance(module, core_class):
                return module
        raise TypeError(f"{type(model).__name__} holds no {self.core_class_name}")


def conversation_segments(processor, messages: list[dict], render: Callable | None = None) -> list[tuple[str, bool]]:
    """Cut a rendered conversation into `(text, supervised)` segments whose concatenation is the full render.

    For every assistant turn, the render of the conversation up to it with the generation prompt is a prompt segment
    and what the render with the reply adds after it is a reply segment.

    Args:
        processor: renders with its chat template (`apply_chat_template(..., tokenize=False)`) unless `render` is given.
        messages: TRL conversational messages ending with an assistant turn.
        render: `(messages, add_generation_prompt) -> str`, the renderer to use.

    Raises:
        ValueError: the chat template does not render prefixes as prefixes of the full conversation, so replies
            cannot be located.
    """
    if render is None:

        def render(turns, add_generation_prompt=False):
            return processor.apply_chat_template(turns, tokenize=False, add_generation_prompt=add_generation_prompt)

    segments, done = [], ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt, full = render(messages[:i], add_generation_prompt=True), render(messages[: i + 1])
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise ValueError(
                "The chat template does not render a conversation's prefixes as prefixes of it, so the assistant "
                f"replies cannot be located. Prompt of turn {i}: {prompt!r}; rendered with the reply: {full!r}"
            )
        segments += [(prompt[len(done) :], False), (full[len(prompt) :], True)]
        done = full
    rest = render(messages)[len(done) :]
    if rest:
        segments.append((rest, False))
    return segments


def reply_texts(messages: list[dict]) -> list[str]:
    """The text of each assistant turn."""
    texts = []
    for message in messages:
        if message["role"] != "assistant":
            continue
        content = message["content"]
        texts.append(content if isinstance(content, str) else "".join(p.get("text") or "" for p in content))
    return texts


def check_replies(messages: list[dict], specials) -> None:
    """Refuse a reply holding a special token's text, which the tokenizer would read as the control token itself.

    Raises:
        ValueError: naming the tokens and the reply.
    """
    for text in reply_texts(messages):
        found = sorted(token for token in specials if token in text)
        if found:
            raise ValueError(
                f"An assistant reply contains the special token text {found}, which would be read as the token "
                f"itself; remove it from the data. Reply: {text!r}"
            )


def pack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One tensor for a list of per-video tensors: stacked when shapes agree, else a nested tensor.

    TRL forwards only tensors to `generate`; a nested tensor carries videos with different frame counts.
    """
    if len({tuple(t.shape) for t in tensors}) == 1:
        return torch.stack(tensors)
    return torch.nested.nested_tensor(tensors)

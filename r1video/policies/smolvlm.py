"""SmolVLM2 behind the policy-family seam: how `SmolVLMForConditionalGeneration` takes a video.

SmolVLM2 has no video path in the model: a clip's frames are images. Its `SmolVLMVideoProcessor` resizes every frame
to the tower's square input and gives, per clip,

    pixel_values           [F, C, S, S]   the frames
    pixel_attention_mask   [F, S, S]      1 on real pixels (0 where the processor padded frames of a batch)

and `SmolVLMProcessor` writes the video into the prompt as text around image tokens: "You are provided the following
series of {F in words} frames from a {H:MM:SS} [H:MM:SS] video.", then per frame "Frame from {MM:SS}:" and
`<fake_token_around_image><global-img>` + `<image>` x `image_seq_len` + `<fake_token_around_image>`, then a blank line.
The frame times come from the clip's metadata (source fps and frame indices), so a clip keeps them with its tensors
(`timestamps [F]`, `duration [1]`, seconds, float64) and [`tokenize_prompts`] expands the rendered prompt's `<video>`
exactly as the processor does (checked against the processor's own call in the tests).

Vision once ([`encode`], [`model_inputs`]). The SigLIP-like `vision_model` is frozen; it runs once per distinct clip
under `no_grad`. What trains runs in every pass on the cached output:
- connector trainable (the recipes: pixel shuffle + `modality_projection`): the cache is the tower's output
  `[F, patches, Dv]`, and the connector runs on it inside the pass;
- connector frozen too: the cache is the frames' image features `[F * image_seq_len, D]`.
The forward gets `mm_encoder_outputs={"image": ...}` (modality key "image": the model has no video input) with one
`pooler_output` entry per row's video, which the forward concatenates, so clips of different lengths travel together.

The traps. There is no `get_video_features`: frames go through `get_image_features`, whose pixel input is
`[rows, max frames, C, S, S]` with the missing frames of shorter clips as all-zero padding frames, which it drops
(so a clip's frames must never be all zeros: [`blank_clip`] sends black frames through the processor, not zero
tensors), and whose `pixel_attention_mask` marks the real pixels (the patch mask SigLIP's position ids follow).
"""

from datetime import timedelta

import numpy as np
import torch

from r1video.model.templates import OPTION_INSTRUCTION, REASON_INSTRUCTION
from r1video.policies.base import IGNORE_INDEX, Clip, HFVideoPolicy, check_replies, conversation_segments
from r1video.policies.registry import register
from r1video.policies.tiny_tokenizer import finish_tiny_model, split_sub_overrides, train_bpe_tokenizer

# Frames assumed by the prompt-length bound when no clip is at hand (the recipes' 16 frames).
DEFAULT_BOUND_FRAMES = 16
PIXEL_KEYS = ("pixel_values", "pixel_attention_mask")


def _projector(core):
    return core.connector  # transformers' own name for SmolVLM's pixel shuffle + projection


def _patch_mask(core, pixel_attention_mask: torch.Tensor) -> torch.Tensor:
    """`[frames, S/P, S/P]` bool: a patch is real when any of its pixels is (as `get_image_features` computes it)."""
    patch = core.config.vision_config.patch_size
    subgrid = pixel_attention_mask.unfold(1, patch, patch).unfold(2, patch, patch)
    return subgrid.sum(dim=(-1, -2)) > 0


def _layout_clip(times: list[float], duration: float, indices: list[int]) -> Clip:
    """A pixel-free clip of `len(times)` frames at `times` seconds: what the prompt expansion reads
    (`pixel_values [F, 0]` for the frame count, `timestamps`, `duration`)."""
    frames = len(times)
    inputs = {
        "pixel_values": torch.zeros(frames, 0),
        "timestamps": torch.tensor(times, dtype=torch.float64),
        "duration": torch.tensor([duration], dtype=torch.float64),
    }
    return Clip(inputs, frames, indices)


def _image_output(features: list[torch.Tensor]):
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    return BaseModelOutputWithPooling(pooler_output=list(features))


@register
class SmolVLMPolicy(HFVideoPolicy):
    """SmolVLM / SmolVLM2 (`model_type` `smolvlm`): stateless; the processor and model are passed in."""

    name = "smolvlm"
    model_types = ("smolvlm",)
    processor_class_names = ("SmolVLMProcessor",)
    model_card_tags = ("smolvlm",)
    vllm_route = None
    vllm_route_reason = (
        "vLLM 0.30 takes no video for SmolVLM (images only, vllm/model_executor/models/idefics3.py:107-108), and its "
        "image path cannot give a frame as the video prompt does (one global tile): with image splitting it writes "
        "a tile grid per frame (idefics3.py:149-192), without it it sizes each image's pixels by transformers' "
        "get_number_of_image_patches, which is 0 then, so the frames would reach the model without pixels "
        "(idefics3.py:279-307, 634); see docs/vllm.md"
    )
    model_class_name = "SmolVLMForConditionalGeneration"
    core_class_name = "SmolVLMModel"
    model_card_title = "[SmolVLM](https://arxiv.org/abs/2504.05299)"
    model_card_parts = "SigLIP vision encoder, pixel-shuffle connector, {llm} language model"
    checkpoint_keys = ("model.vision_model.*", "model.connector.*", "model.text_model.*")

    # ---- loading ------------------------------------------------------------------------------------------------

    def build_tiny(self, output_dir=None, *, seed: int = 0, **overrides):
        """A random tiny SmolVLM with the real processor ([`build_tiny_smolvlm`])."""
        return build_tiny_smolvlm(output_dir, seed=seed, **overrides)

    # ---- prompts --------------------------------------------------------------------------------------------------

    def video_token(self, processor) -> str:
        return processor.video_token  # "<video>": replaced by text and image tokens, never tokenized itself

    def video_token_ids(self, processor) -> list[int]:
        return [processor.image_token_id]

    def video_token_count(self, processor, clip: Clip | None) -> int:
        """`F * image_seq_len` image tokens; without a clip, those of `DEFAULT_BOUND_FRAMES` frames."""
        frames = DEFAULT_BOUND_FRAMES if clip is None else int(clip.inputs["pixel_values"].shape[0])
        return frames * processor.image_seq_len

    def _placeholder(self, processor, clip: Clip) -> str:
        """What the processor writes for a clip in place of `<video>` (`SmolVLMProcessor.replace_video_token`)."""
        from num2words import num2words

        frames = int(clip.inputs["pixel_values"].shape[0])
        image = (
            processor.fake_image_token
            + processor.global_image_token
            + processor.image_token * processor.image_seq_len
            + processor.fake_image_token
        )
        duration = timedelta(seconds=int(float(clip.inputs["duration"][0])))
        text = (
            f"You are provided the following series of {num2words(frames)} frames from a {duration} [H:MM:SS] video.\n"
        )
        for second in clip.inputs["timestamps"].tolist():
            text += f"\nFrame from {int(second // 60):02d}:{int(second % 60):02d}:" + image
        return text + "\n\n"

    def layout_clip(self, processor, video) -> Clip:
        """The clip's frame count and times without pixels, from the frames the reader would return (`video`, a
        [`r1video.data.video.VideoLayout`]): every frame is resized to the tower's square input, so its image tokens
        do not depend on the source's size; the times are `index / fps` and the duration `frames / fps`, as
        [`clip_from_frames`] has them."""
        rate = float(video.fps)
        times = [i / rate for i in video.indices]
        return _layout_clip(times, video.num_total_frames / rate, list(video.indices))

    def prompt_length(self, processor, text: str, clip: Clip | None = None) -> int:
        """Tokens of a rendered prompt with its video written out: exactly for `clip`, else for a clip of
        `DEFAULT_BOUND_FRAMES` frames at 59:59 (the longest timestamps), an upper bound for clips under an hour."""
        if clip is None and self.video_token(processor) in text:
            clip = _layout_clip([3599.0] * DEFAULT_BOUND_FRAMES, 3599.0, [])
        return len(self.tokenize_prompts(processor, [text], [clip])[0])

    def tokenize_conversation(self, processor, messages: list[dict], clip: Clip | None):
        """SFT: `(ids, labels)` through SmolVLM's chat template; each reply is what the render with it adds after the
        generation prompt `Assistant:` (its leading space, the text and `<end_of_utterance>`, what generation
        produces); the newline after `<end_of_utterance>` and everything else are -100. Segments are tokenized
        apart, as GRPO tokenizes the prompt apart from the completion.

        Raises:
            ValueError: a reply holds a special token's text; the template does not render prefixes as prefixes;
                the placeholder count does not match `clip`.
        """
        tokenizer = processor.tokenizer
        check_replies(messages, tokenizer.all_special_tokens)
        segments = conversation_segments(
            processor,
            messages,
            lambda turns, add_generation_prompt=False: self.render_prompt(
                processor, turns, add_generation_prompt=add_generation_prompt
            ),
        )
        token, eos = self.video_token(processor), tokenizer.eos_token
        if clip is not None and sum(text.count(token) for text, _ in segments) != 1:
            raise ValueError("the conversation must hold exactly one video placeholder for its clip")
        ids, labels = [], []
        for text, supervised in segments:
            if supervised and eos in text:  # the reply up to its end token is learnt, the rest is template
                end = text.index(eos) + len(eos)
                text, rest = text[:end], text[end:]
            else:
                rest = ""
            if token in text:
                text = self._expand(processor, text, clip)
            for part, learnt in ((text, supervised), (rest, False)):
                if part:
                    part_ids = tokenizer(part, add_special_tokens=False)["input_ids"]
                    ids += part_ids
                    labels += part_ids if learnt else [IGNORE_INDEX] * len(part_ids)
        return ids, labels

    # ---- clips ----------------------------------------------------------------------------------------------------

    def decode_clip(
        self, processor, path, *, num_frames=None, fps=None, max_frames=None, autorotate=True, reader=None
    ) -> Clip:
        """Decode `path` with r1video's PyAV reader (or `reader`, same signature) and process the frames with
        SmolVLM's video processor, timed by the source's frame rate.

        Raises:
            VideoDecodeError: as `r1video.data.video.load_video_frames`.
        """
        from r1video.data.video import load_video_frames

        read = reader or load_video_frames
        video = read(path, num_frames=num_frames, fps=fps, max_frames=max_frames, autorotate=autorotate)
        return self.clip_from_frames(processor, video.frames, fps=video.fps, frame_indices=list(video.indices),
                                     num_total_frames=video.num_total_frames)  # fmt: skip

    def clip_from_frames(self, processor, frames, *, fps=None, frame_indices=None, num_total_frames=None) -> Clip:
        """A clip from frames already decoded.

        Args:
            frames: `[T, H, W, 3]` uint8 (numpy or torch).
            fps: the source's frame rate (the frame times of the prompt are `index / fps`). Without it the processor's
                own default is used: 24 fps, with its warning silenced.
            frame_indices: source indices of `frames` (default `0..T-1`).
            num_total_frames: frames in the source (the duration; default: the last index + 1).
        """
        from transformers.video_utils import VideoMetadata

        frames = np.asarray(frames)
        indices = list(range(len(frames))) if frame_indices is None else [int(i) for i in frame_indices]
        rate = 24.0 if fps is None else float(fps)  # SmolVLMProcessor's default without metadata
        total = num_total_frames if num_total_frames is not None else max(indices) + 1
        metadata = VideoMetadata(total_num_frames=total, fps=rate, frames_indices=indices, duration=total / rate)
        # r1video's reader chose the frames: the processor must not sample again (a checkpoint may turn it on)
        out = processor.video_processor(
            videos=[frames], video_metadata=[metadata], do_sample_frames=False, return_tensors="pt"
        )
        inputs = {
            "pixel_values": out["pixel_values"][0],
            "pixel_attention_mask": out["pixel_attention_mask"][0],
            "timestamps": torch.tensor([i / rate for i in indices], dtype=torch.float64),
            "duration": torch.tensor([total / rate], dtype=torch.float64),
        }
        return Clip(inputs=inputs, num_frames=len(frames), frame_indices=indices)

    def blank_clip(self, processor, num_frames: int | None, like: Clip | None = None) -> Clip:
        """Black frames through the processor (never all-zero tensors: `get_image_features` drops an all-zero frame
        as padding, and the clip's image tokens would then have no features); `like`'s frame count, size and times."""
        if like is None:
            return super().blank_clip(processor, num_frames)
        size = like.inputs["pixel_values"].shape[-2:]
        frames = np.zeros((like.num_frames, *size, 3), dtype=np.uint8)
        clip = self.clip_from_frames(processor, frames)
        return Clip({**like.inputs, **{k: clip.inputs[k] for k in PIXEL_KEYS}}, like.num_frames,
                    list(like.frame_indices))  # fmt: skip

    @staticmethod
    def _padded(clips: list[Clip], device=None) -> dict:
        """The model's own pixel input for videos of different lengths: `pixel_values [videos, max F, C, S, S]`
        (missing frames all zero, which `get_image_features` drops) and `pixel_attention_mask [videos, max F, S, S]`,
        as `SmolVLMVideoProcessor` pads a batch."""
        most = max(clip.inputs["pixel_values"].shape[0] for clip in clips)
        out = {}
        for key in PIXEL_KEYS:
            tensors = [clip.inputs[key].to(device) if device is not None else clip.inputs[key] for clip in clips]
            padded = tensors[0].new_zeros((len(tensors), most, *tensors[0].shape[1:]))
            for row, tensor in enumerate(tensors):
                padded[row, : tensor.shape[0]] = tensor
            out[key] = padded
        return out

    def collate_clips(self, clips: list, *, input_ids=None, processor=None) -> dict:
        """`pixel_values [videos, max F, C, S, S]` and `pixel_attention_mask` of the rows' clips in row order (`None`
        rows skipped), shorter clips padded with all-zero frames as the processor pads a batch."""
        clips = [clip for clip in clips if clip is not None]
        return self._padded(clips) if clips else {}

    # ---- temporal contrast ----------------------------------------------------------------------------------------

    def temporal_units(self, clip: Clip) -> int:
        """Frames: each is its own image to the tower and the connector."""
        return int(clip.inputs["pixel_values"].shape[0])

    @staticmethod
    def _check(permutation, units: int) -> torch.LongTensor:
        permutation = torch.as_tensor(permutation, dtype=torch.long)
        if sorted(permutation.tolist()) != list(range(units)):
            raise ValueError(f"a permutation of {len(permutation)} units for a clip of {units} frames")
        return permutation

    def permute_clip(self, clip: Clip, permutation) -> Clip:
        """The clip with its frames in `permutation`'s order; the prompt's frame times stay in order (the shuffled
        clip is shown as if filmed that way)."""
        permutation = self._check(permutation, self.temporal_units(clip))
        inputs = dict(clip.inputs)
        for key in PIXEL_KEYS:
            inputs[key] = clip.inputs[key][permutation.to(clip.inputs[key].device)]
        indices = [clip.frame_indices[u] for u in permutation.tolist()] if clip.frame_indices else []
        return Clip(inputs=inputs, num_frames=clip.num_frames, frame_indices=indices)

    def permute_encoding(self, encoding: torch.Tensor, clip: Clip, permutation) -> torch.Tensor:
        """A cached encoding with its frames reordered: the tower's `[F, patches, Dv]` along dim 0, or the image
        features `[F * image_seq_len, D]` by blocks of a frame's tokens."""
        units = self.temporal_units(clip)
        permutation = self._check(permutation, units).to(encoding.device)
        if encoding.dim() == 3:
            return encoding[permutation]
        return encoding.unflatten(0, (units, -1))[permutation].flatten(0, 1)

    # ---- freezing -------------------------------------------------------------------------------------------------

    def freeze(self, model, *, vision: bool = True, connector: bool = False, language_model: bool = False) -> None:
        """Freeze the named parts (a part set `False` is left as it is): `vision` the vision encoder, `connector`
        the pixel shuffle + projection, `language_model` the decoder and `lm_head`."""
        core = self._core(model)
        if vision:
            core.vision_model.requires_grad_(False)
        if connector:
            _projector(core).requires_grad_(False)
        if language_model:
            self._freeze_language_model(model, core.text_model)

    def frozen_modules(self, model) -> list[str]:
        """The parts (`vision`, `connector`, `language_model`) whose every parameter is frozen."""
        core = self._core(model)
        parts = {
            "vision": list(core.vision_model.parameters()),
            "connector": list(_projector(core).parameters()),
            "language_model": list(core.text_model.parameters()),
        }
        return [name for name, params in parts.items() if not any(p.requires_grad for p in params)]

    def vision_module(self, model):
        """The vision encoder: its forward hook sees `pixel_values [frames, C, S, S]` (keyword) per call."""
        return self._core(model).vision_model

    # ---- vision once ----------------------------------------------------------------------------------------------

    def encode(self, model, clips: list) -> list | None:
        """Run the frozen part of the vision path once over `clips` (distinct clips, their frames in one call),
        under `no_grad`.

        Returns:
            One tensor per clip: the encoder's output `[F, patches, Dv]` when the connector trains, else the frames'
            image features `[F * image_seq_len, D]`; `None` when the encoder itself trains.
        """
        if not clips:
            return []
        core = self._core(model)
        if any(p.requires_grad for p in core.vision_model.parameters()):
            return None
        connector_trains = any(p.requires_grad for p in _projector(core).parameters())
        device = next(core.vision_model.parameters()).device
        pixels = torch.cat([clip.inputs["pixel_values"] for clip in clips]).to(device, core.dtype)
        mask = torch.cat([clip.inputs["pixel_attention_mask"] for clip in clips]).to(device)
        with torch.no_grad():
            hidden = core.vision_model(
                pixel_values=pixels, patch_attention_mask=_patch_mask(core, mask), return_dict=True
            ).last_hidden_state
            per_clip = hidden.split([clip.inputs["pixel_values"].shape[0] for clip in clips])
            if connector_trains:
                return list(per_clip)
            return [_projector(core)(h).flatten(0, 1) for h in per_clip]

    def model_inputs(self, model, input_ids, clips: list, index, encodings: list | None, *, reuse: bool) -> dict:
        """Keyword arguments for `model(input_ids=..., attention_mask=..., **kw)` and `model.generate(...)`.

        Args:
            input_ids: `[rows, L]` the padded ids, or `None` (not needed: positions are 1-D).
            clips: the batch's distinct clips; `index[r]` is row `r`'s (-1: text-only).
            encodings: [`encode`]'s output for `clips`, or `None`.
            reuse: with `encodings`, each distinct clip's cached output goes through what trains once and its rows
                share the result. Without `encodings`, or with `reuse=False`, every row's clip goes through the whole
                vision path inside the forward (`pixel_values` padded to the longest clip, `pixel_attention_mask`:
                the model's own input, one copy per row).

        Returns:
            `mm_encoder_outputs={"image": pooler_output [one [F * image_seq_len, D] per row's video]}` or
            `pixel_values` + `pixel_attention_mask`; `{}` for a batch without video.
        """
        rows = [int(i) for i in torch.as_tensor(index).tolist()]
        used = [i for i in rows if i >= 0]
        if not used:
            return {}
        core = self._core(model)
        device = input_ids.device if input_ids is not None else next(core.parameters()).device
        if not reuse or encodings is None:
            return self._padded([clips[i] for i in used], device)
        by_clip = {}
        for i in dict.fromkeys(used):
            encoding = encodings[i].to(device)
            by_clip[i] = _projector(core)(encoding).flatten(0, 1) if encoding.dim() == 3 else encoding
        return {"mm_encoder_outputs": {"image": _image_output([by_clip[i] for i in used])}}


# ---- a random tiny model, offline ----------------------------------------------------------------------------------

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<global-img>",
    "<image>",
]
TINY_CORPUS = [
    "User: Assistant: You are provided the following series of frames from a video. Frame from",
    REASON_INSTRUCTION,  # the prompts' own words, so the tiny tokenizer splits them as a real one would
    f"{OPTION_INSTRUCTION} Options:",
    "A. B. C. D. E. (A) (B) (C) (D) (E) A B C D E 0 1 2 3 4 5 6 7 8 9 10 ? . , : ; zero one two three four five six "
    "seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen twenty thirty forty fifty sixty hundred",
    "what which how many does the a an of in on at to from is are was were do did video clip frame frames object "
    "ball square circle box dot shape colour color red green blue yellow white black moves move left right up down "
    "first second last before after then appears changes count number answer question think",
]
TEXT_DEFAULTS = dict(
    model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True,
)  # fmt: skip
# 32 px frames with 8 px patches: 4x4 patches, pixel shuffle by 2: 4 image tokens per frame.
VISION_DEFAULTS = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                       patch_size=8)  # fmt: skip


def build_tiny_smolvlm_tokenizer(vocab_size: int = 600):
    """A byte-level BPE with SmolVLM2's special tokens and the processor's video chat template; eos
    `<end_of_utterance>`, pad `<|im_end|>` (as SmolVLM2), left padding."""
    from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE

    return train_bpe_tokenizer(
        TINY_CORPUS,
        SPECIAL_TOKENS,
        vocab_size,
        eos_token="<end_of_utterance>",
        pad_token="<|im_end|>",
        extra_special_tokens=SPECIAL_TOKENS[:3] + SPECIAL_TOKENS[4:],
        padding_side="left",
        model_max_length=8192,
        chat_template=DEFAULT_CHAT_TEMPLATE,
    )


def tiny_smolvlm_config(tokenizer, **overrides):
    """A tiny `SmolVLMConfig` whose token ids are `tokenizer`'s; `text_*` / `vision_*` keys set sub-config fields,
    other keys top-level fields."""
    from transformers import SmolVLMConfig

    text, vision = dict(TEXT_DEFAULTS), dict(VISION_DEFAULTS)
    split_sub_overrides(overrides, text, vision)
    ids = tokenizer.convert_tokens_to_ids
    text.update(vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=ids("<end_of_utterance>"),
                pad_token_id=ids("<|im_end|>"))  # fmt: skip
    fields = dict(image_token_id=ids("<image>"), scale_factor=2, tie_word_embeddings=text["tie_word_embeddings"],
                  pad_token_id=ids("<|im_end|>"))  # fmt: skip
    fields.update(overrides)
    return SmolVLMConfig(text_config=text, vision_config=vision, **fields)


def build_tiny_smolvlm_processor(config, tokenizer=None):
    """The real `SmolVLMProcessor` (its image and video processors) at the tiny tower's input size."""
    from transformers import SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    tokenizer = tokenizer if tokenizer is not None else build_tiny_smolvlm_tokenizer()
    size = config.vision_config.image_size
    edge = {"longest_edge": size}
    seq_len = (size // config.vision_config.patch_size) ** 2 // config.scale_factor**2
    return SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(size=edge, max_image_size=edge),
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(size=edge, max_image_size=edge),
        image_seq_len=seq_len,
        chat_template=tokenizer.chat_template,
    )


def build_tiny_smolvlm(output_dir=None, seed: int = 0, **config_overrides):
    """Build a random tiny SmolVLM and its real processor offline; save both to `output_dir` when given.

    Returns:
        `(model, processor)`; the model is in eval mode, float32, on CPU.
    """
    from transformers import SmolVLMForConditionalGeneration

    tokenizer = build_tiny_smolvlm_tokenizer()
    config = tiny_smolvlm_config(tokenizer, **config_overrides)
    torch.manual_seed(seed)
    model = SmolVLMForConditionalGeneration(config).eval()
    processor = build_tiny_smolvlm_processor(config, tokenizer)
    return finish_tiny_model(model, tokenizer, processor, output_dir)

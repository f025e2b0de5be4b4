"""Qwen2.5-VL behind the policy-family seam: how `Qwen2_5_VLForConditionalGeneration` takes a video.

Inputs. A clip is decoded by r1video's PyAV reader and turned into the family's tensors by its own
`Qwen2VLVideoProcessor`, with the clip's fps metadata so that `second_per_grid_ts` (seconds per temporal patch, which
scales the temporal M-RoPE index) is the real one:

    pixel_values_videos  [t*h*w, C*2*P*P]   patches, temporal-patch-major: rows f*h*w : (f+1)*h*w are temporal patch f
    video_grid_thw       [1, 3]             (t, h, w) in patches; t = ceil(frames / 2) (an odd clip repeats its last frame)
    second_per_grid_ts   [1]                2 / sampled fps

A prompt holds `<|vision_start|><|video_pad|><|vision_end|>` per video; [`tokenize_prompts`] expands the pad to
`t*h*w / merge²` tokens, so prompt lengths are real.

Vision once ([`encode`], [`model_inputs`]). The ViT (`visual` without its patch merger) is frozen; it runs once per
distinct clip under `no_grad`. What trains runs in every pass on the cached output:
- merger frozen too: the cache is the post-merger output `[t*h*w/4, D]` (what `get_video_features` gives);
- merger trainable: the cache is the pre-merger output `[t*h*w, Dv]`, put back from the ViT's window order into the
  patch order (the ViT runs on windows; its merger output is reordered with `argsort(window_index)`, and reordering
  the 4-row merge groups before the merger is the same as after), and `visual.merger` runs on it in each pass.
Either way the forward gets `mm_encoder_outputs={"video": ...}` with one entry per row's video (rows of one clip share
the tensor) plus `video_grid_thw`, `second_per_grid_ts` and `mm_token_type_ids` built from the padded `input_ids`.

M-RoPE state. The model keeps `rope_deltas` from its last call and reuses it for a call without `input_ids` or with a
KV cache. Every dict [`model_inputs`] returns goes with `input_ids` and carries `mm_token_type_ids` and the grids, so a
forward recomputes the 3-D positions from this call's rows and never inherits a previous call's deltas (a forward with
`input_ids` but without `mm_token_type_ids` would silently fall back to 1-D positions).

Temporal contrast permutes temporal patches (2 frames each), the unit the ViT and the positions see.
"""

import numpy as np
import torch

from r1video.policies.base import Clip, HFVideoPolicy
from r1video.policies.registry import register

VIDEO_TOKEN_TYPE = 2  # Qwen's `mm_token_type_ids`: 0 text, 1 image, 2 video
# qwen-vl-utils' default sampling rate: a clip given without its frame rate is taken as sampled at 2 fps.
DEFAULT_SAMPLED_FPS = 2.0
# Frames assumed by the prompt-length bound when no clip is at hand (the paper recipes' 16 frames).
DEFAULT_BOUND_FRAMES = 16


def _vit_parameters(visual):
    return [p for name, p in visual.named_parameters() if not name.startswith("merger.")]


def _tokens(clip: Clip, merge_size: int) -> int:
    return int(clip.inputs["video_grid_thw"].prod()) // merge_size**2


def _layout(video_processor, video, frames: int, videos_kwargs: dict) -> Clip:
    """A pixel-free clip of `frames` frames of `video`'s size: `video_grid_thw [[t, h*w, 1]]` from the video
    processor's `get_num_of_video_patches` (t = frames / temporal patch, rounded up as `patchify` pads)."""
    patches = video_processor.get_num_of_video_patches(frames, video.height, video.width, videos_kwargs)
    t = -(-frames // video_processor.temporal_patch_size)
    grid = torch.tensor([[t, patches // t, 1]])
    return Clip(inputs={"video_grid_thw": grid}, num_frames=len(video.indices), frame_indices=list(video.indices))


@register
class Qwen2_5_VLPolicy(HFVideoPolicy):
    """Qwen2.5-VL (`model_type` `qwen2_5_vl`): stateless; the processor and model are passed to each method."""

    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    processor_class_names = ("Qwen2_5_VLProcessor",)
    model_card_tags = ("qwen2_5_vl",)
    vllm_route = "native"  # the clip as multimodal data (r1video.trainer.vllm_native): M-RoPE positions cannot travel as prompt embeddings
    model_class_name = "Qwen2_5_VLForConditionalGeneration"
    core_class_name = "Qwen2_5_VLModel"
    model_card_title = "[Qwen2.5-VL](https://arxiv.org/abs/2502.13923)"
    model_card_parts = "vision transformer, MLP patch merger, Qwen2.5 language model"
    checkpoint_keys = ("visual.*", "model.*")  # the released Qwen2.5-VL checkpoints' layout

    # ---- loading ------------------------------------------------------------------------------------------------

    def build_tiny(self, output_dir=None, *, seed: int = 0, **overrides):
        """A random tiny Qwen2.5-VL with the real processor ([`r1video.policies.qwen2_5_vl_tiny`])."""
        from r1video.policies.qwen2_5_vl_tiny import build_tiny_qwen

        return build_tiny_qwen(output_dir, seed=seed, **overrides)

    def forward_flops(self, config, frames: int, tokens_per_sequence: int, frame_size=None) -> dict:
        """Analytic forward FLOPs of the vision path (ViT + merger) for one clip of `frames` frames of `frame_size`
        pixels (default: the paper's 640×360 NextQA clips, resized as Qwen's processor does) and of the LLM over
        `tokens_per_sequence` tokens (video tokens included); `vision_to_llm` is their ratio
        ([`r1video.policies.qwen2_5_vl_flops`])."""
        from r1video.policies.qwen2_5_vl_flops import PAPER_FRAME_SIZE, resized, split

        config = config if isinstance(config, dict) else {**config.text_config.to_dict(),
                                                          "vision_config": config.vision_config.to_dict()}  # fmt: skip
        vision = config["vision_config"]
        patch = vision["patch_size"]
        height, width = resized(*(frame_size or PAPER_FRAME_SIZE), patch * vision["spatial_merge_size"], 1, 10**9)
        video_tokens = -(-frames // vision["temporal_patch_size"]) * (height // patch) * (width // patch) // 4
        return split(vision, config, frames, height // patch, width // patch, tokens_per_sequence - video_tokens)

    def reference_config(self) -> dict:
        """Qwen2.5-VL-3B-Instruct's `config.json`."""
        from r1video.policies.qwen2_5_vl_flops import real_config

        return real_config()

    def reference_flops(self) -> dict:
        """Qwen2.5-VL-3B at the paper's settings: 16 frames of 640×360, 512 text tokens beside the video's."""
        from r1video.policies.qwen2_5_vl_flops import real_split

        return real_split()

    def bench_shapes(self, quick: bool) -> dict:
        """The tiny shapes whose vision/LLM FLOPs match the 3B's (`r1video.policies.qwen2_5_vl_flops`); one layer
        each with `quick`."""
        from r1video.policies.qwen2_5_vl_flops import QUICK, TINY

        return dict(QUICK if quick else TINY)

    def encoder_frames(self, module, args: tuple, kwargs: dict) -> int:
        """Frames in one call of `visual(patches, grid_thw)`: temporal patches × `temporal_patch_size` (an image is
        one temporal patch: its frame repeated to fill it, so it counts as `temporal_patch_size` frames)."""
        grid = kwargs["grid_thw"] if "grid_thw" in kwargs else args[1]
        return int(grid[:, 0].sum()) * module.config.temporal_patch_size

    def max_length(self, processor) -> int | None:
        length = getattr(processor.tokenizer, "model_max_length", None)
        return length if length is not None and length < 10**9 else None

    # ---- prompts --------------------------------------------------------------------------------------------------

    def video_token(self, processor) -> str:
        return processor.video_token  # "<|video_pad|>", inside <|vision_start|> ... <|vision_end|>

    def _placeholder(self, processor, clip: Clip) -> str:
        """`<|video_pad|>` repeated `t*h*w / merge²` times."""
        return self.video_token(processor) * _tokens(clip, processor.video_processor.merge_size)

    def video_token_ids(self, processor) -> list[int]:
        return [processor.video_token_id]

    def video_token_count(self, processor, clip: Clip | None) -> int:
        """`t*h*w / merge²` of the clip's grid; without a clip, the most a clip of `DEFAULT_BOUND_FRAMES` frames at the
        processor's largest frame size gives (an upper bound, for checks that have no clip at hand)."""
        merge = processor.video_processor.merge_size
        if clip is not None:
            return _tokens(clip, merge)
        video = processor.video_processor
        per_frame = video.size["longest_edge"] // (video.patch_size * merge) ** 2
        return per_frame * -(-DEFAULT_BOUND_FRAMES // video.temporal_patch_size)

    def layout_clip(self, processor, video) -> Clip:
        """The clip's grid without pixels, from the frames the reader would return (`video`, a
        [`r1video.data.video.VideoLayout`]): the video processor's own `get_num_of_video_patches` for frames of the
        source's size (its resize rule). Held as `video_grid_thw = [[t, h*w, 1]]`: the prompt needs only the
        patches of a temporal patch."""
        video_processor = processor.video_processor
        frames = len(video.indices)
        size = dict(video_processor.size)
        if video_processor.cap_pixels_per_frame:
            # `Qwen2VLVideoProcessor.resize` then caps each frame at an even share of the clip's pixel budget; its
            # `get_num_of_video_patches` leaves the cap out, so it gets the capped size (resize's own rule)
            factor = video_processor.patch_size * video_processor.merge_size
            budget = int(video_processor.max_video_tokens * factor * factor * 0.9)
            capped = min(size["longest_edge"], budget * video_processor.temporal_patch_size // frames)
            size["longest_edge"] = max(capped, int(size["shortest_edge"] * 1.05))
        return _layout(video_processor, video, frames, {"size": size})

    def prompt_length(self, processor, text: str, clip: Clip | None = None) -> int:
        """Tokens of a rendered prompt with its placeholder expanded: exactly for `clip`, else at the upper bound of
        [`video_token_count`]."""
        token = self.video_token(processor)
        base = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
        return base + text.count(token) * (self.video_token_count(processor, clip) - 1)

    def _render_with_replies(self, processor, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
        """The full render of a conversation and the character spans of the supervised reply tokens (each reply
        and its `<|im_end|>`), as the chat template writes them."""
        full = self.render_prompt(processor, messages, add_generation_prompt=False)
        spans = []
        eos = processor.tokenizer.eos_token
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self.render_prompt(processor, messages[:i], add_generation_prompt=True)
            with_reply = self.render_prompt(processor, messages[: i + 1], add_generation_prompt=False)
            if not (full.startswith(with_reply) and with_reply.startswith(prompt)):
                raise ValueError(
                    "the chat template does not render a conversation's prefixes as prefixes of it, so the replies "
                    f"cannot be located (turn {i})"
                )
            reply = with_reply[len(prompt) :]
            end = reply.rfind(eos)
            end = len(reply) if end < 0 else end + len(eos)
            spans.append((len(prompt), len(prompt) + end))
        return full, spans

    def tokenize_conversation(self, processor, messages: list[dict], clip: Clip | None):
        """SFT: `(ids, labels)` of a conversation through Qwen's chat template, labels -100 outside the replies.

        Each assistant turn's reply is what the full render adds after the render of the turns before it with the
        generation prompt (`"<|im_start|>assistant\\n"`): the reply text and its `<|im_end|>`, exactly the tokens
        generation produces; the newline after `<|im_end|>` and everything else (system, user turns, video tokens)
        are masked.

        Raises:
            ValueError: the template does not render prefixes as prefixes (replies cannot be located), or the
                placeholder count does not match `clip`.
        """
        full, spans = self._render_with_replies(processor, messages)
        token = self.video_token(processor)
        if clip is not None and full.count(token) == 1:  # expanding shifts every later character alike
            at = full.index(token) + len(token)
            extra = len(self._placeholder(processor, clip)) - len(token)
            spans = [(a + extra if a >= at else a, b + extra if b >= at else b) for a, b in spans]
        text = self._expand(processor, full, clip)
        encoded = processor.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = encoded["input_ids"]
        labels = [
            token_id if any(a <= start < b for a, b in spans) else -100
            for token_id, (start, _) in zip(ids, encoded["offset_mapping"], strict=True)
        ]
        return ids, labels

    # ---- clips ----------------------------------------------------------------------------------------------------

    def decode_clip(
        self, processor, path, *, num_frames=None, fps=None, max_frames=None, autorotate=True, reader=None
    ) -> Clip:
        """Decode `path` with r1video's PyAV reader (or `reader`, same signature) and process it with Qwen's video
        processor. The processor needs the clip's frames together (2 per temporal patch), so they are decoded at
        the source's size first.

        Raises:
            VideoDecodeError: as `r1video.data.video.load_video_frames`.
        """
        from r1video.data.video import load_video_frames

        read = reader or load_video_frames
        video = read(path, num_frames=num_frames, fps=fps, max_frames=max_frames, autorotate=autorotate)
        return self.clip_from_frames(
            processor,
            video.frames,
            fps=video.fps,
            frame_indices=list(video.indices),
            num_total_frames=video.num_total_frames,
        )

    def clip_from_frames(self, processor, frames, *, fps=None, frame_indices=None, num_total_frames=None) -> Clip:
        """A clip from frames already decoded.

        Args:
            frames: `[T, H, W, 3]` uint8 (numpy or torch).
            fps: the source's frame rate; with `frame_indices` (and the source's `num_total_frames`) it gives the
                sampled rate as Qwen computes it (`len(indices) / total * fps`). Without `fps` the frames are taken
                as sampled at 2 fps (qwen-vl-utils' default), so `second_per_grid_ts` is 1.0.
            frame_indices: source indices of `frames` (default `0..T-1`).
            num_total_frames: frames in the source (default: the last index + 1).
        """
        from transformers.video_utils import VideoMetadata

        frames = np.asarray(frames)
        count = len(frames)
        indices = list(range(count)) if frame_indices is None else [int(i) for i in frame_indices]
        if fps is None:
            metadata = VideoMetadata(
                total_num_frames=count, fps=DEFAULT_SAMPLED_FPS, frames_indices=list(range(count))
            )
        else:
            total = num_total_frames if num_total_frames is not None else max(indices) + 1
            metadata = VideoMetadata(total_num_frames=total, fps=float(fps), frames_indices=indices)
        height, width = frames.shape[1:3]
        metadata.height, metadata.width = height, width
        out = processor.video_processor(
            videos=[frames], video_metadata=[metadata], return_metadata=True, return_tensors="pt"
        )
        sampled_fps = out["video_metadata"][0].sampled_fps
        inputs = {
            "pixel_values_videos": out["pixel_values_videos"],
            "video_grid_thw": out["video_grid_thw"],
            "second_per_grid_ts": torch.tensor(
                [processor.video_processor.temporal_patch_size / sampled_fps], dtype=torch.float32
            ),
        }
        return Clip(inputs=inputs, num_frames=count, frame_indices=indices)

    @staticmethod
    def _stack(clips: list) -> dict:
        clips = [clip for clip in clips if clip is not None]
        if not clips:
            return {}
        return {key: torch.cat([clip.inputs[key] for clip in clips]) for key in clips[0].inputs}

    def collate_clips(self, clips: list, *, input_ids=None, processor=None) -> dict:
        """The forward inputs of a batch's videos by the pixel path (SFT, eval): `pixel_values_videos`,
        `video_grid_thw`, `second_per_grid_ts` of the rows' clips in row order (`None` rows skipped), and
        `mm_token_type_ids [rows, L]` from the padded `input_ids`.

        Raises:
            ValueError: `input_ids` or `processor` missing: without `mm_token_type_ids` the model would silently
                give the video tokens 1-D positions.
        """
        batch = self._stack(clips)
        if not batch:
            return {}
        if input_ids is None or processor is None:
            raise ValueError(
                "Qwen2.5-VL's collate_clips needs the padded input_ids and the processor (keywords input_ids=, "
                "processor=) to build mm_token_type_ids; without them the video tokens get 1-D positions"
            )
        batch["mm_token_type_ids"] = (input_ids == processor.video_token_id).int() * VIDEO_TOKEN_TYPE
        return batch

    # ---- temporal contrast ----------------------------------------------------------------------------------------

    def temporal_units(self, clip: Clip) -> int:
        """Temporal patches (2 frames each): what a permutation reorders."""
        return int(clip.inputs["video_grid_thw"][0, 0])

    @staticmethod
    def _permute_blocks(tensor: torch.Tensor, permutation, units: int) -> torch.Tensor:
        permutation = torch.as_tensor(permutation, dtype=torch.long, device=tensor.device)
        if len(permutation) != units or tensor.shape[0] % units:
            raise ValueError(f"a permutation of {len(permutation)} units for a clip of {units} temporal patches")
        return tensor.unflatten(0, (units, -1))[permutation].flatten(0, 1)

    def permute_clip(self, clip: Clip, permutation) -> Clip:
        """The clip with its temporal patches (frame pairs) in `permutation`'s order; grid and timing unchanged, so the
        shuffled clip sits at the same positions as the original."""
        units = self.temporal_units(clip)
        inputs = dict(clip.inputs)
        inputs["pixel_values_videos"] = self._permute_blocks(clip.inputs["pixel_values_videos"], permutation, units)
        pairs = [clip.frame_indices[2 * u : 2 * u + 2] for u in range(units)]
        indices = [i for u in torch.as_tensor(permutation).tolist() for i in pairs[u]]
        return Clip(inputs=inputs, num_frames=clip.num_frames, frame_indices=indices)

    def permute_encoding(self, encoding: torch.Tensor, clip: Clip, permutation) -> torch.Tensor:
        """A cached encoding (pre- or post-merger, both temporal-patch-major) with its temporal patches reordered:
        the ViT attends within a temporal patch only, so this equals encoding the permuted clip."""
        return self._permute_blocks(encoding, permutation, self.temporal_units(clip))

    # ---- freezing -------------------------------------------------------------------------------------------------

    def freeze(self, model, *, vision: bool = True, connector: bool = False, language_model: bool = False) -> None:
        """Freeze the named parts (a part set `False` is left as it is): `vision` the ViT (`visual` without its patch
        merger), `connector` the patch merger, `language_model` the decoder and `lm_head`."""
        core = self._core(model)
        if vision:
            for p in _vit_parameters(core.visual):
                p.requires_grad_(False)
        if connector:
            core.visual.merger.requires_grad_(False)
        if language_model:
            self._freeze_language_model(model, core.language_model)

    def frozen_modules(self, model) -> list[str]:
        """The parts (`vision`, `connector`, `language_model`) whose every parameter is frozen."""
        core = self._core(model)
        parts = {
            "vision": _vit_parameters(core.visual),
            "connector": list(core.visual.merger.parameters()),
            "language_model": list(core.language_model.parameters()),
        }
        return [name for name, params in parts.items() if not any(p.requires_grad for p in params)]

    def vision_module(self, model):
        """`visual` (ViT + merger): its forward hook sees `(patches, grid_thw=...)` per call."""
        return self._core(model).visual

    # ---- checkpoints ----------------------------------------------------------------------------------------------

    def load_checkpoint(self, model, checkpoint_dir) -> bool:
        """Load a checkpoint's weights into `model` in place (resume). transformers saves Qwen2.5-VL under the
        released checkpoints' names (`visual.*`, `model.*` for the LM), not the module's (`model.visual.*`,
        `model.language_model.*`), and its Trainer loads with `strict=False`, which would match almost nothing and
        resume from the initial weights. Keys are mapped back with transformers' own rules for the family; every
        parameter must be found (the tied `lm_head` excepted), else an error.

        Returns:
            `False` for a model that is not a plain `Qwen2_5_VLForConditionalGeneration` (a PEFT wrapper keeps
            transformers' path).
        """
        import json
        import os
        import re

        from safetensors.torch import load_file
        from transformers import Qwen2_5_VLForConditionalGeneration

        if not isinstance(model, Qwen2_5_VLForConditionalGeneration):
            return False
        checkpoint_dir = str(checkpoint_dir)
        index = os.path.join(checkpoint_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
        else:
            shards = ["model.safetensors"]
        state_dict = {}
        for shard in shards:
            for key, tensor in load_file(os.path.join(checkpoint_dir, shard), device="cpu").items():
                key = re.sub(r"^visual", "model.visual", key)
                key = re.sub(r"^model(?!\.(language_model|visual))", "model.language_model", key)
                state_dict[key] = tensor
        result = model.load_state_dict(state_dict, strict=False)
        tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
        missing = set(result.missing_keys) - tied
        if missing or result.unexpected_keys:
            raise ValueError(
                f"{checkpoint_dir} does not match the model: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(result.unexpected_keys)[:5]}"
            )
        return True

    # ---- vision once ----------------------------------------------------------------------------------------------

    def encode(self, model, clips: list) -> list | None:
        """Run the frozen part of the vision path once over `clips` (distinct clips), under `no_grad`.

        Returns:
            One tensor per clip: the post-merger output `[t*h*w/4, D]` when the merger is frozen, else the ViT output
            before the merger `[t*h*w, Dv]` in patch order; `None` when the ViT itself trains (nothing to cache).
        """
        from transformers.vision_utils import get_vision_window_index

        if not clips:
            return []
        visual = self._core(model).visual
        if any(p.requires_grad for p in _vit_parameters(visual)):
            return None
        merger_trains = any(p.requires_grad for p in visual.merger.parameters())
        batch = self._stack(clips)
        device = next(visual.parameters()).device
        pixels = batch["pixel_values_videos"].to(device, visual.dtype)
        grid = batch["video_grid_thw"].to(device)
        with torch.no_grad():
            out = visual(pixels, grid_thw=grid)
        merge = visual.spatial_merge_size
        if not merger_trains:
            return list(out.pooler_output.split((grid.prod(-1) // merge**2).tolist()))
        window_index, _ = get_vision_window_index(
            grid, spatial_merge_size=merge, window_size=visual.window_size, patch_size=visual.patch_size
        )
        hidden = out.last_hidden_state.unflatten(0, (-1, merge**2))[torch.argsort(window_index.to(device))]
        return list(hidden.flatten(0, 1).split(grid.prod(-1).tolist()))

    def model_inputs(self, model, input_ids, clips: list, index, encodings: list | None, *, reuse: bool) -> dict:
        """Keyword arguments for `model(input_ids=..., attention_mask=..., **kw)` and `model.generate(...)`.

        Args:
            input_ids: `[rows, L]` the padded ids (left padding); row `r` holds the video tokens of its clip.
            clips: the batch's distinct clips; `index[r]` is row `r`'s (-1: text-only).
            encodings: [`encode`]'s output for `clips`, or `None`.
            reuse: with `encodings`, each distinct clip's cached output is used once and its rows share it (the
                merger, when it trains, runs here on the cached ViT output, inside this pass's graph). Without
                `encodings`, or with `reuse=False`, every row's clip goes through the whole vision path inside the
                model's forward (`pixel_values_videos`, one copy per row, as transformers' own processor path): under
                FSDP, where the trainer has no encodings, the sharded ViT then runs where its weights are gathered.

        Returns:
            `video_grid_thw [V, 3]`, `second_per_grid_ts [V]` (V = rows with a video, in row order),
            `mm_token_type_ids [rows, L]`, and `pixel_values_videos` or `mm_encoder_outputs`; `{}` for a batch
            without video (1-D positions, as transformers gives a text-only batch).
        """
        rows = [int(i) for i in torch.as_tensor(index).tolist()]
        used = [i for i in rows if i >= 0]
        if not used:
            return {}
        core = self._core(model)
        device = input_ids.device
        row_clips = [clips[i] for i in used]
        inputs = {
            "video_grid_thw": torch.cat([c.inputs["video_grid_thw"] for c in row_clips]).to(device),
            "second_per_grid_ts": torch.cat([c.inputs["second_per_grid_ts"] for c in row_clips]).to(device),
            "mm_token_type_ids": (input_ids == core.config.video_token_id).int() * VIDEO_TOKEN_TYPE,
        }
        if not reuse or encodings is None:
            inputs["pixel_values_videos"] = torch.cat([c.inputs["pixel_values_videos"] for c in row_clips]).to(device)
            return inputs
        distinct = list(dict.fromkeys(used))
        visual = core.visual
        embeds = []
        for i in distinct:
            encoding = encodings[i].to(device)
            if encoding.shape[0] == int(clips[i].inputs["video_grid_thw"].prod()):  # pre-merger: the merger trains
                encoding = visual.merger(encoding.to(visual.dtype))
            embeds.append(encoding)
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        by_clip = dict(zip(distinct, embeds, strict=True))
        inputs["mm_encoder_outputs"] = {
            "video": BaseModelOutputWithPooling(pooler_output=tuple(by_clip[i] for i in used))
        }
        return inputs

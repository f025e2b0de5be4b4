"""Qwen3-VL behind the policy-family seam: how `Qwen3VLForConditionalGeneration` takes a video.

Shared with Qwen2.5-VL ([`Qwen2_5_VLPolicy`], subclassed here): 2-frame temporal patches, `video_grid_thw`,
`mm_token_type_ids` from the padded ids, M-RoPE state never inherited (every input dict goes with `input_ids`),
the ViT frozen and run once per distinct clip, temporal contrast on temporal patches. What differs, and why:

Timestamps in the prompt. The processor writes one group per temporal patch,
`<{t:.1f} seconds><|vision_start|><|video_pad|>*(h*w/4)<|vision_end|>`, in place of the template's `<|video_pad|>`,
with `t` the mean source time of the patch's two frames (`frame index / fps`, from the metadata; the processor
raises without metadata). There is no `second_per_grid_ts`: M-RoPE gives each frame its own text-separated group,
and time reaches the model only as this text. r1video samples frames itself (the processor's own sampling, 2 fps by
default, is switched off per call with `do_sample_frames=False`) and passes the real fps and frame indices as
metadata, so the timestamps are the clip's real ones. A clip keeps its timestamps as `inputs["video_timestamps"]`
(`[t]` float64 seconds, never given to the model), and [`tokenize_prompts`] writes them.

Temporal contrast keeps the timestamps in place: a permuted clip's prompt holds the original, increasing timeline
(the text is byte-identical to the unpermuted prompt) while its temporal patches are shuffled under it. Moving the
timestamps with the patches would tell the model the true order in text and defeat the contrast.

Deepstack. The ViT's merged hidden states at `deepstack_visual_indexes` are added to the LM's first hidden states at
the video tokens. They must travel with the main embeddings (`mm_encoder_outputs["video"].deepstack_features`):
splicing only `pooler_output` changes the logits (0.40 on a tiny model). The connector is the patch merger plus the
deepstack mergers; when it trains the cache is the ViT's pre-merger states (`hidden [t*h*w, Dv]` and
`deepstack_hidden [k, t*h*w, Dv]`) and the mergers run in every pass; when it is frozen the cache is the merged
output (`embeds [t*h*w/4, D]`, `deepstack [k, t*h*w/4, D]`). An encoding is a dict of tensors (rollout-buffer safe).

Checkpoints. transformers saves Qwen3-VL under its module names (`model.visual.*`, `model.language_model.*`), so the
Trainer's own resume loads every weight; [`load_checkpoint`] leaves it to transformers.
"""

import numpy as np
import torch

from r1video.policies.base import Clip
from r1video.policies.qwen2_5_vl import (
    DEFAULT_BOUND_FRAMES,
    DEFAULT_SAMPLED_FPS,
    VIDEO_TOKEN_TYPE,
    Qwen2_5_VLPolicy,
    _layout,
    _tokens,
)
from r1video.policies.registry import register

TIMESTAMPS = "video_timestamps"  # Clip.inputs key: seconds per temporal patch, written into the prompt
CONNECTOR_PREFIXES = ("merger.", "deepstack_merger_list.")


@register
class Qwen3VLPolicy(Qwen2_5_VLPolicy):
    """Qwen3-VL (`model_type` `qwen3_vl`): stateless; the processor and model are passed to each method."""

    name = "qwen3_vl"
    model_types = ("qwen3_vl",)
    # Qwen3.5 ships the same processor class; a processor alone finds Qwen3-VL (the trainers pass the model's policy).
    processor_class_names = ("Qwen3VLProcessor",)
    model_card_tags = ("qwen3_vl",)
    # the clip as multimodal data (r1video.trainer.vllm_native; request form `qwen3_vl_video`): M-RoPE and deepstack
    # cannot travel as prompt embeddings
    vllm_route = "native"
    model_class_name = "Qwen3VLForConditionalGeneration"
    core_class_name = "Qwen3VLModel"
    model_card_title = "[Qwen3-VL](https://arxiv.org/abs/2511.21631)"
    model_card_parts = "vision transformer with DeepStack features, Qwen3 language model"
    checkpoint_keys = ("model.visual.*", "model.language_model.*")

    # ---- loading ------------------------------------------------------------------------------------------------

    def build_tiny(self, output_dir=None, *, seed: int = 0, **overrides):
        """A random tiny model with the real processor ([`r1video.policies.qwen3_vl_tiny`])."""
        from r1video.policies.qwen3_vl_tiny import build_tiny_qwen3

        return build_tiny_qwen3(self.name, output_dir, seed=seed, **overrides)

    def forward_flops(self, config, frames: int, tokens_per_sequence: int, frame_size=None) -> dict:
        raise NotImplementedError(f"{self.name} has no FLOP model yet")

    def reference_config(self):
        raise NotImplementedError(f"{self.name} has no reference (paper-size) config yet")

    def reference_flops(self) -> dict:
        raise NotImplementedError(f"{self.name} has no FLOP model yet")

    def bench_shapes(self, quick: bool) -> dict:
        return {}  # the tiny builder's defaults (Qwen2.5-VL's FLOP-matched shapes are not this family's config)

    # ---- clips ----------------------------------------------------------------------------------------------------

    def clip_from_frames(self, processor, frames, *, fps=None, frame_indices=None, num_total_frames=None) -> Clip:
        """A clip from frames already decoded, with the processor's own frame sampling off.

        Args:
            frames: `[T, H, W, 3]` uint8 (numpy or torch).
            fps: the source's frame rate: with `frame_indices` it gives each temporal patch's timestamp (the mean
                of `index / fps` over its 2 frames, as the processor computes it). Without `fps` the frames are
                taken as sampled at 2 fps from the start (frame `i` at `i / 2` s).
            frame_indices: source indices of `frames` (default `0..T-1`).
            num_total_frames: frames in the source (default: the last index + 1).
        """
        from transformers.video_utils import VideoMetadata

        frames = np.asarray(frames)
        count = len(frames)
        indices = list(range(count)) if frame_indices is None else [int(i) for i in frame_indices]
        source = indices if fps is not None else list(range(count))
        video = processor.video_processor
        if count < video.temporal_patch_size:
            # the processor refuses fewer frames than a temporal patch (its resize needs t >= 2); repeat the last,
            # as it does itself for an odd count
            pad = video.temporal_patch_size - count
            frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
            source = source + source[-1:] * pad
        if fps is None:
            metadata = VideoMetadata(total_num_frames=count, fps=DEFAULT_SAMPLED_FPS, frames_indices=source)
        else:
            total = num_total_frames if num_total_frames is not None else max(indices) + 1
            metadata = VideoMetadata(total_num_frames=total, fps=float(fps), frames_indices=source)
        metadata.height, metadata.width = frames.shape[1:3]
        out = video(videos=[frames], video_metadata=[metadata], do_sample_frames=False, return_metadata=True,
                    return_tensors="pt")  # fmt: skip
        used = out["video_metadata"][0]
        timestamps = processor._calculate_timestamps(list(used.frames_indices), used.fps, video.temporal_patch_size)
        inputs = {
            "pixel_values_videos": out["pixel_values_videos"],
            "video_grid_thw": out["video_grid_thw"],
            TIMESTAMPS: torch.tensor(timestamps, dtype=torch.float64),
        }
        return Clip(inputs=inputs, num_frames=count, frame_indices=indices)

    def blank_clip(self, processor, num_frames: int | None, like: Clip | None = None) -> Clip:
        """Black frames shaped as `like` (its timestamps kept, so its prompt reads as the clip it stands in for), or
        `num_frames` black 8×8 frames."""
        clip = super().blank_clip(processor, num_frames, like)
        if like is not None:
            clip.inputs[TIMESTAMPS] = like.inputs[TIMESTAMPS].clone()
        return clip

    @staticmethod
    def _stack(clips: list) -> dict:
        clips = [clip for clip in clips if clip is not None]
        if not clips:
            return {}
        keys = [key for key in clips[0].inputs if key != TIMESTAMPS]
        return {key: torch.cat([clip.inputs[key] for clip in clips]) for key in keys}

    def collate_clips(self, clips: list, *, input_ids=None, processor=None) -> dict:
        """The forward inputs of a batch's videos by the pixel path (SFT, eval): `pixel_values_videos`,
        `video_grid_thw` of the rows' clips in row order (`None` rows skipped), and `mm_token_type_ids [rows, L]`
        from the padded `input_ids`.

        Raises:
            ValueError: `input_ids` or `processor` missing (Qwen3-VL's forward refuses a grid without
                `mm_token_type_ids`).
        """
        batch = self._stack(clips)
        if not batch:
            return {}
        if input_ids is None or processor is None:
            raise ValueError(
                f"{self.name}'s collate_clips needs the padded input_ids and the processor (keywords input_ids=, "
                "processor=) to build mm_token_type_ids, which the model requires with a video grid"
            )
        batch["mm_token_type_ids"] = (input_ids == processor.video_token_id).int() * VIDEO_TOKEN_TYPE
        return batch

    # ---- prompts --------------------------------------------------------------------------------------------------

    def _placeholder(self, processor, clip: Clip) -> str:
        """What the processor writes for a clip in place of `<|video_pad|>`: per temporal patch, its timestamp and
        its frame's tokens between `<|vision_start|>` / `<|vision_end|>`."""
        merge = processor.video_processor.merge_size
        grid = clip.inputs["video_grid_thw"][0].tolist()
        frame = processor.vision_start_token + processor.video_token * (grid[1] * grid[2] // merge**2)
        frame += processor.vision_end_token
        return "".join(f"<{t:.1f} seconds>" + frame for t in clip.inputs[TIMESTAMPS].tolist())

    def video_token_count(self, processor, clip: Clip | None) -> int:
        """`<|video_pad|>` tokens of a clip (`t*h*w / merge²`); without a clip, the most a clip of
        `DEFAULT_BOUND_FRAMES` frames gives under the processor's pixel budget for the whole clip."""
        video = processor.video_processor
        if clip is not None:
            return _tokens(clip, video.merge_size)
        pixels = video.size["longest_edge"]  # t*h*w pixels for the whole clip
        return pixels // (video.patch_size * video.merge_size) ** 2 // video.temporal_patch_size

    def layout_clip(self, processor, video) -> Clip:
        """The clip's grid and timestamps without pixels, from the frames the reader would return (`video`, a
        [`r1video.data.video.VideoLayout`]): the video processor's own `get_num_of_video_patches` (its resize rule
        for the whole clip's pixel budget, with its per-frame cap when set) and the processor's own timestamps of
        the frame indices at the source's fps, a clip of one frame repeated to a temporal patch as
        [`clip_from_frames`] repeats it."""
        video_processor = processor.video_processor
        indices = list(video.indices)
        source = indices + indices[-1:] * max(0, video_processor.temporal_patch_size - len(indices))
        clip = _layout(video_processor, video, len(source), {})
        timestamps = processor._calculate_timestamps(source, float(video.fps), video_processor.temporal_patch_size)
        clip.inputs[TIMESTAMPS] = torch.tensor(timestamps, dtype=torch.float64)
        return clip

    def prompt_length(self, processor, text: str, clip: Clip | None = None) -> int:
        """Tokens of a rendered prompt with its placeholder expanded: exactly for `clip`; without one an upper
        bound (the pad bound of [`video_token_count`] plus `DEFAULT_BOUND_FRAMES / 2` timestamp groups at 999.9 s)."""
        tokenizer = processor.tokenizer
        if clip is not None:
            return len(tokenizer(self._expand(processor, text, clip), add_special_tokens=False)["input_ids"])
        token = self.video_token(processor)
        base = len(tokenizer(text.replace(token, ""), add_special_tokens=False)["input_ids"])
        units = -(-DEFAULT_BOUND_FRAMES // processor.video_processor.temporal_patch_size)
        group = processor.vision_start_token + processor.vision_end_token + "<999.9 seconds>"
        per_group = len(tokenizer(group, add_special_tokens=False)["input_ids"])
        return base + text.count(token) * (self.video_token_count(processor, None) + units * per_group)

    def vllm_prompt_ids(self, processor, ids: list[int], clip: Clip | None) -> list[int]:
        """The row's ids with the clip's expansion (timestamps, frame markers, video tokens) back to one
        `<|video_pad|>`, which vLLM expands again to the same ids
        ([`r1video.policies.vllm_video.qwen3_vl_prompt_ids`]).

        Raises:
            ValueError: the ids do not hold the clip's expansion as vLLM writes it.
        """
        from r1video.policies.vllm_video import qwen3_vl_prompt_ids

        return qwen3_vl_prompt_ids(processor, ids, clip)

    # ---- temporal contrast ----------------------------------------------------------------------------------------

    def permute_clip(self, clip: Clip, permutation) -> Clip:
        """The clip with its temporal patches (frame pairs) in `permutation`'s order; grid and timestamps unchanged
        (the prompt keeps the original timeline; see the module docstring)."""
        units = self.temporal_units(clip)
        inputs = dict(clip.inputs)
        inputs["pixel_values_videos"] = self._permute_blocks(clip.inputs["pixel_values_videos"], permutation, units)
        pairs = [clip.frame_indices[2 * u : 2 * u + 2] for u in range(units)]
        indices = [i for u in torch.as_tensor(permutation).tolist() for i in pairs[u]]
        return Clip(inputs=inputs, num_frames=clip.num_frames, frame_indices=indices)

    def permute_encoding(self, encoding: dict, clip: Clip, permutation) -> dict:
        """A cached encoding with its temporal patches reordered (the ViT attends within a temporal patch and its
        positions do not depend on time, so this equals encoding the permuted clip)."""
        units = self.temporal_units(clip)
        out = {}
        for key, tensor in encoding.items():
            if key.startswith("deepstack"):  # [k, tokens, D]
                out[key] = torch.stack([self._permute_blocks(t, permutation, units) for t in tensor])
            else:
                out[key] = self._permute_blocks(tensor, permutation, units)
        return out

    # ---- freezing -------------------------------------------------------------------------------------------------

    @staticmethod
    def _parts(visual):
        vit, mergers = [], []
        for name, p in visual.named_parameters():
            (mergers if name.startswith(CONNECTOR_PREFIXES) else vit).append(p)
        return vit, mergers

    def freeze(self, model, *, vision: bool = True, connector: bool = False, language_model: bool = False) -> None:
        """Freeze the named parts (a part set `False` is left as it is): `vision` the ViT, `connector` the patch
        merger and the deepstack mergers, `language_model` the decoder and `lm_head`."""
        core = self._core(model)
        vit, merger = self._parts(core.visual)
        for params, on in ((vit, vision), (merger, connector)):
            if on:
                for p in params:
                    p.requires_grad_(False)
        if language_model:
            self._freeze_language_model(model, core.language_model)

    def frozen_modules(self, model) -> list[str]:
        core = self._core(model)
        vit, merger = self._parts(core.visual)
        parts = {"vision": vit, "connector": merger, "language_model": list(core.language_model.parameters())}
        return [name for name, params in parts.items() if not any(p.requires_grad for p in params)]

    def vision_module(self, model):
        """`visual` (ViT + mergers): its forward hook sees `(patches, grid_thw=...)` per call."""
        return self._core(model).visual

    # ---- checkpoints ----------------------------------------------------------------------------------------------

    def load_checkpoint(self, model, checkpoint_dir) -> bool:
        """`False`: transformers saves this family under its module names, so the Trainer's own resume loads every
        weight (tested: the saved keys are the model's `state_dict` keys)."""
        return False

    # ---- vision once ----------------------------------------------------------------------------------------------

    def encode(self, model, clips: list) -> list | None:
        """Run the frozen part of the vision path once over `clips` (distinct clips), under `no_grad`.

        Returns:
            One dict per clip: `{"embeds": [t*h*w/4, D], "deepstack": [k, t*h*w/4, D]}` when the connector is
            frozen, `{"hidden": [t*h*w, Dv], "deepstack_hidden": [k, t*h*w, Dv]}` (pre-merger) when it trains
            (`deepstack*` only for a model with deepstack layers); `None` when the ViT trains.
        """
        if not clips:
            return []
        visual = self._core(model).visual
        vit, merger = self._parts(visual)
        if any(p.requires_grad for p in vit):
            return None
        merger_trains = any(p.requires_grad for p in merger)
        batch = self._stack(clips)
        device = next(visual.parameters()).device
        pixels = batch["pixel_values_videos"].to(device, visual.dtype)
        grid = batch["video_grid_thw"].to(device)
        deepstack_mergers = list(getattr(visual, "deepstack_merger_list", None) or [])
        with torch.no_grad():
            if merger_trains:  # the mergers' inputs, caught as the ViT hands them over
                seen = {}
                mergers = {"hidden": [visual.merger], "deepstack_hidden": deepstack_mergers}
                hooks = [
                    module.register_forward_pre_hook(lambda m, args, key=key, j=j: seen.__setitem__((key, j), args[0]))
                    for key, modules in mergers.items()
                    for j, module in enumerate(modules)
                ]
                try:
                    visual(pixels, grid_thw=grid)
                finally:
                    for hook in hooks:
                        hook.remove()
                sizes = grid.prod(-1).tolist()
                stacks = {"hidden": seen[("hidden", 0)]}
                if deepstack_mergers:
                    stacks["deepstack_hidden"] = torch.stack(
                        [seen[("deepstack_hidden", j)] for j in range(len(deepstack_mergers))]
                    )
            else:
                out = visual(pixels, grid_thw=grid)
                sizes = (grid.prod(-1) // visual.spatial_merge_size**2).tolist()
                stacks = {"embeds": out.pooler_output}
                if deepstack_mergers:
                    stacks["deepstack"] = torch.stack(list(out.deepstack_features))
        split = {key: t.split(sizes, dim=1 if key.startswith("deepstack") else 0) for key, t in stacks.items()}
        return [{key: parts[i] for key, parts in split.items()} for i in range(len(clips))]

    def _encoder_output(self, model, embeds: list, deepstack: list | None):
        """What `get_video_features` returns for these videos: `pooler_output` per video and, with deepstack layers,
        the family's own output class with `deepstack_features` per layer per video."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        if deepstack is None:
            return BaseModelOutputWithPooling(pooler_output=tuple(embeds))
        from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

        layers = len(deepstack[0])
        return BaseModelOutputWithDeepstackFeatures(
            pooler_output=tuple(embeds), deepstack_features=[tuple(d[j] for d in deepstack) for j in range(layers)]
        )

    def model_inputs(self, model, input_ids, clips: list, index, encodings: list | None, *, reuse: bool) -> dict:
        """Keyword arguments for `model(input_ids=..., attention_mask=..., **kw)` and `model.generate(...)`.

        Args:
            input_ids: `[rows, L]` the padded ids (left padding); row `r` holds the video tokens of its clip.
            clips: the batch's distinct clips; `index[r]` is row `r`'s (-1: text-only).
            encodings: [`encode`]'s output for `clips`, or `None`.
            reuse: with `encodings`, each distinct clip's cached output is used once and its rows share it (the
                mergers, when they train, run here on the cached ViT states). Without `encodings`, or with
                `reuse=False`, every row's clip goes through the whole vision path inside the forward.

        Returns:
            `video_grid_thw [V, 3]`, `mm_token_type_ids [rows, L]`, and `pixel_values_videos` or
            `mm_encoder_outputs={"video": ...}` (`pooler_output` per row's video and, with deepstack layers,
            `deepstack_features` per layer per video); `{}` for a batch without video.
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
            "mm_token_type_ids": (input_ids == core.config.video_token_id).int() * VIDEO_TOKEN_TYPE,
        }
        if not reuse or encodings is None:
            inputs["pixel_values_videos"] = torch.cat([c.inputs["pixel_values_videos"] for c in row_clips]).to(device)
            return inputs
        visual = core.visual
        by_clip = {}
        for i in dict.fromkeys(used):
            encoding = {key: t.to(device) for key, t in encodings[i].items()}
            if "hidden" in encoding:  # pre-merger: the mergers train, run them in this pass
                embeds = visual.merger(encoding["hidden"].to(visual.dtype))
                deepstack = None
                if "deepstack_hidden" in encoding:
                    deepstack = [merge(h.to(visual.dtype)) for merge, h in
                                 zip(visual.deepstack_merger_list, encoding["deepstack_hidden"], strict=True)]  # fmt: skip
            else:
                embeds, deepstack = encoding["embeds"], encoding.get("deepstack")
            by_clip[i] = (embeds, deepstack)
        has_deepstack = by_clip[used[0]][1] is not None
        inputs["mm_encoder_outputs"] = {
            "video": self._encoder_output(
                model,
                [by_clip[i][0] for i in used],
                [by_clip[i][1] for i in used] if has_deepstack else None,
            )
        }
        return inputs

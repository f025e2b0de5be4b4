"""`VideoGRPOTrainer`: TRL's GRPOTrainer for TinyLLaVA-Video, with each video encoded once per step.

Rows carry a conversational `prompt` with one `{"type": "video"}` part and a `video` column (a file path); a row whose
`video` is `None` (or a dataset without the column) is text-only. Only the seams that need video are overridden:

- `_generate_and_score_completions`: decode the batch's distinct clips once (skipping bad ones), run the frozen vision
  tower once over them, then let TRL generate, score and compute advantages; add the row → video map to its output.
- `_tokenize_prompts`: render the chat template, expand each placeholder to `num_queries` tokens, and hand the video
  inputs to generation.
- `_get_per_token_logps_and_entropies`: TRL's chunked log-prob pass, with the video inputs of each chunk (TRL's own
  version takes a fixed list of image keywords).
- `_compute_loss`: point the log-prob pass at the rows of the (shuffled) training slice.
- `_generate_single_turn` (with `use_vllm`): sample from vLLM given the spliced prompt embeddings
  (`r1video.trainer.vllm_rollouts`); vLLM runs only the exported language model.

With `reuse_vision=False` every row carries its own copy of the frames through tower and connector in every pass, as
the original implementation does; both paths give the same loss and gradients (tested).
"""

import copy
import logging

import torch
from trl import GRPOTrainer
from trl.extras.profiling import profiling_context

from r1video.configs import VideoGRPOConfig
from r1video.data.bad_samples import BadSampleTracker
from r1video.model.modeling import TinyLlavaVideoModel
from r1video.trainer.checkpoints import ReleasedLayoutResumeMixin
from r1video.trainer.model_card import ModelCardMixin
from r1video.trainer.step_videos import StepVideos, load_step_videos, pack
from r1video.trainer.vllm_rollouts import SERVER_MODE_UNSUPPORTED, PromptEmbedsVLLMGeneration, build_prompt_embeds

logger = logging.getLogger(__name__)

# TRL's own image keywords of `_get_per_token_logps_and_entropies`; none applies to a TinyLLaVA-Video batch.
_IMAGE_KWARGS = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)


class VideoGRPOTrainer(ModelCardMixin, ReleasedLayoutResumeMixin, GRPOTrainer):
    """GRPO on video rows. Arguments as [`trl.GRPOTrainer`]; `args` is a [`VideoGRPOConfig`] and
    `processing_class` a [`TinyLlavaVideoProcessor`]."""

    _tag_names = ["trl", "grpo", "r1video"]
    card_stage = "GRPO"

    def __init__(self, model, reward_funcs, args: VideoGRPOConfig, processing_class, **kwargs):
        if not isinstance(args, VideoGRPOConfig):
            raise TypeError(f"VideoGRPOTrainer needs a VideoGRPOConfig, got {type(args).__name__}")
        if not hasattr(processing_class, "preprocess_frames"):
            raise TypeError("processing_class must be a TinyLlavaVideoProcessor (it preprocesses the frames)")
        trl_args = args
        if args.use_vllm:
            if args.vllm_mode != "colocate":
                raise NotImplementedError(SERVER_MODE_UNSUPPORTED)
            # TRL's engine would load the TinyLLaVA-Video checkpoint into vLLM, which cannot run it: TRL builds the
            # trainer without one, on a copy of args (the caller's stays as it is), and the prompt-embeddings engine
            # is built below.
            trl_args = copy.copy(args)
            trl_args.use_vllm = False
        super().__init__(
            model=model, reward_funcs=reward_funcs, args=trl_args, processing_class=processing_class, **kwargs
        )
        policy = self.accelerator.unwrap_model(self.model)
        if args.freeze_vision_tower:
            self._backbone().vision_tower.requires_grad_(False)
        if self.ref_model is not None:
            # TRL reloads the reference model from the checkpoint path; a released checkpoint's config lacks the
            # placeholder id that load_pretrained gave the policy.
            self.accelerator.unwrap_model(self.ref_model).config.image_token_id = policy.config.image_token_id
        self.bad_videos = BadSampleTracker(max_bad_fraction=args.max_bad_video_fraction)
        self._step_videos: StepVideos | None = None
        self._logp_rows: torch.LongTensor | None = None  # distinct-video index of the rows being scored
        if args.use_vllm:
            self._init_prompt_embeds_vllm()

    def _init_prompt_embeds_vllm(self):
        """Switch on TRL's vLLM code paths with the prompt-embeddings engine."""
        if self.tools:
            raise NotImplementedError("use_vllm with tools is not supported: tool turns re-prompt with token ids")
        if self.loss_type == "vespo" and self.vllm_importance_sampling_correction:
            if self.vllm_importance_sampling_mode not in ("token_truncate", "token_mask"):  # TRL's own check
                raise ValueError(
                    "VESPO loss requires `vllm_importance_sampling_mode` to be either 'token_truncate' or "
                    f"'token_mask'. Got: {self.vllm_importance_sampling_mode}."
                )
        self.args.use_vllm = self.use_vllm = True  # self.args is the trainer's own copy
        self.vllm_generation = self._make_vllm_generation()
        self._last_loaded_step = -1  # TRL's tag: sync weights before the first generation, then once per step

    def _make_vllm_generation(self):
        return PromptEmbedsVLLMGeneration.from_trainer(self)

    # ---- video inputs -------------------------------------------------------------------------------------------

    def _backbone(self) -> TinyLlavaVideoModel:
        """The TinyLLaVA-Video backbone inside the policy, whatever wraps it (DDP, DeepSpeed, a PEFT adapter)."""
        return next(
            m for m in self.accelerator.unwrap_model(self.model).modules() if isinstance(m, TinyLlavaVideoModel)
        )

    def _vision_tower_trainable(self) -> bool:
        return any(p.requires_grad for p in self._backbone().vision_tower.parameters())

    def _load_videos(self, inputs: list[dict]) -> StepVideos:
        args = self.args
        videos = load_step_videos(
            [row.get("video") for row in inputs],
            self.processing_class.preprocess_frames,
            self.bad_videos,
            num_frames=args.num_frames,
            fps=args.fps,
            max_frames=args.max_frames,
            autorotate=args.autorotate,
        )
        device = self.accelerator.device
        videos.pixels = [p.to(device) for p in videos.pixels]
        videos.index = videos.index.to(device)
        # Under FSDP2 the tower cannot run outside the model's forward (its weights are sharded until the root unit
        # gathers them); the model then runs it on the distinct clips of each pass instead.
        if videos.pixels and args.reuse_vision and not self._vision_tower_trainable() and not self.is_fsdp_enabled:
            with torch.no_grad():
                videos.tower_features = self._backbone().get_video_tower_features(videos.pixels)
        return videos

    def _video_inputs(self, rows: torch.LongTensor) -> dict:
        """Model keyword arguments that give `rows` (distinct-video indices, one per row; -1: no video) their videos."""
        videos = self._step_videos
        rows = rows[rows >= 0]  # placeholder groups appear in row order; text-only rows have none
        if rows.numel() == 0:
            return {}
        if not self.args.reuse_vision:
            return {"pixel_values_videos": pack([videos.pixels[i] for i in rows.tolist()])}
        used, remapped = torch.unique(rows, return_inverse=True)
        table = videos.tower_features if videos.tower_features is not None else videos.pixels
        key = "video_tower_features" if videos.tower_features is not None else "pixel_values_videos"
        return {key: pack([table[i] for i in used.tolist()]), "video_index": remapped}

    # ---- TRL seams ----------------------------------------------------------------------------------------------

    def _generate_and_score_completions(self, inputs):
        self._step_videos = self._load_videos(inputs)
        self._logp_rows = self._step_videos.index
        output = super()._generate_and_score_completions(inputs)
        output["video_index"] = self._step_videos.index
        bad = self._step_videos.bad_rows.to(output["completion_mask"].device)
        if bad.any():
            # Rollouts of a clip that failed to decode teach nothing: no loss, no advantage.
            output["completion_mask"] = output["completion_mask"] * (~bad).unsqueeze(1).to(output["completion_mask"])
            output["advantages"] = output["advantages"].masked_fill(
                bad.view(-1, *[1] * (output["advantages"].dim() - 1)), 0.0
            )
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["videos/bad_fraction"].append(self.bad_videos.bad_fraction)
        if self.args.advantage_noise_std > 0 and mode == "train":
            output["advantages"] = output["advantages"] + self._advantage_noise(output["advantages"])
        return output

    def _advantage_noise(self, advantages: torch.Tensor) -> torch.Tensor:
        """N(0, std²) per advantage, seeded by (seed, step, process) so a resumed run draws the same noise."""
        seed = (self.args.seed * 1_000_003 + self.state.global_step) * 1_009 + self.accelerator.process_index
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(advantages.shape, generator=generator) * self.args.advantage_noise_std
        return noise.to(advantages.device, advantages.dtype)

    def _tokenize_prompts(self, prompts: list):
        texts = [
            self.processing_class.apply_chat_template(
                prompt,
                chat_template=self.chat_template,
                add_generation_prompt=True,
                tokenize=False,
                **self.chat_template_kwargs,
            )
            for prompt in prompts
        ]
        token = self.processing_class.video_token
        for row, (text, video) in enumerate(zip(texts, self._step_videos.index.tolist(), strict=True)):
            expected = 0 if video < 0 else 1
            if text.count(token) != expected:
                raise ValueError(
                    f"Row {row} of the batch renders {text.count(token)} video placeholders but has "
                    f"{'no' if video < 0 else 'a'} video: a row with a video needs exactly one {{'type': 'video'}} "
                    f"part in its prompt, a text-only row none. Prompt: {prompts[row]!r}"
                )
        prompt_ids = self.processing_class.tokenize_prompts(texts)
        return prompt_ids, None, self._video_inputs(self._step_videos.index)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if not self.use_vllm:
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images=has_tool_images
            )
        if self.state.global_step != self._last_loaded_step:
            with profiling_context(self, "sync_weights"):
                self.vllm_generation.sync_weights()
            self._last_loaded_step = self.state.global_step
        # Each process embeds its own rows; under ZeRO-3 the module calls gather their parameters as usual.
        with self.accelerator.autocast():
            prompt_embeds = build_prompt_embeds(
                self._backbone(),
                prompt_ids,
                self._step_videos.index.tolist(),
                self._video_inputs,
                pad_token_id=self._tokenizer.pad_token_id or 0,
                dtype=self.vllm_generation.dtype,
            )
        return self.vllm_generation.generate_embeds(prompt_embeds, profiler=profiling_context(self, "vLLM.generate"))

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        **image_kwargs,
    ):
        unexpected = [k for k in _IMAGE_KWARGS if image_kwargs.get(k) is not None]
        if unexpected:
            raise ValueError(f"VideoGRPOTrainer got image inputs {unexpected}; datasets must carry a `video` column")
        rows = self._logp_rows
        batch_size = batch_size or input_ids.size(0)
        all_logps, all_entropies, all_aux_losses = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            model_inputs = {
                "input_ids": input_ids[start:end],
                "attention_mask": attention_mask[start:end],
                **self._video_inputs(rows[start:end]),
            }
            if compute_aux_loss:
                model_inputs["output_router_logits"] = True
            # Only the completion tokens are scored
            labels = input_ids[start:end].masked_fill(attention_mask[start:end] == 0, -100)
            labels[:, :-logits_to_keep] = -100
            with self.accelerator.autocast():
                outputs = model(**model_inputs, labels=labels, fused_lm_head=True)
            all_logps.append(outputs.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                all_entropies.append(outputs.entropy[:, -logits_to_keep:])
            if compute_aux_loss:
                all_aux_losses.append(outputs.aux_loss)
        logps = torch.cat(all_logps, dim=0)
        entropies = torch.cat(all_entropies, dim=0) if compute_entropy else None
        aux_loss = torch.stack(all_aux_losses).mean() if compute_aux_loss else None
        return logps, entropies, aux_loss

    def _compute_loss(self, model, inputs):
        self._logp_rows = inputs["video_index"]
        return super()._compute_loss(model, inputs)

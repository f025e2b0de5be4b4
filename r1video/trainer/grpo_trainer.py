"""`VideoGRPOTrainer`: TRL's GRPOTrainer for video LMs, with each video encoded once per step.

The model family is a [`VideoPolicy`] (`r1video.policies`), given as `policy=` or found from the model's config by
the registry; the trainer talks to the policy only and never branches on the model type.

Rows carry a conversational `prompt` with one `{"type": "video"}` part and a `video` column (a file path); a row whose
`video` is `None` (or a dataset without the column) is text-only.

The row → clip contract. Whatever a step needs to score a row travels with that row, in the batch that
`_generate_and_score_completions` returns and TRL buffers, shuffles, slices (`steps_per_generation`) and reuses
(`num_iterations`); nothing a log-prob pass or the loss needs is kept on the trainer between calls. The keys
(`r1video.trainer.step_videos.row_video_keys`), each with one entry per row:

- `video_index` (`[rows]` long): the row's clip within its generation batch, -1 for a text-only row. Rows with the
  same number share a clip, in any order or slice.
- `video_clip` (list): the row's [`Clip`] (the family's inputs for its video), `None` for a text-only row.
- `video_encoding` (list or `None`): the row's cached encoding, the frozen part of the vision path run once ahead
  (vision-once; the policy's `encode`), else `None` and each pass runs the whole vision path.

Rows of one clip hold the same objects, so carrying a clip per row copies nothing. TRL calls the log-prob pass
with a fixed list of image keywords, so the rows' videos reach it through a scope that lasts exactly one call:
`compute_loss` (and `_compute_loss`) opens it on the slice being scored, `_generate_and_score_completions` on the
generation batch (for generation and the old/reference passes); a pass outside any scope is an error.

Only the seams that need video are overridden:

- `_generate_and_score_completions`: decode the batch's distinct clips once (skipping bad ones), run the frozen part
  of the vision path once over them, then let TRL generate, score and compute advantages; add the video keys to its output.
- `_tokenize_prompts`: render the chat template and expand each placeholder to its clip's token count (the policy's
  `tokenize_prompts`).
- `_get_per_token_logps_and_entropies`: TRL's chunked log-prob pass with the video inputs of each chunk (a copy of
  TRL's loop: TRL's version forwards only its fixed image keywords to the model, so no super() call can carry them).
- `compute_loss` / `_compute_loss`: open the scope on the scored rows (so a subclass that replaces `_compute_loss`, as
  TRL's experimental trainers do, still scores each row with its clip); `_compute_loss` adds the KL clamp.
- `_generate_single_turn`: HF `generate` as TRL runs it, with the rows' video inputs built from the prompt ids padded
  as generate sees them (a family's inputs may be per token, like Qwen2.5-VL's `mm_token_type_ids`, or not tensors,
  like `mm_encoder_outputs`, which TRL's path cannot carry); with `use_vllm`, sample from vLLM by the family's
  `vllm_route`: `"prompt_embeds"` (TinyLLaVA-Video) splices the video into prompt embeddings and vLLM runs only the
  exported language model (`r1video.trainer.vllm_rollouts`); `"native"` (Qwen2.5-VL, LLaVA-OneVision, Qwen3-VL,
  Qwen3.5) sends the clip as multimodal data and vLLM runs the whole model (`r1video.trainer.vllm_native`). A family
  whose `vllm_route` is `None` is refused at start-up, with its `vllm_route_reason` when it has one.
- `_save_checkpoint` / `_load_optimizer_and_scheduler`: save TRL's rollout counter and buffer with each checkpoint
  and restore them on resume (`r1video.trainer.rollout_buffer`), so a run resumed inside a generation cycle trains on
  the rollouts the uninterrupted run would.
- `_generate` (with `temporal_contrast`): after TRL's ordered rollouts, sample the frame-shuffled ones
  (`r1video.trainer.temporal_contrast`) through the same `_tokenize_prompts` / `_generate_single_turn`, inside a scope
  whose rows carry the permuted clips; they are kept in the generation scope, and the `temporal` reward column that the
  trainer adds to the reward functions turns them into the bonus. They enter no log-prob pass and no loss.

With `reuse_vision=False` every row carries its own copy of the clip through the whole vision path in every pass, as
the original implementation does; both paths give the same loss and gradients (tested).
"""

import copy
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from trl import GRPOTrainer
from trl.extras.profiling import profiling_context

from r1video.data.bad_samples import BadSampleTracker
from r1video.policies import Clip, VideoPolicy, policy_for, policy_of_checkpoint
from r1video.policies.base import VLLM_ROUTES
from r1video.trainer.checkpoints import BadVideoTally, ResumeMixin, no_space_reported
from r1video.trainer.grpo_config import VideoGRPOConfig
from r1video.trainer.model_card import ModelCardMixin
from r1video.trainer.rollout_buffer import load_rollout_buffer, rollout_buffer_file, save_rollout_buffer
from r1video.trainer.step_videos import StepVideos, batch_clips, load_step_videos, row_video_keys
from r1video.trainer.temporal_contrast import (
    TEMPORAL_REWARD,
    ShuffledGroup,
    TemporalReward,
    answer_judge,
    frame_permutation,
    temporal_bonus,
)
from r1video.trainer.vllm_native import NativeVideoVLLMGeneration, build_video_requests
from r1video.trainer.vllm_rollouts import SERVER_MODE_UNSUPPORTED, PromptEmbedsVLLMGeneration, build_prompt_embeds

logger = logging.getLogger(__name__)


@dataclass
class _Scope:
    """The rows a call is scoring (a batch with the video keys) and the policy log-probs its last pass computed; in a
    generation scope also the rows whose clip failed to decode and the step's shuffled rollouts (temporal contrast)."""

    batch: dict
    logps: torch.Tensor | None = None
    bad_rows: torch.Tensor | None = None
    shuffled: list[ShuffledGroup] | None = None


# TRL's own image keywords of `_get_per_token_logps_and_entropies` (a test checks them against TRL's signature); none
# applies to a video batch (videos reach the model through the policy's `model_inputs`).
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


def _contrasted_rows(scope: _Scope) -> torch.Tensor:
    """`[rows]` bool: the rows of a generation scope that temporal contrast covers (a video that decoded)."""
    videos = scope.batch["video_index"].cpu() >= 0
    return videos if scope.bad_rows is None else videos & ~scope.bad_rows.cpu()


class VideoGRPOTrainer(ModelCardMixin, ResumeMixin, GRPOTrainer):
    """GRPO on video rows. Arguments as [`trl.GRPOTrainer`]; `args` is a [`VideoGRPOConfig`], `processing_class` the
    model family's processor, and `policy` the family ([`VideoPolicy`]; by default the one registered for the model's
    `model_type`).

    Raises:
        UnknownFamilyError: the model's `model_type` has no registered family.
        NotImplementedError: `use_vllm` with a family that has no vLLM route, or vLLM server mode.
    """

    _tag_names = ["trl", "grpo", "r1video"]
    card_stage = "GRPO"

    def __init__(
        self, model, reward_funcs, args: VideoGRPOConfig, processing_class, policy: VideoPolicy | None = None, **kwargs
    ):
        if not isinstance(args, VideoGRPOConfig):
            raise TypeError(f"VideoGRPOTrainer needs a VideoGRPOConfig, got {type(args).__name__}")
        if policy is None:
            policy = policy_of_checkpoint(model) if isinstance(model, str) else policy_for(model)
        self.policy = policy
        trl_args = args
        if args.use_vllm:
            if policy.vllm_route is None and policy.vllm_route_reason:
                raise NotImplementedError(
                    f"use_vllm is not supported for {policy.name} models: {policy.vllm_route_reason}; "
                    "set use_vllm: false (HF generate)"
                )
            if policy.vllm_route not in VLLM_ROUTES:
                raise NotImplementedError(
                    f"use_vllm is not supported for {policy.name} models yet (the family's vLLM route is "
                    f"{policy.vllm_route!r}, not one of {', '.join(VLLM_ROUTES)}); set use_vllm: false (HF generate)"
                )
            if args.vllm_mode != "colocate":
                raise NotImplementedError(SERVER_MODE_UNSUPPORTED)
            # TRL's engine would load the multimodal checkpoint into vLLM, which cannot run it: TRL builds the
            # trainer without one, on a copy of args (the caller's stays as it is), and the prompt-embeddings engine
            # is built below.
            trl_args = copy.copy(args)
            trl_args.use_vllm = False
        judge = None
        if args.temporal_contrast:
            reward_funcs, judge = self._with_temporal_reward(reward_funcs, args)
            if args.reward_weights is not None and len(args.reward_weights) == len(reward_funcs) - 1:
                trl_args = copy.copy(trl_args)
                trl_args.reward_weights = [*args.reward_weights, 1.0]  # the temporal column, unweighted
        super().__init__(
            model=model, reward_funcs=reward_funcs, args=trl_args, processing_class=processing_class, **kwargs
        )
        # A sampled video placeholder would not match the video features: TRL suppresses `config.image_token_id` only,
        # which is not a family's video token everywhere (Qwen2.5-VL: `<|video_pad|>`).
        suppressed = {
            *(self.generation_kwargs.get("suppress_tokens") or []),
            *policy.video_token_ids(processing_class),
        }
        self.generation_kwargs["suppress_tokens"] = self.generation_config.suppress_tokens = sorted(suppressed)
        unwrapped = self.accelerator.unwrap_model(self.model)
        if args.freeze_vision_tower:
            self.policy.freeze(unwrapped, vision=True)
        if self.ref_model is not None:
            self.policy.sync_reference(unwrapped, self.accelerator.unwrap_model(self.ref_model))
        self.bad_videos = BadSampleTracker(max_bad_fraction=args.max_bad_video_fraction)
        self.video_reader = None  # the policy's default reader (r1video's PyAV reader); `load_video_frames`-like
        self.add_callback(BadVideoTally(self.bad_videos))
        self._scope: _Scope | None = None  # the rows being scored, only for the duration of one call
        self._answer_judge = judge  # temporal contrast: the accuracy reward's answer rule
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
        self.policy.check_vllm(self.accelerator.unwrap_model(self.model))
        self.args.use_vllm = self.use_vllm = True  # self.args is the trainer's own copy
        self.vllm_generation = self._make_vllm_generation()
        self._last_loaded_step = -1  # TRL's tag: sync weights before the first generation, then once per step

    def _make_vllm_generation(self):
        engines = {"prompt_embeds": PromptEmbedsVLLMGeneration, "native": NativeVideoVLLMGeneration}
        return engines[self.policy.vllm_route].from_trainer(self)

    def _native_video_rollouts(self, prompt_ids, batch):
        """`_generate_single_turn` with `vllm_route == "native"`: vLLM runs the family's own model on the prompt ids
        and each row's clip as multimodal data (`r1video.trainer.vllm_native`); `"prompt_embeds"` samples from the
        spliced prompt embeddings on the exported language model (`r1video.trainer.vllm_rollouts`)."""
        requests = build_video_requests(self.policy, self.processing_class, prompt_ids, batch["video_clip"])
        return self.vllm_generation.generate_videos(requests, profiler=profiling_context(self, "vLLM.generate"))

    def _with_temporal_reward(self, reward_funcs, args: VideoGRPOConfig):
        """The reward functions plus the `temporal` column, and the answer rule that judges correctness."""
        if args.use_vllm and args.vllm_tensor_parallel_size > 1:
            raise NotImplementedError(
                "temporal_contrast with vllm_tensor_parallel_size > 1 is not supported: the ranks of a tensor-parallel "
                "group may hold different numbers of shuffled rollouts"
            )
        reward_funcs = list(reward_funcs) if isinstance(reward_funcs, list | tuple) else [reward_funcs]
        judge = answer_judge(reward_funcs, args.temporal_contrast_reward)
        if any(getattr(func, "__name__", None) == TEMPORAL_REWARD for func in reward_funcs):
            raise ValueError(f"temporal_contrast adds the reward {TEMPORAL_REWARD!r}; a recipe reward has that name")
        return [*reward_funcs, TemporalReward(self._temporal_bonus)], judge

    # ---- video inputs -------------------------------------------------------------------------------------------

    def _load_videos(self, inputs: list[dict]) -> StepVideos:
        args, policy, processor = self.args, self.policy, self.processing_class
        videos = load_step_videos(
            [row.get("video") for row in inputs],
            lambda path, **frames: policy.decode_clip(processor, path, reader=self.video_reader, **frames),
            self.bad_videos,
            lambda num_frames, like: policy.blank_clip(processor, num_frames, like),
            num_frames=args.num_frames,
            fps=args.fps,
            max_frames=args.max_frames,
            autorotate=args.autorotate,
        )
        device = self.accelerator.device
        videos.clips = [clip.to(device) for clip in videos.clips]
        videos.index = videos.index.to(device)
        # Under FSDP2 the frozen encoder cannot run outside the model's forward (its weights are sharded until the root
        # unit gathers them); the model then runs it on the distinct clips of each pass instead. The policy returns no
        # encoding when the frozen part trains.
        if videos.clips and args.reuse_vision and not self.is_fsdp_enabled:
            videos.encodings = policy.encode(self.accelerator.unwrap_model(self.model), videos.clips)
        return videos

    @contextmanager
    def _scoring(self, batch: dict):
        """Give the passes TRL runs inside this block the videos of `batch`'s rows (keys of `row_video_keys`)."""
        outer, self._scope = self._scope, _Scope(batch)
        try:
            yield self._scope
        finally:
            self._scope = outer

    def _scoped_rows(self, num_rows: int) -> dict:
        if self._scope is None:
            raise RuntimeError(
                "VideoGRPOTrainer scores rows only inside compute_loss, _compute_loss or "
                "_generate_and_score_completions (or `with trainer._scoring(batch)`): the rows' videos travel in the "
                "batch and reach the log-prob pass through that scope"
            )
        batch = self._scope.batch
        if len(batch["video_index"]) != num_rows:
            raise ValueError(
                f"the pass scores {num_rows} rows but the batch in scope has {len(batch['video_index'])}: "
                "pass the same rows, in the same order, as the batch given to compute_loss"
            )
        return batch

    def _video_inputs_fn(self, batch: dict):
        """Function `(clip numbers [rows], input_ids [rows, L] or None) -> model keyword arguments`, over the clips of
        `batch` (the policy's `model_inputs`)."""
        clips = batch_clips(batch)

        def video_inputs(index: torch.LongTensor, input_ids: torch.LongTensor | None = None, model=None) -> dict:
            # the model being run: what trains of the vision path (e.g. Qwen's merger) is the reference model's own
            # in a reference pass
            model = self.accelerator.unwrap_model(self.model if model is None else model)
            return self.policy.model_inputs(
                model, input_ids, clips.clips, clips.index(index), clips.encodings, reuse=self.args.reuse_vision
            )

        return video_inputs

    # ---- TRL seams ----------------------------------------------------------------------------------------------

    def _generate_and_score_completions(self, inputs):
        videos = self._load_videos(inputs)
        video_keys = row_video_keys(videos)
        with self._scoring(video_keys) as scope:
            scope.bad_rows = videos.bad_rows
            output = super()._generate_and_score_completions(inputs)
        output.update(video_keys)
        bad = videos.bad_rows.to(output["completion_mask"].device)
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

    def _generate(self, prompts: list):
        generated = super()._generate(prompts)
        if self.args.temporal_contrast and self.model.training:
            scope = self._scope
            scope.shuffled = self._generate_shuffled(prompts, scope)
        return generated

    def _generate_shuffled(self, prompts: list, scope: _Scope) -> list[ShuffledGroup]:
        """Temporal contrast: `temporal_contrast_generations` rollouts per video prompt on its clip, frames shuffled.

        Each process shuffles the clip of every group it holds rows of, at the policy's temporal unit (frames for
        TinyLLaVA-Video), the cached encoding with it when the step has one (the frozen encoder sees no extra frame),
        and samples from the same engine as the ordered rollouts. Nothing here enters the loss.
        """
        batch, num_shuffled, policy = scope.batch, self.args.temporal_contrast_generations, self.policy
        process = self.accelerator.process_index
        first_row = process * len(prompts)  # this process's rows in the gathered order TRL groups by
        owner = {}  # group -> a local row of it
        for row, video in enumerate(_contrasted_rows(scope).tolist()):
            if video and policy.temporal_units(batch["video_clip"][row]) > 1:
                owner.setdefault((first_row + row) // self.num_generations, row)
        counts = self.accelerator.gather(torch.tensor([len(owner)], device=self.accelerator.device))
        if not owner:
            if counts.any():
                self._join_generation(prompts[:1], batch)
            return []
        encodings = batch["video_encoding"]
        permutations, clips, encoded = [], [], []
        for group, row in owner.items():
            clip: Clip = batch["video_clip"][row]
            permutation = frame_permutation(
                policy.temporal_units(clip),
                seed=self.args.seed,
                step=self.state.global_step,
                process=process,
                group=group,
            )
            permutations.append(permutation)
            clips.append(policy.permute_clip(clip, permutation))
            if encodings is not None:
                encoded.append(policy.permute_encoding(encodings[row], clip, permutation))
            logger.debug(
                "temporal contrast: step %d, process %d, group %d: frame order %s",
                self.state.global_step,
                process,
                group,
                permutation.tolist(),
            )
        numbers = torch.arange(len(owner)).repeat_interleave(num_shuffled)
        shuffled_batch = {
            "video_index": numbers.to(batch["video_index"].device),
            "video_clip": [clips[clip] for clip in numbers.tolist()],
            "video_encoding": None if encodings is None else [encoded[clip] for clip in numbers.tolist()],
        }
        with self._scoring(shuffled_batch):
            prompt_ids, images, video_inputs = self._tokenize_prompts(
                [prompts[row] for row in owner.values() for _ in range(num_shuffled)]
            )
            completion_ids, _ = self._generate_single_turn(prompt_ids, images, video_inputs, num_shuffled)
        texts = self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
        return [
            ShuffledGroup(group, row, permutation.tolist(), texts[i * num_shuffled : (i + 1) * num_shuffled])
            for i, ((group, row), permutation) in enumerate(zip(owner.items(), permutations, strict=True))
        ]

    def _join_generation(self, prompts: list, batch: dict) -> None:
        """One throwaway rollout of the first row, for a process with nothing to shuffle while others generate: under
        ZeRO-3 or FSDP generation gathers parameters collectively, and every process must take part."""
        first = {key: value[:1] if value is not None else None for key, value in batch.items()}
        with self._scoring(first):
            prompt_ids, images, video_inputs = self._tokenize_prompts(prompts)
            self._generate_single_turn(prompt_ids, images, video_inputs, 1)

    def _temporal_bonus(self, completions: list, columns: dict) -> list[float | None]:
        """The `temporal` reward of the ordered rollouts (TRL calls it through [`TemporalReward`]); `None` for rows the
        contrast does not cover, and for every row outside training.

        Groups may span processes, so the correctness of every ordered rollout and the shuffled counts of every group
        are gathered, and each process returns its own rows' share.
        """
        if not self.model.training:
            return [None] * len(completions)
        scope, judge, num_generations = self._scope, self._answer_judge, self.num_generations
        solutions = columns["solution"]
        videos = _contrasted_rows(scope)
        ordered = [
            judge.score(completion, solution) if video else None
            for completion, solution, video in zip(completions, solutions, videos.tolist(), strict=True)
        ]
        process, num_processes = self.accelerator.process_index, self.accelerator.num_processes
        num_groups = len(completions) * num_processes // num_generations
        shuffled = torch.zeros(num_groups, 2)  # correct, judged
        for group in scope.shuffled or []:
            scores = [judge.score(completion, solutions[group.row]) for completion in group.completions]
            judged = [score for score in scores if score is not None]
            shuffled[group.group] += torch.tensor([sum(score == 1.0 for score in judged), len(judged)])
        device = self.accelerator.device
        ordered = torch.tensor([float("nan") if score is None else score for score in ordered])
        all_ordered = self.accelerator.gather(ordered.to(device)).cpu()
        all_shuffled = self.accelerator.gather(shuffled.to(device)).cpu().view(num_processes, num_groups, 2).sum(0)
        result = temporal_bonus(
            all_ordered,
            all_shuffled[:, 0],
            all_shuffled[:, 1],
            num_generations,
            self.args.temporal_contrast_alpha,
            self.args.temporal_contrast_mu,
        )
        self._log_temporal_contrast(result, scope.shuffled or [], len(completions), columns.get("log_extra"))
        mine = result.bonus[process * len(completions) : (process + 1) * len(completions)]
        return [None if torch.isnan(bonus) else bonus.item() for bonus in mine]

    def _log_temporal_contrast(self, result, shuffled: list[ShuffledGroup], num_rows: int, log_extra) -> None:
        if result.contrasted.any():
            metrics, contrasted = self._metrics["train"], result.contrasted
            metrics["temporal/ordered_accuracy"].append(result.ordered_accuracy[contrasted].mean().item())
            metrics["temporal/shuffled_accuracy"].append(result.shuffled_accuracy[contrasted].mean().item())
            metrics["temporal/bonus_group_fraction"].append(result.granted[contrasted].float().mean().item())
            metrics["temporal/bonus_mean"].append(torch.nanmean(result.bonus).item())
        if log_extra is not None:  # the completions table: each ordered row with its group's shuffled frame order
            orders = {group.group: " ".join(map(str, group.permutation)) for group in shuffled}
            first_row = self.accelerator.process_index * num_rows
            log_extra(
                "temporal_permutation",
                [orders.get((first_row + row) // self.num_generations) for row in range(num_rows)],
            )

    def _advantage_noise(self, advantages: torch.Tensor) -> torch.Tensor:
        """N(0, std²) per advantage, seeded by (seed, step, process) so a resumed run draws the same noise."""
        seed = (self.args.seed * 1_000_003 + self.state.global_step) * 1_009 + self.accelerator.process_index
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(advantages.shape, generator=generator) * self.args.advantage_noise_std
        return noise.to(advantages.device, advantages.dtype)

    # ---- checkpoints ---------------------------------------------------------------------------------------------

    def _rollout_cycle(self) -> list[int]:
        return [self.args.steps_per_generation, self.num_iterations]

    def _save_checkpoint(self, model, trial):
        if not self.args.save_only_model:  # before the rest, so that `trainer_state.json` is still written last
            checkpoint = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
            file = os.path.join(checkpoint, rollout_buffer_file(self.args.process_index, self.args.world_size))
            at_boundary = self._step % (self.args.steps_per_generation * self.num_iterations) == 0
            with no_space_reported(checkpoint):
                os.makedirs(checkpoint, exist_ok=True)
                save_rollout_buffer(
                    file, self._step, self._rollout_cycle(), None if at_boundary else self._buffered_inputs
                )
        super()._save_checkpoint(model, trial)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        file = os.path.join(checkpoint, rollout_buffer_file(self.args.process_index, self.args.world_size))
        if not os.path.exists(file):  # saved by an older version, or by another number of processes
            self._step = self.state.global_step * self.args.gradient_accumulation_steps
            if self._step % (self.args.steps_per_generation * self.num_iterations) != 0:
                logger.warning(
                    "%s has no %s: resumed inside a generation cycle, the run samples fresh rollouts where the "
                    "uninterrupted run would reuse buffered ones", checkpoint, os.path.basename(file),
                )  # fmt: skip
            return
        self._step, cycle, buffer = load_rollout_buffer(file, self.accelerator.device)
        if buffer is not None and cycle != self._rollout_cycle():
            logger.warning(
                "%s was saved with [steps_per_generation, num_iterations] = %s, this run has %s: its buffered "
                "rollouts are dropped", checkpoint, cycle, self._rollout_cycle(),
            )  # fmt: skip
            buffer = None
        self._buffered_inputs = buffer  # None: TRL generates at the next step

    def _tokenize_prompts(self, prompts: list):
        policy, processor = self.policy, self.processing_class
        texts = [
            policy.render_prompt(
                processor,
                prompt,
                chat_template=self.chat_template,
                add_generation_prompt=True,
                **self.chat_template_kwargs,
            )
            for prompt in prompts
        ]
        batch = self._scoped_rows(len(prompts))
        token = policy.video_token(processor)
        for row, (text, video) in enumerate(zip(texts, batch["video_index"].tolist(), strict=True)):
            expected = 0 if video < 0 else 1
            if text.count(token) != expected:
                raise ValueError(
                    f"Row {row} of the batch renders {text.count(token)} video placeholders but has "
                    f"{'no' if video < 0 else 'a'} video: a row with a video needs exactly one {{'type': 'video'}} "
                    f"part in its prompt, a text-only row none. Prompt: {prompts[row]!r}"
                )
        prompt_ids = policy.tokenize_prompts(processor, texts, batch["video_clip"])
        # The rows' video inputs are built in `_hf_generate` from the padded ids (vLLM: `build_prompt_embeds`).
        return prompt_ids, None, {}

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if not self.use_vllm:
            return self._hf_generate(prompt_ids)
        if self.state.global_step != self._last_loaded_step:
            with profiling_context(self, "sync_weights"):
                self.vllm_generation.sync_weights()
            self._last_loaded_step = self.state.global_step
        batch = self._scoped_rows(len(prompt_ids))
        if self.policy.vllm_route == "native":
            return self._native_video_rollouts(prompt_ids, batch)
        # Each process embeds its own rows; under ZeRO-3 the module calls gather their parameters as usual.
        with self.accelerator.autocast():
            prompt_embeds = build_prompt_embeds(
                self.policy,
                self.accelerator.unwrap_model(self.model),
                prompt_ids,
                batch["video_index"].tolist(),
                self._video_inputs_fn(batch),
                pad_token_id=self._tokenizer.pad_token_id or 0,
                dtype=self.vllm_generation.dtype,
            )
        return self.vllm_generation.generate_embeds(prompt_embeds, profiler=profiling_context(self, "vLLM.generate"))

    def _hf_generate(self, prompt_ids: list[list[int]]) -> tuple[list[list[int]], None]:
        """TRL's HF `generate` path, with the rows' video inputs built from the padded prompt ids.

        A family's inputs may depend on the padding (Qwen2.5-VL's per-token `mm_token_type_ids`) or not be tensors
        (`mm_encoder_outputs`), which TRL's path (it pads inside and forwards only tensors) cannot carry; so the prompt
        ids are padded here exactly as TRL pads them (left, `pad_to_multiple_of`) and `generate` runs as TRL runs it.
        """
        from trl.models import unwrap_model_for_generation
        from trl.trainer.utils import pad

        batch = self._scoped_rows(len(prompt_ids))
        device = self.accelerator.device
        prompts = [torch.tensor(ids) for ids in prompt_ids]
        padded = dict(padding_side="left", pad_to_multiple_of=self.pad_to_multiple_of)
        input_ids = pad(prompts, padding_value=self._tokenizer.pad_token_id, **padded).to(device)
        attention_mask = pad([torch.ones_like(t) for t in prompts], padding_value=0, **padded).to(device)
        with (
            profiling_context(self, "transformers.generate"),
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped_model,
            torch.no_grad(),
            self._dist.summon_full_params(self.model_wrapped, recurse=False),
        ):
            video_inputs = self._video_inputs_fn(batch)(batch["video_index"], input_ids, unwrapped_model)
            prompt_completion_ids = unwrapped_model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                **video_inputs,
                generation_config=self.generation_config,
            )
        completion_ids = prompt_completion_ids[:, input_ids.size(1) :]
        # Everything after the first EOS token is cut (TRL's rule)
        is_eos = torch.isin(completion_ids, torch.tensor(self.eos_token_ids, device=device))
        eos_idx = torch.full((is_eos.size(0),), is_eos.size(1), dtype=torch.long, device=device)
        eos_idx[is_eos.any(dim=1)] = is_eos.int().argmax(dim=1)[is_eos.any(dim=1)]
        sequence_indices = torch.arange(is_eos.size(1), device=device).expand(is_eos.size(0), -1)
        completion_mask = sequence_indices <= eos_idx.unsqueeze(1)
        return [c[m].tolist() for c, m in zip(completion_ids.cpu(), completion_mask.cpu(), strict=True)], None

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        pixel_values=None,
        image_grid_thw=None,
        num_images=None,
        pixel_attention_mask=None,
        spatial_shapes=None,
        num_tiles=None,
        image_sizes=None,
        token_type_ids=None,
        mm_token_type_ids=None,
        image_position_ids=None,
    ):
        image_inputs = (
            pixel_values,
            image_grid_thw,
            num_images,
            pixel_attention_mask,
            spatial_shapes,
            num_tiles,
            image_sizes,
            token_type_ids,
            mm_token_type_ids,
            image_position_ids,
        )
        unexpected = [name for name, value in zip(_IMAGE_KWARGS, image_inputs, strict=True) if value is not None]
        if unexpected:
            raise ValueError(f"VideoGRPOTrainer got image inputs {unexpected}; datasets must carry a `video` column")
        batch = self._scoped_rows(input_ids.size(0))
        video_inputs, rows = self._video_inputs_fn(batch), batch["video_index"]
        batch_size = batch_size or input_ids.size(0)
        all_logps, all_entropies, all_aux_losses = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            model_inputs = {
                "input_ids": input_ids[start:end],
                "attention_mask": attention_mask[start:end],
                **video_inputs(rows[start:end], input_ids[start:end], model),
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
        self._scope.logps = logps
        return logps, entropies, aux_loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with self._scoring(inputs):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _compute_loss(self, model, inputs):
        with self._scoring(inputs) as scope:
            loss = super()._compute_loss(model, inputs)
        if self.args.kl_clamp is not None and self.beta != 0.0:
            loss = loss + self._kl_clamp_correction(inputs, scope.logps)
        return loss

    def _kl_clamp_correction(self, inputs: dict, per_token_logps: torch.Tensor) -> torch.Tensor:
        """What turns TRL's KL term into the clamped one of TinyLLaVA-Video-R1 (seed-facts §5.3).

        TRL 1.16's `grpo` loss adds `β·kl_t` to every token, `kl_t = exp(d) − d − 1` with `d = ref − logp`, then takes
        the mean over each sequence's completion tokens and the mean over sequences. This returns the same aggregate
        of `β·(clamp(kl_t, −c, c) − kl_t)`: added to TRL's loss it gives the clamped loss, and a clamped token's KL no
        gradient. `per_token_logps`: `[B, T]`, the policy pass TRL's loss just ran (with its graph).
        """
        ref = inputs["ref_per_token_logps"]
        delta = ref - per_token_logps
        kl = torch.exp(delta) - delta - 1
        excess = kl.clamp(-self.args.kl_clamp, self.args.kl_clamp) - kl
        mask = (
            inputs["completion_mask"] if "tool_mask" not in inputs else inputs["completion_mask"] * inputs["tool_mask"]
        )
        per_sequence = (excess * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
        normalizer = self.current_gradient_accumulation_steps if self.model.training else 1.0
        return self.beta * per_sequence.mean() / normalizer

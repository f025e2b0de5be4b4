"""Every setting of the demo, for the default run and `--fast`."""

import dataclasses
from dataclasses import dataclass, field

# `direction` stays at chance in every base this budget trains (frozen or trained tower, 4 or 8 resampler groups),
# so no later stage can learn it; it is left out by default and `--tasks` adds it back.
TASKS = ["colour", "count", "order"]


@dataclass
class DemoSettings:
    """Sizes, steps and learning rates of the demo's stages.

    Args:
        seed (`int`): Seeds the data, the model's initialisation and every trainer.
        tasks (`list[str]`): Synthetic tasks (see [`r1video.data.synth`]); any of `r1video.data.synth.TASKS`.
        frame_size (`int`): Frame width and height in pixels.
        num_frames (`int`): Frames per clip (one per step of the clip's story).
        square_size (`int`): Side of the clips' squares in pixels (with 6 of 32, the base learnt to see on some seeds
            only).
        n_train (`int`): Training clips: the base stage's questions and captions, the cold start's replay pool and
            the GRPO prompts.
        n_val (`int`): Validation clips: choose the cold-start checkpoint (never the test split).
        n_test (`int`): Held-out test clips: the reported accuracies.
        model (`dict`): `build_tiny_model` overrides (model size).
        base_steps, base_lr, base_batch_size, base_freeze_vision: The base stage (option answers + captions; the
            vision tower is trained too, as it stands in for pretraining).
        coldstart_steps, coldstart_lr, coldstart_batch_size, coldstart_replay: The cold start: the 16 reasoning
            samples, plus `coldstart_replay` base-stage samples per batch against forgetting.
        coldstart_eval_every (`int`): Validate the cold start every this many steps; the best step is kept.
        grpo_steps, grpo_lr, grpo_prompts, grpo_generations, grpo_max_tokens, grpo_temperature, grpo_loss_type,
            grpo_beta: GRPO (`grpo_prompts` × `grpo_generations` completions per step).
        grpo_eval_every (`int`): Held-out validation accuracy during GRPO every this many steps (0: never), for the
            curves.
        grpo_temporal_contrast (`bool`): GRPO with temporal contrast (`VideoGRPOConfig.temporal_contrast`, Video-R1's
            T-GRPO) at its default settings.
        eval_max_tokens (`int`): Longest greedy reply in evaluation.
        eval_batch_size (`int`): Questions per `generate` call.
        progress (`bool`): Show the trainers' step bars and per-step log lines.
    """

    seed: int = 0
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    frame_size: int = 32
    num_frames: int = 8
    square_size: int = 10
    n_train: int = 1000
    n_val: int = 100
    n_test: int = 300
    model: dict = field(
        # group 8 = one resampler group per frame: the flash count needs each frame's place in time. A 64-wide tower:
        # with 32, the base of some seeds learnt to tell yellow from the other colours and no more.
        default_factory=lambda: dict(
            vision_patch_size=4,
            vision_hidden_size=64,
            vision_intermediate_size=128,
            text_hidden_size=128,
            text_intermediate_size=256,
            group=8,
        )
    )
    base_steps: int = 500
    base_lr: float = 2e-3
    base_batch_size: int = 32
    base_freeze_vision: bool = False
    coldstart_steps: int = 200
    coldstart_lr: float = 1e-3
    coldstart_batch_size: int = 16
    coldstart_replay: int = 16
    coldstart_eval_every: int = 25
    grpo_steps: int = 250
    grpo_lr: float = 1e-4
    grpo_prompts: int = 4
    grpo_generations: int = 8
    grpo_max_tokens: int = 40
    grpo_temperature: float = 0.7
    grpo_loss_type: str = "grpo"
    grpo_beta: float = 0.0
    grpo_eval_every: int = 50
    grpo_temporal_contrast: bool = False
    eval_max_tokens: int = 40
    eval_batch_size: int = 100
    progress: bool = True

    @classmethod
    def fast(cls, **overrides) -> "DemoSettings":
        """The same pipeline, tiny: every stage runs and writes its outputs in well under two minutes."""
        values = dict(
            n_train=48,
            n_val=16,
            n_test=24,
            base_steps=6,
            base_batch_size=8,
            coldstart_steps=4,
            coldstart_batch_size=8,
            coldstart_replay=8,
            coldstart_eval_every=2,
            grpo_steps=3,
            grpo_prompts=2,
            grpo_generations=4,
            grpo_max_tokens=16,
            grpo_eval_every=2,
            eval_max_tokens=16,
        )
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

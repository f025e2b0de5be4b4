"""What only the demo decides: the data's sizes, the cold start's replay share, the evaluation, and `--fast`.

Every training setting is in the recipes (`recipes/demo/*.yaml`), run through `r1video sft` / `r1video grpo`'s
entry points; `--fast` shrinks them with the same command-line overrides a user would pass.
"""

import dataclasses
from dataclasses import dataclass, field

# `direction` stays at chance in every base this budget trains (frozen or trained tower, 4 or 8 resampler groups),
# so no later stage can learn it; it is left out by default and `--tasks` adds it back.
TASKS = ["colour", "count", "order"]
STAGES = ("base", "coldstart", "grpo")


@dataclass
class DemoSettings:
    """The demo's own settings.

    Args:
        seed (`int`): Seeds the data, the model's initialisation and every stage (`--seed` / `--data_seed`).
        tasks (`list[str]`): Synthetic tasks (see [`r1video.data.synth`]); any of `r1video.data.synth.TASKS`.
        frame_size (`int`): Frame width and height in pixels.
        square_size (`int`): Side of the clips' squares in pixels (with 6 of 32, the base learnt to see on some seeds
            only).
        n_train (`int`): Training clips: the base stage's questions and captions, the cold start's replay pool and
            the GRPO prompts.
        n_val (`int`): Validation clips: choose the cold-start checkpoint (never the test split).
        n_test (`int`): Held-out test clips: the reported accuracies.
        coldstart_replay (`int`): Base-stage rows per cold-start batch, on average (the rest are the 16 reasoning
            samples), against forgetting.
        eval_max_tokens (`int`): Longest greedy reply in evaluation.
        eval_batch_size (`int`): Questions per `generate` call.
        overrides (`dict`): Stage → extra command-line overrides of its recipe (`["--max_steps", "3"]`).
        progress (`bool`): Show the trainers' step bars.
        policy (`str`, *optional*): The model family's name (`r1video demo --policy NAME`); `None`: TinyLLaVA-Video
            from `model.yaml`.
    """

    seed: int = 0
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    frame_size: int = 32
    square_size: int = 10
    n_train: int = 1000
    n_val: int = 100
    n_test: int = 300
    coldstart_replay: int = 16
    eval_max_tokens: int = 40
    eval_batch_size: int = 100
    overrides: dict[str, list[str]] = field(default_factory=lambda: {stage: [] for stage in STAGES})
    progress: bool = True
    policy: str | None = None

    @classmethod
    def fast(cls, **values) -> "DemoSettings":
        """The same pipeline, tiny: every stage runs and writes its outputs in well under two minutes."""
        overrides = {
            "base": ["--max_steps", "6", "--per_device_train_batch_size", "8", "--warmup_steps", "1"],
            "coldstart": [
                "--max_steps",
                "4",
                "--per_device_train_batch_size",
                "16",
                "--warmup_steps",
                "1",
                "--save_steps",
                "2",
            ],  # fmt: skip
            "grpo": [
                "--max_steps",
                "3",
                "--per_device_train_batch_size",
                "8",
                "--num_generations",
                "4",
                "--max_completion_length",
                "16",
                "--eval_steps",
                "2",
                "--per_device_eval_batch_size",
                "16",
            ],  # fmt: skip
        }
        for stage in STAGES:
            overrides[stage] += ["--logging_steps", "1"]
        settings = dict(n_train=48, n_val=16, n_test=24, coldstart_replay=8, eval_max_tokens=16, overrides=overrides)
        settings.update(values)
        return cls(**settings)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

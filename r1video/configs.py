"""Script arguments of the entry points: every key of a YAML recipe is a field of `VideoScriptArguments`, of the
trainer's config (`r1video.trainer.VideoGRPOConfig` / `VideoSFTConfig`) or of TRL's `ModelConfig`.

`TrlParser` reads them as one flat namespace, so field names are unique across the classes; unknown keys are errors.
"""

import json
from dataclasses import dataclass, field


@dataclass
class VideoScriptArguments:
    r"""
    Data and reward selection for the `r1video grpo` / `r1video sft` entry points.

    > Parameters that control the data

    train_file (`str`): annotation file (GRPO jsonl, or LLaVA-style SFT json); see `data_cards/`.
    eval_file (`str` or `None`): held-out annotation file in the same format, evaluated by TRL during training
        (`eval_strategy`, `eval_steps`) and once after it; GRPO logs reward and accuracy metrics per reward on it.
    video_root (`str`): directory the videos of `train_file` and `eval_file` are relative to.
    question_template (`str`): the GRPO question built from each problem: a name (`"r1"`, the original's training
        prompt: the problem, a space, the reasoning instruction; `"r1_eval"`: the instruction on its own line, as the
        evaluation prompts; `"option"`; `"open_ended"`; `"none"`: the problem as it is), a path to a `.txt` file
        holding a template, or a literal template containing `{Question}`. See `r1video.model.templates`.

    > Parameters that control the rewards

    reward_funcs (`list[str]`): registry names, `"package.module:attr"`, `"path/to/file.py:attr"` (relative to the
        working directory, then to the recipe's folder), or entry-point names (`r1video.rewards`).
    reward_kwargs (`dict`): arguments per reward name, checked against each reward's signature before any model loads;
        on the command line, a JSON mapping (`--reward_kwargs '{"tinyllava_r1": {"rule": "original"}}'`).

    > Parameters that control resuming

    allow_changed (`list[str]`): recipe keys (and `train_file` for its content) that may differ from the checkpoint a
        run resumes from, e.g. `--allow_changed learning_rate,max_steps`; any other difference stops the run.
    """

    train_file: str | None = field(default=None, metadata={"help": "Annotation file: GRPO jsonl or SFT json."})
    eval_file: str | None = field(
        default=None, metadata={"help": "Held-out annotation file, same format, evaluated during training."}
    )
    video_root: str = field(default=".", metadata={"help": "Directory the video paths are relative to."})
    question_template: str = field(
        default="r1",
        metadata={
            "help": "GRPO question: a template name (r1, r1_eval, option, open_ended, none), a .txt file, or a "
            "template containing {Question}."
        },
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["tinyllava_r1"],
        metadata={
            "help": "Rewards: a registry name, 'module:attr', 'path/to/file.py:attr' or an r1video.rewards entry point."
        },
    )
    # A recipe gives a mapping, a flag JSON text (parsed below); typed like TRL's own dict options (`dict | str | None`)
    # so that the flag is read as text.
    reward_kwargs: dict | str | None = field(
        default_factory=dict,
        metadata={"help": "Per-reward arguments: {name: {arg: value}} (JSON on the command line)."},
    )
    allow_changed: list[str] = field(
        default_factory=list,
        metadata={"help": "Recipe keys that may differ from the resumed checkpoint's (comma or space separated)."},
    )

    def __post_init__(self):
        if self.reward_kwargs is None:
            self.reward_kwargs = {}
        if isinstance(self.reward_kwargs, str):
            try:
                self.reward_kwargs = json.loads(self.reward_kwargs)
            except json.JSONDecodeError as error:
                raise ValueError(f"reward_kwargs: not a JSON mapping ({error}): {self.reward_kwargs!r}") from None
        if not isinstance(self.reward_kwargs, dict):
            raise ValueError(
                f"reward_kwargs must be a mapping {{reward name: {{argument: value}}}}, got {self.reward_kwargs!r}"
            )

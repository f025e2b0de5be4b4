"""The command line of the training entry points (`r1video sft`, `r1video grpo`): help, recipe checks, usage errors.

`run(stage, argv, make_parser, train)` reads a recipe the way a user's mistake deserves:
- `--help` lists `--config` and r1video's own keys in a screen, without importing torch; `--help-all` prints every
  TRL / transformers key as well;
- a missing recipe, `train_file`, `video_root` or local model folder, an unknown or misspelt key or reward (with the
  closest match), an unknown value of a choice key (`lr_scheduler_type: constnat`, with the closest valid value), a
  key the stage does not use or an abbreviated flag ends the run with one line naming it (and its recipe file) and
  exit code 2, before any model loads; the paths and reward names are checked before torch and TRL are imported;
- `--quiet` prints only errors and the closing summary (it sets `log_level: error` and turns progress bars and
  warnings off); piped output has no progress bars.
"""

import argparse
import dataclasses
import json
import os
import sys
import types
import typing

from r1video.configs import VideoScriptArguments
from r1video.trainer.video_options import VideoGRPOOptions, VideoSFTOptions
from r1video.usage import USAGE_ERROR, UsageError, check_choice, check_model_path, did_you_mean

__all__ = ["USAGE_ERROR", "UsageError", "check_model_path", "run"]

STAGES = {
    "grpo": {
        "title": "GRPO training from a YAML recipe",
        "options": (VideoScriptArguments, VideoGRPOOptions),
        "trl": "GRPOConfig",
    },
    "sft": {
        "title": "cold-start SFT from a YAML recipe (LLaVA-style conversations)",
        "options": (VideoScriptArguments, VideoSFTOptions),
        "trl": "SFTConfig",
    },
}

# Keys a stage's parser accepts (they are fields of a shared or inherited dataclass) but its run never reads.
_LOADED_BY_R1VIDEO = "r1video loads the model itself from model_name_or_path, dtype and attn_implementation"
_NOT_QUANTIZED = "r1video does not quantize the model (no bitsandbytes loading)"
_BOTH_STAGES = {
    "model_init_kwargs": _LOADED_BY_R1VIDEO,
    "load_in_8bit": _NOT_QUANTIZED,
    "load_in_4bit": _NOT_QUANTIZED,
    "bnb_4bit_quant_type": _NOT_QUANTIZED,
    "use_bnb_nested_quant": _NOT_QUANTIZED,
    "bnb_4bit_quant_storage": _NOT_QUANTIZED,
}
UNUSED_KEYS = {
    "grpo": {**_BOTH_STAGES},
    "sft": {
        **_BOTH_STAGES,
        "reward_funcs": "rewards are GRPO-only",
        "reward_kwargs": "rewards are GRPO-only",
        "question_template": "SFT trains the conversations as written in train_file",
        "dataset_text_field": "the video collator tokenises the `messages` column",
        "dataset_num_proc": "TRL's dataset preparation is skipped (the collator tokenises on the fly)",
        "pad_token": "the collator pads with the processor's pad token",
        "completion_only_loss": "the collator already trains on the assistant replies only",
        "assistant_only_loss": "the collator already trains on the assistant replies only",
        "packing_strategy": "packing is not supported for video SFT",
        "eval_packing": "packing is not supported for video SFT",
    },
}

# Keys that exist in TRL's own scripts but not in r1video: what to write instead.
NOT_R1VIDEO_KEYS = {
    "dataset_name": "r1video reads local annotation files: set train_file (and video_root)",
    "dataset_config": "r1video reads local annotation files: set train_file (and video_root)",
    "dataset_train_split": "r1video reads local annotation files: set train_file",
    "dataset_test_split": "r1video reads local annotation files: set eval_file",
    "dataset_streaming": "r1video reads local annotation files",
    "ignore_bias_buffers": "not used by r1video",
}

# TRL / transformers keys most recipes set, named in the short help.
COMMON_TRL_KEYS = (
    "model_name_or_path dtype output_dir learning_rate lr_scheduler_type warmup_ratio num_train_epochs max_steps "
    "per_device_train_batch_size gradient_accumulation_steps activation_checkpointing bf16 use_cpu seed logging_steps "
    "save_strategy save_steps eval_strategy eval_steps report_to resume_from_checkpoint push_to_hub use_peft"
)
COMMON_GRPO_KEYS = (
    "num_generations max_completion_length temperature beta loss_type num_iterations scale_rewards reward_weights "
    "use_vllm log_completions"
)


def run(stage: str, argv: list[str] | None, make_parser, train) -> int:
    """Parse `argv` (a recipe and flag overrides), check it, and run `train(script_args, training_args, model_args)`.

    Returns the exit code: 0, or 2 after printing one `r1video STAGE: error: ...` line for a usage error.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = f"r1video {stage}"
    if "-h" in argv or "--help" in argv:
        print(short_help(stage))  # noqa: T201
        return 0
    if "--help-all" in argv:
        make_parser(prog=prog).print_help()
        return 0
    quiet = "--quiet" in argv
    if quiet:  # only errors and the closing summary
        argv = [token for token in argv if token != "--quiet"]
        argv += ["--log_level", "error", "--log_level_replica", "error", "--disable_tqdm", "true"]
    try:
        recipe_path, recipe = read_recipe(stage, argv)
        check_paths_and_rewards(stage, recipe_path, recipe, argv)  # before torch and TRL load
        parser = make_parser(prog=prog)
        check_keys(stage, parser, recipe_path, recipe, argv)
        try:
            script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
        except ValueError as error:  # a config's own check (__post_init__)
            raise UsageError(str(error).strip().splitlines()[0]) from error
        plugin_dirs = [os.getcwd()]
        if recipe_path is not None:
            plugin_dirs.append(os.path.dirname(os.path.abspath(recipe_path)))
            find_reward_plugins(script_args, plugin_dirs[1])
        check_inputs(stage, script_args, model_args, plugin_dirs=plugin_dirs)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)  # noqa: T201
        return USAGE_ERROR

    from r1video.data.bad_samples import TooManyBadSamplesError
    from r1video.runs import RunLockedError, RunRefusedError, interrupted_message, run_lock
    from r1video.trainer.console import plain_output

    plain_output(quiet)  # no progress bars when piped or quiet, before the model loads

    try:
        # One run per output_dir: a second one started on it is refused, naming the holder.
        with run_lock(training_args.output_dir, main_process=training_args.process_index == 0):
            train(script_args, training_args, model_args)
    except (RunLockedError, TooManyBadSamplesError) as error:  # a run stopped for its clips: one line, no traceback
        print(f"{prog}: error: {error}", file=sys.stderr)  # noqa: T201
        return 1
    except RunRefusedError as error:  # another run's checkpoints, or a changed recipe on resume
        print(f"{prog}: error: {error}", file=sys.stderr)  # noqa: T201
        return USAGE_ERROR
    except KeyboardInterrupt:  # Ctrl-C: where to go on from, not a traceback
        if training_args.process_index == 0:
            print(f"\n{prog}: {interrupted_message(training_args.output_dir)}", file=sys.stderr)  # noqa: T201
        return 130
    return 0


def read_recipe(stage: str, argv: list[str]) -> tuple[str | None, dict]:
    """The `--config` path in `argv` and its YAML mapping (`None, {}` when every key is given as a flag).

    Raises:
        UsageError: no arguments at all, or the file is missing, unreadable YAML or not a mapping.
    """
    import yaml

    if not argv:
        raise UsageError(
            f"--config RECIPE.yaml is needed (e.g. recipes/tiny/grpo_smoke.yaml); `r1video {stage} --help` lists the keys"
        )
    if any(token.startswith("--config=") for token in argv):
        raise UsageError("write --config RECIPE.yaml with a space (TRL's parser reads it that way)")
    if "--config" not in argv:
        return None, {}
    index = argv.index("--config")
    if index + 1 >= len(argv):
        raise UsageError("--config needs a recipe file (a YAML mapping of keys to values)")
    path = argv[index + 1]
    if not os.path.isfile(path):
        raise UsageError(f"recipe file not found: {path}")
    try:
        with open(path, encoding="utf-8") as file:
            recipe = yaml.safe_load(file)
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from error
    if not isinstance(recipe, dict):
        raise UsageError(f"{path}: a recipe is a YAML mapping of keys to values, got {type(recipe).__name__}")
    return path, recipe


def check_keys(
    stage: str, parser: argparse.ArgumentParser, recipe_path: str | None, recipe: dict, argv: list[str]
) -> None:
    """Every recipe key and flag must be one the stage uses, spelt in full.

    Raises:
        UsageError: naming the key (with its recipe file) or the flag, and the closest known key.
    """
    keys = {action.dest for action in parser._actions if action.option_strings} - {"help"}
    flags = {option for action in parser._actions for option in action.option_strings}
    choices = {action.dest: action.choices for action in parser._actions if action.choices}
    for key, value in recipe.items():
        if key != "env" and key not in keys:
            raise UsageError(f"{recipe_path}: unknown key {key!r}{_hint(stage, key, keys)}")
        if key in choices and isinstance(value, str):
            check_choice(f"{recipe_path}: {key}", value, choices[key])
    set_keys = set(recipe)
    values = flag_values(argv)
    for token in argv:
        if not token.startswith("--") or token == "--config":
            continue
        flag = token.split("=", 1)[0]
        if flag not in flags:
            raise UsageError(f"unknown flag {flag}{_hint(stage, flag[2:].replace('-', '_'), keys, prefix='--')}")
        key = next(action.dest for action in parser._actions if flag in action.option_strings)
        set_keys.add(key)
        given = values.get(flag[2:].replace("-", "_"), [])
        if key in choices and len(given) == 1:
            check_choice(f"flag {flag}", given[0], choices[key])
    for key, reason in UNUSED_KEYS[stage].items():
        if key in set_keys:
            where = f"{recipe_path}: key " if key in recipe else "flag --"
            raise UsageError(f"{where}{key} is not used by r1video {stage} ({reason}); remove it")


def flag_values(argv: list[str]) -> dict[str, list[str]]:
    """`{key: [value, ...]}` of the `--key value ...` / `--key=value` flags in `argv` (the last of a repeated flag)."""
    values: dict[str, list[str]] = {}
    key = None
    for token in argv:
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            name = name.replace("-", "_")  # TRL's parser takes `--train-file` for `--train_file` too
            values[name] = [value] if eq else []
            key = None if eq else name
        elif key is not None:
            values[key].append(token)
    return values


def check_paths_and_rewards(stage: str, recipe_path: str | None, recipe: dict, argv: list[str]) -> None:
    """The checks that need neither torch nor TRL, on the recipe's values and the flags that override them: the data
    files, `video_root`, a local model folder, and (GRPO) reward names that are neither registered nor plugin paths.

    Raises:
        UsageError: naming the key (with its recipe file when the value comes from there).
    """
    flags = flag_values(argv)

    def value(key):
        if key in flags:
            given = flags[key]
            return f"flag --{key}", (given[0] if len(given) == 1 else given)
        return f"{recipe_path}: {key}", recipe.get(key)

    for key in ("train_file", "eval_file"):
        where, path = value(key)
        if isinstance(path, str) and not os.path.isfile(path):
            raise UsageError(f"{where}: file not found: {path}")
    where, root = value("video_root")
    if isinstance(root, str) and not os.path.isdir(root):
        raise UsageError(f"{where}: folder not found: {root}")
    where, model = value("model_name_or_path")
    if isinstance(model, str):
        check_model_path(model, key=where)
    if stage == "grpo":
        from rewards import available_rewards

        where, names = value("reward_funcs")
        known = available_rewards()
        for name in [names] if isinstance(names, str) else names or []:
            if isinstance(name, str) and ":" not in name and name not in known:
                raise UsageError(
                    f"{where}: unknown reward {name!r}{did_you_mean(name, known)} (registered: {', '.join(known)}; "
                    "a plugin is 'package.module:function' or 'file.py:function')"
                )


def check_inputs(stage: str, script_args, model_args, plugin_dirs: list[str] | None = None) -> None:
    """The files a run reads exist, and (GRPO) every reward resolves with its arguments (plugin files looked for in
    `plugin_dirs`), before any model loads.

    Raises:
        UsageError: naming the key and the path or reward.
    """
    if script_args.train_file is None:
        raise UsageError("set train_file in the recipe (see data_cards/) and video_root")
    for key in ("train_file", "eval_file"):
        path = getattr(script_args, key)
        if path is not None and not os.path.isfile(path):
            raise UsageError(f"{key}: file not found: {path}")
    if not os.path.isdir(script_args.video_root):
        raise UsageError(f"video_root: folder not found: {script_args.video_root}")
    check_model_path(model_args.model_name_or_path)
    if stage == "grpo":
        from rewards import get_reward_funcs

        try:
            get_reward_funcs(script_args.reward_funcs, script_args.reward_kwargs, search_dirs=plugin_dirs)
        except ValueError as error:
            raise UsageError(f"reward_funcs: {error}") from error


def find_reward_plugins(script_args, recipe_dir: str) -> None:
    """A reward plugin file (`my_rewards.py:fn`, or `my_rewards:fn` for an uninstalled module) is looked for in the
    working directory, then next to the recipe: one found only there is renamed to its absolute `path.py:fn` form in
    `reward_funcs` and `reward_kwargs`, so that the run loads it from there."""
    from rewards.registry import plugin_file

    renamed = {}
    for name in script_args.reward_funcs:
        if plugin_file(name, [os.getcwd()]) is None:
            path = plugin_file(name, [recipe_dir])
            if path is not None:
                renamed[name] = f"{path}:{name.partition(':')[2]}"
    script_args.reward_funcs = [renamed.get(name, name) for name in script_args.reward_funcs]
    script_args.reward_kwargs = {renamed.get(k, k): v for k, v in (script_args.reward_kwargs or {}).items()}


def short_help(stage: str) -> str:
    """Usage, `--config` and r1video's own keys of `stage`, read from light dataclasses (no torch)."""
    spec = STAGES[stage]
    unused = UNUSED_KEYS[stage]
    about = (
        f"{spec['title']}. Every recipe key can also be given as a flag (--key value), which overrides the recipe; "
        "unknown, misspelt or abbreviated keys are errors. Multi-GPU or multi-process: "
        f"accelerate launch -m r1video.{stage} --config RECIPE.yaml"
    )
    lines = [
        f"usage: r1video {stage} --config RECIPE.yaml [--KEY VALUE ...]",
        "",
        *_wrap(about.split(), indent=""),
        "",
        "options:",
        "  -h, --help            this screen: r1video's own keys",
        f"  --help-all            every key, TRL's {spec['trl']} / TrainingArguments / ModelConfig included",
        "  --config RECIPE.yaml  the recipe (examples in recipes/)",
        "  --quiet               print only errors and the closing summary",
    ]
    for options in spec["options"]:
        section = "video" if options is not VideoScriptArguments else "data and rewards" if stage == "grpo" else "data"
        lines += ["", f"{section}:"]
        for f in dataclasses.fields(options):
            if f.name in unused:
                continue
            lines += _describe_field(f)
    lines += ["", f"common TRL keys (`r1video {stage} --help-all` lists all, with their defaults):"]
    common = COMMON_TRL_KEYS + (" " + COMMON_GRPO_KEYS if stage == "grpo" else " max_length")
    lines += _wrap(common.split(), indent="  ")
    return "\n".join(lines)


def build_parser(dataclass_types: tuple, prog: str):
    """TRL's `TrlParser` over `dataclass_types`, with exact flag names only (no prefix matching) and `--no_KEY` flags
    described as what they do (the field's own help describes `--KEY`)."""
    from trl import TrlParser

    usage = f"{prog} --config RECIPE.yaml [--KEY VALUE ...]"  # argparse's own lists every key: hundreds of lines
    parser = TrlParser(dataclass_types, prog=prog, usage=usage, allow_abbrev=False)
    for action in parser._actions:
        if isinstance(action, argparse._StoreFalseAction) and action.option_strings[0].startswith("--no_"):
            action.help = f"set {action.dest} to false (same as --{action.dest} false)"
    return parser


def _describe_field(f: dataclasses.Field) -> list[str]:
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    head = f"  --{f.name} {_type_name(f.type)}"
    text = f.metadata.get("help", "")
    if "choices" in f.metadata:
        text += f" One of: {', '.join(f.metadata['choices'])}."
    text += f" (default: {json.dumps(default)})" if default is not None else ""
    if len(head) <= 23:
        return _wrap(text.split(), indent=" " * 24, first=head.ljust(24))
    return [head] + _wrap(text.split(), indent=" " * 24)


def _type_name(annotation) -> str:
    if isinstance(annotation, str):
        return annotation.upper()
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _type_name(next(a for a in typing.get_args(annotation) if a is not type(None)))
    if origin is list:
        return f"{_type_name(typing.get_args(annotation)[0])} [...]"
    if origin is dict or annotation is dict:
        return "{...}"
    return {bool: "true|false", int: "INT", float: "FLOAT", str: "STR"}.get(annotation, str(annotation))


def _wrap(words: list[str], indent: str, first: str | None = None, width: int = 119) -> list[str]:
    lines, line = [], first if first is not None else indent
    for word in words:
        if len(line) + len(word) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += ("" if line.endswith(" ") or not line.strip() else " ") + word
    lines.append(line.rstrip())
    return lines


def _hint(stage: str, key: str, known: set[str], prefix: str = "") -> str:
    if key in NOT_R1VIDEO_KEYS:
        return f": {NOT_R1VIDEO_KEYS[key]}"
    close = did_you_mean(key, known, prefix=prefix, cutoff=0.75)
    return close or f"; `r1video {stage} --help-all` lists every key"

"""Usage errors every command reports the same way: one line naming the key (and its file), exit code 2, found before
torch is imported wherever the check needs no torch. Standard library only (huggingface_hub for the Hub cache)."""

import argparse
import difflib
import json
import os

USAGE_ERROR = 2  # argparse's exit code for a usage error


class UsageError(ValueError):
    """A mistake in a recipe or on the command line: reported in one line, exit code 2."""


def did_you_mean(word: str, known, prefix: str = "", cutoff: float = 0.6) -> str:
    """`"; did you mean PREFIX<closest>?"` for the known name closest to `word`, or `""` when none is close."""
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=cutoff)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with the training commands' errors: one line `PROG: error: ...`, exit code 2, and a value
    outside a flag's choices named with the closest valid one."""

    def _check_value(self, action, value):
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise argparse.ArgumentError(
                action, f"unknown value {value!r}{did_you_mean(value, action.choices)} (one of: {choices})"
            )

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def check_choice(where: str, value, choices) -> None:
    """A choice key's value (`lr_scheduler_type: constnat`) must be one of `choices` (strings or enums).

    Raises:
        UsageError: `"<where>: unknown value 'constnat'; did you mean constant? (one of: ...)"`.
    """
    names = [str(getattr(choice, "value", choice)) for choice in choices]
    if str(value) not in names:
        raise UsageError(f"{where}: unknown value {value!r}{did_you_mean(value, names)} (one of: {', '.join(names)})")


def looks_local(path: str) -> bool:
    """Whether `path` can only be a local path (it cannot be a Hub id `org/name`)."""
    parts = path.split("/")
    return (
        path.startswith((".", "/", "~"))
        or len(parts) != 2
        or not all(parts)
        or os.path.isdir(parts[0])  # `runs/tiny-model` next to an existing runs/
        or path.endswith(".safetensors")
    )


def check_model_path(path: str | None, key: str = "model_name_or_path") -> None:
    """`path` is a local folder, or a Hub id (`org/name`) that is not a local path by its look (and, offline, is in
    the Hub cache).

    Args:
        key: How the error names the setting (`model_name_or_path`, `--model`).

    Raises:
        UsageError: unset, a local-looking path with no folder there, or offline a Hub id not in the cache.
    """
    if path is None:
        raise UsageError(f"set {key}: a TinyLLaVA-Video checkpoint folder or Hub id")
    if os.path.isdir(path):
        return
    if looks_local(path):
        raise UsageError(f"{key}: no model folder at {path}")
    from huggingface_hub import constants, try_to_load_from_cache

    if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(path, "config.json"), str):
        raise UsageError(f"{key}: no folder {path} here, and no Hub copy of it in the cache (offline mode)")


FRAME_KEYS = ("num_frames", "fps", "max_frames")


def recorded_frames(model_dir: str) -> dict | None:
    """`{"num_frames", "fps", "max_frames"}` of the run that trained the checkpoint in `model_dir`, read from the run
    record in its `trainer_state.json` (a run's final folder or a `checkpoint-N`); `None` when it has none (a
    released checkpoint, a Hub id)."""
    path = os.path.join(model_dir, "trainer_state.json")
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f).get("stateful_callbacks", {}).get("RunRecord")
        recipe = record["attributes"]["recipe"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not any(recipe.get(key) is not None for key in FRAME_KEYS):
        return None
    return {key: recipe.get(key) for key in FRAME_KEYS}

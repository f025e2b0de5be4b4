"""Running a demo stage: its recipe through the entry point users run (`r1video sft` / `r1video grpo`).

[`run_recipe`] does what `r1video sft --config RECIPE FLAGS...` does, in this process: `TrlParser` reads the YAML
recipe and the flag overrides, and the entry point's `train()` runs it (seed, data, model, trainer, save,
`trainer_state.json`, card). Only the model's initialisation is the demo's own ([`build_model`]).
"""

import os
from pathlib import Path

import yaml

import r1video
from r1video import grpo, sft
from r1video.policies import policy_for, policy_named

ENTRY_POINTS = {"base": sft, "coldstart": sft, "grpo": grpo}


def default_recipe_dir() -> str:
    """`recipes/demo` of the r1video checkout this package runs from."""
    return str(Path(r1video.__file__).resolve().parents[1] / "recipes" / "demo")


def recipe_path(recipe_dir: str, stage: str, policy: str | None = None) -> str:
    """`RECIPE_DIR/{stage}_{policy}.yaml` when `policy` names a family with its own recipe for the stage, else
    `RECIPE_DIR/{stage}.yaml`.

    Raises:
        FileNotFoundError: it is not there.
    """
    if policy is not None:
        own = os.path.join(recipe_dir, f"{stage}_{policy}.yaml")
        if os.path.isfile(own):
            return own
    path = os.path.join(recipe_dir, f"{stage}.yaml")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"demo recipe {path} not found; the demo's recipes are recipes/demo/*.yaml of the r1video repository "
            "(pass --recipes DIR)"
        )
    return path


def parse_recipe(recipe_dir: str, stage: str, overrides: list[str], policy: str | None = None):
    """`(script_args, training_args, model_args)` of a stage's recipe ([`recipe_path`]) with `overrides`
    (command-line flags)."""
    parser = ENTRY_POINTS[stage].make_parser()
    return parser.parse_args_and_config(args=["--config", recipe_path(recipe_dir, stage, policy), *overrides])


def run_recipe(recipe_dir: str, stage: str, overrides: list[str], policy: str | None = None):
    """Run a stage's recipe ([`recipe_path`]) with `overrides` as `r1video sft` / `r1video grpo` would; returns the
    trainer."""
    return ENTRY_POINTS[stage].train(*parse_recipe(recipe_dir, stage, overrides, policy))


FAMILY = "tinyllava"  # the model_type of the demo's tiny model (the keys of model.yaml are its config fields)


def build_model(recipe_dir: str, out_dir: str, seed: int, policy: str | None = None) -> str:
    """Save the random tiny model of `RECIPE_DIR/model.yaml` (arguments of the policy's `build_tiny`) to `out_dir`.

    With `policy` (a family's name, `r1video demo --policy NAME`) the model is that family's: its arguments come from
    `RECIPE_DIR/model_{NAME}.yaml` when there is one, else the family's tiny builder uses its own defaults.

    Raises:
        ValueError: the file holds a key the tiny model's configuration does not take (named with the file).
        UnknownFamilyError: `policy` names no registered family.
    """
    if policy is None:
        path, family = recipe_path(recipe_dir, "model"), policy_for(FAMILY)
    else:
        path, family = os.path.join(recipe_dir, f"model_{policy}.yaml"), policy_named(policy)
    arguments = {}
    if os.path.isfile(path):
        with open(path) as f:
            arguments = yaml.safe_load(f) or {}
    unknown = family.unknown_tiny_keys(arguments)
    if unknown:
        raise ValueError(f"{path}: unknown model key(s) {unknown}: not fields of the tiny model's configuration")
    family.build_tiny(out_dir, seed=seed, **arguments)
    return out_dir

"""The demo's stages in order: data → base → cold start → GRPO, each evaluated on the held-out test questions.

Each stage is its recipe (`recipes/demo/{base,coldstart,grpo}.yaml`, or a family's own `{stage}_{NAME}.yaml` there
with `--policy NAME`) run through `r1video sft` / `r1video grpo`'s entry point; each evaluation is `r1video eval`'s runner on a benchmark folder in MMVU's layout. What is the demo's
own: the data, the random initial model, the cold-start mix, the choice of the cold-start checkpoint on the
validation questions, the table.
"""

import gc
import json
import logging
import os
import re
import time
from collections.abc import Callable

import torch

from r1video.demo.data import make_data, write_coldstart_file
from r1video.demo.evaluate import ANSWER_TYPES, evaluate
from r1video.demo.plot import plot_run
from r1video.demo.report import format_examples, format_table, pick_examples
from r1video.demo.settings import DemoSettings
from r1video.demo.stages import build_model, default_recipe_dir, parse_recipe, recipe_path, run_recipe
from r1video.eval.predictions import PredictionLog

logger = logging.getLogger(__name__)


def reward_trend(log_history: list[dict], key: str = "reward") -> dict:
    """Mean of `key` over the first and the last quarter of the logged GRPO steps."""
    values = [entry[key] for entry in log_history if key in entry]
    if not values:
        return {"first": None, "last": None, "rise": None}
    quarter = max(1, len(values) // 4)
    first, last = sum(values[:quarter]) / quarter, sum(values[-quarter:]) / quarter
    return {"first": first, "last": last, "rise": last - first}


def before_after_examples(out_dir: str, data, n: int = 2) -> str:
    """Two held-out questions with the cold start's and GRPO's replies (reason mode), as the report prints them."""
    with open(os.path.join(data.benchmarks["test"][0], "validation.json"), encoding="utf-8") as f:
        questions = {record["id"]: record for record in json.load(f)}
    logs = [PredictionLog(os.path.join(out_dir, "eval", f"{stage}-reason", "predictions.jsonl")).records()
            for stage in ("coldstart", "grpo")]  # fmt: skip
    return format_examples(pick_examples(*(list(log.values()) for log in logs), n=n), questions)


def checkpoints(out_dir: str) -> list[tuple[int, str]]:
    """`(step, folder)` of every `checkpoint-N` in `out_dir`, by step."""
    found = [(int(m.group(1)), os.path.join(out_dir, name)) for name in os.listdir(out_dir)
             if (m := re.fullmatch(r"checkpoint-(\d+)", name))]  # fmt: skip
    return sorted(found)


class DemoFolderInUseError(FileExistsError):
    """The run folder already holds files (an earlier demo): a second run there would mix its results and resume its
    stages from the first run's checkpoints."""


def check_run_folder(out_dir: str) -> None:
    """Refuse a run folder that exists and is not empty.

    Raises:
        DemoFolderInUseError: naming the folder and what to do.
    """
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise DemoFolderInUseError(
            f"{out_dir} already holds a run (a demo never mixes two): pass another --out, or delete it first"
        )


def fresh_run_folder(base: str) -> str:
    """`base` if it is free (missing or empty), else the first free `base-2`, `base-3`, ..."""
    candidate, number = base, 1
    while os.path.isdir(candidate) and os.listdir(candidate):
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def run_demo(
    out_dir: str,
    settings: DemoSettings,
    recipe_dir: str | None = None,
    announce: Callable[[str], None] = logger.info,
) -> dict:
    """Run the whole pipeline into `out_dir`.

    Writes `model/` (the random start), `data/`, `base/`, `coldstart/` (its checkpoints), `grpo/` (the final model),
    `eval/` (the runner's predictions and tables), `results.json` and `curves.png`. The folder must be new or empty:
    one folder never holds two runs.

    Args:
        out_dir: The run folder.
        settings: The demo's own settings (data, replay, evaluation, per-stage overrides).
        recipe_dir: Folder of `model.yaml`, `base.yaml`, `coldstart.yaml`, `grpo.yaml` (default: `recipes/demo`).
        announce: Called with a banner as each stage starts.

    Returns:
        The `results.json` payload: settings, per-stage evaluations, the cold-start choice, the GRPO reward trend,
        timings (per stage, wall seconds; `cpu_minutes`: the process's CPU time), the table and the paths written.

    Raises:
        DemoFolderInUseError: `out_dir` is not empty (see [`fresh_run_folder`]).
    """
    recipe_dir = recipe_dir or default_recipe_dir()
    out_dir = os.path.abspath(out_dir)
    check_run_folder(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    cpu_start = time.process_time()  # user + system seconds of this process, every thread
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread per process: faster than two for models this small
    seed = ["--seed", str(settings.seed), "--data_seed", str(settings.seed)]
    quiet = [] if settings.progress else ["--disable_tqdm", "true"]
    timings, evaluations = {}, {}
    try:
        # The recipes are read first: a bad one fails before any work. The clips have one step per frame the base
        # samples; every evaluation samples as many.
        family = settings.policy
        grpo_recipe = parse_recipe(recipe_dir, "grpo", settings.overrides["grpo"], family)
        num_frames = parse_recipe(recipe_dir, "base", settings.overrides["base"], family)[1].num_frames
        coldstart_args = parse_recipe(recipe_dir, "coldstart", settings.overrides["coldstart"], family)[1]

        start = time.time()
        announce(f"[1/5] data: {settings.n_train} train, {settings.n_val} validation, {settings.n_test} test clips")
        data = make_data(os.path.join(out_dir, "data"), settings, num_frames, grpo_recipe[0].question_template)
        model_dir = build_model(recipe_dir, os.path.join(out_dir, "model"), settings.seed, settings.policy)
        timings["data"] = time.time() - start

        def stage(name, model, train_file, extra=()):
            trainer = run_recipe(
                recipe_dir,
                name,
                ["--model_name_or_path", model, "--train_file", train_file, "--video_root", data.root,
                 "--output_dir", os.path.join(out_dir, name), *seed, *quiet, *extra, *settings.overrides[name]],
                family,
            )  # fmt: skip
            history = trainer.state.log_history
            del trainer  # free its model and optimizer before the next stage
            gc.collect()
            return history

        def test(name, model):
            evaluations[name] = {
                a: evaluate(model, data.benchmarks["test"], data.tasks, a, os.path.join(out_dir, "eval", f"{name}-{a}"),
                            num_frames, settings)
                for a in ANSWER_TYPES
            }  # fmt: skip
            reason = evaluations[name]["reason"]
            announce(
                f"    {name}: option {evaluations[name]['option']['accuracy']:.1f}%, "
                f"reason {reason['accuracy']:.1f}% (format {reason['format']:.0f}%)"
            )

        start = time.time()
        announce(
            f"[2/5] base: `r1video sft` with {recipe_path(recipe_dir, 'base', family)} (option answers + captions)"
        )
        stage("base", model_dir, data.base_file)
        test("base", os.path.join(out_dir, "base"))
        timings["base"] = time.time() - start

        start = time.time()
        announce(
            f"[3/5] cold start: `r1video sft` with {recipe_path(recipe_dir, 'coldstart', family)} "
            "(16 reasoning samples + replay)"
        )
        coldstart_file = write_coldstart_file(
            data,
            coldstart_args.max_steps,
            coldstart_args.per_device_train_batch_size,
            settings.coldstart_replay,
            settings.seed,
        )
        stage("coldstart", os.path.join(out_dir, "base"), coldstart_file)
        chosen = choose_coldstart(out_dir, data, num_frames, settings, announce)
        test("coldstart", chosen["checkpoint"])
        timings["coldstart"] = time.time() - start

        start = time.time()
        announce(
            f"[4/5] GRPO: `r1video grpo` with {recipe_path(recipe_dir, 'grpo', family)} from the chosen cold start"
        )
        grpo_log = stage("grpo", chosen["checkpoint"], data.grpo_train, ["--eval_file", data.grpo_validation])
        test("grpo", os.path.join(out_dir, "grpo"))
        timings["grpo"] = time.time() - start

        announce("[5/5] report")
        curves = plot_run(out_dir, os.path.join(out_dir, "curves.png"), held_out=evaluations)
        examples = before_after_examples(out_dir, data)
    finally:
        torch.set_num_threads(threads)
    table = format_table(evaluations, settings.tasks)
    results = {
        "settings": settings.to_dict(),
        "recipes": recipe_dir,
        "evaluations": evaluations,
        "gain_reason_vs_coldstart": evaluations["grpo"]["reason"]["accuracy"]
        - evaluations["coldstart"]["reason"]["accuracy"],
        "coldstart_choice": chosen,
        "grpo_reward": reward_trend(grpo_log),
        "examples": examples,
        "grpo_sampled_accuracy": reward_trend(grpo_log, "rewards/accuracy_reward/mean"),
        "timings_s": timings,
        # one torch thread and no worker processes: the run's CPU time is about its wall time alone on an idle machine
        "cpu_minutes": (time.process_time() - cpu_start) / 60,
        "table": table,
        "paths": {
            "final_checkpoint": os.path.join(out_dir, "grpo"),
            "curves": curves,
            "results": os.path.join(out_dir, "results.json"),
        },
    }
    with open(results["paths"]["results"], "w") as f:
        json.dump(results, f, indent=2)
    return results


def choose_coldstart(out_dir: str, data, num_frames: int, settings: DemoSettings, announce) -> dict:
    """Evaluate every cold-start checkpoint on the validation questions (reason mode) and keep the best (ties: the
    earliest). The validation accuracies are added to the cold start's `trainer_state.json` log history (as
    `val_accuracy`, `val_format`), so that `r1video plot` draws them.

    Returns:
        `{"step", "checkpoint", "val_accuracy", "history"}`.
    """
    coldstart_dir = os.path.join(out_dir, "coldstart")
    history, best = [], None
    for step, folder in checkpoints(coldstart_dir):
        result = evaluate(
            folder,
            data.benchmarks["validation"],
            data.tasks,
            "reason",
            os.path.join(out_dir, "eval", "validation", f"coldstart-{step}"),
            num_frames,
            settings,
        )
        history.append({"step": step, "val_accuracy": result["accuracy"], "val_format": result["format"]})
        announce(f"    step {step}: validation accuracy {result['accuracy']:.1f}%, format {result['format']:.0f}%")
        if best is None or result["accuracy"] > best["val_accuracy"]:
            best = {"step": step, "checkpoint": folder, "val_accuracy": result["accuracy"]}
    if best is None:
        raise RuntimeError(
            f"the cold start saved no checkpoint in {coldstart_dir}; its recipe needs save_strategy steps"
        )
    state_path = os.path.join(coldstart_dir, "trainer_state.json")
    with open(state_path) as f:
        state = json.load(f)
    state["log_history"] += history
    with open(state_path, "w") as f:
        json.dump(state, f, indent=2)
    announce(f"    cold start: step {best['step']} chosen (validation accuracy {best['val_accuracy']:.1f}%)")
    return {**best, "history": history}

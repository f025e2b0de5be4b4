"""The demo's stages in order: data → base → cold start → GRPO, each evaluated on the held-out test split."""

import json
import logging
import os
import time
from collections.abc import Callable

from r1video.demo.base import train_base
from r1video.demo.coldstart import train_coldstart
from r1video.demo.data import make_data
from r1video.demo.evaluate import ANSWER_TYPES, Evaluator
from r1video.demo.grpo import train_grpo
from r1video.demo.plot import plot_run
from r1video.demo.report import format_table
from r1video.demo.settings import DemoSettings
from r1video.demo.training import set_torch_threads

logger = logging.getLogger(__name__)


def reward_trend(log_history: list[dict], key: str = "reward") -> dict:
    """Mean of `key` over the first and the last quarter of the logged GRPO steps."""
    values = [entry[key] for entry in log_history if key in entry]
    if not values:
        return {"first": None, "last": None, "rise": None}
    quarter = max(1, len(values) // 4)
    first, last = sum(values[:quarter]) / quarter, sum(values[-quarter:]) / quarter
    return {"first": first, "last": last, "rise": last - first}


def run_demo(out_dir: str, settings: DemoSettings, announce: Callable[[str], None] = logger.info) -> dict:
    """Run the whole pipeline into `out_dir`.

    Writes `data/`, `base/`, `coldstart/`, `grpo/` (the final checkpoint), `results.json` and `curves.png`.

    Args:
        out_dir: The run folder.
        settings: The demo's settings.
        announce: Called with a banner as each stage starts.

    Returns:
        The `results.json` payload: settings, per-stage evaluations, the cold-start choice, the GRPO reward trend,
        timings, the table and the paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    threads = set_torch_threads(1)  # one thread per process: faster than two for models this small
    timings, evaluations = {}, {}
    try:
        start = time.time()
        announce(f"[1/5] data: {settings.n_train} train, {settings.n_val} validation, {settings.n_test} test clips")
        data = make_data(os.path.join(out_dir, "data"), settings)
        timings["data"] = time.time() - start

        def evaluate(stage, model):
            evaluations[stage] = {a: test.evaluate(model, a).to_dict() for a in ANSWER_TYPES}
            reason = evaluations[stage]["reason"]
            announce(
                f"    {stage}: option {evaluations[stage]['option']['accuracy']:.1f}%, "
                f"reason {reason['accuracy']:.1f}% (format {reason['format']:.0f}%)"
            )

        start = time.time()
        announce(f"[2/5] base: option answers + captions, {settings.base_steps} steps")
        model, processor, _ = train_base(data, settings, os.path.join(out_dir, "base"))
        test = Evaluator(data.test, processor, settings.num_frames, settings.eval_max_tokens, settings.eval_batch_size)
        validation = Evaluator(
            data.validation, processor, settings.num_frames, settings.eval_max_tokens, settings.eval_batch_size
        )
        evaluate("base", model)
        timings["base"] = time.time() - start

        start = time.time()
        announce(f"[3/5] cold start: 16 reasoning samples + replay, best of {settings.coldstart_steps} steps")
        model, _, chosen = train_coldstart(
            model, processor, data, settings, os.path.join(out_dir, "coldstart"), validation
        )
        evaluate("coldstart", model)
        timings["coldstart"] = time.time() - start

        start = time.time()
        announce(
            f"[4/5] GRPO: {settings.grpo_steps} steps × {settings.grpo_prompts} prompts × "
            f"{settings.grpo_generations} completions, tinyllava_r1 reward"
        )
        model, grpo_log = train_grpo(model, processor, data, settings, os.path.join(out_dir, "grpo"), validation)
        evaluate("grpo", model)
        timings["grpo"] = time.time() - start

        announce("[5/5] report")
        curves = plot_run(out_dir, os.path.join(out_dir, "curves.png"))
    finally:
        set_torch_threads(threads)
    table = format_table(evaluations, settings.tasks)
    results = {
        "settings": settings.to_dict(),
        "evaluations": evaluations,
        "gain_reason_vs_coldstart": evaluations["grpo"]["reason"]["accuracy"]
        - evaluations["coldstart"]["reason"]["accuracy"],
        "coldstart_choice": chosen,
        "grpo_reward": reward_trend(grpo_log),
        "grpo_sampled_accuracy": reward_trend(grpo_log, "rewards/accuracy_reward/mean"),
        "timings_s": timings,
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

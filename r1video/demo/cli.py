"""`r1video demo [--out DIR] [--seed S] [--fast] [--policy NAME]`: the TinyLLaVA-Video-R1 pipeline at toy scale, on CPU.

Synthetic videos → a tiny base model answering with the option letter → cold start on 16 reasoning samples →
GRPO with the `tinyllava_r1` reward → held-out accuracy of every stage, printed as a table like the paper's. Each
stage is a recipe of `recipes/demo/` run by `r1video sft` / `r1video grpo`'s entry point; each evaluation is
`r1video eval`'s runner.
"""

import logging
import os
import sys
import time

from r1video.usage import ArgumentParser


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="r1video demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        help="run folder, new or empty (default: ./r1video_demo, or ./r1video_demo-2, -3, ... when that holds a run)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds data, model and training (default 0)")
    parser.add_argument("--fast", action="store_true", help="the same pipeline at a tiny size (under 2 minutes)")
    parser.add_argument("--grpo-steps", type=int, help="override the number of GRPO steps (the recipe's max_steps)")
    parser.add_argument(
        "--recipes",
        help="folder of the demo's model.yaml, base.yaml, coldstart.yaml, grpo.yaml (default: recipes/demo)",
    )
    parser.add_argument(
        "--tasks",
        help="comma-separated synthetic tasks (default colour,count,order; direction, at chance for this base, "
        "can be added)",
    )
    parser.add_argument(
        "--temporal-contrast",
        action="store_true",
        help="GRPO with temporal contrast (T-GRPO, recipe key temporal_contrast)",
    )
    parser.add_argument(
        "--policy",
        metavar="NAME",
        help="the model family of the tiny random model (a registered family's name, e.g. qwen2_5_vl; its arguments "
        "from RECIPES/model_NAME.yaml when there; default: TinyLLaVA-Video from model.yaml)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="only the stage banners, each stage's closing summary and the report"
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    logging.getLogger("r1video.demo").setLevel(logging.INFO)
    from r1video.demo.pipeline import DemoFolderInUseError, check_run_folder, fresh_run_folder, run_demo

    if args.out is None:
        args.out = fresh_run_folder("r1video_demo")  # a second demo gets its own folder, never the first one's
    try:
        check_run_folder(args.out)
    except DemoFolderInUseError as error:
        print(f"r1video demo: error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    from r1video.demo.settings import STAGES, DemoSettings
    from r1video.trainer.console import is_terminal, plain_output

    plain_output(args.quiet)  # no progress bars when piped or quiet
    overrides = {"seed": args.seed, "progress": not args.quiet and is_terminal()}
    if args.tasks:
        from r1video.data.synth import check_tasks

        try:
            overrides["tasks"] = check_tasks([task.strip() for task in args.tasks.split(",") if task.strip()])
        except ValueError as error:
            parser.error(f"--tasks: {error}")
    if args.policy:
        from r1video.policies import family_names

        known = list(family_names())
        if args.policy not in known:
            parser.error(f"--policy: no registered model family {args.policy!r} (choose from {', '.join(known)})")
        overrides["policy"] = args.policy
    settings = DemoSettings.fast(**overrides) if args.fast else DemoSettings(**overrides)
    from r1video.demo.stages import default_recipe_dir, recipe_path

    args.recipes = args.recipes or default_recipe_dir()
    try:
        for name in ("model", "base", "coldstart", "grpo"):
            recipe_path(args.recipes, name)
    except FileNotFoundError as error:
        parser.error(str(error))
    if args.quiet:  # no step lines or samples: the stages' summaries only
        for stage in STAGES:
            settings.overrides[stage] += ["--log_level", "error"]
    if args.grpo_steps is not None:
        settings.overrides["grpo"] += ["--max_steps", str(args.grpo_steps)]
    if args.temporal_contrast:
        settings.overrides["grpo"] += ["--temporal_contrast", "true"]
    start = time.time()
    family = f", policy {args.policy}" if args.policy else ""
    print(
        f"r1video demo: seed {settings.seed}{', fast' if args.fast else ''}{family}, run folder {args.out}", flush=True
    )  # noqa: T201
    results = run_demo(args.out, settings, args.recipes, announce=lambda text: print(text, flush=True))  # noqa: T201
    minutes = (time.time() - start) / 60
    print()  # noqa: T201
    print(results["table"])  # noqa: T201
    print(f"\nBefore → after GRPO, two held-out questions (reason mode):\n{results['examples']}")  # noqa: T201
    reward = results["grpo_reward"]
    print(  # noqa: T201
        f"\nGRPO vs cold start (reason mode): {results['gain_reason_vs_coldstart']:+.1f} points; training reward "
        f"{reward['first']:.2f} → {reward['last']:.2f} (first → last quarter of the logged steps)"
    )
    paths = results["paths"]
    print(f"results {paths['results']}\ncurves  {paths['curves']}\nmodel   {paths['final_checkpoint']}")  # noqa: T201
    print(  # noqa: T201
        f"done in {minutes:.1f} min ({results['cpu_minutes']:.1f} CPU-minutes: one thread, about the time alone on an "
        "idle machine)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`r1video eval`: score a model on MVBench, Video-MME, MLVU, MMVU or LongVideoBench from a local copy.

Examples:

    r1video eval --benchmark mvbench --data-dir data/MVBench --model runs/grpo/checkpoint-100
    r1video eval --benchmark videomme --data-dir data/Video-MME --model Zhang199/TinyLLaVA-Video-R1 --tasks long
    r1video eval --benchmark mlvu --data-dir data/MLVU --model M --sample --protocol original   # the R1 protocol

Predictions are written one at a time to OUTPUT_DIR/predictions.jsonl; rerunning the same command resumes.
A missing model or benchmark folder, or a flag that does not fit, is one line and exit code 2, before torch loads.
"""

import argparse
import errno
import logging
import os
import sys

from r1video.eval.benchmarks import BENCHMARKS
from r1video.eval.samples import BenchmarkDataError
from r1video.usage import USAGE_ERROR, ArgumentParser, UsageError, check_model_path, recorded_frames


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="r1video eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--benchmark", required=True, choices=list(BENCHMARKS))
    parser.add_argument("--data-dir", required=True, help="the benchmark copy, in its published layout")
    parser.add_argument("--model", required=True, help="checkpoint directory or Hub id")
    parser.add_argument("--output-dir", help="default: eval_results/BENCHMARK/MODEL_NAME-PROMPT")
    parser.add_argument("--video-dir", help="video root, if not where the published layout puts it")
    parser.add_argument("--tasks", help="comma-separated groups: MVBench/MLVU tasks, Video-MME durations")
    parser.add_argument("--duration", help="Video-MME: short, medium and/or long (same as --tasks)")
    parser.add_argument("--limit", type=int, help="at most this many questions per group (quick checks)")

    prompt = parser.add_argument_group("prompt and frames")
    prompt.add_argument(
        "--prompt",
        choices=["reason", "option"],
        default="reason",
        help="reason: <think>/<answer> (R1); option: the letter only (TinyLLaVA-Video)",
    )
    prompt.add_argument(
        "--frames",
        type=int,
        help="uniform frames per video (default: the frame settings the model's run recorded, else 16)",
    )
    prompt.add_argument("--fps", type=float, help="sample frames per second instead of --frames")
    prompt.add_argument(
        "--max-frames", type=int, help="frame cap with --fps (default: 128, as the original's larger cap; 0: none)"
    )
    prompt.add_argument(
        "--respect-bounds",
        action="store_true",
        help="MVBench: sample bounded video tasks inside their start/end (the original ignores them)",
    )

    gen = parser.add_argument_group("generation")
    gen.add_argument("--batch-size", type=int, default=1, help="questions per generate call (default: %(default)s)")
    gen.add_argument("--max-new-tokens", type=int, default=1024, help="default: %(default)s, as the original")
    gen.add_argument(
        "--sample",
        action="store_true",
        help="sample instead of greedy decoding (the R1 protocol: the model's default temperature)",
    )
    gen.add_argument("--temperature", type=float, help="sampling temperature (with --sample)")
    gen.add_argument("--top-p", type=float, help="nucleus sampling (with --sample)")
    gen.add_argument("--seed", type=int, default=0, help="seeds sampling and the random guesses")
    gen.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "auto"])
    gen.add_argument("--device", help="default: cuda if available, else cpu")

    score = parser.add_argument_group("scoring")
    score.add_argument(
        "--protocol",
        choices=["robust", "original"],
        default="robust",
        help="how answers are read: robust (default; r1video's reader, as in training) or original "
        "(the original's parser, quirks and random guess included: TinyLLaVA-Video-R1's with --prompt reason, "
        "TinyLLaVA-Video's with --prompt option)",
    )
    score.add_argument(
        "--no-answer",
        choices=["wrong", "random"],
        help="headline score when no option is found: wrong or a seeded random guess, as the original "
        "(default: random with --protocol original, else wrong); the table always shows both",
    )
    parser.add_argument("--overwrite", action="store_true", help="discard earlier predictions instead of resuming")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar (hidden when piped)")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """The checks that need no torch: the model and benchmark folders exist, the sampling flags fit; fills in the
    frame settings (`--frames`, `--fps`, `--max-frames`) from the model's run when none is given.

    Raises:
        UsageError: naming the flag.
    """
    if args.sample is False and (args.temperature is not None or args.top_p is not None):
        raise UsageError("--temperature/--top-p need --sample")
    check_model_path(args.model, key="--model")
    if not os.path.isdir(args.data_dir):
        raise UsageError(f"--data-dir: folder not found: {args.data_dir}")
    if args.video_dir is not None and not os.path.isdir(args.video_dir):
        raise UsageError(f"--video-dir: folder not found: {args.video_dir}")
    resolve_frames(args, "r1video eval")


def resolve_frames(args: argparse.Namespace, prog: str) -> None:
    """`args.frames` / `args.fps` / `args.max_frames` from the run that trained `args.model` (its recorded recipe)
    when none of them is given, else 16 uniform frames; says which on stderr."""
    if args.frames is not None or args.fps is not None:
        return
    recorded = recorded_frames(args.model) if os.path.isdir(args.model) else None
    if recorded is None:
        args.frames = 16
        return
    args.frames, args.fps = recorded["num_frames"], recorded["fps"]
    args.max_frames = args.max_frames if args.max_frames is not None else recorded["max_frames"]
    rule = f"{args.frames} frames" if args.fps is None else f"{args.fps} fps (at most {args.max_frames} frames)"
    print(f"{prog}: {rule} per clip, as the model's training run sampled (--frames/--fps override)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_args(args)
    except UsageError as error:
        print(f"r1video eval: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    tasks = args.tasks or args.duration

    from r1video.eval.runner import EvalConfig, run_evaluation
    from r1video.trainer.console import plain_output

    plain_output()  # no progress bars when piped

    try:
        config = EvalConfig(
            benchmark=args.benchmark,
            data_dir=args.data_dir,
            model=args.model,
            output_dir=args.output_dir,
            video_dir=args.video_dir,
            tasks=[t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
            limit=args.limit,
            prompt=args.prompt,
            num_frames=args.frames,
            fps=args.fps,
            max_frames=args.max_frames,
            respect_bounds=args.respect_bounds,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            do_sample=args.sample,
            temperature=args.temperature,
            top_p=args.top_p,
            protocol=args.protocol,
            no_answer=args.no_answer,
            seed=args.seed,
            dtype=args.dtype,
            device=args.device,
            overwrite=args.overwrite,
        )
    except ValueError as exc:
        print(f"r1video eval: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    from r1video.runs import RunLockedError, run_lock

    try:
        # One run per output folder (as for training): two would both answer every question into one predictions file.
        with run_lock(config.resolved_output_dir()):
            result = run_evaluation(config, progress=not args.no_progress and sys.stderr.isatty())
    except RunLockedError as exc:
        print(f"r1video eval: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        where = exc.filename or config.resolved_output_dir()
        print(
            f"r1video eval: error: no space left on the device while writing {where}; the predictions written so far "
            "are kept: free some space and run the same command to resume",
            file=sys.stderr,
        )
        return 1
    except BenchmarkDataError as exc:
        print(f"r1video eval: error: the {args.benchmark} copy is not usable: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except ValueError as exc:
        print(f"r1video eval: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(result.markdown)
    if result.num_resumed:
        print(f"({result.num_resumed} answers resumed from earlier predictions, {result.num_generated} new)")
    print(f"Saved {result.output_dir}/results.md, results.json and predictions.jsonl")
    return 0

"""`r1video eval`: score a model on MVBench, Video-MME, MLVU or MMVU from a local copy of the benchmark.

Examples:

    r1video eval --benchmark mvbench --data-dir data/MVBench --model runs/grpo/checkpoint-100
    r1video eval --benchmark videomme --data-dir data/Video-MME --model Zhang199/TinyLLaVA-Video-R1 --tasks long
    r1video eval --benchmark mlvu --data-dir data/MLVU --model M --sample --protocol original   # the R1 protocol

Predictions are written one at a time to OUTPUT_DIR/predictions.jsonl; rerunning the same command resumes.
"""

import argparse
import errno
import logging
import sys

from r1video.eval.benchmarks import BENCHMARKS
from r1video.eval.samples import BenchmarkDataError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    prompt.add_argument("--frames", type=int, default=16, help="uniform frames per video (default: %(default)s)")
    prompt.add_argument("--fps", type=float, help="sample frames per second instead of --frames")
    prompt.add_argument("--max-frames", type=int, help="frame cap with --fps (the original used 64 or 128)")
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
        "(TinyLLaVA-Video-R1's parser, quirks and random guess included; reason prompt only)",
    )
    score.add_argument(
        "--no-answer",
        choices=["wrong", "random"],
        help="headline score when no option is found: wrong or a seeded random guess, as the original "
        "(default: random with --protocol original, else wrong); the table always shows both",
    )
    parser.add_argument("--overwrite", action="store_true", help="discard earlier predictions instead of resuming")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    tasks = args.tasks or args.duration
    if args.sample is False and (args.temperature is not None or args.top_p is not None):
        print("r1video eval: --temperature/--top-p need --sample", file=sys.stderr)
        return 2

    from r1video.eval.runner import EvalConfig, run_evaluation

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
        print(f"r1video eval: {exc}", file=sys.stderr)
        return 2
    from r1video.runs import RunLockedError, run_lock

    try:
        # One run per output folder (as for training): two would both answer every question into one predictions file.
        with run_lock(config.resolved_output_dir()):
            result = run_evaluation(config, progress=not args.no_progress)
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
        print(f"r1video eval: the {args.benchmark} copy is not usable: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"r1video eval: {exc}", file=sys.stderr)
        return 2
    print(result.markdown)
    if result.num_resumed:
        print(f"({result.num_resumed} answers resumed from earlier predictions, {result.num_generated} new)")
    print(f"Saved {result.output_dir}/results.md, results.json and predictions.jsonl")
    return 0

"""`r1video data validate|synth`: check annotation files, write the synthetic data set."""

import argparse
import json
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="r1video data", description="Video QA data: validation and synthesis.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    validate = sub.add_parser("validate", help="check every record of a GRPO jsonl / SFT json file and its videos")
    validate.add_argument("file", help="annotation file (GRPO jsonl or LLaVA-style SFT json)")
    validate.add_argument("--video-root", required=True, help="directory the video paths are relative to")
    validate.add_argument("--frames", type=int, default=4, help="frames decoded per video (default: 4)")
    validate.add_argument("--no-decode", action="store_true", help="check that videos exist, without decoding")
    validate.add_argument(
        "--quick",
        action="store_true",
        help="decode only the --frames sampled frames of each video, not every frame (damage elsewhere is missed)",
    )
    validate.add_argument(
        "--model", help="checkpoint (directory or Hub id) whose tokenizer limits prompt lengths (default: not checked)"
    )
    frames = validate.add_argument_group(
        "frames per clip as training samples them (the recipe's num_frames / fps / max_frames / autorotate), for the "
        "video tokens of each prompt with --model"
    )
    frames.add_argument("--num-frames", type=int, help="uniform frames per clip (default: 16, as the trainers)")
    frames.add_argument("--fps", type=float, help="sample frames per second instead of --num-frames")
    frames.add_argument("--max-frames", type=int, help="frame cap with --fps (default: 128; 0: none)")
    frames.add_argument(
        "--autorotate", choices=("true", "false"), default="true", help="turn frames by the display rotation"
    )
    validate.add_argument(
        "--question-template",
        default="r1",
        help="GRPO prompt text as training builds it: a template name (r1, r1_eval, option, open_ended, none), a .txt "
        "file or a template with {Question}, as the recipe's question_template (default: r1)",
    )
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.add_argument("--max-issues", type=int, default=50, help="problems listed on the console (default: 50)")

    synth = sub.add_parser("synth", help="write the synthetic video QA data set (mp4 clips + annotation files)")
    synth.add_argument("--out", required=True, help="output directory")
    synth.add_argument("--n", type=int, default=400, help="training questions (default: 400)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--n-test", type=int, default=100, help="held-out questions (default: 100)")
    synth.add_argument("--n-coldstart", type=int, default=16, help="reasoning-format samples (default: 16)")
    synth.add_argument("--size", type=int, default=64, help="frame width and height in pixels (default: 64)")
    synth.add_argument("--beats", type=int, default=16, help="distinct steps per clip (default: 16)")
    synth.add_argument("--frames-per-beat", type=int, default=3)
    synth.add_argument("--fps", type=int, default=16)
    synth.add_argument("--tasks", default=None, help="comma-separated subset of direction,colour,count,order")
    synth.add_argument("--shuffle-options", action="store_true", help="shuffle option order per question")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "validate":
        return _validate(args)
    return _synth(args)


def _validate(args) -> int:
    # A missing file or folder is a usage error, named in one line, before any record is read.
    if not os.path.isfile(args.file):
        return _usage_error(f"annotation file not found: {args.file}")
    if not os.path.isdir(args.video_root):
        return _usage_error(f"--video-root: folder not found: {args.video_root}")
    from r1video.data.lengths import FrameSampling
    from r1video.data.validate import format_report, validate_file
    from r1video.data.video import check_frame_rule
    from r1video.model.templates import resolve_question_template

    try:
        template = resolve_question_template(args.question_template, "--question-template")
    except ValueError as exc:
        build_parser().error(str(exc))
    num_frames = args.num_frames if args.num_frames is not None or args.fps is not None else 16
    try:
        check_frame_rule(num_frames, args.fps, args.max_frames)
    except ValueError as exc:
        return _usage_error(f"--num-frames/--fps/--max-frames: {exc}")
    sampling = FrameSampling(num_frames, args.fps, args.max_frames, args.autorotate == "true")
    policy = processor = None
    if args.model:
        from r1video.policies import load_processor

        policy, processor = load_processor(args.model)
    report = validate_file(
        args.file,
        args.video_root,
        num_frames=args.frames,
        check_videos=not args.no_decode,
        full_decode=not args.quick,
        processor=processor,
        question_template=template,
        sampling=sampling,
        policy=policy,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(format_report(report, max_issues=args.max_issues))
    return 0 if report.ok else 1


def _usage_error(message: str) -> int:
    print(f"r1video data validate: error: {message}", file=sys.stderr)
    return 2


def _synth(args) -> int:
    from r1video.data.synth import generate_synthetic_dataset

    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
    data = generate_synthetic_dataset(
        args.out,
        n=args.n,
        seed=args.seed,
        n_test=args.n_test,
        n_coldstart=args.n_coldstart,
        size=args.size,
        beats=args.beats,
        frames_per_beat=args.frames_per_beat,
        fps=args.fps,
        tasks=tasks,
        shuffle_options=args.shuffle_options,
    )
    counts = ", ".join(f"{split} {count}" for split, count in data.counts.items())
    print(f"wrote {data.root}: {counts}")
    for path in (data.grpo_train, data.sft_train, data.sft_caption, data.sft_openqa, data.coldstart, data.test):
        print(f"  {path}")
    return 0

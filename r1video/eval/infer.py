"""`r1video infer`: answer one question about one video, streaming the answer to the terminal.

Examples:

    r1video infer --model Zhang199/TinyLLaVA-Video-R1 --video clip.mp4 \\
        --question "What does the person do after opening the door?" --options "Sits down" "Leaves" "Waves"
    r1video infer --model runs/sft --video clip.mp4 --question "Which way does the ball move?" \\
        --options left right --prompt option --frames 8

A missing model folder or video is one line and exit code 2, before torch loads. Frames: as the model's training run
sampled them (its recorded recipe), unless --frames or --fps is given; 16 for a model without a run record.
"""

# A command-line module like the `cli.py` files: it prints (ruff's T201 is silenced line by line).

import argparse
import os
import sys

from r1video.usage import USAGE_ERROR, ArgumentParser, UsageError, check_model_path


def build_question(question: str, options: list[str] | None, prompt: str) -> str:
    """The evaluation question layout: `A. x` options after `Options:` (reason) or `(A) x` options (option).

    Without options, the reason prompt keeps its instruction and the option prompt asks for a direct answer.
    """
    from r1video.model.templates import (  # here, so that `r1video infer --help` loads no torch
        QUESTION_TEMPLATES,
        apply_question_template,
        format_options,
        option_question,
        reason_question,
    )

    question = question.strip()
    if options:
        if prompt == "reason":
            return reason_question(question, format_options(options, "dot"))
        return option_question(question, format_options(options, "paren"))
    return apply_question_template(QUESTION_TEMPLATES["r1_eval" if prompt == "reason" else "open_ended"], question)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="r1video infer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="checkpoint directory or Hub id")
    parser.add_argument("--video", required=True, help="video file, or a folder of frame images")
    parser.add_argument("--question", required=True)
    parser.add_argument("--options", nargs="+", help="option texts; letters A, B, C, ... are added")
    parser.add_argument(
        "--prompt",
        choices=["reason", "option"],
        default="reason",
        help="reason: think then answer (R1); option: the letter directly (default: %(default)s)",
    )
    parser.add_argument(
        "--frames", type=int, help="uniform frames (default: the frame settings the model's run recorded, else 16)"
    )
    parser.add_argument("--fps", type=float, help="sample frames per second instead of --frames")
    parser.add_argument("--max-frames", type=int, help="frame cap with --fps (default: 128; 0: none)")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="default: %(default)s")
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, help="sampling temperature (with --sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "auto"])
    parser.add_argument("--device", help="default: cuda if available, else cpu")
    parser.add_argument("--show-prompt", action="store_true", help="print the prompt before the answer")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """The checks that need no torch: the model folder and the video exist; fills in the frame settings from the
    model's run when none is given (see [`r1video.eval.cli.resolve_frames`]).

    Raises:
        UsageError: naming the flag.
    """
    from r1video.eval.cli import resolve_frames

    check_model_path(args.model, key="--model")
    if not (os.path.isfile(args.video) or os.path.isdir(args.video)):  # a folder of frame images is a video too
        raise UsageError(f"--video: file not found: {args.video}")
    if args.temperature is not None and not args.sample:
        raise UsageError("--temperature needs --sample")
    resolve_frames(args, "r1video infer")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_args(args)
    except UsageError as error:
        print(f"r1video infer: error: {error}", file=sys.stderr)
        return USAGE_ERROR

    import torch
    from transformers import TextStreamer

    from r1video.data.video import VideoDecodeError, load_video_frames
    from r1video.eval.runner import generate_batch
    from r1video.eval.scoring import extract_prediction
    from r1video.policies import load_policy
    from r1video.trainer.console import plain_output

    plain_output()  # no progress bars when piped

    dtype = args.dtype if args.dtype == "auto" else getattr(torch, args.dtype)
    policy, model, processor = load_policy(args.model, dtype=dtype)
    # Each frame is preprocessed as soon as it is decoded (as training does): a 4K clip is never held at full size.
    sampling = (
        {"fps": args.fps, "max_frames": args.max_frames} if args.fps is not None else {"num_frames": args.frames}
    )
    try:
        video = load_video_frames(args.video, frame_transform=policy.frame_transform(processor), **sampling)
    except VideoDecodeError as exc:
        print(f"r1video infer: error: cannot read the video: {exc}", file=sys.stderr)
        return USAGE_ERROR
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()

    prompt = policy.question_prompt(processor, build_question(args.question, args.options, args.prompt))
    if args.show_prompt:
        print(prompt, end="\n\n")
    print(f"[{len(video.frames)} frames of {video.num_total_frames}, {video.duration:.1f}s]", file=sys.stderr)
    gen_kwargs = {"max_new_tokens": args.max_new_tokens, "do_sample": args.sample}
    if args.sample:
        torch.manual_seed(args.seed)
        if args.temperature is not None:
            gen_kwargs["temperature"] = args.temperature
    streamer = TextStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
    clip = policy.clip_from_frames(processor, video.frames, fps=video.fps, frame_indices=video.indices)
    (completion,) = generate_batch(model, processor, [prompt], [clip], gen_kwargs, streamer=streamer, policy=policy)
    if args.options:
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: len(args.options)]
        letter, _ = extract_prediction(completion, letters)
        chosen = f"{letter}. {args.options[letters.index(letter)]}" if letter else "none found"
        print(f"\nAnswer: {chosen}")
    return 0

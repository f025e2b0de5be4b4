"""The `r1video` console script.

Each subcommand lives in its own module, which exposes `main(argv) -> int`; this file only routes to it, so
`r1video --help` stays fast and a subcommand's imports are paid only when it runs.
"""

import argparse
import importlib
import sys

# name -> (module exposing `main(argv)`, one-line help)
COMMANDS = {
    "demo": (
        "r1video.demo.cli",
        "the whole TinyLLaVA-Video-R1 pipeline at toy scale on CPU: base, cold start, GRPO, eval",
    ),
    "sft": ("r1video.sft", "cold-start SFT from a YAML recipe (multi-GPU: accelerate launch -m r1video.sft)"),
    "grpo": ("r1video.grpo", "GRPO training from a YAML recipe (multi-GPU: accelerate launch -m r1video.grpo)"),
    "eval": ("r1video.eval.cli", "score a model on MVBench, Video-MME, MLVU or MMVU from a local copy"),
    "infer": ("r1video.eval.infer", "answer one question about one video, streamed to the terminal"),
    "plot": ("r1video.demo.plot", "draw the reward / accuracy / length curves of a run from its logs"),
    "bench": ("r1video.bench.cli", "speed and memory figures, measured side by side (decode, vision-reuse, ...)"),
    "compose": ("r1video.compose_cli", "build a TinyLLaVA-Video checkpoint from a causal LM and a SigLIP tower"),
    "tiny": ("r1video.tiny_cli", "build a random tiny TinyLLaVA-Video model + tokenizer offline and run it"),
    "data": ("r1video.data.cli", "validate datasets (`data validate`) and write synthetic video QA (`data synth`)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r1video",
        description="R1-style GRPO post-training for small video language models.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `r1video COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        return module.main(argv[1:]) or 0
    args = parser.parse_args(argv)
    if args.version:
        from r1video import __version__

        print(__version__)
        return 0
    parser.print_help()
    return 0 if args.command is None and not argv else 2


if __name__ == "__main__":
    sys.exit(main())

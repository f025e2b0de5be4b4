"""`r1video bench [ENTRY ...] [--repeats N] [--json PATH] [--quick]`: speed and memory figures, side by side.

`r1video bench gpu [--tiny] [--out DIR]` is the GPU acceptance run ([`r1video.bench.gpu`]).

Each entry runs both sides in this one process, alternating repeats, and reports the ratio of the medians with the
absolute figures and the machine they came from.
"""

import argparse
import importlib
import json
import logging
import os
import sys

from r1video.bench.runner import format_table, machine_info
from r1video.usage import ArgumentParser, did_you_mean

ENTRIES = {
    "decode": "r1video.bench.decode",
    "vision-reuse": "r1video.bench.vision_reuse",
    "temporal-contrast": "r1video.bench.temporal_contrast",
    "overhead": "r1video.bench.overhead",
    "memory": "r1video.bench.memory",
    "clip-memory": "r1video.bench.clip_memory",
}
# Run only when named: three full demo runs take about half an hour.
ON_REQUEST = {"demo-learning": "r1video.bench.demo_learning"}
# Entries measured for any registered model family with `--policy NAME` or `--policy all` (one table across families);
# without `--policy` they measure TinyLLaVA-Video as the entries above do.
POLICY_ENTRIES = {"vision-reuse": "r1video.bench.vision_reuse_family", "demo-learning": "r1video.bench.demo_learning"}


def gpu_parser() -> argparse.ArgumentParser:
    """`r1video bench gpu`'s options (here, so that its `--help` loads no torch)."""
    parser = ArgumentParser(prog="r1video bench gpu", description="The GPU acceptance run (r1video.bench.gpu).")
    parser.add_argument("--out", default="gpu_acceptance", help="folder for gpu_acceptance.json and .md")
    parser.add_argument("--tiny", action="store_true", help="the tiny test model on CPU: checks the run end to end")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gpu"]:  # the GPU acceptance run has options of its own
        gpu_parser().parse_args(argv[1:])  # --help and usage errors before torch loads
        from r1video.bench.gpu import main as gpu_main

        return gpu_main(argv[1:])
    from r1video.bench.decode import CLIPS_HELP  # needs PyAV, which the GPU machine lacks

    parser = ArgumentParser(prog="r1video bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "entries",
        nargs="*",
        metavar="ENTRY",
        help=f"any of {', '.join([*ENTRIES, *ON_REQUEST])} (default: all but {', '.join(ON_REQUEST)})",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per side (default: 5, or 1 with --quick)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results, settings and machine here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repeat: checks that every entry runs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest for tiny models)")
    parser.add_argument("--clips", metavar="DIR", help=CLIPS_HELP)
    parser.add_argument(
        "--policy",
        metavar="NAME",
        help="measure a registered model family (a family's name, e.g. qwen2_5_vl, or `all`: every family, one table; "
        f"entries: {', '.join(POLICY_ENTRIES)}; default TinyLLaVA-Video)",
    )
    args = parser.parse_args(argv)
    modules = {**ENTRIES, **ON_REQUEST}
    unknown = [name for name in args.entries if name not in modules]
    if unknown:
        hint = did_you_mean(unknown[0], modules)
        parser.error(f"unknown entry {unknown[0]!r}{hint} (choose from {', '.join(modules)})")
    if args.clips is not None and not os.path.isdir(args.clips):
        parser.error(f"--clips: folder not found: {args.clips}")
    if args.policy:
        entries = args.entries or [name for name in POLICY_ENTRIES if name not in ON_REQUEST]
        missing = [name for name in entries if name not in POLICY_ENTRIES]
        if missing:
            parser.error(
                f"entries {missing} are not measured per family (--policy takes: {', '.join(POLICY_ENTRIES)})"
            )
        args.entries = entries
    logging.basicConfig(level=logging.WARNING)
    import torch  # after the arguments: `r1video bench --help` loads no torch

    runs = [(name, {}) for name in args.entries or list(ENTRIES)]
    summarise = None  # the one table across families, with --policy
    if args.policy:
        from r1video.bench.vision_reuse_family import families_table as summarise
        from r1video.policies import family_names

        known = list(family_names())
        if args.policy != "all" and args.policy not in known:
            hint = did_you_mean(args.policy, known)
            parser.error(f"--policy: no registered family {args.policy!r}{hint} (choose from all, {', '.join(known)})")
        names = known if args.policy == "all" else [args.policy]
        modules = {name: POLICY_ENTRIES[name] for name in args.entries}
        runs = [(name, {"policy": family}) for name in args.entries for family in names]
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        machine = machine_info()
        results = []
        for name, options in runs:
            print(f"running {name} {options.get('policy', '')}...", flush=True)  # noqa: T201
            if name == "decode" and args.clips:
                options = {"clips": args.clips}
            results.append(
                importlib.import_module(modules[name]).run(quick=args.quick, repeats=args.repeats, **options)
            )
    finally:
        torch.set_num_threads(threads)
    per_family = [result for result in results if result.name.startswith("vision-reuse (")]
    table = summarise(per_family) if summarise and per_family else None
    print(format_table(results, machine))  # noqa: T201
    if table:
        print(f"\n{table}")  # noqa: T201
    if args.json:
        report = {
            "machine": machine,
            "command": {
                "entries": args.entries,
                "repeats": args.repeats,
                "quick": args.quick,
                "threads": args.threads,
                "clips": args.clips,
            },
            "results": [result.to_dict() for result in results],
        }
        if table:
            report["command"]["policy"] = args.policy
            report["families_table"] = table
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

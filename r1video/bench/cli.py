"""`r1video bench [ENTRY ...] [--repeats N] [--json PATH] [--quick]`: speed and memory figures, side by side.

`r1video bench gpu [--tiny] [--out DIR]` is the GPU acceptance run ([`r1video.bench.gpu`]).

Each entry runs both sides in this one process, alternating repeats, and reports the ratio of the medians with the
absolute figures and the machine they came from.
"""

import argparse
import importlib
import json
import logging
import sys

import torch

from r1video.bench.runner import format_table, machine_info

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
# Entries measured for another model family with `--policy NAME` (default: TinyLLaVA-Video, the entries above).
POLICY_ENTRIES = {("vision-reuse", "qwen2_5_vl"): "r1video.bench.vision_reuse_qwen"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gpu"]:  # the GPU acceptance run has options of its own
        from r1video.bench.gpu import main as gpu_main

        return gpu_main(argv[1:])
    from r1video.bench.decode import CLIPS_HELP  # needs PyAV, which the GPU machine lacks

    parser = argparse.ArgumentParser(prog="r1video bench", description=__doc__.splitlines()[0])
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
    policies = sorted({policy for _, policy in POLICY_ENTRIES})
    parser.add_argument(
        "--policy",
        choices=policies,
        help="measure another model family (entries: "
        f"{', '.join(sorted({entry for entry, _ in POLICY_ENTRIES}))}; default TinyLLaVA-Video)",
    )
    args = parser.parse_args(argv)
    modules = {**ENTRIES, **ON_REQUEST}
    unknown = [name for name in args.entries if name not in modules]
    if unknown:
        parser.error(f"unknown entries {unknown}; choose from {', '.join(modules)}")
    if args.policy:
        entries = args.entries or [entry for entry, policy in POLICY_ENTRIES if policy == args.policy]
        missing = [name for name in entries if (name, args.policy) not in POLICY_ENTRIES]
        if missing:
            parser.error(f"entries {missing} are not measured for --policy {args.policy}")
        modules = {name: POLICY_ENTRIES[(name, args.policy)] for name in entries}
        args.entries = entries
    logging.basicConfig(level=logging.WARNING)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        machine = machine_info()
        results = []
        for name in args.entries or list(ENTRIES):
            print(f"running {name} ...", flush=True)  # noqa: T201
            options = {"clips": args.clips} if name == "decode" and args.clips else {}
            results.append(
                importlib.import_module(modules[name]).run(quick=args.quick, repeats=args.repeats, **options)
            )
    finally:
        torch.set_num_threads(threads)
    print(format_table(results, machine))  # noqa: T201
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
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

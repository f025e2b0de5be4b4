"""`r1video bench [ENTRY ...] [--repeats N] [--json PATH] [--quick]`: speed and memory figures, side by side.

Each entry runs both sides in this one process, alternating repeats, and reports the ratio of the medians with the
absolute figures and the machine they came from.
"""

import argparse
import importlib
import json
import logging

import torch

from r1video.bench.runner import format_table, machine_info

ENTRIES = {
    "decode": "r1video.bench.decode",
    "vision-reuse": "r1video.bench.vision_reuse",
    "overhead": "r1video.bench.overhead",
    "memory": "r1video.bench.memory",
}
NOT_YET = {"demo-learning": "needs `r1video demo`, which does not exist yet"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="r1video bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "entries", nargs="*", metavar="ENTRY", help=f"any of {', '.join([*ENTRIES, *NOT_YET])} (default: all)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per side (default: 5, or 1 with --quick)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results, settings and machine here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repeat: checks that every entry runs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest for tiny models)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.entries if name not in ENTRIES and name not in NOT_YET]
    if unknown:
        parser.error(f"unknown entries {unknown}; choose from {', '.join([*ENTRIES, *NOT_YET])}")
    logging.basicConfig(level=logging.WARNING)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        machine = machine_info()
        results, skipped = [], {}
        for name in args.entries or [*ENTRIES, *NOT_YET]:
            if name in NOT_YET:
                skipped[name] = NOT_YET[name]
                continue
            print(f"running {name} ...", flush=True)  # noqa: T201
            results.append(importlib.import_module(ENTRIES[name]).run(quick=args.quick, repeats=args.repeats))
    finally:
        torch.set_num_threads(threads)
    print(format_table(results, machine))  # noqa: T201
    for name, reason in skipped.items():
        print(f"\n== {name}   not yet available: {reason}")  # noqa: T201
    if args.json:
        report = {
            "machine": machine,
            "command": {
                "entries": args.entries,
                "repeats": args.repeats,
                "quick": args.quick,
                "threads": args.threads,
            },
            "results": [result.to_dict() for result in results],
            "not_available": skipped,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

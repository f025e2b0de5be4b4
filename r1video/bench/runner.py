"""What every bench entry shares: interleaved timing, medians, machine information, the result record, the table."""

import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass
class EntryResult:
    """The outcome of one bench entry.

    Attributes:
        name: The entry (`decode`, `vision-reuse`, ...).
        target: The target in words, e.g. `"≥5× faster"`.
        met: Whether the target was met (`None` when the entry has no pass/fail target).
        rows: Table rows: `(what, value)` pairs, already formatted for a reader.
        metrics: Machine-readable figures (seconds, bytes, ratios, counts).
        settings: What was run: sizes, repeats, seeds.
        notes: How the figures were measured, and why a target was missed.
    """

    name: str
    target: str
    met: bool | None
    rows: list[tuple[str, str]]
    metrics: dict
    settings: dict
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def interleaved(sides: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each side `repeats` times, alternating the order (A B, B A, A B, ...) so drifts in machine load hit both.

    Args:
        sides: Name → a callable that runs the side once and returns the seconds it took.
        repeats: Timed runs per side.
        warmup: Untimed runs per side first (lazy initialisation, caches).

    Returns:
        Name → the `repeats` timings in seconds.
    """
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            sides[name]()
    timings = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            timings[name].append(sides[name]())
    return timings


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """`median (min–max)` in seconds, for the table."""
    return f"{median(values):.3f} s ({min(values):.3f}–{max(values):.3f}, n={len(values)})"


def machine_info() -> dict:
    """CPU model, cores, load and library versions: the absolute figures mean nothing without them."""
    import av
    import torch
    import transformers
    import trl

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "av": av.__version__,
        "platform": platform.platform(),
    }


def format_table(results: list[EntryResult], machine: dict) -> str:
    """A plain-text table: one block per entry, its target and whether it was met, then its rows and notes."""
    width = max([len(label) for result in results for label, _ in result.rows] + [10])
    lines = [
        f"machine: {machine['cpu']}, {machine['cores']} cores ({machine['cores_usable']} usable), "
        f"load {machine['load_average_1min']}, torch {machine['torch']} ({machine['torch_threads']} threads), "
        f"transformers {machine['transformers']}, trl {machine['trl']}, av {machine['av']}",
    ]
    for result in results:
        verdict = {True: "met", False: "MISSED", None: "-"}[result.met]
        lines += ["", f"== {result.name}   target: {result.target}   [{verdict}]"]
        lines += [f"  {label:<{width}}  {value}" for label, value in result.rows]
        lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines)

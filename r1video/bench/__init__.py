"""`r1video bench`: speed and memory figures, each measured side by side in one process run.

Entries (one module each): `decode`, `vision_reuse`, `overhead`, `memory`, and `demo_learning` (three full
`r1video demo` runs, so only run when named). Each has `run(quick, repeats)` returning an
[`EntryResult`]; [`r1video.bench.cli.main`] runs them and prints the table (and writes `--json`).
"""

from r1video.bench.runner import EntryResult, machine_info

__all__ = ["EntryResult", "machine_info"]

"""Preparing a working directory for a subprocess run of the tiny smoke recipes (model + synthetic data)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOKE_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def prepare_smoke_run(workdir: Path) -> None:
    """Write `runs/tiny-model` and a 16-question `runs/synth` in `workdir`, as the smoke recipes expect."""
    for command in (
        [sys.executable, "-m", "r1video", "tiny", "--out", "runs/tiny-model"],
        [sys.executable, "-m", "r1video", "data", "synth", "--out", "runs/synth", "--n", "16", "--n-test", "4"],
    ):
        subprocess.run(command, cwd=workdir, env=SMOKE_ENV, check=True, capture_output=True, timeout=300)

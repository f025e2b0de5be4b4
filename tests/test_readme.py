"""The README's command blocks run as written.

A block is run when the line before its ```bash fence is `<!-- test: run -->` (in the default test run: seconds) or
`<!-- test: run slow -->` (under `-m slow`). The marker is an HTML comment, so readers never see it. The blocks of one
kind run in README order, each with `bash -e`, in one temporary folder that holds the checkout's `recipes/` (as a
clone's root would), with the `r1video` of the current checkout.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- test: run( slow)? -->\n```bash\n(.*?)^```$", re.M | re.S)


def marked_blocks(text: str) -> list[tuple[bool, str]]:
    """(slow, commands) of every marked ```bash block, in order; a marker not followed by one is an error."""
    markers = len(re.findall(r"^<!-- test: run", text, re.M))
    blocks = [(bool(slow), body) for slow, body in MARKER.findall(text)]
    if len(blocks) != markers:
        raise ValueError(f"{markers} test markers but {len(blocks)} are directly followed by a ```bash block")
    return blocks


def run_blocks(blocks: list[str], cwd: Path, timeout: float) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    (cwd / "recipes").symlink_to(REPO / "recipes")
    for block in blocks:
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"README block failed ({result.returncode}):\n{block}\n{result.stderr[-3000:]}"


def test_markers_are_found_and_well_formed():
    blocks = marked_blocks((REPO / "README.md").read_text())
    assert any(not slow for slow, _ in blocks) and any(slow for slow, _ in blocks)
    with pytest.raises(ValueError, match="2 test markers but 1"):
        marked_blocks("<!-- test: run -->\n```bash\nls\n```\n<!-- test: run -->\n\n```bash\nls\n```\n")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_readme_fast_blocks_run(tmp_path):
    blocks = [body for slow, body in marked_blocks((REPO / "README.md").read_text()) if not slow]
    run_blocks(blocks, tmp_path, timeout=300)


@pytest.mark.slow
def test_readme_slow_blocks_run(tmp_path):
    blocks = [body for slow, body in marked_blocks((REPO / "README.md").read_text()) if slow]
    run_blocks(blocks, tmp_path, timeout=1800)
    assert (tmp_path / "runs/grpo-smoke/model.safetensors").is_file()
    assert list((tmp_path / "runs/grpo-smoke/completions").glob("completions_*.parquet"))

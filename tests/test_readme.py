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


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


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


def test_links_between_readme_and_docs_resolve():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, fragment = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif fragment:
                headings = re.findall(
                    r"^#+ (.*)$", re.sub(r"^```.*?^```", "", file.read_text(), flags=re.M | re.S), re.M
                )
                if fragment not in {anchor(h) for h in headings}:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_readme_fast_blocks_run(tmp_path):
    blocks = [body for slow, body in marked_blocks((REPO / "README.md").read_text()) if not slow]
    run_blocks(blocks, tmp_path, timeout=300)


@pytest.mark.slow
def test_readme_slow_blocks_run(tmp_path):
    blocks = [body for slow, body in marked_blocks((REPO / "README.md").read_text()) if slow]
    run_blocks(blocks, tmp_path, timeout=1800)
    assert (tmp_path / "runs/grpo-smoke/model.safetensors").is_file()
    assert (tmp_path / "runs/grpo-smoke/completions.jsonl").read_text().count("\n") == 4 * 4  # 4 steps × 4 rollouts

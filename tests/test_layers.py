"""The dependency rules of DESIGN.md, read from the import statements: the trainer, model and data packages import no
entry point, and `rewards` imports no r1video code at all."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = ("r1video.cli", "r1video.configs", "r1video.grpo", "r1video.sft", "r1video.runs", "r1video.recipe_cli")
FORBIDDEN = {
    "r1video/trainer": ENTRY_POINTS,
    "r1video/model": (*ENTRY_POINTS, "r1video.data", "r1video.trainer"),
    "r1video/data": (*ENTRY_POINTS, "r1video.trainer"),
    "rewards": ("r1video",),
}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package):
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(imported_modules(path))
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[package])
    ]
    assert not found, found

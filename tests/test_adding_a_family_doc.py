"""`docs/adding_a_family.md` walks through real files: every repository path it names (in backticks or as a link)
exists, and the page is linked from the README and `docs/policies.md`."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "adding_a_family.md"
TOP = ("r1video/", "tests/", "recipes/", "docs/", "rewards/")
CODE = re.compile(r"`([^`\s]+)`")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


def named_paths(text: str) -> list[str]:
    """Repository paths the page names: backticked words starting with a top-level folder (placeholders such as
    `<family>` skipped; a `*` is a glob), and relative link targets resolved from `docs/`."""
    paths = [word for word in CODE.findall(text) if word.startswith(TOP) and "<" not in word]
    for target in LINK.findall(text):
        if "://" not in target:
            paths.append(str((PAGE.parent / target).resolve().relative_to(REPO)))
    return paths


def test_every_path_the_guide_names_exists():
    paths = named_paths(PAGE.read_text())
    assert len(paths) > 20  # the parser finds the page's paths at all
    missing = [p for p in paths if not (list(REPO.glob(p)) if "*" in p else (REPO / p).exists())]
    assert not missing, f"docs/adding_a_family.md names paths that do not exist: {missing}"


def test_the_parser_catches_a_missing_path():
    text = "see `r1video/policies/no_such_family.py` and [x](../tests/test_nothing.py)"
    assert named_paths(text) == ["r1video/policies/no_such_family.py", "tests/test_nothing.py"]
    assert not (REPO / "r1video/policies/no_such_family.py").exists()


def test_the_registration_line_it_shows_is_the_real_one():
    init = (REPO / "r1video/policies/__init__.py").read_text()
    assert "from r1video.policies import (  # noqa: F401  (registers the built-in families)" in init
    assert "    llava_onevision,\n" in init


def test_the_guide_is_linked_from_the_readme_and_the_policies_page():
    assert "docs/adding_a_family.md" in (REPO / "README.md").read_text()
    assert "(adding_a_family.md)" in (REPO / "docs" / "policies.md").read_text()

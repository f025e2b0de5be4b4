"""Resolve a record's video path inside a data root, refusing paths that point outside it; name paths publicly."""

import os
from pathlib import Path

__all__ = ["PathEscapeError", "public_name", "public_path", "resolve_video_path"]


class PathEscapeError(ValueError):
    """A video path that resolves outside the data root (`..` components or an absolute path elsewhere)."""


def resolve_video_path(video_root: str | os.PathLike, name: str) -> str:
    """Join a record's video path to the data root.

    Rules, in order:
    - a leading `./` is dropped (the released `nextqa_0-30s.jsonl` stores `"./NextQA/NExTVideo/x.mp4"`, and the
      original code dropped the first character and appended the rest to the root: `root + "/NextQA/..."`);
    - an absolute path already inside the root is used as it is;
    - any other absolute path is read root-relative, like the original's `root + name` concatenation
      (`"/NextQA/x.mp4"` → `root/NextQA/x.mp4`), if that file exists; otherwise it is an escape;
    - the result is normalised lexically (symlinks inside the root are allowed to point anywhere) and must stay
      inside the root, so `..` cannot climb out.

    Args:
        video_root: The data root.
        name: The path stored in the record.

    Returns:
        The absolute, normalised path of the video.

    Raises:
        PathEscapeError: The path would leave the root.
        ValueError: `name` is empty.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("empty video path")
    root = os.path.normpath(os.path.abspath(video_root))
    if name.startswith("./"):
        name = name[2:]
    if os.path.isabs(name):
        absolute = os.path.normpath(name)
        if _inside(absolute, root):
            return absolute
        candidate = os.path.normpath(os.path.join(root, name.lstrip("/")))
        if _inside(candidate, root) and os.path.exists(candidate):
            return candidate
        raise PathEscapeError(
            f"absolute path {name!r} is outside the video root {root!r} (and {candidate!r} does not exist)"
        )
    path = os.path.normpath(os.path.join(root, name))
    if not _inside(path, root):
        raise PathEscapeError(f"video path {name!r} leaves the video root {root!r}")
    return path


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def public_name(name_or_path: str | None) -> str | None:
    """A Hub id stays as is; a local path becomes its last component (never an absolute path in a card or report)."""
    if not name_or_path:
        return None
    if os.path.isabs(name_or_path) or os.path.exists(name_or_path) or name_or_path.startswith(("~", ".")):
        return Path(os.path.normpath(name_or_path)).name
    return name_or_path


def public_path(path: str, *roots: str | None) -> str | None:
    """`path` relative to the first of `roots` that holds it (e.g. a video under the data dir), else its
    [`public_name`]; what results files record instead of a local absolute path."""
    if not path:
        return None
    absolute = os.path.normpath(os.path.abspath(path))
    for root in roots:
        if root and _inside(absolute, os.path.normpath(os.path.abspath(root))):
            return os.path.relpath(absolute, os.path.abspath(root))
    return public_name(path)

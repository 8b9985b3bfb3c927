"""Built-in profiles shipped in sandbox/profiles/ (written by this project), and how a profile
argument (a path or a built-in name) is resolved."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
UNCONFINED = "unconfined"

# Filesystem defaults (Landlock, see sandbox/landlock.py) of built-in profiles, used when the
# caller gives neither fs_ro nor fs_rw: "@system" is the system directories read-only (and
# /dev/null & co.), "@scratch" the run's working directory or else a fresh temporary one.
# A judged program then reads nothing of the grader's (expected outputs, other submissions).
FS_DEFAULTS = {
    "grader": {"ro": ("@system",), "rw": ("@scratch",)},
}


def names() -> list:
    """Built-in profile names, `unconfined` last."""
    found = sorted(p.stem for p in PROFILE_DIR.glob("*.json"))
    return found + [UNCONFINED]


def path(name: str) -> Optional[Path]:
    candidate = PROFILE_DIR / (name + ".json")
    return candidate if candidate.is_file() else None


def summary(name: str) -> str:
    """First sentence of a built-in profile's top-level comment."""
    if name == UNCONFINED:
        return "no seccomp filter at all (limits and capabilities still apply)"
    p = path(name)
    if p is None:
        return ""
    try:
        comment = json.loads(p.read_text()).get("comment", "")
    except (OSError, ValueError):
        return ""
    if isinstance(comment, list):
        comment = " ".join(comment)
    first = comment.split(". ")[0].split(": ")[0]
    return first.strip().rstrip(".")


def fs_default(spec) -> Optional[dict]:
    """The filesystem default of a built-in profile, given by name or by its file's path."""
    if not isinstance(spec, (str, os.PathLike)):
        return None
    text = os.fspath(spec)
    if not os.path.exists(text):
        return FS_DEFAULTS.get(text)
    for name, default in FS_DEFAULTS.items():
        if Path(text).resolve() == path(name):
            return default
    return None


def resolve(spec) -> object:
    """A path, dict or JSON text passes through; a built-in name becomes its file's path.

    A string that is neither an existing file nor a built-in name is returned unchanged, so the
    loader reports "file not found" with the name the user typed."""
    if not isinstance(spec, (str, os.PathLike)):
        return spec
    text = os.fspath(spec)
    if text.lstrip().startswith("{") or os.path.exists(text):
        return spec
    p = path(text)
    return str(p) if p is not None else spec

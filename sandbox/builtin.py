"""Built-in profiles shipped in sandbox/profiles/ (written by this project), and how a profile
argument (a path or a built-in name) is resolved."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
UNCONFINED = "unconfined"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")   # (never JSON text or a path)

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
    """The file of the built-in profile `name`, or None (a path like ./default is none)."""
    if not _NAME.fullmatch(name):
        return None
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


def is_name(spec) -> bool:
    """Whether spec names a built-in profile. A built-in name always means the built-in, even
    where a file of that name is in the working directory (a submission's directory must not
    be able to swap the grader's profile): such a file is reached as ./NAME."""
    return isinstance(spec, str) and (spec == UNCONFINED or path(spec) is not None)


def fs_default(spec) -> Optional[dict]:
    """The filesystem default of a built-in profile, given by name or by its file's path."""
    if not isinstance(spec, (str, os.PathLike)):
        return None
    text = os.fspath(spec)
    if is_name(spec):
        return FS_DEFAULTS.get(text)
    if not os.path.exists(text):
        return None
    for name, default in FS_DEFAULTS.items():
        if Path(text).resolve() == path(name):
            return default
    return None


def resolve(spec) -> object:
    """A built-in name (a str) becomes its file's path; a path (a str that is not a built-in's
    name, or any os.PathLike), dict or JSON text passes through.

    A string that is neither a built-in name nor an existing file is returned unchanged, so the
    loader reports "file not found" with the name the user typed."""
    if not isinstance(spec, (str, os.PathLike)):
        return spec
    text = os.fspath(spec)
    p = path(text) if isinstance(spec, str) else None
    return str(p) if p is not None else spec


def source(spec) -> object:
    """resolve(spec), or a ProfileError when a string is neither a built-in name, JSON text
    nor an existing file."""
    resolved = resolve(spec)
    if isinstance(resolved, (str, os.PathLike)) and resolved is spec:
        text = os.fspath(spec)
        if not text.lstrip().startswith("{") and not os.path.exists(text):
            from .profile import ProfileError
            if not isinstance(spec, str):
                raise ProfileError("", "%s: no such file (a built-in profile is named by a "
                                   "str, not a path)" % text)
            raise ProfileError("", "%s: no such file or built-in profile (built-ins: %s)"
                               % (text, ", ".join(names())))
    return resolved

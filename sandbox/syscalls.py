"""Syscall names and numbers, as the C core's per-arch tables know them.

A thin layer over `sandbox._core` (csrc/syscalls/), so that Python code never keeps a second copy
of the tables. Arch names are ours: "x86_64", "x86", "x32", "aarch64", "arm" (policy.ARCHES).
"""
from __future__ import annotations

from typing import Optional

from sandbox import _core

# Every name the core knows, read from it once: the tables are static C data, so this set cannot go
# stale (it is derived from the core at import, not a second copy kept by hand). `known` answers
# from it; callers with many names to check (profile loading) may test membership in it directly
# and call `known` only for the names it does not hold.
ALL_NAMES = frozenset(_core.syscall_all_names())


def _c_safe(name: str) -> bool:
    """A name C can see whole (an embedded NUL would cut it short: "read\\0x" is not "read")."""
    return isinstance(name, str) and "\0" not in name


def known(name: str) -> bool:
    """True if some architecture the core knows has a syscall called `name`."""
    if isinstance(name, str) and name in ALL_NAMES:
        return True
    # Not a name of the tables: the core has the last word on such oddities (and raises, as it
    # always has, for a str that cannot be encoded).
    return _c_safe(name) and bool(_core.syscall_known(name))


def number(arch: str, name: str) -> Optional[int]:
    """The number of `name` on `arch` (as seccomp_data.nr carries it), or None."""
    if not _c_safe(name):
        return None
    nr = _core.syscall_nr(arch, name)
    return None if nr < 0 else nr


def all_names() -> tuple:
    """Every syscall name some architecture knows, sorted."""
    return tuple(_core.syscall_all_names())


def arch_names() -> tuple:
    """The architectures the core has tables for ("x86_64", "x86", "x32", "aarch64", "arm")."""
    return tuple(_core.arch_names())

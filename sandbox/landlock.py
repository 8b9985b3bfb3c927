"""Filesystem restrictions with Landlock: which paths a sandboxed command may read, and where it
may write. Everything else is refused by the kernel (EACCES), whatever the file's permissions,
and also when reached through a symlink, /proc/PID/cwd or /proc/self/fd.

The ruleset is built in the parent (csrc/landlock.c) and applied by the child after
no_new_privs and before the seccomp filter (csrc/spawn.c). Two names stand for sets chosen per
machine and per run:

  @system   (in fs_ro) the system directories that exist here, read-only (SYSTEM_RO), plus
            /dev/null and the other harmless devices read-write (SYSTEM_DEVICES)
  @scratch  (in fs_rw) the run's working directory; without one, a fresh temporary directory
            that becomes the working directory and TMPDIR, and is removed after the run
"""
from __future__ import annotations

import dataclasses
import errno as _errno
import os
from typing import Optional, Sequence

from . import _core

SYSTEM = "@system"
SCRATCH = "@scratch"

# What compilers, interpreters and the dynamic loader read (gcc, g++, javac/java, python3, node,
# perl and sh run with these alone), and the CPU count glibc reads from /sys. Not /proc: in a
# PID namespace the run mounts a /proc of its own, which a ruleset built beforehand cannot name
# (Landlock rules follow inodes, and a hidden mount point does not count), so it would be
# readable without one and not with one; programs do without it (node's os.cpus() is empty).
SYSTEM_RO = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
             "/sys/devices/system/cpu")
SYSTEM_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


class LandlockUnavailable(Exception):
    """The kernel cannot apply Landlock rules; str() says why."""


class FsPathError(ValueError):
    """An fs_ro / fs_rw path that cannot be used (missing, unreadable)."""


def kernel_abi() -> int:
    """The running kernel's Landlock ABI version; raises LandlockUnavailable when it has none.
    (Tests replace this function to act out a kernel without Landlock.)"""
    abi = _core.landlock_abi()
    if abi > 0:
        return abi
    err = -abi
    if err == _errno.ENOSYS:
        why = "the kernel was built without Landlock (ENOSYS)"
    elif err == _errno.EOPNOTSUPP:
        why = "Landlock is disabled on this kernel (EOPNOTSUPP: not in the boot lsm= list)"
    else:
        why = "Landlock ABI query failed: %s" % os.strerror(err)
    raise LandlockUnavailable(why)


@dataclasses.dataclass(frozen=True)
class FsPolicy:
    """Absolute paths a command may read (ro) and use fully (rw); scratch: rw also holds the
    run's scratch directory, known only per run."""
    ro: tuple
    rw: tuple
    scratch: bool = False

    def describe(self, abi: Optional[int], missing: Optional[str] = None,
                 scratch_dir: Optional[str] = None) -> dict:
        """Result.landlock: whether the kernel applied the lists (abi None: it could not, for
        the reason `missing`), and the lists."""
        info = {"available": abi is not None, "abi": abi}
        if abi is None:
            info["reason"] = missing
        rw = self.rw + ((scratch_dir,) if scratch_dir else ())
        info.update(ro=list(self.ro), rw=list(rw), scratch=scratch_dir)
        return info


def _checked(path, option: str) -> str:
    text = os.fspath(path)
    full = os.path.abspath(text)
    if not os.path.exists(full):
        raise FsPathError("%s %s: no such file or directory" % (option, text))
    return full


def fs_policy(default: Optional[dict], fs_ro: Optional[Sequence] = None,
              fs_rw: Optional[Sequence] = None) -> Optional[FsPolicy]:
    """The FsPolicy for a profile's filesystem default (builtin.fs_default) and the caller's
    lists, or None (no Landlock) when neither asks for one. A list given replaces the
    default's; a list not given is the default's, or else @system (ro) and nothing (rw).
    Paths must exist (FsPathError names the one that does not)."""
    if fs_ro is None and fs_rw is None and default is None:
        return None
    if isinstance(fs_ro, (str, os.PathLike)) or isinstance(fs_rw, (str, os.PathLike)):
        raise TypeError("fs_ro and fs_rw take lists of paths")
    ro_spec = fs_ro if fs_ro is not None else (default or {}).get("ro", (SYSTEM,))
    rw_spec = fs_rw if fs_rw is not None else (default or {}).get("rw", ())
    ro, rw, scratch = [], [], False
    for p in ro_spec:
        if p == SYSTEM:
            ro += [d for d in SYSTEM_RO if os.path.exists(d)]
            rw += [d for d in SYSTEM_DEVICES if os.path.exists(d)]
        elif p == SCRATCH:
            raise FsPathError("%s belongs in the read-write list (--fs-rw)" % SCRATCH)
        else:
            ro.append(_checked(p, "--fs-ro"))
    for p in rw_spec:
        if p == SCRATCH:
            scratch = True
        elif p == SYSTEM:
            raise FsPathError("%s belongs in the read-only list (--fs-ro)" % SYSTEM)
        else:
            rw.append(_checked(p, "--fs-rw"))
    return FsPolicy(tuple(dict.fromkeys(ro)), tuple(dict.fromkeys(rw)), scratch)


def _identity(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Ruleset:
    """An open Landlock ruleset descriptor for one FsPolicy (plus a scratch directory).

    Rules name inodes, not paths: a directory removed and made again under the same name is
    not the one the ruleset allows. current() says whether the caller's paths (the system
    ones aside) are still the ones it was built for."""

    def __init__(self, abi: int, policy: FsPolicy, scratch_dir: Optional[str] = None):
        self.fd = -1
        rw = policy.rw + ((scratch_dir,) if scratch_dir else ())
        system = set(SYSTEM_RO + SYSTEM_DEVICES)
        self._identity = [(p, _identity(p)) for p in policy.ro + rw if p not in system]
        try:
            self.fd = _core.landlock_build(abi, [os.fsencode(p) for p in policy.ro],
                                           [os.fsencode(p) for p in rw])
        except OSError as e:
            where = "--fs-rw" if e.filename in rw else "--fs-ro"
            raise OSError(e.errno, "Landlock rule for %s %s: %s" % (where, e.filename, e.strerror)
                          if e.filename else e.strerror) from None

    def current(self) -> bool:
        return all(_identity(p) == ident for p, ident in self._identity)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

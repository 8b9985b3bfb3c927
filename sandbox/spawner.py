"""The pre-filtered spawner thread: one thread of this process per Sandbox that sets
NO_NEW_PRIVS and installs the profile's filter on itself once, then starts runs (csrc/spawner.h).

seccomp filters and no_new_privs belong to a thread, not to a process, so the rest of the
supervisor stays unfiltered while every child that thread vforks inherits the filter: no run
pays the kernel's translation and JIT of the program (~0.2 ms for Docker's default profile,
most of what a filter adds to a start). It is the zygote's saving without a second process.

The thread itself runs under the filter, inside this process. So it is only used when nothing
it can meet does harm here: every action of the profile must be ALLOW or ERRNO (a KILL_PROCESS
or a TRAP would end the supervisor), and the calls it and a run's set-up make must be allowed
(`refusal` says why not). A run that needs what an inherited filter cannot give (a PID
namespace, which Docker-like profiles deny to clone; a notification listener of its own; an
audit session of its own) starts directly, installing the filter as before.
"""
from __future__ import annotations

import os
import threading
import weakref
from typing import Optional

from . import _core
from .policy import RET_ALLOW, RET_ERRNO, action_name
from .zygote import TRANSIENT_ERRNOS, first_denied, job_setup_calls, vfork_call


def needed_syscalls(arch: str, ids: bool, caps: bool, landlock: bool) -> list:
    """(name, args) of every call the thread makes under its filter, plus a run's set-up."""
    calls = [("futex", ()), ("pipe2", ()), ("fcntl", ()), ("read", ()), ("close", ()),
             ("wait4", ()), ("pidfd_open", ()), ("rt_sigprocmask", ()), vfork_call(arch),
             ("exit", ())]
    if landlock:
        calls.append(("landlock_restrict_self", ()))
    return calls + job_setup_calls(arch, ids, caps)


def refusal(flt, ids: bool, caps: bool, landlock: bool) -> Optional[str]:
    """Why runs under this filter cannot start from a spawner thread, or None."""
    if flt is None:
        return "no filter to install"
    policy = flt.policy
    for action in (policy.default_action, *(r.action for r in policy.rules)):
        if action & 0xFFFF0000 not in (RET_ALLOW, RET_ERRNO):
            return ("the profile has %s actions, which must never reach a thread of the "
                    "supervisor" % action_name(action))
    return first_denied(flt, needed_syscalls(policy.host_arch, ids, caps, landlock),
                        (RET_ALLOW,), "the spawner thread")


class SpawnerSlot:
    """A Sandbox's spawner thread, started on first use and again in a forked child (which
    inherits the object but not the thread)."""

    def __init__(self, program: bytes, filter_flags: int, keep_caps=None, last_cap: int = -1):
        self.program = program
        self.filter_flags = filter_flags
        self.keep_caps, self.last_cap = keep_caps, last_cap
        self._lock = threading.Lock()
        self._spawner = None
        self._pid = 0
        self.failure: Optional[str] = None
        _live.add(self)

    def get(self):
        """The running _core.Spawner, or None when it cannot start (see .failure)."""
        sp = self._spawner
        if sp is not None and self._pid == os.getpid():
            return sp
        with self._lock:
            if self.failure is not None:
                return None
            if self._spawner is None or self._pid != os.getpid():
                old, self._spawner = self._spawner, None
                if old is not None:
                    old.stop()  # in a forked child: frees the copy, there is no thread
                try:
                    self._spawner = _core.Spawner(self.program, self.filter_flags,
                                                  self.keep_caps, self.last_cap)
                except (OSError, ValueError) as e:
                    if getattr(e, "errno", None) not in TRANSIENT_ERRNOS:
                        self.failure = "the spawner thread could not install the filter: %s" % e
                    return None
                self._pid = os.getpid()
            return self._spawner

    def forget(self) -> None:
        """After SpawnerGone: start another on next use."""
        with self._lock:
            self._spawner = None

    def close(self) -> None:
        with self._lock:
            sp, self._spawner = self._spawner, None
        if sp is not None:
            sp.stop()


# Every slot of this process: a forked child gets fresh locks (another thread may have held
# one at the fork) and starts its own thread on first use.
_live: "weakref.WeakSet[SpawnerSlot]" = weakref.WeakSet()


def _reset_in_child() -> None:
    for slot in list(_live):
        slot._lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_in_child)

"""The pre-filtered zygote: one small process per Sandbox that runs under the profile's filter
and starts each job with the same child set-up as a direct run, minus the filter install,
which the job inherits (csrc/zygote/main.c, protocol in csrc/zygote.h).

Installing a filter costs the kernel a BPF translation per process (~0.1 ms for Docker's
default profile); a zygote pays it once. It needs the profile to allow what it and the job
set-up do under the filter (`needed_syscalls`: fork, wait, sendmsg/recvmsg, setsid, ...):
`refusal()` says when it does not, and such a Sandbox spawns directly.

Lifetime: started on first use, shared by threads (one request at a time on its socket),
restarted when it died; it exits (killing its jobs) when its socket closes, i.e. on
Sandbox.close(), at interpreter exit, or when this process dies -- so it never outlives us
without relying on PDEATHSIG, which would tie it to the thread that happened to start it.
"""
from __future__ import annotations

import atexit
import errno as _errno
import os
import signal
import socket
import struct
import threading
import weakref
from typing import Optional

from . import _core, fdwait
from .policy import RET_ALLOW, RET_LOG

_EXE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox-zygote")
EXE: Optional[bytes] = os.fsencode(_EXE) if os.access(_EXE, os.X_OK) else None

_REPLY = struct.Struct("=Iiiiq")     # struct sb_zygote_reply
_MAGIC = 0x7A79676F
_START_TIMEOUT_S = 10.0

# failures to start a zygote or a spawner thread that say nothing about the profile or what
# the machine can do, only that it lacked descriptors, processes or memory for now: the run at
# hand starts directly, a later one tries again
TRANSIENT_ERRNOS = frozenset({_errno.EMFILE, _errno.ENFILE, _errno.EAGAIN, _errno.ENOMEM,
                              _errno.EINTR})

CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP = 5, 6, 7, 8
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG, _PR_CAPBSET_READ, _PR_CAPBSET_DROP = 1, 23, 24
_PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT = 38, 47
_CLONE_VFORK_FLAGS = 0x100 | 0x4000 | int(signal.SIGCHLD)   # CLONE_VM | CLONE_VFORK


def job_setup_calls(arch: str, ids: bool, caps: bool) -> list:
    """(name, args) of every call csrc/spawn.c's child makes before execve when it inherits its
    filter (from a zygote or a spawner thread) instead of installing one."""
    calls = [
        ("setsid", ()), ("fcntl", ()), ("dup3", ()), ("close_range", ()), ("chdir", ()),
        ("umask", ()), ("prlimit64", ()), ("write", ()), ("prctl", (_PR_SET_PDEATHSIG, 9)),
        ("prctl", (_PR_SET_NO_NEW_PRIVS, 1)), ("rt_sigprocmask", ()), ("rt_sigaction", ()),
        ("execve", ()), ("exit_group", ()),
    ]
    if caps:
        calls += [("prctl", (_PR_CAPBSET_READ, 0)), ("prctl", (_PR_CAPBSET_DROP, 0)),
                  ("capset", ()),
                  ("prctl", (_PR_CAP_AMBIENT, 4))]
    if ids:
        calls += [("setgroups", ()), ("setresgid", ()), ("setresuid", ())]
    return calls


def vfork_call(arch: str) -> tuple:
    """How csrc/spawn.c starts a child on this arch: vfork where there is one, else clone."""
    if arch in ("x86_64", "x32", "x86"):
        return ("vfork", ())
    return ("clone", (_CLONE_VFORK_FLAGS,))


def needed_syscalls(arch: str, ids: bool, caps: bool) -> list:
    """(name, args) of every call the zygote and a job's set-up make under the filter, after
    the zygote's own start (which is checked by starting it)."""
    wait = ("poll", ()) if arch in ("x86_64", "x32", "x86") else ("ppoll", ())
    # the zygote's loop (with the subreaper's sweep of a finished job's leftovers: openat of
    # /proc/thread-self/children, read again with pread64), then a job's set-up
    return [("recvmsg", ()), ("sendmsg", ()), wait, ("waitid", ()), ("wait4", ()), ("kill", ()),
            ("pidfd_open", ()), ("pipe2", ()), ("read", ()), ("pread64", ()), ("close", ()),
            vfork_call(arch),
            ("prctl", (_PR_SET_DUMPABLE, 0)), ("prctl", (_PR_SET_CHILD_SUBREAPER, 1)),
            ("openat", ())] + job_setup_calls(arch, ids, caps)


def first_denied(flt, calls, allowed, who: str) -> Optional[str]:
    """Why `who` cannot run under this filter: the first of calls ((name, args) on the host
    arch) whose action is not in allowed (RET_* kinds), or None."""
    arch = flt.policy.host_arch
    for name, args in calls:
        try:
            d = flt.decide(name, args, arch=arch)
        except ValueError:
            return "%s has no syscall %s" % (arch, name)
        if d.action & 0xFFFF0000 not in allowed:
            return "the profile does not allow %s%s (%s), which %s needs" % (
                name, "(%s)" % ", ".join("%#x" % a for a in args) if args else "",
                d.action_name, who)
    return None


def epoll_allowed(flt) -> bool:
    """Whether the zygote may wait for a batch's slots with epoll (csrc/zygote/main.c: one
    waiting zygote woken per freed slot, not all): only where the filter allows it outright,
    never where it would log or deny it."""
    if flt is None:
        return True
    return first_denied(flt, [("epoll_create1", ()), ("epoll_ctl", ()), ("epoll_pwait", ())],
                        (RET_ALLOW,), "the zygote") is None


def refusal(flt, ids: bool, caps: bool) -> Optional[str]:
    """Why jobs under this filter cannot go through a zygote, or None."""
    if EXE is None:
        return "sandbox-zygote is not built (python setup.py build_ext)"
    if flt is None:
        return None
    return first_denied(flt, needed_syscalls(flt.policy.host_arch, ids, caps),
                        (RET_ALLOW, RET_LOG), "the zygote")


class Zygote:
    """One running zygote. Hold .lock to call run(): one request at a time. A ZygoteError
    from run() other than E2BIG/EMSGSIZE means this one is dead (the caller starts another).
    pid_namespace: the zygote is pid 1 of a PID namespace its jobs share; user_namespace (with
    it, for a non-root supervisor): that namespace is made inside a user namespace of its own.
    epoll (where epoll_allowed): it waits for a batch's slots with epoll."""

    def __init__(self, *, program, filter_flags: int, caps, last_cap: int, pid_namespace: bool,
                 user_namespace: bool = False, epoll: bool = False):
        self.lock = threading.Lock()
        self.dead = False
        parent, child = socket.socketpair(socket.AF_UNIX,
                                          socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        self.sock = parent.detach()
        child_fd = child.detach()
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            self.pid, self.pidfd, _ = _core.spawn(
                EXE, [b"sandbox-zygote"] + ([b"--epoll"] if epoll else []), [], None,
                [child_fd, devnull, devnull],
                caps=caps, last_cap=last_cap, program=program, filter_flags=filter_flags,
                new_pidns=pid_namespace, new_userns=pid_namespace and user_namespace,
                init_exe=None)
        except BaseException:
            os.close(self.sock)
            raise
        finally:
            os.close(child_fd)
            os.close(devnull)
        _live.add(self)
        self._handshake()

    def _handshake(self) -> None:
        """Wait for "ready"; a zygote the filter killed at start-up closes its socket."""
        ready = fdwait.readable([self.sock], _START_TIMEOUT_S)
        data = os.read(self.sock, _REPLY.size + 1) if ready else b""
        if len(data) == _REPLY.size and _REPLY.unpack(data)[0] == _MAGIC:
            return
        status = self.close()
        why = "it did not start in %gs" % _START_TIMEOUT_S if not ready else (
            "killed by %s" % signal.Signals(os.WTERMSIG(status)).name
            if status is not None and os.WIFSIGNALED(status) else
            "it exited at start-up (status %s)" % (
                os.WEXITSTATUS(status) if status is not None else "unknown"))
        if status is not None and os.WIFSIGNALED(status) and \
                os.WTERMSIG(status) == signal.SIGSYS:
            why += " (the profile denies a call it makes at start-up)"
        raise OSError(_errno.ECHILD, "the zygote failed to start: " + why)

    def run(self, *args, **kw):
        """_core.zygote_run through this zygote: (pid, start_ns, cancelled, raw). The caller
        holds .lock; it is released as soon as the zygote has answered (the run is watched
        without it)."""
        if self.dead:  # (closed while the caller waited for it: its socket number is not ours)
            self.lock.release()
            raise _core.ZygoteError(_errno.EPIPE, False)
        try:
            return _core.zygote_run(self.sock, self.lock.release, *args, **kw)
        except _core.ZygoteError as e:
            if e.errno not in (_errno.E2BIG, _errno.EMSGSIZE):
                self.dead = True
            raise

    def close(self) -> Optional[int]:
        """Close the socket (the zygote kills its jobs and exits) and reap it; its status."""
        with self.lock:
            self.dead = True
            _live.discard(self)
            if self.sock >= 0:
                os.close(self.sock)
                self.sock = -1
            if self.pid <= 0:
                return None
            pid, self.pid = self.pid, -1
        if self.pidfd >= 0:
            if not fdwait.readable([self.pidfd], 2.0):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            os.close(self.pidfd)
            self.pidfd = -1
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return None


# Every live zygote of this process: closed at exit, forgotten in a forked child (which must
# neither write to nor keep open its parent's zygote sockets).
_live: "weakref.WeakSet[Zygote]" = weakref.WeakSet()


def _close_all() -> None:
    for z in list(_live):
        z.close()


def _forget_in_child() -> None:
    for z in list(_live):
        z.dead = True
        z.lock = threading.Lock()
        for fd in (z.sock, z.pidfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        z.sock = z.pidfd = z.pid = -1
    _live.clear()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_forget_in_child)

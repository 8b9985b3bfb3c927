"""Say what a run's logged and denied calls were, for people: a short summary with the first
call's arguments decoded where a number means something (socket families, clone and open flags),
and one Python `logging` record per distinct syscall (logger "sandbox.seccomp")."""
from __future__ import annotations

import errno as _errno
import logging
import socket
from typing import Iterable, List, Optional

log = logging.getLogger("sandbox.seccomp")

_AF = {v: k for k, v in vars(socket).items()
       if k.startswith("AF_") and isinstance(v, int) and k != "AF_UNSPEC"}
_AF[0] = "AF_UNSPEC"
_AF.setdefault(40, "AF_VSOCK")
_SOCK_TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM",
               5: "SOCK_SEQPACKET", 6: "SOCK_DCCP", 10: "SOCK_PACKET"}
_SOCK_FLAGS = ((0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC"))

CLONE_FLAGS = (
    (0x100, "CLONE_VM"), (0x200, "CLONE_FS"), (0x400, "CLONE_FILES"), (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"), (0x2000, "CLONE_PTRACE"), (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"), (0x10000, "CLONE_THREAD"), (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"), (0x80000, "CLONE_SETTLS"), (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"), (0x800000, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"), (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"), (0x8000000, "CLONE_NEWIPC"), (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"), (0x40000000, "CLONE_NEWNET"), (0x80000000, "CLONE_IO"),
    (0x80, "CLONE_NEWTIME"),
)
# every namespace flag: what Docker's clone rule keys on
CLONE_NAMESPACES = 0x7E020080

# syscall -> (argument index, mask): calls counted apart by this argument's masked value, so a
# report says which socket families, namespace flags or personalities were asked for (and a
# learned profile can write argument rules for them)
KEYED = {
    "socket": (0, 0xFFFFFFFF),
    "clone": (0, CLONE_NAMESPACES),
    "personality": (0, 0xFFFFFFFF),
}

_OPEN_ACCESS = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"}
_OPEN_FLAGS = (
    (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"), (0o4000, "O_NONBLOCK"), (0o10000, "O_DSYNC"), (0o40000, "O_DIRECT"),
    (0o200000, "O_DIRECTORY"), (0o400000, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"), (0o10000000, "O_PATH"), (0o20000000 | 0o200000, "O_TMPFILE"),
)


def _flags(value: int, table, rest_hex: bool = True) -> str:
    names = []
    for bit, name in table:
        if value & bit == bit and bit:
            names.append(name)
            value &= ~bit
    if value and rest_hex:
        names.append("%#x" % value)
    return "|".join(names) or "0"


def socket_family(value: int) -> str:
    return _AF.get(value & 0xFFFFFFFF, str(value))


def socket_type(value: int) -> str:
    base = _SOCK_TYPES.get(value & 0xF, str(value & 0xF))
    extra = _flags(value & ~0xF & 0xFFFFFFFF, _SOCK_FLAGS)
    return base if extra == "0" else base + "|" + extra


def clone_flags(value: int) -> str:
    sig = value & 0xFF & ~0x80
    text = _flags(value & ~0x7F & 0xFFFFFFFFFFFFFFFF, CLONE_FLAGS)
    if sig:
        import signal as _signal
        try:
            name = _signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        text = name if text == "0" else text + "|" + name
    return text


def open_flags(value: int) -> str:
    value &= 0xFFFFFFFF
    access = _OPEN_ACCESS.get(value & 3, str(value & 3))
    rest = _flags(value & ~3, _OPEN_FLAGS)
    return access if rest == "0" else access + "|" + rest


# syscall -> {argument index: decoder}
_DECODERS = {
    "socket": {0: socket_family, 1: socket_type},
    "socketpair": {0: socket_family, 1: socket_type},
    "clone": {0: clone_flags},
    "unshare": {0: clone_flags},
    "setns": {1: clone_flags},
    "open": {1: open_flags},
    "openat": {2: open_flags},
    "personality": {0: lambda v: "%#x" % (v & 0xFFFFFFFF)},
}
_SHOWN_ARGS = 3


# calls that take no argument: what their registers hold is noise
_NO_ARGS = frozenset({
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getpgrp",
    "setsid", "fork", "vfork", "pause", "sched_yield", "sync", "vhangup", "munlockall",
    "inotify_init", "restart_syscall", "rt_sigreturn", "sigreturn", "getuid32", "geteuid32",
    "getgid32", "getegid32"})


def decode_args(syscall: Optional[str], args: Optional[List[int]]) -> str:
    """The first arguments of a call, named where the number has a meaning."""
    if syscall in _NO_ARGS:
        return ""
    if args is None:
        return "?"
    decoders = _DECODERS.get(syscall or "", {})
    shown = max([_SHOWN_ARGS] + [i + 1 for i in decoders])
    parts = []
    for i, value in enumerate(args[:shown]):
        fn = decoders.get(i)
        parts.append(fn(value) if fn else ("%d" % value if value < 4096 else "%#x" % value))
    return ", ".join(parts)


def action_text(entry: dict) -> str:
    if entry["action"] == "ERRNO" and entry.get("errno") is not None:
        return "ERRNO(%s)" % _errno.errorcode.get(entry["errno"], entry["errno"])
    return entry["action"]


def call_text(rec: dict) -> str:
    """name(decoded first arguments) [arch unless x86_64] of one record (a per-syscall entry's
    "first", a killed_by, ...)."""
    name = rec.get("syscall") or "syscall %d" % rec["nr"]
    arch = "" if rec.get("arch") in (None, "x86_64") else " [%s]" % rec["arch"]
    return "%s(%s)%s" % (name, decode_args(rec.get("syscall"), rec.get("args")), arch)


def summary_lines(seccomp_log: Optional[dict], limit: int = 20) -> List[str]:
    """A few lines: what was logged or denied, how often, and the first call."""
    if not seccomp_log:
        return []
    entries = sorted(seccomp_log["syscalls"], key=lambda e: (-e["count"], e.get("syscall") or ""))
    lines = []
    total = seccomp_log["total"]
    how = "%s backend, %s" % (seccomp_log["backend"],
                              "complete" if seccomp_log["complete"] else
                              "INCOMPLETE: %s" % (seccomp_log.get("reason") or "records lost"))
    if total == 0 and not entries:
        lines.append("seccomp: no call logged or denied (%s)" % how)
    else:
        lines.append("seccomp: %d call%s logged or denied in %d syscall%s (%s)" % (
            total, "" if total == 1 else "s", len(entries), "" if len(entries) == 1 else "s",
            how))
    for e in entries[:limit]:
        lines.append("  %-16s x%-7d first: %s" % (action_text(e), e["count"],
                                                    call_text(e["first"])))
    if len(entries) > limit:
        lines.append("  ... %d more (see the JSON Result)" % (len(entries) - limit))
    killed = seccomp_log.get("killed_by")
    if killed:
        lines.append("  the run was killed by the filter at %s" % call_text(killed))
    return lines


def emit_logging(seccomp_log: Optional[dict], argv: Iterable[str]) -> None:
    """One logging record per distinct (syscall, action): WARNING for denials, INFO for LOG."""
    if not seccomp_log:
        return
    cmd = " ".join(argv)
    for e in seccomp_log["syscalls"]:
        level = logging.INFO if e["action"] == "LOG" else logging.WARNING
        if log.isEnabledFor(level):
            log.log(level, "%s: %s x%d, first %s", cmd[:200], action_text(e), e["count"],
                    call_text(e["first"]), extra={"seccomp": e})

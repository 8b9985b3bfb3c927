"""Summaries of logged system calls, shared by the log backends (kernel audit records, user
notifications): both produce records of one schema and report them through `aggregate`.

A record is a dict:
    pid      int     the calling process, as the supervisor's PID namespace numbers it
    arch     str     "x86_64", "x86", "x32", "aarch64", "arm", or "0x..." for an unknown one
    nr       int     the number seccomp saw (x32 numbers carry the 0x40000000 bit)
    syscall  str | None   its name on that arch, None when the tables do not know it
    args     list | None  the six arguments, None when the backend cannot see them
    ip       int     instruction pointer of the call
    time     float   seconds since the run started
    action   str     what the filter returned: "LOG", "KILL_PROCESS", "ERRNO", ...
    errno    int | None   the errno of an ERRNO action, when the backend knows it
    comm     str | None   the process's command name (what the kernel shows)
    exe      str | None   the program it executes
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

X32_BIT = 0x40000000
_ARCHES: dict = {}


def arch_and_name(audit_arch: int, nr: int) -> Tuple[str, Optional[str]]:
    """(arch, syscall name or None) of a call as seccomp sees it: x32 shares x86_64's
    AUDIT_ARCH and is told apart by bit 30 of the number; an arch we have no table for is
    "0x...". Both backends name their records with this."""
    from . import _core
    if not _ARCHES:
        for name in _core.arch_names():
            if name != "x32":
                _ARCHES[_core.arch_info(name)["audit_arch"]] = name
    arch = _ARCHES.get(audit_arch)
    if arch == "x86_64" and nr & X32_BIT:
        arch = "x32"
    if arch is None:
        return "0x%08x" % audit_arch, None
    return arch, _core.syscall_name(arch, nr & 0xFFFFFFFF)


def action_word(ret: int) -> str:
    """A record's action: "LOG", "ERRNO", "KILL_PROCESS", ... (its data left out)."""
    from .policy import action_name
    return action_name(ret & 0xFFFF0000).partition("(")[0]

RECORD_KEYS = ("pid", "arch", "nr", "syscall", "args", "ip", "time", "action", "errno", "comm",
               "exe")

# A fork-happy run could list thousands of pids per syscall: keep the first few, count them all.
MAX_PIDS_LISTED = 32


def aggregate(records: Iterable[dict], first_n: int = 20) -> dict:
    """{"by_syscall": one entry per (syscall, arch, nr, action, errno), most frequent first,
    "records": the first `first_n` records as given, "total": how many there were}."""
    groups: dict = {}
    first = []
    total = 0
    for rec in records:
        total += 1
        if len(first) < first_n:
            first.append(rec)
        key = (rec["syscall"], rec["arch"], rec["nr"], rec["action"], rec["errno"])
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = {"syscall": key[0], "arch": key[1], "nr": key[2],
                                   "action": key[3], "errno": key[4], "count": 0, "pids": set()}
        entry["count"] += 1
        entry["pids"].add(rec["pid"])
    by_syscall = sorted(groups.values(),
                        key=lambda e: (-e["count"], e["syscall"] or "", e["arch"], e["nr"]))
    for entry in by_syscall:
        pids = sorted(entry["pids"])
        entry["pids"] = pids[:MAX_PIDS_LISTED]
        entry["pid_count"] = len(pids)
    return {"by_syscall": by_syscall, "records": first, "total": total}


def kernel_seccomp_log(report: dict, first_n: int = 100) -> dict:
    """The Result's `seccomp_log` (the notification backend's shape, see sandbox/notify.py) from
    an auditlog.KernelLog.collect report."""
    records = report.get("records") or []
    summary = aggregate(records, first_n)
    firsts: dict = {}
    for rec in records:
        firsts.setdefault((rec["syscall"], rec["arch"], rec["nr"], rec["action"], rec["errno"]),
                          rec)
    syscalls = []
    for e in summary["by_syscall"]:
        key = (e["syscall"], e["arch"], e["nr"], e["action"], e["errno"])
        syscalls.append(dict(e, first=firsts[key]))
    killed = next((r for r in records if r["action"] in ("KILL_PROCESS", "KILL_THREAD")), None)
    return {
        "backend": "kernel",
        "complete": bool(report.get("complete")),
        "reason": report.get("reason"),
        "attribution": report.get("attribution"),
        "suppressed": report.get("suppressed", 0),
        "total": summary["total"],
        "syscalls": syscalls,
        "records": summary["records"],
        "records_dropped": summary["total"] - len(summary["records"]),
        "killed_by": killed,
    }

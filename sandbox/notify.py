"""The notification backend: see every logged (and, on request, every denied) call, losslessly.

A filter's `ret LOG` instructions (and with denial reports its `ret ERRNO`/`ret KILL`) are rewritten
to `ret USER_NOTIF`; the run's supervisor (csrc/notify.c) answers each held call as the original
program decides, so the program behaves as it would under the original filter, and records it.
This module makes the rewritten program and turns the supervisor's raw report into the Result's
`seccomp_log` (the same shape the kernel-log backend produces).
"""
from __future__ import annotations

import struct
from typing import Iterable

from . import _core
from .policy import RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD, RET_LOG, RET_USER_NOTIF
from .syscall_log import action_word, arch_and_name
from .syscall_report import KEYED

RET_ACTION_FULL = 0xFFFF0000

BPF_RET_K = 0x06  # BPF_RET | BPF_K
_INSN = struct.Struct("=HBBI")

LOGGED = frozenset({RET_LOG})
DENIED = frozenset({RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD})

def returns(program: bytes) -> set:
    """The action classes (ret value & RET_ACTION_FULL) a program can return."""
    out = set()
    for off in range(0, len(program), 8):
        code, _jt, _jf, k = _INSN.unpack_from(program, off)
        if code == BPF_RET_K:
            out.add(k & RET_ACTION_FULL)
    return out


def rewrite(program: bytes, actions: Iterable[int]) -> bytes:
    """`program` with every `ret K` whose action is in `actions` turned into `ret USER_NOTIF`.
    Jumps and every other instruction stay as they are, so the decision structure is unchanged."""
    actions = frozenset(actions)
    out = bytearray(program)
    for off in range(0, len(out), 8):
        code, jt, jf, k = _INSN.unpack_from(out, off)
        if code == BPF_RET_K and (k & RET_ACTION_FULL) in actions:
            _INSN.pack_into(out, off, code, jt, jf, RET_USER_NOTIF)
    return bytes(out)


def keys_for(arches: Iterable[str]) -> list:
    """The supervisor's argument keys (syscall_report.KEYED) on every arch of a policy."""
    keys = []
    for arch in arches:
        audit = _core.arch_info(arch)["audit_arch"]
        for name, (index, mask) in KEYED.items():
            nr = _core.syscall_nr(arch, name)
            if nr >= 0:
                keys.append((audit, nr, index, mask))
    return keys


def record(raw: dict) -> dict:
    """One record from the supervisor's raw form."""
    arch, name = arch_and_name(raw["arch"], raw["nr"])
    ret = raw["action"]
    rec = {"pid": raw["pid"], "tid": raw["tid"], "vpid": raw["vpid"], "arch": arch,
           "nr": raw["nr"], "syscall": name, "args": list(raw["args"]), "ip": raw["ip"],
           "time": round(raw["t_ns"] / 1e9, 6), "action": action_word(ret),
           "errno": (ret & 0xFFFF) if (ret & RET_ACTION_FULL) == RET_ERRNO else None}
    if raw.get("answer"):
        rec["gone"] = True  # the caller vanished before the answer (killed while waiting)
    return rec


def seccomp_log(report: dict, *, backend: str = "notify") -> dict:
    """The Result's `seccomp_log` from a Notifier report."""
    syscalls = []
    for e in report["entries"]:
        first = record(e["first"])
        entry = {"syscall": first["syscall"], "arch": first["arch"], "nr": first["nr"],
                 "action": first["action"], "errno": first["errno"],
                 "count": e["count"], "pids": e["pids"], "first": first}
        if first["syscall"] in KEYED:
            # counted apart by this argument (masked): socket family, clone namespace flags...
            entry["key"] = e["key"]
        syscalls.append(entry)
    records = [record(r) for r in report["records"]]
    complete = not report["error"]
    return {
        "backend": backend,
        "complete": complete,
        "reason": None if complete else "supervisor ran out of memory for the per-syscall table",
        "total": report["total"],
        "syscalls": syscalls,
        "records": records,
        "records_dropped": report["total"] - len(records),
        "killed_by": dict(record(report["killed"]), source="notify") if report["killed"]
        else None,
    }


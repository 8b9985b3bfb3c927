"""Run system calls under a real seccomp filter and report what the kernel decided.

A helper for the kernel-truth tests (not a test file). It compiles `tests/probes/syscall_probe.c`
once per source hash into a per-user temp directory (shared by every pytest-xdist worker) and
runs it: each call spec executes in a fresh child that installs the filter, makes exactly one raw
system call and records the result in shared memory, so the filter cannot break the report.

    outcomes = run_calls(bpf_bytes, ["x86_64:39", "i386:102:1,@2/1/0"])
    outcomes[0].errno, outcomes[1].signal

Call specs are `ABI:NR[:a0,...,a5]` with ABI `x86_64`, `x32` (the probe adds 0x40000000 to NR),
`i386` (`int $0x80`, registers zero-extended from 32 bits) or `i386full` (`int $0x80` with the
full 64-bit registers, whose high halves seccomp reports although the syscall ignores them).
Args are decimal, negative decimal or 0x-hex; `@W/W/...` as argument i passes a pointer to a
buffer at 0x10000000 + 128 * i holding those words (32-bit for i386).
`run_calls(None, ...)` runs the calls without any filter (the kernel's own answer).
`seccomp_view(spec)` gives (arch, nr, args) as the filter sees them, for `_core.decide`.

Every entry point skips the calling test (pytest.skip) when the host cannot run the probe: not
x86_64, no gcc, or seccomp filters cannot be installed.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import subprocess

import cbuild
from typing import Iterable, Optional, Sequence

import pytest

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probes", "syscall_probe.c")
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror"]

SIGSYS = 31
ENOSYS = 38
X32_BIT = 0x40000000


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What happened to one call.

    status: "ok" (the call returned), "signal", "install-failed", "exited", "timeout".
    ret/errno: the return value as libc would show it (ret -1 and errno for -4095..-1), for "ok";
    errno is also the install errno for "install-failed".
    signal: the signal that ended the child (31 = SIGSYS: KILL, or TRAP with `trap` set).
    trap: the TRAP's data (si_errno) when the filter returned TRAP, else None.
    installed: the filter was attached (or no filter was asked for) and the call was attempted.
    """
    status: str
    ret: Optional[int] = None
    errno: Optional[int] = None
    signal: Optional[int] = None
    trap: Optional[int] = None
    installed: bool = False
    line: str = ""

    @property
    def returned(self) -> bool:
        return self.status == "ok"

    def __str__(self) -> str:
        return self.line


def parse_line(line: str) -> Outcome:
    """One line of probe output -> Outcome."""
    words = line.split()
    head, fields = words[0], {}
    for w in words[1:]:
        key, _, value = w.partition("=")
        fields[key] = value
    if head == "ok":
        return Outcome("ok", ret=int(fields["ret"]), errno=int(fields["errno"]), installed=True,
                       line=line)
    if head.startswith("signal="):
        trap = int(fields["trap"]) if "trap" in fields else None
        return Outcome("signal", signal=int(head.split("=", 1)[1]), trap=trap, installed=True,
                       line=line)
    if head == "install-failed":
        return Outcome("install-failed", errno=int(fields["errno"]), line=line)
    if head in ("exited", "timeout"):
        return Outcome(head, installed=fields.get("stage") in ("installed", "returned", "trapped"),
                       line=line)
    raise ValueError("unexpected probe output: %r" % line)


_Unavailable = cbuild.Unavailable


def _build() -> str:
    """Path of the compiled probe, building it if this source hash was never built."""
    return cbuild.build(str(SOURCE), tuple(CFLAGS), "the syscall probe")


def _run(args: Sequence[str], stdin: Optional[bytes], timeout: float = 60.0) -> list:
    res = subprocess.run(args, input=stdin if stdin is not None else b"", capture_output=True,
                         timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError("syscall probe %s failed (rc=%d): %s"
                           % (" ".join(args[1:]), res.returncode,
                              res.stderr.decode(errors="replace")))
    return [parse_line(line) for line in res.stdout.decode().splitlines()]


@functools.lru_cache(maxsize=None)
def _availability() -> Optional[str]:
    """None if the probe can run seccomp filters here, else the reason it cannot."""
    try:
        exe = _build()
    except _Unavailable as e:
        return str(e)
    try:
        with open("/proc/self/status") as f:
            if not any(line.startswith("Seccomp:") for line in f):
                return "kernel without seccomp (no Seccomp: line in /proc/self/status)"
    except OSError as e:
        return "cannot read /proc/self/status: %s" % e
    (out,) = _run([exe, "-", "x86_64:39"], ret(0x7FFF0000))  # ALLOW everything
    if out.status != "ok" or out.ret <= 0:
        return "a trial seccomp filter could not be installed: %s" % out
    return None


def probe_path() -> str:
    """Path of the built probe; skips the calling test if it cannot be used on this host."""
    reason = _availability()
    if reason:
        pytest.skip(reason)
    return _build()


def run_calls(bpf: Optional[bytes], calls: Iterable[str], flags: int = 0,
              timeout_ms: int = 5000, unprivileged: bool = False,
              guard: Optional[int] = None) -> list:
    """Install `bpf` (raw sock_filter array, host byte order; None: no filter) with seccomp(2)
    `flags` in a fresh child per call and make each call. Returns one Outcome per call.
    `unprivileged`: when root, the child first becomes uid/gid 65534 (for sweeps whose calls
    could do damage if a filter wrongly allowed them).
    `guard`: an errno; a guard filter attached before `bpf` makes every call that `bpf` does not
    stop come back as ERRNO(guard) without being executed (see syscall_probe.c, option -g).
    Under a guard the calls are batched (-b): one child goes on until a call ends it."""
    exe = probe_path()
    calls = list(calls)
    if not calls:
        return []
    opts = ["-t", str(timeout_ms)] + (["-u"] if unprivileged else [])
    if guard is not None:
        if bpf is None:
            raise ValueError("a guard needs a filter under test")
        opts += ["-g", str(guard), "-b"]
    if bpf is None:
        args = [exe, "-n", *opts, *calls]
    else:
        if len(bpf) % 8:
            raise ValueError("BPF program of %d bytes is not a whole number of instructions"
                             % len(bpf))
        args = [exe, "-f", str(flags), *opts, "-", *calls]
    outs = _run(args, bpf, timeout=30 + len(calls) * timeout_ms / 1000.0)
    if len(outs) != len(calls):
        raise RuntimeError("probe answered %d lines for %d calls" % (len(outs), len(calls)))
    return outs


def run_call(bpf: Optional[bytes], call: str, flags: int = 0) -> Outcome:
    return run_calls(bpf, [call], flags)[0]


@functools.lru_cache(maxsize=None)
def kernel_abi(abi: str) -> str:
    """How the unfiltered kernel answers getpid on `abi`: "native" (it implements the ABI),
    "enosys" (x32 without CONFIG_X86_X32_ABI), or a description of the failure (e.g. the i386
    entry disabled with ia32_emulation=0 kills the process with SIGSEGV)."""
    nr = {"x86_64": 39, "x32": 39, "i386": 20}[abi]
    out = run_call(None, "%s:%d" % (abi, nr))
    if out.status == "ok" and out.ret > 0:
        return "native"
    if out.status == "ok" and out.errno == ENOSYS:
        return "enosys"
    return str(out)


def require_abi(abi: str) -> None:
    """Skip unless the kernel lets this process issue calls on `abi` at all (i386 needs
    IA32 emulation; x32 calls always reach seccomp, implemented or not)."""
    state = kernel_abi(abi)
    if state not in ("native", "enosys"):
        pytest.skip("the kernel does not accept %s system calls here: %s" % (abi, state))


AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
BUFFER_BASE = 0x10000000
BUFFER_STRIDE = 128


def _num(text: str) -> int:
    neg = text.startswith("-")
    body = text[1:] if neg else text
    value = int(body, 16) if body.lower().startswith("0x") else int(body, 10)
    return (-value) & 0xFFFFFFFFFFFFFFFF if neg else value


def seccomp_view(spec: str):
    """(audit_arch, nr, args6) that the filter sees for a probe call spec."""
    parts = spec.split(":")
    abi, nr = parts[0], _num(parts[1])
    args = [0] * 6
    if len(parts) > 2:
        for i, a in enumerate(parts[2].split(",")):
            args[i] = BUFFER_BASE + BUFFER_STRIDE * i if a.startswith("@") else _num(a)
    if abi == "x86_64":
        return AUDIT_ARCH_X86_64, nr & 0xFFFFFFFF, args
    if abi == "x32":
        return AUDIT_ARCH_X86_64, (nr | X32_BIT) & 0xFFFFFFFF, args
    if abi == "i386":
        return AUDIT_ARCH_I386, nr & 0xFFFFFFFF, [a & 0xFFFFFFFF for a in args]
    if abi == "i386full":     # seccomp_data gets the whole 64-bit registers
        return AUDIT_ARCH_I386, nr & 0xFFFFFFFF, args
    raise ValueError("unknown ABI in call spec %r" % spec)


# ---- a tiny classic-BPF assembler for hand-written filters ----

BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JGT_K = 0x25
BPF_JA = 0x05
BPF_RET_K = 0x06


def insn(code: int, jt: int = 0, jf: int = 0, k: int = 0) -> bytes:
    return int(code).to_bytes(2, "little") + bytes([jt, jf]) + int(k).to_bytes(4, "little")


def ld(offset: int) -> bytes:
    return insn(BPF_LD_W_ABS, k=offset)


def jeq(k: int, jt: int = 0, jf: int = 0) -> bytes:
    return insn(BPF_JEQ_K, jt, jf, k)


def ret(k: int) -> bytes:
    return insn(BPF_RET_K, k=k)

"""Kernel truth: load filters into the real kernel and make real system calls.

Every other compiler test runs BPF through an interpreter. These tests attach the program with
seccomp(2) (tests/probes/syscall_probe.c via tests/kernel_probe.py: a forked child installs the
filter and makes the call) and check that the kernel's decision is the one our compiler promises:
`sandbox._core.decide` is the promise, the probe's report the truth.

How an action shows up in the probe's report (`kernel_disagrees` below):
  ALLOW, LOG        the call reaches the kernel: same errno (or success) as without any filter;
  ERRNO(e)          ret -1, errno min(e, 4095) (ERRNO(0): ret 0); the tests use distinctive
                    errnos (1234, 2345, 3456) that no kernel path returns;
  TRAP(d)           SIGSYS caught with si_errno == d; KILL_*: death by SIGSYS without a trap;
  TRACE, USER_NOTIF without a tracer / listener: ENOSYS (the call is not executed).

Part 1 proves the probe itself with hand-written programs; part 2 compiles policies (the seed
article's examples, the bypasses the compiler must close, ABI corner cases) and compares; part 3
sweeps every syscall number of every ABI under a guard filter that keeps any call from executing
(see `GUARD`), so allowed numbers are checked too.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Optional

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kernel_probe as kp  # noqa: E402
from kernel_probe import jeq, ld, ret  # noqa: E402
from sandbox import policy as P  # noqa: E402
from sandbox.policy import Cond, Policy, Rule  # noqa: E402

try:
    from sandbox import _core as core
except ImportError:  # part 1 still runs: it only needs the probe
    core = None

needs_core = pytest.mark.skipif(core is None, reason="the C core is not built "
                                "(python setup.py build_ext --inplace)")

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")

X86_64 = kp.AUDIT_ARCH_X86_64
I386 = kp.AUDIT_ARCH_I386
SIGSYS = kp.SIGSYS
ENOSYS = 38
EPERM = 1
MAX_ERRNO = 4095
GUARD = 4093          # errno of the guard filter in the sweeps: "not stopped by the filter"

OP = P.OPS
EQ, NE, GT, GE, LT, LE, MASKED = (OP["SCMP_CMP_EQ"], OP["SCMP_CMP_NE"], OP["SCMP_CMP_GT"],
                                  OP["SCMP_CMP_GE"], OP["SCMP_CMP_LT"], OP["SCMP_CMP_LE"],
                                  OP["SCMP_CMP_MASKED_EQ"])
ALLOW = P.RET_ALLOW
KILL = P.RET_KILL_THREAD
KILL_PROCESS = P.RET_KILL_PROCESS
TRAP = P.RET_TRAP
LOG = P.RET_LOG
TRACE = P.RET_TRACE
NOTIF = P.RET_USER_NOTIF


def ERRNO(e: int) -> int:
    return P.RET_ERRNO | (e & 0xFFFF)


STUB = ERRNO(ENOSYS)

# Numbers the calls below use, as the kernel numbers them (checked against the C tables in
# test_syscall_numbers_match_core_tables).
NR = {
    "x86_64": {"read": 0, "write": 1, "lseek": 8, "mmap": 9, "getpid": 39, "socket": 41,
               "connect": 42, "chdir": 80, "mkdir": 83, "getuid": 102, "getgid": 104,
               "geteuid": 107, "getegid": 108, "getppid": 110, "gettid": 186,
               "exit_group": 231},
    "x86": {"lseek": 19, "getpid": 20, "mkdir": 39, "getppid": 64, "socketcall": 102,
            "gettid": 224, "socket": 359, "connect": 362},
    "x32": {"getpid": 39 | kp.X32_BIT, "socket": 41 | kp.X32_BIT, "getppid": 110 | kp.X32_BIT,
            "mkdir": 83 | kp.X32_BIT},
}
X = NR["x86_64"]
I32 = NR["x86"]


def kind(action: int) -> int:
    return action & 0xFFFF0000


def kernel_disagrees(action: int, out: kp.Outcome, base: Optional[kp.Outcome]) -> Optional[str]:
    """Why the probe's `out` is not what filter action `action` makes the kernel do (None if it
    is). `base`: the same call without a filter, needed for ALLOW/LOG."""
    k, data = kind(action), action & 0xFFFF
    if k in (ALLOW, LOG):
        if out.status != "ok":
            return "the call should have reached the kernel"
        if base is None:
            return None
        if base.status != "ok" or out.errno != base.errno or (out.ret < 0) != (base.ret < 0):
            return "the unfiltered kernel answers %s" % base
        return None
    if k == P.RET_ERRNO:
        want_ret, want_errno = (-1, min(data, MAX_ERRNO)) if data else (0, 0)
        if out.status != "ok" or out.ret != want_ret or out.errno != want_errno:
            return "expected ret=%d errno=%d" % (want_ret, want_errno)
        return None
    if k in (TRACE, NOTIF):   # no tracer / no listener: the call fails with ENOSYS
        if out.status != "ok" or out.ret != -1 or out.errno != ENOSYS:
            return "expected ENOSYS (no tracer or listener)"
        return None
    if k == TRAP:
        if out.signal != SIGSYS or out.trap != data:
            return "expected SIGSYS trapped with data %d" % data
        return None
    # KILL_THREAD, KILL_PROCESS and unknown actions (the kernel treats those as KILL_PROCESS).
    if out.signal != SIGSYS or out.trap is not None:
        return "expected death by SIGSYS"
    return None


# ---- part 1: the probe itself, with hand-written programs -----------------------------------

def test_probe_without_filter_reaches_the_kernel():
    getpid, bad_fd, bad_ptr = kp.run_calls(None, ["x86_64:%d" % X["getpid"], "x86_64:%d:-1,0,0"
                                                  % X["lseek"], "x86_64:%d:0" % X["chdir"]])
    assert getpid.status == "ok" and getpid.ret > 0 and getpid.errno == 0
    assert (bad_fd.ret, bad_fd.errno) == (-1, 9)      # EBADF
    assert (bad_ptr.ret, bad_ptr.errno) == (-1, 14)   # EFAULT


def test_probe_errno_filter():
    # ld nr; jeq getpid -> ERRNO(1234); ALLOW
    prog = ld(0) + jeq(X["getpid"], 0, 1) + ret(ERRNO(1234)) + ret(ALLOW)
    getpid, getppid, chdir = kp.run_calls(prog, ["x86_64:39", "x86_64:110", "x86_64:80:0"])
    assert (getpid.status, getpid.ret, getpid.errno) == ("ok", -1, 1234)
    assert getppid.status == "ok" and getppid.ret > 0
    assert (chdir.ret, chdir.errno) == (-1, 14)
    assert getpid.installed and getppid.installed


def test_probe_kill_and_trap_are_told_apart():
    prog = (ld(0) + jeq(X["getpid"], 0, 1) + ret(KILL) + jeq(X["getppid"], 0, 1)
            + ret(KILL_PROCESS) + jeq(X["getuid"], 0, 1) + ret(TRAP | 7) + ret(ALLOW))
    killed, killed_process, trapped, allowed = kp.run_calls(
        prog, ["x86_64:39", "x86_64:110", "x86_64:102", "x86_64:104"])
    assert (killed.signal, killed.trap) == (SIGSYS, None)
    assert (killed_process.signal, killed_process.trap) == (SIGSYS, None)
    assert (trapped.signal, trapped.trap) == (SIGSYS, 7)
    assert "nr=102" in trapped.line and "arch=0xc000003e" in trapped.line
    assert allowed.status == "ok" and allowed.ret >= 0


def test_probe_sees_arch_x32_bit_and_high_words():
    """The three ABIs arrive as the docs say: i386 with AUDIT_ARCH_I386 and its own numbers,
    x32 with AUDIT_ARCH_X86_64 and bit 30, x86_64 arguments with both words, i386 arguments
    zero-extended from 32 bits."""
    prog = (ld(4) + jeq(I386, 0, 1) + ret(ERRNO(2345))       # i386 -> 2345
            + ld(0) + jeq(0x40000000 | X["getpid"], 0, 1) + ret(ERRNO(3456))
            + ld(20) + jeq(1, 0, 1) + ret(ERRNO(1234))        # a0 high word == 1 -> 1234
            + ret(ALLOW))
    specs = ["i386:%d" % I32["getpid"], "x32:%d" % X["getpid"], "x86_64:39:0x100000000",
             "x86_64:39:1", "x86_64:0x40000027"]
    kp.require_abi("i386")
    i386, x32, high, low, x32_direct = kp.run_calls(prog, specs)
    assert i386.errno == 2345
    assert x32.errno == 3456 and x32_direct.errno == 3456
    assert high.errno == 1234
    assert low.status == "ok" and low.ret > 0
    prog_args = ld(4) + jeq(I386, 0, 3) + ld(20) + jeq(0, 0, 1) + ret(ERRNO(1234)) + ret(ALLOW)
    zero_extended, full = kp.run_calls(prog_args,
                                       ["i386:20:0x1ffffffff", "i386full:20:0x1ffffffff"])
    assert zero_extended.errno == 1234      # the probe's i386 registers: high word 0
    # int $0x80 from a 64-bit process: seccomp_data.args[0] is the whole rbx, high half included,
    # although the i386 syscall only reads ebx. A filter must ignore i386 high words.
    assert full.status == "ok" and full.ret > 0, full


def test_probe_nr_minus_one_reaches_the_filter():
    """nr 0xffffffff (-1) is filtered like any number; allowed, the kernel answers ENOSYS."""
    prog = ld(0) + jeq(0xFFFFFFFF, 0, 1) + ret(ERRNO(1234)) + ret(ALLOW)
    denied, = kp.run_calls(prog, ["x86_64:0xffffffff"])
    allowed, = kp.run_calls(ret(ALLOW), ["x86_64:0xffffffff"])
    assert denied.errno == 1234
    assert (allowed.ret, allowed.errno) == (-1, ENOSYS)


def test_probe_errno_clamp_zero_trace_notif_unknown():
    calls = ["x86_64:39", "x86_64:80:0"]
    clamped = kp.run_calls(ret(ERRNO(5000)), calls[:1])[0]
    zero = kp.run_calls(ret(ERRNO(0)), calls[1:])[0]
    trace = kp.run_calls(ret(TRACE | 5), calls[1:])[0]
    notif = kp.run_calls(ret(NOTIF), calls[1:])[0]
    unknown = kp.run_calls(ret(0x12340000), calls[:1])[0]
    assert (clamped.ret, clamped.errno) == (-1, MAX_ERRNO)
    assert (zero.ret, zero.errno) == (0, 0)          # chdir(NULL) not executed: no EFAULT
    assert (trace.ret, trace.errno) == (-1, ENOSYS)
    assert (notif.ret, notif.errno) == (-1, ENOSYS)
    assert (unknown.signal, unknown.trap) == (SIGSYS, None)


def test_probe_exit_group_denied_is_still_reported():
    (out,) = kp.run_calls(ret(ERRNO(2345)), ["x86_64:39"])
    assert (out.ret, out.errno) == (-1, 2345) and "exit_denied=1" in out.line


def test_probe_install_failures():
    ok = ret(ALLOW)
    bad_flag, = kp.run_calls(ok, ["x86_64:39"], flags=0x80000000)
    not_ret, = kp.run_calls(ld(0), ["x86_64:39"])
    too_long, = kp.run_calls(ld(0) * 4096 + ok, ["x86_64:39"])
    max_len, = kp.run_calls(ld(0) * 4095 + ok, ["x86_64:39"])
    empty, = kp.run_calls(b"", ["x86_64:39"])
    for out in (bad_flag, not_ret, too_long, empty):
        assert (out.status, out.errno, out.installed) == ("install-failed", 22, False), out
    assert max_len.status == "ok" and max_len.ret > 0


def test_probe_flags_reach_seccomp():
    spec_allow = P.FLAGS["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    log = P.FLAGS["SECCOMP_FILTER_FLAG_LOG"]
    out = kp.run_calls(ret(ERRNO(1234)), ["x86_64:39"], flags=spec_allow | log)[0]
    assert out.errno == 1234


def test_probe_guard_hides_allow_but_not_the_filters_verdicts():
    """Under the guard (batched: one child until a call ends it) ERRNO, KILL and TRAP come
    through, ALLOW and LOG turn into the guard's errno, and nothing runs (chdir(NULL) would be
    EFAULT, exit_group would end the batch)."""
    prog = (ld(0) + jeq(X["getpid"], 0, 1) + ret(ERRNO(1234)) + jeq(X["gettid"], 0, 1)
            + ret(KILL) + jeq(X["getuid"], 0, 1) + ret(TRAP | 3) + jeq(X["getgid"], 0, 1)
            + ret(LOG) + ret(ALLOW))
    specs = ["x86_64:39", "x86_64:186", "x86_64:80:0", "x86_64:102", "x86_64:231:0",
             "x86_64:104", "x86_64:39"]
    outs = kp.run_calls(prog, specs, guard=GUARD)
    assert [(o.status, o.errno, o.signal, o.trap) for o in outs] == [
        ("ok", 1234, None, None), ("signal", None, SIGSYS, None), ("ok", GUARD, None, None),
        ("signal", None, SIGSYS, 3), ("ok", GUARD, None, None), ("ok", GUARD, None, None),
        ("ok", 1234, None, None)]


# ---- part 2: compiled policies against the kernel --------------------------------------------

@dataclasses.dataclass
class Case:
    id: str
    policy: Policy
    # (probe call spec, expected action or None for "whatever decide says", expected decider)
    calls: list
    flags: int = 0
    needs: tuple = ()          # ABIs the kernel must accept ("i386")


def pol(default: int, rules=(), arches=("x86_64",), stub=None, **kw) -> Policy:
    """A Policy as the profile loader makes it: stub names default to the rules' names."""
    rules = tuple(rules)
    names = tuple(dict.fromkeys(r.name for r in rules)) if stub is None else tuple(stub)
    return Policy(default_action=default, arches=tuple(arches), rules=rules, stub_names=names,
                  **kw)


def c(index, op, value, value_two=0) -> Cond:
    return Cond(index, op, value, value_two)


# What decided a call (csrc/compile.h enum sb_decider, sandbox._core.DECIDED_BY_*).
BY_RULE, BY_DEFAULT, BY_BADARCH, BY_STUB = 0, 1, 2, 3

SOCKET_EQ_2 = Rule("socket", ERRNO(2345), (c(0, EQ, 2),))

CASES = [
    Case("x86_64-actions", pol(ALLOW, [
        Rule("getpid", ERRNO(1234)),
        Rule("gettid", KILL),
        Rule("getuid", TRAP | 7),
        Rule("getgid", KILL_PROCESS),
        Rule("geteuid", LOG),
        Rule("chdir", ERRNO(0)),
        Rule("lseek", TRACE | 5),
        Rule("getegid", NOTIF),
    ]), [
        ("x86_64:39", ERRNO(1234), BY_RULE),
        ("x86_64:186", KILL, BY_RULE),
        ("x86_64:102", TRAP | 7, BY_RULE),
        ("x86_64:104", KILL_PROCESS, BY_RULE),
        ("x86_64:107", LOG, BY_RULE),
        ("x86_64:80:0", ERRNO(0), BY_RULE),
        ("x86_64:8:-1,0,0", TRACE | 5, BY_RULE),
        ("x86_64:108", NOTIF, BY_RULE),
        ("x86_64:110", ALLOW, BY_DEFAULT),
        ("x86_64:83:0", ALLOW, BY_DEFAULT),
    ]),
    Case("x86_64-default-errno", pol(ERRNO(2345), [
        Rule("getpid", ALLOW), Rule("getppid", ALLOW), Rule("gettid", ERRNO(1234)),
    ], enosys_stub=False), [
        ("x86_64:39", ALLOW, BY_RULE),
        ("x86_64:110", ALLOW, BY_RULE),
        ("x86_64:186", ERRNO(1234), BY_RULE),
        ("x86_64:102", ERRNO(2345), BY_DEFAULT),
        ("x86_64:1000", ERRNO(2345), BY_DEFAULT),
        ("x86_64:0", ERRNO(2345), BY_DEFAULT),
    ]),
    Case("x86_64-default-kill", pol(KILL, [
        Rule("getpid", ALLOW), Rule("exit_group", ALLOW),
    ]), [
        ("x86_64:39", ALLOW, BY_RULE),
        ("x86_64:110", KILL, BY_DEFAULT),
        ("x86_64:102", KILL, BY_DEFAULT),
        ("x86_64:1000", STUB, BY_STUB),     # above exit_group (231), the highest listed name
    ]),
    # The seed article, as the profile loader resolves it: mkdir's rule equals the default
    # action and is dropped (runc), the name still counts for the ENOSYS cut-off.
    Case("seed-mkdir", pol(ERRNO(EPERM), [], stub=("mkdir",)), [
        ("x86_64:83:0", ERRNO(EPERM), BY_DEFAULT),
        ("x86_64:39", ERRNO(EPERM), BY_DEFAULT),
        ("x86_64:80:0", ERRNO(EPERM), BY_DEFAULT),
        ("x86_64:110", STUB, BY_STUB),
    ]),
    Case("seed-network", pol(ERRNO(EPERM), [], stub=("socket", "connect", "mkdir")), [
        ("x86_64:41:2,1,0", ERRNO(EPERM), BY_DEFAULT),
        ("x86_64:41:1,1,0", ERRNO(EPERM), BY_DEFAULT),
        ("x86_64:42:-1,0,0", ERRNO(EPERM), BY_DEFAULT),
        ("x86_64:83:0", ERRNO(EPERM), BY_DEFAULT),
        ("x86_64:39", ERRNO(EPERM), BY_DEFAULT),
    ]),
    Case("seed-network-distinct-errnos", pol(ALLOW, [
        Rule("socket", ERRNO(1234)), Rule("connect", ERRNO(2345)), Rule("mkdir", ERRNO(3456)),
    ]), [
        ("x86_64:41:2,1,0", ERRNO(1234), BY_RULE),
        ("x86_64:42:-1,0,0", ERRNO(2345), BY_RULE),
        ("x86_64:83:0", ERRNO(3456), BY_RULE),
        ("x86_64:39", ALLOW, BY_DEFAULT),
        ("x86_64:49:-1,0,0", ALLOW, BY_DEFAULT),   # bind
    ]),
    Case("seed-socket-inet-stream", pol(ALLOW, [
        Rule("socket", ERRNO(1234), (c(0, EQ, 2), c(1, EQ, 1))),
    ]), [
        ("x86_64:41:2,1,0", ERRNO(1234), BY_RULE),
        ("x86_64:41:1,1,0", ALLOW, BY_DEFAULT),
        ("x86_64:41:2,2,0", ALLOW, BY_DEFAULT),
        ("x86_64:41:10,1,0", ALLOW, BY_DEFAULT),
    ]),
    # socket's domain is an int: the kernel reads 0x100000002 as AF_INET. Comparing all 64 bits
    # (libseccomp) lets that call create an AF_INET socket; our default compares the low word.
    Case("int-arg-high-bits-closed", pol(ALLOW, [SOCKET_EQ_2]), [
        ("x86_64:41:2,1,0", ERRNO(2345), BY_RULE),
        ("x86_64:41:0x100000002,1,0", ERRNO(2345), BY_RULE),
        ("x86_64:41:0xffffffff00000002,1,0", ERRNO(2345), BY_RULE),
        ("x86_64:41:1,1,0", ALLOW, BY_DEFAULT),
    ]),
    Case("int-arg-high-bits-libseccomp", pol(ALLOW, [SOCKET_EQ_2], args_like_libseccomp=True), [
        ("x86_64:41:2,1,0", ERRNO(2345), BY_RULE),
        ("x86_64:41:0x100000002,1,0", ALLOW, BY_DEFAULT),   # the bypass: an AF_INET fd
    ]),
    # fd is an int: -1 arrives as 0xffffffffffffffff (or anything with low word 0xffffffff) and
    # the kernel reads -1. Our rule on the low word catches every form; libseccomp's full
    # compare of `== 0xffffffff` misses the sign-extended one. (A datum of 0xffffffffffffffff
    # on an int argument never matches in our default mode: the argument is zero-extended.)
    Case("int-arg-minus-one", pol(ALLOW, [Rule("lseek", ERRNO(1234), (c(0, EQ, 0xffffffff),))]), [
        ("x86_64:8:-1,0,0", ERRNO(1234), BY_RULE),
        ("x86_64:8:0xffffffff,0,0", ERRNO(1234), BY_RULE),
        ("x86_64:8:0x12345678ffffffff,0,0", ERRNO(1234), BY_RULE),
        ("x86_64:8:0xfffffffe,0,0", ALLOW, BY_DEFAULT),
    ]),
    Case("int-arg-minus-one-libseccomp", pol(ALLOW, [
        Rule("lseek", ERRNO(1234), (c(0, EQ, 0xffffffff),))], args_like_libseccomp=True), [
        ("x86_64:8:-1,0,0", ALLOW, BY_DEFAULT),              # EBADF: the rule missed fd -1
        ("x86_64:8:0xffffffff,0,0", ERRNO(1234), BY_RULE),
    ]),
    # off_t is 64-bit: both words count.
    Case("u64-arg-gt", pol(ALLOW, [
        Rule("lseek", ERRNO(3456), (c(1, GT, 0x100000000),)),
        Rule("lseek", ERRNO(1234), (c(2, GT, 5),)),
    ]), [
        ("x86_64:8:-1,0x100000001,0", ERRNO(3456), BY_RULE),
        ("x86_64:8:-1,0x200000000,0", ERRNO(3456), BY_RULE),
        ("x86_64:8:-1,0xffffffffffffffff,0", ERRNO(3456), BY_RULE),
        ("x86_64:8:-1,0x100000000,0", ALLOW, BY_DEFAULT),
        ("x86_64:8:-1,0xffffffff,0", ALLOW, BY_DEFAULT),
        ("x86_64:8:-1,1,0", ALLOW, BY_DEFAULT),
        ("x86_64:8:-1,0,6", ERRNO(1234), BY_RULE),
        ("x86_64:8:-1,0,5", ALLOW, BY_DEFAULT),
    ]),
    Case("u64-arg-lt-le-ge-ne-masked", pol(ALLOW, [
        Rule("lseek", ERRNO(1234), (c(1, LT, 0x123456789abc), c(2, LE, 1))),
        Rule("mmap", ERRNO(2345), (c(5, GE, 0x100000000),)),
        Rule("mmap", ERRNO(3456), (c(3, MASKED, 0xff00000000, 0x1200000000),)),
        Rule("getpid", ERRNO(1111), (c(0, LE, 0x1ffffffff), c(1, NE, 7))),
    ]), [
        ("x86_64:8:-1,0x123456789abb,0", ERRNO(1234), BY_RULE),
        ("x86_64:8:-1,0x123460000000,0", ALLOW, BY_DEFAULT),
        ("x86_64:8:-1,0,2", ALLOW, BY_DEFAULT),
        ("x86_64:8:-1,0,0x100000000", ERRNO(1234), BY_RULE),  # whence is an int: reads as 0
        ("x86_64:9:0,0,0,0,-1,0x100000000", ERRNO(2345), BY_RULE),
        ("x86_64:9:0,0,0,0,-1,0xffffffff", ALLOW, BY_DEFAULT),
        ("x86_64:9:0,0,0,0x12000000ff,-1,0", ERRNO(3456), BY_RULE),
        ("x86_64:9:0,0,0,0x13000000ff,-1,0", ALLOW, BY_DEFAULT),
        ("x86_64:39:0x1ffffffff,0", ERRNO(1111), BY_RULE),
        ("x86_64:39:0x200000000,0", ALLOW, BY_DEFAULT),
        ("x86_64:39:5,7", ALLOW, BY_DEFAULT),
    ]),
    Case("i386-bad-arch", pol(ALLOW, [Rule("getpid", ERRNO(1234))]), [
        ("i386:20", KILL, BY_BADARCH),
        ("i386:102:1,@2/1/0", KILL, BY_BADARCH),
        ("x86_64:39", ERRNO(1234), BY_RULE),
    ], needs=("i386",)),
    # i386 numbers differ: 20 is getpid there, 39 (x86_64's getpid) is mkdir.
    Case("i386-rules", pol(ALLOW, [Rule("getpid", ERRNO(1234)), SOCKET_EQ_2],
                           arches=("x86_64", "x86")), [
        ("i386:20", ERRNO(1234), BY_RULE),
        ("i386:39:0", ALLOW, BY_DEFAULT),                # mkdir(NULL): EFAULT from the kernel
        ("x86_64:39", ERRNO(1234), BY_RULE),
        ("i386:359:2,1,0", ERRNO(2345), BY_RULE),
        ("i386:359:1,1,0", ALLOW, BY_DEFAULT),
        # socketcall(SYS_SOCKET, args): the companion rule forces a0 == 1 and cannot see the
        # domain (it is behind the pointer), as libseccomp generates it.
        ("i386:102:1,@2/1/0", ERRNO(2345), BY_RULE),
        ("i386:102:1,@1/1/0", ERRNO(2345), BY_RULE),
        ("i386:102:2,@-1/0/0", ALLOW, BY_DEFAULT),       # socketcall(SYS_BIND, ...): EBADF
        ("x86_64:41:0x100000002,1,0", ERRNO(2345), BY_RULE),
    ], needs=("i386",)),
    # int $0x80 from 64-bit code: seccomp sees the registers' high halves, the syscall does not.
    # Only the low words of i386 arguments may be compared (a deny rule on the high word could
    # be steered from a 64-bit process).
    Case("i386-high-halves-ignored", pol(ALLOW, [
        SOCKET_EQ_2, Rule("getppid", ERRNO(1234), (c(0, NE, 0),)),
    ], arches=("x86_64", "x86")), [
        ("i386full:359:0x100000002,1,0", ERRNO(2345), BY_RULE),
        ("i386full:359:0xffffffff00000002,1,0", ERRNO(2345), BY_RULE),
        ("i386full:359:0x200000001,1,0", ALLOW, BY_DEFAULT),     # AF_UNIX socket
        ("i386full:64:0x100000000", ALLOW, BY_DEFAULT),
        ("i386full:64:0x100000001", ERRNO(1234), BY_RULE),
    ], needs=("i386",)),
    Case("i386-high-halves-ignored-libseccomp", pol(ALLOW, [SOCKET_EQ_2], arches=("x86_64", "x86"),
                                                    args_like_libseccomp=True), [
        ("i386full:359:0x100000002,1,0", ERRNO(2345), BY_RULE),
        ("i386full:359:0x200000001,1,0", ALLOW, BY_DEFAULT),
    ], needs=("i386",)),
    Case("i386-default-errno", pol(ERRNO(3456), [Rule("getpid", ALLOW), Rule("socket", ALLOW)],
                                   arches=("x86_64", "x86"), enosys_stub=False), [
        ("i386:20", ALLOW, BY_RULE),
        ("i386:64", ERRNO(3456), BY_DEFAULT),
        ("i386:102:1,@1/1/0", ALLOW, BY_RULE),
        ("i386:102:3,@-1/0/0", ERRNO(3456), BY_DEFAULT),  # socketcall(SYS_CONNECT)
        ("x86_64:39", ALLOW, BY_RULE),
        ("x86_64:110", ERRNO(3456), BY_DEFAULT),
    ], needs=("i386",)),
    Case("x32-bad-arch", pol(ALLOW, [Rule("getpid", ERRNO(1234))]), [
        ("x32:39", KILL, BY_BADARCH),
        ("x32:110", KILL, BY_BADARCH),
        ("x86_64:0x7ffffffe", KILL, BY_BADARCH),
        ("x86_64:0xfffffffe", KILL, BY_BADARCH),
        # -1 (a tracer's "skip this call") goes on to the syscall list: default ALLOW, ENOSYS
        ("x86_64:0xffffffff", ALLOW, BY_DEFAULT),
    ]),
    Case("x32-rules", pol(ALLOW, [Rule("getpid", ERRNO(1234)), SOCKET_EQ_2],
                          arches=("x86_64", "x32")), [
        ("x32:39", ERRNO(1234), BY_RULE),
        ("x32:110", ALLOW, BY_DEFAULT),                  # the kernel may answer ENOSYS
        ("x32:41:2,1,0", ERRNO(2345), BY_RULE),
        ("x32:41:1,1,0", ALLOW, BY_DEFAULT),
        ("x86_64:39", ERRNO(1234), BY_RULE),
        ("x86_64:0xffffffff", ALLOW, BY_DEFAULT),
    ]),
    Case("x32-default-errno", pol(ERRNO(3456), [Rule("getpid", ALLOW)],
                                  arches=("x86_64", "x32"), enosys_stub=False), [
        ("x32:39", ALLOW, BY_RULE),
        ("x32:110", ERRNO(3456), BY_DEFAULT),
        ("x86_64:0xffffffff", ERRNO(3456), BY_DEFAULT),
        ("x86_64:0x40001000", ERRNO(3456), BY_DEFAULT),
    ]),
    Case("nr-minus-one-x86_64-only", pol(ERRNO(3456), [Rule("getpid", ALLOW)],
                                         enosys_stub=False), [
        ("x86_64:0xffffffff", ERRNO(3456), BY_DEFAULT),
        ("x86_64:0x40000027", KILL, BY_BADARCH),
    ]),
    # runc's stub: numbers above the highest name the profile lists get ENOSYS, so new
    # syscalls make glibc fall back instead of failing with EPERM.
    Case("runc-enosys-stub", pol(ERRNO(1234), [
        Rule("getpid", ALLOW), Rule("getppid", ALLOW), Rule("write", ALLOW),
    ]), [
        ("x86_64:1000", STUB, BY_STUB),
        ("x86_64:111", STUB, BY_STUB),
        ("x86_64:0x3fffffff", STUB, BY_STUB),
        ("x86_64:102", ERRNO(1234), BY_DEFAULT),
        ("x86_64:0", ERRNO(1234), BY_DEFAULT),
        ("x86_64:110", ALLOW, BY_RULE),
        ("x86_64:1:-1,0,0", ALLOW, BY_RULE),
    ]),
    Case("runc-enosys-stub-i386", pol(ERRNO(1234), [Rule("getpid", ALLOW)],
                                      arches=("x86_64", "x86")), [
        ("i386:1000", STUB, BY_STUB),
        ("i386:21", STUB, BY_STUB),
        ("i386:19:-1,0,0", ERRNO(1234), BY_DEFAULT),
        ("i386:20", ALLOW, BY_RULE),
    ], needs=("i386",)),
    # errnoRet >= 4096 cannot come from a profile (the loader refuses it) but the kernel's cap
    # is what it would get: ERRNO(5000) arrives as 4095.
    Case("errno-clamped", pol(ALLOW, [Rule("getpid", ERRNO(5000))]), [
        ("x86_64:39", ERRNO(5000), BY_RULE),
    ]),
    Case("spec-allow-flag", pol(ALLOW, [Rule("getpid", ERRNO(1234))]), [
        ("x86_64:39", ERRNO(1234), BY_RULE),
    ], flags=P.FLAGS["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]),
]


def _check(policy: Policy, calls: list, flags: int = 0) -> None:
    compiled = core.Compiled(policy)
    specs = [call[0] for call in calls]
    outs = kp.run_calls(compiled.program, specs, flags=flags)
    predicted = [compiled.decide(*kp.seccomp_view(s)) for s in specs]
    allowed = [s for s, (action, _, _) in zip(specs, predicted) if kind(action) in (ALLOW, LOG)]
    base = dict(zip(allowed, kp.run_calls(None, allowed)))
    problems = []
    for call, out, (action, by, rule) in zip(calls, outs, predicted):
        spec, want, want_by = (tuple(call) + (None, None))[:3]
        said = "%s (decider %d, rule %d)" % (P.action_name(action), by, rule)
        if want is not None and action != want:
            problems.append("%s: decide says %s, the test expects %s"
                            % (spec, said, P.action_name(want)))
        if want_by is not None and by != want_by:
            problems.append("%s: decide says %s, the test expects decider %d"
                            % (spec, said, want_by))
        why = kernel_disagrees(action, out, base.get(spec))
        if why:
            problems.append("%s: decide says %s but the kernel did: %s (%s)"
                            % (spec, said, out, why))
    assert not problems, "\n".join(problems)


@needs_core
def test_decider_codes_match_core():
    assert (BY_RULE, BY_DEFAULT, BY_BADARCH, BY_STUB) == (
        core.DECIDED_BY_RULE, core.DECIDED_BY_DEFAULT, core.DECIDED_BY_BADARCH,
        core.DECIDED_BY_STUB)


@needs_core
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_compiled_policy_in_the_kernel(case):
    for abi in case.needs:
        kp.require_abi(abi)
    _check(case.policy, case.calls, case.flags)


@needs_core
def test_args_like_libseccomp_bypass_creates_an_inet_socket():
    """The documented bypass, shown end to end: with args_like_libseccomp the call with domain
    0x100000002 passes the filter and the kernel returns an AF_INET socket."""
    lib = core.compile(pol(ALLOW, [SOCKET_EQ_2], args_like_libseccomp=True))
    ours = core.compile(pol(ALLOW, [SOCKET_EQ_2]))
    (bypass,) = kp.run_calls(lib, ["x86_64:41:0x100000002,1,0"])
    (closed,) = kp.run_calls(ours, ["x86_64:41:0x100000002,1,0"])
    assert bypass.status == "ok" and bypass.ret >= 0, bypass
    assert (closed.ret, closed.errno) == (-1, 2345), closed


@needs_core
def test_seed_profiles_through_the_loader():
    """The article's three example profiles, loaded from JSON: the calls they are about fail
    as the article says."""
    profile = pytest.importorskip("sandbox.profile")
    mkdir = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
             "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO", "args": []}]}
    network = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"name": n, "action": "SCMP_ACT_ERRNO"}
                            for n in ("socket", "connect", "mkdir")]}
    tcp = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"name": "socket", "action": "SCMP_ACT_ERRNO", "args": [
               {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
               {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}]}
    _check(profile.load(mkdir), [("x86_64:83:0", ERRNO(EPERM)), ("x86_64:39", ERRNO(EPERM))])
    _check(profile.load(network), [("x86_64:41:2,1,0", ERRNO(EPERM)),
                                   ("x86_64:42:-1,0,0", ERRNO(EPERM)),
                                   ("x86_64:83:0", ERRNO(EPERM))])
    _check(profile.load(tcp), [("x86_64:41:2,1,0", ERRNO(EPERM)),
                               ("x86_64:41:1,1,0", ALLOW), ("x86_64:41:2,2,0", ALLOW)])


@needs_core
def test_syscall_numbers_match_core_tables():
    for arch, names in NR.items():
        for name, nr in names.items():
            assert core.syscall_nr(arch, name) == nr, (arch, name)


# ---- part 3: sweeps over every number, under the guard ---------------------------------------

def _numbers(arch: str, policy: Policy) -> list:
    """Every number of `arch` up to a few past its highest syscall, plus edge values. An ABI the
    policy does not list is all bad-arch (one fork per KILL): every 4th number there, plus the
    numbers of the policy's own syscall names."""
    top = max(nr for _, nr, _ in core.syscall_table(arch))
    base = top & ~kp.X32_BIT if arch == "x32" else top
    numbers = set(range(0, base + 8))
    if arch not in policy.arches:
        numbers = set(range(0, base + 8, 4))
        for rule in policy.rules:
            nr = core.syscall_nr(arch, rule.name)
            if nr >= 0:
                numbers.add(nr & ~kp.X32_BIT if arch == "x32" else nr)
    if arch == "x32":
        return ["x32:%d" % n for n in sorted(numbers)]
    abi = "i386" if arch == "x86" else "x86_64"
    numbers |= {1000, 4096, 0x3FFFFFFF, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF}
    return ["%s:%d" % (abi, n) for n in sorted(numbers)]


def _arg_variants(policy: Policy) -> list:
    """Calls that probe the conditions of every conditional rule, on every ABI of the policy."""
    specs = []
    for rule in policy.rules:
        if not rule.conds:
            continue
        vectors = [[0] * 6]
        for cond in rule.conds:
            base = cond.value_two if cond.op == MASKED else cond.value
            for v in {base, base + 1, base - 1, base | (1 << 32), base & 0xFFFFFFFF,
                      (base ^ 0xFFFFFFFF00000000), 0, 0xFFFFFFFFFFFFFFFF}:
                vec = [0] * 6
                for other in rule.conds:      # satisfy-ish the others with their own value
                    vec[other.index] = other.value_two if other.op == MASKED else other.value
                vec[cond.index] = v & 0xFFFFFFFFFFFFFFFF
                vectors.append(vec)
        for arch in policy.arches:
            nr = core.syscall_nr(arch, rule.name)
            if nr < 0:
                continue
            abi = {"x86_64": "x86_64", "x86": "i386", "x32": "x32"}.get(arch)
            if abi is None:
                continue
            base_nr = nr & ~kp.X32_BIT if arch == "x32" else nr
            for vec in vectors:
                args = ",".join("%#x" % a for a in vec)
                specs.append("%s:%d:%s" % (abi, base_nr, args))
                if abi == "i386":   # also with the high halves seccomp reports for int $0x80
                    specs.append("i386full:%d:%s" % (base_nr, args))
    return sorted(set(specs))


# Syscalls the kernel lets through before any filter runs (kernel/seccomp.c
# seccomp_uprobe_exception: uretprobe since v6.14-rc2 / 6.12.y, uprobe since v6.18; bpf-layout.md
# section 8). No filter can deny them, so a sweep cannot hold them to decide's answer.
SECCOMP_EXEMPT = {"x86_64": ("uretprobe", "uprobe")}


def _exempt(specs: list) -> set:
    """The specs among `specs` that even a deny-everything filter does not stop."""
    outs = kp.run_calls(ret(ERRNO(1234)), specs, unprivileged=True, timeout_ms=2000)
    return {s for s, out in zip(specs, outs) if (out.status, out.errno) != ("ok", 1234)}


def _sweep(policy: Policy, specs: list) -> None:
    compiled = core.Compiled(policy)
    outs = kp.run_calls(compiled.program, specs, unprivileged=True, guard=GUARD,
                        timeout_ms=2000)
    problems = []
    for spec, out in zip(specs, outs):
        action, by, rule = compiled.decide(*kp.seccomp_view(spec))
        k = kind(action)
        if k in (ALLOW, LOG, TRACE, NOTIF):   # weaker than the guard's ERRNO
            why = None if (out.status, out.errno) == ("ok", GUARD) else "expected the guard"
        else:
            why = kernel_disagrees(action, out, None)
        if why:
            problems.append((spec, "%s: decide says %s (decider %d, rule %d), kernel: %s (%s)"
                             % (spec, P.action_name(action), by, rule, out, why)))
    exempt = _exempt([spec for spec, _ in problems]) if problems else set()
    known = {"x86_64:%d" % core.syscall_nr(arch, name)
             for arch, names in SECCOMP_EXEMPT.items() for name in names}
    problems = [text + ("" if spec not in exempt else
                        " [no filter can stop this number on this kernel; not a known exemption]")
                for spec, text in problems if not (spec in exempt and spec in known)]
    assert not problems, "%d of %d calls disagree:\n%s" % (
        len(problems), len(specs), "\n".join(problems[:40]))


@needs_core
def test_kernel_exempts_uprobe_syscalls_from_seccomp():
    """On x86_64 the kernel lets uretprobe (v6.14+) and uprobe (v6.18+) through before running
    any filter: a KILL-everything filter does not stop them. Called outside a uprobe trampoline,
    uretprobe gets SIGILL and uprobe ENXIO. decide cannot predict that; the sweeps skip them."""
    release = tuple(int(x) for x in os.uname().release.split(".")[:2])
    names = [n for n, since in (("uretprobe", (6, 14)), ("uprobe", (6, 18))) if release >= since]
    if not names:
        pytest.skip("kernel %s predates the uprobe exemptions" % os.uname().release)
    specs = ["x86_64:%d" % core.syscall_nr("x86_64", n) for n in names]
    outs = kp.run_calls(ret(KILL), specs, unprivileged=True)
    for name, out in zip(names, outs):
        assert out.signal != SIGSYS, "%s was killed by the filter: %s" % (name, out)
    deny_all = kp.run_calls(ret(ERRNO(1234)), specs, unprivileged=True)
    assert all(out.errno != 1234 for out in deny_all), deny_all
    # On i386 the same numbers are ordinary (filtered) calls.
    kp.require_abi("i386")
    assert [o.signal for o in kp.run_calls(ret(KILL), ["i386:335", "i386:336"])] == [SIGSYS] * 2


def _docker_default() -> Policy:
    profile = pytest.importorskip("sandbox.profile")
    path = os.path.join(SHARED, "profiles", "docker-default.json")
    if not os.path.exists(path):
        pytest.skip("no %s" % path)
    return profile.load(path, host_arch="x86_64", caps=profile.DOCKER_DEFAULT_CAPS,
                        kernel=(6, 18))


SWEEP_POLICIES = {
    "allowlist-errno-stub": lambda: pol(ERRNO(1234), [
        Rule("read", ALLOW), Rule("write", ALLOW), Rule("getpid", ALLOW),
        Rule("gettid", TRAP | 9), Rule("getuid", KILL), Rule("openat", ERRNO(2345)),
        Rule("socket", ALLOW, (c(0, EQ, 1),)), Rule("socket", ERRNO(3456), (c(0, EQ, 2),)),
        Rule("lseek", ALLOW, (c(1, LT, 0x100000000),)),
    ], arches=("x86_64", "x86", "x32")),
    "denylist-allow": lambda: pol(ALLOW, [
        Rule("mkdir", ERRNO(1234)), Rule("ptrace", KILL), Rule("personality", LOG),
        Rule("clone", ERRNO(2345), (c(0, MASKED, 0x7E020000, 0),)),
        Rule("mmap", ERRNO(3456), (c(2, GE, 0x100000004),)),
    ], arches=("x86_64", "x86")),
    "x86_64-only-kill": lambda: pol(KILL, [Rule("getpid", ALLOW), Rule("exit_group", ALLOW)]),
    "docker-default": _docker_default,
    "docker-default-libseccomp-args": lambda: dataclasses.replace(_docker_default(),
                                                                  args_like_libseccomp=True),
}


@needs_core
@pytest.mark.parametrize("name", sorted(SWEEP_POLICIES))
def test_every_syscall_number_agrees_with_decide(name):
    """Each x86_64, i386 and x32 number (plus edge values) and argument variants of each
    conditional rule: the kernel's decision equals decide's, allowed calls included."""
    policy = SWEEP_POLICIES[name]()
    kp.require_abi("i386")
    specs = []
    for arch in ("x86_64", "x86", "x32"):
        specs += _numbers(arch, policy)
    specs += _arg_variants(policy)
    _sweep(policy, specs)

"""Tests of the test oracle itself (tests/oracle.py, tests/bpfsim.py), so that the differential
tests rest on something checked: the Python BPF interpreter against hand-written programs, and the
runc + libseccomp oracle against the listings of bpf-layout.md section 1 and the decision tables
of reference-test-cases.md section 2, items 26-36 (plus runc's ENOSYS stub, items 15 and 17).

None of this needs our compiler.
"""
import itertools
import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pyseccomp = pytest.importorskip("pyseccomp")

import bpfsim  # noqa: E402
import oracle  # noqa: E402
from sandbox.policy import (OPS, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD,  # noqa: E402
                            RET_LOG, RET_TRACE, RET_TRAP, Cond, Policy, Rule)

NE, LT, LE, EQ, GE, GT, MEQ = (OPS["SCMP_CMP_" + n] for n in
                               ("NE", "LT", "LE", "EQ", "GE", "GT", "MASKED_EQ"))
X86_64, X86, AARCH64, ARM = 0xC000003E, 0x40000003, 0xC00000B7, 0x40000028
X32 = 0x40000000
ALLOW, KILL = RET_ALLOW, RET_KILL_THREAD


def ERRNO(n):
    return RET_ERRNO | n


def TRACE(n):
    return RET_TRACE | n


def policy(default, rules, arches=("x86_64",), stub=True, extra_names=(), host="x86_64"):
    rules = tuple(rules)
    names = tuple(dict.fromkeys([r.name for r in rules] + list(extra_names)))
    return Policy(default_action=default, arches=tuple(arches), rules=rules, stub_names=names,
                  enosys_stub=stub, host_arch=host)


def R(name, action, *conds):
    return Rule(name, action, tuple(Cond(*c) for c in conds))


def nr(name, arch="x86_64"):
    n = oracle.lib_resolve(arch, name)
    assert n >= 0, (name, arch, n)
    return n


def decide(p, arch, number, *args):
    """The oracle's answer, checked against the Python model where the model has one."""
    args = tuple(args) + (0,) * (6 - len(args))
    got = oracle.reference_decide(p, arch, number, args)
    assert not oracle.reference(p).hits_acc_bug(arch, number, args)
    try:
        want, _, _ = oracle.model_decide(p, arch, number, args)
    except oracle.Conflict:
        pass
    else:
        assert got == want, "BPF %#x vs model %#x for %#x/%#x %s" % (got, want, arch, number, args)
    return got


# ----------------------------------------------------------------------------------------------
# bpfsim: hand-assembled programs


def asm(*insns):
    return b"".join(struct.pack("=HBBI", *i) for i in insns)


LD_ABS, LD_LEN, LDX_LEN, LD_IMM, LDX_IMM = 0x20, 0x80, 0x81, 0x00, 0x01
LD_MEM, LDX_MEM, ST, STX, TAX, TXA = 0x60, 0x61, 0x02, 0x03, 0x07, 0x87
RET_K, RET_A, JA = 0x06, 0x16, 0x05
JEQ, JGT, JGE, JSET = 0x15, 0x25, 0x35, 0x45
ALU = {"add": 0x04, "sub": 0x14, "mul": 0x24, "div": 0x34, "or": 0x44, "and": 0x54,
       "lsh": 0x64, "rsh": 0x74, "xor": 0xA4}
NEG = 0x84
X = 0x08


@pytest.mark.parametrize("op,a,k,want", [
    ("add", 0xFFFFFFFF, 2, 1), ("sub", 1, 2, 0xFFFFFFFF), ("mul", 0x10000, 0x10000, 0),
    ("mul", 3, 5, 15), ("div", 17, 5, 3), ("or", 0xF0, 0x0F, 0xFF), ("and", 0xF0, 0x3C, 0x30),
    ("lsh", 1, 31, 0x80000000), ("rsh", 0x80000000, 31, 1), ("xor", 0xFF, 0x0F, 0xF0),
])
def test_bpfsim_alu(op, a, k, want):
    for src in ("k", "x"):
        if src == "k":
            prog = asm((LD_IMM, 0, 0, a), (ALU[op], 0, 0, k), (RET_A, 0, 0, 0))
        else:
            prog = asm((LDX_IMM, 0, 0, k), (LD_IMM, 0, 0, a), (ALU[op] | X, 0, 0, 0),
                       (RET_A, 0, 0, 0))
        assert bpfsim.run(prog, X86_64, 0)[0] == want, (op, src)


def test_bpfsim_misc_and_memory():
    prog = asm((LD_ABS, 0, 0, 16), (ST, 0, 0, 3), (LD_ABS, 0, 0, 20), (TAX, 0, 0, 0),
               (LD_MEM, 0, 0, 3), (ALU["add"] | X, 0, 0, 0), (TAX, 0, 0, 0), (STX, 0, 0, 15),
               (LD_IMM, 0, 0, 0), (LDX_IMM, 0, 0, 0), (LDX_MEM, 0, 0, 15),
               (TXA, 0, 0, 0), (NEG, 0, 0, 0), (RET_A, 0, 0, 0))
    ret, executed = bpfsim.run(prog, X86_64, 0, (0x0000000500000007,))
    assert (ret, executed) == ((-(7 + 5)) & 0xFFFFFFFF, 14)
    assert bpfsim.run(asm((LD_LEN, 0, 0, 0), (RET_A, 0, 0, 0)), 0, 0)[0] == 64
    assert bpfsim.run(asm((LDX_LEN, 0, 0, 0), (TXA, 0, 0, 0), (RET_A, 0, 0, 0)), 0, 0)[0] == 64


def test_bpfsim_loads_every_field():
    data = dict(arch=0xC000003E, nr=0x40000001, ip=0x1122334455667788,
                args=tuple(0x0102030405060708 * (i + 1) & (2**64 - 1) for i in range(6)))
    for off in range(0, 64, 4):
        raw = bpfsim.pack_data(data["arch"], data["nr"], data["args"], data["ip"])
        want = struct.unpack_from("<I", raw, off)[0]
        prog = asm((LD_ABS, 0, 0, off), (RET_A, 0, 0, 0))
        assert bpfsim.run(prog, data["arch"], data["nr"], data["args"], data["ip"])[0] == want
    assert bpfsim.run(asm((LD_ABS, 0, 0, 0), (RET_A, 0, 0, 0)), 0, -1)[0] == 0xFFFFFFFF


@pytest.mark.parametrize("code,a,k,taken", [
    (JEQ, 5, 5, True), (JEQ, 5, 6, False), (JGT, 6, 5, True), (JGT, 5, 5, False),
    (JGE, 5, 5, True), (JGE, 4, 5, False), (JSET, 6, 2, True), (JSET, 6, 1, False),
    (JGT, 0xFFFFFFFF, 1, True),   # unsigned compare
])
def test_bpfsim_jumps(code, a, k, taken):
    for src in ("k", "x"):
        pre = [(LD_IMM, 0, 0, a)] if src == "k" else [(LDX_IMM, 0, 0, k), (LD_IMM, 0, 0, a)]
        prog = asm(*pre, (code | (X if src == "x" else 0), 1, 2, k if src == "k" else 0),
                   (RET_K, 0, 0, 0), (RET_K, 0, 0, 1), (RET_K, 0, 0, 2))
        ret, executed = bpfsim.run(prog, 0, 0)
        assert ret == (1 if taken else 2)
        assert executed == len(pre) + 2
    prog = asm((JA, 0, 0, 1), (RET_K, 0, 0, 7), (RET_K, 0, 0, 9))
    assert bpfsim.run(prog, 0, 0) == (9, 2)


@pytest.mark.parametrize("prog", [
    asm((LD_ABS, 0, 0, 2), (RET_A, 0, 0, 0)),                 # misaligned load
    asm((LD_ABS, 0, 0, 64), (RET_A, 0, 0, 0)),                # past seccomp_data
    asm((0x30, 0, 0, 0), (RET_A, 0, 0, 0)),                   # ld|b|abs: not allowed
    asm((0x94, 0, 0, 3), (RET_A, 0, 0, 0)),                   # mod: not allowed
    asm((LD_MEM, 0, 0, 0), (RET_A, 0, 0, 0)),                 # scratch read before store
    asm((JA, 0, 0, 5), (RET_K, 0, 0, 0)),                     # jump out of the program
    asm((LD_IMM, 0, 0, 0)),                                   # falls off the end
    asm((ALU["div"], 0, 0, 0), (RET_A, 0, 0, 0)),             # division by constant 0
    asm((ALU["lsh"], 0, 0, 32), (RET_A, 0, 0, 0)),            # shift by constant >= 32
    b"",                                                      # empty
    b"\x06\x00\x00\x00\x00\x00\xff",                          # not a multiple of 8
])
def test_bpfsim_rejects_what_the_kernel_rejects(prog):
    with pytest.raises(bpfsim.BpfError):
        bpfsim.run(prog, X86_64, 0)
    with pytest.raises(bpfsim.BpfError):
        bpfsim.validate(prog)


@pytest.mark.parametrize("prog", [
    asm((JEQ, 0, 5, 1), (RET_K, 0, 0, 0)),                    # untaken branch out of range
    asm((RET_K, 0, 0, 0), (LD_IMM, 0, 0, 0)),                 # does not end in ret
    asm((LD_IMM, 0, 0, 0), (JEQ, 0, 1, 0), (ST, 0, 0, 2),     # scratch stored on one path only
        (LD_MEM, 0, 0, 2), (RET_A, 0, 0, 0)),
])
def test_bpfsim_static_checks(prog):
    with pytest.raises(bpfsim.BpfError):
        bpfsim.validate(prog)


def test_bpfsim_validates_libseccomp_output():
    p = policy(ERRNO(1), [R("getpid", ALLOW), R("socket", ALLOW, (0, NE, 40))],
               arches=("x86_64", "x86", "x32"))
    bpfsim.validate(oracle.reference_filter(p))
    bpfsim.validate(asm((LD_IMM, 0, 0, 0), (JEQ, 0, 1, 0), (ST, 0, 0, 2), (ST, 0, 0, 2),
                        (LD_MEM, 0, 0, 2), (RET_A, 0, 0, 0)))


def test_bpfsim_div_by_zero_x_returns_zero():
    prog = asm((LDX_IMM, 0, 0, 0), (LD_IMM, 0, 0, 7), (ALU["div"] | X, 0, 0, 0),
               (RET_K, 0, 0, RET_ALLOW))
    assert bpfsim.run(prog, 0, 0) == (0, 3)


# ----------------------------------------------------------------------------------------------
# bpf-layout.md section 1: the observed listings, instruction for instruction

LISTING_NATIVE = """\
   0: ld  [4]
   1: jeq  #0xc000003e  jt 2 jf 8
   2: ld  [0]
   3: jge  #0x40000000  jt 4 jf 5
   4: jeq  #0xffffffff  jt 5 jf 8
   5: jeq  #0x27        jt 7 jf 6
   6: ret #0x00050001
   7: ret #0x7fff0000
   8: ret #0x00000000"""

LISTING_3ARCH = """\
   0: ld  [4]
   1: jeq  #0xc000003e  jt 2 jf 9
   2: ld  [0]
   3: jeq  #0x27        jt 18 jf 4
   4: jeq  #0x40000027  jt 18 jf 5
   5: jeq  #0x40000029  jt 16 jf 6
   6: jeq  #0x29        jt 7 jf 19
   7: ld  [20]
   8: jeq  #0x0         jt 16 jf 18
   9: jeq  #0x40000003  jt 10 jf 20
  10: ld  [0]
  11: jeq  #0x14        jt 18 jf 12
  12: jeq  #0x66        jt 13 jf 15
  13: ld  [16]
  14: jeq  #0x1         jt 18 jf 19
  15: jeq  #0x167       jt 16 jf 19
  16: ld  [16]
  17: jeq  #0x28        jt 19 jf 18
  18: ret #0x7fff0000
  19: ret #0x00050001
  20: ret #0x00000000"""


def test_listing_native_only():
    p = policy(ERRNO(1), [R("getpid", ALLOW)], stub=False)
    assert bpfsim.disasm(oracle.reference_filter(p)) == LISTING_NATIVE
    assert decide(p, X86_64, 39) == ALLOW
    assert decide(p, X86_64, 0) == ERRNO(1)
    assert decide(p, X86_64, 0x40000027) == KILL        # x32 not in the filter: bad arch
    assert decide(p, X86_64, 0xFFFFFFFF) == ERRNO(1)    # -1 passes the x32 test
    assert decide(p, X86, 20) == KILL


def test_listing_three_arches():
    p = policy(ERRNO(1), [R("getpid", ALLOW), R("socket", ALLOW, (0, NE, 40))],
               arches=("x86_64", "x86", "x32"), stub=False)
    prog = oracle.reference_filter(p)
    assert len(prog) // 8 == 21
    assert bpfsim.disasm(prog) == LISTING_3ARCH
    table = [
        (X86_64, 39, (), ALLOW), (X86_64, 0x40000027, (), ALLOW),
        (X86_64, 41, (2,), ALLOW), (X86_64, 41, (40,), ERRNO(1)),
        (X86_64, 41, (40 | 1 << 32,), ALLOW),                # 64-bit compare on x86_64
        (X86_64, 0x40000029, (40 | 1 << 32,), ERRNO(1)),     # x32: low word only
        (X86_64, 0x40000029, (2,), ALLOW),
        (X86_64, 0x40000000, (), ERRNO(1)),                  # x32 read: default
        (X86, 20, (), ALLOW), (X86, 359, (2,), ALLOW), (X86, 359, (40,), ERRNO(1)),
        (X86, 102, (1, 0), ALLOW),                           # socketcall(SYS_SOCKET): domain unchecked
        (X86, 102, (2,), ERRNO(1)),
        (AARCH64, 172, (), KILL), (ARM, 20, (), KILL),
    ]
    for arch, number, args, want in table:
        assert decide(p, arch, number, *args) == want, (hex(arch), hex(number), args)


# ----------------------------------------------------------------------------------------------
# reference-test-cases.md section 2, items 26-36


@pytest.mark.parametrize("order", [0, 1])
def test_item26_and_of_different_args(order):
    rules = [R("mmap", ALLOW, (0, EQ, 1)), R("mmap", ERRNO(3), (1, EQ, 2))]
    p = policy(KILL, rules[::-1] if order else rules, stub=False)
    mmap = nr("mmap")
    assert decide(p, X86_64, mmap, 1, 2) == ERRNO(3)
    assert decide(p, X86_64, mmap, 1, 5) == ALLOW
    assert decide(p, X86_64, mmap, 7, 2) == ERRNO(3)
    assert decide(p, X86_64, mmap, 7, 5) == KILL


def test_item27_overlapping_ranges():
    p = policy(ALLOW, [R("read", ERRNO(1), (0, GT, 10)), R("read", ERRNO(2), (0, LT, 20))])
    for value, want in [(5, 2), (10, 2), (15, 2), (20, 1), (25, 1)]:
        assert decide(p, X86_64, 0, value) == ERRNO(want), value


def test_item28_ne_and_eq():
    p = policy(KILL, [R("close", ALLOW, (0, NE, 1)), R("close", RET_TRAP, (0, EQ, 1))], stub=False)
    assert [decide(p, X86_64, 3, v) for v in (0, 1, 2)] == [ALLOW, RET_TRAP, ALLOW]


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_item29_podman_socket_rules(perm):
    rules = [R("socket", ERRNO(22), (0, EQ, 16), (2, EQ, 9)),
             R("socket", ALLOW, (2, NE, 9)),
             R("socket", ALLOW, (0, NE, 16))]
    p = policy(ERRNO(38), [rules[i] for i in perm], stub=False)
    assert decide(p, X86_64, 41, 16, 3, 9) == ERRNO(22)
    for args in [(16, 3, 0), (2, 1, 9), (2, 1, 0)]:
        assert decide(p, X86_64, 41, *args) == ALLOW, args


def test_item30_64bit_lt():
    p = policy(KILL, [R("read", ALLOW, (0, LT, 0x123456789ABC))], stub=False)
    for v in (0x000000000000, 0x123000000000, 0x1230F0000000, 0x123400000000, 0x123450000000):
        assert decide(p, X86_64, 0, v) == ALLOW, hex(v)
    for v in (0x123460000000, 0x1234F0000000, 0x123500000000, 0x1235F0000000, 0x123600000000):
        assert decide(p, X86_64, 0, v) == KILL, hex(v)


def test_item31_sign_extension():
    p = policy(KILL, [R("read", ALLOW, (0, EQ, 0xFFFFFFFFFFFFFFFF)),
                      R("write", ALLOW, (0, EQ, 0xFFFFFFFF))], stub=False)
    assert decide(p, X86_64, 0, 0xFFFFFFFFFFFFFFFF) == ALLOW
    assert decide(p, X86_64, 0, 0xFFFFFFFF) == KILL
    assert decide(p, X86_64, 1, 0xFFFFFFFF) == ALLOW
    assert decide(p, X86_64, 1, 0xFFFFFFFFFFFFFFFF) == KILL


def test_item32_high_word_of_32bit_value():
    p = policy(KILL, [R("mprotect", ALLOW, (0, EQ, 11), (1, NE, 12))], stub=False)
    assert nr("mprotect") == 10
    assert decide(p, X86_64, 10, 0xB, 0) == ALLOW
    assert decide(p, X86_64, 10, 0x10000000B, 0) == KILL
    assert decide(p, X86_64, 10, 0xB, 0x10000000C) == ALLOW
    assert decide(p, X86_64, 10, 0xB, 12) == KILL


def test_item33_errno_zero():
    p = policy(ALLOW, [R("read", ERRNO(0))])
    assert decide(p, X86_64, 0) == RET_ERRNO
    assert decide(p, X86, 3) == KILL    # x86 not configured


def test_item34_errno_data():
    # The kernel's clamp to 4095 happens outside the BPF program; libseccomp 2.5.4 itself refuses
    # ERRNO data >= MAX_ERRNO (4095) with EINVAL (system.c sys_chk_seccomp_action), so runc fails
    # on `errnoRet: 12345`; TRACE data is not checked.
    p = policy(ALLOW, [R("read", ERRNO(4094)), R("write", TRACE(0xFFFF))])
    assert decide(p, X86_64, 0) == RET_ERRNO | 4094
    assert decide(p, X86_64, 1) == RET_TRACE | 0xFFFF
    for data in (4095, 12345, 0xFFFF):
        with pytest.raises(oracle.Refused) as info:
            oracle.reference_filter(policy(ALLOW, [R("read", ERRNO(data))]))
        assert info.value.errno == 22
    with pytest.raises(oracle.Refused):
        oracle.reference_filter(policy(ERRNO(4095), [R("read", ALLOW)]))


def test_item35_x32_bit():
    rules = [R("read", ALLOW), R("write", ALLOW, (0, EQ, 1))]
    p = policy(ERRNO(1), rules, stub=False)
    for number in (0x40000000, 0x40000001, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE):
        assert decide(p, X86_64, number) == KILL, hex(number)
    assert decide(p, X86_64, 0xFFFFFFFF) == ERRNO(1)
    p = policy(ERRNO(1), rules, arches=("x86_64", "x32"), stub=False)
    assert decide(p, X86_64, X32 | 0) == ALLOW
    assert decide(p, X86_64, X32 | 1, 1) == ALLOW
    assert decide(p, X86_64, X32 | 1, 1 | 1 << 32) == ALLOW     # x32 compares the low word only
    assert decide(p, X86_64, 1, 1 | 1 << 32) == ERRNO(1)        # x86_64 compares 64 bits
    assert decide(p, X86_64, X32 | 2) == ERRNO(1)
    assert decide(p, X86_64, 0x80000000) == ERRNO(1)            # bit set, no x32 rule: default
    assert decide(p, X86_64, 0xFFFFFFFF) == ERRNO(1)


def test_item36_i386_and_socketcall():
    p = policy(KILL, [R("socket", ALLOW, (0, EQ, 1))], stub=False)
    assert decide(p, X86, 359, 1) == KILL                       # x86 not configured
    p = policy(KILL, [R("socket", ALLOW, (0, EQ, 1))], arches=("x86_64", "x86"), stub=False)
    assert decide(p, X86, 102, 1) == ALLOW                      # SYS_SOCKET, domain unchecked
    assert decide(p, X86, 102, 18) == KILL                      # SYS_ACCEPT4
    assert decide(p, X86, 359, 1) == ALLOW
    assert decide(p, X86, 359, 2) == KILL
    assert decide(p, X86, 364, 1) == KILL
    assert decide(p, X86_64, 41, 1) == ALLOW
    assert decide(p, X86_64, 41, 1 | 1 << 32) == KILL


def test_item37_missing_on_one_abi():
    p = policy(ERRNO(1), [R("socketcall", ALLOW), R("arch_prctl", ALLOW)],
               arches=("x86_64", "x86"), stub=False)
    assert decide(p, X86, 102, 7) == ALLOW
    assert decide(p, X86_64, 102) == ERRNO(1)                   # 102 is getuid on x86_64
    assert decide(p, X86_64, 158) == ALLOW
    assert decide(p, X86, 384) == ALLOW


def test_x86_multiplexer_tables_match_libseccomp():
    """oracle.X86_SOCKET_DIRECT / X86_IPC_DIRECT and the call numbers, against libseccomp."""
    families = [(oracle.X86_SOCKETCALL, 100, range(-120, -100)),
                (oracle.X86_IPC, 200, range(-224, -200))]
    names = [n for n in list(oracle.X86_SOCKET_DIRECT) + list(oracle.X86_IPC_DIRECT)
             + ["accept", "send", "recv", "semop", "semtimedop"]]
    for name in names:
        # getpid keeps libseccomp 2.5.4 from dropping the i386 `ld [0]` (see the test below)
        p = policy(KILL, [R(name, ALLOW), R("getpid", ALLOW)], arches=("x86_64", "x86"), stub=False)
        pnr = oracle.lib_resolve("x86", name)
        mux, base, _ = next(f for f in families if pnr in f[2])
        allowed = [n for n in range(0, 460) if n != 20 and decide(p, X86, n, -pnr % base) == ALLOW]
        direct = oracle.X86_SOCKET_DIRECT.get(name, oracle.X86_IPC_DIRECT.get(name))
        assert allowed == sorted([mux] + ([direct] if direct is not None else [])), name
        assert decide(p, X86, mux, -pnr % base + 1) == KILL


def test_masked_eq_zero_mask_is_unconditional_in_libseccomp():
    """libseccomp drops a zero-mask MASKED_EQ; the rule then acts as unconditional (first wins)."""
    p = policy(ERRNO(1), [R("read", ERRNO(5), (0, MEQ, 0, 0)), R("read", ALLOW)], stub=False)
    assert decide(p, X86_64, 0, 7) == ERRNO(5)
    p = policy(ERRNO(1), [R("read", ERRNO(5), (0, MEQ, 1 << 32, 0)), R("read", ALLOW, (1, EQ, 3))],
               arches=("x86_64", "x86"), stub=False)
    assert decide(p, X86, 3, 0, 3) == ERRNO(5)          # mask truncated to 0 on i386
    assert decide(p, X86_64, 0, 0, 3) == ALLOW


def test_refusals():
    p = policy(KILL, [R("read", ALLOW, (0, EQ, 1)), R("read", ERRNO(2), (0, EQ, 1))])
    with pytest.raises(oracle.Refused) as info:
        oracle.reference_filter(p)
    assert info.value.errno == 17 and info.value.rule_index == 1      # EEXIST
    # identical only after truncation to 32 bits: refused because of the x86 arch
    p = policy(KILL, [R("read", ALLOW, (0, EQ, 1)), R("read", ERRNO(2), (0, EQ, 1 | 1 << 32))],
               arches=("x86_64", "x86"))
    with pytest.raises(oracle.Refused):
        oracle.reference_filter(p)
    p = policy(KILL, [R("read", ALLOW, (0, EQ, 1)), R("read", ERRNO(2), (0, EQ, 1 | 1 << 32))])
    assert decide(p, X86_64, 0, 1 | 1 << 32) == ERRNO(2)


def test_runc_skips():
    # a rule equal to the default is skipped (libseccomp would say EACCES); unknown names too
    p = policy(ERRNO(1), [R("read", ERRNO(1)), R("mseal", ALLOW), R("write", ALLOW)])
    ref = oracle.reference(p)
    assert ref.skipped_default == [0] and ref.skipped_unknown == [1]
    assert decide(p, X86_64, 1) == ALLOW
    assert not oracle.known_to_libseccomp("mseal") and oracle.known_to_libseccomp("socketcall")


def test_first_unconditional_wins():
    cases = [([R("read", ERRNO(2)), R("read", ERRNO(3))], ERRNO(2)),
             ([R("read", ERRNO(2), (0, EQ, 5)), R("read", ERRNO(3))], ERRNO(3)),
             ([R("read", ERRNO(3)), R("read", ERRNO(2), (0, EQ, 5))], ERRNO(3))]
    for rules, want in cases:
        p = policy(ALLOW, rules)
        assert decide(p, X86_64, 0, 5) == want
        assert decide(p, X86_64, 0, 6) == want


# ----------------------------------------------------------------------------------------------
# runc's ENOSYS stub (items 15, 17)

def test_stub_runc_seccomp_syscall_test1_shape():
    p = policy(ERRNO(1), [R("write", ALLOW), R("socket", ALLOW, (2, MEQ, 0xF00, 0)),
                          R("process_vm_readv", ALLOW, (0, EQ, 100)),
                          R("process_vm_readv", ALLOW, (0, EQ, 9001)),
                          R("ftruncate", ALLOW, (0, EQ, 123456789), (1, EQ, 1337)),
                          R("dup3", ALLOW, (0, EQ, 1)), R("dup3", ALLOW, (0, GT, 2))])
    top = oracle.libseccomp_max_nr(p, "x86_64")
    assert top == nr("process_vm_readv")
    assert decide(p, X86_64, 1) == ALLOW
    for proto, want in [(0, ALLOW), (0xFF, ALLOW), (1, ALLOW), (0x100, ERRNO(1)), (0xC00, ERRNO(1))]:
        assert decide(p, X86_64, 41, 1, 1, proto) == want
    assert decide(p, X86_64, nr("process_vm_readv"), 9001) == ALLOW
    assert decide(p, X86_64, nr("process_vm_readv"), 0) == ERRNO(1)
    assert decide(p, X86_64, nr("ftruncate"), 123456789, 0) == ERRNO(1)
    assert [decide(p, X86_64, nr("dup3"), v) for v in range(4)] == [ERRNO(1), ALLOW, ERRNO(1), ALLOW]
    assert decide(p, X86_64, nr("unshare")) == ERRNO(1)
    assert decide(p, X86_64, nr("setns")) == ERRNO(1)
    assert decide(p, X86_64, 1000) == oracle.RET_ENOSYS
    assert decide(p, X86_64, top) == ERRNO(1)
    assert decide(p, X86_64, top + 1) == oracle.RET_ENOSYS
    # x32 is not configured: x32 calls skip the stub and hit libseccomp's bad-arch check
    assert decide(p, X86_64, X32 | 1000) == KILL
    assert decide(p, X86_64, 0xFFFFFFFF) == ERRNO(1)


@pytest.mark.parametrize("default", [ERRNO(1), KILL, RET_KILL_PROCESS, RET_TRAP])
def test_stub_for_denying_defaults(default):
    names = ["setns", "kcmp", "renameat2", "copy_file_range"]
    p = policy(default, [R(n, ALLOW) for n in names], arches=("x86_64", "x86", "x32"))
    for arch_name, audit in (("x86_64", X86_64), ("x86", X86), ("x32", X86_64)):
        top = max(nr(n, arch_name) for n in names)
        assert top == nr("copy_file_range", arch_name)
        assert decide(p, audit, top) == ALLOW
        assert decide(p, audit, top + 1) == oracle.RET_ENOSYS
        assert decide(p, audit, top - 1) == default or nr("renameat2", arch_name) == top - 1
        # 1000 and 7331 (runc's enosys_linux_test.go)
        bit = X32 if arch_name == "x32" else 0
        assert decide(p, audit, bit | 1000) == oracle.RET_ENOSYS
        assert decide(p, audit, bit | 7331) == oracle.RET_ENOSYS
    assert decide(p, X86_64, 0xFFFFFFFF) == oracle.RET_ENOSYS   # x32 maximum applies
    assert decide(p, AARCH64, 5000) == KILL                       # arch not in the filter


@pytest.mark.parametrize("default", [ALLOW, RET_LOG, TRACE(1)])
def test_no_stub_for_allowing_defaults(default):
    p = policy(default, [R("setns", ERRNO(1))])
    assert oracle.stub_sections(p) == {}
    assert decide(p, X86_64, 1000) == default


def test_stub_counts_names_of_skipped_rules_and_ignores_unknown_names():
    # rules equal to the default still count (runc iterates config.Syscalls); mseal is unknown
    p = policy(ERRNO(1), [R("read", ALLOW), R("kcmp", ERRNO(1)), R("mseal", ALLOW)])
    assert oracle.libseccomp_max_nr(p, "x86_64") == nr("kcmp")
    assert decide(p, X86_64, nr("kcmp") + 1) == oracle.RET_ENOSYS
    assert decide(p, X86_64, 462) == oracle.RET_ENOSYS


def test_stub_absent_when_the_largest_number_is_zero():
    p = policy(ERRNO(1), [R("read", ALLOW)])        # runc: "largestSyscall != 0"
    assert oracle.stub_sections(p) == {}
    assert decide(p, X86_64, 1000) == ERRNO(1)


def test_stub_uses_libseccomp_numbers_for_i386_socket_calls():
    """libseccomp 2.5.4 resolves the socket family on i386 to pseudo numbers, so runc's cut-off
    on i386 ignores them: direct socket(359) lands above the cut-off and gets ENOSYS."""
    p = policy(ERRNO(1), [R("getpid", ALLOW), R("socket", ALLOW)], arches=("x86_64", "x86"))
    assert oracle.lib_resolve("x86", "socket") == -101
    assert oracle.libseccomp_max_nr(p, "x86") == 20
    assert decide(p, X86, 359) == oracle.RET_ENOSYS
    assert decide(p, X86, 102, 1) == oracle.RET_ENOSYS     # socketcall (102) too
    assert decide(p, X86, 20) == ALLOW
    p = policy(ERRNO(1), [R("getpid", ALLOW), R("socket", ALLOW)], arches=("x86_64", "x86"),
               extra_names=["clone3"])
    assert decide(p, X86, 359) == ALLOW and decide(p, X86, 102, 1) == ALLOW


@pytest.mark.parametrize("name", ["accept", "send", "recv", "semop", "semtimedop"])
def test_libseccomp_254_drops_the_nr_load_of_an_i386_block(name):
    """libseccomp 2.5.4 bug: when i386's only entry is the socketcall/ipc companion of a call
    i386 has no direct syscall for, the i386 block compares the arch word (still in A) with 102 /
    117 and every i386 call gets the default. The oracle detects that path (hits_acc_bug) so the
    differential tests can fall back to the documented semantics (model_decide) there."""
    p = policy(KILL, [R(name, ALLOW)], arches=("x86_64", "x86"), stub=False)
    ref = oracle.reference(p)
    assert ref.ambiguous
    call = -oracle.lib_resolve("x86", name) % 100
    mux = oracle.X86_SOCKETCALL if oracle.lib_resolve("x86", name) >= -120 else oracle.X86_IPC
    args = (call, 0, 0, 0, 0, 0)
    assert ref.decide(X86, mux, args) == KILL                  # what libseccomp's BPF says
    assert ref.hits_acc_bug(X86, mux, args)
    assert oracle.model_decide(p, X86, mux, args)[0] == ALLOW  # what it means to say
    assert not ref.hits_acc_bug(X86_64, oracle.lib_resolve("x86_64", name))


def test_aarch64_host_policy():
    """A profile resolved for an arm64 host: native aarch64 plus arm, no x86 at all."""
    p = policy(ERRNO(1), [R("getpid", ALLOW), R("arch_prctl", ALLOW), R("socket", ALLOW, (0, NE, 40))],
               arches=("aarch64", "arm"), host="aarch64", stub=False)
    assert decide(p, AARCH64, nr("getpid", "aarch64")) == ALLOW
    assert decide(p, AARCH64, 198, 2) == ALLOW and decide(p, AARCH64, 198, 40) == ERRNO(1)
    assert decide(p, ARM, 281, 40 | 1 << 32) == ERRNO(1)
    assert decide(p, ARM, 20) == ALLOW
    assert decide(p, X86_64, 39) == KILL
    assert decide(p, X86, 20) == KILL


@pytest.mark.parametrize("optimize", [1, 2])
def test_docker_profile_builds_both_layouts(optimize):
    """Binary tree (runc: > 32 rules) and linear layouts decide alike on a large policy."""
    names = ["read", "write", "openat", "close", "mmap", "getpid", "clone", "socket", "kcmp",
             "personality", "socketcall", "arch_prctl", "setns"] + \
        ["getuid", "getgid", "geteuid", "getegid", "getppid", "getpgrp", "setsid", "setreuid",
         "setregid", "getgroups", "setgroups", "setresuid", "getresuid", "setresgid", "getresgid",
         "getpgid", "setfsuid", "setfsgid", "getsid", "capget", "capset"]
    rules = [R(n, ALLOW) for n in names if n not in ("personality", "socket", "clone")]
    rules += [R("personality", ALLOW, (0, EQ, 0)), R("personality", ALLOW, (0, EQ, 8)),
              R("socket", ALLOW, (0, NE, 40)), R("clone", ALLOW, (0, MEQ, 0x7E020000, 0))]
    p = policy(ERRNO(1), rules, arches=("x86_64", "x86", "x32"))
    one = oracle.reference(p, optimize=1)
    two = oracle.reference(p, optimize=2)
    assert oracle.reference(p).optimize == 2
    assert len(one.insns) != len(two.insns)
    for arch, top in ((X86_64, 460), (X86, 460)):
        for n in list(range(top)) + [X32 | n for n in range(0, 560, 7)]:
            for args in [(0,), (8,), (40,), (0x10000,), (1 << 32,)]:
                args = args + (0,) * 5
                assert one.decide(arch, n, args) == two.decide(arch, n, args), (arch, n, args)


def test_libseccomp_254_merge_compares_the_wrong_argument_word():
    """libseccomp 2.5.4 bug: merging two chains of one syscall makes a node meant for a0's low
    word run on a1's (pc `jgt #5` below), so write(0, 0xff) gets ERRNO(38) though neither rule
    matches (a weakening: the default is KILL_PROCESS). The oracle flags the path."""
    p = policy(RET_KILL_PROCESS, [R("write", ERRNO(38), (1, GE, 0x14), (0, GT, 5)),
                                  R("write", RET_LOG, (1, GE, 0x100), (0, LE, 2))], stub=False)
    ref = oracle.reference(p)
    args = (0, 0xFF, 0, 0, 0, 0)
    assert ref.decide(X86_64, 1, args) == ERRNO(38)
    assert ref.hits_acc_bug(X86_64, 1, args)
    assert oracle.model_decide(p, X86_64, 1, args)[0] == RET_KILL_PROCESS
    for args, want in [((0, 0x100), RET_LOG), ((3, 0x100), RET_KILL_PROCESS),
                       ((6, 0x14), ERRNO(38)), ((6, 0x13), RET_KILL_PROCESS)]:
        assert ref.decide(X86_64, 1, args + (0,) * 4) == want


def test_libseccomp_254_merge_puts_a_chain_under_the_wrong_node():
    """libseccomp 2.5.4 bug: with {a1&0x10==0x10 && a3==0x40 && a0>=0x31 -> TRAP} and
    {a1&0xa==0 && a2==0x139 && a0>0 -> KILL}, the TRAP rule's a1/a3 tests are also placed under
    the KILL rule's `a0 > 0` node, so (0x30, 0x10, 0, 0x40) gets TRAP though a0 < 0x31. Each
    rule compiled alone is right: unmerged_decide (and the model) say ALLOW."""
    p = policy(ALLOW, [R("semop", RET_TRAP, (1, MEQ, 0x10, 0x1A), (3, EQ, 0x40), (0, GE, 0x31)),
                       R("semop", KILL, (1, MEQ, 0xA, 0x80000000), (2, EQ, 0x139), (0, GT, 0))],
               stub=False)
    ref = oracle.reference(p)
    args = (0x30, 0x10, 0, 0x40, 0, 0)
    assert ref.decide(X86_64, 65, args) == RET_TRAP
    assert not ref.hits_acc_bug(X86_64, 65, args)
    assert ref.unmerged_decide(X86_64, 65, args) == ALLOW
    assert oracle.model_decide(p, X86_64, 65, args)[0] == ALLOW
    assert ref.decide(X86_64, 65, (0x31, 0x10, 0, 0x40, 0, 0)) == RET_TRAP


def test_libseccomp_254_hangs_on_two_chains_differing_in_a_high_word(monkeypatch):
    """libseccomp 2.5.4 bug: the second seccomp_rule_add below never returns (deterministic,
    x86_64: clone {a1 == 5 && a0 != 7 -> LOG} then {a1 == 1<<32 && a0 != 7 -> LOG}; the reverse
    order is fine). The oracle builds in a child with a timeout and reports OracleHang."""
    if not oracle.BUILD_IN_CHILD:
        pytest.skip("ORACLE_FORK=0: the hang would hang this test")
    monkeypatch.setattr(oracle, "BUILD_TIMEOUT", 1.0)
    first, second = R("clone", RET_LOG, (1, EQ, 5), (0, NE, 7)), R("clone", RET_LOG, (1, EQ, 1 << 32),
                                                                     (0, NE, 7))
    ref = oracle.Reference(policy(RET_KILL_PROCESS, [first, second], stub=False))
    assert isinstance(ref.refused, oracle.OracleHang) and ref.refused.rule_index == 1
    ref = oracle.Reference(policy(RET_KILL_PROCESS, [second, first], stub=False))
    assert ref.refused is None
    assert ref.decide(X86_64, 56, (0, 5, 0, 0, 0, 0)) == RET_LOG
    assert ref.decide(X86_64, 56, (7, 5, 0, 0, 0, 0)) == RET_KILL_PROCESS

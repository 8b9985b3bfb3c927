"""A small classic-BPF interpreter for seccomp programs, in pure Python.

It is the test suite's independent reference for "what does this program return": the oracle runs
libseccomp's exported BPF through it, and the differential tests cross-check the C interpreter
(`sandbox._core.bpf_run`) against it. It shares no code with csrc/.

Input: the raw bytes of a `struct sock_filter` array in host byte order (8 bytes per instruction:
u16 code, u8 jt, u8 jf, u32 k), plus a `struct seccomp_data` (nr s32 @0, arch u32 @4, ip u64 @8,
args u64 @16 + 8*i), laid out little-endian as on the hosts we support.

Semantics follow the kernel: the opcodes seccomp accepts (kernel/seccomp.c `seccomp_check_filter`,
bpf-layout.md section 5), 32-bit unsigned accumulator and index register, 16 scratch words, forward
jumps only. Where the kernel's checker would refuse the program (unknown opcode, jump out of range,
misaligned or out-of-range load, falling off the end, reading a scratch word never stored), this
interpreter raises `BpfError` instead of guessing. Runtime division by X == 0 returns 0, as the
kernel's cBPF-to-eBPF conversion does; shifts by X use the low 5 bits of X, as the eBPF
interpreter and JITs do for 32-bit ALU shifts.
"""
from __future__ import annotations

import struct

__all__ = ["BpfError", "SECCOMP_DATA_SIZE", "const_allow", "decode", "disasm", "pack_data", "run",
           "run_decoded", "validate"]

SECCOMP_DATA_SIZE = 64
BPF_MAXINSNS = 4096
BPF_MEMWORDS = 16
M32 = 0xFFFFFFFF

# Instruction classes and fields (linux/bpf_common.h).
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC = range(8)
BPF_W = 0x00
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_LEN, BPF_MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50
BPF_LSH, BPF_RSH, BPF_NEG, BPF_MOD, BPF_XOR = 0x60, 0x70, 0x80, 0x90, 0xA0
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40
BPF_K, BPF_X = 0x00, 0x08
BPF_A = 0x10  # ret source
BPF_TAX, BPF_TXA = 0x00, 0x80

_ALU = {
    BPF_ADD: lambda a, b: (a + b) & M32,
    BPF_SUB: lambda a, b: (a - b) & M32,
    BPF_MUL: lambda a, b: (a * b) & M32,
    BPF_OR: lambda a, b: a | b,
    BPF_AND: lambda a, b: a & b,
    BPF_XOR: lambda a, b: a ^ b,
    BPF_LSH: lambda a, b: (a << (b & 31)) & M32,
    BPF_RSH: lambda a, b: a >> (b & 31),
    # BPF_DIV is handled inline (division by a zero X register ends the program with 0).
}
_JMP = {
    BPF_JEQ: lambda a, b: a == b,
    BPF_JGT: lambda a, b: a > b,
    BPF_JGE: lambda a, b: a >= b,
    BPF_JSET: lambda a, b: (a & b) != 0,
}

# The exact opcode whitelist of seccomp_check_filter.
ALLOWED = frozenset(
    [BPF_LD | BPF_W | BPF_ABS, BPF_LD | BPF_W | BPF_LEN, BPF_LDX | BPF_W | BPF_LEN,
     BPF_RET | BPF_K, BPF_RET | BPF_A,
     BPF_ALU | BPF_NEG,
     BPF_LD | BPF_IMM, BPF_LDX | BPF_IMM,
     BPF_MISC | BPF_TAX, BPF_MISC | BPF_TXA,
     BPF_LD | BPF_MEM, BPF_LDX | BPF_MEM, BPF_ST, BPF_STX,
     BPF_JMP | BPF_JA]
    + [BPF_ALU | op | src for op in (BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_AND, BPF_OR, BPF_XOR,
                                      BPF_LSH, BPF_RSH) for src in (BPF_K, BPF_X)]
    + [BPF_JMP | op | src for op in (BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET) for src in (BPF_K, BPF_X)]
)


class BpfError(Exception):
    """The program is one the kernel would refuse (or the run left the program)."""


def decode(prog: bytes):
    """bytes -> list of (code, jt, jf, k). Raises BpfError on a bad length."""
    if len(prog) % 8:
        raise BpfError("program length %d is not a multiple of 8" % len(prog))
    n = len(prog) // 8
    if not 1 <= n <= BPF_MAXINSNS:
        raise BpfError("program has %d instructions (kernel allows 1..%d)" % (n, BPF_MAXINSNS))
    return [tuple(x) for x in struct.iter_unpack("=HBBI", prog)]


def pack_data(arch: int, nr: int, args=(0, 0, 0, 0, 0, 0), ip: int = 0) -> bytes:
    """struct seccomp_data as the kernel fills it (nr is stored as its 32-bit pattern)."""
    args = tuple(args) + (0,) * (6 - len(args))
    return struct.pack("<IIQ6Q", nr & M32, arch & M32, ip, *[a & (2**64 - 1) for a in args])


def validate(insns):
    """The kernel's static checks (bpf_check_classic + seccomp_check_filter): opcodes on the
    seccomp whitelist, aligned loads inside seccomp_data, constant divisor != 0 and shift < 32,
    scratch indexes < 16 and every scratch read preceded by a store on every path, jump targets
    inside the program, last instruction a return. Raises BpfError; returns None."""
    if isinstance(insns, (bytes, bytearray)):
        insns = decode(insns)
    n = len(insns)
    if not 1 <= n <= BPF_MAXINSNS:
        raise BpfError("program has %d instructions" % n)
    # memory words known stored on every path reaching pc (None: not reached yet)
    stored = [None] * n
    stored[0] = frozenset()
    for pc, (code, jt, jf, k) in enumerate(insns):
        if code not in ALLOWED:
            raise BpfError("opcode %#06x at pc %d is not allowed in seccomp" % (code, pc))
        cls, mode = code & 0x07, code & 0xE0
        if code == BPF_LD | BPF_W | BPF_ABS and (k % 4 or k + 4 > SECCOMP_DATA_SIZE):
            raise BpfError("load of offset %d at pc %d" % (k, pc))
        if cls == BPF_ALU and code & BPF_X == 0:
            if code & 0xF0 == BPF_DIV and k == 0:
                raise BpfError("division by constant 0 at pc %d" % pc)
            if code & 0xF0 in (BPF_LSH, BPF_RSH) and k >= 32:
                raise BpfError("shift by constant %d at pc %d" % (k, pc))
        here = stored[pc]
        if (cls in (BPF_LD, BPF_LDX) and mode == BPF_MEM) or cls in (BPF_ST, BPF_STX):
            if k >= BPF_MEMWORDS:
                raise BpfError("scratch word %d at pc %d" % (k, pc))
            if cls in (BPF_LD, BPF_LDX) and here is not None and k not in here:
                raise BpfError("read of scratch word %d that may be unset at pc %d" % (k, pc))
        if cls == BPF_RET:
            continue
        if here is not None and cls in (BPF_ST, BPF_STX):
            here = here | {k}
        if cls == BPF_JMP:
            targets = [pc + 1 + k] if code & 0xF0 == BPF_JA else [pc + 1 + jt, pc + 1 + jf]
        else:
            targets = [pc + 1]
        for t in targets:
            if t >= n:
                raise BpfError("jump or fall-through past the end at pc %d" % pc)
            if here is not None:
                stored[t] = here if stored[t] is None else stored[t] & here
    if insns[-1][0] & 0x07 != BPF_RET:
        raise BpfError("the last instruction is not a return")


def run_decoded(insns, data: bytes, trace=None):
    """Run decoded instructions on a 64-byte seccomp_data. Returns (ret, executed), executed
    counting every instruction run, the RET included. If `trace` is a list, the pc of every
    executed instruction is appended to it."""
    a = x = 0
    mem = [None] * BPF_MEMWORDS
    pc = 0
    executed = 0
    n = len(insns)
    while True:
        if pc >= n:
            raise BpfError("fell off the end of the program at pc %d" % pc)
        code, jt, jf, k = insns[pc]
        if trace is not None:
            trace.append(pc)
        executed += 1
        pc += 1
        if code not in ALLOWED:
            raise BpfError("opcode %#06x at pc %d is not allowed in seccomp" % (code, pc - 1))
        cls = code & 0x07
        if cls == BPF_RET:
            return (k if code & BPF_A == 0 else a), executed
        if cls == BPF_LD or cls == BPF_LDX:
            mode = code & 0xE0
            if mode == BPF_ABS:
                if k % 4 or k + 4 > SECCOMP_DATA_SIZE:
                    raise BpfError("load of offset %d at pc %d" % (k, pc - 1))
                val = struct.unpack_from("<I", data, k)[0]
            elif mode == BPF_LEN:
                val = SECCOMP_DATA_SIZE
            elif mode == BPF_IMM:
                val = k
            else:  # BPF_MEM
                if k >= BPF_MEMWORDS or mem[k] is None:
                    raise BpfError("read of scratch word %d before any store at pc %d" % (k, pc - 1))
                val = mem[k]
            if cls == BPF_LD:
                a = val
            else:
                x = val
        elif cls == BPF_ST or cls == BPF_STX:
            if k >= BPF_MEMWORDS:
                raise BpfError("store to scratch word %d at pc %d" % (k, pc - 1))
            mem[k] = a if cls == BPF_ST else x
        elif cls == BPF_ALU:
            op = code & 0xF0
            if op == BPF_NEG:
                a = -a & M32
                continue
            src = x if code & BPF_X else k
            if op == BPF_DIV:
                if src == 0:
                    if code & BPF_X:
                        return 0, executed
                    raise BpfError("division by constant 0 at pc %d" % (pc - 1))
                a = a // src
            else:
                if code & BPF_X == 0 and op in (BPF_LSH, BPF_RSH) and k >= 32:
                    raise BpfError("shift by constant %d at pc %d" % (k, pc - 1))
                a = _ALU[op](a, src)
        elif cls == BPF_JMP:
            op = code & 0xF0
            if op == BPF_JA:
                off = k
            else:
                off = jt if _JMP[op](a, x if code & BPF_X else k) else jf
            if pc + off >= n:
                raise BpfError("jump past the end of the program at pc %d" % (pc - 1))
            pc += off
        else:  # BPF_MISC
            if code & 0xF8 == BPF_TAX:
                x = a
            else:
                a = x


def run(prog: bytes, arch: int, nr: int, args=(0, 0, 0, 0, 0, 0), ip: int = 0):
    """Run a raw program on (arch, nr, args). Returns (ret_value, executed_count)."""
    return run_decoded(decode(prog), pack_data(arch, nr, args, ip))


_NAMES = {BPF_JEQ: "jeq", BPF_JGT: "jgt", BPF_JGE: "jge", BPF_JSET: "jset"}
_ALU_NAMES = {BPF_ADD: "add", BPF_SUB: "sub", BPF_MUL: "mul", BPF_DIV: "div", BPF_OR: "or",
              BPF_AND: "and", BPF_XOR: "xor", BPF_LSH: "lsh", BPF_RSH: "rsh"}


def disasm(prog) -> str:
    """Human listing in the style of bpf-layout.md (for failure messages)."""
    insns = decode(prog) if isinstance(prog, (bytes, bytearray)) else prog
    out = []
    for pc, (code, jt, jf, k) in enumerate(insns):
        cls = code & 0x07
        if code == BPF_LD | BPF_W | BPF_ABS:
            s = "ld  [%d]" % k
        elif cls == BPF_RET:
            s = "ret #%#010x" % k if code & BPF_A == 0 else "ret a"
        elif cls == BPF_JMP and code & 0xF0 == BPF_JA:
            s = "ja  %d" % (pc + 1 + k)
        elif cls == BPF_JMP:
            src = "x" if code & BPF_X else "#%#x" % k
            s = "%-4s %-12s jt %d jf %d" % (_NAMES.get(code & 0xF0, "j?"), src, pc + 1 + jt,
                                             pc + 1 + jf)
        elif cls == BPF_ALU and code & 0xF0 != BPF_NEG:
            src = "x" if code & BPF_X else "#%#x" % k
            s = "%s %s" % (_ALU_NAMES.get(code & 0xF0, "alu?"), src)
        else:
            s = "code=%#06x jt=%d jf=%d k=%#x" % (code, jt, jf, k)
        out.append("%4d: %s" % (pc, s))
    return "\n".join(out)


def const_allow(insns, arch: int, nr: int):
    """The kernel's action-cache emulation (kernel/seccomp.c seccomp_is_const_allow): does the
    program return exactly SECCOMP_RET_ALLOW for (arch, nr) whatever the other fields hold?
    Returns (bool, walked), walked = instructions stepped through, the deciding one included.
    Only `ld [0]`, `ld [4]`, `ja`, K-form jeq/jge/jgt/jset, `and #k` and `ret #k` are understood;
    anything else on the path (argument loads included) means "not cacheable"."""
    if isinstance(insns, (bytes, bytearray)):
        insns = decode(insns)
    a = 0
    pc = 0
    walked = 0
    while pc < len(insns):
        code, jt, jf, k = insns[pc]
        walked += 1
        pc += 1
        if code == BPF_LD | BPF_W | BPF_ABS:
            if k == 0:
                a = nr & M32
            elif k == 4:
                a = arch & M32
            else:
                return False, walked
        elif code == BPF_JMP | BPF_JA:
            pc += k
        elif code in (BPF_JMP | BPF_JEQ | BPF_K, BPF_JMP | BPF_JGE | BPF_K,
                      BPF_JMP | BPF_JGT | BPF_K, BPF_JMP | BPF_JSET | BPF_K):
            pc += jt if _JMP[code & 0xF0](a, k) else jf
        elif code == BPF_ALU | BPF_AND | BPF_K:
            a &= k
        elif code == BPF_RET | BPF_K:
            return k == 0x7FFF0000, walked
        else:
            return False, walked
    return False, walked

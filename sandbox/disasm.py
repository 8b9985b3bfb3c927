"""Human-readable listing of a seccomp BPF program (`sandbox compile --format disasm`)."""
from __future__ import annotations

import struct

from . import _core
from .policy import action_name

_AUDIT = {}
for _name in _core.arch_names():
    _AUDIT.setdefault(_core.arch_info(_name)["audit_arch"], _name)

_FIELDS = {0: "nr", 4: "arch", 8: "ip.lo", 12: "ip.hi"}
for _i in range(6):
    _FIELDS[16 + 8 * _i] = "a%d.lo" % _i
    _FIELDS[20 + 8 * _i] = "a%d.hi" % _i

_ALU = {0x00: "add", 0x10: "sub", 0x20: "mul", 0x30: "div", 0x40: "or", 0x50: "and",
        0x60: "lsh", 0x70: "rsh", 0x80: "neg", 0xa0: "xor"}
_JMP = {0x10: "jeq", 0x20: "jgt", 0x30: "jge", 0x40: "jset"}


def instructions(program: bytes):
    for i in range(len(program) // 8):
        yield struct.unpack_from("=HBBI", program, i * 8)


def disassemble(program: bytes) -> str:
    lines = []
    for pc, (code, jt, jf, k) in enumerate(instructions(program)):
        cls = code & 0x07
        if code == 0x20:  # ld w abs
            text = "ld  [%d]" % k
            note = _FIELDS.get(k, "")
        elif code == 0x06:
            text = "ret #0x%08x" % k
            note = action_name(k)
        elif code == 0x16:
            text, note = "ret a", ""
        elif code == 0x05:
            text, note = "ja  %d" % (pc + 1 + k), ""
        elif cls == 0x05:
            op = _JMP.get(code & 0xf0, "j?")
            src = "x" if code & 0x08 else "#0x%x" % k
            text = "%-4s%-12s jt %-4d jf %d" % (op, src, pc + 1 + jt, pc + 1 + jf)
            note = _AUDIT.get(k, "") if op == "jeq" and k in _AUDIT else ""
        elif cls == 0x04:
            op = _ALU.get(code & 0xf0, "alu?")
            text = "%s %s" % (op, "x" if code & 0x08 else "#0x%x" % k)
            note = ""
        else:
            text, note = "code=0x%04x jt=%d jf=%d k=0x%x" % (code, jt, jf, k), ""
        lines.append("%4d: %-40s%s" % (pc, text, ("; " + note) if note else ""))
    return "\n".join(lines)

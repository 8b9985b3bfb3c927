"""The normalized rules a profile resolves to: what the C compiler consumes.

`sandbox.profile` turns a JSON profile into a `Policy` (moby's include/exclude resolution, runc's
conversion: one rule per name, default-equal rules dropped, repeated argument indexes split into
OR-ed single-condition rules). `sandbox._core` compiles a `Policy` to BPF.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import NamedTuple, Optional

# Kernel return values (linux/seccomp.h).
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

# JSON action name -> kernel action (without data).
ACTIONS = {
    "SCMP_ACT_KILL": RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": RET_TRAP,
    "SCMP_ACT_ERRNO": RET_ERRNO,
    "SCMP_ACT_TRACE": RET_TRACE,
    "SCMP_ACT_ALLOW": RET_ALLOW,
    "SCMP_ACT_LOG": RET_LOG,
    "SCMP_ACT_NOTIFY": RET_USER_NOTIF,
}
ACTIONS_WITH_DATA = (RET_ERRNO, RET_TRACE)

# Operators, numbered as libseccomp's enum scmp_compare (and csrc/compile.h enum sb_op).
OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
OP_NAMES = {v: k for k, v in OPS.items()}

# seccomp(2) filter flags.
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_NEW_LISTENER": 8,
    "SECCOMP_FILTER_FLAG_TSYNC_ESRCH": 16,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}

# Arch names we compile for, with their libseccomp/OCI tokens.
ARCHES = {
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_ARM": "arm",
}


def action_name(value: int) -> str:
    """Human name of a kernel return value: ALLOW, ERRNO(1), KILL_PROCESS, ..."""
    kind = value & 0xFFFF0000
    data = value & 0xFFFF
    names = {
        RET_KILL_PROCESS: "KILL_PROCESS",
        RET_KILL_THREAD: "KILL_THREAD",
        RET_TRAP: "TRAP",
        RET_ERRNO: "ERRNO",
        RET_USER_NOTIF: "NOTIFY",
        RET_TRACE: "TRACE",
        RET_LOG: "LOG",
        RET_ALLOW: "ALLOW",
    }
    name = names.get(kind, "0x%08x" % value)
    if kind in ACTIONS_WITH_DATA:
        return "%s(%d)" % (name, data)
    if kind == RET_TRAP and data:
        return "TRAP(%d)" % data
    return name


def json_action_name(value: int) -> str:
    """The profile-format name of a kernel return value: SCMP_ACT_ERRNO (errno 1), ..."""
    kind = value & 0xFFFF0000
    name = {v: k for k, v in ACTIONS.items() if k != "SCMP_ACT_KILL"}.get(kind, "0x%08x" % value)
    if kind == RET_ERRNO:
        return "%s (errno %d)" % (name, value & 0xFFFF)
    if kind == RET_TRACE:
        return "%s (data %d)" % (name, value & 0xFFFF)
    return name


@dataclasses.dataclass(frozen=True)
class Cond:
    index: int          # 0..5
    op: int             # OPS value
    value: int          # u64; for MASKED_EQ the mask
    value_two: int = 0  # u64; for MASKED_EQ the value compared after masking

    def describe(self) -> str:
        if self.op == OPS["SCMP_CMP_MASKED_EQ"]:
            return "a%d & %#x == %#x" % (self.index, self.value, self.value_two)
        sym = {1: "!=", 2: "<", 3: "<=", 4: "==", 5: ">=", 6: ">"}[self.op]
        return "a%d %s %#x" % (self.index, sym, self.value)


class Rule(NamedTuple):
    """One rule as runc hands it to libseccomp (a NamedTuple: a profile makes hundreds)."""
    name: str                 # one syscall name
    action: int               # kernel return value (action | data)
    conds: tuple = ()         # tuple[Cond, ...], AND-ed
    names_path: str = ""      # JSON path of the list the name is in, e.g. "syscalls[3].names"
    index: int = -1           # the name's position in that list; -1: names_path is its own path

    @property
    def path(self) -> str:
        """JSON path of the name, e.g. "syscalls[3].names[7]" (made on demand: most rules are
        never reported)."""
        return self.names_path if self.index < 0 else "%s[%d]" % (self.names_path, self.index)


@dataclasses.dataclass
class Policy:
    default_action: int
    arches: tuple                      # our arch names ("x86_64", ...), native first
    rules: tuple                       # tuple[Rule, ...] in file order
    stub_names: tuple = ()             # every name the resolved profile lists (ENOSYS cut-off)
    flags: Optional[tuple] = None      # None: absent (runc adds SPEC_ALLOW); else flag names
    listener_path: Optional[str] = None
    listener_metadata: Optional[str] = None
    badarch_action: int = RET_KILL_THREAD
    enosys_stub: bool = True
    args_like_libseccomp: bool = False
    host_arch: str = "x86_64"
    caps: tuple = ()                   # capability names the includes/excludes were resolved with
    kernel: tuple = (0, 0)             # kernel version the minKernel tests were resolved with
    source: str = ""                   # where the profile came from (path, "<dict>", builtin name)
    warnings: list = dataclasses.field(default_factory=list)  # list[str], user-visible

    def uses_notify(self) -> bool:
        return any((r.action & 0xFFFF0000) == RET_USER_NOTIF for r in self.rules)

    def filter_flags(self) -> int:
        """seccomp(2) flags as runc passes them (TSYNC dropped, SPEC_ALLOW when absent)."""
        if self.flags is None:
            value = FLAGS["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
        else:
            value = 0
            for name in self.flags:
                if name != "SECCOMP_FILTER_FLAG_TSYNC":
                    value |= FLAGS[name]
        if self.uses_notify():
            value |= FLAGS["SECCOMP_FILTER_FLAG_NEW_LISTENER"]
        return value

    def to_json(self) -> dict:
        return {
            "default_action": self.default_action,
            "arches": list(self.arches),
            "rules": [
                [r.name, r.action, [[c.index, c.op, c.value, c.value_two] for c in r.conds]]
                for r in self.rules
            ],
            "stub_names": list(self.stub_names),
            "badarch_action": self.badarch_action,
            "enosys_stub": self.enosys_stub,
            "args_like_libseccomp": self.args_like_libseccomp,
        }

    def digest(self) -> str:
        """Stable digest of everything that decides the compiled filter (cache key)."""
        blob = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

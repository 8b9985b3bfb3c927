"""A compiled seccomp filter: the BPF program of a Policy, its explanations and its statistics.

Compiling is done once per policy digest and cached in-process, so a Sandbox running many jobs
or a batch reusing a profile pays for it once.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Optional, Sequence, Union

from . import _core
from .policy import Policy, action_name

DECIDED_BY = {
    _core.DECIDED_BY_RULE: "rule",
    _core.DECIDED_BY_DEFAULT: "default",
    _core.DECIDED_BY_BADARCH: "bad-arch",
    _core.DECIDED_BY_STUB: "enosys-stub",
}

CompileError = _core.CompileError

# Syscalls the kernel lets through before any filter runs (kernel/seccomp.c: uretprobe since
# 6.12/6.14, uprobe since 6.18); observed on this project's machines.
KERNEL_EXEMPT_X86_64 = ("uretprobe", "uprobe")


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the filter does with one call, and why."""
    arch: str
    syscall: str                 # name, or the number if the arch has no name for it
    nr: int
    args: tuple
    action: int                  # kernel return value
    decided_by: str              # "rule", "default", "bad-arch", "enosys-stub"
    rule_path: Optional[str]     # JSON path of the deciding rule's name, when decided_by == "rule"
    rule_text: Optional[str]     # the rule's conditions and action, human readable
    instructions: int            # BPF instructions the kernel runs for this call
    note: Optional[str] = None   # something the filter's answer does not tell

    @property
    def action_name(self) -> str:
        return action_name(self.action)

    def describe(self) -> str:
        why = {
            "rule": "rule %s" % self.rule_path,
            "default": "defaultAction (no rule matched)",
            "bad-arch": "the filter does not accept this architecture (bad-arch action)",
            "enosys-stub": "ENOSYS stub: number above the profile's highest known syscall",
        }[self.decided_by]
        line = "%s %s(%s) -> %s  by %s" % (
            self.arch, self.syscall, ", ".join("%#x" % a for a in self.args), self.action_name, why)
        if self.rule_text:
            line += "\n    " + self.rule_text
        if self.note:
            line += "\n    note: " + self.note
        return line


class Filter:
    """The BPF program for one Policy."""

    def __init__(self, policy: Policy, compiled: Optional[_core.Compiled] = None,
                 digest: Optional[str] = None):
        self.policy = policy
        self._compiled = compiled if compiled is not None else _core.Compiled(policy)
        self.program: bytes = self._compiled.program
        self._digest = digest

    def __len__(self) -> int:
        return len(self.program) // 8

    @property
    def digest(self) -> str:
        """sha256 of what decides the program (computed once)."""
        if self._digest is None:
            self._digest = self.policy.digest()
        return self._digest

    def decide(self, syscall: Union[str, int], args: Sequence[int] = (),
               arch: Optional[str] = None) -> Decision:
        """Decide one call from the rules and check the BPF program agrees."""
        arch = arch or self.policy.host_arch
        info = _core.arch_info(arch)
        if isinstance(syscall, str):
            nr = _core.syscall_nr(arch, syscall)
            if nr < 0:
                if syscall.isdigit() or syscall.lower().startswith("0x"):
                    nr = int(syscall, 0)
                else:
                    raise ValueError("%s has no syscall %r" % (arch, syscall))
        else:
            nr = int(syscall)
        name = _core.syscall_name(arch, nr) or str(nr)
        args = tuple(int(a) & 0xFFFFFFFFFFFFFFFF for a in args) + (0,) * (6 - len(args))
        action, by, index = self._compiled.decide(info["audit_arch"], nr, args)
        ret, executed = _core.bpf_run(self.program, info["audit_arch"], nr, args)
        if ret != action:
            raise AssertionError(
                "internal error: the BPF program returns %s but the rules say %s for %s %s%r; "
                "please report this with the profile" % (
                    action_name(ret), action_name(action), arch, name, args))
        rule = self.policy.rules[index] if index >= 0 else None
        text = None
        if rule is not None:
            conds = " && ".join(c.describe() for c in rule.conds) or "always"
            text = "%s: %s -> %s" % (rule.name, conds, action_name(rule.action))
        note = None
        if arch == "x86_64" and name in KERNEL_EXEMPT_X86_64:
            note = ("Linux 6.12+ never runs seccomp filters for %s on x86_64 (uprobes "
                    "trampolines); the kernel, not this filter, decides it" % name)
        return Decision(arch=arch, syscall=name, nr=nr, args=args[:6], action=action,
                        decided_by=DECIDED_BY[by], rule_path=rule.path if rule else None,
                        rule_text=text, instructions=executed, note=note)

    def stats(self, arch: Optional[str] = None) -> dict:
        """Length, instructions executed per syscall and action-cache coverage for one arch."""
        arch = arch or self.policy.host_arch
        info = _core.arch_info(arch)
        executed = []
        cacheable = 0
        walked = 0
        for _name, nr, _w in _core.syscall_table(arch):
            _ret, n = _core.bpf_run(self.program, info["audit_arch"], nr)
            executed.append(n)
            ok, w = _core.bpf_const_allow(self.program, info["audit_arch"], nr)
            cacheable += ok
            walked += w
        return {
            "arch": arch,
            "length": len(self),
            "mean_executed": sum(executed) / len(executed),
            "max_executed": max(executed),
            "cacheable": cacheable,
            "cache_walk": walked,
        }


_cache: dict = {}
_cache_lock = threading.Lock()


def compile_policy(policy: Policy) -> Filter:
    """The Filter for `policy`; the C compile runs once per policy digest."""
    key = policy.digest()
    with _cache_lock:
        compiled = _cache.get(key)
    if compiled is None:
        compiled = _core.Compiled(policy)
        with _cache_lock:
            _cache[key] = compiled
    return Filter(policy, compiled, key)

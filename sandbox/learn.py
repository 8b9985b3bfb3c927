"""Learn mode: run a command with every call the base profile does not allow logged (nothing is
denied), then write the smallest Docker-format profile that lets it do the same again.

The run uses the notification backend, so no call is lost to rate limits. A learned profile
denies by default (ERRNO EPERM), allows every syscall the command made, and keeps argument rules
where an argument says what the call does: socket families, clone's namespace flags (Docker's own
rule: no new namespaces) and personalities. Several runs merge (`merge_profiles`)."""
from __future__ import annotations

import dataclasses
import datetime
import json
import platform
import shlex
from typing import List, Optional

from . import builtin, profile as _profile
from .policy import OP_NAMES, OPS, Policy, RET_ALLOW, RET_LOG
from .syscall_report import CLONE_NAMESPACES, KEYED
_HOST_MAP = {"x86_64": ("SCMP_ARCH_X86_64", ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
             "x86": ("SCMP_ARCH_X86", []),
             "aarch64": ("SCMP_ARCH_AARCH64", ["SCMP_ARCH_ARM"]),
             "arm": ("SCMP_ARCH_ARM", [])}
LEARN_EVERYTHING = {"defaultAction": "SCMP_ACT_LOG"}


def learning_policy(base: Optional[Policy], host_arch: Optional[str] = None) -> Policy:
    """`base` with every answer other than ALLOW turned into LOG (no base: log everything)."""
    if base is None:
        host = host_arch or _profile.normalize_arch(host_arch or platform.machine())
        native, subs = _HOST_MAP.get(host, (None, []))
        spec = dict(LEARN_EVERYTHING)
        if native:
            spec["archMap"] = [{"architecture": native, "subArchitectures": subs}]
        base = _profile.load(spec, host_arch=host_arch)
    rules = tuple(r for r in base.rules if (r.action & 0xFFFF0000) == RET_ALLOW)
    return dataclasses.replace(base, default_action=RET_LOG, rules=rules, enosys_stub=False,
                               source="learn(%s)" % (base.source or "everything"),
                               warnings=list(base.warnings))


def _cond_json(c) -> dict:
    out = {"index": c.index, "value": c.value, "op": OP_NAMES[c.op]}
    if c.op == OPS["SCMP_CMP_MASKED_EQ"]:
        out["valueTwo"] = c.value_two
    return out


@dataclasses.dataclass
class Learned:
    """What runs showed a command needs."""
    names: set = dataclasses.field(default_factory=set)          # allowed unconditionally
    values: dict = dataclasses.field(default_factory=dict)       # keyed name -> set of values
    base_rules: list = dataclasses.field(default_factory=list)   # conditional ALLOWs of a base
    commands: list = dataclasses.field(default_factory=list)

    def add_log(self, seccomp_log: dict) -> None:
        for e in seccomp_log["syscalls"]:
            name = e["syscall"]
            if name is None:
                continue  # a number no table names: nothing a profile can say about it
            if name in KEYED:
                self.values.setdefault(name, set()).add(e.get("key", 0))
            else:
                self.names.add(name)

    def add_base(self, base: Optional[Policy]) -> None:
        if base is None:
            return
        for r in base.rules:
            if (r.action & 0xFFFF0000) != RET_ALLOW:
                continue
            if not r.conds:
                self.names.add(r.name)
            else:
                rule = {"names": [r.name], "action": "SCMP_ACT_ALLOW",
                        "args": [_cond_json(c) for c in r.conds]}
                if rule not in self.base_rules:
                    self.base_rules.append(rule)

    def _keyed_rules(self, name: str, values: set) -> List[dict]:
        index, _mask = KEYED[name]
        if name == "clone":
            if values == {0}:  # no namespace flag ever: Docker's rule
                return [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": CLONE_NAMESPACES, "valueTwo": 0,
                                   "op": "SCMP_CMP_MASKED_EQ"}],
                         "comment": "no new namespaces, as the command never asked for one"}]
            self.names.add("clone")
            return []
        return [{"names": [name], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": index, "value": v, "op": "SCMP_CMP_EQ"}]}
                for v in sorted(values)]

    def profile(self, host_arch: Optional[str] = None) -> dict:
        host = host_arch or _profile.normalize_arch(host_arch or platform.machine())
        native, subs = _HOST_MAP.get(host, (None, []))
        keyed = []
        for name in sorted(self.values):
            if name not in self.names:
                keyed.extend(self._keyed_rules(name, self.values[name]))
        names = sorted(self.names)
        rules = [r for r in self.base_rules if r["names"][0] not in self.names]
        out = {
            "comment": "learned by `sandbox learn` on %s from: %s" % (
                datetime.date.today().isoformat(), "; ".join(self.commands)),
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
        }
        if native:
            out["archMap"] = [{"architecture": native, "subArchitectures": subs}]
        out["syscalls"] = ([{"names": names, "action": "SCMP_ACT_ALLOW"}] if names else []) \
            + keyed + rules
        return out

    def merge_profile(self, data: dict) -> None:
        """Take in a profile written by an earlier `sandbox learn`."""
        for c in _split_comment(data.get("comment", "")):
            if c not in self.commands:
                self.commands.append(c)
        for entry in data.get("syscalls", []):
            names = entry.get("names") or [entry.get("name")]
            if entry.get("action") != "SCMP_ACT_ALLOW":
                continue
            args = entry.get("args") or []
            for name in names:
                if not args:
                    self.names.add(name)
                elif name == "clone" and len(args) == 1 and \
                        args[0].get("op") == "SCMP_CMP_MASKED_EQ":
                    self.values.setdefault("clone", set()).add(args[0].get("valueTwo", 0))
                elif name in KEYED and len(args) == 1 and args[0].get("op") == "SCMP_CMP_EQ" \
                        and args[0].get("index") == KEYED[name][0]:
                    self.values.setdefault(name, set()).add(args[0]["value"])
                else:
                    rule = {"names": [name], "action": "SCMP_ACT_ALLOW", "args": args}
                    if rule not in self.base_rules:
                        self.base_rules.append(rule)


def _split_comment(comment: str) -> List[str]:
    marker = " from: "
    if marker not in comment:
        return []
    return [c for c in comment.split(marker, 1)[1].split("; ") if c]


def command_text(argv) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def load_learned(path: str) -> dict:
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or "syscalls" not in data:
        raise ValueError("%s: not a profile written by sandbox learn (no syscalls)" % path)
    return data


def learn(argv, base=None, *, merge: Optional[dict] = None, host_arch=None, stdin=None,
          stdout=None, stderr=None, timeout=None, env=None, inherit_env=False, cwd=None,
          **sandbox_options):
    """Run `argv` once in learn mode. Returns (Result, learned profile dict).
    base: a profile (path, built-in name, dict or Policy) whose allowed calls stay allowed."""
    from .runner import Sandbox

    base_policy = None
    if base is not None:
        base_policy = base if isinstance(base, Policy) else _profile.load(
            builtin.resolve(base) if isinstance(base, str) else base, host_arch=host_arch)
    policy = learning_policy(base_policy, host_arch)
    from .runner import PIPE
    sb = Sandbox(policy, log_backend="notify", log_records=0, env=env, inherit_env=inherit_env,
                 cwd=cwd, timeout=timeout, **sandbox_options)
    result = sb.run(argv, stdin=stdin, stdout=PIPE if stdout is None else stdout,
                    stderr=PIPE if stderr is None else stderr)
    learned = Learned()
    if merge is not None:
        learned.merge_profile(merge)
    learned.add_base(base_policy)
    if result.seccomp_log:
        learned.add_log(result.seccomp_log)
    learned.commands.append(command_text(argv))
    return result, learned.profile(host_arch)

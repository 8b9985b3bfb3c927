"""Findings about a resolved profile, for `sandbox check`.

`check()` returns the loader's warnings (unknown keys, skipped names, default-equal rules, ...)
followed by what only a look at the whole rule set shows. Every finding starts with the JSON path
(or the syscall) it is about. The rule semantics assumed are the compiler's (csrc/compile.h):
a syscall's first unconditional rule decides it; otherwise a call matching several conditional
rules gets the most restrictive of their actions.
"""
from __future__ import annotations

import itertools
import json
from typing import Optional

from sandbox import _core
from sandbox import profile as _profile
from sandbox import syscalls
from sandbox.policy import (OPS, RET_ALLOW, RET_LOG, RET_TRACE, RET_USER_NOTIF, Cond, Policy,
                            Rule, action_name)

U64_MAX = 2**64 - 1

# Calls that i386 multiplexes through socketcall(2) / ipc(2): argument rules on them do not see
# the real arguments there (they sit in memory behind a1).
SOCKETCALL_NAMES = frozenset((
    "socket", "bind", "connect", "listen", "accept", "getsockname", "getpeername", "socketpair",
    "send", "recv", "sendto", "recvfrom", "shutdown", "setsockopt", "getsockopt", "sendmsg",
    "recvmsg", "accept4", "recvmmsg", "sendmmsg",
))
IPC_NAMES = frozenset((
    "semop", "semget", "semctl", "semtimedop", "msgsnd", "msgrcv", "msgget", "msgctl", "shmat",
    "shmdt", "shmget", "shmctl",
))


def check(policy_or_source, **load_options) -> list:
    """Findings (strings) for a Policy, or for a profile loaded with `load_options`."""
    if isinstance(policy_or_source, Policy):
        policy = policy_or_source
    else:
        policy = _profile.load(policy_or_source, **load_options)
    if policy is None:
        return ["seccomp is disabled: the profile has no defaultAction and no syscalls (as moby "
                "and runc read it)"]
    by_name = _rules_by_name(policy.rules)
    return (list(policy.warnings) + shadowed_rules(by_name) + ored_always_true(policy.rules)
            + overlapping_rules(by_name)
            + missing_compat_arches(policy) + exec_denied(policy, by_name)
            + multiplexer_bypass(policy, by_name) + dead_high_word_compares(policy))


# ------------------------------------------------------------------------------------------------
# Helpers


def _rules_by_name(rules) -> dict:
    by_name = {}
    for rule in rules:
        by_name.setdefault(rule.name, []).append(rule)
    return by_name


_MASKED_EQ = OPS["SCMP_CMP_MASKED_EQ"]


def _unconditional(rule: Rule) -> bool:
    """No condition left once the compiler drops tautologies: a MASKED_EQ with mask 0 (as
    libseccomp does, csrc/ruleset.c drop_tautologies)."""
    return all(c.op == _MASKED_EQ and c.value == 0 for c in rule.conds)


def _first_unconditional(rules) -> Optional[Rule]:
    return next((rule for rule in rules if _unconditional(rule)), None)


def _kind(action: int) -> int:
    return action & 0xFFFF0000


def action_rank(action: int) -> int:
    """The kernel's precedence (seccomp_run_filters): lower is more restrictive."""
    kind = _kind(action)
    return kind - 2**32 if kind >= 2**31 else kind


def _describe(rule: Rule) -> str:
    conds = " && ".join(cond.describe() for cond in rule.conds)
    return action_name(rule.action) + (" when " + conds if conds else "")


# ------------------------------------------------------------------------------------------------
# Shadowing and overlaps


def shadowed_rules(by_name: dict) -> list:
    """Rules that never apply because an unconditional rule with another action decides."""
    findings = []
    for name, rules in by_name.items():
        winner = _first_unconditional(rules)
        if winner is None:
            continue
        seen = set()
        for rule in rules:
            if rule is winner or rule.action == winner.action or rule.path in seen:
                continue
            seen.add(rule.path)
            findings.append("%s: rule for %s (%s) never applies: the unconditional rule at %s "
                            "(%s) wins" % (rule.path, json.dumps(name), _describe(rule),
                                           winner.path, action_name(winner.action)))
    return findings


def overlapping_rules(by_name: dict) -> list:
    """Conditional rules for one syscall with different actions that one call can match."""
    findings = []
    for name, rules in by_name.items():
        if _first_unconditional(rules) is not None:
            continue
        reported = set()
        for first, second in itertools.combinations(rules, 2):
            if first.action == second.action:
                continue
            key = (first.path, second.path, first.action, second.action)
            if key in reported:
                continue
            witness = overlap(first.conds, second.conds)
            if witness is None:
                continue
            reported.add(key)
            winner = min((first, second), key=lambda r: action_rank(r.action))
            example = ", ".join("a%d=%#x" % item for item in sorted(witness.items()))
            findings.append("%s (%s) and %s (%s) can both match %s (e.g. %s): the compiled "
                            "filter gives the most restrictive, %s"
                            % (first.path, _describe(first), second.path, _describe(second),
                               json.dumps(name), example, action_name(winner.action)))
    return findings


# the condition that holds exactly where another does not (MASKED_EQ has none)
_NEGATED = {OPS["SCMP_CMP_NE"]: OPS["SCMP_CMP_EQ"], OPS["SCMP_CMP_EQ"]: OPS["SCMP_CMP_NE"],
            OPS["SCMP_CMP_LT"]: OPS["SCMP_CMP_GE"], OPS["SCMP_CMP_GE"]: OPS["SCMP_CMP_LT"],
            OPS["SCMP_CMP_LE"]: OPS["SCMP_CMP_GT"], OPS["SCMP_CMP_GT"]: OPS["SCMP_CMP_LE"]}


def ored_always_true(rules) -> list:
    """Entries whose argument index repeats, which runc splits into one rule per condition
    (OR-ed, not AND-ed), where those conditions together hold for every call: Docker's AF_ALG
    pitfall, `a0 != 38` and `a0 != 40` on one ALLOW entry allowing every socket family."""
    by_entry = {}
    for rule in rules:
        by_entry.setdefault((rule.names_path, rule.index, rule.name), []).append(rule)
    names = {}
    for names_path, _, name in by_entry:
        names.setdefault(names_path, []).append(name)
    findings, seen = [], set()
    for (names_path, _, name), split in by_entry.items():
        if len(split) < 2 or names_path in seen:
            continue        # (an entry that was not split gives one rule per name)
        conds = [rule.conds[0] for rule in split]
        if any(c.op not in _NEGATED for c in conds):
            continue
        negations = [Cond(c.index, _NEGATED[c.op], c.value) for c in conds]
        if overlap(negations, ()) is not None:
            continue        # some call meets none of them
        seen.add(names_path)
        findings.append(
            "%s: an argument index repeats, so runc gives each condition a rule of its own, "
            "OR-ed (%s), and together they hold for every call: %s applies to every %s() (to "
            "exclude values, give them rules of their own with the other action)"
            % (names_path.rsplit(".", 1)[0], " || ".join(c.describe() for c in conds),
               action_name(split[0].action), "(), ".join(dict.fromkeys(names[names_path]))))
    return findings


def overlap(conds_a, conds_b) -> Optional[dict]:
    """A call both condition lists accept, as {argument index: value}, or None.

    Argument indexes are independent, so the conjunction holds iff it is satisfiable for each
    index on its own (over unsigned 64-bit values).
    """
    witness = {}
    for index in sorted({cond.index for cond in (*conds_a, *conds_b)}):
        value = satisfy([c for c in (*conds_a, *conds_b) if c.index == index])
        if value is None:
            return None
        witness[index] = value
    return witness


def satisfy(conds) -> Optional[int]:
    """The smallest u64 that meets every condition (all on one argument), or None."""
    low, high, mask, bits, excluded = 0, U64_MAX, 0, 0, set()
    for cond in conds:
        op, value = cond.op, cond.value
        if op == OPS["SCMP_CMP_NE"]:
            excluded.add(value)
            continue
        if op == OPS["SCMP_CMP_LT"]:
            if value == 0:
                return None
            high = min(high, value - 1)
            continue
        if op == OPS["SCMP_CMP_LE"]:
            high = min(high, value)
            continue
        if op == OPS["SCMP_CMP_GT"]:
            if value == U64_MAX:
                return None
            low = max(low, value + 1)
            continue
        if op == OPS["SCMP_CMP_GE"]:
            low = max(low, value)
            continue
        if op == OPS["SCMP_CMP_EQ"]:
            cond_mask, cond_bits = U64_MAX, value
        else:   # MASKED_EQ: value is the mask
            cond_mask, cond_bits = value, cond.value_two & value
        if (mask & cond_mask) & (bits ^ cond_bits):
            return None
        mask, bits = mask | cond_mask, bits | cond_bits
    candidate = _next_with_bits(low, mask, bits)
    while candidate is not None and candidate <= high:
        if candidate not in excluded:
            return candidate
        if candidate == U64_MAX:
            return None
        candidate = _next_with_bits(candidate + 1, mask, bits)
    return None


def _next_with_bits(start: int, mask: int, bits: int) -> Optional[int]:
    """The smallest x >= start with x & mask == bits (bits within mask), or None."""
    if start & mask == bits:
        return start
    # Any larger x first differs from `start` at some bit p where x has 1 and start has 0; the
    # lowest usable p keeps the longest prefix of `start` and so gives the smallest x.
    for p in range(64):
        bit = 1 << p
        above = U64_MAX & ~((bit << 1) - 1)
        if start & bit or (mask & bit and not bits & bit):
            continue
        if start & above & mask != bits & above:
            continue
        return (start & above) | bit | (bits & (bit - 1))
    return None


# ------------------------------------------------------------------------------------------------
# Architectures, exec, multiplexers


def missing_compat_arches(policy: Policy) -> list:
    """Compat ABIs of the host that the filter leaves to the bad-arch action."""
    compat = {
        "x86_64": (("x86", "SCMP_ARCH_X86", "calls through int 0x80 (the i386 ABI)"),
                   ("x32", "SCMP_ARCH_X32", "calls through the x32 ABI")),
        "aarch64": (("arm", "SCMP_ARCH_ARM", "32-bit ARM (compat) calls"),),
    }
    return ["architectures: %s is not in the filter: %s will be killed (bad arch)"
            % (token, what)
            for arch, token, what in compat.get(policy.host_arch, ()) if arch not in policy.arches]


def _stub_cutoff(policy: Policy) -> Optional[int]:
    """The host's ENOSYS stub cut-off (runc), or None when there is no stub."""
    if not policy.enosys_stub or _kind(policy.default_action) in (RET_ALLOW, RET_LOG, RET_TRACE):
        return None
    numbers = [syscalls.number(policy.host_arch, name) for name in policy.stub_names]
    numbers = [nr for nr in numbers if nr is not None]
    return max(numbers) if numbers else None


def exec_denied(policy: Policy, by_name: dict) -> list:
    """execve / execveat that the native ABI cannot run: the command could not even start."""
    findings = []
    allowed = (RET_ALLOW, RET_LOG, RET_USER_NOTIF)
    cutoff = _stub_cutoff(policy)
    for name in ("execve", "execveat"):
        nr = syscalls.number(policy.host_arch, name)
        if nr is None:
            continue
        rules = by_name.get(name, [])
        decider = _first_unconditional(rules)
        if decider is not None:
            if _kind(decider.action) not in allowed:
                findings.append("%s: denied by %s (%s) on %s"
                                % (name, decider.path, action_name(decider.action),
                                   policy.host_arch))
            continue
        if cutoff is not None and nr > cutoff:
            findings.append("%s: denied on %s by the ENOSYS stub (no syscall numbered above %d "
                            "is listed)" % (name, policy.host_arch, cutoff))
            continue
        if _kind(policy.default_action) in allowed:
            continue
        allowing = [r.path for r in rules if _kind(r.action) in allowed]
        if allowing:
            findings.append("%s: allowed only for some arguments (%s), otherwise denied by the "
                            "default action %s" % (name, ", ".join(dict.fromkeys(allowing)),
                                                   action_name(policy.default_action)))
        else:
            findings.append("%s: denied by the default action %s on %s"
                            % (name, action_name(policy.default_action), policy.host_arch))
    return findings


def multiplexer_bypass(policy: Policy, by_name: dict) -> list:
    """Argument rules on socket/IPC calls that i386 bypasses through an allowed socketcall/ipc."""
    if "x86" not in policy.arches:
        return []
    findings = []
    for mux, family in (("socketcall", SOCKETCALL_NAMES), ("ipc", IPC_NAMES)):
        mux_rules = by_name.get(mux, [])
        decider = _first_unconditional(mux_rules)
        if decider is not None:
            action, where = decider.action, decider.path
        elif not mux_rules:
            action, where = policy.default_action, "the default action"
        else:
            continue    # conditional rules on the multiplexer itself: nothing unconditional
        if _kind(action) not in (RET_ALLOW, RET_LOG):
            continue
        for name in sorted(family & by_name.keys()):
            conditional = [r for r in by_name[name] if not _unconditional(r)]
            if not conditional or _first_unconditional(by_name[name]) is not None:
                continue
            findings.append("%s: the argument rules for %s do not hold for i386 calls through "
                            "%s, which is unconditionally allowed (%s): on x86 every %s call "
                            "passes" % (conditional[0].path, json.dumps(name), mux, where,
                                        name))
    return findings


def dead_high_word_compares(policy: Policy) -> list:
    """Compares whose value has high bits set on an argument the kernel reads as 32-bit.

    Such an argument is compared as the kernel reads it (low word, zero-extended), so e.g.
    `fd == 0xffffffffffffffff` (-1 written as 64 bits) can never match on a 64-bit ABI, and
    `fd != 0xffffffffffffffff` always does. --args-like-libseccomp compares all 64 bits instead.
    """
    if policy.args_like_libseccomp:
        return []
    findings = []
    seen = set()
    for rule in policy.rules:
        for cond in rule.conds:
            high = cond.value >> 32 if cond.op != OPS["SCMP_CMP_MASKED_EQ"] else (
                (cond.value & cond.value_two) >> 32)
            if not high:
                continue
            for arch in policy.arches:
                if arch not in ("x86_64", "aarch64"):
                    continue
                if not (_core.syscall_arg32(arch, rule.name) >> cond.index) & 1:
                    continue
                key = (rule.path, cond.index)
                if key in seen:
                    continue
                seen.add(key)
                findings.append(
                    "%s: %s compares argument %d of %s, which the kernel reads as 32-bit, with "
                    "a value that has high bits set: as the kernel reads the argument that "
                    "compare is always %s on %s (write %d for a 32-bit -1, or use "
                    "--args-like-libseccomp)" % (
                        rule.path, cond.describe(), cond.index, json.dumps(rule.name),
                        "false" if cond.op in (OPS["SCMP_CMP_EQ"], OPS["SCMP_CMP_MASKED_EQ"],
                                               OPS["SCMP_CMP_GT"], OPS["SCMP_CMP_GE"])
                        else "true", arch, cond.value & 0xFFFFFFFF))
    return findings

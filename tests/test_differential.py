"""Differential tests: our compiler (sandbox._core) against Docker/runc + libseccomp (tests/oracle.py).

For every decision we compute
  ours    - `_core.bpf_run` on our compiled program (and `Compiled.decide`, which must agree with it),
  oracle  - runc's ENOSYS stub + libseccomp's exported BPF, run by tests/bpfsim.py,
  model   - the documented runc/libseccomp semantics in plain Python (oracle.Model),
and require ours == oracle, except in these documented domains, each counted and bounded:
  (a) refused    - libseccomp refuses the policy (EEXIST: identical condition, different action;
                   EINVAL: ERRNO data >= 4095), so runc would fail: nothing to compare;
  (b) conflict   - the call matches conditional rules of one syscall with different actions: our
                   compiler picks the most restrictive, libseccomp's answer depends on its tree;
  (c) unknown    - the call's syscall is named by a rule libseccomp 2.5.4 does not know (runc skips
                   the rule), or nr lies between libseccomp's ENOSYS cut-off and ours because of such
                   names;
  (d) truncated  - not a skip: on 64-bit ABIs an argument the kernel declares 32-bit is compared by
                   us on its low word, so ours(args) must equal oracle(args with it truncated);
  (L) libseccomp - libseccomp 2.5.4 miscompiles the call, proven two ways (test_oracle.py has one
                   example of each): its program runs a compare on a word other than the one the
                   node was made for (accumulator tracking: an i386 block without `ld [0]`, merged
                   chains jumping into a node of another argument), or the same rules compiled one
                   per filter by libseccomp give the documented answer and the merged filter does
                   not (tree merge). There ours must equal the documented semantics (the model).
Where the model and libseccomp's BPF disagree for any other reason the test fails too: either the
oracle is wrong or libseccomp has another bug, and both must be looked at. libseccomp is run in a
forked child with a timeout (oracle.BUILD_TIMEOUT): 2.5.4 was seen looping forever in
seccomp_rule_add in long test processes; such policies are counted (policies_libseccomp_hang).

Set DIFF_COLLECT=/path/file.jsonl to record every mismatch there instead of failing at the first
one (for surveys; CI never sets it). DIFF_ACCEPT=class,... counts the named mismatch classes
instead of failing (to look past a known one); DIFF_EXAMPLES sets hypothesis' examples per arch
set; DIFF_STATS=/path appends the per-test counters.
"""
import collections
import dataclasses
import json
import os
import random
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytest.importorskip("pyseccomp", reason="pyseccomp (libseccomp bindings) is needed for the oracle")
core = pytest.importorskip(
    "sandbox._core", reason="the C core is not built: python setup.py build_ext --inplace")
if not all(hasattr(core, f) for f in ("compile", "decide", "bpf_run", "syscall_arg32")):
    pytest.skip("sandbox._core lacks compile/decide/bpf_run/syscall_arg32", allow_module_level=True)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import bpfsim  # noqa: E402
import oracle  # noqa: E402
from sandbox.policy import (OPS, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD,  # noqa: E402
                            RET_LOG, RET_TRACE, RET_TRAP, Cond, Policy, Rule, action_name)

# shared/ sits beside the repository (CI: beside the fresh clone); /work/shared on developers'.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILES = next((d for d in (os.path.join(_ROOT, "..", "shared", "profiles"),
                             "/work/shared/profiles") if os.path.isdir(d)),
                "/work/shared/profiles")

M32, M64 = 0xFFFFFFFF, 2**64 - 1
X32_BIT = 0x40000000
AUDIT = oracle.AUDIT
NE, LT, LE, EQ, GE, GT, MEQ = (OPS["SCMP_CMP_" + n] for n in
                               ("NE", "LT", "LE", "EQ", "GE", "GT", "MASKED_EQ"))
DOCKER_DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
DECIDER = {0: "rule", 1: "default", 2: "badarch", 3: "stub"}
COLLECT = os.environ.get("DIFF_COLLECT")
# Mismatch classes (see Differential.classify) to count instead of failing on, comma-separated.
# Empty by default: every difference from runc + libseccomp fails until it is fixed or decided.
# Domain (c), decided: where the kernel's own table gives a syscall to an ABI and libseccomp
# 2.5.4's does not (x32 map_shadow_stack: `453 common` in arch/x86/entry/syscalls/syscall_64.tbl),
# we follow the kernel; runc with that libseccomp drops the rule on that ABI. Counted, not failed.
DOMAIN_C_CLASSES = {"name-pseudo-in-libseccomp-on-this-abi"}
ACCEPTED = DOMAIN_C_CLASSES | set(filter(None, os.environ.get("DIFF_ACCEPT", "").split(",")))


# ------------------------------------------------------------------------------------------------
# The checker


class Mismatch(AssertionError):
    pass


def describe_policy(policy, focus=()) -> str:
    """The policy in words; big ones (real profiles) only with the rules named in `focus`."""
    shown = [r for r in policy.rules if len(policy.rules) <= 20 or r.name in focus]
    rules = ["%s %s%s" % (r.name, action_name(r.action),
                          (" if " + " && ".join(c.describe() for c in r.conds)) if r.conds else "")
             for r in shown]
    if len(shown) < len(policy.rules):
        rules.append("... %d other rules (%s, caps %s)" % (len(policy.rules) - len(shown),
                                                         policy.source, list(policy.caps)))
    extra = sorted(set(policy.stub_names) - {r.name for r in policy.rules})
    if len(policy.rules) > 20:
        extra = []
    return ("Policy(default=%s, arches=%s, stub=%s, args_like_libseccomp=%s, host=%s,\n  rules=[\n"
            "    %s]%s)" % (action_name(policy.default_action), list(policy.arches),
                           policy.enosys_stub, policy.args_like_libseccomp,
                           getattr(policy, "host_arch", "x86_64"), ",\n    ".join(rules),
                           ",\n  extra stub names=%s" % extra if extra else ""))


def policy_literal(policy) -> str:
    """A Python expression that rebuilds the policy (for reproducers)."""
    if len(policy.rules) > 20:
        return "sandbox.profile.load(%r, host_arch=%r, caps=%r, kernel=%r)" % (
            policy.source, policy.host_arch, tuple(policy.caps), tuple(policy.kernel))
    rules = ", ".join("Rule(%r, %#x, (%s))" % (r.name, r.action, "".join(
        "Cond(%d, %d, %#x, %#x), " % (c.index, c.op, c.value, c.value_two) for c in r.conds))
        for r in policy.rules)
    return ("Policy(default_action=%#x, arches=%r, rules=(%s,), stub_names=%r, enosys_stub=%r, "
            "args_like_libseccomp=%r, host_arch=%r)" % (
                policy.default_action, tuple(policy.arches), rules, tuple(policy.stub_names),
                policy.enosys_stub, policy.args_like_libseccomp,
                getattr(policy, "host_arch", "x86_64")))


class Stats:
    def __init__(self):
        self.c = collections.Counter()

    def __getitem__(self, key):
        return self.c[key]

    def add(self, key, n=1):
        self.c[key] += n

    def summary(self):
        return ", ".join("%s=%d" % kv for kv in sorted(self.c.items()))


class Differential:
    """One policy, compiled by us and by runc + libseccomp."""

    def __init__(self, policy, stats, sample_interp=16):
        self.policy = policy
        self.stats = stats
        self.ref = oracle.reference(policy)
        self.model = oracle.model(policy)
        if hasattr(core, "Compiled"):
            self.compiled = core.Compiled(policy)
            self.prog = self.compiled.program
            self.our_decide = self.compiled.decide
        else:
            self.prog = core.compile(policy)
            self.our_decide = lambda a, n, args: core.decide(policy, a, n, args)
        self.insns = bpfsim.decode(self.prog)
        try:
            bpfsim.validate(self.insns)                 # the kernel would load it
        except bpfsim.BpfError as exc:
            raise Mismatch("our program fails the kernel's checks: %s\n%s" % (
                exc, describe_policy(policy))) from None
        self.sample_interp = sample_interp
        self.count = 0
        self.arches = list(policy.arches)
        self.host = getattr(policy, "host_arch", "x86_64")
        if self.host not in self.arches:
            self.arches.insert(0, self.host)
        self.unknown = {r.name for r in policy.rules if not oracle.known_to_libseccomp(r.name)}
        self.unknown_listed = self.unknown | {n for n in policy.stub_names
                                              if not oracle.known_to_libseccomp(n)}
        self._cutoffs = {}
        self._stripped = None
        self.stubbed = policy.enosys_stub and not oracle.is_allow_action(policy.default_action)
        if isinstance(self.ref.refused, oracle.OracleHang):
            stats.add("policies_libseccomp_hang")
            print("libseccomp hang (retry in a fresh process to check): %s" %
                  policy_literal(policy))
        elif self.ref.refused is not None:
            stats.add("policies_refused_" + ("EEXIST" if self.ref.refused.errno == 17 else
                                            "EINVAL" if self.ref.refused.errno == 22 else
                                            str(self.ref.refused.errno)))
        stats.add("policies")

    # -- our side's view of the call ----------------------------------------------------------

    def abi(self, audit, nr):
        """The ABI our compiler treats the call under, None if the arch is not in the filter."""
        if audit == AUDIT["x86_64"]:
            return "x32" if nr & X32_BIT and "x32" in self.arches else \
                "x86_64" if "x86_64" in self.arches and not nr & X32_BIT else None
        for a in self.arches:
            if AUDIT[a] == audit and a != "x32":
                return a
        return None

    def without_unknown(self):
        """Our decide() for the policy minus every name libseccomp does not know."""
        if self._stripped is None:
            known = oracle.known_to_libseccomp
            policy = dataclasses.replace(
                self.policy, rules=tuple(r for r in self.policy.rules if known(r.name)),
                stub_names=tuple(n for n in self.policy.stub_names if known(n)))
            if hasattr(core, "Compiled"):
                self._stripped = core.Compiled(policy).decide
            else:
                self._stripped = lambda a, n, args: core.decide(policy, a, n, args)
        return self._stripped

    def stub_abi(self, audit, nr):
        """The ABI whose maximum runc's stub applies to this call (x86_64: by bit 30 alone)."""
        if audit == AUDIT["x86_64"]:
            return "x32" if nr & X32_BIT else "x86_64"
        for a in self.arches:
            if AUDIT[a] == audit and a != "x32":
                return a
        return None

    def our_cutoffs(self, abi):
        """Our tables' stub cut-offs for `abi`: (over every listed name, over names libseccomp
        knows at all, over names libseccomp resolves to a number on this ABI); 0 = none."""
        if abi not in self._cutoffs:
            every = known = visible = 0
            for name in self.policy.stub_names:
                n = core.syscall_nr(abi, name)
                if n > 0:
                    every = max(every, n)
                    if oracle.known_to_libseccomp(name):
                        known = max(known, n)
                    if oracle.lib_resolve(abi, name) >= 0:
                        visible = max(visible, n)
            self._cutoffs[abi] = (every, known, visible)
        return self._cutoffs[abi]

    # -- one decision ------------------------------------------------------------------------

    def check(self, audit, nr, args=(0,) * 6):
        args = tuple(args) + (0,) * (6 - len(args))
        nr &= M32
        policy, stats = self.policy, self.stats
        stats.add("decisions")
        self.count += 1
        ours, executed = core.bpf_run(self.prog, audit, nr, args)
        decision = self.our_decide(audit, nr, args)
        if decision[0] != ours:
            self.fail("decide-vs-bpf", audit, nr, args, ours=ours, decide=decision)
        if self.count % self.sample_interp == 0:
            stats.add("interp_checks")
            sim = bpfsim.run_decoded(self.insns, bpfsim.pack_data(audit, nr, args))
            if sim != (ours, executed):
                self.fail("c-interp-vs-bpfsim", audit, nr, args, ours=(ours, executed), sim=sim)
        if self.ref.refused is not None:
            stats.add("skip_a_refused")
            return
        abi = self.abi(audit, nr)
        oargs = args
        if abi in ("x86_64", "aarch64") and not policy.args_like_libseccomp:
            name = core.syscall_name(abi, nr)
            mask = core.syscall_arg32(abi, name) if name else 0
            oargs = oracle.truncate_args(args, mask)
            if oargs != args:
                stats.add("d_truncated")
        if self.unknown_listed:
            # (c) the call's syscall is named by a rule libseccomp does not know ...
            if abi is not None and self.unknown and core.syscall_name(abi, nr) in self.unknown:
                stats.add("skip_c_unknown_name")
                return
            # ... or nr lies between the two ENOSYS cut-offs because of such names: the stub
            # verdicts differ, and agree once the unknown names are left out of our policy
            if self.stubbed:
                lib_stub = oracle.stub_decide(self.ref.sections, audit, nr) is not None
                if (decision[1] == 3) != lib_stub and \
                        (self.without_unknown()(audit, nr, args)[1] == 3) == lib_stub:
                    stats.add("skip_c_cutoff")
                    return
        try:
            want_model = self.model.decide(audit, nr, oargs)[0]
        except oracle.Conflict:
            stats.add("skip_b_conflict")
            return
        want = self.ref.decide(audit, nr, oargs)
        if want != want_model:
            if self.ref.hits_acc_bug(audit, nr, oargs):
                stats.add("L_libseccomp_acc_bug")
                want = want_model
            elif self.unmerged(audit, nr, oargs) == want_model:
                stats.add("L_libseccomp_merge_bug")
                want = want_model
            else:
                self.fail("oracle-bpf-vs-model", audit, nr, args, ours=ours, oracle=want,
                          model=want_model, oargs=oargs, decide=decision)
                return
        if ours != want:
            self.fail("ours-vs-libseccomp", audit, nr, args, ours=ours, oracle=want, oargs=oargs,
                      decide=decision)
        else:
            stats.add("compared")

    def unmerged(self, audit, nr, args):
        try:
            return self.ref.unmerged_decide(audit, nr, args)
        except oracle.Conflict:
            return None

    def classify(self, audit, nr, args, decision):
        """Name the known mechanism behind an ours-vs-libseccomp mismatch, or 'unclassified'."""
        sabi = self.stub_abi(audit, nr)
        lib_stub = oracle.stub_decide(self.ref.sections, audit, nr) is not None
        our_stub = decision[1] == 3
        if our_stub != lib_stub:
            if sabi in self.arches:
                every, _, visible = self.our_cutoffs(sabi)
                if our_stub and every == 0:
                    return "stub-with-largest-nr-0 (runc: no stub section when max is 0)"
                if audit == AUDIT["x86_64"] and nr >= X32_BIT and \
                        (self.abi(audit, nr) is None or nr & 0xC0000000 == 0x80000000):
                    return "stub-x86_64-high-nr (runc's stub tests bit 30 only)"
                if (visible and nr > visible) == lib_stub:
                    return ("stub-cutoff-libseccomp-pseudo-nr (names libseccomp resolves to a "
                            "pseudo number on this ABI do not count for runc)")
                return "stub-cutoff-differs"
            if audit == AUDIT["x86_64"] and nr >= X32_BIT:
                return "stub-x86_64-high-nr (runc's stub tests bit 30 only)"
            return "stub-verdict-differs"
        abi = self.abi(audit, nr)
        if abi is not None:
            name = core.syscall_name(abi, nr)
            if name and oracle.known_to_libseccomp(name) and oracle.lib_resolve(abi, name) < 0 \
                    and any(r.name == name for r in self.policy.rules):
                return "name-pseudo-in-libseccomp-on-this-abi (libseccomp's table lacks it here)"
            lib_arch = oracle.lib_arch_for(self.policy, audit, nr)
            if lib_arch:
                for _, _, conds in oracle.applicable_rules(self.policy, lib_arch, nr):
                    if conds and all(oracle.lib_cond_dropped(c, oracle.LIB_IS64[lib_arch])
                                     for c in conds):
                        return ("masked-eq-zero-mask-is-unconditional (libseccomp drops the "
                                "tautology, the rule becomes unconditional)")
        return "unclassified"

    def fail(self, kind, audit, nr, args, **info):
        if kind == "ours-vs-libseccomp":
            info["class"] = self.classify(audit, nr, args, info["decide"])
            key = info["class"].split()[0]
            if key in ACCEPTED:
                self.stats.add("accepted_" + key)
                return
            self.stats.add("MISMATCH_" + key)
        else:
            self.stats.add("MISMATCH_" + kind)
        abi = self.abi(audit, nr)
        name = core.syscall_name(abi, nr) if abi else None
        shown = {k: (action_name(v) if isinstance(v, int) else v) for k, v in info.items()}
        if "oargs" in info:
            shown["oargs"] = "(" + ", ".join("%#x" % a for a in info["oargs"]) + ")"
        if "decide" in info:
            a, d, i = info["decide"]
            shown["decide"] = "%s by %s%s" % (action_name(a), DECIDER.get(d, d),
                                              " #%d (%s)" % (i, self.policy.rules[i].name)
                                              if i >= 0 else "")
        text = ("%s: arch=%#x nr=%#x (%s %s) args=%s\n  %s\n%s\n  reproducer: %s" % (
            kind, audit, nr, abi, name, "(" + ", ".join("%#x" % a for a in args) + ")",
            "  ".join("%s=%s" % kv for kv in shown.items()),
            describe_policy(self.policy, {name} | {oracle.lib_name(abi, nr)} if abi else ()),
            policy_literal(self.policy)))
        if COLLECT:
            with open(COLLECT, "a") as out:
                out.write(json.dumps({"kind": kind, "audit": audit, "nr": nr, "args": list(args),
                                      "abi": abi, "name": name,
                                      "info": {k: str(v) for k, v in shown.items()},
                                      "policy": policy_literal(self.policy)}) + "\n")
            return
        raise Mismatch(text)


# ------------------------------------------------------------------------------------------------
# Argument vectors that hit rule boundaries


def boundary_values(cond, is64=True):
    v = cond.value
    if cond.op == MEQ:
        m, t = cond.value, cond.value_two & cond.value
        low = m & -m if m else 1
        vals = {t, t | (~m & M64), t ^ low, t | (1 << 32), t & M32, (t & M32) | (~m & M64 & ~M32),
                cond.value_two, 0, M64}
    else:
        vals = {v, (v - 1) & M64, (v + 1) & M64, v & M32, (v & M32) | (1 << 32),
                v | (M64 ^ M32), ((v & M32) + 1) & M32, 0, M64}
    return sorted(vals)


def satisfying(cond, is64):
    for b in boundary_values(cond, is64):
        if oracle.lib_cond_matches(cond, b, is64):
            return b
    return cond.value


def arg_vectors(cond_lists, is64, rng, cap=64, extra=()):
    """Zero args, a satisfying vector per rule, and boundary variations of each condition."""
    out = {(0,) * 6}
    for conds in cond_lists:
        base = [0] * 6
        for c in conds:
            base[c.index] = satisfying(c, is64)
        out.add(tuple(base))
        for c in conds:
            for b in boundary_values(c, is64):
                v = list(base)
                v[c.index] = b
                out.add(tuple(v))
    # pairs of rules satisfied together (overlaps between rules)
    sats = []
    for conds in cond_lists:
        v = [None] * 6
        for c in conds:
            v[c.index] = satisfying(c, is64)
        sats.append(v)
    for i in range(len(sats)):
        for j in range(i + 1, len(sats)):
            v = [a if a is not None else b for a, b in zip(sats[i], sats[j])]
            out.add(tuple(x or 0 for x in v))
    for e in extra:
        out.add(tuple(e) + (0,) * (6 - len(e)))
    out = sorted(out)
    if len(out) > cap:
        out = [(0,) * 6] + rng.sample(out, cap - 1)
    return out


CLONE_FLAGS = [0, 0x11, 0x3D0F00, 0x20000, 0x10000000, 0x20000000, 0x40000000, 0x08000000,
               0x04000000, 0x02000000, 0x80000000, 0x7E020000, 0x7E020011, 0x00020011,
               1 << 32, (1 << 32) | 0x11, 0xFFFFFFFF, M64]
PERSONALITY = [0, 8, 0x20000, 0x20008, 0xFFFFFFFF, 0x1FFFFFFFF, 1, 0x0400000, M64]


def named_extras(name, cond_lists):
    """Hand-picked vectors: socket domains 0..45, clone flags, personality values."""
    out = []
    on_a0 = any(c.index == 0 for conds in cond_lists for c in conds)
    if name == "socket" and on_a0:
        out += [(d, 1, 0) for d in range(46)] + [(40 | 1 << 32,), (38 | 1 << 32,), (M64,)]
    if name in ("clone", "unshare", "setns") and on_a0:
        out += [(f,) for f in CLONE_FLAGS]
    if name == "clone3":
        out += [(0, 88), (1 << 32, 88)]
    if name == "personality":
        out += [(p,) for p in PERSONALITY]
    return out


def calls_for(diff, rng, nr_range=None, cap=64):
    """Every (audit, nr, args) worth checking for one policy."""
    policy = diff.policy
    calls = []
    for abi in diff.arches:
        audit = AUDIT[abi]
        bit = X32_BIT if abi == "x32" else 0
        is64 = oracle.LIB_IS64[abi]
        lib_arch = abi
        ordinary = [nr & ~X32_BIT for _, nr, _ in core.syscall_table(abi) if nr < 0xF0000]
        lib_top = (oracle.libseccomp_max_nr(policy, abi) or 0) & ~X32_BIT
        top = max(ordinary + [lib_top if lib_top < 0xF0000 else 0,
                              460 if abi != "x32" else 560])
        numbers = list(range(0, top + 21)) if nr_range is None else nr_range(abi, top)
        if abi == "arm":                      # ARM private syscalls live at 0x0f0000 + n
            numbers = sorted(set(numbers) | set(range(0xF0000, 0xF0010)))
        conds_by_nr = {}
        for n, placed in diff.model.placements(lib_arch).items():
            conds_by_nr.setdefault(n, []).extend(list(c) for _, _, c in placed if c)
        for r in policy.rules:
            n = core.syscall_nr(abi, r.name)
            if n >= 0 and r.conds:
                conds_by_nr.setdefault(n & M32, []).append(list(r.conds))
        for n in numbers:
            n |= bit
            cond_lists = conds_by_nr.get(n)
            if cond_lists:
                name = core.syscall_name(abi, n) or oracle.lib_name(abi, n) or ""
                for args in arg_vectors(cond_lists, is64, rng, cap, named_extras(name, cond_lists)):
                    calls.append((audit, n, args))
            else:
                calls.append((audit, n, (0,) * 6))
                calls.append((audit, n, (M64, 1 << 32, M32, 0, 0, 0)))
    # x86_64 numbers with high bits (x32 bit, "negative" numbers), -1, and foreign arches
    x86_64 = AUDIT["x86_64"]
    high = [0x40000000, 0x40000001, 0x4000003F, 0x400001FF, 0x40000200, 0x40000221, 0x7FFFFFFF,
            0x80000000, 0x80000027, 0xBFFFFFFF, 0xC0000000, 0xFFFFFFFE, 0xFFFFFFFF]
    high += [rng.randrange(X32_BIT, 1 << 32) for _ in range(24)]
    for n in high:
        calls.append((x86_64, n, (0,) * 6))
    for audit in (AUDIT["x86"], AUDIT["aarch64"], AUDIT["arm"]):
        for n in (0xFFFFFFFF, 0x80000000, 1000, 7331, 0x0F0005):
            calls.append((audit, n, (0,) * 6))
    for audit in (0, 0x12345678, 0xFFFFFFFF, 0xC00000F3, 0x40000008):
        for n in (0, 1, 59, 0xFFFFFFFF):
            calls.append((audit, n, (0,) * 6))
    return calls


def run_calls(diff, calls):
    for audit, nr, args in calls:
        diff.check(audit, nr, args)


# ------------------------------------------------------------------------------------------------
# Real profiles


def load_profile(name, host, caps):
    profile = pytest.importorskip("sandbox.profile", reason="sandbox.profile is not written yet")
    if not os.path.exists(os.path.join(PROFILES, name)):
        pytest.skip("profile %s not found in %s" % (name, PROFILES))
    return profile.load(os.path.join(PROFILES, name), host_arch=host, caps=caps, kernel=(6, 18))


PROFILE_FILES = ["docker-default.json", "moby-profiles-default.json", "podman-default.json",
                 "podman-container-libs-default.json"]


def _report(request, what, stats, seconds):
    line = "%s: %s in %.1fs" % (what, stats.summary(), seconds)
    print(line)
    request.node.user_properties.append(("differential", line))
    out = os.environ.get("DIFF_STATS")
    if out:
        with open(out, "a") as fh:
            fh.write(line + "\n")


def assert_skips_reasonable(stats, max_conflict=0.25, max_unknown=0.10):
    total = max(stats["decisions"], 1)
    assert stats["skip_b_conflict"] <= max_conflict * total, stats.summary()
    assert stats["skip_c_unknown_name"] + stats["skip_c_cutoff"] <= max_unknown * total, \
        stats.summary()
    assert stats["compared"] >= 0.5 * total, stats.summary()


@pytest.mark.parametrize("caps", ["nocaps", "dockercaps"])
@pytest.mark.parametrize("host", ["x86_64", "aarch64"])
@pytest.mark.parametrize("profile_file", PROFILE_FILES)
def test_profile(profile_file, host, caps, request):
    started = time.time()
    policy = load_profile(profile_file, host, () if caps == "nocaps" else DOCKER_DEFAULT_CAPS)
    stats = Stats()
    diff = Differential(policy, stats, sample_interp=8)
    assert diff.ref.refused is None, diff.ref.refused
    rng = random.Random("%s/%s/%s" % (profile_file, host, caps))
    run_calls(diff, calls_for(diff, rng))
    _report(request, "%s %s %s" % (profile_file, host, caps), stats, time.time() - started)
    assert stats["decisions"] > 1500
    # real profiles have no same-syscall conflicts with different actions worth mentioning
    assert_skips_reasonable(stats, max_conflict=0.02, max_unknown=0.05)


@pytest.mark.parametrize("host", ["x86_64", "aarch64"])
@pytest.mark.parametrize("profile_file", PROFILE_FILES)
def test_profile_cache(profile_file, host, request):
    """The kernel's action cache (seccomp_is_const_allow): our C emulation agrees with bpfsim's on
    our program, and every (arch, nr) the kernel can cache under runc + libseccomp it can cache
    under ours too (else we would be slower on that syscall)."""
    if not hasattr(core, "bpf_const_allow"):
        pytest.skip("sandbox._core has no bpf_const_allow")
    policy = load_profile(profile_file, host, DOCKER_DEFAULT_CAPS)
    stats = Stats()
    diff = Differential(policy, stats)
    worse = []
    for abi in diff.arches:
        audit, bit = AUDIT[abi], (X32_BIT if abi == "x32" else 0)
        for n in range(0, 480):
            nr = n | bit
            ours, _ = core.bpf_const_allow(diff.prog, audit, nr)
            sim, _ = bpfsim.const_allow(diff.insns, audit, nr)
            assert ours == sim, (abi, nr, ours, sim)
            runc = diff.ref.const_allow(audit, nr)
            stats.add("cacheable_ours" if ours else "uncached_ours")
            stats.add("cacheable_runc" if runc else "uncached_runc")
            if runc and not ours:
                worse.append("%s %#x (%s)" % (abi, nr, core.syscall_name(abi, nr)))
    _report(request, "%s %s cache" % (profile_file, host), stats, 0.0)
    assert not worse, "cacheable under runc + libseccomp, not under ours: %s" % ", ".join(worse)


@pytest.mark.parametrize("profile_file", PROFILE_FILES[:2])
def test_profile_args_like_libseccomp(profile_file, request):
    """With args_like_libseccomp, no truncation at all: ours == libseccomp on the raw args."""
    started = time.time()
    policy = load_profile(profile_file, "x86_64", DOCKER_DEFAULT_CAPS)
    policy.args_like_libseccomp = True
    stats = Stats()
    diff = Differential(policy, stats)
    rng = random.Random(profile_file)
    run_calls(diff, calls_for(diff, rng, nr_range=lambda abi, top: range(0, 64)))
    _report(request, "%s args_like_libseccomp" % profile_file, stats, time.time() - started)
    assert stats["d_truncated"] == 0
    assert_skips_reasonable(stats, max_conflict=0.02, max_unknown=0.05)


# ------------------------------------------------------------------------------------------------
# Generated policies

NAMES = ["read", "write", "openat", "mmap", "ioctl", "kill", "getpid", "socket", "connect",
         "accept", "recvmmsg", "semop", "shmat", "socketcall", "send", "personality", "clone",
         "arch_prctl", "mseal", "futex_waitv"]
INTERESTING = [0, 1, 2, 3, 5, 8, 10, 16, 38, 39, 40, 41, 0xFF, 0xF00, 0x20000, 0x7E020000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x100000000, 0x100000001,
               0x100000028, 0x1FFFFFFFF, 0x123456789ABC, 2**63 - 1, 2**63, M64 - 1, M64,
               0xFFFFFFFF00000000, 0xFFFFFFFF80000000, 0xFFFFFFFF00000028]
ARCH_SETS = [("x86_64",), ("x86_64", "x86"), ("x86_64", "x86", "x32"), ("x86_64", "x32")]
ARM_SETS = [("aarch64", "arm"), ("aarch64",)]     # as resolved for an arm64 host

values = st.one_of(st.sampled_from(INTERESTING), st.integers(0, M64), st.integers(0, 64),
                   st.integers(0, M32))


@st.composite
def conds(draw):
    n = draw(st.integers(0, 3))
    indexes = draw(st.lists(st.one_of(st.integers(0, 2), st.integers(0, 5)), min_size=n,
                            max_size=n, unique=True))
    out = []
    for i in indexes:
        op = draw(st.integers(1, 7))
        value = draw(values)
        value_two = draw(st.one_of(values, st.just(0))) if op == MEQ else 0
        out.append(Cond(i, op, value, value_two))
    return tuple(out)


actions = st.one_of(
    st.just(RET_ALLOW), st.just(RET_ALLOW),
    st.builds(lambda n: RET_ERRNO | n, st.one_of(st.sampled_from([0, 1, 13, 38, 4094]),
                                                 st.integers(0, 4094))),
    st.just(RET_KILL_THREAD), st.just(RET_KILL_PROCESS), st.just(RET_TRAP),
    st.builds(lambda n: RET_TRACE | n, st.integers(0, 0xFFFF)), st.just(RET_LOG))


@st.composite
def policies(draw, names=NAMES, arch_sets=ARCH_SETS):
    default = draw(actions)
    pool = draw(st.lists(st.sampled_from(names), min_size=1, max_size=6, unique=True))
    rules = []
    for _ in range(draw(st.integers(1, 12))):
        action = draw(actions)
        if action == default:
            continue                        # runc drops these before libseccomp sees them
        rules.append(Rule(draw(st.sampled_from(pool)), action, draw(conds())))
    extra = draw(st.lists(st.sampled_from(NAMES), max_size=3))
    stub_names = tuple(dict.fromkeys([r.name for r in rules] + extra))
    arches = draw(st.sampled_from(arch_sets))
    return Policy(default_action=default, arches=arches, host_arch=arches[0],
                  rules=tuple(rules), stub_names=stub_names,
                  enosys_stub=draw(st.sampled_from([True, True, False])),
                  args_like_libseccomp=draw(st.sampled_from([False, False, True])))


def generated_calls(diff, rng):
    """Around every rule: the rule's syscall on each ABI with boundary args, the stub cut-offs,
    plus a spread of other numbers."""
    def numbers(abi, top):
        wanted = set(range(0, 8)) | {top, top + 1, 1000}
        for name in set(diff.policy.stub_names):
            for n in (core.syscall_nr(abi, name), oracle.lib_resolve(abi, name)):
                if n >= 0:
                    n &= ~X32_BIT
                    wanted |= {n - 1, n, n + 1}
        if abi == "x86":
            wanted |= {102, 117} | set(oracle.X86_SOCKET_DIRECT.values()) | \
                set(oracle.X86_IPC_DIRECT.values())
        wanted |= {rng.randrange(0, top + 20) for _ in range(8)}
        return sorted(n for n in wanted if n >= 0)
    return calls_for(diff, rng, nr_range=numbers, cap=48)


GEN_EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "120"))


@pytest.mark.parametrize("arches", ARCH_SETS + ARM_SETS,
                         ids=["+".join(a) for a in ARCH_SETS + ARM_SETS])
def test_generated(arches, request):
    """Hypothesis-generated policies (DIFF_EXAMPLES per arch set, reproducible: derandomized)."""
    stats = Stats()
    started = time.time()

    @settings(max_examples=GEN_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(policies(arch_sets=[arches]))
    def check_policy(policy):
        diff = Differential(policy, stats)
        rng = random.Random(policy.digest())
        run_calls(diff, generated_calls(diff, rng))

    check_policy()
    _report(request, "generated %s" % "+".join(arches), stats, time.time() - started)
    assert stats["decisions"] >= 100 * GEN_EXAMPLES
    assert stats["policies_libseccomp_hang"] <= max(2, 0.01 * stats["policies"]), stats.summary()
    assert stats["policies_refused_EEXIST"] + stats["policies_refused_EINVAL"] <= \
        0.3 * stats["policies"], stats.summary()
    assert_skips_reasonable(stats, max_conflict=0.25, max_unknown=0.25)


# Policies built around the cases that matter most, as explicit data (fast, no hypothesis).

def R(name, action, *cs):
    return Rule(name, action, tuple(Cond(*c) for c in cs))


def P(default, rules, arches=("x86_64",), **kw):
    rules = tuple(rules)
    kw.setdefault("stub_names", tuple(dict.fromkeys(r.name for r in rules)))
    return Policy(default_action=default, arches=tuple(arches), rules=rules, **kw)


ALL3 = ("x86_64", "x86", "x32")
FOCUSED = {
    "listing-3arch": P(RET_ERRNO | 1, [R("getpid", RET_ALLOW), R("socket", RET_ALLOW, (0, NE, 40))],
                       ALL3),
    "socket-moby": P(RET_ERRNO | 1, [R("socket", RET_ALLOW, (0, LT, 38)),
                                     R("socket", RET_ALLOW, (0, EQ, 39)),
                                     R("socket", RET_ALLOW, (0, GT, 40)), R("socketcall", RET_ALLOW),
                                     R("clone3", RET_ERRNO | 38)], ALL3),
    "clone-masked": P(RET_ERRNO | 1, [R("clone", RET_ALLOW, (0, MEQ, 0x7E020000, 0)),
                                      R("clone3", RET_ERRNO | 38), R("getpid", RET_ALLOW)], ALL3),
    "personality": P(RET_ERRNO | 1, [R("personality", RET_ALLOW, (0, EQ, v))
                                     for v in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF)], ALL3),
    "x86_64-only-stub": P(RET_KILL_PROCESS, [R("read", RET_ALLOW), R("kcmp", RET_ALLOW)]),
    "x32-only-pair": P(RET_ERRNO | 1, [R("read", RET_ALLOW), R("write", RET_TRAP, (0, GE, 3))],
                       ("x86_64", "x32")),
    "high-bit-32bit-arg": P(RET_KILL_THREAD, [R("mprotect", RET_ALLOW, (0, EQ, 11), (1, NE, 12)),
                                              R("kill", RET_ALLOW, (1, EQ, 9)),
                                              R("read", RET_ALLOW, (0, LT, 3))], ALL3),
    "ipc": P(RET_ERRNO | 1, [R("shmat", RET_ALLOW), R("semop", RET_ALLOW, (1, EQ, 0)),
                             R("getpid", RET_ALLOW)], ALL3),
    "accept-only": P(RET_KILL_THREAD, [R("accept", RET_ALLOW)], ("x86_64", "x86")),
    "tautology-masked": P(RET_ERRNO | 1, [R("read", RET_ERRNO | 5, (0, MEQ, 0, 0)),
                                          R("read", RET_ALLOW)]),
    "tautology-masked-x86": P(RET_ERRNO | 1, [R("read", RET_ERRNO | 5, (0, MEQ, 1 << 32, 0)),
                                              R("read", RET_ALLOW, (1, EQ, 3))], ALL3),
    "socket-small-stub": P(RET_ERRNO | 1, [R("getpid", RET_ALLOW), R("socket", RET_ALLOW)],
                           ("x86_64", "x86")),
    "unknown-name": P(RET_ERRNO | 1, [R("read", RET_ALLOW), R("mseal", RET_ALLOW)], ALL3),
}


@pytest.mark.parametrize("key", sorted(FOCUSED))
def test_focused(key, request):
    started = time.time()
    stats = Stats()
    diff = Differential(FOCUSED[key], stats, sample_interp=1)
    rng = random.Random(key)
    run_calls(diff, calls_for(diff, rng))
    _report(request, "focused %s" % key, stats, time.time() - started)

"""Properties of the emitted program: kernel validity, long jumps, size limit, action cache."""
import struct

import pytest

from sandbox import _core, profile
from sandbox.disasm import disassemble
from sandbox.filter import Filter
from sandbox.policy import (OPS, RET_ALLOW, RET_ERRNO, RET_KILL_THREAD, RET_TRAP, Cond, Policy,
                            Rule)

X86_64, I386 = 0xC000003E, 0x40000003


def _insns(program):
    return [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]


def _many_conditional_rules(n, arches=("x86_64", "x86", "x32")):
    """n syscalls, each with two argument rules: far more code than an 8-bit jump spans."""
    names = [name for name, _nr, _w in _core.syscall_table("x86_64")][:n]
    rules = []
    for i, name in enumerate(names):
        rules.append(Rule(name, RET_ERRNO | (i % 200 + 1), (Cond(0, OPS["SCMP_CMP_EQ"], i),)))
        rules.append(Rule(name, RET_TRAP, (Cond(1, OPS["SCMP_CMP_GT"], 2**40 + i),)))
    return Policy(default_action=RET_ALLOW, arches=arches, rules=tuple(rules),
                  stub_names=tuple(names))


def test_long_jumps_are_bridged_and_decisions_hold():
    policy = _many_conditional_rules(150)
    compiled = _core.Compiled(policy)
    program = compiled.program
    _core.bpf_validate(program)
    assert len(program) // 8 > 600  # jumps of more than 255 instructions were needed
    ja = [i for i in _insns(program) if i[0] == 0x05]
    assert ja, "expected ja trampolines in a program this long"
    for name, nr, _w in _core.syscall_table("x86_64")[:150]:
        for args in ((0,), (nr % 200,), (7, 2**40 + 500), (3, 2**40), (1, 2**41)):
            for audit, n in ((X86_64, nr), (X86_64, nr | 0x40000000)):
                want = compiled.decide(audit, n, args)[0]
                assert _core.bpf_run(program, audit, n, args)[0] == want, (name, args)


def test_a_program_over_4096_instructions_is_a_clear_error():
    with pytest.raises(_core.CompileError, match="at most 4096"):
        _core.compile(_many_conditional_rules(380))


def test_every_unconditional_allow_is_served_by_the_action_cache():
    policy = profile.load(str(profile_path("default")), host_arch="x86_64", caps="docker",
                          kernel=(6, 18))
    flt = Filter(policy)
    checked = 0
    for arch, audit in (("x86_64", X86_64), ("x86", I386)):
        for name, nr, _w in _core.syscall_table(arch):
            action, by, idx = flt._compiled.decide(audit, nr)
            if action == RET_ALLOW and by == _core.DECIDED_BY_RULE and not policy.rules[idx].conds:
                assert _core.bpf_const_allow(flt.program, audit, nr)[0], (arch, name)
                checked += 1
            elif by == _core.DECIDED_BY_RULE and policy.rules[idx].conds:
                # argument rules are never on a cached path
                assert not _core.bpf_const_allow(flt.program, audit, nr)[0], (arch, name)
    assert checked > 600


def test_arch_check_comes_first_and_unknown_arches_get_the_bad_arch_action():
    policy = Policy(default_action=RET_ALLOW, arches=("x86_64",), rules=(),
                    badarch_action=RET_KILL_THREAD)
    program = _core.compile(policy)
    first = _insns(program)[0]
    assert first[0] == 0x20 and first[3] == 4  # ld [4]: seccomp_data.arch
    for audit in (I386, 0xC00000B7, 0x40000028, 0):
        assert _core.bpf_run(program, audit, 0)[0] == RET_KILL_THREAD


def test_disassembly_names_arches_fields_and_actions():
    text = disassemble(_core.compile(_many_conditional_rules(3)))
    assert "; arch" in text and "; x86_64" in text and "; nr" in text
    assert "a0.lo" in text and "ALLOW" in text and "TRAP" in text


def profile_path(name):
    from sandbox import builtin
    return builtin.path(name)

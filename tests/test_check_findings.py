"""Findings of `sandbox check` that come from the compiler's argument widths."""
from sandbox import profile
from sandbox.check import check


def _load(rule_value, op="SCMP_CMP_EQ", **opts):
    doc = {"defaultAction": "SCMP_ACT_ALLOW",
           "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": [{"names": ["close"], "action": "SCMP_ACT_ERRNO",
                         "args": [{"index": 0, "value": rule_value, "op": op}]}]}
    return profile.load(doc, host_arch="x86_64", caps="none", kernel=(6, 18), **opts)


def test_64bit_minus_one_on_an_int_argument_is_reported_dead():
    findings = [f for f in check(_load(2**64 - 1)) if "32-bit" in f]
    assert findings == [
        'syscalls[0].names[0]: a0 == 0xffffffffffffffff compares argument 0 of "close", which '
        'the kernel reads as 32-bit, with a value that has high bits set: as the kernel reads '
        'the argument that compare is always false on x86_64 (write 4294967295 for a 32-bit '
        '-1, or use --args-like-libseccomp)']


def test_not_equal_is_reported_always_true():
    findings = [f for f in check(_load(2**64 - 1, op="SCMP_CMP_NE")) if "32-bit" in f]
    assert len(findings) == 1 and "always true" in findings[0]


def test_low_word_values_and_libseccomp_mode_are_not_reported():
    assert not [f for f in check(_load(2**32 - 1)) if "32-bit" in f]
    assert not [f for f in check(_load(2**64 - 1, args_like_libseccomp=True)) if "32-bit" in f]


def test_a_masked_eq_with_mask_zero_counts_as_unconditional():
    """The compiler (as libseccomp) drops the tautology, so the rule decides for every call:
    the unconditional rule after it is the one that never applies, not the other way round."""
    from sandbox.filter import compile_policy
    doc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 1, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["kill"], "action": "SCMP_ACT_KILL"}]}
    policy = profile.load(doc, host_arch="x86_64", caps="none", kernel=(6, 18))
    assert compile_policy(policy).decide("kill", (2, 9)).rule_path == "syscalls[0].names[0]"
    shadowed = [f for f in check(policy) if "never applies" in f]
    assert len(shadowed) == 1 and shadowed[0].startswith("syscalls[1].names[0]: "), shadowed
    assert "syscalls[0].names[0] (ERRNO(1)) wins" in shadowed[0], shadowed


def test_an_entry_whose_ored_conditions_hold_for_every_call_is_reported():
    """Docker's AF_ALG pitfall: a repeated index makes runc OR the conditions."""
    def load(args):
        return profile.load({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["socket", "socketpair"], "action": "SCMP_ACT_ALLOW", "args": args}]},
            host_arch="x86_64", caps="none", kernel=(6, 18))
    ne = [{"index": 0, "value": v, "op": "SCMP_CMP_NE"} for v in (38, 40)]
    found = [f for f in check(load(ne)) if "OR-ed" in f]
    assert found == [
        "syscalls[0]: an argument index repeats, so runc gives each condition a rule of its own, "
        "OR-ed (a0 != 0x26 || a0 != 0x28), and together they hold for every call: ALLOW "
        "applies to every socket(), socketpair() (to exclude values, give them rules of their "
        "own with the other action)"]
    # OR-ed but not always true, an index that does not repeat, or a MASKED_EQ: nothing
    eq = [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"} for v in (1, 10)]
    lt_gt = [{"index": 0, "value": 5, "op": "SCMP_CMP_LT"},
             {"index": 0, "value": 5, "op": "SCMP_CMP_GT"}]
    for args in (eq, lt_gt, ne[:1], [dict(ne[0], op="SCMP_CMP_MASKED_EQ", valueTwo=1), ne[1]]):
        assert not [f for f in check(load(args)) if "OR-ed" in f], args
    covering = lt_gt + [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"}]
    assert [f for f in check(load(covering)) if "OR-ed" in f]

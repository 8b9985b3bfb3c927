"""The shortcuts profile.load() takes for speed give the answers the slow paths gave.

- syscalls.ALL_NAMES (one frozenset read from the core at import) stands in for a C call per
  name; it is exact only if the core's name list is the list its binary search runs over.
- profile._Loader validates and converts names in bulk; the JSON paths, warnings, rules and
  stub names must be those of the name-by-name code (expected values below were produced by it).
- the loader tests well-formed entries, arguments, filters and archMap entries in C and makes
  rule paths on demand; what it reports must be what the detailed checks reported (the tests at
  the end pass against the loader before those shortcuts too).
"""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from sandbox import _core, syscalls  # noqa: E402
from sandbox.policy import OPS, RET_ALLOW, RET_LOG, Cond, Rule  # noqa: E402
from sandbox.profile import ProfileError, load  # noqa: E402

HOST = dict(host_arch="x86_64", caps="none", kernel=(6, 1))


def test_all_names_is_the_cores_name_list():
    names = _core.syscall_all_names()
    assert syscalls.ALL_NAMES == frozenset(names)
    encoded = [name.encode() for name in names]
    # sb_syscall_known() binary-searches this list with strcmp: strictly sorted bytes means it
    # finds exactly the names of the list, so set membership and the C answer agree.
    assert all(a < b for a, b in zip(encoded, encoded[1:]))
    assert all(_core.syscall_known(name) for name in names)


@pytest.mark.parametrize("name", ["read", "READ", "read ", "re\0ad", "", "nosuchcall", "write",
                                  "socketcall", "arch_prctl", "x" * 300])
def test_known_agrees_with_core(name):
    assert syscalls.known(name) == ("\0" not in name and bool(_core.syscall_known(name)))


@pytest.mark.parametrize("value", [None, 3, b"read", ("read",)])
def test_known_non_strings(value):
    assert syscalls.known(value) is False


def test_convert_unknown_duplicate_redundant_split():
    doc = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["read", "nosuchcall", "write", "read\u0000x", "read"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["close", "bogus2", "write"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["openat", "close"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NOPE"]}},
            {"names": ["umount2"], "action": "SCMP_ACT_ALLOW",
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["amd64", "sparc"]}},
            {"name": "ptrace", "action": "SCMP_ACT_ALLOW"},
        ],
    }
    policy = load(doc, **HOST)
    eq1, eq2 = (Cond(index=0, op=OPS["SCMP_CMP_EQ"], value=v) for v in (1, 2))
    assert [(r.name, r.action, r.conds, r.path) for r in policy.rules] == [
        ("read", RET_ALLOW, (), "syscalls[0].names[0]"),
        ("write", RET_ALLOW, (), "syscalls[0].names[2]"),
        ("read", RET_ALLOW, (), "syscalls[0].names[4]"),
        ("openat", RET_LOG, (eq1,), "syscalls[2].names[0]"),
        ("openat", RET_LOG, (eq2,), "syscalls[2].names[0]"),
        ("close", RET_LOG, (eq1,), "syscalls[2].names[1]"),
        ("close", RET_LOG, (eq2,), "syscalls[2].names[1]"),
        ("ptrace", RET_ALLOW, (), "syscalls[5].name"),
    ]
    assert policy.stub_names == ("read", "write", "close", "openat", "ptrace")
    assert policy.warnings == [
        'syscalls[3].includes.caps[1]: unknown capability "CAP_NOPE", it never matches',
        'syscalls[4].excludes.arches[1]: unknown architecture name "sparc" (expected a name '
        'such as amd64, x86, arm64, arm), it never matches',
        'syscalls[0].names[1]: unknown syscall "nosuchcall", skipped (as runc does)',
        'syscalls[0].names[3]: unknown syscall "read\\u0000x", skipped (as runc does)',
        'syscalls[1].names[1]: unknown syscall "bogus2", skipped (as runc does)',
        "syscalls[1]: action ERRNO(1) equals the default action, the entry's rules are dropped "
        "(as runc does)",
    ]


def test_unknown_syscall_strict_stops_at_the_first():
    doc = {"defaultAction": "SCMP_ACT_ERRNO",
           "syscalls": [{"names": ["read", "bogus1", "bogus2"], "action": "SCMP_ACT_ALLOW"}]}
    with pytest.raises(ProfileError) as err:
        load(doc, strict=True, **HOST)
    assert str(err.value) == ('syscalls[0].names[1]: unknown syscall "bogus1", skipped (as runc '
                              'does) (strict mode)')


@pytest.mark.parametrize("names, action, message", [
    # every item is type-checked before any is checked for emptiness
    (["read", 3, ""], "SCMP_ACT_ALLOW", 'syscalls[0].names[1]: expected a string, got 3'),
    (["", "read", 3], "SCMP_ACT_ALLOW", 'syscalls[0].names[2]: expected a string, got 3'),
    (["read", "", "x", ""], "SCMP_ACT_ALLOW",
     'syscalls[0].names[1]: empty string is not a valid syscall name ""'),
    ([], "SCMP_ACT_ALLOW", "syscalls[0].names: no syscall names (need at least one) []"),
    # the names are checked before the action; the first "write" is the one reported
    (["read", "", "write"], "SCMP_ACT_NOTIFY",
     'syscalls[0].names[1]: empty string is not a valid syscall name ""'),
    (["read", "open", "write", "write"], "SCMP_ACT_NOTIFY",
     'syscalls[0].names[2]: SCMP_ACT_NOTIFY on "write" is refused, as runc does (the runtime '
     'writes after loading the filter) "write"'),
])
def test_name_list_errors(names, action, message):
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": names, "action": action}]}
    with pytest.raises(ProfileError) as err:
        load(doc, **HOST)
    assert str(err.value) == message


def test_legacy_name_errors():
    for value, message in [("", 'syscalls[0].name: empty string is not a valid syscall name ""'),
                           (7, "syscalls[0].name: expected a string, got 7")]:
        doc = {"defaultAction": "SCMP_ACT_ERRNO",
               "syscalls": [{"name": value, "action": "SCMP_ACT_ALLOW"}]}
        with pytest.raises(ProfileError) as err:
            load(doc, **HOST)
        assert str(err.value) == message


# The loader's C-level tests for well-formed entries, arguments, filters and archMap entries
# must let through exactly what the detailed checks would pass without a word.

def test_shortcuts_still_see_duplicate_keys_inside_parts():
    text = ('{"defaultAction": "SCMP_ACT_ERRNO", "archMap": ['
            '{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},'
            '{"architecture": "SCMP_ARCH_AARCH64", "architecture": "SCMP_ARCH_ARM"}],'
            '"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",'
            '"args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ", "op": "SCMP_CMP_NE"}],'
            '"includes": {"caps": [], "caps": ["CAP_SYS_ADMIN"]}}]}')
    policy = load(text, **dict(HOST, caps="all"))
    assert policy.warnings == [
        "archMap[1].architecture: duplicate key, the last value is used (as Go does)",
        "syscalls[0].args[0].op: duplicate key, the last value is used (as Go does)",
        "syscalls[0].includes.caps: duplicate key, the last value is used (as Go does)",
    ]
    assert [(r.name, [c.op for c in r.conds]) for r in policy.rules] == [
        ("read", [OPS["SCMP_CMP_NE"]])]


@pytest.mark.parametrize("arg, message", [
    ({"index": 0, "value": 1, "op": "SCMP_CMP_EQ", "valueTwo": False},
     "syscalls[0].args[0].valueTwo: expected an unsigned integer, got false"),
    ({"index": True, "value": 1, "op": "SCMP_CMP_EQ"},
     "syscalls[0].args[0].index: expected an unsigned integer, got true"),
    ({"index": 6, "value": 1, "op": "SCMP_CMP_EQ"},
     "syscalls[0].args[0].index: 6 is out of range (0..5)"),
    ({"index": 0, "value": 2**64, "op": "SCMP_CMP_EQ"},
     "syscalls[0].args[0].value: 18446744073709551616 is out of range (max 2**64-1)"),
    ({"index": 0, "value": 1, "op": "SCMP_CMP_EQUAL"},
     'syscalls[0].args[0].op: unknown operator "SCMP_CMP_EQUAL"'),
])
def test_argument_shortcut_leaves_errors_to_the_checks(arg, message):
    doc = {"defaultAction": "SCMP_ACT_ERRNO",
           "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [arg]}]}
    with pytest.raises(ProfileError) as err:
        load(doc, **HOST)
    assert str(err.value) == message


def test_argument_value_two_zero_or_absent_is_silent():
    masked = [{"index": 1, "value": 0xFF, "op": "SCMP_CMP_MASKED_EQ"},
              {"index": 2, "value": 7, "valueTwo": 0, "op": "SCMP_CMP_GT"}]
    policy = load({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": masked}]}, **HOST)
    assert policy.warnings == []
    assert policy.rules[0].conds == (Cond(1, OPS["SCMP_CMP_MASKED_EQ"], 0xFF, 0),
                                     Cond(2, OPS["SCMP_CMP_GT"], 7, 0))


def test_arch_map_entries_after_the_hosts_are_still_checked():
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARN"]}]}
    with pytest.raises(ProfileError) as err:
        load(doc, **HOST)
    assert str(err.value) == ('archMap[1].subArchitectures[0]: unknown architecture '
                              '"SCMP_ARCH_ARN"')


def test_action_shortcut_and_rule_paths():
    doc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ERRNO", "errno": ""},
        {"name": "close", "action": "SCMP_ACT_TRACE"}]}
    policy = load(doc, **HOST)
    assert [(r.name, r.action, r.path) for r in policy.rules] == [
        ("read", 0x00050001, "syscalls[0].names[0]"),
        ("write", 0x00050001, "syscalls[0].names[1]"),
        ("close", 0x7FF00001, "syscalls[1].name")]
    # a Rule built by hand takes its path as the fourth field, as before
    assert Rule("read", RET_ALLOW, (), "somewhere").path == "somewhere"
    assert Rule("read", RET_ALLOW).path == ""
    with pytest.raises(ProfileError) as err:
        load({"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"name": "write", "action": "SCMP_ACT_NOTIFY"}]}, **HOST)
    assert err.value.path == "syscalls[0].name"

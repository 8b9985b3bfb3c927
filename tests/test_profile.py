"""sandbox.profile (JSON -> Policy) and sandbox.check (findings).

Reference behaviour: /work/shared/docs/profile-semantics.md §4 (moby resolution, runc conversion)
and reference-test-cases.md §1-2. The real profiles are read from shared/profiles (never copied
into the repository); tests that need them skip when it is absent.
"""
import json
import os
import pathlib

import pytest

pytest.importorskip("sandbox._core")

from sandbox import check as checks  # noqa: E402
from sandbox import profile  # noqa: E402
from sandbox.policy import OPS, RET_ALLOW, RET_ERRNO, RET_TRACE, Cond, Policy  # noqa: E402
from sandbox.profile import ProfileError, load  # noqa: E402


def _shared_profiles() -> pathlib.Path:
    """shared/profiles: $SANDBOX_SHARED, else beside the repository (as CI lays it out), else
    /work/shared."""
    candidates = [os.environ.get("SANDBOX_SHARED"),
                  pathlib.Path(__file__).resolve().parents[2] / "shared", "/work/shared"]
    for candidate in filter(None, candidates):
        if (pathlib.Path(candidate) / "profiles").is_dir():
            return pathlib.Path(candidate) / "profiles"
    return pathlib.Path("/work/shared/profiles")


SHARED = _shared_profiles()
BROKEN = pathlib.Path(__file__).parent / "broken_profiles"
DOCKER_PROFILES = ["docker-default.json", "moby-profiles-default.json"]
PODMAN_PROFILES = ["podman-default.json", "podman-container-libs-default.json"]

ERRNO = lambda n: RET_ERRNO | n  # noqa: E731
EQ, NE, MASKED_EQ = OPS["SCMP_CMP_EQ"], OPS["SCMP_CMP_NE"], OPS["SCMP_CMP_MASKED_EQ"]
HOST = dict(host_arch="x86_64", caps=(), kernel=(6, 1))


def shared(name):
    path = SHARED / name
    if not path.exists():
        pytest.skip("shared profile %s not available" % path)
    return path


def actions(policy, name):
    """[(action, conds), ...] of the rules for one syscall, in order."""
    return [(r.action, r.conds) for r in policy.rules if r.name == name]


def names(policy):
    return list(dict.fromkeys(r.name for r in policy.rules))


def profile_of(*entries, **top):
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": list(entries)}
    doc.update(top)
    return doc


# ------------------------------------------------------------------------------------------------
# Sources and formats


def test_every_source_kind_gives_the_same_policy(tmp_path):
    doc = profile_of({"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"})
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    policies = [load(doc, **HOST), load(str(path), **HOST), load(path, **HOST),
                load("  \n" + json.dumps(doc), **HOST)]
    assert {p.digest() for p in policies} == {policies[0].digest()}
    assert [p.source for p in policies] == ["<dict>", str(path), str(path), "<json>"]


def test_file_not_found(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ProfileError) as exc:
        load(missing, **HOST)
    assert str(exc.value) == "%s: cannot read: No such file or directory" % missing
    assert exc.value.path == ""


def test_profile_error_is_a_value_error_with_a_path():
    doc = profile_of({"names": ["read"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]})
    with pytest.raises(ValueError) as exc:
        load(doc, **HOST)
    assert isinstance(exc.value, ProfileError)
    assert exc.value.path == "syscalls[0].args[0].index"


def test_oci_linux_seccomp_object():
    # runc seccomp.bats "SCMP_ACT_ERRNO default" / "errnoRet": EPERM unless errnoRet is given.
    doc = {"defaultAction": "SCMP_ACT_ALLOW",
           "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "flags": ["SECCOMP_FILTER_FLAG_LOG"],
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 100}]}
    policy = load(doc, **HOST)
    assert policy.default_action == RET_ALLOW
    assert policy.arches == ("x86_64", "x86", "x32")
    assert policy.flags == ("SECCOMP_FILTER_FLAG_LOG",)
    assert [(r.name, r.action, r.path) for r in policy.rules] == [
        ("mkdir", ERRNO(1), "syscalls[0].names[0]"),
        ("mkdirat", ERRNO(1), "syscalls[0].names[1]"),
        ("rmdir", ERRNO(100), "syscalls[1].names[0]"),
    ]
    # the host arch is not listed: it is added first anyway, and said so
    assert policy.warnings == ["architectures: the host architecture SCMP_ARCH_X86_64 is not "
                               "listed; it is added anyway (libseccomp always includes the "
                               "native arch)"]


def test_oci_config_json_takes_linux_seccomp():
    seccomp = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 6,
               "syscalls": [{"names": ["chdir"], "action": "SCMP_ACT_ALLOW",
                             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}
    config = {"ociVersion": "1.2.0", "process": {"args": ["sh"]},
              "linux": {"namespaces": [{"type": "pid"}], "seccomp": seccomp}}
    assert load(json.dumps(config), **HOST).to_json() == load(seccomp, **HOST).to_json()
    assert load(config, **HOST).default_action == ERRNO(6)
    bad = json.loads(json.dumps(config))
    bad["linux"]["seccomp"]["syscalls"][0]["args"][0]["op"] = "SCMP_CMP_IN"
    with pytest.raises(ProfileError, match=r"^linux\.seccomp\.syscalls\[0\]\.args\[0\]\.op: "):
        load(bad, **HOST)


def test_legacy_name_format():
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"name": "read", "action": "SCMP_ACT_ALLOW", "args": []},
                        {"name": "write", "action": "SCMP_ACT_ALLOW", "args": None}]}
    policy = load(doc, **HOST)
    assert [(r.name, r.path) for r in policy.rules] == [("read", "syscalls[0].name"),
                                                       ("write", "syscalls[1].name")]
    assert policy.warnings == []


@pytest.mark.parametrize("doc", [{}, {"defaultAction": ""}, {"defaultAction": None,
                                                             "syscalls": []},
                                 {"ociVersion": "1.0.0", "linux": {"seccomp": {}}}])
def test_no_default_action_and_no_syscalls_disables_seccomp(doc):
    assert load(doc, **HOST) is None


def test_oci_config_without_seccomp_is_an_error():
    with pytest.raises(ProfileError) as exc:
        load({"ociVersion": "1.0.0", "linux": {}}, **HOST)
    assert str(exc.value) == ("linux.seccomp: missing: this OCI config.json has no seccomp "
                              "profile")


# ------------------------------------------------------------------------------------------------
# Docker's default profiles


@pytest.mark.parametrize("name", DOCKER_PROFILES)
def test_docker_default_without_caps(name):
    policy = load(shared(name), **HOST)
    assert policy.warnings == []
    assert policy.default_action == ERRNO(1)
    assert policy.arches == ("x86_64", "x86", "x32")
    assert policy.flags is None
    assert actions(policy, "clone3") == [(ERRNO(38), ())]
    assert actions(policy, "clone") == [(RET_ALLOW, (Cond(0, MASKED_EQ, 0x7E020000, 0),))]
    assert actions(policy, "ptrace") == [(RET_ALLOW, ())]     # minKernel 4.8 <= 6.1
    assert actions(policy, "arch_prctl") == [(RET_ALLOW, ())]   # includes arches amd64
    for absent in ("mount", "chroot", "reboot", "bpf", "syslog", "s390_runtime_instr",
                   "sync_file_range2", "riscv_flush_icache", "open_by_handle_at"):
        assert absent not in names(policy)
    assert "clone3" in policy.stub_names and "ptrace" in policy.stub_names


@pytest.mark.parametrize("name", DOCKER_PROFILES)
def test_docker_default_with_docker_caps(name):
    policy = load(shared(name), host_arch="x86_64", caps="docker", kernel=(6, 1))
    assert actions(policy, "chroot") == [(RET_ALLOW, ())]        # CAP_SYS_CHROOT
    assert actions(policy, "clone3") == [(ERRNO(38), ())]
    assert "mount" not in names(policy)


@pytest.mark.parametrize("name", DOCKER_PROFILES)
def test_docker_default_with_sys_admin(name):
    policy = load(shared(name), host_arch="x86_64", caps=["CAP_SYS_ADMIN"], kernel=(6, 1))
    assert actions(policy, "clone3") == [(RET_ALLOW, ())]       # the ERRNO(38) entry excluded
    assert actions(policy, "clone") == [(RET_ALLOW, ())]        # the masked rule excluded
    assert actions(policy, "mount") == [(RET_ALLOW, ())]
    assert policy.caps == ("CAP_SYS_ADMIN",)


@pytest.mark.parametrize("kernel, present", [((4, 7), False), ((4, 8), True), ((3, 99), False),
                                             ("4.8.0-19-generic", True), ((5, 0), True)])
def test_docker_default_ptrace_needs_kernel_4_8(kernel, present):
    policy = load(shared("docker-default.json"), host_arch="x86_64", caps=(), kernel=kernel)
    assert ("ptrace" in names(policy)) is present
    assert ("ptrace" in policy.stub_names) is present
    assert ("process_vm_readv" in names(policy)) is present


def test_docker_default_on_arm64():
    policy = load(shared("docker-default.json"), host_arch="aarch64", caps=(), kernel=(6, 1))
    assert policy.arches == ("aarch64", "arm")
    assert "arch_prctl" not in names(policy)
    assert actions(policy, "arm_fadvise64_64") == [(RET_ALLOW, ())]   # includes arches arm64
    assert policy.warnings == []


def test_docker_default_on_a_host_without_archmap_entry():
    # Docker's archMap has no SCMP_ARCH_ARM entry: on a 32-bit ARM host the list stays empty,
    # which means native only.
    policy = load(shared("docker-default.json"), host_arch="armv7l", caps=(), kernel=(6, 1))
    assert policy.arches == ("arm",)
    assert policy.host_arch == "arm"


def test_moby_profiles_default_socket_rules():
    policy = load(shared("moby-profiles-default.json"), **HOST)
    assert [conds for _, conds in actions(policy, "socket")] == [
        (Cond(0, OPS["SCMP_CMP_LT"], 38),), (Cond(0, EQ, 39),), (Cond(0, OPS["SCMP_CMP_GT"], 40),)]


def test_real_profiles_compile():
    core = pytest.importorskip("sandbox._core")
    for name in DOCKER_PROFILES + PODMAN_PROFILES:
        program = core.compile(load(shared(name), host_arch="x86_64", caps="docker",
                                    kernel=(6, 1)))
        assert len(program) > 0 and len(program) % 8 == 0


# ------------------------------------------------------------------------------------------------
# podman / containers-common


@pytest.mark.parametrize("name", PODMAN_PROFILES)
def test_podman_default(name):
    policy = load(shared(name), **HOST)
    assert policy.warnings == []
    assert policy.default_action == ERRNO(38)          # defaultErrno "ENOSYS"
    assert policy.arches == ("x86_64", "x86", "x32")
    assert actions(policy, "bpf") == [(ERRNO(1), ())]  # errno "EPERM"
    # setns: ALLOW in the big list, ERRNO(EPERM) without CAP_SYS_ADMIN; the first one wins
    assert [a for a, _ in actions(policy, "setns")] == [RET_ALLOW, ERRNO(1)]
    # excluded with CAP_AUDIT_WRITE
    assert (ERRNO(22), (Cond(0, EQ, 16), Cond(2, EQ, 9))) in actions(policy, "socket")
    with_caps = load(shared(name), host_arch="x86_64", caps="docker", kernel=(6, 1))
    assert ERRNO(22) not in [a for a, _ in actions(with_caps, "socket")]
    if name == "podman-default.json":
        assert actions(with_caps, "socket") == [(RET_ALLOW, ())]


def test_podman_errno_names_and_numbers():
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "defaultErrno": "ENOSYS",
           "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errno": "EACCES"},
                        {"names": ["umount2"], "action": "SCMP_ACT_ERRNO", "errno": "5"},
                        {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errno": "",
                         "errnoRet": 2}]}
    policy = load(doc, **HOST)
    assert policy.default_action == ERRNO(38)
    assert [r.action for r in policy.rules] == [ERRNO(13), ERRNO(5), ERRNO(2)]
    assert policy.warnings == []


def test_podman_errno_overrides_errno_ret_with_a_warning():
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "defaultErrno": "ENOSYS"}
    policy = load(doc, **HOST)
    assert policy.default_action == ERRNO(38)
    assert policy.warnings == ['defaultErrno: "ENOSYS" (38) overrides defaultErrnoRet 1 (as '
                               'podman does)']


def test_podman_format_applies_docker_min_kernel():
    # podman itself ignores minKernel (not in its Filter type); we apply it as moby does.
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "ENOSYS",
           "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "errno": "",
                         "includes": {"minKernel": "4.8"}, "excludes": {}}]}
    assert names(load(doc, host_arch="x86_64", caps=(), kernel=(4, 4))) == []
    assert names(load(doc, host_arch="x86_64", caps=(), kernel=(4, 8))) == ["ptrace"]


# ------------------------------------------------------------------------------------------------
# moby resolution: includes / excludes


CONDITIONAL_INCLUDE = {   # moby/profiles seccomp/fixtures/conditional_include.json, in spirit
    "defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [
        {"names": ["chmod"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["syslog"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYSLOG"]}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    ],
}


@pytest.mark.parametrize("caps, expected", [
    ((), ["chmod", "ptrace"]),
    (("CAP_SYSLOG",), ["chmod", "syslog", "ptrace"]),
    (("CAP_SYS_ADMIN",), ["chmod"]),
])
def test_conditional_include(caps, expected):
    assert names(load(CONDITIONAL_INCLUDE, host_arch="x86_64", caps=caps, kernel=(6, 1))) \
        == expected


@pytest.mark.parametrize("caps, included, excluded", [
    ((), False, True),
    (("CAP_SYS_ADMIN",), False, False),
    (("CAP_NET_ADMIN",), False, False),
    (("CAP_SYS_ADMIN", "CAP_NET_ADMIN"), True, False),
])
def test_includes_need_every_cap_excludes_drop_on_any(caps, included, excluded):
    both = ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    doc = profile_of({"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": both}},
                     {"names": ["umount2"], "action": "SCMP_ACT_ALLOW",
                      "excludes": {"caps": both}})
    got = names(load(doc, host_arch="x86_64", caps=caps, kernel=(6, 1)))
    assert ("mount" in got, "umount2" in got) == (included, excluded)


@pytest.mark.parametrize("host, arches, kept", [
    ("x86_64", ["amd64"], True), ("x86_64", ["x32"], False), ("x86_64", ["x86"], False),
    ("i686", ["x86"], True), ("aarch64", ["arm64"], True), ("aarch64", ["arm"], False),
    ("armv7l", ["arm"], True),
])
def test_includes_arches_match_the_host_name(host, arches, kept):
    doc = profile_of({"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW",
                      "includes": {"arches": arches}},
                     {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                      "excludes": {"arches": arches}})
    got = names(load(doc, host_arch=host, caps=(), kernel=(6, 1)))
    assert ("modify_ldt" in got, "read" in got) == (kept, not kept)


def test_excludes_min_kernel():
    doc = profile_of({"names": ["open"], "action": "SCMP_ACT_ALLOW",
                      "excludes": {"minKernel": "5.6"}})
    assert names(load(doc, host_arch="x86_64", caps=(), kernel=(5, 5))) == ["open"]
    assert names(load(doc, host_arch="x86_64", caps=(), kernel=(5, 6))) == []
    assert names(load(doc, host_arch="x86_64", caps=(), kernel=(6, 0))) == []


@pytest.mark.parametrize("value, expected", [
    ("4.8", (4, 8)), ("0.5", (0, 5)), ("0.50", (0, 50)), ("5.0", (5, 0)), ("50.0", (50, 0)),
    ("4.15", (4, 15)), ("255.255", (255, 255)), ("", None),
])
def test_min_kernel_valid(value, expected):
    assert profile.parse_min_kernel(value, "p") == expected


@pytest.mark.parametrize("value", [3, 3.12, True, "0.0", "3", ".3", "3.", "true", '3.12.1"',
                                   "4.15abc", "4.8.1", "256.0", "4.256", "-1.0", " 4.8", "٤.٨"])
def test_min_kernel_invalid(value):
    with pytest.raises(ProfileError) as exc:
        profile.parse_min_kernel(value, "syscalls[0].includes.minKernel")
    assert exc.value.path == "syscalls[0].includes.minKernel"


@pytest.mark.parametrize("release, expected", [
    ("3.8", (3, 8)), ("3.8.0", (3, 8)), ("3.8.0-19-generic", (3, 8)),
    ("3.4.54.longterm-1", (3, 4)), ("3.10.0-862.2.3.el7.x86_64", (3, 10)),
    ("3.12.8tag", (3, 12)), ("3.12-1-amd64", (3, 12)), ("3.12foobar", (3, 12)),
    ("99.999.999-19-generic", (99, 999)), ("6.18.44-fc-v595", (6, 18)),
])
def test_parse_release(release, expected):
    assert profile.parse_release(release) == expected


@pytest.mark.parametrize("release", ["", "3", "3.", "3a", "3.a", "a", "a.a", "a.a.a-a", "-3",
                                     "-3.", "-3.8", "-3.-8", "3.-8"])
def test_parse_release_invalid(release):
    with pytest.raises(ValueError):
        profile.parse_release(release)


def test_running_kernel_parses():
    assert profile.running_kernel() >= (3, 0)


# ------------------------------------------------------------------------------------------------
# Architectures


def test_architectures_host_first_deduplicated_unsupported_dropped():
    doc = {"defaultAction": "SCMP_ACT_ERRNO",
           "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_MIPS", "SCMP_ARCH_X86_64",
                             "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}
    policy = load(doc, **HOST)
    assert policy.arches == ("x86_64", "x86", "x32")
    assert policy.warnings == ["architectures[1]: SCMP_ARCH_MIPS: not supported by this "
                               "compiler, calls from that ABI will be killed (bad arch)"]


def test_arch_map_first_matching_entry_wins():
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "archMap": [
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
        {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": None}]}
    assert load(doc, **HOST).arches == ("x86_64", "x32")
    assert load(doc, host_arch="aarch64", caps=(), kernel=(6, 1)).arches == ("aarch64", "arm")
    assert load(doc, host_arch="x86", caps=(), kernel=(6, 1)).arches == ("x86",)


def test_empty_architecture_list_means_native_only():
    policy = load({"defaultAction": "SCMP_ACT_ERRNO", "architectures": []}, **HOST)
    assert policy.arches == ("x86_64",) and policy.warnings == []


@pytest.mark.parametrize("machine, arch", [("x86_64", "x86_64"), ("amd64", "x86_64"),
                                           ("aarch64", "aarch64"), ("arm64", "aarch64"),
                                           ("i686", "x86"), ("i386", "x86"),
                                           ("armv7l", "arm"), ("armv6l", "arm")])
def test_normalize_arch(machine, arch):
    assert profile.normalize_arch(machine) == arch


def test_unsupported_host_arch():
    with pytest.raises(ValueError, match="unsupported host architecture 'ppc64le'"):
        load({"defaultAction": "SCMP_ACT_ALLOW"}, host_arch="ppc64le")


def test_defaults_follow_this_machine():
    policy = load({"defaultAction": "SCMP_ACT_ALLOW"})
    assert policy.host_arch == profile.normalize_arch(os.uname().machine)
    assert policy.kernel == profile.running_kernel()
    assert policy.caps == (profile.DOCKER_DEFAULT_CAPS if os.geteuid() == 0 else ())


# ------------------------------------------------------------------------------------------------
# Capabilities


def test_parse_caps():
    assert profile.parse_caps("docker") == profile.DOCKER_DEFAULT_CAPS
    assert len(profile.DOCKER_DEFAULT_CAPS) == 14
    assert profile.parse_caps("all") == profile.CAPABILITIES
    assert len(profile.CAPABILITIES) == 41 and profile.CAPABILITIES[40] == "CAP_CHECKPOINT_RESTORE"
    assert profile.parse_caps("none") == ()
    assert profile.parse_caps("net_raw, CAP_SYS_ADMIN,sys_admin") == ("CAP_NET_RAW",
                                                                      "CAP_SYS_ADMIN")
    assert profile.parse_caps("Docker,SYS_ADMIN") == tuple(
        sorted(profile.DOCKER_DEFAULT_CAPS + ("CAP_SYS_ADMIN",), key=profile.CAPABILITIES.index))
    assert profile.parse_caps(["cap_bpf"]) == ("CAP_BPF",)


@pytest.mark.parametrize("spec", ["CAP_FOO", "sys_admin,foo", "", "CAP_SYS_ADMIN,,CAP_BPF"])
def test_parse_caps_errors(spec):
    with pytest.raises(ValueError):
        profile.parse_caps(spec)


def test_unknown_cap_in_load_is_an_error():
    with pytest.raises(ValueError, match="unknown capability 'CAP_FOO'"):
        load({"defaultAction": "SCMP_ACT_ALLOW"}, caps=["CAP_FOO"])


# ------------------------------------------------------------------------------------------------
# runc conversion


def test_rules_in_file_order_then_names_order():
    doc = profile_of({"names": ["write", "read"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["close"], "action": "SCMP_ACT_KILL_PROCESS"},
                     {"names": ["exit"], "action": "SCMP_ACT_LOG"})
    policy = load(doc, **HOST)
    assert [(r.name, r.path) for r in policy.rules] == [
        ("write", "syscalls[0].names[0]"), ("read", "syscalls[0].names[1]"),
        ("close", "syscalls[1].names[0]"), ("exit", "syscalls[2].names[0]")]
    assert policy.stub_names == ("write", "read", "close", "exit")


def test_repeated_index_splits_into_or_rules():
    # runc seccomp_syscall_test1.json: process_vm_readv a0 == 100 OR a0 == 9001
    doc = profile_of({"names": ["process_vm_readv", "process_vm_writev"],
                      "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"},
                               {"index": 0, "value": 9001, "op": "SCMP_CMP_EQ"}]})
    policy = load(doc, **HOST)
    assert [(r.name, r.conds) for r in policy.rules] == [
        ("process_vm_readv", (Cond(0, EQ, 100),)), ("process_vm_readv", (Cond(0, EQ, 9001),)),
        ("process_vm_writev", (Cond(0, EQ, 100),)), ("process_vm_writev", (Cond(0, EQ, 9001),))]


def test_split_also_unands_other_indexes():
    doc = profile_of({"names": ["write"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                               {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                               {"index": 2, "value": 3, "op": "SCMP_CMP_LE"}]})
    assert [r.conds for r in load(doc, **HOST).rules] == [
        (Cond(0, EQ, 1),), (Cond(0, EQ, 2),), (Cond(2, OPS["SCMP_CMP_LE"], 3),)]


def test_distinct_indexes_stay_anded():
    # ftruncate allowed for a0 == 123456789 AND a1 == 1337
    doc = profile_of({"names": ["ftruncate"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 123456789, "op": "SCMP_CMP_EQ"},
                               {"index": 1, "value": 1337, "op": "SCMP_CMP_EQ"}]})
    assert [r.conds for r in load(doc, **HOST).rules] == [
        (Cond(0, EQ, 123456789), Cond(1, EQ, 1337))]


def test_seven_args_with_repetition_split():
    args = [{"index": i % 6, "value": i, "op": "SCMP_CMP_NE"} for i in range(7)]
    assert len(load(profile_of({"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": args}),
                    **HOST).rules) == 7


def test_default_equal_rules_are_dropped_but_kept_for_the_stub():
    doc = profile_of({"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["kexec_load", "bdflush"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["open_tree"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                     {"names": ["fsopen"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
    policy = load(doc, **HOST)
    assert [(r.name, r.action) for r in policy.rules] == [("read", RET_ALLOW),
                                                          ("fsopen", ERRNO(38))]
    assert policy.stub_names == ("read", "kexec_load", "bdflush", "open_tree", "fsopen")
    assert policy.warnings == [
        "syscalls[1]: action ERRNO(1) equals the default action, the entry's rules are dropped "
        "(as runc does)",
        "syscalls[2]: action ERRNO(1) equals the default action, the entry's rules are dropped "
        "(as runc does)"]


def test_unknown_syscall_names_are_skipped_with_a_warning():
    doc = profile_of({"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["close"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["openat", "fstat", "foo"], "action": "SCMP_ACT_ALLOW"})
    policy = load(doc, **HOST)
    assert names(policy) == ["read", "write", "close", "openat", "fstat"]
    assert "foo" not in policy.stub_names
    assert policy.warnings == ['syscalls[3].names[2]: unknown syscall "foo", skipped (as runc '
                               'does)']


def test_names_of_other_arches_are_known():
    # known to some arch: no warning, the compiler leaves them out where they do not exist
    doc = profile_of({"names": ["socketcall", "arch_prctl", "arm_fadvise64_64"],
                      "action": "SCMP_ACT_ALLOW"})
    policy = load(doc, **HOST)
    assert policy.warnings == [] and len(policy.rules) == 3


@pytest.mark.parametrize("action, expected", [
    ("SCMP_ACT_ERRNO", ERRNO(1)), ("SCMP_ACT_TRACE", RET_TRACE | 1),
    ("SCMP_ACT_KILL", 0), ("SCMP_ACT_KILL_THREAD", 0), ("SCMP_ACT_KILL_PROCESS", 0x80000000),
    ("SCMP_ACT_TRAP", 0x00030000), ("SCMP_ACT_LOG", 0x7FFC0000), ("SCMP_ACT_ALLOW", RET_ALLOW),
])
def test_actions_and_epperm_default(action, expected):
    doc = {"defaultAction": "SCMP_ACT_ALLOW" if action != "SCMP_ACT_ALLOW" else "SCMP_ACT_KILL",
           "syscalls": [{"names": ["mkdir"], "action": action}]}
    assert load(doc, **HOST).rules[0].action == expected


def test_errno_zero_and_trace_data():
    doc = profile_of({"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0},
                     {"names": ["write"], "action": "SCMP_ACT_TRACE", "errnoRet": 4242},
                     {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4094})
    assert [r.action for r in load(doc, **HOST).rules] == [ERRNO(0), RET_TRACE | 4242,
                                                          ERRNO(4094)]


def test_errno_ret_on_other_actions_is_ignored_with_a_warning():
    doc = {"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 3,
           "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]}
    policy = load(doc, **HOST)
    assert policy.default_action == 0 and policy.rules[0].action == RET_ALLOW
    assert policy.warnings == [
        "defaultErrnoRet: 3 ignored: SCMP_ACT_KILL takes no errno (runc ignores it, crun rejects "
        "the profile)",
        "syscalls[0].errnoRet: 5 ignored: SCMP_ACT_ALLOW takes no errno (runc ignores it, crun "
        "rejects the profile)"]


def test_masked_eq_and_value_two():
    # runc seccomp_syscall_test1.json: socket a2 MASKED_EQ value=0xF00 valueTwo=0
    doc = profile_of({"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 2, "value": 0xF00, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["bind"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 1, "value": 0xFF, "valueTwo": 0x101, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["listen"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 1, "value": 7, "valueTwo": 9, "op": "SCMP_CMP_GT"}]})
    policy = load(doc, **HOST)
    assert [r.conds for r in policy.rules] == [
        (Cond(2, MASKED_EQ, 0xF00, 0),), (Cond(1, MASKED_EQ, 0xFF, 0x01),),
        (Cond(1, OPS["SCMP_CMP_GT"], 7, 0),)]
    assert policy.warnings == [
        "syscalls[1].args[0].valueTwo: 0x101 has bits outside the mask 0xff; they are ignored, "
        "as libseccomp does",
        "syscalls[2].args[0].valueTwo: 9 ignored: only SCMP_CMP_MASKED_EQ uses valueTwo"]


def test_all_operators_and_u64_values():
    args = [{"index": i, "value": 2**64 - 1 - i, "op": op}
            for i, op in enumerate(["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
                                    "SCMP_CMP_GE", "SCMP_CMP_GT"])]
    policy = load(profile_of({"names": ["mmap"], "action": "SCMP_ACT_ALLOW", "args": args}),
                  **HOST)
    assert [(c.index, c.op, c.value) for c in policy.rules[0].conds] == [
        (i, op, 2**64 - 1 - i) for i, op in enumerate([1, 2, 3, 4, 5, 6])]


# ------------------------------------------------------------------------------------------------
# flags, listener, notify


def test_flags():
    assert load({"defaultAction": "SCMP_ACT_ALLOW"}, **HOST).flags is None
    assert load({"defaultAction": "SCMP_ACT_ALLOW", "flags": None}, **HOST).flags is None
    assert load({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}, **HOST).flags == ()
    every = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
             "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"]
    policy = load({"defaultAction": "SCMP_ACT_ALLOW", "flags": every}, **HOST)
    assert policy.flags == tuple(every[:3])
    assert policy.warnings == ['flags[3]: duplicate flag "SECCOMP_FILTER_FLAG_LOG"']


def test_wait_killable_recv_needs_a_notify_rule():
    flag = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    doc = profile_of({"names": ["openat"], "action": "SCMP_ACT_NOTIFY"}, flags=[flag],
                     listenerPath="/run/agent.sock", listenerMetadata="meta")
    policy = load(doc, **HOST)
    assert policy.flags == (flag,) and policy.warnings == []
    assert (policy.listener_path, policy.listener_metadata) == ("/run/agent.sock", "meta")
    doc["syscalls"][0]["action"] = "SCMP_ACT_ALLOW"
    policy = load(doc, **HOST)
    assert policy.flags == ()
    assert policy.warnings == [
        "listenerPath: ignored: no rule uses SCMP_ACT_NOTIFY (as runc does)",
        "flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV dropped: no rule uses SCMP_ACT_NOTIFY "
        "(the kernel refuses it without a listener)"]


def test_notify_without_listener_path_is_allowed_with_a_warning():
    policy = load(profile_of({"names": ["openat", "mknod"], "action": "SCMP_ACT_NOTIFY"}), **HOST)
    assert policy.uses_notify()
    assert policy.warnings == [
        "syscalls[0].names[0]: SCMP_ACT_NOTIFY without listenerPath: runc would refuse the "
        "profile; the sandbox runner answers these notifications itself"]


def test_listener_metadata_without_path():
    policy = load({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}, **HOST)
    assert policy.listener_metadata == "x" and policy.listener_path is None
    assert policy.warnings == ["listenerMetadata: ignored: set without listenerPath (the "
                               "runtime-spec forbids it)"]


# ------------------------------------------------------------------------------------------------
# Unknown keys, duplicates, strict mode


def test_unknown_keys_are_warnings_with_their_path():
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "x-note": 1,
           "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ", "extra": 2}],
                         "includes": {"kernel": "4.8"}}]}
    policy = load(doc, **HOST)
    assert policy.warnings == [
        "x-note: unknown key, ignored",
        "syscalls[0].args[0].extra: unknown key, ignored",
        "syscalls[0].includes.kernel: unknown key, ignored"]
    with pytest.raises(ProfileError) as exc:
        load(doc, strict=True, **HOST)
    assert exc.value.path == "x-note"


@pytest.mark.parametrize("where, key, known", [
    ("", "Flags", "flags"),
    ("syscalls[0]", "ErrnoRet", "errnoRet"),
    ("syscalls[0]", "Args", "args"),
    ("syscalls[0].args[0]", "valuetwo", "valueTwo"),
    ("syscalls[0]", "Includes", "includes"),
    ("", "Syscalls", "syscalls"),
    ("", "DefaultAction", "defaultAction"),
    ("syscalls[0]", "argſ", "args"),              # U+017F: Go folds the long s to "s"
    ("syscalls[0]", "excludeſ", "excludes"),
])
def test_a_key_known_but_for_its_case_is_an_error(where, key, known):
    """Go reads keys case-insensitively: Docker would apply an "Args" that narrows a rule, so
    ignoring it (a warning) would leave a wider filter than Docker's, or, for "DefaultAction"
    alone, none at all."""
    doc = {"defaultAction": "SCMP_ACT_ERRNO",
           "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}
    if where == "":
        doc = {(key if k == known else k): v for k, v in doc.items()} if known in doc \
            else dict(doc, **{key: []})
    else:
        target = doc["syscalls"][0]
        if where.endswith("args[0]"):
            target = target["args"][0]
        if known in target:
            target[key] = target.pop(known)
        else:
            target[key] = {} if known in ("includes", "excludes") else 1
    with pytest.raises(ProfileError) as exc:
        load(doc, **HOST)
    assert exc.value.path == (where + "." + key if where else key)
    assert '(Docker, podman) would read this one as "%s"' % known in str(exc.value)


def test_a_comment_in_another_case_stays_a_warning():
    """comment does not change the filter (and moby's top level has no such field)."""
    doc = {"Comment": "x", "defaultAction": "SCMP_ACT_ERRNO",
           "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "COMMENT": "y"}]}
    assert load(doc, **HOST).warnings == ["Comment: unknown key, ignored",
                                          "syscalls[0].COMMENT: unknown key, ignored"]


def test_a_profile_that_disables_seccomp_with_unknown_keys_is_refused():
    assert load({}, **HOST) is None          # moby and runc: seccomp disabled
    assert load({"comment": "x"}, **HOST) is None
    with pytest.raises(ProfileError) as exc:
        load({"defaultaction": "SCMP_ACT_ERRNO"}, **HOST)
    assert exc.value.path == "defaultaction"
    with pytest.raises(ProfileError) as exc:
        load({"default": "SCMP_ACT_ERRNO"}, **HOST)
    assert "disables seccomp" in str(exc.value) and "default: unknown key" in str(exc.value)


def test_duplicate_keys_warn_and_the_last_wins():
    text = '{"defaultAction": "SCMP_ACT_KILL", "defaultAction": "SCMP_ACT_ALLOW"}'
    policy = load(text, **HOST)
    assert policy.default_action == RET_ALLOW
    assert policy.warnings == ["defaultAction: duplicate key, the last value is used (as Go "
                               "does)"]


def test_strict_accepts_the_real_profiles():
    for name in DOCKER_PROFILES + PODMAN_PROFILES:
        assert load(shared(name), strict=True, **HOST) is not None


def test_unknown_caps_and_arch_names_in_filters_warn():
    doc = profile_of({"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                      "includes": {"caps": ["CAP_SYS_ADMN"], "arches": ["amd46"]}})
    assert load(doc, **HOST).warnings == [
        'syscalls[0].includes.caps[0]: unknown capability "CAP_SYS_ADMN", it never matches',
        'syscalls[0].includes.arches[0]: unknown architecture name "amd46" (expected a name such '
        'as amd64, x86, arm64, arm), it never matches']


def test_policy_options_are_passed_on():
    policy = load({"defaultAction": "SCMP_ACT_ALLOW"}, enosys_stub=False,
                  args_like_libseccomp=True, **HOST)
    assert (policy.enosys_stub, policy.args_like_libseccomp) == (False, True)


# ------------------------------------------------------------------------------------------------
# The broken-profile corpus: each file fails with exactly the message in expected.txt


def _expected_errors():
    table = {}
    for line in (BROKEN / "expected.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, message = line.split(": ", 1)
            table[name] = message
    return table


def test_broken_corpus_is_complete():
    files = sorted(p.name for p in BROKEN.glob("*.json"))
    assert len(files) >= 30
    assert files == sorted(_expected_errors())


@pytest.mark.parametrize("name, message", sorted(_expected_errors().items()))
def test_broken_profile(name, message):
    path = BROKEN / name
    with pytest.raises(ProfileError) as exc:
        load(str(path), strict=name.startswith("strict_"), **HOST)
    assert str(exc.value) == message.replace("{path}", str(path))


# ------------------------------------------------------------------------------------------------
# check()


def test_check_disabled_profile():
    assert checks.check({}, **HOST) == ["seccomp is disabled: the profile has no defaultAction "
                                        "and no syscalls (as moby and runc read it)"]


def test_check_docker_default():
    findings = checks.check(str(shared("docker-default.json")), **HOST)
    assert findings == [
        'syscalls[2].names[0]: the argument rules for "socket" do not hold for i386 calls '
        'through socketcall, which is unconditionally allowed (syscalls[0].names[310]): on x86 '
        'every socket call passes']


def test_check_podman_shadowed_setns():
    findings = checks.check(str(shared("podman-default.json")), host_arch="x86_64",
                            caps="docker", kernel=(6, 1))
    assert findings == [
        'syscalls[16].names[6]: rule for "setns" (ERRNO(1)) never applies: the unconditional '
        'rule at syscalls[1].names[290] (ALLOW) wins']


def test_check_includes_load_warnings_and_shadowing_in_both_orders():
    doc = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [
               {"names": ["dup3"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
               {"names": ["dup3", "foo"], "action": "SCMP_ACT_KILL"},
               {"names": ["dup3"], "action": "SCMP_ACT_LOG"}]}
    assert checks.check(doc, **HOST) == [
        'syscalls[1].names[1]: unknown syscall "foo", skipped (as runc does)',
        'syscalls[0].names[0]: rule for "dup3" (ERRNO(1) when a0 == 0x1) never applies: the '
        'unconditional rule at syscalls[1].names[0] (KILL_THREAD) wins',
        'syscalls[2].names[0]: rule for "dup3" (LOG) never applies: the unconditional rule at '
        'syscalls[1].names[0] (KILL_THREAD) wins',
        "architectures: SCMP_ARCH_X86 is not in the filter: calls through int 0x80 (the i386 "
        "ABI) will be killed (bad arch)",
        "architectures: SCMP_ARCH_X32 is not in the filter: calls through the x32 ABI will be "
        "killed (bad arch)"]


def test_check_overlapping_conditional_rules():
    doc = profile_of(
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                  {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},     # disjoint from the first
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 1, "value": 3, "op": "SCMP_CMP_GE"}]},     # overlaps the first
        {"names": ["execve", "execveat", "socketcall"], "action": "SCMP_ACT_ALLOW"},
        architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    assert checks.check(doc, **HOST) == [
        "syscalls[0].names[0] (ERRNO(22) when a0 == 0x10 && a2 == 0x9) and syscalls[2].names[0] "
        '(ALLOW when a1 >= 0x3) can both match "socket" (e.g. a0=0x10, a1=0x3, a2=0x9): the '
        "compiled filter gives the most restrictive, ERRNO(22)",
        'syscalls[0].names[0]: the argument rules for "socket" do not hold for i386 calls through '
        'socketcall, which is unconditionally allowed (syscalls[3].names[2]): on x86 every socket '
        'call passes']


def test_check_exec_denied():
    kill_all = {"defaultAction": "SCMP_ACT_KILL_PROCESS",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["read", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                             {"names": ["execveat"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 4, "value": 0, "op": "SCMP_CMP_EQ"}]}]}
    assert checks.check(kill_all, enosys_stub=False, **HOST) == [
        "execve: denied by the default action KILL_PROCESS on x86_64",
        "execveat: allowed only for some arguments (syscalls[1].names[0]), otherwise denied by "
        "the default action KILL_PROCESS"]
    # runc's ENOSYS stub: without execveat the highest listed x86_64 number is exit_group (231),
    # below execveat (322) but above execve (59)
    only_read = dict(kill_all, syscalls=kill_all["syscalls"][:1])
    assert checks.check(only_read, **HOST) == [
        "execve: denied by the default action KILL_PROCESS on x86_64",
        "execveat: denied on x86_64 by the ENOSYS stub (no syscall numbered above 231 is listed)"]
    denied = profile_of({"names": ["execve"], "action": "SCMP_ACT_TRAP"},
                        defaultAction="SCMP_ACT_ALLOW",
                        architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    assert checks.check(denied, **HOST) == ["execve: denied by syscalls[0].names[0] (TRAP) on "
                                            "x86_64"]


@pytest.mark.parametrize("conds, witness", [
    ([(EQ, 5)], 5),
    ([(EQ, 5), (NE, 5)], None),
    ([(OPS["SCMP_CMP_GT"], 10), (OPS["SCMP_CMP_LT"], 20)], 11),
    ([(OPS["SCMP_CMP_GT"], 10), (OPS["SCMP_CMP_LT"], 11)], None),
    ([(OPS["SCMP_CMP_GE"], 10), (OPS["SCMP_CMP_LE"], 10), (NE, 10)], None),
    ([(OPS["SCMP_CMP_LT"], 0)], None),
    ([(OPS["SCMP_CMP_GT"], 2**64 - 1)], None),
    ([(OPS["SCMP_CMP_GE"], 2**64 - 1)], 2**64 - 1),
    ([(NE, 0), (NE, 1), (NE, 2)], 3),
    ([(MASKED_EQ, 0xF00, 0x100), (EQ, 0x1FF)], 0x1FF),
    ([(MASKED_EQ, 0xF00, 0x100), (EQ, 0x2FF)], None),
    ([(MASKED_EQ, 0xF00, 0x100), (MASKED_EQ, 0x0F0, 0x020)], 0x120),
    ([(MASKED_EQ, 0xF00, 0x100), (MASKED_EQ, 0x300, 0x200)], None),
    ([(MASKED_EQ, 0xF0, 0x10), (OPS["SCMP_CMP_GT"], 0x1F)], 0x110),
    ([(MASKED_EQ, 0xF0, 0x10), (OPS["SCMP_CMP_GT"], 0x1F), (OPS["SCMP_CMP_LT"], 0x110)], None),
    ([(MASKED_EQ, 1, 1), (NE, 1), (NE, 3), (OPS["SCMP_CMP_LE"], 7)], 5),
    ([(MASKED_EQ, 2**64 - 1, 2**64 - 1)], 2**64 - 1),
    ([(MASKED_EQ, 0, 0), (NE, 0)], 1),
])
def test_satisfy(conds, witness):
    assert checks.satisfy([Cond(0, op, *values) for op, *values in conds]) == witness


def test_satisfy_agrees_with_brute_force_on_small_values():
    import random
    rng = random.Random(7)
    ops = list(OPS.values())
    for _ in range(2000):
        conds = []
        for _ in range(rng.randint(1, 3)):
            op = rng.choice(ops)
            conds.append(Cond(0, op, rng.randint(0, 15), rng.randint(0, 15)))
        # all constants are < 16 and every op only looks at those bits or compares with them,
        # so a value in 0..16 (or 0..31 for masks) exists if any value does
        brute = next((x for x in range(64) if all(_holds(c, x) for c in conds)), None)
        got = checks.satisfy(conds)
        assert (got is None) == (brute is None), conds
        if got is not None:
            assert got == brute and all(_holds(c, got) for c in conds), conds


def _holds(cond, x):
    return {1: x != cond.value, 2: x < cond.value, 3: x <= cond.value, 4: x == cond.value,
            5: x >= cond.value, 6: x > cond.value,
            7: x & cond.value == cond.value_two & cond.value}[cond.op]


def test_policy_type_is_policy():
    assert isinstance(load({"defaultAction": "SCMP_ACT_ALLOW"}, **HOST), Policy)

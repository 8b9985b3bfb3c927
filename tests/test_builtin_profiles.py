"""The built-in profiles in sandbox/profiles/: they load cleanly, `default` decides exactly as
Docker's default profile does, `no-network` is `default` minus the network, and `grader` holds
the promises its comment makes.

The Docker comparison reads moby's profile from the shared reference folder (../shared/profiles,
never copied into the project) and is skipped when that folder is absent.
"""
import json
import os
from pathlib import Path

import pytest

from sandbox import _core, builtin, profile
from sandbox.filter import Filter
from sandbox.policy import RET_ALLOW, RET_ERRNO, RET_KILL_THREAD, action_name

ROOT = Path(__file__).resolve().parents[1]
PROFILE_DIR = ROOT / "sandbox" / "profiles"
SHARED = Path(os.environ.get("SANDBOX_SHARED_PROFILES", ROOT.parent / "shared" / "profiles"))
MOBY_CURRENT = SHARED / "moby-profiles-default.json"   # moby/profiles v0.2.3: Docker's default now
MOBY_OLDER = SHARED / "docker-default.json"            # the last copy in moby/moby (2025)

BUILTINS = ("default", "no-network", "grader")
KERNEL = (6, 18)
OLD_KERNEL = (4, 4)       # below the 4.8 minKernel of ptrace in the default profile

# Host arch -> the ABIs a filter built on that host can see.
HOST_ABIS = {
    "x86_64": ("x86_64", "x86", "x32"),
    "aarch64": ("aarch64", "arm"),
    "x86": ("x86",),
    "arm": ("arm",),
}
CAP_SETS = {
    "none": (),
    "docker": profile.DOCKER_DEFAULT_CAPS,
    "all": profile.CAPABILITIES,
}

X32_BIT = 0x40000000
ARM_PRIVATE = 0x0F0000
U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF

EPERM, ENOSYS, EAFNOSUPPORT = 1, 38, 97
ALLOW = RET_ALLOW
KILL = RET_KILL_THREAD


def ERRNO(code):
    return RET_ERRNO | code


AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_ALG, AF_VSOCK = 1, 2, 10, 16, 17, 38, 40
SYS_SOCKET, SYS_CONNECT, SYS_SOCKETPAIR, SYS_SENDMSG = 1, 3, 8, 16

SIGCHLD = 17
CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_PIDFD, CLONE_VFORK, CLONE_THREAD = 0x1000, 0x4000, 0x10000
CLONE_SYSVSEM, CLONE_SETTLS = 0x40000, 0x80000
CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID = 0x100000, 0x200000, 0x1000000
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x2000000, 0x4000000, 0x8000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
CLONE_NEW_FLAGS = (CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                   CLONE_NEWPID, CLONE_NEWNET)
# What glibc's pthread_create passes.
THREAD_FLAGS = (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
                | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)
FORK_FLAGS = CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
VFORK_FLAGS = CLONE_VM | CLONE_VFORK | SIGCHLD

PERSONALITIES = (0, 1, 8, 0x20000, 0x20008, 0x40000, 0x40008, 0x60000, 0x0400000, 0x0800000,
                 0xFFFFFFFF, 0xFFFFFFFE, 0x1FFFFFFFF, U64)


def builtin_path(name):
    return PROFILE_DIR / (name + ".json")


def load(source, host, caps=(), kernel=KERNEL, strict=True):
    return profile.load(str(source), host_arch=host, caps=caps, kernel=kernel, strict=strict)


def audit_arch(abi):
    return _core.arch_info(abi)["audit_arch"]


def nr_of(abi, name):
    nr = _core.syscall_nr(abi, name)
    return None if nr < 0 else nr


# ------------------------------------------------------------------------------------------------
# (a) loading


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("host", sorted(HOST_ABIS))
@pytest.mark.parametrize("caps", sorted(CAP_SETS))
def test_loads_strictly_without_warnings(name, host, caps):
    policy = load(builtin_path(name), host, CAP_SETS[caps])
    assert policy is not None
    assert policy.warnings == []
    if name == "grader":
        assert policy.arches == (host,)          # native ABI only
    elif host in ("x86_64", "aarch64"):
        assert policy.arches == HOST_ABIS[host]
    else:
        assert policy.arches == (host,)          # no archMap entry: native only, as in Docker
    _core.bpf_validate(Filter(policy).program)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_name_is_a_syscall_of_an_abi_we_compile(name):
    """The loader accepts any name some architecture knows; ours must all exist on x86_64, x86,
    x32, aarch64 or arm (a typo or an s390-only name would silently do nothing)."""
    doc = json.loads(builtin_path(name).read_text())
    for index, entry in enumerate(doc["syscalls"]):
        for syscall in entry["names"]:
            assert any(nr_of(abi, syscall) is not None for abi in _core.arch_names()), \
                "syscalls[%d]: %s is not a syscall on any ABI we compile" % (index, syscall)


@pytest.mark.parametrize("name", BUILTINS)
def test_documented(name):
    doc = json.loads(builtin_path(name).read_text())
    assert isinstance(doc.get("comment"), str) and len(doc["comment"]) > 200
    assert builtin.summary(name)
    for index, entry in enumerate(doc["syscalls"]):
        assert entry.get("comment"), "syscalls[%d] has no comment" % index


def test_builtin_set():
    assert sorted(builtin.names()) == sorted(BUILTINS + (builtin.UNCONFINED,))
    assert not (PROFILE_DIR / (builtin.UNCONFINED + ".json")).exists()   # a name, not a file


# ------------------------------------------------------------------------------------------------
# Decision comparison machinery


def numbers(abi):
    """Every syscall number of `abi` from 0 to its highest + 20, the arm-private range, and a few
    far-away numbers."""
    base = X32_BIT if abi == "x32" else 0
    table = [nr for _, nr, _ in _core.syscall_table(abi)
             if not (abi == "arm" and nr >= ARM_PRIVATE)]
    out = list(range(base, max(table) + 21))
    if abi == "arm":
        out += list(range(ARM_PRIVATE, ARM_PRIVATE + 0x20))
    out += [0x3FFFFFFF, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF]
    return out


def _variants(value):
    out = {value, value & U32, value | (1 << 32), value | 0xFFFFFFFF00000000}
    if value:
        out.add(value - 1)
    if value < U64:
        out.add(value + 1)
    return out


def _cond_values(cond):
    if cond.op == 7:                                   # MASKED_EQ: mask in value
        mask, want = cond.value, cond.value_two
        out = {want, want | mask, U64, 0, want ^ mask}
        for bit in range(64):
            if mask >> bit & 1:
                out |= {want ^ (1 << bit), 1 << bit}
        return set().union(*(_variants(v) for v in out))
    return _variants(cond.value)


def conditional_names(*policies):
    return {rule.name for p in policies for rule in p.rules if rule.conds}


def rich_args(*policies):
    """Argument vectors that exercise every condition of the policies, plus the families,
    personalities and clone flags the profiles care about."""
    per_index = {i: set() for i in range(6)}
    for p in policies:
        for rule in p.rules:
            for cond in rule.conds:
                per_index[cond.index] |= _cond_values(cond)
    per_index[0] |= set(range(0, 51))                  # socket domains, socketcall call numbers
    per_index[0] |= set(PERSONALITIES)
    clone = {THREAD_FLAGS, FORK_FLAGS, VFORK_FLAGS, CLONE_PIDFD | SIGCHLD, 0x80, 0}
    for flag in CLONE_NEW_FLAGS:
        clone |= {flag, flag | THREAD_FLAGS, flag | FORK_FLAGS, flag | (1 << 32)}
    clone.add(sum(CLONE_NEW_FLAGS))
    per_index[0] |= clone
    vectors = {(0,) * 6, (U64,) * 6}
    for index, values in per_index.items():
        for value in values:
            args = [0] * 6
            args[index] = value & U64
            vectors.add(tuple(args))
    vectors |= {(AF_UNIX, 1, 0, 0, 0, 0), (AF_INET, 1, 0, 0, 0, 0), (AF_INET6, 2, 0, 0, 0, 0)}
    return sorted(vectors)


GENERIC_ARGS = [(0,) * 6, (1, 1, 1, 1, 1, 1), (U64,) * 6, (AF_ALG,) + (0,) * 5,
                (CLONE_NEWUSER | SIGCHLD,) + (0,) * 5]


def compare(ours, theirs, abis, allowed_difference=lambda abi, name, nr, args: False):
    """Every (abi, nr, args) case where the two policies decide differently and
    `allowed_difference` does not excuse it: [(abi, name, nr, args, ours, theirs)]."""
    mine, other = _core.Compiled(ours), _core.Compiled(theirs)
    rich = rich_args(ours, theirs)
    cond_names = conditional_names(ours, theirs) | {"socketcall", "ipc"}
    bad, excused = [], []
    for abi in abis:
        arch = audit_arch(abi)
        cond_nrs = {nr_of(abi, n) for n in cond_names} - {None}
        for nr in numbers(abi):
            for args in (rich if nr in cond_nrs else GENERIC_ARGS):
                a = mine.decide(arch, nr, args)[0]
                b = other.decide(arch, nr, args)[0]
                if a != b:
                    name = _core.syscall_name(abi, nr) or str(nr)
                    case = (abi, name, nr, args, action_name(a), action_name(b))
                    (excused if allowed_difference(abi, name, nr, args) else bad).append(case)
    return bad, excused


def mentioned_caps(*paths):
    caps = set()
    for path in paths:
        for entry in json.loads(Path(path).read_text())["syscalls"]:
            for key in ("includes", "excludes"):
                caps.update((entry.get(key) or {}).get("caps") or ())
    return sorted(caps)


def cap_sets_for(*paths):
    """none, Docker's, all, and for every capability a profile mentions: it alone and Docker's
    set plus it."""
    sets = dict(CAP_SETS)
    for cap in mentioned_caps(*paths):
        sets["only-" + cap] = (cap,)
        sets["docker+" + cap] = tuple(profile.DOCKER_DEFAULT_CAPS) + (cap,)
    return sets


def need_moby(path):
    if not path.is_file():
        pytest.skip("reference profile %s not available" % path)


def _describe(cases, limit=15):
    return "\n".join("%s %s(nr %#x, args %s): %s vs reference %s" % (
        abi, name, nr, ", ".join("%#x" % a for a in args), a, b)
        for abi, name, nr, args, a, b in cases[:limit])


# ------------------------------------------------------------------------------------------------
# (b) default == Docker's default, decision for decision

# Intended differences from moby/profiles' default.json (Docker's current default): none. The
# only departures are entries for hosts we cannot compile for (ppc64le, s390x, riscv64, ...),
# which decide nothing on x86_64/x86/x32/aarch64/arm. To add one, list it here and excuse exactly
# its cases in _intended_difference.
INTENDED_DIFFERENCES_FROM_CURRENT_DOCKER = ()


def _intended_difference(abi, name, nr, args):
    return False


# Against the older moby/moby copy: like current Docker we refuse AF_ALG (38) sockets, which it
# still allowed (it refused only AF_VSOCK). The kernel reads the family as an int, so our
# compiler looks at the low 32 bits.
INTENDED_DIFFERENCES_FROM_OLDER_DOCKER = ("socket(AF_ALG)",)


def _af_alg(abi, name, nr, args):
    return name == "socket" and args[0] & U32 == AF_ALG


def _default_cases():
    if not MOBY_CURRENT.is_file():
        return [pytest.param(None, None, None, marks=pytest.mark.skip("no reference profile"))]
    cases = []
    for host in sorted(HOST_ABIS):
        for label, caps in cap_sets_for(builtin_path("default"), MOBY_CURRENT).items():
            cases.append(pytest.param(host, label, caps, id="%s-%s" % (host, label)))
    return cases


@pytest.mark.parametrize("host,label,caps", _default_cases())
def test_default_equals_docker_default(host, label, caps):
    need_moby(MOBY_CURRENT)
    kernels = (KERNEL, OLD_KERNEL) if label in CAP_SETS else (KERNEL,)
    for kernel in kernels:
        ours = load(builtin_path("default"), host, caps, kernel)
        docker = load(MOBY_CURRENT, host, caps, kernel, strict=False)
        assert ours.arches == docker.arches
        bad, excused = compare(ours, docker, ours.arches, _intended_difference)
        assert not bad, "kernel %s caps %s:\n%s" % (kernel, label, _describe(bad))
        assert bool(excused) == bool(INTENDED_DIFFERENCES_FROM_CURRENT_DOCKER)


@pytest.mark.parametrize("host", ["x86_64", "aarch64"])
def test_default_equals_docker_default_comparing_all_64_bits(host):
    """The same comparison with libseccomp's argument reading (upper words compared too)."""
    need_moby(MOBY_CURRENT)
    for caps in CAP_SETS.values():
        ours = profile.load(str(builtin_path("default")), host_arch=host, caps=caps,
                            kernel=KERNEL, strict=True, args_like_libseccomp=True)
        docker = profile.load(str(MOBY_CURRENT), host_arch=host, caps=caps, kernel=KERNEL,
                              args_like_libseccomp=True)
        bad, _ = compare(ours, docker, HOST_ABIS[host])
        assert not bad, _describe(bad)


@pytest.mark.parametrize("host", ["x86_64", "aarch64"])
def test_default_differs_from_older_docker_only_by_af_alg(host):
    need_moby(MOBY_OLDER)
    assert INTENDED_DIFFERENCES_FROM_OLDER_DOCKER == ("socket(AF_ALG)",)
    for caps in CAP_SETS.values():
        ours = load(builtin_path("default"), host, caps)
        older = load(MOBY_OLDER, host, caps, strict=False)
        bad, excused = compare(ours, older, HOST_ABIS[host], _af_alg)
        assert not bad, _describe(bad)
        # ... and the difference is real: older Docker allows socket(AF_ALG), we refuse it.
        assert {(abi, a, b) for abi, _, _, _, a, b in excused} == {
            (abi, "ERRNO(1)", "ALLOW") for abi in HOST_ABIS[host]}


def test_default_spot_checks():
    """A few decisions spelled out, so that a reader sees what the comparison covers."""
    policy = load(builtin_path("default"), "x86_64", profile.DOCKER_DEFAULT_CAPS)
    f = Filter(policy)
    for abi in HOST_ABIS["x86_64"]:
        assert f.decide("socket", [AF_INET], abi).action == ALLOW
        assert f.decide("socket", [AF_ALG], abi).action == ERRNO(EPERM)
        assert f.decide("socket", [AF_VSOCK], abi).action == ERRNO(EPERM)
        assert f.decide("clone", [THREAD_FLAGS], abi).action == ALLOW
        assert f.decide("clone", [CLONE_NEWUSER | SIGCHLD], abi).action == ERRNO(EPERM)
        assert f.decide("clone3", [], abi).action == ERRNO(ENOSYS)
        assert f.decide("personality", [0x20008], abi).action == ALLOW
        assert f.decide("personality", [0x40000], abi).action == ERRNO(EPERM)
        assert f.decide("mount", [], abi).action == ERRNO(EPERM)
        assert f.decide("keyctl", [], abi).action == ERRNO(EPERM)
        assert f.decide("ptrace", [], abi).action == ALLOW            # kernel >= 4.8
    assert f.decide("arch_prctl", [], "x86_64").action == ALLOW
    assert f.decide("socketcall", [SYS_SOCKET], "x86").action == ALLOW
    assert f.decide("file_setattr", [], "x86_64").decided_by == "enosys-stub"
    with_admin = Filter(load(builtin_path("default"), "x86_64", ("CAP_SYS_ADMIN",)))
    assert with_admin.decide("clone", [CLONE_NEWUSER | SIGCHLD]).action == ALLOW
    assert with_admin.decide("mount", []).action == ALLOW
    old = Filter(load(builtin_path("default"), "x86_64", (), OLD_KERNEL))
    assert old.decide("ptrace", []).action == ERRNO(EPERM)


# ------------------------------------------------------------------------------------------------
# (c) no-network

NETWORK_SYSCALLS = {"socket", "socketpair", "socketcall",
                    "io_uring_setup", "io_uring_enter", "io_uring_register"}


@pytest.mark.parametrize("host", ["x86_64", "aarch64"])
@pytest.mark.parametrize("caps", sorted(CAP_SETS))
def test_no_network_is_default_apart_from_the_network(host, caps):
    """Everything but socket creation and io_uring decides as the default profile does."""
    nonet = load(builtin_path("no-network"), host, CAP_SETS[caps])
    default = load(builtin_path("default"), host, CAP_SETS[caps])
    bad, excused = compare(nonet, default, HOST_ABIS[host],
                           lambda abi, name, nr, args: name in NETWORK_SYSCALLS)
    assert not bad, _describe(bad)
    present = {name for name in NETWORK_SYSCALLS
               if any(nr_of(abi, name) is not None for abi in HOST_ABIS[host])}
    assert {name for _, name, _, _, _, _ in excused} == present


@pytest.mark.parametrize("host", ["x86_64", "aarch64"])
@pytest.mark.parametrize("caps", sorted(CAP_SETS))
def test_no_network_refuses_network_sockets_on_every_abi(host, caps):
    f = Filter(load(builtin_path("no-network"), host, CAP_SETS[caps]))
    for abi in HOST_ABIS[host]:
        for family in (AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_ALG, AF_VSOCK, 0, 44, 255):
            for kind in (1, 2, 3, 0x80801):                    # stream, dgram, raw, |flags
                assert f.decide("socket", [family, kind, 0], abi).action == \
                    ERRNO(EAFNOSUPPORT), (abi, family)
            assert f.decide("socketpair", [family, 1, 0], abi).action == ERRNO(EAFNOSUPPORT)
        assert f.decide("socket", [AF_UNIX, 1, 0], abi).action == ALLOW
        assert f.decide("socket", [AF_UNIX, 0x80002, 0], abi).action == ALLOW
        assert f.decide("socketpair", [AF_UNIX, 1, 0], abi).action == ALLOW
        for name in ("connect", "bind", "sendmsg", "recvmsg", "accept4", "shutdown"):
            if nr_of(abi, name) is not None:
                assert f.decide(name, [3], abi).action == ALLOW, (abi, name)
        for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
            assert f.decide(name, [], abi).action == ERRNO(ENOSYS)
        for name in ("openat", "read", "write", "close", "fstat", "getdents64", "mkdirat",
                     "unlinkat", "renameat2", "ftruncate", "lseek", "fsync"):
            if nr_of(abi, name) is not None:
                assert f.decide(name, [3, 0, 0], abi).action == ALLOW, (abi, name)


@pytest.mark.parametrize("caps", sorted(CAP_SETS))
def test_no_network_i386_socketcall(caps):
    f = Filter(load(builtin_path("no-network"), "x86_64", CAP_SETS[caps]))
    for pointer in (0, 0xFFFFD000, U32):                        # the args pointer: unreadable
        assert f.decide("socketcall", [SYS_SOCKET, pointer], "x86").action == \
            ERRNO(EAFNOSUPPORT)
        assert f.decide("socketcall", [SYS_SOCKETPAIR, pointer], "x86").action == \
            ERRNO(EAFNOSUPPORT)
        assert f.decide("socketcall", [SYS_SOCKET | (1 << 32), pointer], "x86").action == \
            ERRNO(EAFNOSUPPORT)                                 # x86 compares the low word
    for call in (2, SYS_CONNECT, 4, 5, 9, 10, 11, 12, 13, 14, 15, SYS_SENDMSG, 17, 18, 19, 20):
        assert f.decide("socketcall", [call, 0xFFFFD000], "x86").action == ALLOW, call
    # the direct i386 socket syscalls follow the family, like everywhere else
    assert f.decide("socket", [AF_UNIX, 1, 0], "x86").action == ALLOW
    assert f.decide("socket", [AF_INET, 1, 0], "x86").action == ERRNO(EAFNOSUPPORT)


# ------------------------------------------------------------------------------------------------
# (d) grader

GRADER_NEEDS = (
    "read", "write", "readv", "writev", "pread64", "lseek", "openat", "open", "close", "fstat",
    "newfstatat", "statx", "access", "faccessat2", "readlink", "getdents64", "getcwd", "chdir",
    "mkdir", "unlink", "rename", "chmod", "fcntl", "dup2", "dup3", "pipe2", "brk", "mmap",
    "munmap", "mprotect", "mremap", "madvise", "futex", "set_robust_list", "rseq",
    "set_tid_address", "arch_prctl", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
    "sigaltstack", "tgkill", "gettid", "getpid", "getppid", "getuid", "geteuid", "clock_gettime",
    "clock_nanosleep", "nanosleep", "getrandom", "uname", "sysinfo", "sched_getaffinity",
    "sched_yield", "getrlimit", "setrlimit", "getrusage", "exit", "exit_group", "execve",
    "vfork", "fork", "wait4", "poll", "epoll_create1", "epoll_ctl", "epoll_pwait", "eventfd2",
    "close_range", "membarrier", "prctl", "memfd_create", "copy_file_range", "sendfile",
)
GRADER_REFUSES = ("unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "ptrace",
                  "process_vm_readv", "process_vm_writev", "pidfd_getfd", "keyctl", "add_key",
                  "request_key", "bpf", "perf_event_open", "userfaultfd", "setuid", "capset",
                  "init_module", "reboot", "kexec_load", "swapon", "open_by_handle_at",
                  "fsopen", "move_mount", "sethostname", "clock_settime", "syslog")


@pytest.fixture(scope="module", params=["x86_64", "aarch64"])
def grader(request):
    return request.param, Filter(load(builtin_path("grader"), request.param,
                                      profile.DOCKER_DEFAULT_CAPS))


def test_grader_independent_of_capabilities():
    for host in ("x86_64", "aarch64"):
        none = load(builtin_path("grader"), host, ())
        every = load(builtin_path("grader"), host, profile.CAPABILITIES)
        bad, _ = compare(none, every, (host,))
        assert not bad, _describe(bad)


def test_grader_allows_what_programs_need(grader):
    host, f = grader
    for name in GRADER_NEEDS:
        if nr_of(host, name) is None:                             # e.g. open on aarch64
            continue
        assert f.decide(name, [3, 0, 0], host).action == ALLOW, name
    assert f.decide("clone", [THREAD_FLAGS], host).action == ALLOW
    assert f.decide("clone", [FORK_FLAGS], host).action == ALLOW
    assert f.decide("clone", [VFORK_FLAGS], host).action == ALLOW
    assert f.decide("clone", [CLONE_PIDFD | SIGCHLD], host).action == ALLOW
    assert f.decide("socket", [AF_UNIX, 1, 0], host).action == ALLOW
    assert f.decide("socketpair", [AF_UNIX, 1, 0], host).action == ALLOW
    assert f.decide("prlimit64", [0, 7, 0, 0], host).action == ALLOW
    assert f.decide("ioctl", [0, 0x5401], host).action == ALLOW          # TCGETS (isatty)
    assert f.decide("kill", [1234, 15], host).action == ALLOW
    assert f.decide("kill", [0, 15], host).action == ALLOW
    assert f.decide("mknodat", [-100 & U64, 0, 0o10644, 0], host).action == ALLOW   # mkfifo


def test_grader_refuses(grader):
    host, f = grader
    for name in GRADER_REFUSES:
        if nr_of(host, name) is None:
            continue
        assert f.decide(name, [0, 0, 0], host).action == ERRNO(EPERM), name
    for family in (AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_VSOCK):
        assert f.decide("socket", [family, 1, 0], host).action == ERRNO(EAFNOSUPPORT)
    for flag in CLONE_NEW_FLAGS:
        for base in (0, SIGCHLD, THREAD_FLAGS, VFORK_FLAGS):
            assert f.decide("clone", [flag | base], host).action == ERRNO(EPERM), hex(flag)
    assert f.decide("clone", [CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD], host).action == \
        ERRNO(EPERM)
    assert f.decide("clone3", [0, 88], host).action == ERRNO(ENOSYS)     # libc falls back
    for persona in PERSONALITIES:
        want = ALLOW if persona & U32 in (0, 8, 0x20000, 0x20008, U32) else ERRNO(ENOSYS)
        assert f.decide("personality", [persona], host).action == want, hex(persona)
    for request in (0x5412, 0x541C, 0x5423, 0xFFFFFFFF00005412):   # TIOCSTI/LINUX/SETD
        assert f.decide("ioctl", [0, request], host).action == ERRNO(EPERM), hex(request)
    for pid in (U32, U64):
        assert f.decide("kill", [pid, 9], host).action == ERRNO(EPERM)
    assert f.decide("prlimit64", [1, 7, 8, 0], host).action == ERRNO(EPERM)
    assert f.decide("mknodat", [0, 0, 0o20644, 0x103], host).action != ALLOW   # char device
    assert f.decide("io_uring_setup", [], host).action == ERRNO(ENOSYS)
    assert f.decide("mlock", [], host).action == ERRNO(ENOSYS)


def test_grader_accepts_only_the_native_abi():
    f = Filter(load(builtin_path("grader"), "x86_64", profile.DOCKER_DEFAULT_CAPS))
    assert f.decide("read", [], "x86").action == KILL
    assert f.decide("read", [], "x32").action == KILL
    assert f.decide("socketcall", [SYS_SOCKET], "x86").action == KILL
    f = Filter(load(builtin_path("grader"), "aarch64", profile.DOCKER_DEFAULT_CAPS))
    assert f.decide("read", [], "arm").action == KILL


def test_grader_on_32_bit_hosts():
    """On an i386 or arm host the native ABI is 32-bit: TLS set-up, socketcall and the *64 /
    *_time64 variants must work there."""
    f = Filter(load(builtin_path("grader"), "x86", ()))
    for name in ("set_thread_area", "mmap2", "_llseek", "fstat64", "clock_gettime64",
                 "sigreturn", "getuid32", "fcntl64", "futex_time64"):
        assert f.decide(name, [], "x86").action == ALLOW, name
    assert f.decide("socketcall", [SYS_SOCKET, 0], "x86").action == ERRNO(EAFNOSUPPORT)
    assert f.decide("socketcall", [SYS_CONNECT, 0], "x86").action == ALLOW
    f = Filter(load(builtin_path("grader"), "arm", ()))
    for name in ("set_tls", "cacheflush", "mmap2", "arm_fadvise64_64", "clock_gettime64"):
        assert f.decide(name, [], "arm").action == ALLOW, name
    for host in ("x86", "arm"):
        f = Filter(load(builtin_path("grader"), host, ()))
        assert f.decide("kill", [1234, 9], host).action == ALLOW
        assert f.decide("kill", [-5 & U32, 9], host).action == ALLOW      # a process group
        assert f.decide("kill", [U32, 9], host).action == ERRNO(EPERM)
        assert f.decide("ioctl", [1, 0x541B], host).action == ALLOW       # FIONREAD
        assert f.decide("ioctl", [1, 0x5412], host).action == ERRNO(EPERM)


def test_a_builtin_name_wins_over_a_file_of_that_name(tmp_path, monkeypatch):
    """A submission's directory, as the working directory, must not swap the profile: a file
    named "default" or "grader" there is reached as ./default, never by the bare name."""
    from sandbox.runner import DISABLED_WARNING, Sandbox
    monkeypatch.chdir(tmp_path)
    for name in ("default", "grader"):
        (tmp_path / name).write_text("{}")
    assert builtin.resolve("default") == str(PROFILE_DIR / "default.json")
    assert builtin.fs_default("grader") == builtin.FS_DEFAULTS["grader"]
    assert builtin.resolve("./default") == "./default"
    assert builtin.path("./default") is None and builtin.path("../profiles/default") is None
    assert builtin.fs_default("./grader") is None
    # a path object is a path, never a name: its file, or an error
    assert builtin.resolve(Path("default")) == Path("default")
    assert builtin.fs_default(Path("grader")) is None
    with pytest.raises(profile.ProfileError, match="named by a str"):
        builtin.source(Path("no-network"))
    text = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "comment": "x" * 4000})
    assert builtin.resolve(text) is text and builtin.source(text) is text   # (not a file name)
    with Sandbox("grader") as sb:
        assert sb.filter is not None and sb.profile_warnings == []
    with Sandbox("./default") as sb:   # the file: {} disables seccomp, as Docker reads it
        assert sb.filter is None and sb.profile_warnings == [DISABLED_WARNING]
        assert sb.run(["true"]).warnings == [DISABLED_WARNING]
    with Sandbox("unconfined") as sb:
        assert sb.filter is None and sb.profile_warnings == []

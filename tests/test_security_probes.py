"""Security probes: small C programs (tests/probes/runner/*.c) that try, from inside a sandboxed
run, what untrusted code would try, and report what the kernel answered.

(a) other ABIs of x86_64 (i386 `int 0x80`, x32) under a profile that lists only x86_64;
(b) high-bit arguments: the low-word comparison closes libseccomp's bypass, and
    args_like_libseccomp=True re-opens it;
(c) namespace creation, mount and keyctl under Docker's default profile and capabilities;
(d) a setuid-root binary run as nobody gains nothing under no_new_privs;
(e) no descriptor of the supervisor reaches the child;
(f) the child cannot trace or read its supervisor;
(g) the child's capability sets, no_new_privs and seccomp mode.

Each probe is built once per source hash (gcc; the tests skip without it) and run through
sandbox.runner.Sandbox exactly as a user's program would be.
"""
import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

pytest.importorskip("sandbox._core")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "probes" / "runner"))
import runner_support as S  # noqa: E402
from waiting import wait_for  # noqa: E402

from sandbox.runner import Sandbox  # noqa: E402

PROFILES = ["docker-default", "default"]
ONLY_X86_64 = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": []}
SOCKET_RULE_ERRNO = 77   # EBADFD: nothing else makes socket() return it


def parse_kv(line: str) -> dict:
    """'name ret=-1 errno=1' -> {'ret': -1, 'errno': 1} (the leading word, if any, dropped)."""
    out = {}
    for word in line.split():
        k, sep, v = word.partition("=")
        if sep:
            out[k] = int(v)
    return out


def own_pid(r) -> int:
    """What getpid() returns inside the run: 2 in a PID namespace of its own (sandbox-init is
    pid 1 there)."""
    return 2 if getattr(r, "pid_namespace", False) else r.pid


def lines_by_name(stdout: bytes) -> dict:
    out = {}
    for line in stdout.decode().splitlines():
        name = line.split()[0]
        out[name.split("=")[0]] = parse_kv(line) if "=" in line.split(None, 1)[-1] else line
    return out


@pytest.fixture
def world_dir():
    """A root-owned 0755 directory outside the 0700 pytest temp tree, so a probe run as nobody
    can reach its executable; removed afterwards."""
    d = tempfile.mkdtemp(prefix="sandbox-runner-probe-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# (a) other ABIs

@pytest.mark.parametrize("abi, nr", [("i386", 20), ("x32", 39)])
def test_foreign_abi_is_killed_under_an_x86_64_only_profile(abi, nr):
    exe = S.probe("abi_call")
    r = Sandbox(ONLY_X86_64).run([exe, abi, str(nr)], timeout=30)
    assert r.verdict == "SECCOMP_KILLED", r
    assert r.signal == 31 and r.exit_code is None
    assert r.stdout == b""                       # killed at the call, before printing


def test_native_abi_runs_under_the_same_x86_64_only_profile():
    """The control for the test above: the same probe, native getpid, is allowed."""
    r = Sandbox(ONLY_X86_64).run([S.probe("abi_call"), "x86_64", "39"], timeout=30)
    assert r.verdict == "OK", r
    assert parse_kv(r.stdout.decode())["ret"] == own_pid(r)


def test_i386_abi_is_filtered_not_killed_under_docker_default():
    """Docker's profile lists x86 as a sub-architecture: int 0x80 getpid works, and the i386
    unshare(CLONE_NEWUSER) is refused with EPERM like the native one."""
    profile = S.docker_default()
    exe = S.probe("abi_call")
    sb = Sandbox(profile)
    r = sb.run([exe, "i386", "20"], timeout=30)
    assert r.verdict == "OK", r
    assert parse_kv(r.stdout.decode())["ret"] == own_pid(r)
    r = sb.run([exe, "i386", "310", hex(0x10000000)], timeout=30)   # i386 unshare
    assert r.verdict == "OK", r
    assert parse_kv(r.stdout.decode()) == {"ret": -1, "errno": errno.EPERM}


# ------------------------------------------------------------------------------------------
# (b) high-bit arguments

def _socket_profile():
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": SOCKET_RULE_ERRNO,
         "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}


def test_high_bit_socket_domain_is_denied_by_the_filter():
    """socket(0x100000002, ...) is AF_INET to the kernel; the rule a0 == 2 catches it because
    the int argument is compared on its low word."""
    r = Sandbox(_socket_profile()).run([S.probe("socket_hibit")], timeout=30)
    assert r.verdict == "OK", r
    assert parse_kv(r.stdout.decode()) == {"ret": -1, "errno": SOCKET_RULE_ERRNO}


def test_high_bit_socket_domain_bypasses_a_libseccomp_style_filter():
    """Documents libseccomp's behaviour: comparing all 64 bits, 0x100000002 != 2, the rule does
    not match and the kernel creates an AF_INET socket."""
    r = Sandbox(_socket_profile(), args_like_libseccomp=True).run(
        [S.probe("socket_hibit")], timeout=30)
    assert r.verdict == "OK", r
    assert parse_kv(r.stdout.decode()) == {"ret": 0, "errno": 0}


def test_plain_af_inet_socket_is_denied_either_way():
    """The control: socket(2, ...) with a clean high word matches in both modes."""
    exe = S.probe("abi_call")
    for like_lib in (False, True):
        r = Sandbox(_socket_profile(), args_like_libseccomp=like_lib).run(
            [exe, "x86_64", "41", "2", "1", "0"], timeout=30)
        assert r.verdict == "OK", r
        assert parse_kv(r.stdout.decode()) == {"ret": -1, "errno": SOCKET_RULE_ERRNO}


# ------------------------------------------------------------------------------------------
# (c) namespaces, mount, keyctl

@S.needs_root
@pytest.mark.parametrize("profile_name", PROFILES)
def test_namespaces_mount_and_keyctl_fail_with_eperm(profile_name):
    r = Sandbox(S.profile_spec(profile_name)).run([S.probe("privs")], timeout=30)
    assert r.verdict == "OK", r
    got = lines_by_name(r.stdout)
    assert set(got) == {"unshare-user", "unshare-mount", "clone-user", "mount", "keyctl"}
    for name, outcome in got.items():
        assert outcome == {"ret": -1, "errno": errno.EPERM}, (name, outcome)


# ------------------------------------------------------------------------------------------
# (d) setuid binaries under no_new_privs

@S.needs_root
@pytest.mark.parametrize("profile_name", PROFILES + ["unconfined"])
def test_setuid_root_binary_gains_nothing_as_nobody(profile_name, world_dir):
    setuid_exe = S.world_copy(S.probe("ids"), world_dir, mode=0o4755)
    st = os.stat(setuid_exe)
    assert st.st_uid == 0 and st.st_mode & 0o4000
    # Control: without the sandbox, the same binary run as nobody does become euid 0. If it does
    # not (a nosuid mount, ...), the test below would prove nothing.
    control = subprocess.run([setuid_exe], user=65534, group=65534, extra_groups=[],
                             capture_output=True, timeout=30)
    if control.returncode != 0 or b"uid=65534,0,0" not in control.stdout:
        pytest.skip("setuid bit has no effect here (nosuid mount?): %r" % control.stdout)
    spec = "unconfined" if profile_name == "unconfined" else S.profile_spec(profile_name)
    r = Sandbox(spec, user="nobody").run([setuid_exe], timeout=30)
    assert r.verdict == "OK", r
    assert r.stdout == b"uid=65534,65534,65534 gid=65534,65534,65534\n"


# ------------------------------------------------------------------------------------------
# (e) inherited descriptors

@pytest.mark.parametrize("profile_name", PROFILES)
def test_inheritable_descriptors_of_the_supervisor_do_not_reach_the_child(profile_name,
                                                                            tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"the secret")
    fds = [os.open(secret, os.O_RDONLY)]
    try:
        os.set_inheritable(fds[0], True)
        fds.append(os.dup2(fds[0], 50, inheritable=True))
        r_pipe, w_pipe = os.pipe()
        fds += [r_pipe, w_pipe]
        for fd in fds[2:]:
            os.set_inheritable(fd, True)
        r = Sandbox(S.profile_spec(profile_name)).run([S.probe("fds")], timeout=30)
    finally:
        for fd in fds:
            os.close(fd)
    assert r.verdict == "OK", r
    assert r.stdout == b"done\n"        # no "open N" line: nothing open in 3..1023


def test_only_stdio_is_open_even_when_stdout_is_a_high_descriptor(tmp_path):
    """A caller's file object on a high descriptor becomes fd 1; its own number is closed."""
    out = tmp_path / "out"
    with open(out, "wb") as f:
        high = os.dup2(f.fileno(), 77)
        try:
            r = Sandbox(S.docker_default()).run([S.probe("fds")], stdout=high, timeout=30)
        finally:
            os.close(high)
    assert r.verdict == "OK", r
    assert r.stdout is None
    assert out.read_bytes() == b"done\n"


# ------------------------------------------------------------------------------------------
# (f) the supervisor is out of reach

def _assert_supervisor_out_of_reach(got: dict, supervisor: int) -> None:
    assert got["target"] == {"target": supervisor}, got
    # EPERM: not allowed; ESRCH: the pid does not exist in the run's own PID namespace
    assert got["seize"]["ret"] == -1 and got["seize"]["errno"] in (errno.EPERM, errno.ESRCH)
    assert got["attach"]["ret"] == -1 and got["attach"]["errno"] in (errno.EPERM, errno.ESRCH)
    assert got["vm_readv"]["ret"] == -1
    assert got["vm_readv"]["errno"] in (errno.EPERM, errno.ESRCH)
    # /proc is the host's (EACCES: ptrace access mode check) unless the run has its own
    assert got["mem"]["open"] == -1 and got["mem"]["read"] == -1
    assert got["mem"]["errno"] in (errno.EACCES, errno.ENOENT, errno.EPERM)
    assert got["environ"]["open"] == -1
    assert got["environ"]["errno"] in (errno.EACCES, errno.ENOENT, errno.EPERM)


@pytest.mark.parametrize("user", [None, "nobody"])
def test_child_cannot_trace_or_read_its_supervisor(user, world_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root: the supervisor must run as another user or with more "
                    "capabilities than the child (see the non-root supervisor test)")
    exe = S.world_copy(S.probe("ptrace_parent"), world_dir)
    r = Sandbox(S.docker_default(), user=user).run([exe, str(os.getpid())], timeout=30)
    assert r.verdict == "OK", r
    got = lines_by_name(r.stdout)
    # in a PID namespace the parent is sandbox-init (pid 1: no capability, not dumpable)
    assert got["ppid"] == {"ppid": 1 if own_pid(r) == 2 else os.getpid()}, got
    _assert_supervisor_out_of_reach(got, os.getpid())


NON_ROOT_SUPERVISOR = r"""
import json, os, sys
from sandbox.runner import Sandbox
profile, probe = sys.stdin.read(), sys.argv[1]
r = Sandbox(profile).run([probe, str(os.getpid())], timeout=30)
print(json.dumps({"uid": os.getuid(), "pid": os.getpid(), "verdict": r.verdict,
                  "stdout": r.stdout.decode(), "stderr": r.stderr.decode()}))
"""


def _python_for_nobody(cwd: str):
    """An interpreter that uid 65534 can run and that imports this checkout's sandbox."""
    env = dict(os.environ, PYTHONPATH=str(S.REPO))
    for python in dict.fromkeys([sys.executable, shutil.which("python3", path="/usr/bin:/bin"),
                                 shutil.which("python3", path="/usr/local/bin")]):
        if not python:
            continue
        try:
            p = subprocess.run([python, "-c", "import sandbox._core"], user=65534, group=65534,
                               extra_groups=[], cwd=cwd, env=env, capture_output=True,
                               timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if p.returncode == 0:
            return python, env
    return None, None


@S.needs_root
# was a bug: the supervisor is non-dumpable now (sandbox.runner._protect_supervisor)
def test_child_of_a_non_root_supervisor_cannot_trace_or_read_it(world_dir):
    python, env = _python_for_nobody(world_dir)
    if python is None:
        pytest.skip("no Python that uid 65534 can run and import this checkout with")
    exe = S.world_copy(S.probe("ptrace_parent"), world_dir)
    with open(S.docker_default()) as f:
        profile = f.read()
    p = subprocess.run([python, "-c", NON_ROOT_SUPERVISOR, exe], user=65534, group=65534,
                       extra_groups=[], cwd=world_dir, env=env, input=profile.encode(),
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["uid"] == 65534 and doc["verdict"] == "OK", doc
    _assert_supervisor_out_of_reach(lines_by_name(doc["stdout"].encode()), doc["pid"])


# ------------------------------------------------------------------------------------------
# (g) capabilities, no_new_privs, seccomp mode

def _status_of_child(sb: Sandbox) -> dict:
    r = sb.run(["cat", "/proc/self/status"], timeout=30)
    assert r.verdict == "OK", r
    return S.status_fields(r.stdout.decode())


# how a run can start: its own PID namespace (the root default), the pre-filtered spawner
# thread, the pre-filtered zygote, a direct start that installs the filter itself. The last
# three inherit their bounding set and signal dispositions from a forker that set them up once.
SPAWN_PATHS = {
    "pid-namespace": dict(),
    "spawner-thread": dict(pid_namespace=False, use_cgroup=False),
    "zygote": dict(zygote=True),
    "direct": dict(pid_namespace=False, use_cgroup=False, spawner=False),
}


@S.needs_root
@pytest.mark.parametrize("path", sorted(SPAWN_PATHS))
@pytest.mark.parametrize("profile_name", PROFILES)
def test_root_child_has_exactly_dockers_default_capabilities(profile_name, path):
    sb = Sandbox(S.profile_spec(profile_name), **SPAWN_PATHS[path])
    st = _status_of_child(sb)
    sb.close()
    want = S.DOCKER_DEFAULT_CAP_MASK
    assert want == 0xa80425fb
    assert int(st["CapEff"], 16) == want
    assert int(st["CapPrm"], 16) == want
    assert int(st["CapBnd"], 16) == want
    assert int(st["CapAmb"], 16) == 0
    assert int(st["CapInh"], 16) & ~want == 0      # never more than the kept set
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    assert int(st["Seccomp_filters"]) == 1
    assert int(st["SigBlk"], 16) == 0              # the supervisor's mask is not inherited
    assert int(st["SigIgn"], 16) == 0              # nor its ignored signals (SIGPIPE)


@S.needs_root
@pytest.mark.parametrize("profile_name", PROFILES + ["unconfined"])
def test_nobody_child_has_no_capabilities_at_all(profile_name):
    spec = "unconfined" if profile_name == "unconfined" else S.profile_spec(profile_name)
    st = _status_of_child(Sandbox(spec, user="nobody"))
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[key], 16) == 0, (key, st[key])
    assert st["Uid"].split() == ["65534"] * 4
    assert st["Gid"].split() == ["65534"] * 4
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == ("0" if profile_name == "unconfined" else "2")


@S.needs_root
def test_explicit_caps_are_what_the_child_keeps():
    st = _status_of_child(Sandbox(S.docker_default(), caps="CAP_CHOWN,CAP_KILL"))
    want = (1 << S.CAP_NUMBERS["CAP_CHOWN"]) | (1 << S.CAP_NUMBERS["CAP_KILL"])
    assert int(st["CapEff"], 16) == want
    assert int(st["CapBnd"], 16) == want


# ------------------------------------------------------------------------------------------
# isolation between concurrent runs

# was a bug: root runs get a mount namespace with a /proc of their PID namespace
@pytest.mark.parametrize("user", [None, "nobody"])
def test_a_run_cannot_reach_into_a_concurrent_run(user, world_dir):
    import threading
    if user is not None and os.geteuid() != 0:
        pytest.skip("running as another user needs root")
    profile = S.docker_default()
    exe = S.world_copy(S.probe("ptrace_parent"), world_dir)
    secret = S.marker()
    victim_result = []
    victim = threading.Thread(target=lambda: victim_result.append(
        Sandbox(profile, user=user).run(["sh", "-c", "sleep 30; true", secret],
                                        env={"SECRET": secret}, timeout=2)))
    victim.start()
    try:
        wait_for(lambda: [p for p in S.procs_with(secret) if p[2].startswith("sh ")], 30,
                 "the victim never started")
        victim_pid = [p for p in S.procs_with(secret) if p[2].startswith("sh ")][0][0]
        r = Sandbox(profile, user=user).run([exe, str(victim_pid)], timeout=30)
        assert r.verdict == "OK", r
        got = lines_by_name(r.stdout)
        assert got["target"] == {"target": victim_pid}
        assert got["attach"]["ret"] == -1 and got["seize"]["ret"] == -1
        assert got["mem"]["open"] == -1, "a run opened another run's /proc/PID/mem"
        assert got["environ"]["open"] == -1, "a run opened another run's /proc/PID/environ"
    finally:
        victim.join(60)
    assert victim_result and victim_result[0].verdict == "TIME_LIMIT"

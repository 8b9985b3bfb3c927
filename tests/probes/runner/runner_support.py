"""Shared helpers of test_runner.py, test_security_probes.py and test_containment.py.

- the probes in this directory (*.c), built with gcc once per source hash into a per-user cache
  directory shared by every pytest-xdist worker (build under a private name, atomic rename);
- where the shared Docker profile lives, and whether the built-in `default` profile exists;
- scans of /proc for processes whose command line carries a test's unique marker, of this
  process's zombie children and of its open descriptors.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import time
import uuid

import pytest

import cbuild

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[2]
CFLAGS = ["-O1", "-Wall", "-Wno-unused-result"]

# Docker's default capability set (moby oci/caps/defaults.go), written out here on purpose:
# the tests compare the child's sets with this list, not with what the package computes.
DOCKER_DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
CAP_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
}
DOCKER_DEFAULT_CAP_MASK = sum(1 << CAP_NUMBERS[c] for c in DOCKER_DEFAULT_CAPS)  # 0xa80425fb

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (uid 0)")


# ------------------------------------------------------------------------------ profiles

def shared_dir() -> pathlib.Path | None:
    """shared/: $SANDBOX_SHARED, else beside the repository (as CI lays it out), else
    /work/shared (as tests/test_profile.py looks for it)."""
    for candidate in filter(None, [os.environ.get("SANDBOX_SHARED"), REPO.parent / "shared",
                                   "/work/shared"]):
        if (pathlib.Path(candidate) / "profiles").is_dir():
            return pathlib.Path(candidate)
    return None


def docker_default() -> str:
    """Path of Docker's default profile in shared/profiles (never copied); skips without it."""
    d = shared_dir()
    path = d / "profiles" / "docker-default.json" if d else None
    if path is None or not path.is_file():
        pytest.skip("shared/profiles/docker-default.json not available "
                    "(set SANDBOX_SHARED to the shared directory)")
    return str(path)


def builtin_default() -> str:
    """The built-in profile name "default"; skips while sandbox/profiles/default.json is absent
    (another engineer writes it)."""
    if not (REPO / "sandbox" / "profiles" / "default.json").is_file():
        pytest.skip("built-in profile sandbox/profiles/default.json does not exist yet")
    return "default"


def profile_spec(name: str) -> str:
    """'docker-default' -> the shared file; 'default' -> the built-in name."""
    return docker_default() if name == "docker-default" else builtin_default()


# ------------------------------------------------------------------------------ probes

_Unavailable = cbuild.Unavailable


def _build(name: str) -> str:
    return cbuild.build(str(HERE / (name + ".c")), tuple(CFLAGS), "the runner probes")


def probe(name: str) -> str:
    """Path of the built probe tests/probes/runner/NAME.c (skips when it cannot be built)."""
    try:
        return _build(name)
    except _Unavailable as e:
        pytest.skip(str(e))


def world_copy(path: str, directory: str, mode: int = 0o755) -> str:
    """Copy an executable into a world-searchable directory (the cache is 0700: a probe run as
    another user could not even reach it there)."""
    dest = os.path.join(directory, os.path.basename(path))
    shutil.copyfile(path, dest)
    os.chmod(dest, mode)
    return dest


# ------------------------------------------------------------------------------ /proc scans

def marker() -> str:
    """A string unique to one test, put into argv so leftovers can be found in /proc."""
    return "sbx-%s" % uuid.uuid4().hex[:16]


def sleep_marker() -> str:
    """A unique marker that `sleep` also accepts as its duration: 300.<16 digits> seconds."""
    return "300.%016d" % (uuid.uuid4().int % 10 ** 16)


def procs_with(text: str) -> list:
    """[(pid, state, cmdline)] of every live process (zombies included) whose command line
    contains text."""
    found = []
    needle = text.encode()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/stat" % entry, "rb") as f:
                st = f.read()
        except OSError:
            continue
        if needle in cmd:
            state = st[st.rfind(b")") + 2:][:1].decode()
            found.append((int(entry), state, cmd.replace(b"\0", b" ").decode(errors="replace")))
    return found


def wait_gone(text: str, timeout: float = 5.0) -> list:
    """Processes still carrying text after waiting up to timeout (the kernel tears a killed tree
    down asynchronously; a correct runner has waited already, so this is only slack)."""
    deadline = time.monotonic() + timeout
    while True:
        left = procs_with(text)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def kill_all_with(text: str) -> None:
    """Clean-up after a failed test: SIGKILL whatever still carries the marker."""
    import signal
    for pid, _state, _cmd in procs_with(text):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def zombie_children() -> list:
    """Zombies among this process's children (read from /proc, nothing is reaped)."""
    me = str(os.getpid())
    out = []
    children = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/children" % task) as f:
                children += f.read().split()
        except OSError:
            pass
    for entry in children:
        try:
            with open("/proc/%s/stat" % entry) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()
        if fields[0] == "Z" and fields[1] == me:
            out.append(int(entry))
    return out


def no_waitable_child() -> bool:
    """os.waitpid(-1, WNOHANG): True when there is no child at all or none has exited."""
    try:
        pid, _status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return pid == 0


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def status_fields(text: str) -> dict:
    """/proc/PID/status text -> {key: value}."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out

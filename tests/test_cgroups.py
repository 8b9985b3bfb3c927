"""sandbox.cgroups: per-run cgroups (containment, kill, CPU, memory and pids limits).

The kernel tests need root and a cgroup filesystem; they skip with a reason otherwise. Every
cgroup and process a test makes is removed by fixtures even when the test fails. The
degradation tests (no cgroup fs, non-root) run everywhere they can.
"""
import os
import re
import signal
import sys
import threading
import time

import pytest

from sandbox import cgroups
from sandbox.cgroups import RunCgroup

MiB = 1 << 20
HAS_CGROUPFS = os.path.isdir("/sys/fs/cgroup") and any(
    " - cgroup" in line for line in open("/proc/self/mountinfo"))
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="cgroup tests need root")
needs_cgroupfs = pytest.mark.skipif(not HAS_CGROUPFS, reason="no cgroup filesystem mounted")


def kernel_test(fn):
    return needs_root(needs_cgroupfs(fn))


# ------------------------------------------------------------------------------- fixtures

@pytest.fixture
def fresh_caps():
    """Re-probe before and after the test (the probe cache must not leak between tests)."""
    cgroups.capabilities(refresh=True)
    yield
    cgroups.capabilities(refresh=True)


@pytest.fixture
def fake_mountinfo(tmp_path):
    """use(mountinfo, proc_cgroup=None) -> capabilities() probed against a fake
    /proc/self/mountinfo (and /proc/self/cgroup); the real ones are restored (and re-probed)
    at teardown."""
    real = cgroups._MOUNTINFO, cgroups._PROC_CGROUP

    def use(text, proc_cgroup=None):
        (tmp_path / "mountinfo").write_text(text)
        cgroups._MOUNTINFO = str(tmp_path / "mountinfo")
        if proc_cgroup is not None:
            (tmp_path / "cgroup").write_text(proc_cgroup)
            cgroups._PROC_CGROUP = str(tmp_path / "cgroup")
        return cgroups.capabilities(refresh=True)

    yield use
    cgroups._MOUNTINFO, cgroups._PROC_CGROUP = real
    cgroups.capabilities(refresh=True)


@pytest.fixture
def children():
    """Pids forked by the test; SIGKILLed and reaped at teardown."""
    pids = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


@pytest.fixture
def runs(children):
    """make(**limits) -> RunCgroup (skips when none can be made); all closed at teardown
    (before `children` reaps, so trees die first)."""
    made = []

    def make(**limits):
        cg = RunCgroup.create(**limits)
        if cg is None:
            pytest.skip("no cgroup can be created here: %s" % cgroups.capabilities())
        made.append(cg)
        return cg

    yield make
    for cg in made:
        cg.close()
        assert not cg.leftover, cg.leftover


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind():
    yield
    if os.geteuid() != 0 or not HAS_CGROUPFS:
        return
    mine = re.compile(r"run-%d-\d+$" % os.getpid())
    caps = cgroups.capabilities()
    left = [os.path.join(p, n) for p in caps["parents"].values() if os.path.isdir(p)
            for n in os.listdir(p) if mine.match(n)]
    for d in left:                      # clean up first, then complain
        try:
            os.rmdir(d)
        except OSError:
            pass
    cgroups.remove_parents()
    assert not left, left


# ------------------------------------------------------------------------------- helpers

def spawn_in(cg, children, argv, stdout=None):
    """Fork a child that joins cg (writes "0" to every procs fd, as csrc/spawn.c does) and
    execs argv."""
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery from here on
        try:
            if stdout is not None:
                os.dup2(stdout, 1)
            for fd in cg.procs_fds:
                os.write(fd, b"0")
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    children.append(pid)
    return pid


def wait_exit(pid, timeout=5.0):
    """waitpid with a bound: the raw status, or None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.005)
    return None


def members(path):
    with open(os.path.join(path, "cgroup.procs")) as f:
        return sorted(int(x) for x in f.read().split())


def wait_members(cg, n, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = members(cg.paths[0])
        if len(pids) >= n:
            return pids
        time.sleep(0.005)
    raise AssertionError("cgroup never reached %d members: %s" % (n, members(cg.paths[0])))


def alive(pid):
    """Running (not gone, not a zombie awaiting its reaper)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_dead(pids, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.005)
    return [p for p in pids if alive(p)]


def _sid(pid):
    try:
        return os.getsid(pid)
    except OSError:
        return None


TREE = ["/bin/sh", "-c", "sleep 30 & setsid sleep 30 & wait"]


def check_tree_killed(cg, children, kill_with):
    """Start sh + sleep + a setsid'd sleep in cg, kill them all with kill_with(cg) (kill or
    close), check all died, close, check the dirs are gone."""
    sh = spawn_in(cg, children, TREE)
    deadline = time.monotonic() + 3
    while True:                     # until both sleeps run, one of them in its own session
        pids = wait_members(cg, 3)
        if len(pids) == 3 and any(_sid(p) not in (None, os.getsid(sh)) for p in pids):
            break
        assert time.monotonic() < deadline, "no setsid'd sleep in %s" % pids
        time.sleep(0.005)
    assert sh in pids
    for d in cg.paths:              # every hierarchy holds the same tree
        assert members(d) == pids, d
    paths = list(cg.paths)
    kill_with(cg)
    status = wait_exit(sh)
    assert status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert wait_dead(pids) == []
    cg.close()
    assert cg.leftover == []
    assert not any(os.path.exists(d) for d in paths)


# ------------------------------------------------------------------------------- tests

def test_limits_are_validated():
    for bad in (0, -1):
        with pytest.raises(ValueError):
            RunCgroup.create(memory_limit=bad)
        with pytest.raises(ValueError):
            RunCgroup.create(pids_limit=bad)
    for bad in ("64M", 1.5, True):
        with pytest.raises(TypeError):
            RunCgroup.create(memory_limit=bad)


def test_no_cgroup_fs_degrades(fake_mountinfo):
    caps = fake_mountinfo("22 1 0:21 / /proc rw - proc proc rw\n")
    assert caps["v2_root"] is None and caps["memory"] is None and caps["pids"] is None
    assert caps["kill"] is False and caps["cpu"] is False and caps["tree"] is None
    assert RunCgroup.create(memory_limit=64 * MiB, pids_limit=5) is None


V2_FILES = {
    "cgroup.controllers": "memory pids\n", "cgroup.subtree_control": "", "cgroup.procs": "",
    "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.kill": "",
    "cpu.stat": "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n",
    "memory.max": "max\n", "memory.swap.max": "max\n", "memory.peak": "67104768\n",
    "memory.events": "low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n",
    "pids.max": "max\n", "pids.events": "max 3\n",
}


def test_pure_v2_plumbing_on_a_fake_cgroupfs(tmp_path, fake_mountinfo, monkeypatch):
    """The v2 memory/pids path, which a hybrid CI machine cannot exercise: a directory tree
    that answers like cgroup2 (mkdir fills in the interface files)."""
    root = tmp_path / "cg2"
    root.mkdir()
    real_mkdir, real_rmdir = os.mkdir, os.rmdir

    def mkdir(path, mode=0o777, **kw):
        real_mkdir(path, mode, **kw)
        if str(path).startswith(str(root)):
            for name, text in V2_FILES.items():
                with open(os.path.join(path, name), "w") as f:
                    f.write(text)

    def rmdir(path, **kw):
        if str(path).startswith(str(root)):
            for name in os.listdir(path):
                if not os.path.isdir(os.path.join(path, name)):
                    os.unlink(os.path.join(path, name))
        real_rmdir(path, **kw)

    for name, text in V2_FILES.items():
        (root / name).write_text(text)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "rmdir", rmdir)
    caps = fake_mountinfo("30 23 0:26 / %s rw - cgroup2 cgroup2 rw\n" % root, "0::/\n")
    assert caps["v2_root"] == str(root) and caps["kill"] and caps["cpu"]
    assert caps["memory"] == "v2" and caps["pids"] == "v2" and caps["tree"] == "v2"
    parent = root / cgroups.PARENT_NAME
    assert (parent / "cgroup.subtree_control").read_text().startswith("+pids")  # 2nd of 2 writes

    cg = RunCgroup.create(memory_limit=64 * MiB, pids_limit=5)
    try:
        assert cg.memory_method == "cgroup-v2" and cg.pids_method == "cgroup-v2"
        assert len(cg.procs_fds) == 1 and min(cg.kill_fd, cg.cpu_stat_fd, cg.events_fd) >= 0
        run = cg.v2_path
        assert os.path.dirname(run) == str(parent)
        assert re.fullmatch(r"run-%d-\d+" % os.getpid(), os.path.basename(run))
        read = lambda name: open(os.path.join(run, name)).read()  # noqa: E731
        assert read("memory.max").startswith(str(64 * MiB))
        assert read("memory.swap.max").startswith("0")
        assert read("pids.max").startswith("5")
        assert cg.stats() == {"memory_peak": 67104768, "oom_kills": 1, "pids_max_hit": True,
                              "memory_max_hit": True, "cpu_usage_usec": 1234}
        cg.kill()
        assert read("cgroup.kill").startswith("1")
    finally:
        cg.close()
    assert cg.leftover == [] and not os.path.exists(run)
    assert cg.stats()["oom_kills"] == 1


@needs_cgroupfs
@pytest.mark.skipif(os.geteuid() != 0, reason="drops root in a child: needs root to start")
def test_non_root_degrades_without_raising():
    """As nobody, nothing is writable: capabilities() and create() must not raise."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            caps = cgroups.capabilities(refresh=True)
            cg = RunCgroup.create(memory_limit=64 * MiB, pids_limit=5)
            os.write(w, repr((caps, cg)).encode())
            if cg is not None:
                cg.close()
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    status = wait_exit(pid)
    with os.fdopen(r) as f:
        report = f.read()
    assert status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, report
    assert report.endswith("None)"), report     # nothing writable for nobody here


@kernel_test
def test_capabilities_on_this_machine():
    caps = cgroups.capabilities()
    assert cgroups.capabilities() == caps and cgroups._get_caps() is cgroups._get_caps()
    assert set(caps) >= {"v2_root", "kill", "cpu", "memory", "pids"}
    assert caps["memory"] in ("v2", "v1", None) and caps["pids"] in ("v2", "v1", None)
    mounts = open("/proc/self/mountinfo").read()
    has_v2 = " - cgroup2 " in mounts
    release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    if has_v2:
        assert caps["v2_root"] is not None, caps
        assert caps["cpu"] is True          # cpu.stat is a core file of every non-root cgroup
        assert caps["kill"] is (release >= (5, 14))
        assert caps["tree"] == "v2"
    if re.search(r" - cgroup cgroup \S*\bmemory\b", mounts) and caps["memory"] != "v2":
        assert caps["memory"] == "v1", caps
    if re.search(r" - cgroup cgroup \S*\bpids\b", mounts) and caps["pids"] != "v2":
        assert caps["pids"] == "v1", caps


@kernel_test
def test_tree_joins_and_kill_empties_it(runs, children):
    cg = runs(memory_limit=256 * MiB, pids_limit=64)
    assert len(cg.procs_fds) == len(cg.paths) >= 1
    check_tree_killed(cg, children, RunCgroup.kill)


@kernel_test
def test_close_kills_a_running_tree(runs, children):
    cg = runs(pids_limit=64)
    check_tree_killed(cg, children, RunCgroup.close)   # (and close again: idempotent)
    assert cg.procs_fds == [] and cg.kill_fd == cg.events_fd == cg.cpu_stat_fd == -1


@kernel_test
def test_kill_without_cgroup_kill(runs, children, monkeypatch):
    """Kernels < 5.14: kill() falls back to reading cgroup.procs and killing each pid."""
    monkeypatch.setattr(cgroups._get_caps(), "v2_kill", False)
    cg = runs()
    assert cg.kill_fd == -1
    check_tree_killed(cg, children, RunCgroup.kill)


@kernel_test
def test_v1_only_containment(fake_mountinfo, runs, children):
    """Without a cgroup2 hierarchy, one v1 dir (pids, else freezer) still holds the tree."""
    lines = open("/proc/self/mountinfo").read().splitlines()
    caps = fake_mountinfo("\n".join(x for x in lines if " - cgroup2 " not in x) + "\n")
    if caps["tree"] is None:
        pytest.skip("no v1 pids/freezer hierarchy here: %s" % caps)
    assert caps["v2_root"] is None and caps["kill"] is False
    cg = runs()
    assert cg.kill_fd == cg.events_fd == cg.cpu_stat_fd == -1 and len(cg.paths) == 1
    check_tree_killed(cg, children, RunCgroup.kill)


@kernel_test
def test_pids_limit(runs, children):
    cg = runs(pids_limit=5)
    if cg.pids_method is None:
        pytest.skip("no pids controller usable: %s" % cgroups.capabilities())
    assert cg.pids_method in ("cgroup-v2", "cgroup-v1")
    script = ("import os, errno\n"
              "n = 0\n"
              "try:\n"
              "    for _ in range(50):\n"
              "        if os.fork() == 0:\n"
              "            os.pause()\n"
              "        n += 1\n"
              "except OSError as e:\n"
              "    os._exit(10 + n if e.errno == errno.EAGAIN else 2)\n"
              "os._exit(1)\n")
    pid = spawn_in(cg, children, [sys.executable, "-S", "-c", script])
    status = wait_exit(pid)
    assert status is not None and os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 10 + 4      # itself + 4 children = 5, the 5th fork fails
    assert cg.stats()["pids_max_hit"] is True


@kernel_test
def test_memory_limit_oom_kills(runs, children):
    limit = 64 * MiB
    cg = runs(memory_limit=limit)
    if cg.memory_method is None:
        pytest.skip("no memory controller usable: %s" % cgroups.capabilities())
    pid = spawn_in(cg, children, [sys.executable, "-S", "-c", "x = b'\\1' * (500 << 20)"])
    status = wait_exit(pid, 10)
    assert status is not None and os.WIFSIGNALED(status), status
    assert os.WTERMSIG(status) == signal.SIGKILL
    st = cg.stats()
    assert st["oom_kills"] >= 1, st
    assert st["memory_max_hit"] is True
    peak = st["memory_peak"]
    if cg.memory_method == "cgroup-v1" or cgroups._get_caps().v2_peak:
        assert peak is not None and 0.75 * limit <= peak <= limit, st
    cg.close()
    assert cg.stats() == st                     # kept after close


@kernel_test
def test_cpu_stat_and_events(runs, children):
    cg = runs()
    if cg.cpu_stat_fd < 0:
        pytest.skip("no v2 cpu.stat here: %s" % cgroups.capabilities())
    assert b"usage_usec " in os.pread(cg.cpu_stat_fd, 4096, 0)
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.1: pass\n"
    pid = spawn_in(cg, children, [sys.executable, "-S", "-c", spin])
    wait_members(cg, 1)
    assert b"populated 1" in os.pread(cg.events_fd, 256, 0)
    status = wait_exit(pid)
    assert status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert b"populated 0" in os.pread(cg.events_fd, 256, 0)
    assert cg.stats()["cpu_usage_usec"] >= 90_000


@kernel_test
def test_concurrent_create_close_leaves_nothing(fresh_caps):
    names, errors = [], []
    barrier = threading.Barrier(20)

    def worker():
        try:
            barrier.wait()
            for _ in range(5):
                cg = RunCgroup.create(memory_limit=64 * MiB, pids_limit=16)
                if cg is None:
                    return
                try:
                    names.extend(cg.paths)
                finally:
                    cg.close()
                    assert cg.leftover == []
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    if not names:
        pytest.skip("no cgroup can be created here")
    assert len(set(names)) == len(names)
    assert not [n for n in names if os.path.exists(n)]


@kernel_test
def test_parent_removed_underneath(runs, fresh_caps):
    """Another process's remove_parents() (at its exit) must not break the next create()."""
    cgroups.capabilities()
    assert cgroups.remove_parents()
    cg = runs(memory_limit=64 * MiB, pids_limit=8)
    assert all(os.path.isdir(d) for d in cg.paths)
    caps = cgroups.capabilities()
    if caps["memory"]:
        assert cg.memory_method == "cgroup-" + caps["memory"]
    if caps["pids"]:
        assert cg.pids_method == "cgroup-" + caps["pids"]


@kernel_test
def test_stale_run_dirs_of_dead_processes_are_swept(fresh_caps):
    parent = cgroups.capabilities()["parents"].get("v2") or next(
        iter(cgroups.capabilities()["parents"].values()), None)
    if parent is None:
        pytest.skip("no cgroup can be created here")
    pid = 4_000_000                             # above any default pid_max: never alive
    stale, young = ("%s/run-%d-%d" % (parent, pid, n) for n in (0, 1))
    os.mkdir(stale)
    os.mkdir(young)
    try:
        old = time.time() - 2 * cgroups.STALE_AGE_S
        os.utime(stale, (old, old))
        cgroups.capabilities(refresh=True)
        assert not os.path.exists(stale)
        assert os.path.exists(young)            # too recent: may belong to another pid namespace
    finally:
        for d in (stale, young):
            try:
                os.rmdir(d)
            except OSError:
                pass

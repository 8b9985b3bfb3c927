"""sandbox.cgroups: per-run cgroups (containment, kill, CPU, memory and pids limits).

The kernel tests need root and a cgroup filesystem; they skip with a reason otherwise. Every
cgroup and process a test makes is removed by fixtures even when the test fails (idle pooled
cgroups: by drain_pool()). The degradation tests (no cgroup fs, non-root) run everywhere they
can.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from sandbox import cgroups
from sandbox.cgroups import RunCgroup
from waiting import wait_for

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
    cgroups.drain_pool()                # idle pooled cgroups are removed here, the rest is a leak
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
    def tree_ready():               # both sleeps run, one of them in its own session
        found = wait_members(cg, 3)
        if len(found) == 3 and any(_sid(p) not in (None, os.getsid(sh)) for p in found):
            return found
        return None
    pids = wait_for(tree_ready, 3, "no setsid'd sleep in the cgroup", interval=0.005)
    assert sh in pids
    for d in cg.paths:              # every hierarchy holds the same tree
        assert members(d) == pids, d
    paths = list(cg.paths)
    kill_with(cg)
    status = wait_exit(sh)
    assert status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert wait_dead(pids) == []
    cg.close()
    assert cg.leftover == [] and cg.paths == []
    cgroups.drain_pool()            # (an emptied cgroup goes back to the pool)
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
    "memory.current": "4096\n",
    "memory.events": "low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n",
    "pids.max": "max\n", "pids.events": "max 3\n",
}


@pytest.fixture
def fake_v2(tmp_path, fake_mountinfo, monkeypatch):
    """use(peak_mode=0o644) -> (root, capabilities()) of a directory tree that answers like a
    pure cgroup2 hierarchy (mkdir fills in the interface files, rmdir removes them)."""
    root = tmp_path / "cg2"
    root.mkdir()
    real_mkdir, real_rmdir = os.mkdir, os.rmdir

    def use(peak_mode=0o644):
        def mkdir(path, mode=0o777, **kw):
            real_mkdir(path, mode, **kw)
            if str(path).startswith(str(root)):
                for name, text in V2_FILES.items():
                    with open(os.path.join(path, name), "w") as f:
                        f.write(text)
                os.chmod(os.path.join(path, "memory.peak"), peak_mode)

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
        return root, fake_mountinfo("30 23 0:26 / %s rw - cgroup2 cgroup2 rw\n" % root, "0::/\n")

    yield use
    cgroups.drain_pool()                # while rmdir still knows the fake files


def test_pure_v2_plumbing_on_a_fake_cgroupfs(fake_v2):
    """The v2 memory/pids path, which a hybrid CI machine cannot exercise: a directory tree
    that answers like cgroup2 (mkdir fills in the interface files)."""
    root, caps = fake_v2()
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
    assert cg.leftover == [] and cg.paths == [] and cg.kill_fd == -1
    assert cg.stats()["oom_kills"] == 1
    assert os.path.exists(run)                  # idle in the pool: populated 0, 4 KiB charged

    # reuse without limits: the limits go back to max, nothing of run 1 is reported
    with open(os.path.join(run, "cgroup.kill"), "w"):
        pass                                    # (cg.kill() above wrote "1" there)
    cg2 = RunCgroup.create()
    try:
        assert cg2.reused and cg2.v2_path == run and cg2.kill_fd >= 0
        assert cg2.memory_method is None and cg2.pids_method is None
        assert read("memory.max").startswith("max") and read("pids.max").startswith("max")
        assert read("memory.swap.max").startswith("max")
        assert cg2.cpu_base_usec == 1234
        with open(os.path.join(run, "cpu.stat"), "w") as f:
            f.write("usage_usec 5000\n")
        assert cg2.stats() == {"memory_peak": None, "oom_kills": 0, "pids_max_hit": False,
                               "memory_max_hit": False, "cpu_usage_usec": 5000 - 1234}
    finally:
        cg2.close()
    cg.kill()                                   # a closed handle never reaches the next run
    assert not read("cgroup.kill")
    # reuse with limits: written again; the peak is reset through its own fd; counters per run
    cg3 = RunCgroup.create(memory_limit=32 * MiB, pids_limit=7)
    try:
        assert cg3.reused and cg3.v2_path == run and cg3.cpu_base_usec == 5000
        assert read("memory.max").startswith(str(32 * MiB)) and read("pids.max").startswith("7")
        assert read("memory.swap.max").startswith("0")
        assert read("memory.peak").startswith("reset")      # what the reset wrote
        with open(os.path.join(run, "memory.peak"), "w") as f:
            f.write("1000\n")                               # what the kernel would say now
        with open(os.path.join(run, "memory.events"), "w") as f:
            f.write("max 18\noom_kill 1\n")                # one more limit hit, no oom
        assert cg3.stats() == {"memory_peak": 1000, "oom_kills": 0, "pids_max_hit": False,
                               "memory_max_hit": True, "cpu_usage_usec": 0}
        before = os.stat(os.path.join(run, "memory.max")).st_mtime_ns
    finally:
        cg3.close()
    # same limits again: nothing is written
    cg4 = RunCgroup.create(memory_limit=32 * MiB, pids_limit=7)
    try:
        assert cg4.reused and os.stat(os.path.join(run, "memory.max")).st_mtime_ns == before
    finally:
        cg4.close()
    # tree still populated (an unreadable events file says so): removed, never reused
    with open(os.path.join(run, "cgroup.events"), "w") as f:
        f.write("populated 1\nfrozen 0\n")
    cg5 = RunCgroup.create()
    assert cg5.v2_path == run
    with open(os.path.join(run, "cgroup.events"), "w") as f:
        f.write("populated 0\nfrozen 1\n")                # frozen: would freeze the next run
    cg5.close()
    assert cg5.leftover == [] and not os.path.exists(run)
    assert cgroups.drain_pool() == 0


def test_v2_peak_without_reset_is_not_reused(fake_v2):
    """Kernels 5.19..6.11: memory.peak is read-only (the peak of the cgroup's lifetime), so a
    v2 memory cgroup could only report the peak of all its runs: it is never reused."""
    root, _ = fake_v2(peak_mode=0o444)
    c = cgroups._get_caps()
    assert c.v2_peak and not c.v2_peak_reset
    cg = RunCgroup.create(memory_limit=64 * MiB)
    assert cg.memory_method == "cgroup-v2" and cg.stats()["memory_peak"] == 67104768
    run = cg.v2_path
    cg.close()
    assert not os.path.exists(run)


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
def test_parent_removed_underneath(runs, fresh_caps):
    """Another process's remove_parents() (at its exit) must not break the next create()."""
    cgroups.capabilities()
    if not cgroups.remove_parents():
        others = [n for p in cgroups.capabilities()["parents"].values() if os.path.isdir(p)
                  for n in os.listdir(p) if n.startswith("run-")]
        assert others, "no parent removed, yet none holds a run dir"
        pytest.skip("other processes' run dirs keep the parents: %s" % others[:4])
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


# ------------------------------------------------------------------------------- reuse

@pytest.fixture
def pool():
    """An empty pool of idle cgroups before and after the test."""
    cgroups.drain_pool()
    yield
    cgroups.drain_pool()


def make_or_skip(**limits):
    cg = RunCgroup.create(**limits)
    if cg is None:
        pytest.skip("no cgroup can be created here: %s" % cgroups.capabilities())
    return cg


def run_in(cg, children, argv, timeout=10.0):
    status = wait_exit(spawn_in(cg, children, argv), timeout)
    assert status is not None, argv
    return status


def read_int(path):
    with open(path) as f:
        text = f.read().strip()
    return None if text == "max" else int(text)


def memory_limit_of(cg):
    d = cg._mem_dir
    if cg._mem_kind == "v2":
        return read_int(d + "/memory.max")
    value = read_int(d + "/memory.limit_in_bytes")
    if os.path.exists(d + "/memory.memsw.limit_in_bytes"):
        assert read_int(d + "/memory.memsw.limit_in_bytes") == value
    return None if value >= 1 << 62 else value


@kernel_test
def test_close_pools_and_create_reuses_the_same_dirs(pool):
    for limits in ({}, {"memory_limit": 64 * MiB, "pids_limit": 16}):
        cg = make_or_skip(**limits)
        assert not cg.reused and cg.cpu_base_usec == 0
        paths, methods = list(cg.paths), (cg.memory_method, cg.pids_method)
        cg.close()
        st = cg.stats()
        assert cg.paths == cg.leftover == [] and cg.procs_fds == [] and cg.kill_fd == -1
        assert all(os.path.isdir(d) for d in paths)             # idle, in the pool
        cg2 = RunCgroup.create(**limits)
        try:
            assert cg2.reused and cg2.paths == paths
            assert (cg2.memory_method, cg2.pids_method) == methods
            assert len(cg2.procs_fds) == len(paths)
        finally:
            cg2.close()
        cg.kill()                       # the closed handle reaches nothing of the next run
        assert cg.stats() == st


@kernel_test
def test_reuse_writes_only_the_limits_that_change(pool):
    cg = make_or_skip(memory_limit=64 * MiB, pids_limit=16)
    if cg.memory_method is None or cg.pids_method is None:
        cg.close()
        pytest.skip("no memory and pids limits here: %s" % cgroups.capabilities())
    paths = list(cg.paths)
    assert memory_limit_of(cg) == 64 * MiB
    cg.close()
    # lower, unlimited (a memory dir serving a run without a memory limit), lower, raise:
    # every step must succeed in place (v1: memsw >= limit at each write)
    for mem, pids in ((32 * MiB, 16), (None, 8), (64 * MiB, 8), (128 * MiB, None)):
        cg = RunCgroup.create(memory_limit=mem, pids_limit=pids)
        try:
            assert cg.reused and cg.paths == paths, (mem, pids, cg)
            assert memory_limit_of(cg) == mem
            assert read_int(cg._pids_dir + "/pids.max") == pids
            assert (cg.memory_method is None) == (mem is None)
            assert (cg.pids_method is None) == (pids is None)
        finally:
            cg.close()


@kernel_test
def test_a_reused_cgroup_reports_only_its_own_run(pool, children):
    """Run 1 burns 0.1 s of CPU, hits the pids limit and is OOM killed; run 2 (/bin/true) in
    the same dirs reports none of it."""
    limits = {"memory_limit": 64 * MiB, "pids_limit": 5}
    cg = make_or_skip(**limits)
    script = ("import os, time\n"
              "t = time.process_time()\n"
              "while time.process_time() - t < 0.1: pass\n"
              "try:\n"
              "    for _ in range(10):\n"
              "        if os.fork() == 0:\n"
              "            os.pause()\n"
              "except OSError:\n"
              "    pass\n"
              "x = b'\\1' * (500 << 20)\n")
    run_in(cg, children, [sys.executable, "-S", "-c", script])
    st1 = cg.stats()
    paths = list(cg.paths)
    cg.close()                          # kills the paused children, then pools
    cg2 = RunCgroup.create(**limits)
    try:
        assert cg2.reused and cg2.paths == paths
        status = run_in(cg2, children, ["/bin/true"])
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        st2 = cg2.stats()
    finally:
        cg2.close()
    if st1["cpu_usage_usec"] is not None:
        assert st1["cpu_usage_usec"] >= 90_000, st1
        assert cg2.cpu_base_usec >= st1["cpu_usage_usec"]
        assert st2["cpu_usage_usec"] < 50_000, st2
    if cg2.pids_method:
        assert st1["pids_max_hit"] is True and st2["pids_max_hit"] is False
    if cg2.memory_method:
        assert st1["oom_kills"] >= 1 and st1["memory_max_hit"], st1
        assert st2["oom_kills"] == 0 and st2["memory_max_hit"] is False, st2
        if st1["memory_peak"] is not None:
            assert st1["memory_peak"] >= 48 * MiB, st1
            assert st2["memory_peak"] < 16 * MiB, st2          # reset at hand-out


@kernel_test
def test_a_member_left_in_a_v1_dir_is_killed_and_the_dirs_removed(pool, children):
    """The v2 dir says populated 0, but a process sits in a v1 dir only: not reused."""
    cg = make_or_skip(memory_limit=64 * MiB, pids_limit=16)
    if cg.v2_path is None or len(cg.paths) < 2:
        cg.close()
        pytest.skip("needs a v2 dir and v1 dirs (hybrid layout)")
    pid = os.fork()
    if pid == 0:
        try:
            for fd in cg.procs_fds[1:]:
                os.write(fd, b"0")
            os.execv("/bin/sleep", ["sleep", "30"])
        finally:
            os._exit(127)
    children.append(pid)
    wait_for(lambda: members(cg.paths[1]) == [pid], 3, "the child never joined the cgroup",
             interval=0.005)
    assert members(cg.v2_path) == []
    paths = list(cg.paths)
    cg.close()
    assert cg.leftover == [] and not any(os.path.exists(d) for d in paths)
    status = wait_exit(pid)
    assert status is not None and os.WIFSIGNALED(status)


@kernel_test
def test_frozen_nested_or_charged_cgroups_are_not_reused(pool, children, monkeypatch):
    cg = make_or_skip()
    if cg.v2_path is None or not os.path.exists(cg.v2_path + "/cgroup.freeze"):
        cg.close()
        pytest.skip("no v2 cgroup.freeze here")
    run = cg.v2_path
    with open(run + "/cgroup.freeze", "w") as f:    # would freeze every later run
        f.write("1")
    cg.close()
    assert cg.leftover == [] and not os.path.exists(run)

    monkeypatch.setattr(cgroups, "WAIT_EMPTY_S", 0.1)
    cg = make_or_skip()
    run = cg.v2_path
    os.mkdir(run + "/nested")
    try:
        cg.close()
        assert cg.leftover == [run]                 # as before: a child cgroup keeps it busy
    finally:
        os.rmdir(run + "/nested")
        os.rmdir(run)

    cg = make_or_skip(memory_limit=64 * MiB)
    if cg.memory_method is None:
        cg.close()
        return
    shm = "/dev/shm/cgroups-test-%d" % os.getpid()
    try:
        run_in(cg, children, ["/bin/sh", "-c", "head -c 8388608 /dev/zero > " + shm])
        paths = list(cg.paths)
        cg.close()                                  # 8 MiB of tmpfs still charged to it
        assert cg.leftover == [] and not any(os.path.exists(d) for d in paths)
    finally:
        if os.path.exists(shm):
            os.unlink(shm)


@kernel_test
def test_fds_not_intact_are_neither_reused_nor_closed(pool):
    cg = make_or_skip()
    if cg.kill_fd < 0:
        cg.close()
        pytest.skip("no cgroup.kill here")
    fd, paths = cg.kill_fd, list(cg.paths)
    nul = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nul, fd)        # as if closed behind its back and the number reused elsewhere
    try:
        cg.close()
        assert cg.leftover == [] and not any(os.path.exists(d) for d in paths)
        os.fstat(fd)        # still open: not ours any more, so not closed either
    finally:
        os.close(fd)
        os.close(nul)
    # release_procs_fds() closes them knowingly: reopened, and the cgroup reused
    cg = make_or_skip()
    paths = list(cg.paths)
    cg.release_procs_fds()
    cg.close()
    cg = RunCgroup.create()
    try:
        assert cg.reused and cg.paths == paths and len(cg.procs_fds) == len(paths)
        for fd, d in zip(cg.procs_fds, paths):
            assert os.path.samestat(os.fstat(fd), os.stat(d + "/cgroup.procs"))
    finally:
        cg.close()


@kernel_test
def test_pool_is_bounded_drained_and_can_be_disabled(pool, monkeypatch):
    monkeypatch.setattr(cgroups, "POOL_MAX", 2)
    cgs = [make_or_skip() for _ in range(4)]
    paths = [d for cg in cgs for d in cg.paths]
    for cg in cgs:
        cg.close()
    assert sum(os.path.exists(d) for d in paths) == 2 * len(paths) // 4
    cgroups.capabilities(refresh=True)              # a new probe drops the old idle cgroups
    assert not any(os.path.exists(d) for d in paths)

    cg = make_or_skip()
    paths = list(cg.paths)
    cg.close()
    assert all(os.path.isdir(d) for d in paths)
    cgroups.remove_parents()                        # (empties the pool first)
    assert not any(os.path.exists(d) for d in paths)

    monkeypatch.setattr(cgroups, "POOL_MAX", 0)
    cg = make_or_skip()
    paths = list(cg.paths)
    cg.close()
    assert not any(os.path.exists(d) for d in paths)


@kernel_test
def test_concurrent_use_from_20_threads(pool, children):
    held, seen, errors = {}, set(), []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def worker(i):
        try:
            barrier.wait()
            for n in range(10):
                limits = {} if (i + n) % 2 else {"memory_limit": 64 * MiB, "pids_limit": 16}
                cg = RunCgroup.create(**limits)
                if cg is None:
                    return
                try:
                    with lock:
                        for d in cg.paths:
                            assert d not in held, "%s handed out twice" % d
                            held[d] = i
                        seen.update(cg.paths)
                    if n % 5 == 0:
                        status = run_in(cg, children, ["/bin/true"])
                        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
                    st = cg.stats()
                    assert st["oom_kills"] == 0 and not st["pids_max_hit"], st
                    if st["cpu_usage_usec"] is not None:
                        assert st["cpu_usage_usec"] < 100_000, st
                    with lock:
                        for d in cg.paths:
                            del held[d]
                finally:
                    cg.close()
                    assert cg.leftover == []
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    if not seen:
        pytest.skip("no cgroup can be created here")
    idle = sum(len(v) for v in cgroups._pool.values())
    assert 0 < idle and all(len(v) <= cgroups.POOL_MAX for v in cgroups._pool.values())
    assert len(seen) < 200                          # dirs were reused
    cgroups.drain_pool()
    assert not [d for d in seen if os.path.exists(d)]


@kernel_test
def test_a_forked_child_neither_reuses_nor_removes_the_parents_cgroups(pool):
    cg = make_or_skip()
    paths = list(cg.paths)
    cg.close()
    (idle,) = [c for v in cgroups._pool.values() for c in v]
    idle_fd = idle.procs_fds[0]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                        # no pytest machinery from here on
        code = 1
        try:
            os.close(r)
            report = [cgroups._pool == {}]
            try:
                os.fstat(idle_fd)
                report.append("copy of the parent's idle fd still open")
            except OSError:
                report.append(True)
            c2 = RunCgroup.create()
            report.append(not c2.reused and c2.paths != paths
                          and "/run-%d-" % os.getpid() in c2.paths[0])
            mine = list(c2.paths)
            c2.close()
            report.append(all(os.path.isdir(d) for d in mine))     # the child's own pool
            cgroups._drain_at_exit()                               # what atexit runs
            report.append(not any(os.path.exists(d) for d in mine))
            os.write(w, repr(report).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    status = wait_exit(pid)
    with os.fdopen(r) as f:
        report = f.read()
    assert status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, report
    assert report == repr([True] * 5)
    assert all(os.path.isdir(d) for d in paths)     # still the parent's, still idle
    cg = RunCgroup.create()
    try:
        assert cg.reused and cg.paths == paths
    finally:
        cg.close()


def _create_and_close(q):
    cg = RunCgroup.create()
    q.put(None if cg is None else list(cg.paths))
    if cg is not None:
        cg.close()


@kernel_test
def test_the_pool_is_emptied_at_exit(pool):
    """At interpreter exit (atexit) and at the exit of a forked multiprocessing worker (which
    leaves by os._exit after multiprocessing's finalizers)."""
    import multiprocessing
    code = ("import os, sys\n"
            "sys.path.insert(0, %r)\n"
            "from sandbox.cgroups import RunCgroup\n"
            "cg = RunCgroup.create()\n"
            "paths = list(cg.paths)\n"
            "cg.close()\n"
            "assert all(os.path.isdir(d) for d in paths)\n"
            "print(repr(paths))\n" % os.path.dirname(os.path.dirname(cgroups.__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    paths = eval(out.stdout)
    assert paths and not any(os.path.exists(d) for d in paths)

    ctx = multiprocessing.get_context("fork")
    q = ctx.SimpleQueue()
    p = ctx.Process(target=_create_and_close, args=(q,))
    p.start()
    paths = q.get()
    p.join(30)
    assert p.exitcode == 0 and paths
    assert not any(os.path.exists(d) for d in paths)

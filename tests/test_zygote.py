"""The pre-filtered zygote (sandbox/zygote.py, csrc/zygote/): jobs it starts behave as direct
runs do, inherit its filter, and leave nothing behind; profiles that deny what it needs fall
back to direct spawning; a zygote that dies is replaced.

Every Sandbox with zygote=True is closed by the test (a live zygote is a child of ours)."""
import json
import os
import pathlib
import signal
import sys
import threading

import pytest

pytest.importorskip("sandbox._core")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "probes" / "runner"))
import runner_support as S  # noqa: E402

from sandbox import batch, cgroups, zygote  # noqa: E402
from sandbox.result import Result  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402
from waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.skipif(zygote.EXE is None, reason="sandbox-zygote is not built")
PYTHON = "python3"


def settled_fd_count() -> int:
    cgroups.drain_pool()
    return S.fd_count()


@pytest.fixture
def zy():
    sb = Sandbox(S.docker_default(), zygote=True)
    yield sb
    sb.close()


@pytest.fixture
def direct():
    return Sandbox(S.docker_default())


def _docker_doc() -> dict:
    with open(S.docker_default()) as f:
        return json.load(f)


def _without(doc: dict, name: str) -> dict:
    """The profile with `name` taken out of every rule (so the default action applies)."""
    for rule in doc["syscalls"]:
        rule["names"] = [n for n in rule["names"] if n != name]
    doc["syscalls"] = [r for r in doc["syscalls"] if r["names"]]
    return doc


def _sleeper(sb):
    """Start `sleep` through sb in a thread; (marker, join() -> its Result) once it runs."""
    m = S.sleep_marker()
    box = {}
    sb.run(["true"])
    t = threading.Thread(target=lambda: box.setdefault("r", sb.run(["sleep", m], timeout=60)))
    t.start()
    wait_for(lambda: S.procs_with(m), 30, "the job never started")

    def join():
        t.join(60)
        return box["r"]
    return m, join


def _assert_clean(markers, zombies_before=()):
    for m in markers:
        assert S.wait_gone(m, timeout=3.0) == [], "processes outlived the run"
    assert set(S.zombie_children()) - set(zombies_before) == set()
    assert S.no_waitable_child()


def _batch(tmp_path, entries, **kw):
    jobs, problems = batch.parse_jobs("\n".join(json.dumps(e) for e in entries),
                                      name="jobs.jsonl", base_dir=str(tmp_path))
    assert problems == []
    return batch.run_batch(jobs, default_profile=S.docker_default(), **kw)


# ------------------------------------------------------------------------------------------
# eligibility and fallback

def test_docker_default_is_eligible_and_results_say_zygote(zy):
    assert zy.zygote_refusal is None
    r = zy.run(["echo", "hi"])
    assert (r.verdict, r.stdout, r.spawn_path) == ("OK", b"hi\n", "zygote")
    assert r.to_json()["spawn_path"] == "zygote"
    assert Result.from_json(json.loads(json.dumps(r.to_json()))).spawn_path == "zygote"


def test_direct_runs_say_direct(direct):
    assert direct.run(["true"]).spawn_path == "direct"


@pytest.mark.parametrize("name", ["wait4", "recvmsg", "setsid"])
def test_a_profile_denying_what_the_zygote_needs_falls_back_to_direct(name):
    sb = Sandbox(_without(_docker_doc(), name), zygote=True)
    try:
        assert name in sb.zygote_refusal
        r = sb.run(["echo", "hi"])
        assert (r.verdict, r.stdout, r.spawn_path) == ("OK", b"hi\n", "direct")
        assert sb._zygotes == []
    finally:
        sb.close()


def test_ids_need_the_id_calls():
    needed = {n for n, _ in zygote.needed_syscalls("x86_64", ids=True, caps=True)}
    assert {"setresuid", "setresgid", "setgroups", "capset", "vfork", "poll"} <= needed
    needed = {n for n, _ in zygote.needed_syscalls("aarch64", ids=False, caps=False)}
    assert {"clone", "ppoll"} <= needed and "setresuid" not in needed


@pytest.mark.parametrize("default_action, why", [("SCMP_ACT_ERRNO", "exited at start-up"),
                                                 ("SCMP_ACT_KILL_PROCESS", "SIGSYS")])
def test_a_zygote_that_fails_at_start_up_falls_back_with_the_reason(default_action, why):
    """The static check cannot see the calls of the zygote's own start; starting it does."""
    doc = _without(_docker_doc(), "sendmsg")
    doc["defaultAction"] = default_action
    sb = Sandbox(doc, zygote=True)
    # pretend the static check passed: the zygote then fails its first sendmsg ("ready")
    sb.zygote_refusal = None
    try:
        r = sb.run(["echo", "hi"])
        assert (r.verdict, r.spawn_path) == ("OK", "direct")
        assert "failed to start" in sb.zygote_refusal and why in sb.zygote_refusal
    finally:
        sb.close()
    assert S.no_waitable_child()


# ------------------------------------------------------------------------------------------
# the same outcomes as a direct run

KILL_GETPPID = {"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}

CASES = {
    "ok": (["sh", "-c", "echo out; echo err >&2"], {}),
    "nonzero": (["sh", "-c", "exit 7"], {}),
    "signal": (["sh", "-c", "kill -TERM $$"], {}),
    "timeout": (["sleep", "30"], {"timeout": 0.3}),
    "output-limit": (["sh", "-c", "yes"], {"output_limit": "8K", "timeout": 30}),
    "exec-fails": (None, {}),
    "cpu-limit": (["sh", "-c", "while :; do :; done"], {"cpu_time": 0.2, "timeout": 30}),
}


def _outcome(r: Result):
    err = r.setup_error or {}
    return (r.verdict, r.exit_code, r.signal, r.time_limit_kind, r.stdout, r.stderr,
            r.stdout_truncated, err.get("stage"), err.get("errno"), err.get("message"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_outcomes_match_direct_runs(case, zy, direct, tmp_path):
    argv, kw = CASES[case]
    if argv is None:  # exists, executable, but its interpreter does not: execve fails
        script = tmp_path / "script"
        script.write_text("#!/nonexistent/interpreter\n")
        script.chmod(0o755)
        argv = [str(script)]
    a, b = zy.run(argv, **kw), direct.run(argv, **kw)
    assert b.spawn_path == "direct"
    assert a.spawn_path == "zygote"
    if case == "output-limit":  # how much of `yes` arrived before the kill is a race
        a.stdout = b.stdout = None
    assert _outcome(a) == _outcome(b)


def test_seccomp_kill_is_the_same(tmp_path):
    with Sandbox(KILL_GETPPID, zygote=True) as zsb:
        code = "import os; print('before', flush=True); os.getppid(); print('after')"
        a = zsb.run([PYTHON, "-c", code])
        b = Sandbox(KILL_GETPPID).run([PYTHON, "-c", code])
        assert a.spawn_path == "zygote"
        assert _outcome(a) == _outcome(b)
        assert a.verdict == "SECCOMP_KILLED" and a.stdout == b"before\n"


def test_stdin_env_cwd_umask_and_limits_reach_the_job(zy, tmp_path):
    code = ("import os, resource, sys; print(sys.stdin.read().upper(), os.getcwd(), "
            "os.environ['X'], oct(os.umask(0)), resource.getrlimit(resource.RLIMIT_NOFILE), "
            "resource.getrlimit(resource.RLIMIT_CORE))")
    r = zy.run([PYTHON, "-c", code], stdin=b"abc", env={"X": "y"}, cwd=str(tmp_path),
               open_files=50)
    assert r.verdict == "OK", r
    assert r.stdout.decode().split() == ["ABC", str(tmp_path), "y", "0o22", "(50,", "50)",
                                         "(0,", "0)"]


def test_cwd_defaults_to_the_callers_current_directory(zy, tmp_path, monkeypatch):
    zy.run(["true"])                         # the zygote starts in the old directory
    monkeypatch.chdir(tmp_path)
    assert zy.run(["pwd"]).stdout == (str(tmp_path) + "\n").encode()


def test_memory_and_pid_limits(zy):
    r = zy.run([PYTHON, "-c", "x = bytearray(1 << 30)"], memory="64M", timeout=30)
    assert r.verdict == "MEMORY_LIMIT", r


# ------------------------------------------------------------------------------------------
# the filter, privileges and isolation

def test_the_filter_is_inherited_not_stacked(zy):
    r = zy.run(["cat", "/proc/self/status"])
    st = S.status_fields(r.stdout.decode())
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
    assert int(st["Seccomp_filters"]) == 1
    assert int(st["SigBlk"], 16) == 0 and int(st["SigIgn"], 16) == 0


def test_a_denied_call_is_denied_in_a_zygote_job():
    doc = _without(_docker_doc(), "getppid")
    doc["syscalls"].append({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
    code = ("import ctypes; c = ctypes.CDLL(None, use_errno=True); "
            "print(c.syscall(110), ctypes.get_errno())")
    with Sandbox(doc, zygote=True) as sb:
        r = sb.run([PYTHON, "-c", code])
    assert r.spawn_path == "zygote"
    assert r.stdout.split() == [b"-1", b"1"]


@S.needs_root
def test_root_job_has_exactly_dockers_capabilities(zy):
    st = S.status_fields(zy.run(["cat", "/proc/self/status"]).stdout.decode())
    for key in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[key], 16) == S.DOCKER_DEFAULT_CAP_MASK, key
    assert int(st["CapAmb"], 16) == 0


@S.needs_root
def test_user_jobs_have_no_capabilities():
    with Sandbox(S.docker_default(), user="nobody", zygote=True) as sb:
        r = sb.run(["cat", "/proc/self/status"])
    assert r.spawn_path == "zygote", r
    st = S.status_fields(r.stdout.decode())
    assert st["Uid"].split() == ["65534"] * 4
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[key], 16) == 0, key


@S.needs_root
def test_root_jobs_cannot_reach_the_supervisor_or_kill_the_zygote(zy):
    me = os.getpid()
    r = zy.run(["sh", "-c", "kill -9 %d; echo $?; kill -9 1; ls /proc" % me])
    assert r.verdict == "OK", r
    out = r.stdout.decode().split()
    assert out[0] != "0"                        # no such process in its namespace
    assert str(me) not in out[1:]
    assert r.pid_namespace and r.containment == "zygote-subreaper"
    z, = zy._zygotes
    assert zy.run(["true"]).ok and zy._zygotes == [z] and not z.dead  # pid 1 shrugged it off


# ------------------------------------------------------------------------------------------
# threads, a dying zygote, leftovers

def test_many_threads_share_the_zygotes(zy):
    """200 runs from 8 threads through the Sandbox's zygotes (one per CPU at most)."""
    import concurrent.futures
    m = S.marker()
    zy.run(["true"])
    fds_before, zygotes_before = settled_fd_count(), len(zy._zygotes)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: zy.run(["echo", m], timeout=60), range(200)))
    started = len(zy._zygotes) - zygotes_before  # each holds its socket and pidfd
    assert {(r.verdict, r.spawn_path, r.stdout) for r in results} == {
        ("OK", "zygote", (m + "\n").encode())}
    if not zy.pid_namespace:  # (else each zygote's namespace numbers its own jobs)
        assert len({r.pid for r in results}) == 200
    assert len(zy._zygotes) <= (os.cpu_count() or 1)
    assert settled_fd_count() == fds_before + 2 * started
    zy.close()
    _assert_clean([m])


def test_a_zygote_killed_mid_run_fails_that_job_and_is_replaced(zy):
    m, join = _sleeper(zy)
    first, = zy._zygotes
    os.kill(first.pid, signal.SIGKILL)
    r = join()
    assert r.verdict == "SETUP_ERROR" and r.setup_error["stage"] == "zygote", r
    assert r.spawn_path == "zygote"
    assert S.wait_gone(m, timeout=3.0) == []    # the job died with its zygote (PDEATHSIG)
    again = zy.run(["echo", "back"])
    assert (again.verdict, again.stdout, again.spawn_path) == ("OK", b"back\n", "zygote")
    assert first not in zy._zygotes
    zy.close()
    _assert_clean([m])


def test_a_zygote_that_died_idle_is_restarted_transparently(zy):
    zy.run(["true"])
    first, = zy._zygotes
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: S.zombie_children(), 10, "the zygote did not die")
    r = zy.run(["echo", "x"])
    assert (r.verdict, r.stdout, r.spawn_path) == ("OK", b"x\n", "zygote")
    assert first not in zy._zygotes
    zy.close()
    _assert_clean([])


def test_close_kills_running_jobs_and_leaves_nothing(zy):
    m, join = _sleeper(zy)
    zy.close()
    r = join()
    assert r.verdict in ("SIGNALED", "SETUP_ERROR"), r
    _assert_clean([m])


def test_a_background_child_does_not_outlive_its_job(zy):
    m = S.sleep_marker()
    r = zy.run(["sh", "-c", "sleep %s & exit 0" % m])
    assert r.verdict == "OK"
    assert S.wait_gone(m, timeout=3.0) == []    # the zygote killed the job's group
    zy.close()
    _assert_clean([m])


def test_a_job_with_a_cgroup_of_its_own_says_the_cgroup_contained_it():
    """A memory limit gives a zygote's job a cgroup: the supervisor watches that cgroup empty
    (cgroup.events) and the Result says so."""
    from sandbox import cgroups
    caps = cgroups.capabilities()
    if os.geteuid() != 0 or not (caps.get("kill") and caps.get("memory")):
        pytest.skip("needs root and cgroup v2 kill and memory: %s" % caps)
    with Sandbox(S.docker_default(), zygote=True) as sb:
        r = sb.run(["sh", "-c", "sleep 30 & exit 0"], memory="64M", timeout=30)
    assert (r.verdict, r.spawn_path, r.containment) == ("OK", "zygote", "cgroup"), r


@pytest.mark.parametrize("pid_namespace", [True, False])
def test_a_daemon_does_not_outlive_its_job_without_a_cgroup(pid_namespace):
    """setsid + double fork leave the job's group and session; without a cgroup of the job's
    own the zygote still kills them (its command was their subreaper; once it ended they came
    to the zygote), before the job's end is reported."""
    if pid_namespace and os.geteuid() != 0:
        pytest.skip("a PID namespace for the zygote needs root here")
    m1, m2 = S.sleep_marker(), S.sleep_marker()
    with Sandbox(S.docker_default(), zygote=True, use_cgroup=False,
                 pid_namespace=pid_namespace) as sb:
        r = sb.run(["sh", "-c", "setsid sh -c 'sleep %s & sleep %s' & sleep 0.3; exit 0"
                    % (m1, m2)], timeout=30)
        assert r.verdict == "OK" and r.spawn_path == "zygote", r
        assert r.containment == "zygote-subreaper", r
        # gone by the time the Result exists (no waiting: the zygote reaped them first)
        assert S.procs_with(m1) == [] and S.procs_with(m2) == []
        # ... and the same when the job is killed at its time limit
        r = sb.run(["sh", "-c", "setsid sh -c 'sleep %s' & sleep %s" % (m1, m2)], timeout=0.5)
        assert r.verdict == "TIME_LIMIT", r
        assert S.procs_with(m1) == [] and S.procs_with(m2) == []
    _assert_clean([m1, m2])


@S.needs_root
def test_leftovers_of_a_job_run_as_another_user_are_killed():
    """The zygote (root with a few capabilities) kills what a --user job leaves behind, so it
    keeps CAP_KILL. Without it the sweep after the job waited for a process it could not kill,
    and the run (a whole batch, slot by slot) hung."""
    m1, m2 = S.sleep_marker(), S.sleep_marker()
    sb = Sandbox(S.docker_default(), user="nobody", zygote=True, timeout=10)
    box = {}

    def runs():
        box["bg"] = sb.run(["sh", "-c", "sleep %s & echo ok" % m1])
        box["setsid"] = sb.run(["sh", "-c", "setsid sleep %s & echo ok" % m2])
    t = threading.Thread(target=runs, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "the run hung"   # (and the Sandbox is left as it is)
    # gone with the job, not only once the zygote's PID namespace goes
    left = S.procs_with(m1) + S.procs_with(m2)
    sb.close()
    for r in box.values():
        assert (r.verdict, r.spawn_path, r.stdout) == ("OK", "zygote", b"ok\n"), r
    assert left == []
    _assert_clean([m1, m2])


def test_a_running_jobs_own_orphans_survive_other_jobs_ending(zy, tmp_path):
    """An orphan of a job still running belongs to that job (its command is the subreaper),
    so another job's end does not take it."""
    pidfile = tmp_path / "orphan.pid"
    script = ('sh -c "sleep 30 & echo \\$! > %s"; sleep 1.5; '
              'kill -0 "$(cat %s)" && echo alive; kill "$(cat %s)"' % ((pidfile,) * 3))
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", zy.run(["sh", "-c", script],
                                                                    timeout=30)))
    t.start()
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "no orphan yet")
    for _ in range(5):
        assert zy.run(["true"]).ok      # each end sweeps the zygote's leftovers
    t.join(30)
    assert box["r"].stdout == b"alive\n", box["r"]


def test_a_forked_child_does_not_inherit_the_zygote(zy):
    zy.run(["true"])
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not zygote._live and zy._zygotes[0].dead else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert zy.run(["true"]).spawn_path == "zygote"


# ------------------------------------------------------------------------------------------
# batches

def test_a_batch_uses_the_zygote_and_stops_it(tmp_path):
    entries = [{"name": "j%d" % i, "cmd": ["echo", str(i)], "expect_stdout": "%d\n" % i}
               for i in range(20)]
    results = _batch(tmp_path, entries, jobs_parallel=4)
    assert all(jr.passed for jr in results)
    assert {jr.result.spawn_path for jr in results} == {"zygote"}
    assert S.no_waitable_child() and not zygote._live
    results = _batch(tmp_path, entries, jobs_parallel=4, zygote=False)
    assert {jr.result.spawn_path for jr in results} == {"direct"}


# ------------------------------------------------------------------------------------------
# pids, cancelling, the zygote's own protection

@pytest.mark.parametrize("pid_namespace", [True, False])
def test_result_pid_is_what_the_job_calls_itself(pid_namespace):
    if pid_namespace and os.geteuid() != 0:
        pytest.skip("a PID namespace needs root")
    with Sandbox(S.docker_default(), zygote=True, pid_namespace=pid_namespace) as sb:
        r = sb.run(["sh", "-c", "echo $$"])
    assert r.spawn_path == "zygote" and r.pid_namespace == pid_namespace
    assert r.pid == int(r.stdout)


def test_cancel_all_kills_a_zygote_job(zy):
    from sandbox.runner import cancel_all
    _m, join = _sleeper(zy)
    wait_for(cancel_all, 30, "the run was never registered")  # (it may exec first)
    r = join()
    assert (r.verdict, r.signal, r.cancelled, r.spawn_path) == (
        "SIGNALED", signal.SIGKILL, True, "zygote"), r
    later = zy.run(["true"])
    assert later.ok                              # the zygote itself is fine
    # a bool on every path, as the Result declares it (JSON true/false, not 1/0)
    assert r.cancelled is True and later.cancelled is False
    assert later.to_json()["cancelled"] is False


def test_cancel_all_kills_a_direct_run_too_and_the_table_empties():
    from sandbox import _core
    from sandbox.runner import cancel_all
    with Sandbox(S.docker_default(), zygote=False) as sb:
        _m, join = _sleeper(sb)
        wait_for(cancel_all, 30, "the run was never registered")
        r = join()
        assert (r.verdict, r.signal, r.cancelled) == ("SIGNALED", signal.SIGKILL, True), r
        assert r.spawn_path != "zygote"
        assert not sb.run(["true"]).cancelled        # a later run is not marked
    assert _core.running_count() == 0


def test_a_forked_child_forgets_the_runs_of_its_parent(zy):
    from sandbox import _core
    _m, join = _sleeper(zy)
    wait_for(_core.running_count, 30, "the run was never registered")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the parent's runs are not ours to cancel
        os.write(w, b"%d %d" % (_core.running_count(), _core.cancel_running()))
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    assert os.read(r, 64) == b"0 0"
    os.close(r)
    from sandbox.runner import cancel_all
    assert cancel_all() == 1
    assert join().cancelled


def test_the_zygote_is_not_dumpable(zy):
    zy.run(["true"])
    st = S.status_fields(open("/proc/%d/status" % zy._zygotes[0].pid).read())
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"
    # not dumpable: its /proc files belong to root, and a job of its uid cannot ptrace it
    r = zy.run(["sh", "-c", "cat /proc/1/environ; echo $?"])
    if r.pid_namespace:
        assert r.stdout.split()[-1] != b"0"


def test_a_request_too_big_for_one_message_runs_directly(zy):
    big = "x" * (60 * 1024)                    # 3 x 60 KiB: more than one message takes
    r = zy.run(["sh", "-c", 'echo $#', big, big, big])
    assert (r.verdict, r.stdout, r.spawn_path) == ("OK", b"2\n", "direct")
    assert r.pid_namespace == zy.pid_namespace    # a direct run gets what direct runs get
    assert zy.run(["true"]).spawn_path == "zygote"


@pytest.mark.parametrize("zygote_on", [True, False])
def test_batch_commands_start_in_the_jobs_order_one_at_a_time(tmp_path, zygote_on):
    """-j 1: one command at a time, in the jobs' order; a job that never starts a command (not
    found) does not hold up the others."""
    order = tmp_path / "order"
    entries = [{"name": "j%d" % i, "cmd": ["sh", "-c", "echo %d >> %s" % (i, order)]}
               for i in range(12)]
    entries.insert(5, {"name": "missing", "cmd": ["no-such-command-here"]})
    results = _batch(tmp_path, entries, jobs_parallel=1, zygote=zygote_on)
    assert [jr.result.verdict for jr in results].count("SETUP_ERROR") == 1
    assert order.read_text().split() == [str(i) for i in range(12)]


def test_batch_runs_at_most_jobs_parallel_commands_at_once(tmp_path):
    """Each job counts the jobs running beside it (mkdir/rmdir of a marker, a little sleep
    to let them overlap): never more than -j."""
    d = tmp_path / "running"
    d.mkdir()
    script = 'mkdir "$0/$1"; ls "$0" | wc -l >> "$0.counts"; sleep 0.05; rmdir "$0/$1"'
    entries = [{"name": "j%d" % i, "cmd": ["sh", "-c", script, str(d), str(i)]}
               for i in range(16)]
    results = _batch(tmp_path, entries, jobs_parallel=2)
    assert all(jr.passed for jr in results)
    counts = [int(c) for c in (tmp_path / "running.counts").read_text().split()]
    assert len(counts) == 16 and max(counts) <= 2

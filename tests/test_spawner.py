"""The pre-filtered spawner thread (sandbox/spawner.py, csrc/spawner.c): runs started from it
inherit the filter that thread installed on itself, get the same answers as runs that install
it, and the rest of this process stays unfiltered; profiles that could harm a thread of ours
are refused; it survives forks and concurrent callers, and close() ends the thread."""
import json
import os
import pathlib
import sys
import threading

import pytest

pytest.importorskip("sandbox._core")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "probes" / "runner"))
import runner_support as S  # noqa: E402

from sandbox import spawner  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402

STATUS = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"
# keyctl(KEYCTL_GET_KEYRING_ID, ...) on x86_64: Docker's default answers EPERM
KEYCTL = ("import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
          "r = libc.syscall(250, 0, -1, 0, 0, 0); print(r, os.strerror(ctypes.get_errno()))")


def _status(path: str) -> dict:
    with open(path) as f:
        return dict(line.split(":\t") for line in f.read().splitlines() if ":\t" in line)


def _threads() -> set:
    return set(os.listdir("/proc/self/task"))


@pytest.fixture
def sb():
    s = Sandbox(S.docker_default(), pid_namespace=False, use_cgroup=False)
    yield s
    s.close()


def _docker_doc() -> dict:
    with open(S.docker_default()) as f:
        return json.load(f)


def test_runs_inherit_the_threads_filter_and_nothing_else_is_filtered(sb):
    assert sb.spawner_refusal is None
    r = sb.run(["sh", "-c", STATUS])
    assert r.verdict == "OK" and r.spawn_path == "spawner-thread", r
    assert r.stdout.decode().split() == ["NoNewPrivs:", "1", "Seccomp:", "2"]
    tid = sb._spawner.get().tid
    assert _status("/proc/self/task/%d/status" % tid)["Seccomp"].strip() == "2"
    assert _status("/proc/self/task/%d/status" % tid)["NoNewPrivs"].strip() == "1"
    me = _status("/proc/self/status")          # the main thread
    assert me["Seccomp"].strip() == "0" and me["NoNewPrivs"].strip() == "0"


@S.needs_root
def test_the_thread_drops_the_runs_bounding_set_once_and_only_on_itself(sb):
    r = sb.run(["grep", "CapBnd", "/proc/self/status"])
    assert r.spawn_path == "spawner-thread", r
    want = "%016x" % sb.caps_mask
    assert r.stdout.decode().split() == ["CapBnd:", want]
    tid = sb._spawner.get().tid
    assert _status("/proc/self/task/%d/status" % tid)["CapBnd"].strip() == want
    mine = int(_status("/proc/self/status")["CapBnd"], 16)   # the main thread: untouched
    assert mine & ~sb.caps_mask


def test_same_answers_as_a_run_that_installs_the_filter(sb):
    direct = Sandbox(S.docker_default(), pid_namespace=False, use_cgroup=False, spawner=False)
    assert direct.spawner_refusal == "turned off (spawner=False)"
    for argv in (["python3", "-c", KEYCTL], ["sh", "-c", "echo a b | tr a-z A-Z; exit 3"],
                 ["sh", "-c", STATUS]):
        a, b = sb.run(argv), direct.run(argv)
        assert (a.spawn_path, b.spawn_path) == ("spawner-thread", "direct")
        assert (a.verdict, a.exit_code, a.stdout, a.stderr) == \
            (b.verdict, b.exit_code, b.stdout, b.stderr), (a, b)
    assert sb.run(["python3", "-c", KEYCTL]).stdout == b"-1 Operation not permitted\n"


def test_set_up_failures_are_reported_by_stage(sb, tmp_path):
    r = sb.run(["true"], cwd=str(tmp_path / "missing"))
    assert r.verdict == "SETUP_ERROR" and r.setup_error["stage"] == "chdir", r
    assert r.spawn_path == "spawner-thread"      # the start that was tried
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    r = sb.run([str(script)])
    assert r.verdict == "SETUP_ERROR" and r.setup_error["stage"] == "execve", r
    assert r.setup_error["errno_name"] == "EACCES"
    r = sb.run(["sh", "-c", "ulimit -f; ulimit -n"], file_size="1M", open_files=17)
    assert r.stdout == b"2048\n17\n" and r.spawn_path == "spawner-thread", r


def test_profiles_that_could_harm_a_thread_of_ours_are_refused():
    doc = _docker_doc()
    doc["syscalls"].append({"names": ["keyctl"], "action": "SCMP_ACT_KILL_PROCESS"})
    s = Sandbox(doc, pid_namespace=False, use_cgroup=False)
    assert "KILL_PROCESS" in s.spawner_refusal
    r = s.run(["true"])
    assert r.verdict == "OK" and r.spawn_path == "direct"
    doc = _docker_doc()
    for rule in doc["syscalls"]:
        rule["names"] = [n for n in rule["names"] if n != "futex"]
    s = Sandbox(doc, pid_namespace=False, use_cgroup=False)
    assert "futex" in s.spawner_refusal
    assert s.run(["true"]).spawn_path == "direct"


def test_runs_that_need_a_start_of_their_own_install_the_filter():
    assert "PID namespace" in Sandbox(S.docker_default(), pid_namespace=True,
                                      use_cgroup=False).spawner_refusal
    s = Sandbox(S.docker_default(), pid_namespace=False, use_cgroup=False,
                report_denials=True)
    assert "notification" in s.spawner_refusal
    assert s.run(["true"]).spawn_path == "direct"
    assert Sandbox(None).spawner_refusal == "no filter to install"


def test_concurrent_callers_each_get_their_own_run(sb):
    results = {}

    def worker(k):
        results[k] = [sb.run(["sh", "-c", "echo %d-%d" % (k, i)]) for i in range(15)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, rs in results.items():
        assert [r.stdout for r in rs] == [b"%d-%d\n" % (k, i) for i in range(15)]
        assert all(r.spawn_path == "spawner-thread" for r in rs)


def test_a_forked_child_starts_a_thread_of_its_own(sb):
    assert sb.run(["true"]).spawn_path == "spawner-thread"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            res = sb.run(["sh", "-c", "echo child"])
            os.write(w, json.dumps([res.verdict, res.spawn_path, res.stdout.decode(),
                                    sb._spawner.get().tid != 0]).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        got = json.loads(f.read() or "null")
    os.waitpid(pid, 0)
    assert got == ["OK", "spawner-thread", "child\n", True]
    assert sb.run(["true"]).spawn_path == "spawner-thread"   # ours still serves


def test_close_ends_the_thread():
    before = _threads()
    s = Sandbox(S.docker_default(), pid_namespace=False, use_cgroup=False)
    assert s.run(["true"]).spawn_path == "spawner-thread"
    assert len(_threads() - before) == 1
    s.close()
    assert _threads() - before == set()
    assert s.run(["true"]).spawn_path == "spawner-thread"   # started again on use
    s.close()


def test_needed_calls_cover_the_zygote_set_up():
    # the job set-up list is shared with the zygote's: both inherit the filter the same way
    from sandbox import zygote
    for arch in ("x86_64", "aarch64"):
        setup = zygote.job_setup_calls(arch, ids=True, caps=True)
        assert set(setup) <= set(spawner.needed_syscalls(arch, True, True, False))
        assert set(setup) <= set(zygote.needed_syscalls(arch, True, True))


def test_close_while_other_threads_run_is_safe(sb):
    """close() stops the thread only once the spawns in progress have returned; runs that
    find it stopping start directly or from a new thread."""
    results, stop = [], threading.Event()

    def worker():
        while not stop.is_set():
            results.append(sb.run(["true"]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(30):
            sb.close()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert results and all(r.verdict == "OK" for r in results), \
        [r for r in results if r.verdict != "OK"][:1]
    assert {r.spawn_path for r in results} <= {"spawner-thread", "direct"}

"""A batch's slots (sandbox/runslots.py) taken by the zygotes themselves: the bound holds with
twice as many threads as slots, jobs are taken in order, a run that waited for a slot is
timed from its start, a stop drops what still waits, and a zygote that dies
holding a slot does not take it with it."""
import json
import os
import pathlib
import signal
import sys
import threading
import time

import pytest

pytest.importorskip("sandbox._core")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "probes" / "runner"))
import runner_support as S  # noqa: E402

from sandbox import _core, batch, runslots  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402


def _jobs(tmp_path, cmds):
    text = "\n".join(json.dumps({"name": "j%02d" % i, "cmd": c}) for i, c in enumerate(cmds))
    jobs, problems = batch.parse_jobs(text, name="jobs.jsonl", base_dir=str(tmp_path))
    assert not problems
    return jobs


def _log_cmd(log, i, seconds):
    # start and end stamps (ns) of job i, appended atomically (one short write each)
    return ["sh", "-c", 'echo "%d start $(date +%%s%%N)" >> %s; sleep %s; '
            'echo "%d end $(date +%%s%%N)" >> %s' % (i, log, seconds, i, log)]


def _intervals(log):
    start, end = {}, {}
    for line in pathlib.Path(log).read_text().splitlines():
        i, what, t = line.split()
        (start if what == "start" else end)[int(i)] = int(t)
    return start, end


def _without_epoll(tmp_path):
    """Docker's default profile, minus epoll: its zygotes wait for slots with poll()."""
    profile = json.loads(pathlib.Path(S.docker_default()).read_text())
    for rule in profile["syscalls"]:
        rule["names"] = [n for n in rule["names"] if not n.startswith("epoll_")]
    path = tmp_path / "no-epoll.json"
    path.write_text(json.dumps(profile))
    return str(path)


@pytest.mark.parametrize("epoll", [True, False], ids=["epoll", "poll"])
def test_a_batch_never_runs_more_than_n_and_takes_jobs_in_order(tmp_path, epoll):
    log = tmp_path / "log"
    n, count = 2, 12
    profile = S.docker_default() if epoll else _without_epoll(tmp_path)
    assert Sandbox(profile, zygote=True)._zygote_epoll is epoll
    jobs = _jobs(tmp_path, [_log_cmd(log, i, "0.05" if i % 3 else "0.2")
                            for i in range(count)])
    results = batch.run_batch(jobs, jobs_parallel=n, default_profile=profile)
    assert [r.result.verdict for r in results] == ["OK"] * count, results
    assert {r.result.spawn_path for r in results} == {"zygote"}
    start, end = _intervals(log)
    # at every start, fewer than n others are running
    for i, t in start.items():
        running = [j for j in start if j != i and start[j] <= t < end[j]]
        assert len(running) < n, (i, running)
    # jobs are taken in order by 2n threads: job i is taken only once i - 2n + 1 jobs have
    # ended (within that window a freed slot goes to whichever waiting job takes it first)
    for i in range(2 * n, count):
        assert len([j for j in end if end[j] <= start[i]]) >= i - 2 * n + 1, i


def test_a_run_that_waited_for_a_slot_is_timed_from_its_start(tmp_path):
    slots = runslots.RunSlots(1)
    sb = Sandbox(S.docker_default(), zygote=True)
    out = {}

    def first():
        runslots.set_current(slots)
        out["first"] = sb.run(["sleep", "1"])

    t = threading.Thread(target=first)
    t.start()
    time.sleep(0.3)                          # the first holds the only slot
    runslots.set_current(slots)
    try:
        waited = sb.run(["true"], timeout=0.5)
    finally:
        runslots.set_current(None)
    t.join()
    sb.close()
    assert out["first"].verdict == "OK"
    assert waited.verdict == "OK", waited    # not charged the time it waited
    assert waited.wall_time < 0.5
    assert waited.spawn_path == "zygote"


def test_a_stop_drops_the_runs_still_waiting_and_starts_nothing(tmp_path):
    slots = runslots.RunSlots(1)
    sb = Sandbox(S.docker_default(), zygote=True)
    mark = S.sleep_marker()
    out = {}

    def holder():
        runslots.set_current(slots)
        out["holder"] = sb.run(["sleep", "1"])

    def waiter():
        runslots.set_current(slots)
        out["waiter"] = sb.run(["sleep", mark])

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    time.sleep(0.3)
    threads.append(threading.Thread(target=waiter))
    threads[1].start()
    time.sleep(0.3)                           # its request waits in its zygote
    slots.stop()
    for t in threads:
        t.join(10)
    sb.close()
    r = out["waiter"]
    assert r.verdict == "SETUP_ERROR" and r.setup_error["stage"] == "slot", r
    assert r.setup_error["errno_name"] == "ECANCELED"
    assert "stopped" in r.setup_error["message"]
    assert out["holder"].verdict == "OK"     # what ran goes on
    assert S.procs_with(mark) == []


def test_a_zygote_that_served_one_batch_watches_the_next_ones_pipes():
    # the zygote keeps the first copies of a batch's pipes (by id): a later batch's must
    # replace them, or its stop would go unseen and its waiting run never end
    sb = Sandbox(S.docker_default(), zygote=True)
    first, second = runslots.RunSlots(1), runslots.RunSlots(1)
    second.acquire()                          # its only slot is taken: its run will wait
    out = {}
    first_done = threading.Event()

    def worker():                             # one thread: one zygote serves both batches
        runslots.set_current(first)
        out["first"] = sb.run(["true"])
        first_done.set()                      # (first stays open, a free slot in it)
        runslots.set_current(second)
        out["second"] = sb.run(["true"])

    t = threading.Thread(target=worker)
    t.start()
    assert first_done.wait(10)
    time.sleep(0.3)                           # the second request waits in the zygote
    second.stop()
    t.join(10)
    alive = t.is_alive()
    sb.close()
    first.close()
    second.close()
    assert not alive, "the second batch's stop went unseen"
    assert out["first"].verdict == "OK" and out["first"].spawn_path == "zygote", out["first"]
    r = out["second"]
    assert r.verdict == "SETUP_ERROR" and r.setup_error["stage"] == "slot", r


def test_a_zygote_that_dies_holding_a_slot_gives_it_back(tmp_path):
    slots = runslots.RunSlots(1)
    sb = Sandbox(S.docker_default(), zygote=True)
    runslots.set_current(slots)
    try:
        def kill_once_the_job_runs():
            # once the zygote has answered and the run watches its job (it is in the running
            # table): not after a fixed delay, by which a loaded machine may not even have the
            # zygote up
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                zy = sb._thread_zygotes.get(threading.main_thread())
                if zy is not None and _core.running_count():
                    os.kill(zy.pid, signal.SIGKILL)
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_once_the_job_runs)
        killer.start()
        lost = sb.run(["sleep", "30"], timeout=20)
        killer.join()
        assert lost.verdict == "SETUP_ERROR" and lost.setup_error["stage"] == "zygote", lost
        after = sb.run(["echo", "next"], timeout=20)   # the slot came back: it runs
        assert after.verdict == "OK" and after.stdout == b"next\n", after
    finally:
        runslots.set_current(None)
        sb.close()


def test_runs_without_a_zygote_take_the_slot_themselves(tmp_path):
    log = tmp_path / "log"
    jobs = _jobs(tmp_path, [_log_cmd(log, i, "0.1") for i in range(6)])
    results = batch.run_batch(jobs, jobs_parallel=2, default_profile=S.docker_default(),
                              zygote=False)
    assert [r.result.verdict for r in results] == ["OK"] * 6
    assert "zygote" not in {r.result.spawn_path for r in results}
    start, end = _intervals(log)
    for i, t in start.items():
        assert len([j for j in start if j != i and start[j] <= t < end[j]]) < 2


def test_a_threads_zygote_goes_with_the_thread():
    import gc
    slots = runslots.RunSlots(1)
    sb = Sandbox(S.docker_default(), zygote=True)
    pids = []

    def worker():
        runslots.set_current(slots)
        assert sb.run(["true"]).spawn_path == "zygote"
        pids.append(sb._thread_zygotes[threading.current_thread()].pid)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    del t
    gc.collect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and os.path.exists("/proc/%d" % pids[0]):
        time.sleep(0.02)
    assert not os.path.exists("/proc/%d" % pids[0])    # exited and reaped
    assert len(sb._thread_zygotes) == 0
    sb.close()


def _tokens(slots) -> int:
    """How many slots are free now (read them all, put them back)."""
    try:
        got = os.read(slots.read_fd, 64)
    except BlockingIOError:
        return 0
    os.write(slots.write_fd, got)
    return len(got)


def test_a_zygote_that_dies_while_its_request_waits_takes_no_slot():
    slots = runslots.RunSlots(1)
    sb = Sandbox(S.docker_default(), zygote=True)
    out = {}

    def holder():
        runslots.set_current(slots)
        out["holder"] = sb.run(["sleep", "1"])

    def waiter():
        runslots.set_current(slots)
        out["waiter"] = sb.run(["true"])

    h = threading.Thread(target=holder)
    h.start()
    time.sleep(0.3)
    w = threading.Thread(target=waiter)
    w.start()
    deadline = time.monotonic() + 10
    while w not in sb._thread_zygotes and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)                                   # its request waits for the slot
    os.kill(sb._thread_zygotes[w].pid, signal.SIGKILL)
    w.join(10)
    h.join(10)
    assert out["waiter"].verdict == "SETUP_ERROR", out["waiter"]
    assert out["waiter"].setup_error["stage"] == "zygote"
    assert out["holder"].verdict == "OK"
    assert _tokens(slots) == 1                        # nothing lost, nothing made up
    sb.close()


def test_a_request_too_big_for_the_zygote_takes_its_slot_itself():
    slots = runslots.RunSlots(1)
    sb = Sandbox(S.docker_default(), zygote=True)
    runslots.set_current(slots)
    try:
        big = ["x" * 1000] * 200                      # 200 KB of arguments: over one message
        r = sb.run(["sh", "-c", "echo $#", "sh"] + big)
        assert r.verdict == "OK" and r.stdout == b"200\n", r
        assert r.spawn_path != "zygote"
        assert _tokens(slots) == 1
        assert sb.run(["true"]).spawn_path == "zygote"
        assert _tokens(slots) == 1
    finally:
        runslots.set_current(None)
        sb.close()

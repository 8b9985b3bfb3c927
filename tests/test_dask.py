"""Batches on Dask distributed: a LocalCluster of two worker processes runs a small mixed batch
and gives the same results as a local run, each saying which worker ran it; the CLI's
`--executor dask` with and without `--scheduler`; clear errors when Dask is missing.
"""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from sandbox import batch
from sandbox.batch import Job, run_batch
from reliability_mix import children
from waiting import wait_for

distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed "
                                                        "(pip install 'seccomp-sandbox[dask]')")

try:
    import sandbox._core  # noqa: F401
    HAVE_CORE = True
except ImportError:
    HAVE_CORE = False
pytestmark = pytest.mark.skipif(not HAVE_CORE, reason="the C core (sandbox._core) is not built")

KILL_UNAME = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]}


@pytest.fixture(scope="module")
def client():
    """One cluster for the module: two worker processes of one thread each (start-up costs
    seconds). The workers inherit PYTHONPATH, so they import this tree's sandbox."""
    from sandbox.executors import local_cluster
    with local_cluster(2) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def kill_uname(tmp_path):
    path = tmp_path / "kill-uname.json"
    path.write_text(json.dumps(KILL_UNAME))
    return str(path)


def mixed_jobs(profile_path):
    return [
        Job(name="ok", cmd=("sh", "-c", "echo hello; echo to-stderr >&2"), index=0,
            expect_stdout="hello\n"),
        Job(name="fails", cmd=("sh", "-c", "echo partial; exit 3"), index=1),
        Job(name="timeout", cmd=("sleep", "30"), index=2, wall_limit=0.5),
        Job(name="seccomp", cmd=("uname",), index=3, profile=profile_path),
        Job(name="same-as-ok", cmd=("sh", "-c", "echo hello; echo to-stderr >&2"), index=4,
            expect_stdout="hello\n"),  # an identical job runs again: Dask caches nothing
    ]


def outcome(jr):
    r = jr.result
    return (jr.name, jr.passed, r.verdict, r.exit_code, r.signal, r.stdout, r.stderr,
            r.profile, r.profile_digest)


def worker_pids(client):
    return set(client.run(os.getpid).values())


def test_dask_results_match_local_ones(client, kill_uname):
    jobs = mixed_jobs(kill_uname)
    local = run_batch(jobs, jobs_parallel=2)
    remote = run_batch(jobs, jobs_parallel=2, executor=client.get_executor(pure=False))
    assert [outcome(jr) for jr in remote] == [outcome(jr) for jr in local]
    assert [jr.result.verdict for jr in remote] == [
        "OK", "NONZERO_EXIT", "TIME_LIMIT", "SECCOMP_KILLED", "OK"]
    assert [jr.failures for jr in remote][:2] == [[], ["exit status 3, expected 0"]]
    # where each job ran: a worker process, not this one
    host = socket.gethostname() or "localhost"   # (as batch names a host without a name)
    assert {jr.worker for jr in local} == {"%s:%d" % (host, os.getpid())}
    pids = worker_pids(client)
    assert os.getpid() not in pids
    assert {int(jr.worker.split(":")[1]) for jr in remote} <= pids
    assert all(jr.worker.startswith(host + ":") for jr in remote)
    assert json.loads(json.dumps(remote[0].to_json()))["worker"] == remote[0].worker


def test_batch_executor_gives_the_client_executor(client):
    from sandbox.executors import batch_executor
    with batch_executor("dask", None, client.scheduler.address) as where:
        assert where.parallel == 2 and where.where.startswith("dask tcp://")
        jobs = [Job(name="j%d" % i, cmd=("echo", str(i)), index=i, expect_stdout="%d\n" % i)
                for i in range(6)]
        results = run_batch(jobs, jobs_parallel=where.parallel, executor=where.executor,
                            kill_on_interrupt=where.kill_on_interrupt)
        assert [(jr.name, jr.passed) for jr in results] == [("j%d" % i, True) for i in range(6)]
        assert where.kill_on_interrupt() is None   # cancel_all on each worker: nothing running


def write_jobs(tmp_path, profile_path):
    path = tmp_path / "jobs.toml"
    path.write_text(textwrap.dedent("""
        [[job]]
        name = "ok"
        cmd = ["sh", "-c", "echo hello"]
        expect_stdout = "hello\\n"

        [[job]]
        name = "seccomp"
        cmd = ["uname"]
        profile = "%s"
    """ % profile_path))
    return path


def read_results(path):
    return {r["job"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_cli_with_a_scheduler(client, kill_uname, tmp_path, capsys):
    jobs = write_jobs(tmp_path, kill_uname)
    out = tmp_path / "results.jsonl"
    status = batch.main([str(jobs), "--executor", "dask", "--scheduler",
                         client.scheduler.address, "--results", str(out), "-q"])
    assert status == batch.EXIT_FAILED   # the seccomp job fails
    results = read_results(out)
    assert {k: (r["verdict"], r["passed"]) for k, r in results.items()} == {
        "ok": ("OK", True), "seccomp": ("SECCOMP_KILLED", False)}
    pids = worker_pids(client)
    assert all(int(r["worker"].split(":")[1]) in pids for r in results.values())


def test_cli_starts_a_local_cluster_without_a_scheduler(kill_uname, tmp_path):
    jobs = write_jobs(tmp_path, kill_uname)
    out = tmp_path / "results.jsonl"
    junit = tmp_path / "report.xml"
    before = children()
    status = batch.main([str(jobs), "--executor", "dask", "-j", "1", "--results", str(out),
                         "--junit", str(junit), "-q"])
    assert status == batch.EXIT_FAILED
    results = read_results(out)
    assert results["ok"]["passed"] and results["seccomp"]["verdict"] == "SECCOMP_KILLED"
    assert results["ok"]["worker"] == results["seccomp"]["worker"]  # the one worker
    assert int(results["ok"]["worker"].split(":")[1]) != os.getpid()
    assert '<property name="executor" value="dask local cluster of 1 worker processes" />' \
        in junit.read_text()
    # the cluster was stopped: none of its processes is left (multiprocessing's resource
    # tracker, started with the first spawned process, stays with this process by design)
    wait_for(lambda: {p for p in children() - before if not _resource_tracker(p)} == set(), 10,
             "the local cluster's processes outlived it")


def _resource_tracker(pid: int) -> bool:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"multiprocessing.resource_tracker" in f.read()
    except OSError:
        return True   # gone





def test_cli_errors_without_dask_or_with_a_stray_scheduler(kill_uname, tmp_path, capsys,
                                                          monkeypatch):
    jobs = write_jobs(tmp_path, kill_uname)
    assert batch.main([str(jobs), "--scheduler", "tcp://127.0.0.1:1"]) == batch.EXIT_BAD_FILE
    assert capsys.readouterr().err == "sandbox batch: --scheduler needs --executor dask\n"
    monkeypatch.setitem(sys.modules, "distributed", None)   # as if not installed
    assert batch.main([str(jobs), "--executor", "dask"]) == batch.EXIT_BAD_FILE
    assert capsys.readouterr().err == (
        "sandbox batch: --executor dask needs Dask distributed on this machine and on every "
        "worker: pip install 'seccomp-sandbox[dask]'\n")


def test_interrupt_kills_the_runs_on_the_workers(client):
    from sandbox.executors import batch_executor
    jobs = [Job(name="quick", cmd=("true",), index=0)]
    jobs += [Job(name="sleep%d" % i, cmd=("sleep", "30"), index=i + 1) for i in range(3)]

    def on_result(jr):
        if jr.name == "quick":
            raise KeyboardInterrupt   # as if Ctrl-C arrived while the batch waits

    with batch_executor("dask", None, client.scheduler.address) as where:
        with pytest.raises(batch.BatchInterrupted) as e:
            run_batch(jobs, jobs_parallel=where.parallel, executor=where.executor,
                      kill_on_interrupt=where.kill_on_interrupt, on_result=on_result,
                      grace=0.2)
    killed = [jr for jr in e.value.results if jr.name.startswith("sleep")]
    assert killed and all(jr.interrupted and jr.result.signal == 9 for jr in killed)
    assert len(e.value.results) + len(e.value.not_run) == len(jobs)


def test_cli_ctrl_c_on_a_local_cluster(tmp_path):
    # the terminal's SIGINT reaches the whole process group: the local cluster's workers must
    # leave it to the batch, which gives the grace, then kills the runs on every worker
    mark = "DASK-%d-%s" % (os.getpid(), tmp_path.name)
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(j) + "\n" for j in [
        {"name": "s1", "cmd": ["sh", "-c", "sleep 30 & sleep 30; : s1-" + mark]},
        {"name": "s2", "cmd": ["sh", "-c", "sleep 30; : s2-" + mark]},
        {"name": "never", "cmd": ["true"]}]))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(pathlib.Path(__file__).resolve().parents[1])] + sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.batch", str(jobs), "--executor",
                             "dask", "-j", "2", "--grace", "0.3"], env=env,
                            start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        # both jobs (s1's shell alone shows the mark twice while it forks its background sleep)
        wait_for(lambda: marked("s1-" + mark) and marked("s2-" + mark), 60,
                 "the jobs did not start")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted: 2 killed, 1 not run" in err
    wait_for(lambda: not marked(mark), 10, "runs outlived the batch")


def marked(mark: str) -> list:
    """Live processes whose argv carries mark."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if mark.encode() in f.read():
                    found.append(entry)
        except OSError:
            pass
    return found

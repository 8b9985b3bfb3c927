"""Many descriptors: waits that take descriptors numbered past select()'s 1024, and a batch
that needs more descriptors than the soft RLIMIT_NOFILE allows (it raises it; its commands
keep the limit the process had; the CLI warns when the hard limit is too low)."""
import json
import os
import resource
import subprocess
import sys
import textwrap

import pytest

from sandbox import fdwait

pytest.importorskip("sandbox._core")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "probes", "runner"))
import runner_support as S  # noqa: E402

HIGH = 1500


def _high_fd_room():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= HIGH + 100:
        pytest.skip("the hard RLIMIT_NOFILE (%d) leaves no room past %d" % (hard, HIGH))


def test_readable_takes_descriptors_past_1024():
    _high_fd_room()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, HIGH + 100), hard))
    r, w = os.pipe()
    high = os.dup2(r, HIGH)
    try:
        assert fdwait.readable([high], 0.05) == []          # nothing yet: the timeout
        os.write(w, b"x")
        assert fdwait.readable([high], 5) == [high]
        os.close(w)
        os.read(high, 1)
        assert fdwait.readable([high], 5) == [high]         # the end counts as readable
    finally:
        for fd in (r, high):
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _run_child(script):
    # in a process of its own: the limits it sets are not the test process's
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                         timeout=120, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_a_zygote_batch_works_with_every_descriptor_past_1024():
    _high_fd_room()
    got = _run_child("""
        import json, os, resource
        from sandbox import batch
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, %d), hard))
        held = [os.open("/dev/null", os.O_RDONLY) for _ in range(1100)]  # the low numbers
        text = "\\n".join(json.dumps({"name": "j%%d" %% i, "cmd": ["true"]}) for i in range(8))
        jobs, _ = batch.parse_jobs(text, name="b.jsonl", base_dir="/tmp")
        rs = batch.run_batch(jobs, jobs_parallel=2, default_profile=%r)
        print(json.dumps([(r.result.verdict, r.result.spawn_path) for r in rs]))
    """ % (HIGH + 500, S.docker_default()))
    assert got == [["OK", "zygote"]] * 8


def test_a_big_batch_raises_the_open_files_limit_and_its_commands_keep_ours():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip("the hard RLIMIT_NOFILE (%d) is below what the batch needs" % hard)
    got = _run_child("""
        import json, resource
        from sandbox import batch
        from sandbox.runner import Sandbox
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        # 40 slots hold ~13 descriptors each: past 256
        text = "\\n".join(json.dumps({"name": "j%%d" %% i,
                                      "cmd": ["sh", "-c", "sleep 0.2; ulimit -n"]})
                          for i in range(80))
        jobs, problems = batch.parse_jobs(text, name="b.jsonl", base_dir="/tmp")
        assert not problems, problems
        rs = batch.run_batch(jobs, jobs_parallel=40, default_profile=%r)
        own = Sandbox(%r, open_files=64).run(["sh", "-c", "ulimit -n"])
        print(json.dumps({"verdicts": sorted({r.result.verdict for r in rs}),
                          "limits": sorted({r.result.stdout.decode().strip() for r in rs}),
                          "own": own.stdout.decode().strip(),
                          "ours": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}))
    """ % (S.docker_default(), S.docker_default()))
    assert got["verdicts"] == ["OK"], got
    assert got["limits"] == ["256"]          # the commands keep the limit the process had
    assert got["own"] == "64"                # a run's own open_files still wins
    assert got["ours"] >= 16 * 40 + 256 or got["ours"] == hard


def test_the_cli_warns_when_the_hard_limit_is_too_low_for_its_j(tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps({"name": "j%d" % i, "cmd": ["true"]})
                              for i in range(4)))

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    out = subprocess.run([sys.executable, "-m", "sandbox", "batch", str(jobs), "-j", "100",
                          "--profile", S.docker_default()], capture_output=True, text=True,
                         timeout=120, preexec_fn=low_limit)
    assert "-j 100 needs about 1364 open files, but the hard limit is 512" in out.stderr
    assert "use a smaller -j or raise the limit" in out.stderr
    assert out.returncode == 0, out.stderr        # four jobs fit: they all ran
    ok = subprocess.run([sys.executable, "-m", "sandbox", "batch", str(jobs), "-j", "20",
                         "--profile", S.docker_default()], capture_output=True, text=True,
                        timeout=120, preexec_fn=low_limit)
    assert "warning" not in ok.stderr and ok.returncode == 0, ok.stderr


def test_a_zygote_that_could_not_start_for_want_of_descriptors_is_tried_again():
    got = _run_child("""
        import json, os, resource
        from sandbox.runner import Sandbox
        sb = Sandbox(%r, zygote=True, pid_namespace=False, use_cgroup=False)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        held = []
        try:
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass
        for fd in held[-4:]:     # room for this run's pipes, not for a zygote's start as well
            os.close(fd)
        first = sb.run(["true"])
        refusal = sb.zygote_refusal
        for fd in held[:-4]:
            os.close(fd)
        again = sb.run(["true"])
        print(json.dumps([first.verdict, first.spawn_path, refusal, again.verdict,
                          again.spawn_path]))
    """ % S.docker_default())
    first_verdict, first_path, refusal, again_verdict, again_path = got
    assert refusal is None                       # not given up for good
    assert (again_verdict, again_path) == ("OK", "zygote"), got

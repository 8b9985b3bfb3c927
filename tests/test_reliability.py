"""A mixed batch (successes, failures, timeouts with background children, crashes, output
floods, seccomp kills) yields exactly one result per job with the expected verdicts, and leaves
no process, zombie or descriptor behind; the supervisor's memory stays bounded. The same batch
at 10,000 jobs is bench/bench_reliability.py. Memory and counts only: nothing here is timed.
"""
import collections
import uuid

import pytest

from reliability_mix import (RssSampler, children, expected_counts, fd_count, leftovers,
                             mixed_jobs, write_kill_profile)
from sandbox.batch import run_batch
from waiting import wait_for

try:
    import sandbox._core  # noqa: F401
    HAVE_CORE = True
except ImportError:
    HAVE_CORE = False

N = 300
RSS_GROWTH_LIMIT = 64 << 20   # generous: results are kept, and allocators keep what they got


@pytest.mark.skipif(not HAVE_CORE, reason="the C core (sandbox._core) is not built")
def test_mixed_batch_yields_every_result_and_leaves_nothing(tmp_path):
    mark = "REL-%s" % uuid.uuid4().hex[:12]
    profile = write_kill_profile(tmp_path)
    jobs = mixed_jobs(N, mark, profile)
    run_batch(mixed_jobs(40, mark, profile), jobs_parallel=8)   # warm up caches and pools
    fds = fd_count()
    known = children()   # e.g. multiprocessing's resource tracker, started by another test
    sampler = RssSampler(N)

    results = run_batch(jobs, jobs_parallel=8, on_progress=sampler)
    rss = sampler.finish()

    assert len(results) == N
    assert [r.name for r in results] == [j.name for j in jobs]
    counts = collections.Counter((r.result.verdict, r.passed) for r in results)
    assert dict(counts) == expected_counts(N)
    assert {r.result.verdict for r in results if r.name.startswith("timeout")} == {"TIME_LIMIT"}
    assert all(r.result.signal == 11 for r in results if r.name.startswith("crash"))

    # a direct run's pid is a host pid that leads the run's session; a zygote job's pid is its
    # pid in the zygote's PID namespace (reused there): its leftovers are found by the marker
    direct = [r for r in results if r.result.spawn_path == "direct" and r.result.pid]
    sessions = {r.result.pid for r in direct}
    assert len(sessions) == len(direct)
    # the processes a run started die with it; a moment may pass before the last ones go
    try:
        wait_for(lambda: not any(leftovers(mark, sessions, known).values()), 10, "leftovers")
    except AssertionError:
        pytest.fail("processes left behind: %r" % (leftovers(mark, sessions, known),))
    assert fd_count() == fds
    assert rss["end"] - rss["start"] < RSS_GROWTH_LIMIT, rss

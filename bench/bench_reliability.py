"""Reliability at scale: a 10,000-job batch of successes, failures, timeouts with background
children, crashes, output floods and seccomp kills must yield exactly 10,000 results with the
expected verdicts, leave no process, zombie or descriptor behind, and keep the supervisor's RSS
flat. The same mix at a few hundred jobs is tests/test_reliability.py.

    python bench/bench_reliability.py [--jobs N] [-j PARALLEL]
"""
import argparse
import collections
import os
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))

from common import ROOT, table  # noqa: E402

sys.path.insert(0, str(ROOT))

from reliability_mix import (RssSampler, children, expected_counts, fd_count,  # noqa: E402
                             leftovers, mixed_jobs, write_kill_profile)
from sandbox.batch import run_batch  # noqa: E402

DEFAULT_JOBS = 10000
LEFTOVER_WAIT_S = 10.0


def _mib(n: int) -> str:
    return "%.1f" % (n / 1048576)


def measure(n: int, parallel: int) -> dict:
    mark = "BENCH-REL-%s" % uuid.uuid4().hex[:12]
    with tempfile.TemporaryDirectory() as tmp:
        profile = write_kill_profile(tmp)
        run_batch(mixed_jobs(40, mark, profile), jobs_parallel=parallel)  # warm up
        fds_before = fd_count()
        known = children()
        jobs = mixed_jobs(n, mark, profile)
        sampler = RssSampler(n)
        start = time.perf_counter()
        results = run_batch(jobs, jobs_parallel=parallel, on_progress=sampler)
        wall = time.perf_counter() - start
        rss = sampler.finish()
        sessions = {r.result.pid for r in results if r.result.pid}
        deadline = time.monotonic() + LEFTOVER_WAIT_S
        while True:   # the last trees may take a moment to be gone
            left = leftovers(mark, sessions, known)
            if not any(left.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        fds_after = fd_count()
    counts = collections.Counter((r.result.verdict, r.passed) for r in results)
    return {"jobs": n, "results": len(results), "unique": len({r.name for r in results}),
            "wall": wall, "rss": rss, "left": left, "fds": (fds_before, fds_after),
            "verdicts_as_expected": dict(counts) == expected_counts(n),
            "counts": counts}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help="batch size (default %d)" % DEFAULT_JOBS)
    parser.add_argument("-j", "--parallel", type=int, default=8,
                        help="jobs at once (default 8; most of the mix waits, not computes)")
    args = parser.parse_args(argv)
    m = measure(args.jobs, args.parallel)
    rss = m["rss"]
    left = sum(len(v) for v in m["left"].values())
    print("reliability: mixed batch, -j %d (RSS in MiB)" % args.parallel)
    print(table(
        ["jobs", "results", "wall s", "jobs/s", "RSS start", "25%", "50%", "75%", "end",
         "leftover procs", "fds before/after", "verdicts as expected"],
        [[m["jobs"], m["results"], "%.1f" % m["wall"], "%.0f" % (m["jobs"] / m["wall"]),
          _mib(rss["start"]), _mib(rss["25%"]), _mib(rss["50%"]), _mib(rss["75%"]),
          _mib(rss["end"]), left, "%d/%d" % m["fds"],
          "yes" if m["verdicts_as_expected"] else "NO"]]))
    print("verdicts: " + ", ".join("%s%s %d" % (v, "" if ok else " (failed)", c)
                                   for (v, ok), c in sorted(m["counts"].items())))
    if left:
        print("left behind: %r" % (m["left"],))
    return m


if __name__ == "__main__":
    m = main()
    clean = (m["results"] == m["jobs"] == m["unique"] and m["verdicts_as_expected"]
             and not any(m["left"].values()) and m["fds"][0] == m["fds"][1])
    sys.exit(0 if clean else 1)

"""`make bench`: every benchmark, one after the other; each prints its own table.

The reliability batch runs at --reliability-jobs (default 1,000, about 5 s here) so that
`make bench` stays short; its full size is `python bench/bench_reliability.py` (10,000 jobs).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import bench_batch  # noqa: E402
import bench_batch_floor  # noqa: E402
import bench_filter  # noqa: E402
import bench_landlock  # noqa: E402
import bench_log  # noqa: E402
import bench_reliability  # noqa: E402
import bench_spawn  # noqa: E402
import bench_userns  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="run every benchmark")
    parser.add_argument("--reliability-jobs", type=int, default=1000, metavar="N",
                        help="size of the reliability batch (default 1000; 0 skips it)")
    args = parser.parse_args()
    bench_filter.main()
    print()
    bench_spawn.main()
    print()
    try:
        bench_userns.main()
    except SystemExit as e:   # no unprivileged user namespace, or nobody cannot read us
        print("(user namespace bench skipped: %s)" % e)
    print()
    bench_landlock.main()
    print()
    bench_log.main()
    if args.reliability_jobs:
        print()
        bench_reliability.main(["--jobs", str(args.reliability_jobs)])
    print()
    bench_batch.main([])   # BENCH_BATCH_TRUE / BENCH_BATCH_PYTHON: jobs per workload
    print()
    bench_batch_floor.main([])

"""`make bench`: every benchmark, one after the other; each prints its own table."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import bench_batch  # noqa: E402
import bench_filter  # noqa: E402
import bench_spawn  # noqa: E402

if __name__ == "__main__":
    bench_filter.main()
    print()
    bench_spawn.main()
    print()
    bench_batch.main([])   # BENCH_BATCH_TRUE / BENCH_BATCH_PYTHON: jobs per workload

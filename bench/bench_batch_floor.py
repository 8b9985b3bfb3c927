"""What a supervisor in C could reach with the zygote protocol the batch uses today.

bench/cbatch.c runs a batch the way run_batch does (2 x P threads, a zygote each, the batch's
slot pipe; per job two pipes, the request, the watch) without any Python per job. Alternating
rounds of it, of the batch itself and of `xargs -P P`; jobs/s as ratios to xargs (geometric
mean of the per-round ratios, 95% interval) and the supervisor's CPU per job. The gap between
the C driver and the batch is what Python costs per job; the C driver's own distance to xargs
is what the protocol costs. Beside them, xargs run inside one sandbox (its commands under the
filter, none supervised one by one): the ceiling of any supervisor that starts each job with an
execve under the filter.
usage: bench_batch_floor.py [--true N] [--python N] [-P P] [--rounds R]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import bench_batch  # noqa: E402
import common  # noqa: E402

from sandbox import Sandbox  # noqa: E402

CEILING = "xargs in one sandbox"
CORE = ("spawn.c", "spawner.c", "notify.c", "bpf_emu.c", "watch.c", "zygote.c")


def build(tmp: str) -> tuple:
    """(cbatch, sandbox-zygote, the Docker filter's BPF file) built into tmp."""
    csrc = os.path.join(str(common.ROOT), "csrc")
    core = [os.path.join(csrc, c) for c in CORE]
    exe, zygote = os.path.join(tmp, "cbatch"), os.path.join(tmp, "sandbox-zygote")
    subprocess.run(["gcc", "-O2", "-pthread", "-o", exe,
                    os.path.join(os.path.dirname(__file__), "cbatch.c"), *core], check=True)
    subprocess.run(["gcc", "-O2", "-static", "-o", zygote,
                    os.path.join(csrc, "zygote", "main.c"), *core], check=True)
    bpf = os.path.join(tmp, "docker.bpf")
    with open(bpf, "wb") as f:
        f.write(Sandbox(common.docker_profile()).filter.program)
    return exe, zygote, bpf


def measure(tools, cmd, n, parallel, rounds):
    """({row: [jobs/s per round]}, {row: [supervisor CPU s per job]})."""
    exe, zygote, bpf = tools
    jobs = bench_batch._jobs(cmd, n)
    bench_batch.ours(jobs[:2 * parallel], parallel, True)   # (warm)
    cpu = {"C driver": [], "sandbox batch": []}

    def c_driver():
        out = subprocess.run([exe, bpf, zygote, str(n), str(parallel), *cmd], check=True,
                             capture_output=True, text=True).stdout.split()
        assert out[2] == "0", "%s jobs failed" % out[2]
        cpu["C driver"].append(float(out[1]) / 1e6)

    def batch():
        before = bench_batch._self_cpu()
        bench_batch.ours(jobs, parallel, True)
        cpu["sandbox batch"].append((bench_batch._self_cpu() - before) / n)

    with Sandbox(common.docker_profile()) as sb:
        rows = {"C driver": c_driver, "sandbox batch": batch,
                "xargs": lambda: bench_batch.xargs(cmd, n, parallel),
                CEILING: lambda: bench_batch.xargs_in_a_sandbox(sb, cmd, n, parallel)}
        names = list(rows)
        rates = {name: [] for name in names}
        for i in range(rounds):
            k = i % len(names)
            order = names[k:] + names[:k]
            for name in (order if i % 2 == 0 else order[::-1]):
                rates[name].append(bench_batch._rate(rows[name], n, bench_batch.SETTLE_S / 2))
    return rates, cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--true", type=int, default=2000, help="jobs of /bin/true (default 2000)")
    p.add_argument("--python", type=int, default=200, help="jobs of python3 -c (default 200)")
    p.add_argument("-P", "--parallel", type=int, default=os.cpu_count() or 1)
    p.add_argument("--rounds", type=int, default=12)
    args = p.parse_args(argv)
    print("## A C supervisor with today's zygote protocol, %d alternating rounds, %d at once\n"
          % (args.rounds, args.parallel))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tools = build(tmp)
        for (label, cmd), n in zip(bench_batch.WORKLOADS.items(), (args.true, args.python)):
            if n <= 0:
                continue
            rates, cpu = measure(tools, cmd, n, args.parallel, args.rounds)
            for name in ("C driver", "sandbox batch", CEILING, "xargs"):
                out.append(["%d x `%s`" % (n, label), name,
                            "%.0f" % statistics.median(rates[name]),
                            "%.3f [%.3f-%.3f]" % common.ratio_interval(rates[name],
                                                                        rates["xargs"]),
                            "%.0f" % (statistics.median(cpu[name]) * 1e6) if name in cpu
                            else ""])
    print(common.table(["jobs", "supervisor", "jobs/s", "x xargs: geo. mean [95% CI]",
                        "supervisor CPU per job (us)"], out))
    print()


if __name__ == "__main__":
    main()

"""What containing a non-root run costs: Sandbox(docker profile).run(["/bin/true"]) as nobody,
in a user + PID namespace of its own (the default where the kernel allows it) against
pid_namespace=False (process group only), interleaved, medians in milliseconds.

As root it re-runs itself as nobody (setpriv); the package must be readable by nobody.
Usage: python bench/bench_userns.py [rounds]   (default 200 runs of each)
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402


def measure(rounds: int) -> dict:
    from sandbox import _core
    from sandbox.runner import Sandbox

    if _core.userns_error():
        raise SystemExit("bench: no unprivileged user namespace here: %s"
                         % os.strerror(_core.userns_error()))
    boxes = {"user+pid namespace": Sandbox(common.docker_profile()),
             "process group (pid_namespace=False)":
                 Sandbox(common.docker_profile(), pid_namespace=False)}
    samples = {name: [] for name in boxes}
    for name, sb in boxes.items():   # warm-up
        assert sb.run(["/bin/true"]).verdict == "OK"
    for _ in range(rounds):
        for name, sb in boxes.items():
            t = time.perf_counter()
            r = sb.run(["/bin/true"])
            samples[name].append(time.perf_counter() - t)
            assert r.verdict == "OK", r
    return samples


def main(rounds: int = 200) -> None:
    if os.geteuid() == 0:
        env = dict(os.environ, PYTHONPATH=str(common.ROOT))
        subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        sys.executable, os.path.abspath(__file__), str(rounds)], env=env,
                       check=True, cwd="/")
        return
    samples = measure(rounds)
    rows = []
    base = statistics.median(samples["process group (pid_namespace=False)"])
    for name, v in samples.items():
        q = statistics.quantiles(v, n=10)
        rows.append((name, "%.3f" % (statistics.median(v) * 1e3), "%.3f" % (q[0] * 1e3),
                     "%.3f" % (q[-1] * 1e3), "%.2fx" % (statistics.median(v) / base)))
    print("Sandbox.run(['/bin/true']) as uid %d, %d runs each, interleaved" % (os.geteuid(),
                                                                             rounds))
    print(common.table(["containment", "median ms", "p10 ms", "p90 ms", "ratio"], rows))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)

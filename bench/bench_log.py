"""Cost of a logged syscall, and what each LOG backend keeps (issue 4).

A probe makes K getppid calls; the run is timed with K calls and with none, and the difference
divided by K is the cost per call. Three ways of running it, interleaved round by round:
  allowed      getppid allowed: the plain cost of the call under a filter
  notify       getppid SCMP_ACT_LOG, our notification backend (every call answered and counted)
  kernel-log   getppid SCMP_ACT_LOG left to the kernel (SECCOMP_RET_LOG: an audit record each)
Then, for the kernel's own LOG action, how many records of a 200-call run reach /dev/kmsg.
Target: <= 20 us per logged call with the notification backend, and no record lost.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import table  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402

PROBE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "tests", "probes", "runner", "logcalls.c")


def build_probe(tmp: str) -> str:
    exe = os.path.join(tmp, "logcalls")
    subprocess.run(["gcc", "-O2", "-pthread", "-o", exe, PROBE], check=True)
    return exe


def profile(action: str) -> dict:
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": action}]}


def per_call(sb: Sandbox, exe: str, calls: int, rounds: int) -> tuple:
    """Median seconds per call, and the last run's seccomp_log."""
    samples, log = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        full = sb.run([exe, "loop", str(calls)])
        mid = time.perf_counter()
        sb.run([exe, "loop", "0"])
        end = time.perf_counter()
        assert full.verdict == "OK", full.describe()
        samples.append(((mid - t) - (end - mid)) / calls)
        log = full.seccomp_log
    return statistics.median(samples), log


def main(calls: int = 20000, rounds: int = 5) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_probe(tmp)
        sandboxes = {
            "allowed": Sandbox(profile("SCMP_ACT_ALLOW"), pid_namespace=False),
            "notify": Sandbox(profile("SCMP_ACT_LOG"), pid_namespace=False, log_records=100),
            "kernel-log": Sandbox(profile("SCMP_ACT_LOG"), pid_namespace=False,
                                  log_backend="none"),
        }
        costs = {name: [] for name in sandboxes}
        logs = {}
        for _ in range(rounds):
            for name, sb in sandboxes.items():
                cost, log = per_call(sb, exe, calls, 1)
                costs[name].append(cost)
                logs[name] = log
        med = {name: statistics.median(v) for name, v in costs.items()}
        rows = []
        for name in sandboxes:
            kept = "-"
            if name == "notify":
                e = [x for x in logs[name]["syscalls"] if x["syscall"] == "getppid"][0]
                kept = "%d of %d" % (e["count"], calls)
            rows.append((name, "%.2f" % (med[name] * 1e6),
                         "%.1fx" % (med[name] / med["allowed"]), kept))
        print("Logged syscall cost (getppid x %d, median of %d rounds, per call)" % (calls, rounds))
        print(table(("path", "us/call", "vs allowed", "records kept"), rows))
        print("notify vs kernel LOG action: %.2fx" % (med["notify"] / med["kernel-log"]))
        klog = Sandbox(profile("SCMP_ACT_LOG"), log_backend="kernel").run(
            [exe, "loop", "200"]).seccomp_log
        nlog = sandboxes["notify"].run([exe, "loop", "200"]).seccomp_log
        print(table(("backend", "calls", "records", "lost", "complete"), [
            ("kernel (SECCOMP_RET_LOG, /dev/kmsg)", 200, klog["total"], 200 - klog["total"],
             klog["complete"]),
            ("notify (ours)", 200, nlog["total"], 200 - nlog["total"], nlog["complete"])]))
        if klog.get("reason"):
            print("kernel backend: %s" % klog["reason"])

if __name__ == "__main__":
    main()

"""`make demo`: run a few untrusted sample scripts under the built-in profiles and show what the
sandbox did, then explain a few decisions of the compiled default profile.

(Batches, JUnit reports and learned profiles arrive with those features.)
"""
import os
import platform
import sys
import time
from pathlib import Path

from sandbox import builtin, profile
from sandbox.filter import compile_policy
from sandbox.runner import Sandbox

HERE = Path(__file__).resolve().parent / "untrusted"
PY = sys.executable if os.path.exists(sys.executable) else "python3"

JOBS = [
    # (script, profile, limits, what to expect)
    ("hello.py", "default", {}, "an ordinary job"),
    ("phone_home.py", "no-network", {}, "tries the network"),
    ("escape.py", "default", {}, "tries unshare, mount, keyctl"),
    ("forkbomb.sh", "default", {"processes": 40, "timeout": 3}, "a fork bomb"),
    ("flood.py", "default", {"output_limit": "1M", "timeout": 5}, "writes without end"),
    ("spin.py", "grader", {"cpu_time": 1}, "burns CPU"),
]

CALLS = [
    ("x86_64", "socket", [2, 1, 0], "socket(AF_INET, SOCK_STREAM)"),
    ("x86_64", "socket", [40, 1, 0], "socket(AF_VSOCK)"),
    ("x86_64", "socket", [0x100000028, 1, 0], "AF_VSOCK with high garbage (libseccomp lets it through)"),
    ("x86_64", "clone", [0x10000000], "clone(CLONE_NEWUSER) without CAP_SYS_ADMIN"),
    ("x86", "socketcall", [1], "i386 socketcall(SYS_SOCKET) via int 0x80"),
    ("x86_64", 1000, [], "a syscall number newer than the profile"),
]


def run_jobs() -> None:
    print("== untrusted scripts from %s" % HERE)
    print("%-14s %-11s %-15s %8s  %s" % ("script", "profile", "verdict", "wall", "what happened"))
    for script, prof, limits, what in JOBS:
        path = HERE / script
        # grader lets the command read only the system directories (and its cwd): the system
        # python3, not this interpreter, which may live in a venv or a home directory
        py = "python3" if prof == "grader" else PY
        argv = [py, str(path)] if script.endswith(".py") else ["sh", str(path)]
        # cwd: under grader the script's directory is all the command may see besides the
        # system directories (Landlock); elsewhere it changes nothing
        result = Sandbox(prof, **limits).run(argv, cwd=HERE)
        out = (result.stdout or b"").decode(errors="replace").strip().splitlines()
        note = out[-1][:60] if out and result.verdict != "OUTPUT_LIMIT" else ""
        if result.verdict == "OUTPUT_LIMIT":
            note = "kept %d bytes, truncated" % len(result.stdout or b"")
        elif result.verdict == "TIME_LIMIT":
            note = "%s time limit, cpu %.2fs" % (result.time_limit_kind, result.cpu_time)
        elif result.verdict == "SETUP_ERROR":
            note = result.setup_error["message"]
        elif script == "escape.py":
            note = "%d of %d attempts refused" % (sum("refused" in l for l in out), len(out))
        print("%-14s %-11s %-15s %7.2fs  %s (%s)" % (script, prof, result.verdict,
                                                    result.wall_time, note, what))
        if script == "escape.py":
            for line in out:
                print("%44s%s" % ("", line))


def explain_default() -> None:
    t0 = time.perf_counter()
    policy = profile.load(str(builtin.path("default")), host_arch="x86_64", caps="docker")
    flt = compile_policy(policy)
    ms = (time.perf_counter() - t0) * 1e3
    s = flt.stats("x86_64")
    print()
    print("== the built-in default profile, compiled for x86_64 (+x86, x32), Docker's capabilities")
    print("   %d rules -> %d BPF instructions in %.1f ms; %.1f instructions per x86_64 syscall on "
          "average, %d syscalls served by the kernel's action cache"
          % (len(policy.rules), len(flt), ms, s["mean_executed"], s["cacheable"]))
    for arch, call, args, what in CALLS:
        d = flt.decide(call, args, arch=arch)
        print("-- %s" % what)
        print("   " + d.describe().replace("\n", "\n   "))


def main() -> int:
    if platform.system() != "Linux":
        print("demo: seccomp-sandbox runs on Linux only")
        return 1
    run_jobs()
    explain_default()
    print()
    print("Try:  sandbox run --profile no-network --json -- python3 -c 'import socket; socket.socket()'")
    print("      sandbox explain default socket 40 --arch x86_64")
    return 0


if __name__ == "__main__":
    sys.exit(main())

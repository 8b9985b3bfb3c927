"""`make demo`: the main job. Untrusted sample scripts (examples/untrusted/) run as one batch:
an ordinary one, one that tries the network under `no-network`, one that tries to escape, a fork
bomb, one that writes without end, one that burns CPU, and one that runs under a profile learned
for it a moment earlier (`sandbox learn`). Then the summary, where the JSON-lines results and the
JUnit report are, what the filter denied, and a few decisions of the compiled default profile.
"""
import json
import os
import platform
import sys
import time
from pathlib import Path

from sandbox import builtin, cli, profile
from sandbox.filter import compile_policy
from sandbox.learn import learn
from sandbox.runner import Sandbox
from sandbox.syscall_report import summary_lines

HERE = Path(__file__).resolve().parent / "untrusted"
OUT = Path(os.environ.get("DEMO_OUT", "demo-out")).resolve()
PY = sys.executable if os.path.exists(sys.executable) else "python3"
TEXT = "the sandbox runs the job and the job runs in the sandbox\n"


def job(name, cmd, **fields):
    return dict(name=name, cmd=cmd, cwd=str(HERE), **fields)


def jobs(learned_profile: str) -> list:
    return [
        job("hello", [PY, "hello.py"]),
        job("phone-home", [PY, "phone_home.py"], profile="no-network", expect_exit=3),
        job("escape", [PY, "escape.py"]),
        job("forkbomb", ["sh", "forkbomb.sh"], processes=40, wall_limit="3s"),
        job("flood", [PY, "flood.py"], output_limit="1M", wall_limit="5s"),
        # grader: the system python3 (Landlock lets it read the system directories and its cwd)
        job("spin", ["python3", "spin.py"], profile="grader", time_limit="1s"),
        job("wordcount-learned", ["python3", "wordcount.py"], stdin=TEXT,
            profile=learned_profile, expect_stdout="the 4\nsandbox 2\nruns 2\n"),
    ]


def learn_profile() -> str:
    print("== 1. learn a profile for wordcount.py (sandbox learn: every call logged, none denied)")
    result, learned = learn(["python3", "wordcount.py"], stdin=TEXT.encode(), cwd=str(HERE))
    path = OUT / "wordcount.learned.json"
    path.write_text(json.dumps(learned, indent=2) + "\n")
    names = sum(len(r["names"]) for r in learned["syscalls"] if not r.get("args"))
    docker = profile.load(str(builtin.path("default")))
    print("   %s; %d syscalls allowed (+%d argument rules) against %d rules in the default "
          "profile -> %s" % (result.verdict, names,
                             sum(1 for r in learned["syscalls"] if r.get("args")),
                             len(docker.rules), path))
    return str(path)


def run_batch(learned_profile: str) -> None:
    print()
    print("== 2. the batch (sandbox batch): each job its own sandbox, profile compiled once")
    jobs_file = OUT / "jobs.jsonl"
    jobs_file.write_text("".join(json.dumps(j) + "\n" for j in jobs(learned_profile)))
    results, junit = OUT / "results.jsonl", OUT / "junit.xml"
    status = cli.main(["batch", str(jobs_file), "-j", "2", "--results", str(results),
                       "--junit", str(junit)])
    print("   exit status %d (some jobs are meant to fail); jobs: %s" % (status, jobs_file))
    print("   JSON-lines results: %s" % results)
    print("   JUnit report:       %s" % junit)


def show_denials() -> None:
    print()
    print("== 3. what the filter denied (sandbox run --report-denials -- python3 escape.py)")
    r = Sandbox("default", report_denials=True).run([PY, "escape.py"], cwd=HERE)
    for line in summary_lines(r.seccomp_log):
        print("   " + line)


CALLS = [
    ("x86_64", "socket", [2, 1, 0], "socket(AF_INET, SOCK_STREAM)"),
    ("x86_64", "socket", [40, 1, 0], "socket(AF_VSOCK)"),
    ("x86_64", "socket", [0x100000028, 1, 0], "AF_VSOCK with high garbage (libseccomp lets it through)"),
    ("x86_64", "clone", [0x10000000], "clone(CLONE_NEWUSER) without CAP_SYS_ADMIN"),
    ("x86", "socketcall", [1], "i386 socketcall(SYS_SOCKET) via int 0x80"),
    ("x86_64", 1000, [], "a syscall number newer than the profile"),
]


def explain_default() -> None:
    t0 = time.perf_counter()
    policy = profile.load(str(builtin.path("default")), host_arch="x86_64", caps="docker")
    flt = compile_policy(policy)
    ms = (time.perf_counter() - t0) * 1e3
    s = flt.stats("x86_64")
    print()
    print("== 4. the built-in default profile, compiled for x86_64 (+x86, x32), Docker's "
          "capabilities")
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
    OUT.mkdir(exist_ok=True)
    learned = learn_profile()
    run_batch(learned)
    show_denials()
    explain_default()
    print()
    print("Try:  sandbox run --profile no-network --json -- python3 -c 'import socket; socket.socket()'")
    print("      sandbox learn -o my.json -- python3 -c 'print(1)' && sandbox run --profile my.json "
          "-- python3 -c 'print(1)'")
    print("      sandbox explain default socket 40 --arch x86_64")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The reliability batch (a few hundred jobs in tests/test_reliability.py, 10,000 in
bench/bench_reliability.py): a repeating mix of successes, failures, timeouts that leave a
background child, crashes, output floods and seccomp kills; and a census of what a batch may
leave behind in this process (children, zombies, processes in a run's session, descriptors, RSS).

Every command carries a marker unique to the batch in its argv, so leftovers show in /proc.
"""
import collections
import json
import os
from typing import Dict, List

from sandbox.batch import Job

# mkdir dies by the filter: the seccomp kills of the mix
KILL_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}

# one cycle of the mix: (kind, verdict, passed), repeated
CYCLE = (["ok"] * 10 + ["exit"] + ["timeout"] * 2 + ["crash"] * 2 + ["flood"] * 2
         + ["seccomp"] * 2 + ["ok"])
OUTCOME = {"ok": ("OK", True), "exit": ("NONZERO_EXIT", True),
           "timeout": ("TIME_LIMIT", False), "crash": ("SIGNALED", False),
           "flood": ("OUTPUT_LIMIT", False), "seccomp": ("SECCOMP_KILLED", False)}


def write_kill_profile(directory) -> str:
    path = os.path.join(str(directory), "kill-mkdir.json")
    with open(path, "w") as f:
        json.dump(KILL_MKDIR, f)
    return path


def mixed_jobs(n: int, mark: str, kill_profile: str) -> List[Job]:
    jobs = []
    for i in range(n):
        kind = CYCLE[i % len(CYCLE)]
        kw = {}
        if kind == "ok":
            cmd = ["echo", "ok", str(i), mark]
            kw["expect_stdout"] = "ok %d %s\n" % (i, mark)
        elif kind == "exit":
            cmd = ["sh", "-c", "exit 4; : %s" % mark]
            kw["expect_exit"] = 4
        elif kind == "timeout":   # its background child must die with it
            cmd = ["sh", "-c", "sh -c 'sleep 30; : %s' & sleep 30; : %s" % (mark, mark)]
            kw["wall_limit"] = 0.2
        elif kind == "crash":
            cmd = ["sh", "-c", "kill -SEGV $$; : %s" % mark]
        elif kind == "flood":
            cmd = ["yes", mark]
            kw["output_limit"] = 4096
            kw["wall_limit"] = 30.0
        else:
            cmd = ["mkdir", "/nonexistent-%s/x" % mark]
            kw["profile"] = kill_profile
        jobs.append(Job(name="%s-%05d" % (kind, i), cmd=tuple(cmd), index=i, **kw))
    return jobs


def expected_counts(n: int) -> Dict[tuple, int]:
    """(verdict, passed) -> how many jobs of a batch of n should end so."""
    return dict(collections.Counter(OUTCOME[CYCLE[i % len(CYCLE)]] for i in range(n)))


# ------------------------------------------------------------------------------------ census

def _stat(pid: str):
    """(state, ppid, session) of a process, or None when it is gone."""
    try:
        with open("/proc/%s/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1]), int(fields[3])


def _cmdline(pid: str) -> bytes:
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def children() -> set:
    """Pids of this process's children, zombies included."""
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        st = _stat(entry) if entry.isdigit() else None
        if st is not None and st[1] == me:
            found.add(int(entry))
    return found


def leftovers(mark: str, sessions=(), known_children=()) -> Dict[str, list]:
    """What the batch left: children of this process (zombies included) other than
    known_children (those it had before: a test runner's helpers), processes still in a run's
    session, and processes whose argv carries the batch's marker."""
    me = os.getpid()
    sessions = set(sessions)
    known_children = set(known_children)
    found = {"children": [], "zombies": [], "in_run_sessions": [], "marked": []}
    needle = mark.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        st = _stat(entry)
        if st is None:
            continue
        state, ppid, session = st
        if ppid == me and int(entry) not in known_children:
            found["zombies" if state == "Z" else "children"].append(int(entry))
        if session in sessions:
            found["in_run_sessions"].append(int(entry))
        if needle in _cmdline(entry):
            found["marked"].append(int(entry))
    return found


def fd_count() -> int:
    """Open descriptors, after idle pooled run cgroups (which hold fds by design) are closed."""
    from sandbox import cgroups
    cgroups.drain_pool()
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """on_progress for run_batch: RSS when the batch passes 25%, 50% and 75% of its jobs."""

    def __init__(self, total: int):
        self.total = total
        self.samples: Dict[str, int] = {"start": rss_bytes()}

    def __call__(self, done: int, total: int, failed: int) -> None:
        for pct in (25, 50, 75):
            key = "%d%%" % pct
            if key not in self.samples and done * 100 >= pct * self.total:
                self.samples[key] = rss_bytes()

    def finish(self) -> Dict[str, int]:
        self.samples["end"] = rss_bytes()
        return self.samples

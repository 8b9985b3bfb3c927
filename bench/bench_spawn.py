"""Spawn+wait latency of /bin/true.

1. C level: our core (csrc/spawn.c: vfork, set-up, NO_NEW_PRIVS, Docker's default profile
   compiled for x86_64+x86+x32, execve) against posix_spawn, interleaved blocks in one C process;
   and the pre-filtered zygote (csrc/zygote/: filter installed once, jobs inherit it), from the
   request to the report of the job's end.
2. Python level: sandbox's Sandbox.run() with that filter against subprocess.run() without
   one, both capturing stdout/stderr, interleaved.
Medians and ratios against the baseline measured in the same run.
"""
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

from sandbox import _core, profile  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402


def c_level(program: bytes, rounds: int, per: int) -> dict:
    src = os.path.join(os.path.dirname(__file__), "spawnbench.c")
    # spawn.c and what it links with (the notification supervisor it can hand over to, the
    # zygote's wire protocol)
    csrc = os.path.join(str(common.ROOT), "csrc")
    core = [os.path.join(csrc, c)
            for c in ("spawn.c", "spawner.c", "notify.c", "bpf_emu.c", "watch.c", "zygote.c")]
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "spawnbench")
        zygote = os.path.join(tmp, "sandbox-zygote")
        subprocess.run(["gcc", "-O2", "-pthread", "-o", exe, src, *core], check=True)
        subprocess.run(["gcc", "-O2", "-static", "-o", zygote,
                        os.path.join(csrc, "zygote", "main.c"), *core], check=True)
        bpf = os.path.join(tmp, "docker.bpf")
        with open(bpf, "wb") as f:
            f.write(program)
        out = subprocess.run([exe, bpf, str(rounds), str(per), zygote], check=True,
                             capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        name, med, p10, p90 = line.split()
        res[name] = (float(med), float(p10), float(p90))
    return res


SUBPROCESS = "subprocess.run (no filter)"
DEFAULT_RUN = "Sandbox.run, Docker filter (spawner thread, the default)"


def target_pair(path: str, rounds: int, per: int) -> dict:
    """The issue's target on its own: Sandbox.run with the filter (the default path) against
    subprocess.run, in blocks whose order alternates. Mixed in with the other rows, the
    namespaces those make are torn down by the kernel's workers after the fact, which lands
    on whichever row comes next."""
    threaded = Sandbox(path, use_cgroup=False, pid_namespace=False)
    fns = {SUBPROCESS: lambda: subprocess.run(["/bin/true"], capture_output=True),
           DEFAULT_RUN: lambda: threaded.run(["/bin/true"])}
    try:
        for fn in fns.values():  # (both warm)
            for _ in range(per):
                fn()
        return common.interleaved_samples(fns, rounds=rounds, inner=per, alternate=True)
    finally:
        threaded.close()


def python_level(path: str, rounds: int, per: int) -> dict:
    plain = Sandbox(path, use_cgroup=False, pid_namespace=False, spawner=False)
    threaded = Sandbox(path, use_cgroup=False, pid_namespace=False)
    isolated = Sandbox(path)  # as root: PID + mount namespace, sandbox-init, run cgroup
    unconfined = Sandbox(None, use_cgroup=False, pid_namespace=False)
    zygote = Sandbox(path, use_cgroup=False, pid_namespace=False, zygote=True)
    zygote_root = Sandbox(path, zygote=True)  # as root: the zygote's PID namespace, cgroups
    fns = {
        SUBPROCESS: lambda: subprocess.run(["/bin/true"], capture_output=True),
        DEFAULT_RUN: lambda: threaded.run(["/bin/true"]),
        "Sandbox.run, Docker filter, installed per run": lambda: plain.run(["/bin/true"]),
        "Sandbox.run, Docker filter, zygote": lambda: zygote.run(["/bin/true"]),
        "Sandbox.run, unconfined": lambda: unconfined.run(["/bin/true"]),
    }
    if os.geteuid() == 0:
        fns["Sandbox.run, Docker filter, root defaults (PID ns, init, cgroup)"] = \
            lambda: isolated.run(["/bin/true"])
        fns["Sandbox.run, Docker filter, root defaults, zygote (shared PID ns, cgroup)"] = \
            lambda: zygote_root.run(["/bin/true"])
    try:
        return common.interleaved_samples(fns, rounds=rounds, inner=per)
    finally:
        zygote.close()
        zygote_root.close()
        threaded.close()


def main(rounds=40, per=25):
    path = common.docker_profile()
    policy = profile.load(path, host_arch="x86_64", caps="docker", kernel=(6, 18))
    program = _core.compile(policy)
    c = c_level(program, rounds, per)
    base = c["posix_spawn"][0]
    print("## Spawn + wait of /bin/true, C level (%d insn filter, %d samples each)\n"
          % (len(program) // 8, rounds * per))
    rows = [[name, "%.0f" % v[0], "%.0f" % v[1], "%.0f" % v[2], "%.2f" % (v[0] / base)]
            for name, v in (("posix_spawn (baseline)", c["posix_spawn"]),
                            ("sb_spawn + Docker filter", c["core_filter"]),
                            ("spawner thread job (filter inherited)", c["core_spawner"]),
                            ("zygote job (filter inherited)", c["core_zygote"]),
                            ("sb_spawn, no filter", c["core_nofilter"]))]
    print(common.table(["entry", "median us", "p10", "p90", "x posix_spawn"], rows))
    pair = target_pair(path, 2 * rounds, per)
    base = pair[SUBPROCESS]
    print("\n## Sandbox.run with the filter against subprocess.run (%d alternating blocks of "
          "%d)\n" % (2 * rounds, per))
    print(common.table(
        ["entry", "median us", "x subprocess.run", "per block: geo. mean [95% CI]"],
        [[k, "%.0f" % (statistics.median(v) * 1e6),
          "%.2f" % (statistics.median(v) / statistics.median(base)),
          "%.3f [%.3f-%.3f]" % common.ratio_interval(v, base)] for k, v in pair.items()]))
    py = python_level(path, rounds, per)
    base = py[SUBPROCESS]
    print("\n## Spawn + wait of /bin/true from Python, every path (medians of %d blocks of %d)\n"
          % (rounds, per))
    # x subprocess.run: of the medians; per block: each block's ratio to the subprocess.run
    # block next to it (the machine drifts between blocks), median and quartiles
    rows = []
    for k, v in py.items():
        ratios = sorted(a / b for a, b in zip(v, base))
        q = statistics.quantiles(ratios, n=4)
        rows.append([k, "%.0f" % (statistics.median(v) * 1e6),
                     "%.2f" % (statistics.median(v) / statistics.median(base)),
                     "%.2f (%.2f-%.2f)" % (statistics.median(ratios), q[0], q[2]),
                     "%.3f [%.3f-%.3f]" % common.ratio_interval(v, base)])
    print(common.table(["entry", "median us", "x subprocess.run", "per block (quartiles)",
                        "per block: geo. mean [95% CI]"], rows))


if __name__ == "__main__":
    main()

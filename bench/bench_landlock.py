"""What Landlock costs: building a ruleset (the grader's @system set plus a scratch directory),
and Sandbox.run of /bin/true with the Docker filter without Landlock, with the Sandbox's ruleset
(built once), with a ruleset built for each run, and with a fresh scratch directory per run (the
grader's default without a cwd: mkdtemp, ruleset, rmtree). Interleaved blocks, medians.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

from sandbox import landlock  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402


def main(rounds=20, per=25):
    try:
        abi = landlock.kernel_abi()
    except landlock.LandlockUnavailable as e:
        print("## Landlock: not measured (%s)" % e)
        return
    path = common.docker_profile()
    with tempfile.TemporaryDirectory() as scratch:
        policy = landlock.fs_policy({"ro": ("@system",), "rw": ("@scratch",)})
        build = common.median_time(lambda: landlock.Ruleset(abi, policy, scratch).close(),
                                   rounds=rounds, inner=per)
        print("## Landlock (ABI %d): building a ruleset of %d paths: %.1f us (median)\n"
              % (abi, len(policy.ro) + len(policy.rw) + 1, build * 1e6))
        opts = dict(use_cgroup=False, pid_namespace=False)
        plain = Sandbox(path, **opts)
        once = Sandbox(path, fs_ro=["@system"], fs_rw=[scratch], **opts)
        per_run = Sandbox(path, fs_ro=["@system"], fs_rw=["@scratch"], **opts)
        fresh = Sandbox(path, fs_ro=["@system"], fs_rw=["@scratch"], **opts)
        fns = {
            "Docker filter, no Landlock": lambda: plain.run(["/bin/true"]),
            "+ Landlock, the Sandbox's ruleset": lambda: once.run(["/bin/true"]),
            "+ Landlock, a ruleset per run": lambda: per_run.run(["/bin/true"], cwd=scratch),
            "+ Landlock, a fresh scratch dir per run": lambda: fresh.run(["/bin/true"]),
        }
        for sb in (once, per_run, fresh):
            r = sb.run(["/bin/true"], cwd=scratch if sb is per_run else None)
            assert r.ok and r.landlock["available"], r.describe()
        times = common.interleaved(fns, rounds=rounds, inner=per)
    base = times["Docker filter, no Landlock"]
    print(common.table(["Sandbox.run of /bin/true", "median us", "x no Landlock"],
                       [[k, "%.0f" % (v * 1e6), "%.2f" % (v / base)] for k, v in times.items()]))


if __name__ == "__main__":
    main()

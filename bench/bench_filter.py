"""Filter quality and compile cost: ours against libseccomp (through pyseccomp) on Docker's
default profile, x86_64 host, Docker's default capabilities, arches x86_64 + x86 + x32.

Per filter: length; BPF instructions executed per syscall over the x86_64 table (mean, max);
(arch, nr) pairs the kernel's action cache serves; the cache-precompute walk (instructions the
kernel's emulator steps through for x86_64 nr 0..NR-1 and i386 nr 0..NR-1 when the filter is
attached); load+compile time, medians measured in the same run, and ours alone: min and median
of load, compile and both over 2000 runs.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

from sandbox import _core, profile  # noqa: E402
from sandbox.policy import RET_ALLOW  # noqa: E402

X86_64 = 0xC000003E
I386 = 0x40000003
LOAD = dict(host_arch="x86_64", caps="docker", kernel=(6, 18))


def libseccomp_build(policy, optimize):
    """The filter runc builds with libseccomp for this policy (without runc's ENOSYS stub)."""
    import pyseccomp
    tokens = {"x86": pyseccomp.Arch.X86, "x32": pyseccomp.Arch.X32}
    f = pyseccomp.SyscallFilter(policy.default_action)
    for a in policy.arches[1:]:
        f.add_arch(tokens[a])
    if optimize != 1:
        f.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, optimize)
    for r in policy.rules:
        try:
            nr = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, r.name)
        except Exception:
            continue
        if nr == -1:
            continue  # runc skips names its libseccomp does not know
        f.add_rule(r.action, nr, *[pyseccomp.Arg(c.index, c.op, c.value, c.value_two)
                                   for c in r.conds])
    with tempfile.TemporaryFile() as tmp:
        f.export_bpf(tmp)
        tmp.seek(0)
        return tmp.read()


def measure(program: bytes) -> dict:
    table = _core.syscall_table("x86_64")
    executed = [_core.bpf_run(program, X86_64, nr)[1] for _n, nr, _w in table]
    nr64 = max(nr for _n, nr, _w in table) + 1
    nr32 = max(nr for _n, nr, _w in _core.syscall_table("x86")) + 1
    cacheable = walk = 0
    for arch, count in ((X86_64, nr64), (I386, nr32)):
        for nr in range(count):
            ok, w = _core.bpf_const_allow(program, arch, nr)
            cacheable += ok
            walk += w
    return {"len": len(program) // 8, "mean": sum(executed) / len(executed),
            "max": max(executed), "cacheable": cacheable, "walk": walk}


def unconditional_allows_cached(policy, program) -> bool:
    """Every syscall allowed without conditions on x86_64 and i386 is served by the cache."""
    flt = _core.Compiled(policy)
    for arch_name, audit in (("x86_64", X86_64), ("x86", I386)):
        for name, nr, _w in _core.syscall_table(arch_name):
            action, by, idx = flt.decide(audit, nr)
            if action == RET_ALLOW and by == 0 and not policy.rules[idx].conds:
                if not _core.bpf_const_allow(program, audit, nr)[0]:
                    return False
    return True


def main(rounds=31, runs=2000):
    path = common.docker_profile()
    policy = profile.load(path, **LOAD)
    ours = _core.compile(policy)
    # ours alone, call by call: reading + parsing the JSON file, validation and resolution
    # (load), the C compile (compile), and both
    own = common.interleaved_stats({
        "load+compile": lambda: _core.compile(profile.load(path, **LOAD)),
        "load": lambda: profile.load(path, **LOAD),
        "compile": lambda: _core.compile(policy),
    }, rounds=runs, inner=1)
    times = common.interleaved({
        "ours_load_compile": lambda: _core.compile(profile.load(path, **LOAD)),
        "lib_opt1": lambda: libseccomp_build(policy, 1),
        "lib_opt2": lambda: libseccomp_build(policy, 2),
    }, rounds=rounds, inner=5)
    rows = []
    lib = {1: libseccomp_build(policy, 1), 2: libseccomp_build(policy, 2)}
    for label, prog, t in (("ours", ours, times["ours_load_compile"]),
                           ("libseccomp opt1 (linear)", lib[1], times["lib_opt1"]),
                           ("libseccomp opt2 (tree, runc's choice)", lib[2], times["lib_opt2"])):
        m = measure(prog)
        rows.append([label, m["len"], "%.1f" % m["mean"], m["max"], m["cacheable"], m["walk"],
                     "%.2f" % (t * 1e3), "%.2f" % (t / times["ours_load_compile"])])
    print("## Filter: Docker default profile, x86_64 host, Docker caps, x86_64+x86+x32\n")
    print(common.table(["filter", "insns", "mean executed (x86_64)", "max", "cacheable (x86_64+i386)",
                        "cache walk", "build ms (median)", "x ours"], rows))
    print()
    print("ours, %d interleaved runs each (load: read + parse the JSON file, validation, moby/runc "
          "resolution; compile: the C compiler); libseccomp times exclude loading the JSON:" % runs)
    print(common.table(["ours", "min ms", "median ms"],
                       [[name, "%.3f" % (low * 1e3), "%.3f" % (median * 1e3)]
                        for name, (low, median) in own.items()]))
    print("every unconditionally allowed syscall served by the action cache (ours): %s"
          % unconditional_allows_cached(policy, ours))
    return rows


if __name__ == "__main__":
    main()

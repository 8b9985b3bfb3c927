"""The `sandbox` command line."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional

from . import builtin, profile
from .policy import action_name

EXIT_OK = 0
EXIT_PROFILE = 1      # the profile was refused (the message names the JSON path)
EXIT_USAGE = 2        # bad command line

EPILOG = """\
PROFILE is a path to a Docker/moby, OCI (linux.seccomp or a whole config.json) or
containers-common/podman seccomp JSON profile, or a built-in name (see `sandbox profiles`).

exit status:
  0  success
  1  the profile was refused: the message gives the JSON path of the offending value
     (with --strict, warnings count as errors too)
  2  bad command line
"""


def _add_profile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("profile", metavar="PROFILE", help="profile path or built-in name")
    g = p.add_argument_group("how the profile is resolved (as Docker/moby would on that host)")
    g.add_argument("--host-arch", metavar="ARCH",
                   help="host architecture: x86_64, x86, aarch64, arm (default: this machine)")
    g.add_argument("--caps", metavar="LIST",
                   help="capabilities for includes/excludes: comma-separated names "
                        "(CAP_SYS_ADMIN,...), 'docker' (Docker's default container set), 'all' "
                        "or 'none' (default: what the sandboxed process would get: Docker's set "
                        "when run as root, none otherwise)")
    g.add_argument("--kernel", metavar="X.Y",
                   help="kernel version for minKernel (default: the running kernel)")
    g.add_argument("--no-enosys-stub", action="store_true",
                   help="do not add runc's ENOSYS answer for syscalls newer than the profile")
    g.add_argument("--args-like-libseccomp", action="store_true",
                   help="compare all 64 bits of every argument, exactly as libseccomp does, "
                        "instead of only the low word of arguments the kernel reads as 32-bit "
                        "(that re-opens libseccomp's high-bit bypass)")
    g.add_argument("--strict", action="store_true",
                   help="treat warnings (unknown keys, unknown syscalls, ...) as errors")


def _command(sub, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand that takes a PROFILE and the options that resolve it."""
    p = sub.add_parser(name, help=summary, description=description, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_profile_options(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandbox",
        description="Compile Docker/OCI seccomp profiles to BPF and run commands under them.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = _command(sub, "compile", "compile a profile to BPF",
                 "Compile a profile to a seccomp BPF program. --format bpf writes the raw struct "
                 "sock_filter array in host byte order, usable as `bwrap --seccomp FD`.")
    p.add_argument("--format", choices=("bpf", "disasm", "stats"), default=None,
                   help="bpf (raw, the default with -o), disasm (listing, the default on a "
                        "terminal), stats (length, instructions per syscall, cache coverage)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_compile)

    p = _command(sub, "explain", "what the filter does with one call, and which rule decides",
                 "Show the action the compiled filter takes for one call and the rule (JSON path) "
                 "that decides it. The BPF program is run too, and must agree.")
    p.add_argument("syscall", metavar="SYSCALL", help="syscall name or number")
    p.add_argument("args", metavar="ARG", nargs="*",
                   help="up to 6 arguments (decimal or 0x hex; default 0)")
    p.add_argument("--arch", help="ABI of the call: x86_64, x86, x32, aarch64, arm "
                                  "(default: the host arch)")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(func=cmd_explain)

    p = _command(sub, "check", "load a profile and list everything worth a second look",
                 "Load and compile a profile and print its warnings: unknown syscalls, rules equal "
                 "to the default, shadowed or overlapping rules, missing x86/x32 arches, execve "
                 "denied, ...")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("profiles", help="list the built-in profiles")
    p.set_defaults(func=cmd_profiles)
    return parser


def _int_arg(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise SystemExit("sandbox: argument %r is not a number (decimal or 0x hex)" % text)
    if value < 0:
        value &= 0xFFFFFFFFFFFFFFFF  # -1 means all ones, as a C caller would pass it
    if value > 0xFFFFFFFFFFFFFFFF:
        raise SystemExit("sandbox: argument %r does not fit in 64 bits" % text)
    return value


def _source(spec: str):
    resolved = builtin.resolve(spec)
    if resolved is spec and not os.path.exists(spec) and not spec.lstrip().startswith("{"):
        raise profile.ProfileError(
            "", "%s: no such file or built-in profile (built-ins: %s)"
            % (spec, ", ".join(builtin.names())))
    return resolved


def load_policy(args) -> Optional[object]:
    if args.profile == builtin.UNCONFINED:
        return None
    return profile.load(_source(args.profile), host_arch=args.host_arch, caps=args.caps,
                        kernel=args.kernel, strict=args.strict,
                        enosys_stub=not args.no_enosys_stub,
                        args_like_libseccomp=args.args_like_libseccomp)


def _print_warnings(policy, stream=None) -> None:
    stream = stream or sys.stderr
    for w in policy.warnings:
        print("sandbox: warning: %s" % w, file=stream)


def _require_policy(policy, spec: str):
    if policy is None:
        raise profile.ProfileError(
            "", "%s: the profile disables seccomp (no defaultAction and no syscalls), there is "
            "no filter to show" % spec)
    return policy


def cmd_compile(args) -> int:
    from .filter import compile_policy
    from .disasm import disassemble

    policy = _require_policy(load_policy(args), args.profile)
    _print_warnings(policy)
    flt = compile_policy(policy)
    fmt = args.format
    if fmt is None:
        fmt = "disasm" if (args.output is None and sys.stdout.isatty()) else "bpf"
    if fmt == "bpf":
        data = flt.program
    elif fmt == "disasm":
        data = (disassemble(flt.program) + "\n").encode()
    else:
        stats = [flt.stats(a) for a in policy.arches]
        data = (json.dumps({"length": len(flt), "arches": stats}, indent=2) + "\n").encode()
    if args.output:
        with open(args.output, "wb") as f:
            f.write(data)
        print("sandbox: wrote %d instructions (%s) to %s" % (len(flt), fmt, args.output),
              file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK


def cmd_explain(args) -> int:
    from .filter import compile_policy

    policy = _require_policy(load_policy(args), args.profile)
    _print_warnings(policy)
    if len(args.args) > 6:
        raise SystemExit("sandbox: a syscall has at most 6 arguments")
    call_args = [_int_arg(a) for a in args.args]
    syscall = args.syscall
    if syscall.isdigit() or syscall.lower().startswith("0x"):
        syscall = int(syscall, 0)
    try:
        decision = compile_policy(policy).decide(syscall, call_args, arch=args.arch)
    except ValueError as e:
        print("sandbox: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        out = {
            "arch": decision.arch, "syscall": decision.syscall, "nr": decision.nr,
            "args": list(decision.args), "action": decision.action_name,
            "action_value": decision.action, "decided_by": decision.decided_by,
            "rule": decision.rule_path, "rule_text": decision.rule_text,
            "bpf_instructions": decision.instructions,
        }
        print(json.dumps(out, indent=2))
    else:
        print(decision.describe())
    return EXIT_OK


def cmd_check(args) -> int:
    from .check import check
    from .filter import compile_policy

    policy = load_policy(args)
    if policy is None:
        print("%s: seccomp disabled (no defaultAction and no syscalls)" % args.profile)
        return EXIT_OK
    findings = list(policy.warnings)
    for f in check(policy):
        if f not in findings:
            findings.append(f)
    flt = compile_policy(policy)
    for f in findings:
        print("warning: %s" % f)
    print("%s: %d rules, %d BPF instructions, arches %s, default %s; %d warning(s)" % (
        args.profile, len(policy.rules), len(flt), ",".join(policy.arches),
        action_name(policy.default_action), len(findings)))
    return EXIT_PROFILE if (findings and args.strict) else EXIT_OK


def cmd_profiles(args) -> int:
    for name in builtin.names():
        print("%-12s %s" % (name, builtin.summary(name)))
    return EXIT_OK


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except profile.ProfileError as e:
        print("sandbox: %s" % e, file=sys.stderr)
        return EXIT_PROFILE
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

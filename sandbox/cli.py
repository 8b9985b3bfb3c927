"""The `sandbox` command line."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from typing import Optional

from . import _core, builtin, profile, stopsignals
from .limits import add_limit_options, cli_type
from .policy import action_name

EXIT_OK = 0
EXIT_PROFILE = 1      # the profile was refused (the message names the JSON path)
EXIT_USAGE = 2        # bad command line (sandbox run has its own, see RUN_EPILOG)
EXIT_WRAPPER_FAILED = 125   # run, learn: the sandbox failed, a bad command line included

EPILOG = """\
PROFILE is a path to a Docker/moby, OCI (linux.seccomp or a whole config.json) or
containers-common/podman seccomp JSON profile, or a built-in name (see `sandbox profiles`).

exit status of the profile commands (compile, explain, check, profiles):
  0  success
  1  the profile was refused: the message gives the JSON path of the offending value
     (with --strict, warnings count as errors too)
  2  bad command line
run and learn pass on the command's own status (125-127 and 128+N their own, as coreutils'
timeout does); batch and grade have theirs: see `sandbox COMMAND --help`.
"""


def _add_resolution_options(g, run: bool = False) -> None:
    """Options that decide how a profile resolves and compiles (shared by every command)."""
    if not run:
        g.add_argument("--host-arch", metavar="ARCH",
                       type=cli_type(profile.normalize_arch, keep_text=True),
                       help="host architecture: x86_64, x86, aarch64, arm (default: this machine)")
    g.add_argument("--caps", metavar="LIST", type=cli_type(profile.parse_caps, keep_text=True),
                   help="capabilities for includes/excludes%s: comma-separated names "
                        "(CAP_SYS_ADMIN,...), 'docker' (Docker's default container set), 'all' "
                        "or 'none' (default: what the sandboxed process gets: Docker's set when "
                        "run as root, none otherwise)" % (" and kept by the command" if run else ""))
    g.add_argument("--kernel", metavar="X.Y", type=cli_type(profile.parse_release, keep_text=True),
                   help="kernel version for minKernel (default: the running kernel)")
    g.add_argument("--no-enosys-stub", action="store_true",
                   help="do not add runc's ENOSYS answer for syscalls newer than the profile")
    g.add_argument("--args-like-libseccomp", action="store_true",
                   help="compare all 64 bits of every argument, exactly as libseccomp does, "
                        "instead of only the low word of arguments the kernel reads as 32-bit "
                        "(that re-opens libseccomp's high-bit bypass)")
    g.add_argument("--strict", action="store_true",
                   help="treat warnings (unknown keys, unknown syscalls, ...) as errors")


def _add_log_options(g) -> None:
    g.add_argument("--log-backend", choices=("notify", "kernel", "none"), default="notify",
                   help="how SCMP_ACT_LOG calls are collected: notify (default: answered by the "
                        "sandbox itself, every call recorded, the program sees no difference), "
                        "kernel (the kernel's own LOG action, read back from /dev/kmsg, which "
                        "rate-limits), none")
    g.add_argument("--report-denials", action="store_true",
                   help="also record calls the filter denies (ERRNO, KILL) with their arguments; "
                        "they are answered exactly as the filter would (a KILL becomes a SIGKILL "
                        "from the sandbox, and the Result names the syscall)")
    g.add_argument("--log-records", metavar="N", type=int, default=100,
                   help="full records (all six arguments, pid, time) kept for the first N calls; "
                        "every call is still counted per syscall (default: 100)")
    g.add_argument("--quiet-log", action="store_true",
                   help="do not print the summary of logged/denied calls on stderr")


def _add_profile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("profile", metavar="PROFILE", help="profile path or built-in name")
    _add_resolution_options(p.add_argument_group(
        "how the profile is resolved (as Docker/moby would on that host)"))


def _command(sub, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand that takes a PROFILE and the options that resolve it."""
    p = sub.add_parser(name, help=summary, description=description, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_profile_options(p)
    return p


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with the exit status of a bad command line its command's own: 2, but
    125 for `run` and `learn`, which like coreutils' timeout keep the codes below for the
    command they run and 125 for their own failures."""
    usage_exit = EXIT_USAGE

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(self.usage_exit, "%s: error: %s\n" % (self.prog, message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sandbox",
        description="Compile Docker/OCI seccomp profiles to BPF and run commands under them.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    parser.commands = sub.choices   # name -> the command's parser (its usage, its exit status)

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

    p = sub.add_parser("run", help="run a command under a profile, with limits",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run CMD under a seccomp profile with no_new_privs, dropped "
                                   "capabilities and resource limits. Without --json the "
                                   "command's stdout/stderr pass through; with --json they are "
                                   "captured and one JSON Result is printed.",
                       epilog=RUN_EPILOG)
    p.add_argument("--profile", default="default",
                   help="profile path or built-in name (default: default; 'unconfined' for none)")
    add_limit_options(
        p.add_argument_group("limits"),
        time="CPU seconds (whole tree where measurable)",
        wall="wall-clock seconds (default: 2 x time limit + 1 when a time limit is set)",
        memory="e.g. 256M, at least 1M (cgroup, else RLIMIT_AS)",
        output="bytes kept per captured stream (--json, default 64M); more ends the run: "
               "OUTPUT_LIMIT",
        file_size="largest file the command may write",
        processes="tasks in the tree (cgroup pids.max, else RLIMIT_NPROC of the user)",
        open_files="RLIMIT_NOFILE", stack="RLIMIT_STACK")
    g = p.add_argument_group("environment")
    g.add_argument("--stdin", metavar="FILE", help="read stdin from FILE ('-': the stdin "
                   "sandbox was given, e.g. a pipe; default: /dev/null)")
    g.add_argument("--env", metavar="K=V", action="append", default=[],
                   help="set a variable (repeatable); the default environment is PATH, LANG, HOME")
    g.add_argument("--inherit-env", action="store_true", help="start from this environment")
    g.add_argument("--cwd", metavar="DIR", help="working directory")
    g.add_argument("--user", metavar="USER[:GROUP]", help="run as this user (needs root)")
    g.add_argument("--no-pid-namespace", action="store_true",
                   help="do not give the command its own PID namespace (by default it gets one, "
                        "without root inside a user namespace where the kernel allows it: it "
                        "cannot see or signal other processes by pid, and everything it starts "
                        "dies with it)")
    g = p.add_argument_group("filesystem (Landlock)", FS_HELP)
    g.add_argument("--fs-ro", metavar="PATH", action="append",
                   help="read-only path (repeatable; must exist)")
    g.add_argument("--fs-rw", metavar="PATH", action="append",
                   help="read-write path (repeatable; must exist)")
    g.add_argument("--fs-unrestricted", action="store_true",
                   help="no filesystem restriction, even where the profile has a default")
    g.add_argument("--allow-no-landlock", action="store_true",
                   help="where the kernel has no Landlock, run without the filesystem "
                        "restriction (the JSON Result says so) instead of refusing (exit 125)")
    _add_resolution_options(p.add_argument_group("profile resolution"), run=True)
    _add_log_options(p.add_argument_group("seeing what the filter did"))
    p.add_argument("--json", action="store_true",
                   help="capture stdout/stderr and print one JSON Result")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARG...")
    p.set_defaults(func=cmd_run)
    p.usage_exit = EXIT_WRAPPER_FAILED

    p = sub.add_parser("learn", help="run a command and write the profile it needs",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run CMD with every syscall that BASE does not allow logged "
                                   "(nothing is denied; the notification backend records every "
                                   "call), then write a minimal Docker-format profile: "
                                   "defaultAction SCMP_ACT_ERRNO, the syscalls CMD made, argument "
                                   "rules for socket families, clone's namespace flags and "
                                   "personality, an archMap for this host, and a comment naming "
                                   "the command and the date. --merge adds an earlier learned "
                                   "profile, so several runs (inputs, code paths) add up.",
                       epilog=LEARN_EPILOG)
    p.add_argument("--profile", metavar="BASE",
                   help="start from this profile: what it allows stays allowed (default: none, "
                        "so the result lists exactly what CMD used)")
    p.add_argument("-o", "--output", metavar="OUT.json",
                   help="write the profile here (default: stdout)")
    p.add_argument("--merge", metavar="OLD.json", help="merge with an earlier learned profile")
    p.add_argument("--wall-limit", metavar="S", help="wall-clock seconds for the learning run")
    p.add_argument("--stdin", metavar="FILE", help="read stdin from FILE ('-': the stdin "
                   "sandbox was given; default: /dev/null)")
    p.add_argument("--env", metavar="K=V", action="append", default=[],
                   help="set a variable (repeatable)")
    p.add_argument("--inherit-env", action="store_true", help="start from this environment")
    p.add_argument("--cwd", metavar="DIR", help="working directory")
    p.add_argument("--quiet", action="store_true", help="let the command's output through "
                   "without the summary on stderr")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARG...")
    p.set_defaults(func=cmd_learn)
    p.usage_exit = EXIT_WRAPPER_FAILED

    from . import batch
    batch.add_parser(sub)
    from . import grading_cli
    grading_cli.add_parser(sub)

    p = sub.add_parser("profiles", help="list the built-in profiles")
    p.set_defaults(func=cmd_profiles)
    return parser


FS_HELP = """\
Beneath --fs-ro paths the command may read, list and execute; beneath --fs-rw
paths it may also write, create and delete; anything else fails with EACCES
(symlinks, /proc/PID/cwd and /proc/self/fd included). A list given replaces the
default. The grader profile defaults to --fs-ro @system --fs-rw @scratch; other
profiles are unrestricted unless one of the options is given (the other list
then defaults to @system for --fs-ro, to nothing for --fs-rw).
  @system   /usr /bin /sbin /lib* /etc /sys/devices/system/cpu read-only, and
            /dev/null, zero, full, random, urandom read-write (not /proc, /tmp)
  @scratch  the run's --cwd; without --cwd a new empty temporary directory that
            becomes the working directory and is removed afterwards (so under
            grader the command sees nothing of the directory you run it from);
            TMPDIR points at it unless --env sets TMPDIR
"""

RUN_EPILOG = """\
exit status (like coreutils timeout):
  N      the command's own exit status
  128+N  the command was killed by signal N (159 = SIGSYS: the seccomp filter killed it,
         also with --report-denials, where the supervisor kills it in the kernel's place;
         137 = SIGKILL, e.g. an output or memory limit)
  124    a time limit (CPU or wall) was hit
  125    the sandbox itself failed: a bad command line or option value, bad profile, a
         profile that denies execve, a missing --fs-ro/--fs-rw path, no Landlock in the
         kernel, set-up error
  126    the command was found but could not be executed
  127    the command was not found
sandbox itself stopped by SIGINT, SIGTERM or SIGHUP kills the command and everything it
started, and exits 130, 143 or 129; with --json the Result (cancelled: true) still prints.
"""


LEARN_EPILOG = """\
example:
  sandbox learn -o app.json -- python3 app.py           # learn
  sandbox learn --merge app.json -o app.json -- python3 app.py --other-path
  sandbox run --profile app.json -- python3 app.py      # enforce

exit status: as `sandbox run` (the command's own status, 128+N, 124, 125, 126, 127); the profile
is written whenever the command ran, even if it failed.
"""


def _output_problem(path: str) -> Optional[str]:
    """Why -o PATH cannot be written, checked before the work that fills it, or None."""
    where = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "%s: is a directory" % path
    if not os.path.isdir(where):
        return "%s: no directory %s" % (path, where)
    if not os.access(path if os.path.exists(path) else where, os.W_OK):
        return "%s: not writable" % path
    return None


def _usage_error(message: str):
    print("sandbox: %s" % message, file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def _int_arg(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        _usage_error("argument %r is not a number (decimal or 0x hex)" % text)
    if value < 0:
        value &= 0xFFFFFFFFFFFFFFFF  # -1 means all ones, as a C caller would pass it
    if value > 0xFFFFFFFFFFFFFFFF:
        _usage_error("argument %r does not fit in 64 bits" % text)
    return value


def load_policy(args) -> Optional[object]:
    if args.profile == builtin.UNCONFINED:
        return None
    return profile.load(builtin.source(args.profile), host_arch=args.host_arch, caps=args.caps,
                        kernel=args.kernel, strict=args.strict,
                        enosys_stub=not args.no_enosys_stub,
                        args_like_libseccomp=args.args_like_libseccomp)


def _print_warnings(warnings) -> None:
    for w in warnings:
        print("sandbox: warning: %s" % w, file=sys.stderr)


def _require_policy(policy, spec: str):
    if policy is None:
        raise profile.ProfileError(
            "", "%s: the profile disables seccomp (no defaultAction and no syscalls), there is "
            "no filter to show" % spec)
    return policy


def cmd_compile(args) -> int:
    from .filter import compile_policy
    from .disasm import disassemble

    problem = _output_problem(args.output) if args.output else None
    if problem:
        _usage_error("-o %s" % problem)
    policy = _require_policy(load_policy(args), args.profile)
    _print_warnings(policy.warnings)
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
        try:
            with open(args.output, "wb") as f:
                f.write(data)
        except OSError as e:
            _usage_error("-o %s: %s" % (args.output, e.strerror))
        print("sandbox: wrote %d instructions (%s) to %s" % (len(flt), fmt, args.output),
              file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK


def cmd_explain(args) -> int:
    from .filter import compile_policy

    policy = _require_policy(load_policy(args), args.profile)
    _print_warnings(policy.warnings)
    if len(args.args) > 6:
        _usage_error("a syscall has at most 6 arguments")
    call_args = [_int_arg(a) for a in args.args]
    syscall = args.syscall
    if syscall.isdigit() or syscall.lower().startswith("0x"):
        try:
            syscall = int(syscall, 0)
        except ValueError:
            _usage_error("syscall %r is neither a name nor a number" % syscall)
        if syscall > 0x7FFFFFFF:
            _usage_error("syscall number %s is out of range (at most 0x7fffffff)" % args.syscall)
    flt = compile_policy(policy)   # (a CompileError refuses the profile: exit 1)
    try:
        decision = flt.decide(syscall, call_args, arch=args.arch)
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


def run_exit_status(result) -> int:
    """The `sandbox run` exit status for a Result (see RUN_EPILOG)."""
    if result.verdict == "SETUP_ERROR":
        err = (result.setup_error or {}).get("errno_name")
        stage = (result.setup_error or {}).get("stage")
        if stage == "execve" and err == "ENOENT":
            return 127
        if stage == "execve" and err in ("EACCES", "ENOEXEC", "EPERM", "EISDIR", "ETXTBSY"):
            return 126
        return 125
    if result.verdict == "TIME_LIMIT":
        return 124
    if result.verdict == "SECCOMP_KILLED":
        # the kernel's SIGSYS, or with denial reports the supervisor's SIGKILL in its place:
        # the same kill, the same status
        return 128 + signal.SIGSYS
    if result.signal is not None:
        return 128 + result.signal
    return result.exit_code if result.exit_code is not None else 125


def cmd_run(args) -> int:
    from .runner import INHERIT, PIPE, Sandbox, SetupRefused, cancel_all

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        print("sandbox run: no command given (sandbox run [OPTIONS] -- CMD ARG...)",
              file=sys.stderr)
        return 125
    if args.output_limit and not args.json:
        print("sandbox: warning: --output-limit applies to captured output (--json); without "
              "it the command writes to this terminal directly", file=sys.stderr)
    try:
        sb = Sandbox(builtin.source(args.profile) if args.profile != builtin.UNCONFINED else None,
                     caps=args.caps, kernel=args.kernel,
                     strict=args.strict, enosys_stub=not args.no_enosys_stub,
                     args_like_libseccomp=args.args_like_libseccomp,
                     cpu_time=args.time_limit, timeout=args.wall_limit,
                     memory=args.memory_limit, output_limit=args.output_limit,
                     file_size=args.file_size_limit, processes=args.processes,
                     stack=args.stack_limit,
                     open_files=args.open_files, env=args.env, inherit_env=args.inherit_env,
                     cwd=args.cwd, user=args.user,
                     pid_namespace=False if args.no_pid_namespace else None,
                     log_backend=args.log_backend, report_denials=args.report_denials,
                     log_records=args.log_records,
                     fs_ro=args.fs_ro, fs_rw=args.fs_rw, fs_unrestricted=args.fs_unrestricted,
                     allow_no_landlock=args.allow_no_landlock)
    except (ValueError, SetupRefused) as e:  # ProfileError is a ValueError
        print("sandbox: %s" % e, file=sys.stderr)
        return 125
    if not args.json:
        _print_warnings(sb.profile_warnings)
    try:
        stdin = _open_stdin(args.stdin)
    except OSError as e:
        print("sandbox: --stdin %s: %s" % (args.stdin, e.strerror), file=sys.stderr)
        return 125
    stopped = []
    try:
        out = PIPE if args.json else INHERIT
        # with --json a stop still prints the Result: the run is cancelled (killed with its
        # tree) and ends as any other; before it is running, the stop is raised as without
        def cancel(signum, frame):
            stopped.append(signum)
            if not cancel_all():
                raise SystemExit(128 + signum)
        with (stopsignals.handled(cancel, signal.SIGINT) if args.json
              else contextlib.nullcontext()):
            result = sb.run(cmd, stdin=stdin, stdout=out, stderr=out)
    finally:
        _close_stdin(stdin)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        if stopped:
            return 128 + stopped[0]
    elif result.verdict not in ("OK", "NONZERO_EXIT"):
        print("sandbox: %s" % result.describe(), file=sys.stderr)
    if not args.quiet_log:
        from .syscall_report import summary_lines
        for line in summary_lines(result.seccomp_log):
            print("sandbox: " + line, file=sys.stderr)
    note = _landlock_note(result)
    if note:
        print("sandbox: " + note, file=sys.stderr)
    return run_exit_status(result)


def _landlock_note(result) -> Optional[str]:
    """For a run that failed under Landlock: where its EACCES may come from. The filter's
    report cannot say: Landlock refuses in the kernel, no syscall is denied."""
    ll = result.landlock
    if not ll or not ll.get("available") or result.verdict not in ("NONZERO_EXIT", "SIGNALED"):
        return None
    if result.stderr is not None and b"Permission denied" not in result.stderr:
        return None   # (captured: it failed for some other reason)
    return ("the filesystem was restricted by Landlock (a 'Permission denied' outside these "
            "comes from it): read-only %s; read-write %s; --fs-ro/--fs-rw PATH allow more"
            % (", ".join(ll.get("ro") or []) or "nothing",
               ", ".join(ll.get("rw") or []) or "nothing"))


def _open_stdin(spec: Optional[str]):
    """What the command's stdin is for --stdin: the file it names, opened (close it with
    _close_stdin); INHERIT for "-" (the stdin we were given); None (/dev/null) without."""
    from .runner import INHERIT
    if spec == "-":
        return INHERIT
    return open(spec, "rb") if spec else None


def _close_stdin(stdin) -> None:
    if hasattr(stdin, "close"):
        stdin.close()


def cmd_learn(args) -> int:
    from .learn import learn, load_learned
    from .limits import parse_seconds
    from .runner import INHERIT

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        print("sandbox learn: no command given (sandbox learn [OPTIONS] -- CMD ARG...)",
              file=sys.stderr)
        return 125
    problem = _output_problem(args.output) if args.output else None
    if problem:
        print("sandbox learn: -o %s" % problem, file=sys.stderr)
        return 125
    try:
        merge = load_learned(args.merge) if args.merge else None
        base = builtin.source(args.profile) if args.profile else None
        stdin = _open_stdin(args.stdin)
    except (OSError, ValueError) as e:
        print("sandbox learn: %s" % e, file=sys.stderr)
        return 125
    try:
        result, learned = learn(cmd, base, merge=merge, stdin=stdin, stdout=INHERIT,
                                stderr=INHERIT, timeout=parse_seconds(args.wall_limit),
                                env=args.env, inherit_env=args.inherit_env, cwd=args.cwd)
    finally:
        _close_stdin(stdin)
    if result.verdict == "SETUP_ERROR":
        print("sandbox learn: %s" % result.describe(), file=sys.stderr)
        return 125
    text = json.dumps(learned, indent=2) + "\n"
    if args.output:
        try:
            with open(args.output, "w") as f:
                f.write(text)
        except OSError as e:   # (checked before the run, but it may have changed since)
            sys.stdout.write(text)
            print("sandbox learn: -o %s: %s; the profile was written to stdout instead"
                  % (args.output, e.strerror), file=sys.stderr)
            return 125
    else:
        sys.stdout.write(text)
    if not args.quiet:
        rules = learned["syscalls"]
        plain = sum(len(r["names"]) for r in rules if not r.get("args"))
        print("sandbox learn: %s; %d syscalls allowed, %d argument rules%s" % (
            result.describe(), plain, sum(1 for r in rules if r.get("args")),
            " -> %s" % args.output if args.output else ""), file=sys.stderr)
    return run_exit_status(result)


def cmd_profiles(args) -> int:
    for name in builtin.names():
        print("%-12s %s" % (name, builtin.summary(name)))
    return EXIT_OK


def threading_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _terminate(signum, frame):
    # SIGTERM (or SIGHUP) ends the command too: raised inside the supervisor's wait, which then
    # kills the run's whole tree before the exception leaves
    raise SystemExit(128 + signum)


def _open_standard_fds() -> None:
    """Put /dev/null where stdin, stdout or stderr is closed, as sudo and ssh do: else the
    first descriptor the sandbox opens takes that number and reaches the command as its
    stdout (a pipe, a cgroup file, or another stream's file)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            got = os.open(os.devnull, os.O_RDWR)   # (the lowest free number: this one)
            if got != fd:
                os.close(got)


def _show_library_warnings() -> logging.Handler:
    """What the library logs as a warning on logger "sandbox" (e.g. runs that get no PID
    namespace, so a setsid daemon can escape) reaches the user on stderr; the calls a filter
    denied (logger "sandbox.seccomp") have their own summary."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("sandbox: warning: %(message)s"))
    handler.addFilter(lambda record: not record.name.startswith("sandbox.seccomp"))
    logging.getLogger("sandbox").addHandler(handler)
    return handler


def main(argv=None) -> int:
    _open_standard_fds()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # (said by the command's parser: its usage, its exit status)
        parser.commands.get(args.command, parser).error(
            "unrecognized arguments: %s" % " ".join(unknown))
    if threading_main():
        for sig in stopsignals.stopping():
            signal.signal(sig, _terminate)
    warnings = _show_library_warnings()
    try:
        return args.func(args)
    except (profile.ProfileError, _core.CompileError) as e:
        # (a filter the kernel would not take, e.g. over 4096 instructions: refused too)
        print("sandbox: %s" % e, file=sys.stderr)
        return EXIT_PROFILE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print("sandbox: interrupted; the command and everything it started were killed",
              file=sys.stderr)
        return 130
    finally:
        logging.getLogger("sandbox").removeHandler(warnings)   # (main may be called again)


if __name__ == "__main__":
    sys.exit(main())

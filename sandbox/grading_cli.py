"""The `sandbox grade` command: a per-test table (or one JSON report) and an exit status."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

from . import batch, builtin, stopsignals
from .grading import DEFAULT_PROFILE, TESTS_TOML, GradeError, GradeReport, grade
from .limits import add_limit_options

EXIT_ALL_AC = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SANDBOX = 125
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Judge SOLUTION_CMD on every test of DIR: NAME.in / NAME.out pairs, in natural order. Each test
runs sandboxed (profile: --profile, default grader) with NAME.in on stdin, in an empty scratch
directory of its own; its stdout is compared with NAME.out by the checker. Tests run in
parallel.

  sandbox grade --tests DIR -- python3 sol.py     # the command: every word after --
  sandbox grade "python3 sol.py" --tests DIR      # or one word, split like a shell would

Relative paths in SOLUTION_CMD (the program when it has a /, and words naming existing files)
are made absolute against the current directory.

DIR/%s (optional) sets limits, points and the checker per test:

  [defaults]                 # every test
  time_limit = "1s"          # CPU; wall_limit = "3s" (default: 2 x time_limit + 1 s)
  memory_limit = "256M"      # output_limit = "64M"
  points = 1
  checker = "tokens"
  [test.big]                 # one test (or [[test]] tables with name = "big")
  time_limit = "2s"
  points = 5

A setting comes from [test.NAME], else [defaults], else the options below, else the built-in
defaults (1s CPU, 256M, 1 point, exact).""" % TESTS_TOML

EPILOG = """\
checkers (--checker, or checker = in tests.toml):
  exact       equal lines, ignoring trailing spaces/tabs/\\r on each line and empty lines at
              the end (the default)
  tokens      equal whitespace-separated tokens
  float:EPS   tokens; numbers within EPS absolutely or relatively (|a-b| <= EPS*max(1,|b|))
  CMD         a program, run sandboxed under the same profile as `CMD INPUT OUTPUT ANSWER`
              (files; testlib's order) in the current directory (tests.toml: in DIR):
              exit 0 = AC, 1 = WA, anything else = SE; its first line of stdout (else stderr)
              is shown

verdicts:
  AC  accepted        WA  wrong answer       TLE  time limit (CPU or wall)
  MLE memory limit    OLE output limit       RE   non-zero exit or killed by a signal
  SV  security violation: killed by the seccomp filter, or failed after it refused a
      call (an ENOSYS answer, "no such syscall", does not count)
  SE  sandbox error: the run could not be set up, or the checker failed

The score is the sum of the points of AC tests. --json prints one report: solution, score,
max_score, passed, verdicts (counts), and per test: name, verdict, points, max_points,
message, cpu_time, wall_time, memory (bytes), limits, checker, result (the `sandbox run
--json` Result without stdout), checker_result.

exit status:
  0    every test AC
  1    some test was not AC
  2    bad command line
  125  grading failed: bad DIR, tests.toml, checker or profile, or a test ended in SE
  130  interrupted (Ctrl-C); 143 for SIGTERM, 129 for SIGHUP
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("grade", help="judge a solution on a directory of tests "
                                            "(NAME.in/NAME.out): verdicts, time, memory, score",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    p.set_defaults(func=cmd_grade)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("solution", nargs="*", metavar="SOLUTION_CMD",
                   help="the solution's command (after --, or one shell-quoted word)")
    p.add_argument("--tests", metavar="DIR", default="tests",
                   help="the tests directory (default: ./tests)")
    p.add_argument("--checker", metavar="CHECKER", default="exact",
                   help="exact (default), tokens, float:EPS, or a checker command")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help="profile of the solution and the checker: built-in name or path "
                        "(default: %s)" % DEFAULT_PROFILE)
    p.add_argument("-j", "--jobs", dest="parallel", metavar="N", type=batch._positive_int,
                   default=None, help="tests run at once (default: the number of CPUs, %d)"
                                      % (os.cpu_count() or 1))
    add_limit_options(
        p.add_argument_group("limits (defaults for tests that tests.toml does not configure)"),
        time="CPU seconds (default: 1)", wall="wall seconds (default: 2 x CPU + 1)",
        memory="e.g. 256M (the default; at least 1M)", output="stdout bytes (default: 64M)")
    p.add_argument("--user", metavar="USER[:GROUP]",
                   help="run the solution as this user (needs root)")
    p.add_argument("--json", action="store_true", help="print one JSON report, no table")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")


def _solution_argv(words):
    """The command: the words given, or one shell-quoted word split (unless it names a file)."""
    if len(words) == 1 and not os.path.exists(words[0]) and any(c.isspace() for c in words[0]):
        return shlex.split(words[0])
    return list(words)


def _fmt_time(seconds) -> str:
    return "%.2fs" % seconds if seconds is not None else "-"


def _fmt_memory(n) -> str:
    return "%.1fM" % (n / 1048576) if n is not None else "-"


def _fmt_points(x) -> str:
    return "%g" % x


def print_table(report: GradeReport, stream) -> None:
    rows = [("TEST", "VERDICT", "CPU", "WALL", "MEMORY", "POINTS", "")]
    for t in report.tests:
        rows.append((t.name, t.verdict + ("*" if t.interrupted else ""), _fmt_time(t.cpu_time),
                     _fmt_time(t.wall_time), _fmt_memory(t.memory),
                     "%s/%s" % (_fmt_points(t.points), _fmt_points(t.max_points)), t.message))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + \
            [r[i].rjust(widths[i]) for i in range(2, 6)] + [r[6]]
        stream.write("  ".join(cells).rstrip() + "\n")
    counts = ", ".join("%d %s" % (n, v) for v, n in report.counts.items())
    stream.write("score %s/%s  (%s) in %.2fs\n" % (
        _fmt_points(report.score), _fmt_points(report.max_score), counts, report.elapsed))


def exit_status(report: GradeReport) -> int:
    if any(t.verdict == "SE" for t in report.tests):
        return EXIT_SANDBOX
    return EXIT_ALL_AC if report.passed else EXIT_FAILED


def _check_profile(spec: str) -> str:
    if spec == builtin.UNCONFINED or builtin.path(spec) is not None:
        return spec
    if os.path.isfile(spec):
        return os.path.abspath(spec)
    raise GradeError("--profile %s: no such file or built-in profile (built-ins: %s)"
                     % (spec, ", ".join(builtin.names())))


def cmd_grade(args) -> int:
    err = sys.stderr
    cmd = _solution_argv(args.solution)
    if not cmd:
        print("sandbox grade: no solution command given "
              "(sandbox grade --tests DIR -- CMD ARG...)", file=err)
        return EXIT_USAGE
    progress = batch._Progress(err, enabled=not args.quiet and not args.json and err.isatty())
    with stopsignals.as_interrupt() as stopped:   # (as Ctrl-C: running tests are killed)
        start = time.monotonic()
        try:
            report = grade(cmd, args.tests, checker=args.checker,
                           profile=_check_profile(args.profile), jobs=args.parallel,
                           time_limit=args.time_limit, wall_limit=args.wall_limit,
                           memory_limit=args.memory_limit,
                           output_limit=args.output_limit, user=args.user, on_progress=progress)
            interrupted = None
        except GradeError as e:
            print("sandbox grade: %s" % e, file=err)
            return EXIT_SANDBOX
        except batch.BatchInterrupted as e:
            from .grading import _as_test_result
            interrupted = len(e.not_run)
            report = GradeReport(solution=cmd, tests_dir=os.path.abspath(args.tests),
                                 profile=args.profile,
                                 tests=[_as_test_result(jr) for jr in e.results],
                                 elapsed=time.monotonic() - start)
        finally:
            progress.clear()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_table(report, sys.stdout)
    if args.junit:
        from .junit import write_junit
        try:
            write_junit(args.junit, report.tests, suite_name=os.path.basename(
                os.path.abspath(args.tests)), elapsed=report.elapsed, classname="sandbox.grade",
                properties={"solution": shlex.join(report.solution), "profile": report.profile,
                            "score": "%s/%s" % (_fmt_points(report.score),
                                                _fmt_points(report.max_score))})
        except OSError as e:
            print("sandbox grade: --junit %s: %s" % (args.junit, e.strerror or e), file=err)
            return EXIT_SANDBOX
    if interrupted is not None:
        killed = sum(1 for t in report.tests if t.interrupted)
        what, status = stopsignals.ending(stopped, EXIT_INTERRUPTED)
        print("sandbox grade: %s: %d finished, %d killed, %d not run" % (
            what, len(report.tests) - killed, killed, interrupted), file=err)
        return status
    return exit_status(report)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sandbox grade", description=DESCRIPTION,
                                     epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    return cmd_grade(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""`sandbox grade` and sandbox.grade(): judge a solution on a directory of tests.

Tests directory: NAME.in / NAME.out pairs, run in natural order (2 before 10), and optionally
a tests.toml::

    [defaults]                  # every test
    time_limit = "1s"           # CPU seconds; wall_limit (default: 2 x time_limit + 1 s)
    memory_limit = "256M"       # and output_limit (default 64M)
    points = 1
    checker = "tokens"          # exact, tokens, float:EPS, or a command (string or list)

    [test.big]                  # one test by NAME (or [[test]] tables with name = "big")
    time_limit = "2s"
    points = 5

Each setting comes from [test.NAME], else [defaults], else the caller's arguments, else the
built-in defaults (1 s CPU, 256 MiB, 1 point, the exact checker). Relative paths in a checker
command are relative to the tests directory (from tests.toml) or the current directory.

Every test runs the solution under the profile (default: grader) with NAME.in on stdin, in an
empty scratch directory of its own, and never with the path of NAME.out. Verdicts:

    AC   ran to exit 0 and the checker accepted the output
    WA   ran to exit 0 and the checker rejected it
    TLE  CPU or wall time limit        MLE  memory limit       OLE  output limit
    RE   exited non-zero, or was killed by a signal
    SV   security violation: the seccomp filter killed it, or it failed after a denied call
         (see security_violation(); the syscall is named)
    SE   sandbox error: the run could not be set up, or the checker failed

The score is the sum of the points of the AC tests. Tests run in parallel through
sandbox.batch.run_batch (the same executor machinery, Ctrl-C handling and profile cache).
"""
from __future__ import annotations

import collections
import dataclasses
import errno as _errno
import functools
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from typing import Callable, Dict, List, Optional, Sequence

from . import batch, checkers
from .batch import Job, JobResult
from .checkers import Checker, CheckerSpecError
from .landlock import SYSTEM
from .limits import parse_memory, parse_output, parse_seconds, parse_size
from .result import Result

__all__ = ["grade", "GradeReport", "TestResult", "Test", "GradeError", "load_tests",
           "security_violation", "run_test", "VERDICTS"]

VERDICTS = ("AC", "WA", "TLE", "MLE", "OLE", "RE", "SV", "SE")
SETTINGS = ("time_limit", "wall_limit", "memory_limit", "output_limit", "points", "checker")
DEFAULT_TIME_LIMIT = 1.0
DEFAULT_MEMORY_LIMIT = 256 << 20
DEFAULT_PROFILE = "grader"
TESTS_TOML = "tests.toml"
# a checker is the problem setter's program, but it still runs confined and bounded
CHECKER_LIMITS = {"cpu_time": 10.0, "memory": 1 << 30, "output_limit": 1 << 20}
STDERR_TAIL = 4096          # bytes of a run's stderr kept in the JSON report

_RUN_VERDICTS = {"TIME_LIMIT": "TLE", "MEMORY_LIMIT": "MLE", "OUTPUT_LIMIT": "OLE",
                 "NONZERO_EXIT": "RE", "SIGNALED": "RE", "SECCOMP_KILLED": "SV",
                 "SETUP_ERROR": "SE"}


class GradeError(ValueError):
    """The grading cannot start: a bad tests directory, tests.toml, checker or profile."""


@dataclasses.dataclass(frozen=True, eq=False)
class Test(Job):
    """One test: a batch Job (the solution command, limits; stdin_file = NAME.in, expect_file
    = NAME.out, the answer handed to the checker) plus its points and checker."""
    __test__ = False    # not a pytest class
    points: float = 1
    checker: Checker = Checker("exact")


@dataclasses.dataclass(eq=False)
class TestResult(JobResult):
    """A JobResult (job: the Test, result: the solution's Result) with the grading verdict."""
    __test__ = False
    verdict: str = "SE"
    points: float = 0
    message: str = ""
    checker_result: Optional[Result] = None
    # the size of the solution's stdout, kept when the output itself is not (run_test)
    stdout_bytes: Optional[int] = None

    @property
    def max_points(self) -> float:
        return self.job.points

    @property
    def cpu_time(self) -> float:
        return self.result.cpu_time

    @property
    def wall_time(self) -> float:
        return self.result.wall_time

    @property
    def memory(self) -> Optional[int]:
        return self.result.peak_memory

    def to_json(self) -> dict:
        t, r = self.job, self.result
        return {
            "name": t.name, "verdict": self.verdict, "points": self.points,
            "max_points": t.points, "message": self.message, "cpu_time": r.cpu_time,
            "wall_time": r.wall_time, "memory": r.peak_memory, "memory_source": r.memory_source,
            "limits": {"time_limit": t.time_limit, "wall_limit": t.wall_limit,
                       "memory_limit": t.memory_limit, "output_limit": t.output_limit},
            "checker": str(t.checker), "interrupted": self.interrupted,
            "result": _run_json(r, self.stdout_bytes),
            "checker_result": _run_json(self.checker_result) if self.checker_result else None,
        }


def _run_json(r: Result, stdout_bytes: Optional[int] = None) -> dict:
    """A Result's JSON without the (possibly huge) stdout, and only the tail of stderr.
    stdout_bytes: the size of a stdout already dropped."""
    d = r.to_json()
    d.pop("stdout", None)
    d.pop("stdout_base64", None)
    d["stdout_bytes"] = len(r.stdout) if r.stdout is not None else stdout_bytes
    d.pop("stderr_base64", None)
    d["stderr"] = (r.stderr or b"")[-STDERR_TAIL:].decode("utf-8", "replace")
    return d


@dataclasses.dataclass
class GradeReport:
    solution: List[str]
    tests_dir: str
    profile: str
    tests: List[TestResult]
    elapsed: float = 0.0

    @property
    def score(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_points for t in self.tests)

    @property
    def passed(self) -> bool:
        """Every test AC."""
        return all(t.verdict == "AC" for t in self.tests)

    @property
    def counts(self) -> Dict[str, int]:
        c = collections.Counter(t.verdict for t in self.tests)
        return {v: c[v] for v in VERDICTS if c[v]}

    def to_json(self) -> dict:
        return {"solution": list(self.solution), "tests_dir": self.tests_dir,
                "profile": self.profile, "score": self.score, "max_score": self.max_score,
                "passed": self.passed, "verdicts": self.counts, "elapsed": self.elapsed,
                "tests": [t.to_json() for t in self.tests]}


# ============================================================================================
# the tests directory

def natural_key(name: str) -> list:
    """test2 before test10: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _discover(tests_dir: str) -> List[str]:
    try:
        entries = os.listdir(tests_dir)
    except FileNotFoundError:
        raise GradeError("%s: no such directory" % tests_dir) from None
    except NotADirectoryError:
        raise GradeError("%s: not a directory" % tests_dir) from None
    except OSError as e:
        raise GradeError("%s: %s" % (tests_dir, e.strerror or e)) from None
    files = {e for e in entries if os.path.isfile(os.path.join(tests_dir, e))}
    ins = {f[:-3] for f in files if f.endswith(".in")}
    outs = {f[:-4] for f in files if f.endswith(".out")}
    problems = ["%s.in has no %s.out" % (n, n) for n in sorted(ins - outs, key=natural_key)]
    problems += ["%s.out has no %s.in" % (n, n) for n in sorted(outs - ins, key=natural_key)]
    if problems:
        raise GradeError("%s: %s" % (tests_dir, "; ".join(problems)))
    if not ins:
        raise GradeError("%s: no tests (NAME.in / NAME.out pairs)" % tests_dir)
    return sorted(ins, key=natural_key)


def _setting(key: str, value, base: str):
    """A parsed setting, or raises ValueError with the message people see."""
    if key == "checker":
        try:
            return checkers.parse(value, base)
        except CheckerSpecError as e:
            raise ValueError(str(e)) from None
    if key == "points":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError("must be a non-negative number, got %s" % (
                value if isinstance(value, (int, float)) and not isinstance(value, bool)
                else batch._kind(value)))
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("must be a number or a string like %s, got %s" % (
            '"2s"' if key in ("time_limit", "wall_limit") else '"256M"', batch._kind(value)))
    if key in ("time_limit", "wall_limit"):
        return parse_seconds(value)
    if key == "memory_limit":
        return parse_memory(value)
    size = parse_size(value)
    if not size:
        raise ValueError("must be positive")
    return size


def _settings(entry, where: str, base: str, problems: List[str],
              allowed: Sequence[str] = SETTINGS) -> dict:
    if not isinstance(entry, dict):
        problems.append("%s: must be a table, got %s" % (where, batch._kind(entry)))
        return {}
    out = {}
    for key, value in entry.items():
        if key not in allowed:
            problems.append("%s: %s" % (where, batch._unknown_key(str(key), SETTINGS)))
            continue
        if key == "name":
            continue
        try:
            out[key] = _setting(key, value, base)
        except ValueError as e:
            problems.append("%s.%s: %s" % (where, key, e))
    return out


def _read_toml(tests_dir: str, names: Sequence[str]):
    """([defaults] settings, {name: settings}) from tests.toml, or raises GradeError naming
    every bad key and table."""
    path = os.path.join(tests_dir, TESTS_TOML)
    if not os.path.exists(path):
        return {}, {}
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        data = batch._load_toml(text)
    except batch.JobsFileError as e:
        raise GradeError("%s: %s" % (path, e)) from None
    except UnicodeDecodeError as e:
        raise GradeError("%s: not UTF-8 text (byte %d)" % (path, e.start)) from None
    except OSError as e:
        raise GradeError("%s: %s" % (path, e.strerror or e)) from None
    except ValueError as e:
        raise GradeError("%s: invalid TOML: %s" % (path, e)) from None
    problems: List[str] = []
    for key in data:
        if key in SETTINGS:
            problems.append('"%s" must be under [defaults] or a [test.NAME] table' % key)
        elif key not in ("defaults", "test"):
            problems.append(batch._unknown_key(str(key), ("defaults", "test"))
                            .replace("unknown key", "unknown top-level key"))
    defaults = _settings(data.get("defaults", {}), "defaults", tests_dir, problems)
    raw = data.get("test", {})
    entries = []     # (where, name, table)
    if isinstance(raw, dict):
        entries = [("test.%s" % name, name, table) for name, table in raw.items()]
    elif isinstance(raw, list):
        for i, table in enumerate(raw):
            name = table.get("name") if isinstance(table, dict) else None
            if not isinstance(name, str):
                problems.append('test[%d]: needs "name" = the NAME of NAME.in (a string)' % i)
            entries.append(("test[%d]" % i, name, table))
    else:
        problems.append('"test" must be [test.NAME] tables or [[test]] tables, got %s'
                        % batch._kind(raw))
    per_test, known = {}, set(names)
    for where, name, table in entries:
        settings = _settings(table, where, tests_dir, problems, SETTINGS + ("name",))
        if name is None:
            continue
        if name not in known:
            problems.append("%s: no test %s (no %s.in / %s.out in %s)"
                            % (where, name, name, name, tests_dir))
        elif name in per_test:
            problems.append("%s: test %s is configured twice" % (where, name))
        per_test[name] = settings
    if problems:
        raise GradeError("%s: %s" % (path, "\n  ".join([""] + problems)
                                     if len(problems) > 1 else problems[0]))
    return defaults, per_test


def absolute_words(argv: Sequence[str], base: str) -> List[str]:
    """For a command that runs in a scratch directory: its program (when given with a /) and
    any later word naming an existing file relative to base become absolute paths."""
    out = []
    for i, word in enumerate(argv):
        full = os.path.join(base, word)
        if not os.path.isabs(word) and not word.startswith("-") and (
                "/" in word if i == 0 else os.path.exists(full)):
            word = os.path.normpath(full)
        out.append(word)
    return out


# interpreters whose first argument that is not an option is the program they run
_INTERPRETERS = re.compile(r"^(python[0-9.]*|pypy[0-9.]*|sh|bash|dash|zsh|node|ruby|perl|"
                           r"php|lua[0-9.]*|Rscript|julia)$")
# python's options without a value (-u, -B, -OO, -uB, ...), and those taking the next word
_PYTHON_FLAGS = re.compile(r"^-[bBdEiIOqsSuvx]+$")
_PYTHON_VALUED = ("-W", "-X")


def _missing_script(cmd: Sequence[str], base: str) -> Optional[str]:
    """Why the solution cannot run, when the script an interpreter is asked to run does not
    exist (a typo would give RE on every test, the reason only in each run's stderr), else
    None. (A missing program is an SE of every test, which names it.)"""
    name = os.path.basename(cmd[0])
    if not _INTERPRETERS.match(name):
        return None
    python = name.startswith(("python", "pypy"))
    words = iter(cmd[1:])
    for word in words:
        if word == "--":
            continue
        if python and _PYTHON_FLAGS.match(word):
            continue
        if python and word in _PYTHON_VALUED:
            next(words, None)
            continue
        if word.startswith("-"):
            return None   # -c CODE, -m MODULE, options of other interpreters: not a script
        if os.path.exists(os.path.join(base, word)):
            return None
        return "the solution's script %s does not exist (in %s)" % (word, base)
    return None


def load_tests(tests_dir, solution_cmd: Sequence[str], *, checker="exact", time_limit=None,
               wall_limit=None, memory_limit=None, output_limit=None, env=None,
               base_dir: Optional[str] = None) -> List[Test]:
    """The Tests of a tests directory, in natural order, with their settings resolved (see the
    module docstring). Raises GradeError for anything wrong, naming the file, table and key."""
    tests_dir = os.path.abspath(os.fspath(tests_dir))
    base = os.path.abspath(base_dir or os.getcwd())
    if isinstance(solution_cmd, str):
        solution_cmd = shlex.split(solution_cmd)
    cmd = absolute_words([os.fspath(w) for w in solution_cmd], base)
    if not cmd:
        raise GradeError("no solution command given")
    missing = _missing_script(cmd, base)
    if missing is not None:
        raise GradeError(missing)
    names = _discover(tests_dir)
    try:
        fallback = {"time_limit": parse_seconds(time_limit) or DEFAULT_TIME_LIMIT,
                    "wall_limit": parse_seconds(wall_limit),
                    "memory_limit": parse_memory(memory_limit) or DEFAULT_MEMORY_LIMIT,
                    "output_limit": parse_output(output_limit), "points": 1,
                    "checker": checkers.parse(checker, base)}
    except ValueError as e:
        raise GradeError(str(e)) from None
    defaults, per_test = _read_toml(tests_dir, names)
    tests = []
    for index, name in enumerate(names):
        s = {**fallback, **defaults, **per_test.get(name, {})}
        tests.append(Test(
            name=name, cmd=tuple(cmd), index=index, where="test.%s" % name,
            env=dict(env or {}), stdin_file=os.path.join(tests_dir, name + ".in"),
            expect_file=os.path.join(tests_dir, name + ".out"), **s))
    return tests


# ============================================================================================
# running one test

def security_violation(result: Result) -> Optional[str]:
    """The SV message when a run counts as a security violation, else None: the filter killed
    it, or it failed after the filter refused it a call. An ENOSYS answer is no refusal: it
    tells a program that a syscall does not exist, which the grader profile answers to
    everything it does not list, and C libraries and runtimes fall back from it (glibc's
    threads try clone3 first, every time). Solutions run with denial reports on
    (SANDBOX_OPTIONS), so the message names the syscall and its first arguments."""
    from .syscall_report import action_text, call_text

    if result.verdict == "SECCOMP_KILLED":
        if result.killed_by:
            return "killed by the seccomp filter at %s" % call_text(result.killed_by)
        return "killed by the seccomp filter (SIGSYS); the syscall is not reported"
    refused = [d for d in result.denials or ()
               if not (d["action"] == "ERRNO" and d.get("errno") == _errno.ENOSYS)]
    if result.verdict in ("NONZERO_EXIT", "SIGNALED") and refused:
        first = min(refused, key=lambda d: d["first"]["time"])
        more = len(refused) - 1
        return "failed after the seccomp filter denied %s: %s x%d%s" % (
            call_text(first["first"]), action_text(first), first["count"],
            " (and %d more syscall%s)" % (more, "" if more == 1 else "s") if more else "")
    return None


# Sandbox keywords of every solution run: denied and killed calls are reported (and answered
# exactly as the filter would), so an SV names the syscall
SANDBOX_OPTIONS = (("report_denials", True),)


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def program_paths(argv: Sequence[str], forbidden: Optional[str] = None) -> List[str]:
    """What a command must read beyond the system directories: its program (for a program
    installed elsewhere, e.g. a pyenv or conda python, the prefix it was installed into, where
    its libraries are) and the files its arguments name -- never anything in `forbidden` (the
    tests directory, which holds the expected outputs)."""
    from .landlock import SYSTEM_RO
    from .runner import DEFAULT_PATH, _which

    if forbidden is not None:
        forbidden = os.path.realpath(forbidden)
    paths = []
    exe = _which(argv[0], DEFAULT_PATH, None) if argv else None
    if exe and os.path.exists(exe):   # (a missing one is the run's own SE, which names it)
        real = os.path.realpath(exe)
        if not any(_inside(real, d) for d in SYSTEM_RO):
            paths += [exe, real]
            bindir = os.path.dirname(real)
            if os.path.basename(bindir) == "bin":
                paths.append(os.path.dirname(bindir))
    paths += [a for a in argv[1:] if os.path.isabs(a) and os.path.exists(a)]
    return [p for p in dict.fromkeys(paths) if forbidden is None or (
        not _inside(os.path.realpath(p), forbidden) and not _inside(forbidden, p))]


def run_keywords(test: Test, *, cwd: str, writable: Sequence[str] = (),
                 readable: Sequence[str] = (), for_checker: bool = False,
                 argv: Sequence[str] = ()) -> dict:
    """Sandbox.run keywords of every run grading makes: the one place that decides what a run
    may touch and use. The solution gets its input on stdin (never a path into the tests
    directory); under Landlock it may read the system directories and its own program files
    (program_paths) and write only `writable` = its empty scratch directory, its cwd. A checker
    may read the input, output and answer files it is handed, its program and its directory."""
    tests_dir = os.path.dirname(os.path.abspath(test.expect_file))
    if for_checker:
        ro = [SYSTEM, cwd] + list(readable) + program_paths(argv, tests_dir)
        return dict(cwd=cwd, fs_ro=list(dict.fromkeys(ro)), fs_rw=[], **CHECKER_LIMITS)
    return dict(cwd=cwd, env=test.env or None, cpu_time=test.time_limit,
                timeout=test.wall_limit, memory=test.memory_limit,
                output_limit=test.output_limit,
                fs_ro=[SYSTEM] + program_paths(argv, tests_dir), fs_rw=list(writable))


class _Scratch:
    """A private directory per test: work/ is the solution's cwd (owned by its user), and the
    checker's copy of the output is written beside it, where the solution cannot plant it."""

    def __init__(self, user=None):
        self.top = tempfile.mkdtemp(prefix="sandbox-grade-")
        self.work = os.path.join(self.top, "work")
        os.mkdir(self.work, 0o700)
        if user is not None:
            from .runner import _resolve_user
            try:
                uid, gid = _resolve_user(user)[:2]
                os.chown(self.work, uid, gid)
            except BaseException:
                self.remove()
                raise
            os.chmod(self.top, 0o711)   # it may pass through to work/, not list or write here

    def write_output(self, data: bytes) -> str:
        path = os.path.join(self.top, "output")
        # O_EXCL|O_NOFOLLOW: a root solution could have planted a link here
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.top, ignore_errors=True)


def _last_line(data: Optional[bytes]) -> str:
    for line in reversed((data or b"")[-STDERR_TAIL:].decode("utf-8", "replace").splitlines()):
        if line.strip():
            return line.strip()[:200]
    return ""


def _run_message(verdict: str, r: Result) -> str:
    if verdict == "SV":
        return security_violation(r) or batch.verdict_reason(r)
    if r.verdict == "NONZERO_EXIT":
        why = "exit status %d" % r.exit_code
    else:
        why = batch.verdict_reason(r).split(": ", 1)[-1]
    if verdict == "RE" and _last_line(r.stderr):
        why += ": " + _last_line(r.stderr)
        if r.landlock and r.landlock.get("available") and b"Permission denied" in (
                r.stderr or b"")[-STDERR_TAIL:]:
            # Landlock refuses in the kernel: nothing in the seccomp report says so
            why += " (files: the solution may read the system directories and its own " \
                   "program, and write only its scratch directory)"
    return why


def _check(test: Test, result: Result, scratch: _Scratch, profile: str, batch_key):
    """(verdict, message, checker Result or None) of a run that exited 0."""
    output = result.stdout or b""
    checker = test.checker
    if checker.kind != "command":
        with open(test.stdin_file, "rb") as f_in, open(test.expect_file, "rb") as f_ans:
            input_data = f_in.read() if checker.kind == "callable" else b""
            ok, message = checkers.compare(checker, input_data, output, f_ans.read())
        return ("AC" if ok else "WA"), message, None
    out_path = scratch.write_output(output)
    files = (test.stdin_file, out_path, test.expect_file)
    sb = batch._sandbox_for(profile, batch_key)
    r = sb.run(list(checker.argv) + list(files),
               **run_keywords(test, cwd=checker.cwd, readable=files, for_checker=True,
                              argv=checker.argv))
    verdict, message = checkers.command_verdict(r)
    return verdict, message, r


def run_test(test: Test, default_profile: str = DEFAULT_PROFILE, batch_key=None,
             user=None, zygote=False, keep_output: bool = False) -> TestResult:
    """Run and judge one test: the picklable work item handed to run_batch's executor.

    Unless keep_output, the TestResult keeps of the solution's output only what the reports
    show (_keep_shown): a solution printing up to its output limit on every test would
    otherwise make the grader hold tests x limit bytes until the end."""
    profile = test.profile or default_profile
    result = checked = scratch = None
    try:
        scratch = _Scratch(user)
        sb = batch._sandbox_for(profile, batch_key, user, SANDBOX_OPTIONS)
        with open(test.stdin_file, "rb") as f:
            stdin = f.read()
        # zygote: unused, a solution's own Landlock rules need a direct start anyway
        result = sb.run(list(test.cmd), stdin=stdin,
                        **run_keywords(test, cwd=scratch.work, writable=(scratch.work,),
                                       argv=test.cmd))
        verdict = "SV" if security_violation(result) else _RUN_VERDICTS.get(result.verdict)
        if verdict is None:
            verdict, message, checked = _check(test, result, scratch, profile, batch_key)
        else:
            message = _run_message(verdict, result)
    except Exception as e:  # a profile that does not compile, an unreadable file, ...
        verdict, message = "SE", "%s: %s" % (type(e).__name__, e)
        if result is None:
            result = batch._error_result(test, profile, "grade", message)
        else:  # the solution ran (its Result stays); judging its output failed
            message = "checker failed: " + message
    finally:
        if scratch is not None:
            scratch.remove()
    passed = verdict == "AC"
    tr = TestResult(job=test, result=result, passed=passed,
                    failures=[] if passed else ["%s: %s" % (verdict, message)],
                    verdict=verdict, points=test.points if passed else 0, message=message,
                    checker_result=checked)
    if not keep_output:
        _keep_shown(tr)
    return tr


def _keep_shown(tr: TestResult) -> None:
    """Drop the solution's output once judged, keeping what the reports show: its stdout's
    size (JSON), the tail of its stderr (JSON, and RE messages), the head and tail of both
    (JUnit's system-out and failure body)."""
    from . import junit
    r = tr.result
    tr.stdout_bytes = len(r.stdout) if r.stdout is not None else None
    tail = r.stderr[-STDERR_TAIL:] if r.stderr is not None else None
    junit.slim(tr)
    r.stderr = tail


def _as_test_result(jr: JobResult) -> TestResult:
    """run_batch's own JobResult for a test whose work item never returned (the executor
    failed), as an SE; an interrupted test keeps its verdict and is marked interrupted."""
    if isinstance(jr, TestResult):
        if jr.interrupted:
            jr.points, jr.message = 0, "interrupted: killed by Ctrl-C or SIGTERM"
        return jr
    message = "; ".join(jr.failures) or "the test did not run"
    return TestResult(job=jr.job, result=jr.result, passed=False, failures=[message],
                      verdict="SE", message=message)


# ============================================================================================
# the API

def grade(solution_cmd, tests_dir, *, checker="exact", profile: str = DEFAULT_PROFILE,
          jobs: Optional[int] = None, time_limit=None, wall_limit=None, memory_limit=None,
          output_limit=None, env=None, user=None, executor=None,
          on_result: Optional[Callable[[TestResult], None]] = None,
          on_progress: Optional[Callable[[int, int, int], None]] = None,
          keep_output: bool = False) -> GradeReport:
    """Judge solution_cmd (a list of words, or a string split like a shell) on every test of
    tests_dir and return the GradeReport. Limits and checker are the defaults for tests that
    tests.toml does not configure (see the module docstring); relative paths in the command
    and checker are relative to the current directory. jobs: tests run at once (default: the
    number of CPUs); executor, on_result, on_progress, user: as for batch.run_batch (user:
    the solution's; a command checker runs as this process's user, under the same profile).
    keep_output: keep each solution run's whole stdout and stderr in its TestResult.result.
    By default, once a test is judged, it keeps only what the reports show: the stdout's size
    (TestResult.stdout_bytes), the stderr's last 4 KiB, and the head and tail of both that a
    JUnit report shows, so that the grader's memory does not grow with tests x output.

    Raises GradeError when grading cannot start (tests directory, tests.toml, checker,
    profile); batch.BatchInterrupted (a KeyboardInterrupt, with .results) on Ctrl-C."""
    tests = load_tests(tests_dir, solution_cmd, checker=checker, time_limit=time_limit,
                       wall_limit=wall_limit, memory_limit=memory_limit,
                       output_limit=output_limit, env=env)
    batch_key = uuid.uuid4().hex
    try:  # compile once, here, so that a bad profile is one error instead of n SEs
        batch._sandbox_for(profile, batch_key, user, SANDBOX_OPTIONS)
    except Exception as e:  # ProfileError; SetupRefused for a user that does not exist
        what = "user %s" % user if type(e).__name__ == "SetupRefused" else "profile %s" % profile
        raise GradeError("%s: %s" % (what, e)) from None
    start = time.monotonic()
    results = batch.run_batch(
        tests, jobs_parallel=jobs, executor=executor, default_profile=profile, user=user,
        on_result=(lambda jr: on_result(_as_test_result(jr))) if on_result else None,
        on_progress=on_progress,
        work=functools.partial(run_test, keep_output=True) if keep_output else run_test,
        batch_key=batch_key,
        # a solution's own Landlock rules need a direct start: no zygotes to take slots
        zygote=False,
        grace=0)  # on Ctrl-C a test's verdict no longer matters: kill at once
    return GradeReport(solution=list(tests[0].cmd), tests_dir=os.path.abspath(tests_dir),
                       profile=profile, tests=[_as_test_result(jr) for jr in results],
                       elapsed=time.monotonic() - start)


def main(argv=None) -> int:
    """`python -m sandbox.grading ...`, the same as `sandbox grade`."""
    from .grading_cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())

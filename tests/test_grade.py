"""`sandbox grade` and sandbox.grade(): the checkers (unit and end to end), every verdict, the
tests directory and tests.toml (settings, precedence, exact error messages), command checkers
run sandboxed, the CLI's table, JSON, JUnit and exit statuses, and the example problem.

No assertion is about how long anything took: time-limit tests burn CPU until they are
stopped, and limits are compared only with each other.
"""
import datetime
import errno
import json
import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET

import pytest

import sandbox
from sandbox import checkers
from sandbox.checkers import Checker, CheckerSpecError
from sandbox.grading import GradeError, load_tests, natural_key, security_violation
from sandbox.grading_cli import _solution_argv
from sandbox.result import Result

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "probes" / "runner"))
import runner_support as S  # noqa: E402
from waiting import wait_for  # noqa: E402

EXAMPLE = REPO / "examples" / "grading"
PY = sys.executable if os.access(sys.executable, os.X_OK) else "python3"

try:
    import sandbox._core  # noqa: F401
    HAVE_CORE = True
except ImportError:
    HAVE_CORE = False
needs_core = pytest.mark.skipif(not HAVE_CORE, reason="the C core (sandbox._core) is not built")


# ------------------------------------------------------------------------------------ helpers

def make_tests(root: pathlib.Path, pairs: dict, toml: str = None) -> pathlib.Path:
    """A tests directory: {name: (input, answer)} and an optional tests.toml."""
    d = root / "tests"
    d.mkdir(exist_ok=True)
    for name, (inp, ans) in pairs.items():
        (d / (name + ".in")).write_text(inp)
        (d / (name + ".out")).write_text(ans)
    if toml is not None:
        (d / "tests.toml").write_text(textwrap.dedent(toml))
    return d


def program(root: pathlib.Path, name: str, source: str) -> list:
    path = root / name
    path.write_text(textwrap.dedent(source))
    return ["python3", str(path)]


SUM = "a, b = map(int, input().split())\nprint(a + b)\n"
PAIRS = {"1": ("3 4\n", "7\n"), "2": ("10 -3\n", "7\n"), "10": ("1 1\n", "2\n")}


def verdicts(report) -> dict:
    return {t.name: t.verdict for t in report.tests}


def cli_argv(*args) -> list:
    return [sys.executable, "-m", "sandbox", "grade"] + [str(a) for a in args]


def cli(*args, cwd=REPO):
    return subprocess.run(cli_argv(*args), capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300)


# ------------------------------------------------------------------------------ checkers: unit

@pytest.mark.parametrize("output, ok", [
    (b"7\n", True), (b"7", True), (b"7 \t\r\n\n\n", True), (b"7\r\n", True),
    (b" 7\n", False), (b"7 8\n", False), (b"\n7\n", False), (b"", False), (b"7\n8\n", False),
])
def test_exact_ignores_only_line_end_spaces_and_final_empty_lines(output, ok):
    assert checkers.exact(output, b"7\n")[0] is ok


def test_exact_keeps_inner_empty_lines_and_says_where_it_differs():
    assert checkers.exact(b"a\n\nb\n", b"a\nb\n") == (False, 'line 2: got "", expected "b"')
    assert checkers.exact(b"a\n", b"a\nb\n") == (False, 'output ends at line 1; expected '
                                                        'line 2: "b"')
    assert checkers.exact(b"a\nb\n", b"a\n") == (False, 'extra output from line 2: "b"')


def test_tokens_ignore_all_spacing():
    assert checkers.tokens(b"1   2\n\n3\t", b"1 2 3\n") == (True, "")
    assert checkers.tokens(b"1 2 4", b"1 2 3") == (False, 'token 3: got "4", expected "3"')
    assert checkers.tokens(b"1 2", b"1 2 3") == (False, '2 tokens, expected 3; first '
                                                        'missing: "3"')
    assert checkers.tokens(b"1 2 3 x", b"1 2 3") == (False, '4 tokens, expected 3; first '
                                                            'extra: "x"')


@pytest.mark.parametrize("output, answer, ok", [
    (b"0.3333334", b"0.333333", True),          # absolute: within 1e-6
    (b"0.333335", b"0.333333", False),
    (b"1000000.5", b"1000000", True),            # relative: 0.5 <= 1e-6 * 1e6
    (b"1000002", b"1000000", False),
    (b"1e3 yes", b"1000.0000001 yes", True),     # number formats differ, words exact
    (b"1 YES", b"1 yes", False),
    (b"nan", b"1.0", False), (b"inf", b"1.0", False), (b"1_0", b"10", False),
    (b"0x10", b"16", False), (b"1 2", b"1", False),
])
def test_float_compares_numbers_within_eps_and_other_tokens_exactly(output, answer, ok):
    assert checkers.floats(output, answer, 1e-6)[0] is ok


def test_float_messages_name_the_token():
    assert checkers.floats(b"1 2.5", b"1 2", 1e-6)[1] == (
        'token 2: got "2.5", expected "2" (differs by 0.5, more than 1e-06)')
    assert checkers.floats(b"x", b"2", 1e-6)[1] == 'token 1: got "x", expected the number "2"'


def test_checker_specs():
    assert checkers.parse("exact") == Checker("exact")
    assert checkers.parse(" tokens ") == Checker("tokens")
    assert checkers.parse("float") == Checker("float", eps=1e-6)
    assert checkers.parse("float:0.01") == Checker("float", eps=0.01)
    assert str(checkers.parse("float:1e-9")) == "float:1e-09"
    cmd = checkers.parse("python3 check.py --strict", "/somewhere")
    assert (cmd.kind, cmd.argv, cmd.cwd) == ("command", ("python3", "check.py", "--strict"),
                                             "/somewhere")
    assert checkers.parse(["python3", "c.py"]).argv == ("python3", "c.py")
    f = checkers.parse(lambda i, o, a: True)
    assert f.kind == "callable"


@pytest.mark.parametrize("spec, message", [
    ("float:abc", 'checker "float:abc": EPS must be a non-negative number, as in float:1e-6'),
    ("float:-1", 'checker "float:-1": EPS must be a non-negative number, as in float:1e-6'),
    ("token", 'checker "token": neither a built-in checker (exact, tokens, float:EPS) nor a '
              'program that exists (did you mean "tokens"?)'),
    ("no-such-checker-x", 'checker "no-such-checker-x": neither a built-in checker (exact, '
                          'tokens, float:EPS) nor a program that exists on PATH'),
    ("./missing.py", 'checker "./missing.py": neither a built-in checker (exact, tokens, '
                     'float:EPS) nor a program that exists (relative to /nowhere)'),
    ("", "checker: empty command"),
    (3, "a checker must be a name (exact, tokens, float:EPS), a command (a string or a list "
        "of strings) or a callable, got int"),
])
def test_bad_checker_specs_are_refused_with_the_reason(spec, message):
    with pytest.raises(CheckerSpecError) as e:
        checkers.parse(spec, "/nowhere")
    assert str(e.value) == message


def _result(verdict, exit_code=None, stdout=b"", stderr=b"", **kw):
    return Result(argv=["c"], verdict=verdict, exit_code=exit_code, stdout=stdout,
                  stderr=stderr, **kw)


def test_command_checker_protocol():
    assert checkers.command_verdict(_result("OK", 0, b"ok 3 numbers\n")) == ("AC", "ok 3 numbers")
    assert checkers.command_verdict(_result("NONZERO_EXIT", 1, b"", b"\nwrong: 5 != 6\n")) == \
        ("WA", "wrong: 5 != 6")
    assert checkers.command_verdict(_result("NONZERO_EXIT", 2, b"usage: ...")) == \
        ("SE", "checker failed (exit status 2): usage: ...")
    assert checkers.command_verdict(_result("TIME_LIMIT", time_limit_kind="cpu",
                                            limits={"cpu_time": 10.0}))[0] == "SE"


def test_security_violation_names_the_kill():
    assert security_violation(_result("NONZERO_EXIT", 1)) is None
    assert "seccomp filter" in security_violation(_result("SECCOMP_KILLED", signal=31))


def _denied(name, errno_value, t):
    first = {"syscall": name, "nr": 0, "arch": "x86_64", "args": [0] * 6, "time": t}
    return {"syscall": name, "action": "ERRNO", "errno": errno_value, "count": 1,
            "first": first}


def test_an_enosys_answer_is_no_security_violation():
    """The grader profile answers ENOSYS to what it does not list, and glibc's threads try
    clone3 first: a threaded program that then exits non-zero is a runtime error."""
    clone3 = _denied("clone3", errno.ENOSYS, 0.1)
    socket = _denied("socket", errno.EAFNOSUPPORT, 0.2)
    log = {"syscalls": [clone3]}
    assert security_violation(_result("NONZERO_EXIT", 1, seccomp_log=log)) is None
    log = {"syscalls": [clone3, socket]}
    message = security_violation(_result("NONZERO_EXIT", 1, seccomp_log=log))
    assert message.startswith("failed after the seccomp filter denied socket(")
    assert "ERRNO(EAFNOSUPPORT)" in message and "more" not in message   # (clone3 not counted)
    assert security_violation(_result("OK", 0, seccomp_log=log)) is None


@needs_core
def test_a_runtime_error_from_landlock_says_what_the_solution_may_touch(tmp_path):
    """Landlock refuses in the kernel (EACCES): the seccomp report cannot name it."""
    d = make_tests(tmp_path, {"1": ("", "ok\n")})
    outside = tmp_path / "outside.txt"
    sol = program(tmp_path, "writes.py", "open(%r, 'w')\n" % str(outside))
    t = sandbox.grade(sol, d).tests[0]
    if not (t.result.landlock and t.result.landlock["available"]):
        pytest.skip("no Landlock here")
    assert t.verdict == "RE" and "Permission denied" in t.message, t.message
    assert t.message.endswith("(files: the solution may read the system directories and its "
                              "own program, and write only its scratch directory)")
    assert not outside.exists()


@needs_core
def test_a_threaded_solution_that_fails_is_a_runtime_error(tmp_path):
    """Starting a thread makes glibc try clone3, which the grader profile answers ENOSYS
    (glibc then uses clone): not a security violation when the program then fails."""
    d = make_tests(tmp_path, {"1": ("3 4\n", "7\n")})
    sol = program(tmp_path, "threads.py", """
        import threading
        t = threading.Thread(target=print, args=(7,))
        t.start()
        t.join()
        raise SystemExit("and then it failed")
        """)
    t = sandbox.grade(sol, d).tests[0]
    assert (t.verdict, t.message) == ("RE", "exit status 1: and then it failed"), t.message


# ------------------------------------------------------------------------ the tests directory

def test_tests_are_found_in_natural_order(tmp_path):
    d = make_tests(tmp_path, {n: ("", "") for n in ["10", "2", "1", "a10", "a9", "b"]})
    (d / "notes.txt").write_text("ignored")
    (d / "sub.in").mkdir()                                  # a directory, not a test
    tests = load_tests(d, ["true"])
    assert [t.name for t in tests] == ["1", "2", "10", "a9", "a10", "b"]
    assert [t.index for t in tests] == list(range(6))
    assert tests[0].stdin_file == str(d / "1.in") and tests[0].expect_file == str(d / "1.out")
    assert sorted(["x2", "x10", "x1"], key=natural_key) == ["x1", "x2", "x10"]


def test_defaults_without_tests_toml(tmp_path):
    t = load_tests(make_tests(tmp_path, PAIRS), ["true"])[0]
    assert (t.time_limit, t.wall_limit, t.memory_limit, t.output_limit, t.points,
            t.checker) == (1.0, None, 256 << 20, None, 1, Checker("exact"))


def test_settings_precedence_test_then_defaults_then_arguments(tmp_path):
    d = make_tests(tmp_path, PAIRS, """
        [defaults]
        memory_limit = "64M"
        points = 2

        [test.10]
        time_limit = "3s"
        points = 5
        checker = "float:0.5"
        """)
    tests = {t.name: t for t in load_tests(d, ["true"], time_limit="2s", memory_limit="1G",
                                           checker="tokens", output_limit="1K")}
    assert (tests["1"].time_limit, tests["1"].memory_limit, tests["1"].points,
            tests["1"].checker, tests["1"].output_limit) == (2.0, 64 << 20, 2,
                                                             Checker("tokens"), 1024)
    assert (tests["10"].time_limit, tests["10"].points, tests["10"].checker) == (
        3.0, 5, Checker("float", eps=0.5))


def test_array_of_test_tables_works_too(tmp_path):
    d = make_tests(tmp_path, PAIRS, """
        [[test]]
        name = "2"
        points = 4
        """)
    assert {t.name: t.points for t in load_tests(d, ["true"])} == {"1": 1, "2": 4, "10": 1}


def test_checker_paths_in_tests_toml_are_relative_to_the_tests_dir(tmp_path):
    d = make_tests(tmp_path, PAIRS, 'defaults.checker = "./check.sh -v"\n')
    (d / "check.sh").write_text("#!/bin/sh\nexit 0\n")
    (d / "check.sh").chmod(0o755)
    c = load_tests(d, ["true"])[0].checker
    assert (c.argv, c.cwd) == (("./check.sh", "-v"), str(d))


def test_solution_paths_become_absolute(tmp_path, monkeypatch):
    (tmp_path / "sol.py").write_text("")
    monkeypatch.chdir(tmp_path)
    d = make_tests(tmp_path, PAIRS)
    assert load_tests(d, ["python3", "sol.py", "-x", "missing"])[0].cmd == (
        "python3", str(tmp_path / "sol.py"), "-x", "missing")
    assert load_tests(d, "./a.out 3")[0].cmd == (str(tmp_path / "a.out"), "3")


@pytest.mark.parametrize("files, message", [
    ({"1.in": "", "1.out": "", "2.in": ""}, "{d}: 2.in has no 2.out"),
    ({"1.in": "", "1.out": "", "3.out": "", "2.in": ""}, "{d}: 2.in has no 2.out; "
                                                         "3.out has no 3.in"),
    ({"readme": ""}, "{d}: no tests (NAME.in / NAME.out pairs)"),
])
def test_bad_tests_dirs(tmp_path, files, message):
    d = tmp_path / "t"
    d.mkdir()
    for name, text in files.items():
        (d / name).write_text(text)
    with pytest.raises(GradeError) as e:
        load_tests(d, ["true"])
    assert str(e.value) == message.format(d=d)


def test_missing_tests_dir(tmp_path):
    with pytest.raises(GradeError, match="no such directory"):
        load_tests(tmp_path / "nope", ["true"])
    (tmp_path / "file").write_text("")
    with pytest.raises(GradeError, match="not a directory"):
        load_tests(tmp_path / "file", ["true"])


@pytest.mark.parametrize("toml, problem", [
    ('[defaults]\ntime_limt = "1s"\n',
     'defaults: unknown key "time_limt" (did you mean "time_limit"?)'),
    ('[test.2]\nmemory = "1G"\n', 'test.2: unknown key "memory" (did you mean "memory_limit"?)'),
    ('[defaults]\nmemory_limit = "lots"\n',
     "defaults.memory_limit: bad size 'lots': use bytes or a number with K, M, G or T "
     "(e.g. 256M)"),
    ('[test.1]\ntime_limit = 0\n',
     "test.1.time_limit: a time limit must be a positive number of seconds, got 0"),
    ('[test.1]\ntime_limit = true\n',
     'test.1.time_limit: must be a number or a string like "2s", got a boolean'),
    ('[test.1]\npoints = -1\n', "test.1.points: must be a non-negative number, got -1"),
    ('[test.1]\npoints = "2"\n', "test.1.points: must be a non-negative number, got a string"),
    ('[test.1]\nchecker = "tokenz"\n', 'test.1.checker: checker "tokenz": neither a built-in '
     'checker (exact, tokens, float:EPS) nor a program that exists (did you mean "tokens"?)'),
    ('[test.7]\npoints = 2\n', "test.7: no test 7 (no 7.in / 7.out in {d})"),
    ('time_limit = "1s"\n', '"time_limit" must be under [defaults] or a [test.NAME] table'),
    ('[default]\npoints = 1\n', 'unknown top-level key "default" (did you mean "defaults"?)'),
    ('[[test]]\npoints = 1\n', 'test[0]: needs "name" = the NAME of NAME.in (a string)'),
    ('[[test]]\nname = "1"\n[[test]]\nname = "1"\n', "test[1]: test 1 is configured twice"),
    ('test = 3\n', '"test" must be [test.NAME] tables or [[test]] tables, got an integer'),
    ('defaults = 3\n', "defaults: must be a table, got an integer"),
])
def test_bad_tests_toml_names_the_table_and_key(tmp_path, toml, problem):
    d = make_tests(tmp_path, PAIRS, toml)
    with pytest.raises(GradeError) as e:
        load_tests(d, ["true"])
    assert str(e.value) == "%s: %s" % (d / "tests.toml", problem.format(d=d))


def test_every_problem_of_tests_toml_is_listed(tmp_path):
    d = make_tests(tmp_path, PAIRS, '[defaults]\nx = 1\n[test.1]\npoints = -2\n')
    with pytest.raises(GradeError) as e:
        load_tests(d, ["true"])
    assert str(e.value).splitlines()[1:] == [
        '  defaults: unknown key "x" (known keys: time_limit, wall_limit, memory_limit, '
        'output_limit, points, checker)', "  test.1.points: must be a non-negative number, got -2"]


def test_invalid_toml(tmp_path):
    d = make_tests(tmp_path, PAIRS, "[defaults\n")
    with pytest.raises(GradeError, match=r"tests.toml: invalid TOML: "):
        load_tests(d, ["true"])


def test_bad_arguments_and_profile(tmp_path):
    d = make_tests(tmp_path, PAIRS)
    with pytest.raises(GradeError, match="bad duration"):
        sandbox.grade(["true"], d, time_limit="soon")
    with pytest.raises(GradeError, match="did you mean"):
        sandbox.grade(["true"], d, checker="exakt")
    with pytest.raises(GradeError, match="no solution command"):
        sandbox.grade([], d)
    # a typo in the script's name: said before any test runs, not RE on every test
    with pytest.raises(GradeError, match=r"the solution's script nosuch\.py does not exist"):
        load_tests(d, ["python3", "nosuch.py"], base_dir=str(tmp_path))
    (tmp_path / "sol.py").write_text("")
    with pytest.raises(GradeError, match="script nosuch.py does not exist"):
        load_tests(d, ["python3", "-u", "-W", "ignore", "nosuch.py"], base_dir=str(tmp_path))
    for fine in (["python3", "sol.py"], ["python3", "-c", "pass"], ["sh", "-c", "true"],
                 ["/usr/bin/python3", "-m", "nosuch"], ["./a.out", "nosuch.txt"],
                 ["python3", "-OO", "sol.py"]):
        load_tests(d, fine, base_dir=str(tmp_path))
    with pytest.raises(GradeError, match=r"^profile no-such-profile: "):
        sandbox.grade(["true"], d, profile="no-such-profile")
    with pytest.raises(GradeError, match=r"^user no-such-user-xyz: no such user"):
        sandbox.grade(["true"], d, user="no-such-user-xyz")


def test_solution_argv_forms():
    assert _solution_argv(["python3 sol.py"]) == ["python3", "sol.py"]
    assert _solution_argv(["python3", "sol.py"]) == ["python3", "sol.py"]
    assert _solution_argv(["./sol"]) == ["./sol"]


# ------------------------------------------------------------------------------ every verdict

@needs_core
def test_ac_wa_and_the_score(tmp_path):
    d = make_tests(tmp_path, PAIRS, "[test.10]\npoints = 3\n")
    report = sandbox.grade(program(tmp_path, "sum.py", SUM), d)
    assert verdicts(report) == {"1": "AC", "2": "AC", "10": "AC"}
    assert (report.score, report.max_score, report.passed) == (5, 5, True)
    wrong = program(tmp_path, "wrong.py", "a, b = map(int, input().split())\nprint(a * b + 1)\n")
    report = sandbox.grade(wrong, d)
    assert verdicts(report) == {"1": "WA", "2": "WA", "10": "AC"}
    assert (report.score, report.max_score, report.passed) == (3, 5, False)
    assert report.tests[0].message == 'line 1: got "13", expected "7"'
    assert report.counts == {"AC": 1, "WA": 2}


@needs_core
def test_each_run_verdict(tmp_path):
    d = make_tests(tmp_path, {
        "ac": ("1 2\n", "3\n"),
        "tle": ("spin\n", "\n"),
        "mle": ("eat\n", "\n"),
        "ole": ("flood\n", "\n"),
        "re": ("fail\n", "\n"),
        "sig": ("abort\n", "\n"),
    }, """
        [defaults]
        time_limit = "0.3s"
        memory_limit = "64M"
        output_limit = "4K"
        """)
    sol = program(tmp_path, "multi.py", """
        import os, sys
        what = input()
        if what == "spin":
            while True:
                pass
        if what == "eat":
            hog = bytearray(512 << 20)
            print(len(hog))
        if what == "flood":
            sys.stdout.write("x" * (1 << 20))
        if what == "fail":
            raise SystemExit("bad input: " + what)
        if what == "abort":
            os.abort()
        a, b = map(int, what.split())
        print(a + b)
        """)
    report = sandbox.grade(sol, d)
    assert verdicts(report) == {"ac": "AC", "tle": "TLE", "mle": "MLE", "ole": "OLE",
                                "re": "RE", "sig": "RE"}
    by = {t.name: t for t in report.tests}
    assert by["tle"].message.startswith("CPU time limit of 0.3s exceeded")
    assert by["mle"].message.startswith("memory limit of 64M exceeded")
    assert by["ole"].message == "output limit of 4K exceeded"
    assert by["re"].message == "exit status 1: bad input: fail"
    assert by["sig"].message == "killed by SIGABRT"
    assert report.score == 1 and report.max_score == 6
    for t in report.tests:  # time and memory of every test
        assert t.wall_time > 0 and t.cpu_time >= 0 and t.memory and t.memory > 0


@needs_core
@pytest.mark.skipif(platform.machine() != "x86_64", reason="the probe makes an i386 call")
def test_sv_when_the_grader_profile_kills_a_call(tmp_path):
    exe = S.probe("abi_call")          # skips without gcc
    d = make_tests(tmp_path, {"1": ("", "")})
    report = sandbox.grade([exe, "i386", "20"], d)     # getpid through int 0x80
    t = report.tests[0]
    assert (t.verdict, t.result.verdict, t.points) == ("SV", "SECCOMP_KILLED", 0)
    assert t.message.startswith("killed by the seccomp filter")


@needs_core
def test_se_when_the_solution_cannot_start(tmp_path):
    d = make_tests(tmp_path, PAIRS)
    report = sandbox.grade(["no-such-solution-xyz"], d)
    assert set(verdicts(report).values()) == {"SE"}
    assert "no-such-solution-xyz: command not found" in report.tests[0].message
    # a program given by a path that does not exist: the message names it (not an --fs-ro)
    report = sandbox.grade([str(tmp_path / "no-such-program")], d)
    assert set(verdicts(report).values()) == {"SE"}
    message = report.tests[0].message
    assert str(tmp_path / "no-such-program") in message and "--fs-ro" not in message, message


@needs_core
def test_per_test_limits_apply_to_their_test(tmp_path):
    # burns CPU for 0.5 s (by its own clock) and allocates 100 MB, then answers
    d = make_tests(tmp_path, {"tight": ("", "ok\n"), "roomy": ("", "ok\n"),
                              "small": ("", "ok\n")}, """
        [defaults]
        time_limit = "5s"
        memory_limit = "512M"
        [test.tight]
        time_limit = "0.2s"
        [test.small]
        memory_limit = "32M"
        """)
    sol = program(tmp_path, "burn.py", """
        import time
        block = bytearray(100 << 20)
        end = time.process_time() + 0.5
        while time.process_time() < end:
            pass
        print("ok")
        """)
    assert verdicts(sandbox.grade(sol, d)) == {"tight": "TLE", "roomy": "AC", "small": "MLE"}


@needs_core
def test_the_solution_gets_stdin_and_an_empty_private_cwd(tmp_path):
    """Never the path of the tests: stdin is a pipe, cwd an empty directory of its own that is
    removed afterwards."""
    d = make_tests(tmp_path, {"1": ("secret input\n", "x\n"), "2": ("other\n", "x\n")})
    sol = program(tmp_path, "look.py", """
        import json, os, sys
        print(json.dumps({"stdin": sys.stdin.read(), "cwd": os.getcwd(),
                          "files": os.listdir("."), "fd0": os.readlink("/proc/self/fd/0")}))
        open("left-behind", "w").write("x")
        """)
    seen = []

    def record(inp, out, ans):
        seen.append((inp, json.loads(out), ans))
        return True

    report = sandbox.grade(sol, d, checker=record, jobs=1)
    assert report.passed
    cwds = set()
    for inp, out, ans in seen:
        assert out["stdin"] == inp.decode() and ans == b"x\n"
        assert out["files"] == [] and out["fd0"].startswith("pipe:")
        assert str(d) not in json.dumps(out)
        cwds.add(out["cwd"])
        assert not os.path.exists(out["cwd"])             # removed after the test
    assert len(cwds) == 2                                 # a fresh one per test


@needs_core
def test_a_callable_checker_that_raises_is_an_se_and_keeps_the_run(tmp_path):
    d = make_tests(tmp_path, {"1": ("", "")})

    def broken(inp, out, ans):
        raise RuntimeError("no idea")

    t = sandbox.grade(["true"], d, checker=broken).tests[0]
    assert (t.verdict, t.message) == ("SE", "checker failed: RuntimeError: no idea")
    assert t.result.verdict == "OK" and t.wall_time > 0


@needs_core
def test_float_and_tokens_checkers_end_to_end(tmp_path):
    d = make_tests(tmp_path, {"1": ("", "0.333333 ok\n")})
    sol = program(tmp_path, "third.py", "print(1 / 3, '\\n\\n', 'ok')\n")
    assert verdicts(sandbox.grade(sol, d, checker="float:1e-6")) == {"1": "AC"}
    assert verdicts(sandbox.grade(sol, d, checker="float:1e-9")) == {"1": "WA"}
    assert verdicts(sandbox.grade(sol, d, checker="tokens")) == {"1": "WA"}
    sol = program(tmp_path, "spaced.py", "print('0.333333', '\\n\\n  ok ')\n")
    assert verdicts(sandbox.grade(sol, d, checker="tokens")) == {"1": "AC"}
    assert verdicts(sandbox.grade(sol, d, checker="exact")) == {"1": "WA"}


CHECKER = """
    import sys
    inp, out, ans = (open(p).read() for p in sys.argv[1:4])
    mode = inp.split()[0]
    import ctypes
    seccomp = ctypes.CDLL(None).prctl(21, 0, 0, 0, 0)  # PR_GET_SECCOMP: 2 = filter mode
    try:
        import socket
        socket.socket(socket.AF_INET)
        net = "network open"
    except OSError as e:
        net = "network refused (errno %d)" % e.errno
    if mode == "crash":
        print("cannot judge this")
        sys.exit(3)
    good = out.split()[-1] == ans.split()[-1]
    print("seccomp mode %s, %s, answer %s" % (seccomp, net, "ok" if good else "wrong"))
    sys.exit(0 if good else 1)
    """


@needs_core
def test_command_checker_runs_sandboxed_and_decides(tmp_path):
    d = make_tests(tmp_path, {"1": ("sum 3 4\n", "7\n"), "2": ("sum 1 1\n", "3\n"),
                              "3": ("crash\n", "0\n")}, 'defaults.checker = "python3 check.py"\n')
    (d / "check.py").write_text(textwrap.dedent(CHECKER))
    sol = program(tmp_path, "sol.py", "w = input().split()\nprint(sum(map(int, w[1:])))\n")
    report = sandbox.grade(sol, d)
    assert verdicts(report) == {"1": "AC", "2": "WA", "3": "SE"}
    by = {t.name: t for t in report.tests}
    assert by["1"].message == "seccomp mode 2, network refused (errno 97), answer ok"
    assert by["2"].message == "seccomp mode 2, network refused (errno 97), answer wrong"
    assert by["3"].message == "checker failed (exit status 3): cannot judge this"
    assert by["1"].checker_result.profile == "grader"
    argv = by["1"].checker_result.argv
    assert argv[:2] == ["python3", "check.py"] and argv[2] == str(d / "1.in")
    assert argv[4] == str(d / "1.out") and argv[3] != argv[4]
    assert not os.path.exists(argv[3])                    # the output copy is gone too


@needs_core
def test_parallel_and_serial_agree(tmp_path):
    d = make_tests(tmp_path, {str(i): ("%d %d\n" % (i, i), "%d\n" % (2 * i + (i % 3 == 0)))
                              for i in range(12)})
    sol = program(tmp_path, "sum.py", SUM)
    one, many = sandbox.grade(sol, d, jobs=1), sandbox.grade(sol, d, jobs=4)
    assert verdicts(one) == verdicts(many)
    assert [t.name for t in many.tests] == [str(i) for i in range(12)]
    assert many.score == 8


# ------------------------------------------------------------------------------------- the CLI

@needs_core
def test_cli_table_and_exit_statuses(tmp_path):
    d = make_tests(tmp_path, PAIRS, "[test.10]\npoints = 3\n")
    sum_py = program(tmp_path, "sum.py", SUM)
    p = cli("--tests", d, "--", *sum_py)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["TEST", "VERDICT", "CPU", "WALL", "MEMORY", "POINTS"]
    assert [line.split()[:2] for line in lines[1:4]] == [["1", "AC"], ["2", "AC"], ["10", "AC"]]
    assert lines[3].split()[5] == "3/3"
    assert lines[4].startswith("score 5/5  (3 AC) in ")
    wrong = program(tmp_path, "wrong.py", "print(7)\n")
    p = cli(" ".join(wrong), "--tests", d)            # the form: one quoted word
    assert p.returncode == 1
    assert p.stdout.splitlines()[-1].startswith("score 2/5  (2 AC, 1 WA)")
    assert 'WA ' in p.stdout and 'line 1: got "7", expected "2"' in p.stdout


@needs_core
def test_cli_errors_are_125_and_usage_is_2(tmp_path):
    d = make_tests(tmp_path, PAIRS, "[test.1]\npoints = -1\n")
    p = cli("--tests", d, "--", "true")
    assert (p.returncode, p.stdout) == (125, "")
    assert p.stderr == "sandbox grade: %s: test.1.points: must be a non-negative number, " \
                       "got -1\n" % (d / "tests.toml")
    p = cli("--tests", tmp_path / "nope", "--", "true")
    assert p.returncode == 125 and "no such directory" in p.stderr
    p = cli("--tests", tmp_path, "--profile", "nonesuch", "--", "true")
    assert p.returncode == 125 and "--profile nonesuch: no such file or built-in" in p.stderr
    (tmp_path / "x").mkdir()
    d = make_tests(tmp_path / "x", PAIRS)
    p = cli("--tests", d, "--", "no-such-solution-xyz")
    assert p.returncode == 125 and p.stdout.count(" SE ") == 3
    p = cli("--tests", d)
    assert p.returncode == 2 and "no solution command" in p.stderr


@needs_core
def test_cli_json_is_the_api_report(tmp_path):
    d = make_tests(tmp_path, PAIRS, "[test.2]\npoints = 2\n")
    sol = program(tmp_path, "half.py", "a, b = map(int, input().split())\n"
                                       "print(7 if a == 3 else a - b)\n")
    p = cli("--json", "-j", "2", "--tests", d, "--", *sol)
    assert p.returncode == 1, p.stderr
    from_cli = json.loads(p.stdout)
    from_api = sandbox.grade(sol, d, jobs=2).to_json()

    def stable(report):
        """Everything but what differs between two runs (times, memory, pids, paths of
        scratch directories)."""
        out = {k: v for k, v in report.items() if k not in ("elapsed", "tests")}
        volatile = ("cpu_time", "wall_time", "memory", "result", "checker_result")
        out["tests"] = [{k: v for k, v in t.items() if k not in volatile}
                        for t in report["tests"]]
        return out

    assert stable(from_cli) == stable(from_api)
    assert from_cli["score"] == 1 and from_cli["max_score"] == 4
    assert from_cli["verdicts"] == {"AC": 1, "WA": 2}
    t = from_cli["tests"][0]
    assert set(t) >= {"name", "verdict", "points", "max_points", "message", "cpu_time",
                      "wall_time", "memory", "limits", "checker", "result"}
    assert t["result"]["verdict"] == "OK" and t["result"]["stdout_bytes"] == 2
    assert "stdout" not in t["result"]
    assert t["limits"] == {"time_limit": 1.0, "wall_limit": None,
                           "memory_limit": 256 << 20, "output_limit": None}


@needs_core
def test_cli_junit(tmp_path):
    d = make_tests(tmp_path, PAIRS)
    sol = program(tmp_path, "seven.py", "print(7)\n")
    out = tmp_path / "report.xml"
    p = cli("--tests", d, "--junit", out, "--", *sol)
    assert p.returncode == 1
    suite = ET.parse(out).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases] == ["sandbox.grade"] * 3
    assert cases[2].find("failure").get("type") == "WA"


@needs_core
def test_a_judged_test_keeps_only_what_the_reports_show(tmp_path):
    # stdout's size, stderr's tail, the JUnit head and tail; keep_output=True keeps it all
    d = make_tests(tmp_path, {"1": ("", "x\n"), "2": ("", "y\n")})
    sol = program(tmp_path, "loud.py", """
        import sys
        sys.stdout.write("x" * 300000 + "\\n")
        sys.stderr.write("e" * 10000 + "END")
        """)
    slim = sandbox.grade(sol, d, jobs=1)
    full = sandbox.grade(sol, d, jobs=1, keep_output=True)
    assert verdicts(slim) == verdicts(full) == {"1": "WA", "2": "WA"}
    for s, f in zip(slim.tests, full.tests):
        assert s.result.stdout is None and s.stdout_bytes == 300001
        assert s.result.stderr == f.result.stderr[-4096:] and s.result.stderr.endswith(b"END")
        assert len(f.result.stdout) == 300001 and len(f.result.stderr) == 10003
        assert s.message == f.message and s.message.startswith('line 1: got "xxx')
        assert s.to_json()["result"]["stdout_bytes"] == 300001
        assert s.to_json()["result"]["stderr"] == f.to_json()["result"]["stderr"]
    from sandbox import junit
    stamp = dict(suite_name="t", elapsed=1.0, classname="sandbox.grade",
                 timestamp=datetime.datetime(2026, 1, 1))
    a, b = tmp_path / "slim.xml", tmp_path / "full.xml"
    junit.write_junit(str(a), slim.tests, **stamp)
    junit.write_junit(str(b), full.tests, **stamp)
    body = a.read_bytes()
    assert b"xxxx" in body and b"END" in body
    # (times differ between the two gradings: compare with them taken out)
    assert _no_times(body) == _no_times(b.read_bytes())


def _no_times(xml: bytes) -> bytes:
    import re
    return re.sub(rb'time="[0-9.]+"', b'time=""', xml)


@needs_core
def test_grading_memory_does_not_grow_with_the_tests_outputs(tmp_path):
    # a solution printing 8 MiB on each of 40 tests: the grader held every byte of them
    # (~700 MiB at 16 MiB each); now only one running test's output at a time
    d = make_tests(tmp_path, {"t%d" % i: ("", "2\n") for i in range(40)})
    sol = program(tmp_path, "flood.py", """
        import sys
        sys.stdout.write("x" * (8 << 20))
        """)
    script = tmp_path / "grade_and_peak.py"
    script.write_text(textwrap.dedent("""
        import sys
        from sandbox.grading_cli import main
        rc = main(sys.argv[1:])
        with open("/proc/self/status") as f:
            peak = [l for l in f if l.startswith("VmHWM")][0].split()[1]
        print("VmHWM", peak, "rc", rc, file=sys.stderr)
        """))
    p = subprocess.run([sys.executable, str(script), "--json", "-j", "2", "--tests", str(d),
                        "--", *sol], capture_output=True, text=True, cwd=REPO, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    report = json.loads(p.stdout)
    assert report["verdicts"] == {"WA": 40}, p.stderr[-2000:]
    assert {t["result"]["stdout_bytes"] for t in report["tests"]} == {8 << 20}
    peak_kib = int(p.stderr.split("VmHWM ")[1].split()[0])
    # two tests at once, each output held while it is read and judged (a few copies): far
    # below the 320 MiB that keeping them all would take
    assert peak_kib < 200 * 1024, peak_kib


@needs_core
def test_cli_ctrl_c_kills_the_running_tests_and_reports_the_rest(tmp_path):
    mark = S.marker()
    d = make_tests(tmp_path, {"1": ("", ""), "2": ("", ""), "3": ("", "")},
                   '[defaults]\ntime_limit = "60s"\n')
    sol = program(tmp_path, "spin.py", "while True:\n    pass\n") + [mark]
    proc = subprocess.Popen(cli_argv("-j", "2", "--tests", d, "--", *sol), cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the solutions themselves: not this CLI (its argv has the mark too), nor a child of it
        # that has not exec'd yet (it shows the CLI's argv)
        def solutions():
            return [p for p in S.procs_with(mark) if " grade " not in p[2]]
        wait_for(lambda: len(solutions()) >= 2, 30, "two tests running")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        S.kill_all_with(mark)
    assert proc.returncode == 130, err
    assert err.endswith("sandbox grade: interrupted: 0 finished, 2 killed, 1 not run\n"), (out, err)
    # the two that ran were killed (which two: a freed slot goes to whichever test takes it)
    rows = [line.split() for line in out.splitlines()[1:3]]
    assert {r[0] for r in rows} <= {"1", "2", "3"} and all(r[1].endswith("*") for r in rows)
    assert "interrupted" in out
    assert S.wait_gone(mark) == []


@needs_core
@S.needs_root
def test_user_runs_the_solution_as_that_user_in_a_scratch_dir_it_owns(tmp_path):
    world = tempfile.mkdtemp(prefix="sandbox-grade-test-")
    try:
        os.chmod(world, 0o755)
        sol = program(pathlib.Path(world), "who.py", """
            import os
            open("mine.txt", "w").write("written")
            print(os.getuid(), os.getgid(), open("mine.txt").read())
            """)
        d = make_tests(tmp_path, {"1": ("", "65534 65534 written\n")})
        report = sandbox.grade(sol, d, user="65534:65534")
        assert verdicts(report) == {"1": "AC"}, report.tests[0].message
    finally:
        shutil.rmtree(world, ignore_errors=True)


def test_cli_help_documents_checkers_verdicts_and_exit_statuses():
    p = cli("--help")
    assert p.returncode == 0
    for text in ("tests.toml", "float:EPS", "exit 0 = AC, 1 = WA", "SV  security violation",
                 "125  grading failed", "-- python3 sol.py"):
        assert text in p.stdout, text


# --------------------------------------------------------------------------- the example

@needs_core
def test_the_example_problem():
    tests = EXAMPLE / "tests"
    got = {name: sandbox.grade(["python3", str(EXAMPLE / (name + ".py"))], tests)
           for name in ("sum", "wrong", "slow", "cheat")}
    assert (got["sum"].score, got["sum"].max_score) == (7, 7)
    assert verdicts(got["wrong"]) == {"1": "AC", "2": "AC", "3": "WA", "10": "AC"}
    assert set(verdicts(got["slow"]).values()) == {"TLE"}
    # the network is refused under the grader profile, and Landlock hides the tests
    # directory: no answer found, and it failed after a denied call (SV)
    for t in got["cheat"].tests:
        assert b"network refused: [Errno 97]" in t.result.stderr
        if t.result.landlock and t.result.landlock["available"]:
            assert b"no answer found" in t.result.stderr
            assert t.verdict == "SV" and "denied socket(AF_INET" in t.message


@needs_core
def test_a_solution_cannot_read_the_expected_output(tmp_path):
    """The classic cheat: open NAME.out by its path. Landlock lets the solution read the
    system, its own program and its scratch directory, nothing else."""
    from sandbox import landlock
    try:
        landlock.kernel_abi()
    except landlock.LandlockUnavailable as e:
        pytest.skip("no Landlock: %s" % e)
    d = make_tests(tmp_path, {"1": ("2 3\n", "5\n")})
    answer = d / "1.out"
    sol = program(tmp_path, "sol.py",
                  "import sys\ntry:\n print(open(%r).read(), end='')\n"
                  "except OSError as e:\n print('refused', e.errno, file=sys.stderr)\n"
                  " sys.exit(4)\n" % str(answer))
    report = sandbox.grade(sol, d)
    (t,) = report.tests
    assert t.verdict == "RE" and t.result.exit_code == 4, t.message
    assert b"refused 13" in t.result.stderr
    assert t.result.landlock and t.result.landlock["available"]


def test_user_without_the_privilege_to_switch_is_refused_before_any_test(tmp_path,
                                                                        monkeypatch):
    """Without root, --user made every test an SE with a raw PermissionError, and left a
    scratch directory behind per test: refused up front now, as run and batch do."""
    from sandbox import grading, runner
    monkeypatch.setattr(runner, "_can_change_ids", lambda: False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # (where scratch dirs go)
    d = make_tests(tmp_path, {"1": ("", "")})
    with pytest.raises(GradeError, match="--user needs root"):
        sandbox.grade(["true"], d, user="nobody")
    with pytest.raises(runner.SetupRefused, match="--user needs root"):
        runner.Sandbox("default", user="nobody")
    # and a scratch directory that cannot be handed to the user is not left behind
    monkeypatch.setattr(os, "chown", lambda *a: (_ for _ in ()).throw(PermissionError(1, "no")))
    with pytest.raises(PermissionError):
        grading._Scratch(user="nobody")
    assert not list(tmp_path.glob("sandbox-grade-*"))

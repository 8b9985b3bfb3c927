"""The pytest plugin (sandbox.pytest_plugin): the `sandbox` fixture, @pytest.mark.sandbox and the
sandbox_* ini options, their precedence, readable failures, xdist, and that it stays out of the
way of projects that do not use it.

Inner pytest runs disable entry-point autoloading and load the plugin with -p, so they behave
the same whether or not this package is installed with its pytest11 entry point.
"""
import os
import pathlib
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

REPO = pathlib.Path(__file__).resolve().parents[1]
PLUGIN = ["-p", "sandbox.pytest_plugin"]

try:
    import sandbox._core  # noqa: F401
    HAVE_CORE = True
except ImportError:
    HAVE_CORE = False
needs_core = pytest.mark.skipif(not HAVE_CORE, reason="the C core (sandbox._core) is not built")


@pytest.fixture
def inner(pytester, monkeypatch):
    """pytester with only the plugins we name, and this tree importable in subprocesses."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return pytester


def test_entry_point_is_declared():
    try:
        import tomllib
    except ImportError:
        pytest.skip("tomllib needs Python 3.11")
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pytest11"] == {"sandbox": "sandbox.pytest_plugin"}


def test_importing_the_plugin_loads_no_runner():
    # loaded in every pytest run once installed: no C core, no profile loader until used
    code = ("import sys, sandbox.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.startswith('sandbox')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), check=True)
    assert out.stdout.strip() == "['sandbox', 'sandbox.pytest_plugin']"


def test_marker_is_registered(inner):
    result = inner.runpytest(*PLUGIN, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.sandbox(profile=..., timeout=..., *"])


def test_projects_without_the_fixture_are_untouched(inner):
    inner.makepyfile("""
        import sys

        def test_plain():
            assert "sandbox.runner" not in sys.modules
    """)
    result = inner.runpytest_subprocess(*PLUGIN, "--strict-markers")
    result.assert_outcomes(passed=1)


@needs_core
def test_marker_sets_profile_and_limits(inner):
    inner.makepyfile("""
        import pytest

        @pytest.mark.sandbox(profile="grader", timeout=0.3, memory="64M")
        def test_limits(sandbox):
            r = sandbox.run(["sleep", "5"])
            assert (r.verdict, r.time_limit_kind, r.profile) == ("TIME_LIMIT", "wall", "grader")
            assert r.limits["wall_time"] == 0.3 and r.limits["memory"] == 64 << 20

        def test_defaults(sandbox):
            r = sandbox.run("echo hi there")
            assert (r.verdict, r.stdout, r.profile) == ("OK", b"hi there\\n", "default")
            assert r.limits["wall_time"] is None
    """)
    inner.runpytest(*PLUGIN).assert_outcomes(passed=2)


@needs_core
def test_ini_options(inner):
    inner.makeini("""
        [pytest]
        sandbox_profile = no-network
        sandbox_timeout = 500ms
        sandbox_processes = 7
    """)
    inner.makepyfile("""
        def test_ini(sandbox):
            r = sandbox.run(["true"])
            assert (r.verdict, r.profile) == ("OK", "no-network")
            assert (r.limits["wall_time"], r.limits["processes"]) == (0.5, 7)
    """)
    inner.runpytest(*PLUGIN).assert_outcomes(passed=1)


@needs_core
def test_ini_profile_path_is_relative_to_the_ini_file(inner):
    (inner.path / "profiles").mkdir()
    (inner.path / "profiles" / "allow.json").write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    inner.makeini("""
        [pytest]
        sandbox_profile = profiles/allow.json
    """)
    (inner.path / "sub").mkdir()
    (inner.path / "sub" / "test_p.py").write_text(
        "def test_p(sandbox):\n"
        "    assert sandbox.run(['true']).profile.endswith('profiles/allow.json')\n")
    inner.runpytest(*PLUGIN, "sub").assert_outcomes(passed=1)


@needs_core
def test_the_readme_example_runs_as_written(inner):
    """Under grader a run's cwd is an empty scratch directory and Landlock shows it the system
    only: the files its words name, relative to the test's working directory, are made
    absolute and readable, as `sandbox grade` does for a solution; nothing else is."""
    inner.makeini("""
        [pytest]
        sandbox_profile = grader
        sandbox_timeout = 2s
    """)
    (inner.path / "sum.py").write_text("a, b = map(int, input().split())\nprint(a + b)\n")
    (inner.path / "secret.txt").write_text("not for the program\n")
    inner.makepyfile("""
        import os
        import pytest

        @pytest.mark.sandbox(memory="256M", cpu_time=1)
        def test_sum(sandbox):
            assert sandbox.check_output(["python3", "sum.py"], stdin="3 4\\n") == "7\\n"

        def test_nothing_else_is_readable(sandbox):
            r = sandbox.run(["python3", "-c", "open(%r)" % os.path.abspath("secret.txt")])
            if r.landlock and r.landlock["available"]:
                assert r.verdict == "NONZERO_EXIT" and b"PermissionError" in r.stderr, r
    """)
    inner.runpytest(*PLUGIN).assert_outcomes(passed=2)


@needs_core
def test_files_next_to_the_test_are_found_from_another_directory(inner, monkeypatch):
    """pytest run from elsewhere: a word is looked up in the working directory, else beside
    the test file."""
    sub = inner.path / "problem"
    sub.mkdir()
    (sub / "pytest.ini").write_text("[pytest]\nsandbox_profile = grader\n")
    (sub / "sum.py").write_text("a, b = map(int, input().split())\nprint(a + b)\n")
    (sub / "test_sum.py").write_text(
        "def test_sum(sandbox):\n"
        "    assert sandbox.check_output(['python3', 'sum.py'], stdin='3 4\\n') == '7\\n'\n")
    inner.runpytest(*PLUGIN, "problem/test_sum.py").assert_outcomes(passed=1)


@needs_core
def test_closest_marker_wins_over_ini(inner):
    inner.makeini("""
        [pytest]
        sandbox_profile = grader
        sandbox_timeout = 9s
        sandbox_cpu_time = 4s
    """)
    inner.makepyfile("""
        import pytest

        pytestmark = pytest.mark.sandbox(timeout="7s", memory="32M")

        def test_module_level(sandbox):
            r = sandbox.run(["true"])
            assert (r.profile, r.limits["wall_time"], r.limits["cpu_time"]) == ("grader", 7, 4)

        @pytest.mark.sandbox(timeout="5s")
        class TestClass:
            def test_class_level(self, sandbox):
                assert sandbox.run(["true"]).limits["wall_time"] == 5

            @pytest.mark.sandbox("no-network", timeout="3s")
            def test_function_level(self, sandbox):
                r = sandbox.run(["true"])
                assert (r.profile, r.limits["wall_time"], r.limits["memory"]) == (
                    "no-network", 3, 32 << 20)

            def test_per_run_keywords_win(self, sandbox):
                assert sandbox.run(["true"], timeout=1).limits["wall_time"] == 1
    """)
    inner.runpytest(*PLUGIN).assert_outcomes(passed=4)


@needs_core
def test_failing_program_gives_a_readable_assertion(inner):
    inner.makepyfile("""
        def test_check_output(sandbox):
            sandbox.check_output(["sh", "-c", "echo partial; echo boom >&2; exit 3"])

        def test_plain_assert(sandbox):
            r = sandbox.run(["sh", "-c", "echo 41"])
            assert r.stdout == b"42\\n"
    """)
    result = inner.runpytest(*PLUGIN)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "E   *sandbox.pytest_plugin.SandboxFailed: sandboxed command sh -c 'echo partial; echo "
        "boom >&2; exit 3': NONZERO_EXIT exit 3 wall * (profile default)",
        "E   *--- stdout ---", "E   *partial", "E   *--- stderr ---", "E   *boom",
        "*:2: SandboxFailed",   # the plugin's own frames are hidden
        "_*_ test_plain_assert _*_",  # and its one run is not repeated in a section
    ])
    # a plain assert gets the runs of the test as a report section
    result.stdout.fnmatch_lines([
        "*- sandbox runs -*",
        "1. sandboxed command sh -c 'echo 41': OK exit 0 wall *",
        "--- stdout ---", "41",
    ])


def test_unknown_marker_argument_is_a_clear_error(inner):
    inner.makepyfile("""
        import pytest

        @pytest.mark.sandbox(profile="grader", timout=2)
        def test_typo(sandbox):
            pass

        @pytest.mark.sandbox(timout=2)
        def test_typo_without_the_fixture():
            pass
    """)
    result = inner.runpytest(*PLUGIN)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        "*@pytest.mark.sandbox: unknown argument 'timout' (did you mean 'timeout'?); known: "
        "profile, timeout, cpu_time, *"] * 2)


def test_bad_ini_option_is_a_clear_error(inner):
    inner.makeini("""
        [pytest]
        sandbox_processes = many
    """)
    inner.makepyfile("def test_bad_ini(sandbox):\n    pass\n")
    result = inner.runpytest(*PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*ini option sandbox_processes = 'many': expected a whole number*"])


def test_bad_marker_settings_are_clear_errors(inner):
    inner.makepyfile("""
        import pytest

        @pytest.mark.sandbox(profile="no-such-profile", processes=2)
        def test_bad_profile(sandbox):
            pass

        @pytest.mark.sandbox(processes=2, timeout="soon")
        def test_bad_limit(sandbox):
            pass
    """)
    result = inner.runpytest(*PLUGIN)
    result.assert_outcomes(errors=2)
    if HAVE_CORE:
        result.stdout.fnmatch_lines([
            "*sandbox fixture (processes=2, profile='no-such-profile'): no-such-profile: no such "
            "file or built-in profile (built-ins: *",
            "*sandbox fixture (processes=2, timeout='soon'): bad duration 'soon'*"])


@needs_core
def test_works_under_xdist_with_one_sandbox_per_worker_and_configuration(inner, tmp_path):
    log = tmp_path / "log"
    inner.makepyfile(test_many="""
        import os
        import pytest

        @pytest.mark.parametrize("i", range(8))
        @pytest.mark.parametrize("profile", [
            pytest.param(p, marks=pytest.mark.sandbox(profile=p, timeout=5))
            for p in ("default", "grader")])
        def test_run(sandbox, i, profile):
            r = sandbox.run(["sh", "-c", "echo $((%d * 2))" % i])
            assert (r.verdict, r.stdout) == ("OK", b"%d\\n" % (i * 2))
            with open(LOG, "a") as f:
                f.write("%d %s %d\\n" % (os.getpid(), r.profile, id(sandbox.compiled)))
    """.replace("LOG", repr(str(log))))
    result = inner.runpytest_subprocess(*PLUGIN, "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=16)
    rows = [line.split() for line in log.read_text().splitlines()]
    assert len(rows) == 16 and len({pid for pid, _, _ in rows}) == 2
    # each worker compiled each profile at most once
    per_worker = {(pid, profile) for pid, profile, _ in rows}
    assert len({(pid, profile, ident) for pid, profile, ident in rows}) == len(per_worker)

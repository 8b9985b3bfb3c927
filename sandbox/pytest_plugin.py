"""pytest plugin: a `sandbox` fixture that runs commands under a profile with limits.

Registered through the ``pytest11`` entry point ("sandbox"; disable with ``-p no:sandbox``)::

    # pytest.ini / [tool.pytest.ini_options]
    sandbox_profile = grader
    sandbox_timeout = 2s

    @pytest.mark.sandbox(profile="no-network", memory="256M")   # overrides the ini file
    def test_answer(sandbox):
        assert sandbox.check_output(["python3", "answer.py"], stdin="3 4\\n") == "7\\n"

Settings come from the closest marker (function, then class, then module) over the ini file;
a relative profile path resolves against the test file's directory (marker) or the ini file's
(ini). Each process (each xdist worker) compiles one Sandbox per distinct configuration.
When a test fails, its report gets a "sandbox runs" section: each command with its verdict.

This module is loaded in every pytest run once the package is installed: it imports nothing of
the runner (nor the C core) until a test asks for the fixture.
"""
from __future__ import annotations

import difflib
import json
import os
import shlex
import threading
from typing import Dict, List, Optional, Tuple

import pytest

MARKER = "sandbox"

# setting -> (help, how an ini string becomes the value Sandbox takes)
SETTINGS: Dict[str, Tuple[str, object]] = {
    "profile": ("built-in profile name or path (default: default; 'unconfined' for none)", str),
    "timeout": ("wall-clock limit per run, e.g. 2s", str),
    "cpu_time": ("CPU time limit per run, e.g. 1s", str),
    "memory": ("memory limit per run, e.g. 256M", str),
    "output_limit": ("bytes kept per captured stream, e.g. 1M (more: OUTPUT_LIMIT)", str),
    "processes": ("tasks in a run's tree", int),
    "file_size": ("largest file a run may write, e.g. 10M", str),
    "open_files": ("RLIMIT_NOFILE of a run", int),
    "stack": ("RLIMIT_STACK of a run, e.g. 8M", str),
    "user": ("run as this user, name or uid[:gid] (needs root)", str),
    "caps": ("capabilities kept: comma-separated names, 'docker', 'all' or 'none'", str),
}
_LIMITS = ("timeout", "cpu_time", "memory", "output_limit", "processes", "file_size",
           "open_files", "stack")


def pytest_addoption(parser) -> None:
    for name, (help_text, _) in SETTINGS.items():
        parser.addini("sandbox_" + name, "sandbox fixture: " + help_text, default=None)


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "sandbox(profile=..., timeout=..., cpu_time=..., memory=..., ...): profile "
                   "and limits of the `sandbox` fixture's runs (over the sandbox_* ini options); "
                   "arguments: %s" % ", ".join(SETTINGS))


class SandboxConfigError(Exception):
    """A bad sandbox marker or ini option: the test errors with this message."""


def _unknown(name: str, where: str) -> str:
    close = difflib.get_close_matches(name, list(SETTINGS), n=1, cutoff=0.6)
    return "%s: unknown argument %r%s; known: %s" % (
        where, name, " (did you mean %r?)" % close[0] if close else "", ", ".join(SETTINGS))


def _marker_settings(item) -> Dict[str, object]:
    """The markers' settings, the closest one winning; a profile path made absolute."""
    found: Dict[str, object] = {}
    for mark in reversed(list(item.iter_markers(MARKER))):
        where = "@pytest.mark.sandbox"
        if len(mark.args) > 1:
            raise SandboxConfigError("%s takes at most one positional argument (the profile), "
                                     "got %d" % (where, len(mark.args)))
        kwargs = dict(mark.kwargs)
        if mark.args:
            if "profile" in kwargs:
                raise SandboxConfigError("%s: profile given twice" % where)
            kwargs["profile"] = mark.args[0]
        for key, value in kwargs.items():
            if key not in SETTINGS:
                raise SandboxConfigError(_unknown(key, where))
            found[key] = value
    if isinstance(found.get("profile"), (str, os.PathLike)):
        found["profile"] = _profile_path(os.fspath(found["profile"]),
                                         os.path.dirname(str(item.path)))
    return found


def _ini_settings(config) -> Dict[str, object]:
    found: Dict[str, object] = {}
    for name, (_, convert) in SETTINGS.items():
        raw = config.getini("sandbox_" + name)
        if raw is None or raw == "":
            continue
        try:
            found[name] = convert(str(raw).strip())
        except ValueError:
            raise SandboxConfigError("ini option sandbox_%s = %r: expected a whole number"
                                     % (name, raw)) from None
    if "profile" in found:
        base = os.path.dirname(str(config.inipath)) if config.inipath else str(config.rootpath)
        found["profile"] = _profile_path(found["profile"], base)
    return found


def _profile_path(spec: str, base: str) -> str:
    """A built-in name stays a name; a relative path resolves against base when it exists."""
    from . import builtin
    if spec == builtin.UNCONFINED or builtin.path(spec) is not None or os.path.isabs(spec):
        return spec
    full = os.path.join(base, spec)
    return full if os.path.exists(full) else spec


def settings_for(item) -> Dict[str, object]:
    """The fixture's settings for a test: its markers over the ini options."""
    merged = _ini_settings(item.config)
    merged.update(_marker_settings(item))
    return merged


def pytest_runtest_setup(item) -> None:
    # a bad marker is an error of every test carrying it, fixture or not
    if item.get_closest_marker(MARKER) is not None:
        try:
            _marker_settings(item)
            error = None
        except SandboxConfigError as e:
            error = str(e)
        if error is not None:
            pytest.fail(error, pytrace=False)


# Compiled sandboxes of this process, one per distinct configuration.
_sandboxes: Dict[str, object] = {}
_sandboxes_lock = threading.Lock()


def compiled_sandbox(settings: Dict[str, object]):
    """The Sandbox of these settings, compiled once per process."""
    key = json.dumps(settings, sort_keys=True, default=repr)  # a profile may be a dict
    with _sandboxes_lock:
        sb = _sandboxes.get(key)
    if sb is None:
        from .runner import Sandbox, SetupRefused
        kwargs = dict(settings)
        profile = kwargs.pop("profile", "default")
        try:
            sb = Sandbox(profile, **kwargs)
        except (ValueError, SetupRefused) as e:  # ProfileError is a ValueError
            raise SandboxConfigError("sandbox fixture (%s): %s" % (
                ", ".join("%s=%r" % kv for kv in sorted(settings.items())) or "defaults",
                e)) from None
        with _sandboxes_lock:
            sb = _sandboxes.setdefault(key, sb)
    return sb


class SandboxFailed(AssertionError):
    """A sandboxed command did not end with exit status 0 (check=True, check_output)."""

    def __init__(self, result):
        self.result = result
        super().__init__(describe_run(result))


def _tail(data: Optional[bytes], limit: int = 2000) -> str:
    if not data:
        return ""
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else "...\n" + text[-limit:]


def describe_run(result) -> str:
    """A few lines for people: the command, how it ended, and the tail of its output."""
    lines = ["sandboxed command %s: %s (profile %s)" % (
        shlex.join(result.argv), result.describe(), result.profile)]
    for name in ("stdout", "stderr"):
        text = _tail(getattr(result, name))
        if text:
            lines.append("--- %s ---\n%s" % (name, text.rstrip("\n")))
    return "\n".join(lines)


class SandboxFixture:
    """What the `sandbox` fixture gives a test: runs under the test's profile and limits."""

    def __init__(self, settings: Dict[str, object], test_dir: Optional[str] = None):
        self.settings = dict(settings)
        self.runs: List[object] = []   # every Result of this test, in order
        self.test_dir = test_dir       # the test file's directory (see _in_scratch)

    @property
    def profile(self):
        return self.settings.get("profile", "default")

    @property
    def compiled(self):
        """The underlying sandbox.Sandbox (shared by every test with the same settings)."""
        return compiled_sandbox(self.settings)

    def run(self, argv, *, check: bool = False, **kw):
        """Run a command (a list, or a string split like a shell would) and return its Result.
        Keyword arguments go to Sandbox.run: stdin, env, cwd, timeout, memory, ... (per-run
        limits over the test's). check=True raises SandboxFailed unless the verdict is OK."""
        __tracebackhide__ = True
        if isinstance(argv, (str, bytes)):
            argv = shlex.split(os.fsdecode(argv))
        sb = self.compiled
        argv = list(argv)
        if kw.get("cwd") is None and sb.fs is not None and sb.fs.scratch:
            argv, kw = _in_scratch(sb, argv, kw, self.test_dir)
        result = sb.run(argv, **kw)
        self.runs.append(result)
        if check and not result.ok:
            raise SandboxFailed(result)
        return result

    def check_output(self, argv, **kw) -> str:
        """Run a command that must end with exit status 0; return its stdout as text."""
        __tracebackhide__ = True
        result = self.run(argv, check=True, **kw)
        return (result.stdout or b"").decode("utf-8", "replace")


def _in_scratch(sb, argv: list, kw: dict, test_dir: Optional[str] = None) -> tuple:
    """(argv, kw) of a run in an empty scratch directory (the grader profile's), as `sandbox
    grade` runs a solution: the files its words name relative to the working directory, else
    to the test file's directory, become absolute paths, readable under Landlock with its
    program, unless the run gives fs_ro itself."""
    from .grading import absolute_words, program_paths
    argv = absolute_words(argv, os.getcwd())
    if test_dir is not None:   # (the words after the program that are still relative)
        argv = argv[:1] + absolute_words([""] + argv[1:], test_dir)[1:]
    if "fs_ro" not in kw:
        kw = dict(kw, fs_ro=list(dict.fromkeys(sb.fs_ro_list + program_paths(argv))))
    return argv, kw


@pytest.fixture
def sandbox(request) -> SandboxFixture:
    """Runs commands under the profile and limits of @pytest.mark.sandbox / sandbox_* ini
    options: sandbox.run(argv, **kw) -> Result, sandbox.check_output(argv, **kw) -> str."""
    try:
        fixture = SandboxFixture(settings_for(request.node),
                                 test_dir=str(request.node.path.parent))
        fixture.compiled  # compile (or refuse) now: a bad profile errors in set-up, not in a run
        error = None
    except SandboxConfigError as e:
        error = str(e)
    if error is not None:  # outside the except: no chained traceback in the report
        pytest.fail(error, pytrace=False)
    request.node.stash[_runs_key] = fixture.runs
    return fixture


_runs_key = pytest.StashKey[list]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    runs = item.stash.get(_runs_key, None)
    if runs and report.failed and call.when == "call" and not (
            len(runs) == 1 and call.excinfo is not None
            and isinstance(call.excinfo.value, SandboxFailed)):  # already the whole message
        report.sections.append(("sandbox runs", "\n".join(
            "%d. %s" % (i, describe_run(r)) for i, r in enumerate(runs, 1))))

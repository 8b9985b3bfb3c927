"""`sandbox batch`: run many jobs from a TOML or JSON-lines file, in parallel, with expectations.

Jobs file (TOML: ``[[job]]`` tables; JSON lines: one object per line, same keys)::

    [[job]]
    name = "hello"                      # required, unique
    cmd = ["python3", "hello.py"]       # required, a list of strings
    stdin = "3 4\\n"                     # or stdin_file = "in.txt" (relative to the jobs file)
    env = { LANG = "C" }                # added to PATH, LANG, HOME
    cwd = "work"                        # relative to the jobs file (default: its directory)
    time_limit = "2s"                   # CPU; wall_limit, memory_limit = "256M",
    output_limit = "1M"                 # processes = 40, file_size_limit, open_files,
                                        # stack_limit (default: --time-limit & co.)
    profile = "no-network"              # built-in name or path (relative to the jobs file)
    fs_ro = ["@system", "data"]         # Landlock: what it may read (fs_rw: where it may write)
    expect_stdout = "42\\n"              # or expect_file = "hello.out"
    expect_exit = 0                     # the default

A job passes when its verdict is OK or NONZERO_EXIT, its exit status is ``expect_exit`` and its
stdout is exactly the expected one (when one is given).

Python API::

    jobs, problems = load_jobs("jobs.toml")       # problems: bad entries, not run
    results = run_batch(jobs, jobs_parallel=4, on_result=print)

Each distinct profile is compiled once per batch (in each worker process, for a process pool):
one ``Sandbox(profile)`` with no limits, per-job limits given to ``Sandbox.run``. Its jobs start
through the Sandbox's pre-filtered zygote (sandbox/zygote.py) when the profile allows what that
needs (``zygote=False`` / ``--no-zygote``: each job gets its own PID namespace as root); each
Result's ``spawn_path`` says which path ran. The work item
is the module-level ``execute_job(job, default_profile, batch_key)``; a ``Job`` and the
``JobResult`` it returns are plain picklable dataclasses, so any ``concurrent.futures.Executor``
(threads, a process pool, Dask's executor) can run a batch.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import difflib
import json
import os
import queue
import re
import shlex
import signal
import _signal
import socket
import sys
import threading
import time
import uuid
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

from . import builtin, jobthreads, landlock, runslots, stopsignals
from .limits import (add_limit_options, format_size, open_files_ceiling, parse_memory,
                     parse_output, parse_seconds, parse_size)
from .result import Result

__all__ = ["Job", "JobResult", "Problem", "JobsFileError", "BatchInterrupted", "KEYS",
           "load_jobs", "parse_jobs", "run_batch", "execute_job", "judge", "add_parser",
           "cmd_batch", "main"]

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_BAD_FILE = 2
EXIT_INTERRUPTED = 130

KEYS = ("name", "cmd", "stdin", "stdin_file", "env", "cwd", "time_limit", "wall_limit",
        "memory_limit", "output_limit", "processes", "file_size_limit", "open_files",
        "stack_limit", "profile", "fs_ro", "fs_rw", "expect_stdout", "expect_file",
        "expect_exit")

# the limits a job may set, which --time-limit & co. give to the jobs that set none
LIMIT_KEYS = ("time_limit", "wall_limit", "memory_limit", "output_limit", "processes",
              "file_size_limit", "open_files", "stack_limit")

# names people reach for, and the key they mean (checked before the spelling suggestion)
_ALIASES = {
    "command": "cmd", "args": "cmd", "argv": "cmd", "timeout": "wall_limit",
    "wall_time": "wall_limit", "cpu_time": "time_limit", "cpu_limit": "time_limit",
    "memory": "memory_limit", "mem_limit": "memory_limit", "output": "output_limit",
    "pids": "processes", "pids_limit": "processes", "input": "stdin",
    "expected_stdout": "expect_stdout", "expected_output": "expect_stdout",
    "stdout": "expect_stdout", "expected_exit": "expect_exit", "exit_code": "expect_exit",
    "expect_exit_code": "expect_exit", "expected_file": "expect_file",
    "stack": "stack_limit", "file_size": "file_size_limit", "fsize": "file_size_limit",
    "nofile": "open_files", "max_open_files": "open_files",
    "environment": "env", "workdir": "cwd", "dir": "cwd", "read_only": "fs_ro",
    "readonly": "fs_ro", "writable": "fs_rw", "read_write": "fs_rw",
}

GRACE_S = 2.0            # Ctrl-C: how long running jobs may finish before they are killed
KILL_GIVE_UP_S = 10.0    # then: how long to keep killing before abandoning what still runs
_TICK_S = 0.1            # progress callbacks while waiting
# After a burst of finished jobs, the calling thread lets more finish before it takes them,
# while jobs remain to submit: a wake-up per job of /bin/true cost ~70 us of its CPU per job
# (cache-cold, ~200 us between python3 jobs), now spread over a burst. It waits a quarter of
# the time the jobs submitted ahead last at the recent rate, within these bounds: 10 ms
# between /bin/true jobs (~1,500/s), ~60 ms between python3 ones (~130/s)
_DELIVER_S = 0.01
_DELIVER_MAX_S = 0.1
# ... unless the burst came with this much output: then the work per result dwarfs a wake-up
_BURST_BYTES = 1 << 20
# jobs submitted ahead beyond the running ones while results come with little output: what the
# workers take while the calling thread waits (at ~1,500 jobs/s, 10 ms is ~15 jobs). With big
# outputs the window stays at 3N: finished results, whole outputs included, would otherwise pile
# up behind a slower calling thread (`sandbox batch`, 60 jobs of 4 MiB: 165 MiB RSS, not ~95)
_AHEAD = 32


# ============================================================================================
# jobs and problems

@dataclasses.dataclass(frozen=True, eq=False)
class Job:
    """One validated job. Paths are absolute; limits are parsed (seconds, bytes)."""
    name: str
    cmd: Tuple[str, ...]
    index: int = 0                        # position in the file (0-based), for ordering
    where: str = ""                       # "job[3]" or "jobs.jsonl:4"
    stdin: Optional[str] = None
    stdin_file: Optional[str] = None
    env: dict = dataclasses.field(default_factory=dict)
    cwd: Optional[str] = None
    time_limit: Optional[float] = None    # CPU seconds
    wall_limit: Optional[float] = None
    memory_limit: Optional[int] = None
    output_limit: Optional[int] = None
    processes: Optional[int] = None
    file_size_limit: Optional[int] = None  # bytes (RLIMIT_FSIZE)
    open_files: Optional[int] = None      # RLIMIT_NOFILE
    stack_limit: Optional[int] = None     # bytes (RLIMIT_STACK)
    profile: Optional[str] = None         # built-in name or absolute path; None: the batch's
    fs_ro: Optional[Tuple[str, ...]] = None   # Landlock lists (absolute paths, @system,
    fs_rw: Optional[Tuple[str, ...]] = None   # @scratch); None: the profile's default
    expect_stdout: Optional[str] = None
    expect_file: Optional[str] = None
    expect_exit: int = 0


@dataclasses.dataclass(frozen=True)
class Problem:
    """A bad entry (or a bad top-level key): it is not run. str() is the message people see."""
    where: str                            # "job[3]", "jobs.jsonl:4", or the file for top level
    message: str
    index: int = -1                       # the entry's position, -1 for the file itself
    name: Optional[str] = None            # the entry's name when it had a usable one

    def __str__(self) -> str:
        return "%s: %s" % (self.where, self.message)


class JobsFileError(ValueError):
    """The jobs file as a whole cannot be used (unreadable, not TOML/JSON, no jobs)."""


@dataclasses.dataclass
class JobResult:
    job: Job
    result: Result
    passed: bool
    failures: List[str]
    interrupted: bool = False             # killed by Ctrl-C before it ended on its own
    worker: Optional[str] = None          # "host:pid" of the process that ran it (a Dask
                                          # worker, a pool process, or this one)
    shown_output: Optional[dict] = None   # junit.slim(): what a report shows of the output,
                                          # kept in place of the output itself

    @property
    def name(self) -> str:
        return self.job.name

    def to_json(self) -> dict:
        """The JSON-lines record: job, passed, failures, worker, then the Result's fields."""
        d = {"job": self.job.name, "passed": self.passed, "failures": list(self.failures),
             "worker": self.worker}
        for key, value in self.result.to_json().items():
            d.setdefault(key, value)
        return d


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during run_batch: .results (finished, and killed ones marked interrupted) and
    .not_run (jobs that never started)."""

    def __init__(self, results, not_run):
        super().__init__("batch interrupted: %d finished, %d not run"
                         % (len(results), len(not_run)))
        self.results = results
        self.not_run = not_run


# ============================================================================================
# loading

def _kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if value is None:
        return "null"
    return type(value).__name__


def _did_you_mean(key: str, choices: Sequence[str]) -> Optional[str]:
    lowered = key.lower().replace("-", "_")
    if lowered in choices:
        return lowered
    if lowered in _ALIASES and _ALIASES[lowered] in choices:
        return _ALIASES[lowered]
    close = difflib.get_close_matches(lowered, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown_key(key: str, choices: Sequence[str]) -> str:
    hint = _did_you_mean(key, choices)
    if hint:
        return 'unknown key "%s" (did you mean "%s"?)' % (key, hint)
    return 'unknown key "%s" (known keys: %s)' % (key, ", ".join(choices))


def _resolve_path(base: str, value: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


def _cmd_hint(text: str) -> str:
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    plain = words and all(w and not any(c in w for c in "|&;<>()$`*?[]{}~\"'\\") for w in words)
    if plain:
        return "write %s" % json.dumps(words)
    return 'for shell syntax write %s' % json.dumps(["sh", "-c", text])


class _EntryChecker:
    """Validates one raw entry (dict) into a Job, collecting every problem of the entry."""

    def __init__(self, base_dir: str, where: str, index: int):
        self.base = base_dir
        self.where = where
        self.index = index
        self.messages: List[str] = []

    def bad(self, message: str) -> None:
        self.messages.append(message)

    def string(self, entry: dict, key: str) -> Optional[str]:
        value = entry.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.bad('"%s" must be a string, got %s' % (key, _kind(value)))
            return None
        return value

    def path(self, entry: dict, key: str, want_dir: bool = False) -> Optional[str]:
        value = self.string(entry, key)
        if value is None:
            return None
        full = _resolve_path(self.base, value)
        if want_dir:
            if not os.path.isdir(full):
                self.bad('"%s": %s: no such directory' % (key, full))
                return None
        elif not os.path.isfile(full):
            self.bad('"%s": %s: no such file' % (key, full))
            return None
        elif not os.access(full, os.R_OK):
            self.bad('"%s": %s: not readable' % (key, full))
            return None
        return full

    def check(self, entry) -> Tuple[Optional[Job], Optional[str]]:
        """(job or None, the entry's name when usable)."""
        if not isinstance(entry, dict):
            self.bad("a job must be a table (an object) of keys, got %s" % _kind(entry))
            return None, None
        for key in entry:
            if key not in KEYS:
                self.bad(_unknown_key(str(key), KEYS))

        name = entry.get("name")
        if "name" not in entry:
            self.bad('missing "name"')
            name = None
        elif not isinstance(name, str) or not name.strip():
            self.bad('"name" must be a non-empty string, got %s'
                     % ("an empty string" if isinstance(name, str) else _kind(name)))
            name = None

        cmd = entry.get("cmd")
        if "cmd" not in entry:
            self.bad('missing "cmd" (a list of strings, e.g. ["python3", "prog.py"])')
            cmd = None
        elif isinstance(cmd, str):
            self.bad('"cmd" must be a list of strings, not a string: %s' % _cmd_hint(cmd))
            cmd = None
        elif not isinstance(cmd, list):
            self.bad('"cmd" must be a list of strings, got %s' % _kind(cmd))
            cmd = None
        elif not cmd:
            self.bad('"cmd" must not be empty')
            cmd = None
        else:
            for i, word in enumerate(cmd):
                if not isinstance(word, str):
                    self.bad('"cmd"[%d] must be a string, got %s' % (i, _kind(word)))
                    cmd = None
                    break

        stdin = self.string(entry, "stdin")
        stdin_file = self.path(entry, "stdin_file")
        if "stdin" in entry and "stdin_file" in entry:
            self.bad('"stdin" and "stdin_file" cannot both be given')

        env = {}
        raw_env = entry.get("env")
        if raw_env is not None:
            if not isinstance(raw_env, dict):
                self.bad('"env" must be a table of strings, got %s' % _kind(raw_env))
            else:
                for k, v in raw_env.items():
                    if not isinstance(v, str):
                        hint = (' (quote it: "%s")' % v if isinstance(v, (int, float))
                                and not isinstance(v, bool) else "")
                        self.bad('"env"."%s" must be a string, got %s%s' % (k, _kind(v), hint))
                    elif not k or "=" in k or "\0" in k or "\0" in v:
                        self.bad('"env": bad variable name %s' % json.dumps(k))
                    else:
                        env[k] = v

        cwd = self.path(entry, "cwd", want_dir=True)

        limits = {}
        for key, parse in (("time_limit", parse_seconds), ("wall_limit", parse_seconds),
                           ("memory_limit", parse_memory), ("output_limit", parse_output),
                           ("file_size_limit", parse_size), ("stack_limit", parse_size)):
            value = entry.get(key)
            if value is None:
                continue
            if not isinstance(value, (int, float, str)) or isinstance(value, bool):
                self.bad('"%s" must be a number or a string like %s, got %s'
                         % (key, '"2s"' if key.endswith("time_limit") or key == "wall_limit"
                            else '"256M"', _kind(value)))
                continue
            try:
                limits[key] = parse(value)
            except ValueError as e:
                self.bad('"%s": %s' % (key, e))
        for key in ("processes", "open_files"):
            given = entry.get(key)
            if given is None:
                continue
            value = given
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.bad('"%s" must be a positive integer, got %s'
                         % (key, json.dumps(given) if isinstance(given, (int, str))
                            else _kind(given)))
            elif key == "open_files" and (open_files_ceiling() or value) < value:
                self.bad('"open_files" %d is above what the kernel allows, %d (fs.nr_open)'
                         % (value, open_files_ceiling()))
            else:
                limits[key] = value

        profile = self.string(entry, "profile")
        if profile is not None:
            profile = self._profile(profile)

        fs = self._fs_lists(entry)

        expect_stdout = self.string(entry, "expect_stdout")
        expect_file = self.path(entry, "expect_file")
        if "expect_stdout" in entry and "expect_file" in entry:
            self.bad('"expect_stdout" and "expect_file" cannot both be given')
        expect_exit = entry.get("expect_exit", 0)
        if isinstance(expect_exit, bool) or not isinstance(expect_exit, int) \
                or not 0 <= expect_exit <= 255:
            self.bad('"expect_exit" must be an integer from 0 to 255, got %s'
                     % (expect_exit if isinstance(expect_exit, int)
                        and not isinstance(expect_exit, bool) else _kind(expect_exit)))
            expect_exit = 0

        if self.messages:
            return None, name
        return Job(name=name, cmd=tuple(cmd), index=self.index, where=self.where, stdin=stdin,
                   stdin_file=stdin_file, env=env, cwd=cwd or self.base,
                   profile=profile, expect_stdout=expect_stdout, expect_file=expect_file,
                   expect_exit=expect_exit, **fs, **limits), name

    def _fs_lists(self, entry: dict) -> dict:
        """fs_ro / fs_rw: lists of existing paths (relative to the jobs file), plus @system in
        fs_ro and @scratch in fs_rw, as Sandbox.run takes them."""
        lists = {}
        for key, own, other in (("fs_ro", landlock.SYSTEM, landlock.SCRATCH),
                                ("fs_rw", landlock.SCRATCH, landlock.SYSTEM)):
            raw = entry.get(key)
            if raw is None:
                continue
            if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
                what = _kind(raw) if not isinstance(raw, list) else "a list with %s" % next(
                    _kind(p) for p in raw if not isinstance(p, str))
                self.bad('"%s" must be a list of paths, got %s' % (key, what))
                continue
            out = []
            for p in raw:
                if p == own:
                    out.append(p)
                elif p == other:
                    self.bad('"%s": %s belongs in "%s"' % (
                        key, p, "fs_rw" if key == "fs_ro" else "fs_ro"))
                elif p.startswith("@"):
                    self.bad('"%s": unknown name %s (%s goes in fs_ro, %s in fs_rw)'
                             % (key, json.dumps(p), landlock.SYSTEM, landlock.SCRATCH))
                else:
                    full = _resolve_path(self.base, p)
                    if os.path.exists(full):
                        out.append(full)
                    else:
                        self.bad('"%s": %s: no such file or directory' % (key, full))
            lists[key] = tuple(out)
        return lists

    def _profile(self, spec: str) -> Optional[str]:
        if spec == builtin.UNCONFINED or builtin.path(spec) is not None:
            return spec
        full = _resolve_path(self.base, spec)
        if os.path.isfile(full):
            return full
        names = builtin.names()
        close = difflib.get_close_matches(spec, names, n=1, cutoff=0.6)
        self.bad('"profile": %s is neither a built-in profile (%s) nor a file (%s)%s'
                 % (json.dumps(spec), ", ".join(names), full,
                    ' (did you mean "%s"?)' % close[0] if close else ""))
        return None


def _check_entries(entries, base_dir: str, locate: Callable[[int], str],
                   first_use: Callable[[int], str]) -> Tuple[List[Job], List[Problem]]:
    jobs: List[Job] = []
    problems: List[Problem] = []
    seen = {}
    for index, entry in entries:
        where = locate(index)
        checker = _EntryChecker(base_dir, where, index)
        job, name = checker.check(entry)
        if name is not None:
            if name in seen:
                checker.bad('duplicate name "%s" (first used by %s)'
                            % (name, first_use(seen[name])))
                job = None
            else:
                seen[name] = index
        problems.extend(Problem(where, m, index, name) for m in checker.messages)
        if job is not None:
            jobs.append(job)
    return jobs, problems


def _format_of(path: str, text: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".toml":
        return "toml"
    if ext in (".jsonl", ".ndjson", ".json"):
        return "json"
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return "json" if stripped.startswith("{") else "toml"
    return "toml"


def _load_toml(text: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore
        except ImportError:
            raise JobsFileError("TOML jobs files need Python 3.11 or later (tomllib) or the "
                                "tomli package; or write the jobs as JSON lines (.jsonl)")
    return tomllib.loads(text)


def parse_jobs(text: str, *, name: str = "<jobs>", base_dir: Optional[str] = None,
               fmt: Optional[str] = None) -> Tuple[List[Job], List[Problem]]:
    """Jobs and problems from the text of a jobs file. fmt: "toml" or "json" (JSON lines, or a
    JSON array of objects), default: sniffed from `name`'s extension and the text. Relative
    paths in the jobs resolve against base_dir (default: the current directory)."""
    base = os.path.abspath(base_dir or os.getcwd())
    fmt = fmt or _format_of(name, text)
    if fmt == "toml":
        try:
            data = _load_toml(text)
        except ValueError as e:
            if isinstance(e, JobsFileError):
                raise
            raise JobsFileError("%s: invalid TOML: %s" % (name, e)) from None
        problems = [Problem(name, _unknown_key(str(k), ("job",))
                            .replace("unknown key", "unknown top-level key"))
                    for k in data if k != "job"]
        raw = data.get("job")
        if raw is None:
            hint = "; ".join(p.message for p in problems)
            raise JobsFileError("%s: no jobs: expected [[job]] tables%s"
                                % (name, " (%s)" % hint if hint else ""))
        if not isinstance(raw, list):
            raise JobsFileError('%s: "job" must be an array of tables ([[job]]), got %s'
                                % (name, _kind(raw)))
        jobs, more = _check_entries(enumerate(raw), base, lambda i: "job[%d]" % i,
                                    lambda i: "job[%d]" % i)
        return jobs, problems + more

    stripped = text.lstrip()
    if stripped.startswith("["):  # a JSON array of job objects
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise JobsFileError("%s: invalid JSON: %s" % (name, e)) from None
        if not isinstance(raw, list):
            raise JobsFileError("%s: expected one job object per line" % name)
        if not raw:
            raise JobsFileError("%s: no jobs" % name)
        return _check_entries(enumerate(raw), base, lambda i: "job[%d]" % i,
                              lambda i: "job[%d]" % i)

    entries = []
    bad_lines: List[Problem] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("//"):
            continue
        try:
            entries.append((lineno, json.loads(s)))
        except json.JSONDecodeError as e:
            hint = (" (each line must hold one whole job object: JSON lines)"
                    if s in ("{", "[") or s.startswith('"') else "")
            bad_lines.append(Problem("%s:%d" % (name, lineno), "invalid JSON at column %d: %s%s"
                                     % (e.colno + len(line) - len(line.lstrip()), e.msg, hint),
                                     lineno))
    if not entries and not bad_lines:
        raise JobsFileError("%s: no jobs (expected one JSON object per line)" % name)
    jobs, problems = _check_entries(entries, base, lambda n: "%s:%d" % (name, n),
                                    lambda n: "line %d" % n)
    problems = sorted(problems + bad_lines, key=lambda p: p.index)
    return jobs, problems


def load_jobs(path) -> Tuple[List[Job], List[Problem]]:
    """(jobs, problems) from a jobs file: TOML ([[job]] tables) or JSON lines (.jsonl, .json,
    or a file whose first line is a JSON object); "-" reads standard input. Relative paths in
    the jobs resolve against the file's directory. Raises JobsFileError when the file as a whole
    is unusable; a bad entry is a Problem and the other entries are still returned."""
    path = os.fspath(path)
    if path == "-":
        return parse_jobs(sys.stdin.read(), name="<stdin>", base_dir=os.getcwd())
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise JobsFileError("%s: %s" % (path, e.strerror or e)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JobsFileError("%s: not UTF-8 text (byte %d)" % (path, e.start)) from None
    return parse_jobs(text, name=path, base_dir=os.path.dirname(os.path.abspath(path)))


# ============================================================================================
# running one job (in any worker: thread or process)

_cache_lock = threading.Lock()
_cache: "collections.OrderedDict[object, dict]" = collections.OrderedDict()
_CACHE_BATCHES = 4      # sandboxes of this many recent batches are kept per process


def _close_sandboxes(per_batch: dict) -> None:
    """Stop the zygotes of a batch's sandboxes (the batch is over, or evicted from the cache)."""
    for _lock, value in per_batch.values():
        if value is not None and not isinstance(value, Exception):
            value.close()


def close_batch(batch_key) -> None:
    """Forget a batch's sandboxes in this process and stop their zygotes."""
    with _cache_lock:
        per_batch = _cache.pop(batch_key, None)
    if per_batch:
        _close_sandboxes(per_batch)


def _sandbox_for(profile: str, batch_key, user=None, options: tuple = (), zygote=True):
    """The Sandbox for (profile, user, options, zygote) in this batch, compiled on first use
    (once per process and batch). A profile that cannot be compiled is remembered too, as its
    exception. options: extra Sandbox keywords as a tuple of (name, value) pairs."""
    evicted = []
    with _cache_lock:
        per_batch = _cache.get(batch_key)
        if per_batch is None:
            per_batch = _cache[batch_key] = {}
            while len(_cache) > _CACHE_BATCHES:
                evicted.append(_cache.popitem(last=False)[1])
        else:
            _cache.move_to_end(batch_key)
        slot = per_batch.get((profile, user, options, zygote))
        if slot is None:
            slot = per_batch[(profile, user, options, zygote)] = [threading.Lock(), None]
    for old in evicted:
        _close_sandboxes(old)
    lock, value = slot
    if value is None:
        with lock:
            if slot[1] is None:
                from . import runner
                spec = profile
                if builtin.path(profile) is not None and os.path.exists(profile):
                    # the runner would take a file of that name in our cwd over the built-in
                    spec = str(builtin.path(profile))
                try:
                    slot[1] = runner.Sandbox(spec, user=user, zygote=zygote,
                                             **dict(options))
                except Exception as e:  # ProfileError, SetupRefused, OSError...
                    slot[1] = e
            value = slot[1]
    if isinstance(value, Exception):
        raise value
    return value


def _error_result(job: Job, profile: str, stage: str, message: str) -> Result:
    return Result(argv=list(job.cmd), verdict="SETUP_ERROR", profile=profile,
                  setup_error={"stage": stage, "errno": 0, "errno_name": None,
                               "message": message},
                  limits={"cpu_time": job.time_limit, "wall_time": job.wall_limit,
                          "memory": job.memory_limit, "output": job.output_limit,
                          "processes": job.processes, "file_size": job.file_size_limit,
                          "open_files": job.open_files, "stack": job.stack_limit})


def _run(job: Job, profile: str, batch_key, user=None, zygote=True) -> Result:
    try:
        sb = _sandbox_for(profile, batch_key, user, zygote=zygote)
    except Exception as e:
        stage = "user" if type(e).__name__ == "SetupRefused" else "profile"
        return _error_result(job, profile, stage, "%s %s: %s" % (
            stage, user if stage == "user" else profile, e))
    stdin_file = None
    try:
        if job.stdin_file is not None:
            stdin_file = open(job.stdin_file, "rb")
        return sb.run(list(job.cmd), stdin=stdin_file if stdin_file is not None else job.stdin,
                      env=job.env or None, cwd=job.cwd, cpu_time=job.time_limit,
                      timeout=job.wall_limit, memory=job.memory_limit,
                      output_limit=job.output_limit, processes=job.processes,
                      file_size=job.file_size_limit, open_files=job.open_files,
                      stack=job.stack_limit,
                      fs_ro=list(job.fs_ro) if job.fs_ro is not None else None,
                      fs_rw=list(job.fs_rw) if job.fs_rw is not None else None)
    except Exception as e:
        return _error_result(job, profile, "batch", "%s: %s" % (type(e).__name__, e))
    finally:
        if stdin_file is not None:
            stdin_file.close()


def _fmt_size(n) -> str:
    return "?" if n is None else format_size(n)


def _fmt_s(seconds) -> str:
    return "?" if seconds is None else "%gs" % round(seconds, 3)


def verdict_reason(r: Result) -> str:
    """One line: why a run that did not end on its own ended (starts with the verdict)."""
    limits = r.limits or {}
    if r.verdict == "SETUP_ERROR":
        return "SETUP_ERROR: %s" % ((r.setup_error or {}).get("message") or "set-up failed")
    if r.verdict == "TIME_LIMIT":
        if r.time_limit_kind == "cpu":
            return ("TIME_LIMIT: CPU time limit of %s exceeded (CPU %.2fs)"
                    % (_fmt_s(limits.get("cpu_time")), r.cpu_time))
        return ("TIME_LIMIT: wall time limit of %s exceeded (CPU %.2fs)"
                % (_fmt_s(limits.get("wall_time")), r.cpu_time))
    if r.verdict == "MEMORY_LIMIT":
        return ("MEMORY_LIMIT: memory limit of %s exceeded (peak %s)"
                % (_fmt_size(limits.get("memory")), _fmt_size(r.peak_memory)))
    if r.verdict == "OUTPUT_LIMIT":
        return "OUTPUT_LIMIT: output limit of %s exceeded" % _fmt_size(limits.get("output"))
    if r.verdict == "SECCOMP_KILLED":
        return "SECCOMP_KILLED: killed by the seccomp filter (SIGSYS)"
    if r.verdict == "SIGNALED":
        return "SIGNALED: killed by %s" % r.signal_name
    return r.verdict


def _preview(data: bytes, limit: int = 60) -> str:
    text = data.decode("utf-8", "replace")
    return json.dumps(text if len(text) <= limit else text[:limit] + "...")


def _lines(data: bytes) -> List[bytes]:
    """Lines with their "\n" (the last one may lack it)."""
    return re.findall(b"[^\n]*\n|[^\n]+$", data)


def _stdout_mismatch(got: bytes, want: bytes, what: str) -> str:
    if got.rstrip(b"\n") == want.rstrip(b"\n"):
        return ("stdout differs from %s only in trailing newlines (got %d, expected %d)"
                % (what, len(got) - len(got.rstrip(b"\n")), len(want) - len(want.rstrip(b"\n"))))
    g_lines, w_lines = _lines(got), _lines(want)
    for i, (g, w) in enumerate(zip(g_lines, w_lines)):
        if g.rstrip(b"\n") != w.rstrip(b"\n"):
            return ("stdout differs from %s at line %d: got %s, expected %s"
                    % (what, i + 1, _preview(g.rstrip(b"\n")), _preview(w.rstrip(b"\n"))))
    n = min(len(g_lines), len(w_lines))
    if len(g_lines) > len(w_lines):
        return ("stdout differs from %s: extra output from line %d: %s"
                % (what, n + 1, _preview(b"".join(g_lines[n:]))))
    return ("stdout differs from %s: output ends early, line %d expected: %s"
            % (what, n + 1, _preview(b"".join(w_lines[n:]))))


def judge(job: Job, result: Result) -> JobResult:
    """Passed or not, and every reason why not."""
    failures: List[str] = []
    ran = result.verdict in ("OK", "NONZERO_EXIT")
    if not ran:
        failures.append(verdict_reason(result))
    elif result.exit_code != job.expect_exit:
        failures.append("exit status %s, expected %d" % (result.exit_code, job.expect_exit))
    if ran and (job.expect_stdout is not None or job.expect_file is not None):
        got = result.stdout or b""
        if job.expect_file is not None:
            what = "expect_file %s" % job.expect_file
            try:
                with open(job.expect_file, "rb") as f:
                    want = f.read()
            except OSError as e:
                want = None
                failures.append("cannot read expect_file %s: %s" % (job.expect_file, e.strerror))
        else:
            what, want = "expect_stdout", job.expect_stdout.encode("utf-8")
        if want is not None and got != want:
            failures.append(_stdout_mismatch(got, want, what))
    return JobResult(job=job, result=result, passed=not failures, failures=failures)


def execute_job(job: Job, default_profile: str = "default", batch_key=None,
                user=None, zygote=True) -> JobResult:
    """Run and judge one job: the picklable work item handed to an executor. Sandboxes are
    cached per process, per (batch_key, profile, user, zygote)."""
    profile = job.profile or default_profile
    jr = judge(job, _run(job, profile, batch_key, user, zygote))
    jr.worker = _worker_name()
    return jr


_worker = (0, "")


def _worker_name() -> str:
    """host:pid of this process (asked once per process)."""
    global _worker
    pid = os.getpid()
    if _worker[0] != pid:
        _worker = (pid, "%s:%d" % (socket.gethostname() or "localhost", pid))
    return _worker[1]


def _not_started(job, default_profile, batch_key, user, zygote, stop, work=None):
    """The thread pool's work item: like execute_job (or `work`, with the same arguments), but
    nothing starts once stop is set."""
    if stop.is_set():
        return None
    out = (work or execute_job)(job, default_profile, batch_key, user, zygote)
    r = getattr(out, "result", None)
    if stop.is_set() and r is not None and (r.setup_error or {}).get("stage") == "slot":
        return None   # it waited for a slot when the batch stopped: never started
    return out


# ============================================================================================
# running a batch

def _kill_running_jobs() -> int:
    """Kill every run this process has in progress; each supervisor then kills its tree."""
    from .runner import cancel_all
    return cancel_all()


def _outcome(fut, job: Job, default_profile: str) -> Optional[JobResult]:
    if fut.cancelled():
        return None
    exc = fut.exception()
    if exc is not None:
        result = _error_result(job, job.profile or default_profile, "batch",
                               "the executor failed: %s: %s" % (type(exc).__name__, exc))
        return judge(job, result)
    return fut.result()


def _output_size(jr: JobResult) -> int:
    """Bytes of output a result came with (what a burst holds until delivered)."""
    r = jr.result
    return len(r.stdout or b"") + len(r.stderr or b"")


# descriptors a batch of our own pool holds: per slot, two threads, each with its zygote's
# socket and pidfd and a job's three pipes and pidfd (measured at -j 20 and 50: ~13), plus
# the process's own
_FDS_PER_SLOT, _FDS_BASE = 13, 64


def open_files_needed(parallel: int) -> int:
    """About how many descriptors run_batch's own pool holds with `parallel` slots."""
    return _FDS_PER_SLOT * parallel + _FDS_BASE


def run_batch(jobs: Iterable[Job], *, jobs_parallel: Optional[int] = None,
              executor: Optional[concurrent.futures.Executor] = None,
              on_result: Optional[Callable[[JobResult], None]] = None,
              default_profile: str = "default",
              on_progress: Optional[Callable[[int, int, int], None]] = None,
              grace: float = GRACE_S, kill_on_interrupt=None,
              user=None, zygote: bool = True, work: Optional[Callable] = None,
              batch_key=None) -> List[JobResult]:
    """Run jobs in parallel; return their JobResults in the jobs' order.

    executor: any concurrent.futures.Executor (default: our own pool, sandbox/jobthreads.py,
    taking jobs in order: with zygotes and jobs_parallel N > 1, 2N threads whose zygotes start
    the commands as slots free, at most N at once (sandbox/runslots.py; starts may reorder
    within a window of about N); else N threads; jobs_parallel defaults to os.cpu_count());
    at most max(3 x jobs_parallel, jobs_parallel + 32) jobs are submitted ahead.
    on_result(job_result) is called in the calling thread as each job finishes (completion
    order; while jobs remain to submit, in bursts at most ~0.1 s apart, which saves the calling
    thread a wake-up per job); on_progress(done, total, failed) after each job and at least
    every 0.1 s.
    user: run every job as this user ("name", uid or "uid:gid"; needs root). Advisable when
    the batch runs as root: a job running as root may signal the batch process itself.
    zygote: start jobs through each profile's pre-filtered zygote where the profile allows it
    (faster; the jobs of a profile share one PID namespace instead of one each). The zygotes
    of this process stop when the batch returns.

    With our own pool, the process's soft RLIMIT_NOFILE is raised (up to the hard limit) when
    the batch needs more descriptors (~13 per slot); the commands keep the limit it had.

    Ctrl-C (KeyboardInterrupt in the calling thread): no new job starts; running jobs get
    `grace` seconds to end, then (kill_on_interrupt, default: when the pool is our own) every
    child of this process that leads its own session with no_new_privs (what Sandbox.run
    starts) is SIGKILLed, which makes its run end and its tree be killed; kill_on_interrupt may
    also be a callable that kills the runs wherever they are (e.g. on every Dask worker).
    Finished results are passed to on_result as usual (killed ones with interrupted=True), then
    BatchInterrupted is raised with .results and .not_run. Another Ctrl-C during the grace
    kills at once.

    work: the picklable work item, work(job, default_profile, batch_key, user, zygote)
    -> JobResult (default execute_job; `sandbox grade` passes its own). batch_key: the key of this batch's
    compiled sandboxes (default: a fresh one), so a caller can compile them ahead.
    """
    jobs = list(jobs)
    total = len(jobs)
    parallel = max(1, int(jobs_parallel or os.cpu_count() or 1))
    own = executor is None
    if kill_on_interrupt is None:
        kill_on_interrupt = own
    stop = threading.Event()
    if own:
        from .runner import raise_open_files
        raise_open_files(open_files_needed(parallel))
        # Two threads per command slot: while some watch their jobs, the others' jobs wait
        # in their zygotes to start the moment a slot frees (sandbox/runslots.py). A hand-over
        # through Python instead measured slower than one thread per slot (bench_batch: 1250
        # against 1540 jobs/s of /bin/true at -j 2).
        # Without zygotes runs take their slots themselves (N threads do as well); -j 1 keeps
        # one thread, so that its jobs start strictly in order, one after the other.
        slots = runslots.RunSlots(parallel) if zygote and parallel > 1 else None
        executor = jobthreads.JobThreads(parallel, slots=slots)
    batch_key = batch_key or uuid.uuid4().hex
    done_q: "queue.SimpleQueue" = queue.SimpleQueue()
    waiting = collections.deque(enumerate(jobs))
    in_flight: dict = {}
    # a small window until results come with little output (see _AHEAD); it is what holds
    # back workers whose results wait for a slower calling thread, whole outputs included
    window = small_window = max(parallel * 3, parallel + 2)
    results: List[JobResult] = []
    position = {}       # id(JobResult or Job) -> position in `jobs`: the order returned
    not_run: List[Job] = []
    failed = 0

    def in_order(items):
        return sorted(items, key=lambda x: position[id(x)])

    def submit_more():
        while waiting and len(in_flight) < window and not stop.is_set():
            pos, job = waiting.popleft()
            position[id(job)] = pos
            if own:
                fut = executor.submit(_not_started, job, default_profile, batch_key, user, zygote,
                                      stop, work)
            else:
                fut = executor.submit(work or execute_job, job, default_profile, batch_key, user,
                                      zygote)
            in_flight[fut] = (pos, job)
            fut.add_done_callback(done_q.put)

    def deliver(jr: JobResult):
        nonlocal failed
        results.append(jr)
        if not jr.passed:
            failed += 1
        if on_result is not None:
            on_result(jr)
        if on_progress is not None:
            on_progress(len(results), total, failed)

    def take(fut, interrupted=False):
        pos, job = in_flight.pop(fut, (None, None))
        if job is None:
            return None  # a cancelled future's callback, already accounted for
        jr = _outcome(fut, job, default_profile)
        if jr is None:
            not_run.append(job)
            return None
        position[id(jr)] = pos
        r = jr.result
        if interrupted and r.verdict == "SIGNALED" and r.signal == signal.SIGKILL:
            jr.interrupted = True
            jr.passed = False
            jr.failures.insert(0, "INTERRUPTED: killed when the batch was interrupted (after "
                                  "the %gs grace)" % grace)
        return jr

    since, done_since = time.monotonic(), 0   # the rate is the last bursts' (see _DELIVER_S)
    try:
        submit_more()
        while in_flight:
            try:
                fut = done_q.get(timeout=_TICK_S)
            except queue.Empty:
                if on_progress is not None:
                    on_progress(len(results), total, failed)
                continue
            held = 0   # bytes of output the burst's results came with
            with _signals_held():  # a Ctrl-C between a take and its deliver would lose it
                while fut is not None:
                    jr = take(fut)
                    if jr is not None:
                        held += _output_size(jr)
                        deliver(jr)
                    try:
                        fut = done_q.get_nowait()
                    except queue.Empty:
                        fut = None
            small = held < _BURST_BYTES
            window = max(small_window, parallel + _AHEAD) if small else small_window
            submit_more()
            if waiting and small and not stop.is_set():
                # the rate since the previous burst, not since the start: jobs that turn fast
                # must not find the calling thread asleep for the slow ones' time
                now = time.monotonic()
                rate = (len(results) - done_since) / max(now - since, 1e-3)
                since, done_since = now, len(results)
                ahead = max(len(in_flight) - parallel, 0)
                time.sleep(min(max(ahead / max(rate, 1.0) / 4, _DELIVER_S), _DELIVER_MAX_S))
    except BaseException as exc:
        stop.set()
        if own and slots is not None:
            slots.stop()
        for pos, job in waiting:
            position[id(job)] = pos
            not_run.append(job)
        waiting.clear()
        for fut in list(in_flight):
            if fut.cancel():
                not_run.append(in_flight.pop(fut)[1])
        _wind_down(in_flight, done_q, take, deliver, grace, kill_on_interrupt)
        if own:
            executor.shutdown(wait=not in_flight, cancel_futures=True)
        not_run.extend(job for _, job in in_flight.values())  # abandoned: still running
        if isinstance(exc, KeyboardInterrupt):
            raise BatchInterrupted(in_order(results), in_order(not_run)) from None
        raise
    finally:
        if not in_flight:
            close_batch(batch_key)  # (abandoned jobs keep their zygote)
    if own:
        executor.shutdown(wait=True)
        if slots is not None:
            slots.close()   # (after an interrupt, abandoned runs keep it until collected)
    return in_order(results)


class _signals_held:
    """Hold SIGINT and the stop signals (in the main thread) for a few lines that must not be
    split by the KeyboardInterrupt or SystemExit their handlers raise; they arrive right
    after."""
    SIGNALS = {signal.SIGINT, *stopsignals.STOP}

    def __enter__(self):
        self.on = threading.current_thread() is threading.main_thread()
        if self.on:
            self.old = _sigmask(signal.SIG_BLOCK, self.SIGNALS)

    def __exit__(self, *exc):
        if self.on:
            _sigmask(signal.SIG_SETMASK, self.old)


# signal.pthread_sigmask turns the old mask into a set of enums: a cost per delivered result
_sigmask = getattr(_signal, "pthread_sigmask", None) or signal.pthread_sigmask


def _wind_down(in_flight, done_q, take, deliver, grace, kill):
    """After an interrupt: collect running jobs, killing them once the grace is over. Futures
    are polled directly too (the interrupt may have swallowed one from the queue)."""
    deadline = time.monotonic() + grace
    give_up = deadline + KILL_GIVE_UP_S
    killing = False
    while in_flight:
        try:
            for fut in [f for f in in_flight if f.done()]:
                with _signals_held():
                    jr = take(fut, interrupted=killing)
                    if jr is not None:
                        try:
                            deliver(jr)
                        except Exception:
                            pass
            if not in_flight:
                return
            now = time.monotonic()
            if now >= deadline:
                if not kill or now >= give_up:
                    return
                killing = True
                (kill if callable(kill) else _kill_running_jobs)()
            try:
                done_q.get(timeout=0.05 if killing else max(0.01, min(_TICK_S, deadline - now)))
            except queue.Empty:
                pass
        except KeyboardInterrupt:
            deadline = time.monotonic()  # a second Ctrl-C: no more grace


# ============================================================================================
# command line

BATCH_DESCRIPTION = """\
Run the jobs of JOBS in parallel, each under a seccomp profile with its limits, and check
their exit status and output. JOBS is a TOML file of [[job]] tables or a JSON-lines file (one
object per line; .jsonl/.json, or sniffed), "-" for stdin:

  [[job]]
  name = "hello"                         # required, unique
  cmd = ["python3", "hello.py"]          # required, a list of strings
  stdin = "..."  or  stdin_file = "in.txt"
  env = { KEY = "value" }
  cwd = "dir"                            # default: the jobs file's directory
  time_limit = "2s"  wall_limit = "5s"  memory_limit = "256M"
  output_limit = "1M"  processes = 40    # default: --time-limit & co.
  file_size_limit = "16M"  open_files = 64  stack_limit = "8M"
  profile = "no-network"                 # built-in name or file (default: --profile)
  fs_ro = ["@system", "data"]            # Landlock: read-only paths; fs_rw = ["@scratch"]
  expect_stdout = "42\\n"  or  expect_file = "hello.out"
  expect_exit = 0                        # the default

Paths are relative to the jobs file. A job passes when it ran to its end (verdict OK or
NONZERO_EXIT) with exit status expect_exit and, when given, exactly the expected stdout.
Each distinct profile is compiled once."""

BATCH_EPILOG = """\
output:
  --results FILE   one JSON line per job as it finishes: the `sandbox run --json` Result plus
                   "job", "passed", "failures" and "worker" (host:pid that ran it)
  --junit FILE     JUnit XML (GitLab, Jenkins): one testcase per job, classname sandbox.batch
  stderr           a progress line on a terminal; a summary at the end (per verdict counts,
                   slowest jobs, why jobs failed)

Ctrl-C: no new job starts; running jobs get --grace seconds, then they are killed (their
whole tree); finished results are written.

exit status:
  0    every job passed
  1    a job failed (or a bad entry was skipped)
  2    bad jobs file or command line (with --strict: any bad entry; nothing runs)
  130  interrupted (Ctrl-C); 143 for SIGTERM and 129 for SIGHUP, which stop it the same way
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % value)
    return value


def with_default_limits(jobs: Sequence[Job], **defaults) -> List[Job]:
    """The jobs, each limit a job does not set taken from defaults (LIMIT_KEYS, None: none).
    A job's own time_limit sets its wall limit too (2 x CPU + 1 s), so a default wall_limit
    goes only to jobs with neither."""
    given = {k: v for k, v in defaults.items() if v is not None}
    unknown = set(given) - set(LIMIT_KEYS)
    if unknown:
        raise TypeError("not a job limit: %s" % ", ".join(sorted(unknown)))
    if not given:
        return list(jobs)

    def unset(job, key):
        if key == "wall_limit" and job.time_limit is not None:
            return False
        return getattr(job, key) is None

    return [dataclasses.replace(job, **{k: v for k, v in given.items() if unset(job, k)})
            for job in jobs]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Define the `batch` subcommand on an argparse subparsers object (func=cmd_batch)."""
    p = subparsers.add_parser("batch", help="run many jobs from a TOML or JSON-lines file, in "
                                            "parallel, with expected results",
                              description=BATCH_DESCRIPTION, epilog=BATCH_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    p.set_defaults(func=cmd_batch)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("jobs_file", metavar="JOBS", help="jobs file (TOML or JSON lines), - for stdin")
    p.add_argument("-j", "--jobs", dest="parallel", metavar="N", type=_positive_int,
                   default=None, help="jobs run at once (default: the number of CPUs, %d); "
                   "jobs are taken in file order, and with N > 1 may start out of order "
                   "within a window of about N; the soft open-files limit is raised to what "
                   "N needs (~13 per job), with a warning when the hard limit is too low"
                   % (os.cpu_count() or 1))
    p.add_argument("--results", metavar="FILE",
                   help="write one JSON line per job as it finishes (- for stdout)")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report at the end")
    p.add_argument("--profile", default="default",
                   help="profile of jobs that name none: built-in name or path (default: "
                        "default; 'unconfined' for none)")
    p.add_argument("--user", metavar="USER[:GROUP]",
                   help="run every job as this user (needs root; advisable as root: a job "
                        "running as root can signal the batch itself)")
    p.add_argument("--no-zygote", dest="zygote", action="store_false",
                   help="start every job directly (its own filter install and, as root, its "
                        "own PID namespace) instead of through a pre-filtered zygote")
    p.add_argument("--strict", action="store_true",
                   help="any bad entry in JOBS stops the batch before it starts (exit 2)")
    p.add_argument("--grace", metavar="S", type=_seconds, default=GRACE_S,
                   help="on Ctrl-C, seconds running jobs may still finish before they are "
                        "killed (default: %g)" % GRACE_S)
    add_limit_options(
        p.add_argument_group("limits of the jobs that set none of their own (default: none, "
                             "but 64M of output kept per stream; a job's own time_limit gives "
                             "it its wall limit too)"),
        time="CPU seconds (time_limit)",
        wall="wall-clock seconds (wall_limit; default: 2 x CPU + 1 with a CPU limit)",
        memory="e.g. 256M (memory_limit)", output="bytes kept per captured stream (output_limit)",
        processes="tasks in a job's tree (processes)")
    g = p.add_argument_group("where jobs run")
    g.add_argument("--executor", choices=("threads", "processes", "dask"), default="threads",
                   help="threads of this process (the default), a pool of processes here, or "
                        "Dask distributed workers (needs the dask extra)")
    g.add_argument("--scheduler", metavar="ADDR",
                   help="with --executor dask: the scheduler, e.g. tcp://host:8786 (default: "
                        "start a local cluster of -j worker processes for this batch)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress line and no summary (problems and errors still show)")


class _Progress:
    """`[ 12/100]  1 failed  8.3 jobs/s  ETA 0:11` on a terminal, redrawn at most 10x/s."""

    def __init__(self, stream, enabled: bool):
        self.stream = stream
        self.enabled = enabled
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int, failed: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = ""
        if rate > 0 and done < total:
            left = int((total - done) / rate + 0.5)
            eta = "  ETA %d:%02d" % (left // 60, left % 60)
        width = len(str(total))
        line = "[%*d/%d]  %d failed  %.1f jobs/s%s" % (width, done, total, failed, rate, eta)
        try:
            self.stream.write("\r" + line + "\x1b[K")
            self.stream.flush()
            self.shown = True
        except (OSError, ValueError):
            self.enabled = False

    def clear(self) -> None:
        if self.shown:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self.shown = False


class _JsonlWriter:
    def __init__(self, target: Optional[str]):
        self.f = None
        self.close_it = False
        if target == "-":
            self.f = sys.stdout
        elif target:
            self.f = open(target, "w", encoding="utf-8")
            self.close_it = True

    def __call__(self, jr: JobResult) -> None:
        if self.f is None:
            return
        try:
            self.f.write(json.dumps(jr.to_json()) + "\n")
            self.f.flush()
        except BrokenPipeError:
            # the reader went away: stop writing results, keep running and reporting
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.f.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
            self.f = None
        except OSError as e:  # disk full, ...: say so once, keep running
            print("sandbox batch: --results: %s; no more results are written"
                  % (e.strerror or e), file=sys.stderr)
            self.f = None

    def close(self) -> None:
        if self.f is not None and self.close_it:
            self.f.close()
        self.f = None


def _summary(results: List[JobResult], problems: List[Problem], not_run: List[Job],
             elapsed: float, parallel: int, stream) -> None:
    counts = collections.Counter(r.result.verdict for r in results)
    passed_by = collections.Counter(r.result.verdict for r in results if r.passed)
    interrupted = [r for r in results if r.interrupted]
    failed = [r for r in results if not r.passed and not r.interrupted]
    n_pass = sum(1 for r in results if r.passed)
    rate = len(results) / elapsed if elapsed > 0 else 0.0
    w = stream.write
    w("sandbox batch: %d job%s: %d passed, %d failed%s in %.2fs (%.1f jobs/s, -j %d)\n"
      % (len(results), "" if len(results) == 1 else "s", n_pass, len(failed),
         ", %d interrupted" % len(interrupted) if interrupted else "", elapsed, rate, parallel))
    if counts:
        w("  %-16s %6s %7s\n" % ("verdict", "jobs", "passed"))
        from .result import VERDICTS
        for verdict in list(VERDICTS) + sorted(set(counts) - set(VERDICTS)):
            if counts.get(verdict):
                w("  %-16s %6d %7d\n" % (verdict, counts[verdict], passed_by.get(verdict, 0)))
    if interrupted or not_run:
        w("  interrupted: %d killed, %d not run\n" % (len(interrupted), len(not_run)))
    bad = len({p.index for p in problems if p.index >= 0})
    if bad:
        w("  bad entries (not run): %d\n" % bad)
    slow = sorted(results, key=lambda r: r.result.wall_time, reverse=True)[:5]
    if slow:
        w("  slowest: %s\n" % ", ".join("%s %.2fs" % (r.name, r.result.wall_time) for r in slow))
    if failed:
        w("  failed:\n")
        for r in failed[:20]:
            w("    %s: %s\n" % (r.name, "; ".join(r.failures)))
        if len(failed) > 20:
            w("    ... and %d more (see --results / --junit)\n" % (len(failed) - 20))


def cmd_batch(args) -> int:
    """`sandbox batch`: see BATCH_DESCRIPTION. Returns the exit status."""
    try:
        return _cmd_batch(args)
    except KeyboardInterrupt:  # outside the batch itself (loading, writing the report)
        print("sandbox batch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _cmd_batch(args) -> int:
    err = sys.stderr
    try:
        jobs, problems = load_jobs(args.jobs_file)
    except JobsFileError as e:
        print("sandbox batch: %s" % e, file=err)
        return EXIT_BAD_FILE
    shown = args.jobs_file if args.jobs_file != "-" else "<stdin>"
    for p in problems:
        prefix = "" if (p.where.startswith(shown + ":") or p.where == shown) else shown + ": "
        print("sandbox batch: %s%s" % (prefix, p), file=err)
    if problems and args.strict:
        print("sandbox batch: %d problem(s) in %s; nothing run (--strict)"
              % (len(problems), shown), file=err)
        return EXIT_BAD_FILE
    if not jobs:
        print("sandbox batch: %s: no valid jobs to run" % shown, file=err)
        return EXIT_BAD_FILE
    jobs = with_default_limits(jobs, time_limit=args.time_limit, wall_limit=args.wall_limit,
                               memory_limit=args.memory_limit, output_limit=args.output_limit,
                               processes=args.processes)

    default_profile = args.profile
    if default_profile != builtin.UNCONFINED and builtin.path(default_profile) is None:
        if not os.path.isfile(default_profile):
            print("sandbox batch: --profile %s: no such file or built-in profile (built-ins: %s)"
                  % (default_profile, ", ".join(builtin.names())), file=err)
            return EXIT_BAD_FILE
        default_profile = os.path.abspath(default_profile)

    if args.user is not None:
        from . import runner
        try:
            runner.check_user(args.user)
        except (KeyError, ValueError, runner.SetupRefused) as e:
            print("sandbox batch: --user %s: %s" % (args.user, e.args[0] if e.args else e),
                  file=err)
            return EXIT_BAD_FILE

    try:
        writer = _JsonlWriter(args.results)
    except OSError as e:
        print("sandbox batch: --results %s: %s" % (args.results, e.strerror or e), file=err)
        return EXIT_BAD_FILE
    if args.junit and args.junit != "-":  # fail now rather than after the batch
        target = args.junit if os.path.exists(args.junit) else \
            (os.path.dirname(os.path.abspath(args.junit)))
        if not os.access(target, os.W_OK):
            writer.close()
            print("sandbox batch: --junit %s: %s" % (
                args.junit, "not writable" if os.path.exists(target) else "no such directory"),
                file=err)
            return EXIT_BAD_FILE

    if args.scheduler and args.executor != "dask":
        writer.close()
        print("sandbox batch: --scheduler needs --executor dask", file=err)
        return EXIT_BAD_FILE
    from .executors import ExecutorUnavailable, batch_executor
    try:
        with batch_executor(args.executor, args.parallel, args.scheduler,
                            default_parallel=os.cpu_count() or 1) as where:
            return _run_and_report(args, jobs, problems, shown, default_profile, writer, where)
    except ExecutorUnavailable as e:
        writer.close()
        print("sandbox batch: %s" % e, file=err)
        return EXIT_BAD_FILE


def _run_and_report(args, jobs, problems, shown, default_profile, writer, where) -> int:
    err = sys.stderr
    parallel = where.parallel
    results_on_tty = args.results == "-" and sys.stdout.isatty()
    progress = _Progress(err, enabled=not args.quiet and err.isatty() and not results_on_tty)
    start = time.monotonic()
    interrupted = False
    not_run: List[Job] = []

    if where.executor is None:
        from .runner import raise_open_files
        need = open_files_needed(parallel)
        have = raise_open_files(need)
        if have < need:
            err.write("sandbox batch: warning: -j %d needs about %d open files, but the hard "
                      "limit is %d (ulimit -Hn): jobs may fail with \"Too many open files\"; "
                      "use a smaller -j or raise the limit\n" % (parallel, need, have))
    with stopsignals.as_interrupt() as stopped:   # (a CI cancelling the batch: as Ctrl-C)
        try:
            from .junit import slim

            def on_result(jr):
                writer(jr)   # the whole output goes to --results; what stays is what's reported
                slim(jr, keep_for_report=bool(args.junit))

            results = run_batch(jobs, jobs_parallel=parallel, executor=where.executor,
                                kill_on_interrupt=where.kill_on_interrupt, on_result=on_result,
                                default_profile=default_profile, on_progress=progress,
                                grace=args.grace, user=args.user, zygote=args.zygote)
        except BatchInterrupted as e:
            interrupted = True
            results, not_run = e.results, e.not_run
        finally:
            progress.clear()
            writer.close()
    elapsed = time.monotonic() - start

    if args.junit:
        from .junit import write_junit
        try:
            write_junit(args.junit, results, problems=problems, not_run=not_run,
                        suite_name=os.path.basename(shown), elapsed=elapsed,
                        properties={"profile": args.profile, "parallel": str(parallel),
                                    "executor": where.where, "jobs_file": shown})
        except OSError as e:
            print("sandbox batch: --junit %s: %s" % (args.junit, e.strerror or e), file=err)
    if not args.quiet or interrupted:
        _summary(results, problems, not_run, elapsed, parallel, err)
    if interrupted:
        what, status = stopsignals.ending(stopped, EXIT_INTERRUPTED)
        print("sandbox batch: %s" % what, file=err)
        return status
    if problems or any(not r.passed for r in results):
        return EXIT_FAILED
    return EXIT_PASSED


def main(argv=None) -> int:
    """Stand-alone entry (`python -m sandbox.batch JOBS ...`), the same as `sandbox batch`."""
    parser = argparse.ArgumentParser(prog="sandbox batch", description=BATCH_DESCRIPTION,
                                     epilog=BATCH_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return cmd_batch(args)


if __name__ == "__main__":
    # run the importable sandbox.batch, not this __main__ copy: the work items handed to
    # process pools and Dask workers must pickle by reference to a module they can import
    from sandbox import batch as _importable
    sys.exit(_importable.main())

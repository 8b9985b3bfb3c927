"""`sandbox batch` and sandbox.batch: jobs files (TOML, JSON lines) and their exact error messages,
parallel runs with per-job results, expectations, JSON-lines streaming, JUnit XML, profiles
compiled once per batch, Ctrl-C, containment of a mixed batch, and the command's exit statuses.

Commands that must not outlive a test carry a marker unique to the test in their argv, so that
leftovers can be found by scanning /proc.
"""
import argparse
import datetime
import concurrent.futures
import json
import multiprocessing
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from sandbox import batch
from sandbox import limits
from sandbox.batch import Job, JobsFileError, load_jobs, parse_jobs, run_batch
from waiting import wait_for

REPO = pathlib.Path(__file__).resolve().parents[1]

try:
    import sandbox._core  # noqa: F401
    HAVE_CORE = True
except ImportError:
    HAVE_CORE = False
needs_core = pytest.mark.skipif(not HAVE_CORE, reason="the C core (sandbox._core) is not built")


# ------------------------------------------------------------------------------------ helpers

def write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(tmp_path, toml: str):
    """Messages (str of each Problem) of a TOML jobs file."""
    jobs, problems = load_jobs(write(tmp_path / "jobs.toml", toml))
    return [str(p) for p in problems]


def marker() -> str:
    return "MARK-%s" % uuid.uuid4().hex[:12]


def procs_with(mark: str) -> list:
    """(pid, cmdline) of live processes whose argv carries mark."""
    found = []
    needle = mark.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read()
            with open("/proc/%s/stat" % entry, "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != b"Z":
            found.append((int(entry), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


def all_running(mark: str, n: int) -> bool:
    """Jobs 0..n-1, marked "I-mark" in their argv, all run (counting processes would be fooled
    by a shell forking a background job: the fork shows the shell's argv until it execs)."""
    return all(procs_with("%d-%s" % (i, mark)) for i in range(n))


def wait_gone(mark: str, timeout: float = 3.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        left = procs_with(mark)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def zombie_children() -> list:
    me = str(os.getpid()).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] == b"Z":
            found.append(int(entry))
    return found


def fd_count() -> int:
    """Open descriptors, after idle pooled run cgroups (which hold fds by design) are closed."""
    from sandbox import cgroups
    cgroups.drain_pool()
    return len(os.listdir("/proc/self/fd"))


def job(name, cmd, **kw) -> Job:
    return Job(name=name, cmd=tuple(cmd), **kw)


# ====================================================================== jobs files: parsing

def test_toml_job_with_every_key(tmp_path):
    (tmp_path / "in.txt").write_text("3 4\n")
    (tmp_path / "want.out").write_text("7\n")
    (tmp_path / "work").mkdir()
    (tmp_path / "my.json").write_text("{}")
    jobs, problems = load_jobs(write(tmp_path / "jobs.toml", """\
        [[job]]
        name = "full"
        cmd = ["sh", "-c", "read a b; echo $((a + b))"]
        stdin_file = "in.txt"
        env = { A = "1", B = "two" }
        cwd = "work"
        time_limit = "1.5s"
        wall_limit = 3
        memory_limit = "256M"
        output_limit = 1024
        processes = "40"
        file_size_limit = "16M"
        open_files = 64
        stack_limit = "8M"
        profile = "my.json"
        fs_ro = ["@system", "in.txt"]
        fs_rw = ["@scratch", "work"]
        expect_file = "want.out"
        expect_exit = 2

        [[job]]
        name = "small"
        cmd = ["true"]
        stdin = "x"
        profile = "no-network"
        expect_stdout = ""
        """))
    assert problems == []
    full, small = jobs
    assert full.name == "full" and full.cmd == ("sh", "-c", "read a b; echo $((a + b))")
    assert full.stdin_file == str(tmp_path / "in.txt") and full.stdin is None
    assert full.env == {"A": "1", "B": "two"}
    assert full.cwd == str(tmp_path / "work")
    assert (full.time_limit, full.wall_limit) == (1.5, 3.0)
    assert (full.memory_limit, full.output_limit, full.processes) == (256 << 20, 1024, 40)
    assert (full.file_size_limit, full.open_files, full.stack_limit) == (16 << 20, 64, 8 << 20)
    assert full.profile == str(tmp_path / "my.json")
    assert full.expect_file == str(tmp_path / "want.out") and full.expect_exit == 2
    assert full.fs_ro == ("@system", str(tmp_path / "in.txt"))
    assert full.fs_rw == ("@scratch", str(tmp_path / "work"))
    assert (small.fs_ro, small.fs_rw) == (None, None)      # the profile's default
    assert full.where == "job[0]" and full.index == 0
    # defaults: cwd is the jobs file's directory, no limits, expect_exit 0
    assert small.cwd == str(tmp_path) and small.stdin == "x" and small.profile == "no-network"
    assert (small.time_limit, small.memory_limit, small.processes) == (None, None, None)
    assert small.expect_stdout == "" and small.expect_exit == 0 and small.where == "job[1]"


def test_jsonl_same_keys_as_toml(tmp_path):
    entries = [{"name": "a", "cmd": ["echo", "hi"], "wall_limit": "2s", "env": {"X": "y"},
                "expect_stdout": "hi\n"},
               {"name": "b", "cmd": ["true"], "memory_limit": "64M", "expect_exit": 0}]
    jl = tmp_path / "jobs.jsonl"
    jl.write_text("# comment lines and blank lines are skipped\n\n"
                  + "\n".join(json.dumps(e) for e in entries) + "\n")
    toml = write(tmp_path / "jobs.toml", """\
        [[job]]
        name = "a"
        cmd = ["echo", "hi"]
        wall_limit = "2s"
        env = { X = "y" }
        expect_stdout = "hi\\n"
        [[job]]
        name = "b"
        cmd = ["true"]
        memory_limit = "64M"
        expect_exit = 0
        """)
    from_jl, p1 = load_jobs(jl)
    from_toml, p2 = load_jobs(toml)
    assert p1 == [] and p2 == []
    strip = lambda j: {k: v for k, v in vars(j).items() if k not in ("where", "index")}
    assert [strip(j) for j in from_jl] == [strip(j) for j in from_toml]
    assert [j.where for j in from_jl] == ["%s:3" % jl, "%s:4" % jl]


def test_format_sniffed_without_extension_and_json_array(tmp_path):
    f = tmp_path / "jobs"
    f.write_text('{"name": "a", "cmd": ["true"]}\n')
    assert [j.name for j in load_jobs(f)[0]] == ["a"]
    f.write_text('[[job]]\nname = "b"\ncmd = ["true"]\n')
    assert [j.name for j in load_jobs(f)[0]] == ["b"]
    arr = tmp_path / "jobs.json"
    arr.write_text(json.dumps([{"name": "c", "cmd": ["true"]}, {"name": "d", "cmd": "x y"}]))
    jobs, problems = load_jobs(arr)
    assert [j.name for j in jobs] == ["c"]
    assert [str(p) for p in problems] == [
        'job[1]: "cmd" must be a list of strings, not a string: write ["x", "y"]']


ENTRY_ERRORS = [
    ('tme_limit = "2s"', 'unknown key "tme_limit" (did you mean "time_limit"?)'),
    ("timeout = 3", 'unknown key "timeout" (did you mean "wall_limit"?)'),
    ("zzz = 1", 'unknown key "zzz" (known keys: name, cmd, stdin, stdin_file, env, cwd, '
                "time_limit, wall_limit, memory_limit, output_limit, processes, "
                "file_size_limit, open_files, stack_limit, profile, fs_ro, fs_rw, "
                "expect_stdout, expect_file, expect_exit)"),
    ('cmd = "echo hi"', '"cmd" must be a list of strings, not a string: write ["echo", "hi"]'),
    ('cmd = "ls | wc -l"', '"cmd" must be a list of strings, not a string: for shell syntax '
                           'write ["sh", "-c", "ls | wc -l"]'),
    ("cmd = []", '"cmd" must not be empty'),
    ('cmd = ["echo", 3]', '"cmd"[1] must be a string, got an integer'),
    ("cmd = 3", '"cmd" must be a list of strings, got an integer'),
    ('time_limit = "fast"',
     "\"time_limit\": bad duration 'fast': use seconds or a number with ms, s, m or h"),
    ("wall_limit = -1", '"wall_limit": a time limit must be a positive number of seconds, got -1'),
    ('memory_limit = "lots"',
     "\"memory_limit\": bad size 'lots': use bytes or a number with K, M, G or T (e.g. 256M)"),
    ("output_limit = true", '"output_limit" must be a number or a string like "256M", '
                            "got a boolean"),
    ("time_limit = [1]", '"time_limit" must be a number or a string like "2s", got a list'),
    ("processes = 0", '"processes" must be a positive integer, got 0'),
    ('processes = "many"', '"processes" must be a positive integer, got "many"'),
    ("open_files = -1", '"open_files" must be a positive integer, got -1'),
    ("open_files = 100000000000", '"open_files" 100000000000 is above what the kernel allows, '
                                  '%d (fs.nr_open)' % (limits.open_files_ceiling() or 0)),
    ("output_limit = 0", '"output_limit": output limit must be positive, got 0'),
    ('stack_limit = "big"',
     "\"stack_limit\": bad size 'big': use bytes or a number with K, M, G or T (e.g. 256M)"),
    ('memory_limit = "1k"', '"memory_limit": memory limit 1K is below the minimum of 1M: no '
                            'program starts in less'),
    ('stack = "8M"', 'unknown key "stack" (did you mean "stack_limit"?)'),
    ("stdin = 3", '"stdin" must be a string, got an integer'),
    ("env = { N = 3 }", '"env"."N" must be a string, got an integer (quote it: "3")'),
    ('env = "A=1"', '"env" must be a table of strings, got a string'),
    ('profile = "no-netwrk"',
     '"profile": "no-netwrk" is neither a built-in profile (default, grader, no-network, '
     'unconfined) nor a file ({tmp}/no-netwrk) (did you mean "no-network"?)'),
    ('stdin_file = "nope.txt"', '"stdin_file": {tmp}/nope.txt: no such file'),
    ('expect_file = "nope.out"', '"expect_file": {tmp}/nope.out: no such file'),
    ('cwd = "nodir"', '"cwd": {tmp}/nodir: no such directory'),
    ('fs_ro = "/usr"', '"fs_ro" must be a list of paths, got a string'),
    ('fs_rw = [1]', '"fs_rw" must be a list of paths, got a list with an integer'),
    ('fs_ro = ["@scratch"]', '"fs_ro": @scratch belongs in "fs_rw"'),
    ('fs_rw = ["@system"]', '"fs_rw": @system belongs in "fs_ro"'),
    ('fs_rw = ["@home"]',
     '"fs_rw": unknown name "@home" (@system goes in fs_ro, @scratch in fs_rw)'),
    ('fs_ro = ["nodir"]', '"fs_ro": {tmp}/nodir: no such file or directory'),
    ("expect_exit = 300", '"expect_exit" must be an integer from 0 to 255, got 300'),
    ('expect_exit = "3"', '"expect_exit" must be an integer from 0 to 255, got a string'),
]


@pytest.mark.parametrize("line,message", ENTRY_ERRORS, ids=[e[0] for e in ENTRY_ERRORS])
def test_entry_error_messages_exact(tmp_path, line, message):
    key = line.split("=")[0].strip()
    cmd = "" if key == "cmd" else 'cmd = ["true"]\n'
    text = '[[job]]\nname = "ok"\ncmd = ["true"]\n\n[[job]]\nname = "bad"\n%s%s\n' % (cmd, line)
    (tmp_path / "jobs.toml").write_text(text)
    jobs, problems = load_jobs(tmp_path / "jobs.toml")
    assert [str(p) for p in problems] == ["job[1]: " + message.format(tmp=tmp_path)]
    assert [j.name for j in jobs] == ["ok"]         # the other jobs are still there
    assert problems[0].index == 1 and problems[0].name == "bad"


def test_entry_level_errors_exact(tmp_path):
    assert problems_of(tmp_path, """\
        [[job]]
        cmd = ["true"]
        [[job]]
        name = "a"
        [[job]]
        name = ""
        cmd = ["true"]
        [[job]]
        name = "a"
        cmd = ["true"]
        [[job]]
        name = "s"
        cmd = ["cat"]
        stdin = "x"
        stdin_file = "nope"
        [[job]]
        name = "e"
        cmd = ["true"]
        expect_stdout = ""
        expect_file = "nope"
        """) == [
        'job[0]: missing "name"',
        'job[1]: missing "cmd" (a list of strings, e.g. ["python3", "prog.py"])',
        'job[2]: "name" must be a non-empty string, got an empty string',
        'job[3]: duplicate name "a" (first used by job[1])',
        'job[4]: "stdin_file": %s/nope: no such file' % tmp_path,
        'job[4]: "stdin" and "stdin_file" cannot both be given',
        'job[5]: "expect_file": %s/nope: no such file' % tmp_path,
        'job[5]: "expect_stdout" and "expect_file" cannot both be given',
    ]


def test_several_problems_of_one_entry_all_reported(tmp_path):
    assert problems_of(tmp_path, """\
        [[job]]
        name = "x"
        cmd = "make all"
        tme_limit = 1
        memory_limit = "1Q"
        """) == [
        'job[0]: unknown key "tme_limit" (did you mean "time_limit"?)',
        'job[0]: "cmd" must be a list of strings, not a string: write ["make", "all"]',
        "job[0]: \"memory_limit\": bad size '1Q': use bytes or a number with K, M, G or T "
        "(e.g. 256M)",
    ]


def test_top_level_problems(tmp_path):
    assert problems_of(tmp_path, """\
        title = "x"
        jobs = 1
        [[job]]
        name = "a"
        cmd = ["true"]
        """) == ['%s: unknown top-level key "title" (known keys: job)' % (tmp_path / "jobs.toml"),
                 '%s: unknown top-level key "jobs" (did you mean "job"?)'
                 % (tmp_path / "jobs.toml")]
    path = write(tmp_path / "t.toml", '[[jobs]]\nname = "a"\ncmd = ["true"]\n')
    with pytest.raises(JobsFileError) as e:
        load_jobs(path)
    assert str(e.value) == ('%s: no jobs: expected [[job]] tables (unknown top-level key "jobs" '
                            '(did you mean "job"?))' % path)
    path = write(tmp_path / "u.toml", '[job]\nname = "a"\ncmd = ["true"]\n')
    with pytest.raises(JobsFileError) as e:
        load_jobs(path)
    assert str(e.value) == '%s: "job" must be an array of tables ([[job]]), got a table' % path


def test_jsonl_errors_carry_line_numbers(tmp_path):
    jl = tmp_path / "jobs.jsonl"
    jl.write_text("\n".join([
        '{"name": "a", "cmd": ["true"]}',
        "",
        '{"name": "b", "cmd": ["true"], "tme_limit": 1}',
        "{oops",
        '["not", "an", "object"]',
        '{"name": "a", "cmd": ["true"]}',
        '{"name": "c", "cmd": "echo hi"}',
        "{",
        '{"name": "d", "cmd": ["true"]}',
    ]) + "\n")
    jobs, problems = load_jobs(jl)
    assert [j.name for j in jobs] == ["a", "d"]
    assert [j.where for j in jobs] == ["%s:1" % jl, "%s:9" % jl]
    assert [str(p) for p in problems] == [
        '%s:3: unknown key "tme_limit" (did you mean "time_limit"?)' % jl,
        "%s:4: invalid JSON at column 2: Expecting property name enclosed in double quotes" % jl,
        "%s:5: a job must be a table (an object) of keys, got a list" % jl,
        '%s:6: duplicate name "a" (first used by line 1)' % jl,
        '%s:7: "cmd" must be a list of strings, not a string: write ["echo", "hi"]' % jl,
        "%s:8: invalid JSON at column 2: Expecting property name enclosed in double quotes "
        "(each line must hold one whole job object: JSON lines)" % jl,
    ]


def test_file_level_errors(tmp_path):
    with pytest.raises(JobsFileError) as e:
        load_jobs(tmp_path / "missing.toml")
    assert str(e.value) == "%s: No such file or directory" % (tmp_path / "missing.toml")
    bad = write(tmp_path / "bad.toml", '[[job]]\nname = "a\n')
    with pytest.raises(JobsFileError) as e:
        load_jobs(bad)
    assert str(e.value).startswith("%s: invalid TOML: " % bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n# nothing\n")
    with pytest.raises(JobsFileError) as e:
        load_jobs(empty)
    assert str(e.value) == "%s: no jobs (expected one JSON object per line)" % empty


def test_parse_jobs_from_text_resolves_against_base_dir(tmp_path):
    (tmp_path / "in.txt").write_text("x")
    jobs, problems = parse_jobs('{"name": "a", "cmd": ["cat"], "stdin_file": "in.txt"}',
                                name="gen.jsonl", base_dir=str(tmp_path))
    assert problems == [] and jobs[0].stdin_file == str(tmp_path / "in.txt")
    assert jobs[0].where == "gen.jsonl:1"


def test_job_and_result_are_picklable():
    from sandbox.result import Result
    j = job("a", ["true"], env={"A": "1"}, wall_limit=1.0)
    jr = batch.JobResult(job=j, result=Result(argv=["true"], verdict="OK", stdout=b"x"),
                         passed=True, failures=[])
    back = pickle.loads(pickle.dumps(jr))
    assert back.job.name == "a" and back.job.env == {"A": "1"} and back.result.stdout == b"x"
    assert back.to_json() == jr.to_json()


# ====================================================================== running batches

@needs_core
def test_fifty_jobs_in_parallel_each_with_its_own_result():
    jobs = []
    for i in range(50):
        kind = i % 3
        if kind == 0:
            jobs.append(job("true-%d" % i, ["true"], index=i))
        elif kind == 1:
            jobs.append(job("exit3-%d" % i, ["sh", "-c", "exit 3"], index=i,
                            expect_exit=3 if i % 2 else 0))
        else:
            jobs.append(job("echo-%d" % i, ["echo", "job", str(i)], index=i,
                            expect_stdout="job %d\n" % i))
    streamed = []
    results = run_batch(jobs, jobs_parallel=4, on_result=streamed.append)
    assert [r.name for r in results] == [j.name for j in jobs]      # returned in job order
    assert sorted(r.name for r in streamed) == sorted(j.name for j in jobs)
    for i, r in enumerate(results):
        if i % 3 == 0:
            assert (r.result.verdict, r.result.exit_code, r.passed) == ("OK", 0, True)
        elif i % 3 == 1:
            assert (r.result.verdict, r.result.exit_code) == ("NONZERO_EXIT", 3)
            assert r.passed == bool(i % 2)
            assert r.failures == ([] if i % 2 else ["exit status 3, expected 0"])
        else:
            assert r.result.stdout == b"job %d\n" % i and r.passed
        record = r.to_json()
        assert list(record)[:3] == ["job", "passed", "failures"]
        assert record["job"] == r.name and record["verdict"] == r.result.verdict


@needs_core
def test_results_stream_in_completion_order():
    done = threading.Event()
    slow = job("slow", ["sh", "-c", "sleep 1"], index=0)
    quick = [job("q%d" % i, ["true"], index=i + 1) for i in range(5)]
    seen = []

    def on_result(jr):
        seen.append((jr.name, done.is_set()))
        if jr.name == "slow":
            done.set()

    results = run_batch([slow] + quick, jobs_parallel=2, on_result=on_result)
    assert [r.name for r in results] == ["slow", "q0", "q1", "q2", "q3", "q4"]
    assert seen[-1] == ("slow", False)
    assert all(not after for name, after in seen[:-1])      # the quick ones came first


@needs_core
def test_expectations(tmp_path):
    (tmp_path / "want.out").write_bytes(b"a\nb\n")
    jobs = [
        job("out-ok", ["printf", "a\\nb\\n"], expect_stdout="a\nb\n"),
        job("out-nl", ["printf", "a\\nb"], expect_stdout="a\nb\n"),
        job("out-line", ["printf", "a\\nB\\n"], expect_stdout="a\nb\n"),
        job("out-extra", ["printf", "a\\nb\\nc\\n"], expect_stdout="a\nb\n"),
        job("out-short", ["printf", "a\\n"], expect_stdout="a\nb\nc\n"),
        job("file-ok", ["printf", "a\\nb\\n"], expect_file=str(tmp_path / "want.out")),
        job("file-bad", ["printf", "a\\n"], expect_file=str(tmp_path / "want.out")),
        job("exit-ok", ["sh", "-c", "exit 7"], expect_exit=7),
        job("exit-bad", ["sh", "-c", "exit 7"], expect_exit=3),
        job("exit-zero", ["true"], expect_exit=3),
        job("both", ["sh", "-c", "echo x; exit 1"], expect_stdout="y\n"),
        job("stdin", ["sh", "-c", "read a b; echo $((a * b))"], stdin="6 7\n",
            expect_stdout="42\n"),
        job("missing", ["no-such-command-xyz"]),
    ]
    for i, j in enumerate(jobs):
        object.__setattr__(j, "index", i)
    by = {r.name: r for r in run_batch(jobs, jobs_parallel=4)}
    assert {n for n, r in by.items() if r.passed} == {"out-ok", "file-ok", "exit-ok", "stdin"}
    assert by["out-nl"].failures == [
        "stdout differs from expect_stdout only in trailing newlines (got 0, expected 1)"]
    assert by["out-line"].failures == [
        'stdout differs from expect_stdout at line 2: got "B", expected "b"']
    assert by["out-extra"].failures == [
        'stdout differs from expect_stdout: extra output from line 3: "c\\n"']
    assert by["out-short"].failures == [
        'stdout differs from expect_stdout: output ends early, line 2 expected: "b\\nc\\n"']
    assert by["file-bad"].failures == [
        "stdout differs from expect_file %s: output ends early, line 2 expected: \"b\\n\""
        % (tmp_path / "want.out")]
    assert by["exit-bad"].failures == ["exit status 7, expected 3"]
    assert by["exit-zero"].failures == ["exit status 0, expected 3"]
    assert by["both"].failures == [
        "exit status 1, expected 0",
        'stdout differs from expect_stdout at line 1: got "x", expected "y"']
    assert by["missing"].result.verdict == "SETUP_ERROR"
    assert by["missing"].failures[0].startswith("SETUP_ERROR: no-such-command-xyz: command not "
                                                "found")


@needs_core
def test_stdin_file_env_and_cwd(tmp_path):
    (tmp_path / "in.txt").write_text("hello\n")
    (tmp_path / "sub").mkdir()
    jobs_file = write(tmp_path / "jobs.toml", """\
        [[job]]
        name = "cat"
        cmd = ["cat"]
        stdin_file = "in.txt"
        expect_stdout = "hello\\n"
        [[job]]
        name = "env"
        cmd = ["sh", "-c", "echo $GREETING $(basename $PWD)"]
        env = { GREETING = "hi" }
        cwd = "sub"
        expect_stdout = "hi sub\\n"
        [[job]]
        name = "default-cwd"
        cmd = ["cat", "in.txt"]
        expect_stdout = "hello\\n"
        """)
    jobs, problems = load_jobs(jobs_file)
    assert problems == []
    results = run_batch(jobs, jobs_parallel=2)
    assert [(r.name, r.passed, r.failures) for r in results] == [
        ("cat", True, []), ("env", True, []), ("default-cwd", True, [])]


@needs_core
def test_each_profile_compiled_once_per_batch(monkeypatch, tmp_path):
    from sandbox import runner
    made = []
    real = runner.Sandbox

    class Counting(real):
        def __init__(self, profile="default", **kw):
            made.append(profile)
            super().__init__(profile, **kw)

    monkeypatch.setattr(runner, "Sandbox", Counting)
    broken = tmp_path / "broken.json"
    broken.write_text('{"defaultAction": "SCMP_ACT_NOPE"}')
    jobs = []
    for i in range(40):
        prof = [None, "no-network", "grader", str(broken)][i % 4]
        jobs.append(job("j%d" % i, ["true"], index=i, profile=prof,
                        wall_limit=5.0 if i % 2 else None, memory_limit=(64 << 20) * (i % 3 + 1)))
    results = run_batch(jobs, jobs_parallel=4)
    assert sorted(made) == sorted(["default", "no-network", "grader", str(broken)])
    for i, r in enumerate(results):
        if i % 4 == 3:
            assert r.result.verdict == "SETUP_ERROR" and r.result.setup_error["stage"] == "profile"
            assert r.failures[0].startswith("SETUP_ERROR: profile %s: " % broken)
        else:
            assert r.passed, r.failures
            assert r.result.profile == ["default", "no-network", "grader"][i % 4]
            assert r.result.limits["memory"] == (64 << 20) * (i % 3 + 1)   # per-job limits
    made.clear()
    run_batch(jobs[:8], jobs_parallel=4, default_profile="grader")
    assert sorted(made) == sorted(["grader", "no-network", str(broken)])  # again, per batch


@needs_core
@pytest.mark.skipif(os.geteuid() != 0, reason="running jobs as another user needs root")
def test_jobs_run_as_the_batch_user():
    import pwd
    nobody = pwd.getpwnam("nobody")
    jobs = [job("id%d" % i, ["id", "-u"], index=i, expect_stdout="%d\n" % nobody.pw_uid,
                profile="grader" if i % 2 else None) for i in range(4)]
    results = run_batch(jobs, jobs_parallel=2, user="nobody")
    assert [(r.name, r.passed, r.failures) for r in results] == [
        ("id%d" % i, True, []) for i in range(4)]


@needs_core
def test_process_pool_executor():
    ctx = multiprocessing.get_context("spawn")
    jobs = [job("p%d" % i, ["sh", "-c", "echo %d; exit %d" % (i, i % 2)], index=i,
                profile="grader" if i % 2 else None, expect_exit=i % 2,
                expect_stdout="%d\n" % i) for i in range(6)]
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        results = run_batch(jobs, executor=pool, jobs_parallel=2)
    assert [(r.name, r.passed) for r in results] == [("p%d" % i, True) for i in range(6)]
    assert [r.result.profile for r in results] == ["default", "grader"] * 3


@needs_core
def test_mixed_batch_of_200_contained_without_leaks():
    mark = marker()
    jobs = []
    for i in range(200):
        kind = i % 10
        if kind < 5:
            cmd, kw = ["sh", "-c", "echo ok %d; : %s" % (i, mark)], {}
        elif kind == 5:   # a timeout that leaves a background child behind
            cmd = ["sh", "-c", "sh -c 'sleep 30; : %s' & sleep 30; : %s" % (mark, mark)]
            kw = {"wall_limit": 0.3}
        elif kind == 6:   # a crash: a real fault (a self-sent signal is ignored by the pid 1
            # of a PID namespace, which a root run gets)
            cmd, kw = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)", mark], {}
        elif kind == 7:   # an output flood
            cmd, kw = ["sh", "-c", "yes %s" % mark], {"output_limit": 4096, "wall_limit": 10.0}
        elif kind == 8:
            cmd, kw = ["sh", "-c", "exit 4; : %s" % mark], {"expect_exit": 4}
        elif i % 20 == 9:  # a CPU limit (10 of them: they really burn CPU)
            cmd, kw = ["sh", "-c", "while :; do :; done; : %s" % mark], {"time_limit": 0.2}
        else:
            cmd, kw = ["sh", "-c", "echo ok %d; : %s" % (i, mark)], {}
        jobs.append(job("m%03d" % i, cmd, index=i, **kw))
    run_batch(jobs[:4], jobs_parallel=2)     # warm up: lazily opened, cached descriptors
    fds = fd_count()
    results = run_batch(jobs, jobs_parallel=8)
    assert len(results) == 200 and len({r.name for r in results}) == 200
    expected = {5: ("TIME_LIMIT", False), 6: ("SIGNALED", False), 7: ("OUTPUT_LIMIT", False),
                8: ("NONZERO_EXIT", True), 9: ("TIME_LIMIT", False)}
    for i, r in enumerate(results):
        assert r.name == "m%03d" % i
        want = expected.get(i % 10, ("OK", True)) if i % 20 != 19 else ("OK", True)
        assert (r.result.verdict, r.passed) == want, (r.name, r.failures)
    assert wait_gone(mark) == []
    assert zombie_children() == []
    assert fd_count() == fds


@needs_core
def test_interrupt_stops_launching_and_kills_running_jobs():
    mark = marker()
    jobs = [job("quick", ["true"], index=0)]
    jobs += [job("sleep%d" % i, ["sh", "-c", "sleep 30 & sleep 30; : %d-%s" % (i, mark)],
                 index=i + 1) for i in range(3)]
    # (long enough not to end in the moment the on_result below waits for the sleepers)
    jobs += [job("later%d" % i, ["sleep", "5"], index=i + 4) for i in range(10)]
    delivered = []

    def on_result(jr):
        delivered.append(jr.name)
        if jr.name == "quick":
            # once the sleepers run
            deadline = time.monotonic() + 10
            while not all_running(mark, 3) and time.monotonic() < deadline:
                time.sleep(0.02)
            raise KeyboardInterrupt   # as if Ctrl-C arrived while the batch waits

    # direct starts: each of the 4 threads takes its slot itself, in the jobs' order. Through
    # zygotes, 8 threads' requests race for the 4 slots as their zygotes come up, and quick
    # could wait behind 4 sleepers for 30 s (test_cli_ctrl_c covers the zygotes' interrupt)
    with pytest.raises(batch.BatchInterrupted) as e:
        run_batch(jobs, jobs_parallel=4, on_result=on_result, grace=0.2, zygote=False)
    names = [r.name for r in e.value.results]
    assert names[0] == "quick"
    killed = [r for r in e.value.results if r.name.startswith("sleep")]
    assert killed and all(r.interrupted and not r.passed for r in killed)
    assert all(r.failures[0] == "INTERRUPTED: killed when the batch was interrupted (after the "
                                "0.2s grace)" for r in killed)
    assert len(e.value.not_run) >= 5     # no new job started once interrupted
    assert len(e.value.results) + len(e.value.not_run) == len(jobs)
    assert set(delivered) == set(names)
    assert wait_gone(mark) == []


# ====================================================================== JUnit XML

def _fake_result(name, verdict, passed, failures, stdout=b"", stderr=b"", index=0, **kw):
    from sandbox.result import Result
    return batch.JobResult(job=job(name, ["x"], index=index),
                           result=Result(argv=["x"], verdict=verdict, stdout=stdout,
                                         stderr=stderr, wall_time=0.25, **kw),
                           passed=passed, failures=failures)


def test_a_slimmed_result_gives_the_same_junit_report(tmp_path):
    # the CLI keeps of each job's output only what the report shows (junit.slim), once its
    # JSON line is written: the report must not change
    from sandbox import junit

    def results():
        return [_fake_result("big", "TIME_LIMIT", False, ["TIME_LIMIT: wall time"],
                             stdout=b"tick\x00\xff\n" * 30000, stderr=b"e" * 5000, index=0),
                _fake_result("small", "OK", True, [], stdout=b"fine\n", index=1),
                _fake_result("none", "OK", True, [], index=2)]
    full, slimmed = tmp_path / "full.xml", tmp_path / "slim.xml"
    stamp = {"elapsed": 1.0, "timestamp": datetime.datetime(2026, 1, 1)}
    junit.write_junit(str(full), results(), **stamp)
    kept = results()
    for jr in kept:
        junit.slim(jr)
        assert jr.result.stdout is None and jr.result.stderr is None
    junit.write_junit(str(slimmed), kept, **stamp)
    assert slimmed.read_bytes() == full.read_bytes()
    shown = kept[0].shown_output["stdout"]
    # the head is cut at OUT_LIMIT characters; the tail is TAIL_LIMIT characters of output,
    # each escape (\\x00) four characters
    assert len(shown[0]) < junit.OUT_LIMIT + 100 and len(shown[1]) < 4 * junit.TAIL_LIMIT + 100


def test_the_cli_does_not_hold_every_jobs_output_until_the_end(tmp_path):
    # 60 jobs of 4 MiB each: kept whole, 240 MiB by the end (measured: 428 MiB of RSS at 90
    # jobs); slimmed, ~66 KiB per job (~100 MiB, the same at 30 or 90 jobs)
    jobs = write(tmp_path / "big.toml", "".join(
        '[[job]]\nname = "j%d"\ncmd = ["sh", "-c", "yes abcdefgh | head -c 4194304"]\n' % i
        for i in range(60)))
    # the peak RSS of the batch process's own memory (VmHWM: ru_maxrss would also count the
    # memory of the process that forked it, ours)
    script = textwrap.dedent("""
        import re, sys
        from sandbox import batch
        status = batch.main(sys.argv[1:])
        with open("/proc/self/status") as f:
            print("VmHWM", re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1), file=sys.stderr)
        sys.exit(status)
    """)
    p = run_cli([sys.executable, "-c", script], jobs, "-j", 2, "--junit", tmp_path / "r.xml",
                "--results", tmp_path / "r.jsonl")
    assert p.returncode == 0, p.stderr
    assert "60 jobs: 60 passed" in p.stderr
    with open(tmp_path / "r.jsonl") as f:
        sizes = [len(line) for line in f]
    assert len(sizes) == 60 and min(sizes) > 4194304        # all of it written out
    peak_kib = int(p.stderr.split("VmHWM ")[1].split()[0])
    assert peak_kib < 160 * 1024, peak_kib                   # far below 240 MiB


def test_junit_names_a_failed_expectation_not_the_verdict():
    from sandbox import junit
    results = [_fake_result("status", "NONZERO_EXIT", False, ["exit status 3, expected 0"],
                            exit_code=3),
               _fake_result("output", "OK", False, ["stdout differs"], exit_code=0, index=1)]
    cases = junit.build(results).getroot().find("testsuite").findall("testcase")
    assert [c.find("failure").get("type") for c in cases] == ["WrongExitStatus", "WrongOutput"]


def test_junit_shape_counts_and_sanitising(tmp_path):
    from sandbox import junit
    results = [
        _fake_result("ok", "OK", True, [], stdout=b"fine\n", index=0),
        _fake_result("slow", "TIME_LIMIT", False, ["TIME_LIMIT: wall time limit of 1s exceeded"],
                     stdout=b"tick\x00\x1b[0m\xff\n" * 10000, stderr=b"err\n", index=1),
        _fake_result("broken", "SETUP_ERROR", False, ["SETUP_ERROR: x: command not found"],
                     index=2, setup_error={"message": "x: command not found"}),
        _fake_result("wrong", "OK", False, ['stdout differs from expect_stdout at line 1: '
                                            'got "<a&b>", expected "]]>"'], index=4,
                     exit_code=0),
    ]
    problems = [batch.Problem("job[3]", 'unknown key "tme" (did you mean "time_limit"?)', 3,
                              "typo"),
                batch.Problem("job[3]", 'missing "cmd"', 3, "typo")]
    not_run = [job("never", ["true"], index=5)]
    out = tmp_path / "report.xml"
    junit.write_junit(str(out), results, problems=problems, not_run=not_run,
                      suite_name="jobs.toml", elapsed=1.5, properties={"parallel": "2"})
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    for el in (root, suite):
        assert {k: el.get(k) for k in ("tests", "failures", "errors", "skipped", "time")} == {
            "tests": "6", "failures": "2", "errors": "2", "skipped": "1", "time": "1.500"}
    assert suite.get("name") == "jobs.toml" and suite.get("timestamp") and suite.get("hostname")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("sandbox.batch", n) for n in ("ok", "slow", "broken", "typo", "wrong", "never")]
    assert cases[0].find("failure") is None and cases[0].find("system-out").text == "fine\n"
    assert cases[0].get("time") == "0.250"
    f = cases[1].find("failure")
    assert f.get("type") == "TIME_LIMIT"
    assert f.get("message") == "TIME_LIMIT: wall time limit of 1s exceeded"
    assert "--- stdout (tail) ---" in f.text and "--- stderr (tail) ---\nerr" in f.text
    assert "tick\\x00\\x1b[0m\ufffd" in f.text
    sysout = cases[1].find("system-out").text
    assert len(sysout) < junit.OUT_LIMIT + 100 and "more characters truncated" in sysout
    e = cases[2].find("error")
    assert e.get("type") == "SETUP_ERROR" and e.get("message").startswith("SETUP_ERROR: x:")
    bad = cases[3].find("error")
    assert bad.get("type") == "BadJob"
    assert bad.get("message") == 'job[3]: unknown key "tme" (did you mean "time_limit"?)'
    assert bad.text == ('job[3]: unknown key "tme" (did you mean "time_limit"?)\n'
                        'job[3]: missing "cmd"')
    assert cases[4].find("failure").get("message").endswith('got "<a&b>", expected "]]>"')
    assert cases[4].find("failure").get("type") == "WrongOutput"     # not its verdict, OK
    assert cases[5].find("skipped").get("message") == "interrupted (Ctrl-C) before it started"
    assert out.read_bytes().startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


# ====================================================================== the command line

def _wired() -> bool:
    try:
        p = subprocess.run([sys.executable, "-m", "sandbox", "batch", "--help"], cwd=REPO,
                           capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0


_WIRED = None


@pytest.fixture(params=["sandbox batch", "sandbox.batch"])
def cli(request):
    """argv prefix of the command: `python -m sandbox batch` (once cli.py wires it in) and the
    stand-alone `python -m sandbox.batch` (always)."""
    global _WIRED
    if not HAVE_CORE:
        pytest.skip("the C core (sandbox._core) is not built")
    if request.param == "sandbox batch":
        if _WIRED is None:
            _WIRED = _wired()
        if not _WIRED:
            pytest.skip("`python -m sandbox batch --help` fails: the batch subcommand is not "
                        "wired into sandbox/cli.py yet (add_parser/cmd_batch)")
        return [sys.executable, "-m", "sandbox", "batch"]
    return [sys.executable, "-m", "sandbox.batch"]


# two jobs that pass: one by its output, one by its exit status
TWO_PASSING_JOBS = """\
    [[job]]
    name = "a"
    cmd = ["echo", "hi"]
    expect_stdout = "hi\\n"
    [[job]]
    name = "b"
    cmd = ["sh", "-c", "exit 3"]
    expect_exit = 3
    """


def run_cli(prefix, *args, **kw):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(prefix + [str(a) for a in args], capture_output=True, text=True,
                          env=env, timeout=60, **kw)


def test_limits_a_job_sets_reach_its_run(tmp_path):
    jobs, problems = load_jobs(write(tmp_path / "jobs.toml", """\
        [[job]]
        name = "limits"
        cmd = ["sh", "-c", "ulimit -f; ulimit -n; ulimit -s"]
        file_size_limit = "1M"
        open_files = 64
        stack_limit = "4M"
        """))
    assert problems == []
    (jr,) = run_batch(jobs, jobs_parallel=1, default_profile="default")
    assert jr.result.stdout.split() == [b"2048", b"64", b"4096"], jr.result   # 512-byte blocks
    assert (jr.result.limits["file_size"], jr.result.limits["open_files"],
            jr.result.limits["stack"]) == (1 << 20, 64, 4 << 20)


def test_batch_wide_limits_go_to_the_jobs_that_set_none():
    own = job("own", ["true"], time_limit=5.0, memory_limit=64 << 20)
    bare = job("bare", ["true"], index=1)
    got = batch.with_default_limits([own, bare], time_limit=1.0, wall_limit=2.0,
                                    memory_limit=None, processes=10)
    assert (got[0].time_limit, got[0].wall_limit, got[0].memory_limit, got[0].processes) == (
        5.0, None, 64 << 20, 10)                # (its wall limit comes with its CPU limit)
    assert (got[1].time_limit, got[1].wall_limit, got[1].memory_limit, got[1].processes) == (
        1.0, 2.0, None, 10)
    with pytest.raises(TypeError):
        batch.with_default_limits([bare], cpu=1)
    # a job's own CPU limit gives it its wall limit (2 x 3 + 1 s): not the batch's 2 s
    cpu_only = job("cpu", ["true"], time_limit=3.0)
    (got,) = batch.with_default_limits([cpu_only], wall_limit=2.0)
    assert (got.time_limit, got.wall_limit) == (3.0, None)


def test_cli_batch_wide_limits(cli, tmp_path):
    jobs = write(tmp_path / "jobs.toml", """\
        [[job]]
        name = "spin"
        cmd = ["sh", "-c", "while :; do :; done"]

        [[job]]
        name = "patient"
        cmd = ["sleep", "0.5"]
        wall_limit = "20s"
        """)
    p = run_cli(cli, jobs, "--wall-limit", "0.3", "--results", tmp_path / "r.jsonl")
    assert p.returncode == 1, p.stderr
    rows = {r["job"]: r for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())}
    assert rows["spin"]["verdict"] == "TIME_LIMIT" and rows["spin"]["limits"]["wall_time"] == 0.3
    assert rows["patient"]["verdict"] == "OK" and rows["patient"]["limits"]["wall_time"] == 20
    p = run_cli(cli, jobs, "--memory-limit", "1k")
    assert p.returncode == 2 and "below the minimum of 1M" in p.stderr, p.stderr


def test_cli_exit_statuses(cli, tmp_path):
    good = write(tmp_path / "good.toml", TWO_PASSING_JOBS)
    p = run_cli(cli, good, "-j", 2, "--results", tmp_path / "r.jsonl",
                "--junit", tmp_path / "r.xml")
    assert p.returncode == 0, p.stderr
    assert "sandbox batch: 2 jobs: 2 passed, 0 failed" in p.stderr
    lines = [json.loads(l) for l in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert sorted((d["job"], d["passed"], d["failures"]) for d in lines) == [
        ("a", True, []), ("b", True, [])]
    assert ET.parse(tmp_path / "r.xml").getroot().get("tests") == "2"

    failing = write(tmp_path / "failing.jsonl", '{"name": "f", "cmd": ["false"]}\n')
    p = run_cli(cli, failing, "--results", "-")
    assert p.returncode == 1
    assert json.loads(p.stdout)["failures"] == ["exit status 1, expected 0"]
    assert "    f: exit status 1, expected 0" in p.stderr

    with_bad = write(tmp_path / "with_bad.toml", """\
        [[job]]
        name = "a"
        cmd = ["true"]
        [[job]]
        name = "b"
        cmd = ["true"]
        tme_limit = 1
        """)
    p = run_cli(cli, with_bad)
    assert p.returncode == 1      # the good job ran and passed; the bad entry counts as failed
    assert ('sandbox batch: %s: job[1]: unknown key "tme_limit" (did you mean "time_limit"?)'
            % with_bad) in p.stderr
    assert "1 job: 1 passed" in p.stderr
    p = run_cli(cli, with_bad, "--strict")
    assert p.returncode == 2 and "nothing run (--strict)" in p.stderr

    p = run_cli(cli, write(tmp_path / "broken.toml", "[[job]\n"))
    assert p.returncode == 2 and "invalid TOML" in p.stderr
    p = run_cli(cli, tmp_path / "missing.toml")
    assert p.returncode == 2 and "No such file or directory" in p.stderr
    p = run_cli(cli, good, "--profile", "no-such-profile")
    assert p.returncode == 2 and "--profile no-such-profile: no such file" in p.stderr
    p = run_cli(cli, good, "-j", 0)
    assert p.returncode == 2
    p = run_cli(cli, good, "--user", "no-such-user-xyz")
    assert p.returncode == 2 and "--user no-such-user-xyz: no such user" in p.stderr


@needs_core
def test_cli_processes_executor(tmp_path, capsys):
    jobs_file = write(tmp_path / "jobs.toml", TWO_PASSING_JOBS)
    out = tmp_path / "r.jsonl"
    assert batch.main([str(jobs_file), "--executor", "processes", "-j", "2",
                       "--results", str(out), "-q"]) == 0
    records = [json.loads(l) for l in out.read_text().splitlines()]
    assert sorted((d["job"], d["passed"]) for d in records) == [("a", True), ("b", True)]
    # each ran in a pool process, which says so
    assert all(int(d["worker"].rsplit(":", 1)[1]) != os.getpid() for d in records)


@needs_core
def test_interrupt_kills_the_runs_in_pool_processes():
    from sandbox.executors import batch_executor
    mark = marker()
    jobs = [job("quick", ["true"], index=0)]
    jobs += [job("sleep%d" % i, ["sh", "-c", "sleep 30 & sleep 30; : %d-%s" % (i, mark)],
                 index=i + 1) for i in range(2)]

    def on_result(jr):
        if jr.name == "quick":
            wait_for(lambda: all_running(mark, 2), 20, "the sleeps did not start")
            raise KeyboardInterrupt   # as if Ctrl-C arrived while the batch waits

    with batch_executor("processes", 3) as where:
        with pytest.raises(batch.BatchInterrupted) as e:
            run_batch(jobs, jobs_parallel=where.parallel, executor=where.executor,
                      kill_on_interrupt=where.kill_on_interrupt, on_result=on_result,
                      grace=0.2)
    killed = [r for r in e.value.results if r.name.startswith("sleep")]
    assert len(killed) == 2 and all(r.interrupted for r in killed)
    assert wait_gone(mark) == []


def test_cli_streams_results_while_running(cli, tmp_path):
    jobs_file = write(tmp_path / "jobs.toml", """\
        [[job]]
        name = "slow"
        cmd = ["sleep", "1.5"]
        [[job]]
        name = "fast"
        cmd = ["true"]
        """)
    out = tmp_path / "r.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cli + [str(jobs_file), "-j", "2", "--results", str(out), "-q"],
                            env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if out.exists() and '"job": "fast"' in out.read_text():
                break
            time.sleep(0.02)
        assert proc.poll() is None          # "fast" is written while "slow" still runs
        assert [json.loads(l)["job"] for l in out.read_text().splitlines()] == ["fast"]
    finally:
        assert proc.wait(timeout=20) == 0
    assert [json.loads(l)["job"] for l in out.read_text().splitlines()] == ["fast", "slow"]


def test_cli_ctrl_c(cli, tmp_path):
    mark = marker()
    jobs_file = write(tmp_path / "jobs.toml", """\
        [[job]]
        name = "quick"
        cmd = ["true"]
        [[job]]
        name = "s1"
        cmd = ["sh", "-c", "sleep 30 & sleep 30; : 0-{m}"]
        [[job]]
        name = "s2"
        cmd = ["sh", "-c", "sleep 30; : 1-{m}"]
        [[job]]
        name = "never"
        cmd = ["true"]
        """.replace("{m}", mark))
    out, xml = tmp_path / "r.jsonl", tmp_path / "r.xml"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cli + [str(jobs_file), "-j", "2", "--results", str(out),
                                   "--junit", str(xml), "--grace", "0.3"],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all_running(mark, 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    records = {json.loads(l)["job"]: json.loads(l) for l in out.read_text().splitlines()}
    # the sleepers were killed; quick and never each ran to the end before the interrupt (a
    # freed slot goes to whichever waiting job takes it first) or never started
    others = set(records) - {"s1", "s2"}
    assert {"s1", "s2"} <= set(records) and others <= {"quick", "never"}
    assert all(records[name]["passed"] for name in others)
    not_run = 2 - len(others)
    assert "interrupted: 2 killed, %d not run" % not_run in err
    for name in ("s1", "s2"):
        assert records[name]["passed"] is False
        assert records[name]["failures"][0].startswith("INTERRUPTED: killed when the batch was")
    suite = ET.parse(xml).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("skipped"), suite.get("failures")) == \
        ("4", str(2 + not_run), "0")
    assert wait_gone(mark) == []


def test_add_parser_defines_the_subcommand():
    parser = argparse.ArgumentParser(prog="sandbox")
    sub = parser.add_subparsers(dest="command")
    batch.add_parser(sub)
    args = parser.parse_args(["batch", "jobs.toml", "-j", "3", "--results", "-", "--junit",
                              "x.xml", "--profile", "grader", "--strict"])
    assert args.func is batch.cmd_batch
    assert (args.jobs_file, args.parallel, args.results, args.junit, args.profile,
            args.strict) == ("jobs.toml", 3, "-", "x.xml", "grader", True)
    assert parser.parse_args(["batch", "j.toml"]).parallel is None


@needs_core
def test_demo_jobs_file():
    jobs, problems = load_jobs(REPO / "examples" / "jobs" / "demo.toml")
    assert problems == []
    names = [j.name for j in jobs]
    assert {"hello", "phone-home", "spin", "flood", "forkbomb"} <= set(names)
    for j in jobs:
        for word in j.cmd:
            if word.startswith("../"):
                assert os.path.exists(os.path.join(j.cwd, word)), word

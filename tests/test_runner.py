"""sandbox.runner and `sandbox run`: real programs behave as they do unsandboxed, Results carry
what happened (and survive JSON and pickle), stdin/env/cwd reach the program, set-up errors are
reported, and the command line maps verdicts to the documented exit statuses.

Profiles: Docker's default (shared/profiles/docker-default.json, read in place; skipped when
absent) and the built-in `default` (skipped while sandbox/profiles/default.json does not exist).
"""
import contextlib
import errno
import gc
import json
import os
import pathlib
import pickle
import shutil
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("sandbox._core")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "probes" / "runner"))
import runner_support as S  # noqa: E402

from sandbox import runner  # noqa: E402
from sandbox.result import Result  # noqa: E402
from sandbox.runner import DEFAULT_ENV, DEVNULL, INHERIT, PIPE, Sandbox  # noqa: E402
from waiting import wait_for

PROFILES = ["docker-default", "default"]
FIXED_DATE = "2000-01-01T00:00:00Z"
PROGRAM_ENV = dict(DEFAULT_ENV, GIT_AUTHOR_DATE=FIXED_DATE, GIT_COMMITTER_DATE=FIXED_DATE,
                   GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")

# The seed article's "minimal example": defaultAction ERRNO, only mkdir listed. No command can
# start under it (execve is denied), and the runner must say so instead of running anything.
SEED_MINIMAL = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO", "args": []}]}
KILL_GETPPID = {"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}
GETPPID = ["python3", "-c", "import os; os.getppid(); print('survived')"]


@pytest.fixture
def docker():
    return Sandbox(S.docker_default())


# ------------------------------------------------------------------------------------------
# 1. real programs: the same output as without the sandbox

PY_JSON = ("import json, hashlib, os, sys; print(json.dumps({"
           "'sha256': hashlib.sha256(b'abc' * 1000).hexdigest(), "
           "'md5': hashlib.md5(b'sandbox').hexdigest(), 'env': sorted(os.environ), "
           "'cwd': os.path.basename(os.getcwd()), 'uid': os.getuid(), 'argv': sys.argv[1:], "
           "'squares': [i * i for i in range(10)], 'listdir': sorted(os.listdir('.'))}, "
           "sort_keys=True))")
GCC = "gcc -O2 -o hello hello.c && ./hello world"
TAR = ("tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf a.tar d"
       " && tar -tvf a.tar && sha256sum a.tar")
GIT = ("git init -q . && git add . && git -c user.name=Sandbox -c user.email=sb@example.invalid"
       " commit -q -m first && git log --format='%H %an %s' && git cat-file -p HEAD"
       " && git ls-files -s")

PROGRAMS = {
    "python3-json": (["python3", "-c", PY_JSON, "arg1", "ärg2"], None),
    "sh-pipeline": (["sh", "-c", "seq 1 1000 | sort -r | head -3 | tr 0-9 a-j"], None),
    "gcc-hello": (["sh", "-c", GCC], "gcc"),
    "tar": (["sh", "-c", TAR], "tar"),
    "git": (["sh", "-c", GIT], "git"),
}


def _workdir(base: pathlib.Path, name: str) -> pathlib.Path:
    d = base / name / "work"
    (d / "d" / "sub").mkdir(parents=True)
    (d / "hello.c").write_text('#include <stdio.h>\nint main(int argc, char **argv)\n'
                               '{ printf("hello %s\\n", argv[1]); return 3; }\n')
    (d / "d" / "a.txt").write_text("a\n")
    (d / "d" / "sub" / "b.txt").write_text("b\n" * 100)
    return d


@pytest.mark.parametrize("program", list(PROGRAMS))
@pytest.mark.parametrize("profile_name", PROFILES)
def test_real_program_gives_the_same_output_as_unsandboxed(profile_name, program, tmp_path):
    argv, needs = PROGRAMS[program]
    if needs and shutil.which(needs, path=DEFAULT_ENV["PATH"]) is None:
        pytest.skip("%s not installed" % needs)
    spec = S.profile_spec(profile_name)
    inside, outside = _workdir(tmp_path, "sandboxed"), _workdir(tmp_path, "reference")
    r = Sandbox(spec, env=PROGRAM_ENV).run(argv, cwd=str(inside), timeout=120)
    ref = subprocess.run(argv, cwd=str(outside), env=PROGRAM_ENV, stdin=subprocess.DEVNULL,
                         capture_output=True, umask=0o022, timeout=120)
    assert r.setup_error is None, r.setup_error
    assert r.exit_code == ref.returncode, (r.describe(), r.stderr, ref.stderr)
    assert r.verdict == ("OK" if ref.returncode == 0 else "NONZERO_EXIT")
    assert r.stdout.replace(bytes(inside), b"WORK") == ref.stdout.replace(bytes(outside),
                                                                         b"WORK")
    assert r.stdout                                  # the comparison compared something
    if program == "gcc-hello":
        assert r.stdout == b"hello world\n" and r.exit_code == 3


SELF_SIGNALS = {
    "abort": ["python3", "-c", "import os; os.abort()"],
    "itimer": ["python3", "-c", "import signal, time; signal.setitimer(signal.ITIMER_REAL, 0.2);"
               " time.sleep(1.5); print('timer never fired')"],
    "kill-self-term": ["sh", "-c", "kill -TERM $$; echo survived"],
    "kill-self-int": ["python3", "-c", "import os, signal; "
                      "signal.signal(signal.SIGINT, signal.SIG_DFL); "
                      "os.kill(os.getpid(), signal.SIGINT); print('survived')"],
}


# was a bug while the command ran as pid 1 of its PID namespace; sandbox-init is pid 1 now
@pytest.mark.parametrize("case", list(SELF_SIGNALS))
def test_signals_a_program_sends_itself_act_as_unsandboxed(case):
    argv = SELF_SIGNALS[case]
    ref = subprocess.run(argv, env=DEFAULT_ENV, stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=60)
    assert ref.returncode < 0                       # the reference dies of its own signal
    r = Sandbox(S.docker_default()).run(argv, timeout=30)
    assert (r.verdict, r.signal, r.stdout) == ("SIGNALED", -ref.returncode, ref.stdout), r


# ------------------------------------------------------------------------------------------
# 4. Results

def _round_trip(r: Result) -> Result:
    return Result.from_json(json.loads(json.dumps(r.to_json())))


def test_results_survive_json_and_pickle(docker, tmp_path):
    results = [
        docker.run(["sh", "-c", "echo out; echo err >&2"]),
        docker.run(["sh", "-c", "printf '\\377\\000\\376'; exit 4"]),          # binary stdout
        docker.run(["sleep", "30"], timeout=0.2),
        docker.run(["yes"], output_limit=1000),
        docker.run(["no-such-command-%s" % S.marker()]),
        docker.run(["true"], stdout=DEVNULL, stderr=DEVNULL),
        Sandbox(KILL_GETPPID).run(GETPPID),
    ]
    assert [r.verdict for r in results] == ["OK", "NONZERO_EXIT", "TIME_LIMIT", "OUTPUT_LIMIT",
                                            "SETUP_ERROR", "OK", "SECCOMP_KILLED"]
    for r in results:
        assert _round_trip(r) == r
        assert pickle.loads(pickle.dumps(r)) == r
    binary = results[1].to_json()
    assert binary["stdout"] is None and "stdout_base64" in binary
    assert _round_trip(results[1]).stdout == b"\xff\x00\xfe"
    assert results[0].to_json()["stdout"] == "out\n"
    assert results[2].to_json()["time_limit_kind"] == "wall"
    assert results[5].stdout is None and _round_trip(results[5]).stdout is None


def test_result_fields_of_a_plain_run(docker):
    r = docker.run(["sh", "-c", "echo out; echo err >&2; exit 5"])
    assert (r.verdict, r.exit_code, r.signal, r.returncode) == ("NONZERO_EXIT", 5, None, 5)
    assert (r.stdout, r.stderr) == (b"out\n", b"err\n")
    assert r.argv == ["sh", "-c", "echo out; echo err >&2; exit 5"]
    assert r.profile == S.docker_default()
    assert r.profile_digest and r.filter_instructions > 0
    assert r.wall_time > 0 and r.cpu_time >= 0
    assert not r.ok
    r = Sandbox(KILL_GETPPID).run(GETPPID)
    assert (r.verdict, r.signal, r.signal_name, r.returncode) == ("SECCOMP_KILLED", 31,
                                                                  "SIGSYS", -31)
    assert r.stdout == b""


def test_stdin_bytes_reach_the_program(docker):
    data = bytes(range(256)) * 4096                     # 1 MiB, larger than any pipe buffer
    r = docker.run(["sha256sum"], stdin=data, timeout=60)
    assert r.verdict == "OK", r
    import hashlib
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    r = docker.run(["cat"], stdin="text ünïcode\n")
    assert r.stdout == "text ünïcode\n".encode()


def test_stdin_not_read_does_not_block_the_run(docker):
    r = docker.run(["head", "-c", "5"], stdin=b"x" * (8 << 20), timeout=60)
    assert r.verdict == "OK", r
    assert r.stdout == b"xxxxx"
    r = docker.run(["true"], stdin=b"y" * (8 << 20), timeout=60)
    assert r.verdict == "OK", r


def test_stdin_defaults_to_devnull_and_takes_files(docker, tmp_path):
    r = docker.run(["cat"], timeout=30)
    assert r.verdict == "OK" and r.stdout == b""
    src = tmp_path / "in.txt"
    src.write_bytes(b"from a file\n")
    with open(src, "rb") as f:
        r = docker.run(["cat"], stdin=f, timeout=30)
    assert r.stdout == b"from a file\n"


def test_stdout_to_a_file_and_devnull(docker, tmp_path):
    out = tmp_path / "out.txt"
    with open(out, "wb") as f:
        r = docker.run(["sh", "-c", "echo to-file; echo to-err >&2"], stdout=f, stderr=DEVNULL)
    assert r.verdict == "OK"
    assert r.stdout is None and r.stderr is None
    assert out.read_bytes() == b"to-file\n"


def test_default_environment_is_path_lang_home_only(docker):
    r = docker.run(["env"])
    assert r.verdict == "OK", r
    env = dict(line.split("=", 1) for line in r.stdout.decode().splitlines())
    assert env == DEFAULT_ENV
    assert set(env) == {"PATH", "LANG", "HOME"}


@S.needs_root
def test_home_follows_the_user():
    r = Sandbox(S.docker_default(), user="nobody").run(["env"])
    env = dict(line.split("=", 1) for line in r.stdout.decode().splitlines())
    import pwd
    assert env["HOME"] == pwd.getpwnam("nobody").pw_dir
    assert set(env) == {"PATH", "LANG", "HOME"}


def test_env_options(monkeypatch):
    spec = S.docker_default()
    r = Sandbox(spec, env={"FOO": "bar", "LANG": "C"}).run(["env"])
    env = dict(line.split("=", 1) for line in r.stdout.decode().splitlines())
    assert env == dict(DEFAULT_ENV, FOO="bar", LANG="C")
    r = Sandbox(spec, env=["A=1", "B=x=y"]).run(["env"], env={"C": "3"})
    env = dict(line.split("=", 1) for line in r.stdout.decode().splitlines())
    assert env == dict(DEFAULT_ENV, A="1", B="x=y", C="3")
    monkeypatch.setenv("SANDBOX_TEST_INHERITED", "yes-" + S.marker())
    r = Sandbox(spec, inherit_env=True).run(["env"])
    env = dict(line.split("=", 1) for line in r.stdout.decode().splitlines())
    assert env["SANDBOX_TEST_INHERITED"] == os.environ["SANDBOX_TEST_INHERITED"]
    assert env["PATH"] == os.environ["PATH"]


def test_cwd(docker, tmp_path):
    r = docker.run(["pwd"], cwd=str(tmp_path))
    assert r.stdout == (str(tmp_path) + "\n").encode()
    (tmp_path / "script.sh").write_text("#!/bin/sh\necho relative\n")
    (tmp_path / "script.sh").chmod(0o755)
    r = Sandbox(S.docker_default(), cwd=str(tmp_path)).run(["./script.sh"])
    assert r.verdict == "OK" and r.stdout == b"relative\n"


def test_command_not_found_is_a_setup_error(docker):
    r = docker.run(["no-such-command-%s" % S.marker(), "arg"])
    assert r.verdict == "SETUP_ERROR"
    assert r.setup_error["errno"] == errno.ENOENT
    assert r.setup_error["errno_name"] == "ENOENT"
    assert r.setup_error["stage"] == "execve"
    assert "not found" in r.setup_error["message"]
    assert r.exit_code is None and r.pid is None
    r = docker.run(["/nonexistent/dir/prog"])
    assert r.verdict == "SETUP_ERROR" and r.setup_error["errno"] == errno.ENOENT


def test_other_setup_errors(docker, tmp_path):
    r = docker.run(["true"], cwd=str(tmp_path / "missing"))
    assert r.verdict == "SETUP_ERROR"
    assert (r.setup_error["stage"], r.setup_error["errno"]) == ("chdir", errno.ENOENT)
    plain = tmp_path / "plain.sh"
    plain.write_text("echo hi\n")
    plain.chmod(0o644)
    r = docker.run([str(plain)])
    assert r.verdict == "SETUP_ERROR"
    assert (r.setup_error["stage"], r.setup_error["errno"]) == ("execve", errno.EACCES)
    r = docker.run([])
    assert r.verdict == "SETUP_ERROR" and r.setup_error["stage"] == "argv"


def test_limits_the_kernel_cannot_hold_are_refused_up_front():
    from sandbox.limits import Limits, open_files_ceiling
    for bad in (dict(memory="99999999T"), dict(stack=float("inf")), dict(output=0),
                dict(output="0"), dict(file_size=float("nan"))):
        with pytest.raises(ValueError):
            Limits.build(**bad)
    ceiling = open_files_ceiling()
    if ceiling is not None:
        with pytest.raises(ValueError, match="fs.nr_open"):
            Limits.build(open_files=ceiling + 1)
    # no output limit at all, then a run's own limits: still none
    assert Limits.build(output=float("inf")).merged(cpu_time=1).output == 0
    p = sandbox_cli("--open-files", "0", "--", "true")
    assert p.returncode == 125 and b"argument --open-files: open files must be a positive" \
        in p.stderr, p.stderr


def test_a_run_over_its_cpu_limit_is_a_time_limit_even_when_it_ends_by_itself():
    """Without a cgroup (no root) the limit is RLIMIT_CPU in whole seconds: a 0.2 s limit let
    a run use up to a second, and one that finished in that time was OK (a judge gave AC)."""
    burn = ("import time\nend = time.process_time() + 0.5\n"
            "while time.process_time() < end: pass\nprint('done')")
    with Sandbox(S.docker_default(), use_cgroup=False, cpu_time=0.2) as sb:
        r = sb.run([sys.executable, "-c", burn])
    assert (r.verdict, r.time_limit_kind, r.exit_code, r.stdout) == (
        "TIME_LIMIT", "cpu", 0, b"done\n"), r
    assert r.cpu_source == "rusage" and r.cpu_time > 0.2


def test_a_memory_limit_too_small_to_start_anything_is_refused():
    """1K used to end `true` with status 127 and no word why (its loader could not map libc)."""
    from sandbox.limits import Limits
    for small in ("1k", "100K", 4096, (1 << 20) - 1):
        with pytest.raises(ValueError, match="below the minimum of 1M"):
            Limits.build(memory=small)
    assert Limits.build(memory="1M").memory == 1 << 20
    p = sandbox_cli("--memory-limit", "1k", "--", "true")
    assert p.returncode == 125 and b"memory limit 1K is below the minimum of 1M" in p.stderr


def test_a_command_given_as_one_string_is_refused_with_the_list_to_write(docker):
    """Not split into characters, one argument each (a str is a sequence too)."""
    for cmd in ("echo hi", b"echo hi", pathlib.Path("/bin/true")):
        with pytest.raises(TypeError) as e:
            docker.run(cmd)
    assert "['/bin/true']" in str(e.value)
    with pytest.raises(TypeError, match=r"write \['echo', 'hi'\], or \['sh', '-c', 'echo hi'\]"):
        docker.run("echo hi")
    # as subprocess: an argument is a string, bytes or a path, never silently str()'d
    with pytest.raises(TypeError, match=r"argv\[1\] must be a string, bytes or a path, not "
                                        r"NoneType \(None\)"):
        docker.run(["echo", None])
    r = docker.run([b"echo", pathlib.Path("/x"), "y"])
    assert r.stdout == b"/x y\n", r


def test_profile_that_denies_execve_runs_nothing(tmp_path):
    marker_dir = tmp_path / "must-not-exist"
    r = Sandbox(SEED_MINIMAL).run(["mkdir", str(marker_dir)])
    assert r.verdict == "SETUP_ERROR", r
    assert r.setup_error["stage"] == "profile"
    assert "defaultAction SCMP_ACT_ERRNO" in r.setup_error["message"]
    assert "execve" in r.setup_error["message"]
    assert r.pid is None and not marker_dir.exists()


# ------------------------------------------------------------------------------------------
# the command line

def sandbox_cli(*args, timeout=60, **kw):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(S.REPO) + (os.pathsep + env["PYTHONPATH"]
                                       if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "sandbox", "run", *args], cwd=str(S.REPO),
                          env=env, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=timeout, **kw)


@pytest.fixture
def profile_file(tmp_path):
    def write(doc, name="profile.json"):
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        return str(path)
    return write


def test_cli_exit_status_success_and_own_status():
    docker = S.docker_default()
    p = sandbox_cli("--profile", docker, "--", "sh", "-c", "echo hello")
    assert (p.returncode, p.stdout) == (0, b"hello\n")
    p = sandbox_cli("--profile", docker, "--", "sh", "-c", "exit 7")
    assert p.returncode == 7 and p.stderr == b""


def test_cli_exit_status_124_on_time_limits():
    docker = S.docker_default()
    p = sandbox_cli("--profile", docker, "--wall-limit", "0.5", "--", "sleep", "30")
    assert p.returncode == 124, p.stderr
    assert b"TIME_LIMIT" in p.stderr
    p = sandbox_cli("--profile", docker, "--time-limit", "0.5", "--wall-limit", "60", "--",
                    "sh", "-c", "while :; do :; done")
    assert p.returncode == 124, p.stderr


def test_cli_exit_status_125_for_the_seed_minimal_profile(profile_file):
    p = sandbox_cli("--profile", profile_file(SEED_MINIMAL), "--", "true")
    assert p.returncode == 125, p.stderr
    msg = p.stderr.decode()
    assert "defaultAction SCMP_ACT_ERRNO" in msg and "execve" in msg


def test_cli_exit_status_126_for_a_file_that_is_not_executable(tmp_path):
    plain = tmp_path / "plain.sh"
    plain.write_text("echo hi\n")
    plain.chmod(0o644)
    p = sandbox_cli("--profile", S.docker_default(), "--", str(plain))
    assert p.returncode == 126, p.stderr
    p = sandbox_cli("--profile", S.docker_default(), "--", str(tmp_path))   # a directory
    assert p.returncode == 126, p.stderr


def test_cli_exit_status_127_for_a_missing_command():
    p = sandbox_cli("--profile", S.docker_default(), "--", "no-such-command-" + S.marker())
    assert p.returncode == 127, p.stderr
    assert b"not found" in p.stderr


def test_cli_a_bad_command_line_of_run_is_125_and_shows_runs_usage():
    """Like coreutils' timeout: the codes below 125 belong to the command."""
    for args in (["--bogus", "--", "true"], ["--log-backend", "foo", "--", "true"],
                 ["--time-limit", "abc", "--", "true"], ["--env", "FOO", "--", "true"], []):
        p = sandbox_cli(*args)
        assert p.returncode == 125, (args, p.stderr)
        assert b"usage: sandbox [-h]" not in p.stderr, p.stderr    # not the top level's
    assert b"usage: sandbox run" in sandbox_cli("--bogus", "--", "true").stderr


def test_cli_rlimit_options_reach_the_command():
    p = sandbox_cli("--stack-limit", "4M", "--open-files", "64", "--file-size-limit", "1M",
                    "--", "sh", "-c", "ulimit -s; ulimit -n; ulimit -f")
    assert p.returncode == 0 and p.stdout.split() == [b"4096", b"64", b"2048"], p


def test_cli_a_failure_under_landlock_says_what_it_restricted(tmp_path):
    """Landlock refuses in the kernel, so the filter's report cannot name it."""
    from sandbox import landlock
    try:
        landlock.kernel_abi()
    except OSError as e:
        pytest.skip("no Landlock: %s" % e)
    hidden = tmp_path / "hidden.txt"
    hidden.write_text("x")
    p = sandbox_cli("--profile", "grader", "--", "cat", str(hidden))
    assert p.returncode == 1 and b"Permission denied" in p.stderr, p.stderr
    assert b"sandbox: the filesystem was restricted by Landlock" in p.stderr
    assert b"read-only /usr" in p.stderr
    p = sandbox_cli("--profile", "grader", "--", "true")
    assert p.returncode == 0 and b"Landlock" not in p.stderr
    # captured (--json), and failing for another reason: no note
    p = sandbox_cli("--profile", "grader", "--json", "--", "sh", "-c", "exit 4")
    assert p.returncode == 4 and b"Landlock" not in p.stderr, p.stderr


def test_cli_usage_errors_of_the_other_commands_are_2():
    env = dict(os.environ, PYTHONPATH=str(S.REPO))
    for args in (["explain", "default", "socket", "AF_INET"], ["explain", "default", "nosuch"],
                 ["grade", "--bogus"], ["compile", "--bogus", "default"]):
        p = subprocess.run([sys.executable, "-m", "sandbox", *args], env=env,
                           capture_output=True, timeout=60)
        assert p.returncode == 2, (args, p.stderr)
        if "--bogus" in args:
            assert b"usage: sandbox %s" % args[0].encode() in p.stderr, p.stderr


def _cli_status(argv) -> int:
    from sandbox import cli
    try:
        return cli.main(argv)
    except SystemExit as e:   # (argparse, and the commands' usage errors)
        return e.code


@pytest.mark.parametrize("argv", [
    ["check", "default", "--caps", "foo"], ["check", "default", "--caps", ""],
    ["explain", "default", "read", "--kernel", "x"], ["compile", "default", "--kernel", "4"],
    ["compile", "default", "--host-arch", "mips"], ["explain", "default", "99999999999"],
    ["explain", "default", "4294967296"], ["explain", "default", "socket", str(1 << 64)],
    ["compile", "default", "-o", "/nonexistent/dir/x.bpf"], ["compile", "default", "-o", "/"],
])
def test_cli_bad_option_values_of_the_profile_commands_are_2_without_a_traceback(argv, capsys):
    assert _cli_status(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") <= 6 and err.strip(), err


def test_cli_a_profile_over_the_kernels_4096_instructions_is_refused_by_every_command(
        profile_file, capsys):
    doc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["write"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": i, "op": "SCMP_CMP_EQ"}]} for i in range(1500)]}
    path = profile_file(doc)
    for argv in (["check", path], ["compile", path], ["explain", path, "write"]):
        assert _cli_status(argv) == 1, argv
        err = capsys.readouterr().err
        assert "the kernel accepts at most 4096" in err and "Traceback" not in err, err


def test_cli_run_says_when_the_profile_disables_seccomp(profile_file):
    p = sandbox_cli("--profile", profile_file({}), "--", "grep", "Seccomp:", "/proc/self/status")
    assert p.returncode == 0 and p.stdout.split() == [b"Seccomp:", b"0"], p
    assert b"warning: the profile disables seccomp" in p.stderr, p.stderr
    p = sandbox_cli("--profile", profile_file({"DefaultAction": "SCMP_ACT_ERRNO"}), "--", "true")
    assert p.returncode == 125 and b'(Docker, podman) would read this one as "defaultAction"' in p.stderr


def test_cli_json_leaves_an_ignored_sigint_ignored():
    """A shell starts background jobs with SIGINT ignored: a Ctrl-C meant for the script must
    not stop them (the --json stop handler used to install itself over SIG_IGN)."""
    m = S.sleep_marker()
    proc = subprocess.Popen(["sh", "-c", "trap '' INT; exec \"$@\"", "sh", sys.executable, "-m",
                             "sandbox", "run", "--json", "--profile", S.docker_default(), "--",
                             "sh", "-c", "sleep 1.5", m],   # (m: the command's $0)
                            env=dict(os.environ, PYTHONPATH=str(S.REPO)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        wait_for(lambda: [p for p in S.procs_with(m) if p[2].startswith("sh -c sleep")], 30,
                 "the command never started")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and json.loads(out)["verdict"] == "OK"
    finally:
        proc.kill()
        proc.wait()


def test_cli_a_closed_standard_stream_reaches_the_command_as_dev_null(tmp_path):
    """Not whatever the sandbox happened to open first on that number."""
    code = "import os, sys; sys.stderr.write(os.readlink('/proc/self/fd/1') + '\\n')"
    err = tmp_path / "err"
    p = subprocess.run(["sh", "-c", 'exec >&- <&-; exec "$@" 2>%s' % err, "sh", sys.executable,
                        "-m", "sandbox", "run", "--profile", S.docker_default(), "--",
                        sys.executable, "-c", code],
                       env=dict(os.environ, PYTHONPATH=str(S.REPO)), timeout=60)
    assert p.returncode == 0 and err.read_text() == "/dev/null\n", err.read_text()


def test_cli_learn_checks_its_output_path_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    p = subprocess.run([sys.executable, "-m", "sandbox", "learn", "-o", "/nonexistent/x.json",
                        "--", "touch", str(marker)],
                       env=dict(os.environ, PYTHONPATH=str(S.REPO)), capture_output=True,
                       timeout=60)
    assert p.returncode == 125 and b"no directory /nonexistent" in p.stderr, p.stderr
    assert not marker.exists()


@pytest.mark.parametrize("reports", [False, True])
def test_cli_exit_status_159_when_the_filter_kills(profile_file, reports):
    """With --report-denials the supervisor kills in the kernel's place (SIGKILL): the status
    is the same."""
    extra = ["--report-denials"] if reports else []
    p = sandbox_cli("--profile", profile_file(KILL_GETPPID), *extra, "--", *GETPPID)
    assert p.returncode == 128 + signal.SIGSYS == 159, p.stderr
    assert b"survived" not in p.stdout
    assert b"SECCOMP_KILLED" in p.stderr


def test_cli_exit_status_137_on_an_output_limit_with_json():
    p = sandbox_cli("--profile", S.docker_default(), "--json", "--output-limit", "1K", "--",
                    "yes")
    assert p.returncode == 128 + signal.SIGKILL == 137, p.stderr
    doc = json.loads(p.stdout)
    assert doc["verdict"] == "OUTPUT_LIMIT"
    assert len(doc["stdout"]) == 1024 and doc["stdout_truncated"] is True


def test_cli_json_prints_one_result_object():
    p = sandbox_cli("--profile", S.docker_default(), "--json", "--", "sh", "-c",
                    "echo out; echo err >&2; exit 4")
    assert p.returncode == 4
    doc = json.loads(p.stdout)                       # exactly one JSON document
    assert isinstance(doc, dict)
    assert doc["verdict"] == "NONZERO_EXIT" and doc["exit_code"] == 4
    assert (doc["stdout"], doc["stderr"]) == ("out\n", "err\n")
    r = Result.from_json(doc)
    assert r.verdict == "NONZERO_EXIT" and r.stdout == b"out\n"
    assert p.stderr == b""


def test_cli_json_with_a_setup_error():
    p = sandbox_cli("--profile", S.docker_default(), "--json", "--", "no-such-" + S.marker())
    assert p.returncode == 127
    doc = json.loads(p.stdout)
    assert doc["verdict"] == "SETUP_ERROR"
    assert doc["setup_error"]["errno_name"] == "ENOENT"


def test_cli_stdin_file_env_and_cwd(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"line 1\nline 2\n")
    p = sandbox_cli("--profile", S.docker_default(), "--stdin", str(src), "--", "wc", "-l")
    assert (p.returncode, p.stdout.strip()) == (0, b"2")
    p = sandbox_cli("--profile", S.docker_default(), "--env", "FOO=bar", "--cwd",
                    str(tmp_path), "--", "sh", "-c", 'echo "$FOO $PWD"')
    assert p.stdout == ("bar %s\n" % tmp_path).encode()


def test_cli_stdin_dash_is_the_stdin_sandbox_was_given():
    # `producer | sandbox run --stdin - -- consumer`; without --stdin the command reads
    # /dev/null, not the pipe
    env = dict(os.environ, PYTHONPATH=str(S.REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    base = [sys.executable, "-m", "sandbox", "run", "--profile", S.docker_default()]
    p = subprocess.run(base + ["--stdin", "-", "--", "wc", "-l"], input=b"a\nb\nc\n",
                       capture_output=True, env=env, timeout=60)
    assert (p.returncode, p.stdout.strip()) == (0, b"3"), p.stderr
    p = subprocess.run(base + ["--", "wc", "-l"], input=b"a\nb\nc\n", capture_output=True,
                       env=env, timeout=60)
    assert (p.returncode, p.stdout.strip()) == (0, b"0"), p.stderr


def test_cli_missing_stdin_file_is_a_sandbox_error(tmp_path):
    """Regression: a missing --stdin FILE was a Python traceback (exit 1)."""
    p = sandbox_cli("--profile", S.docker_default(), "--stdin", str(tmp_path / "missing"),
                    "--", "cat")
    assert p.returncode == 125, p.stderr
    assert b"Traceback" not in p.stderr
    assert b"missing" in p.stderr


@contextlib.contextmanager
def _stoppable_run(*options, stdout=subprocess.DEVNULL):
    """`sandbox run OPTIONS -- sh -c 'sleep M & wait'`, once its sleep runs: (process, M)."""
    m = S.sleep_marker()
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "run", *options, "--profile",
                             S.docker_default(), "--", "sh", "-c", "sleep %s & wait" % m],
                            cwd=str(S.REPO), env=dict(os.environ, PYTHONPATH=str(S.REPO)),
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: [p for p in S.procs_with(m) if p[2].startswith("sleep")], 30,
                 "the command never started")
        yield proc, m
    finally:
        proc.kill()
        proc.wait()
        S.kill_all_with(m)


@pytest.mark.parametrize("sig, options", [
    (signal.SIGINT, []), (signal.SIGTERM, ["--no-pid-namespace"]),
    (signal.SIGHUP, ["--no-pid-namespace"])])
def test_cli_a_stop_signal_ends_the_run_and_its_tree(sig, options):
    """Regression: Ctrl-C was ignored until the command ended by itself (the C loop retried
    poll() on EINTR with the GIL released); SIGHUP (a closed terminal) killed the supervisor
    alone, leaving a tree without a PID namespace of its own running."""
    with _stoppable_run(*options) as (proc, m):
        proc.send_signal(sig)
        try:
            status = proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("sandbox run still running 10 s after %s" % sig.name)
        assert status == 128 + sig
        assert S.wait_gone(m, timeout=3.0) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_json_still_prints_the_result_of_a_stopped_run(sig):
    with _stoppable_run("--json", stdout=subprocess.PIPE) as (proc, m):
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 128 + sig
        doc = json.loads(out)
        assert doc["cancelled"] is True and doc["verdict"] == "SIGNALED", doc
        assert S.wait_gone(m, timeout=3.0) == []


# ------------------------------------------------------------------------------------------
# the library's own edges

def _getppid_profile(action):
    doc = {}                             # the outer dict first: it is the one whose id counts
    doc["defaultAction"] = "SCMP_ACT_ALLOW"
    doc["syscalls"] = [{"names": ["getppid"], "action": action}]
    return doc


def test_run_with_a_new_profile_dict_uses_that_profile():
    """Regression: run() once cached Sandboxes by id() of a dict profile without keeping the dict
    alive, so a new dict at a freed one's address ran under the old filter."""
    first = _getppid_profile("SCMP_ACT_ALLOW")
    old_id = id(first)
    assert runner.run(GETPPID, profile=first).verdict == "OK"
    del first
    gc.collect()
    keep = []
    for _ in range(20000):            # provoke address reuse where the allocator allows it
        second = _getppid_profile("SCMP_ACT_KILL_PROCESS")
        if id(second) == old_id:
            break
        keep.append(second)
    r = runner.run(GETPPID, profile=second)
    assert r.verdict == "SECCOMP_KILLED", (r.verdict, r.stdout)


def test_run_with_a_mutated_profile_dict_uses_its_current_content():
    doc = _getppid_profile("SCMP_ACT_ALLOW")
    assert runner.run(GETPPID, profile=doc).verdict == "OK"
    doc["syscalls"][0]["action"] = "SCMP_ACT_KILL_PROCESS"
    assert runner.run(GETPPID, profile=doc).verdict == "SECCOMP_KILLED"


def test_relative_cwd_with_a_relative_command(tmp_path, monkeypatch):
    """Regression: ./prog with a relative cwd was exec'd as cwd/cwd/prog (ENOENT)."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "prog.sh").write_text("#!/bin/sh\necho ran in $PWD\n")
    (sub / "prog.sh").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    r = Sandbox(S.docker_default()).run(["./prog.sh"], cwd="sub", timeout=30)
    assert r.verdict == "OK", r.setup_error
    assert r.stdout == ("ran in %s\n" % sub).encode()


def test_huge_time_limit_is_accepted_or_refused_before_spawning(docker):
    """Regression: a limit above ~9.2e9 s raised OverflowError after the spawn and left the
    child unreaped (and, without a cgroup, running unsupervised)."""
    zombies_before = set(S.zombie_children())
    new = set()
    try:
        try:
            r = docker.run(["true"], timeout=1e10)
        except (ValueError, OverflowError):
            r = None                       # a refusal is fine if nothing was started
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not new:
            new = set(S.zombie_children()) - zombies_before
            time.sleep(0.05)
        assert new == set(), "the run left zombie children %r" % new
        if r is not None:
            assert r.verdict == "OK", r
    finally:
        for pid in new:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def test_inherit_stdio_is_the_callers(docker, tmp_path, capfd):
    r = docker.run(["sh", "-c", "echo via-inherit"], stdout=INHERIT, stderr=PIPE)
    assert r.verdict == "OK" and r.stdout is None and r.stderr == b""
    assert "via-inherit" in capfd.readouterr().out


@pytest.mark.parametrize("pid_namespace", [False, None])
def test_a_failure_between_start_and_supervision_kills_and_reaps_the_run(
        monkeypatch, pid_namespace):
    """Whatever raises after the command started and before it is supervised (here: the wall
    limit's computation) kills and reaps it and leaks no descriptor."""
    sb = Sandbox(S.docker_default(), pid_namespace=pid_namespace, use_cgroup=False)
    sb.run(["true"])   # the spawner thread and the rest are set up
    m = S.sleep_marker()
    before = S.fd_count()

    def boom(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(runner.Limits, "effective_wall", boom)
    with pytest.raises(RuntimeError):
        sb.run(["sleep", m])
    monkeypatch.undo()
    assert S.wait_gone(m, timeout=3.0) == []
    assert S.zombie_children() == [] and S.no_waitable_child()
    assert S.fd_count() == before
    sb.close()


def test_cli_shows_the_librarys_warnings_but_not_each_denial(capsys):
    """The "runs get no PID namespace" warning went to a NullHandler: a CLI user never saw
    that a setsid daemon could escape."""
    import logging
    from sandbox import cli
    handler = cli._show_library_warnings()
    try:
        logging.getLogger("sandbox").warning("runs get no PID namespace")
        logging.getLogger("sandbox.seccomp").warning("true: ERRNO x1")   # (summarised apart)
        logging.getLogger("sandbox").info("not a warning")
    finally:
        logging.getLogger("sandbox").removeHandler(handler)
    assert capsys.readouterr().err == "sandbox: warning: runs get no PID namespace\n"

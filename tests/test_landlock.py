"""Landlock under the seccomp filter: a graded program cannot open what it should not (the
expected output beside its working directory, through a symlink, a hard link or /proc), can
read beneath fs_ro and write only beneath fs_rw; compilers and interpreters still run under the
grader's default; a kernel without Landlock is refused unless allowed, and the Result says
which. The whole module needs a kernel with Landlock (skipped otherwise).
"""
import errno
import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

pytest.importorskip("sandbox._core")

from sandbox import _core, cli, landlock, runner  # noqa: E402
from sandbox.result import Result  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402

try:
    ABI = landlock.kernel_abi()
except landlock.LandlockUnavailable as e:
    pytestmark = pytest.mark.skip(reason="no Landlock here: %s" % e)
    ABI = 0

SECRET = b"the expected output\n"
# open() a path and say how it went: the content, or the errno name
OPEN = ("import errno, sys\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        print(p, open(p).read().strip())\n"
        "    except OSError as e:\n"
        "        print(p, errno.errorcode[e.errno])\n")


@pytest.fixture
def judge(tmp_path):
    """A grader's directory: the expected output, and the submission's work directory."""
    (tmp_path / "NAME.out").write_bytes(SECRET)
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)
    return tmp_path, work


def opened(result) -> dict:
    assert result.verdict == "OK", (result.describe(), result.stderr)
    return dict(line.split(" ", 1) for line in result.stdout.decode().splitlines())


# ------------------------------------------------------------------------------------------
# 1. the classic cheat: reading the expected output

def test_graded_program_cannot_open_the_expected_output(judge):
    top, work = judge
    (work / "in.txt").write_text("3 4\n")
    os.symlink(top / "NAME.out", work / "link.out")   # even a symlink the grader left there
    sb = Sandbox("grader", cwd=work)
    r = sb.run(["python3", "-c", OPEN, "../NAME.out", str(top / "NAME.out"), "link.out",
                "/proc/self/cwd/../NAME.out", "in.txt"])
    got = opened(r)
    assert got == {"../NAME.out": "EACCES", str(top / "NAME.out"): "EACCES",
                   "link.out": "EACCES", "/proc/self/cwd/../NAME.out": "EACCES",
                   "in.txt": "3 4"}
    assert SECRET not in r.stdout
    # shell tools fail the same way, and listing the grader's directory is refused too
    r = sb.run(["sh", "-c", "cat ../NAME.out; ls .. >/dev/null; echo status $?"])
    assert b"Permission denied" in r.stderr and SECRET not in r.stdout
    assert r.stdout.endswith(b"status 2\n")


def test_no_link_or_rename_brings_the_file_within_reach(judge):
    top, work = judge
    code = ("import os\n"
            "for how in (os.link, os.rename, os.symlink):\n"
            "    try:\n"
            "        how('../NAME.out', 'got-' + how.__name__)\n"
            "        print(how.__name__, open('got-' + how.__name__).read())\n"
            "    except OSError as e:\n"
            "        print(how.__name__, 'refused', e.errno)\n")
    r = Sandbox("grader", cwd=work).run(["python3", "-c", code])
    assert r.verdict == "OK", r.stderr
    # link: EXDEV (a hard link may not cross out of the allowed tree), rename: EACCES,
    # symlink: made, but opening it reaches the file itself, outside the allowed paths
    assert r.stdout.decode().splitlines() == ["link refused %d" % errno.EXDEV,
                                              "rename refused %d" % errno.EACCES,
                                              "symlink refused %d" % errno.EACCES]
    assert (top / "NAME.out").read_bytes() == SECRET    # not moved away either


def test_the_default_scratch_is_a_fresh_directory_removed_afterwards(judge, monkeypatch):
    top, _ = judge
    monkeypatch.chdir(top)                               # the grader's own directory
    r = Sandbox("grader").run(["sh", "-c", 'cat NAME.out; echo "$PWD $TMPDIR"; '
                                          'ls -A; echo x > made; cat made'])
    assert r.verdict == "OK" and SECRET not in r.stdout
    assert b"NAME.out: No such file" in r.stderr
    scratch = r.landlock["scratch"]
    assert scratch and scratch != str(top)
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "%s %s" % (scratch, scratch)      # the cwd, and TMPDIR
    assert lines[1:] == ["x"]                            # empty, and writable
    assert not os.path.exists(scratch)
    assert r.landlock["rw"][-1] == scratch


# ------------------------------------------------------------------------------------------
# 2. fs_ro and fs_rw

def test_read_beneath_fs_ro_write_only_beneath_fs_rw(tmp_path):
    ro, rw, other = tmp_path / "ro", tmp_path / "rw", tmp_path / "other"
    for d in (ro, rw, other):
        d.mkdir()
        (d / "f").write_text(d.name)
    code = ("import os\n"
            "def attempt(what, fn):\n"
            "    try:\n"
            "        r = fn()\n"
            "        print(what, 'ok' if r is None else r)\n"
            "    except OSError as e:\n"
            "        print(what, errno.errorcode[e.errno])\n"
            "import errno\n"
            "for d in ('%s', '%s', '%s'):\n"
            "    n = os.path.basename(d)\n"
            "    attempt(n + ':read', lambda: open(d + '/f').read())\n"
            "    attempt(n + ':list', lambda: ','.join(os.listdir(d)))\n"
            "    attempt(n + ':write', lambda: open(d + '/f', 'a').close())\n"
            "    attempt(n + ':create', lambda: open(d + '/new', 'w').close())\n"
            "    attempt(n + ':truncate', lambda: os.truncate(d + '/f', 0))\n"
            "    attempt(n + ':mkdir', lambda: os.mkdir(d + '/sub'))\n"
            "    attempt(n + ':unlink', lambda: os.unlink(d + '/f'))\n" % (ro, rw, other))
    r = Sandbox("default", fs_ro=["@system", ro], fs_rw=[rw]).run(["python3", "-c", code])
    got = opened(r)
    assert got == {
        "ro:read": "ro", "ro:list": "f", "ro:write": "EACCES", "ro:create": "EACCES",
        "ro:truncate": "EACCES", "ro:mkdir": "EACCES", "ro:unlink": "EACCES",
        "rw:read": "rw", "rw:list": "f", "rw:write": "ok", "rw:create": "ok",
        "rw:truncate": "ok", "rw:mkdir": "ok", "rw:unlink": "ok",
        "other:read": "EACCES", "other:list": "EACCES", "other:write": "EACCES",
        "other:create": "EACCES", "other:truncate": "EACCES", "other:mkdir": "EACCES",
        "other:unlink": "EACCES"}
    assert (other / "f").read_text() == "other" and (ro / "f").read_text() == "ro"
    assert r.landlock == {"available": True, "abi": ABI, "ro": list(landlock.fs_policy(
        None, ["@system", ro]).ro), "rw": r.landlock["rw"], "scratch": None}
    assert str(rw) in r.landlock["rw"] and "/dev/null" in r.landlock["rw"]


def test_a_file_in_fs_ro_is_readable_its_neighbours_are_not(tmp_path):
    (tmp_path / "input.txt").write_text("data")
    (tmp_path / "NAME.out").write_bytes(SECRET)
    r = Sandbox("default", fs_ro=["@system", tmp_path / "input.txt"]).run(
        ["python3", "-c", OPEN, str(tmp_path / "input.txt"), str(tmp_path / "NAME.out")])
    assert opened(r) == {str(tmp_path / "input.txt"): "data",
                         str(tmp_path / "NAME.out"): "EACCES"}


def test_fs_rw_alone_keeps_the_system_readable_and_nothing_else(tmp_path, judge):
    top, work = judge
    r = Sandbox("default", fs_rw=[work]).run(["python3", "-c", OPEN, str(top / "NAME.out")],
                                             cwd=work)
    assert opened(r) == {str(top / "NAME.out"): "EACCES"}
    assert r.landlock["scratch"] is None


def test_other_profiles_are_unrestricted_without_fs_options(judge):
    top, _ = judge
    r = Sandbox("default").run(["cat", str(top / "NAME.out")])
    assert r.verdict == "OK" and r.stdout == SECRET and r.landlock is None
    r = Sandbox("grader", fs_unrestricted=True).run(["cat", str(top / "NAME.out")])
    assert r.verdict == "OK" and r.stdout == SECRET and r.landlock is None
    with pytest.raises(ValueError, match="fs_unrestricted"):
        Sandbox("grader", fs_unrestricted=True, fs_ro=["@system"])


def test_per_run_lists_replace_the_sandboxes(judge):
    top, work = judge
    sb = Sandbox("grader", cwd=work)
    r = sb.run(["cat", str(top / "NAME.out")], fs_ro=["@system", top / "NAME.out"])
    assert (r.verdict, r.stdout) == ("OK", SECRET)
    assert r.landlock["rw"][-1] == str(work)       # fs_rw still the grader's @scratch
    assert sb.run(["cat", str(top / "NAME.out")]).verdict == "NONZERO_EXIT"
    r = runner.run(["cat", str(top / "NAME.out")], fs_ro=["@system"])
    assert r.verdict == "NONZERO_EXIT" and b"Permission denied" in r.stderr
    assert runner.run(["cat", str(top / "NAME.out")]).stdout == SECRET


# ------------------------------------------------------------------------------------------
# 3. ordinary compilers and interpreters under the grader's default

def test_interpreters_and_shell_tools_run_under_the_grader_default(judge):
    _, work = judge
    sb = Sandbox("grader", cwd=work, timeout=60)
    r = sb.run(["python3", "-c", "import json, os, subprocess; print(json.dumps(6 * 7)); "
                                 "print(subprocess.run(['echo', 'child'], capture_output=True)"
                                 ".stdout.decode().strip(), os.cpu_count() >= 1)"])
    assert (r.verdict, r.stdout) == ("OK", b"42\nchild True\n"), r.stderr
    r = sb.run(["sh", "-c", "ls /usr | head -3; echo done >/dev/null; ls /usr | wc -l"])
    assert r.verdict == "OK", r.stderr
    assert r.stdout.splitlines()[0] == sorted(os.listdir("/usr"))[0].encode()
    r = sb.run(["sh", "-c", "printf 'a\\nb\\n' | sort -r | tr a-z A-Z > out.txt; cat out.txt"])
    assert (r.verdict, r.stdout) == ("OK", b"B\nA\n"), r.stderr


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_gcc_compiles_and_runs_in_the_scratch_directory(judge):
    top, work = judge
    (work / "hello.c").write_text(
        '#include <stdio.h>\nint main(void) {\n FILE *f = fopen("../NAME.out", "r");\n'
        ' printf("hello %s\\n", f ? "cheated" : "honest");\n return 0;\n}\n')
    r = Sandbox("grader", cwd=work, timeout=120).run(
        ["sh", "-c", "gcc -O2 -o hello hello.c && ./hello"])
    assert (r.verdict, r.stdout) == ("OK", b"hello honest\n"), r.stderr
    assert not [p for p in os.listdir(work) if p.startswith("cc")]  # gcc's temp files: gone


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_gcc_in_a_fresh_scratch_directory():
    src = '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n'
    r = Sandbox("grader", timeout=120).run(
        ["sh", "-c", "cat > t.c && gcc -o t t.c && ./t"], stdin=src)
    assert (r.verdict, r.stdout) == ("OK", b"hi\n"), r.stderr


def test_many_runs_in_parallel_share_one_ruleset(judge):
    top, work = judge
    sb = Sandbox("grader", cwd=work)
    fd = sb._ruleset.fd
    results = [None] * 8

    def one(i):
        results[i] = sb.run(["python3", "-c", OPEN, "../NAME.out"])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(opened(r) == {"../NAME.out": "EACCES"} for r in results)
    assert sb._ruleset.fd == fd                      # built once
    sb.close()
    assert sb._ruleset is None
    with pytest.raises(OSError):
        os.fstat(fd)


# ------------------------------------------------------------------------------------------
# 4. the child: the ruleset descriptor, the stage, the ABI

def test_the_ruleset_descriptor_does_not_reach_the_command(judge):
    _, work = judge
    code = ("import os\nopen_fds = []\nfor fd in range(3, 256):\n    try:\n        os.fstat(fd)\n"
            "        open_fds.append(fd)\n    except OSError:\n        pass\nprint(open_fds)")
    for sb in (Sandbox("grader", cwd=work), Sandbox("grader", cwd=work, pid_namespace=False)):
        r = sb.run(["python3", "-c", code])
        assert (r.verdict, r.stdout) == ("OK", b"[]\n"), r.stderr


def test_a_bad_ruleset_descriptor_fails_at_the_landlock_stage():
    with open("/dev/null") as f:
        fd = os.dup(f.fileno())
    try:
        with pytest.raises(_core.SpawnError) as e:
            _core.spawn(b"/bin/true", [b"true"], [], None, [0, 1, 2], landlock_fd=max(fd, 3))
        assert e.value.stage == "landlock" and e.value.errno == errno.EBADFD
    finally:
        os.close(fd)


def test_rights_follow_the_abi():
    base = (1 << 13) - 1                             # ABI 1: execute .. make_sym
    assert _core.landlock_fs_rights(1) == base
    assert _core.landlock_fs_rights(2) == base | 1 << 13            # + refer
    assert _core.landlock_fs_rights(3) == _core.landlock_fs_rights(4) == base | 3 << 13
    assert _core.landlock_fs_rights(5) == _core.landlock_fs_rights(7) == base | 7 << 13


def test_an_older_abi_leaves_its_unknown_rights_unhandled(tmp_path, monkeypatch):
    """With ABI 1's rights only, truncate(2) is not something Landlock handles: a read-only
    file can be truncated (as on such a kernel); with the real ABI it cannot."""
    if ABI < 3:
        pytest.skip("the kernel's ABI %d has no truncate right" % ABI)
    (tmp_path / "f").write_text("data")
    argv = ["python3", "-c", "import os; os.truncate(%r, 0); print('truncated')"
            % str(tmp_path / "f")]
    r = Sandbox("default", fs_ro=["@system", tmp_path]).run(argv)
    assert r.verdict == "NONZERO_EXIT" and b"PermissionError" in r.stderr
    monkeypatch.setattr(landlock, "kernel_abi", lambda: 1)
    r = Sandbox("default", fs_ro=["@system", tmp_path]).run(argv)
    assert (r.verdict, r.stdout, r.landlock["abi"]) == ("OK", b"truncated\n", 1), r.stderr


# ------------------------------------------------------------------------------------------
# 5. a kernel without Landlock, bad paths, the Result

def no_landlock():
    raise landlock.LandlockUnavailable("the kernel was built without Landlock (ENOSYS)")


def test_without_landlock_the_run_is_refused(judge, monkeypatch):
    top, work = judge
    monkeypatch.setattr(landlock, "kernel_abi", no_landlock)
    r = Sandbox("grader", cwd=work).run(["cat", "../NAME.out"])
    assert r.verdict == "SETUP_ERROR" and r.stdout is None
    assert r.setup_error["stage"] == "landlock"
    assert "without Landlock (ENOSYS)" in r.setup_error["message"]
    assert "--allow-no-landlock" in r.setup_error["message"]
    assert r.landlock["available"] is False and r.landlock["reason"].startswith("the kernel")
    # a profile that asks for nothing is not affected
    assert Sandbox("default").run(["cat", "../NAME.out"], cwd=work).stdout == SECRET


def test_without_landlock_allowed_the_result_says_so(judge, monkeypatch):
    top, work = judge
    monkeypatch.setattr(landlock, "kernel_abi", no_landlock)
    r = Sandbox("grader", cwd=work, allow_no_landlock=True).run(["cat", "../NAME.out"])
    assert (r.verdict, r.stdout) == ("OK", SECRET)
    doc = r.to_json()
    assert doc["landlock"]["available"] is False and doc["landlock"]["abi"] is None
    assert doc["landlock"]["rw"][-1] == str(work)


def test_a_missing_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(landlock.FsPathError, match="--fs-ro %s: no such file" % missing):
        Sandbox("default", fs_ro=[missing])
    with pytest.raises(landlock.FsPathError, match="--fs-rw %s: no such file" % missing):
        Sandbox("grader", fs_rw=[missing])
    with pytest.raises(landlock.FsPathError, match="scratch directory"):
        Sandbox("grader", cwd=missing)
    with pytest.raises(landlock.FsPathError, match="read-write list"):
        Sandbox("default", fs_ro=["@scratch"])
    with pytest.raises(TypeError):
        Sandbox("default", fs_ro=str(tmp_path))
    r = Sandbox("grader").run(["true"], fs_rw=[missing])
    assert r.verdict == "SETUP_ERROR" and r.setup_error["stage"] == "landlock"
    assert str(missing) in r.setup_error["message"]


def test_the_result_json_carries_the_landlock_field(judge):
    _, work = judge
    r = Sandbox("grader", cwd=work).run(["true"])
    doc = json.loads(json.dumps(r.to_json()))
    ll = doc["landlock"]
    assert (ll["available"], ll["abi"], ll["scratch"]) == (True, ABI, str(work))
    assert "/usr" in ll["ro"] and "/etc" in ll["ro"] and "/proc" not in ll["ro"]
    assert ll["rw"] == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                        str(work)]
    assert Result.from_json(doc).landlock == ll


# ------------------------------------------------------------------------------------------
# 6. the command line

def sandbox_run(*args, cwd=None):
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "sandbox", "run", *args], env=env, cwd=cwd,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=120)


def test_cli_fs_options(judge):
    top, work = judge
    p = sandbox_run("--profile", "grader", "--", "cat", "NAME.out", cwd=top)
    assert p.returncode == 1 and SECRET not in p.stdout          # ran in a fresh scratch
    p = sandbox_run("--profile", "grader", "--cwd", str(work), "--", "cat", "../NAME.out")
    assert p.returncode == 1 and b"Permission denied" in p.stderr
    p = sandbox_run("--profile", "grader", "--fs-ro", "@system", "--fs-ro", str(top), "--",
                    "cat", str(top / "NAME.out"))
    assert (p.returncode, p.stdout) == (0, SECRET), p.stderr
    p = sandbox_run("--profile", "grader", "--fs-unrestricted", "--", "cat",
                    str(top / "NAME.out"))
    assert (p.returncode, p.stdout) == (0, SECRET), p.stderr
    p = sandbox_run("--fs-rw", str(work), "--cwd", str(work), "--json", "--", "sh", "-c",
                    "echo hi > f; cat f; cat ../NAME.out")
    doc = json.loads(p.stdout)
    assert (p.returncode, doc["stdout"], doc["landlock"]["scratch"]) == (1, "hi\n", None)
    assert "Permission denied" in doc["stderr"]
    assert doc["landlock"]["rw"][-1] == str(work)


def test_cli_bad_path_exits_125(tmp_path):
    p = sandbox_run("--fs-ro", str(tmp_path / "nope"), "--", "true")
    assert p.returncode == 125
    assert p.stderr.decode().strip() == "sandbox: --fs-ro %s: no such file or directory" % (
        tmp_path / "nope")


def test_cli_without_landlock(judge, monkeypatch, capsys):
    top, work = judge
    monkeypatch.setattr(landlock, "kernel_abi", no_landlock)
    monkeypatch.setattr(cli, "threading_main", lambda: False)   # keep pytest's SIGTERM
    argv = ["run", "--profile", "grader", "--cwd", str(work), "--json", "--", "cat",
            "../NAME.out"]
    assert cli.main(argv) == 125
    doc = json.loads(capsys.readouterr().out)
    assert doc["setup_error"]["stage"] == "landlock"
    assert cli.main(argv[:1] + ["--allow-no-landlock"] + argv[1:]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stdout"] == SECRET.decode() and doc["landlock"]["available"] is False


def test_a_working_directory_made_anew_gets_a_new_ruleset(judge):
    """Landlock rules name inodes: a grader that empties its work directory by removing and
    re-creating it must not find the next run locked out of it."""
    _, work = judge
    sb = Sandbox("grader", cwd=work)
    built = sb._ruleset.fd
    assert sb.run(["sh", "-c", "echo 1 > f; cat f"]).stdout == b"1\n"
    shutil.rmtree(work)
    work.mkdir()
    r = sb.run(["sh", "-c", "echo 2 > f; cat f"])
    assert (r.verdict, r.stdout) == ("OK", b"2\n"), r.stderr
    assert sb._ruleset.fd == built                   # the Sandbox's own is left as it was


@pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root")
def test_the_fresh_scratch_belongs_to_the_runs_user():
    import pwd
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    r = Sandbox("grader", user="nobody").run(
        ["sh", "-c", "id -u; echo x > made; stat -c %u made; ls -ld . | cut -c1-10"])
    assert r.verdict == "OK", r.stderr
    uid = str(nobody.pw_uid).encode()
    assert r.stdout.splitlines() == [uid, uid, b"drwx------"]


def test_no_descriptor_is_left_behind(judge):
    _, work = judge
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with Sandbox("grader", cwd=work) as sb:
            sb.run(["true"])
        Sandbox("grader", cwd=work).run(["true"], fs_rw=["@scratch", work])  # dropped, not closed
        Sandbox("grader").run(["true"])
    import gc
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before


def test_batch_jobs_carry_their_own_filesystem_lists(tmp_path):
    """fs_ro / fs_rw in a jobs file: each job gets its own ruleset; a job without them keeps
    the profile's default (none for Docker's profile)."""
    from sandbox import batch
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_text("visible\n")
    (tmp_path / "secret.out").write_bytes(SECRET)
    (tmp_path / "out").mkdir()
    entries = [
        {"name": "reads-data", "cmd": ["cat", str(tmp_path / "data" / "in.txt")],
         "fs_ro": ["@system", "data"], "expect_stdout": "visible\n"},
        {"name": "no-secret", "cmd": ["cat", str(tmp_path / "secret.out")],
         "fs_ro": ["@system", "data"], "expect_exit": 1},
        {"name": "writes-out", "cmd": ["sh", "-c", "echo hi > %s/out/x" % tmp_path],
         "fs_ro": ["@system"], "fs_rw": ["out"]},
        {"name": "no-write-elsewhere", "cmd": ["sh", "-c", "echo hi > %s/y" % tmp_path],
         "fs_ro": ["@system"], "fs_rw": ["out"], "expect_exit": 2},
        {"name": "unrestricted", "cmd": ["cat", str(tmp_path / "secret.out")],
         "expect_stdout": SECRET.decode()},
    ]
    jobs, problems = batch.parse_jobs("\n".join(json.dumps(e) for e in entries),
                                      name="jobs.jsonl", base_dir=str(tmp_path))
    assert problems == []
    results = batch.run_batch(jobs, jobs_parallel=2, default_profile="default")
    assert {jr.job.name: jr.passed for jr in results} == {e["name"]: True for e in entries}, \
        [(jr.job.name, jr.failures, jr.result.stderr) for jr in results if not jr.passed]
    by_name = {jr.job.name: jr.result for jr in results}
    assert b"Permission denied" in by_name["no-secret"].stderr
    assert (tmp_path / "out" / "x").read_text() == "hi\n" and not (tmp_path / "y").exists()
    assert by_name["reads-data"].landlock["ro"][-1] == str(tmp_path / "data")
    assert by_name["unrestricted"].landlock is None

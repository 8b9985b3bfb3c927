"""A non-root supervisor contains a run's whole tree in a user + PID namespace of the run's own.

Each test runs a small supervisor script as nobody (setpriv, as root here and in CI) and checks
what it prints; leftovers are looked for from here, by a marker carried in the commands' argv
(never in the supervisor's own: the script gets it through the environment).
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("sandbox._core")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "probes" / "runner"))
import runner_support as S  # noqa: E402

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
PRELUDE = (
    "import json, os, sys\n"
    "import sandbox\n"
    "from sandbox.runner import Sandbox\n"
    "PROFILE, M = os.environ['SBX_PROFILE'], os.environ.get('SBX_MARK', '')\n")


def as_nobody(script: str, marker: str = "", timeout: float = 120) -> object:
    """Run PRELUDE + script as nobody; the JSON of its last line of output."""
    env = dict(os.environ, PYTHONPATH=str(S.REPO), SBX_PROFILE=S.docker_default(),
               SBX_MARK=marker)
    out = subprocess.run(NOBODY + [sys.executable, "-c", PRELUDE + script], capture_output=True,
                         text=True, env=env, cwd="/", timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def nobody_userns():
    """Skip unless we can become nobody and nobody gets an unprivileged user namespace."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    if not (os.stat(S.REPO).st_mode & 0o005 == 0o005):
        pytest.skip("nobody cannot read the package in %s" % S.REPO)
    err = as_nobody("from sandbox import _core\nprint(_core.userns_error())")
    if err:
        pytest.skip("no unprivileged user namespace for nobody here: %s" % os.strerror(err))


@pytest.fixture
def marker():
    m = S.sleep_marker()
    yield m
    S.kill_all_with(m)


def assert_gone(marker):
    assert S.wait_gone(marker, timeout=3.0) == [], "processes outlived the run"


def test_a_setsid_daemon_dies_at_the_wall_limit(nobody_userns, marker):
    r = as_nobody(
        "script = 'setsid sh -c \"sleep %s; true\" & sleep %s; true' % (M, M)\n"
        "r = Sandbox(PROFILE).run(['sh', '-c', script], timeout=1)\n"
        "print(json.dumps([r.verdict, r.time_limit_kind, r.containment, r.pid_namespace]))\n",
        marker)
    assert r == ["TIME_LIMIT", "wall", "pid-namespace", True]
    assert_gone(marker)


def test_a_setsid_daemon_does_not_outlive_a_successful_run(nobody_userns, marker):
    r = as_nobody(
        "r = Sandbox(PROFILE).run(['sh', '-c', 'setsid sleep %s & nohup sleep %s >/dev/null "
        "2>&1 & exit 0' % (M, M)], timeout=30)\n"
        "print(json.dumps([r.verdict, r.containment]))\n", marker)
    assert r == ["OK", "pid-namespace"]
    assert_gone(marker)


def test_ordinary_programs_print_what_they_print_unsandboxed(nobody_userns):
    r = as_nobody(
        "import subprocess\n"
        "cmds = [['python3', '-c', 'import sys; print(sum(range(10**5)), sys.argv)'],\n"
        "        ['sh', '-c', \"printf 'b\\\\na\\\\nc\\\\n' | sort | tr a-z A-Z | wc -l\"],\n"
        "        ['id', '-u'], ['id', '-g'], ['sh', '-c', 'echo $$ $PPID'],\n"
        "        ['sh', '-c', 'grep -E \"^Cap(Prm|Eff|Inh|Amb)\" /proc/self/status']]\n"
        "sb = Sandbox(PROFILE)\n"
        "got = []\n"
        "for c in cmds:\n"
        "    r = sb.run(c)\n"
        "    plain = subprocess.run(c, capture_output=True).stdout.decode()\n"
        "    got.append([r.verdict, r.containment, r.stdout.decode(), plain])\n"
        "print(json.dumps(got))\n")
    pids = r.pop(4)
    for verdict, containment, out, plain in r:
        assert (verdict, containment) == ("OK", "pid-namespace")
        assert out == plain
    assert r[2][2] == "65534\n" and r[3][2] == "65534\n"
    assert set(r[4][2].split()[1::2]) == {"0000000000000000"}     # no capability at all
    assert pids[2] == "2 1\n"    # the command is pid 2 under sandbox-init, as for root


def test_the_notify_log_backend_counts_calls(nobody_userns):
    r = as_nobody(
        "prof = {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['getppid'],"
        " 'action': 'SCMP_ACT_LOG'}]}\n"
        "r = sandbox.run(['python3', '-c', 'import os\\nfor _ in range(25): os.getppid()'],"
        " prof)\n"
        "print(json.dumps([r.verdict, r.containment, r.seccomp_log['total']]))\n")
    assert r[:2] == ["OK", "pid-namespace"] and r[2] >= 25


def test_the_kernel_log_backend_and_landlock_still_run(nobody_userns):
    r = as_nobody(
        "prof = {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['getppid'],"
        " 'action': 'SCMP_ACT_LOG'}]}\n"
        "a = Sandbox(prof, log_backend='kernel').run(['sh', '-c', 'echo $PPID'])\n"
        "b = Sandbox('grader').run(['sh', '-c', 'echo hi > f; cat f; cat /etc/shadow'])\n"
        "print(json.dumps([a.verdict, a.containment, b.verdict, b.containment,"
        " b.stdout.decode(), b.landlock['available']]))\n")
    assert r[:2] == ["OK", "pid-namespace"]
    assert r[2:5] == ["NONZERO_EXIT", "pid-namespace", "hi\n"] and r[5]


def test_zygote_jobs_run_in_its_user_namespace(nobody_userns, marker):
    r = as_nobody(
        "with Sandbox(PROFILE, zygote=True) as sb:\n"
        "    rs = [sb.run(['sh', '-c', 'id -u; setsid sleep %s & exit 0' % M]) for _ in range(3)]\n"
        "print(json.dumps([[r.verdict, r.spawn_path, r.stdout.decode()] for r in rs]))\n",
        marker)
    assert r == [["OK", "zygote", "65534\n"]] * 3
    assert_gone(marker)   # the zygote's namespace died with it at close()


def test_without_a_user_namespace_runs_say_process_group(nobody_userns):
    r = as_nobody(
        "import errno, logging\n"
        "logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format='%(name)s: "
        "%(message)s')\n"
        "sandbox._core.userns_error = lambda: errno.EPERM   # as if the kernel refused\n"
        "a = Sandbox(PROFILE).run(['sh', '-c', 'echo hi'])\n"
        "b = Sandbox(PROFILE).run(['true'])\n"
        "c = Sandbox(PROFILE, pid_namespace=True).run(['true'])\n"
        "print(json.dumps([a.verdict, a.containment, a.pid_namespace, a.stdout.decode(),\n"
        "                  b.containment, c.verdict, c.setup_error]))\n")
    assert r[:5] == ["OK", "process-group", False, "hi\n", "process-group"]
    assert r[5] == "SETUP_ERROR" and r[6]["stage"] == "userns"
    assert "user namespace" in r[6]["message"]


def test_the_missing_user_namespace_is_warned_about_once(nobody_userns):
    out = subprocess.run(
        NOBODY + [sys.executable, "-c", PRELUDE +
                  "import errno, logging\n"
                  "logging.basicConfig()   # the package's logger has only a NullHandler\n"
                  "sandbox._core.userns_error = lambda: errno.ENOSPC\n"
                  "Sandbox(PROFILE)\nSandbox(PROFILE)\n"],
        capture_output=True, text=True, cwd="/",
        env=dict(os.environ, PYTHONPATH=str(S.REPO), SBX_PROFILE=S.docker_default()))
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if "daemon" in ln]
    assert len(lines) == 1 and "setsid" in lines[0], out.stderr


@S.needs_root
def test_root_runs_keep_their_plain_pid_namespace():
    from sandbox.runner import Sandbox
    sb = Sandbox(S.docker_default())
    assert (sb.pid_namespace, sb.user_namespace) == (True, False)
    r = sb.run(["sh", "-c", "id -u"])
    assert (r.verdict, r.containment, r.stdout) == ("OK", "pid-namespace", b"0\n")

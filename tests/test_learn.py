"""Learn mode (issue 4 §3): the learned profile re-runs the command with identical output and
denies what the command never used."""
import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("sandbox._core")

from sandbox.learn import Learned, learn, learning_policy  # noqa: E402
from sandbox.policy import RET_LOG  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = shutil.which("python3") or sys.executable


def learned_then_rerun(argv, **kw):
    first, prof = learn(argv, **kw)
    assert first.verdict == "OK", first.describe()
    again = Sandbox(prof, cwd=kw.get("cwd")).run(argv)
    assert again.verdict == "OK", (again.describe(), again.stderr)
    assert again.stdout == first.stdout and again.stderr == first.stderr
    return prof, first, again


def allowed_names(prof):
    return {n for r in prof["syscalls"] if not r.get("args") for n in r["names"]}


def test_python_learned_profile_reruns_and_denies_the_rest():
    code = "import json, sys; print(json.dumps({'argv': sys.argv[1:]})); print(sum(range(10)))"
    prof, first, _ = learned_then_rerun([PY, "-c", code, "a"])
    assert first.stdout == b'{"argv": ["a"]}\n45\n'
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO"
    assert prof["archMap"][0]["architecture"] == "SCMP_ARCH_X86_64"
    assert "execve" in allowed_names(prof) and "mkdir" not in allowed_names(prof)
    assert "learned by `sandbox learn`" in prof["comment"] and "sum(range(10))" in prof["comment"]
    denied = Sandbox(prof).run([PY, "-c", "import os\ntry:\n os.mkdir('/tmp/no')\n"
                                "except OSError as e:\n print(e.errno)"])
    assert denied.stdout == b"1\n", denied.describe()


def test_socket_families_become_argument_rules():
    code = "import socket; socket.socket(socket.AF_UNIX).close(); print('ok')"
    prof, _, _ = learned_then_rerun([PY, "-c", code])
    sock = [r for r in prof["syscalls"] if r["names"] == ["socket"]]
    assert sock == [{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    inet = Sandbox(prof).run([PY, "-c", "import socket\ntry:\n socket.socket()\n"
                              "except OSError as e:\n print(e.errno)"])
    assert inet.stdout == b"1\n"


def test_shell_pipeline_and_clone_without_namespaces():
    prof, first, _ = learned_then_rerun(["sh", "-c", "printf 'b\\na\\nc\\n' | sort | head -2"])
    assert first.stdout == b"a\nb\n"
    (clone,) = [r for r in prof["syscalls"] if r["names"] == ["clone"]]
    assert clone["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" and clone["args"][0]["valueTwo"] == 0
    # a new namespace was never asked for, so it is refused
    ns = Sandbox(prof).run(["sh", "-c", "printf 'b\\na\\nc\\n' | sort | head -2; "
                            "unshare -n true || echo refused"])
    assert b"refused" in ns.stdout or ns.verdict != "OK"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_gcc_build_learned_and_rebuilt(tmp_path):
    (tmp_path / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
    argv = ["gcc", "-O1", "-o", "hello", "hello.c"]
    first, prof = learn(argv, cwd=str(tmp_path))
    assert first.verdict == "OK", (first.describe(), first.stderr)
    os.unlink(tmp_path / "hello")
    again = Sandbox(prof, cwd=str(tmp_path)).run(argv)
    assert again.verdict == "OK", (again.describe(), again.stderr)
    assert again.stdout == first.stdout and again.stderr == first.stderr
    assert subprocess.run([str(tmp_path / "hello")], capture_output=True).stdout == b"hi\n"
    assert len(allowed_names(prof)) < 120


def test_merge_adds_runs_together(tmp_path):
    _, one = learn(["sh", "-c", "echo one"])
    _, two = learn(["sh", "-c", "mkdir %s/d && echo two" % tmp_path], merge=one)
    assert allowed_names(one) <= allowed_names(two)
    assert "mkdir" in allowed_names(two) or "mkdirat" in allowed_names(two)
    assert "echo one" in two["comment"] and "echo two" in two["comment"]
    os.rmdir(tmp_path / "d")
    for argv in (["sh", "-c", "echo one"], ["sh", "-c", "mkdir %s/d && echo two" % tmp_path]):
        assert Sandbox(two).run(argv).verdict == "OK"


def test_a_base_profile_keeps_what_it_allows():
    policy = learning_policy(None)
    assert policy.default_action == RET_LOG and policy.rules == ()
    _, prof = learn(["sh", "-c", "echo hi"], base="default")
    names = allowed_names(prof)
    assert "read" in names and "write" in names
    # the default profile's conditional rules come along as they are
    assert any(r["names"] == ["personality"] for r in prof["syscalls"])


def test_merge_reads_keyed_rules_back():
    lp = Learned()
    lp.merge_profile({"comment": "learned by `sandbox learn` on 2026-01-01 from: a; b",
                      "syscalls": [
                          {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                          {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                           "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]})
    lp.values.setdefault("socket", set()).add(2)
    prof = lp.profile("x86_64")
    socks = [r["args"][0]["value"] for r in prof["syscalls"] if r["names"] == ["socket"]]
    assert socks == [1, 2] and lp.commands == ["a", "b"]


def test_cli_learn_then_run(tmp_path):
    out = tmp_path / "p.json"
    env = dict(os.environ, PYTHONPATH=REPO)
    learned = subprocess.run([sys.executable, "-m", "sandbox", "learn", "-o", str(out), "--",
                              "sh", "-c", "echo learned"], capture_output=True, text=True,
                             env=env)
    assert learned.returncode == 0, learned.stderr
    assert learned.stdout == "learned\n" and "syscalls allowed" in learned.stderr
    prof = json.loads(out.read_text())
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO"
    run = subprocess.run([sys.executable, "-m", "sandbox", "run", "--profile", str(out), "--",
                          "sh", "-c", "echo learned"], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and run.stdout == "learned\n", run.stderr
    bad = subprocess.run([sys.executable, "-m", "sandbox", "learn", "--merge",
                          str(tmp_path / "missing.json"), "--", "true"], capture_output=True,
                         text=True, env=env)
    assert bad.returncode == 125 and "missing.json" in bad.stderr

"""The notification backend (issue 4): every SCMP_ACT_LOG call recorded and attributed, denied
calls reported with the same behaviour, KILL actions named, memory bounded."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("sandbox._core")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "probes" / "runner"))
import runner_support as S  # noqa: E402

from sandbox.runner import Sandbox  # noqa: E402


def profile(default="SCMP_ACT_ALLOW", **rules):
    """A profile dict: rules maps syscall name -> action (or (action, errno))."""
    syscalls = []
    for name, action in rules.items():
        entry = {"names": [name], "action": action if isinstance(action, str) else action[0]}
        if not isinstance(action, str):
            entry["errnoRet"] = action[1]
        syscalls.append(entry)
    return {"defaultAction": default, "syscalls": syscalls}


LOG_GETPPID = profile(getppid="SCMP_ACT_LOG")


def entry(result, name, action="LOG"):
    found = [e for e in result.seccomp_log["syscalls"]
             if e["syscall"] == name and e["action"] == action]
    assert len(found) == 1, result.seccomp_log["syscalls"]
    return found[0]


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_log_rules_default_to_the_notification_backend():
    sb = Sandbox(LOG_GETPPID)
    assert sb.notify_program is not None
    r = sb.run([S.probe("logcalls"), "loop", "7"])
    assert r.verdict == "OK", r.describe()
    log = r.seccomp_log
    assert log["backend"] == "notify" and log["complete"] is True
    e = entry(r, "getppid")
    assert e["count"] == 7 and e["arch"] == "x86_64" and e["nr"] == 110
    assert log["total"] == 7 and len(log["records"]) == 7 and log["records_dropped"] == 0
    first = log["records"][0]
    assert first["syscall"] == "getppid" and first["pid"] in e["pids"]
    assert len(first["args"]) == 6 and first["ip"] > 0 and first["time"] >= 0
    # the Result's JSON carries all of it
    assert json.loads(json.dumps(r.to_json()))["seccomp_log"]["total"] == 7


def test_hundred_thousand_logged_calls_are_all_counted_in_bounded_memory():
    sb = Sandbox(LOG_GETPPID, log_records=50)
    sb.run([S.probe("logcalls"), "loop", "1000"])  # warm up allocations
    before = rss_kb()
    r = sb.run([S.probe("logcalls"), "loop", "100000"])
    grown = rss_kb() - before
    assert r.verdict == "OK", r.describe()
    assert entry(r, "getppid")["count"] == 100000
    log = r.seccomp_log
    assert log["total"] == 100000
    assert len(log["records"]) == 50 and log["records_dropped"] == 100000 - 50
    assert grown < 8 * 1024, "supervisor grew by %d KiB for 100k records" % grown


def test_threads_are_attributed_to_their_own_thread_ids():
    sb = Sandbox(LOG_GETPPID, pid_namespace=False, log_records=1000)
    r = sb.run([S.probe("logcalls"), "threads", "4", "30"])
    assert r.verdict == "OK", r.describe()
    printed = dict(tuple(map(int, line.split())) for line in r.stdout.decode().splitlines())
    assert len(printed) == 4
    per_tid = {}
    for rec in r.seccomp_log["records"]:
        assert rec["pid"] == r.pid  # the process, not the thread
        per_tid[rec["tid"]] = per_tid.get(rec["tid"], 0) + 1
    assert per_tid == printed


def test_processes_are_attributed_inside_and_outside_the_pid_namespace():
    sb = Sandbox(LOG_GETPPID, log_records=1000)
    r = sb.run([S.probe("logcalls"), "procs", "3", "10"])
    assert r.verdict == "OK", r.describe()
    printed = dict(tuple(map(int, line.split())) for line in r.stdout.decode().splitlines())
    per_vpid, global_of = {}, {}
    for rec in r.seccomp_log["records"]:
        per_vpid[rec["vpid"]] = per_vpid.get(rec["vpid"], 0) + 1
        global_of.setdefault(rec["vpid"], set()).add(rec["pid"])
    assert per_vpid == printed
    assert all(len(g) == 1 for g in global_of.values())
    assert sorted(entry(r, "getppid")["pids"]) == sorted(g.pop() for g in global_of.values())
    if sb.pid_namespace:
        assert set(printed) == {3, 4, 5}  # pid 1 is sandbox-init, 2 the probe


def test_a_program_that_exits_while_its_call_waits_for_an_answer():
    sb = Sandbox(LOG_GETPPID, pid_namespace=False)
    sb._notify_answer_delay_ns = 2_000_000_000
    r = sb.run([S.probe("logcalls"), "pending"])
    assert r.verdict == "NONZERO_EXIT" and r.exit_code == 3, r.describe()
    assert r.stdout == b"exiting\n"
    (rec,) = r.seccomp_log["records"]
    assert rec["syscall"] == "getppid" and rec.get("gone") is True
    assert entry(r, "getppid")["count"] == 1


def test_execve_itself_can_be_a_logged_call():
    sb = Sandbox(profile(default="SCMP_ACT_LOG"), log_records=5)
    r = sb.run(["/bin/echo", "hi"])
    assert r.verdict == "OK" and r.stdout == b"hi\n", r.describe()
    assert r.seccomp_log["records"][0]["syscall"] == "execve"
    assert r.seccomp_log["total"] > 10


def test_denials_are_reported_and_answered_with_the_same_errno():
    prog = [sys.executable, "-c",
            "import os\ntry:\n os.mkdir('/tmp/never-made', 0o750)\nexcept OSError as e:\n"
            " print(e.errno)"]
    prof = profile(mkdir=("SCMP_ACT_ERRNO", 13), mkdirat=("SCMP_ACT_ERRNO", 13))
    plain = Sandbox(prof).run(prog)
    reported = Sandbox(prof, report_denials=True).run(prog)
    assert plain.stdout == reported.stdout == b"13\n"
    assert plain.seccomp_log is None and plain.denials == []
    (d,) = reported.denials
    assert d["syscall"] in ("mkdir", "mkdirat") and d["errno"] == 13 and d["count"] == 1
    mode = d["first"]["args"][1 if d["syscall"] == "mkdir" else 2]
    assert mode == 0o750


def test_a_kill_names_the_syscall_when_denials_are_reported():
    prof = profile(getppid="SCMP_ACT_KILL_PROCESS")
    plain = Sandbox(prof).run([S.probe("logcalls"), "loop", "1"])
    assert plain.verdict == "SECCOMP_KILLED"
    # without reports, the kernel's audit record of the kill names it when the log has it
    if plain.killed_by is not None:
        assert plain.killed_by["source"] == "kernel-audit"
        assert plain.killed_by["syscall"] == "getppid" and plain.killed_by["args"] is None
    reported = Sandbox(prof, report_denials=True).run([S.probe("logcalls"), "loop", "1"])
    assert reported.verdict == "SECCOMP_KILLED", reported.describe()
    assert reported.killed_by["syscall"] == "getppid" and reported.killed_by["source"] == "notify"
    assert reported.killed_by["action"] == "KILL_PROCESS"
    assert len(reported.killed_by["args"]) == 6


def test_backend_none_leaves_log_to_the_kernel():
    sb = Sandbox(LOG_GETPPID, log_backend="none")
    assert sb.notify_program is None
    r = sb.run([S.probe("logcalls"), "loop", "3"])
    assert r.verdict == "OK" and r.seccomp_log is None


def test_no_notification_without_log_rules():
    assert Sandbox("default").notify_program is None
    with pytest.raises(ValueError):
        Sandbox(LOG_GETPPID, log_backend="syslog")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_an_unprivileged_supervisor_takes_the_listener_too():
    script = (
        "import json, sandbox\n"
        "prof = {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['getppid'],"
        " 'action': 'SCMP_ACT_LOG'}]}\n"
        "r = sandbox.run(['python3', '-c', 'import os\\nfor _ in range(25): os.getppid()'],"
        " prof)\n"
        "print(json.dumps([r.verdict, r.seccomp_log['total']]))\n")
    env = dict(os.environ, PYTHONPATH=str(S.REPO))
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd="/")
    assert out.returncode == 0, out.stderr
    verdict, total = json.loads(out.stdout)
    assert verdict == "OK" and total >= 25


def test_cli_prints_a_summary_and_the_json_carries_the_records(tmp_path):
    prof = tmp_path / "p.json"
    prof.write_text(json.dumps(profile(getppid="SCMP_ACT_LOG",
                                       socket=("SCMP_ACT_ERRNO", 97))))
    code = ("import os, socket\nos.getppid(); os.getppid()\n"
            "try:\n socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
            "except OSError as e:\n print(e.errno)\n")
    out = subprocess.run([sys.executable, "-m", "sandbox", "run", "--profile", str(prof),
                          "--report-denials", "--json", "--", sys.executable, "-c", code],
                         capture_output=True, text=True, cwd=str(S.REPO))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["stdout"] == "97\n"
    counts = {(e["syscall"], e["action"]): e["count"] for e in result["seccomp_log"]["syscalls"]}
    assert counts == {("getppid", "LOG"): 2, ("socket", "ERRNO"): 1}
    assert "ERRNO(EAFNOSUPPORT)" in out.stderr
    assert "socket(AF_INET6, SOCK_DGRAM" in out.stderr
    assert "LOG" in out.stderr and "x2" in out.stderr
    quiet = subprocess.run([sys.executable, "-m", "sandbox", "run", "--profile", str(prof),
                            "--quiet-log", "--", sys.executable, "-c", code],
                           capture_output=True, text=True, cwd=str(S.REPO))
    assert quiet.returncode == 0 and quiet.stdout == "97\n" and quiet.stderr == ""


def test_python_logging_gets_one_record_per_distinct_syscall(caplog):
    import logging
    sb = Sandbox(profile(getppid="SCMP_ACT_LOG", getpgrp="SCMP_ACT_LOG"))
    with caplog.at_level(logging.INFO, logger="sandbox.seccomp"):
        r = sb.run([sys.executable, "-c",
                    "import os\nfor _ in range(5): os.getppid()\nos.getpgrp()"])
    assert r.verdict == "OK"
    records = [rec for rec in caplog.records if rec.name == "sandbox.seccomp"]
    assert sorted(rec.seccomp["syscall"] for rec in records) == ["getpgrp", "getppid"]
    assert all(rec.levelno == logging.INFO for rec in records)


def test_argument_decoding():
    from sandbox.syscall_report import decode_args
    assert decode_args("socket", [2, 1 | 0o2000000, 0]) == "AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0"
    assert decode_args("socket", [40, 1, 0]).startswith("AF_VSOCK")
    assert decode_args("clone", [0x20000000 | 17, 0, 0]) == "CLONE_NEWPID|SIGCHLD, 0, 0"
    assert decode_args("openat", [0xFFFFFF9C, 0x1000, 0o2000000 | 0o100 | 1, 0o644]) \
        .endswith("O_WRONLY|O_CREAT|O_CLOEXEC")
    assert decode_args("socket", None) == "?"                     # (not known)
    # no arguments at all: whatever the registers held is not shown
    assert decode_args("getppid", [0x7FF16BC5DB70, 0, 0xA3DB20]) == decode_args("getppid", None) \
        == ""


def test_kernel_backend_reads_the_audit_log_and_says_whether_it_is_complete():
    sb = Sandbox(LOG_GETPPID, log_backend="kernel")
    assert sb.notify_program is None and sb.kernel_log
    r = sb.run([S.probe("logcalls"), "loop", "5"])
    assert r.verdict == "OK", r.describe()
    log = r.seccomp_log
    assert log["backend"] == "kernel" and isinstance(log["complete"], bool)
    if not log["complete"]:
        assert log["reason"]
    made = 5
    assert log["total"] <= made
    for rec in log["records"]:
        assert rec["syscall"] == "getppid" and rec["args"] is None
    if log["total"] == made and log["attribution"] == "audit-session":
        assert entry(r, "getppid")["count"] == made

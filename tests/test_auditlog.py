"""The kernel log backend (sandbox.auditlog) and the shared summary (sandbox.syscall_log).

The parser tests use lines captured from /dev/kmsg on the development machine (Linux 6.18, no
audit daemon). The end-to-end tests run programs whose getppid/getpid are SCMP_ACT_LOG and read
their records back. The kernel prints at most kernel.printk_ratelimit_burst (10) audit messages
per kernel.printk_ratelimit (5 s) for the whole machine, so the runs that need records share one
window (7 calls in all), and nothing asserts how many arrive: only that what is attributed is
the run's, no more than it made, and that a short count is never called complete.
"""
import os
import pathlib
import shutil
import sys
import threading

import pytest

pytest.importorskip("sandbox._core")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "probes" / "runner"))
import runner_support as S  # noqa: E402

from sandbox import _core, auditlog  # noqa: E402
from sandbox.auditlog import KernelLog, KernelLogUnavailable, RunMatch  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402
from sandbox.syscall_log import RECORD_KEYS, aggregate  # noqa: E402

# Captured on the development machine (kmsg records, one per read).
LOG_LINE = (b'5,36326,9370156975,-;audit: type=1326 audit(1795836374.057:41458): auid=4294967295 '
            b'uid=0 gid=0 ses=4294967295 pid=533 comm="python3" exe="/usr/bin/python3.11" sig=0 '
            b'arch=c000003e syscall=110 compat=0 ip=0x7f6f8e44b4f7 code=0x7ffc0000\n')
KILL_THREAD_LINE = (b'5,36232,8899902546,-;audit: type=1326 audit(1795835903.801:40780): '
                    b'auid=4294967295 uid=0 gid=0 ses=4294967295 pid=21601 comm="syscall_probe-3" '
                    b'exe="/tmp/sandbox-tests-0/syscall_probe-3d56845f676f6913" sig=31 '
                    b'arch=c000003e syscall=39 compat=0 ip=0x561e2dd39212 code=0x0\n')
KILL_PROCESS_LINE = (b'5,36233,8899904085,-;audit: type=1326 audit(1795835903.805:40781): '
                     b'auid=4294967295 uid=0 gid=0 ses=4294967295 pid=21602 '
                     b'comm="syscall_probe-3" exe="/tmp/sandbox-tests-0/syscall_probe-3d56845f6'
                     b'76f6913" sig=31 arch=c000003e syscall=110 compat=0 ip=0x561e2dd39212 '
                     b'code=0x80000000\n')
ERRNO_LINE = (b'5,36240,8899976626,-;audit: type=1326 audit(1795835903.877:40783): '
              b'auid=4294967295 uid=0 gid=0 ses=4294967295 pid=21646 comm="syscall_probe-3" '
              b'exe="/tmp/sandbox-tests-0/syscall_probe-3d56845f676f6913" sig=0 arch=c000003e '
              b'syscall=39 compat=0 ip=0x555b82b65212 code=0x50000\n')
ODD_ACTION_LINE = (b'5,36238,8899943647,-;audit: type=1326 audit(1795835903.841:40782): '
                   b'auid=4294967295 uid=0 gid=0 ses=4294967295 pid=21631 comm="syscall_probe-3" '
                   b'exe="/tmp/sandbox-tests-0/syscall_probe-3d56845f676f6913" sig=31 '
                   b'arch=c000003e syscall=39 compat=0 ip=0x561f04ec3212 code=0x12340000\n')
X32_LINE = (b'5,36244,8905118515,-;audit: type=1326 audit(1795835909.017:41456): '
            b'auid=4294967295 uid=0 gid=0 ses=4294967295 pid=22843 comm="abi_call-eb08e7" '
            b'exe="/tmp/sandbox-tests-0/abi_call-eb08e78d99f3ad49" sig=31 arch=c000003e '
            b'syscall=1073741863 compat=0 ip=0x55ea5d8ec26e code=0x0\n')
I386_LINE = (b'5,36245,8905776485,-;audit: type=1326 audit(1795835909.677:41457): '
             b'auid=4294967295 uid=0 gid=0 ses=4294967295 pid=22906 comm="abi_call-eb08e7" '
             b'exe="/tmp/sandbox-tests-0/abi_call-eb08e78d99f3ad49" sig=31 arch=40000003 '
             b'syscall=20 compat=1 ip=0x556be65252d9 code=0x0\n')
# a run with its own audit session (loginuid written by the child), program name with a space
HEX_NAMES_LINE = (b'5,36877,9643033497,-;audit: type=1326 audit(1795836646.933:62677): auid=0 '
                  b'uid=0 gid=0 ses=7 pid=9117 comm=6C6F672063616C6C73 '
                  b'exe=2F746D702F6C6F672063616C6C73 sig=0 arch=c000003e syscall=110 compat=0 '
                  b'ip=0x7fed8c65f829 code=0x7ffc0000\n')
SUPPRESSED_LINE = b"4,36242,8905091049,-;kauditd_printk_skb: 728 callbacks suppressed\n"
OTHER_LINE = (b"3,36230,8898069359,-;Memory cgroup out of memory: Killed process 19508 (python3) "
              b"total-vm:1062536kB, anon-rss:48768kB, file-rss:2236kB, shmem-rss:0kB, UID:0 "
              b"pgtables:164kB oom_score_adj:0\n")


def record_of(line: bytes, start_ns: int = 0) -> dict:
    _seq, usec, message = auditlog.parse_kmsg(line)
    _type, _stamp, _serial, fields = auditlog.parse_audit(message)
    return auditlog.seccomp_record(fields, usec, start_ns)


# ---- parsing -------------------------------------------------------------------------------

def test_kmsg_record_header():
    seq, usec, message = auditlog.parse_kmsg(LOG_LINE)
    assert (seq, usec) == (36326, 9370156975)
    assert message.startswith("audit: type=1326 ") and not message.endswith("\n")
    assert auditlog.parse_kmsg(b"garbage") is None
    # dictionary continuation lines are not part of the message
    assert auditlog.parse_kmsg(b"6,1,2,-;hello\n SUBSYSTEM=x\n")[2] == "hello"


def test_audit_message_fields():
    kind, stamp, serial, fields = auditlog.parse_audit(auditlog.parse_kmsg(LOG_LINE)[2])
    assert (kind, stamp, serial) == (1326, 1795836374.057, 41458)
    assert fields["ses"] == "4294967295" and fields["comm"] == '"python3"'
    assert auditlog.parse_audit(auditlog.parse_kmsg(OTHER_LINE)[2]) is None


def test_log_record_schema():
    start_ns = 9370_100_000_000
    rec = record_of(LOG_LINE, start_ns)
    assert tuple(rec) == RECORD_KEYS
    assert rec == {"pid": 533, "arch": "x86_64", "nr": 110, "syscall": "getppid", "args": None,
                   "ip": 0x7f6f8e44b4f7, "time": pytest.approx(0.056975), "action": "LOG",
                   "errno": None, "comm": "python3", "exe": "/usr/bin/python3.11"}
    # printk's clock may lag CLOCK_MONOTONIC by milliseconds: never before the run
    assert record_of(LOG_LINE, 9371 * 10**9)["time"] == 0.0


@pytest.mark.parametrize("line, action", [
    (KILL_THREAD_LINE, "KILL_THREAD"), (KILL_PROCESS_LINE, "KILL_PROCESS"),
    (ERRNO_LINE, "ERRNO"), (ODD_ACTION_LINE, "0x12340000")])
def test_actions_from_code(line, action):
    rec = record_of(line)
    assert rec["action"] == action
    # the kernel logs the action without its data: the errno is not known
    assert rec["errno"] is None


def test_arches():
    x32 = record_of(X32_LINE)
    assert (x32["arch"], x32["nr"], x32["syscall"]) == ("x32", 0x40000027, "getpid")
    i386 = record_of(I386_LINE)
    assert (i386["arch"], i386["nr"], i386["syscall"]) == ("x86", 20, "getpid")
    odd = b"6,1,2,-;audit: type=1326 audit(1.000:1): pid=1 arch=deadbeef syscall=5 code=0x0\n"
    assert record_of(odd)["arch"] == "0xdeadbeef" and record_of(odd)["syscall"] is None


def test_hex_encoded_names():
    rec = record_of(HEX_NAMES_LINE)
    assert (rec["comm"], rec["exe"]) == ("log calls", "/tmp/log calls")


def test_window_counts_suppressed_lost_and_serial_gaps():
    win = auditlog._Window(max_records=2)
    for line in (SUPPRESSED_LINE, OTHER_LINE, KILL_THREAD_LINE, KILL_PROCESS_LINE, X32_LINE,
                 b"4,9,9,-;audit: audit_lost=3 audit_rate_limit=0 audit_backlog_limit=64\n",
                 b"4,9,9,-;audit: rate limit exceeded\n"):
        _seq, usec, message = auditlog.parse_kmsg(line)
        win.add(message, usec)
    assert win.suppressed == 728
    assert win.printed == 3 and len(win.seccomp) == 2 and win.dropped == 1
    assert win.serial_gap() == 41456 - 40780 + 1 - 3
    assert win.losses == ["the audit subsystem lost records (audit_lost=3)",
                          "the audit rate limit was exceeded"]


def test_run_match():
    fields = auditlog.parse_audit(auditlog.parse_kmsg(HEX_NAMES_LINE)[2])[3]
    by_session = RunMatch(0, session=7)
    assert by_session.attribution == "audit-session" and by_session.owns(fields)
    assert not RunMatch(0, session=8, pids={9117}).owns(fields)   # the session decides
    by_pid = RunMatch(0, pids={9117})
    assert by_pid.attribution == "pid" and by_pid.owns(fields)
    assert not RunMatch(0, pids={1}).owns(fields)
    with pytest.raises(ValueError):
        RunMatch(0)


def test_aggregate():
    recs = [record_of(line) for line in (LOG_LINE, LOG_LINE, KILL_THREAD_LINE, X32_LINE)]
    recs[1] = dict(recs[1], pid=534)
    agg = aggregate(recs, first_n=3)
    assert agg["total"] == 4 and agg["records"] == recs[:3]
    top = agg["by_syscall"][0]
    assert top == {"syscall": "getppid", "arch": "x86_64", "nr": 110, "action": "LOG",
                   "errno": None, "count": 2, "pids": [533, 534], "pid_count": 2}
    assert sorted((e["arch"], e["syscall"]) for e in agg["by_syscall"][1:]) == [
        ("x32", "getpid"), ("x86_64", "getpid")]
    assert aggregate([], 5) == {"by_syscall": [], "records": [], "total": 0}


def test_unreadable_kmsg_is_a_reason(monkeypatch):
    monkeypatch.setattr(auditlog, "audit_daemon", lambda: None)
    monkeypatch.setattr(auditlog, "KMSG", "/nonexistent/kmsg")
    with pytest.raises(KernelLogUnavailable, match="cannot be opened"):
        KernelLog.open()

    def refuse(*_a):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(auditlog.os, "open", refuse)
    with pytest.raises(KernelLogUnavailable, match="dmesg_restrict") as info:
        KernelLog.open()
    report = auditlog.unavailable(info.value.reason)
    assert report["complete"] is False and report["reason"] == info.value.reason


def test_audit_daemon_is_a_reason(monkeypatch):
    monkeypatch.setattr(auditlog, "audit_daemon", lambda: "auditd (pid 42)")
    with pytest.raises(KernelLogUnavailable, match="auditd"):
        KernelLog.open()


class FakeKmsg:
    """A KernelLog over a SOCK_SEQPACKET pair: like /dev/kmsg, each read returns one record."""

    def __init__(self, *lines, interval=5, burst=10):
        import socket
        self.ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for line in lines:
            theirs.send(line)
        theirs.close()
        self.ours.setblocking(False)
        self.log = KernelLog(self.ours.detach())
        self.log.interval, self.log.burst = interval, burst


def test_collect_complete_only_without_rate_limit():
    other_run = HEX_NAMES_LINE.replace(b":62677)", b":62678)").replace(b"ses=7", b"ses=8")
    fake = FakeKmsg(OTHER_LINE, HEX_NAMES_LINE, other_run, interval=0)
    with fake.log as log:
        report = log.collect(RunMatch(9643 * 10**9, session=7), settle=0)
    assert report["complete"] is True and report["reason"] is None
    assert [r["pid"] for r in report["records"]] == [9117]
    assert report["records"][0]["time"] == pytest.approx(0.033497)
    assert (report["attribution"], report["session"], report["other_records"]) == (
        "audit-session", 7, 1)

    fake = FakeKmsg(HEX_NAMES_LINE)
    with fake.log as log:
        report = log.collect(RunMatch(0, session=7), settle=0)
    assert report["complete"] is False and "at most 10 audit messages per 5 s" in report["reason"]


def test_collect_reports_overwritten_records(monkeypatch):
    fake = FakeKmsg(HEX_NAMES_LINE, interval=0)
    real_read, calls = os.read, []

    def read(fd, n):
        calls.append(fd)
        if len(calls) == 1:
            raise BrokenPipeError(32, "Broken pipe")
        return real_read(fd, n)
    monkeypatch.setattr(auditlog.os, "read", read)
    with fake.log as log:
        report = log.collect(RunMatch(0, pids={9117}), settle=0)
    assert report["overwritten"] and report["complete"] is False
    assert "overwrote" in report["reason"] and len(report["records"]) == 1


def test_follow_reads_in_a_thread():
    fake = FakeKmsg(HEX_NAMES_LINE, SUPPRESSED_LINE, interval=0)
    fake.log._follow()
    with fake.log as log:
        report = log.collect(RunMatch(0, session=7), settle=0)
    assert len(report["records"]) == 1 and report["suppressed"] == 728
    assert "reported 728 suppressed" in report["reason"]


# ---- end to end ----------------------------------------------------------------------------

# the runs keep the kernel's own LOG action (log_backend="none"): these tests read /dev/kmsg
# themselves; by default the runner would answer LOG calls through its notification backend
LOG_GETPPID = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"}]}
# abi_call's getpid through each ABI (logcalls' own getpid is not logged: it uses LOG_GETPPID)
LOG_GETPID = {"defaultAction": "SCMP_ACT_ALLOW",
              "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
              "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_LOG"}]}


def open_log(**kw) -> KernelLog:
    if os.geteuid() != 0:
        pytest.skip("needs root (an audit session per run, and /dev/kmsg)")
    try:
        return KernelLog.open(**kw)
    except KernelLogUnavailable as e:
        pytest.skip("kernel log backend unavailable: %s" % e.reason)


class Spawns:
    """Wraps _core.spawn (the runner's only way to start a child) to pass loginuid= and note
    what the run's match needs: its start, pid and audit session. Per thread."""

    def __init__(self, monkeypatch):
        self.local = threading.local()
        real = _core.spawn

        def spawn(*args, **kw):
            self.local.start_ns = _core.now_ns()
            if getattr(self.local, "loginuid", None) is not None:
                kw["loginuid"] = self.local.loginuid
            pid, pidfd, status_fd = real(*args, **kw)
            self.local.pid = pid
            self.local.session = auditlog.run_session(pid)
            return pid, pidfd, status_fd
        monkeypatch.setattr(_core, "spawn", spawn)

    def run(self, sandbox, argv, loginuid=0):
        """(Result, RunMatch) of one run (the match by session when the run got one)."""
        self.local.loginuid = loginuid
        result = sandbox.run(argv)
        loc = self.local
        return result, RunMatch(loc.start_ns, session=loc.session, pids={loc.pid})


def copy_as(exe: str, directory, name: str) -> str:
    """The probe under a name of its own: its records then say which run they are from."""
    dest = os.path.join(str(directory), name)
    shutil.copyfile(exe, dest)
    os.chmod(dest, 0o755)
    return dest


def mine(report, exe):
    """The records of a report whose program is exe (they all must be)."""
    return [r for r in report["records"] if r["exe"] == exe]


@pytest.fixture(scope="module")
def window(tmp_path_factory):
    """Five runs at once, 7 logged calls in all (within the kernel's burst of 10): A forks in a
    PID namespace, B runs without one, C forks without a session of its own (matched by pid),
    and two runs call getpid through the x32 and i386 ABIs."""
    log_calls = S.probe("logcalls")
    abi_call = S.probe("abi_call")
    d = tmp_path_factory.mktemp("auditlog")
    runs = {
        "a": (Sandbox(LOG_GETPPID, pid_namespace=True, log_backend="none"),
              [copy_as(log_calls, d, "logcalls_a"), "fork", "1"], 0, 2),
        "b": (Sandbox(LOG_GETPPID, pid_namespace=False, log_backend="none"),
              [copy_as(log_calls, d, "logcalls_b"), "loop", "1"], 0, 1),
        "c": (Sandbox(LOG_GETPPID, pid_namespace=False, log_backend="none"),
              [copy_as(log_calls, d, "logcalls_c"), "fork", "1"], None, 2),
        "x32": (Sandbox(LOG_GETPID, pid_namespace=False, log_backend="none"),
                [copy_as(abi_call, d, "abicall_x32"), "x32", "39"], 0, 1),
        "i386": (Sandbox(LOG_GETPID, pid_namespace=False, log_backend="none"),
                 [copy_as(abi_call, d, "abicall_i386"), "i386", "20"], 0, 1),
    }
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        spawns = Spawns(mp)
        barrier = threading.Barrier(len(runs))

        def one(name, sandbox, argv, loginuid, made):
            log = KernelLog.open()
            try:
                barrier.wait()
                result, match = spawns.run(sandbox, argv, loginuid)
                out[name] = (result, match, log.collect(match, settle=0.5), argv[0], made)
            finally:
                log.close()

        open_log().close()     # skips here when the log cannot be read
        threads = [threading.Thread(target=one, args=(name,) + spec) for name, spec in runs.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert set(out) == set(runs), "a run failed: see the thread's exception above"
    if not any(report["records"] for _r, _m, report, _e, _n in out.values()):
        pytest.skip("no audit record of these runs reached the kernel log: the machine's printk "
                    "rate limit budget was spent by other processes (suppressed: %d)"
                    % max(report["suppressed"] for _r, _m, report, _e, _n in out.values()))
    return out


def check_consistent(result, report, exe, made):
    """What every report must satisfy, whatever the rate limit let through."""
    assert result.verdict == "OK", (result.verdict, result.stderr)
    assert report["backend"] == "kernel"
    assert mine(report, exe) == report["records"], "records of another program attributed"
    assert len(report["records"]) <= made
    if len(report["records"]) < made:
        assert report["complete"] is False and report["reason"]
    for rec in report["records"]:
        assert rec["args"] is None and rec["time"] >= 0 and rec["pid"] > 0


def test_session_attribution_across_fork_and_pid_namespace(window):
    result, match, report, exe, made = window["a"]
    assert match.attribution == "audit-session", "the child could not take an audit session"
    check_consistent(result, report, exe, made)
    assert report["attribution"] == "audit-session" and report["session"] == match.session
    if not report["records"]:
        pytest.skip("no record of this run got through the rate limit")
    assert {r["syscall"] for r in report["records"]} == {"getppid"}
    assert {r["action"] for r in report["records"]} == {"LOG"}
    if len(report["records"]) == made:
        # the forked child's record carries the session too
        assert len({r["pid"] for r in report["records"]}) == 2


def test_concurrent_runs_have_sessions_of_their_own(window):
    sessions = [m.session for name, (_r, m, _rep, _e, _n) in window.items() if name != "c"]
    assert None not in sessions and len(set(sessions)) == len(sessions)
    for name in ("b", "x32", "i386"):
        result, match, report, exe, made = window[name]
        check_consistent(result, report, exe, made)
    pids = {int(line.split("pid=")[1]) for line in window["b"][0].stdout.decode().splitlines()}
    assert {r["pid"] for r in window["b"][2]["records"]} <= pids


def test_abi_records_name_their_arch(window):
    for name, arch, nr in (("x32", "x32", 0x40000000 | 39), ("i386", "x86", 20)):
        records = window[name][2]["records"]
        assert all((r["arch"], r["nr"], r["syscall"]) == (arch, nr, "getpid") for r in records)


def test_pid_attribution_without_a_session(window):
    result, match, report, exe, made = window["c"]
    assert match.attribution == "pid" and report["attribution"] == "pid"
    check_consistent(result, report, exe, made)
    # only the pid the runner knows: the forked child's record is not attributed
    assert {r["pid"] for r in report["records"]} <= set(match.pids)
    assert len(report["records"]) <= 1


def test_many_logged_calls_are_reported_incomplete(tmp_path):
    """200 calls: the rate limit lets at most a burst through, and the report says so."""
    exe = copy_as(S.probe("logcalls"), tmp_path, "logcalls_200")
    with pytest.MonkeyPatch.context() as mp:
        spawns = Spawns(mp)
        log = open_log(follow=True)
        try:
            result, match = spawns.run(Sandbox(LOG_GETPPID, log_backend="none"),
                                       [exe, "loop", "200"])
            report = log.collect(match, settle=0.5)
        finally:
            log.close()
    check_consistent(result, report, exe, 200)
    assert report["attribution"] == "audit-session"
    summary = aggregate(report["records"], first_n=5)
    assert summary["total"] == len(report["records"])
    assert all(e["syscall"] == "getppid" for e in summary["by_syscall"])


def test_run_cannot_leave_its_session(monkeypatch):
    """Without CAP_AUDIT_CONTROL (not in Docker's default set) a run cannot take a new session
    to hide its records: its loginuid is set, so writing it again is refused."""
    if os.geteuid() != 0:
        pytest.skip("needs root (an audit session per run)")
    spawns = Spawns(monkeypatch)
    result, match = spawns.run(Sandbox(LOG_GETPPID, log_backend="none"), [
        "/bin/sh", "-c", "cat /proc/self/sessionid; echo; echo 0 > /proc/self/loginuid "
        "&& echo changed; cat /proc/self/sessionid"])
    if match.session is None:
        pytest.skip("the run did not get an audit session of its own here")
    assert result.stdout.split() == [str(match.session).encode()] * 2
    assert result.stderr   # the shell says the write failed

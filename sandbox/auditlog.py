"""The kernel log backend for logged system calls: the filter keeps the real SECCOMP_RET_LOG (and
the kernel's own logging of kills), and the audit records it produces (type=1326) are read back
from /dev/kmsg and attributed to the run.

This backend is lossy by nature, and says so: without an audit daemon the kernel prints audit
records through printk_ratelimit() (kernel.printk_ratelimit / printk_ratelimit_burst, 10 per 5 s
by default, shared by the whole machine), reports what it dropped only with the next audit
message after the interval ("kauditd_printk_skb: N callbacks suppressed"), and keeps them in a
ring buffer that newer messages overwrite. With an audit daemon running, the records go to it and
never reach /dev/kmsg at all. The records carry no arguments, and for ERRNO not even the errno.

Use:
    log = KernelLog.open()                 # before the run; raises KernelLogUnavailable
    ... start the run, passing loginuid= to _core.spawn ...
    match = RunMatch(start_ns, session=run_session(pid), pids={pid})
    ... wait for the run ...
    report = log.collect(match)            # {"records": [...], "complete": ..., ...}
    log.close()

Attribution: a run started with a loginuid gets an audit session id of its own (csrc/spawn.c),
inherited by everything it starts, PID namespace or not, and the records carry it (`ses=`):
that is exact. Without one, records are matched by the pids the caller knows, which misses the
processes the run started itself. A run gets no session of its own when the caller's loginuid is
set and it lacks CAP_AUDIT_CONTROL (or the loginuid is immutable), or when a non-root caller is
non-dumpable (the runner's protect_supervisor): run_session() then says None.
"""
from __future__ import annotations

import errno as _errno
import os
import re
import threading
from typing import Iterable, Optional

from . import fdwait
from .policy import RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD
from .syscall_log import action_word, arch_and_name

KMSG = "/dev/kmsg"
AUDIT_SECCOMP = 1326
UNSET_ID = 4294967295          # an unset loginuid / session id
MAX_READ = 16384               # more than one kmsg record can hold

# Programs that register as the audit daemon: the kernel then sends records to them instead.
AUDIT_DAEMONS = ("auditd", "go-audit", "auditbeat")

_KMSG_LINE = re.compile(r"(\d+),(\d+),(\d+),[^;]*;(.*)", re.S)
_AUDIT = re.compile(r"audit: type=(\d+) audit\((\d+\.\d+):(\d+)\): (.*)", re.S)
_FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')
_SUPPRESSED = re.compile(r"kauditd_printk_skb: (\d+) callbacks suppressed")
_LOSSES = (
    (re.compile(r"audit: audit_lost=(\d+)"), "the audit subsystem lost records (audit_lost=%s)"),
    (re.compile(r"audit: rate limit exceeded"), "the audit rate limit was exceeded"),
    (re.compile(r"audit: backlog limit exceeded"), "the audit backlog limit was exceeded"),
    (re.compile(r"audit: kauditd hold queue overflow"), "the audit hold queue overflowed"),
)


class KernelLogUnavailable(Exception):
    """/dev/kmsg cannot serve as the log: .reason says why, in words for the Result."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


# ---- parsing -------------------------------------------------------------------------------

def parse_kmsg(data: bytes):
    """(seq, microseconds since boot, message) of one /dev/kmsg record, or None. Continuation
    lines (" KEY=value" dictionary entries) are dropped."""
    m = _KMSG_LINE.match(data.decode("utf-8", "replace"))
    if m is None:
        return None
    return int(m.group(2)), int(m.group(3)), m.group(4).split("\n", 1)[0]


def _audit_string(value: str) -> Optional[str]:
    """The kernel quotes a plain string and hex-encodes one with spaces, quotes or control
    characters (audit_log_untrustedstring)."""
    if value.startswith('"'):
        return value.strip('"')
    if value == "(null)":
        return None
    try:
        return bytes.fromhex(value).decode("utf-8", "replace")
    except ValueError:
        return value


def parse_audit(message: str):
    """(type, stamp, serial, fields) of an "audit: type=N audit(STAMP:SERIAL): k=v ..." message
    (STAMP: CLOCK_REALTIME seconds of the event, millisecond resolution), or None."""
    m = _AUDIT.match(message)
    if m is None:
        return None
    return (int(m.group(1)), float(m.group(2)), int(m.group(3)),
            dict(_FIELD.findall(m.group(4))))


def seccomp_record(fields: dict, usec: int, start_ns: int) -> dict:
    """A record of the shared schema (sandbox.syscall_log) from a type=1326 record's fields and
    its kmsg timestamp; start_ns is the run's start on CLOCK_MONOTONIC (_core.now_ns()).

    The kmsg timestamp is printk's clock (local_clock: microseconds since boot, no suspend),
    which tracks CLOCK_MONOTONIC only to within milliseconds (here it runs ~3 ms behind): the
    time is rounded up to 0 rather than put before the run. The audit stamp in the record is
    worse (CLOCK_REALTIME, coarse: up to a tick late, in milliseconds)."""
    nr = int(fields.get("syscall", "-1"))
    arch, name = arch_and_name(int(fields.get("arch", "0"), 16), nr)
    code = int(fields.get("code", "0"), 16)
    kind = code & 0xFFFF0000
    return {
        "pid": int(fields.get("pid", "-1")), "arch": arch, "nr": nr, "syscall": name,
        "args": None,                              # the kernel record has none
        "ip": int(fields.get("ip", "0"), 16),
        "time": round(max(0.0, usec / 1e6 - start_ns / 1e9), 6),
        "action": action_word(kind),
        # the kernel logs the action without its data: code=0x50000 for every errno
        "errno": ((code & 0xFFFF) or None) if kind == RET_ERRNO else None,
        "comm": _audit_string(fields["comm"]) if "comm" in fields else None,
        "exe": _audit_string(fields["exe"]) if "exe" in fields else None,
    }


# ---- attribution ---------------------------------------------------------------------------

def _read_id(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            value = int(f.read())
    except (OSError, ValueError):
        return None
    return None if value == UNSET_ID else value


def own_session() -> Optional[int]:
    """This process's audit session id, None when unset or unknown."""
    return _read_id("/proc/self/sessionid")


def run_session(pid: int) -> Optional[int]:
    """The audit session of a run started with a loginuid, when it got one of its own: read
    /proc/PID/sessionid after the spawn and before the run is reaped. None when the child could
    not set its loginuid (then it shares ours, and matching by session would be wrong)."""
    ses = _read_id("/proc/%d/sessionid" % pid)
    return ses if ses is not None and ses != own_session() else None


class RunMatch:
    """Which audit records belong to a run: those of its audit session, or failing that those
    of the pids the caller knows."""

    def __init__(self, start_ns: int, session: Optional[int] = None, pids: Iterable[int] = ()):
        self.start_ns = start_ns
        self.session = session
        self.pids = set(pids)
        if session is None and not self.pids:
            raise ValueError("RunMatch needs the run's audit session or some of its pids")

    @property
    def attribution(self) -> str:
        return "audit-session" if self.session is not None else "pid"

    def owns(self, fields: dict) -> bool:
        if self.session is not None:
            return fields.get("ses") == str(self.session)
        return fields.get("pid", "").isdigit() and int(fields["pid"]) in self.pids


def audit_daemon() -> Optional[str]:
    """The name and pid of a running audit daemon (it takes the records: none reach kmsg)."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open("/proc/%s/comm" % pid) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in AUDIT_DAEMONS:
            return "%s (pid %s)" % (comm, pid)
    return None


def _sysctl(name: str) -> Optional[int]:
    try:
        with open("/proc/sys/kernel/" + name) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def unavailable(reason: str) -> dict:
    """The report of a run whose kernel log could not be read."""
    return {"backend": "kernel", "complete": False, "reason": reason, "attribution": None,
            "session": None, "records": [], "suppressed": 0, "serial_gap": 0,
            "other_records": 0, "overwritten": False}


# ---- reading -------------------------------------------------------------------------------

class _Window:
    """What was read from kmsg since the log was opened (nothing of it is matched yet: the run's
    session is known only once it has started)."""

    def __init__(self, max_records: int):
        self.max_records = max_records
        self.seccomp = []              # (usec, fields) of type=1326 records
        self.dropped = 0               # type=1326 records beyond max_records
        self.printed = 0               # audit records printed (the rate limit counts these)
        self.serials = set()
        self.suppressed = 0
        self.losses = []
        self.overwritten = False

    def add(self, message: str, usec: int) -> None:
        audit = parse_audit(message)
        if audit is not None:
            kind, _stamp, serial, fields = audit
            self.printed += 1
            self.serials.add(serial)
            if kind == AUDIT_SECCOMP:
                if len(self.seccomp) < self.max_records:
                    self.seccomp.append((usec, fields))
                else:
                    self.dropped += 1
            return
        m = _SUPPRESSED.search(message)
        if m:
            self.suppressed += int(m.group(1))
            return
        for pattern, text in _LOSSES:
            m = pattern.search(message)
            if m:
                self.losses.append(text % m.groups() if m.groups() else text)
                return

    def serial_gap(self) -> int:
        """Audit events numbered between the first and the last record seen that were not
        printed (machine-wide; events that print nothing count too, so it is a hint)."""
        if not self.serials:
            return 0
        return max(self.serials) - min(self.serials) + 1 - len(self.serials)


class KernelLog:
    """A reader of /dev/kmsg positioned where the log ended when it was opened."""

    def __init__(self, fd: int, max_records: int = 100000):
        self.fd = fd
        self.window = _Window(max_records)
        self.burst = _sysctl("printk_ratelimit_burst")
        self.interval = _sysctl("printk_ratelimit")
        self._thread = None
        self._stop_w = -1

    @classmethod
    def open(cls, follow: bool = False, max_records: int = 100000) -> "KernelLog":
        """Open /dev/kmsg at its end. follow=True reads it in a thread until collect(), so a run
        that logs faster than the ring buffer turns over loses nothing to overwriting."""
        daemon = audit_daemon()
        if daemon is not None:
            raise KernelLogUnavailable(
                "an audit daemon is running (%s): the kernel sends seccomp audit records to it "
                "instead of the kernel log" % daemon)
        try:
            fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno in (_errno.EPERM, _errno.EACCES):
                why = ("%s is not readable: %s (kernel.dmesg_restrict=1 allows only "
                       "CAP_SYSLOG)" % (KMSG, e.strerror))
            else:
                why = "%s cannot be opened: %s" % (KMSG, e.strerror)
            raise KernelLogUnavailable(why) from e
        try:
            os.lseek(fd, 0, os.SEEK_END)
        except OSError as e:
            os.close(fd)
            raise KernelLogUnavailable("%s cannot seek to its end: %s" % (KMSG, e.strerror))
        log = cls(fd, max_records)
        if follow:
            log._follow()
        return log

    def _read_available(self) -> int:
        """Read every record there is now (each read returns one); how many reads got one."""
        got = 0
        while True:
            try:
                data = os.read(self.fd, MAX_READ)
            except BlockingIOError:
                return got
            except BrokenPipeError:
                # records we had not read yet were overwritten; reading goes on at the oldest
                self.window.overwritten = True
                continue
            except InterruptedError:
                continue
            if not data:
                return got
            got += 1
            rec = parse_kmsg(data)
            if rec is not None:
                self.window.add(rec[2], rec[1])

    def _follow(self) -> None:
        stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)

        def loop():
            try:
                while True:
                    ready = fdwait.readable([self.fd, stop_r])
                    if self.fd in ready:
                        self._read_available()
                    if stop_r in ready:
                        return
            finally:
                os.close(stop_r)

        self._thread = threading.Thread(target=loop, name="kmsg-follow", daemon=True)
        self._thread.start()

    def _stop_following(self) -> None:
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join()
            os.close(self._stop_w)
            self._thread, self._stop_w = None, -1

    def collect(self, match: RunMatch, settle: float = 0.02) -> dict:
        """Read what is new and report the run's records. kauditd prints records shortly after
        the calls: reading stops once nothing new arrived for `settle` seconds."""
        self._stop_following()
        self._read_available()
        while fdwait.readable([self.fd], settle):
            if not self._read_available():
                break
        win = self.window
        records, others = [], 0
        for usec, fields in win.seccomp:
            if match.owns(fields):
                records.append(seccomp_record(fields, usec, match.start_ns))
            else:
                others += 1
        reasons = self._gaps(win, match, others)
        return {"backend": "kernel", "complete": not reasons,
                "reason": "; ".join(reasons) or None, "attribution": match.attribution,
                "session": match.session, "records": records, "suppressed": win.suppressed,
                "serial_gap": win.serial_gap(), "other_records": others,
                "overwritten": win.overwritten}

    def _gaps(self, win: _Window, match: RunMatch, others: int) -> list:
        """Why the records may not be all the run's, in words."""
        reasons = []
        if win.overwritten:
            reasons.append("the kernel log ring buffer overwrote records before they were read")
        if win.suppressed:
            reasons.append("the kernel's printk rate limit reported %d suppressed audit "
                           "messages while the run was read (machine-wide, and counted since "
                           "its previous report, which may predate the run)" % win.suppressed)
        if win.serial_gap():
            reasons.append("%d audit events between the first and last record read were not "
                           "printed" % win.serial_gap())
        if self.interval != 0:
            # Nothing in the log shows the limit at work until the next report after the
            # interval, so no run can be shown complete while it is on.
            burst = self.burst if self.burst is not None else 10
            interval = self.interval if self.interval is not None else 5
            if win.printed >= burst:
                reasons.append("%d audit messages were printed during the run, as many as the "
                               "rate limit lets through: later ones were probably suppressed"
                               % win.printed)
            reasons.append("the kernel prints at most %d audit messages per %d s for the whole "
                           "machine (kernel.printk_ratelimit_burst, kernel.printk_ratelimit) and "
                           "counts what it drops only in a later message: records of the run "
                           "may be missing unreported" % (burst, interval))
        reasons.extend(win.losses)
        if win.dropped:
            reasons.append("%d records beyond the first %d were not kept"
                           % (win.dropped, win.max_records))
        if match.attribution == "pid" and others:
            reasons.append("matched by pid: %d records of other processes could be from "
                           "processes the run started" % others)
        return reasons

    def close(self) -> None:
        self._stop_following()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def find_kill(start_ns: int, pids: Iterable[int], exe: Optional[str]) -> Optional[dict]:
    """The audit record of a seccomp KILL of a finished run, looked up afterwards in what
    /dev/kmsg still holds (a kill is logged by default even without SCMP_ACT_LOG): a record
    after the run started, of one of `pids`, else of a process executing `exe`. The record says
    how it was matched ("matched_by"); None when the log is unreadable or holds no such record
    (rate limited, overwritten, or taken by an audit daemon)."""
    pids = set(pids)
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    by_pid = by_exe = None
    try:
        while True:
            try:
                data = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == _errno.EPIPE:  # overwritten while we read: go on
                    continue
                break
            rec = parse_kmsg(data)
            if rec is None or rec[1] * 1000 < start_ns - 50_000_000:
                continue
            audit = parse_audit(rec[2])
            if audit is None or audit[0] != AUDIT_SECCOMP:
                continue
            kind = int(audit[3].get("code", "0"), 16) & 0xFFFF0000
            if kind not in (RET_KILL_PROCESS, RET_KILL_THREAD):
                continue
            fields = audit[3]
            if by_pid is None and fields.get("pid", "").isdigit() and int(fields["pid"]) in pids:
                by_pid = seccomp_record(fields, rec[1], start_ns)
            elif by_exe is None and exe and _audit_string(fields.get("exe", '""')) == exe:
                by_exe = seccomp_record(fields, rec[1], start_ns)
    finally:
        os.close(fd)
    if by_pid is not None:
        return dict(by_pid, source="kernel-audit", matched_by="pid")
    if by_exe is not None:
        return dict(by_exe, source="kernel-audit", matched_by="exe and time")
    return None

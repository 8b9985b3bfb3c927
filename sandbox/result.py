"""The outcome of one sandboxed run: what happened, what it used, and what limits applied."""
from __future__ import annotations

import base64
import dataclasses
import signal as _signal
from typing import Optional

VERDICTS = (
    "OK",              # exited 0
    "NONZERO_EXIT",    # exited with another status
    "SIGNALED",        # killed by a signal it did not get from a limit or the filter
    "TIME_LIMIT",      # limits["time_limit_kind"]: "cpu" or "wall"
    "MEMORY_LIMIT",
    "OUTPUT_LIMIT",
    "SECCOMP_KILLED",  # SIGSYS: the filter's KILL or TRAP action
    "SETUP_ERROR",     # the command never ran: see setup_error (stage, errno, message)
)


def signal_name(num: Optional[int]) -> Optional[str]:
    if num is None:
        return None
    try:
        return _signal.Signals(num).name
    except ValueError:
        return "SIG%d" % num


def _text(data: Optional[bytes]):
    """JSON form of captured bytes: text when it is UTF-8, else base64."""
    if data is None:
        return None, None
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, base64.b64encode(data).decode("ascii")


@dataclasses.dataclass
class Result:
    argv: list
    verdict: str
    exit_code: Optional[int] = None        # when the process exited
    signal: Optional[int] = None           # when it was killed by a signal
    time_limit_kind: Optional[str] = None  # "cpu" or "wall" for TIME_LIMIT
    setup_error: Optional[dict] = None     # {"stage", "errno", "errno_name", "message"}
    wall_time: float = 0.0                 # seconds
    cpu_user: float = 0.0                  # seconds (rusage): the main process and the
    cpu_system: float = 0.0                # descendants it reaped itself, so for a tree less
                                           # than cpu_time; 0 when the tree was killed first
    cpu_time: float = 0.0                  # whole tree when measured by a cgroup, else user+system
    cpu_source: str = "rusage"             # "cgroup" or "rusage"
    peak_memory: Optional[int] = None      # bytes
    memory_source: str = "rusage"          # "cgroup-v2", "cgroup-v1" (the tree's peak), or
                                           # "rusage-upper-bound": max RSS, which for a vforked
                                           # child includes the supervisor's RSS at spawn
    stdout: Optional[bytes] = None         # None when not captured
    stderr: Optional[bytes] = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    pid: Optional[int] = None              # spawn_path "zygote" with pid_namespace: its pid in
                                           # the zygote's namespace (what $$ said)
    profile: Optional[str] = None          # where the profile came from ("default", a path, ...)
    profile_digest: Optional[str] = None   # sha256 of the compiled policy (None: unconfined)
    filter_instructions: int = 0
    limits: dict = dataclasses.field(default_factory=dict)
    containment: str = "process-group"     # "cgroup", "pid-namespace", "zygote-subreaper" (the
                                           # zygote killed what the job left) or
                                           # "process-group": what made sure nothing the
                                           # command started outlived it
    pid_namespace: bool = False            # the command ran in a PID namespace of its own
    cancelled: bool = False                # killed by sandbox.runner.cancel_all()
    seccomp_log: Optional[dict] = None     # the calls the filter logged or (with denial reports)
                                           # denied: see sandbox/notify.py; None when not watched
    landlock: Optional[dict] = None        # filesystem restrictions: None when none were asked
                                           # for, else {"available", "abi", "ro", "rw",
                                           # "scratch"} (+ "reason" when the kernel had none)
    spawn_path: str = "direct"             # "zygote": started by the Sandbox's pre-filtered
                                           # zygote (inheriting its filter); "spawner-thread":
                                           # by its pre-filtered thread (inheriting that
                                           # thread's filter); "direct": installing its own
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == "OK"

    @property
    def returncode(self) -> int:
        """subprocess-style: the exit status, or -N for signal N, or -1 when it never ran."""
        if self.exit_code is not None:
            return self.exit_code
        if self.signal is not None:
            return -self.signal
        return -1

    def _log_entries(self, actions) -> list:
        if not self.seccomp_log:
            return []
        return [e for e in self.seccomp_log["syscalls"] if e["action"] in actions]

    @property
    def logged(self) -> list:
        """Per-syscall entries of SCMP_ACT_LOG calls (with counts and the first call)."""
        return self._log_entries(("LOG",))

    @property
    def denials(self) -> list:
        """Per-syscall entries of denied calls (ERRNO, KILL), with denial reports on."""
        return self._log_entries(("ERRNO", "KILL_PROCESS", "KILL_THREAD"))

    @property
    def killed_by(self) -> Optional[dict]:
        """The call whose KILL action ended the run, when it is known."""
        return self.seccomp_log.get("killed_by") if self.seccomp_log else None

    @property
    def signal_name(self) -> Optional[str]:
        return signal_name(self.signal)

    def describe(self) -> str:
        """One line for people."""
        if self.verdict == "SETUP_ERROR" and self.setup_error:
            return "SETUP_ERROR: %s" % self.setup_error.get("message")
        parts = [self.verdict]
        if self.verdict == "TIME_LIMIT":
            parts.append("(%s)" % self.time_limit_kind)
        if self.exit_code is not None:
            parts.append("exit %d" % self.exit_code)
        if self.signal is not None:
            parts.append("signal %s" % self.signal_name)
        parts.append("wall %.3fs cpu %.3fs" % (self.wall_time, self.cpu_time))
        if self.peak_memory is not None:
            # without a cgroup, rusage gives only an upper bound (the supervisor's size at the
            # fork may be counted: see memory_source)
            parts.append("mem %s%.1f MiB" % ("<= " if self.memory_source == "rusage-upper-bound"
                                             else "", self.peak_memory / 1048576))
        return " ".join(parts)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["signal_name"] = self.signal_name
        for stream in ("stdout", "stderr"):
            text, b64 = _text(d.pop(stream))
            d[stream] = text
            if b64 is not None:
                d[stream + "_base64"] = b64
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Result":
        d = dict(d)
        d.pop("signal_name", None)
        for stream in ("stdout", "stderr"):
            b64 = d.pop(stream + "_base64", None)
            if b64 is not None:
                d[stream] = base64.b64decode(b64)
            elif d.get(stream) is not None:
                d[stream] = d[stream].encode("utf-8")
        return cls(**d)

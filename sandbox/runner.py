"""Run commands under a compiled profile: `Sandbox(profile, **limits).run(argv)` and `run()`.

Everything the child needs (argv, envp, the BPF program, rlimits, descriptors, ids,
capabilities, cgroup descriptors) is prepared here; the C core (csrc/spawn.c) forks, sets the
child up with raw syscalls and execs, and csrc/watch.c supervises the run with the GIL released.
"""
from __future__ import annotations

import errno as _errno
import functools
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import weakref
from typing import Optional, Sequence

from . import (_core, auditlog, builtin, landlock, notify, profile as _profile, runslots,
               syscall_log, spawner as _spawner, syscall_report, zygote as _zygote)
from .filter import Filter, compile_policy
from .limits import Limits
from .policy import Policy, RET_ALLOW, RET_LOG, json_action_name
from .result import Result

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
# "notify": LOG rules answered by our supervisor (lossless); "kernel": the kernel's own LOG
# action, read back from its audit log; "none": LOG left to the kernel, nothing collected
LOG_BACKENDS = ("notify", "kernel", "none")
DEFAULT_ENV = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "HOME": "/tmp"}

INHERIT = object()   # stdin/stdout/stderr: the caller's own descriptor
DEVNULL = object()   # /dev/null
PIPE = object()      # captured (stdout/stderr) in the Result

_SIGSYS = int(signal.SIGSYS)


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


_LAST_CAP = _last_cap()
_ZYGOTES_MAX = os.cpu_count() or 1   # per Sandbox (see Sandbox._take_zygote)


def _own_bounding_set() -> int:
    """Capabilities this process may still hand out (CapBnd); a child can keep no others."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return (1 << (_LAST_CAP + 1)) - 1


_OWN_BOUNDING = _own_bounding_set()


_INIT_EXE = _core.INIT_EXE   # sandbox-init: pid 1 of a run's PID namespace

_devnull = [-1]


def _devnull_fd() -> int:
    """A /dev/null descriptor (read-write, close-on-exec) shared by every run of this process
    for stdin and discarded output: an fstat to check it is still ours is cheaper than a path
    lookup per run. Opened again when something closed or replaced it."""
    fd = _devnull[0]
    if fd >= 0:
        try:
            st = os.fstat(fd)
            if st.st_rdev == _DEVNULL_RDEV and st.st_mode & 0o170000 == 0o020000:
                return fd
        except OSError:
            pass
    _devnull[0] = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return _devnull[0]


_DEVNULL_RDEV = os.stat(os.devnull).st_rdev
_devnull_fd()   # now, not in the middle of someone's descriptor count
_CAP_NUMBERS = {name: i for i, name in enumerate(_profile.CAPABILITIES)}


def _caps_mask(names) -> int:
    mask = 0
    for name in names:
        num = _CAP_NUMBERS.get(name)
        if num is not None and num <= _LAST_CAP:
            mask |= 1 << num
    return mask & _OWN_BOUNDING


_protected = False

# Runs in progress in this process, by pidfd, are in _core's running table (csrc/running.h):
# what cancel_all() kills. A forked child forgets its parent's.
os.register_at_fork(after_in_child=_core.running_forget)


# The RLIMIT_NOFILE this process had before raise_open_files() raised it: what runs keep
# (unless their limits give open_files). None: never raised, runs inherit ours.
_runs_nofile = None
_nofile_lock = threading.Lock()


def raise_open_files(need: int) -> int:
    """Make room for `need` descriptors: if the soft RLIMIT_NOFILE is below it, raise it to
    twice that (headroom for the rest of the process), at most the hard limit. A batch holds a
    few descriptors per thread and per job (its zygotes' sockets, the jobs' pipes and pidfds),
    which at -j 100 and more is past the usual soft limit of 1024. The commands started
    afterwards keep the limit we had, set explicitly. Returns the soft limit now in force
    (below `need` when the hard limit is)."""
    global _runs_nofile
    with _nofile_lock:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return need   # (no limit at all)
        if need <= soft:
            return soft
        new = 2 * need if hard == resource.RLIM_INFINITY else min(2 * need, hard)
        if _runs_nofile is None:
            _runs_nofile = (soft, hard)   # (first: runs set from now on keep it)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        return new


_FS_ENCODING = sys.getfilesystemencoding()


def cancel_all() -> int:
    """Kill every run in progress in this process (e.g. on Ctrl-C in a batch): each one ends at
    once with its whole tree killed, and its Result says cancelled. Returns how many."""
    return _core.cancel_running()


def _protect_supervisor() -> None:
    """Make this process non-dumpable, once: a sandboxed command of the same user (and without
    CAP_SYS_PTRACE, which no default capability set has) can then neither ptrace us nor open our
    /proc/PID/mem or environ -- otherwise it could run code outside the filter and its limits.
    The price: no core dumps of this process, and its /proc files belong to root."""
    global _protected
    if not _protected:
        _core.set_dumpable(False)
        _protected = True


_warned_no_userns = False


def _namespaces(is_root: bool, wanted) -> tuple:
    """(pid_namespace, user_namespace, refusal) for Sandbox's pid_namespace option. Root makes
    a PID namespace by itself; anyone else only inside a user namespace of the run's own, where
    the kernel allows unprivileged ones. refusal: why every run must be refused, or None."""
    global _warned_no_userns
    if is_root or (wanted is not None and not wanted):
        return (is_root if wanted is None else bool(wanted)), False, None
    err = _core.userns_error()
    if err == 0:
        return True, True, None
    if _core.INIT_EXE is None:
        why = "sandbox-init, which maps the ids of a user namespace, is not built"
    else:
        why = ("this kernel refuses an unprivileged user namespace (%s; see "
               "user.max_user_namespaces, kernel.unprivileged_userns_clone, AppArmor's "
               "restrict_unprivileged_userns)" % os.strerror(err))
    if wanted:
        return True, True, "pid_namespace=True without root needs a user namespace, but " + why
    if not _warned_no_userns:
        _warned_no_userns = True
        logging.getLogger("sandbox").warning(
            "runs get no PID namespace: not root, and %s. A run is then contained by its process "
            "group only (Result.containment), so a daemon it starts with setsid can outlive it",
            why)
    return False, False, None


DISABLED_WARNING = ("the profile disables seccomp (no defaultAction and no syscalls, as Docker "
                    "and runc read it): commands run without a filter")


class SetupRefused(Exception):
    """The sandbox cannot run anything with this configuration (reported as SETUP_ERROR)."""

    def __init__(self, stage: str, message: str, err: int = 0):
        self.stage = stage
        self.err = err
        super().__init__(message)


def _can_change_ids() -> bool:
    """Whether this process holds CAP_SETUID and CAP_SETGID (root has them), which a run as
    another user needs (setgroups, setresgid, setresuid in the child)."""
    try:
        with open("/proc/self/status") as f:
            eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        return os.geteuid() == 0
    return bool(eff & (1 << 6) and eff & (1 << 7))


def check_user(user):
    """_resolve_user(user), refused (SetupRefused) up front where this process cannot become
    that user: every run would fail in the child otherwise."""
    ids = _resolve_user(user)
    if ids is not None and not _can_change_ids():
        raise SetupRefused("user", "--user needs root (or CAP_SETUID and CAP_SETGID); run as "
                                   "root, or drop the option")
    return ids


def _resolve_user(user):
    """(uid, gid, groups, home) for a name, a uid, or "uid:gid"."""
    import grp
    import pwd

    if user is None:
        return None
    text = str(user)
    gid = None
    if ":" in text:
        text, gtext = text.split(":", 1)
        gid = int(gtext) if gtext.isdigit() else grp.getgrnam(gtext).gr_gid
    try:
        pw = pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
    except KeyError:
        if text.isdigit():
            uid = int(text)
            return uid, gid if gid is not None else uid, [gid if gid is not None else uid], "/tmp"
        raise SetupRefused("user", "no such user: %r" % text)
    if gid is None:
        gid = pw.pw_gid
    groups = sorted({gid} | {g.gr_gid for g in grp.getgrall() if pw.pw_name in g.gr_mem})
    return pw.pw_uid, gid, groups, pw.pw_dir


def _which(cmd: str, path: str, cwd: Optional[str]) -> Optional[str]:
    """execvp's search, done in the parent with the child's PATH; an absolute path, since the
    child execs after its chdir (cwd must already be absolute)."""
    if cmd.startswith("/"):
        return os.path.normpath(cmd)
    base = cwd or os.getcwd()
    if "/" in cmd:
        return os.path.normpath(os.path.join(base, cmd))
    for d in path.split(":"):
        full = os.path.normpath(os.path.join(base, d or ".", cmd))
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
    return None


def _load_policy(spec, **load_options) -> Optional[Policy]:
    if spec is None or spec == builtin.UNCONFINED:
        return None
    if isinstance(spec, Policy):
        return spec
    return _profile.load(builtin.source(spec), **load_options)


def _exec_refusal(flt: Filter) -> Optional[str]:
    """Why no command can start under this filter, or None."""
    policy = flt.policy
    d = flt.decide("execve", (), arch=policy.host_arch)
    kind = d.action & 0xFFFF0000
    if kind in (RET_ALLOW, RET_LOG):
        return None
    if d.decided_by == "rule":
        return "the profile denies execve: rule %s (%s)" % (d.rule_path, d.rule_text)
    if d.decided_by == "default":
        conditional = [r for r in policy.rules if r.name == "execve"]
        if conditional:
            return None  # execve is allowed for some arguments: let it try
        return ("the profile denies execve: defaultAction %s with no rule allowing execve, so "
                "no command can start" % json_action_name(policy.default_action))
    return "the profile denies execve (%s: %s)" % (d.decided_by, d.action_name)


class Sandbox:
    """A profile compiled once, plus default limits and settings, for running many commands.

    profile: a built-in name ("default", "no-network", "grader", "unconfined"), a path, a dict,
    JSON text or a loaded Policy. Limits (cpu_time, timeout, memory, output_limit, processes,
    file_size, open_files, stack) take numbers or strings ("2s", "256M").

    Filesystem (Landlock, see sandbox.landlock): fs_ro lists paths the command may read and
    execute beneath, fs_rw paths where it may do anything; nothing else is reachable. A list
    not given is the profile's default (grader: ["@system"] and ["@scratch"]; others: no
    Landlock unless the other list is given, and then ["@system"] and []). fs_unrestricted
    turns the profile's default off. Where the kernel has no Landlock every run is refused
    (SETUP_ERROR) unless allow_no_landlock, and the Result's `landlock` says so.
    Call close() (or use `with`) to release the ruleset descriptor early.
    zygote: start runs through a pre-filtered zygote (sandbox/zygote.py) when the profile
    allows what it needs, else directly (`zygote_refusal` says why; each Result's spawn_path
    says which path ran). It saves the per-run filter install, so it pays off for many runs;
    `sandbox batch` turns it on. Its jobs share a PID namespace (their zygote's, when this
    Sandbox has pid_namespace) instead of one each, so they can see one another; as root each
    job gets its own cgroup to contain its tree. Call close() (or use `with`) to stop them.
    spawner (default on): runs without a PID namespace of their own start from a thread of
    this process that installed the filter on itself once (sandbox/spawner.py), so they skip
    the per-run install too, when every action of the profile is ALLOW or ERRNO and it allows
    what that thread does (`spawner_refusal` says why not; spawn_path "spawner-thread").
    pid_namespace: each run is pid 1 of a PID namespace (with a mount namespace and a /proc of
    its own), so everything it starts dies with it and it cannot see other processes. None
    (default): as root always; without root inside a user namespace of the run's own (which maps
    only our uid and gid to themselves: the command keeps its ids and has no capability) when
    the kernel allows unprivileged ones, else none, with a warning on logger "sandbox": a setsid
    daemon can then escape the process group, the only containment left (Result.containment).
    True: always (without root and no user namespace every run is refused); False: never.
    """

    def __init__(self, profile="default", *, caps=None, host_arch=None, kernel=None,
                 strict=False, enosys_stub=True, args_like_libseccomp=False,
                 cpu_time=None, timeout=None, memory=None, output_limit=None, processes=None,
                 file_size=None, open_files=None, stack=None,
                 env=None, inherit_env=False, cwd=None, user=None, umask=0o022,
                 use_cgroup=True, pid_namespace=None, pdeathsig=signal.SIGKILL,
                 protect_supervisor=True, log_backend="notify", report_denials=False,
                 log_records=100, fs_ro=None, fs_rw=None, fs_unrestricted=False,
                 allow_no_landlock=False, zygote=False, spawner=True):
        self._ruleset = None
        if protect_supervisor:
            _protect_supervisor()
        self.user = check_user(user) if user is not None else None
        self.is_root = os.geteuid() == 0
        if caps is None and self.user is not None and self.user[0] != 0:
            caps = "none"  # a non-root user ends up with no capabilities at all
        self.policy = _load_policy(profile, caps=caps, host_arch=host_arch, kernel=kernel,
                                   strict=strict, enosys_stub=enosys_stub,
                                   args_like_libseccomp=args_like_libseccomp)
        self.profile_name = profile if isinstance(profile, str) else (
            self.policy.source if self.policy else builtin.UNCONFINED)
        self.filter = compile_policy(self.policy) if self.policy is not None else None
        # what the profile's loading found, shown to the user and carried by every Result
        self.profile_warnings = list(self.policy.warnings) if self.policy is not None else []
        if self.policy is None and profile is not None and profile != builtin.UNCONFINED:
            self.profile_warnings.append(DISABLED_WARNING)
        # computed once: every run reuses them
        self.digest = self.filter.digest if self.filter is not None else None
        self._filter_len = len(self.filter) if self.filter is not None else 0
        self.filter_flags = self.policy.filter_flags() if self.policy else 0
        self.refusal = None
        if self.filter is not None:
            self.refusal = _exec_refusal(self.filter)
            if self.refusal is None and self.policy.uses_notify():
                self.refusal = ("the profile uses SCMP_ACT_NOTIFY, which needs a notification "
                                "supervisor; this version cannot answer notifications")
        self._setup_logging(log_backend, report_denials, log_records)
        if self.policy is not None:
            self.cap_names = tuple(self.policy.caps)
        else:
            self.cap_names = tuple(_profile.default_caps() if caps is None
                                   else _profile.parse_caps(caps))
        self.caps_mask = _caps_mask(self.cap_names) if self.is_root else None
        self.limits = Limits.build(cpu_time=cpu_time, wall_time=timeout, memory=memory,
                                   output=output_limit, processes=processes,
                                   file_size=file_size, open_files=open_files, stack=stack)
        self.env = self._base_env(env, inherit_env)
        self.cwd = cwd
        self.umask = umask
        self.use_cgroup = use_cgroup
        # As root the command would otherwise see, signal and ptrace every process of ours
        # (the supervisor included): give it a PID namespace of its own unless told not to.
        # Without root, where a user namespace makes one possible, it contains the tree.
        self.pid_namespace, self.user_namespace, self._namespace_refusal = _namespaces(
            self.is_root, pid_namespace)
        self.pdeathsig = int(pdeathsig or 0)
        self._setup_filesystem(profile, fs_ro, fs_rw, fs_unrestricted, allow_no_landlock)
        self.zygote = bool(zygote)
        self.zygote_refusal = None
        if self.zygote:
            self.zygote_refusal = self.refusal or self._zygote_misfit() or _zygote.refusal(
                self.filter, ids=self.user is not None, caps=self.caps_mask is not None)
        self._spawner = None
        self.spawner_refusal = "turned off (spawner=False)" if not spawner else (
            self.refusal or self._spawner_misfit() or _spawner.refusal(
                self.filter, ids=self.user is not None, caps=self.caps_mask is not None,
                landlock=self.fs is not None))
        if self.spawner_refusal is None:
            self._spawner = _spawner.SpawnerSlot(self.filter.program, self.filter_flags,
                                                 self.caps_mask, _LAST_CAP)
        self._zygotes = []           # started ones; each serves one request at a time
        self._thread_zygotes = weakref.WeakKeyDictionary()   # Thread -> its own zygote
        self._zygote_turn = 0
        self._zygote_lock = threading.Lock()



    def _setup_filesystem(self, profile, fs_ro, fs_rw, unrestricted, allow_missing) -> None:
        """The Landlock policy, the kernel's ABI (or why there is none), and the ruleset,
        built once when it does not depend on the run."""
        if unrestricted and (fs_ro is not None or fs_rw is not None):
            raise ValueError("fs_unrestricted contradicts fs_ro / fs_rw")
        self._fs_default = None if unrestricted else builtin.fs_default(profile)
        self._fs_lists = (fs_ro, fs_rw)
        self._fs_warnings = []
        self.allow_no_landlock = bool(allow_missing)
        self.fs = landlock.fs_policy(self._fs_default, fs_ro, fs_rw)
        self._landlock_abi = self._landlock_missing = None
        if self.fs is None:
            return
        if self.pid_namespace and any(p == "/proc" or p.startswith("/proc/")
                                      for p in self.fs.ro + self.fs.rw):
            self._fs_warnings.append(
                "fs_ro/fs_rw /proc names this process's /proc: the run's own /proc (it has a PID "
                "namespace) stays unreachable under Landlock")
        self._probe_landlock()
        if self._landlock_abi is None or (self.fs.scratch and self.cwd is None):
            return  # no Landlock, or the scratch directory is known only per run
        scratch = os.path.abspath(os.fspath(self.cwd)) if self.fs.scratch else None
        if scratch is not None and not os.path.isdir(scratch):
            raise landlock.FsPathError("cwd %s (the scratch directory): no such directory"
                                       % scratch)
        try:
            self._ruleset = landlock.Ruleset(self._landlock_abi, self.fs, scratch)
        except OSError as e:
            raise landlock.FsPathError(str(e.strerror)) from None
        self._ruleset_scratch = scratch

    @property
    def fs_ro_list(self) -> list:
        """The read-only list (fs_ro) runs get unless they give their own: this Sandbox's, or
        its profile's default, or @system."""
        ro = self._fs_lists[0]
        if ro is None:
            ro = (self._fs_default or {}).get("ro", (landlock.SYSTEM,))
        return list(ro)

    def _probe_landlock(self) -> None:
        if self._landlock_abi is None and self._landlock_missing is None:
            try:
                self._landlock_abi = landlock.kernel_abi()
            except landlock.LandlockUnavailable as e:
                self._landlock_missing = str(e)

    # -- the zygote ----------------------------------------------------------------------

    def _take_zygote(self):
        """A zygote for this run with its lock held (_zygote_spawn gives it back), or None:
        spawn directly. Up to one per CPU start on demand: a zygote starts one job at a time
        and waits for its execve, so a single one would serialise the threads."""
        if not self.zygote or self.zygote_refusal:
            return None
        wait = False
        with self._zygote_lock:
            dead = [z for z in self._zygotes if z.dead]
            self._zygotes = [z for z in self._zygotes if not z.dead]
            z = next((z for z in self._zygotes if z.lock.acquire(blocking=False)), None)
            if z is None and len(self._zygotes) < _ZYGOTES_MAX:
                z = self._start_zygote()
                if z is not None:
                    z.lock.acquire()
                    self._zygotes.append(z)
            elif z is None and self._zygotes:
                self._zygote_turn = (self._zygote_turn + 1) % len(self._zygotes)
                z, wait = self._zygotes[self._zygote_turn], True
        for old in dead:
            old.close()
        if wait:
            z.lock.acquire()  # every one is busy: queue on one of them
        return z

    def _thread_zygote(self):
        """The zygote this Sandbox keeps for the calling thread (started on first use, or
        again when it died), with its lock held; None: spawn directly. For runs that wait in
        their zygote for a slot (RunSlots): the waiting one must be a zygote no other run
        needs meanwhile."""
        if not self.zygote or self.zygote_refusal:
            return None
        me = threading.current_thread()
        with self._zygote_lock:
            z = self._thread_zygotes.get(me)
            dead = z if z is not None and z.dead else None
            if z is None or dead is not None:
                z = self._start_zygote()
                if z is None:
                    self._thread_zygotes.pop(me, None)
                else:
                    self._thread_zygotes[me] = z
                    weakref.finalize(me, z.close)   # (a thread's zygote goes with it)
        if dead is not None:
            dead.close()
        if z is not None:
            z.lock.acquire()
        return z

    @functools.cached_property
    def _zygote_epoll(self) -> bool:
        return _zygote.epoll_allowed(self.filter)

    def _start_zygote(self):
        caps = None
        if self.caps_mask is not None:
            # what the jobs keep, plus what their set-up needs to drop the rest, and the
            # right to kill what a job leaves behind under another uid (--user)
            extra = (1 << _zygote.CAP_SETPCAP) | (1 << _zygote.CAP_KILL)
            if self.user is not None:
                extra |= (1 << _zygote.CAP_SETUID) | (1 << _zygote.CAP_SETGID)
            caps = (self.caps_mask | extra) & _OWN_BOUNDING
        try:
            return _zygote.Zygote(program=self.filter.program if self.filter else None,
                                  filter_flags=self.filter_flags, caps=caps,
                                  last_cap=_LAST_CAP, pid_namespace=self.pid_namespace,
                                  user_namespace=self.user_namespace,
                                  epoll=self._zygote_epoll)
        except (OSError, _core.SpawnError) as e:
            # out of descriptors, processes or memory for now: this run starts directly, a
            # later one tries again; anything else (the filter kills it, it cannot exec) stays
            if e.errno not in _zygote.TRANSIENT_ERRNOS:
                self.zygote_refusal = str(e)
            return None

    def close(self) -> None:
        """Stop this Sandbox's zygotes (their running jobs are killed) and release its Landlock
        ruleset now rather than when it is garbage-collected. Runs may still follow: they start
        other zygotes and build rulesets of their own."""
        with self._zygote_lock:
            zygotes, self._zygotes = self._zygotes, []
            zygotes += list(self._thread_zygotes.values())
            self._thread_zygotes.clear()
        for z in zygotes:
            z.close()
        if self._spawner is not None:
            self._spawner.close()
        if self._ruleset is not None:
            self._ruleset.close()
            self._ruleset = None

    def _spawner_misfit(self) -> Optional[str]:
        """Why this Sandbox's runs cannot inherit their filter from a spawner thread, or None."""
        if self.filter is None:
            return "no filter to install"
        if self.pid_namespace:
            return "each run starts a PID namespace, which the filter may deny to clone"
        if self.notify_program is not None:
            return "the filter answers calls through a notification listener of each run's own"
        if self.kernel_log:
            return "the kernel log backend gives each run an audit session of its own"
        return None

    def _zygote_misfit(self) -> Optional[str]:
        """Why this Sandbox's runs need a start of their own, or None. A zygote's jobs inherit
        its plain filter: no notification listener (LOG collection, denial reports), no audit
        session of their own (the kernel log backend), no per-run Landlock ruleset."""
        if self.notify_program is not None:
            return "the filter answers calls through a notification listener of each run's own"
        if self.kernel_log:
            return "the kernel log backend gives each run an audit session of its own"
        if self.fs is not None:
            return "Landlock rulesets are applied by each run's own start"
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- preparation ---------------------------------------------------------------------

    def _setup_logging(self, backend, report_denials, log_records) -> None:
        """Which of the filter's answers the supervisor sees (notify.py): LOG with the
        notification backend, and ERRNO/KILL when denials are reported."""
        if backend not in LOG_BACKENDS:
            raise ValueError("log_backend %r: expected one of %s" % (backend,
                                                                    ", ".join(LOG_BACKENDS)))
        self.log_backend = backend
        self.report_denials = bool(report_denials)
        self.log_records = int(log_records)
        if self.log_records < 0:
            raise ValueError("log_records must be >= 0")
        self.notify_program = None
        self.kernel_log = False
        self._notify_answer_delay_ns = 0  # tests: make a call wait for its answer
        if self.filter is None:
            return
        can_return = notify.returns(self.filter.program)
        wanted = set()
        if backend == "notify":
            wanted |= can_return & notify.LOGGED
        if self.report_denials and backend != "kernel":
            wanted |= can_return & notify.DENIED
        # the kernel backend reads back what the kernel logs itself: LOG, and KILL actions
        self.kernel_log = backend == "kernel" and bool(
            can_return & (notify.LOGGED | {notify.RET_KILL_PROCESS, notify.RET_KILL_THREAD}))
        if wanted:
            self.notify_program = notify.rewrite(self.filter.program, wanted)
            self.notify_keys = notify.keys_for(self.policy.arches)

    def _base_env(self, env, inherit_env) -> dict:
        self._env_given = set()  # variables set on purpose (TMPDIR is then left alone)
        base = dict(os.environ) if inherit_env else dict(DEFAULT_ENV)
        if self.user is not None and not inherit_env:
            base["HOME"] = self.user[3] or "/tmp"
        if env:
            if isinstance(env, dict):
                items = env.items()
            else:
                items = []
                for item in env:
                    if "=" not in item or item.startswith("="):
                        raise ValueError("env %r: expected NAME=VALUE" % (item,))
                    items.append(item.split("=", 1))
            for k, v in items:
                base[str(k)] = str(v)
                self._env_given.add(str(k))
        return base

    def _rlimits(self, limits: Limits, cg) -> list:
        out = [(resource.RLIMIT_CORE, 0, 0)]
        if limits.cpu_time is not None:
            soft = max(1, int(-(-limits.cpu_time // 1)))
            if cg is not None and cg.cpu_stat_fd >= 0:
                # the supervisor enforces the limit from the cgroup's exact count: this one is
                # a backstop, a second later. RLIMIT_CPU counts in scheduler ticks, charged
                # whole to whoever runs when they fire: on a loaded VM it fired after 0.88 s
                # of a 1 s limit
                soft += 1
            out.append((resource.RLIMIT_CPU, soft, soft + 1))
        if limits.memory is not None and (cg is None or cg.memory_method is None):
            out.append((resource.RLIMIT_AS, limits.memory, limits.memory))
        if limits.processes is not None and (cg is None or cg.pids_method is None):
            out.append((resource.RLIMIT_NPROC, limits.processes, limits.processes))
        if limits.file_size is not None:
            out.append((resource.RLIMIT_FSIZE, limits.file_size, limits.file_size))
        if limits.open_files is not None:
            out.append((resource.RLIMIT_NOFILE, limits.open_files, limits.open_files))
        elif _runs_nofile is not None:
            out.append((resource.RLIMIT_NOFILE,) + _runs_nofile)
        if limits.stack is not None:
            out.append((resource.RLIMIT_STACK, limits.stack, limits.stack))
        return out

    def _result(self, argv, limits: Limits, **kw) -> Result:
        return Result(argv=list(argv), profile=self.profile_name,
                      profile_digest=self.digest,
                      filter_instructions=self._filter_len,
                      limits=limits.to_json(),
                      warnings=self.profile_warnings + self._fs_warnings, **kw)

    def _setup_error(self, argv, limits, stage, message, err=0,
                     spawn_path="direct") -> Result:
        return self._result(argv, limits, verdict="SETUP_ERROR", spawn_path=spawn_path,
                            setup_error={
                                "stage": stage, "errno": err,
                                "errno_name": _errno.errorcode.get(err) if err else None,
                                "message": message})

    # -- running -------------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, stdin=None, stdout=PIPE, stderr=PIPE, env=None,
            cwd=None, cpu_time=None, timeout=None, memory=None, output_limit=None,
            processes=None, file_size=None, open_files=None, stack=None, fs_ro=None,
            fs_rw=None, run_slot=None) -> Result:
        """Run one command; always returns a Result (never raises for what the command does).

        stdin: None or DEVNULL (/dev/null), bytes/str (fed through a pipe), INHERIT, or an open
        file / descriptor. stdout, stderr: PIPE (captured in the Result), INHERIT, DEVNULL, or
        an open file / descriptor. fs_ro, fs_rw: this run's Landlock lists instead of the
        Sandbox's (its ruleset is then built for the run).
        run_slot: a threading.Semaphore (or anything with acquire() and release()) held only
        from the command's start to its end, so that a batch bounds the commands running at
        once while other threads prepare runs and build Results; a sandbox.runslots.RunSlots
        is taken by the zygote itself, which starts the command the moment a slot frees
        (default: the calling thread's, which a batch's worker threads have).
        """
        if isinstance(argv, (str, bytes, os.PathLike)):
            raise TypeError("argv must be a list of strings, not %s: write %r, or %r for shell "
                            "syntax" % (type(argv).__name__, os.fsdecode(argv).split(),
                                        ["sh", "-c", os.fsdecode(argv)]))
        argv = [a if isinstance(a, str) else _arg(a, i) for i, a in enumerate(argv)]
        limits = self.limits.merged(cpu_time=cpu_time, wall_time=timeout, memory=memory,
                                    output=output_limit, processes=processes,
                                    file_size=file_size, open_files=open_files, stack=stack)
        if not argv:
            return self._setup_error(argv, limits, "argv", "no command given")
        if self.refusal:
            return self._setup_error(argv, limits, "profile", self.refusal)
        if self._namespace_refusal:
            return self._setup_error(argv, limits, "userns", self._namespace_refusal,
                                     _core.userns_error())
        envmap = self.env   # copied only when this run changes it
        if env:
            envmap = dict(self.env)
            envmap.update({str(k): str(v) for k, v in env.items()})
        cwd = cwd if cwd is not None else self.cwd
        if cwd is not None:
            cwd = os.fsdecode(os.path.abspath(os.fspath(cwd)))
        fs = self.fs
        if fs_ro is not None or fs_rw is not None:
            try:
                fs = landlock.fs_policy(self._fs_default,
                                        fs_ro if fs_ro is not None else self._fs_lists[0],
                                        fs_rw if fs_rw is not None else self._fs_lists[1])
            except (ValueError, TypeError) as e:
                return self._setup_error(argv, limits, "landlock", str(e))
            self._probe_landlock()
        if fs is not None and self._landlock_abi is None and not self.allow_no_landlock:
            result = self._setup_error(
                argv, limits, "landlock", "filesystem restrictions were asked for but %s; "
                "refusing to run without them (allow_no_landlock=True / --allow-no-landlock "
                "runs anyway, unrestricted)" % self._landlock_missing)
            result.landlock = fs.describe(None, self._landlock_missing,
                                          cwd if fs.scratch else None)
            return result
        scratch_tmp = None
        if fs is not None and fs.scratch:
            if cwd is None:
                try:
                    cwd = scratch_tmp = self._make_scratch()
                except OSError as e:
                    return self._setup_error(argv, limits, "scratch", "making a scratch "
                                             "directory: %s" % e, e.errno)
            if "TMPDIR" not in self._env_given and not (env and "TMPDIR" in env):
                envmap = dict(envmap)
                envmap["TMPDIR"] = cwd
        try:
            exe = _which(argv[0], envmap.get("PATH", DEFAULT_PATH), cwd)
            if exe is None:
                result = self._setup_error(
                    argv, limits, "execve", "%s: command not found (PATH=%s)"
                    % (argv[0], envmap.get("PATH", "")), _errno.ENOENT)
            else:
                result = self._run_landlocked(
                    fs, argv, exe, envmap, cwd, limits, stdin, stdout, stderr,
                    run_slot if run_slot is not None else runslots.current())
            if fs is not None:
                result.landlock = fs.describe(self._landlock_abi, self._landlock_missing,
                                              cwd if fs.scratch else None)
            return result
        finally:
            if scratch_tmp is not None:
                shutil.rmtree(scratch_tmp, ignore_errors=True)

    def _make_scratch(self) -> str:
        """A fresh directory for one run (@scratch without a cwd), owned by the run's user."""
        path = tempfile.mkdtemp(prefix="sandbox-scratch-")
        if self.user is not None:
            os.chown(path, self.user[0], self.user[1])
        return path

    def _run_landlocked(self, fs, argv, exe, envmap, cwd, limits, stdin, stdout, stderr,
                        run_slot=None):
        """Spawn under the Sandbox's ruleset when it fits this run (same lists, same scratch,
        none of its directories made anew since), else under one built for it (closed once the
        child has applied it)."""
        if fs is None or self._landlock_abi is None:
            return self._spawn_and_watch(argv, exe, envmap, cwd, limits, stdin, stdout, stderr,
                                         run_slot=run_slot)
        scratch = cwd if fs.scratch else None
        if fs is self.fs and self._ruleset is not None and scratch == self._ruleset_scratch \
                and self._ruleset.current():
            return self._spawn_and_watch(argv, exe, envmap, cwd, limits, stdin, stdout, stderr,
                                         landlock_fd=self._ruleset.fd, run_slot=run_slot)
        try:
            ruleset = landlock.Ruleset(self._landlock_abi, fs, scratch)
        except OSError as e:
            return self._setup_error(argv, limits, "landlock", e.strerror, e.errno)
        with ruleset:
            return self._spawn_and_watch(argv, exe, envmap, cwd, limits, stdin, stdout, stderr,
                                         landlock_fd=ruleset.fd, run_slot=run_slot)

    def _envp(self, envmap: dict) -> list:
        """The environment as execve takes it; the Sandbox's own is encoded once."""
        if envmap is self.env:
            cached = self.__dict__.get("_envp_cache")
            if cached is not None and cached[0] is envmap:
                return cached[1]
        envp = [("%s=%s" % kv).encode(_FS_ENCODING, "surrogateescape") for kv in envmap.items()]
        if envmap is self.env:
            self._envp_cache = (envmap, envp)
        return envp

    def _spawn_and_watch(self, argv, exe, envmap, cwd, limits, stdin, stdout, stderr,
                         landlock_fd=-1, run_slot=None) -> Result:
        cg = None
        slot_held = False
        spawned_by = None   # the spawner thread that started the run, until it is reaped
        to_close = []
        in_fd = out_r = err_r = -1
        in_data = b""
        via_zygote = self.zygote and not self.zygote_refusal and landlock_fd < 0
        # a job of the zygote shares its PID namespace (if any) with the other jobs
        own_pidns = self.pid_namespace and not via_zygote
        try:
            # A cgroup enforces memory, pids and whole-tree CPU limits, and contains the tree
            # of a run without a PID namespace. A PID namespace already contains its tree, so
            # does the zygote for its jobs (csrc/zygote/main.c: each job's command is the
            # subreaper of its tree, the zygote kills what a finished job leaves), and joining
            # a cgroup costs a task migration (an RCU grace period on cgroup v1/v2 without
            # favordynmods): skip it when nothing needs it.
            needs_limits = (limits.memory is not None or limits.processes is not None
                            or limits.cpu_time is not None)
            if self.use_cgroup and (needs_limits or (self.is_root and not own_pidns
                                                     and not via_zygote)):
                cg = _make_cgroup(limits)
            # the command's stdin, stdout, stderr; -1: a pipe of ours (fed with in_data, or
            # captured), made by the start that the run takes (_core.zygote_run, _pipes)
            stdio = []
            if stdin is None or stdin is DEVNULL:
                stdio.append(_devnull_fd())
            elif stdin is INHERIT:
                stdio.append(0)
            elif isinstance(stdin, (bytes, str)):
                in_data = stdin.encode() if isinstance(stdin, str) else stdin
                stdio.append(-1)
            else:
                stdio.append(stdin if isinstance(stdin, int) else stdin.fileno())
            for which, target in ((1, stdout), (2, stderr)):
                if target is PIPE:
                    stdio.append(-1)
                elif target is INHERIT:
                    stdio.append(which)
                elif target is DEVNULL or target is None:
                    stdio.append(_devnull_fd())
                else:
                    stdio.append(target if isinstance(target, int) else target.fileno())

            ids = None
            if self.user is not None:
                ids = (self.user[0], self.user[1], self.user[2])
            notifier = None
            if self.notify_program is not None:
                try:
                    notifier = _core.Notifier(self.filter.program, self.log_records,
                                              keys=self.notify_keys)
                    if self._notify_answer_delay_ns:
                        notifier.set_answer_delay(self._notify_answer_delay_ns)
                except OSError as e:
                    return self._setup_error(argv, limits, "seccomp-listener",
                                             "cannot supervise notifications: %s" % e, e.errno)
            klog = klog_reason = None
            if self.kernel_log:
                try:
                    klog = auditlog.KernelLog.open(follow=True)
                except auditlog.KernelLogUnavailable as e:
                    klog_reason = str(e)
            if via_zygote and cwd is None:
                cwd = os.getcwd()  # the zygote's is the one we had when it started
            # (os.fsencode, without a call of it per argument)
            enc = _FS_ENCODING
            args = (exe.encode(enc, "surrogateescape"),
                    [a.encode(enc, "surrogateescape") for a in argv], self._envp(envmap),
                    cwd.encode(enc, "surrogateescape") if cwd is not None else None, stdio)
            kw = dict(umask=self.umask if self.umask is not None else -1,
                      rlimits=self._rlimits(limits, cg),
                      cgroup_fds=list(cg.procs_fds) if cg else [], ids=ids, caps=self.caps_mask,
                      last_cap=_LAST_CAP, pdeathsig=self.pdeathsig)
            # what the supervision enforces and reads (own_pidns: see cg_events_fd below)
            watch_kw = dict(output_limit=limits.output or 0,
                            wall_limit_ns=_ns(limits.effective_wall()), **_cgroup_watch(cg, limits))
            # a RunSlots' slot is taken by the zygote, in a zygote of this thread's own
            # (where its request may wait); else a zygote only once the slot is ours: never
            # wait for a slot holding a zygote another thread may need
            slots = run_slot if isinstance(run_slot, runslots.RunSlots) and via_zygote else None
            if run_slot is not None and slots is None:
                if not _take_slot(run_slot):
                    return self._slot_stopped(argv, limits, "direct")
                slot_held = True
            if via_zygote:
                zy = self._thread_zygote() if slots is not None else self._take_zygote()
            else:
                zy = None
            zygote_holds_slot = False
            start = _core.now_ns()
            if notifier is not None:
                notifier.set_start(start)
            status_fd = -1
            match = None  # the kernel log's match of the run's records
            ran = None   # (pid, start, cancelled, raw) of a run through a zygote
            # which start is tried: Result.spawn_path, also of a SETUP_ERROR
            spawn_path = "zygote" if zy is not None else None
            try:
                if zy is not None:
                    # (the zygote's PID namespace, if any, is not the run's own)
                    ran = self._zygote_run(zy, args, kw, slots, in_data, dict(
                        watch_kw, cg_events_fd=cg.events_fd if cg else -1))
                    if ran is not None:
                        zygote_holds_slot = slots is not None
                if ran is None:
                    if run_slot is not None and not slot_held:
                        # (a RunSlots, for a start of our own after all)
                        if not _take_slot(run_slot):
                            return self._slot_stopped(argv, limits, "direct")
                        slot_held = True
                    spawn_path = None
                    own_pidns = self.pid_namespace  # (the zygote may have been given up)
                    if via_zygote and cg is None and self.use_cgroup and self.is_root \
                            and not own_pidns:
                        cg = _make_cgroup(limits)  # what the zygote would have contained
                        kw["cgroup_fds"] = list(cg.procs_fds) if cg else []
                        watch_kw.update(_cgroup_watch(cg, limits))
                    in_fd, out_r, err_r = _pipes(stdio, to_close)
                    spawner = self._spawner.get() if (self._spawner is not None
                                                      and not own_pidns) else None
                    if spawner is not None:
                        spawn_path = "spawner-thread"
                        try:
                            pid, pidfd, status_fd = _core.spawn(*args, **kw, spawner=spawner)
                            # released once reaped: its pdeathsig follows that thread
                            spawned_by = spawner
                        except _core.SpawnerGone:
                            self._spawner.forget()
                            spawn_path = None
                if spawn_path is None:
                    spawn_path = "direct"
                    pid, pidfd, status_fd = _core.spawn(
                        *args, **kw,
                        program=(self.notify_program or self.filter.program) if self.filter
                        else None,
                        filter_flags=self.filter_flags, new_pidns=own_pidns,
                        new_userns=own_pidns and self.user_namespace,
                        init_exe=_INIT_EXE if own_pidns else None,
                        notifier=notifier, notify_share_vm=self.is_root,
                        landlock_fd=landlock_fd,
                        # the kernel backend tells the run's audit records by a session of
                        # its own
                        loginuid=(self.user[0] if self.user else os.getuid()) if klog else None)
            except _core.SpawnError as e:
                if klog is not None:
                    klog.close()
                return self._setup_error(argv, limits, e.stage,
                                         _spawn_message(e, exe, cwd, landlock_fd >= 0), e.errno,
                                         spawn_path)
            except _core.ZygoteError as e:
                return self._setup_error(
                    argv, limits, "zygote", "the zygote died while starting the command (it "
                    "may have started and been killed): %s" % e, e.errno, spawn_path)
            if ran is not None:
                pid, start, cancelled, raw = ran
            else:
                watching = False
                try:
                    match = auditlog.RunMatch(start, auditlog.run_session(pid), {pid}) \
                        if klog else None
                    for fd in to_close:
                        os.close(fd)
                    to_close = []
                    if pidfd >= 0:
                        _core.running_add(pidfd)
                    watching = True
                    raw = _core.watch(
                        pid, pidfd, pid, status_fd=status_fd, in_fd=in_fd, in_data=in_data,
                        out_fd=out_r, err_fd=err_r, start_ns=start,
                        # in a PID namespace, reaping pid 1 means the kernel already emptied it
                        cg_events_fd=cg.events_fd if (cg and not own_pidns) else -1,
                        notifier=notifier, **watch_kw)
                except BaseException:
                    # watch() itself failed (it kills and reaps on a signal), or something
                    # before it did: never leave the child running unsupervised or unreaped
                    _kill_and_reap(pid)
                    raise
                finally:
                    if watching:
                        in_fd = out_r = err_r = -1  # closed by watch
                    elif status_fd >= 0:
                        to_close.append(status_fd)
                    if slot_held:
                        run_slot.release()  # the command has ended: the next one may start
                        slot_held = False
                    cancelled = False
                    if pidfd >= 0:
                        if watching:
                            cancelled = _core.running_remove(pidfd)
                        os.close(pidfd)
            if raw["report_lost"]:
                if zygote_holds_slot:
                    run_slot.release()   # the zygote died holding it
                return self._setup_error(
                    argv, limits, "zygote", "the zygote died while the command ran (it was "
                    "killed; its exit status is unknown)", 0, spawn_path)
            stats = cg.stats() if cg else {}
            log = notify.seccomp_log(notifier.report()) if notifier is not None else None
            if klog is not None:
                try:
                    log = syscall_log.kernel_seccomp_log(klog.collect(match), self.log_records)
                finally:
                    klog.close()
            elif klog_reason is not None:
                log = syscall_log.kernel_seccomp_log(auditlog.unavailable(klog_reason))
            syscall_report.emit_logging(log, argv)
            result = self._verdict(argv, limits, pid, raw, cg, stats, own_pidns,
                                   capture_out=stdout is PIPE, capture_err=stderr is PIPE,
                                   log=log, spawn_path=spawn_path)
            result.cancelled = bool(cancelled)
            if result.verdict == "SECCOMP_KILLED" and not result.killed_by:
                self._name_the_kill(result, start, exe)
            return result
        finally:
            if spawned_by is not None:
                spawned_by.release()
            if slot_held:
                run_slot.release()
            for fd in to_close + [x for x in (in_fd, out_r, err_r) if x >= 0]:
                try:
                    os.close(fd)
                except OSError:
                    pass
            if cg is not None:
                cg.close()

    def _name_the_kill(self, result: Result, start: int, exe: str) -> None:
        """A kill without denial reports: name the call from the kernel's audit record of it,
        when the kernel log still holds one (the Result's killed_by says how it was found)."""
        rec = auditlog.find_kill(start, {result.pid}, os.path.realpath(exe))
        if rec is None:
            return
        if result.seccomp_log is None:
            result.seccomp_log = syscall_log.kernel_seccomp_log(auditlog.unavailable(
                "only the kill was looked up in the kernel log"))
        result.seccomp_log["killed_by"] = rec

    def _slot_stopped(self, argv, limits, spawn_path) -> Result:
        return self._setup_error(argv, limits, "slot", _SLOT_STOPPED, _errno.ECANCELED,
                                 spawn_path)

    def _zygote_run(self, zy, args, kw, slots, in_data, watch_kw):
        """Run through zy (from _take_zygote or _thread_zygote, given back here), started once
        the zygote took a slot (RunSlots), if given: (pid, start_ns, cancelled, raw). Through
        another zygote when zy was found dead before it took the request; None: start it
        directly after all (the request does not fit a message, or no zygote can start)."""
        for attempt in (1, 2):
            try:
                return zy.run(*args, **kw, zygote_slot=slots.fds if slots is not None else None,
                              in_data=in_data, **watch_kw)
            except _core.ZygoteError as e:
                if e.sent:
                    raise
                if e.errno in (_errno.E2BIG, _errno.EMSGSIZE):
                    return None
            zy = None if attempt == 2 else (
                self._thread_zygote() if slots is not None else self._take_zygote())
            if zy is None:
                return None

    def _verdict(self, argv, limits, pid, raw, cg, stats, own_pidns, capture_out,
                 capture_err, log=None, spawn_path="direct") -> Result:
        status = raw["status"]
        exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        cpu_rusage = raw["utime"] + raw["stime"]
        cg_cpu = raw["cg_cpu_ns"]
        cpu_time = cg_cpu / 1e9 if cg_cpu >= 0 else cpu_rusage
        peak = stats.get("memory_peak")
        memory_source = cg.memory_method if (cg and cg.memory_method and peak is not None) \
            else "rusage"
        if memory_source == "rusage":
            # vfork: the child's max RSS starts at ours (the kernel records the shared mm's
            # high-water mark at execve), so it is only an upper bound of the program's own
            peak = raw["maxrss_kb"] * 1024
            memory_source = "rusage-upper-bound"
        verdict, kind = "OK", None
        if raw["output_exceeded"]:
            verdict = "OUTPUT_LIMIT"
        elif raw["wall_exceeded"]:
            verdict, kind = "TIME_LIMIT", "wall"
        elif raw["cpu_exceeded"] or sig == signal.SIGXCPU or (
                limits.cpu_time is not None and cpu_time > limits.cpu_time):
            # (also a run that finished: without a cgroup the limit is RLIMIT_CPU, in whole
            # seconds, so a 0.2 s limit lets a run use up to a second and end by itself)
            verdict, kind = "TIME_LIMIT", "cpu"
        elif stats.get("oom_kills", 0) > 0 or (
                limits.memory is not None and memory_source == "rusage-upper-bound"
                and (sig is not None or exit_code != 0)
                and any(m in (raw["stderr"] or b"")[-4096:] for m in _OOM_MESSAGES)):
            # the cgroup saw an OOM kill; or, under RLIMIT_AS only, the program failed saying
            # an allocation failed (rusage cannot tell: see Result.memory_source)
            verdict = "MEMORY_LIMIT"
        elif sig == _SIGSYS or (sig == signal.SIGKILL and log and log["killed_by"]):
            # the kernel's SIGSYS, or the supervisor's SIGKILL for a KILL action it answered
            # while reporting denials
            verdict = "SECCOMP_KILLED"
        elif sig is not None:
            verdict = "SIGNALED"
        elif exit_code != 0:
            verdict = "NONZERO_EXIT"
        return self._result(
            argv, limits, verdict=verdict, exit_code=exit_code, signal=sig, time_limit_kind=kind,
            wall_time=raw["wall_ns"] / 1e9, cpu_user=raw["utime"], cpu_system=raw["stime"],
            cpu_time=cpu_time, cpu_source="cgroup" if cg_cpu >= 0 else "rusage",
            peak_memory=peak, memory_source=memory_source,
            stdout=raw["stdout"] if capture_out else None,
            stderr=raw["stderr"] if capture_err else None,
            stdout_truncated=raw["stdout_truncated"], stderr_truncated=raw["stderr_truncated"],
            pid=pid, seccomp_log=log, spawn_path=spawn_path,
            # a zygote's job: in the zygote's namespace, if any, and its leftovers swept by it
            pid_namespace=self.pid_namespace if spawn_path == "zygote" else own_pidns,
            containment="pid-namespace" if own_pidns else (
                "cgroup" if (cg and cg.kill_fd >= 0 and raw["tree_empty"]) else
                "zygote-subreaper" if spawn_path == "zygote" else "process-group"))


_SLOT_STOPPED = "not started: the batch was stopped while the command waited for a slot"


def _arg(value, index: int) -> str:
    """An argument that is not a str: bytes or a path, as subprocess takes them."""
    if isinstance(value, (bytes, os.PathLike)):
        return os.fsdecode(value)
    raise TypeError("argv[%d] must be a string, bytes or a path, not %s (%r)"
                    % (index, type(value).__name__, value))


def _pipes(stdio: list, to_close: list) -> tuple:
    """Make the pipes stdio asks for (-1 entries, see _spawn_and_watch): the command's ends
    go into stdio and to_close (closed once it has its copies); ours come back as (stdin's
    write end, stdout's read end, stderr's read end), -1 where there is none."""
    ours = [-1, -1, -1]
    try:
        for i in range(3):
            if stdio[i] == -1:
                r, w = os.pipe2(os.O_CLOEXEC)
                theirs, ours[i] = (r, w) if i == 0 else (w, r)
                to_close.append(theirs)
                stdio[i] = theirs
    except OSError:
        for fd in ours:
            if fd >= 0:
                os.close(fd)
        raise
    return tuple(ours)


def _take_slot(run_slot) -> bool:
    """run_slot.acquire(); False when a RunSlots was stopped meanwhile."""
    try:
        run_slot.acquire()
        return True
    except runslots.SlotsStopped:
        return False


_NS_MAX = 2**62


def _ns(seconds) -> int:
    """Nanoseconds for the C supervisor; 0 means no limit, absurdly long limits are clamped."""
    if not seconds:
        return 0
    return min(int(seconds * 1e9), _NS_MAX)


def _kill_and_reap(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


# What programs print when an allocation fails under RLIMIT_AS (no cgroup to tell us).
_OOM_MESSAGES = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc",
                 b"out of memory", b"Out of memory", b"OutOfMemoryError", b"memory exhausted",
                 b"failed to allocate", b"mmap failed")


def _spawn_message(e, exe, cwd, landlocked=False) -> str:
    err = e.errno
    if e.stage == "execve":
        if err == _errno.ENOENT:
            return "%s: no such file (or its interpreter is missing)" % exe
        if err == _errno.EACCES:
            return "%s: permission denied (not executable, a noexec mount%s)" % (
                exe, ", or not beneath the Landlock paths (fs_ro / fs_rw)" if landlocked else "")
        if err == _errno.ENOEXEC:
            return "%s: not an executable format" % exe
        if err == _errno.EPERM:
            return "%s: execve was refused (EPERM): the seccomp profile denies it" % exe
        return "%s: execve failed: %s" % (exe, os.strerror(err))
    if e.stage == "slot":
        if err == _errno.ECANCELED:
            return _SLOT_STOPPED
        return ("the batch's slot pipe failed (%s): not started, so as not to run more "
                "commands at once than asked" % os.strerror(err))
    if e.stage == "chdir":
        return "cannot change directory to %s: %s" % (cwd, os.strerror(err))
    if e.stage == "userns":
        return ("setting up the run's user namespace failed: %s (pid_namespace=False runs "
                "without one, contained by its process group only)" % os.strerror(err))
    if e.stage == "seccomp":
        return "installing the seccomp filter failed: %s" % os.strerror(err)
    if e.stage == "landlock":
        return "applying the Landlock ruleset failed: %s" % os.strerror(err)
    if e.stage == "seccomp-listener":
        return ("could not take the seccomp notification listener from the child (%s): the "
                "supervisor needs ptrace access to it for pidfd_getfd (Linux 5.6+; see "
                "kernel.yama.ptrace_scope, or run as root); log_backend='kernel' or 'none' and no "
                "report_denials avoid the listener" % os.strerror(err))
    if err == _errno.EPERM and e.stage in _NEEDS_PRIVILEGE:
        return ("child set-up failed at %s: %s (%s needs root or CAP_SYS_ADMIN/CAP_SETUID; "
                "run as root, or drop the option)" % (e.stage, os.strerror(err),
                                                     _NEEDS_PRIVILEGE[e.stage]))
    return "child set-up failed at %s: %s" % (e.stage, os.strerror(err))


# Set-up stages that fail with EPERM when the supervisor lacks the privilege for an option.
_NEEDS_PRIVILEGE = {
    "setgroups": "--user", "setgid": "--user", "setuid": "--user",
    "capability-bounding-set": "dropping capabilities", "capabilities": "--caps",
    "mount-proc": "a PID namespace", "fork": "a PID namespace", "cgroup": "joining a cgroup",
}


_cgroups_mod = None
_cgroups_lock = threading.Lock()


def _cgroup_watch(cg, limits: Limits) -> dict:
    """What the supervision enforces and reads from a run's cgroup (none: cg is None)."""
    if cg is None:
        return dict(cpu_limit_ns=0, cg_cpu_fd=-1, cg_kill_fd=-1, cpu_base_ns=0)
    return dict(cpu_limit_ns=_ns(limits.cpu_time) if cg.cpu_stat_fd >= 0 else 0,
                cg_cpu_fd=cg.cpu_stat_fd, cg_kill_fd=cg.kill_fd,
                cpu_base_ns=cg.cpu_base_usec * 1000)


def _make_cgroup(limits: Limits):
    """A RunCgroup for this run, or None when cgroups are unavailable here."""
    global _cgroups_mod
    if _cgroups_mod is None:
        with _cgroups_lock:
            try:
                from . import cgroups as mod
            except ImportError:
                mod = False
            _cgroups_mod = mod
    if not _cgroups_mod:
        return None
    return _cgroups_mod.RunCgroup.create(memory_limit=limits.memory,
                                         pids_limit=limits.processes)


_default_sandboxes: dict = {}
_default_lock = threading.Lock()


def run(argv: Sequence[str], profile="default", *, stdin=None, stdout=PIPE, stderr=PIPE,
        timeout=None, cpu_time=None, memory=None, output_limit=None, processes=None,
        file_size=None, open_files=None, stack=None, env=None, cwd=None, user=None,
        caps=None, fs_ro=None, fs_rw=None, fs_unrestricted=False,
        allow_no_landlock=False) -> Result:
    """Run one command under a profile (compiled once per profile and settings, then cached).
    fs_ro / fs_rw / fs_unrestricted / allow_no_landlock: as for Sandbox."""
    options = dict(user=user, caps=caps, fs_unrestricted=fs_unrestricted,
                   allow_no_landlock=allow_no_landlock)
    if isinstance(profile, (str, os.PathLike, type(None))):
        key = (os.fspath(profile) if profile is not None else None, user, caps,
               bool(fs_unrestricted), bool(allow_no_landlock))
        with _default_lock:
            sb = _default_sandboxes.get(key)
        if sb is None:
            sb = Sandbox(profile, **options)
            with _default_lock:
                _default_sandboxes[key] = sb
    else:  # a dict or a Policy: compiled through compile_policy's digest cache
        sb = Sandbox(profile, **options)
    return sb.run(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd,
                  cpu_time=cpu_time, timeout=timeout, memory=memory, output_limit=output_limit,
                  processes=processes, file_size=file_size, open_files=open_files, stack=stack,
                  fs_ro=fs_ro, fs_rw=fs_rw)

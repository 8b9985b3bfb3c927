"""Per-run cgroups: containment of the whole process tree, whole-tree CPU accounting, memory and
process-count limits.

Layout. Under the calling process's own cgroup in each hierarchy used, one parent directory
``seccomp-sandbox`` (created once per process, exist_ok) and one directory per run
``run-<pid>-<n>``::

    <cgroup2 mount>/<own v2 path>/seccomp-sandbox/run-<pid>-<n>   kill, cpu, events (+memory, pids)
    <v1 memory mount>/<own path>/seccomp-sandbox/run-<pid>-<n>    memory limit, when v2 cannot
    <v1 pids mount>/<own path>/seccomp-sandbox/run-<pid>-<n>      pids limit, when v2 cannot

The child joins every run directory by writing "0" to each of ``procs_fds`` before execve
(csrc/spawn.c); the supervisor (csrc/watch.c) uses ``kill_fd``, ``cpu_stat_fd`` and ``events_fd``.

Choice of mechanism, per limit: cgroup v2 when the controller can be enabled in the parent's
``cgroup.subtree_control``, else cgroup v1 when that controller is mounted and writable, else none
(``memory_method`` / ``pids_method`` is None and the runner falls back to rlimits). A v1 directory
is created only for a requested limit, except that without any usable v2 hierarchy one v1
directory (pids, else freezer) is still created so that kill() reaches a run's whole tree.

Cost. capabilities() is probed once per process and cached. A new run cgroup is one mkdir per
hierarchy used plus one open per fd handed out and open/write/close per limit file; removing it
is the fd closes and one rmdir per directory. Both are avoided by reuse:

Reuse. close() returns a run cgroup to a per-process pool instead of removing it when it is
provably clean: the v2 dir reports ``populated 0`` and ``frozen 0``, every v1 dir lists no pid
in cgroup.procs, no dir has a child cgroup (st_nlink == 2), the memory still charged to it
(page cache, tmpfs files the run left) is at most POOL_MAX_CHARGE, and every fd it holds still
refers to the file it was opened on (fstat dev/ino). Otherwise it is removed as before.
create() takes an idle cgroup with the needed dirs from the pool (LIFO: the same thread gets
the same dir back) and only writes a memory/pids limit whose value differs from the one the
cgroup holds ("max"/-1 when the run has no such limit). Everything a run reports is per run:
``cpu_base_usec`` is cpu.stat usage_usec when the cgroup was handed out (stats() subtracts it;
the C supervisor must subtract it too), the v2 memory.peak is reset through a private fd
(kernels >= 6.12; a v2 memory cgroup whose memory.peak cannot be reset is never reused), the v1
memory.max_usage_in_bytes is reset to the current usage by writing 0, and the oom_kill / max /
failcnt / pids max counters are differences against their values at hand-out (read then, or
carried over from the previous run's last read once its tree was gone when cpu.stat shows that
no task ran in the cgroup since). At most POOL_MAX idle
cgroups are kept per shape (which dirs and limit files exist); POOL_MAX = 0 disables reuse.
The pool is emptied (rmdir) at exit (atexit, and multiprocessing's finalizers in forked
workers), by drain_pool(), remove_parents() and capabilities(refresh=True); a forked child
starts with an empty pool and never reuses nor removes its parent's idle cgroups. A process
killed outright leaves its idle dirs behind: they are empty, and another process's probe
sweeps them (see STALE_AGE_S).

Caveat of reuse: a job that can write to its own cgroup's files (uid 0 without a mount
namespace: root owns them, mode 0644) could already change its own limits; with reuse a change
that close() does not check (e.g. v1 memory.oom_control) would also apply to later runs.

Failure. Environmental errors (no cgroup fs, EACCES, EROFS, ENOENT, EBUSY, EOPNOTSUPP, ...) never
raise from capabilities(), create(), stats(), kill() or close(): the feature degrades (None /
method None / ``leftover``). Programming errors (bad limit values) raise.

Pure cgroup v2 caveat: the kernel enables a controller in a child only when the parent has no
processes of its own (except at the root). A runner that sits in a non-root cgroup with other
processes (a systemd session scope, a container's namespace root) therefore gets kill/cpu/events
but no v2 memory or pids limit unless it is started in a leaf of a delegated subtree whose parent
already enables those controllers (then ``seccomp-sandbox`` sees them in cgroup.controllers).
"""
from __future__ import annotations

import atexit
import errno
import itertools
import os
import re
import select
import signal
import sys
import threading
import time

__all__ = ["PARENT_NAME", "RunCgroup", "capabilities", "drain_pool", "remove_parents"]

PARENT_NAME = "seccomp-sandbox"
WAIT_EMPTY_S = 2.0            # close(): how long to wait for the tree to die before giving up
STALE_AGE_S = 60.0            # run dirs of dead processes older than this are swept (rmdir only)
POOL_MAX = 2 * (os.cpu_count() or 1) + 2    # idle cgroups kept per shape; 0: no reuse
POOL_MAX_CHARGE = 2 << 20     # bytes still charged to a run's memory cgroup that allow reuse

# paths read at probe time (tests point these at fakes)
_MOUNTINFO = "/proc/self/mountinfo"
_PROC_CGROUP = "/proc/self/cgroup"

_O_W = os.O_WRONLY | os.O_CLOEXEC
_O_R = os.O_RDONLY | os.O_CLOEXEC
_V1_CONTROLLERS = ("memory", "pids", "freezer")


# --------------------------------------------------------------------------------------------
# small file helpers: raw os calls, no buffering layers (each is open + read/write + close)

def _read(path: str, size: int = 8192) -> str | None:
    """Text of a small cgroup file (one read), or None when it cannot be read."""
    try:
        fd = os.open(path, _O_R)
    except OSError:
        return None
    try:
        return os.read(fd, size).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_all(path: str) -> str | None:
    """Whole text of a file of any length (cgroup.procs, mountinfo), or None."""
    try:
        fd = os.open(path, _O_R)
    except OSError:
        return None
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                return b"".join(chunks).decode("ascii", "replace")
            chunks.append(b)
    except OSError:
        return None
    finally:
        os.close(fd)


def _write(path: str, data: str) -> int:
    """Write data to a cgroup file; 0 on success, else the errno."""
    try:
        fd = os.open(path, _O_W)
    except OSError as e:
        return e.errno or errno.EIO
    try:
        os.write(fd, data.encode())
        return 0
    except OSError as e:
        return e.errno or errno.EIO
    finally:
        os.close(fd)


def _open(path: str, flags: int) -> int:
    try:
        return os.open(path, flags)
    except OSError:
        return -1


def _close(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def _keyed(text: str | None) -> dict:
    """'key value' lines (memory.events, pids.events, oom_control, cpu.stat) -> {key: int}."""
    out = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def _pids(text: str | None) -> list[int]:
    return [int(x) for x in (text or "").split() if x.isdigit()]


def _mkdir_exist_ok(path: str) -> bool:
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    except OSError:
        return False
    return True


def _writable_dir(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


# --------------------------------------------------------------------------------------------
# probing: where are the hierarchies, where is this process, what can it do there

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(s: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), s)


def _parse_mountinfo(text: str):
    """-> (v2 mounts [(mountpoint, root)], v1 mounts {controller: [(mountpoint, root)]})."""
    v2, v1 = [], {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        f, r = left.split(), right.split()
        if not sep or len(f) < 5 or len(r) < 3:
            continue
        root, mnt = _unescape(f[3]), _unescape(f[4])
        if r[0] == "cgroup2":
            v2.append((mnt, root))
        elif r[0] == "cgroup":
            for opt in r[2].split(","):
                if opt in _V1_CONTROLLERS:
                    v1.setdefault(opt, []).append((mnt, root))
    return v2, v1


def _parse_proc_cgroup(text: str):
    """-> (own v2 path or None, {v1 controller: own path})."""
    v2, v1 = None, {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, ctrls, path = parts
        if hid == "0" and ctrls == "":
            v2 = path
        else:
            for c in ctrls.split(","):
                v1[c] = path
    return v2, v1


def _own_dir(mounts, path: str | None):
    """(directory of this process's cgroup `path` under one of `mounts`, that mount point),
    or (None, None)."""
    if path is None or not path.startswith("/"):
        return None, None
    for mnt, root in mounts:
        if root == "/":
            rel = path
        elif path == root or path.startswith(root + "/"):
            rel = path[len(root):]
        else:
            continue
        if "/../" in rel + "/":      # outside this mount (cgroup namespace seen from outside)
            continue
        d = os.path.join(mnt, rel.lstrip("/")).rstrip("/") or "/"
        if os.path.isdir(d):
            return d, mnt
    return None, None


class _Caps:
    """What this process can use; probed once (see capabilities())."""

    def __init__(self):
        self.v2_mount = None        # cgroup2 mount point
        self.v2_own = None          # this process's v2 cgroup dir
        self.v2_parent = None       # <v2_own>/seccomp-sandbox, usable
        self.v2_kill = False
        self.v2_cpu = False
        self.v2_ctrl = frozenset()  # controllers enabled in v2_parent/cgroup.subtree_control
        self.v2_swap = False        # memory.swap.max exists
        self.v2_peak = False        # memory.peak exists
        self.v2_peak_reset = False  # memory.peak is writable (fd-local reset, kernel >= 6.12)
        self.gen = 0                # probe generation (idle pooled cgroups of another are stale)
        self.v1_own = {}            # controller -> own dir
        self.v1 = {}                # controller -> usable parent dir
        self.v1_memsw = False       # memory.memsw.limit_in_bytes exists
        self.v1_oom_kill = False    # memory.oom_control has an oom_kill counter
        self.v1_tree = None         # v1 controller used for containment when there is no v2

    def as_dict(self) -> dict:
        mem = "v2" if "memory" in self.v2_ctrl else "v1" if "memory" in self.v1 else None
        pids = "v2" if "pids" in self.v2_ctrl else "v1" if "pids" in self.v1 else None
        return {
            "v2_root": self.v2_mount if self.v2_parent else None,
            "kill": self.v2_kill,
            "cpu": self.v2_cpu,
            "memory": mem,
            "pids": pids,
            # extras, for diagnostics
            "tree": "v2" if self.v2_parent else ("v1-" + self.v1_tree) if self.v1_tree else None,
            "parents": {k: v for k, v in [("v2", self.v2_parent)] + sorted(self.v1.items()) if v},
        }


_caps_lock = threading.Lock()
_caps: _Caps | None = None
_caps_gen = 0
_name_lock = threading.Lock()
_counter = itertools.count()
_pid = os.getpid()
_atexit_pid = None

# the pool of idle run cgroups: {key: [RunCgroup, ...]} (see RunCgroup._key), LIFO per key
_pool_lock = threading.Lock()
_pool: dict = {}
_pool_exiting = False
_mp_hook_pid = None


def _after_fork_in_child():
    global _caps_lock, _name_lock, _pid, _counter, _pool_lock, _pool
    _caps_lock = threading.Lock()
    _name_lock = threading.Lock()
    _pid = os.getpid()
    _counter = itertools.count()
    # The parent's idle cgroups stay the parent's: forget them (closing only this process's
    # copies of their fds; no rmdir) so that this child neither reuses nor removes them.
    _pool_lock = threading.Lock()
    idle, _pool = _pool, {}
    for runs in idle.values():
        for cg in runs:
            cg._closed = True
            for fd in cg._fds():
                _close(fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _next_name() -> str:
    with _name_lock:
        n = next(_counter)
    return "run-%d-%d" % (_pid, n)


def _setup_v2_parent(c: _Caps) -> bool:
    """(Re)create the v2 parent and enable memory/pids in its subtree_control. Updates c."""
    parent = os.path.join(c.v2_own, PARENT_NAME)
    if not _mkdir_exist_ok(parent) or not _writable_dir(parent):
        return False
    avail = set((_read(parent + "/cgroup.controllers") or "").split())
    missing = [x for x in ("memory", "pids") if x not in avail]
    if missing and c.v2_own == c.v2_mount:
        # At the hierarchy root (exempt from the no-internal-processes rule) a controller that
        # the root offers can be enabled for its children; elsewhere this would only EBUSY.
        offered = set((_read(c.v2_own + "/cgroup.controllers") or "").split())
        for x in missing:
            if x in offered:
                _write(c.v2_own + "/cgroup.subtree_control", "+" + x)
        avail = set((_read(parent + "/cgroup.controllers") or "").split())
    enabled = set((_read(parent + "/cgroup.subtree_control") or "").split())
    for x in ("memory", "pids"):
        if x in avail and x not in enabled:
            # one write per controller: one unavailable name fails the whole write
            if _write(parent + "/cgroup.subtree_control", "+" + x) == 0:
                enabled.add(x)
    c.v2_ctrl = frozenset(enabled & {"memory", "pids"})
    c.v2_swap = "memory" in c.v2_ctrl and os.path.exists(parent + "/memory.swap.max")
    c.v2_peak = "memory" in c.v2_ctrl and os.path.exists(parent + "/memory.peak")
    try:
        c.v2_peak_reset = c.v2_peak and bool(os.stat(parent + "/memory.peak").st_mode & 0o200)
    except OSError:
        c.v2_peak_reset = False
    c.v2_parent = parent
    return True


def _setup_v1_parent(c: _Caps, ctrl: str) -> bool:
    parent = os.path.join(c.v1_own[ctrl], PARENT_NAME)
    if not _mkdir_exist_ok(parent) or not _writable_dir(parent):
        return False
    if ctrl == "memory":
        if not os.path.exists(parent + "/memory.limit_in_bytes"):
            return False
        c.v1_memsw = os.path.exists(parent + "/memory.memsw.limit_in_bytes")
        c.v1_oom_kill = "oom_kill" in _keyed(_read(parent + "/memory.oom_control"))
    elif ctrl == "pids" and not os.path.exists(parent + "/pids.max"):
        return False
    c.v1[ctrl] = parent
    return True


def _sweep(parent: str) -> None:
    """rmdir run dirs left behind by processes that no longer exist (never kills anything)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    now = time.time()
    for name in names:
        m = re.match(r"run-(\d+)-\d+$", name)
        if not m or int(m.group(1)) == _pid or os.path.exists("/proc/" + m.group(1)):
            continue
        path = os.path.join(parent, name)
        try:
            if now - os.stat(path).st_mtime > STALE_AGE_S:
                os.rmdir(path)
        except OSError:
            pass


def _probe() -> _Caps:
    c = _Caps()
    mounts_v2, mounts_v1 = _parse_mountinfo(_read_all(_MOUNTINFO) or "")
    own_v2, own_v1 = _parse_proc_cgroup(_read_all(_PROC_CGROUP) or "")
    c.v2_own, c.v2_mount = _own_dir(mounts_v2, own_v2)
    if c.v2_own and _setup_v2_parent(c):
        if os.path.exists(c.v2_parent + "/cgroup.events"):
            c.v2_kill = os.path.exists(c.v2_parent + "/cgroup.kill")
            c.v2_cpu = os.path.exists(c.v2_parent + "/cpu.stat")
        else:                                   # not a usable v2 (cannot happen on >= 4.5)
            c.v2_parent, c.v2_ctrl = None, frozenset()
    for ctrl in _V1_CONTROLLERS:
        c.v1_own[ctrl] = _own_dir(mounts_v1.get(ctrl, ()), own_v1.get(ctrl))[0]
    for ctrl in ("memory", "pids"):
        if ctrl not in c.v2_ctrl and c.v1_own[ctrl]:
            _setup_v1_parent(c, ctrl)
    if not c.v2_parent:
        # no v2: one v1 hierarchy keeps the run's tree (for kill) even without limits
        if "pids" in c.v1:
            c.v1_tree = "pids"
        elif c.v1_own["freezer"] and _setup_v1_parent(c, "freezer"):
            c.v1_tree = "freezer"
    for parent in [c.v2_parent] + list(c.v1.values()):
        if parent:
            _sweep(parent)
    return c


def _get_caps(refresh: bool = False) -> _Caps:
    global _caps, _atexit_pid, _caps_gen
    c = _caps
    if c is not None and not refresh:
        return c
    with _caps_lock:
        if _caps is None or refresh:
            try:
                new = _probe()
            except OSError:
                new = _Caps()
            _caps_gen += 1
            new.gen = _caps_gen
            _caps = new
            if _atexit_pid is None and (_caps.v2_parent or _caps.v1):
                _atexit_pid = os.getpid()
                atexit.register(_remove_parents_at_exit)
        c = _caps
    if refresh:
        drain_pool(stale_only=True)     # made under the previous probe's view
    return c


def capabilities(refresh: bool = False) -> dict:
    """What this machine offers to this process (probed once, cached; refresh=True re-probes):

    {"v2_root": cgroup2 mount point when a run dir can be made there, else None,
     "kill": v2 cgroup.kill usable, "cpu": v2 cpu.stat usable,
     "memory": "v2" | "v1" | None, "pids": "v2" | "v1" | None,
     "tree": "v2" | "v1-pids" | "v1-freezer" | None (what keeps a run's whole tree),
     "parents": {"v2"|controller: the seccomp-sandbox parent dir used}}

    Probing creates the seccomp-sandbox parent dirs (removed again at exit when idle).
    """
    return _get_caps(refresh).as_dict()


def remove_parents() -> list[str]:
    """Empty the pool of idle run cgroups (drain_pool()), then best-effort rmdir of this
    process's seccomp-sandbox parent dirs (fails harmlessly while any run dir exists in them).
    Returns the dirs removed. A later create() recreates them."""
    drain_pool()
    c = _caps
    removed = []
    if c is None:
        return removed
    for parent in [c.v2_parent] + list(c.v1.values()):
        if parent:
            try:
                os.rmdir(parent)
                removed.append(parent)
            except OSError:
                pass
    return removed


def _remove_parents_at_exit():
    _drain_at_exit()
    if os.getpid() == _atexit_pid:
        remove_parents()


# --------------------------------------------------------------------------------------------
# the pool of idle run cgroups

def drain_pool(stale_only: bool = False) -> int:
    """Remove this process's idle pooled run cgroups (fd closes + rmdir); with stale_only, only
    those made under an earlier probe. Returns how many were removed. Cgroups in use are not
    touched (they go back to the pool, or away, at their close())."""
    gen = _caps.gen if _caps is not None else None
    taken = []
    with _pool_lock:
        for key in list(_pool):
            if not stale_only or key[0] != gen:
                taken.extend(_pool.pop(key))
    deadline = time.monotonic() + WAIT_EMPTY_S
    for cg in taken:
        cg._closed = True
        cg._destroy(deadline)
    return len(taken)


def _drain_at_exit():
    global _pool_exiting
    _pool_exiting = True            # a close() from here on removes its cgroup
    drain_pool()


atexit.register(_drain_at_exit)     # (also inherited by forked children, whose pool it empties)


def _hook_multiprocessing():
    """Forked multiprocessing workers leave through os._exit (no atexit) after running
    multiprocessing's own finalizers: empty the pool there too."""
    global _mp_hook_pid
    pid = os.getpid()
    if _mp_hook_pid == pid:
        return
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        _mp_hook_pid = pid
        try:
            util.Finalize(None, drain_pool, exitpriority=0)
        except Exception:
            pass


def _natural_tree(c: _Caps):
    return "v2" if c.v2_parent else c.v1_tree


def _pool_take(c: _Caps, mem_need, pids_need) -> "RunCgroup | None":
    """Pop an idle cgroup that can serve a run needing memory/pids limit kinds mem_need /
    pids_need ("v2", "v1" or None); an exact shape before one with more dirs than needed."""
    head = (c.gen, _natural_tree(c), bool(c.v2_parent and c.v2_kill),
            bool(c.v2_parent and c.v2_cpu))
    best, best_extra = None, 3
    with _pool_lock:
        for key, idle in _pool.items():
            if not idle or key[:4] != head:
                continue
            m, p = key[4], key[5]
            if (mem_need and m != mem_need) or (pids_need and p != pids_need):
                continue
            extra = (m is not None and m != mem_need) + (p is not None and p != pids_need)
            if extra < best_extra:
                best, best_extra = idle, extra
        return best.pop() if best else None


def _pool_put(cg: "RunCgroup") -> bool:
    """Move cg's dirs and fds into a new idle RunCgroup in the pool (cg then holds none);
    False (cg unchanged) when the pool is full, disabled, shutting down or cg is stale."""
    c = _caps
    if c is None:
        return False
    key = cg._key()
    if key[:4] != (c.gen, _natural_tree(c), bool(c.v2_parent and c.v2_kill),
                   bool(c.v2_parent and c.v2_cpu)):
        return False
    with _pool_lock:
        if _pool_exiting or cg._owner != os.getpid():
            return False
        idle = _pool.setdefault(key, [])
        if len(idle) >= POOL_MAX:
            return False
        idle.append(cg._detach())
    if _mp_hook_pid != os.getpid():
        _hook_multiprocessing()
    return True


# --------------------------------------------------------------------------------------------

def _check_limit(name: str, value, minimum: int):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int or None, not %r" % (name, value))
    if value < minimum:
        raise ValueError("%s must be >= %d, got %d" % (name, minimum, value))


def _mkrun(parent: str, name: str, resetup) -> str | None:
    """mkdir a fresh run dir under parent; recreates a vanished parent once or twice."""
    for _ in range(4):
        path = os.path.join(parent, name)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            name = _next_name()     # a dead process with our pid left it: take the next name
        except FileNotFoundError:
            if not resetup():       # parent removed (another process's remove_parents)
                return None
        except OSError:
            return None
    return None


def _mem_kind_for(c: _Caps):
    return "v2" if "memory" in c.v2_ctrl else "v1" if "memory" in c.v1 else None


def _pids_kind_for(c: _Caps):
    return "v2" if "pids" in c.v2_ctrl else "v1" if "pids" in c.v1 else None


_NO_BASE = (None, None, 0, 0, 0)
# what moves from a closed RunCgroup into its idle successor in the pool
_RESOURCES = ("procs_fds", "kill_fd", "cpu_stat_fd", "events_fd", "paths", "v2_path",
              "_mem_dir", "_pids_dir", "_mem_kind", "_pids_kind", "_mem_value", "_pids_value",
              "_peak_fd", "_ids", "_tree", "_gen", "_carry")


class RunCgroup:
    """The cgroup(s) of one run. Create with RunCgroup.create(); always close() (or use `with`).

    procs_fds    O_WRONLY|O_CLOEXEC cgroup.procs fds the child writes "0" to (v2 first)
    kill_fd      v2 cgroup.kill or -1
    cpu_stat_fd  v2 cpu.stat or -1;  events_fd: v2 cgroup.events or -1
    cpu_base_usec  usage_usec in cpu.stat when create() returned this cgroup: 0 for a new one,
                 the CPU of earlier runs for a reused one. The run's (tree's) CPU time is
                 usage_usec - cpu_base_usec; stats() subtracts it, a reader of cpu_stat_fd must.
    reused       True when the cgroup came from the pool (see the module docstring)
    memory_method, pids_method   "cgroup-v2" / "cgroup-v1" when that limit is enforced, else None
    paths        every run dir (v2 first); v2_path: the v2 one or None
    leftover     dirs close() could not remove (still populated after the bound)
    """

    __slots__ = ("procs_fds", "kill_fd", "cpu_stat_fd", "events_fd", "memory_method",
                 "pids_method", "memory_limit", "pids_limit", "paths", "v2_path", "leftover",
                 "cpu_base_usec", "reused", "_mem_dir", "_pids_dir", "_mem_kind", "_pids_kind",
                 "_mem_value", "_pids_value", "_peak_fd", "_ids", "_tree", "_gen", "_base",
                 "_last", "_carry", "_events", "_final", "_closed", "_lock", "_owner", "__weakref__")

    def __init__(self):
        self.procs_fds: list[int] = []
        self.kill_fd = -1
        self.cpu_stat_fd = -1
        self.events_fd = -1
        self.memory_method: str | None = None
        self.pids_method: str | None = None
        self.memory_limit = None
        self.pids_limit = None
        self.paths: list[str] = []
        self.v2_path: str | None = None
        self.leftover: list[str] = []
        self.cpu_base_usec = 0
        self.reused = False
        self._mem_dir = None        # dir holding the memory limit files (limit set or not)
        self._pids_dir = None       # dir holding pids.max
        self._mem_kind = None       # "v2" / "v1" / None: which memory limit files exist
        self._pids_kind = None
        self._mem_value = None      # limit currently written (None: max)
        self._pids_value = None
        self._peak_fd = -1          # v2 memory.peak, O_RDWR: reset and read through this fd
        self._ids = {}              # fd -> (st_dev, st_ino) of the file it was opened on
        self._tree = None           # "v2" / v1 controller holding the whole tree / None
        self._gen = 0               # caps generation it was made under
        self._base = _NO_BASE       # counters at hand-out (see _read_raw)
        self._last = None           # (memory_method, pids_method, raw) read while empty
        self._carry = None          # idle: that of the last run, the next run's base if valid
        self._events = None         # cgroup.events as last read by _populated()
        self._final = None
        self._closed = False
        self._lock = threading.Lock()
        self._owner = os.getpid()

    # ---------------------------------------------------------------- creation
    @classmethod
    def create(cls, memory_limit: int | None = None,
               pids_limit: int | None = None) -> "RunCgroup | None":
        """A run cgroup (an idle one from the pool, else a new one), or None when no cgroup at
        all can be created here."""
        _check_limit("memory_limit", memory_limit, 1)
        _check_limit("pids_limit", pids_limit, 1)
        c = _get_caps()
        if not c.v2_parent and not c.v1:
            return None
        mem_need = _mem_kind_for(c) if memory_limit is not None else None
        pids_need = _pids_kind_for(c) if pids_limit is not None else None
        while POOL_MAX > 0:
            self = _pool_take(c, mem_need, pids_need)
            if self is None:
                break
            if self._reuse(memory_limit, pids_limit, mem_need, pids_need):
                return self
            self._closed = True
            self._destroy(time.monotonic() + WAIT_EMPTY_S)
        self = cls()
        self.memory_limit, self.pids_limit = memory_limit, pids_limit
        self._gen = c.gen
        name = _next_name()
        try:
            if c.v2_parent:
                self._make_v2(c, name, memory_limit, pids_limit)
            self._make_v1(c, name, memory_limit, pids_limit)
            for fd in self._fds():
                self._remember(fd)
        except BaseException:
            self.close()
            raise
        if not self.paths:
            return None
        return self

    def _make_v2(self, c: _Caps, name: str, memory_limit, pids_limit):
        d = _mkrun(c.v2_parent, name, lambda: _setup_v2_parent(c))
        if d is None:
            return
        fd = _open(d + "/cgroup.procs", _O_W)
        if fd < 0:
            _rmdir_quiet(d)
            return
        self.paths.append(d)
        self.procs_fds.append(fd)
        self.v2_path = d
        self._tree = "v2"
        self.events_fd = _open(d + "/cgroup.events", _O_R)
        if c.v2_kill:
            self.kill_fd = _open(d + "/cgroup.kill", _O_W)
        if c.v2_cpu:
            self.cpu_stat_fd = _open(d + "/cpu.stat", _O_R)
        if "memory" in c.v2_ctrl:
            self._mem_kind, self._mem_dir = "v2", d
            if c.v2_peak_reset:
                self._peak_fd = _open(d + "/memory.peak", os.O_RDWR | os.O_CLOEXEC)
            if memory_limit is not None:
                if self._v2_limit(c, d + "/memory.max", memory_limit):
                    if c.v2_swap:
                        _write(d + "/memory.swap.max", "0")
                    self.memory_method, self._mem_value = "cgroup-v2", memory_limit
                else:
                    self._mem_kind = self._mem_dir = None   # (served as if it had none)
        if "pids" in c.v2_ctrl:
            self._pids_kind, self._pids_dir = "v2", d
            if pids_limit is not None:
                if self._v2_limit(c, d + "/pids.max", pids_limit):
                    self.pids_method, self._pids_value = "cgroup-v2", pids_limit
                else:
                    self._pids_kind = self._pids_dir = None

    @staticmethod
    def _v2_limit(c: _Caps, path: str, value: int) -> bool:
        err = _write(path, str(value))
        if err == errno.ENOENT:     # parent recreated by someone without the controllers yet
            _setup_v2_parent(c)
            err = _write(path, str(value))
        return err == 0

    def _make_v1(self, c: _Caps, name: str, memory_limit, pids_limit):
        want = {}                   # parent dir -> controllers it serves (co-mounted share one)
        if memory_limit is not None and self.memory_method is None and "memory" in c.v1:
            want.setdefault(c.v1["memory"], []).append("memory")
        if pids_limit is not None and self.pids_method is None and "pids" in c.v1:
            want.setdefault(c.v1["pids"], []).append("pids")
        tree = None
        if self.v2_path is None and c.v1_tree and c.v1_tree in c.v1:
            tree = c.v1[c.v1_tree]
            want.setdefault(tree, [])
        for parent, ctrls in want.items():
            ctrl0 = ctrls[0] if ctrls else c.v1_tree
            d = _mkrun(parent, name, lambda: _setup_v1_parent(c, ctrl0))
            if d is None:
                continue
            serves = parent == tree
            if "memory" in ctrls and _write(d + "/memory.limit_in_bytes", str(memory_limit)) == 0:
                if c.v1_memsw:      # same value: no escape into swap
                    _write(d + "/memory.memsw.limit_in_bytes", str(memory_limit))
                self.memory_method, self._mem_dir, serves = "cgroup-v1", d, True
                self._mem_kind, self._mem_value = "v1", memory_limit
            if "pids" in ctrls and _write(d + "/pids.max", str(pids_limit)) == 0:
                self.pids_method, self._pids_dir, serves = "cgroup-v1", d, True
                self._pids_kind, self._pids_value = "v1", pids_limit
            fd = _open(d + "/cgroup.procs", _O_W) if serves else -1
            if fd < 0:
                if self._mem_dir == d:
                    self.memory_method = self._mem_dir = self._mem_kind = None
                if self._pids_dir == d:
                    self.pids_method = self._pids_dir = self._pids_kind = None
                _rmdir_quiet(d)
                continue
            if parent == tree:
                self._tree = c.v1_tree
            self.paths.append(d)
            self.procs_fds.append(fd)

    # ---------------------------------------------------------------- reuse
    def _key(self) -> tuple:
        """The pool key: what this cgroup can serve."""
        return (self._gen, self._tree, self.kill_fd >= 0, self.cpu_stat_fd >= 0,
                self._mem_kind, self._pids_kind)

    def _fds(self) -> list[int]:
        return [fd for fd in self.procs_fds + [self.kill_fd, self.cpu_stat_fd, self.events_fd,
                                               self._peak_fd] if fd >= 0]

    def _remember(self, fd: int) -> None:
        try:
            st = os.fstat(fd)
            self._ids[fd] = (st.st_dev, st.st_ino)
        except OSError:
            pass

    def _reuse(self, memory_limit, pids_limit, mem_need, pids_need) -> bool:
        """Set an idle pooled cgroup up for a new run: limits, per-run baselines."""
        self.reused = True
        self.memory_limit, self.pids_limit = memory_limit, pids_limit
        if self._mem_kind is not None:
            target = memory_limit if mem_need else None
            if target != self._mem_value and not self._set_memory(target):
                return False
            if mem_need:
                self.memory_method = "cgroup-" + self._mem_kind
        if self._pids_kind is not None:
            target = pids_limit if pids_need else None
            if target != self._pids_value:
                if _write(self._pids_dir + "/pids.max", "max" if target is None else str(target)):
                    return False
                self._pids_value = target
            if pids_need:
                self.pids_method = "cgroup-" + self._pids_kind
        if self.memory_method == "cgroup-v2" and self._peak_fd >= 0:
            try:                    # fd-local reset of the high-water mark to the usage now
                os.pwrite(self._peak_fd, b"reset\n", 0)
            except OSError:
                return False
        elif self.memory_method == "cgroup-v1":
            if _write(self._mem_dir + "/memory.max_usage_in_bytes", "0"):
                return False
        base, carry, self._carry = None, self._carry, None
        if (carry is not None and carry[0] == self.memory_method
                and carry[1] == self.pids_method):
            # The counters read at the end of the last run (with its tree gone) still hold
            # when no task ran here since: its CPU usage has not moved by a microsecond.
            if self._cpu_usec() == carry[2][0]:
                base = carry[2]
        if base is None:
            base = self._read_raw(peak=False)
        if self.cpu_stat_fd >= 0 and base[0] is None:
            return False
        self._base = base
        self.cpu_base_usec = base[0] or 0
        return True

    def _set_memory(self, target) -> bool:
        d, c = self._mem_dir, _get_caps()
        if self._mem_kind == "v2":
            if _write(d + "/memory.max", "max" if target is None else str(target)):
                return False
            if c.v2_swap and _write(d + "/memory.swap.max", "max" if target is None else "0"):
                return False
        else:
            value = "-1" if target is None else str(target)
            files = ["/memory.limit_in_bytes"]
            if c.v1_memsw:          # memsw >= limit at every step: raise memsw first
                old = self._mem_value
                if target is None or (old is not None and target > old):
                    files.insert(0, "/memory.memsw.limit_in_bytes")
                else:
                    files.append("/memory.memsw.limit_in_bytes")
            for f in files:
                if _write(d + f, value):
                    return False
        self._mem_value = target
        return True

    def _recyclable(self) -> bool:
        """True when this (empty-looking) cgroup is provably clean and may serve another run."""
        c = _caps
        if (POOL_MAX <= 0 or _pool_exiting or c is None or self._gen != c.gen
                or self._owner != os.getpid() or not self.paths):
            return False
        if self.v2_path is not None:
            ev = self._events       # as last read by close()'s wait for the tree to go
            if ev is None or ev.get("populated") != 0:
                self._populated()
                ev = self._events
            if ev is None or ev.get("populated") != 0 or ev.get("frozen", 0) != 0:
                return False
        for d in self.paths:
            if d != self.v2_path:
                text = _read_all(d + "/cgroup.procs")
                if text is None or text.strip():
                    return False
            try:
                if os.stat(d).st_nlink != 2:    # a child cgroup was made inside
                    return False
            except OSError:
                return False
        if self._tree == "freezer":
            top = c.v1.get("freezer", "\0") + "/"
            d = next((p for p in self.paths if p.startswith(top)), None)
            if d is None or (_read(d + "/freezer.state") or "").strip() != "THAWED":
                return False
        if self._mem_kind is not None:
            if self._mem_kind == "v2":
                if c.v2_peak and self._peak_fd < 0:     # a peak that cannot be reset
                    return False
                usage = _int(_read(self._mem_dir + "/memory.current"))
            else:
                usage = _int(_read(self._mem_dir + "/memory.usage_in_bytes"))
            if usage is None or usage > POOL_MAX_CHARGE:
                return False
        if not self.procs_fds:      # release_procs_fds(): reopen
            for d in self.paths:
                fd = _open(d + "/cgroup.procs", _O_W)
                if fd < 0:
                    return False
                self.procs_fds.append(fd)
                self._remember(fd)
        if len(self.procs_fds) != len(self.paths):
            return False
        ok = True
        for name in ("kill_fd", "cpu_stat_fd", "events_fd", "_peak_fd", None):
            fds = self.procs_fds if name is None else [getattr(self, name)]
            for fd in fds:
                if fd < 0:
                    continue
                known = self._ids.get(fd)
                if known is None:   # never checked: closed normally, not reused
                    ok = False
                    continue
                try:
                    st = os.fstat(fd)
                    same = known == (st.st_dev, st.st_ino)
                except OSError:
                    same = False
                if not same:        # closed behind our back, maybe reused: never close it
                    ok = False
                    if name is None:
                        self.procs_fds = [x for x in self.procs_fds if x != fd]
                    else:
                        setattr(self, name, -1)
        return ok

    def _detach(self) -> "RunCgroup":
        """A new idle RunCgroup owning this one's dirs and fds; this one keeps none."""
        idle = RunCgroup()
        self._carry = self._last if self._last is not None and (
            self._cpu_usec() == self._last[2][0]) else None
        for name in _RESOURCES:
            setattr(idle, name, getattr(self, name))
        self.procs_fds, self.paths, self.v2_path, self._ids = [], [], None, {}
        self.kill_fd = self.cpu_stat_fd = self.events_fd = self._peak_fd = -1
        return idle

    def _destroy(self, deadline: float) -> list[str]:
        """Close every fd, rmdir every dir; returns the dirs still there after the deadline."""
        fds, self.procs_fds = self._fds(), []
        self.kill_fd = self.cpu_stat_fd = self.events_fd = self._peak_fd = -1
        self._ids = {}
        for fd in fds:              # (set to -1 first: no use of a recycled fd number)
            _close(fd)
        busy = []
        for d in self.paths:
            if not _rmdir_until(d, deadline, self):
                busy.append(d)
        self.paths = busy
        if self.v2_path not in busy:
            self.v2_path = None
        return busy

    # ---------------------------------------------------------------- use
    def stats(self) -> dict:
        """{"memory_peak": bytes or None, "oom_kills": int, "pids_max_hit": bool,
        "memory_max_hit": bool, "cpu_usage_usec": int or None}, all of this run only (also in
        a reused cgroup). Live while the run exists; after close() the values read at close
        (or by the last stats() call)."""
        if self._closed:
            return dict(self._final or _EMPTY_STATS)
        self._final = self._read_stats(check_empty=True)
        return dict(self._final)

    def _cpu_usec(self) -> int | None:
        if self.cpu_stat_fd >= 0:
            try:
                return _keyed(os.pread(self.cpu_stat_fd, 4096, 0).decode("ascii", "replace")
                              ).get("usage_usec")
            except OSError:
                pass
        return None

    def _read_raw(self, peak: bool = True) -> tuple:
        """Absolute values: (cpu usage_usec or None, memory peak or None, oom kills, memory
        limit hits (v2 memory.events max / v1 failcnt), pids.max hits); memory and pids ones
        only for a limit enforced in this run."""
        pk = None
        oom = hits = pmax = 0
        cpu = self._cpu_usec()
        d = self._mem_dir
        if self.memory_method == "cgroup-v2":
            if peak and self._peak_fd >= 0:
                try:
                    pk = _int(os.pread(self._peak_fd, 64, 0).decode("ascii", "replace"))
                except OSError:
                    pass
            elif peak and _get_caps().v2_peak:
                pk = _int(_read(d + "/memory.peak"))
            ev = _keyed(_read(d + "/memory.events"))
            oom, hits = ev.get("oom_kill", 0), ev.get("max", 0)
        elif self.memory_method == "cgroup-v1":
            if peak:
                pk = _int(_read(d + "/memory.max_usage_in_bytes"))
            oom = _keyed(_read(d + "/memory.oom_control")).get("oom_kill", 0)
            hits = _int(_read(d + "/memory.failcnt")) or 0
        if self.pids_method:
            pmax = _keyed(_read(self._pids_dir + "/pids.events")).get("max", 0)
        return cpu, pk, oom, hits, pmax

    def _read_stats(self, check_empty: bool = False) -> dict:
        """Per-run stats. Remembers the raw values as `_last` when the tree is known to be gone
        (check_empty: the v2 events say so before the read; else the caller knows)."""
        limited = self.memory_method or self.pids_method
        empty = limited and (not check_empty or self._populated() == 0)
        raw = self._read_raw()
        self._last = (self.memory_method, self.pids_method, raw) if empty else None
        cpu, pk, oom, hits, pmax = raw
        base = self._base
        out = dict(_EMPTY_STATS)
        if cpu is not None:
            out["cpu_usage_usec"] = max(0, cpu - self.cpu_base_usec)
        if self.memory_method:
            out["memory_peak"] = pk
            out["oom_kills"] = max(0, oom - base[2])
            out["memory_max_hit"] = hits > base[3] or out["oom_kills"] > 0
        if self.pids_method:
            out["pids_max_hit"] = pmax > base[4]
        return out

    def kill(self) -> None:
        """SIGKILL every member: v2 cgroup.kill when there is one, else read each dir's
        cgroup.procs and kill every pid, repeatedly until empty (bounded)."""
        if self._closed and not self.paths:
            return
        if self.kill_fd >= 0:
            try:
                os.pwrite(self.kill_fd, b"1", 0)
                return
            except OSError:
                pass
        self._kill_by_procs(time.monotonic() + WAIT_EMPTY_S)

    def _kill_by_procs(self, deadline: float, paths=None) -> bool:
        """Kill listed members until every dir lists none; True when empty before deadline."""
        me = os.getpid()
        while True:
            found = False
            for d in self.paths if paths is None else paths:
                for pid in _pids(_read_all(d + "/cgroup.procs")):
                    if pid != me:
                        found = True
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
            if not found:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)

    def _populated(self) -> int:
        """v2 'populated' flag: 1, 0, or -1 when unknown."""
        self._events = None
        if self.events_fd < 0:
            return -1
        try:
            ev = _keyed(os.pread(self.events_fd, 256, 0).decode("ascii", "replace"))
        except OSError:
            return -1
        self._events = ev
        return ev.get("populated", -1)

    def _wait_empty(self, deadline: float) -> bool:
        pop = self._populated()
        if pop == 0:
            return True
        if pop == 1:
            poller = select.poll()
            poller.register(self.events_fd, select.POLLPRI)
            while pop == 1:
                self.kill()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                poller.poll(min(left, 0.05) * 1000)
                pop = self._populated()
            if pop == 0:
                return True
        return self._kill_by_procs(deadline)

    def close(self) -> None:
        """Kill the tree, wait (bounded) until every dir is empty, then return the cgroup to
        the pool when it is provably clean (see the module docstring), else close the fds and
        rmdir the dirs. Either way this object then holds no fd and no dir. Dirs still busy
        after the bound are left and listed in `leftover`. Idempotent.
        The fds are closed (or passed on) here: call it only after the C supervisor is done
        with them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + WAIT_EMPTY_S
        try:
            if self.paths:
                empty = self._wait_empty(deadline)
                if self._final is None and (self.memory_method or self.pids_method):
                    self._final = self._read_stats()
                if empty and self._recyclable():
                    _pool_put(self)             # on success this object holds nothing
        finally:
            self.leftover = self._destroy(deadline)

    def release_procs_fds(self) -> None:
        """Close procs_fds early (after the child has started); the runner may call this to
        keep fewer fds open during long runs."""
        for fd in self.procs_fds:
            self._ids.pop(fd, None)
            _close(fd)
        self.procs_fds = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # a forked copy (multiprocessing, a runner's own child) must not kill the parent's runs
        try:
            if not self._closed and self._owner == os.getpid():
                self.close()
        except Exception:
            pass

    def __repr__(self):
        return "<RunCgroup %s memory=%s pids=%s%s%s>" % (
            self.paths, self.memory_method, self.pids_method, " reused" if self.reused else "",
            " closed" if self._closed else "")


_EMPTY_STATS = {"memory_peak": None, "oom_kills": 0, "pids_max_hit": False,
                "memory_max_hit": False, "cpu_usage_usec": None}


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def _rmdir_quiet(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _rmdir_until(path: str, deadline: float, run: RunCgroup) -> bool:
    """rmdir path; on EBUSY kill what it still lists and retry until deadline."""
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                return False
        run._kill_by_procs(min(deadline, time.monotonic() + 0.05), [path])
        time.sleep(0.002)

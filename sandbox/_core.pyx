# cython: language_level=3
"""The only bridge between Python and the C core in csrc/.

Syscall tables, the BPF compiler, the reference evaluator and the BPF interpreter.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, int32_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from libc.errno cimport errno
from cpython.exc cimport PyErr_CheckSignals

cdef extern from "<linux/filter.h>":
    struct sock_filter:
        uint16_t code
        uint8_t jt
        uint8_t jf
        uint32_t k

cdef extern from "syscalls/syscalls.h":
    enum: SB_ARCH_COUNT
    struct sb_syscall:
        const char *name
        uint32_t nr
        uint8_t arg32
    struct sb_syscall_table:
        const char *arch_name
        uint32_t audit_arch
        int is64
        uint32_t count
        const sb_syscall *entries
    const sb_syscall_table sb_syscall_tables[]
    const char *const sb_all_syscall_names[]
    const uint32_t sb_all_syscall_names_count
    const char sb_syscall_tables_kernel[]
    int64_t sb_syscall_nr(int arch, const char *name)
    const sb_syscall *sb_syscall_by_nr(int arch, uint32_t nr)
    int sb_syscall_known(const char *name)
    int sb_arch_by_name(const char *name)

cdef extern from "compile.h" nogil:
    struct sb_cond:
        uint32_t index
        uint32_t op
        uint64_t value
        uint64_t value_two
    struct sb_rule:
        const char *name
        uint32_t action
        uint32_t ncond
        const sb_cond *cond
    struct sb_policy:
        uint32_t default_action
        uint32_t badarch_action
        uint32_t narch
        const int *arch
        uint32_t nrule
        const sb_rule *rule
        uint32_t nstub_name
        const char *const *stub_name
        int enosys_stub
        int args_like_libseccomp
    struct sb_decision:
        uint32_t action
        int decider
        int rule_index
    struct sb_error:
        char msg[256]
    int sb_compile(const sb_policy *p, sock_filter **out, uint32_t *len, sb_error *err)

cdef extern from "ruleset.h" nogil:
    struct sb_ruleset:
        pass
    int sb_ruleset_build(const sb_policy *p, sb_ruleset *rs, sb_error *err)
    void sb_ruleset_free(sb_ruleset *rs)
    void sb_ruleset_decide(const sb_ruleset *rs, uint32_t audit_arch, uint32_t nr,
                           const uint64_t args[6], sb_decision *out)

cdef extern from "bpf_emu.h" nogil:
    struct sb_seccomp_data:
        int32_t nr
        uint32_t arch
        uint64_t instruction_pointer
        uint64_t args[6]
    int sb_bpf_validate(const sock_filter *prog, uint32_t len, char *err, uint32_t errlen)
    uint32_t sb_bpf_run(const sock_filter *prog, uint32_t len, const sb_seccomp_data *data,
                        uint32_t *executed)
    int sb_bpf_const_allow(const sock_filter *prog, uint32_t len, uint32_t arch, uint32_t nr,
                           uint32_t *walked)

DECIDED_BY_RULE = 0
DECIDED_BY_DEFAULT = 1
DECIDED_BY_BADARCH = 2
DECIDED_BY_STUB = 3


class CompileError(ValueError):
    """The compiler refused a policy (too large, inconsistent)."""


# ---- syscall tables ------------------------------------------------------------------------

cdef int _arch(object arch) except -1:
    cdef int a
    if isinstance(arch, int):
        if 0 <= arch < SB_ARCH_COUNT:
            return arch
        raise ValueError("unknown architecture %r" % (arch,))
    a = sb_arch_by_name(arch.encode())
    if a < 0:
        raise ValueError("unknown architecture %r" % (arch,))
    return a


def tables_kernel():
    """Kernel version the syscall tables describe."""
    return sb_syscall_tables_kernel.decode()


def arch_names():
    return [sb_syscall_tables[i].arch_name.decode() for i in range(SB_ARCH_COUNT)]


def arch_info(arch):
    cdef int a = _arch(arch)
    t = &sb_syscall_tables[a]
    return {"name": t.arch_name.decode(), "audit_arch": t.audit_arch, "is64": bool(t.is64),
            "count": t.count}


def syscall_known(name):
    """True if some architecture has a syscall of this name."""
    return bool(sb_syscall_known(name.encode()))


def syscall_nr(arch, name):
    """Number of `name` on `arch` (as seccomp_data.nr), or -1."""
    return sb_syscall_nr(_arch(arch), name.encode())


def syscall_name(arch, uint32_t nr):
    cdef const sb_syscall *e = sb_syscall_by_nr(_arch(arch), nr)
    return e.name.decode() if e != NULL else None


def syscall_arg32(arch, name):
    """Bitmask of the arguments the kernel reads as 32-bit (0 if unknown)."""
    cdef int a = _arch(arch)
    cdef int64_t nr = sb_syscall_nr(a, name.encode())
    cdef const sb_syscall *e
    if nr < 0:
        return 0
    e = sb_syscall_by_nr(a, <uint32_t>nr)
    return e.arg32 if e != NULL else 0


def syscall_table(arch):
    """[(name, nr, arg32), ...] of one architecture, sorted by name."""
    cdef int a = _arch(arch)
    t = &sb_syscall_tables[a]
    return [(t.entries[i].name.decode(), t.entries[i].nr, t.entries[i].arg32)
            for i in range(t.count)]


def syscall_all_names():
    return [sb_all_syscall_names[i].decode() for i in range(sb_all_syscall_names_count)]


# ---- the compiler --------------------------------------------------------------------------

# Encoded syscall names, kept for the life of the process: the C structs point into them, and a
# policy names the same few hundred syscalls again and again.
cdef dict _NAMES = {}


cdef bytes _name_bytes(str name):
    cdef object b = _NAMES.get(name)
    if b is None:
        if len(_NAMES) >= 100000:
            raise ValueError("too many distinct syscall names")
        b = name.encode()
        _NAMES[name] = b
    return <bytes>b


cdef class Compiled:
    """A policy converted to C once: its BPF program and its reference evaluator."""
    cdef sb_policy pol
    cdef sb_rule *rules
    cdef sb_cond *conds
    cdef int *arches
    cdef const char **stub
    cdef list _keep          # bytes objects whose buffers the C structs point into
    cdef sb_ruleset rs
    cdef bint have_rs
    cdef readonly bytes program

    def __cinit__(self):
        self.rules = NULL
        self.conds = NULL
        self.arches = NULL
        self.stub = NULL
        self.have_rs = False

    def __init__(self, policy):
        cdef sb_error err
        cdef sock_filter *prog = NULL
        cdef uint32_t plen = 0
        cdef Py_ssize_t i, k, nconds = 0, ci = 0
        cdef int rc
        self._keep = []
        memset(&self.pol, 0, sizeof(self.pol))
        rules = list(policy.rules)
        for r in rules:
            if not isinstance(r, tuple) or len(<tuple>r) < 3:
                raise TypeError("expected a Rule, got %r" % (r,))
            nconds += len((<tuple>r)[2])
        self.rules = <sb_rule *>calloc(max(len(rules), 1), sizeof(sb_rule))
        self.conds = <sb_cond *>calloc(max(nconds, 1), sizeof(sb_cond))
        self.arches = <int *>calloc(max(len(policy.arches), 1), sizeof(int))
        self.stub = <const char **>calloc(max(len(policy.stub_names), 1), sizeof(char *))
        if not (self.rules and self.conds and self.arches and self.stub):
            raise MemoryError()
        for i, a in enumerate(policy.arches):
            self.arches[i] = _arch(a)
        for i in range(len(rules)):
            # Rules are (Named)tuples: read them by position, not through the subclass's
            # __getitem__ or attributes (hundreds of rules per profile)
            r = rules[i]
            conds = (<tuple>r)[2]
            b = _name_bytes((<tuple>r)[0])
            self.rules[i].name = <const char *>b
            self.rules[i].action = (<tuple>r)[1] & 0xFFFFFFFF
            self.rules[i].ncond = len(conds)
            self.rules[i].cond = &self.conds[ci]
            for c in conds:
                self.conds[ci].index = c.index
                self.conds[ci].op = c.op
                self.conds[ci].value = c.value
                self.conds[ci].value_two = c.value_two
                ci += 1
        for i, n in enumerate(policy.stub_names):
            b = _name_bytes(n)   # kept alive by _NAMES
            self.stub[i] = <const char *>b
        self.pol.default_action = policy.default_action & 0xFFFFFFFF
        self.pol.badarch_action = policy.badarch_action & 0xFFFFFFFF
        self.pol.narch = len(policy.arches)
        self.pol.arch = self.arches
        self.pol.nrule = len(rules)
        self.pol.rule = self.rules
        self.pol.nstub_name = len(policy.stub_names)
        self.pol.stub_name = self.stub
        self.pol.enosys_stub = 1 if policy.enosys_stub else 0
        self.pol.args_like_libseccomp = 1 if policy.args_like_libseccomp else 0

        with nogil:
            rc = sb_compile(&self.pol, &prog, &plen, &err)
        if rc < 0:
            raise CompileError(err.msg.decode())
        try:
            self.program = (<char *>prog)[:plen * sizeof(sock_filter)]
        finally:
            free(prog)

    def __dealloc__(self):
        if self.have_rs:
            sb_ruleset_free(&self.rs)
        free(self.rules)
        free(self.conds)
        free(self.arches)
        free(self.stub)

    def __len__(self):
        return len(self.program) // 8

    def decide(self, uint32_t audit_arch, uint32_t nr, args=()):
        """(action, decided_by, rule_index) from the rules, without the BPF."""
        cdef uint64_t a[6]
        cdef sb_decision d
        cdef sb_error err
        if not self.have_rs:
            if sb_ruleset_build(&self.pol, &self.rs, &err) < 0:
                raise CompileError(err.msg.decode())
            self.have_rs = True
        _fill_args(a, args)
        sb_ruleset_decide(&self.rs, audit_arch, nr, a, &d)
        return d.action, d.decider, d.rule_index


cdef int _fill_args(uint64_t *a, object args) except -1:
    cdef int i
    args = tuple(args)
    if len(args) > 6:
        raise ValueError("at most 6 arguments")
    for i in range(6):
        a[i] = (args[i] & 0xFFFFFFFFFFFFFFFF) if i < len(args) else 0
    return 0


def compile(policy):
    """Compile a sandbox.policy.Policy to a raw struct sock_filter array (host byte order)."""
    return Compiled(policy).program


def decide(policy, uint32_t audit_arch, uint32_t nr, args=()):
    return Compiled(policy).decide(audit_arch, nr, args)


# ---- BPF interpreter -----------------------------------------------------------------------

cdef const sock_filter *_prog(const unsigned char[::1] buf, uint32_t *n) except NULL:
    if buf.shape[0] == 0 or buf.shape[0] % 8:
        raise ValueError("a BPF program is a non-empty multiple of 8 bytes")
    n[0] = <uint32_t>(buf.shape[0] // 8)
    return <const sock_filter *>&buf[0]


def bpf_validate(program):
    """Raise ValueError if the kernel would refuse this program."""
    cdef uint32_t n
    cdef char err[256]
    cdef const unsigned char[::1] buf = program
    p = _prog(buf, &n)
    if sb_bpf_validate(p, n, err, sizeof(err)) < 0:
        raise ValueError(err.decode())


def bpf_run(program, uint32_t audit_arch, uint32_t nr, args=(), uint64_t ip=0):
    """Run a seccomp program on one call: (return value, instructions executed)."""
    cdef uint32_t n, executed = 0, ret
    cdef sb_seccomp_data d
    cdef const unsigned char[::1] buf = program
    p = _prog(buf, &n)
    memset(&d, 0, sizeof(d))
    d.nr = <int32_t>nr
    d.arch = audit_arch
    d.instruction_pointer = ip
    _fill_args(d.args, args)
    ret = sb_bpf_run(p, n, &d, &executed)
    return ret, executed


def bpf_const_allow(program, uint32_t audit_arch, uint32_t nr):
    """The kernel's action-cache emulation: (always ALLOW without looking at args, walked)."""
    cdef uint32_t n, walked = 0
    cdef const unsigned char[::1] buf = program
    p = _prog(buf, &n)
    r = sb_bpf_const_allow(p, n, audit_arch, nr, &walked)
    return bool(r), walked


# ---- spawning and supervising a run --------------------------------------------------------

cdef extern from "<sys/resource.h>" nogil:
    ctypedef unsigned long rlim_t
    struct rlimit:
        rlim_t rlim_cur
        rlim_t rlim_max
    struct timeval:
        long tv_sec
        long tv_usec
    struct rusage:
        timeval ru_utime
        timeval ru_stime
        long ru_maxrss
        long ru_minflt
        long ru_majflt
        long ru_nvcsw
        long ru_nivcsw

cdef extern from "notify.h" nogil:
    enum: SB_NOTIFY_PIDS
    struct sb_notify_rec:
        int64_t t_ns
        uint64_t args[6]
        uint64_t ip
        uint32_t pid
        uint32_t tid
        uint32_t vpid
        uint32_t arch
        int32_t nr
        uint32_t action
        int32_t answer
    struct sb_notify_key:
        uint32_t arch
        int32_t nr
        uint32_t index
        uint64_t mask
    struct sb_notify_agg:
        uint32_t arch
        int32_t nr
        uint32_t action
        uint64_t keyval
        uint32_t npids
        uint64_t count
        uint32_t pids[8]
        sb_notify_rec first
        int used
    struct sb_notify:
        const sock_filter *truth
        uint32_t truth_len
        uint32_t max_records
        int64_t start_ns
        sb_notify_key keys[32]
        uint32_t nkeys
        int listener
        int64_t answer_delay_ns
        sb_notify_rec *recs
        uint32_t nrecs
        sb_notify_agg *agg
        uint32_t nagg
        uint32_t agg_cap
        uint64_t total
        uint64_t lost
        int killed
        sb_notify_rec kill_rec
        int error
    int sb_notify_init(sb_notify *n)
    void sb_notify_free(sb_notify *n)

cdef extern from "spawn.h" nogil:
    enum: SB_STAGE_COUNT
    struct sb_rlim:
        int resource
        rlimit lim
    struct sb_spawn_req:
        const char *exe
        char *const *argv
        char *const *envp
        const char *cwd
        int stdio[3]
        int umask
        uint32_t nrlimit
        const sb_rlim *rlimit
        uint32_t ncgroup
        const int *cgroup_procs
        int set_ids
        unsigned int uid
        unsigned int gid
        uint32_t ngroups
        const unsigned int *groups
        int set_caps
        uint64_t caps
        int last_cap
        int pdeathsig
        const sock_filter *filter
        uint32_t filter_len
        unsigned int filter_flags
        int keep_fd
        int landlock_fd
        const char *init_exe
        int new_pidns
        int new_userns
        const char *userns_helper
        sb_notify *notify
        int notify_share_vm
        const char *loginuid
    struct sb_spawn_result:
        int pid
        int pidfd
        int status_fd
        int stage
        int err
    int sb_spawn(const sb_spawn_req *req, sb_spawn_result *res)
    const char *sb_stage_name(int stage)
    int sb_userns_probe(const char *helper)

cdef extern from "spawner.h" nogil:
    struct sb_spawner:
        pass
    enum: SB_SPAWNER_GONE
    sb_spawner *sb_spawner_start(const sock_filter *filter, uint32_t len, unsigned int flags,
                                 int last_cap, uint64_t keep_caps,
                                 int *stage)
    int sb_spawner_spawn(sb_spawner *s, const sb_spawn_req *req, sb_spawn_result *res)
    int sb_spawner_tid(const sb_spawner *s)
    void sb_spawner_stop(sb_spawner *s)

cdef extern from "landlock.h" nogil:
    int sb_landlock_abi()
    uint64_t sb_landlock_fs_rights(int abi)
    int sb_landlock_build(int abi, const char *const *ro, uint32_t nro, const char *const *rw,
                          uint32_t nrw, int *bad)


def landlock_abi():
    """The kernel's Landlock ABI version (>= 1), or -errno when Landlock is missing
    (-ENOSYS: not built in, -EOPNOTSUPP: disabled at boot)."""
    return sb_landlock_abi()


def landlock_fs_rights(int abi):
    """Bit mask of every filesystem access right Landlock ABI `abi` knows."""
    return sb_landlock_fs_rights(abi)


def landlock_build(int abi, list ro, list rw):
    """A Landlock ruleset descriptor (close-on-exec) for ABI `abi`: read-only access beneath
    each path of `ro`, full access beneath each of `rw` (lists of bytes). Raises OSError naming
    the path that failed."""
    cdef list keep = []
    cdef char **c_ro = NULL
    cdef char **c_rw = NULL
    cdef int bad = -1
    cdef int fd
    cdef uint32_t nro = len(ro), nrw = len(rw)
    try:
        c_ro = _cstrings(ro, keep)
        c_rw = _cstrings(rw, keep)
        with nogil:
            fd = sb_landlock_build(abi, <const char *const *>c_ro, nro,
                                   <const char *const *>c_rw, nrw, &bad)
    finally:
        free(c_ro)
        free(c_rw)
    if fd < 0:
        if bad < 0:
            raise OSError(-fd, "creating a Landlock ruleset: %s" % os_strerror(-fd))
        import os
        raise OSError(-fd, os_strerror(-fd), os.fsdecode((ro + rw)[bad]))
    return fd

cdef extern from "zygote.h" nogil:
    enum: SB_ZYGOTE_NOT_SENT
    enum: SB_ZYGOTE_NO_REPLY
    int sb_zygote_spawn_slot(int sock, const sb_spawn_req *req, int slot_r, int slot_w,
                             int stop_r, int32_t slot_id, sb_spawn_result *res,
                             int64_t *start_ns)


cdef extern from "watch.h" nogil:
    struct sb_stream:
        int fd
        char *buf
        size_t len
        size_t cap
        uint64_t dropped
        int truncated
    struct sb_watch:
        int pid
        int pidfd
        int pgid
        int status_fd
        int report_fd
        int in_fd
        const char *in_data
        size_t in_len
        sb_stream out
        sb_stream err
        uint64_t output_limit
        int64_t start_ns
        int64_t wall_limit_ns
        int64_t cpu_limit_ns
        int cg_cpu_fd
        int cg_kill_fd
        int cg_events_fd
        int64_t drain_ns
        int64_t cpu_base_ns
        sb_notify *notify
        int abort
        int remote
        int status
        rusage ru
        int64_t wall_ns
        int64_t cg_cpu_ns
        int wall_exceeded
        int cpu_exceeded
        int output_exceeded
        int tree_empty
        int report_lost
        int error
    int sb_watch_run "sb_watch"(sb_watch *w)
    void sb_watch_kill_tree(const sb_watch *w)
    int64_t sb_now_ns()

cdef extern from "running.h" nogil:
    int sb_running_add(int pidfd)
    int sb_running_remove(int pidfd)
    int sb_running_cancel_all()
    int sb_running_count()
    void sb_running_forget()

cdef extern from "<unistd.h>" nogil:
    int pipe2(int *fds, int flags)
    int close(int fd)

cdef extern from "<fcntl.h>" nogil:
    enum: O_CLOEXEC


def running_add(int pidfd):
    """Enter a started run in the table cancel_running() kills (csrc/running.h)."""
    if sb_running_add(pidfd) < 0:
        raise MemoryError()


def running_remove(int pidfd):
    """Take a reaped run out of the table, before its pidfd is closed: whether it was
    cancelled meanwhile."""
    return sb_running_remove(pidfd) == 1


def cancel_running():
    """SIGKILL every run in the table, from any thread; each is marked cancelled. How many."""
    return sb_running_cancel_all()


def running_count():
    return sb_running_count()


def running_forget():
    """In a forked child: the table is the parent's."""
    sb_running_forget()


cdef extern from "<sys/prctl.h>" nogil:
    int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)


def set_dumpable(bint on):
    """prctl(PR_SET_DUMPABLE): a non-dumpable process cannot be ptraced, nor its /proc/PID/mem
    or environ opened, by a process without CAP_SYS_PTRACE, even one of the same user."""
    if prctl(4, 1 if on else 0, 0, 0, 0) != 0:
        import os
        raise OSError(0, "prctl(PR_SET_DUMPABLE) failed")


_userns_err = None


def _package_init_exe():
    """sandbox-init, built beside this module (pid 1 of a run's PID namespace), or None."""
    import os
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox-init")
    return os.fsencode(path) if os.access(path, os.X_OK) else None


INIT_EXE = _package_init_exe()


def userns_error():
    """0 when this process can start runs in a user namespace of their own (spawn's
    new_userns), else the errno of what failed (ENOENT: sandbox-init is not built); probed once
    per process (a child in new user, PID and mount namespaces that mounts a /proc and maps its
    ids, as a run does)."""
    global _userns_err
    cdef int err
    cdef const char *helper = NULL
    cdef bytes exe = INIT_EXE
    if _userns_err is None:
        if exe is not None:
            helper = <const char *>exe
        with nogil:
            err = sb_userns_probe(helper)
        _userns_err = err
    return _userns_err


def userns_available():
    return userns_error() == 0


def stage_name(int stage):
    return sb_stage_name(stage).decode()


def now_ns():
    """CLOCK_MONOTONIC in nanoseconds (the clock the supervisor measures with)."""
    return sb_now_ns()


class SpawnError(OSError):
    """The child failed before execve: .stage (name) and .errno say where and why."""

    def __init__(self, stage, err):
        self.stage = stage
        super().__init__(err, "%s: %s" % (stage, os_strerror(err)))


class ZygoteError(OSError):
    """The zygote could not be asked: .sent says whether it took the request (and died before
    answering: the job may have started and been killed) or not (nothing started)."""

    def __init__(self, err, sent):
        self.sent = sent
        super().__init__(err, "zygote %s: %s" % ("died" if sent else "unreachable",
                                                 os_strerror(err)))


class SpawnerGone(OSError):
    """The spawner thread cannot serve: this process is a fork of the one that started it, or
    it was stopped. Nothing was started."""


cdef class Spawner:
    """A thread of this process with NO_NEW_PRIVS and `program` installed on itself (not on the
    process), which starts runs for spawn(spawner=): its children inherit the filter, so no run
    installs one (csrc/spawner.h). The thread runs under the filter: the caller checks first that
    the profile allows what it does (sandbox/spawner.py). Raises SpawnError when the filter
    cannot be installed. stop() (or garbage collection) ends the thread once every run it
    started has been released (a run's pdeathsig follows the thread that forked it).
    keep_caps (with last_cap): the thread first drops every other capability from its own
    bounding set, which its runs inherit, so that they need not drop them one by one."""
    cdef sb_spawner *s
    cdef int users          # runs started and not yet released (counted under the GIL)
    cdef bint stopping

    def __cinit__(self, program, unsigned int filter_flags=0, keep_caps=None, int last_cap=-1):
        cdef const unsigned char[::1] view = program
        cdef int stage = 0
        cdef uint32_t n = <uint32_t>(len(program) // 8)
        cdef uint64_t keep = keep_caps if keep_caps is not None else 0
        if keep_caps is None:
            last_cap = -1
        if n == 0:
            raise ValueError("empty filter")
        with nogil:
            self.s = sb_spawner_start(<const sock_filter *>&view[0], n, filter_flags, last_cap,
                                      keep, &stage)
        if self.s == NULL:
            raise SpawnError(stage_name(stage), errno)

    @property
    def tid(self):
        """The thread's id (its /proc/self/task/TID/status shows the filter)."""
        return sb_spawner_tid(self.s) if self.s != NULL else -1

    cdef sb_spawner *_enter(self) except NULL:
        if self.s == NULL or self.stopping:
            raise SpawnerGone(3, "the spawner thread was stopped")  # ESRCH
        self.users += 1
        return self.s

    cdef void _leave(self):
        self.users -= 1
        if self.stopping and self.users == 0:
            self._free()

    cdef void _free(self):
        cdef sb_spawner *s = self.s
        self.s = NULL
        if s != NULL:
            with nogil:
                sb_spawner_stop(s)

    def release(self):
        """A run this thread started has been reaped (see spawn(spawner=))."""
        self._leave()

    def stop(self):
        self.stopping = True
        if self.users == 0:
            self._free()

    def __dealloc__(self):
        if self.s != NULL:
            sb_spawner_stop(self.s)
            self.s = NULL


def os_strerror(int err):
    import os
    return os.strerror(err) if err else "unknown error"


cdef char **_cstrings(list items, list keep) except NULL:
    cdef char **arr = <char **>calloc(len(items) + 1, sizeof(char *))
    cdef Py_ssize_t i
    if arr == NULL:
        raise MemoryError()
    for i, item in enumerate(items):
        keep.append(item)
        arr[i] = <char *>item
    arr[len(items)] = NULL
    return arr


cdef dict _rec_dict(const sb_notify_rec *r):
    return {"t_ns": r.t_ns, "args": [r.args[i] for i in range(6)], "ip": r.ip, "pid": r.pid,
            "tid": r.tid, "vpid": r.vpid,
            "arch": r.arch, "nr": r.nr, "action": r.action,
            "answer": r.answer}


cdef class Notifier:
    """The user-notification supervisor of one run (csrc/notify.c): pass it to spawn() and
    watch(); it answers the calls the rewritten filter holds, as `truth` (the original program)
    decides, and keeps counts per (arch, nr, action) plus the first `max_records` records."""
    cdef sb_notify n
    cdef bytes _truth
    cdef bint _ready

    def __cinit__(self, bytes truth, uint32_t max_records=100, int64_t start_ns=0, keys=()):
        """keys: [(audit_arch, nr, arg index, mask)]: count those calls apart by that
        argument's masked value (at most 32)."""
        memset(&self.n, 0, sizeof(self.n))
        for arch, nr, index, mask in keys[:32]:
            self.n.keys[self.n.nkeys].arch = arch
            self.n.keys[self.n.nkeys].nr = nr
            self.n.keys[self.n.nkeys].index = index
            self.n.keys[self.n.nkeys].mask = mask
            self.n.nkeys += 1
        self._truth = truth
        self.n.truth = <const sock_filter *><const char *>self._truth
        self.n.truth_len = <uint32_t>(len(truth) // 8)
        self.n.max_records = max_records
        self.n.start_ns = start_ns if start_ns else sb_now_ns()
        if sb_notify_init(&self.n) < 0:
            import os
            raise OSError(errno, "seccomp user notification: %s" % os_strerror(errno))
        self._ready = True

    def __dealloc__(self):
        if self._ready:
            sb_notify_free(&self.n)

    def set_start(self, int64_t start_ns):
        self.n.start_ns = start_ns

    def set_answer_delay(self, int64_t ns):
        """Tests only: hold each call this long before answering it."""
        self.n.answer_delay_ns = ns

    def report(self):
        """Everything seen so far, as plain data."""
        cdef uint32_t i, k
        cdef sb_notify_agg *e
        entries = []
        for i in range(self.n.agg_cap):
            e = &self.n.agg[i]
            if not e.used:
                continue
            entries.append({"arch": e.arch, "nr": e.nr, "action": e.action, "count": e.count,
                            "key": e.keyval,
                            "pids": [e.pids[k] for k in range(e.npids)],
                            "first": _rec_dict(&e.first)})
        entries.sort(key=lambda d: d["first"]["t_ns"])
        return {"total": self.n.total, "lost": self.n.lost, "entries": entries,
                "records": [_rec_dict(&self.n.recs[i]) for i in range(self.n.nrecs)],
                "killed": _rec_dict(&self.n.kill_rec) if self.n.killed else None,
                "error": self.n.error}


def spawn(bytes exe, list argv, list envp, cwd, stdio, int umask=-1, list rlimits=None,
          list cgroup_fds=None, ids=None, caps=None, int last_cap=40, int pdeathsig=0,
          program=None, unsigned int filter_flags=0, int keep_fd=-1, bint new_pidns=False,
          bytes init_exe=None, int landlock_fd=-1, Notifier notifier=None,
          bint notify_share_vm=False, loginuid=None, int zygote_sock=-1,
          Spawner spawner=None, bint new_userns=False, zygote_slot=None):
    """Start one sandboxed process. Returns (pid, pidfd, status_fd); raises SpawnError (stage, errno) when
    the child failed before execve. All arguments are bytes/ints prepared by sandbox.runner.
    new_userns (with new_pidns): the namespaces are made inside a user namespace of their own,
    which needs no privilege where userns_available(); our euid/egid keep their values in it
    (mapped with the help of init_exe, else of the package's sandbox-init).
    loginuid (an int uid): the child writes it to /proc/self/loginuid so the run gets an audit
    session of its own (best effort; see sandbox.auditlog.run_session).
    zygote_sock: ask that zygote to start it instead (program, keep_fd, new_pidns and init_exe
    are then the zygote's own; so are notifier, landlock_fd and loginuid, which the caller must
    not use with it); status_fd is then the report pipe for watch(report_fd=); raises
    ZygoteError when the zygote is unreachable or died. One call at a time per socket.
    zygote_slot: (read_fd, write_fd, stop_fd, pipe_id) of a batch's slot pipe and stop pipe
    (pipe_id > 0 names them: the same id, the same pipes): the zygote starts it once it could
    take a slot from the pipe, and gives it back when it has ended; SpawnError stage "slot"
    (ECANCELED) once stop_fd is readable first (csrc/zygote.h). A zygote start returns (pid, pidfd, report_fd, start_ns), start_ns being when the zygote started it
    (CLOCK_MONOTONIC, as now_ns()).
    spawner: start it from that pre-filtered thread (program and notifier must be None,
    new_pidns False: the child inherits the thread's filter); raises SpawnerGone when the
    thread cannot serve (nothing started). Once it has started, call spawner.release() when
    the run has been reaped: the thread must outlive its children, whose PR_SET_PDEATHSIG
    fires when the thread that forked them exits."""
    cdef sb_spawner *c_spawner = NULL
    if spawner is not None:
        if program is not None or notifier is not None or new_pidns or zygote_sock >= 0:
            raise ValueError("a spawner's child inherits its filter: no program, notifier, "
                             "PID namespace or zygote")
        c_spawner = spawner._enter()   # left by spawner.release() once the run is reaped
    try:
        return _spawn(exe, argv, envp, cwd, stdio, umask, rlimits, cgroup_fds, ids, caps,
                      last_cap, pdeathsig, program, filter_flags, keep_fd, new_pidns, init_exe,
                      landlock_fd, notifier, notify_share_vm, loginuid, zygote_sock, c_spawner,
                      new_userns, zygote_slot)
    except BaseException:
        if spawner is not None:
            spawner._leave()
        raise


cdef struct _req_mem:
    char **argv
    char **envp
    sb_rlim *rl
    int *cg
    unsigned int *groups


cdef void _free_req(_req_mem *mem) noexcept nogil:
    free(mem.argv)
    free(mem.envp)
    free(mem.rl)
    free(mem.cg)
    free(mem.groups)


cdef int _fill_req(sb_spawn_req *req, _req_mem *mem, list keep, bytes exe, list argv,
                   list envp, cwd, stdio, int umask, list rlimits, list cgroup_fds, ids, caps,
                   int last_cap, int pdeathsig) except -1:
    """What every start shares: the command, its environment, descriptors, limits, ids and
    capabilities. The strings stay alive in keep; _free_req(mem) once the start is done."""
    cdef Py_ssize_t i
    rlimits = rlimits or []
    cgroup_fds = cgroup_fds or []
    memset(req, 0, sizeof(req[0]))
    mem.argv = _cstrings(argv, keep)
    mem.envp = _cstrings(envp, keep)
    mem.rl = <sb_rlim *>calloc(max(len(rlimits), 1), sizeof(sb_rlim))
    mem.cg = <int *>calloc(max(len(cgroup_fds), 1), sizeof(int))
    if mem.rl == NULL or mem.cg == NULL:
        raise MemoryError()
    for i, (res_id, soft, hard) in enumerate(rlimits):
        mem.rl[i].resource = res_id
        mem.rl[i].lim.rlim_cur = soft
        mem.rl[i].lim.rlim_max = hard
    for i, fd in enumerate(cgroup_fds):
        mem.cg[i] = fd
    req.exe = <const char *>exe
    req.argv = mem.argv
    req.envp = mem.envp
    if cwd is not None:
        keep.append(cwd)
        req.cwd = <const char *>cwd
    for i in range(3):
        req.stdio[i] = stdio[i]
    req.umask = umask
    req.nrlimit = len(rlimits)
    req.rlimit = mem.rl
    req.ncgroup = len(cgroup_fds)
    req.cgroup_procs = mem.cg
    if ids is not None:
        uid, gid, groups = ids
        mem.groups = <unsigned int *>calloc(max(len(groups), 1), sizeof(unsigned int))
        if mem.groups == NULL:
            raise MemoryError()
        for i, g in enumerate(groups):
            mem.groups[i] = g
        req.set_ids = 1
        req.uid = uid
        req.gid = gid
        req.ngroups = len(groups)
        req.groups = mem.groups
    if caps is not None:
        req.set_caps = 1
        req.caps = caps
    req.last_cap = last_cap
    req.pdeathsig = pdeathsig
    return 0


cdef _spawn(bytes exe, list argv, list envp, cwd, stdio, int umask, list rlimits,
            list cgroup_fds, ids, caps, int last_cap, int pdeathsig, program,
            unsigned int filter_flags, int keep_fd, bint new_pidns, bytes init_exe,
            int landlock_fd, Notifier notifier, bint notify_share_vm, loginuid,
            int zygote_sock, sb_spawner *c_spawner, bint new_userns, zygote_slot):
    cdef sb_spawn_req req
    cdef _req_mem mem
    cdef int64_t start_ns = 0
    cdef int slot_r = -1, slot_w = -1, stop_r = -1
    cdef int32_t slot_id = 0
    if zygote_slot is not None:
        slot_r, slot_w, stop_r, slot_id = zygote_slot
    cdef sb_spawn_result res
    cdef list keep = []
    cdef const unsigned char[::1] prog_view
    cdef int rc, transport_err = 0
    memset(&mem, 0, sizeof(mem))
    try:
        _fill_req(&req, &mem, keep, exe, argv, envp, cwd, stdio, umask, rlimits, cgroup_fds,
                  ids, caps, last_cap, pdeathsig)
        if program is not None:
            prog_view = program
            req.filter = <const sock_filter *>&prog_view[0]
            req.filter_len = <uint32_t>(len(program) // 8)
            req.filter_flags = filter_flags
        req.keep_fd = keep_fd
        req.landlock_fd = landlock_fd
        req.new_pidns = 1 if new_pidns else 0
        req.new_userns = 1 if new_userns else 0
        if new_userns:
            helper = init_exe if init_exe is not None else INIT_EXE
            if helper is None:
                raise SpawnError("userns", 2)   # ENOENT: sandbox-init is not built
            keep.append(helper)
            req.userns_helper = <const char *>helper
        if init_exe is not None:
            req.init_exe = <const char *>init_exe
        if notifier is not None:
            req.notify = &notifier.n
            req.notify_share_vm = 1 if notify_share_vm else 0
        if loginuid is not None:
            uid_text = b"%d" % loginuid
            keep.append(uid_text)
            req.loginuid = <const char *>uid_text
        with nogil:
            if zygote_sock >= 0:
                rc = sb_zygote_spawn_slot(zygote_sock, &req, slot_r, slot_w, stop_r, slot_id,
                                          &res, &start_ns)
                transport_err = errno
            elif c_spawner != NULL:
                rc = sb_spawner_spawn(c_spawner, &req, &res)
            else:
                rc = sb_spawn(&req, &res)
    finally:
        _free_req(&mem)
    if c_spawner != NULL and rc == SB_SPAWNER_GONE:
        raise SpawnerGone(3, "the spawner thread belongs to another process (a fork's parent)")
    if rc == SB_ZYGOTE_NOT_SENT or rc == SB_ZYGOTE_NO_REPLY:
        raise ZygoteError(transport_err, rc == SB_ZYGOTE_NO_REPLY)
    if rc < 0:
        raise SpawnError(stage_name(res.stage), res.err)
    if zygote_sock >= 0:
        return res.pid, res.pidfd, res.status_fd, start_ns
    return res.pid, res.pidfd, res.status_fd


def watch(int pid, int pidfd, int pgid, int status_fd=-1, int in_fd=-1, bytes in_data=b"", int out_fd=-1,
          int err_fd=-1, uint64_t output_limit=0, int64_t start_ns=0, int64_t wall_limit_ns=0,
          int64_t cpu_limit_ns=0, int cg_cpu_fd=-1, int cg_kill_fd=-1, int cg_events_fd=-1,
          int64_t drain_ns=200000000, int64_t cpu_base_ns=0, Notifier notifier=None,
          int report_fd=-1):
    """Supervise a started run until it is reaped and its tree killed (GIL released).
    Closes in_fd/out_fd/err_fd (and report_fd: a zygote job's end, see csrc/watch.h).
    Returns a dict of raw measurements."""
    cdef sb_watch w
    memset(&w, 0, sizeof(w))
    w.pid = pid
    w.pidfd = pidfd
    w.pgid = pgid
    w.status_fd = status_fd
    w.report_fd = report_fd
    w.in_fd = in_fd
    w.in_data = <const char *>in_data
    w.in_len = len(in_data)
    w.out.fd = out_fd
    w.err.fd = err_fd
    w.start_ns = start_ns if start_ns else sb_now_ns()
    _watch_limits(&w, output_limit, wall_limit_ns, cpu_limit_ns, cg_cpu_fd, cg_kill_fd,
                  cg_events_fd, drain_ns, cpu_base_ns)
    if notifier is not None:
        w.notify = &notifier.n
    return _watch(&w)


cdef void _watch_limits(sb_watch *w, uint64_t output_limit, int64_t wall_limit_ns,
                        int64_t cpu_limit_ns, int cg_cpu_fd, int cg_kill_fd, int cg_events_fd,
                        int64_t drain_ns, int64_t cpu_base_ns) noexcept:
    w.output_limit = output_limit
    w.wall_limit_ns = wall_limit_ns
    w.cpu_limit_ns = cpu_limit_ns
    w.cg_cpu_fd = cg_cpu_fd
    w.cg_kill_fd = cg_kill_fd
    w.cg_events_fd = cg_events_fd
    w.drain_ns = drain_ns
    w.cpu_base_ns = cpu_base_ns


cdef dict _watch(sb_watch *w):
    """sb_watch until the run is over, the GIL released but while Python's signal handlers
    run; its raw measurements."""
    cdef int rc
    pending = None
    while True:
        with nogil:
            rc = sb_watch_run(w)
        if rc != 1:
            break
        # a signal arrived: let Python's handler run (Ctrl-C, SIGTERM -> SystemExit, ...);
        # if it raises, kill the run's tree, finish supervising it, then re-raise
        if pending is None:
            try:
                PyErr_CheckSignals()
            except BaseException as e:
                pending = e
                w.abort = 1
    try:
        out = w.out.buf[:w.out.len] if w.out.buf != NULL else b""
        err = w.err.buf[:w.err.len] if w.err.buf != NULL else b""
    finally:
        free(w.out.buf)
        free(w.err.buf)
        w.out.buf = w.err.buf = NULL
    if pending is not None:
        raise pending
    if rc < 0:
        raise OSError(w.error, "supervising pid %d: %s" % (w.pid, os_strerror(w.error)))
    return {
        "status": w.status,
        "utime": w.ru.ru_utime.tv_sec + w.ru.ru_utime.tv_usec / 1e6,
        "stime": w.ru.ru_stime.tv_sec + w.ru.ru_stime.tv_usec / 1e6,
        "maxrss_kb": w.ru.ru_maxrss,
        "wall_ns": w.wall_ns,
        "cg_cpu_ns": w.cg_cpu_ns,
        "stdout": out,
        "stderr": err,
        "stdout_truncated": bool(w.out.truncated),
        "stderr_truncated": bool(w.err.truncated),
        "stdout_dropped": w.out.dropped,
        "stderr_dropped": w.err.dropped,
        "wall_exceeded": bool(w.wall_exceeded),
        "cpu_exceeded": bool(w.cpu_exceeded),
        "output_exceeded": bool(w.output_exceeded),
        "tree_empty": bool(w.tree_empty),
        "report_lost": bool(w.report_lost),
    }


def zygote_run(int zygote_sock, release, bytes exe, list argv, list envp, cwd, stdio,
               int umask=-1, list rlimits=None, list cgroup_fds=None, ids=None, caps=None,
               int last_cap=40, int pdeathsig=0, zygote_slot=None, bytes in_data=b"",
               uint64_t output_limit=0, int64_t wall_limit_ns=0, int64_t cpu_limit_ns=0,
               int cg_cpu_fd=-1, int cg_kill_fd=-1, int cg_events_fd=-1,
               int64_t drain_ns=200000000, int64_t cpu_base_ns=0):
    """spawn(zygote_sock=, zygote_slot=) and watch() of that job in one call: the pipes are
    made, the request sent, its answer awaited, the job watched and its pidfd closed without
    coming back to Python in between (but for release() and signals), so a run costs the
    supervisor fewer wake-ups and hand-overs of the GIL.
    release: called once the zygote has answered (or failed to): its lock's release.
    stdio: as spawn's, where -1 means a pipe of ours: stdin fed with in_data, stdout/stderr
    captured. The job is in the running table (cancel_running) while it runs.
    Returns (pid, start_ns, cancelled, raw); raises as spawn() before anything started."""
    cdef sb_spawn_req req
    cdef _req_mem mem
    cdef sb_spawn_result res
    cdef sb_watch w
    cdef int64_t start_ns = 0
    cdef int slot_r = -1, slot_w = -1, stop_r = -1
    cdef int32_t slot_id = 0
    cdef int ours[3]     # our ends of the pipes: stdin's write end, stdout's and stderr's read
    cdef int theirs[3]   # the job's ends, closed once the zygote has its copies
    cdef int p[2]
    cdef int i, rc = 0, err = 0, transport_err = 0, cancelled
    cdef list keep = []
    if zygote_slot is not None:
        slot_r, slot_w, stop_r, slot_id = zygote_slot
    memset(&mem, 0, sizeof(mem))
    for i in range(3):
        ours[i] = theirs[i] = -1
    try:
        _fill_req(&req, &mem, keep, exe, argv, envp, cwd, stdio, umask, rlimits, cgroup_fds,
                  ids, caps, last_cap, pdeathsig)
        with nogil:
            for i in range(3):
                if req.stdio[i] != -1:
                    continue
                if pipe2(p, O_CLOEXEC) < 0:
                    err = errno
                    break
                ours[i] = p[1] if i == 0 else p[0]
                theirs[i] = req.stdio[i] = p[0] if i == 0 else p[1]
            if err == 0:
                rc = sb_zygote_spawn_slot(zygote_sock, &req, slot_r, slot_w, stop_r, slot_id,
                                          &res, &start_ns)
                transport_err = errno
            for i in range(3):
                if theirs[i] >= 0:
                    close(theirs[i])
    finally:
        _free_req(&mem)
        release()
    if err != 0 or rc != 0:
        for i in range(3):
            if ours[i] >= 0:
                close(ours[i])
        if err != 0:
            raise OSError(err, "pipe2: %s" % os_strerror(err))
        if rc == SB_ZYGOTE_NOT_SENT or rc == SB_ZYGOTE_NO_REPLY:
            raise ZygoteError(transport_err, rc == SB_ZYGOTE_NO_REPLY)
        raise SpawnError(stage_name(res.stage), res.err)
    memset(&w, 0, sizeof(w))
    w.pid = res.pid
    w.pidfd = res.pidfd
    w.status_fd = -1
    w.report_fd = res.status_fd
    w.in_fd = ours[0]
    w.in_data = <const char *>in_data
    w.in_len = len(in_data)
    w.out.fd = ours[1]
    w.err.fd = ours[2]
    if start_ns == 0:   # (a zygote always says when it started the job)
        start_ns = sb_now_ns()
    w.start_ns = start_ns
    _watch_limits(&w, output_limit, wall_limit_ns, cpu_limit_ns, cg_cpu_fd, cg_kill_fd,
                  cg_events_fd, drain_ns, cpu_base_ns)
    w.remote = 1   # (as sb_watch sets it: the zygote's child, killed through its pidfd)
    if sb_running_add(res.pidfd) < 0:
        sb_watch_kill_tree(&w)   # (nothing could cancel it)
    try:
        raw = _watch(&w)
    except BaseException:
        # watch itself failed (it kills the tree on a signal before it raises): never leave
        # the job running unsupervised; the zygote reaps it
        sb_watch_kill_tree(&w)
        raise
    finally:
        cancelled = sb_running_remove(res.pidfd) == 1
        close(res.pidfd)
    return res.pid, start_ns, cancelled, raw

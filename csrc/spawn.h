/* Start one sandboxed process: vfork, set the child up with raw syscalls only, install the
 * seccomp filter, execve. Everything the child needs is prepared by the caller before the call;
 * the child touches no allocator and no interpreter (see CPython's _posixsubprocess.c for the
 * discipline). A failure in the child comes back as (stage, errno) over a close-on-exec pipe. */
#ifndef SB_SPAWN_H
#define SB_SPAWN_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <linux/filter.h>

struct sb_notify;

/* Child set-up stages, in the order they run. */
enum sb_stage {
	SB_STAGE_NONE = 0,
	SB_STAGE_SIGNALS,     /* reset signal dispositions and mask */
	SB_STAGE_SESSION,     /* setsid: own session and process group */
	SB_STAGE_PROC,        /* PID namespace: a private /proc that shows only the run */
	SB_STAGE_CGROUP,      /* join the run's cgroups */
	SB_STAGE_STDIO,       /* dup2 of stdin/stdout/stderr */
	SB_STAGE_CLOSE_FDS,   /* close every other descriptor */
	SB_STAGE_CHDIR,       /* working directory */
	SB_STAGE_UMASK,
	SB_STAGE_RLIMIT,      /* setrlimit */
	SB_STAGE_BOUNDING,    /* drop capabilities from the bounding set */
	SB_STAGE_SETGROUPS,
	SB_STAGE_SETGID,
	SB_STAGE_SETUID,
	SB_STAGE_CAPS,        /* capset + clear ambient capabilities */
	SB_STAGE_PDEATHSIG,
	SB_STAGE_NO_NEW_PRIVS,
	SB_STAGE_LANDLOCK,    /* landlock_restrict_self: the filesystem ruleset */
	SB_STAGE_SECCOMP,     /* seccomp(SECCOMP_SET_MODE_FILTER) */
	SB_STAGE_EXEC,        /* execve */
	SB_STAGE_FORK,        /* vfork itself failed (reported by the parent) */
	SB_STAGE_INIT,        /* pid 1 could not become sandbox-init */
	SB_STAGE_LISTENER,    /* the supervisor could not take over the notification listener */
	SB_STAGE_SUBREAPER,   /* PR_SET_CHILD_SUBREAPER for the command (a zygote's job) */
	SB_STAGE_USERNS,      /* user namespace: map our own uid/gid (pid 1, right after PROC) */
	SB_STAGE_SLOT,        /* a zygote's job waiting for a batch slot was dropped (stopped) */
	SB_STAGE_COUNT
};

const char *sb_stage_name(int stage);

struct sb_rlim {
	int resource;
	struct rlimit lim;
};

struct sb_spawn_req {
	const char *exe;              /* path given to execve (resolved by the caller) */
	char *const *argv;
	char *const *envp;
	const char *cwd;              /* NULL: keep the caller's */
	int stdio[3];                 /* descriptors that become 0, 1, 2 in the child */
	int umask;                    /* -1: keep */
	uint32_t nrlimit;
	const struct sb_rlim *rlimit;
	uint32_t ncgroup;
	const int *cgroup_procs;      /* open cgroup.procs files the child writes "0" to */
	int set_ids;                  /* 1: setgroups/setresgid/setresuid below */
	uid_t uid;
	gid_t gid;
	uint32_t ngroups;
	const gid_t *groups;
	int set_caps;                 /* 1: keep only `caps` (bounding, permitted, effective,
					 inheritable); ambient always cleared */
	uint64_t caps;
	int last_cap;                 /* highest capability number the kernel knows */
	int pdeathsig;                /* 0: none */
	const struct sock_filter *filter; /* NULL: no seccomp (NO_NEW_PRIVS still set) */
	uint32_t filter_len;
	unsigned int filter_flags;
	int keep_fd;                  /* one more descriptor to keep open (-1: none) */
	int landlock_fd;              /* Landlock ruleset applied after NO_NEW_PRIVS (landlock.h);
					 below 3: none */
	const char *init_exe;         /* with new_pidns: sandbox-init runs as pid 1 and the command
					 as pid 2 (NULL: the command is pid 1) */
	int new_pidns;                /* 1: the child starts a PID and a mount namespace (needs
					 CAP_SYS_ADMIN): it is pid 1 there, its /proc shows only its own
					 processes, and everything it starts dies with it */
	int new_userns;               /* with new_pidns: the namespaces are created inside a user
					 namespace of their own, so no privilege is needed. The caller's
					 euid/egid map to themselves (the command keeps its ids and, not
					 being root there, execs with no capability); sb_spawn formats the
					 maps before the clone, pid 1 writes them with userns_helper's help */
	const char *userns_helper;    /* with new_userns: sandbox-init (run briefly as pid 2 to
					 write the maps through, see spawn.c's map_own_ids) */
	struct sb_notify *notify;     /* not NULL: the filter is installed with a notification
					 listener, which the supervisor takes over before execve (the
					 execve itself may need an answer, so the caller is not frozen
					 as with vfork: see start_notified) */
	int notify_share_vm;          /* with notify: share our memory with the child (needs
					 CAP_SYS_PTRACE to take the listener from a process that
					 shares our non-dumpable memory); 0: a copy, as fork */
	int child_subreaper;          /* 1: the command is the subreaper of everything it starts
					 (PR_SET_CHILD_SUBREAPER, kept across execve), so whatever it
					 leaves behind is reparented to our caller only once the command
					 itself has ended: how a zygote tells which job left an orphan */
	int bounding_known;           /* 1: `bounding` is the calling thread's bounding set (a
					 zygote or spawner thread that set it up once), so the child
					 drops what it must without reading the set cap by cap */
	uint64_t bounding;
	uint64_t reset_signals;       /* signals (bit sig-1) whose disposition the child resets to
					 default before execve; 0: every one (the caller may have
					 handlers: a vfork child shares their memory). A zygote, whose
					 only non-default disposition is SIGPIPE ignored, names it alone */
	const char *loginuid;         /* decimal uid written to /proc/self/loginuid first thing, so
					 the run gets an audit session (`ses=` in audit records) of
					 its own that every descendant inherits; best effort: on
					 failure the run keeps the caller's session. NULL: skip */
};

struct sb_spawn_result {
	pid_t pid;
	int pidfd;                    /* -1 if pidfd_open is unavailable */
	int status_fd;                /* with sandbox-init: read end that gets the command's wait
					 status (4 bytes) when it ends; -1 otherwise */
	int stage;                    /* enum sb_stage of a failure, SB_STAGE_NONE on success */
	int err;                      /* errno of the failure */
};

/* The calling thread's capability bounding set, capabilities 0..last_cap (at most 63; those
 * the kernel does not know end it), into *set: 0, or -1 when a read failed (then nothing may be
 * assumed of it). */
int sb_bounding_set(int last_cap, uint64_t *set);

/* Returns 0 when the command was executed (res->pid, res->pidfd set), -1 when the child failed
 * before execve (res->stage, res->err set; the child has been reaped). Thread-safe: call it from
 * many threads at once; blocks only the calling thread, and only until the child execs. */
int sb_spawn(const struct sb_spawn_req *req, struct sb_spawn_result *res);

/* Can this process start runs with new_userns? Starts a child in a new user, PID and mount
 * namespace that mounts a /proc there and maps its ids with `helper` (sandbox-init), as a run
 * would, and reaps it. Returns 0, or the errno of the step that failed. */
int sb_userns_probe(const char *helper);

#endif

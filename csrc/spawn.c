/* vfork + child set-up + execve. The child shares the caller's memory until execve: it calls no
 * libc function that could take a lock, touch errno of another thread or allocate; every step is
 * a raw syscall, and the first failure is written as (stage, errno) to a close-on-exec pipe. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <time.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "notify.h"
#include "spawn.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static const char *const stage_names[SB_STAGE_COUNT] = {
	[SB_STAGE_NONE] = "none",
	[SB_STAGE_SIGNALS] = "signals",
	[SB_STAGE_SESSION] = "setsid",
	[SB_STAGE_PROC] = "mount-proc",
	[SB_STAGE_CGROUP] = "cgroup",
	[SB_STAGE_STDIO] = "stdio",
	[SB_STAGE_CLOSE_FDS] = "close-fds",
	[SB_STAGE_CHDIR] = "chdir",
	[SB_STAGE_UMASK] = "umask",
	[SB_STAGE_RLIMIT] = "rlimit",
	[SB_STAGE_BOUNDING] = "capability-bounding-set",
	[SB_STAGE_SETGROUPS] = "setgroups",
	[SB_STAGE_SETGID] = "setgid",
	[SB_STAGE_SETUID] = "setuid",
	[SB_STAGE_CAPS] = "capabilities",
	[SB_STAGE_PDEATHSIG] = "pdeathsig",
	[SB_STAGE_NO_NEW_PRIVS] = "no-new-privs",
	[SB_STAGE_LANDLOCK] = "landlock",
	[SB_STAGE_SECCOMP] = "seccomp",
	[SB_STAGE_EXEC] = "execve",
	[SB_STAGE_FORK] = "fork",
	[SB_STAGE_INIT] = "sandbox-init",
	[SB_STAGE_LISTENER] = "seccomp-listener",
	[SB_STAGE_SUBREAPER] = "subreaper",
	[SB_STAGE_USERNS] = "userns",
	[SB_STAGE_SLOT] = "slot",
};

const char *sb_stage_name(int stage)
{
	if (stage < 0 || stage >= SB_STAGE_COUNT)
		return "unknown";
	return stage_names[stage];
}

/* Shared between the supervisor and a child whose filter has a notification listener (in memory
 * both see: ours with CLONE_VM, a MAP_SHARED page otherwise). The child may make no syscall to say
 * the listener is ready -- the filter could hold that very call for an answer nobody can give yet --
 * so it publishes the descriptor number here and spins until the supervisor has taken it. */
struct sb_handshake {
	int ready;     /* child: the listener number is in `listener` */
	int listener;  /* in the command's descriptor table */
	int cmd_pidfd; /* with a PID namespace: pid 1's pidfd for the command */
	int taken;     /* supervisor: the listener is ours, go on to execve */
};

/* ---- the child: raw syscalls only ------------------------------------------------------- */

/* A system call that leaves errno alone: its result, or -errno. The child shares the memory of
 * the thread that started it, errno included; that thread waits in vfork, except for a notified
 * run as root, cloned with CLONE_VM while the supervisor goes on answering its calls: glibc's
 * syscall() would write the child's failures into the supervisor's errno, and the child would read
 * the supervisor's as its own. */
static long raw(long nr, long a, long b, long c, long d, long e)
{
#if defined(__x86_64__) && !defined(__ILP32__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;

	__asm__ volatile("svc #0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4)
			 : "memory");
	return x0;
#else
	long ret = syscall(nr, a, b, c, d, e, 0); /* (elsewhere errno is shared, as said above) */

	return ret < 0 ? -errno : ret;
#endif
}

static __attribute__((noreturn)) void child_fail(int pipe_w, int stage, int err)
{
	int rec[2] = {stage, err};

	raw(SYS_write, pipe_w, (long)rec, sizeof(rec), 0, 0);
	for (;;)
		raw(SYS_exit_group, 127, 0, 0, 0, 0);
}

/* expr: a raw() result, or -errno from a helper */
#define CHECK(stage, expr)                                                                      \
	do {                                                                                        \
		long rc_ = (expr);                                                                  \
		if (rc_ < 0)                                                                        \
			child_fail(pipe_w, (stage), (int)-rc_);                                     \
	} while (0)

/* close every descriptor from 3 up except keep[0..n) (n <= 4; entries below 3 are ignored) */
static void close_all_but(int pipe_w, const int *keep, int n)
{
	int sorted[4], from = 3;

	/* insertion sort of the few kept descriptors, then close the gaps between them */
	for (int i = 0; i < n; i++) {
		int j = i;

		for (; j > 0 && sorted[j - 1] > keep[i]; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = keep[i];
	}
	for (int i = 0; i < n; i++) {
		if (sorted[i] < from)
			continue;
		if (sorted[i] > from)
			CHECK(SB_STAGE_CLOSE_FDS, raw(SYS_close_range, from, sorted[i] - 1, 0, 0, 0));
		from = sorted[i] + 1;
	}
	CHECK(SB_STAGE_CLOSE_FDS, raw(SYS_close_range, from, ~0U, 0, 0, 0));
}

static int cap_kept(const struct sb_spawn_req *r, int cap)
{
	return cap < 64 && ((r->caps >> cap) & 1);
}

static void reset_signal_handlers(uint64_t which)
{
	for (int sig = 1; sig < 65; sig++) {
		struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } sa = {0};

		if (sig == SIGKILL || sig == SIGSTOP || (which && !((which >> (sig - 1)) & 1)))
			continue;
		sa.handler = SIG_DFL;
		raw(SYS_rt_sigaction, sig, (long)&sa, 0, 8, 0); /* EINVAL for unused numbers: fine */
	}
}

int sb_bounding_set(int last_cap, uint64_t *set)
{
	*set = 0;
	for (int cap = 0; cap <= last_cap && cap < 64; cap++) {
		int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

		if (in < 0 && errno == EINVAL && cap > 0)
			return 0; /* past the kernel's last capability */
		if (in < 0)
			return -1;
		*set |= (uint64_t)(in == 1) << cap;
	}
	return 0;
}

/* Drop from the bounding set every capability not kept that is still in it. A drop is dear
 * (the kernel allocates new credentials and frees the old ones after an RCU grace period), and
 * a zygote or a spawner thread has dropped most of them once already: it tells us its set
 * (bounding_known), else each capability is read first (cheap). */
static int in_bounding(const struct sb_spawn_req *r, int cap)
{
	if (r->bounding_known && cap < 64)
		return (r->bounding >> cap) & 1;
	return raw(SYS_prctl, PR_CAPBSET_READ, cap, 0, 0, 0) != 0;
}

static long drop_bounding(const struct sb_spawn_req *r)
{
	for (int cap = 0; cap <= r->last_cap; cap++) {
		long rc;

		if (cap_kept(r, cap) || !in_bounding(r, cap))
			continue;
		rc = raw(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void drop_all_caps(int pipe_w, int last_cap)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];

	for (int cap = 0; cap <= last_cap; cap++)
		if (raw(SYS_prctl, PR_CAPBSET_READ, cap, 0, 0, 0) != 0)
			CHECK(SB_STAGE_INIT, raw(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0));
	memset(data, 0, sizeof(data));
	CHECK(SB_STAGE_INIT, raw(SYS_capset, (long)&hdr, (long)data, 0, 0, 0));
	raw(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

/* Write all of `text` to a /proc file in one write (as the kernel wants it): 0, or -errno. */
static long write_proc(const char *path, const char *text)
{
	long fd, n, len = 0;

	while (text[len])
		len++;
	fd = raw(SYS_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC, 0, 0);
	if (fd < 0)
		return fd;
	n = raw(SYS_write, fd, (long)text, len, 0, 0);
	raw(SYS_close, fd, 0, 0, 0, 0);
	if (n < 0)
		return n;
	return n == len ? 0 : -EIO;
}

/* A valid uid written to our own loginuid makes the kernel allocate a fresh audit session id
 * (allowed while ours is unset, else with CAP_AUDIT_CONTROL). Errors are ignored: the caller
 * compares /proc/PID/sessionid with its own to learn whether the run got one. The file must be
 * opened here: the kernel lets only the process itself write its loginuid. (A caller that is
 * not root and made itself non-dumpable fails here: sharing its mm, we see a root-owned /proc.) */
static void new_audit_session(const struct sb_spawn_req *r)
{
	if (r->loginuid)
		write_proc("/proc/self/loginuid", r->loginuid);
}

/* A private /proc of the PID namespace we are pid 1 of, in our own mount namespace: 0 or -errno. */
static long mount_own_proc(void)
{
	long rc = raw(SYS_mount, 0, (long)"/", 0, MS_REC | MS_PRIVATE, 0);

	if (rc < 0)
		return rc;
	return raw(SYS_mount, (long)"proc", (long)"/proc", (long)"proc",
		   MS_NOSUID | MS_NODEV | MS_NOEXEC, 0);
}

static __attribute__((noreturn)) void child(const struct sb_spawn_req *r, int pipe_w,
					    const sigset_t *empty, struct sb_handshake *hs,
					    int signals_reset)
{
	int fds[3];

	/* 0. an audit session of the run's own (in a PID namespace pid 1 did it already) */
	if (!r->new_pidns)
		new_audit_session(r);

	/* 1. signals: every disposition back to default (the caller's Python handlers live in
	 * memory we share); the mask is emptied just before the filter goes in */
	if (!signals_reset)
		reset_signal_handlers(r->reset_signals);

	/* 2. own session and process group, so the whole tree can be signalled */
	CHECK(SB_STAGE_SESSION, raw(SYS_setsid, 0, 0, 0, 0, 0));

	/* 3. the run's cgroups */
	for (uint32_t i = 0; i < r->ncgroup; i++)
		CHECK(SB_STAGE_CGROUP, raw(SYS_write, r->cgroup_procs[i], (long)"0", 1, 0, 0));

	/* 4. stdio: move sources that sit on 0..2 out of the way first */
	for (int i = 0; i < 3; i++) {
		fds[i] = r->stdio[i];
		if (fds[i] >= 0 && fds[i] < 3 && fds[i] != i) {
			long moved = raw(SYS_fcntl, fds[i], F_DUPFD_CLOEXEC, 3, 0, 0);

			CHECK(SB_STAGE_STDIO, moved);
			fds[i] = (int)moved;
		}
	}
	for (int i = 0; i < 3; i++) {
		if (fds[i] == i)
			CHECK(SB_STAGE_STDIO, raw(SYS_fcntl, i, F_SETFD, 0, 0, 0));
		else
			CHECK(SB_STAGE_STDIO, raw(SYS_dup3, fds[i], i, 0, 0, 0));
	}

	/* 5. no other descriptor survives (the error pipe and the Landlock ruleset are
	 * close-on-exec: they go at execve) */
	{
		int keep[3] = {pipe_w, r->keep_fd, r->landlock_fd};

		close_all_but(pipe_w, keep, 3);
	}

	/* 6. working directory, umask, limits */
	if (r->cwd)
		CHECK(SB_STAGE_CHDIR, raw(SYS_chdir, (long)r->cwd, 0, 0, 0, 0));
	if (r->umask >= 0)
		raw(SYS_umask, r->umask, 0, 0, 0, 0);
	for (uint32_t i = 0; i < r->nrlimit; i++)
		CHECK(SB_STAGE_RLIMIT,
		      raw(SYS_prlimit64, 0, r->rlimit[i].resource, (long)&r->rlimit[i].lim, 0, 0));

	/* 7. privileges: bounding set first (needs CAP_SETPCAP), then ids, then the rest */
	if (r->set_caps)
		CHECK(SB_STAGE_BOUNDING, drop_bounding(r));
	if (r->set_ids) {
		CHECK(SB_STAGE_SETGROUPS, raw(SYS_setgroups, r->ngroups, (long)r->groups, 0, 0, 0));
		CHECK(SB_STAGE_SETGID, raw(SYS_setresgid, r->gid, r->gid, r->gid, 0, 0));
		CHECK(SB_STAGE_SETUID, raw(SYS_setresuid, r->uid, r->uid, r->uid, 0, 0));
	}
	if (r->set_caps) {
		struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct data[2];
		int still_root = !r->set_ids || r->uid == 0;

		memset(data, 0, sizeof(data));
		if (still_root) {
			for (int w = 0; w < 2; w++) {
				uint32_t keep = (uint32_t)(r->caps >> (32 * w));

				data[w].effective = data[w].permitted = keep; /* inheritable: none,
										  as Docker */
			}
		}
		CHECK(SB_STAGE_CAPS, raw(SYS_capset, (long)&hdr, (long)data, 0, 0, 0));
		raw(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	}
	if (r->pdeathsig)
		CHECK(SB_STAGE_PDEATHSIG, raw(SYS_prctl, PR_SET_PDEATHSIG, r->pdeathsig, 0, 0, 0));
	if (r->child_subreaper)
		CHECK(SB_STAGE_SUBREAPER, raw(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));

	/* 8. unblock signals now: after the filter is in place the only call left is execve */
	raw(SYS_rt_sigprocmask, SIG_SETMASK, (long)empty, 0, 8, 0);

	/* a copy of our memory (fork-style hand-over) is ours to make dumpable, so that the
	 * supervisor, without CAP_SYS_PTRACE, may take the listener from it; execve resets this */
	if (hs && !r->notify_share_vm)
		CHECK(SB_STAGE_LISTENER, raw(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0));

	/* 9. no_new_privs, the filesystem ruleset, the filter, execve */
	CHECK(SB_STAGE_NO_NEW_PRIVS, raw(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	if (r->landlock_fd >= 3)
		CHECK(SB_STAGE_LANDLOCK, raw(SYS_landlock_restrict_self, r->landlock_fd, 0, 0, 0, 0));
	if (r->filter) {
		struct sock_fprog prog = {(unsigned short)r->filter_len,
					  (struct sock_filter *)r->filter};
		long fd = raw(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			      r->filter_flags | (hs ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0),
			      (long)&prog, 0, 0);

		CHECK(SB_STAGE_SECCOMP, fd);
		if (hs) {
			/* from here every call may wait for the supervisor: publish, then spin */
			__atomic_store_n(&hs->listener, (int)fd, __ATOMIC_RELAXED);
			__atomic_store_n(&hs->ready, 1, __ATOMIC_RELEASE);
			while (!__atomic_load_n(&hs->taken, __ATOMIC_ACQUIRE))
				__builtin_ia32_pause();
		}
	}
	child_fail(pipe_w, SB_STAGE_EXEC,
		   (int)-raw(SYS_execve, (long)r->exe, (long)r->argv, (long)r->envp, 0, 0));
}

/* ---- the parent ------------------------------------------------------------------------- */

#define CLONE_STACK (256 * 1024)

struct clone_arg {
	const struct sb_spawn_req *req;
	int pipe_w;
	const sigset_t *empty;
	int status_w;                 /* write end of the status pipe (init's fd 3) */
	int pipe_r;                   /* read end of the error pipe (to peek, never to read) */
	struct sb_handshake *hs;      /* notification listener hand-over, NULL without */
	char *cmd_stack;              /* top of the command's stack when pid 1 cannot vfork */
	char uid_map[32];             /* with new_userns: "EUID EUID 1", formatted by the parent */
	char gid_map[32];
};

/* Only the parent formats: the child calls no libc beyond syscall(). */
static void format_id_maps(struct clone_arg *a)
{
	snprintf(a->uid_map, sizeof(a->uid_map), "%u %u 1", (unsigned)geteuid(), (unsigned)geteuid());
	snprintf(a->gid_map, sizeof(a->gid_map), "%u %u 1", (unsigned)getegid(), (unsigned)getegid());
}

/* "/proc/<pid>/<file>" into buf (at least 48 bytes), without libc */
static const char *proc_path(char *buf, long pid, const char *file)
{
	char digits[20], *p = buf;
	int n = 0;

	for (const char *s = "/proc/"; *s; s++)
		*p++ = *s;
	do
		digits[n++] = (char)('0' + pid % 10);
	while ((pid /= 10) && n < 19);
	while (n)
		*p++ = digits[--n];
	*p++ = '/';
	while (*file && p < buf + 47)
		*p++ = *file++;
	*p = 0;
	return buf;
}

/* The helper of map_own_ids: pid 2, sandbox-init holding still, with nothing of ours open but
 * the pipe end it closes once it runs. Returns its pid once it does, or -errno. */
static long start_map_helper(const char *exe)
{
	char *const argv[] = {(char *)"sandbox-init", NULL};
	char *const envp[] = {NULL};
	int p[2], err = 0;
	long pid, got, rc;

	rc = raw(SYS_pipe2, (long)p, O_CLOEXEC, 0, 0, 0);
	if (rc < 0)
		return rc;
	pid = vfork();
	if (pid == 0) {
		/* the pipe end becomes fd 0 (it may be already, when our stdin was closed) */
		long moved = p[1] == 0 ? raw(SYS_fcntl, 0, F_SETFD, 0, 0, 0)
				       : raw(SYS_dup3, p[1], 0, 0, 0, 0);
		long step = moved == 0 ? raw(SYS_close_range, 1, ~0U, 0, 0, 0) : moved;
		int e;

		if (step == 0)
			step = raw(SYS_execve, (long)exe, (long)argv, (long)envp, 0, 0);
		e = (int)-step;
		raw(SYS_write, 0, (long)&e, sizeof(e), 0, 0);
		for (;;)
			raw(SYS_exit_group, 127, 0, 0, 0, 0);
	}
	if (pid < 0)
		err = errno; /* (glibc's vfork: a failure to start is the one errno we read) */
	raw(SYS_close, p[1], 0, 0, 0, 0);
	if (pid > 0) {
		do
			got = raw(SYS_read, p[0], (long)&err, sizeof(err), 0, 0);
		while (got == -EINTR);
		if (got != 0) { /* its exec failed (err), or the read did */
			if (got < 0)
				err = (int)-got;
			raw(SYS_kill, pid, SIGKILL, 0, 0, 0);
			raw(SYS_wait4, pid, 0, 0, 0, 0);
		}
	}
	raw(SYS_close, p[0], 0, 0, 0, 0);
	return err ? -err : pid;
}

/* In the new user namespace we hold every capability, but no id of ours maps to anything yet:
 * map the caller's euid and egid, each to itself (setgroups denied first, as an unprivileged
 * gid_map must be). Not through /proc/self: we share the supervisor's non-dumpable memory, which
 * makes our /proc files root's and closed to us (a copy of that memory instead would cost a page
 * table copy of the whole supervisor per run, and a dumpable supervisor a moment's exposure).
 * A process of the namespace that has exec'd has files of its euid's, ours, and a map written
 * through any process of the namespace is the namespace's: sandbox-init, briefly, as pid 2.
 * ns_last_pid then gives pid 2 back to the command. Needs the namespace's /proc mounted. */
static long map_own_ids(const struct clone_arg *a)
{
	char path[48];
	long rc, helper = start_map_helper(a->req->userns_helper);

	if (helper < 0)
		return helper;
	rc = write_proc(proc_path(path, helper, "setgroups"), "deny");
	if (rc == 0)
		rc = write_proc(proc_path(path, helper, "uid_map"), a->uid_map);
	if (rc == 0)
		rc = write_proc(proc_path(path, helper, "gid_map"), a->gid_map);
	raw(SYS_kill, helper, SIGKILL, 0, 0, 0);
	raw(SYS_wait4, helper, 0, 0, 0, 0);
	if (rc == 0 && helper == 2)
		rc = write_proc("/proc/sys/kernel/ns_last_pid", "1");
	return rc;
}

static int command_entry(void *p)
{
	const struct clone_arg *a = p;

	/* started by pid 1 of a new PID namespace, which reset the signals already, or (a
	 * notified run without one) straight from the caller */
	child(a->req, a->pipe_w, a->empty, a->hs, a->req->new_pidns);
}

/* pid 1 of the run's PID namespace (shares our memory until it execs: raw syscalls only).
 * It mounts the namespace's /proc, vforks the command as pid 2, and then becomes sandbox-init,
 * which reaps the namespace and reports pid 2's status on fd 3. Without an init program the
 * command itself runs as pid 1. */
static int clone_child(void *p)
{
	const struct clone_arg *a = p;
	const struct sb_spawn_req *r = a->req;
	int pipe_w = a->pipe_w;
	pid_t main_pid;
	int pending = 0;

	reset_signal_handlers(r->reset_signals); /* (the command, started from here, inherits) */
	/* a /proc of this namespace, in a mount namespace of our own, so other runs and the
	 * supervisor cannot be reached through /proc/PID either */
	CHECK(SB_STAGE_PROC, mount_own_proc());
	if (r->new_userns)
		CHECK(SB_STAGE_USERNS, map_own_ids(a));
	new_audit_session(r);    /* before the command is started: init and it share it */
	if (!r->init_exe)
		child(r, pipe_w, a->empty, a->hs, 1);
	/* init stays out of the run's cgroups (it would count against pids.max); the command
	 * joins them, and init goes when the command does */

	if (a->hs) {
		/* the supervisor needs a pidfd for the command to take its listener: made by the
		 * kernel into our shared memory before the command runs */
		main_pid = clone(command_entry, a->cmd_stack,
				 CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, p, &a->hs->cmd_pidfd);
	} else {
		main_pid = vfork();
		if (main_pid == 0)
			child(r, pipe_w, a->empty, NULL, 1);
	}
	if (main_pid < 0)
		child_fail(pipe_w, SB_STAGE_FORK, errno); /* (glibc's: the one errno read here) */
	/* vfork returned: the command exec'd, or failed and left its record in the error pipe
	 * (peeked at, not read: the parent reads it). Never reap it here: init reports it. */
	if (raw(SYS_ioctl, a->pipe_r, FIONREAD, (long)&pending, 0, 0) == 0 && pending > 0)
		for (;;)
			raw(SYS_exit_group, 127, 0, 0, 0, 0);

	/* become sandbox-init: fd 3 carries the status, nothing else is open, no privilege */
	CHECK(SB_STAGE_INIT, raw(SYS_dup3, a->status_w, 3, 0, 0, 0));
	CHECK(SB_STAGE_INIT, raw(SYS_close_range, 0, 2, 0, 0, 0));
	{
		int keep[2] = {pipe_w, 3};

		close_all_but(pipe_w, keep, 2);
	}
	drop_all_caps(pipe_w, r->last_cap);
	CHECK(SB_STAGE_INIT, raw(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));
	CHECK(SB_STAGE_INIT, raw(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	{
		char *const argv[] = {(char *)"sandbox-init", NULL};
		char *const envp[] = {NULL};

		child_fail(pipe_w, SB_STAGE_INIT,
			   (int)-raw(SYS_execve, (long)r->init_exe, (long)argv, (long)envp, 0, 0));
	}
}

/* The namespaces of a run with new_pidns. */
static int ns_flags(const struct sb_spawn_req *req)
{
	return CLONE_NEWPID | CLONE_NEWNS | (req->new_userns ? CLONE_NEWUSER : 0);
}

/* vfork, or clone(CLONE_VM|CLONE_VFORK|CLONE_NEWPID...) on a stack of its own. */
static pid_t start_child(const struct sb_spawn_req *req, struct clone_arg *a)
{
	void *stack;
	pid_t pid;

	if (!req->new_pidns) {
		pid = vfork();
		if (pid == 0)
			child(req, a->pipe_w, a->empty, NULL, 0);
		return pid;
	}
	stack = mmap(NULL, CLONE_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
		     -1, 0);
	if (stack == MAP_FAILED)
		return -1;
	pid = clone(clone_child, (char *)stack + CLONE_STACK,
		    CLONE_VM | CLONE_VFORK | ns_flags(req) | SIGCHLD, a);
	{
		int saved = errno;

		munmap(stack, CLONE_STACK); /* the child has exec'd or exited: CLONE_VFORK */
		errno = saved;
	}
	return pid;
}

/* ---- notification listener hand-over ----------------------------------------------------- */

struct notified {
	struct sb_handshake *hs;      /* MAP_SHARED page */
	char *stacks;                 /* two stacks: pid 1 (or the command) and the command */
	int pidfd;                    /* of the process we started */
};

/* Like start_child, but the caller keeps running: the command's execve may itself be a call the
 * supervisor must answer, so nobody may sit frozen in vfork waiting for it. The child runs on a
 * stack of its own, in our memory when we may take a descriptor from it (root), else in a copy. */
static pid_t start_notified(const struct sb_spawn_req *req, struct clone_arg *a, struct notified *nt)
{
	int flags = CLONE_PIDFD | SIGCHLD;

	nt->pidfd = -1;
	nt->hs = mmap(NULL, sizeof(*nt->hs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (nt->hs == MAP_FAILED) {
		nt->hs = NULL;
		return -1;
	}
	nt->hs->cmd_pidfd = -1;
	nt->stacks = mmap(NULL, 2 * CLONE_STACK, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (nt->stacks == MAP_FAILED) {
		nt->stacks = NULL;
		return -1;
	}
	a->hs = nt->hs;
	a->cmd_stack = nt->stacks + 2 * CLONE_STACK;
	if (req->notify_share_vm)
		flags |= CLONE_VM;
	if (req->new_pidns)
		return clone(clone_child, nt->stacks + CLONE_STACK, flags | ns_flags(req), a,
			     &nt->pidfd);
	return clone(command_entry, nt->stacks + CLONE_STACK, flags, a, &nt->pidfd);
}

static void notified_free(struct notified *nt)
{
	if (nt->hs)
		munmap(nt->hs, sizeof(*nt->hs));
	if (nt->stacks)
		munmap(nt->stacks, 2 * CLONE_STACK);
	if (nt->pidfd >= 0)
		close(nt->pidfd);
}

/* Take the listener from the command once it is published, then answer its calls until its
 * execve is done (the error pipe closes) or fails (a record arrives). Returns what reading the
 * error pipe returned (sizeof(rec) on a failure record, 0 at execve), or -1 with *stage, errno. */
static ssize_t await_exec_notified(const struct sb_spawn_req *req, struct notified *nt,
				   int pipe_r, int rec[2], int *stage)
{
	struct sb_notify *n = req->notify;
	struct pollfd p[2] = {{pipe_r, POLLIN, 0}, {-1, POLLIN, 0}};
	struct timespec spin = {0, 20000};
	int owner = nt->pidfd, cmd = -1, listener;

	while (!__atomic_load_n(&nt->hs->ready, __ATOMIC_ACQUIRE)) {
		int rc = ppoll(p, 1, &spin, NULL);

		if (rc > 0)
			goto read_pipe; /* failed (or died) before the filter went in */
		if (rc < 0 && errno != EINTR) {
			*stage = SB_STAGE_LISTENER;
			return -1;
		}
	}
	if (req->new_pidns && req->init_exe) {
		cmd = (int)syscall(SYS_pidfd_getfd, nt->pidfd, nt->hs->cmd_pidfd, 0);
		owner = cmd;
	}
	listener = owner < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, owner, nt->hs->listener, 0);
	if (cmd >= 0) {
		int saved = errno;

		close(cmd);
		errno = saved;
	}
	if (listener < 0) {
		*stage = SB_STAGE_LISTENER;
		return -1;
	}
	sb_notify_attach(n, listener);
	__atomic_store_n(&nt->hs->taken, 1, __ATOMIC_RELEASE);
	p[1].fd = n->listener;
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			*stage = SB_STAGE_LISTENER;
			return -1;
		}
		if (p[1].revents & POLLIN)
			sb_notify_serve(n);
		if (p[0].revents)
			break;
	}
read_pipe:
	{
		ssize_t got;

		do
			got = read(pipe_r, rec, 2 * sizeof(int));
		while (got < 0 && errno == EINTR);
		return got;
	}
}

int sb_spawn(const struct sb_spawn_req *req, struct sb_spawn_result *res)
{
	int pipefd[2];
	sigset_t all, old, empty;
	pid_t pid;
	int rec[2] = {0, 0};
	ssize_t got;
	int stpipe[2] = {-1, -1};
	struct notified nt = {NULL, NULL, -1};
	struct clone_arg a;
	int notified = req->notify && req->filter;

	memset(res, 0, sizeof(*res));
	res->pid = -1;
	res->pidfd = -1;
	res->status_fd = -1;
	if (req->new_pidns && req->init_exe && pipe2(stpipe, O_CLOEXEC) < 0) {
		res->stage = SB_STAGE_FORK;
		res->err = errno;
		return -1;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		res->stage = SB_STAGE_FORK;
		res->err = errno;
		return -1;
	}
	if (pipefd[1] < 3) {
		/* the caller runs without stdio: keep the pipe clear of the 0..2 the child fills */
		int moved = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 3);

		close(pipefd[1]);
		if (moved < 0) {
			close(pipefd[0]);
			res->stage = SB_STAGE_FORK;
			res->err = errno;
			return -1;
		}
		pipefd[1] = moved;
	}
	sigfillset(&all);
	sigemptyset(&empty);
	/* no signal handler may run in the child while it shares our memory */
	/* `a` lives as long as this call: a child sharing our memory reads it until execve */
	a = (struct clone_arg){req, pipefd[1], &empty, stpipe[1], pipefd[0], NULL, NULL};
	if (req->new_pidns && req->new_userns)
		format_id_maps(&a);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (notified)
		pid = start_notified(req, &a, &nt);
	else
		pid = start_child(req, &a);
	if (stpipe[1] >= 0)
		close(stpipe[1]);
	{
		int saved = errno;

		pthread_sigmask(SIG_SETMASK, &old, NULL);
		errno = saved;
	}
	close(pipefd[1]);
	if (pid < 0) {
		res->stage = SB_STAGE_FORK;
		res->err = errno;
		close(pipefd[0]);
		if (stpipe[0] >= 0)
			close(stpipe[0]);
		notified_free(&nt);
		return -1;
	}
	if (notified) {
		int stage = SB_STAGE_NONE;

		got = await_exec_notified(req, &nt, pipefd[0], rec, &stage);
		if (got < 0) {
			rec[0] = stage;
			rec[1] = errno;
			got = sizeof(rec);
			kill(pid, SIGKILL);
		} else if (got == 0 && !__atomic_load_n(&nt.hs->ready, __ATOMIC_ACQUIRE)) {
			/* the pipe closed without an execve behind it: the child was killed */
			rec[0] = SB_STAGE_LISTENER;
			rec[1] = ECHILD;
			got = sizeof(rec);
		}
	} else {
		do
			got = read(pipefd[0], rec, sizeof(rec));
		while (got < 0 && errno == EINTR);
	}
	close(pipefd[0]);
	if (got == (ssize_t)sizeof(rec)) {
		int status;

		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		res->stage = rec[0];
		res->err = rec[1];
		if (stpipe[0] >= 0)
			close(stpipe[0]);
		if (notified && req->notify->listener >= 0) {
			close(req->notify->listener);
			req->notify->listener = -1;
		}
		notified_free(&nt);
		return -1;
	}
	res->pid = pid;
	res->status_fd = stpipe[0];
	if (notified) {
		res->pidfd = nt.pidfd; /* from CLONE_PIDFD: ours to keep */
		nt.pidfd = -1;
		notified_free(&nt);
	} else {
		res->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	}
	return 0;
}

/* ---- can we have a user namespace? ------------------------------------------------------- */

static int probe_child(void *p)
{
	int err = 0;

	if (mount_own_proc() < 0 || map_own_ids(p) < 0)
		err = errno;
	return err & 0xff; /* clone's wrapper exits with it (a raw exit: no libc clean-up) */
}

int sb_userns_probe(const char *helper)
{
	struct sb_spawn_req req;
	struct clone_arg a;
	sigset_t all, old;
	void *stack;
	pid_t pid;
	int err = 0, status;

	if (!helper)
		return ENOENT;
	memset(&req, 0, sizeof(req));
	req.userns_helper = helper;
	memset(&a, 0, sizeof(a));
	a.req = &req;
	format_id_maps(&a);
	stack = mmap(NULL, CLONE_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
		     -1, 0);
	if (stack == MAP_FAILED)
		return errno;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* no handler of ours runs in the child */
	pid = clone(probe_child, (char *)stack + CLONE_STACK,
		    CLONE_VM | CLONE_VFORK | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, &a);
	if (pid < 0)
		err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid > 0) {
		pid_t got;

		do
			got = waitpid(pid, &status, 0);
		while (got < 0 && errno == EINTR);
		err = got < 0 ? errno : WIFEXITED(status) ? WEXITSTATUS(status) : ECHILD;
	}
	munmap(stack, CLONE_STACK);
	return err;
}

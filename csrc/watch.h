/* Supervise one started run until it and everything it started are gone: feed stdin, capture
 * stdout/stderr up to a limit, enforce the wall-clock and (with a cgroup) tree CPU limits, kill
 * the whole tree when the main process exits or a limit is hit, reap the main process. */
#ifndef SB_WATCH_H
#define SB_WATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct sb_notify;

struct sb_stream {
	int fd;             /* read end of a pipe, -1 when the stream is not captured */
	char *buf;          /* malloc'd, free() it */
	size_t len, cap;
	uint64_t dropped;   /* bytes read past the limit and discarded */
	int truncated;
};

struct sb_watch {
	/* in */
	pid_t pid;
	int pidfd;                /* -1: poll with waitpid */
	pid_t pgid;               /* process group to kill (the child made itself leader) */
	int status_fd;            /* sandbox-init's report of the command's wait status, -1 */
	int report_fd;            /* the zygote's report (struct sb_zygote_report) of the end of
				     its child `pid`, which is not ours: it is watched through this
				     pipe and killed through pidfd (the zygote kills its group); -1 */
	int in_fd;                /* write end of the stdin pipe, -1 when stdin is not fed */
	const char *in_data;
	size_t in_len;
	struct sb_stream out, err;
	uint64_t output_limit;    /* bytes kept per captured stream; 0: unlimited */
	int64_t start_ns;         /* CLOCK_MONOTONIC when the run started */
	int64_t wall_limit_ns;    /* 0: none */
	int64_t cpu_limit_ns;     /* whole-tree CPU limit read from cg_cpu_fd; 0: none */
	int cg_cpu_fd;            /* cpu.stat of the run's cgroup, -1: none */
	int cg_kill_fd;           /* cgroup.kill, -1: none */
	int cg_events_fd;         /* cgroup.events, -1: none */
	int64_t drain_ns;         /* how long to keep reading output after the tree is killed */
	int64_t cpu_base_ns;      /* cg_cpu_fd's usage when the run started (a reused cgroup) */
	struct sb_notify *notify; /* notifications to answer (its listener), NULL: none */
	int abort;                /* set by the caller between calls: kill the tree and finish */
	/* state kept between calls (zero before the first) */
	int started, reaped;
	int remote;               /* the main process is the zygote's child (report_fd was set) */
	int64_t killed_at, next_cpu;
	size_t in_off;
	/* out */
	int status;               /* wait status of the main process */
	struct rusage ru;         /* its rusage (with reaped descendants) */
	int64_t wall_ns;
	int64_t cg_cpu_ns;        /* whole-tree CPU from the cgroup, -1 when unknown */
	int wall_exceeded, cpu_exceeded, output_exceeded;
	int tree_empty;           /* 1: the cgroup is known empty at the end */
	int report_lost;          /* 1: the zygote died before reporting (status unknown) */
	int error;                /* errno of an internal failure, 0 */
};

/* Runs until the main process is reaped and the tree killed: returns 0 (or -1 with w->error).
 * Returns 1 when a signal interrupted the wait: the caller handles it (it may set w->abort) and
 * calls again; nothing is lost in between. */
int sb_watch(struct sb_watch *w);

/* Kill everything the run started: its process group, and its cgroup when there is one. */
void sb_watch_kill_tree(const struct sb_watch *w);

int64_t sb_now_ns(void);

#endif

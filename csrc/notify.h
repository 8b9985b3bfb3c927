/* The user-notification supervisor of one run. The filter the child installs has some actions
 * (SCMP_ACT_LOG, and with denial reports ERRNO and KILL) rewritten to SECCOMP_RET_USER_NOTIF; the
 * supervisor receives each such call, records it, works out what the original filter would have
 * done by running the original program on the same seccomp_data, and answers so that the program
 * sees exactly that: LOG continues the call, ERRNO fails it with the same errno, KILL kills the
 * process (the kernel cannot be asked to kill from here, so it is a SIGKILL from the supervisor).
 * Memory is bounded: a table of (arch, nr, action) with counts, plus the first N full records. */
#ifndef SB_NOTIFY_H
#define SB_NOTIFY_H

#include <stdint.h>
#include <sys/types.h>
#include <linux/filter.h>

#define SB_NOTIFY_PIDS 8  /* distinct pids remembered per syscall */

struct sb_notify_rec {
	int64_t t_ns;             /* since the run started */
	uint64_t args[6];
	uint64_t ip;
	uint32_t pid;             /* thread group (process) id, as the supervisor sees it */
	uint32_t tid;             /* the calling thread, as the supervisor sees it */
	uint32_t vpid;            /* the process id inside the run's PID namespace (= pid
				     without one; 0 when it could not be read) */
	uint32_t arch;            /* AUDIT_ARCH_* */
	int32_t nr;
	uint32_t action;          /* the original filter's full return value */
	int32_t answer;           /* 0 answered, else errno of the failed answer (ENOENT: the
				     caller was gone, e.g. killed while the call was pending) */
};

/* Calls of (arch, nr) are counted apart by the value of one argument (masked): socket families,
 * clone's namespace flags, personalities -- what a learned profile writes rules for. */
struct sb_notify_key {
	uint32_t arch;
	int32_t nr;
	uint32_t index;
	uint64_t mask;
};

#define SB_NOTIFY_KEYS 32

struct sb_notify_agg {
	uint32_t arch;
	int32_t nr;
	uint32_t action;
	uint64_t keyval;          /* the keyed argument's masked value, 0 when not keyed */
	uint32_t npids;
	uint64_t count;
	uint32_t pids[SB_NOTIFY_PIDS];
	struct sb_notify_rec first;
	int used;
};

struct sb_notify {
	/* in */
	const struct sock_filter *truth; /* the original program (before the rewrite) */
	uint32_t truth_len;
	uint32_t max_records;     /* full records kept (the first ones) */
	int64_t start_ns;
	struct sb_notify_key keys[SB_NOTIFY_KEYS];
	uint32_t nkeys;
	/* state */
	int listener;             /* -1 until the child has handed it over */
	void *req, *resp;         /* kernel-sized buffers */
	struct { uint32_t tid, pid, vpid; } ids[64]; /* thread -> process ids seen lately */
	int64_t answer_delay_ns;  /* tests only: hold every call this long before answering */
	uint16_t req_size, resp_size;
	/* out */
	struct sb_notify_rec *recs;
	uint32_t nrecs;
	struct sb_notify_agg *agg; /* open addressing, power-of-two capacity */
	uint32_t nagg, agg_cap;
	uint64_t total;           /* notifications received */
	uint64_t lost;            /* answered after the caller was gone */
	int killed;               /* 1: the supervisor killed a process for a KILL action */
	struct sb_notify_rec kill_rec;
	int error;                /* errno of an internal failure */
};

/* Prepare `n` (in fields set, the rest zero). Returns 0 or -1 with errno. */
int sb_notify_init(struct sb_notify *n);

/* Take over the listener descriptor handed over by the child. */
void sb_notify_attach(struct sb_notify *n, int listener);

/* Receive and answer one pending notification (call when the listener polls readable).
 * Returns 0, or -1 when the listener is finished (no task can notify any more). */
int sb_notify_serve(struct sb_notify *n);

void sb_notify_free(struct sb_notify *n);

#endif

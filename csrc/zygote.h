/* The pre-filtered zygote's wire protocol (csrc/zygote/main.c is the zygote program).
 *
 * The zygote is started once with the profile's filter and NO_NEW_PRIVS; it then starts each
 * job with sb_spawn() (no filter of its own: the job inherits the zygote's), so no job pays for
 * the kernel's per-install BPF translation. The supervisor talks to it over a SOCK_SEQPACKET
 * socket, one message per request:
 *
 *   supervisor -> zygote: struct sb_zygote_msg (+ strings), SCM_RIGHTS: stdin, stdout, stderr,
 *                         the report pipe's write end, then the cgroup.procs descriptors, then
 *                         (with msg.slot) the slot pipe's read and write ends and the stop
 *                         pipe's read end
 *   zygote -> supervisor: struct sb_zygote_reply, SCM_RIGHTS: the job's pidfd on success
 *   zygote -> report pipe: struct sb_zygote_report once the job has ended and been reaped
 *
 * The first reply (job never asked for) is the zygote's "ready" (pid = its own pid). */
#ifndef SB_ZYGOTE_H
#define SB_ZYGOTE_H

#include <stdint.h>
#include <sys/resource.h>

#include "spawn.h"

#define SB_ZYGOTE_MAGIC 0x7a79676fu        /* "zygo" */
#define SB_ZYGOTE_MAX_MSG (128 * 1024)       /* below the default socket send buffer */
#define SB_ZYGOTE_MAX_STRINGS 8192           /* argv + envp entries */
#define SB_ZYGOTE_MAX_RLIMIT 16
#define SB_ZYGOTE_MAX_GROUPS 64
#define SB_ZYGOTE_MAX_CGROUP 8
#define SB_ZYGOTE_NFD_FIXED 4                /* stdin, stdout, stderr, report pipe */
#define SB_ZYGOTE_NFD_SLOT 3                 /* the slot pipe's two ends and the stop pipe's
						read end (msg.slot) */

struct sb_zygote_msg {
	uint32_t magic;
	uint32_t size;                       /* the whole message, strings included */
	int32_t umask, set_ids, set_caps, last_cap, pdeathsig;
	uint32_t uid, gid, ngroups, nrlimit, ncgroup;
	uint32_t argc, envc, has_cwd;
	int32_t slot;                        /* > 0: after the cgroup descriptors come the two
						ends of a slot pipe and a stop pipe's read end,
						and this is the pipe's id (see
						sb_zygote_spawn_slot) */
	uint64_t caps;
	struct sb_rlim rlimit[SB_ZYGOTE_MAX_RLIMIT];
	uint32_t groups[SB_ZYGOTE_MAX_GROUPS];
	char strings[];                      /* exe, [cwd], argv..., envp..., each NUL-terminated */
};

struct sb_zygote_reply {
	uint32_t magic;
	int32_t pid;                         /* in the zygote's PID namespace */
	int32_t stage, err;                  /* enum sb_stage and errno of a failed start */
	int64_t start_ns;                    /* CLOCK_MONOTONIC when the job was started */
};

struct sb_zygote_report {
	int32_t status;                      /* wait status */
	int32_t pad;
	struct rusage ru;                    /* the job's, with its reaped descendants */
};

/* Outcomes of sb_zygote_spawn besides 0 (started) and -1 (the child failed: res->stage/err). */
#define SB_ZYGOTE_NOT_SENT (-2)             /* errno: too big for one message (EMSGSIZE, E2BIG),
					       or the zygote is gone (EPIPE...): nothing started */
#define SB_ZYGOTE_NO_REPLY (-3)             /* the zygote died after taking the request */

/* Supervisor side: ask the zygote to start `req` (its filter, keep_fd, init_exe and new_pidns
 * are ignored: the zygote's own apply). On success res->pid is the job's pid in the zygote's
 * PID namespace (a fast job may be gone before any translation to ours could be read),
 * res->pidfd its pidfd, res->status_fd the read end of the report pipe. One request at a time
 * per socket: the caller serialises. */
int sb_zygote_spawn(int sock, const struct sb_spawn_req *req, struct sb_spawn_result *res);

/* The same, started only once the zygote could take a slot: read one byte from slot_r (a
 * non-blocking pipe that holds one byte per free slot, shared by the zygotes and supervisor
 * threads of a batch); the zygote writes it back to slot_w when the job (and what it left
 * behind) is gone, before it reports the end. So a job starts the moment any slot frees, in
 * whichever zygote, without a round trip through the supervisor. The reply, and so the return, comes once the job has started;
 * *start_ns is when (CLOCK_MONOTONIC). While one request waits, its zygote takes no other
 * (the caller serialises anyway). Once stop_r is readable (the batch was stopped) a waiting
 * request is dropped instead: it fails with SB_STAGE_SLOT and ECANCELED, nothing started.
 * slot_id (> 0) names the slot pipe: requests with the same id come with the same pipes,
 * so a zygote keeps the first ones it got, watched, and closes the copies of later requests.
 * slot_r < 0: no slot, start now (as sb_zygote_spawn). */
int sb_zygote_spawn_slot(int sock, const struct sb_spawn_req *req, int slot_r, int slot_w,
			 int stop_r, int32_t slot_id, struct sb_spawn_result *res,
			 int64_t *start_ns);

/* Zygote side: check a received message and point `req` into it (argv/envp into the given
 * arrays of SB_ZYGOTE_MAX_STRINGS + 2 pointers each). fds: the received descriptors. 0 or -1. */
int sb_zygote_unpack(struct sb_zygote_msg *m, size_t len, const int *fds, int nfds,
		     struct sb_spawn_req *req, char **argv, char **envp);

#endif

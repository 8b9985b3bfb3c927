/* A pre-filtered spawner thread: one thread of the supervisor that sets NO_NEW_PRIVS and
 * installs a filter on itself once, then runs sb_spawn() for callers. seccomp filters and
 * no_new_privs belong to a thread, not to the process: the rest of the supervisor stays
 * unfiltered, and every child this thread vforks inherits the filter, so no run pays the
 * kernel's per-install translation (~0.2 ms for Docker's default profile). It is the zygote's
 * idea (csrc/zygote/) without a second process, a socket or a report pipe.
 *
 * The thread itself runs under the filter: the caller must have checked that the profile
 * allows what it and a child's set-up do (sandbox/spawner.py) and that nothing in it kills,
 * traps or notifies. */
#ifndef SB_SPAWNER_H
#define SB_SPAWNER_H

#include <linux/filter.h>
#include <stdint.h>

#include "spawn.h"

struct sb_spawner;

/* sb_spawner_spawn's answer when this spawner cannot serve (not started in this process, i.e.
 * we are a fork of the one that started it, or it is stopping): errno ESRCH. */
#define SB_SPAWNER_GONE (-2)

/* Start the thread and install the filter on it. NULL on failure with *stage (SB_STAGE_*) and
 * errno set. The program is copied. last_cap >= 0: the thread first drops from its own
 * bounding set every capability up to last_cap not in keep_caps (the runs' set), so runs find
 * them gone (best effort; -1: leave it). */
struct sb_spawner *sb_spawner_start(const struct sock_filter *filter, uint32_t len,
				    unsigned int flags, int last_cap, uint64_t keep_caps,
				    int *stage);

/* sb_spawn(req, res) run on the spawner's thread; req->filter and req->notify must be NULL
 * (the child inherits the thread's filter) and req->new_pidns 0 (the filter may forbid
 * namespaces). Callers from many threads queue one at a time. Returns what sb_spawn returned,
 * or SB_SPAWNER_GONE. */
int sb_spawner_spawn(struct sb_spawner *s, const struct sb_spawn_req *req,
		     struct sb_spawn_result *res);

/* The spawner's thread id (for tests and diagnostics). */
int sb_spawner_tid(const struct sb_spawner *s);

/* Stop the thread (after the request it runs, if any) and free everything. In a forked copy
 * of the process, where the thread does not exist, only the memory is released. */
void sb_spawner_stop(struct sb_spawner *s);

#endif

/* The pre-filtered spawner thread (see spawner.h). */
#define _GNU_SOURCE
#include "spawner.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { STARTING, READY, FAILED, STOPPING };

struct sb_spawner {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;          /* to the thread: a request was posted, or stop */
	pthread_cond_t done;          /* to callers: started, or a request finished */
	pid_t owner;                  /* the process the thread lives in */
	int tid;
	int state;
	int stage, err;               /* why it failed to start */
	uint64_t posted, finished;    /* request tickets: the slot is free when they are equal */
	const struct sb_spawn_req *req;
	struct sb_spawn_result *res;
	int rc;
	unsigned int flags;
	int last_cap;                 /* -1: keep our bounding set */
	uint64_t keep_caps;
	uint64_t bounding;            /* ours once dropped (runs skip reading it) */
	int bounding_known;
	uint32_t len;
	struct sock_filter filter[];
};

static void *spawner_main(void *p)
{
	struct sb_spawner *s = p;
	struct sock_fprog prog = {(unsigned short)s->len, s->filter};
	int stage = SB_STAGE_NONE;

	/* every signal stays blocked here (inherited from sb_spawner_start): handlers run on the
	 * supervisor's other threads */
	s->tid = (int)syscall(SYS_gettid);
	/* the bounding set is per thread and inherited: dropped here once, not by every run.
	 * Best effort: without CAP_SETPCAP each run drops (or fails to drop) them itself */
	for (int cap = 0; cap <= s->last_cap; cap++)
		if (cap >= 64 || !((s->keep_caps >> cap) & 1))
			prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	s->bounding_known = s->last_cap >= 0 && s->last_cap < 64 &&
			    sb_bounding_set(s->last_cap, &s->bounding) == 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		stage = SB_STAGE_NO_NEW_PRIVS;
	else if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, s->flags, &prog) != 0)
		stage = SB_STAGE_SECCOMP;
	pthread_mutex_lock(&s->lock);
	if (stage != SB_STAGE_NONE) {
		s->stage = stage;
		s->err = errno;
		s->state = FAILED;
		pthread_cond_broadcast(&s->done);
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	s->state = READY;
	pthread_cond_broadcast(&s->done);
	for (;;) {
		while (s->state == READY && s->posted == s->finished)
			pthread_cond_wait(&s->wake, &s->lock);
		if (s->posted == s->finished)
			break; /* stopping, and nothing left to run */
		pthread_mutex_unlock(&s->lock);
		{
			struct sb_spawn_req req = *s->req;
			int rc;

			req.bounding_known = s->bounding_known;
			req.bounding = s->bounding;
			rc = sb_spawn(&req, s->res);

			pthread_mutex_lock(&s->lock);
			s->rc = rc;
		}
		s->finished = s->posted;
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

struct sb_spawner *sb_spawner_start(const struct sock_filter *filter, uint32_t len,
				    unsigned int flags, int last_cap, uint64_t keep_caps,
				    int *stage)
{
	struct sb_spawner *s = calloc(1, sizeof(*s) + len * sizeof(*filter));
	sigset_t all, old;
	int rc;

	*stage = SB_STAGE_FORK;
	if (!s)
		return NULL;
	memcpy(s->filter, filter, len * sizeof(*filter));
	s->len = len;
	s->flags = flags;
	s->last_cap = last_cap;
	s->keep_caps = keep_caps;
	s->owner = getpid();
	s->state = STARTING;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	pthread_cond_init(&s->done, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->thread, NULL, spawner_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		free(s);
		errno = rc;
		return NULL;
	}
	pthread_mutex_lock(&s->lock);
	while (s->state == STARTING)
		pthread_cond_wait(&s->done, &s->lock);
	pthread_mutex_unlock(&s->lock);
	if (s->state == FAILED) {
		int err = s->err;

		*stage = s->stage;
		pthread_join(s->thread, NULL);
		free(s);
		errno = err;
		return NULL;
	}
	*stage = SB_STAGE_NONE;
	return s;
}

int sb_spawner_spawn(struct sb_spawner *s, const struct sb_spawn_req *req,
		     struct sb_spawn_result *res)
{
	uint64_t ticket;
	int rc;

	if (s->owner != getpid()) {
		errno = ESRCH;
		return SB_SPAWNER_GONE;
	}
	pthread_mutex_lock(&s->lock);
	while (s->state == READY && s->posted != s->finished)
		pthread_cond_wait(&s->done, &s->lock);
	if (s->state != READY) {
		pthread_mutex_unlock(&s->lock);
		errno = ESRCH;
		return SB_SPAWNER_GONE;
	}
	s->req = req;
	s->res = res;
	ticket = ++s->posted;
	pthread_cond_signal(&s->wake);
	while (s->finished < ticket)
		pthread_cond_wait(&s->done, &s->lock);
	rc = s->rc;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int sb_spawner_tid(const struct sb_spawner *s)
{
	return s->tid;
}

void sb_spawner_stop(struct sb_spawner *s)
{
	if (!s)
		return;
	if (s->owner == getpid()) {
		pthread_mutex_lock(&s->lock);
		s->state = STOPPING;
		pthread_cond_broadcast(&s->wake);
		pthread_cond_broadcast(&s->done);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->wake);
		pthread_cond_destroy(&s->done);
	}
	free(s);
}

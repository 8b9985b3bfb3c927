/* The table of runs in progress (see running.h): a small array under a mutex. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "running.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

struct entry {
	int pidfd;
	int cancelled;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *table;
static int used, cap;

int sb_running_add(int pidfd)
{
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (used == cap) {
		int ncap = cap ? 2 * cap : 64;
		struct entry *t = realloc(table, (size_t)ncap * sizeof(*t));

		if (!t) {
			rc = -1;
			errno = ENOMEM;
			goto out;
		}
		table = t;
		cap = ncap;
	}
	table[used++] = (struct entry){pidfd, 0};
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

int sb_running_remove(int pidfd)
{
	int rc = -1;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < used; i++) {
		if (table[i].pidfd == pidfd) {
			rc = table[i].cancelled;
			table[i] = table[--used];
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int sb_running_cancel_all(void)
{
	int n = 0;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < used; i++) {
		table[i].cancelled = 1;
		if (syscall(SYS_pidfd_send_signal, table[i].pidfd, SIGKILL, NULL, 0) == 0)
			n++;
	}
	pthread_mutex_unlock(&lock);
	return n;
}

int sb_running_count(void)
{
	int n;

	pthread_mutex_lock(&lock);
	n = used;
	pthread_mutex_unlock(&lock);
	return n;
}

void sb_running_forget(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	lock = fresh;
	used = 0;
}

/* The supervision loop of one run (see watch.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"
#include "watch.h"
#include "zygote.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define READ_CHUNK 65536
#define CPU_POLL_NS 10000000LL   /* read the cgroup's CPU usage every 10 ms */
#define IDLE_POLL_NS 50000000LL  /* without a pidfd, check the child every 50 ms */
#define EMPTY_WAIT_NS 2000000000LL

int64_t sb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void sb_watch_kill_tree(const struct sb_watch *w)
{
	if (w->cg_kill_fd >= 0)
		(void)!pwrite(w->cg_kill_fd, "1", 1, 0);
	if (w->remote) {
		/* not our child: its pid may be reused once the zygote reaped it, so only the
		 * pidfd is safe; the zygote kills the group when it sees the leader end */
		if (w->pidfd >= 0)
			syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
		return;
	}
	if (w->pgid > 0)
		kill(-w->pgid, SIGKILL);
	/* pid 1 of a PID namespace takes the whole namespace with it */
	if (w->status_fd >= 0 && !w->reaped)
		kill(w->pid, SIGKILL);
}

/* sandbox-init (pid 1) reports the command's own wait status before it exits */
static void read_main_status(struct sb_watch *w)
{
	int st;
	ssize_t n;

	do
		n = read(w->status_fd, &st, sizeof(st));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(st))
		w->status = st;
	close(w->status_fd);
	w->status_fd = -1;
}

/* The number after "key " in a cgroup key-value file (cpu.stat, cgroup.events), or -1. */
static int64_t cg_read_key(int fd, const char *key)
{
	char buf[512];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	size_t klen = strlen(key);
	char *p;

	if (n <= 0)
		return -1;
	buf[n] = 0;
	for (p = buf; (p = strstr(p, key)) != NULL; p += klen)
		if ((p == buf || p[-1] == '\n') && p[klen] == ' ')
			return strtoll(p + klen + 1, NULL, 10);
	return -1;
}

static int64_t cg_cpu_ns(int fd)
{
	int64_t usec = cg_read_key(fd, "usage_usec");

	return usec < 0 ? -1 : usec * 1000;
}

static int cg_populated(int fd)
{
	return (int)cg_read_key(fd, "populated");
}

/* Read what is available from one stream; returns 1 at EOF (or error), 0 otherwise. */
static int drain(struct sb_watch *w, struct sb_stream *s)
{
	char tmp[READ_CHUNK];
	ssize_t n = read(s->fd, tmp, sizeof(tmp));

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : 1;
	if (n == 0)
		return 1;
	size_t keep = (size_t)n;

	if (w->output_limit && s->len + keep > w->output_limit) {
		keep = w->output_limit > s->len ? (size_t)(w->output_limit - s->len) : 0;
		s->truncated = 1;
		s->dropped += (uint64_t)n - keep;
		if (!w->output_exceeded) {
			w->output_exceeded = 1;
			sb_watch_kill_tree(w);
		}
	}
	if (keep) {
		if (s->len + keep > s->cap) {
			size_t cap = s->cap ? s->cap : 4096;
			char *b;

			while (cap < s->len + keep)
				cap *= 2;
			b = realloc(s->buf, cap);
			if (!b) {
				w->error = ENOMEM;
				return 1;
			}
			s->buf = b;
			s->cap = cap;
		}
		memcpy(s->buf + s->len, tmp, keep);
		s->len += keep;
	}
	return 0;
}

static void close_stream(struct sb_stream *s)
{
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

/* The zygote's report of the main process's end: 1 when it is in (or the zygote is gone). */
static int read_report(struct sb_watch *w, int block)
{
	struct sb_zygote_report rep;
	ssize_t n;

	if (block) {
		struct pollfd p = {w->report_fd, POLLIN, 0};

		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
	}
	do
		n = read(w->report_fd, &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n == (ssize_t)sizeof(rep)) {
		w->status = rep.status;
		w->ru = rep.ru;
	} else {
		w->report_lost = 1;
	}
	close(w->report_fd);
	w->report_fd = -1;
	return 1;
}

static int reap(struct sb_watch *w, int flags)
{
	pid_t r;

	if (w->remote)
		return read_report(w, !(flags & WNOHANG));
	do
		r = wait4(w->pid, &w->status, flags, &w->ru);
	while (r < 0 && errno == EINTR);
	return r == w->pid;
}

int sb_watch(struct sb_watch *w)
{
	if (!w->started) {
		w->started = 1;
		w->killed_at = -1;
		w->cg_cpu_ns = -1;
		w->tree_empty = 0;
		w->remote = w->report_fd >= 0;
		/* the report pipe and the output pipes stay blocking: each is read once per
		 * readiness poll() gave, and a pipe with data (or at its end) never blocks a read */
		if (w->in_fd >= 0) {
			fcntl(w->in_fd, F_SETFL, fcntl(w->in_fd, F_GETFL) | O_NONBLOCK);
			if (w->in_len == 0) {
				close(w->in_fd);
				w->in_fd = -1;
			}
		}
	}
	if (w->abort && w->killed_at < 0) {
		sb_watch_kill_tree(w);
		w->killed_at = sb_now_ns();
	}

	for (;;) {
		struct pollfd pfd[5];
		struct sb_stream *which[5] = {NULL, NULL, NULL, NULL, NULL};
		int n = 0, timeout_ms = -1, exited = 0;
		int64_t now = sb_now_ns(), wake = INT64_MAX;

		/* limits */
		if (!w->reaped && w->wall_limit_ns && now - w->start_ns >= w->wall_limit_ns &&
		    w->killed_at < 0) {
			w->wall_exceeded = 1;
			sb_watch_kill_tree(w);
			w->killed_at = now;
		}
		if (!w->reaped && w->cpu_limit_ns && w->cg_cpu_fd >= 0 && now >= w->next_cpu) {
			int64_t cpu = cg_cpu_ns(w->cg_cpu_fd) - w->cpu_base_ns;

			if (cpu >= w->cpu_limit_ns && w->killed_at < 0) {
				w->cpu_exceeded = 1;
				sb_watch_kill_tree(w);
				w->killed_at = now;
			}
			w->next_cpu = now + CPU_POLL_NS;
		}
		if (w->output_exceeded && w->killed_at < 0)
			w->killed_at = now;

		/* done: main reaped and output drained (or the grace period after the kill is over) */
		if (w->reaped && w->out.fd < 0 && w->err.fd < 0)
			break;
		if (w->reaped && w->killed_at >= 0 && now - w->killed_at >= w->drain_ns)
			break;

		if (!w->reaped) {
			if (w->remote || w->pidfd >= 0) {
				pfd[n].fd = w->remote ? w->report_fd : w->pidfd;
				pfd[n].events = POLLIN;
				n++;
			} else {
				wake = now + IDLE_POLL_NS;
			}
			if (w->wall_limit_ns && w->killed_at < 0 && w->start_ns + w->wall_limit_ns < wake)
				wake = w->start_ns + w->wall_limit_ns;
			if (w->cpu_limit_ns && w->cg_cpu_fd >= 0 && w->killed_at < 0 && w->next_cpu < wake)
				wake = w->next_cpu;
		} else if (w->killed_at >= 0 && w->killed_at + w->drain_ns < wake) {
			wake = w->killed_at + w->drain_ns;
		}
		if (w->out.fd >= 0) {
			pfd[n].fd = w->out.fd;
			pfd[n].events = POLLIN;
			which[n++] = &w->out;
		}
		if (w->err.fd >= 0) {
			pfd[n].fd = w->err.fd;
			pfd[n].events = POLLIN;
			which[n++] = &w->err;
		}
		if (w->in_fd >= 0) {
			pfd[n].fd = w->in_fd;
			pfd[n].events = POLLOUT;
			n++;
		}
		if (w->notify && w->notify->listener >= 0) {
			pfd[n].fd = w->notify->listener;
			pfd[n].events = POLLIN;
			n++;
		}
		if (wake != INT64_MAX)
			timeout_ms = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;

		if (poll(pfd, (nfds_t)n, timeout_ms) < 0) {
			if (errno == EINTR)
				return 1; /* the caller looks at the signal, then calls again */
			w->error = errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (!w->reaped && pfd[i].fd == (w->remote ? w->report_fd : w->pidfd)) {
				exited = 1;
			} else if (which[i]) {
				if (drain(w, which[i]))
					close_stream(which[i]);
			} else if (w->notify && pfd[i].fd == w->notify->listener) {
				/* POLLHUP alone: no process can notify any more */
				if (!(pfd[i].revents & POLLIN) || sb_notify_serve(w->notify) < 0) {
					close(w->notify->listener);
					w->notify->listener = -1;
				}
			} else if (pfd[i].fd == w->in_fd) {
				ssize_t wr = write(w->in_fd, w->in_data + w->in_off, w->in_len - w->in_off);

				if (wr > 0)
					w->in_off += (size_t)wr;
				if ((wr < 0 && errno != EAGAIN && errno != EINTR) || w->in_off == w->in_len ||
				    (pfd[i].revents & (POLLERR | POLLHUP))) {
					close(w->in_fd);
					w->in_fd = -1;
				}
			}
		}
		/* with a pidfd, only its readiness says the process exited: no wait4 per wakeup
		 * (a run answering notifications wakes us once per call); a zygote's report is
		 * read once the poll saw it */
		if (!w->reaped && (exited || (w->pidfd < 0 && !w->remote)) && reap(w, WNOHANG)) {
			w->reaped = 1;
			/* the main process is gone: nothing it started may outlive it (a zygote
			 * killed its job's group and leftovers before it reported the end) */
			if (!w->remote || w->report_lost)
				sb_watch_kill_tree(w);
			if (w->killed_at < 0)
				w->killed_at = sb_now_ns();
		}
	}
	w->wall_ns = sb_now_ns() - w->start_ns;
	if (!w->reaped) {
		sb_watch_kill_tree(w);
		reap(w, 0);
		w->reaped = 1;
	}
	if (w->status_fd >= 0)
		read_main_status(w);
	close_stream(&w->out);
	close_stream(&w->err);
	if (w->in_fd >= 0) {
		close(w->in_fd);
		w->in_fd = -1;
	}
	if (w->cg_cpu_fd >= 0) {
		w->cg_cpu_ns = cg_cpu_ns(w->cg_cpu_fd);
		if (w->cg_cpu_ns >= 0)
			w->cg_cpu_ns = w->cg_cpu_ns > w->cpu_base_ns ? w->cg_cpu_ns - w->cpu_base_ns : 0;
	}
	if (w->cg_events_fd >= 0) {
		/* wait (bounded) until the kernel has removed every member of the cgroup */
		int64_t until = sb_now_ns() + EMPTY_WAIT_NS;
		int pop;

		while ((pop = cg_populated(w->cg_events_fd)) == 1 && sb_now_ns() < until) {
			struct pollfd p = {w->cg_events_fd, POLLPRI, 0};

			sb_watch_kill_tree(w);
			poll(&p, 1, 20);
		}
		w->tree_empty = pop == 0;
	}
	return w->error ? -1 : 0;
}

/* sandbox-zygote: starts jobs that inherit its seccomp filter (protocol: csrc/zygote.h).
 *
 * Started by the supervisor through sb_spawn() with the profile's filter, NO_NEW_PRIVS and the
 * jobs' capabilities (plus what their set-up needs), on fd 0 a SOCK_SEQPACKET socket. For each
 * request it runs sb_spawn() -- the very child sequence of a direct run, minus the filter,
 * which the job inherits -- and answers with the job's pidfd. It polls the jobs' pidfds; when
 * one ends it kills the job's process group while the leader is still a zombie (so the group's
 * number cannot have been reused), reaps it and writes its wait status and rusage to the job's
 * report pipe. When the socket closes (the supervisor closed it, or died) every job is killed
 * and the zygote exits. As pid 1 of a PID namespace it also reaps orphans; jobs there cannot
 * signal it (the kernel shields a namespace's init). Single-threaded, no allocation.
 *
 * A request may come with a batch's slot pipe (see zygote.h): it is kept (one at a time: its
 * sender waits for the reply) until a byte, a free slot, can be read from the pipe, and the
 * byte goes back once the job has ended, just before its end is reported. Zygotes (and
 * supervisor threads) share the pipe, so a slot passes from one job to the next without waking the supervisor.
 * With --epoll (the profile allows epoll) the first copies of a batch's pipes are kept and
 * waited on with EPOLLEXCLUSIVE: a freed slot wakes one waiting zygote, not all of them.
 *
 * Containment without a cgroup per job: each job's command is made the subreaper of what it
 * starts (PR_SET_CHILD_SUBREAPER, kept across execve), and the zygote is the subreaper (or
 * the init) above them all. An orphan therefore reaches the zygote only once the command of
 * its job has ended, so every child of the zygote that is not a running job's command is a
 * leftover of a finished job, whichever job it was: when a job ends, those are killed and
 * reaped (and the orphans they leave, round after round) before its end is reported. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../watch.h"
#include "../zygote.h"

#define SOCK 0
#define MAX_JOBS 1024
#define FDS_MAX (SB_ZYGOTE_NFD_FIXED + SB_ZYGOTE_MAX_CGROUP + SB_ZYGOTE_NFD_SLOT)

struct job {
	pid_t pid;
	int pidfd, report_fd;
	int slot_w;                   /* the slot it holds goes back here when it ends (-1: none) */
	int out_fd, err_fd;           /* our copies of its stdout and stderr: see start_job */
};

static struct job jobs[MAX_JOBS];
static uint64_t own_bounding;   /* read once at start: jobs need not read it cap by cap */
static int own_bounding_known;
static int njobs;
static union {
	struct sb_zygote_msg msg;
	char bytes[SB_ZYGOTE_MAX_MSG];
} in;
static char *argv_buf[SB_ZYGOTE_MAX_STRINGS + 2], *envp_buf[SB_ZYGOTE_MAX_STRINGS + 2];
static struct pollfd pfd[3 + MAX_JOBS];   /* the socket, slot and stop pipes, the jobs */

static int reply(pid_t pid, int stage, int err, int pidfd, int64_t start_ns)
{
	struct sb_zygote_reply rep = {SB_ZYGOTE_MAGIC, pid, stage, err, start_ns};
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&rep, sizeof(rep)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (pidfd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pidfd, sizeof(int));
	}
	for (;;) {
		if (sendmsg(SOCK, &mh, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static void close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static struct job *find(pid_t pid)
{
	for (int i = 0; i < njobs; i++)
		if (jobs[i].pid == pid)
			return &jobs[i];
	return NULL;
}

/* A request waiting for a free slot (its message stays in `in`: no other request is read
 * meanwhile). */
static struct {
	int slot_r, slot_w;           /* the slot pipe's ends; slot_r -1: nothing waits */
	int stop_r;                   /* readable once the batch is stopped */
	int kept;                     /* slot_r and stop_r are `pipes`' (not this request's) */
	struct sb_spawn_req req;
	int fds[FDS_MAX], nfds;       /* its descriptors, the slot pipe's included */
} waiting = {.slot_r = -1};

/* With epoll: the slot and stop pipes of the batch our requests come from, the copies of the
 * first request that named them (by id), registered in `ep`. Every waiting zygote of a batch
 * polling the slot pipe would wake at each freed slot, one taking the byte and the others
 * going back to sleep (strace: ~1.6 such wake-ups per job at -j 2); an EPOLLEXCLUSIVE entry
 * is woken only while its zygote waits in epoll_pwait, and one at a time. */
static int ep = -1;             /* -1: poll only (the profile may not allow epoll) */
static struct {
	int32_t id;
	int r, stop;
} pipes = {0, -1, -1};

enum { EV_SOCK, EV_SLOT, EV_STOP };

static int ep_add(int fd, uint32_t events, uint32_t tag)
{
	struct epoll_event ev = {.events = events, .data.u32 = tag};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Use the kept copies of the pipes named `id` instead of this request's *r and *stop (closed
 * here), keeping these when the id is new. 1: *r and *stop are now the kept ones; 0: they
 * stay the request's own (no epoll, or it refused them). */
static int keep_pipes(int32_t id, int *r, int *stop)
{
	if (ep < 0)
		return 0;
	if (pipes.r >= 0 && pipes.id == id) {
		close(*r);
		close(*stop);
		*r = pipes.r;
		*stop = pipes.stop;
		return 1;
	}
	if (pipes.r >= 0) { /* another batch's: it has ended */
		epoll_ctl(ep, EPOLL_CTL_DEL, pipes.r, NULL);
		epoll_ctl(ep, EPOLL_CTL_DEL, pipes.stop, NULL);
		close(pipes.r);
		close(pipes.stop);
		pipes.r = pipes.stop = -1;
	}
	if (ep_add(*r, EPOLLIN | EPOLLEXCLUSIVE, EV_SLOT) < 0)
		return 0;
	if (ep_add(*stop, EPOLLIN, EV_STOP) < 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, *r, NULL);
		return 0;
	}
	pipes.id = id;
	pipes.r = *r;
	pipes.stop = *stop;
	return 1;
}

/* The request stops waiting: its own copies of the pipes go (the kept ones stay). */
static void end_wait(void)
{
	if (!waiting.kept) {
		close(waiting.slot_r);
		close(waiting.stop_r);
	}
	waiting.slot_r = -1;
}

static void give_back_slot(int slot_w)
{
	if (slot_w < 0)
		return;
	while (write(slot_w, "s", 1) < 0 && errno == EINTR)
		;
	close(slot_w);
}

/* Start a job and answer its request; fds[0..nfds) are its descriptors (without the slot
 * pipe's); slot_w: where the slot it holds goes back (-1: none). */
static void start_job(struct sb_spawn_req *req, int *fds, int nfds, int slot_w)
{
	struct sb_spawn_result res;
	int64_t start;

	if (njobs == MAX_JOBS) {
		close_all(fds, nfds);
		give_back_slot(slot_w);
		reply(-1, SB_STAGE_FORK, EAGAIN, -1, 0);
		return;
	}
	req->child_subreaper = 1;
	/* every disposition here is the default but SIGPIPE's (see main); our bounding set is
	 * what the supervisor started us with */
	req->reset_signals = 1ull << (SIGPIPE - 1);
	req->bounding_known = own_bounding_known && req->last_cap < 64;
	req->bounding = own_bounding;
	start = sb_now_ns();
	if (sb_spawn(req, &res) == 0 && res.pidfd < 0) {
		/* no pidfd (pidfd_open refused): the supervisor could not watch it */
		kill(res.pid, SIGKILL);
		while (waitpid(res.pid, NULL, __WALL) < 0 && errno == EINTR)
			;
		res.stage = SB_STAGE_FORK;
		res.err = ENOSYS;
	}
	/* the child has its copies. The report pipe stays with us until the job ends, and so do
	 * stdout and stderr: a supervisor capturing them sees their end of file only when the
	 * report is in, and wakes once for both instead of twice */
	for (int i = 0; i < nfds; i++)
		if (i != 1 && i != 2 && i != 3)
			close(fds[i]);
	if (res.stage != SB_STAGE_NONE) {
		close_all(fds + 1, 3);
		give_back_slot(slot_w);
		reply(-1, res.stage, res.err, -1, 0);
		return;
	}
	jobs[njobs++] = (struct job){res.pid, res.pidfd, fds[3], slot_w, fds[1], fds[2]};
	reply(res.pid, SB_STAGE_NONE, 0, res.pidfd, start);
}

static void drop_waiting(int stage, int err)
{
	close_all(waiting.fds, waiting.nfds);
	close(waiting.slot_w);
	end_wait();
	reply(-1, stage, err, -1, 0);
}

/* The waiting request starts if a slot can be taken now (the pipe is non-blocking: another
 * zygote may have taken the byte that woke us), or is dropped if the batch was stopped. */
static void try_slot(void)
{
	struct pollfd stop = {waiting.stop_r, POLLIN, 0};
	char token;
	ssize_t n;

	if (poll(&stop, 1, 0) > 0) {
		drop_waiting(SB_STAGE_SLOT, ECANCELED);
		return;
	}
	do
		n = read(waiting.slot_r, &token, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		if (n < 0 && errno == EAGAIN)
			return;
		/* the pipe is broken (closed, or not ours to read): fail the request, never run it
		 * outside the bound */
		drop_waiting(SB_STAGE_SLOT, n == 0 ? EPIPE : errno);
		return;
	}
	end_wait();
	start_job(&waiting.req, waiting.fds, waiting.nfds, waiting.slot_w);
}

/* One request: start the job (or keep it until a slot is free), answer.
 * Returns 0, or -1 when the socket is closed. */
static int serve_one(void)
{
	char cbuf[CMSG_SPACE(sizeof(int) * FDS_MAX)];
	struct iovec iov = {in.bytes, sizeof(in.bytes)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	int fds[FDS_MAX], nfds = 0;
	struct sb_spawn_req req;
	struct cmsghdr *c;
	ssize_t n;

	n = recvmsg(SOCK, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (int i = 0; i < k && nfds < FDS_MAX; i++)
			memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    sb_zygote_unpack(&in.msg, (size_t)n, fds, nfds, &req, argv_buf, envp_buf) < 0) {
		close_all(fds, nfds);
		reply(-1, SB_STAGE_FORK, EPROTO, -1, 0);
		return 0;
	}
	if (in.msg.slot) {
		waiting.req = req;
		memcpy(waiting.fds, fds, sizeof(fds));
		waiting.nfds = nfds - SB_ZYGOTE_NFD_SLOT;
		waiting.slot_r = fds[nfds - 3];
		waiting.slot_w = fds[nfds - 2];
		waiting.stop_r = fds[nfds - 1];
		waiting.kept = keep_pipes(in.msg.slot, &waiting.slot_r, &waiting.stop_r);
		waiting.req.cgroup_procs = waiting.fds + SB_ZYGOTE_NFD_FIXED; /* (was into fds) */
		try_slot();
		return 0;
	}
	start_job(&req, fds, nfds, -1);
	return 0;
}

/* Kill and reap every child that is not a running job's command (see the top), round after
 * round, until none is left. */
static void kill_leftovers(void)
{
	static char buf[64 * 1024];
	static pid_t doomed[8192];
	/* kept open: a read from offset 0 lists the children afresh (a seq_file restarts) */
	static int fd = -1;

	if (fd < 0)
		fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return; /* no /proc: the process group kill is all there is */
	for (;;) {
		ssize_t got, len = 0;
		int n = 0;

		while ((got = pread(fd, buf + len, sizeof(buf) - 1 - (size_t)len, len)) > 0 ||
		       (got < 0 && errno == EINTR))
			len += got > 0 ? got : 0;
		buf[len] = 0;
		for (char *at = buf, *end; n < (int)(sizeof(doomed) / sizeof(*doomed)); at = end) {
			long pid = strtol(at, &end, 10);

			if (end == at)
				break;
			/* (one we may not kill is not waited for: it would hang every later job; it
			 * is reaped as an orphan when it ends) */
			if (!find((pid_t)pid) && kill((pid_t)pid, SIGKILL) == 0)
				doomed[n++] = (pid_t)pid;
		}
		if (n == 0)
			return;
		for (int i = 0; i < n; i++)
			while (waitpid(doomed[i], NULL, __WALL) < 0 && errno == EINTR)
				;
	}
}

/* Reap one exited child (a job or, as pid 1, an orphan); report a job's end. 0: none left. */
static int reap_one(int flags)
{
	siginfo_t si;
	struct sb_zygote_report rep;
	struct job *j;

	memset(&si, 0, sizeof(si));
	if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT | __WALL | flags) < 0)
		return errno == EINTR;
	if (si.si_pid == 0)
		return 0;
	j = find(si.si_pid);
	if (j)
		kill(-j->pid, SIGKILL); /* nothing the job started in its group outlives it */
	memset(&rep, 0, sizeof(rep));
	while (wait4(si.si_pid, &rep.status, __WALL, &rep.ru) < 0 && errno == EINTR)
		;
	if (j) {
		j->pid = 0; /* no longer a running job: what it left behind goes now */
		kill_leftovers();
		/* nothing of the job runs any more: its slot is free before its end is reported, so
		 * that a supervisor holding the Result finds the slot back, and the next job starts
		 * sooner */
		give_back_slot(j->slot_w);
		(void)!write(j->report_fd, &rep, sizeof(rep)); /* fits the pipe: never blocks */
		close(j->report_fd);
		close(j->out_fd);
		close(j->err_fd);
		close(j->pidfd);
		*j = jobs[--njobs];
	}
	return 1;
}

static __attribute__((noreturn)) void shut_down(void)
{
	for (int i = 0; i < njobs; i++) {
		kill(-jobs[i].pid, SIGKILL);
		kill(jobs[i].pid, SIGKILL);
	}
	while (njobs > 0 && reap_one(0))
		;
	kill_leftovers();
	_exit(0);
}

/* While a request waits for a slot and no job runs: wait in epoll_pwait (see `pipes`).
 * Returns 1 when the wait timed out. */
static int wait_slot_epoll(void)
{
	struct epoll_event ev[3];
	int n = epoll_pwait(ep, ev, 3, 1000, NULL);

	if (n < 0 && errno != EINTR)
		shut_down();
	for (int i = 0; i < n; i++)
		if (ev[i].data.u32 == EV_SOCK)
			shut_down(); /* the supervisor is gone (only a hang-up is asked for) */
	if (n > 0)
		try_slot();
	return n == 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN); /* a supervisor that stopped reading a report must not kill us */
	/* a job of our uid must not ptrace us (we hold the capabilities its set-up drops) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* outside a PID namespace of our own, orphans of finished jobs come to us this way */
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
		_exit(1);
	own_bounding_known = sb_bounding_set(63, &own_bounding) == 0;
	if (argc > 1 && strcmp(argv[1], "--epoll") == 0) {
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep >= 0 && ep_add(SOCK, 0, EV_SOCK) < 0) {
			close(ep);
			ep = -1;
		}
	}
	if (reply(getpid(), SB_STAGE_NONE, 0, -1, 0) < 0) /* ready */
		_exit(1); /* the supervisor sees the socket close */
	for (;;) {
		int n = 0, wait_slot = waiting.slot_r >= 0;

		if (wait_slot && waiting.kept && njobs == 0) {
			if (wait_slot_epoll())
				while (reap_one(WNOHANG)) /* orphans */
					;
			continue;
		}

		/* while a request waits for a slot, only the socket's hang-up matters */
		pfd[n++] = (struct pollfd){SOCK, wait_slot ? 0 : POLLIN, 0};
		if (wait_slot) {
			pfd[n++] = (struct pollfd){waiting.slot_r, POLLIN, 0};
			pfd[n++] = (struct pollfd){waiting.stop_r, POLLIN, 0};
		}
		for (int i = 0; i < njobs; i++)
			pfd[n++] = (struct pollfd){jobs[i].pidfd, POLLIN, 0};
		/* the timeout only matters to reap orphans, which have no pidfd */
		int ready = poll(pfd, (nfds_t)n, 1000), jobs_from = n - njobs, ended = ready == 0;

		if (ready < 0 && errno != EINTR)
			shut_down();
		for (int i = jobs_from; i < n && !ended; i++)
			ended = pfd[i].revents != 0;
		if (wait_slot && (pfd[0].revents & (POLLHUP | POLLERR)))
			shut_down();
		if (!wait_slot && pfd[0].revents && serve_one() < 0)
			shut_down();
		if (wait_slot && waiting.slot_r >= 0 && (pfd[1].revents || pfd[2].revents))
			try_slot();
		/* a job ended (its pidfd), or orphans may wait (the timeout, a signal) */
		while ((ended || ready < 0) && reap_one(WNOHANG))
			;
	}
}

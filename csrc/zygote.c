/* The zygote's wire protocol (see zygote.h): packing a request in the supervisor, checking and
 * unpacking it in the zygote. Linked into both. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zygote.h"

#define FDS_MAX (SB_ZYGOTE_NFD_FIXED + SB_ZYGOTE_MAX_CGROUP + SB_ZYGOTE_NFD_SLOT)

static size_t put(char *at, const char *s)
{
	size_t n = strlen(s) + 1;

	if (at)
		memcpy(at, s, n);
	return n;
}

/* Size of the strings section, or 0 when the request does not fit one message. */
static size_t strings_size(const struct sb_spawn_req *r, uint32_t *argc, uint32_t *envc)
{
	size_t n = put(NULL, r->exe) + (r->cwd ? put(NULL, r->cwd) : 0);

	for (*argc = 0; r->argv[*argc]; (*argc)++)
		n += put(NULL, r->argv[*argc]);
	for (*envc = 0; r->envp[*envc]; (*envc)++)
		n += put(NULL, r->envp[*envc]);
	if (*argc + *envc > SB_ZYGOTE_MAX_STRINGS ||
	    n > SB_ZYGOTE_MAX_MSG - sizeof(struct sb_zygote_msg))
		return 0;
	return n;
}

static struct sb_zygote_msg *pack(const struct sb_spawn_req *r, int slot)
{
	uint32_t argc, envc;
	size_t n = strings_size(r, &argc, &envc);
	struct sb_zygote_msg *m;
	char *at;

	if (!n || r->nrlimit > SB_ZYGOTE_MAX_RLIMIT || r->ngroups > SB_ZYGOTE_MAX_GROUPS ||
	    r->ncgroup > SB_ZYGOTE_MAX_CGROUP) {
		errno = E2BIG;
		return NULL;
	}
	m = calloc(1, sizeof(*m) + n);
	if (!m)
		return NULL;
	m->magic = SB_ZYGOTE_MAGIC;
	m->size = (uint32_t)(sizeof(*m) + n);
	m->umask = r->umask;
	m->set_ids = r->set_ids;
	m->set_caps = r->set_caps;
	m->last_cap = r->last_cap;
	m->pdeathsig = r->pdeathsig;
	m->uid = r->uid;
	m->gid = r->gid;
	m->ngroups = r->set_ids ? r->ngroups : 0;
	m->nrlimit = r->nrlimit;
	m->ncgroup = r->ncgroup;
	m->argc = argc;
	m->envc = envc;
	m->has_cwd = r->cwd != NULL;
	m->slot = slot;
	m->caps = r->caps;
	memcpy(m->rlimit, r->rlimit, r->nrlimit * sizeof(*r->rlimit));
	for (uint32_t i = 0; i < m->ngroups; i++)
		m->groups[i] = r->groups[i];
	at = m->strings;
	at += put(at, r->exe);
	if (r->cwd)
		at += put(at, r->cwd);
	for (uint32_t i = 0; i < argc; i++)
		at += put(at, r->argv[i]);
	for (uint32_t i = 0; i < envc; i++)
		at += put(at, r->envp[i]);
	return m;
}

static int send_request(int sock, const struct sb_zygote_msg *m, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * FDS_MAX)];
	struct iovec iov = {(void *)m, m->size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = CMSG_SPACE(sizeof(int) * nfds)};
	struct cmsghdr *c;
	ssize_t n;

	memset(cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	return 0;
}

/* The reply, with the pidfd it carries (or -1). 0, or -1 when the zygote is gone. */
static int recv_reply(int sock, struct sb_zygote_reply *rep, int *pidfd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {rep, sizeof(*rep)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c;
	ssize_t n;

	*pidfd = -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(pidfd, CMSG_DATA(c), sizeof(int));
	if (n != (ssize_t)sizeof(*rep) || rep->magic != SB_ZYGOTE_MAGIC) {
		if (*pidfd >= 0)
			close(*pidfd);
		*pidfd = -1;
		errno = n < 0 ? errno : EPIPE;
		return -1;
	}
	return 0;
}

int sb_zygote_spawn(int sock, const struct sb_spawn_req *req, struct sb_spawn_result *res)
{
	int64_t start_ns;

	return sb_zygote_spawn_slot(sock, req, -1, -1, -1, 0, res, &start_ns);
}

int sb_zygote_spawn_slot(int sock, const struct sb_spawn_req *req, int slot_r, int slot_w,
			 int stop_r, int32_t slot_id, struct sb_spawn_result *res,
			 int64_t *start_ns)
{
	struct sb_zygote_msg *m;
	struct sb_zygote_reply rep;
	int report[2], fds[FDS_MAX], nfds = 0, rc, pidfd, saved;

	memset(res, 0, sizeof(*res));
	res->pid = res->pidfd = res->status_fd = -1;
	*start_ns = 0;
	if (slot_r >= 0 && slot_id <= 0) {
		errno = EINVAL;
		return SB_ZYGOTE_NOT_SENT;
	}
	m = pack(req, slot_r >= 0 ? slot_id : 0);
	if (!m)
		return SB_ZYGOTE_NOT_SENT;
	if (pipe2(report, O_CLOEXEC) < 0) {
		saved = errno;
		free(m);
		errno = saved;
		return SB_ZYGOTE_NOT_SENT;
	}
	for (int i = 0; i < 3; i++)
		fds[nfds++] = req->stdio[i];
	fds[nfds++] = report[1];
	for (uint32_t i = 0; i < req->ncgroup; i++)
		fds[nfds++] = req->cgroup_procs[i];
	if (slot_r >= 0) {
		fds[nfds++] = slot_r;
		fds[nfds++] = slot_w;
		fds[nfds++] = stop_r;
	}
	rc = send_request(sock, m, fds, nfds);
	saved = errno;
	free(m);
	close(report[1]);
	if (rc < 0) {
		close(report[0]);
		errno = saved;
		return SB_ZYGOTE_NOT_SENT;
	}
	if (recv_reply(sock, &rep, &pidfd) < 0) {
		saved = errno;
		close(report[0]);
		errno = saved;
		return SB_ZYGOTE_NO_REPLY;
	}
	if (rep.stage != SB_STAGE_NONE || pidfd < 0) {
		close(report[0]);
		res->stage = rep.stage != SB_STAGE_NONE ? rep.stage : SB_STAGE_FORK;
		res->err = rep.stage != SB_STAGE_NONE ? rep.err : EPROTO;
		return -1;
	}
	res->pidfd = pidfd;
	res->pid = rep.pid;
	*start_ns = rep.start_ns;
	res->status_fd = report[0];
	return 0;
}

/* ---- the zygote's side ------------------------------------------------------------------ */

/* The next NUL-terminated string in [*at, end), or NULL. */
static char *take(char **at, const char *end)
{
	char *s = *at, *nul = memchr(s, 0, (size_t)(end - s));

	if (!nul)
		return NULL;
	*at = nul + 1;
	return s;
}

int sb_zygote_unpack(struct sb_zygote_msg *m, size_t len, const int *fds, int nfds,
		     struct sb_spawn_req *req, char **argv, char **envp)
{
	char *at = m->strings, *end = (char *)m + len;

	if (len < sizeof(*m) || m->magic != SB_ZYGOTE_MAGIC || m->size != len ||
	    m->nrlimit > SB_ZYGOTE_MAX_RLIMIT || m->ngroups > SB_ZYGOTE_MAX_GROUPS ||
	    m->ncgroup > SB_ZYGOTE_MAX_CGROUP || m->argc + m->envc > SB_ZYGOTE_MAX_STRINGS ||
	    m->argc < 1 || m->slot < 0 ||
	    nfds != (int)(SB_ZYGOTE_NFD_FIXED + m->ncgroup + (m->slot ? SB_ZYGOTE_NFD_SLOT : 0)))
		return -1;
	memset(req, 0, sizeof(*req));
	if (!(req->exe = take(&at, end)))
		return -1;
	if (m->has_cwd && !(req->cwd = take(&at, end)))
		return -1;
	for (uint32_t i = 0; i < m->argc; i++)
		if (!(argv[i] = take(&at, end)))
			return -1;
	argv[m->argc] = NULL;
	for (uint32_t i = 0; i < m->envc; i++)
		if (!(envp[i] = take(&at, end)))
			return -1;
	envp[m->envc] = NULL;
	req->argv = argv;
	req->envp = envp;
	for (int i = 0; i < 3; i++)
		req->stdio[i] = fds[i];
	req->umask = m->umask;
	req->nrlimit = m->nrlimit;
	req->rlimit = m->rlimit;
	req->ncgroup = m->ncgroup;
	req->cgroup_procs = fds + SB_ZYGOTE_NFD_FIXED;
	req->set_ids = m->set_ids;
	req->uid = m->uid;
	req->gid = m->gid;
	req->ngroups = m->ngroups;
	req->groups = m->groups;
	req->set_caps = m->set_caps;
	req->caps = m->caps;
	req->last_cap = m->last_cap;
	req->pdeathsig = m->pdeathsig;
	req->keep_fd = -1;
	return 0;
}

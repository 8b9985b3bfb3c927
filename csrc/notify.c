/* The user-notification supervisor (see notify.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bpf_emu.h"
#include "notify.h"
#include "watch.h"

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

void sb_notify_attach(struct sb_notify *n, int listener)
{
	n->listener = listener;
	/* Linux 6.6+: the caller and we hand the CPU to each other directly instead of waking
	 * through the scheduler, which is most of a notification's cost (older kernels: EINVAL) */
	ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
}

int sb_notify_init(struct sb_notify *n)
{
	struct seccomp_notif_sizes sizes;

	n->listener = -1;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
		return -1;
	/* the kernel may know a longer seccomp_data than we do: use its sizes, never less */
	n->req_size = sizes.seccomp_notif > sizeof(struct seccomp_notif) ?
		      sizes.seccomp_notif : sizeof(struct seccomp_notif);
	n->resp_size = sizes.seccomp_notif_resp > sizeof(struct seccomp_notif_resp) ?
		       sizes.seccomp_notif_resp : sizeof(struct seccomp_notif_resp);
	n->req = calloc(1, n->req_size);
	n->resp = calloc(1, n->resp_size);
	n->agg_cap = 64;
	n->agg = calloc(n->agg_cap, sizeof(*n->agg));
	n->recs = n->max_records ? calloc(n->max_records, sizeof(*n->recs)) : NULL;
	if (!n->req || !n->resp || !n->agg || (n->max_records && !n->recs)) {
		sb_notify_free(n);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void sb_notify_free(struct sb_notify *n)
{
	if (n->listener >= 0)
		close(n->listener);
	n->listener = -1;
	free(n->req);
	free(n->resp);
	free(n->agg);
	free(n->recs);
	n->req = n->resp = NULL;
	n->agg = NULL;
	n->recs = NULL;
	n->nagg = n->agg_cap = n->nrecs = 0;
}

static uint32_t agg_hash(uint32_t arch, int32_t nr, uint32_t action, uint64_t keyval)
{
	uint64_t h = ((uint64_t)arch << 32 | (uint32_t)nr) * 0x9e3779b97f4a7c15ULL;

	h ^= (action ^ keyval * 0xc2b2ae3d27d4eb4fULL) * 0xff51afd7ed558ccdULL;
	return (uint32_t)(h >> 32);
}

static int agg_same(const struct sb_notify_agg *e, const struct sb_notify_agg *k)
{
	return e->arch == k->arch && e->nr == k->nr && e->action == k->action &&
	       e->keyval == k->keyval;
}

static struct sb_notify_agg *agg_slot(struct sb_notify_agg *tab, uint32_t cap,
				      const struct sb_notify_agg *k)
{
	for (uint32_t i = agg_hash(k->arch, k->nr, k->action, k->keyval) & (cap - 1);;
	     i = (i + 1) & (cap - 1)) {
		struct sb_notify_agg *e = &tab[i];

		if (!e->used || agg_same(e, k))
			return e;
	}
}

/* The entry for the key `k`, created if new; NULL only when memory ran out. */
static struct sb_notify_agg *agg_entry(struct sb_notify *n, const struct sb_notify_agg *k)
{
	struct sb_notify_agg *e;

	if ((n->nagg + 1) * 2 > n->agg_cap) {
		uint32_t cap = n->agg_cap * 2;
		struct sb_notify_agg *tab = calloc(cap, sizeof(*tab));

		if (!tab)
			return NULL;
		for (uint32_t i = 0; i < n->agg_cap; i++)
			if (n->agg[i].used)
				*agg_slot(tab, cap, &n->agg[i]) = n->agg[i];
		free(n->agg);
		n->agg = tab;
		n->agg_cap = cap;
	}
	e = agg_slot(n->agg, n->agg_cap, k);
	if (!e->used) {
		*e = *k;
		e->used = 1;
		n->nagg++;
	}
	return e;
}

static void note(struct sb_notify *n, const struct sb_notify_rec *r)
{
	struct sb_notify_agg key = {.arch = r->arch, .nr = r->nr, .action = r->action};
	struct sb_notify_agg *e;

	for (uint32_t i = 0; i < n->nkeys; i++)
		if (n->keys[i].arch == r->arch && n->keys[i].nr == r->nr) {
			key.keyval = r->args[n->keys[i].index % 6] & n->keys[i].mask;
			break;
		}
	e = agg_entry(n, &key);

	n->total++;
	if (n->nrecs < n->max_records)
		n->recs[n->nrecs++] = *r;
	if (!e) {
		n->error = ENOMEM;
		return;
	}
	if (e->count++ == 0)
		e->first = *r;
	if (e->npids < SB_NOTIFY_PIDS) {
		uint32_t i;

		for (i = 0; i < e->npids && e->pids[i] != r->pid; i++)
			;
		if (i == e->npids)
			e->pids[e->npids++] = r->pid;
	}
}

/* "Tgid:" and the last "NStgid:" field of /proc/TID/status: the kernel names the calling
 * thread, a record names its process, in our namespace and in the run's. */
static void process_ids(struct sb_notify *n, struct sb_notify_rec *r)
{
	typeof(n->ids[0]) *slot = &n->ids[r->tid % 64];
	char path[40], buf[2048], *p;
	ssize_t len;
	int fd;

	if (slot->tid == r->tid && r->tid) {
		r->pid = slot->pid;
		r->vpid = slot->vpid;
		return;
	}
	r->pid = r->tid; /* until /proc says otherwise */
	snprintf(path, sizeof(path), "/proc/%u/status", r->tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return;
	buf[len] = 0;
	if ((p = strstr(buf, "\nTgid:")) != NULL)
		r->pid = (uint32_t)strtoul(p + 6, NULL, 10);
	if ((p = strstr(buf, "\nNStgid:")) != NULL) {
		char *end = strchr(p + 1, '\n'), *field = p + 8;

		for (char *q = field; q < end && *q; q++)
			if (*q == '\t' || *q == ' ')
				field = q + 1;
		r->vpid = (uint32_t)strtoul(field, NULL, 10);
	}
	slot->tid = r->tid;
	slot->pid = r->pid;
	slot->vpid = r->vpid;
}

int sb_notify_serve(struct sb_notify *n)
{
	struct seccomp_notif *req = n->req;
	struct seccomp_notif_resp *resp = n->resp;
	struct sb_seccomp_data data;
	struct sb_notify_rec rec;
	uint32_t ret, action;

	memset(req, 0, n->req_size); /* the kernel insists on a zeroed buffer */
	if (ioctl(n->listener, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
		/* ENOENT: the caller went away between poll and receive */
		return errno == ENOENT || errno == EINTR ? 0 : -1;
	}
	data.nr = req->data.nr;
	data.arch = req->data.arch;
	data.instruction_pointer = req->data.instruction_pointer;
	memcpy(data.args, req->data.args, sizeof(data.args));
	ret = sb_bpf_run(n->truth, n->truth_len, &data, NULL);
	action = ret & SECCOMP_RET_ACTION_FULL;

	memset(&rec, 0, sizeof(rec));
	rec.t_ns = sb_now_ns() - n->start_ns;
	memcpy(rec.args, data.args, sizeof(rec.args));
	rec.ip = data.instruction_pointer;
	rec.tid = req->pid;
	process_ids(n, &rec);
	rec.arch = data.arch;
	rec.nr = data.nr;
	rec.action = ret;

	if (n->answer_delay_ns > 0) {
		struct timespec ts = {n->answer_delay_ns / 1000000000LL,
				      n->answer_delay_ns % 1000000000LL};

		nanosleep(&ts, NULL);
	}
	memset(resp, 0, n->resp_size);
	resp->id = req->id;
	switch (action) {
	case SECCOMP_RET_ALLOW:
	case SECCOMP_RET_LOG:
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		break;
	case SECCOMP_RET_ERRNO:
		resp->error = -(int32_t)(ret & SECCOMP_RET_DATA);
		break;
	case SECCOMP_RET_KILL_PROCESS:
	case SECCOMP_RET_KILL_THREAD:
		/* the kill comes before the answer, so the call never runs */
		kill((pid_t)rec.pid, SIGKILL);
		if (!n->killed) {
			n->killed = 1;
			n->kill_rec = rec;
		}
		resp->error = -ENOSYS;
		break;
	default:
		resp->error = -ENOSYS; /* not a converted action: cannot happen */
		break;
	}
	if (ioctl(n->listener, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0) {
		rec.answer = errno;
		n->lost++;
	}
	note(n, &rec);
	return 0;
}

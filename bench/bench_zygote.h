/* The zygote as the benchmarks start it: like sandbox.zygote, with the filter and
 * SECCOMP_FILTER_FLAG_SPEC_ALLOW, its socket on fd 0 (spawnbench.c, cbatch.c). */
#ifndef BENCH_ZYGOTE_H
#define BENCH_ZYGOTE_H

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../csrc/spawn.h"
#include "../csrc/zygote.h"

/* Its socket once it said it is ready, or -1. epoll: it waits for slots with epoll; out_fd: its
 * stdout and stderr. */
static int bench_start_zygote(const char *exe, const struct sock_filter *filter, uint32_t len,
			      int epoll, int out_fd)
{
	char *zargv[] = {"sandbox-zygote", epoll ? "--epoll" : NULL, NULL}, *zenvp[] = {NULL};
	struct sb_spawn_req req;
	struct sb_spawn_result res;
	struct sb_zygote_reply ready;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	memset(&req, 0, sizeof(req));
	req.exe = exe;
	req.argv = zargv;
	req.envp = zenvp;
	req.stdio[0] = sv[1];
	req.stdio[1] = req.stdio[2] = out_fd;
	req.umask = -1;
	req.keep_fd = -1;
	req.landlock_fd = -1;
	req.filter = filter;
	req.filter_len = len;
	req.filter_flags = 4;
	if (sb_spawn(&req, &res) < 0)
		return -1;
	close(sv[1]);
	if (read(sv[0], &ready, sizeof(ready)) != sizeof(ready))
		return -1;
	return sv[0];
}

#endif

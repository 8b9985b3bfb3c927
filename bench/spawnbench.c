/* Spawn+wait latency of /bin/true: posix_spawn (the baseline) against our C core (sb_spawn:
 * vfork, set-up, NO_NEW_PRIVS, the compiled filter, execve), interleaved in blocks.
 * usage: spawnbench FILTER.bpf ROUNDS PER_ROUND   (prints "name median_us p10 p90") */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../csrc/spawn.h"

extern char **environ;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	printf("%s %.1f %.1f %.1f\n", name, v[n / 2], v[n / 10], v[n * 9 / 10]);
}

/* `per` spawn+wait rounds of our core, with `filter` (or none), timings into t[]. */
static void core_block(struct sb_spawn_req *req, const struct sock_filter *filter, double *t,
		       int per)
{
	req->filter = filter;
	for (int i = 0; i < per; i++) {
		struct sb_spawn_result res;
		int status;
		double start = now_us();

		sb_spawn(req, &res);
		waitpid(res.pid, &status, 0);
		t[i] = now_us() - start;
		close(res.pidfd);
	}
}

int main(int argc, char **argv)
{
	char *targv[] = {"/bin/true", NULL};
	struct sock_filter *prog;
	struct stat st;
	int fd, rounds, per, n = 0;
	double *t_posix, *t_core, *t_nofilter;

	if (argc != 4)
		return 2;
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0)
		return 2;
	prog = malloc(st.st_size);
	if (read(fd, prog, st.st_size) != st.st_size)
		return 2;
	rounds = atoi(argv[2]);
	per = atoi(argv[3]);
	t_posix = calloc(rounds * per, sizeof(double));
	t_core = calloc(rounds * per, sizeof(double));
	t_nofilter = calloc(rounds * per, sizeof(double));

	struct sb_spawn_req req;
	memset(&req, 0, sizeof(req));
	req.exe = "/bin/true";
	req.argv = targv;
	req.envp = environ;
	req.stdio[0] = 0;
	req.stdio[1] = 1;
	req.stdio[2] = 2;
	req.umask = -1;
	req.keep_fd = -1;
	req.filter_len = st.st_size / sizeof(struct sock_filter);
	req.filter_flags = 4; /* SPEC_ALLOW, as runc */

	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < per; i++) {
			pid_t pid;
			int status;
			double t = now_us();

			posix_spawn(&pid, "/bin/true", NULL, NULL, targv, environ);
			waitpid(pid, &status, 0);
			t_posix[n + i] = now_us() - t;
		}
		core_block(&req, prog, t_core + n, per);
		core_block(&req, NULL, t_nofilter + n, per);
		n += per;
	}
	report("posix_spawn", t_posix, n);
	report("core_filter", t_core, n);
	report("core_nofilter", t_nofilter, n);
	return 0;
}

/* Spawn+wait latency of /bin/true: posix_spawn (the baseline) against our C core (sb_spawn:
 * vfork, set-up, NO_NEW_PRIVS, the compiled filter, execve), against the pre-filtered spawner
 * thread (filter installed on it once; per run: hand-over, vfork, set-up, execve) and against
 * the pre-filtered zygote (started once with the filter; per job: request, fork, set-up,
 * execve, report), interleaved in blocks.
 * usage: spawnbench FILTER.bpf ROUNDS PER_ROUND [ZYGOTE_EXE]   (prints "name median_us p10 p90") */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../csrc/spawn.h"
#include "../csrc/spawner.h"
#include "../csrc/zygote.h"
#include "bench_zygote.h"

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

/* `per` spawn+wait rounds through the spawner thread (the child inherits its filter). */
static void spawner_block(struct sb_spawner *sp, struct sb_spawn_req *req, double *t, int per)
{
	req->filter = NULL;
	for (int i = 0; i < per; i++) {
		struct sb_spawn_result res;
		int status;
		double start = now_us();

		sb_spawner_spawn(sp, req, &res);
		waitpid(res.pid, &status, 0);
		t[i] = now_us() - start;
		close(res.pidfd);
	}
}

/* `per` spawn+wait rounds through the zygote (the job inherits its filter). */
static void zygote_block(int sock, struct sb_spawn_req *req, double *t, int per)
{
	req->filter = NULL;
	for (int i = 0; i < per; i++) {
		struct sb_spawn_result res;
		struct sb_zygote_report rep;
		double start = now_us();

		if (sb_zygote_spawn(sock, req, &res) < 0)
			exit(3);
		if (read(res.status_fd, &rep, sizeof(rep)) != sizeof(rep))
			exit(3);
		t[i] = now_us() - start;
		close(res.status_fd);
		close(res.pidfd);
	}
}

int main(int argc, char **argv)
{
	char *targv[] = {"/bin/true", NULL};
	struct sock_filter *prog;
	struct stat st;
	int fd, rounds, per, n = 0;
	double *t_posix, *t_core, *t_nofilter, *t_zygote, *t_spawner;
	int zsock = -1, stage;
	struct sb_spawner *sp;

	if (argc != 4 && argc != 5)
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
	t_zygote = calloc(rounds * per, sizeof(double));
	t_spawner = calloc(rounds * per, sizeof(double));

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
	if (argc == 5 && (zsock = bench_start_zygote(argv[4], prog, req.filter_len, 0, 2)) < 0)
		return 3;
	sp = sb_spawner_start(prog, req.filter_len, req.filter_flags, -1, 0, &stage);
	if (!sp)
		return 4;

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
		spawner_block(sp, &req, t_spawner + n, per);
		if (zsock >= 0)
			zygote_block(zsock, &req, t_zygote + n, per);
		n += per;
	}
	report("posix_spawn", t_posix, n);
	report("core_filter", t_core, n);
	report("core_nofilter", t_nofilter, n);
	report("core_spawner", t_spawner, n);
	sb_spawner_stop(sp);
	if (zsock >= 0)
		report("core_zygote", t_zygote, n);
	return 0;
}

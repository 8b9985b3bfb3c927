/* A batch supervised from C with the zygote protocol sandbox.batch uses, and no Python per job:
 * what a C supervisor could reach without changing the protocol (bench/bench_batch_floor.py).
 * 2 x PARALLEL threads, each with a zygote of its own (started with the filter, --epoll) and
 * the batch's slot pipe, as run_batch's threads: per job two pipes, the request, the watch.
 * usage: cbatch FILTER.bpf ZYGOTE_EXE NJOBS PARALLEL CMD ARG...
 * prints "JOBS_PER_S SUPERVISOR_CPU_US_PER_JOB FAILED_JOBS" */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../csrc/spawn.h"
#include "../csrc/watch.h"
#include "../csrc/zygote.h"
#include "bench_zygote.h"

static struct sock_filter *prog;
static uint32_t prog_len;
static const char *zexe;
static int njobs, slot_r, slot_w, stop_r, devnull;
static atomic_int next_job, failures;
static char **cmd;
static char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/tmp", NULL};

static void *worker(void *unused)
{
	int sock = bench_start_zygote(zexe, prog, prog_len, 1, devnull);
	struct sb_rlim rl[1] = {{RLIMIT_CORE, {0, 0}}};

	if (sock < 0) {
		perror("zygote");
		exit(2);
	}
	while (atomic_fetch_add(&next_job, 1) < njobs) {
		struct sb_spawn_req req;
		struct sb_spawn_result res;
		struct sb_watch w;
		int out[2], err[2];
		int64_t start = 0;

		if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
			perror("pipe2");
			exit(2);
		}
		memset(&req, 0, sizeof(req));
		req.exe = cmd[0];
		req.argv = cmd;
		req.envp = envp;
		req.cwd = "/tmp";
		req.stdio[0] = devnull;
		req.stdio[1] = out[1];
		req.stdio[2] = err[1];
		req.umask = -1;
		req.keep_fd = -1;
		req.landlock_fd = -1;
		req.nrlimit = 1;
		req.rlimit = rl;
		req.last_cap = 40;
		req.pdeathsig = 9;
		if (sb_zygote_spawn_slot(sock, &req, slot_r, slot_w, stop_r, 1, &res, &start) != 0) {
			fprintf(stderr, "spawn failed\n");
			exit(3);
		}
		close(out[1]);
		close(err[1]);
		memset(&w, 0, sizeof(w));
		w.pid = res.pid;
		w.pidfd = res.pidfd;
		w.status_fd = -1;
		w.report_fd = res.status_fd;
		w.in_fd = -1;
		w.out.fd = out[0];
		w.err.fd = err[0];
		w.output_limit = 64 << 20;
		w.start_ns = start;
		w.cg_cpu_fd = w.cg_kill_fd = w.cg_events_fd = -1;
		w.drain_ns = 200000000;
		while (sb_watch(&w) == 1)
			;
		if (w.status != 0)
			atomic_fetch_add(&failures, 1);
		free(w.out.buf);
		free(w.err.buf);
		close(res.pidfd);
	}
	close(sock);
	return NULL;
}

static double cpu_s(const struct rusage *r)
{
	return r->ru_utime.tv_sec + r->ru_stime.tv_sec +
	       (r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	struct stat st;
	int fd = open(argv[1], O_RDONLY), par, sp[2], stp[2];
	pthread_t th[256];
	struct timespec a, b;
	struct rusage r0, r1;

	if (fd < 0 || fstat(fd, &st) < 0 || !(prog = malloc(st.st_size)) ||
	    read(fd, prog, st.st_size) != st.st_size) {
		perror(argv[1]);
		return 2;
	}
	prog_len = st.st_size / 8;
	zexe = argv[2];
	njobs = atoi(argv[3]);
	par = atoi(argv[4]);
	cmd = argv + 5;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (argc < 6 || fd < 0 || pipe2(sp, O_NONBLOCK | O_CLOEXEC) < 0 ||
	    pipe2(stp, O_NONBLOCK | O_CLOEXEC) < 0) {
		fprintf(stderr, "usage: cbatch FILTER.bpf ZYGOTE_EXE NJOBS PARALLEL CMD ARG...\n");
		return 2;
	}
	slot_r = sp[0];
	slot_w = sp[1];
	stop_r = stp[0];
	for (int i = 0; i < par; i++)
		(void)!write(slot_w, "s", 1);
	getrusage(RUSAGE_SELF, &r0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 2 * par; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (int i = 0; i < 2 * par; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	getrusage(RUSAGE_SELF, &r1);
	double secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	double cpu = cpu_s(&r1) - cpu_s(&r0);

	printf("%.1f %.0f %d\n", njobs / secs, cpu / njobs * 1e6, atomic_load(&failures));
	return 0;
}

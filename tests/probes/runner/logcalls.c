/* Makes logged calls (getppid) in patterns the notification tests attribute and count:
 *   loop K          K calls in one thread; prints "calls=K pid=P"
 *   threads T K     T threads, thread i makes K+i calls; prints "tid calls" per thread
 *   procs P K       P processes, process i makes K+i calls; prints "pid calls" per process
 *   fork K          K calls in a forked child, then K in the parent (whose records come back?);
 *                   "calls=K pid=P" per process
 *   pending         a thread's call is still waiting for its answer when the process exits */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long calls(long k)
{
	for (long i = 0; i < k; i++)
		syscall(SYS_getppid);
	return k;
}

/* the calls, then "calls=K pid=P" (P as the process sees itself) */
static void calls_then_say(long k)
{
	calls(k);
	printf("calls=%ld pid=%ld\n", k, (long)getpid());
}

static long per_thread;

static void *thread_main(void *arg)
{
	long k = per_thread + (long)arg;

	calls(k);
	printf("%ld %ld\n", (long)syscall(SYS_gettid), k);
	return NULL;
}

static void *pending_main(void *arg)
{
	syscall(SYS_getppid); /* the supervisor holds this one */
	return NULL;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "loop")) {
		calls_then_say(atol(argv[2]));
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "threads")) {
		int t = atoi(argv[2]);
		pthread_t th[64];

		per_thread = atol(argv[3]);
		for (long i = 0; i < t && i < 64; i++)
			pthread_create(&th[i], NULL, thread_main, (void *)i);
		for (int i = 0; i < t && i < 64; i++)
			pthread_join(th[i], NULL);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "procs")) {
		int p = atoi(argv[2]);
		long k = atol(argv[3]);

		for (int i = 0; i < p; i++) {
			if (fork() == 0) {
				printf("%ld %ld\n", (long)getpid(), calls(k + i));
				_exit(0);
			}
		}
		while (wait(NULL) > 0)
			;
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "fork")) {
		pid_t child = fork();

		if (child == 0) {
			calls_then_say(atol(argv[2]));
			fflush(stdout);
			_exit(0);
		}
		waitpid(child, NULL, 0);
		calls_then_say(atol(argv[2]));
		return child < 0;
	}
	if (argc == 2 && !strcmp(argv[1], "pending")) {
		pthread_t th;
		struct timespec ts = {0, 50 * 1000 * 1000};

		pthread_create(&th, NULL, pending_main, NULL);
		nanosleep(&ts, NULL);
		printf("exiting\n");
		_exit(3); /* exit_group while the thread's call waits */
	}
	fprintf(stderr, "usage: logcalls loop K | threads T K | procs P K | fork K | pending\n");
	return 2;
}

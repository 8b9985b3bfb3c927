/* log_calls: make N getppid calls (the tests log getppid with SCMP_ACT_LOG), optionally from a
 * forked child too, to see whose audit records come back.
 *
 *   log_calls N [fork]
 *
 * With "fork", a child makes the N calls as well and the parent waits for it. Prints
 * "calls=C pid=P" per process (P as this process sees itself) and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void calls(long n)
{
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	printf("calls=%ld pid=%d\n", n, (int)getpid());
	fflush(stdout);
}

int main(int argc, char **argv)
{
	long n;
	pid_t child = -1;

	if (argc < 2) {
		fprintf(stderr, "usage: log_calls N [fork]\n");
		return 2;
	}
	n = strtol(argv[1], NULL, 0);
	if (argc > 2 && strcmp(argv[2], "fork") == 0) {
		child = fork();
		if (child < 0)
			return 1;
		if (child == 0) {
			calls(n);
			_exit(0);
		}
	}
	calls(n);
	if (child > 0)
		waitpid(child, NULL, 0);
	return 0;
}

/* ptrace_parent [PID]: reach into the supervisor from the sandboxed process. PID is the
 * supervisor's pid as the test sees it (in a PID namespace of its own the probe's parent is
 * invisible: getppid() is 0); without it the probe's parent. Prints
 *   ppid=N                     getppid(), for the record
 *   target=P                   the pid attacked below
 *   seize ret=R errno=E        ptrace(PTRACE_SEIZE, P), detached again at once (a seized
 *                              tracee is not stopped)
 *   attach ret=R errno=E       ptrace(PTRACE_ATTACH, P); when it works, the probe waits for
 *                              the attach stop and detaches suppressing the SIGSTOP, so the
 *                              supervisor is not left stopped
 *   mem open=R errno=E read=N  open("/proc/P/mem", O_RDONLY) and one read at the start of P's
 *                              first mapping (N bytes read, -1 when not opened or failed)
 *   vm_readv ret=R errno=E     process_vm_readv from P at the same address
 *   environ open=R errno=E     open("/proc/P/environ", O_RDONLY)
 * R is 0 on success and -1 on failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long first_mapping(pid_t pp)
{
	char path[64];
	unsigned long start = 0x400000;
	FILE *m;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pp);
	m = fopen(path, "r");
	if (m) {
		if (fscanf(m, "%lx", &start) != 1)
			start = 0x400000;
		fclose(m);
	}
	return start;
}

int main(int argc, char **argv)
{
	pid_t pp = argc > 1 ? (pid_t)atoi(argv[1]) : getppid();
	unsigned long addr = first_mapping(pp);
	char path[64], buf[16];
	long r;
	int fd, err;
	ssize_t n = -1;

	printf("ppid=%d\n", (int)getppid());
	printf("target=%d\n", (int)pp);
	r = ptrace(PTRACE_SEIZE, pp, NULL, NULL);
	printf("seize ret=%d errno=%d\n", r < 0 ? -1 : 0, r < 0 ? errno : 0);
	fflush(stdout);
	if (r == 0) {
		/* a seized tracee runs on; interrupt it so the detach is accepted, then let go */
		int st;

		ptrace(PTRACE_INTERRUPT, pp, NULL, NULL);
		waitpid(pp, &st, __WALL);
		ptrace(PTRACE_DETACH, pp, NULL, NULL);
	}
	r = ptrace(PTRACE_ATTACH, pp, NULL, NULL);
	printf("attach ret=%d errno=%d\n", r < 0 ? -1 : 0, r < 0 ? errno : 0);
	fflush(stdout);
	if (r == 0) {
		int st;

		waitpid(pp, &st, __WALL);                 /* the SIGSTOP of the attach */
		ptrace(PTRACE_DETACH, pp, NULL, (void *)0); /* detach, suppressing it */
	}

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pp);
	fd = open(path, O_RDONLY);
	err = fd < 0 ? errno : 0;
	if (fd >= 0) {
		n = pread(fd, buf, sizeof(buf), (off_t)addr);
		if (n < 0)
			err = errno;
		close(fd);
	}
	printf("mem open=%d errno=%d read=%zd\n", fd < 0 ? -1 : 0, err, n);

	{
		struct iovec local = {buf, sizeof(buf)}, remote = {(void *)addr, sizeof(buf)};

		n = process_vm_readv(pp, &local, 1, &remote, 1, 0);
		printf("vm_readv ret=%d errno=%d\n", n < 0 ? -1 : 0, n < 0 ? errno : 0);
	}
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pp);
	fd = open(path, O_RDONLY);
	printf("environ open=%d errno=%d\n", fd < 0 ? -1 : 0, fd < 0 ? errno : 0);
	return 0;
}

/* privs: try what a container escape starts with; one "NAME ret=R errno=E" line each (R = -1
 * when the call failed, else 0):
 *   unshare-user   unshare(CLONE_NEWUSER)
 *   unshare-mount  unshare(CLONE_NEWNS)
 *   clone-user     clone(CLONE_NEWUSER | SIGCHLD) (a child that was made exits at once)
 *   mount          mount("none", "/tmp", "tmpfs", 0, NULL)
 *   keyctl         keyctl(KEYCTL_JOIN_SESSION_KEYRING, "sandbox-probe")
 * Under Docker's default profile and capabilities every one fails with EPERM. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEYCTL_JOIN_SESSION_KEYRING 1

static void report(const char *name, long ret, int err)
{
	printf("%s ret=%ld errno=%d\n", name, ret < 0 ? -1L : 0L, ret < 0 ? err : 0);
	fflush(stdout);
}

int main(void)
{
	long r;

	r = syscall(SYS_unshare, CLONE_NEWUSER);
	report("unshare-user", r, errno);
	r = syscall(SYS_unshare, CLONE_NEWNS);
	report("unshare-mount", r, errno);
	r = syscall(SYS_clone, (long)(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L);
	if (r == 0)
		_exit(0);
	report("clone-user", r, errno);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	r = syscall(SYS_mount, "none", "/tmp", "tmpfs", 0L, NULL);
	report("mount", r, errno);
	r = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "sandbox-probe");
	report("keyctl", r, errno);
	return 0;
}

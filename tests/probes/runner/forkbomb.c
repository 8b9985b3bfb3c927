/* forkbomb MODE MARKER
 *   count  fork children that pause(), until fork fails; print "forked=N errno=E", then exit 0
 *          (the children die with the run). At most 4096 children.
 *   bomb   every process forks in a loop forever (retrying after failures); a process stops
 *          forking after 12 successes and pauses, so even without any limit the tree stays
 *          below 4096 processes.
 * MARKER is only there so the tests can find leftovers in /proc. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "count") == 0) {
		int n = 0, err = 0;

		while (n < 4096) {
			pid_t pid = fork();

			if (pid == 0) {
				for (;;)
					pause();
			}
			if (pid < 0) {
				err = errno;
				break;
			}
			n++;
		}
		printf("forked=%d errno=%d\n", n, err);
		return 0;
	}
	{
		int ok = 0;

		while (ok < 12) {
			pid_t pid = fork();

			if (pid >= 0)
				ok++;
			else
				usleep(1000);
		}
		for (;;)
			pause();
	}
}

/* fds: list every descriptor in 3..1023 that is open (fcntl F_GETFD succeeds), one
 * "open FD" line each, then "done". Also tries to read one byte from each open one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	for (int fd = 3; fd < 1024; fd++) {
		if (fcntl(fd, F_GETFD) >= 0) {
			char c;
			ssize_t n = pread(fd, &c, 1, 0);

			printf("open %d read=%zd\n", fd, n);
		} else if (errno != EBADF) {
			printf("odd %d errno=%d\n", fd, errno);
		}
	}
	printf("done\n");
	return 0;
}

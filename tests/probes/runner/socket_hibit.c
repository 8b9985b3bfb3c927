/* socket_hibit: socket(0x100000002, SOCK_STREAM, 0) with the raw syscall, so the high word of
 * the domain reaches seccomp. The kernel reads the domain as an int (AF_INET); a filter that
 * compares all 64 bits sees 0x100000002 != 2. Prints "ret=R errno=E". */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	long ret = syscall(SYS_socket, 0x100000002L, (long)SOCK_STREAM, 0L);
	int err = ret < 0 ? errno : 0;

	printf("ret=%ld errno=%d\n", ret < 0 ? -1L : 0L, err);
	return 0;
}

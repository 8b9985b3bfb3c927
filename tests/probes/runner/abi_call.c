/* abi_call: make one system call through a chosen ABI of this x86_64 process.
 *
 *   abi_call ABI NR [A0 [A1 [A2]]]
 *
 *   x86_64  the `syscall` instruction, rax = NR, rdi rsi rdx = A0 A1 A2 (full 64 bits)
 *   x32     the same instruction with rax = NR | 0x40000000: seccomp sees AUDIT_ARCH_X86_64
 *           with the x32 bit (the kernel itself may lack x32 and answer ENOSYS)
 *   i386    `int $0x80`, eax = NR, ebx ecx edx = A0 A1 A2 truncated to 32 bits: seccomp sees
 *           AUDIT_ARCH_I386 and i386 numbers
 *
 * Numbers are decimal or 0x hex. Prints "ret=R errno=E" (R = -1 when the call failed) and exits
 * 0; a filter that rejects the ABI kills the process before it prints anything. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long via_syscall(long nr, long a0, long a1, long a2)
{
	long ret;
	register long r10 __asm__("r10") = 0;
	register long r8 __asm__("r8") = 0;
	register long r9 __asm__("r9") = 0;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

static long via_int80(long nr, long a0, long a1, long a2)
{
	long ret;

	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a0), "c"(a1), "d"(a2)
			 : "memory");
	return (long)(int)ret;
}

int main(int argc, char **argv)
{
	long nr, a[3] = {0, 0, 0}, ret;

	if (argc < 3) {
		fprintf(stderr, "usage: abi_call x86_64|x32|i386 NR [A0 [A1 [A2]]]\n");
		return 2;
	}
	nr = strtol(argv[2], NULL, 0);
	for (int i = 0; i < 3 && 3 + i < argc; i++)
		a[i] = (long)strtoull(argv[3 + i], NULL, 0);
	fflush(stdout);
	if (strcmp(argv[1], "i386") == 0)
		ret = via_int80(nr, a[0], a[1], a[2]);
	else if (strcmp(argv[1], "x32") == 0)
		ret = via_syscall(nr | 0x40000000L, a[0], a[1], a[2]);
	else
		ret = via_syscall(nr, a[0], a[1], a[2]);
	if (ret < 0 && ret > -4096)
		printf("ret=-1 errno=%ld\n", -ret);
	else
		printf("ret=%ld errno=0\n", ret);
	return 0;
}

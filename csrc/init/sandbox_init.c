/* sandbox-init: pid 1 of a run's PID namespace.
 *
 * The command runs as pid 2, so it keeps the ordinary signal rules (as pid 1 the kernel would
 * ignore every signal it sends itself without a handler: abort(), alarm(), kill -TERM $$).
 * This program reaps every process of the namespace; when pid 2 ends it writes pid 2's wait
 * status (4 bytes) to fd 3 and exits, which makes the kernel kill whatever is left.
 * It holds no capability and touches nothing else. Built without libc where we can, so that
 * starting it costs as little as an exec can.
 *
 * Run as any other pid it only holds still: the helper through whose /proc files pid 1 maps
 * the ids of a run's user namespace (csrc/spawn.c, map_own_ids). It closes fd 0 to say that it
 * runs (exec done, its memory its own), then waits for the SIGKILL that ends it. */
#include <stdint.h>

#define MAIN_PID 2
#define STATUS_FD 3

#if defined(SB_NOLIBC) && defined(__x86_64__)
#define NR_write 1
#define NR_exit_group 231
#define NR_wait4 61
#define NR_prctl 157
#define NR_close 3
#define NR_getpid 39
#define NR_rt_sigsuspend 130
static long sys4(long nr, long a, long b, long c, long d)
{
	long ret;
	register long r10 __asm__("r10") = d;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(SB_NOLIBC) && defined(__aarch64__)
#define NR_write 64
#define NR_exit_group 94
#define NR_wait4 260
#define NR_prctl 167
#define NR_close 57
#define NR_getpid 172
#define NR_rt_sigsuspend 133
static long sys4(long nr, long a, long b, long c, long d)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;

	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
}
#else
#undef SB_NOLIBC
#include <sys/syscall.h>
#include <unistd.h>
#define NR_write SYS_write
#define NR_exit_group SYS_exit_group
#define NR_wait4 SYS_wait4
#define NR_prctl SYS_prctl
#define NR_close SYS_close
#define NR_getpid SYS_getpid
#define NR_rt_sigsuspend SYS_rt_sigsuspend
static long sys4(long nr, long a, long b, long c, long d)
{
	long r = syscall(nr, a, b, c, d);

	return r < 0 ? -1 : r;
}
#endif

#define EINTR_NEG (-4)

static void hold(void)
{
	uint64_t all = ~(uint64_t)0;

	sys4(NR_close, 0, 0, 0, 0);
	for (;;)
		sys4(NR_rt_sigsuspend, (long)&all, sizeof(all), 0, 0); /* only SIGKILL ends it */
}

static void run_init(void)
{
	/* not dumpable: the command (same uid) cannot ptrace us to fake its own status */
	sys4(NR_prctl, 4 /* PR_SET_DUMPABLE */, 0, 0, 0);
	for (;;) {
		int status = 0;
		long pid = sys4(NR_wait4, -1, (long)&status, 0x40000000 /* __WALL */, 0);

		if (pid == MAIN_PID) {
			sys4(NR_write, STATUS_FD, (long)&status, sizeof(status), 0);
			break;
		}
		if (pid < 0 && pid != EINTR_NEG)
			break; /* no child left (ECHILD) */
	}
	for (;;)
		sys4(NR_exit_group, 0, 0, 0, 0);
}

#ifdef SB_NOLIBC
void _start(void)
{
	if (sys4(NR_getpid, 0, 0, 0, 0) != 1)
		hold();
	run_init();
}
#else
int main(void)
{
	if (sys4(NR_getpid, 0, 0, 0, 0) != 1)
		hold();
	run_init();
	return 0;
}
#endif

/* syscall_probe: load a raw seccomp BPF program for real and report what the kernel does with
 * individual system calls.
 *
 *   syscall_probe [-f FLAGS] [-t MS] [-u] [-g ERRNO [-b]] BPF_FILE SPEC...
 *   syscall_probe -n [-t MS] [-u] SPEC...        (no filter: the kernel's own answer)
 *
 * -f FLAGS  seccomp(2) flags (default 0).
 * -t MS     per-call timeout in milliseconds (default 5000).
 * -u        when run as root, the child becomes uid/gid 65534 without supplementary groups before
 *           installing the filter, so a call a broken filter wrongly allows can do no privileged
 *           damage.
 * -g ERRNO  attach a guard filter first that returns ERRNO(ERRNO) for everything except the
 *           probe's own seccomp(SECCOMP_SET_MODE_FILTER, ...). The kernel runs every attached
 *           filter and keeps the most restrictive action, the newest filter winning ties, so under
 *           the guard no call is executed: the filter under test shows its ERRNO/TRAP/KILL results
 *           unchanged, and any weaker action (ALLOW, LOG, TRACE, USER_NOTIF) comes back as
 *           ERRNO(ERRNO). Sweeps use this to check every syscall number, allowed ones included,
 *           without running any of them.
 * -b        (with -g only) batch: one child makes consecutive calls until one of them ends it,
 *           then a fresh child goes on with the next call. Sound only because under the guard no
 *           call changes the process; it saves a fork and two filter attaches per call.
 *
 * BPF_FILE holds an array of `struct sock_filter` in host byte order ("-" reads stdin). Each SPEC
 * is `ABI:NR[:a0,a1,...]`:
 *   x86_64  the `syscall` instruction with rax = NR, args in rdi rsi rdx r10 r8 r9 (full 64 bits);
 *   x32     the same instruction with rax = NR | 0x40000000 (seccomp sees AUDIT_ARCH_X86_64 and
 *           the x32 bit; the kernel itself may not implement x32 and then answers ENOSYS);
 *   i386    `int $0x80` from this 64-bit process, eax = NR, ebx ecx edx esi edi ebp = a0..a5
 *           truncated to 32 bits (seccomp sees AUDIT_ARCH_I386 and i386 numbers);
 *   i386full the same with the full 64-bit values in rbx rcx rdx rsi rdi rbp: the i386 syscall
 *           reads only the low halves, but seccomp_data.args[] gets the whole registers (observed
 *           on 6.18), so a filter that looked at the high words of i386 arguments could be
 *           steered by a 64-bit process.
 * NR and the args are decimal (optionally negative) or 0x-hex, up to 6 args, missing ones are 0.
 * An arg `@W/W/...` is a pointer to a buffer holding the words W (32-bit words for i386, 64-bit
 * otherwise; e.g. the argument array of socketcall). The buffer for argument i is always at
 * 0x10000000 + 128 * i, so a test can predict the pointer value the filter sees.
 *
 * Each call runs in a fresh forked child (unless -b), so the filter under test cannot break the
 * report: the child sets PR_SET_NO_NEW_PRIVS, installs the filter with
 * seccomp(SECCOMP_SET_MODE_FILTER, FLAGS), makes the call and writes its stages and result into
 * MAP_SHARED memory (plain stores, no syscalls), then leaves with a raw exit_group; if the filter
 * denies even that, it executes ud2 and dies of SIGILL (a fault needs no syscall), or at worst
 * spins until the parent kills it. A SIGSYS handler records a TRAP (the kernel bypasses handlers
 * for the KILL actions, so a handler run means TRAP). One line per SPEC on stdout:
 *   ok ret=R errno=E            the call returned (errno 0 if R is not in -4095..-1)
 *   signal=31                   killed by the filter (KILL_THREAD/KILL_PROCESS)
 *   signal=31 trap=D nr=N arch=0xA
 *                               the filter returned TRAP with data D (SIGSYS was delivered)
 *   signal=S                    killed by another signal during the call
 *   install-failed errno=E stage=S
 *                               setuid (-u), prctl, the guard or the filter failed (S tells which)
 *   exited status=X stage=S     the child exited during the call (e.g. the call was exit)
 *   timeout stage=S             no result within the timeout
 * After `ok` (without -b), ` exit_denied=1` says the filter also refused the child's exit_group,
 * and ` exit_signal=S` that the child died of signal S after the call returned.
 * Exit status: 0 after reporting every SPEC, 2 on usage/input errors.
 */
#if !defined(__x86_64__)
#error "syscall_probe is x86_64-only (it issues x86_64, x32 and i386 system calls)"
#endif

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define X32_BIT 0x40000000UL
#define MAX_PROG 65536          /* more than the kernel's 4096 so oversize filters can be tried */
#define MAX_WORDS 16
#define LOW_BASE 0x10000000UL   /* below 4 GiB: reachable from i386 calls */
#define LOW_SIZE 4096
#define EXIT_GRACE_MS 200       /* a child whose results are all in gets this long to go */

enum abi { ABI_X86_64, ABI_X32, ABI_I386, ABI_I386_FULL };

struct call {
	enum abi abi;
	uint64_t nr;
	uint64_t arg[6];
	int nwords[6];                  /* > 0: arg[i] points at the buffer holding words[i] */
	uint64_t words[6][MAX_WORDS];
};

enum stage {
	ST_FORKED = 0,          /* the call was not reached (yet) */
	ST_DROP_FAILED,
	ST_NNP_FAILED,
	ST_GUARD_FAILED,
	ST_INSTALL_FAILED,
	ST_INSTALLED,           /* the call is being made */
	ST_RETURNED,
	ST_TRAPPED,
};

static const char *const stage_names[] = {
	"forked", "drop-failed", "nnp-failed", "guard-failed", "install-failed", "installed",
	"returned", "trapped",
};

/* One call's record in the memory shared with the children; children write it with plain stores
 * only. */
struct record {
	int stage;
	int install_errno;
	int64_t raw;          /* raw return register, sign-extended */
	int trap_data;        /* si_errno: the TRAP's data bits */
	int trap_nr;          /* si_syscall */
	unsigned trap_arch;   /* si_arch */
	int exit_denied;      /* after this call the final exit_group returned */
};

static struct record *rec;     /* MAP_SHARED, one per call */
static volatile int current;   /* index of the call the child is making (for the SIGSYS handler) */

static void put_stage(int i, int st)
{
	__atomic_store_n(&rec[i].stage, st, __ATOMIC_RELEASE);
}

static int get_stage(int i)
{
	return __atomic_load_n(&rec[i].stage, __ATOMIC_ACQUIRE);
}

/* ---- raw system calls (no glibc wrappers between us and the kernel) ---- */

static long raw_syscall64(uint64_t nr, const uint64_t a[6])
{
	register uint64_t rax __asm__("rax") = nr;
	register uint64_t rdi __asm__("rdi") = a[0];
	register uint64_t rsi __asm__("rsi") = a[1];
	register uint64_t rdx __asm__("rdx") = a[2];
	register uint64_t r10 __asm__("r10") = a[3];
	register uint64_t r8 __asm__("r8") = a[4];
	register uint64_t r9 __asm__("r9") = a[5];
	__asm__ volatile("syscall"
			 : "+r"(rax)
			 : "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory", "cc");
	return (long)rax;
}

/* int $0x80 from 64-bit code. The registers are loaded zero-extended unless `full` (the kernel
 * saves them whole and seccomp reports them whole). ebp carries a5, so it is saved around the
 * call; the stack pointer first skips the red zone that the push would otherwise overwrite. */
static long raw_int80(uint32_t nr, const uint64_t a[6], int full)
{
	const uint64_t m = full ? ~(uint64_t)0 : 0xffffffffu;
	register uint64_t rax __asm__("rax") = nr;
	register uint64_t rbx __asm__("rbx") = a[0] & m;
	register uint64_t rcx __asm__("rcx") = a[1] & m;
	register uint64_t rdx __asm__("rdx") = a[2] & m;
	register uint64_t rsi __asm__("rsi") = a[3] & m;
	register uint64_t rdi __asm__("rdi") = a[4] & m;
	uint64_t a5 = a[5] & m;
	__asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
			 "push %%rbp\n\t"
			 "mov %[a5], %%rbp\n\t"
			 "int $0x80\n\t"
			 "pop %%rbp\n\t"
			 "lea 128(%%rsp), %%rsp"
			 : "+r"(rax)
			 : "r"(rbx), "r"(rcx), "r"(rdx), "r"(rsi), "r"(rdi), [a5] "r"(a5)
			 : "r8", "r9", "r10", "r11", "memory", "cc");
	return (long)(int32_t)rax;
}

static __attribute__((noreturn)) void raw_exit_group(int code)
{
	const uint64_t a[6] = { (uint64_t)code, 0, 0, 0, 0, 0 };

	raw_syscall64(SYS_exit_group, a);
	/* exit_group denied: die of an invalid instruction instead (a fault needs no syscall and
	 * SIGILL has no handler here), or at worst spin until the parent's SIGKILL. */
	__atomic_store_n(&rec[current].exit_denied, 1, __ATOMIC_RELEASE);
	__asm__ volatile("ud2");
	for (;;)
		__builtin_ia32_pause();
}

/* ---- child ---- */

/* The guard for -g: everything but seccomp(SECCOMP_SET_MODE_FILTER, ...) on x86_64 gets the
 * marker errno (patched into k of the first RET). */
static struct sock_filter guard_insns[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4),                         /* arch */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xC000003E, 0, 4),        /* AUDIT_ARCH_X86_64 */
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),                         /* nr */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_seccomp, 0, 2),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16),                        /* a0, low word */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_SET_MODE_FILTER, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO),                  /* | marker */
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

struct options {
	const struct sock_fprog *prog;  /* NULL: no filter (-n) */
	unsigned flags;
	int drop;
	int guard_errno;                /* -1: no guard */
	int batch;
	long long timeout_ms;
};

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	int i = current;

	(void)sig;
	(void)uctx;
	rec[i].trap_data = si->si_errno;
	rec[i].trap_nr = si->si_syscall;
	rec[i].trap_arch = si->si_arch;
	put_stage(i, ST_TRAPPED);
	raw_exit_group(0);
}

static __attribute__((noreturn)) void fail(int i, int st)
{
	rec[i].install_errno = errno;
	put_stage(i, st);
	_exit(0);
}

/* Make calls[first..end) in this process, stopping wherever one of them ends it. */
static __attribute__((noreturn)) void child(const struct options *o, const struct call *calls,
					    int first, int end)
{
	struct sigaction sa;
	sigset_t set;
	struct rlimit no_core = { 0, 0 };
	int i;

	current = first;
	if (o->drop && geteuid() == 0) {
		if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
		    setresuid(65534, 65534, 65534) != 0)
			fail(first, ST_DROP_FAILED);
	}
	/* Die with the parent (set after the uid change, which clears it); never write core files
	 * for the SIGSYS kills. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	sigaddset(&set, SIGILL);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	signal(SIGILL, SIG_DFL);

	if (o->prog) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
			fail(first, ST_NNP_FAILED);
		if (o->guard_errno >= 0) {
			struct sock_fprog g = { sizeof(guard_insns) / sizeof(guard_insns[0]),
						guard_insns };

			guard_insns[6].k = SECCOMP_RET_ERRNO | (uint32_t)o->guard_errno;
			if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &g) < 0)
				fail(first, ST_GUARD_FAILED);
		}
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, o->flags, o->prog) < 0)
			fail(first, ST_INSTALL_FAILED);
	}

	/* From here on, no library calls: only memory accesses and the raw calls. */
	for (i = first; i < end; i++) {
		const struct call *c = &calls[i];
		long ret;

		current = i;
		put_stage(i, ST_INSTALLED);
		switch (c->abi) {
		case ABI_X86_64:
			ret = raw_syscall64(c->nr, c->arg);
			break;
		case ABI_X32:
			ret = raw_syscall64(c->nr | X32_BIT, c->arg);
			break;
		default:
			ret = raw_int80((uint32_t)c->nr, c->arg, c->abi == ABI_I386_FULL);
			break;
		}
		rec[i].raw = ret;
		put_stage(i, ST_RETURNED);
	}
	current = end - 1;
	raw_exit_group(0);
}

/* ---- parent ---- */

static unsigned char *low_mem;

/* Write the `@` buffers of `c` at their fixed addresses (inherited by the next fork). */
static void place_buffers(const struct call *c)
{
	int i, n;

	memset(low_mem, 0, LOW_SIZE);
	for (i = 0; i < 6; i++) {
		unsigned char *buf = low_mem + MAX_WORDS * 8 * i;

		for (n = 0; n < c->nwords[i]; n++) {
			if (c->abi == ABI_I386 || c->abi == ABI_I386_FULL) {
				uint32_t w32 = (uint32_t)c->words[i][n];

				memcpy(buf + 4 * n, &w32, 4);
			} else {
				memcpy(buf + 8 * n, &c->words[i][n], 8);
			}
		}
	}
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Number of calls in [first, end) with a final record, counted from `first`. */
static int progress(int first, int end)
{
	int i = first;

	while (i < end && (get_stage(i) == ST_RETURNED || get_stage(i) == ST_TRAPPED))
		i++;
	return i - first;
}

/* Wait for the child; kill it when a call hangs past the timeout or when every result is in but
 * it cannot leave. Returns 1 if the child was killed by us. */
static int supervise(pid_t pid, int first, int end, long long timeout_ms, int *status)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	long long last = now_ms(), done_at = -1;
	long wait_ns = 20000;
	int seen = 0, killed = 0;

	for (;;) {
		long long now;
		int p;

		if (waitpid(pid, status, WNOHANG) == pid)
			break;
		now = now_ms();
		p = progress(first, end);
		if (p != seen) {
			seen = p;
			last = now;
		}
		if (p == end - first && done_at < 0)
			done_at = now;
		if ((done_at >= 0 && now - done_at > EXIT_GRACE_MS) || now - last > timeout_ms) {
			kill(pid, SIGKILL);
			killed = 1;
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		if (pidfd >= 0) {
			struct pollfd pfd = { pidfd, POLLIN, 0 };

			poll(&pfd, 1, 50);
		} else {
			struct timespec ts = { 0, wait_ns };

			nanosleep(&ts, NULL);
			if (wait_ns < 1000000)
				wait_ns *= 2;
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	return killed;
}

static void print_ok(const struct record *r, int batch, int killed, int status)
{
	long long raw = r->raw;
	int err = 0;

	if (raw < 0 && raw >= -4095) {
		err = (int)-raw;
		raw = -1;
	}
	printf("ok ret=%lld errno=%d", raw, err);
	if (!batch) {
		if (r->exit_denied)
			printf(" exit_denied=1");
		else if (!killed && WIFSIGNALED(status))
			printf(" exit_signal=%d", WTERMSIG(status));
	}
	printf("\n");
}

/* Run calls[first..] in one child (one call unless batching); print what happened to each call
 * it reached. Returns the index of the first call not reported. */
static int run_child(const struct options *o, const struct call *calls, int first, int ncall)
{
	int end = o->batch ? ncall : first + 1;
	int status = 0, killed, i;
	pid_t pid;

	memset(&rec[first], 0, sizeof(rec[0]) * (size_t)(end - first));
	place_buffers(&calls[first]);
	if (o->batch) {
		/* All calls of a batch share the fixed buffers: only the first one may use them. */
		for (i = first + 1; i < end; i++) {
			int j, uses = 0;

			for (j = 0; j < 6; j++)
				uses |= calls[i].nwords[j];
			if (uses) {
				end = i;
				break;
			}
		}
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("fork-failed errno=%d\n", errno);
		return first + 1;
	}
	if (pid == 0)
		child(o, calls, first, end);
	killed = supervise(pid, first, end, o->timeout_ms, &status);

	for (i = first; i < end; i++) {
		const struct record *r = &rec[i];
		int st = get_stage(i);

		switch (st) {
		case ST_RETURNED:
			print_ok(r, o->batch, killed, status);
			continue;
		case ST_TRAPPED:
			printf("signal=%d trap=%d nr=%d arch=0x%x\n", SIGSYS, r->trap_data,
			       r->trap_nr, r->trap_arch);
			return i + 1;
		case ST_DROP_FAILED:
		case ST_NNP_FAILED:
		case ST_GUARD_FAILED:
		case ST_INSTALL_FAILED:
			printf("install-failed errno=%d stage=%s\n", r->install_errno,
			       stage_names[st]);
			return i + 1;
		default:
			break;
		}
		/* The child ended (or hung) during call i, or before reaching it. */
		if (killed)
			printf("timeout stage=%s\n", stage_names[st]);
		else if (WIFSIGNALED(status))
			printf("signal=%d\n", WTERMSIG(status));
		else
			printf("exited status=%d stage=%s\n", WEXITSTATUS(status), stage_names[st]);
		return i + 1;
	}
	return end;
}

/* ---- input ---- */

static int parse_u64(const char *s, const char **end, uint64_t *out)
{
	int neg = 0, hex;
	char *e;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (*s < '0' || *s > '9')
		return -1;
	hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	errno = 0;
	*out = strtoull(hex ? s + 2 : s, &e, hex ? 16 : 10);
	if (errno || e == (hex ? s + 2 : s))
		return -1;
	if (neg)
		*out = (uint64_t)0 - *out;
	*end = e;
	return 0;
}

/* `@W/W/...` for argument i: the words, placed at LOW_BASE + 128 * i before the fork. */
static int parse_buffer(const char *s, const char **end, struct call *c, int i)
{
	int n = 0;

	for (;;) {
		if (n == MAX_WORDS || parse_u64(s, &s, &c->words[i][n]) < 0)
			return -1;
		n++;
		if (*s != '/')
			break;
		s++;
	}
	c->nwords[i] = n;
	c->arg[i] = LOW_BASE + (uint64_t)(MAX_WORDS * 8) * (uint64_t)i;
	*end = s;
	return 0;
}

static int parse_spec(const char *spec, struct call *c)
{
	const char *s = strchr(spec, ':');
	size_t n;
	int i;

	memset(c, 0, sizeof(*c));
	if (!s)
		return -1;
	n = (size_t)(s - spec);
	if (n == 6 && !strncmp(spec, "x86_64", 6))
		c->abi = ABI_X86_64;
	else if (n == 3 && !strncmp(spec, "x32", 3))
		c->abi = ABI_X32;
	else if (n == 4 && !strncmp(spec, "i386", 4))
		c->abi = ABI_I386;
	else if (n == 8 && !strncmp(spec, "i386full", 8))
		c->abi = ABI_I386_FULL;
	else
		return -1;
	if (parse_u64(s + 1, &s, &c->nr) < 0)
		return -1;
	if (*s == '\0')
		return 0;
	if (*s != ':')
		return -1;
	s++;
	for (i = 0; i < 6; i++) {
		int r = *s == '@' ? parse_buffer(s + 1, &s, c, i) : parse_u64(s, &s, &c->arg[i]);

		if (r < 0)
			return -1;
		if (*s == '\0')
			return 0;
		if (*s != ',')
			return -1;
		s++;
	}
	return -1; /* more than 6 args */
}

static int read_prog(const char *path, struct sock_filter **out, size_t *count)
{
	size_t cap = MAX_PROG * sizeof(struct sock_filter), len = 0;
	unsigned char *buf = malloc(cap + 1);
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;

	if (!buf || fd < 0) {
		fprintf(stderr, "syscall_probe: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, cap + 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "syscall_probe: reading %s: %s\n", path, strerror(errno));
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > cap) {
			fprintf(stderr, "syscall_probe: %s: more than %d instructions\n", path,
				MAX_PROG);
			return -1;
		}
	}
	if (fd != 0)
		close(fd);
	if (len % sizeof(struct sock_filter)) {
		fprintf(stderr, "syscall_probe: %s: %zu bytes is not a whole number of instructions\n",
			path, len);
		return -1;
	}
	*out = (struct sock_filter *)buf;
	*count = len / sizeof(struct sock_filter);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: syscall_probe [-f FLAGS] [-t MS] [-u] [-g ERRNO [-b]] BPF_FILE SPEC...\n"
			"       syscall_probe -n [-t MS] [-u] SPEC...\n"
			"SPEC: {x86_64|x32|i386|i386full}:NR[:a0,...,a5]  (arg @W/W/... = buffer)\n");
}

int main(int argc, char **argv)
{
	struct options o = { NULL, 0, 0, -1, 0, 5000 };
	struct sock_fprog fprog;
	struct sock_filter *insns = NULL;
	struct call *calls;
	size_t count = 0, shm_size;
	int opt, i, ncall, no_filter = 0;

	while ((opt = getopt(argc, argv, "+f:t:g:bnuh")) != -1) {
		const char *end;
		uint64_t v = 0;
		int bad = 0;

		switch (opt) {
		case 'f':
			bad = parse_u64(optarg, &end, &v) < 0 || *end || v > 0xffffffffu;
			o.flags = (unsigned)v;
			break;
		case 't':
			bad = parse_u64(optarg, &end, &v) < 0 || *end || v == 0 || v > 3600000;
			o.timeout_ms = (long long)v;
			break;
		case 'g':
			bad = parse_u64(optarg, &end, &v) < 0 || *end || v > 0xffff;
			o.guard_errno = (int)v;
			break;
		case 'b':
			o.batch = 1;
			break;
		case 'n':
			no_filter = 1;
			break;
		case 'u':
			o.drop = 1;
			break;
		default:
			bad = 1;
			break;
		}
		if (bad) {
			usage();
			return 2;
		}
	}
	if (o.batch && (o.guard_errno < 0 || no_filter)) {
		fprintf(stderr, "syscall_probe: -b needs -g (only the guard keeps calls from changing "
				"the process)\n");
		return 2;
	}
	if (!no_filter) {
		if (optind >= argc) {
			usage();
			return 2;
		}
		if (read_prog(argv[optind++], &insns, &count) < 0)
			return 2;
		if (count > 0xffff) {
			fprintf(stderr, "syscall_probe: %zu instructions do not fit sock_fprog.len\n",
				count);
			return 2;
		}
		fprog.len = (unsigned short)count;
		fprog.filter = insns;
		o.prog = &fprog;
	}

	ncall = argc - optind;
	calls = calloc((size_t)(ncall > 0 ? ncall : 1), sizeof(*calls));
	if (!calls)
		return 2;
	for (i = 0; i < ncall; i++) {
		if (parse_spec(argv[optind + i], &calls[i]) < 0) {
			fprintf(stderr, "syscall_probe: bad call spec '%s'\n", argv[optind + i]);
			usage();
			return 2;
		}
	}

	shm_size = sizeof(struct record) * (size_t)(ncall > 0 ? ncall : 1);
	rec = mmap(NULL, shm_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	low_mem = mmap((void *)LOW_BASE, LOW_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (rec == MAP_FAILED || low_mem != (void *)LOW_BASE) {
		fprintf(stderr, "syscall_probe: mmap: %s\n", strerror(errno));
		return 2;
	}
	for (i = 0; i < ncall;)
		i = run_child(&o, calls, i, ncall);
	fflush(stdout);
	return 0;
}

/* Landlock rulesets, built in the parent (see landlock.h). The UAPI constants are spelled out
 * here because build machines' <linux/landlock.h> often predates the ABI the kernel runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "landlock.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444 /* the same number on every architecture */
#define SYS_landlock_add_rule 445
#endif

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

#define LL_EXECUTE (1ULL << 0)
#define LL_WRITE_FILE (1ULL << 1)
#define LL_READ_FILE (1ULL << 2)
#define LL_READ_DIR (1ULL << 3)
#define LL_MAKE_SYM (1ULL << 12) /* the last right of ABI 1: bits 0..12 */
#define LL_REFER (1ULL << 13)     /* ABI 2 */
#define LL_TRUNCATE (1ULL << 14)  /* ABI 3 */
#define LL_IOCTL_DEV (1ULL << 15) /* ABI 5 */

/* rights that make sense on a file (the kernel refuses others in a rule for a file) */
#define LL_FILE_RIGHTS (LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV)
#define LL_READ_ONLY (LL_EXECUTE | LL_READ_FILE | LL_READ_DIR)

struct ll_ruleset_attr {
	uint64_t handled_access_fs; /* later fields (net, scoped) stay unhandled: size says so */
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

int sb_landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);

	return v < 0 ? -errno : (int)v;
}

uint64_t sb_landlock_fs_rights(int abi)
{
	uint64_t rights = (LL_MAKE_SYM << 1) - 1;

	if (abi >= 2)
		rights |= LL_REFER;
	if (abi >= 3)
		rights |= LL_TRUNCATE;
	if (abi >= 5)
		rights |= LL_IOCTL_DEV;
	return rights;
}

/* One path-beneath rule; 0 or -errno. */
static int allow(int ruleset, const char *path, uint64_t rights)
{
	struct ll_path_beneath_attr rule;
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else {
		rule.allowed_access = S_ISDIR(st.st_mode) ? rights : rights & LL_FILE_RIGHTS;
		rule.parent_fd = fd;
		if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0) < 0)
			rc = -errno;
	}
	close(fd);
	return rc;
}

int sb_landlock_build(int abi, const char *const *ro, uint32_t nro, const char *const *rw,
		      uint32_t nrw, int *bad)
{
	struct ll_ruleset_attr attr = {sb_landlock_fs_rights(abi)};
	int fd, rc = 0;

	*bad = -1;
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		return -errno;
	if (fd < 3) {
		/* the child fills 0..2 with its stdio before it applies the ruleset */
		int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);

		rc = moved < 0 ? -errno : 0;
		close(fd);
		if (rc)
			return rc;
		fd = moved;
	}
	for (uint32_t i = 0; i < nro + nrw && !rc; i++) {
		int writable = i >= nro;

		rc = allow(fd, writable ? rw[i - nro] : ro[i],
			   writable ? attr.handled_access_fs : attr.handled_access_fs & LL_READ_ONLY);
		if (rc)
			*bad = (int)i;
	}
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

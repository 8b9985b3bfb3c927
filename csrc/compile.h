/* The seccomp compiler: normalized rules (from sandbox/profile.py) -> classic BPF.
 *
 * Semantics (the README states them in one paragraph):
 *  - A syscall with at least one unconditional rule gets the action of its FIRST unconditional
 *    rule, whatever else is listed for it (libseccomp: first unconditional wins, and an
 *    unconditional rule replaces conditional ones).
 *  - Otherwise its conditional rules are OR-ed; a call that matches several gets the most
 *    restrictive action among them (kernel order KILL_PROCESS > KILL_THREAD > TRAP > ERRNO >
 *    USER_NOTIF > TRACE > LOG > ALLOW; ties: the earliest rule); a call that matches none gets the
 *    default action.
 *  - Conditions of one rule are AND-ed. Compares are unsigned 64-bit; on 32-bit ABIs (x86, x32,
 *    arm) only the low words are compared (libseccomp); on 64-bit ABIs an argument the kernel
 *    declares 32-bit is compared as its low word zero-extended, unless args_like_libseccomp.
 *  - On x86 a rule for a socket or SysV IPC call also applies to socketcall/ipc with a0 forced to
 *    the call number, as libseccomp generates it.
 *  - The ENOSYS stub (runc): for every arch in the filter, numbers above the highest syscall named
 *    by the profile return ERRNO(ENOSYS), when the default action is not ALLOW, LOG or TRACE.
 */
#ifndef SB_COMPILE_H
#define SB_COMPILE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/filter.h>

#include "syscalls/syscalls.h"

enum sb_op { SB_OP_NE = 1, SB_OP_LT, SB_OP_LE, SB_OP_EQ, SB_OP_GE, SB_OP_GT, SB_OP_MASKED_EQ };

struct sb_cond {
	uint32_t index;     /* 0..5 */
	uint32_t op;        /* enum sb_op */
	uint64_t value;     /* MASKED_EQ: the mask */
	uint64_t value_two; /* MASKED_EQ: the value compared after masking */
};

struct sb_rule {
	const char *name;       /* syscall name, resolved per arch by the compiler */
	uint32_t action;        /* kernel return value, e.g. 0x00050001 = ERRNO(EPERM) */
	uint32_t ncond;
	const struct sb_cond *cond;
};

struct sb_policy {
	uint32_t default_action;
	uint32_t badarch_action;         /* KILL_THREAD (0) like libseccomp/runc */
	uint32_t narch;
	const int *arch;                 /* enum sb_arch, in filter order (native first) */
	uint32_t nrule;
	const struct sb_rule *rule;      /* file order, one name per rule, default-equal rules dropped */
	uint32_t nstub_name;
	const char *const *stub_name;    /* every name the profile lists (for the ENOSYS cut-off) */
	int enosys_stub;                 /* 1: add runc's stub when the default allows it */
	int args_like_libseccomp;        /* 1: compare all 64 bits of every argument, as libseccomp */
};

/* What decided a call. */
enum sb_decider {
	SB_BY_RULE = 0,   /* rule[rule_index] */
	SB_BY_DEFAULT,    /* no rule matched */
	SB_BY_BADARCH,    /* the arch is not in the filter */
	SB_BY_STUB,       /* the ENOSYS stub: number above the profile's highest known syscall */
};

struct sb_decision {
	uint32_t action;
	int decider;        /* enum sb_decider */
	int rule_index;     /* index into policy->rule, or -1 */
};

struct sb_error {
	char msg[256];
};

struct sb_stats {
	uint32_t len;                 /* instructions */
	uint32_t arch_len[SB_ARCH_COUNT];
};

/* Compile `p`. On success returns 0 and sets *out (malloc'd, free with free()) and *len.
 * On failure returns -1 with err->msg set. */
int sb_compile(const struct sb_policy *p, struct sock_filter **out, uint32_t *len,
	       struct sb_error *err);

/* Decide one call from the rules directly (the reference the BPF must agree with). `arch` is an
 * AUDIT_ARCH_* value as the kernel reports it. */
int sb_decide(const struct sb_policy *p, uint32_t audit_arch, uint32_t nr, const uint64_t args[6],
	      struct sb_decision *out, struct sb_error *err);

#endif

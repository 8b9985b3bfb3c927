/* A classic-BPF interpreter for seccomp programs, and an emulation of the kernel's action cache
 * (kernel/seccomp.c seccomp_is_const_allow). Used by `sandbox explain`, the tests and bench/. */
#ifndef SB_BPF_EMU_H
#define SB_BPF_EMU_H

#include <stdint.h>
#include <linux/filter.h>

struct sb_seccomp_data {
	int32_t nr;
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t args[6];
};

/* Check a program the way the kernel does before attaching it (bpf_check_classic +
 * seccomp_check_filter): length 1..4096, allowed opcodes, forward jumps in range, ends in RET,
 * aligned 32-bit loads inside seccomp_data, no uninitialised scratch reads. Returns 0 or -1 with a
 * message in err (at least 128 bytes). */
int sb_bpf_validate(const struct sock_filter *prog, uint32_t len, char *err, uint32_t errlen);

/* Run `prog` on `data`. Returns the 32-bit return value; *executed (if not NULL) gets the number of
 * instructions executed, the RET included. A program that fails validation returns 0 (KILL). */
uint32_t sb_bpf_run(const struct sock_filter *prog, uint32_t len, const struct sb_seccomp_data *data,
		    uint32_t *executed);

/* The kernel's cache emulation for (arch, nr) with the argument words unknown: returns 1 if the
 * program provably returns exactly SECCOMP_RET_ALLOW, 0 if not. *walked (if not NULL) gets the
 * instructions the emulator stepped through. */
int sb_bpf_const_allow(const struct sock_filter *prog, uint32_t len, uint32_t arch, uint32_t nr,
		       uint32_t *walked);

#endif

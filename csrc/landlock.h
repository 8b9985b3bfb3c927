/* Landlock filesystem rulesets for sandboxed commands. The parent builds a ruleset once (a file
 * descriptor: every filesystem right the running ABI knows is "handled", i.e. denied unless a
 * rule grants it beneath an allowed path); the child applies it with landlock_restrict_self
 * after no_new_privs and before the seccomp filter (spawn.c). One ruleset serves any number of
 * children, from any number of threads. */
#ifndef SB_LANDLOCK_H
#define SB_LANDLOCK_H

#include <stdint.h>

/* The running kernel's Landlock ABI version (>= 1), or -errno: -ENOSYS when the kernel was built
 * without Landlock, -EOPNOTSUPP when it is disabled at boot (not in the `lsm=` list). */
int sb_landlock_abi(void);

/* Every filesystem access right ABI `abi` knows (what a ruleset of that ABI handles). */
uint64_t sb_landlock_fs_rights(int abi);

/* A new ruleset handling every filesystem right of `abi`, with read-only access (read files,
 * list directories, execute) beneath each of ro[0..nro) and every right beneath each of
 * rw[0..nrw). A path naming a file gets only the rights that apply to files. Returns the
 * ruleset descriptor (close-on-exec, never 0..2), or -errno with *bad set to the index of the
 * path that failed (ro first, then rw: nro + i), or to -1 when the ruleset itself failed. */
int sb_landlock_build(int abi, const char *const *ro, uint32_t nro, const char *const *rw,
		      uint32_t nrw, int *bad);

#endif

/* Rules resolved per architecture: which rules apply to which syscall number on one ABI.
 * Shared by the BPF emitter (compile.c) and the reference evaluator (sb_decide). */
#ifndef SB_RULESET_H
#define SB_RULESET_H

#include "compile.h"

/* A rule as it applies on one ABI (x86 socketcall/ipc companions have a0 rewritten). */
struct sb_xrule {
	int rule;                   /* index into policy->rule */
	uint32_t order;             /* generation order (file order, companions before direct) */
	uint32_t action;
	uint32_t ncond;
	struct sb_cond cond[6];
	uint8_t arg32;              /* bit i: argument i is compared on its low word only */
};

/* Everything that applies to one syscall number on one ABI. */
struct sb_xsys {
	uint32_t nr;
	int uncond;                 /* index into abi->rules of the deciding unconditional rule, or -1 */
	uint32_t first, count;      /* conditional rules, most restrictive first (abi->rules order) */
};

struct sb_abi {
	int arch;                   /* enum sb_arch */
	int present;                /* the ABI is in the filter */
	int is64;                   /* 64-bit ABI: compare both argument words */
	uint32_t dom_lo, dom_hi;    /* the syscall numbers this ABI owns in its AUDIT_ARCH section */
	int64_t stub_max;           /* ENOSYS stub cut-off, -1 for none */
	uint32_t table_max;         /* highest ordinary syscall number in the arch table */
	struct sb_xrule *rules;
	uint32_t nrules;
	struct sb_xsys *sys;        /* sorted by nr */
	uint32_t nsys;
};

/* One `jeq arch` section of the filter; x86_64 and x32 share AUDIT_ARCH_X86_64. */
struct sb_section {
	uint32_t audit_arch;
	struct sb_abi abi[2];       /* abi[1] is used only for the x86_64/x32 pair */
	uint32_t nabi;
};

struct sb_ruleset {
	const struct sb_policy *policy;
	int32_t *rule_name;         /* per rule: index of its name in sb_all_syscall_names, or -1 */
	int32_t *stub_name;         /* the same for policy->stub_name */
	struct sb_section sec[SB_ARCH_COUNT];
	uint32_t nsec;
};

int sb_ruleset_build(const struct sb_policy *p, struct sb_ruleset *rs, struct sb_error *err);
void sb_ruleset_free(struct sb_ruleset *rs);

/* What a section does with syscall number `nr` before looking at arguments: a fixed action
 * (sys == NULL), or the conditional rules of `sys` on `abi` with the default when none matches. */
struct sb_outcome {
	uint32_t action;
	int decider;
	int rule_index;
	const struct sb_abi *abi;
	const struct sb_xsys *sys;
};

void sb_section_outcome(const struct sb_ruleset *rs, const struct sb_section *s, uint32_t nr,
			struct sb_outcome *o);

/* Decide one call from a built rule set (see sb_decide). */
void sb_ruleset_decide(const struct sb_ruleset *rs, uint32_t audit_arch, uint32_t nr,
		       const uint64_t args[6], struct sb_decision *out);

/* Action rank as the kernel orders actions: lower is more restrictive. */
int32_t sb_action_rank(uint32_t action);

/* Does conditional rule `x` match these arguments on `abi`? */
int sb_xrule_match(const struct sb_abi *abi, const struct sb_xrule *x, const uint64_t args[6]);

/* Which ABI of a section owns `nr`, or NULL. */
const struct sb_abi *sb_section_abi(const struct sb_section *s, uint32_t nr);

/* Make room for one more element in a growable array; -1 when out of memory. */
int sb_grow(void **buf, uint32_t *cap, uint32_t n, size_t size);

void sb_set_error(struct sb_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif

/* Resolve the policy's rules per ABI: names -> numbers, x86 socketcall/ipc companions,
 * unconditional-rule precedence, most-restrictive ordering of conditional rules, ENOSYS cut-offs. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ruleset.h"

#define X32_BIT 0x40000000u
#define ENOSYS_NR 38

void sb_set_error(struct sb_error *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

int sb_grow(void **buf, uint32_t *cap, uint32_t n, size_t size)
{
	uint32_t want;
	void *v;

	if (n < *cap)
		return 0;
	want = *cap ? *cap * 2 : 64;
	v = realloc(*buf, (size_t)want * size);
	if (!v)
		return -1;
	*buf = v;
	*cap = want;
	return 0;
}

int32_t sb_action_rank(uint32_t action)
{
	return (int32_t)(action & 0xffff0000u);
}

/* The calls x86 multiplexes through socketcall(2) and ipc(2), with their call numbers
 * (linux/net.h SYS_*, and the ipc(2) call numbers of linux/ipc.h). */
struct mux_call {
	const char *name;
	uint32_t call;
};

/* Sorted by name (mux_lookup searches them). */
static const struct mux_call socket_calls[] = {
	{"accept", 5}, {"accept4", 18}, {"bind", 2}, {"connect", 3}, {"getpeername", 7},
	{"getsockname", 6}, {"getsockopt", 15}, {"listen", 4}, {"recv", 10}, {"recvfrom", 12},
	{"recvmmsg", 19}, {"recvmsg", 17}, {"send", 9}, {"sendmmsg", 20}, {"sendmsg", 16},
	{"sendto", 11}, {"setsockopt", 14}, {"shutdown", 13}, {"socket", 1}, {"socketpair", 8},
};

static const struct mux_call ipc_calls[] = {
	{"msgctl", 14}, {"msgget", 13}, {"msgrcv", 12}, {"msgsnd", 11}, {"semctl", 3},
	{"semget", 2}, {"semop", 1}, {"semtimedop", 4}, {"shmat", 21}, {"shmctl", 24},
	{"shmdt", 22}, {"shmget", 23},
};

static int mux_lookup(const struct mux_call *t, size_t n, const char *name, uint32_t *call)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, t[mid].name);

		if (c == 0) {
			*call = t[mid].call;
			return 1;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

static const char *op_ok(uint32_t op)
{
	return (op >= SB_OP_NE && op <= SB_OP_MASKED_EQ) ? NULL : "unknown operator";
}

struct pending {
	uint32_t nr;
	struct sb_xrule x;
};

struct pending_list {
	struct pending *v;
	uint32_t n, cap;
};

static int pending_push(struct pending_list *l, const struct pending *p)
{
	if (sb_grow((void **)&l->v, &l->cap, l->n, sizeof(*l->v)) < 0)
		return -1;
	l->v[l->n++] = *p;
	return 0;
}

/* Sort v[0..n) by the high 32 bits of each key, keeping the order of equal ones; tmp: scratch
 * space for n keys. */
static void sort_by_high_word(uint64_t *v, uint32_t n, uint64_t *tmp)
{
	/* LSD radix sort, a byte per pass (stable, linear), where qsort's indirect compares made
	 * sorting the costliest step of a compile. A byte all keys share needs no pass: syscall
	 * numbers differ in their low two bytes only, but for ARM's private calls. */
	uint32_t count[4][256] = {{0}};

	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = (uint32_t)(v[i] >> 32);

		count[0][h & 0xff]++;
		count[1][(h >> 8) & 0xff]++;
		count[2][(h >> 16) & 0xff]++;
		count[3][h >> 24]++;
	}
	for (int b = 0; b < 4 && n > 0; b++) {
		uint32_t *c = count[b], pos = 0, shift = 32 + 8 * b;

		if (c[(v[0] >> shift) & 0xff] == n)
			continue;
		for (int d = 0; d < 256; d++) {
			uint32_t k = c[d];

			c[d] = pos;
			pos += k;
		}
		for (uint32_t i = 0; i < n; i++)
			tmp[c[(v[i] >> shift) & 0xff]++] = v[i];
		memcpy(v, tmp, n * sizeof(*v));
	}
}

/* Conditional rules: most restrictive action first, then earliest rule. */
static int cmp_cond_rules(const void *a, const void *b)
{
	const struct sb_xrule *x = a, *y = b;
	int32_t rx = sb_action_rank(x->action), ry = sb_action_rank(y->action);

	if (rx != ry)
		return rx < ry ? -1 : 1;
	return x->order < y->order ? -1 : (x->order > y->order);
}

static uint8_t arg32_of(const struct sb_policy *p, int arch, uint32_t nr)
{
	const struct sb_syscall *e;

	if (!sb_syscall_tables[arch].is64)
		return 0x3f;
	if (p->args_like_libseccomp)
		return 0;
	e = sb_syscall_by_nr((enum sb_arch)arch, nr);
	return e ? e->arg32 : 0;
}

/* libseccomp drops a MASKED_EQ whose mask is zero (over the ABI's argument width) as a
 * tautology; a rule left with no condition is then unconditional, with all that implies. */
static void drop_tautologies(struct sb_xrule *x, int is64)
{
	uint32_t n = 0;

	for (uint32_t k = 0; k < x->ncond; k++) {
		const struct sb_cond *c = &x->cond[k];
		uint64_t mask = is64 ? c->value : (c->value & 0xffffffffu);

		if (c->op == SB_OP_MASKED_EQ && mask == 0)
			continue;
		x->cond[n++] = *c;
	}
	x->ncond = n;
}

/* Give a resolved rule its order and argument widths and queue it. */
static int push_xrule(struct pending *pd, uint32_t nr, const struct sb_policy *p, int arch,
		      uint32_t *order, struct pending_list *l)
{
	pd->nr = nr;
	pd->x.order = (*order)++;
	pd->x.arg32 = arg32_of(p, arch, nr);
	drop_tautologies(&pd->x, sb_syscall_tables[arch].is64);
	return pending_push(l, pd);
}

/* x86's multiplexed calls by name index (in sb_all_syscall_names): the call number, MUX_IPC set
 * for ipc(2), 0 for none. Built once: searching the names took longer than the rest of
 * resolving a rule. */
#define MUX_IPC 0x80
static uint8_t *mux_by_index;
static pthread_once_t mux_once = PTHREAD_ONCE_INIT;

static void build_mux_by_index(void)
{
	uint8_t *v = calloc(sb_all_syscall_names_count + 1, 1);

	if (!v)
		return; /* mux_of falls back to the name search */
	for (size_t i = 0; i < sizeof(socket_calls) / sizeof(socket_calls[0]); i++) {
		int32_t idx = sb_syscall_index(socket_calls[i].name);

		if (idx >= 0)
			v[idx] = (uint8_t)socket_calls[i].call;
	}
	for (size_t i = 0; i < sizeof(ipc_calls) / sizeof(ipc_calls[0]); i++) {
		int32_t idx = sb_syscall_index(ipc_calls[i].name);

		if (idx >= 0)
			v[idx] = (uint8_t)ipc_calls[i].call | MUX_IPC;
	}
	mux_by_index = v;
}

/* x86's multiplexer for `name` (socketcall or ipc) and the call number, or NULL. `index`: the
 * name's position in sb_all_syscall_names, or -1. */
static const char *mux_of(const char *name, int32_t index, uint32_t *call)
{
	pthread_once(&mux_once, build_mux_by_index);
	if (mux_by_index && index >= 0) {
		uint8_t m = mux_by_index[index];

		*call = m & ~MUX_IPC;
		return m == 0 ? NULL : (m & MUX_IPC) ? "ipc" : "socketcall";
	}
	if (mux_lookup(socket_calls, sizeof(socket_calls) / sizeof(socket_calls[0]), name, call))
		return "socketcall";
	if (mux_lookup(ipc_calls, sizeof(ipc_calls) / sizeof(ipc_calls[0]), name, call))
		return "ipc";
	return NULL;
}

/* Add rule `i` (as it applies on `arch`) to the pending list. */
static int add_rule(const struct sb_ruleset *rs, int arch, uint32_t i, uint32_t *order,
		    struct pending_list *l, struct sb_error *err)
{
	const struct sb_policy *p = rs->policy;
	const struct sb_rule *r = &p->rule[i];
	int64_t nr = sb_syscall_nr_by_index((enum sb_arch)arch, rs->rule_name[i]);
	struct pending pd;
	uint32_t call;
	int mux = 0;
	int64_t mux_nr = -1;

	memset(&pd, 0, sizeof(pd));
	pd.x.rule = (int)i;
	pd.x.action = r->action;
	pd.x.ncond = r->ncond;
	memcpy(pd.x.cond, r->cond, r->ncond * sizeof(r->cond[0]));

	if (arch == SB_ARCH_X86) {
		const char *mux_name = mux_of(r->name, rs->rule_name[i], &call);

		if (mux_name) {
			mux = 1;
			mux_nr = sb_syscall_nr(SB_ARCH_X86, mux_name);
		}
	}
	if (mux && mux_nr >= 0) {
		/* libseccomp: the multiplexed rule keeps the other conditions and forces a0 == call. */
		struct pending m = pd;
		uint32_t k, n = 0;

		for (k = 0; k < m.x.ncond; k++)
			if (m.x.cond[k].index != 0)
				m.x.cond[n++] = m.x.cond[k];
		m.x.cond[n].index = 0;
		m.x.cond[n].op = SB_OP_EQ;
		m.x.cond[n].value = call;
		m.x.cond[n].value_two = 0;
		m.x.ncond = n + 1;
		if (push_xrule(&m, (uint32_t)mux_nr, p, arch, order, l) < 0)
			goto oom;
	}
	if (nr >= 0 && push_xrule(&pd, (uint32_t)nr, p, arch, order, l) < 0)
		goto oom;
	return 0;
oom:
	sb_set_error(err, "out of memory");
	return -1;
}

static int64_t stub_max_for(const struct sb_ruleset *rs, int arch)
{
	const struct sb_policy *p = rs->policy;
	int64_t max = -1;

	for (uint32_t i = 0; i < p->nstub_name; i++) {
		const char *name = p->stub_name[i];
		uint32_t call;
		int64_t nr;

		/* libseccomp resolves x86's socket and ipc calls to pseudo numbers (they are
		 * multiplexed), so runc leaves them out of the cut-off; so do we. */
		if (arch == SB_ARCH_X86 && mux_of(name, rs->stub_name[i], &call))
			continue;
		nr = sb_syscall_nr_by_index((enum sb_arch)arch, rs->stub_name[i]);

		if (nr > max)
			max = nr;
	}
	/* runc takes a largest number of 0 for "none" and adds no stub section then */
	return max > 0 ? max : -1;
}

static uint32_t table_max_of(int arch)
{
	const struct sb_syscall_table *t = &sb_syscall_tables[arch];
	uint32_t max = 0, base = arch == SB_ARCH_X32 ? X32_BIT : 0;

	for (uint32_t i = 0; i < t->count; i++) {
		uint32_t nr = t->entries[i].nr;

		/* ARM's private calls sit at 0x0f0000+; they are not part of the dense range. */
		if (arch == SB_ARCH_ARM && nr >= 0x0f0000)
			continue;
		if (nr > max)
			max = nr;
	}
	return max < base ? base : max;
}

static int build_abi(const struct sb_ruleset *rs, struct sb_abi *abi, int arch, int present,
		     struct sb_error *err)
{
	const struct sb_policy *p = rs->policy;
	struct pending_list l = {0};
	uint64_t *keys = NULL;
	uint32_t order = 0, i, j;

	abi->arch = arch;
	abi->present = present;
	abi->is64 = sb_syscall_tables[arch].is64;
	abi->table_max = table_max_of(arch);
	abi->stub_max = -1;
	if (!present)
		return 0;

	if (p->enosys_stub) {
		uint32_t kind = p->default_action & 0xffff0000u;

		if (kind != 0x7fff0000u && kind != 0x7ffc0000u && kind != 0x7ff00000u)
			abi->stub_max = stub_max_for(rs, arch);
	}

	/* at most two entries per rule (x86: the socketcall/ipc companion and the direct call) */
	l.cap = 2 * p->nrule + 1;
	l.v = malloc(l.cap * sizeof(*l.v));
	if (!l.v)
		goto oom;
	for (i = 0; i < p->nrule; i++)
		if (add_rule(rs, arch, i, &order, &l, err) < 0)
			goto fail;
	/* sort by (number, generation order) through 64-bit keys: the entries are large and
	 * already in generation order, so key k is (number, k) and a stable sort by number does */
	keys = malloc(2 * (l.n ? l.n : 1) * sizeof(*keys));
	abi->rules = malloc((l.n ? l.n : 1) * sizeof(*abi->rules));
	abi->sys = malloc((l.n ? l.n : 1) * sizeof(*abi->sys));
	if (!keys || !abi->rules || !abi->sys)
		goto oom;
	for (i = 0; i < l.n; i++)
		keys[i] = ((uint64_t)l.v[i].nr << 32) | i;
	sort_by_high_word(keys, l.n, keys + l.n);
#define AT(k) (&l.v[(uint32_t)keys[k]])
	for (i = 0; i < l.n; i = j) {
		struct sb_xsys *s = &abi->sys[abi->nsys++];
		int uncond = -1;

		for (j = i; j < l.n && AT(j)->nr == AT(i)->nr; j++)
			if (uncond < 0 && AT(j)->x.ncond == 0)
				uncond = (int)j;
		s->nr = AT(i)->nr;
		s->first = abi->nrules;
		if (uncond >= 0) {
			/* The first unconditional rule decides every call of this syscall. */
			abi->rules[abi->nrules] = AT(uncond)->x;
			s->uncond = (int)abi->nrules++;
			s->count = 0;
			continue;
		}
		s->uncond = -1;
		for (uint32_t k = i; k < j; k++)
			abi->rules[abi->nrules++] = AT(k)->x;
		s->count = j - i;
		qsort(&abi->rules[s->first], s->count, sizeof(abi->rules[0]), cmp_cond_rules);
	}
#undef AT
	free(keys);
	free(l.v);
	return 0;
oom:
	sb_set_error(err, "out of memory");
fail:
	free(keys);
	free(l.v);
	return -1;
}

static int validate_policy(const struct sb_policy *p, struct sb_error *err)
{
	for (uint32_t i = 0; i < p->narch; i++) {
		if (p->arch[i] < 0 || p->arch[i] >= SB_ARCH_COUNT) {
			sb_set_error(err, "arch #%u: unknown architecture %d", i, p->arch[i]);
			return -1;
		}
	}
	for (uint32_t i = 0; i < p->nrule; i++) {
		const struct sb_rule *r = &p->rule[i];
		unsigned seen = 0;

		if (!r->name || !r->name[0]) {
			sb_set_error(err, "rule %u: empty syscall name", i);
			return -1;
		}
		if (r->ncond > 6) {
			sb_set_error(err, "rule %u (%s): %u conditions, at most 6", i, r->name, r->ncond);
			return -1;
		}
		for (uint32_t k = 0; k < r->ncond; k++) {
			const struct sb_cond *c = &r->cond[k];

			if (c->index > 5) {
				sb_set_error(err, "rule %u (%s): argument index %u out of range", i,
					     r->name, c->index);
				return -1;
			}
			if (op_ok(c->op)) {
				sb_set_error(err, "rule %u (%s): unknown operator %u", i, r->name, c->op);
				return -1;
			}
			if (seen & (1u << c->index)) {
				sb_set_error(err, "rule %u (%s): argument %u compared twice in one rule",
					     i, r->name, c->index);
				return -1;
			}
			seen |= 1u << c->index;
		}
	}
	return 0;
}

int sb_ruleset_build(const struct sb_policy *p, struct sb_ruleset *rs, struct sb_error *err)
{
	int want[SB_ARCH_COUNT] = {0};
	int placed[SB_ARCH_COUNT] = {0};

	memset(rs, 0, sizeof(*rs));
	rs->policy = p;
	if (validate_policy(p, err) < 0)
		return -1;
	for (uint32_t i = 0; i < p->narch; i++)
		want[p->arch[i]] = 1;
	/* resolve every name once; each arch then looks its number up by index */
	rs->rule_name = malloc((p->nrule + 1) * sizeof(*rs->rule_name));
	rs->stub_name = malloc((p->nstub_name + 1) * sizeof(*rs->stub_name));
	if (!rs->rule_name || !rs->stub_name) {
		sb_set_error(err, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < p->nrule; i++)
		rs->rule_name[i] = sb_syscall_index(p->rule[i].name);
	for (uint32_t i = 0; i < p->nstub_name; i++)
		rs->stub_name[i] = sb_syscall_index(p->stub_name[i]);

	/* Sections in policy order; x86_64 and x32 share one (the first of the two places it). */
	for (uint32_t i = 0; i < p->narch; i++) {
		int a = p->arch[i];
		struct sb_section *s;

		if (placed[a])
			continue;
		s = &rs->sec[rs->nsec++];
		s->audit_arch = sb_syscall_tables[a].audit_arch;
		if (a == SB_ARCH_X86_64 || a == SB_ARCH_X32) {
			placed[SB_ARCH_X86_64] = placed[SB_ARCH_X32] = 1;
			s->nabi = 2;
			if (build_abi(rs, &s->abi[0], SB_ARCH_X86_64, want[SB_ARCH_X86_64], err) < 0 ||
			    build_abi(rs, &s->abi[1], SB_ARCH_X32, want[SB_ARCH_X32], err) < 0)
				goto fail;
			s->abi[0].dom_lo = 0;
			s->abi[0].dom_hi = X32_BIT - 1;
			s->abi[1].dom_lo = X32_BIT;
			s->abi[1].dom_hi = 0xffffffffu;
		} else {
			placed[a] = 1;
			s->nabi = 1;
			if (build_abi(rs, &s->abi[0], a, 1, err) < 0)
				goto fail;
			s->abi[0].dom_lo = 0;
			s->abi[0].dom_hi = 0xffffffffu;
		}
	}
	return 0;
fail:
	sb_ruleset_free(rs);
	return -1;
}

void sb_ruleset_free(struct sb_ruleset *rs)
{
	for (uint32_t i = 0; i < rs->nsec; i++) {
		for (uint32_t k = 0; k < rs->sec[i].nabi; k++) {
			free(rs->sec[i].abi[k].rules);
			free(rs->sec[i].abi[k].sys);
		}
	}
	free(rs->rule_name);
	free(rs->stub_name);
	memset(rs, 0, sizeof(*rs));
}

const struct sb_abi *sb_section_abi(const struct sb_section *s, uint32_t nr)
{
	for (uint32_t k = 0; k < s->nabi; k++)
		if (nr >= s->abi[k].dom_lo && nr <= s->abi[k].dom_hi)
			return &s->abi[k];
	return NULL;
}

static int cond_match(const struct sb_cond *c, uint64_t arg, int low_only, int abi32)
{
	uint64_t v = c->value, v2 = c->value_two;

	if (abi32) {
		/* libseccomp on a 32-bit ABI: low words only, the datum's high word discarded. */
		arg &= 0xffffffffu;
		v &= 0xffffffffu;
		v2 &= 0xffffffffu;
	} else if (low_only) {
		/* The kernel reads this argument as 32-bit: compare it zero-extended. */
		arg &= 0xffffffffu;
	}
	switch (c->op) {
	case SB_OP_NE: return arg != v;
	case SB_OP_LT: return arg < v;
	case SB_OP_LE: return arg <= v;
	case SB_OP_EQ: return arg == v;
	case SB_OP_GE: return arg >= v;
	case SB_OP_GT: return arg > v;
	case SB_OP_MASKED_EQ: return (arg & v) == (v2 & v);
	}
	return 0;
}

int sb_xrule_match(const struct sb_abi *abi, const struct sb_xrule *x, const uint64_t args[6])
{
	for (uint32_t k = 0; k < x->ncond; k++) {
		const struct sb_cond *c = &x->cond[k];

		if (!cond_match(c, args[c->index], (x->arg32 >> c->index) & 1, !abi->is64))
			return 0;
	}
	return 1;
}

static const struct sb_xsys *find_sys(const struct sb_abi *abi, uint32_t nr)
{
	uint32_t lo = 0, hi = abi->nsys;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (abi->sys[mid].nr == nr)
			return &abi->sys[mid];
		if (abi->sys[mid].nr < nr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void fixed(struct sb_outcome *o, uint32_t action, int decider, int rule_index)
{
	o->sys = NULL;
	o->abi = NULL;
	o->action = action;
	o->decider = decider;
	o->rule_index = rule_index;
}

/* The ABI whose runc ENOSYS cut-off applies to `nr` in a section: x86_64's stub tells the
 * ABIs apart by the x32 bit alone (so 0x80000000 counts as x86_64), libseccomp's filter by
 * nr >= 0x40000000. */
static const struct sb_abi *stub_abi(const struct sb_section *s, uint32_t nr)
{
	if (s->nabi == 1)
		return &s->abi[0];
	return (nr & X32_BIT) ? &s->abi[1] : &s->abi[0];
}

void sb_section_outcome(const struct sb_ruleset *rs, const struct sb_section *s, uint32_t nr,
			struct sb_outcome *o)
{
	const struct sb_policy *p = rs->policy;
	const struct sb_abi *st = stub_abi(s, nr);
	const struct sb_abi *abi = sb_section_abi(s, nr);
	const struct sb_xsys *sys;

	/* runc's stub runs first, for the ABIs the filter was configured with */
	if (st->present && st->stub_max >= 0 && (int64_t)nr > st->stub_max) {
		fixed(o, 0x00050000u | ENOSYS_NR, SB_BY_STUB, -1);
		return;
	}
	if (!abi->present) {
		/* x86_64 without x32: nr -1 (a tracer's "skip") still reaches the syscall list */
		if (abi->arch == SB_ARCH_X32 && nr == 0xffffffffu && s->abi[0].present)
			fixed(o, p->default_action, SB_BY_DEFAULT, -1);
		else
			fixed(o, p->badarch_action, SB_BY_BADARCH, -1);
		return;
	}
	sys = find_sys(abi, nr);
	if (!sys) {
		fixed(o, p->default_action, SB_BY_DEFAULT, -1);
		return;
	}
	if (sys->uncond >= 0) {
		fixed(o, abi->rules[sys->uncond].action, SB_BY_RULE, abi->rules[sys->uncond].rule);
		return;
	}
	o->abi = abi;
	o->sys = sys;
	o->action = p->default_action;
	o->decider = SB_BY_DEFAULT;
	o->rule_index = -1;
}

void sb_ruleset_decide(const struct sb_ruleset *rs, uint32_t audit_arch, uint32_t nr,
		       const uint64_t args[6], struct sb_decision *out)
{
	struct sb_outcome o;

	out->rule_index = -1;
	for (uint32_t i = 0; i < rs->nsec; i++) {
		if (rs->sec[i].audit_arch != audit_arch)
			continue;
		sb_section_outcome(rs, &rs->sec[i], nr, &o);
		out->action = o.action;
		out->decider = o.decider;
		out->rule_index = o.rule_index;
		if (!o.sys)
			return;
		for (uint32_t k = 0; k < o.sys->count; k++) {
			const struct sb_xrule *x = &o.abi->rules[o.sys->first + k];

			if (sb_xrule_match(o.abi, x, args)) {
				out->action = x->action;
				out->decider = SB_BY_RULE;
				out->rule_index = x->rule;
				break;
			}
		}
		return;
	}
	out->action = rs->policy->badarch_action;
	out->decider = SB_BY_BADARCH;
}

int sb_decide(const struct sb_policy *p, uint32_t audit_arch, uint32_t nr, const uint64_t args[6],
	      struct sb_decision *out, struct sb_error *err)
{
	struct sb_ruleset rs;

	if (sb_ruleset_build(p, &rs, err) < 0)
		return -1;
	sb_ruleset_decide(&rs, audit_arch, nr, args, out);
	sb_ruleset_free(&rs);
	return 0;
}

/* Emit classic BPF for a resolved rule set.
 *
 * Layout:
 *   ld [arch]; jeq AUDIT_ARCH_1 -> section 1; jeq AUDIT_ARCH_2 -> section 2; ...; ret BADARCH
 *   section: ld [nr]; a search tree of `jge K` over ranges of numbers with the same outcome
 *            (weighted so common syscall numbers sit near the root); a leaf is a shared `ret` or a
 *            jump into the syscall's argument block
 *   argument blocks: one per conditional syscall, its rules most restrictive first
 *   ret instructions, shared by action
 * The path of every syscall that needs no argument test uses only ld [arch]/[nr], jeq/jge and ja
 * with constants and `ret`, so the kernel's action cache can precompute it.
 *
 * The program is emitted backwards (last instruction first): every jump target already exists
 * when the jump is written, so jump offsets are known at once and a target more than 255
 * instructions away gets a nearby `ret` copy or a `ja` trampoline placed right after the jump.
 */
#include <stdlib.h>
#include <string.h>

#include "ruleset.h"

#define MAX_INSNS 4096
#define ARCH_OFF 4
#define NR_OFF 0
#define ARG_LO(i) (16 + 8 * (i))
#define ARG_HI(i) (20 + 8 * (i))

/* A jump target: a `ret` of some action (placed wherever convenient) or a fixed instruction. */
struct tgt {
	int is_ret;
	uint32_t v; /* action, or position counted from the end of the program */
};

static struct tgt T_RET(uint32_t action) { struct tgt t = {1, action}; return t; }
static struct tgt T_POS(uint32_t pos) { struct tgt t = {0, pos}; return t; }

struct ret_copy {
	uint32_t action;
	uint32_t pos;
};

/* An argument block already emitted, by content, so identical blocks of several ABIs (the same
 * personality rules on x86_64, x32 and i386, say) are emitted once. */
struct block_copy {
	uint64_t *key;
	uint32_t len;
	struct tgt t;
};

struct emitter {
	struct sock_filter *buf; /* buf[i] is the instruction at position i from the end */
	uint32_t n, cap;
	struct ret_copy *rets;   /* nearest copy of each ret emitted so far */
	uint32_t nrets, caprets;
	struct block_copy *blocks;
	uint32_t nblocks, capblocks;
	int oom;
};

static uint32_t put(struct emitter *e, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	if (sb_grow((void **)&e->buf, &e->cap, e->n, sizeof(*e->buf)) < 0) {
		e->oom = 1;
		return e->n ? e->n - 1 : 0;
	}
	e->buf[e->n].code = code;
	e->buf[e->n].jt = jt;
	e->buf[e->n].jf = jf;
	e->buf[e->n].k = k;
	return e->n++;
}

static uint32_t emit_ret(struct emitter *e, uint32_t action)
{
	uint32_t pos = put(e, BPF_RET | BPF_K, 0, 0, action);

	for (uint32_t i = 0; i < e->nrets; i++) {
		if (e->rets[i].action == action) {
			e->rets[i].pos = pos;
			return pos;
		}
	}
	if (sb_grow((void **)&e->rets, &e->caprets, e->nrets, sizeof(*e->rets)) < 0) {
		e->oom = 1;
		return pos;
	}
	e->rets[e->nrets].action = action;
	e->rets[e->nrets].pos = pos;
	e->nrets++;
	return pos;
}

/* Position of the nearest `ret action`, emitting one if there is none yet. */
static uint32_t ret_pos(struct emitter *e, uint32_t action)
{
	for (uint32_t i = 0; i < e->nrets; i++)
		if (e->rets[i].action == action)
			return e->rets[i].pos;
	return emit_ret(e, action);
}

static uint32_t resolve(struct emitter *e, struct tgt t)
{
	return t.is_ret ? ret_pos(e, t.v) : t.v;
}

static uint32_t emit_ja(struct emitter *e, uint32_t target)
{
	return put(e, BPF_JMP | BPF_JA, 0, 0, e->n - target - 1);
}

/* Make `t` reachable by an 8-bit offset from the next instruction to be emitted. */
static uint32_t near(struct emitter *e, struct tgt t)
{
	uint32_t pos = resolve(e, t);

	if (e->n - pos - 1 <= 255)
		return pos;
	return t.is_ret ? emit_ret(e, t.v) : emit_ja(e, pos);
}

/* Emit `if (A <op> k) goto jt else goto jf`. */
static struct tgt emit_jump(struct emitter *e, uint16_t op, uint32_t k, struct tgt jt, struct tgt jf)
{
	uint32_t f = near(e, jf);
	uint32_t t = near(e, jt);

	/* placing t's trampoline may have pushed f out of reach; re-placing f moves t by one */
	if (e->n - f - 1 > 255) {
		f = jf.is_ret ? emit_ret(e, jf.v) : emit_ja(e, f);
		if (e->n - t - 1 > 255)
			t = jt.is_ret ? emit_ret(e, jt.v) : emit_ja(e, t);
	}
	return T_POS(put(e, BPF_JMP | op | BPF_K, (uint8_t)(e->n - t - 1), (uint8_t)(e->n - f - 1), k));
}

static struct tgt emit_stmt(struct emitter *e, uint16_t code, uint32_t k)
{
	return T_POS(put(e, code, 0, 0, k));
}

/* Code that falls through into `next`, which must be the last emitted instruction, or jumps. */
static struct tgt emit_load(struct emitter *e, uint32_t off, struct tgt next)
{
	uint32_t pos = resolve(e, next);

	if (pos != e->n - 1)
		emit_ja(e, pos);
	return emit_stmt(e, BPF_LD | BPF_W | BPF_ABS, off);
}

/* ---- argument comparisons --------------------------------------------------------------- */

/* A jump made while the accumulator holds the word at `off`: a target that begins by loading
 * that same word can be entered one instruction later. */
static struct tgt skip_reload(const struct emitter *e, struct tgt t, uint32_t off)
{
	const struct sock_filter *f;

	if (t.is_ret || t.v == 0)
		return t;
	f = &e->buf[t.v];
	if (f->code == (BPF_LD | BPF_W | BPF_ABS) && f->k == off)
		return T_POS(t.v - 1);
	return t;
}

/* Test one 32-bit word: if ((word & mask) <op> k) jt else jf; op is BPF_JEQ, BPF_JGT or BPF_JGE. */
static struct tgt word_test(struct emitter *e, uint32_t off, uint32_t mask, uint16_t op, uint32_t k,
			    struct tgt jt, struct tgt jf)
{
	/* constant outcomes need no code */
	if (op == BPF_JGE && k == 0)
		return jt;
	if (op == BPF_JGT && k == 0xffffffffu)
		return jf;
	if (op == BPF_JEQ && (k & ~mask))
		return jf;
	if (mask == 0xffffffffu) {
		jt = skip_reload(e, jt, off);
		jf = skip_reload(e, jf, off);
	}
	emit_jump(e, op, k, jt, jf);
	if (mask != 0xffffffffu)
		emit_stmt(e, BPF_ALU | BPF_AND | BPF_K, mask);
	return emit_stmt(e, BPF_LD | BPF_W | BPF_ABS, off);
}

/* arg > R (strict) or arg >= R (ge) on the full 64-bit value, or with the high word known 0. */
static struct tgt cmp_greater(struct emitter *e, uint32_t idx, uint64_t r, int ge, int hi_zero,
			      struct tgt jt, struct tgt jf)
{
	uint32_t rhi = (uint32_t)(r >> 32), rlo = (uint32_t)r;
	struct tgt lo, eq;

	if (hi_zero) {
		if (rhi != 0)
			return jf; /* 0:lo can never exceed a value with a non-zero high word */
		return word_test(e, ARG_LO(idx), 0xffffffffu, ge ? BPF_JGE : BPF_JGT, rlo, jt, jf);
	}
	lo = word_test(e, ARG_LO(idx), 0xffffffffu, ge ? BPF_JGE : BPF_JGT, rlo, jt, jf);
	/* hi > rhi -> jt; hi == rhi -> low word decides; else jf */
	eq = emit_jump(e, BPF_JEQ, rhi, lo, skip_reload(e, jf, ARG_HI(idx)));
	if (rhi != 0xffffffffu) /* nothing is above 0xffffffff */
		emit_jump(e, BPF_JGT, rhi, skip_reload(e, jt, ARG_HI(idx)), eq);
	return emit_stmt(e, BPF_LD | BPF_W | BPF_ABS, ARG_HI(idx));
}

static struct tgt cmp_masked_eq(struct emitter *e, uint32_t idx, uint64_t mask, uint64_t val,
				int hi_zero, struct tgt jt, struct tgt jf)
{
	uint32_t mhi = (uint32_t)(mask >> 32), mlo = (uint32_t)mask;
	uint32_t vhi = (uint32_t)(val >> 32) & mhi, vlo = (uint32_t)val & mlo;
	struct tgt t = jt;

	if (mlo != 0)
		t = word_test(e, ARG_LO(idx), mlo, BPF_JEQ, vlo, t, jf);
	if (!hi_zero && mhi != 0)
		t = word_test(e, ARG_HI(idx), mhi, BPF_JEQ, vhi, t, jf);
	return t;
}

static struct tgt emit_cond(struct emitter *e, const struct sb_cond *c, int hi_zero, int abi32,
			    struct tgt jt, struct tgt jf)
{
	uint64_t v = c->value, v2 = c->value_two;

	if (abi32) {
		v &= 0xffffffffu;
		v2 &= 0xffffffffu;
	}
	switch (c->op) {
	case SB_OP_EQ:
		return cmp_masked_eq(e, c->index, ~0ull, v, hi_zero, jt, jf);
	case SB_OP_NE:
		return cmp_masked_eq(e, c->index, ~0ull, v, hi_zero, jf, jt);
	case SB_OP_MASKED_EQ:
		return cmp_masked_eq(e, c->index, v, v2, hi_zero, jt, jf);
	case SB_OP_GT:
		return cmp_greater(e, c->index, v, 0, hi_zero, jt, jf);
	case SB_OP_GE:
		return cmp_greater(e, c->index, v, 1, hi_zero, jt, jf);
	case SB_OP_LT: /* not >= */
		return cmp_greater(e, c->index, v, 1, hi_zero, jf, jt);
	case SB_OP_LE: /* not > */
		return cmp_greater(e, c->index, v, 0, hi_zero, jf, jt);
	}
	return jf;
}

/* EQ with a value whose high word is non-zero on a zero-high argument is constant false;
 * cmp_masked_eq handles that through word_test only for the low word, so fold it here. */
static int cond_const_false(const struct sb_cond *c, int hi_zero, int abi32)
{
	if (abi32 || !hi_zero)
		return 0;
	if (c->op == SB_OP_EQ)
		return (c->value >> 32) != 0;
	if (c->op == SB_OP_MASKED_EQ)
		return ((c->value_two & c->value) >> 32) != 0;
	return 0;
}

static int cond_const_true(const struct sb_cond *c, int hi_zero, int abi32)
{
	if (abi32 || !hi_zero)
		return 0;
	return c->op == SB_OP_NE && (c->value >> 32) != 0;
}

/* The argument block of one syscall: its rules, most restrictive first, then the default. */
static struct tgt emit_block_code(struct emitter *e, const struct sb_abi *abi,
				  const struct sb_xsys *s, uint32_t default_action)
{
	struct tgt next = T_RET(default_action);

	for (uint32_t r = s->count; r-- > 0;) {
		const struct sb_xrule *x = &abi->rules[s->first + r];
		struct tgt t = T_RET(x->action);
		int dead = 0;

		for (uint32_t k = x->ncond; k-- > 0 && !dead;) {
			const struct sb_cond *c = &x->cond[k];
			int hi_zero = !abi->is64 || ((x->arg32 >> c->index) & 1);

			if (cond_const_false(c, hi_zero, !abi->is64))
				dead = 1;
			else if (!cond_const_true(c, hi_zero, !abi->is64))
				t = emit_cond(e, c, hi_zero, !abi->is64, t, next);
		}
		if (!dead)
			next = t;
	}
	return next;
}

/* What decides the code of a block: per rule its action and, per condition, everything
 * emit_cond looks at. */
static uint32_t block_key(const struct sb_abi *abi, const struct sb_xsys *s, uint32_t default_action,
			  uint64_t *key)
{
	uint32_t n = 0;

	key[n++] = default_action;
	for (uint32_t r = 0; r < s->count; r++) {
		const struct sb_xrule *x = &abi->rules[s->first + r];

		key[n++] = ((uint64_t)x->action << 32) | x->ncond;
		for (uint32_t k = 0; k < x->ncond; k++) {
			const struct sb_cond *c = &x->cond[k];
			int hi_zero = !abi->is64 || ((x->arg32 >> c->index) & 1);

			key[n++] = ((uint64_t)c->index << 32) | ((uint64_t)c->op << 8) |
				   ((uint64_t)hi_zero << 1) | (uint64_t)!abi->is64;
			key[n++] = c->value;
			key[n++] = c->value_two;
		}
	}
	return n;
}

static struct tgt emit_block(struct emitter *e, const struct sb_abi *abi, const struct sb_xsys *s,
			     uint32_t default_action)
{
	uint32_t cap = 1, n;
	uint64_t *key;
	struct tgt t;

	for (uint32_t r = 0; r < s->count; r++)
		cap += 1 + 3 * abi->rules[s->first + r].ncond;
	key = malloc(cap * sizeof(*key));
	if (!key) {
		e->oom = 1;
		return T_RET(default_action);
	}
	n = block_key(abi, s, default_action, key);
	for (uint32_t i = 0; i < e->nblocks; i++) {
		if (e->blocks[i].len == n && memcmp(e->blocks[i].key, key, n * sizeof(*key)) == 0) {
			free(key);
			return e->blocks[i].t;
		}
	}
	t = emit_block_code(e, abi, s, default_action);
	if (sb_grow((void **)&e->blocks, &e->capblocks, e->nblocks, sizeof(*e->blocks)) < 0) {
		free(key);
		e->oom = 1;
		return t;
	}
	e->blocks[e->nblocks].key = key;
	e->blocks[e->nblocks].len = n;
	e->blocks[e->nblocks].t = t;
	e->nblocks++;
	return t;
}

/* ---- syscall-number dispatch ------------------------------------------------------------- */

struct range {
	uint32_t lo, hi;
	int block;          /* index into the section's sys array for an argument block, or -1 */
	uint32_t action;    /* when block < 0 */
	uint64_t weight;
};

struct ranges {
	struct range *v;
	uint32_t n, cap;
	int oom;
};

static void push_range(struct ranges *rs, uint32_t lo, uint32_t hi, int block, uint32_t action)
{
	struct range *last = rs->n ? &rs->v[rs->n - 1] : NULL;

	if (lo > hi)
		return;
	if (last && block < 0 && last->block < 0 && last->action == action && last->hi + 1 == lo) {
		last->hi = hi;
		return;
	}
	if (sb_grow((void **)&rs->v, &rs->cap, rs->n, sizeof(*rs->v)) < 0) {
		rs->oom = 1;
		return;
	}
	rs->v[rs->n].lo = lo;
	rs->v[rs->n].hi = hi;
	rs->v[rs->n].block = block;
	rs->v[rs->n].action = action;
	rs->v[rs->n].weight = 0;
	rs->n++;
}

/* Sort a nearly sorted array: linear when only a few elements are out of place. */
static void insertion_sort(uint32_t *v, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		uint32_t x = v[i], j = i;

		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* The section's ranges: every number where the outcome may change is a breakpoint (each
 * rule's number and the one after, the stub cut-offs, the ABI quarter boundaries, -1), and
 * each interval between breakpoints takes the outcome of its first number, as
 * sb_section_outcome (the reference evaluator) computes it. */
static int section_ranges(struct ranges *rs, const struct sb_ruleset *set,
			  const struct sb_section *sec, uint32_t base1)
{
	uint32_t n = 8, nb = 0;
	uint32_t *bp;

	for (uint32_t k = 0; k < sec->nabi; k++)
		n += 2 * sec->abi[k].nsys + 2;
	bp = malloc(n * sizeof(*bp));
	if (!bp)
		return -1;
	/* each ABI's numbers come sorted, the ABIs in the order of their domains: only the few
	 * fixed points after them are out of place */
	for (uint32_t k = 0; k < sec->nabi; k++) {
		const struct sb_abi *abi = &sec->abi[k];

		for (uint32_t i = 0; i < abi->nsys; i++) {
			bp[nb++] = abi->sys[i].nr;
			if (abi->sys[i].nr != 0xffffffffu)
				bp[nb++] = abi->sys[i].nr + 1;
		}
	}
	for (uint32_t k = 0; k < sec->nabi; k++) {
		const struct sb_abi *abi = &sec->abi[k];

		if (abi->stub_max >= 0 && abi->stub_max < 0xffffffffLL)
			bp[nb++] = (uint32_t)abi->stub_max + 1;
		/* the same cut-off in the other quarter its ABI owns (x86_64: bit 30 only) */
		if (sec->nabi == 2 && abi->stub_max >= 0 && abi->stub_max < 0x3fffffffLL)
			bp[nb++] = (uint32_t)abi->stub_max + 1 + 0x80000000u;
	}
	bp[nb++] = 0;
	bp[nb++] = 0x40000000u;
	bp[nb++] = 0x80000000u;
	bp[nb++] = 0xc0000000u;
	bp[nb++] = 0xffffffffu;
	insertion_sort(bp, nb);
	for (uint32_t i = 0; i < nb; i++) {
		struct sb_outcome o;
		uint32_t lo = bp[i], hi;

		if (i > 0 && bp[i] == bp[i - 1])
			continue;
		hi = 0xffffffffu;
		for (uint32_t j = i + 1; j < nb; j++) {
			if (bp[j] != lo) {
				hi = bp[j] - 1;
				break;
			}
		}
		sb_section_outcome(set, sec, lo, &o);
		if (o.sys) {
			uint32_t k = o.abi == &sec->abi[0] ? 0 : 1;

			push_range(rs, lo, hi, (int)((k ? base1 : 0) + (uint32_t)(o.sys - o.abi->sys)), 0);
		} else {
			push_range(rs, lo, hi, -1, o.action);
		}
	}
	free(bp);
	return rs->oom ? -1 : 0;
}

/* How often a range is expected to be hit: the syscall numbers of the arch tables inside it. */
static void weigh(struct ranges *rs, const struct sb_section *sec)
{
	for (uint32_t i = 0; i < rs->n; i++) {
		struct range *r = &rs->v[i];
		uint64_t w = 0;

		for (uint32_t k = 0; k < sec->nabi; k++) {
			const struct sb_abi *abi = &sec->abi[k];
			uint64_t lo = r->lo > abi->dom_lo ? r->lo : abi->dom_lo;
			uint64_t hi = r->hi < abi->table_max ? r->hi : abi->table_max;
			const struct sb_syscall_table *t = &sb_syscall_tables[abi->arch];

			if (lo <= hi)
				/* x32 shares x86_64's section but is rarely used (and never cached by
				 * the kernel): keep its part of the tree out of x86_64's way */
				w += (hi - lo + 1) * (abi->arch == SB_ARCH_X32 ? 1 : 64);
			if (abi->arch == SB_ARCH_ARM) /* private calls above the dense range */
				for (uint32_t j = 0; j < t->count; j++)
					if (t->entries[j].nr >= 0x0f0000 && t->entries[j].nr >= r->lo &&
					    t->entries[j].nr <= r->hi)
						w += 64;
		}
		/* never zero, so that rare ranges still sit in a balanced part of the tree */
		r->weight = w * 16 + 1;
	}
}

/* Split point of the search tree over ranges i..j (i < j): the last range of the left subtree,
 * chosen so the two subtrees weigh as nearly the same as possible (a weight-balanced tree, within
 * a couple of comparisons of the optimal one on every profile we measured). wsum: prefix sums. */
static uint32_t split(const uint64_t *wsum, uint32_t i, uint32_t j)
{
	uint64_t half = wsum[i] + (wsum[j + 1] - wsum[i]) / 2;
	uint32_t lo = i, hi = j - 1;

	/* first m in [i, j-1] whose prefix reaches half */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (wsum[mid + 1] < half)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* the one before may balance better */
	if (lo > i && half - wsum[lo] < wsum[lo + 1] - half)
		lo--;
	return lo;
}

static struct tgt emit_tree(struct emitter *e, const struct ranges *rs, const uint64_t *wsum,
			    uint32_t i, uint32_t j, const struct tgt *block_tgt)
{
	const struct range *r;
	uint32_t m;
	struct tgt left, right;

	if (i == j) {
		r = &rs->v[i];
		return r->block >= 0 ? block_tgt[r->block] : T_RET(r->action);
	}
	m = split(wsum, i, j);
	right = emit_tree(e, rs, wsum, m + 1, j, block_tgt);
	left = emit_tree(e, rs, wsum, i, m, block_tgt);
	return emit_jump(e, BPF_JGE, rs->v[m + 1].lo, right, left);
}

static int emit_section(struct emitter *e, const struct sb_ruleset *set, const struct sb_section *sec,
			struct tgt *out, struct sb_error *err)
{
	struct ranges rs = {0};
	struct tgt *block_tgt;
	uint32_t nblocks = 0, base1 = sec->abi[0].nsys;
	uint64_t *wsum = NULL;

	for (uint32_t k = 0; k < sec->nabi; k++)
		nblocks += sec->abi[k].nsys;
	block_tgt = calloc(nblocks ? nblocks : 1, sizeof(*block_tgt));
	if (!block_tgt)
		goto oom;

	/* argument blocks first: they sit after the search tree in the program */
	for (uint32_t k = 0; k < sec->nabi; k++) {
		const struct sb_abi *abi = &sec->abi[k];

		for (uint32_t i = 0; i < abi->nsys; i++)
			if (abi->sys[i].uncond < 0 && abi->present)
				block_tgt[(k ? base1 : 0) + i] =
					emit_block(e, abi, &abi->sys[i], set->policy->default_action);
	}

	if (section_ranges(&rs, set, sec, base1) < 0 || rs.n == 0)
		goto oom;
	weigh(&rs, sec);
	if (rs.n == 1) {
		*out = rs.v[0].block >= 0 ? block_tgt[rs.v[0].block] : T_RET(rs.v[0].action);
	} else {
		wsum = malloc(((size_t)rs.n + 1) * sizeof(*wsum));
		if (!wsum)
			goto oom;
		wsum[0] = 0;
		for (uint32_t i = 0; i < rs.n; i++)
			wsum[i + 1] = wsum[i] + rs.v[i].weight;
		*out = emit_load(e, NR_OFF, emit_tree(e, &rs, wsum, 0, rs.n - 1, block_tgt));
	}
	free(wsum);
	free(block_tgt);
	free(rs.v);
	return 0;
oom:
	free(block_tgt);
	free(rs.v);
	sb_set_error(err, "out of memory");
	return -1;
}

/* Drop instructions no path reaches (a rule's entry load left behind when every jump into the
 * rule could skip it). Offsets only shrink, so every jump stays in range. Returns the new length. */
static uint32_t drop_unreachable(struct sock_filter *prog, uint32_t len)
{
	uint8_t *live;
	uint32_t *pos;
	uint32_t n = 0;

	if (len == 0)
		return 0;
	live = calloc(len, 1);
	pos = calloc(len + 1, sizeof(*pos));
	if (!live || !pos) {
		free(live);
		free(pos);
		return len; /* keep the program as it is */
	}
	live[0] = 1;
	for (uint32_t i = 0; i < len; i++) {
		const struct sock_filter *f = &prog[i];

		if (!live[i])
			continue;
		if (BPF_CLASS(f->code) == BPF_RET)
			continue;
		/* the emitter only makes forward jumps inside the program */
		if (f->code == (BPF_JMP | BPF_JA)) {
			if (f->k < len - i - 1)
				live[i + 1 + f->k] = 1;
		} else if (BPF_CLASS(f->code) == BPF_JMP) {
			if (i + 1u + f->jt < len)
				live[i + 1 + f->jt] = 1;
			if (i + 1u + f->jf < len)
				live[i + 1 + f->jf] = 1;
		} else if (i + 1 < len) {
			live[i + 1] = 1;
		}
	}
	for (uint32_t i = 0; i < len; i++) {
		pos[i] = n;
		n += live[i];
	}
	pos[len] = n;
	for (uint32_t i = 0; i < len; i++) {
		struct sock_filter f = prog[i];

		if (!live[i])
			continue;
		if (f.code == (BPF_JMP | BPF_JA)) {
			f.k = pos[i + 1 + f.k] - pos[i] - 1;
		} else if (BPF_CLASS(f.code) == BPF_JMP) {
			f.jt = (uint8_t)(pos[i + 1 + f.jt] - pos[i] - 1);
			f.jf = (uint8_t)(pos[i + 1 + f.jf] - pos[i] - 1);
		}
		prog[pos[i]] = f;
	}
	free(live);
	free(pos);
	return n;
}

int sb_compile(const struct sb_policy *p, struct sock_filter **out, uint32_t *len,
	       struct sb_error *err)
{
	struct sb_ruleset rs;
	struct emitter e = {0};
	struct tgt sec_tgt[SB_ARCH_COUNT], next;
	int rc = -1;

	*out = NULL;
	*len = 0;
	if (sb_ruleset_build(p, &rs, err) < 0)
		return -1;

	/* the most common returns go last, so that they are shared by the most jumps */
	ret_pos(&e, p->badarch_action);
	ret_pos(&e, p->default_action);
	ret_pos(&e, 0x7fff0000u);

	for (uint32_t i = rs.nsec; i-- > 0;)
		if (emit_section(&e, &rs, &rs.sec[i], &sec_tgt[i], err) < 0)
			goto done;

	next = T_RET(p->badarch_action);
	for (uint32_t i = rs.nsec; i-- > 0;)
		next = emit_jump(&e, BPF_JEQ, rs.sec[i].audit_arch, sec_tgt[i], next);
	emit_load(&e, ARCH_OFF, next);

	if (e.oom) {
		sb_set_error(err, "out of memory");
		goto done;
	}
	*out = malloc(e.n * sizeof(**out));
	if (!*out) {
		sb_set_error(err, "out of memory");
		goto done;
	}
	for (uint32_t i = 0; i < e.n; i++)
		(*out)[i] = e.buf[e.n - 1 - i];
	*len = drop_unreachable(*out, e.n);
	if (*len > MAX_INSNS) {
		sb_set_error(err, "the filter needs %u instructions; the kernel accepts at most %d "
			     "(reduce argument rules or architectures)", *len, MAX_INSNS);
		free(*out);
		*out = NULL;
		*len = 0;
		goto done;
	}
	rc = 0;
done:
	for (uint32_t i = 0; i < e.nblocks; i++)
		free(e.blocks[i].key);
	free(e.blocks);
	free(e.buf);
	free(e.rets);
	sb_ruleset_free(&rs);
	return rc;
}

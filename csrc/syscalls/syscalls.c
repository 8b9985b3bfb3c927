/* Lookups over the generated per-architecture syscall tables (syscall_tables.c). */
#include "syscalls.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const struct sb_syscall_table *table_of(enum sb_arch arch)
{
	if ((unsigned)arch >= (unsigned)SB_ARCH_COUNT)
		return NULL;
	return &sb_syscall_tables[arch];
}

/* Entries are sorted by name in strcmp order. */
static const struct sb_syscall *find_by_name(const struct sb_syscall_table *t, const char *name)
{
	uint32_t lo = 0, hi = t->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, t->entries[mid].name);

		if (c == 0)
			return &t->entries[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

int64_t sb_syscall_nr(enum sb_arch arch, const char *name)
{
	const struct sb_syscall_table *t = table_of(arch);
	const struct sb_syscall *e;

	if (!t || !name)
		return -1;
	e = find_by_name(t, name);
	return e ? (int64_t)e->nr : -1;
}

const struct sb_syscall *sb_syscall_by_nr(enum sb_arch arch, uint32_t nr)
{
	const struct sb_syscall_table *t = table_of(arch);
	const uint16_t *order;
	uint32_t lo = 0, hi;

	if (!t)
		return NULL;
	order = sb_syscall_nr_order[arch];
	hi = t->count;
	/* lower bound of nr in the by-number index */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->entries[order[mid]].nr < nr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->count && t->entries[order[lo]].nr == nr)
		return &t->entries[order[lo]];
	return NULL;
}

int sb_syscall_known(const char *name)
{
	uint32_t lo = 0, hi = sb_all_syscall_names_count;

	if (!name)
		return 0;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, sb_all_syscall_names[mid]);

		if (c == 0)
			return 1;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

int sb_arch_by_name(const char *name)
{
	int i;

	if (!name)
		return -1;
	for (i = 0; i < (int)SB_ARCH_COUNT; i++)
		if (strcmp(name, sb_syscall_tables[i].arch_name) == 0)
			return i;
	return -1;
}

/* name -> index: an open-addressing hash table over sb_all_syscall_names, built once. */
#define NAME_SLOTS 2048u /* a power of two, more than twice the names */
static int32_t name_slot[NAME_SLOTS];
static pthread_once_t name_slot_once = PTHREAD_ONCE_INIT;

static uint32_t name_hash(const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

static void build_name_slots(void)
{
	for (uint32_t i = 0; i < NAME_SLOTS; i++)
		name_slot[i] = -1;
	for (uint32_t i = 0; i < sb_all_syscall_names_count && i < NAME_SLOTS / 2; i++) {
		uint32_t h = name_hash(sb_all_syscall_names[i]) & (NAME_SLOTS - 1);

		while (name_slot[h] >= 0)
			h = (h + 1) & (NAME_SLOTS - 1);
		name_slot[h] = (int32_t)i;
	}
}

int32_t sb_syscall_index(const char *name)
{
	uint32_t h;

	if (!name)
		return -1;
	if (sb_all_syscall_names_count >= NAME_SLOTS / 2) {
		/* the table outgrew the hash: binary search */
		uint32_t lo = 0, hi = sb_all_syscall_names_count;

		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			int c = strcmp(name, sb_all_syscall_names[mid]);

			if (c == 0)
				return (int32_t)mid;
			if (c < 0)
				hi = mid;
			else
				lo = mid + 1;
		}
		return -1;
	}
	pthread_once(&name_slot_once, build_name_slots);
	for (h = name_hash(name) & (NAME_SLOTS - 1); name_slot[h] >= 0; h = (h + 1) & (NAME_SLOTS - 1))
		if (strcmp(name, sb_all_syscall_names[name_slot[h]]) == 0)
			return name_slot[h];
	return -1;
}

/* nr_by_index[arch][index]: the number, or -1; built once from the tables. */
static int64_t *nr_by_index[SB_ARCH_COUNT];
static pthread_once_t nr_by_index_once = PTHREAD_ONCE_INIT;

static void build_nr_by_index(void)
{
	for (int a = 0; a < (int)SB_ARCH_COUNT; a++) {
		const struct sb_syscall_table *t = &sb_syscall_tables[a];
		int64_t *v = malloc(sb_all_syscall_names_count * sizeof(*v));

		if (!v)
			continue; /* sb_syscall_nr_by_index falls back to the name search */
		for (uint32_t i = 0; i < sb_all_syscall_names_count; i++)
			v[i] = -1;
		for (uint32_t i = 0; i < t->count; i++) {
			int32_t idx = sb_syscall_index(t->entries[i].name);

			if (idx >= 0)
				v[idx] = t->entries[i].nr;
		}
		nr_by_index[a] = v;
	}
}

int64_t sb_syscall_nr_by_index(enum sb_arch arch, int32_t index)
{
	if ((unsigned)arch >= (unsigned)SB_ARCH_COUNT || index < 0 ||
	    (uint32_t)index >= sb_all_syscall_names_count)
		return -1;
	pthread_once(&nr_by_index_once, build_nr_by_index);
	if (!nr_by_index[arch])
		return sb_syscall_nr(arch, sb_all_syscall_names[index]);
	return nr_by_index[arch][index];
}

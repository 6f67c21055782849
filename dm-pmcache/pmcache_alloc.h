/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Free cache slots. The slots are split into regions, each with its own
 * lock and free stack, so CPUs allocating at once rarely meet. The stack
 * links reuse the index's slot links (a free slot is in no hash chain).
 *
 * A slot handed to pmc_alloc_put() must have a zero commit word in pmem
 * that is already persistent: its next owner writes the key word first.
 *
 * Each CPU may also keep one free slot aside, its spare: an overwrite frees
 * the old copy's slot and the next write on that CPU takes it back, without
 * a lock or a shared counter. Spares are not in the count of free slots
 * (at most one per CPU is hidden from it).
 */
#ifndef PMCACHE_ALLOC_H
#define PMCACHE_ALLOC_H

#include "pmcache_index.h"

struct pmc_region {
	spinlock_t lock;	/* head, count and the links of this region */
	u32 head;
	u32 count;
} __aligned(64);

struct pmc_spare {
	u32 slot;	/* PMC_NO_SLOT when empty */
} __aligned(64);

struct pmc_alloc {
	u32 nr_regions;
	u32 slots_per_region;
	u32 region_stride;	/* regions per CPU: where a CPU looks first */
	u32 nr_cpus;
	struct pmc_slot_entry *slots;	/* the index's: their links */
	struct pmc_region *regions;
	struct pmc_spare *spares;	/* one per CPU */
	/* 64 bits: a cache of 2^31 slots, all free, would wrap an int. */
	atomic64_t nr_free;
};

int pmc_alloc_init(struct pmc_alloc *a, struct pmc_index *idx, u32 nr_regions,
		   u32 nr_cpus);
void pmc_alloc_exit(struct pmc_alloc *a);
/* A free slot, from the regions of @cpu first; PMC_NO_SLOT if none. */
u32 pmc_alloc_get(struct pmc_alloc *a, unsigned int cpu);
void pmc_alloc_put(struct pmc_alloc *a, u32 slot);
/*
 * The spare of @cpu (PMC_NO_SLOT if it has none), which is then empty.
 * Inline, as the next one: every overwrite runs both. Any task may use any
 * CPU's spare (the caller's CPU may change under it): the exchanges make
 * that safe, and on the CPU's own cache line they cost little.
 */
static inline u32 pmc_alloc_take_spare(struct pmc_alloc *a, unsigned int cpu)
{
	if (cpu >= a->nr_cpus || READ_ONCE(a->spares[cpu].slot) == PMC_NO_SLOT)
		return PMC_NO_SLOT;
	return xchg(&a->spares[cpu].slot, PMC_NO_SLOT);
}

/*
 * Any CPU's spare, for a writer that found no free slot: one parked by a
 * CPU that freed it before the writer was counted as waiting.
 */
static inline u32 pmc_alloc_take_any_spare(struct pmc_alloc *a)
{
	unsigned int cpu;
	u32 slot;

	for (cpu = 0; cpu < a->nr_cpus; cpu++) {
		slot = pmc_alloc_take_spare(a, cpu);
		if (slot != PMC_NO_SLOT)
			return slot;
	}
	return PMC_NO_SLOT;
}

/* Keep @slot as the spare of @cpu; false when it has one (put it instead). */
static inline bool pmc_alloc_keep_spare(struct pmc_alloc *a, unsigned int cpu,
					u32 slot)
{
	if (cpu >= a->nr_cpus || READ_ONCE(a->spares[cpu].slot) != PMC_NO_SLOT)
		return false;
	return cmpxchg(&a->spares[cpu].slot, PMC_NO_SLOT, slot) == PMC_NO_SLOT;
}

/*
 * A put counts its slot after pushing it, a get after popping one: two gets
 * may pop a slot pushed and not yet counted, and the count is -1 for a
 * moment. Read as 0 then, not as 4 billion free slots.
 */
static inline u32 pmc_alloc_nr_free(struct pmc_alloc *a)
{
	return (u32)max_t(s64, atomic64_read(&a->nr_free), 0);
}

#endif /* PMCACHE_ALLOC_H */

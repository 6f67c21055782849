// SPDX-License-Identifier: GPL-2.0
/*
 * Origin block -> cache slot hash index with striped locks.
 */
#include "pmcache_index.h"
#include "pmcache_format.h"

#define PMC_MAX_STRIPES 1024u
/*
 * At least this many slots per stripe: each stripe may hold one slot whose
 * record awaits its clear (struct pmc_stripe), so at most 1/64 of a cache
 * is in that state at a time, small caches included.
 */
/*
 * The crash explorer builds with a few slots a stripe: its caches of 16 to
 * 32 blocks then have several stripes, as the kernel's have, so that a
 * stale record lingers in one while another commits.
 */
#ifndef PMC_SLOTS_PER_STRIPE
#define PMC_SLOTS_PER_STRIPE 64u
#endif
/*
 * Counters of writes around the cache in flight: 64 KiB to 1 MiB of them.
 * Writeback passes a block whose counter is raised: in a small cache with
 * few counters, a stream of writes around it (4 MiB in flight) could raise
 * them all and hold writeback, and writers waiting for a slot, for as long
 * as it runs.
 */
#define PMC_MIN_BYPASS_COUNTERS 16384u
#define PMC_MAX_BYPASS_COUNTERS (1u << 18)

int pmc_index_init(struct pmc_index *idx, u32 nr_slots)
{
	u32 nr_buckets, nr_stripes, nr_bypass, i;

	memset(idx, 0, sizeof(*idx));
	/* Between one half and one bucket per slot: short chains, <= 4 B/slot. */
	/* In 64 bits: a power of two above 2^31 slots does not fit a u32. */
	nr_buckets = (u32)(roundup_pow_of_two((unsigned long)nr_slots) / 2);
	if (nr_buckets < 2)
		nr_buckets = 2;
	nr_stripes = nr_slots / PMC_SLOTS_PER_STRIPE;
	nr_stripes = nr_stripes ? 1u << ilog2(nr_stripes) : 1;
	nr_stripes = min(min(nr_stripes, nr_buckets), PMC_MAX_STRIPES);
	nr_bypass = min(max(nr_buckets, PMC_MIN_BYPASS_COUNTERS), PMC_MAX_BYPASS_COUNTERS);
	idx->nr_slots = nr_slots;
	idx->hash_shift = 64 - ilog2(nr_buckets);
	idx->stripe_mask = nr_stripes - 1;
	idx->bypass_mask = nr_bypass - 1;
	idx->buckets = pmc_array_zalloc(nr_buckets, sizeof(u32));
	idx->slots = pmc_array_zalloc(nr_slots, sizeof(*idx->slots));
	idx->stripes = kvcalloc(nr_stripes, sizeof(struct pmc_stripe), GFP_KERNEL);
	idx->bypass = kvcalloc(nr_bypass, sizeof(atomic_t), GFP_KERNEL);
	if (!idx->buckets || !idx->slots || !idx->stripes || !idx->bypass) {
		pmc_index_exit(idx);
		return -ENOMEM;
	}
	for (i = 0; i < nr_stripes; i++)
		spin_lock_init(&idx->stripes[i].lock);
	pmc_index_reset(idx);
	return 0;
}

void pmc_index_reset(struct pmc_index *idx)
{
	u32 i, nr_buckets = 1u << (64 - idx->hash_shift);

	for (i = 0; i < nr_buckets; i++)
		idx->buckets[i] = PMC_NO_SLOT;
	for (i = 0; i < idx->nr_slots; i++) {
		if (!(i % PMC_RESCHED_EVERY))
			cond_resched();
		idx->slots[i].link = PMC_NO_SLOT;
		idx->slots[i].key = 0;
		idx->slots[i].state = PMC_S_FREE;
	}
	for (i = 0; i <= idx->stripe_mask; i++)
		idx->stripes[i].stale_slot = PMC_NO_SLOT;
}

void pmc_index_exit(struct pmc_index *idx)
{
	kvfree(idx->buckets);
	kvfree(idx->slots);
	kvfree(idx->stripes);
	kvfree(idx->bypass);
	memset(idx, 0, sizeof(*idx));
}

size_t pmc_index_mem_bytes(const struct pmc_index *idx)
{
	size_t nr_buckets = (size_t)1 << (64 - idx->hash_shift);

	return nr_buckets * sizeof(u32) +
	       (size_t)idx->nr_slots * sizeof(*idx->slots) +
	       (idx->stripe_mask + 1) * sizeof(struct pmc_stripe) +
	       (idx->bypass_mask + 1) * sizeof(atomic_t);
}

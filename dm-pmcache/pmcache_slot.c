// SPDX-License-Identifier: GPL-2.0
/*
 * The life of a cached copy: see pmcache_slot.h.
 */
#include "pmcache_slot.h"
#include "pmcache_pmem.h"

u32 pmc_slot_install(struct pmc_index *idx, struct pmc_meta *meta, u32 slot,
		     u64 oblock, u32 *old_p, bool dirty, s64 *d_used, s64 *d_dirty)
{
	u8 state = dirty ? PMC_S_DIRTY : PMC_S_CLEAN;
	u32 old = *old_p, to_free = PMC_NO_SLOT, retire = PMC_NO_SLOT;
	u16 gen = 0;
	u8 os = 0;

	*d_used += 1;
	*d_dirty += dirty;
	if (old != PMC_NO_SLOT) {
		os = idx->state[old];
		gen = pmc_key_gen(idx->key[old]) + 1;
		if (os & (PMC_S_WB | PMC_S_WB_WAIT))
			state |= PMC_S_WB_WAIT;
		/* A tombstone's record is already gone. */
		if (!(os & PMC_S_STALE))
			retire = old;
	}
	/* A plain clean copy (no writeback around it): the origin has its data. */
	pmc_rec_replace(meta, slot, pmc_key_make(oblock, gen), dirty, retire,
			os == PMC_S_CLEAN);
	if (old != PMC_NO_SLOT) {
		if (os & PMC_S_STALE) {
			*old_p = PMC_NO_SLOT;
		} else {
			if ((os & PMC_S_KIND_MASK) == PMC_S_DIRTY)
				*d_dirty -= 1;
			*d_used -= 1;
		}
		if (os & PMC_S_WB) {
			/*
			 * Writeback still reads its data and frees the slot.
			 * It stays in the hash, behind the new copy, as a
			 * tombstone: should the new copy go (discard), writes
			 * must still find that an older copy is on its way to
			 * the origin and not overtake it there.
			 */
			idx->state[old] = PMC_S_STALE | PMC_S_WB | (os & PMC_S_KIND_MASK);
		} else {
			pmc_index_remove(idx, old);
			idx->state[old] = PMC_S_BUSY;
			to_free = old;
		}
	}
	pmc_index_insert(idx, slot, pmc_key_make(oblock, gen), state);
	return to_free;
}

enum pmc_wb_outcome pmc_slot_wb_done(struct pmc_index *idx, struct pmc_meta *meta,
				     u32 slot, u64 oblock, bool ok)
{
	enum pmc_wb_outcome out;
	u8 s = idx->state[slot];
	u32 cur;

	if (s & PMC_S_STALE) {
		/* Superseded or discarded meanwhile: a tombstone, record gone. */
		pmc_index_remove(idx, slot);
		idx->state[slot] = PMC_S_BUSY;
		out = PMC_WB_FREE;
	} else if (ok) {
		pmc_rec_set_clean(meta, slot, idx->key[slot]);
		/*
		 * Durable before the caller unlocks: once the block is clean,
		 * another CPU may evict it and clear this word, and its clear
		 * must not be overtaken by this store.
		 */
		pmc_pmem_fence();
		idx->state[slot] = PMC_S_CLEAN;
		out = PMC_WB_CLEANED;
	} else {
		idx->state[slot] = s & ~PMC_S_WB;
		out = PMC_WB_KEPT;
	}
	/* A newer copy waited for this writeback to land first. */
	cur = pmc_index_lookup(idx, oblock);
	if (cur != PMC_NO_SLOT && cur != slot)
		idx->state[cur] &= ~PMC_S_WB_WAIT;
	return out;
}

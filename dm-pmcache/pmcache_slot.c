// SPDX-License-Identifier: GPL-2.0
/*
 * The life of a cached copy: see pmcache_slot.h.
 */
#include "pmcache_slot.h"
#include "pmcache_pmem.h"

enum pmc_wb_outcome pmc_slot_wb_done(struct pmc_index *idx, struct pmc_meta *meta,
				     u32 slot, u64 oblock, bool ok)
{
	enum pmc_wb_outcome out;
	u8 s = idx->slots[slot].state;
	u32 cur;

	if (s & PMC_S_STALE) {
		/* Superseded or discarded meanwhile: a tombstone, record gone. */
		pmc_index_remove(idx, slot);
		idx->slots[slot].state = PMC_S_BUSY;
		out = PMC_WB_FREE;
	} else if (ok) {
		pmc_rec_set_clean(meta, slot, idx->slots[slot].key);
		/*
		 * Durable before the caller unlocks: once the block is clean,
		 * another CPU may evict it and clear this word, and its clear
		 * must not be overtaken by this store.
		 */
		pmc_pmem_fence();
		idx->slots[slot].state = PMC_S_CLEAN;
		out = PMC_WB_CLEANED;
	} else {
		idx->slots[slot].state = s & ~PMC_S_WB;
		out = PMC_WB_KEPT;
	}
	/* A newer copy waited for this writeback to land first. */
	cur = pmc_index_lookup(idx, oblock);
	if (cur != PMC_NO_SLOT && cur != slot) {
		idx->slots[cur].state &= ~PMC_S_WB_WAIT;
		/*
		 * A flush waited for the tombstone, whose data did not land:
		 * the newer copy must, for it.
		 */
		if (!ok && (s & PMC_S_FLUSH) &&
		    (idx->slots[cur].state & PMC_S_KIND_MASK) == PMC_S_DIRTY)
			idx->slots[cur].state |= PMC_S_FLUSH;
	}
	return out;
}

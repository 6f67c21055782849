/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The life of a cached copy, in the index and in pmem together: a new copy
 * becomes current (retiring the one it replaces, or leaving it behind as a
 * tombstone while its writeback runs), and a copy whose writeback ended
 * turns clean or is freed. Pure logic, called under the stripe lock of the
 * block. The target and the userspace crash-state explorer (tests/unit)
 * both drive these functions, so the explorer checks the code that runs.
 */
#ifndef PMCACHE_SLOT_H
#define PMCACHE_SLOT_H

#include "pmcache_index.h"
#include "pmcache_meta.h"

/*
 * Make @slot (its data already in pmem) the current copy of @oblock, dirty
 * or clean, durably. *@old_p: the copy it replaces (PMC_NO_SLOT: none); left
 * naming the copy the policy must forget, or PMC_NO_SLOT. Returns the slot
 * that can be freed now (the replaced copy), PMC_NO_SLOT if none. The
 * changes of the used and dirty block counts are added to *@d_used and
 * *@d_dirty. Inline: every write runs it.
 */
static inline u32 pmc_slot_install(struct pmc_index *idx, struct pmc_meta *meta,
				   u32 slot, u64 oblock, u32 *old_p, bool dirty,
				   s64 *d_used, s64 *d_dirty)
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

enum pmc_wb_outcome {
	PMC_WB_KEPT,		/* writeback failed: still dirty, taken again later */
	PMC_WB_CLEANED,		/* clean, durably */
	PMC_WB_FREE,		/* a tombstone: out of the index, the caller frees it */
};

/*
 * The writeback of @slot (a copy of @oblock) has ended, @ok when its data
 * and an origin flush are done.
 */
enum pmc_wb_outcome pmc_slot_wb_done(struct pmc_index *idx, struct pmc_meta *meta,
				     u32 slot, u64 oblock, bool ok);

#endif /* PMCACHE_SLOT_H */

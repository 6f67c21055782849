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
 * The key pmc_slot_install will give the next copy of @oblock, read without
 * the stripe lock: a guess. A write stores it in its new slot's record next
 * to the data (pmc_rec_set_key) before taking the lock, so that the fence
 * the data needs makes the key durable too, and the commit under the lock
 * needs one fence, not two. pmc_slot_install checks the guess against the
 * key it computes under the lock and, when they differ (a write or removal
 * of the same block raced with it), stores the key again behind a fence of
 * its own.
 *
 * The chains may change under this walk: every slot number read is either
 * PMC_NO_SLOT or in range, and the walk is bounded, so a torn view yields
 * only a wrong guess.
 */
static inline u64 pmc_slot_next_key(const struct pmc_index *idx, u64 oblock)
{
	unsigned int steps;
	u32 slot;
	u64 key;

	/* Without the stripe lock, as every read below: a guess. */
	slot = data_race(READ_ONCE(idx->buckets[pmc_index_bucket(idx, oblock)]));
	for (steps = 0; slot < idx->nr_slots && steps < 8; steps++) {
		/* Unlocked (a guess): any key of a slot in range. */
		key = data_race(READ_ONCE(idx->slots[slot].key));
		if (pmc_key_oblock(key) == oblock)
			return pmc_key_make(oblock, pmc_key_gen(key) + 1);
		/* Unlocked (a guess): PMC_NO_SLOT or a slot in range. */
		slot = data_race(READ_ONCE(idx->slots[slot].link));
	}
	return pmc_key_make(oblock, 0);
}

/*
 * Stage a copy for pmc_slot_install's @key_stored: the data the caller
 * stored in @slot, and now @key, durable in one fence, before the stripe
 * lock, so that the commit under it needs one fence more. The module's
 * writes and promotions stage here, as the crash explorer's model of
 * them does (tests/unit/ref_cache.c): what it proves is this sequence.
 */
static inline void pmc_slot_stage(struct pmc_meta *meta, u32 slot, u64 key)
{
	pmc_rec_set_key(meta, slot, key);
	pmc_pmem_fence();
}

/*
 * Make @slot (its data already in pmem) the current copy of @oblock, dirty
 * or clean, durably. *@old_p: the copy it replaces (PMC_NO_SLOT: none); left
 * naming the copy the policy must forget, or PMC_NO_SLOT. @key_stored: the
 * key already stored in @slot's record and fenced together with the data
 * (pmc_slot_next_key), or NULL when neither is fenced yet. Returns a slot
 * that can be freed now (the stripe's stale slot, cleared in the commit's
 * fence), PMC_NO_SLOT if none. The changes of the used and dirty block
 * counts are added to *@d_used and *@d_dirty. Inline: every write runs it.
 *
 * The replaced copy's record is not cleared here. The new copy is durable
 * when this returns, and recovery keeps the newer of two copies of a block,
 * so the old record may linger: it becomes the stripe's stale slot and is
 * cleared in the fence of the next commit under this lock, or before
 * anything removes a copy of a block of the stripe (pmc_slot_rec_free).
 * Clearing it here would cost a third fence per overwrite: it may not
 * persist before the commit. Only a copy under writeback is cleared at once
 * (behind the commit's fence): it stays as a tombstone, which writeback
 * frees, and a tombstone has no record.
 */
static inline u32 pmc_slot_install(struct pmc_index *idx, struct pmc_meta *meta,
				   u32 slot, u64 oblock, u32 *old_p,
				   const u64 *key_stored, bool dirty,
				   s64 *d_used, s64 *d_dirty)
{
	struct pmc_stripe *st = pmc_index_stripe(idx, oblock);
	u8 state = dirty ? PMC_S_DIRTY : PMC_S_CLEAN;
	u32 old = *old_p, to_free = st->stale_slot, clear_after = PMC_NO_SLOT;
	u16 gen = 0;
	u64 key;
	u8 os = 0;

	*d_used += 1;
	*d_dirty += dirty;
	if (old != PMC_NO_SLOT) {
		os = idx->slots[old].state;
		gen = pmc_key_gen(idx->slots[old].key) + 1;
		if (os & (PMC_S_WB | PMC_S_WB_WAIT))
			state |= PMC_S_WB_WAIT;
		/*
		 * A dirty copy not on its way to the origin hands its marks
		 * to this newer dirty one: aged (dirty since before the last
		 * age tick), so that rewriting a block no faster than
		 * max_dirty_age does not hold it back; and a flush's, whose
		 * data never reached the origin: this copy must, for it.
		 */
		if (dirty && (os & (PMC_S_KIND_MASK | PMC_S_WB | PMC_S_STALE)) == PMC_S_DIRTY)
			state |= os & (PMC_S_AGED | PMC_S_FLUSH);
		/* Under writeback, not yet a tombstone (whose record is gone). */
		if ((os & (PMC_S_WB | PMC_S_STALE)) == PMC_S_WB)
			clear_after = old;
	}
	key = pmc_key_make(oblock, gen);
	/* The stale slot's newer copy is durable: its clear joins this fence. */
	pmc_rec_replace(meta, slot, key, key_stored && *key_stored == key, dirty,
			to_free, clear_after);
	st->stale_slot = PMC_NO_SLOT;
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
			idx->slots[old].state = PMC_S_STALE | PMC_S_WB |
						(os & (PMC_S_KIND_MASK | PMC_S_FLUSH));
		} else {
			pmc_index_remove(idx, old);
			idx->slots[old].state = PMC_S_BUSY;
			st->stale_slot = old;
		}
	}
	pmc_index_insert(idx, slot, key, state);
	return to_free;
}

/*
 * Clear the stale record of stripe @st (struct pmc_stripe), durably. Returns
 * its slot, now free for reuse, or PMC_NO_SLOT. Under the stripe lock.
 */
static inline u32 pmc_stripe_settle(struct pmc_stripe *st, struct pmc_meta *meta)
{
	u32 stale = st->stale_slot;

	if (stale != PMC_NO_SLOT) {
		pmc_rec_free(meta, stale);
		st->stale_slot = PMC_NO_SLOT;
	}
	return stale;
}

/*
 * Free the record of @slot, the current copy of a block of stripe @st,
 * durably; under the stripe lock. The stripe's stale record goes first, a
 * fence ahead: an older copy of this very block, once nothing newer stands
 * in front of it, would come back at recovery. Returns the stale slot, now
 * free for reuse (the caller frees it), or PMC_NO_SLOT.
 */
static inline u32 pmc_slot_rec_free(struct pmc_stripe *st, struct pmc_meta *meta,
				    u32 slot)
{
	u32 stale = pmc_stripe_settle(st, meta);

	pmc_rec_free(meta, slot);
	return stale;
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

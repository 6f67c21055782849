// SPDX-License-Identifier: GPL-2.0
/*
 * Reference mechanism for the crash explorer: see ref_cache.h. Comments
 * name the kernel function each part mirrors.
 */
#include "ref_cache.h"
#include "pmcache_pmem.h"
#include "pmcache_slot.h"

static u64 ref_rand(struct ref_cache *rc)
{
	u64 z = (rc->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* pmc_count */
static void ref_count(struct ref_cache *rc, s64 d_used, s64 d_dirty)
{
	rc->nr_used += d_used;
	rc->nr_dirty += d_dirty;
}

/* pmc_recover_free */
static void ref_recover_free(void *ctx, u32 slot)
{
	struct ref_cache *rc = ctx;

	rc->idx.slots[slot].state = PMC_S_FREE;
	pmc_alloc_put(&rc->alloc, slot);
}

void ref_destroy(struct ref_cache *rc)
{
	if (rc->idx_ready) {
		pmc_alloc_exit(&rc->alloc);
		pmc_index_exit(&rc->idx);
	}
	free(rc->items);
	memset(rc, 0, sizeof(*rc));
}

/* pmc_probe, pmc_alloc_index and pmc_load. */
int ref_load(struct ref_cache *rc, u8 *pmem, u64 pmem_size, u32 block_size,
	     const struct pmc_origin_id *origin, u64 origin_blocks, bool format,
	     const u8 uuid[16], u64 seed, const char **error)
{
	struct pmc_recovery_stats *st = &rc->rst;
	const char *why;
	u32 nr;
	int r;

	memset(rc, 0, sizeof(*rc));
	rc->pmem = pmem;
	rc->pmem_size = pmem_size;
	rc->block_size = block_size;
	rc->origin_blocks = origin_blocks;
	rc->rng = seed;
	rc->action = format ? REF_ACT_FORMAT : REF_ACT_LOAD;
	rc->probe = PMC_PROBE_BLANK;
	*error = NULL;

	/* pmc_probe */
	if (rc->action != REF_ACT_FORMAT) {
		rc->probe = pmc_meta_probe(&rc->meta, pmem, pmem_size, &why);
		switch (rc->probe) {
		case PMC_PROBE_BLANK:
			rc->action = REF_ACT_FORMAT;
			break;
		case PMC_PROBE_VALID:
			memcpy(rc->probed_origin, rc->meta.origin_name,
			       sizeof(rc->probed_origin));
			break;
		case PMC_PROBE_FOREIGN:
			*error = "pmcache: not a pmcache device; zero it or pass format";
			return -EINVAL;
		default:
			*error = why ? why : "pmcache: cache superblock is unusable";
			return -EINVAL;
		}
	}
	if (rc->action == REF_ACT_LOAD &&
	    !pmc_meta_origin_matches(&rc->meta, origin)) {
		u64 dirty;

		if (pmc_meta_count_dirty(&rc->meta, &dirty, NULL)) {
			*error = "pmcache: cannot allocate the index to count dirty blocks";
			return -ENOMEM;
		}
		if (dirty) {
			*error = "pmcache: cache holds dirty data of another origin";
			return -EINVAL;
		}
		rc->action = REF_ACT_REBIND;
	}
	if (rc->action == REF_ACT_FORMAT) {
		if (pmc_geometry_compute(pmem_size, block_size, &rc->meta.geo)) {
			*error = "pmcache: cache device too small";
			return -ENOSPC;
		}
	} else {
		rc->block_size = rc->meta.geo.block_size;
	}

	/* pmc_alloc_index */
	nr = (u32)rc->meta.geo.nr_blocks;
	r = pmc_index_init(&rc->idx, nr);
	if (r)
		return r;
	r = pmc_alloc_init(&rc->alloc, &rc->idx, REF_ALLOC_REGIONS, 1);
	if (r) {
		pmc_index_exit(&rc->idx);
		return r;
	}
	rc->idx_ready = true;
	rc->items = calloc(nr, sizeof(*rc->items));
	if (!rc->items)
		return -ENOMEM;

	/* pmc_load */
	if (rc->action == REF_ACT_FORMAT) {
		r = pmc_meta_format(&rc->meta, pmem, pmem_size, block_size,
				    origin, uuid, 0);
		if (r) {
			*error = "pmcache: format failed";
			return r;
		}
	} else if (rc->action == REF_ACT_REBIND) {
		pmc_meta_rebind(&rc->meta, origin, &rc->idx);
	} else {
		pmc_meta_update_origin(&rc->meta, origin);
	}
	r = pmc_meta_recover(&rc->meta, &rc->idx, origin_blocks,
			     ref_recover_free, rc, st);
	if (r) {
		*error = "pmcache: recovery failed";
		return r;
	}
	rc->nr_used = st->used;
	rc->nr_dirty = st->dirty;
	return 0;
}

/* pmc_evictable */
static bool ref_evictable(struct ref_cache *rc, u32 slot)
{
	return READ_ONCE(rc->idx.slots[slot].state) == PMC_S_CLEAN;
}

/* The policy's evict_candidate: any resident slot the callback accepts. */
static u32 ref_evict_candidate(struct ref_cache *rc)
{
	u32 nr = rc->idx.nr_slots, start = ref_rand(rc) % nr, i;

	for (i = 0; i < nr; i++) {
		u32 slot = (start + i) % nr;

		if (ref_evictable(rc, slot))
			return slot;
	}
	return PMC_NO_SLOT;
}

/* pmc_slot_free */
static void ref_slot_free(struct ref_cache *rc, u32 slot)
{
	if (slot == PMC_NO_SLOT)
		return;
	WRITE_ONCE(rc->idx.slots[slot].state, PMC_S_FREE);
	pmc_alloc_put(&rc->alloc, slot);
}

/* pmc_evict_one */
static u32 ref_evict_one(struct ref_cache *rc)
{
	int tries;

	for (tries = 0; tries < 16; tries++) {
		u32 slot = ref_evict_candidate(rc);
		u64 oblock;
		u32 stale;

		if (slot == PMC_NO_SLOT)
			return PMC_NO_SLOT;
		oblock = pmc_key_oblock(READ_ONCE(rc->idx.slots[slot].key));
		if (rc->idx.slots[slot].state != PMC_S_CLEAN ||
		    pmc_key_oblock(rc->idx.slots[slot].key) != oblock)
			continue;
		pmc_index_remove(&rc->idx, slot);
		rc->idx.slots[slot].state = PMC_S_BUSY;
		/* Its next owner writes the key first: the clear must be durable. */
		stale = pmc_slot_rec_free(pmc_index_stripe(&rc->idx, oblock), &rc->meta, slot);
		ref_count(rc, -1, 0);
		ref_slot_free(rc, stale);
		return slot;
	}
	return PMC_NO_SLOT;
}

/* pmc_get_slot, without the wait: PMC_NO_SLOT when it would wait. */
static u32 ref_get_slot(struct ref_cache *rc)
{
	u32 slot;

	slot = pmc_alloc_get(&rc->alloc, 0);
	if (slot == PMC_NO_SLOT)
		slot = ref_evict_one(rc);
	if (slot == PMC_NO_SLOT)
		return PMC_NO_SLOT;
	rc->idx.slots[slot].state = PMC_S_BUSY;
	return slot;
}

/* pmc_install */
static u32 ref_install(struct ref_cache *rc, u32 slot, u64 oblock, u32 *old_p,
		       const u64 *key_stored, bool dirty)
{
	s64 d_used = 0, d_dirty = 0;
	u32 to_free;

	to_free = pmc_slot_install(&rc->idx, &rc->meta, slot, oblock, old_p,
				   key_stored, dirty, &d_used, &d_dirty);
	ref_count(rc, d_used, d_dirty);
	return to_free;
}

/* The free after pmc_install (whose policy update this model has not). */
static void ref_install_done(struct ref_cache *rc, u32 to_free)
{
	ref_slot_free(rc, to_free);
}

/* pmc_write_chunk */
int ref_write(struct ref_cache *rc, u64 oblock, u32 blk_off, u32 len,
	      const u8 *data)
{
	bool full = len == rc->block_size;
	u8 bounce[PMC_MAX_BLOCK_SIZE];
	u32 slot, old, to_free;
	u64 key;
	int r;

	if (!full) {
		/* Cheap check first: partial writes to uncached blocks bypass. */
		old = pmc_index_lookup(&rc->idx, oblock);	/* pmc_lookup_live */
		if (old == PMC_NO_SLOT || (rc->idx.slots[old].state & PMC_S_STALE))
			return -EAGAIN;
		memcpy(bounce + blk_off, data, len);	/* pmc_bio_to_buf */
	}

	slot = ref_get_slot(rc);
	if (slot == PMC_NO_SLOT)
		return -ENOSPC;
	if (full) {
		key = pmc_slot_next_key(&rc->idx, oblock);
		/* pmc_bio_to_pmem: one segment */
		pmc_pmem_copy(pmc_block_data(&rc->meta, slot), data, len);
		/*
		 * One write in four guesses a generation off by one, as when a
		 * write of the same block on another CPU raced with the guess:
		 * install must then store the key again behind its own fence.
		 */
		if (ref_rand(rc) % 4 == 0)
			key = pmc_key_make(oblock, pmc_key_gen(key) + 1);
		pmc_slot_stage(&rc->meta, slot, key);
	}

	old = pmc_index_lookup(&rc->idx, oblock);
	if (!full) {
		u8 *src;
		u32 tail = blk_off + len;

		if (old == PMC_NO_SLOT || (rc->idx.slots[old].state & PMC_S_STALE)) {
			rc->idx.slots[slot].state = PMC_S_BUSY;
			ref_slot_free(rc, slot);
			return -EAGAIN;
		}
		/* Merge: old head, new middle, old tail, written out of place. */
		src = pmc_block_data(&rc->meta, old);
		r = pmc_pmem_read(bounce, src, blk_off);
		if (!r)
			r = pmc_pmem_read(bounce + tail, src + tail,
					  rc->block_size - tail);
		if (r) {
			ref_slot_free(rc, slot);
			return r;
		}
		pmc_pmem_copy(pmc_block_data(&rc->meta, slot), bounce,
			      rc->block_size);
	}
	to_free = ref_install(rc, slot, oblock, &old, full ? &key : NULL, true);
	ref_install_done(rc, to_free);
	return 0;
}

/*
 * pmc_origin_write_prefix for one block: true when the write may go to the
 * origin (a clean copy, if any, dropped first), false when the block has a
 * copy that is not clean (dirty, under writeback, a tombstone).
 */
static bool ref_origin_write_prefix(struct ref_cache *rc, u64 oblock)
{
	u32 slot, drop = PMC_NO_SLOT, stale = PMC_NO_SLOT;

	slot = pmc_index_lookup(&rc->idx, oblock);
	if (slot != PMC_NO_SLOT) {
		if (rc->idx.slots[slot].state != PMC_S_CLEAN)
			return false;
		pmc_index_remove(&rc->idx, slot);
		rc->idx.slots[slot].state = PMC_S_BUSY;
		stale = pmc_slot_rec_free(pmc_index_stripe(&rc->idx, oblock), &rc->meta, slot);
		drop = slot;
	}
	ref_slot_free(rc, stale);
	if (drop != PMC_NO_SLOT) {
		ref_count(rc, -1, 0);
		ref_slot_free(rc, drop);
	}
	return true;
}

/* pmc_map_write, for a bio within one block. */
enum ref_write_result ref_map_write(struct ref_cache *rc, u64 oblock,
				    u32 blk_off, u32 len, const u8 *data,
				    bool *promote)
{
	bool around = rc->mode != REF_MODE_WRITEBACK;
	int r;

	*promote = false;
	if (around && ref_origin_write_prefix(rc, oblock)) {
		*promote = rc->mode == REF_MODE_WRITETHROUGH &&
			   len == rc->block_size;
		return REF_W_ORIGIN;
	}
	r = ref_write(rc, oblock, blk_off, len, data);
	if (r == -EAGAIN) {
		/* A partial block that is not cached: write it to the origin. */
		if (!ref_origin_write_prefix(rc, oblock))
			return REF_W_RETRY;	/* "goto again" */
		return REF_W_ORIGIN;
	}
	if (r == -ENOSPC)
		return REF_W_NOSPC;
	return REF_W_CACHE;
}

/*
 * pmc_promote_work for one block: the data of a finished origin read (or
 * writethrough write) installed clean, unless the block got cached
 * meanwhile. The write_seq / pmc_index_bypass checks are for races this
 * single-threaded model does not have.
 */
int ref_promote(struct ref_cache *rc, u64 oblock, const u8 *data)
{
	u32 slot, old = PMC_NO_SLOT, to_free;
	u64 key = pmc_key_make(oblock, 0);

	if (pmc_index_lookup(&rc->idx, oblock) != PMC_NO_SLOT)
		return -EEXIST;
	slot = ref_get_slot(rc);	/* pmc_try_get_slot */
	if (slot == PMC_NO_SLOT)
		return -ENOSPC;
	pmc_pmem_copy(pmc_block_data(&rc->meta, slot), data, rc->block_size);
	pmc_slot_stage(&rc->meta, slot, key);
	if (pmc_index_lookup(&rc->idx, oblock) != PMC_NO_SLOT) {
		ref_slot_free(rc, slot);
		return -EEXIST;
	}
	to_free = ref_install(rc, slot, oblock, &old, &key, false);
	ref_install_done(rc, to_free);
	return 0;
}

bool ref_evict(struct ref_cache *rc)
{
	u32 slot = ref_evict_one(rc);

	if (slot == PMC_NO_SLOT)
		return false;
	ref_slot_free(rc, slot);
	return true;
}

/* pmc_invalidate_range */
void ref_invalidate(struct ref_cache *rc, u64 first, u64 last)
{
	u64 b;

	for (b = first; b <= last; b++) {
		u32 slot, stale, to_free = PMC_NO_SLOT;
		u8 s;

		slot = pmc_index_lookup(&rc->idx, b);
		if (slot == PMC_NO_SLOT || (rc->idx.slots[slot].state & PMC_S_STALE))
			continue;
		s = rc->idx.slots[slot].state;
		stale = pmc_slot_rec_free(pmc_index_stripe(&rc->idx, b), &rc->meta, slot);
		ref_count(rc, -1, (s & PMC_S_KIND_MASK) == PMC_S_DIRTY ? -1 : 0);
		if (s & PMC_S_WB) {
			/* Keep it in the hash as a tombstone until writeback ends. */
			rc->idx.slots[slot].state = s | PMC_S_STALE;
		} else {
			pmc_index_remove(&rc->idx, slot);
			rc->idx.slots[slot].state = PMC_S_BUSY;
			to_free = slot;
		}
		ref_slot_free(rc, to_free);
		ref_slot_free(rc, stale);
	}
}

/* pmc_settle_stripes, at suspend */
void ref_suspend(struct ref_cache *rc)
{
	u32 i, stale;

	for (i = 0; i <= rc->idx.stripe_mask; i++) {
		stale = pmc_stripe_settle(&rc->idx.stripes[i], &rc->meta);
		ref_slot_free(rc, stale);
	}
}

static int wb_item_cmp(const void *a, const void *b)
{
	const struct ref_wb_item *x = a, *y = b;

	return x->oblock < y->oblock ? -1 : x->oblock > y->oblock;
}

/* pmc_wb_collect(aged_only = false), then the sort in pmc_wb_work. */
u32 ref_wb_collect(struct ref_cache *rc, u32 max)
{
	u32 nr = rc->idx.nr_slots, scanned, slot = rc->wb_cursor;
	u32 n = 0;

	for (scanned = 0; scanned < nr && n < max; scanned++, slot++) {
		u64 oblock;
		u8 s;

		if (slot >= nr)
			slot = 0;
		s = READ_ONCE(rc->idx.slots[slot].state);
		if ((s & PMC_S_KIND_MASK) != PMC_S_DIRTY ||
		    (s & (PMC_S_WB | PMC_S_WB_WAIT | PMC_S_STALE | PMC_S_BUSY)))
			continue;
		oblock = pmc_key_oblock(READ_ONCE(rc->idx.slots[slot].key));
		rc->idx.slots[slot].state = s | PMC_S_WB;
		rc->items[n].oblock = oblock;
		rc->items[n].slot = slot;
		rc->items[n].free_slot = false;
		n++;
	}
	rc->wb_cursor = slot;
	sort(rc->items, n, sizeof(*rc->items), wb_item_cmp, NULL);
	rc->nr_items = n;
	return n;
}

/* pmc_wb_finish */
void ref_wb_finish(struct ref_cache *rc, bool ok)
{
	u32 i, n = rc->nr_items, cleaned = 0;

	for (i = 0; i < n; i++) {
		switch (pmc_slot_wb_done(&rc->idx, &rc->meta, rc->items[i].slot,
					 rc->items[i].oblock, ok)) {
		case PMC_WB_FREE:
			rc->items[i].free_slot = true;
			break;
		case PMC_WB_CLEANED:
			cleaned++;
			break;
		case PMC_WB_KEPT:
			break;
		}
	}
	ref_count(rc, 0, -(s64)cleaned);
	for (i = 0; i < n; i++)
		if (rc->items[i].free_slot)
			ref_slot_free(rc, rc->items[i].slot);
	rc->nr_items = 0;
}

u32 ref_lookup(const struct ref_cache *rc, u64 oblock)
{
	u32 slot = pmc_index_lookup(&rc->idx, oblock);

	if (slot == PMC_NO_SLOT || (rc->idx.slots[slot].state & PMC_S_STALE))
		return PMC_NO_SLOT;
	return slot;
}

int ref_check_counters(const struct ref_cache *rc, const char **why)
{
	s64 used = 0, dirty = 0;
	u32 slot, nfree = 0;

	for (slot = 0; slot < rc->idx.nr_slots; slot++) {
		u8 s = rc->idx.slots[slot].state;

		if (s == PMC_S_FREE) {
			nfree++;
			continue;
		}
		if (s & PMC_S_STALE)
			continue;
		if ((s & PMC_S_KIND_MASK) == PMC_S_FREE)
			continue;	/* busy */
		used++;
		if ((s & PMC_S_KIND_MASK) == PMC_S_DIRTY)
			dirty++;
	}
	if (used != rc->nr_used || dirty != rc->nr_dirty) {
		*why = "live block counters do not match the slot states";
		return -EINVAL;
	}
	if (nfree != pmc_alloc_nr_free((struct pmc_alloc *)&rc->alloc)) {
		*why = "free slots do not match the allocator";
		return -EINVAL;
	}
	return 0;
}

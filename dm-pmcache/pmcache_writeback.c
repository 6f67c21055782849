// SPDX-License-Identifier: GPL-2.0
/*
 * Writeback: copy dirty blocks to the origin, in origin-block order, with
 * adjacent blocks merged into one bio, a batch of bios in flight at once.
 * A block turns clean only after the batch is on the origin and the origin
 * has been flushed.
 *
 * Writeback runs when dirty data passes the high watermark (until the low
 * watermark), when writers wait for a slot, on "message flush" (for the
 * blocks marked FLUSH when it began, first), and for blocks dirty longer
 * than max_dirty_age (the age work marks dirty blocks AGED each half period
 * and writeback takes AGED blocks).
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/sort.h>
#include <linux/completion.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>

#include "pmcache.h"
#include "pmcache_pmem.h"
#include "pmcache_slot.h"

struct pmc_wb_item {
	u64 oblock;
	u32 slot;
	bool free_slot;		/* stale at the end: free it after the fence */
};

struct pmc_wb_batch {
	struct pmc_cache *c;
	atomic_t pending;
	struct completion done;
	blk_status_t status;
};

static int wb_item_cmp(const void *a, const void *b)
{
	const struct pmc_wb_item *x = a, *y = b;

	return x->oblock < y->oblock ? -1 : x->oblock > y->oblock;
}

static u64 pmc_dirty_limit(struct pmc_cache *c, u32 pct)
{
	return div_u64(c->meta.geo.nr_blocks * pct, 100);
}

/* Why writeback should run now; 0 = not needed, 2 = everything, 1 = aged only. */
static int pmc_wb_reason(struct pmc_cache *c, bool *in_burst)
{
	u64 dirty = pmc_nr_dirty(c);

	if (!dirty)
		return 0;
	if (atomic_read(&c->flush_requests) || atomic_read(&c->free_waiters) ||
	    c->mode != PMC_MODE_WRITEBACK)
		return 2;
	if (dirty > pmc_dirty_limit(c, c->high_wm))
		*in_burst = true;
	if (*in_burst && dirty > pmc_dirty_limit(c, c->low_wm))
		return 2;
	*in_burst = false;
	/* writeback_pause holds only this, the background writeback. */
	if (time_before(jiffies, READ_ONCE(c->wb_pause_until)))
		return 0;
	return 1;
}

bool pmc_wb_needed(struct pmc_cache *c)
{
	bool burst = false;

	return pmc_wb_reason(c, &burst) != 0;
}

/*
 * The batch arrays (two: one written while the other waits for its
 * flush) are allocated once: writeback must not allocate under pressure.
 * Its bios come from a bio_set of its own: writes waiting in pmc_get_slot
 * for writeback to free a block may hold the shared pools' reserves, and
 * writeback must not wait for those.
 */
int pmc_wb_init(struct pmc_cache *c)
{
	c->wb_items = kvmalloc_array(2 * c->wb_jobs, sizeof(struct pmc_wb_item), GFP_KERNEL);
	if (!c->wb_items)
		return -ENOMEM;
	return bioset_init(&c->wb_bioset, BIO_POOL_SIZE, 0, BIOSET_NEED_BVECS);
}

/* Also for a half-built target: bioset_exit takes a zeroed bio_set. */
void pmc_wb_exit(struct pmc_cache *c)
{
	bioset_exit(&c->wb_bioset);
	kvfree(c->wb_items);
	c->wb_items = NULL;
}

void pmc_wb_kick(struct pmc_cache *c)
{
	if (READ_ONCE(c->running) && c->wq)
		queue_work(c->wq, &c->wb_work);
}

/* @need: 0, or the mark (PMC_S_AGED, PMC_S_FLUSH) a block must carry. */
static bool pmc_wb_takeable(u8 s, u8 need)
{
	return (s & PMC_S_KIND_MASK) == PMC_S_DIRTY &&
	       !(s & (PMC_S_WB | PMC_S_WB_WAIT | PMC_S_STALE | PMC_S_BUSY)) &&
	       (!need || (s & need));
}

/*
 * Mark the dirty copy of @oblock under writeback, if it can be taken.
 * @slot: the slot seen holding it, or PMC_NO_SLOT to look it up.
 *
 * Not while a write around the cache to the block is on its way to the
 * origin (sent there while the block was not cached): the origin does not
 * order two writes in flight. Landing
 * after the writeback, it would leave on the origin data that the copy
 * then marked clean does not hold. A write around the cache that starts
 * later cannot be to this block: a dirty block is written in the cache.
 */
static bool pmc_wb_take(struct pmc_cache *c, u64 oblock, u32 slot, u8 need,
			struct pmc_wb_item *item)
{
	struct pmc_stripe *st = pmc_index_stripe(&c->idx, oblock);
	bool taken = false;
	u8 s;

	spin_lock(&st->lock);
	if (slot == PMC_NO_SLOT)
		slot = pmc_index_lookup(&c->idx, oblock);
	if (slot != PMC_NO_SLOT && pmc_index_holds(&c->idx, slot, oblock, &s) &&
	    pmc_wb_takeable(s, need) && !atomic_read(pmc_index_bypass(&c->idx, oblock))) {
		c->idx.slots[slot].state |= PMC_S_WB;
		item->oblock = oblock;
		item->slot = slot;
		item->free_slot = false;
		taken = true;
	}
	spin_unlock(&st->lock);
	return taken;
}

/*
 * Pick up to @max dirty blocks and mark them under writeback. Each block
 * found by the slot scan brings its dirty origin neighbours along, so
 * that the batch holds runs the origin gets as single large writes: the
 * slots of a region written at random are scattered over the cache.
 */
static unsigned int pmc_wb_collect(struct pmc_cache *c, struct pmc_wb_item *items,
				   unsigned int max, u8 need, u32 *cursor)
{
	u32 nr = c->idx.nr_slots, scanned, slot = *cursor;
	unsigned int n = 0;

	for (scanned = 0; scanned < nr && n < max; scanned++, slot++) {
		u64 oblock, next;

		if (slot >= nr)
			slot = 0;
		if (!(scanned % PMC_RESCHED_EVERY))
			cond_resched();
		if (!pmc_wb_takeable(READ_ONCE(c->idx.slots[slot].state), need))
			continue;
		oblock = pmc_key_oblock(READ_ONCE(c->idx.slots[slot].key));
		if (!pmc_wb_take(c, oblock, slot, need, &items[n]))
			continue;
		n++;
		for (next = oblock + 1; n < max &&
		     pmc_wb_take(c, next, PMC_NO_SLOT, need, &items[n]); next++)
			n++;
		for (next = oblock - 1; n < max && next < oblock &&
		     pmc_wb_take(c, next, PMC_NO_SLOT, need, &items[n]); next--)
			n++;
	}
	*cursor = slot;
	return n;
}

static void pmc_wb_endio(struct bio *bio)
{
	struct pmc_wb_batch *b = bio->bi_private;

	if (bio->bi_status)
		b->status = bio->bi_status;
	bio_put(bio);
	if (atomic_dec_and_test(&b->pending))
		complete(&b->done);
}

/* Write the sorted items to the origin; returns once all bios completed. */
static blk_status_t pmc_wb_write(struct pmc_cache *c, struct pmc_wb_item *items,
				 unsigned int n)
{
	struct pmc_wb_batch b;
	struct blk_plug plug;
	struct request_queue *q = bdev_get_queue(c->origin_dev->bdev);
	/*
	 * At most what one request of the origin takes: a block's pmem is
	 * a segment of its own (adjacent blocks are rarely adjacent in
	 * pmem), and a bio of more segments is split, into two requests
	 * where one would do; an origin limited in requests a second (a
	 * throttled disk, a cloud volume) counts each.
	 */
	unsigned int i = 0, max_run = min3((unsigned int)BIO_MAX_VECS,
					   (unsigned int)queue_max_segments(q),
					   queue_max_sectors(q) >> (c->block_shift - SECTOR_SHIFT));

	b.c = c;
	atomic_set(&b.pending, 1);
	init_completion(&b.done);
	b.status = BLK_STS_OK;

	max_run = max(max_run, 1u);
	blk_start_plug(&plug);
	while (i < n) {
		unsigned int run = 1, k;
		struct bio *bio;

		while (i + run < n && run < max_run &&
		       items[i + run].oblock == items[i].oblock + run)
			run++;
		bio = bio_alloc_bioset(c->origin_dev->bdev, run, REQ_OP_WRITE, GFP_NOIO,
				       &c->wb_bioset);
		bio->bi_iter.bi_sector = pmc_oblock_to_sector(c, items[i].oblock);
		bio->bi_private = &b;
		bio->bi_end_io = pmc_wb_endio;
		for (k = 0; k < run; k++) {
			u8 *data = pmc_block_data(&c->meta, items[i + k].slot);

			__bio_add_page(bio, virt_to_page(data), c->block_size,
				       offset_in_page(data));
		}
		atomic_inc(&b.pending);
		submit_bio(bio);
		i += run;
	}
	blk_finish_plug(&plug);
	if (atomic_dec_and_test(&b.pending))
		complete(&b.done);
	wait_for_completion_io(&b.done);
	return b.status;
}

/* After the batch is durable on the origin: mark clean or free each block. */
static void pmc_wb_finish(struct pmc_cache *c, struct pmc_wb_item *items,
			  unsigned int n, bool ok)
{
	unsigned int i, cleaned = 0;

	for (i = 0; i < n; i++) {
		struct pmc_stripe *st = pmc_index_stripe(&c->idx, items[i].oblock);

		spin_lock(&st->lock);
		switch (pmc_slot_wb_done(&c->idx, &c->meta, items[i].slot,
					 items[i].oblock, ok)) {
		case PMC_WB_FREE:
			/*
			 * A discarded block's data may have landed on the
			 * origin: a read that missed the tombstone and read
			 * the origin before must not install its older data.
			 */
			atomic_inc(&st->write_seq);
			items[i].free_slot = true;
			break;
		case PMC_WB_CLEANED:
			cleaned++;
			break;
		case PMC_WB_KEPT:
			break;
		}
		spin_unlock(&st->lock);
	}
	pmc_count(c, 0, -(s64)cleaned);
	this_cpu_add(c->stats->writebacks, cleaned);
	for (i = 0; i < n; i++)
		if (items[i].free_slot)
			pmc_slot_free(c, items[i].slot);
	if (cleaned && atomic_read(&c->free_waiters))
		wake_up(&c->free_wait);
}

/*
 * Check each block's copy first, every cache line through copy_mc
 * (pmc_pmem_probe). Writeback hands the pmem pages themselves to the
 * origin's driver, where a media error would be consumed unguarded: by a
 * CPU copy (a loop device, dm-crypt, a bounce buffer: a machine check the
 * kernel cannot recover from) or by DMA (garbage written and reported
 * done), and the copy then marked clean. A block that fails is the only
 * copy: it stays dirty, counts as an error and fails a "message flush"
 * waiting for it; its slot is not reused. Returns how many items passed;
 * they are moved to the front, in order.
 */
static unsigned int pmc_wb_probe(struct pmc_cache *c, struct pmc_wb_item *items,
				 unsigned int n)
{
	unsigned int i, good = 0;

	for (i = 0; i < n; i++) {
		struct pmc_wb_item item = items[i];

		if (!pmc_pmem_probe(pmc_block_data(&c->meta, item.slot), c->block_size)) {
			pmc_slot_readable(c, item.slot);
			items[good++] = item;
			continue;
		}
		/* Under writeback the slot cannot be freed before this. */
		pmc_slot_poisoned(c, item.slot);
		pmc_note_error(c);
		if (READ_ONCE(c->idx.slots[item.slot].state) & PMC_S_STALE) {
			/* Overwritten or discarded meanwhile: nothing is lost. */
			DMERR_LIMIT("media error in a replaced copy of block %llu",
				    item.oblock);
		} else {
			atomic_inc(&c->wb_errors);
			DMERR_LIMIT("media error in dirty block %llu: not written, stays dirty",
				    item.oblock);
		}
		pmc_wb_finish(c, &item, 1, false);
	}
	return good;
}

/*
 * A batch's end, once its origin flush returned (@err 0: the batch is
 * durable on the origin) or its writes failed. @count: @err is this
 * batch's own failure; not when its writes went out beside a flush that
 * failed, already counted, and it is only kept dirty with the rest.
 */
static void pmc_wb_done(struct pmc_cache *c, struct pmc_wb_item *items,
			unsigned int n, int err, bool count)
{
	if (err) {
		if (count) {
			pmc_note_error(c);
			atomic_inc(&c->wb_errors);
			DMERR_LIMIT("writeback to the origin failed: %d", err);
		}
		/*
		 * Its writes may sit unflushed in the origin's cache: a
		 * discarded block's tombstone goes even so, and a read
		 * promoting that data must flush the origin first
		 * (pmc_promote_flush), as after any origin write.
		 */
		atomic64_inc(&c->origin_writes_done);
	}
	pmc_wb_finish(c, items, n, !err);
	atomic_sub(n, &c->wb_inflight);
	wake_up_all(&c->clean_wait);
}

/*
 * Wait for the origin flush issued for the written batch @items, and end
 * the batch. Writeback is failing until a flush succeeds: writes alone
 * landing prove nothing on an origin that fails only its flushes.
 */
static int pmc_wb_settle(struct pmc_cache *c, struct pmc_origin_flush_io *flush,
			 struct pmc_wb_item *items, unsigned int n)
{
	int err = pmc_origin_flush_wait(c, flush);

	pmc_wb_done(c, items, n, err, true);
	WRITE_ONCE(c->wb_failing, err != 0);
	return err;
}

/*
 * Batches go out one after the other. Once a batch's writes completed,
 * the origin flush that makes it durable is issued, and runs while the
 * next batch is collected, checked and written: the flush (a disk's cache
 * emptied) overlaps the next batch rather than holding it. @items holds
 * two batches: the one being written, and the one written and waiting
 * for its flush.
 */
void pmc_wb_work(struct work_struct *w)
{
	struct pmc_cache *c = container_of(w, struct pmc_cache, wb_work);
	struct pmc_wb_item *items = c->wb_items, *written = NULL;
	unsigned int nr_written = 0;
	struct pmc_origin_flush_io flush;
	bool burst = false;
	u32 cursor = 0;

	mutex_lock(&c->wb_mutex);
	while (READ_ONCE(c->running)) {
		unsigned int n = 0, good;
		int err = 0, flush_err = 0;
		int reason = pmc_wb_reason(c, &burst);

		if (!reason)
			break;
		/*
		 * A flush's blocks first (PMC_S_FLUSH): writes that go on
		 * during a flush must not hold it. Then the others, as ever.
		 */
		if (reason == 2 && atomic_read(&c->flush_requests)) {
			n = pmc_wb_collect(c, items, c->wb_jobs, PMC_S_FLUSH, &cursor);
			/*
			 * None left to take: the flush's last ones may be in
			 * the batch written. Clean first, not after a batch of
			 * others, which the flush would wait for too.
			 */
			if (!n && nr_written) {
				flush_err = pmc_wb_settle(c, &flush, written, nr_written);
				nr_written = 0;
				if (flush_err)
					break;
			}
		}
		if (!n)
			n = pmc_wb_collect(c, items, c->wb_jobs,
					   reason == 1 ? PMC_S_AGED : 0, &cursor);
		if (!n)
			break;
		sort(items, n, sizeof(*items), wb_item_cmp, NULL);
		atomic_add(n, &c->wb_inflight);
		good = pmc_wb_probe(c, items, n);
		atomic_sub(n - good, &c->wb_inflight);
		if (good)
			err = blk_status_to_errno(pmc_wb_write(c, items, good));
		if (nr_written) {
			flush_err = pmc_wb_settle(c, &flush, written, nr_written);
			nr_written = 0;
		}
		/* Every block unreadable: no progress either. */
		if (err || flush_err || !good)
			WRITE_ONCE(c->wb_failing, true);
		if (err || flush_err) {
			/*
			 * Its own writes failed: an error. Written beside a
			 * flush that failed (counted there): kept dirty with
			 * the rest, no error of its own.
			 */
			if (good)
				pmc_wb_done(c, items, good, err ? err : flush_err, err != 0);
			/* Retry later rather than spin on a failing origin. */
			break;
		}
		if (!good) {
			/*
			 * Nor on blocks that cannot be read: none of this
			 * batch could be. A batch with some read goes on, and
			 * the scan resumes past the ones that failed.
			 */
			break;
		}
		/*
		 * Issued after the batch's writes completed, the flush covers
		 * them, and the writes around the cache done by now.
		 */
		pmc_origin_flush_start(c, &flush);
		written = items;
		nr_written = good;
		items = written == c->wb_items ? written + c->wb_jobs : c->wb_items;
		cond_resched();
	}
	if (nr_written)
		pmc_wb_settle(c, &flush, written, nr_written);
	mutex_unlock(&c->wb_mutex);
	wake_up_all(&c->clean_wait);
	wake_up_all(&c->free_wait);
}

/*
 * Every half max_dirty_age: write back the blocks marked at the previous
 * tick, then mark the ones dirty now. A block is written back between one
 * half and one whole max_dirty_age after it was written.
 */
void pmc_age_work(struct work_struct *w)
{
	struct pmc_cache *c = container_of(to_delayed_work(w), struct pmc_cache,
					   age_work);
	u32 slot;

	if (!READ_ONCE(c->running))
		return;
	pmc_wb_kick(c);
	flush_work(&c->wb_work);
	for (slot = 0; slot < c->idx.nr_slots; slot++) {
		u8 s = READ_ONCE(c->idx.slots[slot].state);

		if ((s & PMC_S_KIND_MASK) == PMC_S_DIRTY && !(s & PMC_S_AGED)) {
			u64 oblock = pmc_key_oblock(READ_ONCE(c->idx.slots[slot].key));
			struct pmc_stripe *st = pmc_index_stripe(&c->idx, oblock);

			spin_lock(&st->lock);
			/*
			 * Still the block whose stripe this is: the slot may
			 * have been freed and reused for a block of another
			 * stripe since the unlocked read, and its state is then
			 * that stripe's to change (writeback may be setting
			 * PMC_S_WB on it right now).
			 */
			if (pmc_index_holds(&c->idx, slot, oblock, &s) &&
			    (s & PMC_S_KIND_MASK) == PMC_S_DIRTY)
				c->idx.slots[slot].state |= PMC_S_AGED;
			spin_unlock(&st->lock);
		}
		if (!(slot & 4095))
			cond_resched();
	}
	if (READ_ONCE(c->running) && c->max_age_ms)
		queue_delayed_work(system_unbound_wq, &c->age_work,
				   msecs_to_jiffies(c->max_age_ms / 2 + 1));
}

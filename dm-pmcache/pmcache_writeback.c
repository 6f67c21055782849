// SPDX-License-Identifier: GPL-2.0
/*
 * Writeback: copy dirty blocks to the origin, in origin-block order, with
 * adjacent blocks merged into one bio, in batches: each run of a batch
 * sent as soon as its blocks are checked, up to four batches in flight.
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
#include <linux/sizes.h>
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
	bool failed;		/* its write to the origin failed: it stays dirty */
};

/*
 * A writeback bio and the items it carries (in its batch's array): a
 * write that fails keeps only its own blocks dirty, not its whole batch's
 * (an origin that fails some writes, a thin pool out of space).
 */
struct pmc_wb_bio {
	struct pmc_wb_item *items;
	unsigned int nr;
	struct bio bio;		/* last: allocated behind the front_pad */
};

/*
 * Batches in flight at once, at most: a backlog of adjacent blocks (a
 * region written, then flushed) goes to the origin all at once, 16 MiB
 * in requests of 1 MiB under the default writeback_jobs (1024).
 */
#define PMC_WB_BATCHES 4
/* After an error, when nothing else will: not a spin on a failing origin. */
#define PMC_WB_RETRY_DELAY HZ

/* A batch collected: @n items, sent to the origin as @bios bios. */
struct pmc_wb_batch {
	struct pmc_wb_item *items;
	unsigned int n;
	unsigned int bios;
	atomic_t pending;
	atomic_t writes_ok;	/* its bios that completed without error */
	atomic_t *all_writes_ok;	/* the cache's wb_writes_ok */
	struct completion done;
	blk_status_t status;
	bool written;		/* its writes completed, with @err */
	int err;
	bool flushing;		/* @flush issued, before the batch landed */
	struct pmc_origin_flush_io flush;
};

static bool pmc_wb_sorted(const struct pmc_wb_item *items, unsigned int n)
{
	unsigned int i;

	for (i = 1; i < n; i++)
		if (items[i - 1].oblock > items[i].oblock)
			return false;
	return true;
}

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
 * The batches and their arrays are allocated once: writeback must not
 * allocate under pressure. Its bios come from a bio_set of its own: writes
 * waiting in pmc_get_slot for writeback to free a block may hold the
 * shared pools' reserves, and writeback must not wait for those.
 */
int pmc_wb_init(struct pmc_cache *c)
{
	struct pmc_wb_item *items;
	unsigned int i;

	c->wb_batches = kcalloc(PMC_WB_BATCHES, sizeof(*c->wb_batches), GFP_KERNEL);
	if (!c->wb_batches)
		return -ENOMEM;
	items = kvmalloc_array(PMC_WB_BATCHES * c->wb_jobs, sizeof(*items), GFP_KERNEL);
	if (!items)
		return -ENOMEM;
	for (i = 0; i < PMC_WB_BATCHES; i++) {
		c->wb_batches[i].items = items + i * c->wb_jobs;
		c->wb_batches[i].all_writes_ok = &c->wb_writes_ok;
	}
	return bioset_init(&c->wb_bioset, BIO_POOL_SIZE, offsetof(struct pmc_wb_bio, bio),
			   BIOSET_NEED_BVECS);
}

/* Also for a half-built target: bioset_exit takes a zeroed bio_set. */
void pmc_wb_exit(struct pmc_cache *c)
{
	bioset_exit(&c->wb_bioset);
	if (c->wb_batches)
		kvfree(c->wb_batches[0].items);
	kfree(c->wb_batches);
	c->wb_batches = NULL;
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
		item->failed = false;
		taken = true;
	}
	spin_unlock(&st->lock);
	return taken;
}

static void pmc_wb_reverse(struct pmc_wb_item *items, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n / 2; i++)
		swap(items[i], items[n - 1 - i]);
}

/*
 * Pick up to @max dirty blocks and mark them under writeback. Each block
 * found by the slot scan brings its dirty origin neighbours along, so
 * that the batch holds runs the origin gets as single large writes: the
 * slots of a region written at random are scattered over the cache. Each
 * run is put in ascending order: a batch of one run needs no sort.
 * @scanned_all: set when every slot was looked at (none is left to take).
 */
static unsigned int pmc_wb_collect(struct pmc_cache *c, struct pmc_wb_item *items,
				   unsigned int max, u8 need, u32 *cursor, bool *scanned_all)
{
	u32 nr = c->idx.nr_slots, scanned, slot = *cursor;
	/*
	 * No run starts in the last 64th of the batch: the neighbours the
	 * last blocks bring along fit in, rather than being cut off into
	 * the next batch, a second request where one would do.
	 */
	unsigned int n = 0, first, up, seed_limit = max - max / 64;

	for (scanned = 0; scanned < nr && n < seed_limit; scanned++, slot++) {
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
		first = n++;
		for (next = oblock + 1; n < max &&
		     pmc_wb_take(c, next, PMC_NO_SLOT, need, &items[n]); next++)
			n++;
		up = n - first;
		for (next = oblock - 1; n < max && next < oblock &&
		     pmc_wb_take(c, next, PMC_NO_SLOT, need, &items[n]); next--)
			n++;
		/* [X, X+1 .. X+up-1, X-1, X-2 ..]: reversed, then its tail */
		if (n - first > up) {
			pmc_wb_reverse(items + first, n - first);
			pmc_wb_reverse(items + n - up, up);
		}
	}
	*cursor = slot;
	*scanned_all = scanned == nr;
	return n;
}

static void pmc_wb_endio(struct bio *bio)
{
	struct pmc_wb_bio *wb = container_of(bio, struct pmc_wb_bio, bio);
	struct pmc_wb_batch *b = bio->bi_private;
	unsigned int i;

	if (bio->bi_status) {
		WRITE_ONCE(b->status, bio->bi_status);
		/* Read once the batch's writes are waited for (pending's drop orders). */
		for (i = 0; i < wb->nr; i++)
			wb->items[i].failed = true;
	} else {
		atomic_inc(&b->writes_ok);
		atomic_inc(b->all_writes_ok);
	}
	bio_put(bio);
	if (atomic_dec_and_test(&b->pending))
		complete(&b->done);
}

static void pmc_wb_submit(struct pmc_wb_batch *b, struct bio *bio)
{
	atomic_inc(&b->pending);
	b->bios++;
	submit_bio(bio);
}

/* Wait for the writes of the batch sent (once; then what they returned). */
static int pmc_wb_wait_writes(struct pmc_wb_batch *b)
{
	if (!b->written) {
		if (atomic_dec_and_test(&b->pending))
			complete(&b->done);
		wait_for_completion_io(&b->done);
		b->err = blk_status_to_errno(b->status);
		b->written = true;
	}
	return b->err;
}

/* Wait for the writes of the batch sent: true if any of them succeeded. */
static bool pmc_wb_wait_written(struct pmc_wb_batch *b)
{
	pmc_wb_wait_writes(b);
	return atomic_read(&b->writes_ok);
}

/* Its writes completed, without waiting: only the sender's count left. */
static bool pmc_wb_writes_done(struct pmc_wb_batch *b)
{
	return b->written || atomic_read(&b->pending) == 1;
}

/*
 * Issue the origin flush that makes durable the writes of @b (and of the
 * batches landing with it) once they completed: it covers them, and the
 * writes around the cache done by now. pmc_wb_land_oldest waits for it.
 */
static void pmc_wb_issue_flush(struct pmc_cache *c, struct pmc_wb_batch *b)
{
	pmc_origin_flush_start(c, &b->flush);
	b->flushing = true;
}

/*
 * Wait for the writes of @b and issue its flush, for it alone; once: the
 * flush bio is the batch's own, and a batch that cannot land yet (none of
 * the next batch's blocks could be read) is asked again.
 */
static void pmc_wb_start_flush(struct pmc_cache *c, struct pmc_wb_batch *b)
{
	if (!b->flushing && pmc_wb_wait_written(b))
		pmc_wb_issue_flush(c, b);
}

/*
 * After the batch is durable on the origin (@ok; its items whose own write
 * failed are not): mark clean or free each block. Returns how many stay
 * dirty.
 */
static unsigned int pmc_wb_finish(struct pmc_cache *c, struct pmc_wb_item *items,
				  unsigned int n, bool ok)
{
	unsigned int i, cleaned = 0, kept = 0;

	for (i = 0; i < n; i++) {
		struct pmc_stripe *st = pmc_index_stripe(&c->idx, items[i].oblock);

		spin_lock(&st->lock);
		switch (pmc_slot_wb_done(&c->idx, &c->meta, items[i].slot,
					 items[i].oblock, ok && !items[i].failed)) {
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
			kept++;
			break;
		}
		spin_unlock(&st->lock);
	}
	pmc_count(c, 0, -(s64)cleaned);
	this_cpu_add(c->stats->writebacks, cleaned);
	for (i = 0; i < n; i++)
		if (items[i].free_slot)
			pmc_slot_free(c, items[i].slot);
	/* The dirty count before the waiters' (pmc_get_slot counts, then looks). */
	smp_mb();
	if (cleaned && atomic_read(&c->free_waiters))
		wake_up(&c->free_wait);
	return kept;
}

/*
 * Blocks a bio at most, what one request of the origin takes: a block's
 * pmem is a segment of its own (adjacent blocks are rarely adjacent in
 * pmem), and a bio of more segments is split, into two requests where
 * one would do; an origin limited in requests a second (a throttled disk,
 * a cloud volume) counts each.
 */
static unsigned int pmc_wb_max_run(struct pmc_cache *c)
{
	struct request_queue *q = bdev_get_queue(c->origin_dev->bdev);

	return max(min3((unsigned int)BIO_MAX_VECS, (unsigned int)queue_max_segments(q),
			queue_max_sectors(q) >> (c->block_shift - SECTOR_SHIFT)), 1u);
}

/*
 * Check a block's copy before it is sent, every cache line read as
 * copy_mc reads (pmc_pmem_probe). Writeback hands the pmem pages
 * themselves to the origin's driver, where a media error would be
 * consumed unguarded: by a CPU copy (a loop device, dm-crypt, a bounce
 * buffer: a machine check the kernel cannot recover from) or by DMA
 * (garbage written and reported done), and the copy then marked clean. A
 * block that fails is the only copy: it stays dirty, counts as an error
 * and fails a "message flush" waiting for it; its slot is not reused.
 */
static bool pmc_wb_readable(struct pmc_cache *c, struct pmc_wb_item *item,
			    unsigned int *lost)
{
	if (!pmc_pmem_probe(pmc_block_data(&c->meta, item->slot), c->block_size)) {
		pmc_slot_readable(c, item->slot);
		return true;
	}
	/* Under writeback the slot cannot be freed before this. */
	pmc_slot_poisoned(c, item->slot);
	pmc_note_error(c);
	/* Told under the stripe lock: a write may replace the copy until then. */
	if (pmc_wb_finish(c, item, 1, false)) {
		atomic_inc(&c->wb_errors);
		(*lost)++;
		DMERR_LIMIT("media error in dirty block %llu: not written, stays dirty",
			    item->oblock);
	} else {
		/* Overwritten or discarded meanwhile: nothing is lost. */
		DMERR_LIMIT("media error in a replaced copy of block %llu",
			    item->oblock);
	}
	atomic_dec(&c->wb_inflight);
	return false;
}

/*
 * Send the first @n items of @b, sorted, to the origin: a bio for each run
 * of adjacent blocks that pass pmc_wb_readable, each sent as soon as its
 * run is checked, so that the origin works on the first while the next
 * ones are checked. The items sent are moved to the front, in order, and
 * counted in @b->n; the others are ended already. Returns how many of
 * those were dirty blocks that could not be read (not replaced copies).
 */
static unsigned int pmc_wb_send(struct pmc_cache *c, struct pmc_wb_batch *b,
				unsigned int n)
{
	struct pmc_wb_item *items = b->items;
	struct blk_plug plug;
	unsigned int i = 0, good = 0, lost = 0, max_run = pmc_wb_max_run(c);

	atomic_set(&b->pending, 1);
	atomic_set(&b->writes_ok, 0);
	init_completion(&b->done);
	b->status = BLK_STS_OK;
	b->bios = 0;
	b->written = false;
	b->flushing = false;

	blk_start_plug(&plug);
	while (i < n) {
		unsigned int run = 1, k;
		struct bio *bio = NULL;
		struct pmc_wb_bio *wb = NULL;

		while (i + run < n && run < max_run &&
		       items[i + run].oblock == items[i].oblock + run)
			run++;
		for (k = i; k < i + run; k++) {
			struct pmc_wb_item item = items[k];
			u8 *data = pmc_block_data(&c->meta, item.slot);

			if (!pmc_wb_readable(c, &item, &lost)) {
				/* The run goes on after it, in a bio of its own. */
				if (bio)
					pmc_wb_submit(b, bio);
				bio = NULL;
				continue;
			}
			if (!bio) {
				bio = bio_alloc_bioset(c->origin_dev->bdev, i + run - k,
						       REQ_OP_WRITE, GFP_NOIO, &c->wb_bioset);
				bio->bi_iter.bi_sector = pmc_oblock_to_sector(c, item.oblock);
				bio->bi_private = b;
				bio->bi_end_io = pmc_wb_endio;
				wb = container_of(bio, struct pmc_wb_bio, bio);
				wb->items = &items[good];
				wb->nr = 0;
			}
			wb->nr++;
			__bio_add_page(bio, virt_to_page(data), c->block_size,
				       offset_in_page(data));
			items[good++] = item;
		}
		if (bio) {
			unsigned int size = bio->bi_iter.bi_size;
			bool runs_on = i + run < n &&
				       items[i + run].oblock == items[i + run - 1].oblock + 1;

			pmc_wb_submit(b, bio);
			/*
			 * The plug holds a request of 128 KiB or more until
			 * the next one is added (smaller ones until 32 are):
			 * such a run goes now, not after the next is checked.
			 * Unless the next run goes on from it: the origin may
			 * take both in one request, merged in the plug.
			 */
			if (size >= SZ_128K && !runs_on) {
				blk_finish_plug(&plug);
				blk_start_plug(&plug);
			}
		}
		i += run;
	}
	blk_finish_plug(&plug);
	b->n = good;
	return lost;
}

/*
 * A batch's end, once its origin flush returned (@flushed: it succeeded,
 * or none was needed, no write of the batch having succeeded) or its
 * writes failed. @err: the batch's first error, of its writes or the
 * flush. @count: an error not counted already (a flush that failed for
 * several batches counts once).
 */
static void pmc_wb_done(struct pmc_cache *c, struct pmc_wb_item *items,
			unsigned int n, int err, bool count, bool flushed)
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
	pmc_wb_finish(c, items, n, flushed);
	atomic_sub(n, &c->wb_inflight);
	wake_up_all(&c->clean_wait);
}

/* The batches in flight: @nr from @head on, in the order sent. */
struct pmc_wb_ring {
	unsigned int head, nr;
	unsigned int queued;	/* their bios */
};

/* The @i-th oldest batch in flight (0: the oldest). */
static struct pmc_wb_batch *pmc_wb_nth(struct pmc_cache *c, struct pmc_wb_ring *r,
				       unsigned int i)
{
	return &c->wb_batches[(r->head + i) % PMC_WB_BATCHES];
}

/*
 * Land the oldest batch in flight, and with it each next one whose writes
 * completed by then: one origin flush covers them all (unless the oldest's
 * own flush was issued already, pmc_wb_start_flush: it lands alone). A block is
 * clean once its write and then the flush succeeded; else it stays dirty,
 * and its batch has its write's error or the flush's (which counts once).
 * Writeback is failing while the batches landed last had an error: writes
 * alone landing prove nothing on an origin that fails only its flushes, and
 * each failed flush is counted for the writers that wait on it.
 * Returns the first error.
 */
static int pmc_wb_land_oldest(struct pmc_cache *c, struct pmc_wb_ring *r)
{
	struct pmc_wb_batch *b = pmc_wb_nth(c, r, 0);
	unsigned int i, group = 1;
	int flush_err = 0, first = 0;
	bool flush_counted = false;

	if (!b->flushing) {
		/* No flush when every write of the group failed. */
		bool any_ok = pmc_wb_wait_written(b);

		while (group < r->nr && pmc_wb_writes_done(pmc_wb_nth(c, r, group)))
			any_ok |= pmc_wb_wait_written(pmc_wb_nth(c, r, group++));
		if (any_ok)
			pmc_wb_issue_flush(c, b);
	}
	if (b->flushing)
		flush_err = pmc_origin_flush_wait(c, &b->flush);
	for (i = 0; i < group; i++) {
		struct pmc_wb_batch *x = pmc_wb_nth(c, r, i);
		int err = x->err ? x->err : flush_err;

		pmc_wb_done(c, x->items, x->n, err, x->err || !flush_counted, !flush_err);
		if (!x->err && flush_err)
			flush_counted = true;
		if (!first)
			first = err;
		r->queued -= x->bios;
		x->n = 0;
	}
	r->head = (r->head + group) % PMC_WB_BATCHES;
	r->nr -= group;
	/*
	 * Writes that fail keep only their own blocks (the others are freed):
	 * a flush that fails keeps the writes that reached the origin.
	 */
	if (flush_err)
		atomic_inc(&c->wb_flush_failures);
	WRITE_ONCE(c->wb_failing, first != 0);
	return first;
}

/*
 * Batches go out one after the other, and land in the order sent (their
 * writes waited for, then the origin flushed: a batch turns clean only
 * then): the oldest one once PMC_WB_BATCHES are in flight, once its writes
 * completed while writers wait for a free slot, or once there is nothing
 * more to send. The flush that makes a batch durable runs beside the next
 * batch's writes.
 *
 * When another batch like the last would make more requests in flight
 * than the origin queues, those in flight keep it busy by themselves: the
 * oldest batch's writes are waited for (and its flush issued) before the
 * next batch is collected, and it lands once that one is sent. More would
 * only delay it, and with it the first blocks freed for writers waiting on
 * a full cache (scattered blocks, a request each), and hold the next
 * batch's blocks under writeback longer. A backlog of adjacent blocks, a
 * megabyte a request, goes out all at once: the time a request takes, not
 * the origin's rate, bounds it.
 */
void pmc_wb_work(struct work_struct *w)
{
	struct pmc_cache *c = container_of(w, struct pmc_cache, wb_work);
	struct request_queue *q = bdev_get_queue(c->origin_dev->bdev);
	struct pmc_wb_ring ring = { 0 };
	bool burst = false, unreadable = false, scanned_all = false, flush_taken = false;
	bool failed = false;
	int flush_round = atomic_read(&c->flush_rounds);
	u32 cursor;

	mutex_lock(&c->wb_mutex);
	/*
	 * The scan goes on where the last run's stopped: past blocks that
	 * could not be read, which would end every run again from slot 0.
	 */
	cursor = c->wb_cursor;
	while (READ_ONCE(c->running)) {
		struct pmc_wb_batch *cur, *oldest = pmc_wb_nth(c, &ring, 0);
		int reason = pmc_wb_reason(c, &burst);
		unsigned int n = 0, lost;

		if (!reason)
			break;
		/*
		 * A scan found nothing more to take: what is in flight lands,
		 * and what is dirty is looked at again then, rather than after
		 * another scan that would find nothing either.
		 */
		if (ring.nr && scanned_all) {
			while (ring.nr)
				if (pmc_wb_land_oldest(c, &ring)) {
					failed = true;
					goto out;
				}
			scanned_all = false;
			continue;
		}
		if (ring.nr && ring.queued + pmc_wb_nth(c, &ring, ring.nr - 1)->bios >
		    q->nr_requests)
			pmc_wb_start_flush(c, oldest);
		cur = pmc_wb_nth(c, &ring, ring.nr);
		/*
		 * A flush's blocks first (PMC_S_FLUSH): writes that go on
		 * during a flush must not hold it. Then the others, as ever.
		 */
		/*
		 * A flush that began since, or looked at its marks again
		 * (blocks that could not be taken before, another flush
		 * after the first): its blocks first again.
		 */
		if (atomic_read(&c->flush_rounds) != flush_round) {
			flush_round = atomic_read(&c->flush_rounds);
			flush_taken = false;
		}
		if (reason == 2 && atomic_read(&c->flush_requests) && !flush_taken) {
			bool unused;

			n = pmc_wb_collect(c, cur->items, c->wb_jobs, PMC_S_FLUSH, &cursor,
					   &unused);
			/*
			 * None of the flush's left to take: its last ones may
			 * be in flight, and land first, not after a batch of
			 * others, which the flush would wait for too. Not
			 * looked for again in this run: a mark a landing
			 * passes to a newer copy goes with the other blocks.
			 */
			if (!n) {
				flush_taken = true;
				if (ring.nr) {
					scanned_all = true;
					continue;
				}
			}
		}
		if (!n)
			n = pmc_wb_collect(c, cur->items, c->wb_jobs,
					   reason == 1 ? PMC_S_AGED : 0, &cursor, &scanned_all);
		if (!n) {
			if (!ring.nr)
				break;
			/* Landings may release newer copies waiting for them. */
			continue;
		}
		if (!pmc_wb_sorted(cur->items, n))
			sort(cur->items, n, sizeof(*cur->items), wb_item_cmp, NULL);
		atomic_add(n, &c->wb_inflight);
		lost = pmc_wb_send(c, cur, n);
		if (!cur->n) {
			/*
			 * Nor on blocks that cannot be read: none of this
			 * batch could be. A batch with some read goes on, and
			 * the scan resumes past the ones that failed, in this
			 * run and the next. Replaced copies that could not be
			 * read lost nothing: they were freed, and it goes on.
			 */
			if (lost) {
				unreadable = true;
				break;
			}
			continue;
		}
		ring.nr++;
		ring.queued += cur->bios;
		if ((ring.nr == PMC_WB_BATCHES || oldest->written ||
		     (atomic_read(&c->free_waiters) && pmc_wb_writes_done(oldest))) &&
		    pmc_wb_land_oldest(c, &ring)) {
			/* Retry later rather than spin on a failing origin. */
			failed = true;
			break;
		}
		cond_resched();
	}
out:
	/* Each with its own outcome, whatever the one before met. */
	while (ring.nr)
		if (pmc_wb_land_oldest(c, &ring))
			failed = true;
	/*
	 * Failing, though batches landed after the error: the blocks the
	 * error kept need the retry below, and writers waiting for a block
	 * go by it (pmc_get_slot).
	 */
	if (failed || unreadable)
		WRITE_ONCE(c->wb_failing, true);
	c->wb_cursor = cursor;
	/*
	 * Stopped by an error with blocks it must write: nothing else may
	 * kick it again (writethrough, writearound: writes go around the
	 * cache, below the high watermark, with no max_dirty_age).
	 */
	if (READ_ONCE(c->wb_failing) && READ_ONCE(c->running) && pmc_wb_reason(c, &burst) == 2)
		queue_delayed_work(system_unbound_wq, &c->wb_retry_work, PMC_WB_RETRY_DELAY);
	mutex_unlock(&c->wb_mutex);
	wake_up_all(&c->clean_wait);
	wake_up_all(&c->free_wait);
}

void pmc_wb_retry_work(struct work_struct *w)
{
	pmc_wb_kick(container_of(to_delayed_work(w), struct pmc_cache, wb_retry_work));
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

// SPDX-License-Identifier: GPL-2.0
/*
 * dm-pmcache: a write-back block cache in persistent memory.
 *
 * Table line:
 *   <start> <len> pmcache <cache_dev> <origin_dev> <#feature args> [args...]
 *
 * This file is the device-mapper glue: argument parsing, mapping the cache
 * device through DAX, and the I/O path. Format and recovery live in
 * pmcache_meta.c, the index in pmcache_index.c, free slots in
 * pmcache_alloc.c, the policy in pmcache_policy.c and writeback in
 * pmcache_writeback.c.
 */
#include <linux/module.h>
#include <linux/init.h>
#include <linux/bio.h>
#include <linux/badblocks.h>
#include <linux/blkdev.h>
#include <linux/dax.h>
#include <linux/pfn_t.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/timekeeping.h>
#include <linux/highmem.h>
#include <linux/hash.h>
#include <linux/delay.h>
#include <linux/dm-ioctl.h>
#include <linux/overflow.h>

#include "pmcache.h"
#include "pmcache_pmem.h"
#include "pmcache_slot.h"

/* The table's open mode: a blk_mode_t since 6.5, an fmode_t before. */
#ifdef BLK_OPEN_WRITE
#define PMC_OPEN_WRITE	BLK_OPEN_WRITE
#else
#define PMC_OPEN_WRITE	FMODE_WRITE
#endif

#define PMC_DEFAULT_BLOCK_SIZE	4096u
#define PMC_DEFAULT_HIGH_WM	50u
#define PMC_DEFAULT_LOW_WM	45u
#define PMC_DEFAULT_WB_JOBS	1024u
#define PMC_DEFAULT_MAX_AGE_MS	30000u
#define PMC_ALLOC_REGIONS	64u
#define PMC_DEFAULT_SEQ_CUTOFF	(4ULL << 20)

static const char * const pmc_mode_names[] = {
	[PMC_MODE_WRITEBACK] = "writeback",
	[PMC_MODE_WRITETHROUGH] = "writethrough",
	[PMC_MODE_WRITEAROUND] = "writearound",
	[PMC_MODE_PASSTHROUGH] = "passthrough",
};

static const char * const pmc_health_names[] = {
	[PMC_HEALTH_OK] = "ok",
	[PMC_HEALTH_DEGRADED] = "degraded",
};

/* Writes of a sequential stream smaller than this stay in the cache. */
#define PMC_SEQ_BYPASS_MIN_WRITE	(64 * 1024)

/* Most blocks one bio promotes (read miss, or writethrough write). */
#define PMC_PROMOTE_MAX		32
/* Pages of such a bio: its full blocks, a partial one at each end, from mid-page. */
#define PMC_PROMOTE_PAGES	(DIV_ROUND_UP((PMC_PROMOTE_MAX + 2) * PMC_MAX_BLOCK_SIZE, \
				      PAGE_SIZE) + 1)

/* Per-bio state, for bios that are remapped to the origin. */
struct pmc_bio {
	u32 flags;
	u32 nr_blocks;		/* origin write: [first, first + nr_blocks) */
	u64 first;
	u64 promote_first;	/* promotion: bit i of promote is block promote_first + i */
	u32 promote;
	/*
	 * Stripe write_seq when the data was read, or (writethrough) when
	 * the write was mapped, its own bumps at map included.
	 */
	u32 seq[PMC_PROMOTE_MAX];
	struct pmc_promotion *pp;	/* a writethrough write's data to install */
};

#define PMC_BIO_ORIGIN_WRITE	0x1	/* counted in its blocks' pmc_index_bypass */
#define PMC_BIO_PROMOTE		0x2
#define PMC_BIO_FLUSH		0x4	/* an origin flush; first = writes done before it */
#define PMC_BIO_TO_ORIGIN	0x8	/* remapped to the origin (end_io sees every bio) */
#define PMC_BIO_DISCARD		0x10	/* a discard counted in pmc_index_bypass */

/* Data of a finished origin I/O on its way into the cache. */
struct pmc_promotion {
	struct work_struct work;
	struct pmc_cache *c;
	struct bio *bio;	/* the bio its data is for */
	u64 first;
	u32 mask;
	/*
	 * Block i of the mask at byte data_off + i * block_size of pages[]:
	 * the bio's first byte is at its origin offset within a page, so no
	 * block (at most a page) straddles two pages.
	 */
	u32 data_off;
	u32 seq[PMC_PROMOTE_MAX];
	/*
	 * The bio's data, in pages of the cache's own: the origin I/O reads
	 * into them or writes from them, never the bio's own pages, which
	 * their owner may change meanwhile (an O_DIRECT buffer): the origin
	 * and the clean copy would differ, or one reader's change would
	 * become what everyone reads. Single pages, not one buffer: 136 KiB
	 * at once is an allocation of order 6, which, not allowed to wait,
	 * fails on a fragmented host: those reads would never be cached.
	 */
	unsigned int nr_pages;
	struct page *pages[PMC_PROMOTE_PAGES];
};

/* The flags of a bio its origin I/O through a promotion's buffer keeps. */
#define PMC_READ_FLAGS	(REQ_SYNC | REQ_META | REQ_PRIO | REQ_RAHEAD | REQ_FAILFAST_MASK)
#define PMC_WRITE_FLAGS	(REQ_FUA | REQ_SYNC | REQ_META | REQ_PRIO | REQ_IDLE)

static void pmc_promotion_free(struct pmc_promotion *p)
{
	while (p->nr_pages)
		__free_page(p->pages[--p->nr_pages]);
	kfree(p);
}

/* ---------------------------------------------------------------------------
 * Table arguments: one row per feature argument.
 */
struct pmc_feature {
	const char *name;
	unsigned int nr_values;
	int (*parse)(struct pmc_cache *c, char **values, char **error);
};

static int parse_u32(const char *s, u32 lo, u32 hi, u32 *out)
{
	u32 v;

	if (kstrtou32(s, 10, &v) || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int feat_block_size(struct pmc_cache *c, char **v, char **error)
{
	if (parse_u32(v[0], PMC_MIN_BLOCK_SIZE, PMC_MAX_BLOCK_SIZE, &c->block_size) ||
	    !is_power_of_2(c->block_size) || c->block_size > PAGE_SIZE) {
		*error = "block_size must be a power of two from 512 to 4096";
		return -EINVAL;
	}
	return 0;
}

static int feat_high_wm(struct pmc_cache *c, char **v, char **error)
{
	if (parse_u32(v[0], 0, 100, &c->high_wm)) {
		*error = "high_watermark must be a percentage";
		return -EINVAL;
	}
	return 0;
}

static int feat_low_wm(struct pmc_cache *c, char **v, char **error)
{
	if (parse_u32(v[0], 0, 100, &c->low_wm)) {
		*error = "low_watermark must be a percentage";
		return -EINVAL;
	}
	return 0;
}

static int feat_wb_jobs(struct pmc_cache *c, char **v, char **error)
{
	if (parse_u32(v[0], 1, 65536, &c->wb_jobs)) {
		*error = "writeback_jobs must be 1..65536";
		return -EINVAL;
	}
	return 0;
}

static int feat_max_age(struct pmc_cache *c, char **v, char **error)
{
	if (parse_u32(v[0], 0, 3600000, &c->max_age_ms)) {
		*error = "max_dirty_age must be 0..3600000 ms";
		return -EINVAL;
	}
	return 0;
}

static int feat_format(struct pmc_cache *c, char **v, char **error)
{
	c->action = PMC_ACT_FORMAT;
	return 0;
}

static int feat_mode(struct pmc_cache *c, char **v, char **error)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(pmc_mode_names); i++)
		if (!strcasecmp(v[0], pmc_mode_names[i])) {
			c->mode = i;
			return 0;
		}
	*error = "mode must be writeback, writethrough, writearound or passthrough";
	return -EINVAL;
}

static int feat_seq_cutoff(struct pmc_cache *c, char **v, char **error)
{
	if (kstrtou64(v[0], 10, &c->seq_cutoff)) {
		*error = "sequential_cutoff must be a number of bytes (0 disables)";
		return -EINVAL;
	}
	return 0;
}

static const char * const pmc_promote_names[] = {
	[PMC_PROMOTE_REUSE] = "reuse",
	[PMC_PROMOTE_ALWAYS] = "always",
	[PMC_PROMOTE_NEVER] = "never",
};

static int feat_promote(struct pmc_cache *c, char **v, char **error)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(pmc_promote_names); i++)
		if (!strcasecmp(v[0], pmc_promote_names[i])) {
			c->promote = i;
			return 0;
		}
	*error = "promote must be always, reuse or never";
	return -EINVAL;
}

static const struct pmc_feature pmc_features[] = {
	{ "sequential_cutoff",	1, feat_seq_cutoff },
	{ "promote",		1, feat_promote },
	{ "block_size",		1, feat_block_size },
	{ "high_watermark",	1, feat_high_wm },
	{ "low_watermark",	1, feat_low_wm },
	{ "writeback_jobs",	1, feat_wb_jobs },
	{ "max_dirty_age",	1, feat_max_age },
	{ "mode",		1, feat_mode },
	{ "format",		0, feat_format },
};

static int pmc_parse_features(struct pmc_cache *c, unsigned int argc, char **argv,
			      char **error)
{
	unsigned int i = 0, k, j;
	int r;

	c->feature_args = kcalloc(argc ? argc : 1, sizeof(char *), GFP_KERNEL);
	if (!c->feature_args) {
		*error = "out of memory";
		return -ENOMEM;
	}
	while (i < argc) {
		const struct pmc_feature *f = NULL;

		for (k = 0; k < ARRAY_SIZE(pmc_features); k++)
			if (!strcasecmp(argv[i], pmc_features[k].name))
				f = &pmc_features[k];
		if (!f) {
			DMERR("unknown feature argument \"%s\"", argv[i]);
			*error = "unknown feature argument";
			return -EINVAL;
		}
		if (i + f->nr_values > argc - 1) {
			*error = "feature argument is missing its value";
			return -EINVAL;
		}
		r = f->parse(c, &argv[i + 1], error);
		if (r)
			return r;
		for (j = 0; j <= f->nr_values; j++) {
			c->feature_args[c->nr_feature_args] = kstrdup(argv[i + j], GFP_KERNEL);
			if (!c->feature_args[c->nr_feature_args]) {
				*error = "out of memory";
				return -ENOMEM;
			}
			c->nr_feature_args++;
		}
		i += 1 + f->nr_values;
	}
	if (c->low_wm > c->high_wm) {
		*error = "low_watermark must not exceed high_watermark (defaults 45, 50)";
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------------------
 * Mapping the cache device.
 */

/* Does the disk list a bad block within @bdev (a partition: its range)? */
static bool pmc_has_bad_blocks(struct block_device *bdev)
{
	struct badblocks *bb = bdev->bd_disk->bb;
	sector_t s = get_start_sect(bdev), left = bdev_nr_sectors(bdev), first_bad;
	int len, bad_sectors;

	if (!bb || !READ_ONCE(bb->count))
		return false;
	/* badblocks_check() takes an int count: 2^30 sectors at a time. */
	for (; left; s += len, left -= len) {
		len = (int)min_t(sector_t, left, 1 << 30);
		if (badblocks_check(bb, s, len, &first_bad, &bad_sectors))
			return true;
	}
	return false;
}

/* DAX access to @pages pages of @dev from its start (a partition's too). */
static long pmc_dax_access(struct dm_dev *dev, long pages, void **kaddr, pfn_t *pfn)
{
	long got;
	int id;

	id = dax_read_lock();
	got = dax_direct_access(dev->dax_dev,
				get_start_sect(dev->bdev) >> (PAGE_SHIFT - SECTOR_SHIFT),
				pages, DAX_ACCESS, kaddr, pfn);
	dax_read_unlock(id);
	return got;
}

static int pmc_map_pmem(struct pmc_cache *c, char **error)
{
	struct block_device *bdev = c->cache_dev->bdev;
	long pages, got;
	pfn_t pfn;
	void *kaddr;

	c->dax_dev = c->cache_dev->dax_dev;
	if (!c->dax_dev) {
		*error = "cache device does not support DAX (use an fsdax pmem namespace)";
		return -EOPNOTSUPP;
	}
	if (!dax_synchronous(c->dax_dev)) {
		*error = "cache device DAX is not synchronous (CPU stores are not durable)";
		return -EOPNOTSUPP;
	}
	if (get_start_sect(bdev) & (PAGE_SIZE / SECTOR_SIZE - 1)) {
		*error = "cache partition is not page aligned";
		return -EINVAL;
	}
	c->pmem_size = bdev_nr_sectors(bdev) << SECTOR_SHIFT;
	pages = c->pmem_size >> PAGE_SHIFT;
	c->pmem_size = (u64)pages << PAGE_SHIFT;
	if (pages < 4) {
		*error = "cache device too small";
		return -EINVAL;
	}
	got = pmc_dax_access(c->cache_dev, pages, &kaddr, &pfn);
	if (got < 0) {
		/*
		 * pmem refuses to map a range that holds a bad block: the cache
		 * cannot be loaded until the blocks are cleared, which loses
		 * what they held (dm-writecache is refused alike).
		 */
		if (pmc_has_bad_blocks(bdev))
			*error = "cache device has bad blocks, which DAX does not map";
		else
			*error = "cannot map the cache device (dax_direct_access failed)";
		return got;
	}
	if (got < pages) {
		*error = "cache device is not one contiguous DAX mapping";
		return -EOPNOTSUPP;
	}
	if (!pfn_t_has_page(pfn)) {
		*error = "cache device has no struct pages (use fsdax mode with map=dev or mem)";
		return -EOPNOTSUPP;
	}
	c->pmem = kaddr;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Slot life cycle.
 */
static bool pmc_evictable(void *ctx, u32 slot)
{
	struct pmc_cache *c = ctx;

	return READ_ONCE(c->idx.slots[slot].state) == PMC_S_CLEAN;
}

/*
 * Evict one clean block; its slot, its record cleared and persistent, is
 * ours. @evicted (if not NULL): the block it held (whose stripe's
 * write_seq it bumped).
 */
static u32 pmc_evict_one(struct pmc_cache *c, u64 *evicted)
{
	int tries;

	for (tries = 0; tries < 16; tries++) {
		u32 slot = c->pops->evict_candidate(c->policy, pmc_evictable, c);
		struct pmc_stripe *st;
		u64 oblock;
		u32 stale;
		u8 s;

		if (slot == PMC_NO_SLOT)
			return PMC_NO_SLOT;
		oblock = pmc_key_oblock(READ_ONCE(c->idx.slots[slot].key));
		st = pmc_index_stripe(&c->idx, oblock);
		spin_lock(&st->lock);
		if (!pmc_index_holds(&c->idx, slot, oblock, &s) || s != PMC_S_CLEAN) {
			spin_unlock(&st->lock);
			continue;
		}
		pmc_index_remove(&c->idx, slot);
		c->idx.slots[slot].state = PMC_S_BUSY;
		/*
		 * A promotion planned before this copy's write (which it
		 * may have missed) must not install older data in its place.
		 */
		atomic_inc(&st->write_seq);
		/* Its next owner writes the key first: the clear must be durable. */
		stale = pmc_slot_rec_free(st, &c->meta, slot);
		spin_unlock(&st->lock);
		c->pops->remove(c->policy, slot);
		pmc_count(c, -1, 0);
		PMC_STAT_INC(c, evictions);
		pmc_slot_free(c, stale);
		/*
		 * A read of this copy failed while it was dirty, after
		 * writeback had checked it: clean now, its pmem is no place
		 * for new data. Freed, it is parked out of use.
		 */
		if (unlikely(atomic_read(&c->nr_poisoned)) && test_bit(slot, c->poisoned)) {
			pmc_slot_free(c, slot);
			continue;
		}
		if (evicted)
			*evicted = oblock;
		return slot;
	}
	return PMC_NO_SLOT;
}

/*
 * Exact sums, not the per-CPU approximations: those drift apart by up to
 * PMC_COUNTER_BATCH per CPU each, and a cache all dirty read as holding
 * clean blocks would send its writers round the loop below without sleep.
 */
static bool pmc_slot_available(struct pmc_cache *c)
{
	return pmc_alloc_nr_free(&c->alloc) || pmc_nr_used(c) > pmc_nr_dirty(c);
}

/* How long a write waits for a free slot while writeback fails, and no write of it lands. */
#define PMC_FAILING_WAIT	HZ

/*
 * A free slot for a write; waits for writeback when the cache is all dirty.
 * PMC_NO_SLOT when writeback to the origin keeps failing and nothing could
 * be freed, nor written to the origin, for a second: the write fails rather
 * than hang (and with it suspend and remove, which wait for it).
 */
static u32 pmc_get_slot(struct pmc_cache *c)
{
	unsigned int cpu = raw_smp_processor_id();
	u32 slot = pmc_alloc_take_spare(&c->alloc, cpu);
	unsigned long give_up = 0;
	int writes_seen = 0, fails_seen = 0;

	while (slot == PMC_NO_SLOT) {
		slot = pmc_alloc_get(&c->alloc, cpu);
		if (slot != PMC_NO_SLOT)
			break;
		slot = pmc_evict_one(c, NULL);
		if (slot != PMC_NO_SLOT)
			break;
		atomic_inc(&c->free_waiters);
		/*
		 * Counted as waiting (before it looks), a writer gets the slots
		 * freed from now on (pmc_slot_free); the ones other CPUs kept as
		 * spares before, it takes here (one kept while it counts, the
		 * next round).
		 */
		smp_mb__after_atomic();
		slot = pmc_alloc_take_any_spare(&c->alloc);
		if (slot != PMC_NO_SLOT) {
			atomic_dec(&c->free_waiters);
			break;
		}
		/*
		 * Failing writeback (its last landing had an error) fails the
		 * write once no writeback write has reached the origin for
		 * PMC_FAILING_WAIT: one that does is an origin working again,
		 * whose batch will land (it clears the flag), only later. Not
		 * once an origin flush failed since the writer last took heart:
		 * writes that reach an origin whose flushes fail free nothing,
		 * and would hold the writer for ever. (Writes that succeed
		 * beside failing ones free their blocks once flushed.)
		 */
		if (!READ_ONCE(c->wb_failing)) {
			give_up = 0;
		} else if (!give_up || (atomic_read(&c->wb_writes_ok) != writes_seen &&
					atomic_read(&c->wb_flush_failures) == fails_seen)) {
			give_up = jiffies + PMC_FAILING_WAIT;
			writes_seen = atomic_read(&c->wb_writes_ok);
			fails_seen = atomic_read(&c->wb_flush_failures);
		} else if (time_after(jiffies, give_up)) {
			atomic_dec(&c->free_waiters);
			DMERR_LIMIT("no free block, writeback fails: failing a write");
			return PMC_NO_SLOT;
		}
		pmc_wb_kick(c);
		wait_event_timeout(c->free_wait, pmc_slot_available(c), HZ / 10);
		atomic_dec(&c->free_waiters);
		/* Eviction scans on from where it stopped: others may run. */
		cond_resched();
	}
	c->idx.slots[slot].state = PMC_S_BUSY;
	return slot;
}

/*
 * Make @slot (data already in pmem) the current copy of @oblock, dirty or
 * clean, durably (pmc_slot_install), and tell the policy. @old: the copy it
 * replaces (PMC_NO_SLOT: none), as the caller looked it up. Called with the
 * stripe lock held. Returns the slot to free once the lock is dropped.
 */
static inline u32 pmc_install(struct pmc_cache *c, u32 slot, u64 oblock,
			      u32 old, const u64 *key_stored, bool dirty)
{
	s64 d_used = 0, d_dirty = 0;
	u32 to_free;

	to_free = pmc_slot_install(&c->idx, &c->meta, slot, oblock, &old,
				   key_stored, dirty, &d_used, &d_dirty);
	pmc_count(c, d_used, d_dirty);
	/*
	 * Under the lock: the replaced copy is the stripe's stale slot now,
	 * which the next commit in the stripe, on any CPU, frees. Its policy
	 * state must be gone before that slot can be reused.
	 */
	pmc_policy_installed(c->pops, c->policy, slot, oblock, old);
	return to_free;
}

/* ---------------------------------------------------------------------------
 * Copying between bios and pmem.
 */
static void pmc_bio_to_pmem(struct bio *bio, unsigned int bio_off, u8 *dst,
			    unsigned int len)
{
	struct bvec_iter start = bio->bi_iter, it;
	struct bio_vec bv;

	bio_advance_iter(bio, &start, bio_off);
	start.bi_size = len;
	__bio_for_each_segment(bv, bio, it, start) {
		void *p = bvec_kmap_local(&bv);

		pmc_pmem_copy(dst, p, bv.bv_len);
		kunmap_local(p);
		dst += bv.bv_len;
	}
}

static void pmc_iter_to_buf(struct bio *bio, struct bvec_iter start,
			    unsigned int bio_off, u8 *dst, unsigned int len)
{
	struct bvec_iter it;
	struct bio_vec bv;

	bio_advance_iter(bio, &start, bio_off);
	start.bi_size = len;
	__bio_for_each_segment(bv, bio, it, start) {
		memcpy_from_bvec(dst, &bv);
		dst += bv.bv_len;
	}
}

static int pmc_pmem_to_bio(struct bio *bio, unsigned int bio_off, const u8 *src,
			   unsigned int len)
{
	struct bvec_iter start = bio->bi_iter, it;
	struct bio_vec bv;
	int r = 0;

	bio_advance_iter(bio, &start, bio_off);
	start.bi_size = len;
	__bio_for_each_segment(bv, bio, it, start) {
		void *p = bvec_kmap_local(&bv);

		if (!r)
			r = pmc_pmem_read(p, src, bv.bv_len);
		kunmap_local(p);
		src += bv.bv_len;
	}
	return r;
}

/* ---------------------------------------------------------------------------
 * The I/O path.
 */

/* Byte range of block @oblock covered by the bio starting at @bio_off. */
struct pmc_chunk {
	u64 oblock;
	unsigned int bio_off;	/* bytes into the bio */
	unsigned int blk_off;	/* bytes into the block */
	unsigned int len;
};

static void pmc_chunk_first(struct pmc_cache *c, struct bio *bio,
			    unsigned int bio_off, struct pmc_chunk *ch)
{
	u64 pos = ((u64)bio->bi_iter.bi_sector << SECTOR_SHIFT) + bio_off;

	ch->oblock = pos >> c->block_shift;
	ch->bio_off = bio_off;
	ch->blk_off = pos & (c->block_size - 1);
	ch->len = min_t(unsigned int, c->block_size - ch->blk_off,
			bio->bi_iter.bi_size - bio_off);
}

static void pmc_remap_origin(struct pmc_cache *c, struct bio *bio)
{
	struct pmc_bio *pb = dm_per_bio_data(bio, sizeof(struct pmc_bio));

	pb->flags |= PMC_BIO_TO_ORIGIN;
	bio_set_dev(bio, c->origin_dev->bdev);
}

/* Finish the first @done bytes of @bio here; dm resubmits the rest. */
static int pmc_complete_prefix(struct bio *bio, unsigned int done, int err)
{
	if (done < bio->bi_iter.bi_size)
		dm_accept_partial_bio(bio, done >> SECTOR_SHIFT);
	if (err)
		bio->bi_status = errno_to_blk_status(err);
	bio_endio(bio);
	return DM_MAPIO_SUBMITTED;
}

/* A copy reads may use: in the hash and not a tombstone. Stripe lock held. */
static u32 pmc_lookup_live(struct pmc_cache *c, u64 oblock)
{
	u32 slot = pmc_index_lookup(&c->idx, oblock);

	if (slot != PMC_NO_SLOT && (c->idx.slots[slot].state & PMC_S_STALE))
		return PMC_NO_SLOT;
	return slot;
}

/*
 * Take the clean copy @slot out of the hash and clear its record, under
 * the lock of its stripe @st. The slot stays BUSY, for the caller to take
 * out of the policy and free. Returns a stale slot to free.
 */
static u32 pmc_unhash_clean(struct pmc_cache *c, struct pmc_stripe *st, u32 slot)
{
	pmc_index_remove(&c->idx, slot);
	c->idx.slots[slot].state = PMC_S_BUSY;
	return pmc_slot_rec_free(st, &c->meta, slot);
}

/*
 * A media error in the pmem of @slot, a copy seen under the stripe lock of
 * @st. A clean copy is dropped, durably, and true returned: the origin
 * holds its data, and the caller reads or merges there instead (as bcache
 * does). Its block is not reused while this table is loaded, in case the
 * error lasts; *@stale: a slot to free. A dirty copy is the only one: it is kept
 * (the caller fails the I/O), false.
 */
static bool pmc_drop_bad_clean(struct pmc_cache *c, struct pmc_stripe *st, u32 slot,
			       u32 *stale)
{
	if (c->idx.slots[slot].state != PMC_S_CLEAN)
		return false;
	/*
	 * As an eviction: a promotion planned before this copy's write
	 * (which it may have missed) must not install older data instead.
	 */
	atomic_inc(&st->write_seq);
	*stale = pmc_unhash_clean(c, st, slot);
	/* Under the lock, as pmc_invalidate_block does. */
	c->pops->remove(c->policy, slot);
	return true;
}

/* After pmc_drop_bad_clean returned true, out of the stripe lock. */
static void pmc_dropped_bad_clean(struct pmc_cache *c, u64 oblock, u32 stale)
{
	pmc_count(c, -1, 0);
	pmc_slot_free(c, stale);
	pmc_note_error(c);
	DMERR_LIMIT("media error in the clean copy of block %llu: dropped, the origin's data used",
		    oblock);
}

/*
 * Write one chunk into the cache. Returns 0 on success, -EAGAIN when the
 * chunk is a partial block that is not cached (the caller sends it to the
 * origin), or a negative errno.
 */
static int pmc_write_chunk(struct pmc_cache *c, struct bio *bio,
			   const struct pmc_chunk *ch, u8 *bounce)
{
	bool full = ch->len == c->block_size;
	struct pmc_stripe *st = pmc_index_stripe(&c->idx, ch->oblock);
	u32 slot, old, to_free;
	u64 key;
	int r;

	if (!full) {
		/* Cheap check first: partial writes to uncached blocks bypass. */
		spin_lock(&st->lock);
		old = pmc_lookup_live(c, ch->oblock);
		spin_unlock(&st->lock);
		if (old == PMC_NO_SLOT)
			return -EAGAIN;
		pmc_iter_to_buf(bio, bio->bi_iter, ch->bio_off, bounce + ch->blk_off,
				ch->len);
	}

	slot = pmc_get_slot(c);
	if (slot == PMC_NO_SLOT)
		return -EIO;
	if (full) {
		/*
		 * Data and key durable in one fence, before the lock: under it
		 * the commit then needs one fence, not two, and the lock is
		 * held that much shorter. The guess goes first: its index
		 * loads, cache misses often, overlap the copy.
		 */
		key = pmc_slot_next_key(&c->idx, ch->oblock);
		pmc_bio_to_pmem(bio, ch->bio_off, pmc_block_data(&c->meta, slot), ch->len);
		pmc_slot_stage(&c->meta, slot, key);
	}

	spin_lock(&st->lock);
	atomic_inc(&st->write_seq);
	old = pmc_index_lookup(&c->idx, ch->oblock);
	if (!full) {
		u8 *src;
		unsigned int tail = ch->blk_off + ch->len;

		if (old == PMC_NO_SLOT || (c->idx.slots[old].state & PMC_S_STALE)) {
			spin_unlock(&st->lock);
			c->idx.slots[slot].state = PMC_S_BUSY;
			pmc_slot_free(c, slot);
			return -EAGAIN;
		}
		/* Merge: old head, new middle, old tail, written out of place. */
		src = pmc_block_data(&c->meta, old);
		r = pmc_pmem_read(bounce, src, ch->blk_off);
		if (!r)
			r = pmc_pmem_read(bounce + tail, src + tail, c->block_size - tail);
		if (r) {
			u32 stale;
			bool dropped = pmc_drop_bad_clean(c, st, old, &stale);

			if (!dropped)
				pmc_slot_poisoned(c, old);
			spin_unlock(&st->lock);
			pmc_slot_free(c, slot);
			if (dropped) {
				/* Uncached now: the caller writes it to the origin. */
				pmc_dropped_bad_clean(c, ch->oblock, stale);
				return -EAGAIN;
			}
			/* The caller counts the error. */
			DMERR_LIMIT("media error reading dirty block %llu", ch->oblock);
			return r;
		}
		pmc_pmem_copy(pmc_block_data(&c->meta, slot), bounce, c->block_size);
	}
	if (old != PMC_NO_SLOT && !(c->idx.slots[old].state & PMC_S_STALE))
		PMC_STAT_INC(c, write_hits);
	else
		PMC_STAT_INC(c, write_misses);
	to_free = pmc_install(c, slot, ch->oblock, old, full ? &key : NULL, true);
	spin_unlock(&st->lock);
	pmc_slot_free(c, to_free);
	if (pmc_nr_dirty_approx(c) > c->high_limit)
		pmc_wb_kick(c);
	return 0;
}

/* Drop block @b from the cache, if it is there. */
static void pmc_invalidate_block(struct pmc_cache *c, u64 b)
{
	struct pmc_stripe *st = pmc_index_stripe(&c->idx, b);
	u32 slot, stale, to_free = PMC_NO_SLOT;
	u8 s;

	spin_lock(&st->lock);
	/*
	 * Cached or not: a promotion of the block's data from before the
	 * discard, planned already, must not install it afterwards.
	 */
	atomic_inc(&st->write_seq);
	slot = pmc_index_lookup(&c->idx, b);
	if (slot == PMC_NO_SLOT || (c->idx.slots[slot].state & PMC_S_STALE)) {
		spin_unlock(&st->lock);
		return;
	}
	s = c->idx.slots[slot].state;
	stale = pmc_slot_rec_free(st, &c->meta, slot);
	pmc_count(c, -1, (s & PMC_S_KIND_MASK) == PMC_S_DIRTY ? -1 : 0);
	if (s & PMC_S_WB) {
		/* Keep it in the hash as a tombstone until writeback ends. */
		c->idx.slots[slot].state = s | PMC_S_STALE;
	} else {
		pmc_index_remove(&c->idx, slot);
		c->idx.slots[slot].state = PMC_S_BUSY;
		to_free = slot;
	}
	/*
	 * Under the lock: a tombstone is freed by writeback's end, on
	 * another CPU, and its slot may be reused before a late remove()
	 * here would clear its new owner's policy state.
	 */
	c->pops->remove(c->policy, slot);
	spin_unlock(&st->lock);
	pmc_slot_free(c, to_free);
	pmc_slot_free(c, stale);
}

/*
 * Drop every cached block wholly inside [first, last]. A range larger than
 * the cache (mkfs discards a whole disk) is done by a walk over the slots,
 * not over the range: its length bounds the time either way. Blocks written
 * into the range meanwhile may stay, as with any write racing a discard.
 */
static void pmc_invalidate_range(struct pmc_cache *c, u64 first, u64 last)
{
	u64 b;
	u32 slot;

	if (last - first >= c->idx.nr_slots) {
		/* Promotions of uncached blocks planned before: see above. */
		for (slot = 0; slot <= c->idx.stripe_mask; slot++)
			atomic_inc(&c->idx.stripes[slot].write_seq);
		for (slot = 0; slot < c->idx.nr_slots; slot++) {
			b = pmc_key_oblock(READ_ONCE(c->idx.slots[slot].key));
			if (pmc_slot_kind(&c->idx, slot) != PMC_S_FREE && b >= first && b <= last)
				pmc_invalidate_block(c, b);
			if (!(slot & 4095))
				cond_resched();
		}
		return;
	}
	for (b = first; b <= last; b++) {
		pmc_invalidate_block(c, b);
		if (!(b & 4095))
			cond_resched();
	}
}

/*
 * A discard on its way to the origin counts as a write around the cache
 * (pmc_index_bypass) for every block it touches, its partial edge blocks
 * too: a read that misses meanwhile may read data the discard is about to
 * drop, and its promotion must not install it. Counted before the discard
 * invalidates any copy (a promotion checking in between would find no
 * count and no bump of its own stripe's write_seq yet); its end bumps
 * write_seq. A range of more blocks than there are counters counts each
 * counter once, and bumps every stripe at its end.
 */
static bool pmc_discard_wide(struct pmc_cache *c, const struct pmc_bio *pb)
{
	return pb->nr_blocks > c->idx.bypass_mask;
}

static void pmc_discard_start(struct pmc_cache *c, struct bio *bio, struct pmc_bio *pb)
{
	u64 first = bio->bi_iter.bi_sector >> c->sect_shift;
	u64 last = (bio_end_sector(bio) - 1) >> c->sect_shift;
	u32 i;

	pb->flags |= PMC_BIO_DISCARD;
	pb->first = first;
	pb->nr_blocks = (u32)min_t(u64, last - first + 1, U32_MAX);
	if (pmc_discard_wide(c, pb)) {
		for (i = 0; i <= c->idx.bypass_mask; i++)
			atomic_inc(&c->idx.bypass[i]);
	} else {
		for (i = 0; i < pb->nr_blocks; i++)
			atomic_inc(pmc_index_bypass(&c->idx, first + i));
	}
	/* Before the invalidation's stores: see pmc_promote_work's checks. */
	smp_mb__after_atomic();
}

/*
 * A write around the cache or a discard has landed on the origin: bump the
 * write_seq of its blocks (a promotion that read before must not install)
 * and drop its in-flight count, in that order: pmc_promote_work reads them
 * the other way round, so that it sees the count or the bump.
 */
static void pmc_bypass_end(struct pmc_cache *c, const struct pmc_bio *pb)
{
	u32 i;

	if ((pb->flags & PMC_BIO_DISCARD) && pmc_discard_wide(c, pb)) {
		for (i = 0; i <= c->idx.stripe_mask; i++)
			atomic_inc(&c->idx.stripes[i].write_seq);
		/* The bumps before the counts drop: see pmc_promote_work. */
		smp_mb__after_atomic();
		for (i = 0; i <= c->idx.bypass_mask; i++)
			atomic_dec(&c->idx.bypass[i]);
		return;
	}
	for (i = 0; i < pb->nr_blocks; i++) {
		atomic_inc(&pmc_index_stripe(&c->idx, pb->first + i)->write_seq);
		/* The bump before the count drops: see pmc_promote_work. */
		smp_mb__after_atomic();
		atomic_dec(pmc_index_bypass(&c->idx, pb->first + i));
	}
}

static int pmc_map_discard(struct pmc_cache *c, struct bio *bio, struct pmc_bio *pb)
{
	u64 start = (u64)bio->bi_iter.bi_sector << SECTOR_SHIFT;
	u64 end = start + bio->bi_iter.bi_size;
	u64 first = DIV_ROUND_UP(start, c->block_size);
	u64 last_excl = end >> c->block_shift;
	bool to_origin = bdev_max_discard_sectors(c->origin_dev->bdev) && bio->bi_iter.bi_size;

	if (to_origin)
		pmc_discard_start(c, bio, pb);
	if (first < last_excl)
		pmc_invalidate_range(c, first, last_excl - 1);
	if (to_origin) {
		pmc_remap_origin(c, bio);
		return DM_MAPIO_REMAPPED;
	}
	bio_endio(bio);
	return DM_MAPIO_SUBMITTED;
}

/*
 * Sequential stream detection, as bcache does it: a small table keyed by
 * the sector where a stream would continue. Races only make the estimate
 * approximate; no lock is taken.
 */
static bool pmc_sequential(struct pmc_cache *c, struct bio *bio)
{
	sector_t start = bio->bi_iter.bi_sector, end = bio_end_sector(bio);
	struct pmc_stream *s;
	u64 bytes = bio->bi_iter.bi_size;

	if (!c->seq_cutoff)
		return false;
	s = &c->streams[hash_64(start, PMC_STREAM_BITS)];
	if (READ_ONCE(s->next) == start)
		bytes += READ_ONCE(s->bytes);
	s = &c->streams[hash_64(end, PMC_STREAM_BITS)];
	/*
	 * The rest of a bio dm resubmits after a partial accept ends where
	 * its first part did: keep the count that part left, not restart it.
	 */
	if (READ_ONCE(s->next) == end)
		bytes = max_t(u64, bytes, READ_ONCE(s->bytes));
	WRITE_ONCE(s->next, end);
	WRITE_ONCE(s->bytes, bytes);
	return bytes > c->seq_cutoff;
}

/*
 * Should a missed block be brought into the cache? @have_free: a free slot
 * is there for it (the policy then admits it without a comparison).
 */
static bool pmc_admit(struct pmc_cache *c, u64 oblock, bool have_free)
{
	switch (c->promote) {
	case PMC_PROMOTE_ALWAYS:
		/* Its answer unused: the policy still learns (and ages) from misses. */
		c->pops->miss(c->policy, oblock, have_free);
		return true;
	case PMC_PROMOTE_NEVER:
		return false;
	default:
		return c->pops->miss(c->policy, oblock, have_free);
	}
}

/*
 * Bytes of @bio from its start to the end of the PMC_PROMOTE_MAX-th cache
 * block it touches: the most one promotion installs. A larger read miss
 * that may be promoted is split there (dm resubmits the rest, a miss of
 * its own), so that a 1 MiB read is cached as a 4 KiB one is. Not so a
 * writethrough write: its pieces, all in flight at once, would bump the
 * write_seq of each other's stripes, and each install would give way.
 */
static unsigned int pmc_promote_span(struct pmc_cache *c, struct bio *bio)
{
	u64 start = (u64)bio->bi_iter.bi_sector << SECTOR_SHIFT;
	u64 limit = round_down(start, c->block_size) +
		    ((u64)PMC_PROMOTE_MAX << c->block_shift);

	return min_t(u64, bio->bi_iter.bi_size, limit - start);
}

/*
 * Choose which full blocks of the origin I/O in @pb to install afterwards.
 * @snapshot: take the stripes' write_seq now (reads: before the origin
 * read is issued, so any write racing with it is noticed).
 */
static void pmc_plan_promotion(struct pmc_cache *c, struct bio *bio,
			       struct pmc_bio *pb, bool snapshot)
{
	u64 start = (u64)bio->bi_iter.bi_sector << SECTOR_SHIFT;
	u64 end = start + bio->bi_iter.bi_size;
	u64 first = DIV_ROUND_UP(start, c->block_size);
	u64 last_excl = end >> c->block_shift;
	/* One free slot admits one block, not all of the bio's. */
	u32 i, nr_free = pmc_alloc_nr_free(&c->alloc), admitted = 0;

	if (first >= last_excl || last_excl - first > PMC_PROMOTE_MAX)
		return;
	pb->promote = 0;
	for (i = 0; i < last_excl - first; i++) {
		if (!pmc_admit(c, first + i, admitted < nr_free))
			continue;
		admitted++;
		pb->promote |= 1u << i;
		if (snapshot)
			pb->seq[i] = atomic_read(&pmc_index_stripe(&c->idx, first + i)->write_seq);
	}
	if (pb->promote) {
		pb->flags |= PMC_BIO_PROMOTE;
		pb->promote_first = first;
	}
}

static void pmc_promote_work(struct work_struct *w);

/*
 * The promotion of the blocks @pb plans, with a buffer for all of @bio's
 * data; NULL when there is no memory for it now (no promotion then).
 */
static struct pmc_promotion *pmc_promotion_alloc(struct pmc_cache *c, struct bio *bio,
						 struct pmc_bio *pb)
{
	u64 start = (u64)bio->bi_iter.bi_sector << SECTOR_SHIFT;
	unsigned int head = offset_in_page(start);
	unsigned int nr_pages = DIV_ROUND_UP(head + bio->bi_iter.bi_size, PAGE_SIZE);
	struct pmc_promotion *p;

	pb->flags &= ~PMC_BIO_PROMOTE;
	if (WARN_ON_ONCE(nr_pages > PMC_PROMOTE_PAGES))
		return NULL;
	p = kmalloc(sizeof(*p), GFP_NOWAIT | __GFP_NOWARN);
	if (!p)
		return NULL;
	for (p->nr_pages = 0; p->nr_pages < nr_pages; p->nr_pages++) {
		p->pages[p->nr_pages] = alloc_page(GFP_NOWAIT | __GFP_NOWARN);
		if (!p->pages[p->nr_pages]) {
			pmc_promotion_free(p);
			return NULL;
		}
	}
	INIT_WORK(&p->work, pmc_promote_work);
	p->c = c;
	p->bio = bio;
	p->first = pb->promote_first;
	p->mask = pb->promote;
	p->data_off = head + (pb->promote_first << c->block_shift) - start;
	memcpy(p->seq, pb->seq, sizeof(p->seq));
	return p;
}

/* Block @i of @p's mask, in its page (lowmem: alloc_page without __GFP_HIGHMEM). */
static const u8 *pmc_promotion_block(const struct pmc_cache *c,
				     const struct pmc_promotion *p, unsigned int i)
{
	u32 at = p->data_off + (i << c->block_shift);

	return (const u8 *)page_address(p->pages[at >> PAGE_SHIFT]) + offset_in_page(at);
}

/* An origin bio for p->bio's range, over @p's buffer; NULL: none now. */
static struct bio *pmc_promotion_bio(struct pmc_cache *c, struct pmc_promotion *p,
				     blk_opf_t opf, bio_end_io_t *end_io)
{
	struct bio *bio = p->bio;
	unsigned int size = bio->bi_iter.bi_size, done = 0, i;
	unsigned int off = offset_in_page((u64)bio->bi_iter.bi_sector << SECTOR_SHIFT);
	struct bio *obio;

	obio = bio_alloc_bioset(c->origin_dev->bdev, p->nr_pages, opf, GFP_NOWAIT,
				&c->promote_bioset);
	if (!obio)
		return NULL;
	for (i = 0; i < p->nr_pages; i++) {
		unsigned int len = min_t(unsigned int, size - done, PAGE_SIZE - off);

		__bio_add_page(obio, p->pages[i], len, off);
		done += len;
		off = 0;
	}
	obio->bi_iter.bi_sector = bio->bi_iter.bi_sector;
	obio->bi_ioprio = bio->bi_ioprio;
	bio_clone_blkg_association(obio, bio);
	obio->bi_end_io = end_io;
	obio->bi_private = p;
	return obio;
}

/* The read of a miss has ended: hand its data to the bio, then install it. */
static void pmc_read_private_end(struct bio *rbio)
{
	struct pmc_promotion *p = rbio->bi_private;
	struct pmc_cache *c = p->c;
	struct bio *bio = p->bio;
	/* rbio's own iter has been advanced to its end: from its start. */
	struct bvec_iter src = { .bi_size = bio->bi_iter.bi_size };
	struct bvec_iter dst = bio->bi_iter;

	bio->bi_status = rbio->bi_status;
	if (!bio->bi_status)
		bio_copy_data_iter(bio, &dst, rbio, &src);
	bio_put(rbio);
	if (!bio->bi_status && READ_ONCE(c->running))
		queue_work(c->wq, &p->work);
	else
		pmc_promotion_free(p);
	bio_endio(bio);
}

/* A read miss to promote: through a buffer of our own. False: sent as it is. */
static bool pmc_read_private(struct pmc_cache *c, struct bio *bio, struct pmc_bio *pb)
{
	struct pmc_promotion *p = pmc_promotion_alloc(c, bio, pb);
	struct bio *rbio;

	if (!p)
		return false;
	rbio = pmc_promotion_bio(c, p, REQ_OP_READ | (bio->bi_opf & PMC_READ_FLAGS),
				 pmc_read_private_end);
	if (!rbio) {
		pmc_promotion_free(p);
		return false;
	}
	/* Origin errors are counted at the bio's end, as for a remapped one. */
	pb->flags |= PMC_BIO_TO_ORIGIN;
	submit_bio_noacct(rbio);
	return true;
}

/* The write to the origin has ended: end the bio (pmc_end_io installs). */
static void pmc_write_private_end(struct bio *wbio)
{
	struct pmc_promotion *p = wbio->bi_private;
	struct bio *bio = p->bio;

	bio->bi_status = wbio->bi_status;
	bio_put(wbio);
	bio_endio(bio);
}

/*
 * A writethrough write: its data copied into a buffer of our own first,
 * written to the origin from there, installed from there (pmc_end_io):
 * the origin and the clean copy hold the same bytes. False: sent as it is.
 */
static bool pmc_write_private(struct pmc_cache *c, struct bio *bio, struct pmc_bio *pb)
{
	struct pmc_promotion *p = pmc_promotion_alloc(c, bio, pb);
	struct bio *wbio;

	if (!p)
		return false;
	wbio = pmc_promotion_bio(c, p, REQ_OP_WRITE | (bio->bi_opf & PMC_WRITE_FLAGS),
				 pmc_write_private_end);
	if (!wbio) {
		pmc_promotion_free(p);
		return false;
	}
	bio_copy_data(wbio, bio);
	pb->pp = p;
	pb->flags |= PMC_BIO_TO_ORIGIN;
	submit_bio_noacct(wbio);
	return true;
}

static int pmc_map_read(struct pmc_cache *c, struct bio *bio, bool sequential)
{
	unsigned int off = 0, size = bio->bi_iter.bi_size, nr = 0, limit = size;
	struct pmc_bio *pb = dm_per_bio_data(bio, sizeof(struct pmc_bio));
	struct pmc_chunk ch;
	int err = 0;

again:
	/* Serve the cached prefix from pmem. */
	while (off < size) {
		struct pmc_stripe *st;
		u32 slot, stale;
		bool dropped;

		pmc_chunk_first(c, bio, off, &ch);
		st = pmc_index_stripe(&c->idx, ch.oblock);
		spin_lock(&st->lock);
		slot = pmc_lookup_live(c, ch.oblock);
		if (slot == PMC_NO_SLOT) {
			spin_unlock(&st->lock);
			break;
		}
		err = pmc_pmem_to_bio(bio, off, pmc_block_data(&c->meta, slot) + ch.blk_off,
				      ch.len);
		dropped = err && pmc_drop_bad_clean(c, st, slot, &stale);
		/* Under the lock: the copy, once replaced, is freed under it. */
		if (err && !dropped)
			pmc_slot_poisoned(c, slot);
		/*
		 * Under it too: evicted and reused meanwhile, the slot would
		 * give this block's frequency to the next one.
		 */
		if (!err)
			c->pops->hit(c->policy, slot);
		spin_unlock(&st->lock);
		if (dropped) {
			/* Uncached now: read from the origin below, or by the rest. */
			pmc_dropped_bad_clean(c, ch.oblock, stale);
			break;
		}
		if (err) {
			/* An error, no hit: the block's copy is not what it read. */
			pmc_note_error(c);
			DMERR_LIMIT("media error reading dirty block %llu", ch.oblock);
			return pmc_complete_prefix(bio, off + ch.len, err);
		}
		PMC_STAT_INC(c, read_hits);
		off += ch.len;
	}
	if (off)
		return pmc_complete_prefix(bio, off, 0);

	/* Not cached: send the uncached prefix to the origin. */
	if (!sequential && c->mode != PMC_MODE_PASSTHROUGH && c->promote != PMC_PROMOTE_NEVER)
		limit = pmc_promote_span(c, bio);
	while (off < limit) {
		struct pmc_stripe *st;
		bool cached;

		pmc_chunk_first(c, bio, off, &ch);
		st = pmc_index_stripe(&c->idx, ch.oblock);
		spin_lock(&st->lock);
		cached = pmc_lookup_live(c, ch.oblock) != PMC_NO_SLOT;
		spin_unlock(&st->lock);
		if (cached)
			break;
		off += ch.len;
		nr++;
	}
	/* Cached since the first loop looked: serve it from pmem after all. */
	if (!off && size)
		goto again;
	this_cpu_add(c->stats->read_misses, nr);
	if (off < size)
		dm_accept_partial_bio(bio, off >> SECTOR_SHIFT);
	if (sequential)
		PMC_STAT_INC(c, seq_bypass);
	else if (c->mode != PMC_MODE_PASSTHROUGH)
		pmc_plan_promotion(c, bio, pb, true);
	if ((pb->flags & PMC_BIO_PROMOTE) && pmc_read_private(c, bio, pb))
		return DM_MAPIO_SUBMITTED;
	pmc_remap_origin(c, bio);
	return DM_MAPIO_REMAPPED;
}

/*
 * Start a write of the blocks from the start of @bio to the origin: as far
 * as they are uncached or clean (clean copies are dropped first; dirty ones
 * must be overwritten in the cache, never around it). Returns the bytes
 * covered, 0 when the first block is dirty.
 */
static unsigned int pmc_origin_write_prefix(struct pmc_cache *c, struct bio *bio,
					    struct pmc_bio *pb, unsigned int max_bytes)
{
	unsigned int off = 0, size = min(bio->bi_iter.bi_size, max_bytes), nr = 0;
	struct pmc_chunk ch;

	while (off < size) {
		struct pmc_stripe *st;
		u32 slot, drop = PMC_NO_SLOT, stale = PMC_NO_SLOT;

		pmc_chunk_first(c, bio, off, &ch);
		st = pmc_index_stripe(&c->idx, ch.oblock);
		spin_lock(&st->lock);
		slot = pmc_index_lookup(&c->idx, ch.oblock);
		if (slot != PMC_NO_SLOT) {
			if (c->idx.slots[slot].state != PMC_S_CLEAN) {
				spin_unlock(&st->lock);
				break;
			}
			stale = pmc_unhash_clean(c, st, slot);
			drop = slot;
		}
		atomic_inc(&st->write_seq);
		atomic_inc(pmc_index_bypass(&c->idx, ch.oblock));
		spin_unlock(&st->lock);
		pmc_slot_free(c, stale);
		if (drop != PMC_NO_SLOT) {
			c->pops->remove(c->policy, drop);
			pmc_count(c, -1, 0);
			pmc_slot_free(c, drop);
			PMC_STAT_INC(c, write_hits);
		} else {
			PMC_STAT_INC(c, write_misses);
		}
		off += ch.len;
		nr++;
	}
	if (nr) {
		pb->flags |= PMC_BIO_ORIGIN_WRITE;
		pb->first = pmc_sector_to_oblock(c, bio->bi_iter.bi_sector);
		pb->nr_blocks = nr;
		if (off < bio->bi_iter.bi_size)
			dm_accept_partial_bio(bio, off >> SECTOR_SHIFT);
	}
	return off;
}

static int pmc_map_write(struct pmc_cache *c, struct bio *bio,
			 struct pmc_bio *pb, bool sequential)
{
	unsigned int off = 0, size = bio->bi_iter.bi_size;
	bool around = sequential || c->mode != PMC_MODE_WRITEBACK;
	struct pmc_chunk ch;
	u8 *bounce = NULL;
	int r = 0;

again:
	if (around) {
		off = pmc_origin_write_prefix(c, bio, pb, UINT_MAX);
		if (off) {
			if (sequential)
				PMC_STAT_INC(c, seq_bypass);
			else if (c->mode == PMC_MODE_WRITETHROUGH)
				pmc_plan_promotion(c, bio, pb, true);
			if ((pb->flags & PMC_BIO_PROMOTE) && pmc_write_private(c, bio, pb))
				return DM_MAPIO_SUBMITTED;
			pmc_remap_origin(c, bio);
			return DM_MAPIO_REMAPPED;
		}
	}

	while (off < size) {
		pmc_chunk_first(c, bio, off, &ch);
		/* GFP_NOIO from a mempool: waits for a block, never fails. */
		if (ch.len < c->block_size && !bounce)
			bounce = mempool_alloc(&c->bounce_pool, GFP_NOIO);
		r = pmc_write_chunk(c, bio, &ch, bounce);
		if (r)
			break;
		off += ch.len;
		/* Around the cache: only the dirty blocks go into it. */
		if (around)
			break;
	}
	if (bounce)
		mempool_free(bounce, &c->bounce_pool);
	bounce = NULL;	/* a retry (goto again) allocates its own */
	if (r == -EAGAIN) {
		if (off)
			return pmc_complete_prefix(bio, off, 0);
		/* A partial block that is not cached: write it to the origin. */
		if (!pmc_origin_write_prefix(c, bio, pb, ch.len)) {
			/*
			 * Cached again meanwhile (merge there), or a discarded
			 * block whose writeback is still in flight (wait for it).
			 */
			r = 0;
			usleep_range(1000, 2000);
			goto again;
		}
		pmc_remap_origin(c, bio);
		return DM_MAPIO_REMAPPED;
	}
	if (r) {
		pmc_note_error(c);
		return pmc_complete_prefix(bio, size, r);
	}
	return pmc_complete_prefix(bio, off, 0);
}

static int pmc_map(struct dm_target *ti, struct bio *bio)
{
	struct pmc_cache *c = ti->private;
	struct pmc_bio *pb = dm_per_bio_data(bio, sizeof(struct pmc_bio));

	pb->flags = 0;
	pb->pp = NULL;
	if (bio->bi_opf & REQ_PREFLUSH) {
		/*
		 * Cached writes are durable at completion; only writes that
		 * went to the origin need its flush, and none completed since
		 * the last origin flush: done here (a log's fsync, in
		 * writeback mode). dm sends flushes without data.
		 */
		u64 done = atomic64_read(&c->origin_writes_done);

		if (done == atomic64_read(&c->origin_writes_flushed)) {
			bio_endio(bio);
			return DM_MAPIO_SUBMITTED;
		}
		pb->flags |= PMC_BIO_FLUSH;
		pb->first = done;
		pmc_remap_origin(c, bio);
		return DM_MAPIO_REMAPPED;
	}
	switch (bio_op(bio)) {
	case REQ_OP_READ:
		return pmc_map_read(c, bio, pmc_sequential(c, bio));
	case REQ_OP_WRITE:
		/*
		 * Only the large writes of a stream bypass. A stream of small
		 * writes (a database log, a journal) is bound by the latency
		 * of each write, which the cache cuts; large writes are
		 * bound by bandwidth, which the origin has, and would only
		 * push the hot set out. Small writes are not even tracked:
		 * a stream is counted from its first large write.
		 */
		return pmc_map_write(c, bio, pb,
				     bio->bi_iter.bi_size >= PMC_SEQ_BYPASS_MIN_WRITE &&
				     pmc_sequential(c, bio));
	case REQ_OP_DISCARD:
		return pmc_map_discard(c, bio, pb);
	default:
		/*
		 * None arrive: write-zeroes and secure erase are not enabled
		 * (num_write_zeroes_bios and num_secure_erase_bios are 0).
		 * Sent to the origin around the cache, one would leave stale
		 * copies, or lose dirty data in its partial edge blocks.
		 */
		return DM_MAPIO_KILL;
	}
}

/*
 * A slot for a promotion: free or evicted, never waiting. @evicted: as
 * pmc_evict_one's, U64_MAX when the slot was free.
 */
static u32 pmc_try_get_slot(struct pmc_cache *c, u64 *evicted)
{
	u32 slot = pmc_alloc_get(&c->alloc, raw_smp_processor_id());

	*evicted = U64_MAX;
	/*
	 * A CPU's spare before a cached block: only writers take spares, and
	 * with none (writethrough, writearound) a freed slot parked as one
	 * would sit unused while promotions evict.
	 */
	if (slot == PMC_NO_SLOT)
		slot = pmc_alloc_take_any_spare(&c->alloc);
	if (slot == PMC_NO_SLOT)
		slot = pmc_evict_one(c, evicted);
	if (slot != PMC_NO_SLOT)
		c->idx.slots[slot].state = PMC_S_BUSY;
	return slot;
}

/* An origin flush issued after @done origin writes had completed is done. */
static void pmc_origin_flushed(struct pmc_cache *c, u64 done)
{
	s64 cur = atomic64_read(&c->origin_writes_flushed);

	while ((u64)cur < done) {
		s64 seen = atomic64_cmpxchg(&c->origin_writes_flushed, cur, done);

		if (seen == cur)
			break;
		cur = seen;
	}
}

#ifdef PMC_FAULT_INJECTION
/*
 * Test builds only (tests/vm/media-error): the next fail_origin_flushes
 * origin flushes fail without being sent. dm-flakey fails a flush only
 * together with the writes, never a flush alone after writes that landed.
 */
static int fail_origin_flushes;
module_param(fail_origin_flushes, int, 0600);
MODULE_PARM_DESC(fail_origin_flushes, "test build: fail this many of the next origin flushes");
#endif

static void pmc_origin_flush_endio(struct bio *bio)
{
	struct pmc_origin_flush_io *f = container_of(bio, struct pmc_origin_flush_io, bio);

	complete(&f->done);
}

/*
 * Issue an origin flush and return: writeback writes its next batch while
 * the flush for the last one runs. The bio is the caller's: nothing is
 * allocated, so writeback cannot wait here for a pool others hold.
 */
void pmc_origin_flush_start(struct pmc_cache *c, struct pmc_origin_flush_io *f)
{
	bio_init(&f->bio, c->origin_dev->bdev, NULL, 0, REQ_OP_WRITE | REQ_PREFLUSH);
	f->bio.bi_end_io = pmc_origin_flush_endio;
	init_completion(&f->done);
	f->covered = atomic64_read(&c->origin_writes_done);
#ifdef PMC_FAULT_INJECTION
	if (pmc_fault_take(&fail_origin_flushes)) {
		f->bio.bi_status = BLK_STS_IOERR;
		bio_endio(&f->bio);
		return;
	}
#endif
	submit_bio(&f->bio);
}

/*
 * Wait for a flush pmc_origin_flush_start issued. Once it succeeded, every
 * origin write that had completed when it was issued is durable, and later
 * flushes may skip: recorded here.
 */
int pmc_origin_flush_wait(struct pmc_cache *c, struct pmc_origin_flush_io *f)
{
	int r;

	wait_for_completion_io(&f->done);
	r = blk_status_to_errno(f->bio.bi_status);
	bio_uninit(&f->bio);
	if (!r)
		pmc_origin_flushed(c, f->covered);
	return r;
}

int pmc_origin_flush(struct pmc_cache *c)
{
	struct pmc_origin_flush_io f;

	pmc_origin_flush_start(c, &f);
	return pmc_origin_flush_wait(c, &f);
}

/*
 * Before a clean copy is made durable, the data it copies must be durable
 * on the origin: a writethrough write, or a read of a block that a write
 * around the cache put on the origin, may still sit in the origin's volatile
 * cache, and after a power cut the cache would serve data the origin lost
 * (until the copy is evicted, and the older data comes back). So flush the
 * origin first if any write through the target completed since the last
 * flush: one that completed before the flush was issued is covered, and the
 * write or read this promotion copies completed before its work was queued.
 * Promotions running at once share one flush. False if the flush failed.
 */
static bool pmc_promote_flush(struct pmc_cache *c)
{
	u64 done = atomic64_read(&c->origin_writes_done);
	bool ok = true;

	if (done == (u64)atomic64_read(&c->origin_writes_flushed))
		return true;
	mutex_lock(&c->promote_flush_mutex);
	/* A flush by another promotion may have covered @done meanwhile. */
	if ((u64)atomic64_read(&c->origin_writes_flushed) < done) {
		ok = !pmc_origin_flush(c);
		if (!ok) {
			/* A failed origin I/O, as any other: in errors and health. */
			pmc_note_error(c);
			DMERR_LIMIT("origin flush before a promotion failed");
		}
	}
	mutex_unlock(&c->promote_flush_mutex);
	return ok;
}

/*
 * Install the blocks of a finished origin read (or writethrough write) as
 * clean copies, unless a write to the block raced with it.
 */
static void pmc_promote_work(struct work_struct *w)
{
	struct pmc_promotion *p = container_of(w, struct pmc_promotion, work);
	struct pmc_cache *c = p->c;
	u32 mask = p->mask;

	if (!pmc_promote_flush(c))
		mask = 0;
	while (mask && READ_ONCE(c->running)) {
		unsigned int i = __ffs(mask);
		u64 oblock = p->first + i;
		struct pmc_stripe *st = pmc_index_stripe(&c->idx, oblock);
		u64 evicted;
		u32 slot, to_free;
		int bypassed;
		/* Installed only when no copy exists: the first generation. */
		u64 key = pmc_key_make(oblock, 0);

		mask &= mask - 1;
		/* Given way already (checked again below): no slot, no eviction for it. */
		if (atomic_read(pmc_index_bypass(&c->idx, oblock)) ||
		    atomic_read(&st->write_seq) != p->seq[i])
			continue;
		/*
		 * Nor when it is cached already (another read's promotion of
		 * it, queued beside this one): an eviction would lose a
		 * block for nothing.
		 */
		spin_lock(&st->lock);
		slot = pmc_index_lookup(&c->idx, oblock);
		spin_unlock(&st->lock);
		if (slot != PMC_NO_SLOT)
			continue;
		slot = pmc_try_get_slot(c, &evicted);
		if (slot == PMC_NO_SLOT)
			break;
		/*
		 * A copy of this very block, evicted for it: written after
		 * the read's lookup and before its write_seq snapshot, it may
		 * be newer than what the origin returned, and its eviction's
		 * bump is the one sign of it left.
		 */
		if (evicted == oblock) {
			pmc_slot_free(c, slot);
			continue;
		}
		/* Its own eviction's bump of this stripe is no racing write. */
		if (evicted != U64_MAX && pmc_index_stripe(&c->idx, evicted) == st)
			p->seq[i]++;
		pmc_pmem_copy(pmc_block_data(&c->meta, slot), pmc_promotion_block(c, p, i),
			      c->block_size);
		pmc_slot_stage(&c->meta, slot, key);
		spin_lock(&st->lock);
		/*
		 * The in-flight count before write_seq, in the order
		 * opposite to pmc_bypass_end's: a write around the cache that
		 * ends between the two reads is then seen by one of them.
		 */
		bypassed = atomic_read(pmc_index_bypass(&c->idx, oblock));
		/* Paired with pmc_bypass_end's smp_mb__after_atomic(). */
		smp_rmb();
		if (bypassed || atomic_read(&st->write_seq) != p->seq[i] ||
		    pmc_index_lookup(&c->idx, oblock) != PMC_NO_SLOT) {
			spin_unlock(&st->lock);
			pmc_slot_free(c, slot);
			continue;
		}
		to_free = pmc_install(c, slot, oblock, PMC_NO_SLOT, &key, false);
		spin_unlock(&st->lock);
		pmc_slot_free(c, to_free);
		PMC_STAT_INC(c, promotions);
	}
	pmc_promotion_free(p);
}

/*
 * How many times this origin write's completion bumped the write_seq of
 * @oblock's stripe (once for each of its blocks there). Any other bump
 * since the map, by a write mapped or completed meanwhile, cancels the
 * promotion: the origin may hold that write's data over this one's.
 */
static u32 pmc_own_completion_bumps(struct pmc_cache *c, const struct pmc_bio *pb,
				    u64 oblock)
{
	struct pmc_stripe *st = pmc_index_stripe(&c->idx, oblock);
	u32 i, n = 0;

	for (i = 0; i < pb->nr_blocks; i++)
		n += pmc_index_stripe(&c->idx, pb->first + i) == st;
	return n;
}

/* In the completion path (any context): queue the install of a written bio's data. */
static void pmc_queue_promotion(struct pmc_cache *c, struct pmc_bio *pb)
{
	struct pmc_promotion *p = pb->pp;
	u32 mask = p->mask;

	pb->pp = NULL;
	while (mask) {
		unsigned int i = __ffs(mask);

		mask &= mask - 1;
		p->seq[i] += pmc_own_completion_bumps(c, pb, p->first + i);
	}
	queue_work(c->wq, &p->work);
}

static int pmc_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *error)
{
	struct pmc_cache *c = ti->private;
	struct pmc_bio *pb = dm_per_bio_data(bio, sizeof(struct pmc_bio));

	/*
	 * Counted first: a promotion that sees this write's end below (its
	 * write_seq bump, its bypass count gone) must see it here too, or
	 * it could skip the origin flush its clean copy needs.
	 */
	if ((pb->flags & (PMC_BIO_TO_ORIGIN | PMC_BIO_FLUSH)) == PMC_BIO_TO_ORIGIN &&
	    op_is_write(bio_op(bio))) {
		atomic64_inc(&c->origin_writes_done);
		/* Ordered before the write_seq bump and bypass drop below. */
		smp_mb__after_atomic();
	}
	if (pb->flags & (PMC_BIO_ORIGIN_WRITE | PMC_BIO_DISCARD))
		pmc_bypass_end(c, pb);
	if (*error) {
		/*
		 * Errors of bios the target ended itself were counted in map.
		 * Readahead may fail without anything being wrong (an origin
		 * that is busy may drop it), and a discard the origin turned
		 * off meanwhile (sd after a failed UNMAP) is refused: no
		 * error of the cache's.
		 */
		bool refused_discard = bio_op(bio) == REQ_OP_DISCARD &&
				       (*error == BLK_STS_NOTSUPP || *error == BLK_STS_TARGET);

		if ((pb->flags & PMC_BIO_TO_ORIGIN) && !(bio->bi_opf & REQ_RAHEAD) &&
		    !refused_discard)
			pmc_note_error(c);
	} else if (pb->flags & PMC_BIO_FLUSH) {
		pmc_origin_flushed(c, pb->first);
	} else if (pb->pp && READ_ONCE(c->running)) {
		pmc_queue_promotion(c, pb);
	}
	/* Not installed: an error, or the device is being suspended. */
	if (pb->pp)
		pmc_promotion_free(pb->pp);
	return DM_ENDIO_DONE;
}

/* ---------------------------------------------------------------------------
 * Construction, loading and teardown.
 */
static void pmc_free_index(struct pmc_cache *c)
{
	if (c->policy)
		c->pops->destroy(c->policy);
	c->policy = NULL;
	pmc_alloc_exit(&c->alloc);
	pmc_index_exit(&c->idx);
	kvfree(c->poisoned);
	c->poisoned = NULL;
	c->idx_ready = false;
}

static int pmc_alloc_index(struct pmc_cache *c)
{
	u32 nr = (u32)c->meta.geo.nr_blocks;
	int r;

	r = pmc_index_init(&c->idx, nr);
	if (r)
		return r;
	c->poisoned = kvcalloc(BITS_TO_LONGS(nr), sizeof(unsigned long), GFP_KERNEL);
	if (!c->poisoned) {
		r = -ENOMEM;
		goto bad;
	}
	r = pmc_alloc_init(&c->alloc, &c->idx, PMC_ALLOC_REGIONS, nr_cpu_ids);
	if (r)
		goto bad;
	c->pops = &pmc_policy_default;
	c->policy = c->pops->create(nr);
	if (!c->policy) {
		r = -ENOMEM;
		goto bad;
	}
	c->idx_ready = true;
	return 0;
bad:
	pmc_free_index(c);
	return r;
}

static void pmc_recover_free(void *ctx, u32 slot)
{
	struct pmc_cache *c = ctx;

	c->idx.slots[slot].state = PMC_S_FREE;
	pmc_alloc_put(&c->alloc, slot);
}

/*
 * The caches of all loaded tables. A cache device serves one dm device (two
 * would hand out each other's blocks and rebind each other's records) and
 * an origin has one cache (two would each serve their own copy of a block).
 * Tables of the same dm device are no conflict: a reload's new table is
 * loaded while the old one runs, and they use the devices in turn.
 */
static DEFINE_MUTEX(pmc_devices_lock);
static LIST_HEAD(pmc_devices);

#define PMC_REFUSE_FORMAT \
	"the cache holds dirty blocks: flush them (dmsetup message <dev> 0 flush) before format"
#define PMC_REFUSE_REBIND \
	"cache holds dirty data of another origin (see the kernel log for which); refusing"
#define PMC_REFUSE_PASSTHROUGH \
	"the cache holds dirty blocks: run \"dmsetup message <dev> 0 flush\" before passthrough"
/* A flush cannot clear those: say what can. */
#define PMC_UNREADABLE_DIRTY \
	"%pg: %llu unreadable records count as dirty: see pmcache-tool check"
#define PMC_REFUSE_NEW_CACHE \
	"the table being replaced holds dirty blocks in its cache device: flush them before changing the cache device"

/* Where they are, and how to get them out (a table that never loaded cannot flush). */
static void pmc_say_stranded(dev_t held)
{
	DMERR("the dirty blocks are in cache device %u:%u: load a table on it, flush, then move",
	      MAJOR(held), MINOR(held));
	DMERR("(dmsetup remove forgets where they are)");
}

/*
 * Does @c's cache device hold a cache now (1, read into @now, its dirty
 * blocks counted into *@dirty; 2: one behind a superblock copy 0 another
 * user wrote over) or not (0)? -ENOMEM. In the device's own
 * geometry: c->meta has the new geometry of a format by the time of its
 * resume, and the old records are counted by the old one.
 */
static int pmc_dirty_now(struct pmc_cache *c, struct pmc_meta *now, u64 *dirty)
{
	unsigned int noio_flags;
	u64 unreadable;
	const char *why;
	int r;

	*dirty = 0;
	/* @now describes the cache behind an overwritten copy 0 too. */
	if (pmc_meta_probe(now, c->pmem, c->pmem_size, &why) != PMC_PROBE_VALID &&
	    why != pmc_why_copy0_overwritten)
		return 0;
	/*
	 * At resume the device is suspended (a reload): reclaim must not
	 * write through it while this allocates the index that counts.
	 */
	noio_flags = memalloc_noio_save();
	r = pmc_meta_count_dirty(now, dirty, &unreadable);
	memalloc_noio_restore(noio_flags);
	if (r) {
		DMERR("cannot allocate the index to count dirty blocks");
		return -ENOMEM;
	}
	if (unreadable)
		DMERR(PMC_UNREADABLE_DIRTY, c->cache_dev->bdev, unreadable);
	return why == pmc_why_copy0_overwritten ? 2 : 1;
}

/*
 * Format over a cache, a rebind to another origin and passthrough would
 * each lose or bypass dirty blocks: refused while the cache holds any, with
 * @refusal. Asked when the table is loaded (a clear error, and the live
 * table keeps running) and again at its first resume (pmc_load, by
 * c->dirty_refusal, set here), when the table it replaces, which may have
 * dirtied blocks since, is suspended.
 * @error: NULL at resume, where only the kernel log tells.
 */
static int pmc_refuse_dirty(struct pmc_cache *c, const char *refusal, char **error)
{
	char had[PMC_ORIGIN_UID_STR_LEN], has[PMC_ORIGIN_UID_STR_LEN];
	struct pmc_meta now;
	u64 dirty;
	int r;

	c->dirty_refusal = refusal;
	r = pmc_dirty_now(c, &now, &dirty);
	if (r < 0) {
		if (error)
			*error = "cannot allocate the index to count dirty blocks";
		return r;
	}
	if (!dirty)
		return 0;
	pmc_origin_uid_str(&now.origin_uid, had, sizeof(had));
	pmc_origin_uid_str(&c->origin_uid, has, sizeof(has));
	DMERR("cache holds %llu dirty (or unreadable) blocks of origin %s (%llu sectors%s%s)",
	      dirty, now.origin_name, now.origin_sectors, *had ? ", disk " : "", had);
	DMERR("table's origin %s (%llu sectors%s%s): %s", c->origin_name,
	      c->origin_sectors, *has ? ", disk " : "", has, refusal);
	if (error)
		*error = (char *)refusal;
	return -EBUSY;
}

static void pmc_note_seen(struct pmc_cache *c, enum pmc_probe_result res,
			  const struct pmc_meta *m)
{
	c->seen_probe = res;
	c->seen_sb_seq = m->sb_seq;
	memcpy(c->seen_uuid, m->uuid, sizeof(c->seen_uuid));
}

/* Does the cache device still hold what pmc_note_seen recorded? */
static bool pmc_cache_dev_unchanged(struct pmc_cache *c)
{
	struct pmc_meta now;
	enum pmc_probe_result res;
	const char *why;

	res = pmc_meta_probe(&now, c->pmem, c->pmem_size, &why);
	if (res != c->seen_probe)
		return false;
	return res != PMC_PROBE_VALID ||
	       (now.sb_seq == c->seen_sb_seq &&
		!memcmp(now.uuid, c->seen_uuid, sizeof(now.uuid)));
}

/* The origin of @c's table, as the superblock's is compared with it. */
static struct pmc_origin_id pmc_origin_of(const struct pmc_cache *c)
{
	struct pmc_origin_id oid = { c->origin_sectors, c->origin_name, c->origin_uid,
				     c->origin_uid_reportable };

	return oid;
}

/* Build the in-DRAM state from pmem: the first resume of this table. */
static int pmc_load(struct pmc_cache *c)
{
	struct pmc_origin_id oid = pmc_origin_of(c);
	struct pmc_recovery_stats st;
	u64 t0 = ktime_get_ns();
	u8 uuid[16];
	u32 slot;
	int r;

	if (!pmc_cache_dev_unchanged(c)) {
		DMERR("the cache device changed since this table was loaded: load it again");
		return -EBUSY;
	}
	if (c->dirty_refusal) {
		r = pmc_refuse_dirty(c, c->dirty_refusal, NULL);
		if (r) {
			c->refused_dirty = r == -EBUSY;
			return r;
		}
	}
	if (c->action == PMC_ACT_FORMAT) {
		get_random_bytes(uuid, sizeof(uuid));
		r = pmc_meta_format(&c->meta, c->pmem, c->pmem_size, c->block_size, &oid,
				    uuid, ktime_get_real_seconds());
		if (r)
			return r;
		c->wrote_records = true;
		DMINFO("%s: formatted %llu blocks of %u bytes for origin %s",
		       dm_device_name(dm_table_get_md(c->ti->table)),
		       c->meta.geo.nr_blocks, c->block_size, c->origin_name);
	} else if (c->action == PMC_ACT_REBIND) {
		pmc_meta_rebind(&c->meta, &oid, &c->idx);
		c->wrote_records = true;
		DMWARN("cache held only clean blocks of another origin: dropped them, now bound to %s",
		       c->origin_name);
	} else {
		char old_name[PMC_ORIGIN_NAME_LEN + 1], uid[PMC_ORIGIN_UID_STR_LEN];
		u64 old_sectors = c->meta.origin_sectors;
		u8 old_uid_len = c->meta.origin_uid.len;

		memcpy(old_name, c->meta.origin_name, sizeof(old_name));
		if (pmc_meta_update_origin(&c->meta, &oid)) {
			if (old_sectors != c->origin_sectors)
				DMINFO("origin %s grew from %llu to %llu sectors: recorded",
				       c->origin_name, old_sectors, c->origin_sectors);
			if (c->meta.origin_uid.len &&
			    (strcmp(old_name, c->meta.origin_name) || !old_uid_len)) {
				pmc_origin_uid_str(&c->meta.origin_uid, uid, sizeof(uid));
				DMINFO("origin %s (was %s) is disk %s: recorded", c->origin_name,
				       old_name, uid);
			}
		}
		if (old_uid_len && !c->origin_uid.len) {
			/* An NVMe disk under 6.1, for one: the name decides. */
			pmc_origin_uid_str(&c->meta.origin_uid, uid, sizeof(uid));
			DMWARN("origin %s reports no disk id (recorded: %s): bound by name",
			       c->origin_name, uid);
		}
	}
	/* A retry after a failure below must find what this load wrote. */
	pmc_note_seen(c, PMC_PROBE_VALID, &c->meta);
	r = pmc_meta_recover(&c->meta, &c->idx, c->origin_blocks, pmc_recover_free, c, &st);
	if (r)
		return r;
	for (slot = 0; slot < c->idx.nr_slots; slot++) {
		if (!(slot % PMC_RESCHED_EVERY))
			cond_resched();
		if (pmc_slot_kind(&c->idx, slot) != PMC_S_FREE)
			c->pops->insert(c->policy, slot, pmc_key_oblock(c->idx.slots[slot].key));
	}
	percpu_counter_set(&c->nr_used, st.used);
	percpu_counter_set(&c->nr_dirty, st.dirty);
	mutex_lock(&pmc_devices_lock);
	c->load_corrupt = st.corrupt + st.out_of_range;
	c->load_unreadable = st.unreadable;
	c->unreadable_records = st.unreadable;
	mutex_unlock(&pmc_devices_lock);
	if (st.corrupt + st.out_of_range) {
		WRITE_ONCE(c->health, PMC_HEALTH_DEGRADED);
		DMERR("%llu corrupt or out-of-range records dropped at load",
		      st.corrupt + st.out_of_range);
	}
	c->high_limit = div_u64(c->meta.geo.nr_blocks * c->high_wm, 100);
	c->action = PMC_ACT_LOAD;
	c->loaded = true;
	DMINFO("loaded %llu blocks (%llu dirty, %llu duplicates resolved) in %llu ms",
	       st.used, st.dirty, st.duplicates, (ktime_get_ns() - t0) / 1000000);
	return 0;
}

/* Decide, without changing pmem, what the first resume will do. */
static int pmc_probe(struct pmc_cache *c, char **error)
{
	struct pmc_origin_id oid = pmc_origin_of(c);
	char uid[PMC_ORIGIN_UID_STR_LEN];
	enum pmc_probe_result res;
	const char *why;
	int r;

	res = pmc_meta_probe(&c->meta, c->pmem, c->pmem_size, &why);
	pmc_note_seen(c, res, &c->meta);
	if (c->action == PMC_ACT_FORMAT) {
		/*
		 * Over anything but a cache with dirty blocks, one whose
		 * copy 0 another user wrote over too.
		 */
		if (res == PMC_PROBE_VALID || why == pmc_why_copy0_overwritten) {
			r = pmc_refuse_dirty(c, PMC_REFUSE_FORMAT, error);
			if (r)
				return r;
		}
		goto format;
	}
	switch (res) {
	case PMC_PROBE_BLANK:
		c->action = PMC_ACT_FORMAT;
		goto format;
	case PMC_PROBE_VALID:
		break;
	case PMC_PROBE_FOREIGN:
		/* A string constant of pmcache_meta.c, as ti->error wants. */
		*error = (char *)why;
		return -EINVAL;
	case PMC_PROBE_UNSUPPORTED:
		DMERR("cache device: %s", why);
		*error = "written by another dm-pmcache version: load it; format would lose data";
		return -EINVAL;
	default:
		/* Its dirty blocks, if any, cannot be counted: format would lose them. */
		DMERR("cache device: %s", why);
		*error = "cache superblock unusable; it may hold dirty blocks: pmcache-tool check";
		return -EINVAL;
	}
	/*
	 * No id now from a driver that reports them, one recorded: another
	 * disk, or this one for a while without it (no path up, a failed
	 * INQUIRY). Not rebound even when clean: rebound, the cache would
	 * lose the id it knows its disk by, and follow a name from then on.
	 */
	if (c->meta.origin_uid.len && c->origin_uid_reportable && !c->origin_uid.len) {
		pmc_origin_uid_str(&c->meta.origin_uid, uid, sizeof(uid));
		DMERR("origin %s reports no disk id now; the cache was made for disk %s",
		      c->origin_name, uid);
		*error = "the origin reports no disk id: retry once it does (or, clean, format)";
		return -EINVAL;
	}
	if (!pmc_meta_origin_matches(&c->meta, &oid)) {
		r = pmc_refuse_dirty(c, PMC_REFUSE_REBIND, error);
		if (r)
			return r == -EBUSY ? -EINVAL : r;
		c->action = PMC_ACT_REBIND;
	} else if (c->mode == PMC_MODE_PASSTHROUGH) {
		return pmc_refuse_dirty(c, PMC_REFUSE_PASSTHROUGH, error);
	}
	return 0;
format:
	if (pmc_geometry_compute(c->pmem_size, c->block_size, &c->meta.geo)) {
		*error = "cache device too small";
		return -ENOSPC;
	}
	return 0;
}

/*
 * The unique id the origin's disk reports, when it reports one (SCSI disks
 * with a VPD page 0x83 designator, NVMe namespaces): unlike the kernel's
 * name for the disk, it stays the same across reboots and moves with it.
 */
/* Returns whether the disk's driver reports ids at all (it may not now). */
static bool pmc_origin_disk_uid(struct block_device *bdev, struct pmc_origin_uid *uid)
{
	static const enum blk_unique_id types[] = { BLK_UID_NAA, BLK_UID_EUI64, BLK_UID_T10 };
	const struct block_device_operations *fops = bdev->bd_disk->fops;
	unsigned int i;
	int len;

	BUILD_BUG_ON(BLK_UID_T10 != PMC_UID_T10 || BLK_UID_EUI64 != PMC_UID_EUI64 ||
		     BLK_UID_NAA != PMC_UID_NAA);
	memset(uid, 0, sizeof(*uid));
	if (!fops->get_unique_id)
		return false;
	for (i = 0; i < ARRAY_SIZE(types); i++) {
		len = fops->get_unique_id(bdev->bd_disk, uid->id, types[i]);
		if (len > 0 && len <= PMC_ORIGIN_UID_LEN) {
			uid->type = types[i];
			uid->len = len;
			uid->start = get_start_sect(bdev);
			return true;
		}
	}
	memset(uid, 0, sizeof(*uid));
	return true;
}

/*
 * The name the superblock binds the cache to: for a device-mapper origin
 * (LVM and the like) its dm name, which survives reboots where dm-N does
 * not; otherwise the kernel's disk name, and the disk's unique id if it
 * has one (pmc_meta_origin_matches).
 */
static void pmc_origin_identity(struct pmc_cache *c)
{
	struct block_device *bdev = c->origin_dev->bdev;
	struct mapped_device *md = dm_get_md(bdev->bd_dev);
	char name[DM_NAME_LEN];
	int r = -ENODEV;

	memset(&c->origin_uid, 0, sizeof(c->origin_uid));
	c->origin_uid_reportable = false;
	if (md) {
		r = dm_copy_name_and_uuid(md, name, NULL);
		dm_put(md);
	} else {
		c->origin_uid_reportable = pmc_origin_disk_uid(bdev, &c->origin_uid);
	}
	if (!r)
		pmc_origin_dm_name(name, c->origin_name, sizeof(c->origin_name));
	else
		snprintf(c->origin_name, sizeof(c->origin_name), "%pg", bdev);
}

/*
 * Would resuming @c leave dirty blocks behind in another cache device than
 * its own: in the one of the table it replaces (the origin would read
 * without them, and attaching that cache again later would write them
 * back over newer data), or in one where a table replaced before left
 * them (strands_dev)? That device, or 0. Under pmc_devices_lock.
 */
static dev_t pmc_strands_dirty(struct pmc_cache *c)
{
	struct mapped_device *md = dm_table_get_md(c->ti->table);
	dev_t own = c->cache_dev->bdev->bd_dev;
	struct pmc_cache *o;

	lockdep_assert_held(&pmc_devices_lock);
	if (c->strands_dev && c->strands_dev != own)
		return c->strands_dev;
	list_for_each_entry(o, &pmc_devices, devices_node) {
		if (o == c || dm_table_get_md(o->ti->table) != md)
			continue;
		if (o->loaded && o->cache_dev->bdev->bd_dev != own &&
		    (pmc_nr_dirty(o) > 0 || o->unreadable_records)) {
			if (o->unreadable_records)
				DMERR(PMC_UNREADABLE_DIRTY, o->cache_dev->bdev,
				      o->unreadable_records);
			return o->cache_dev->bdev->bd_dev;
		}
		if (o->strands_dev && o->strands_dev != own)
			return o->strands_dev;
	}
	return 0;
}

/*
 * @c, resuming, replaces a table that used another cache device, clean
 * there (pmc_strands_dirty): from the first write through @c that
 * device's copies are stale, and a later table on it would serve them.
 * Make it blank (its clean copies are all it loses, should @c's load
 * fail). Under pmc_devices_lock; the replaced table is suspended.
 * A replaced table that never loaded (its first resume failed) knows
 * nothing of its device: what the device holds is counted here, and dirty
 * blocks there refuse @c (-EBUSY), as a loaded table's do.
 */
static int pmc_drop_replaced_cache(struct pmc_cache *c)
{
	struct mapped_device *md = dm_table_get_md(c->ti->table);
	struct pmc_meta now;
	struct pmc_cache *o;
	u64 dirty;
	int r;

	lockdep_assert_held(&pmc_devices_lock);
	list_for_each_entry(o, &pmc_devices, devices_node) {
		/* Not a table a dmsetup load is building alongside. */
		if (o == c || dm_table_get_md(o->ti->table) != md ||
		    o->cache_dev->bdev == c->cache_dev->bdev || !o->preresumed)
			continue;
		if (o->loaded) {
			pmc_meta_invalidate(&o->meta, o->pmem_size);
		} else {
			r = pmc_dirty_now(o, &now, &dirty);
			if (r <= 0) {
				if (r)
					return r;
				continue;	/* no cache there */
			}
			/* Another user's now, but for the dirty blocks it hides. */
			if (r == 2 && !dirty)
				continue;
			if (dirty) {
				DMERR("%pg holds %llu dirty blocks of the table this one replaces",
				      o->cache_dev->bdev, dirty);
				c->strands_dev = o->cache_dev->bdev->bd_dev;
				return -EBUSY;
			}
			pmc_meta_invalidate(&now, o->pmem_size);
		}
		DMINFO("%s: the cache device %pg it leaves is blank now (its copies go stale)",
		       dm_device_name(md), o->cache_dev->bdev);
	}
	return 0;
}

/* An origin on pmem: where DAX maps it, as far as one mapping goes. */
static void pmc_map_origin_pmem(struct pmc_cache *c)
{
	struct dm_dev *dev = c->origin_dev;
	long pages = bdev_nr_sectors(dev->bdev) >> (PAGE_SHIFT - SECTOR_SHIFT), got;
	void *kaddr;

	if (!dev->dax_dev || pages <= 0 ||
	    (get_start_sect(dev->bdev) & (PAGE_SIZE / SECTOR_SIZE - 1)))
		return;
	got = pmc_dax_access(dev, pages, &kaddr, NULL);
	if (got > 0) {
		c->origin_pmem_size = (u64)got << PAGE_SHIFT;
		WRITE_ONCE(c->origin_pmem, kaddr);
	}
}

static bool pmc_ranges_meet(const u8 *a, u64 a_len, const u8 *b, u64 b_len)
{
	return a && b && a < b + b_len && b < a + a_len;
}

/*
 * Does @c's pmem, now mapped, overlap another table's through another
 * device (an LV or a partition over the same pmem; DAX maps both to the
 * same memory), or an origin's on pmem, its own too? The checks by device
 * cannot see that, and writes would land in a cache's records and blocks
 * (or a move blank the one it takes).
 */
static int pmc_pmem_shared(struct pmc_cache *c, char **error)
{
	struct pmc_cache *o;
	int r = 0;

	pmc_map_origin_pmem(c);
	if (pmc_ranges_meet(c->pmem, c->pmem_size, c->origin_pmem, c->origin_pmem_size)) {
		*error = "the origin shares pmem with the cache device";
		return -EINVAL;
	}
	mutex_lock(&pmc_devices_lock);
	list_for_each_entry(o, &pmc_devices, devices_node) {
		if (o == c)
			continue;
		if (o->cache_dev->bdev != c->cache_dev->bdev &&
		    pmc_ranges_meet(c->pmem, c->pmem_size, READ_ONCE(o->pmem), o->pmem_size)) {
			*error = "the cache device shares pmem with another pmcache device's";
			r = -EBUSY;
			break;
		}
		if (pmc_ranges_meet(c->pmem, c->pmem_size, READ_ONCE(o->origin_pmem),
				    o->origin_pmem_size) ||
		    pmc_ranges_meet(c->origin_pmem, c->origin_pmem_size, READ_ONCE(o->pmem),
				    o->pmem_size)) {
			*error = "cache device or origin shares pmem with another pmcache device";
			r = -EBUSY;
			break;
		}
	}
	mutex_unlock(&pmc_devices_lock);
	return r;
}

static int pmc_register(struct pmc_cache *c, char **error)
{
	struct mapped_device *md = dm_table_get_md(c->ti->table);
	struct pmc_cache *o;
	dev_t held;
	int r = 0;

	mutex_lock(&pmc_devices_lock);
	held = pmc_strands_dirty(c);
	if (held) {
		pmc_say_stranded(held);
		*error = PMC_REFUSE_NEW_CACHE;
		mutex_unlock(&pmc_devices_lock);
		return -EBUSY;
	}
	list_for_each_entry(o, &pmc_devices, devices_node) {
		/*
		 * One table's cache device, another's origin: writes to the
		 * origin would land in the cache under it. Its own device's
		 * too: a reload onto another cache device blanks the one it
		 * leaves (pmc_drop_replaced_cache), here the new origin.
		 */
		if (o->cache_dev->bdev == c->origin_dev->bdev) {
			*error = "the origin is the cache device of a pmcache device";
			r = -EBUSY;
			break;
		}
		if (o->origin_dev->bdev == c->cache_dev->bdev) {
			*error = "the cache device is the origin of a pmcache device";
			r = -EBUSY;
			break;
		}
		if (dm_table_get_md(o->ti->table) == md)
			continue;
		if (o->cache_dev->bdev == c->cache_dev->bdev) {
			*error = "the cache device is in use by another pmcache device";
			r = -EBUSY;
			break;
		}
		if (o->origin_dev->bdev == c->origin_dev->bdev) {
			*error = "the origin is cached by another pmcache device already";
			r = -EBUSY;
			break;
		}
	}
	if (!r) {
		list_add(&c->devices_node, &pmc_devices);
		c->registered = true;
	}
	mutex_unlock(&pmc_devices_lock);
	return r;
}

/* struct pmc_stats is counters only: summed and subtracted as u64 arrays. */
#define PMC_NR_STATS (sizeof(struct pmc_stats) / sizeof(u64))

static void pmc_sum_stats(struct pmc_cache *c, struct pmc_stats *sum)
{
	u64 *total = (u64 *)sum;
	unsigned int i;
	int cpu;

	BUILD_BUG_ON(sizeof(struct pmc_stats) % sizeof(u64));
	memset(sum, 0, sizeof(*sum));
	for_each_possible_cpu(cpu) {
		const u64 *v = (const u64 *)per_cpu_ptr(c->stats, cpu);

		for (i = 0; i < PMC_NR_STATS; i++)
			total[i] += v[i];
	}
}

/*
 * The counters since the last clear_stats (which keeps their sums then as
 * the base, rather than zeroing per-CPU counters other CPUs increment);
 * errors include those of the tables a reload replaced, and the records
 * dropped at load.
 */
static void pmc_read_stats(struct pmc_cache *c, struct pmc_stats *s)
{
	const u64 *base = (const u64 *)&c->stats_base;
	u64 *v = (u64 *)s;
	unsigned int i;

	lockdep_assert_held(&pmc_devices_lock);
	pmc_sum_stats(c, s);
	for (i = 0; i < PMC_NR_STATS; i++)
		v[i] -= base[i];
	s->errors += c->inherited_errors + c->load_corrupt;
}

/*
 * A table goes: hand its health and errors to the other table of its dm
 * device, the one a reload put in its place, so that a reload (to change
 * a watermark, say) does not make a degraded cache look healthy; and, if
 * it leaves dirty blocks in a cache device the other does not use, make
 * the other's resume keep refusing. Called under pmc_devices_lock, after
 * @c left the list.
 */
static void pmc_hand_over_health(struct pmc_cache *c)
{
	struct mapped_device *md = dm_table_get_md(c->ti->table);
	struct pmc_cache *o, *live = NULL, *any = NULL;
	struct pmc_stats s;

	lockdep_assert_held(&pmc_devices_lock);
	/*
	 * To the live table: the one resumed (dm resumes the table that
	 * replaces @c before it destroys @c), not one a dmsetup load is
	 * building meanwhile. Else (none resumed yet) to the newest.
	 */
	list_for_each_entry(o, &pmc_devices, devices_node) {
		if (dm_table_get_md(o->ti->table) != md)
			continue;
		any = any ?: o;
		if (o->preresumed)
			live = live ?: o;
	}
	o = live ?: any;
	if (o) {
		pmc_read_stats(c, &s);
		/*
		 * @o's load finds the unreadable records again, and counts
		 * them, on the same cache device (unless it formats it or
		 * rebinds it, blanking the records: action is LOAD again
		 * once the load is done); not on another.
		 */
		o->inherited_errors += s.errors;
		if (o->cache_dev->bdev == c->cache_dev->bdev && o->action == PMC_ACT_LOAD &&
		    !o->wrote_records)
			o->inherited_errors -= c->load_unreadable;
		if (READ_ONCE(c->health) != PMC_HEALTH_OK)
			WRITE_ONCE(o->health, PMC_HEALTH_DEGRADED);
		/*
		 * Its first resume was refused for these: so is every other,
		 * and every table's after it, until one uses that device.
		 */
		/*
		 * On its own device too: should its first resume fail, the
		 * dirty blocks are in no loaded table, and a table after it
		 * on another device must still be refused (pmc_strands_dirty
		 * ignores the device a table uses).
		 */
		if (!o->loaded) {
			if (c->loaded && pmc_nr_dirty(c) > 0)
				o->strands_dev = c->cache_dev->bdev->bd_dev;
			else if (c->strands_dev && c->strands_dev != o->cache_dev->bdev->bd_dev)
				o->strands_dev = c->strands_dev;
		}
	}
}

static void pmc_dtr(struct dm_target *ti)
{
	struct pmc_cache *c = ti->private;
	unsigned int i;

	if (!c)
		return;
	if (c->registered) {
		mutex_lock(&pmc_devices_lock);
		list_del(&c->devices_node);
		pmc_hand_over_health(c);
		mutex_unlock(&pmc_devices_lock);
	}
	if (c->wq) {
		cancel_delayed_work_sync(&c->age_work);
		cancel_delayed_work_sync(&c->wb_retry_work);
		destroy_workqueue(c->wq);
	}
	pmc_wb_exit(c);
	mempool_exit(&c->bounce_pool);
	bioset_exit(&c->promote_bioset);
	pmc_free_index(c);
	if (c->cache_dev)
		dm_put_device(ti, c->cache_dev);
	if (c->origin_dev)
		dm_put_device(ti, c->origin_dev);
	if (c->feature_args) {
		for (i = 0; i < c->nr_feature_args; i++)
			kfree(c->feature_args[i]);
		kfree(c->feature_args);
	}
	percpu_counter_destroy(&c->nr_used);
	percpu_counter_destroy(&c->nr_dirty);
	free_percpu(c->stats);
	kfree(c);
	ti->private = NULL;
}

static int pmc_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct pmc_cache *c;
	unsigned int nr_feat;
	u32 user_block_size;
	bool block_size_set;
	unsigned int i;
	int r;

	if (argc < 3) {
		ti->error = "expected <cache_dev> <origin_dev> <#feature args> [args...]";
		return -EINVAL;
	}
	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c) {
		ti->error = "out of memory";
		return -ENOMEM;
	}
	ti->private = c;
	c->ti = ti;
	/* The table this one replaces may have left origin writes unflushed. */
	atomic64_set(&c->origin_writes_done, 1);
	c->block_size = PMC_DEFAULT_BLOCK_SIZE;
	c->high_wm = PMC_DEFAULT_HIGH_WM;
	c->low_wm = PMC_DEFAULT_LOW_WM;
	c->wb_jobs = PMC_DEFAULT_WB_JOBS;
	c->max_age_ms = PMC_DEFAULT_MAX_AGE_MS;
	c->mode = PMC_MODE_WRITEBACK;
	c->seq_cutoff = PMC_DEFAULT_SEQ_CUTOFF;
	c->promote = PMC_PROMOTE_REUSE;
	c->action = PMC_ACT_LOAD;
	atomic_set(&c->wb_inflight, 0);
	atomic_set(&c->free_waiters, 0);
	atomic_set(&c->flush_requests, 0);
	atomic_set(&c->flush_rounds, 0);
	atomic_set(&c->wb_errors, 0);
	atomic_set(&c->wb_writes_ok, 0);
	atomic_set(&c->wb_flush_failures, 0);
	init_waitqueue_head(&c->free_wait);
	init_waitqueue_head(&c->clean_wait);
	mutex_init(&c->wb_mutex);
	mutex_init(&c->promote_flush_mutex);
	mutex_init(&c->flush_mutex);
	INIT_WORK(&c->wb_work, pmc_wb_work);
	INIT_DELAYED_WORK(&c->age_work, pmc_age_work);
	INIT_DELAYED_WORK(&c->wb_retry_work, pmc_wb_retry_work);

	c->stats = alloc_percpu(struct pmc_stats);
	if (!c->stats || percpu_counter_init(&c->nr_used, 0, GFP_KERNEL) ||
	    percpu_counter_init(&c->nr_dirty, 0, GFP_KERNEL)) {
		ti->error = "out of memory";
		r = -ENOMEM;
		goto bad;
	}

	if (kstrtouint(argv[2], 10, &nr_feat) || nr_feat > argc - 3) {
		ti->error = "invalid number of feature arguments";
		r = -EINVAL;
		goto bad;
	}
	if (nr_feat != argc - 3) {
		ti->error = "too many arguments";
		r = -EINVAL;
		goto bad;
	}
	r = pmc_parse_features(c, nr_feat, argv + 3, &ti->error);
	if (r)
		goto bad;
	user_block_size = c->block_size;
	block_size_set = false;
	for (i = 0; i < c->nr_feature_args; i++)
		if (!strcasecmp(c->feature_args[i], "block_size"))
			block_size_set = true;

	/*
	 * Even its first resume may write pmem (format, recovery) and its
	 * writeback writes the origin, which a read-only open would not stop.
	 */
	if (!(dm_table_get_mode(ti->table) & PMC_OPEN_WRITE)) {
		ti->error = "read-only tables are not supported: the cache writes pmem and origin";
		r = -EINVAL;
		goto bad;
	}
	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table), &c->cache_dev);
	if (r) {
		ti->error = "cannot open the cache device";
		goto bad;
	}
	r = dm_get_device(ti, argv[1], dm_table_get_mode(ti->table), &c->origin_dev);
	if (r) {
		ti->error = "cannot open the origin device";
		goto bad;
	}
	if (c->cache_dev->bdev == c->origin_dev->bdev) {
		ti->error = "cache and origin are the same device";
		r = -EINVAL;
		goto bad;
	}
	c->origin_sectors = bdev_nr_sectors(c->origin_dev->bdev);
	if (ti->len > c->origin_sectors || ti->begin) {
		ti->error = "the target must start at 0 and not exceed the origin";
		r = -EINVAL;
		goto bad;
	}
	pmc_origin_identity(c);
	r = pmc_register(c, &ti->error);
	if (r)
		goto bad;

	r = pmc_map_pmem(c, &ti->error);
	if (r)
		goto bad;
	r = pmc_pmem_shared(c, &ti->error);
	if (r)
		goto bad;
	r = pmc_probe(c, &ti->error);
	if (r)
		goto bad;
	if (c->action != PMC_ACT_FORMAT) {
		if (block_size_set && user_block_size != c->meta.geo.block_size) {
			ti->error = "block_size differs from the one the cache was formatted with; pass format to change it";
			r = -EINVAL;
			goto bad;
		}
		c->block_size = c->meta.geo.block_size;
	}
	/* Writeback writes whole blocks: the origin must take them. */
	if (c->block_size < bdev_logical_block_size(c->origin_dev->bdev)) {
		ti->error = c->action == PMC_ACT_FORMAT ?
			"block_size is smaller than the origin's logical block size" :
			"the cache's block_size is smaller than the origin's logical block size";
		r = -EINVAL;
		goto bad;
	}
	c->block_shift = ilog2(c->block_size);
	c->sect_shift = c->block_shift - SECTOR_SHIFT;
	/*
	 * Whole blocks: a partial block at the origin's end (a partition of
	 * an odd size) is never cached, as a partial block that is not
	 * cached is not: its I/O goes to the origin.
	 */
	c->origin_blocks = c->origin_sectors >> c->sect_shift;
	/* A record's key holds the block number in PMC_OBLOCK_BITS bits. */
	if (c->origin_blocks > PMC_OBLOCK_MASK + 1) {
		ti->error = "origin too large: at most 2^48 blocks";
		r = -EINVAL;
		goto bad;
	}

	r = pmc_alloc_index(c);
	if (r) {
		ti->error = "cannot allocate the index";
		goto bad;
	}
	r = pmc_wb_init(c);
	if (r) {
		ti->error = "cannot allocate the writeback batch";
		goto bad;
	}
	/* A partial-block write can always get its bounce block. */
	r = mempool_init_kmalloc_pool(&c->bounce_pool, 2, c->block_size);
	if (!r)
		r = bioset_init(&c->promote_bioset, BIO_POOL_SIZE, 0, BIOSET_NEED_BVECS);
	if (r) {
		ti->error = "out of memory";
		goto bad;
	}
	c->wq = alloc_workqueue("pmcache-%s", WQ_MEM_RECLAIM | WQ_UNBOUND, 0,
				c->origin_name);
	if (!c->wq) {
		ti->error = "cannot allocate a workqueue";
		r = -ENOMEM;
		goto bad;
	}

	ti->num_flush_bios = 1;
	ti->flush_supported = true;
	ti->num_discard_bios = 1;
	ti->discards_supported = true;
	ti->num_write_zeroes_bios = 0;
	ti->per_io_data_size = sizeof(struct pmc_bio);
	return 0;
bad:
	pmc_dtr(ti);
	return r;
}

static int pmc_preresume(struct dm_target *ti)
{
	struct pmc_cache *c = ti->private;
	dev_t held;
	int r;

	if (c->loaded)
		return 0;
	/*
	 * Asked at the table load too; the table this one replaces (now
	 * suspended) may have dirtied blocks since.
	 */
	mutex_lock(&pmc_devices_lock);
	c->preresumed = true;
	held = pmc_strands_dirty(c);
	r = held ? -EBUSY : 0;
	/*
	 * Before the load, which may fail: dm destroys the replaced table
	 * all the same, and a later resume of this one would not find it.
	 */
	if (!r)
		r = pmc_drop_replaced_cache(c);
	mutex_unlock(&pmc_devices_lock);
	if (r) {
		if (r == -EBUSY) {
			DMERR("%s", PMC_REFUSE_NEW_CACHE);
			pmc_say_stranded(held ? held : c->strands_dev);
		}
		return r;
	}
	r = pmc_load(c);
	mutex_lock(&pmc_devices_lock);
	/* Loaded on the device that holds them: its own now, counted dirty. */
	if (!r && c->strands_dev == c->cache_dev->bdev->bd_dev)
		c->strands_dev = 0;
	if (r && c->refused_dirty)
		/*
		 * Its own cache device holds dirty blocks it refused (format,
		 * passthrough, another origin): hand that on, so that no table
		 * after this one resumes on another cache device without them.
		 */
		c->strands_dev = c->cache_dev->bdev->bd_dev;
	mutex_unlock(&pmc_devices_lock);
	if (r)
		DMERR("cannot load the cache: %d", r);
	return r;
}

static void pmc_resume(struct dm_target *ti)
{
	struct pmc_cache *c = ti->private;

	WRITE_ONCE(c->suspending, false);
	WRITE_ONCE(c->running, true);
	pmc_wb_kick(c);
	/*
	 * Not on c->wq: the age work waits for writeback, and a work item
	 * of a WQ_MEM_RECLAIM queue must not wait for another of the same
	 * queue (under memory pressure its rescuer would run the one and
	 * never the other).
	 */
	if (c->max_age_ms)
		queue_delayed_work(system_unbound_wq, &c->age_work,
				   msecs_to_jiffies(c->max_age_ms / 2 + 1));
}

/*
 * Clear every stripe's stale record (pmcache_slot.h), so that a suspended
 * cache's records name only current copies: the next load, or pmcache-tool,
 * finds no older copy to resolve.
 */
static void pmc_settle_stripes(struct pmc_cache *c)
{
	u32 i;

	for (i = 0; i <= c->idx.stripe_mask; i++) {
		struct pmc_stripe *st = &c->idx.stripes[i];
		u32 stale;

		spin_lock(&st->lock);
		stale = pmc_stripe_settle(st, &c->meta);
		spin_unlock(&st->lock);
		pmc_slot_free(c, stale);
	}
}

/*
 * A suspend is starting: a "message flush" in progress gives up (EBUSY).
 * dm waits for the message to end (it holds the live table) before it can
 * suspend: the flush would otherwise hold the suspend, with the writers
 * already stopped, until the whole cache is clean.
 */
static void pmc_presuspend(struct dm_target *ti)
{
	struct pmc_cache *c = ti->private;

	WRITE_ONCE(c->suspending, true);
	wake_up_all(&c->clean_wait);
}

static void pmc_presuspend_undo(struct dm_target *ti)
{
	struct pmc_cache *c = ti->private;

	WRITE_ONCE(c->suspending, false);
}

static void pmc_postsuspend(struct dm_target *ti)
{
	struct pmc_cache *c = ti->private;

	WRITE_ONCE(c->running, false);
	cancel_delayed_work_sync(&c->age_work);
	cancel_delayed_work_sync(&c->wb_retry_work);
	flush_workqueue(c->wq);
	/* Queued by a run that found the target running before the flush. */
	cancel_delayed_work_sync(&c->wb_retry_work);
	pmc_settle_stripes(c);
}

/* ---------------------------------------------------------------------------
 * Status and messages.
 */
/*
 * Status (STATUSTYPE_INFO), space separated, in this order:
 *   <block_size> <blocks_total> <blocks_used> <blocks_dirty>
 *   <read_hits> <read_misses> <write_hits> <write_misses>
 *   <writebacks_done> <writebacks_in_flight> <errors> <health>
 *   <mode> <promotions> <evictions> <sequential_bypasses>
 * health is ok or degraded (errors seen: a media error in pmem, a failed
 * origin I/O or writeback, a write failed for want of a free block; data
 * still served). errors counts those and the records found corrupt at load.
 * Counters count cache blocks, except read/write hits and misses, which
 * count block-sized (or smaller) pieces of bios, and sequential_bypasses:
 * bios sent around the cache (a bio dm splits counts once a piece).
 */
static void pmc_status(struct dm_target *ti, status_type_t type,
		       unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct pmc_cache *c = ti->private;
	unsigned int sz = 0, i;
	struct pmc_stats s;
	s64 used, dirty;

	switch (type) {
	case STATUSTYPE_INFO:
		mutex_lock(&pmc_devices_lock);
		pmc_read_stats(c, &s);
		mutex_unlock(&pmc_devices_lock);
		/* Summed one after the other: a write between them must not show dirty > used. */
		used = pmc_nr_used(c);
		dirty = min(pmc_nr_dirty(c), used);
		DMEMIT("%u %llu %lld %lld %llu %llu %llu %llu %llu %d %llu %s %s %llu %llu %llu",
		       c->block_size, c->meta.geo.nr_blocks,
		       (long long)used, (long long)dirty,
		       s.read_hits, s.read_misses, s.write_hits, s.write_misses,
		       s.writebacks, atomic_read(&c->wb_inflight),
		       s.errors,
		       pmc_health_names[READ_ONCE(c->health)],
		       pmc_mode_names[c->mode], s.promotions, s.evictions,
		       s.seq_bypass);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %u", c->cache_dev->name, c->origin_dev->name,
		       c->nr_feature_args);
		for (i = 0; i < c->nr_feature_args; i++)
			DMEMIT(" %s", c->feature_args[i]);
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",cache_device=%s,origin_device=%s,block_size=%u,mode=%s,high_watermark=%u,low_watermark=%u,writeback_jobs=%u,max_dirty_age=%u,sequential_cutoff=%llu,promote=%s,health=%s;",
		       c->cache_dev->name, c->origin_dev->name, c->block_size,
		       pmc_mode_names[c->mode], c->high_wm, c->low_wm, c->wb_jobs,
		       c->max_age_ms, c->seq_cutoff, pmc_promote_names[c->promote],
		       pmc_health_names[READ_ONCE(c->health)]);
		break;
	}
}

/*
 * Call @visit on the state of every copy in the hash, tombstones too, a
 * bucket at a time under its stripe's lock, until it returns true (then
 * true). Every copy of a block chains in its block's bucket, and a flush
 * mark moves only between copies of one block (pmc_slot_install), under
 * its lock: a walk by bucket misses none, where a walk over the slots would
 * miss a mark moved behind it. The lock is held for one chain at a time.
 */
static bool pmc_walk_copies(struct pmc_cache *c, bool (*visit)(u8 *state))
{
	u32 nr_buckets = (u32)(1ULL << (64 - c->idx.hash_shift)), b, i, n, slot;
	u32 step = c->idx.stripe_mask + 1;
	bool found = false;

	/*
	 * Stripe by stripe (bucket b is under stripe b & stripe_mask), up to
	 * 256 of its buckets a lock: a lock a bucket costs more than the
	 * walk itself, and all of a large stripe's would hold it too long.
	 */
	for (i = 0; i < step && !found; i++) {
		struct pmc_stripe *st = &c->idx.stripes[i];

		for (b = i; b < nr_buckets && !found;) {
			spin_lock(&st->lock);
			for (n = 0; n < 256 && b < nr_buckets && !found; n++, b += step)
				for (slot = c->idx.buckets[b]; slot != PMC_NO_SLOT && !found;
				     slot = c->idx.slots[slot].link)
					found = visit(&c->idx.slots[slot].state);
			spin_unlock(&st->lock);
			cond_resched();
		}
	}
	return found;
}

static bool pmc_mark_for_flush(u8 *state)
{
	if ((*state & PMC_S_KIND_MASK) == PMC_S_DIRTY)
		*state |= PMC_S_FLUSH;
	return false;
}

static bool pmc_has_flush_mark(u8 *state)
{
	return *state & PMC_S_FLUSH;
}

/*
 * Write back every block dirty when the flush began (or the newer copy
 * that replaced it): each is marked PMC_S_FLUSH, writeback takes marked
 * blocks first, and a mark goes when its writeback lands. Returns when none
 * is left, after an origin flush. Blocks written after the flush began may
 * stay dirty: writes that go on cannot hold it.
 */
static int pmc_flush_all(struct pmc_cache *c)
{
	long r = 0;
	int errors;

	/* Another flush's marks are not this one's to wait for. */
	if (mutex_lock_killable(&c->flush_mutex))
		return -EINTR;
	if (!c->loaded || !READ_ONCE(c->running) || READ_ONCE(c->suspending)) {
		mutex_unlock(&c->flush_mutex);
		DMERR("flush: the device is suspended");
		return -EBUSY;
	}
	/* Failures before this flush began are not its own. */
	errors = atomic_read(&c->wb_errors);
	atomic_inc(&c->flush_requests);
	/*
	 * Marked first, then written back: started while the walk goes on,
	 * writeback would take the scattered blocks marked so far, and the
	 * origin would get them as many small writes.
	 */
	if (pmc_nr_dirty(c)) {
		pmc_walk_copies(c, pmc_mark_for_flush);
		atomic_inc(&c->flush_rounds);
		pmc_wb_kick(c);
	}
	while (pmc_nr_dirty(c) && pmc_walk_copies(c, pmc_has_flush_mark)) {
		if (READ_ONCE(c->suspending) || !READ_ONCE(c->running)) {
			DMERR("flush: the device is being suspended; the dirty blocks stay cached");
			r = -EBUSY;
			break;
		}
		if (atomic_read(&c->wb_errors) != errors) {
			r = -EIO;
			break;
		}
		/* Its marked blocks first again, in a writeback run going on. */
		atomic_inc(&c->flush_rounds);
		pmc_wb_kick(c);
		/* The marks are looked at again 4 times a second. */
		r = wait_event_killable_timeout(c->clean_wait,
						!pmc_nr_dirty(c) || READ_ONCE(c->suspending),
						HZ / 4);
		if (r < 0)
			break;
		r = 0;
	}
	/* A failed writeback may have taken the last mark with it. */
	if (!r && atomic_read(&c->wb_errors) != errors)
		r = -EIO;
	atomic_dec(&c->flush_requests);
	mutex_unlock(&c->flush_mutex);
	if (r)
		return r;
	/*
	 * Writeback flushed the origin after its last batch: only writes
	 * around the cache since then (or since the last flush) need one.
	 */
	if (atomic64_read(&c->origin_writes_done) ==
	    atomic64_read(&c->origin_writes_flushed))
		return 0;
	r = pmc_origin_flush(c);
	if (r) {
		/* A failed origin I/O, as any other: in errors and health. */
		pmc_note_error(c);
		DMERR_LIMIT("origin flush failed: %ld", r);
	}
	return r;
}

static int pmc_message(struct dm_target *ti, unsigned int argc, char **argv,
		       char *result, unsigned int maxlen)
{
	struct pmc_cache *c = ti->private;
	u32 ms;

	if (argc == 1 && !strcasecmp(argv[0], "flush"))
		return pmc_flush_all(c);
	if (argc == 1 && !strcasecmp(argv[0], "clear_stats")) {
		mutex_lock(&pmc_devices_lock);
		pmc_sum_stats(c, &c->stats_base);
		c->inherited_errors = 0;
		c->load_corrupt = 0;
		c->load_unreadable = 0;
		mutex_unlock(&pmc_devices_lock);
		return 0;
	}
	if (argc == 2 && !strcasecmp(argv[0], "writeback_pause")) {
		/* At most max_dirty_age's own limit: an hour. */
		if (kstrtou32(argv[1], 10, &ms) || ms > 3600000) {
			DMERR("writeback_pause takes 0..3600000 ms");
			return -EINVAL;
		}
		WRITE_ONCE(c->wb_pause_until, jiffies + msecs_to_jiffies(ms));
		return 0;
	}
	DMERR("unknown message; expected flush, clear_stats or writeback_pause <ms>");
	return -EINVAL;
}

static int pmc_iterate_devices(struct dm_target *ti, iterate_devices_callout_fn fn,
			       void *data)
{
	struct pmc_cache *c = ti->private;

	return fn(ti, c->origin_dev, 0, ti->len, data);
}

#define PMC_MAX_DISCARD_SECTORS	(1u << (30 - SECTOR_SHIFT))

static void pmc_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct pmc_cache *c = ti->private;

	if (limits->physical_block_size < c->block_size)
		limits->physical_block_size = c->block_size;
	if (limits->io_min < c->block_size)
		limits->io_min = c->block_size;
	limits->discard_granularity = max_t(unsigned int, limits->discard_granularity,
					    c->block_size);
	/*
	 * Discards drop cached blocks whether or not the origin takes them
	 * (pmc_map_discard ends them itself when it does not). Over such an
	 * origin the stacked limit is 0, which would turn every discard away
	 * before the map: set one. 1 GiB a bio bounds the time each takes.
	 */
	if (!bdev_max_discard_sectors(c->origin_dev->bdev)) {
		limits->max_hw_discard_sectors = PMC_MAX_DISCARD_SECTORS;
		limits->max_discard_sectors = PMC_MAX_DISCARD_SECTORS;
	}
}

static struct target_type pmcache_target = {
	.name = "pmcache",
	.version = {1, 0, 0},
	.module = THIS_MODULE,
	.ctr = pmc_ctr,
	.dtr = pmc_dtr,
	.map = pmc_map,
	.end_io = pmc_end_io,
	.preresume = pmc_preresume,
	.resume = pmc_resume,
	.presuspend = pmc_presuspend,
	.presuspend_undo = pmc_presuspend_undo,
	.postsuspend = pmc_postsuspend,
	.status = pmc_status,
	.message = pmc_message,
	.iterate_devices = pmc_iterate_devices,
	.io_hints = pmc_io_hints,
};

static int __init dm_pmcache_init(void)
{
	return dm_register_target(&pmcache_target);
}

static void __exit dm_pmcache_exit(void)
{
	dm_unregister_target(&pmcache_target);
}

module_init(dm_pmcache_init);
module_exit(dm_pmcache_exit);
MODULE_DESCRIPTION(DM_NAME " write-back cache in persistent memory");
MODULE_AUTHOR("dm-pmcache developers");
MODULE_LICENSE("GPL");

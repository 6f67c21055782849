/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-pmcache kernel-side state shared by the target glue and writeback.
 */
#ifndef PMCACHE_H
#define PMCACHE_H

#include <linux/device-mapper.h>
#include <linux/workqueue.h>
#include <linux/wait.h>
#include <linux/mutex.h>
#include <linux/completion.h>
#include <linux/percpu.h>
#include <linux/percpu_counter.h>
#include <linux/bio.h>
#include <linux/mempool.h>

#include "pmcache_meta.h"
#include "pmcache_index.h"
#include "pmcache_alloc.h"
#include "pmcache_policy.h"

#define DM_MSG_PREFIX "pmcache"

enum pmc_mode {
	PMC_MODE_WRITEBACK,
	PMC_MODE_WRITETHROUGH,
	PMC_MODE_WRITEAROUND,
	PMC_MODE_PASSTHROUGH,
};

enum pmc_health {
	PMC_HEALTH_OK,
	PMC_HEALTH_DEGRADED,	/* errors seen, data still served */
};

enum pmc_promote {
	PMC_PROMOTE_REUSE,	/* on evidence of reuse (the policy decides) */
	PMC_PROMOTE_ALWAYS,
	PMC_PROMOTE_NEVER,
};

/* Sequential stream detection table. */
#define PMC_STREAM_BITS 6
struct pmc_stream {
	sector_t next;		/* where the stream would continue */
	u64 bytes;		/* its length so far */
};

/* What the first resume does with the cache device. */
enum pmc_action {
	PMC_ACT_LOAD,
	PMC_ACT_FORMAT,
	PMC_ACT_REBIND,
};

/* Per-CPU counters, u64 only: pmc_sum_stats adds them up as an array. */
struct pmc_stats {
	u64 read_hits;
	u64 read_misses;
	u64 write_hits;
	u64 write_misses;
	u64 promotions;
	u64 evictions;
	u64 seq_bypass;
	u64 writebacks;
	u64 errors;
};

#define PMC_STAT_INC(c, field) this_cpu_inc((c)->stats->field)	/* field: a member name */

struct pmc_cache {
	struct dm_target *ti;
	struct dm_dev *cache_dev;
	struct dm_dev *origin_dev;
	struct dax_device *dax_dev;
	u8 *pmem;
	u64 pmem_size;
	u8 *origin_pmem;		/* an origin DAX maps too (on pmem): where */
	u64 origin_pmem_size;		/* 0: none */

	struct pmc_meta meta;
	struct pmc_index idx;
	struct pmc_alloc alloc;
	const struct pmc_policy_ops *pops;
	struct pmc_policy *policy;
	bool idx_ready;

	u32 block_size;
	unsigned int block_shift;	/* log2(block_size) */
	unsigned int sect_shift;	/* log2(sectors per block) */
	u64 origin_sectors;
	u64 origin_blocks;
	char origin_name[PMC_ORIGIN_NAME_LEN + 1];
	struct pmc_origin_uid origin_uid;
	bool origin_uid_reportable;	/* its driver reports disk ids */

	/* Table arguments. */
	u32 high_wm;			/* percent dirty: writeback urgent */
	u32 low_wm;			/* percent dirty: writeback relaxes */
	u32 wb_jobs;			/* blocks per writeback batch */
	u32 max_age_ms;
	enum pmc_mode mode;
	enum pmc_promote promote;
	u64 seq_cutoff;			/* bytes; 0 = never bypass */
	struct pmc_stream streams[1 << PMC_STREAM_BITS];
	unsigned int nr_feature_args;
	char **feature_args;		/* as given, for the table line */
	enum pmc_action action;
	/*
	 * Why the first resume must find no dirty block (format over a
	 * cache, rebind, passthrough), or NULL: see pmc_refuse_dirty.
	 */
	const char *dirty_refusal;
	/*
	 * The cache device as the table load saw it, or as this table's own
	 * load left it: the decision rests on it, and a table loaded while
	 * another resumed on the same device (say, formatting it) saw it
	 * mid-change. The first resume acts only on the same (pmc_load).
	 */
	enum pmc_probe_result seen_probe;
	u64 seen_sb_seq;
	u8 seen_uuid[16];
	/*
	 * Under pmc_devices_lock: a cache device (0: none) in which a table
	 * this one replaced left dirty blocks (pmc_strands_dirty), handed on
	 * from table to table until one uses that device again.
	 */
	dev_t strands_dev;
	bool refused_dirty;		/* a resume found dirty blocks it must refuse */
	bool suspending;		/* presuspend to resume: a flush gives up */
	struct list_head devices_node;	/* in pmc_devices while registered */
	bool registered;
	/*
	 * Under pmc_devices_lock: a first resume started. A device has one
	 * inactive table (a load destroys the one before), so another table
	 * of it never resumed is one a dmsetup load is building: not the
	 * live table, not one this table replaces.
	 */
	bool preresumed;

	/* Counters that drive writeback and allocation. */
	struct percpu_counter nr_used;	/* blocks holding data */
	struct percpu_counter nr_dirty;
	atomic_t wb_inflight;
	atomic_t free_waiters;
	atomic_t flush_requests;	/* message flush in progress */
	atomic_t flush_rounds;		/* a flush began or looked at its marks again */
	/*
	 * Origin writes completed (through the target, not writeback), and
	 * how many of them the last completed origin flush covers: a flush
	 * with none completed since has nothing to send to the origin.
	 */
	atomic64_t origin_writes_done;
	atomic64_t origin_writes_flushed;
	atomic_t wb_errors;		/* writeback failures: a batch's writes, a flush, a copy */
	atomic_t wb_writes_ok;		/* writeback bios the origin completed without error */
	atomic_t wb_flush_failures;	/* writeback's origin flushes that failed */
	/*
	 * the batches writeback landed last had an error, or its last batch
	 * had only dirty blocks it could not read
	 */
	bool wb_failing;
	u32 wb_cursor;			/* where writeback's next slot scan starts */
	u64 high_limit;			/* high_wm in blocks */
	unsigned long wb_pause_until;	/* jiffies */
	wait_queue_head_t free_wait;
	wait_queue_head_t clean_wait;

	struct workqueue_struct *wq;
	struct work_struct wb_work;
	struct delayed_work age_work;
	/* a writeback run that failed with blocks left to write tries again */
	struct delayed_work wb_retry_work;
	struct mutex wb_mutex;		/* one writeback run at a time */
	struct mutex promote_flush_mutex; /* one origin flush for promotions at a time */
	struct mutex flush_mutex;	/* one "message flush" at a time */
	struct pmc_wb_batch *wb_batches;	/* PMC_WB_BATCHES of wb_jobs items */
	/*
	 * Slots whose pmem failed a read while they held a dirty copy (the
	 * only one, kept), until every line of the block reads without error
	 * (writeback's check, pmc_pmem_probe): freed meanwhile, one is never
	 * handed out again while this table is loaded, as a dropped clean
	 * copy's slot is not (it stays BUSY). A write does not clear a media
	 * error. Eviction hands on a clean copy's slot: one marked here (a
	 * read failed after writeback checked the block) it parks instead.
	 */
	unsigned long *poisoned;
	atomic_t nr_poisoned;
	struct bio_set wb_bioset;	/* writeback's bios */
	mempool_t bounce_pool;		/* partial-block writes: one block each */
	struct bio_set promote_bioset;	/* origin I/O of blocks to promote */
	bool running;			/* between resume and postsuspend */
	bool loaded;

	int health;
	/*
	 * Under pmc_devices_lock: records dropped at load (corrupt or beyond
	 * the origin), counted as errors; of them, the unreadable ones, which
	 * stay where they are and so are counted again by the next load.
	 */
	u64 load_corrupt;
	u64 load_unreadable;
	/*
	 * Records unreadable at load, which clear_stats leaves: their slots
	 * are never reused, and each may be a dirty block, so the cache
	 * device is never left blanked behind a move while it holds any.
	 */
	u64 unreadable_records;
	bool wrote_records;		/* this table's load formatted or rebound */
	/*
	 * Under pmc_devices_lock: the errors counted by the tables this one
	 * replaced (a reload; health and errors stay with the dm device, not
	 * with one table), and the counters' sums at the last clear_stats.
	 */
	u64 inherited_errors;
	struct pmc_stats stats_base;
	struct pmc_stats __percpu *stats;
};

/* An error the status counts: the cache is degraded from then on. */
static inline void pmc_note_error(struct pmc_cache *c)
{
	PMC_STAT_INC(c, errors);
	if (READ_ONCE(c->health) == PMC_HEALTH_OK)
		WRITE_ONCE(c->health, PMC_HEALTH_DEGRADED);
}

static inline u64 pmc_sector_to_oblock(const struct pmc_cache *c, sector_t s)
{
	return s >> c->sect_shift;
}

static inline sector_t pmc_oblock_to_sector(const struct pmc_cache *c, u64 b)
{
	return (sector_t)b << c->sect_shift;
}

#define PMC_COUNTER_BATCH 64

static inline void pmc_count(struct pmc_cache *c, s64 used, s64 dirty)
{
	if (used)
		percpu_counter_add_batch(&c->nr_used, used, PMC_COUNTER_BATCH);
	if (dirty)
		percpu_counter_add_batch(&c->nr_dirty, dirty, PMC_COUNTER_BATCH);
}

/* Cheap, approximate (per-CPU slack): for heuristics on the I/O path. */
static inline s64 pmc_nr_dirty_approx(struct pmc_cache *c)
{
	return percpu_counter_read_positive(&c->nr_dirty);
}

/* Exact: for status, flush and writeback decisions. */
static inline s64 pmc_nr_dirty(struct pmc_cache *c)
{
	return percpu_counter_sum_positive(&c->nr_dirty);
}

static inline s64 pmc_nr_used(struct pmc_cache *c)
{
	return percpu_counter_sum_positive(&c->nr_used);
}

/* A read of the dirty copy in @slot failed: see poisoned. */
static inline void pmc_slot_poisoned(struct pmc_cache *c, u32 slot)
{
	if (!test_and_set_bit(slot, c->poisoned))
		atomic_inc(&c->nr_poisoned);
}

/* Every line of the block of @slot read without error: see poisoned. */
static inline void pmc_slot_readable(struct pmc_cache *c, u32 slot)
{
	if (unlikely(atomic_read(&c->nr_poisoned)) && test_and_clear_bit(slot, c->poisoned))
		atomic_dec(&c->nr_poisoned);
}

/*
 * Give back a slot whose record is clear and durable; PMC_NO_SLOT: nothing
 * (what the removal sites get when the stripe has no stale slot). Inline:
 * every overwrite frees one.
 */
static inline void pmc_slot_free(struct pmc_cache *c, u32 slot)
{
	if (slot == PMC_NO_SLOT)
		return;
	if (unlikely(atomic_read(&c->nr_poisoned)) && test_bit(slot, c->poisoned)) {
		/* Out of use: BUSY, as a dropped clean copy's. */
		WRITE_ONCE(c->idx.slots[slot].state, PMC_S_BUSY);
		DMWARN_LIMIT("pmem block %u failed a read: out of use until a reload",
			     slot);
		return;
	}
	WRITE_ONCE(c->idx.slots[slot].state, PMC_S_FREE);
	/* A writer waiting for a slot must find it: no spare then. */
	if (!atomic_read(&c->free_waiters) &&
	    pmc_alloc_keep_spare(&c->alloc, raw_smp_processor_id(), slot))
		return;
	pmc_alloc_put(&c->alloc, slot);
	/* The free count before the waiters' (pmc_get_slot counts, then looks). */
	smp_mb__after_atomic();
	if (atomic_read(&c->free_waiters))
		wake_up(&c->free_wait);
}

/* pmcache_target.c */

/* An origin flush in flight: pmc_origin_flush_start, then _wait. */
struct pmc_origin_flush_io {
	struct bio bio;
	struct completion done;
	u64 covered;		/* origin_writes_done when it was issued */
};

void pmc_origin_flush_start(struct pmc_cache *c, struct pmc_origin_flush_io *f);
int pmc_origin_flush_wait(struct pmc_cache *c, struct pmc_origin_flush_io *f);
int pmc_origin_flush(struct pmc_cache *c);

/* pmcache_writeback.c */
int pmc_wb_init(struct pmc_cache *c);
void pmc_wb_exit(struct pmc_cache *c);
void pmc_wb_kick(struct pmc_cache *c);
void pmc_wb_work(struct work_struct *w);
void pmc_age_work(struct work_struct *w);
void pmc_wb_retry_work(struct work_struct *w);
bool pmc_wb_needed(struct pmc_cache *c);

#endif /* PMCACHE_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A reference mechanism for the crash explorer: the pmem side of
 * pmcache_target.c and pmcache_writeback.c, single threaded, on top of the
 * real pmcache_meta.c, pmcache_index.c, pmcache_alloc.c and pmcache_slot.c
 * (the slot state machine: install, retire, tombstone, writeback end is
 * the target's own code, called here as there).
 *
 * Each function below names the kernel function it mirrors and follows it
 * statement for statement where pmem, the index, the slot states and the
 * block counters are concerned. What it leaves out: bios (a chunk is a
 * byte range and a buffer), locks (one thread; every kernel critical
 * section here runs whole), the policy (evict_candidate is "a random slot
 * the evictable callback accepts"), statistics, waiting (pmc_get_slot
 * returns PMC_NO_SLOT where the kernel would wait for writeback) and the
 * origin itself (the caller applies writeback's origin writes to its model).
 */
#ifndef REF_CACHE_H
#define REF_CACHE_H

#include "pmcache_meta.h"
#include "pmcache_index.h"
#include "pmcache_alloc.h"

#define REF_ALLOC_REGIONS	64u	/* PMC_ALLOC_REGIONS */

/* enum pmc_action */
enum ref_action {
	REF_ACT_LOAD,
	REF_ACT_FORMAT,
	REF_ACT_REBIND,
};

/* enum pmc_mode: not on media, a table argument (a reload switches it). */
enum ref_mode {
	REF_MODE_WRITEBACK,
	REF_MODE_WRITETHROUGH,
	REF_MODE_WRITEAROUND,
	REF_MODE_PASSTHROUGH,
};

/* How pmc_map_write disposed of a one-block write. */
enum ref_write_result {
	REF_W_CACHE,		/* written into the cache */
	REF_W_ORIGIN,		/* remapped to the origin (the caller writes it) */
	REF_W_RETRY,		/* the kernel loops until writeback frees a tombstone */
	REF_W_NOSPC,		/* the kernel waits for writeback */
};

struct ref_wb_item {
	u64 oblock;
	u32 slot;
	bool free_slot;
};

struct ref_cache {
	struct pmc_meta meta;
	struct pmc_index idx;
	struct pmc_alloc alloc;
	bool idx_ready;
	u8 *pmem;
	u64 pmem_size;
	u32 block_size;
	enum ref_mode mode;
	u64 origin_blocks;
	s64 nr_used;
	s64 nr_dirty;
	u64 rng;			/* picks eviction candidates */
	/* What the last ref_load found and did. */
	enum pmc_probe_result probe;
	char probed_origin[PMC_ORIGIN_NAME_LEN + 1];	/* before a rebind */
	enum ref_action action;
	struct pmc_recovery_stats rst;
	/* The writeback batch between collect and finish. */
	struct ref_wb_item *items;
	u32 nr_items;
	u32 wb_cursor;
};

/*
 * pmc_probe + pmc_load: probe the device at @pmem, format it when asked
 * or blank, rebind it when it holds only clean blocks of another origin,
 * then recover. 0 on success; otherwise a negative errno and *@error says
 * why, as the kernel's ti->error would.
 */
int ref_load(struct ref_cache *rc, u8 *pmem, u64 pmem_size, u32 block_size,
	     const struct pmc_origin_id *origin, u64 origin_blocks, bool format,
	     const u8 uuid[16], u64 seed, const char **error);
void ref_destroy(struct ref_cache *rc);

/*
 * pmc_write_chunk: write @len bytes at @blk_off of block @oblock. 0, or
 * -EAGAIN when it is a partial block that is not cached (the caller sends
 * it to the origin), or -ENOSPC where the kernel would wait for a slot.
 */
int ref_write(struct ref_cache *rc, u64 oblock, u32 blk_off, u32 len,
	      const u8 *data);
/*
 * pmc_map_write for a write of @len bytes at @blk_off of block @oblock:
 * into the cache, or around it (pmc_origin_write_prefix: a clean copy is
 * dropped, durably, first), as the mode and the block's state decide.
 * *@promote: writethrough wants the written block installed clean once
 * the origin write completed (pmc_queue_promotion).
 */
enum ref_write_result ref_map_write(struct ref_cache *rc, u64 oblock,
				    u32 blk_off, u32 len, const u8 *data,
				    bool *promote);
/*
 * Promotion of a read miss: @data (the origin's block) installed clean
 * through pmc_install(..., false), the same path as a write. -EEXIST when
 * the block is cached, -ENOSPC when no slot is free or evictable.
 */
int ref_promote(struct ref_cache *rc, u64 oblock, const u8 *data);
/* pmc_evict_one, then pmc_slot_free: false when nothing is evictable. */
bool ref_evict(struct ref_cache *rc);
/* pmc_invalidate_range: discard of blocks [first, last]. */
void ref_invalidate(struct ref_cache *rc, u64 first, u64 last);
/* pmc_postsuspend's pmc_settle_stripes: every stripe's stale record cleared. */
void ref_suspend(struct ref_cache *rc);
/* pmc_wb_collect (everything dirty, no ageing) + sort: the batch size. */
u32 ref_wb_collect(struct ref_cache *rc, u32 max);
/* pmc_wb_finish after the batch is durable on the origin (or failed). */
void ref_wb_finish(struct ref_cache *rc, bool ok);

/*
 * pmc_map_read's view of one block: its slot when the cache serves it,
 * PMC_NO_SLOT when it goes to the origin.
 */
u32 ref_lookup(const struct ref_cache *rc, u64 oblock);
/* Recount slot states; 0 when they match nr_used / nr_dirty. */
int ref_check_counters(const struct ref_cache *rc, const char **why);

#endif /* REF_CACHE_H */

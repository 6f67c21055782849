/* SPDX-License-Identifier: GPL-2.0 */
/*
 * In-DRAM index of the cache: origin block -> cache slot, and per-slot state.
 *
 * Memory per cache block: 16 (struct pmc_slot_entry) + at most 4 (bucket
 * head) = 20 bytes, plus the lock stripes.
 *
 * Concurrency: the buckets are split into stripes, each with its own lock.
 * Everything about a slot that holds origin block B (its chain, its state)
 * is changed only under the stripe lock of B. A free slot belongs to the
 * allocator. There is no global lock.
 */
#ifndef PMCACHE_INDEX_H
#define PMCACHE_INDEX_H

#include "pmcache_os.h"
#include "pmcache_format.h"

/* Slot state: a kind and flags. */
#define PMC_S_KIND_MASK	0x03
#define PMC_S_FREE	0x00
#define PMC_S_CLEAN	0x01
#define PMC_S_DIRTY	0x02
#define PMC_S_WB	0x04	/* writeback of this slot in flight */
#define PMC_S_STALE	0x08	/* superseded while under writeback: free when it ends */
#define PMC_S_WB_WAIT	0x10	/* an older copy of the block is still under writeback */
#define PMC_S_AGED	0x20	/* dirty through a whole age period */
#define PMC_S_BUSY	0x40	/* being filled or evicted; not in the hash */
#define PMC_S_FLUSH	0x80	/* dirty when a "message flush" began: it waits for this one */

struct pmc_stripe {
	spinlock_t lock;	/* chains, keys and states of this stripe's blocks */
	/*
	 * Bumped by every write to a block of this stripe and every eviction
	 * from it: a promotion planned before either installs nothing.
	 */
	atomic_t write_seq;
	/*
	 * A slot (PMC_NO_SLOT: none) whose record still commits an older copy
	 * of a block of this stripe, one that a durable newer copy replaced.
	 * Its clear waits for the next fence taken under this lock, which
	 * frees it (pmcache_slot.h): a write then needs no fence of its own
	 * for the copy it replaces.
	 */
	u32 stale_slot;
} __aligned(64);

/*
 * What the index keeps about one slot, together: a lookup, an install or a
 * removal then touches one cache line (and one page) per slot, not one per
 * field. In a cache of millions of blocks each of those is a DRAM miss.
 */
struct pmc_slot_entry {
	u64 key;	/* pmc_key_make(oblock, gen) */
	u32 link;	/* hash chain while cached, free list while free */
	u8 state;
};

struct pmc_index {
	u32 nr_slots;
	u32 hash_shift;
	u32 stripe_mask;
	u32 *buckets;
	struct pmc_slot_entry *slots;
	struct pmc_stripe *stripes;
	/*
	 * Writes to the origin around the cache still in flight, per block
	 * (pmc_index_bypass): counted under the block's stripe lock, so a
	 * promotion or a writeback that looks under it sees every one that
	 * started before. Per stripe would be too coarse: a stream of large
	 * writes around the cache covers most stripes at once, and would hold
	 * off the writeback of every dirty block while it runs.
	 */
	atomic_t *bypass;
	u32 bypass_mask;
};

int pmc_index_init(struct pmc_index *idx, u32 nr_slots);
/* Empty again, as after pmc_index_init. */
void pmc_index_reset(struct pmc_index *idx);
void pmc_index_exit(struct pmc_index *idx);
/* DRAM bytes used. */
size_t pmc_index_mem_bytes(const struct pmc_index *idx);

static inline u64 pmc_hash64(u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static inline u32 pmc_index_bucket(const struct pmc_index *idx, u64 oblock)
{
	return (u32)(pmc_hash64(oblock) >> idx->hash_shift);
}

static inline struct pmc_stripe *pmc_index_stripe(const struct pmc_index *idx,
						  u64 oblock)
{
	return &idx->stripes[pmc_index_bucket(idx, oblock) & idx->stripe_mask];
}

/*
 * The in-flight count of writes around the cache to @oblock and to the
 * blocks that share its counter: a contiguous run of origin blocks shares
 * none, so a stream in flight covers only as many as it has blocks.
 */
static inline atomic_t *pmc_index_bypass(const struct pmc_index *idx, u64 oblock)
{
	return &idx->bypass[oblock & idx->bypass_mask];
}

static inline u8 pmc_slot_kind(const struct pmc_index *idx, u32 slot)
{
	return READ_ONCE(idx->slots[slot].state) & PMC_S_KIND_MASK;
}

/*
 * The following need the stripe lock of @oblock. Inline: every write runs
 * them, and they do less work than a call and return.
 */
static inline u32 pmc_index_lookup(const struct pmc_index *idx, u64 oblock)
{
	u32 slot = idx->buckets[pmc_index_bucket(idx, oblock)];

	while (slot != PMC_NO_SLOT) {
		if (pmc_key_oblock(idx->slots[slot].key) == oblock)
			return slot;
		slot = idx->slots[slot].link;
	}
	return PMC_NO_SLOT;
}

static inline void pmc_index_insert(struct pmc_index *idx, u32 slot, u64 key,
				    u8 state)
{
	u32 b = pmc_index_bucket(idx, pmc_key_oblock(key));

	/*
	 * The key before the state, paired with pmc_index_holds(): a
	 * check under another stripe's lock (a slot reused meanwhile) that
	 * sees this state sees this key.
	 */
	WRITE_ONCE(idx->slots[slot].key, key);
	/* Paired with the acquire in pmc_index_holds(). */
	smp_store_release(&idx->slots[slot].state, state);
	idx->slots[slot].link = idx->buckets[b];
	idx->buckets[b] = slot;
}

/*
 * Does @slot hold a copy of @oblock (its state in @state)? For a slot found
 * without @oblock's stripe lock (an unlocked scan, the policy's guess),
 * asked under that lock: the slot may have been freed and reused since for
 * a block of another stripe, whose lock its new owner holds. The state
 * first (acquire), then the key: the one that state was published with.
 */
static inline bool pmc_index_holds(const struct pmc_index *idx, u32 slot,
				   u64 oblock, u8 *state)
{
	/* Paired with the release in pmc_index_insert(). */
	*state = smp_load_acquire(&idx->slots[slot].state);
	return pmc_key_oblock(READ_ONCE(idx->slots[slot].key)) == oblock;
}

static inline void pmc_index_remove(struct pmc_index *idx, u32 slot)
{
	u32 *p = &idx->buckets[pmc_index_bucket(idx, pmc_key_oblock(idx->slots[slot].key))];

	while (*p != PMC_NO_SLOT) {
		if (*p == slot) {
			*p = idx->slots[slot].link;
			idx->slots[slot].link = PMC_NO_SLOT;
			return;
		}
		p = &idx->slots[*p].link;
	}
}

#endif /* PMCACHE_INDEX_H */

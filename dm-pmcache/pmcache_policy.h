/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Admission and replacement policy of dm-pmcache.
 *
 * The policy decides, it never acts: no I/O, no sleeping, no allocation after
 * create, bounded memory. The mechanism (pmcache_target.c) calls it under no
 * lock of its own; the policy protects its state itself, and the hit path
 * takes no lock at all.
 *
 * Cache slots are numbered 0..nr_slots-1. A slot is "resident" between
 * insert() and remove(). Whether a resident slot may be evicted right now
 * (clean, not under I/O) only the mechanism knows: evict_candidate() asks it
 * through the callback and skips slots it refuses.
 *
 * insert(), remove() and replace() of a slot come from its owner only: the
 * holder of the stripe lock of the block the slot holds, or the one CPU that
 * has taken the slot out of the index and not yet freed it. So two calls
 * about one slot never run at once, and the policy needs no atomic operation
 * for a slot's own state.
 */
#ifndef PMCACHE_POLICY_H
#define PMCACHE_POLICY_H

#include "pmcache_format.h"	/* PMC_NO_SLOT */

struct pmc_policy;

/*
 * Return true when the mechanism can evict @slot now. Called with the
 * policy's spinlock held and interrupts disabled: it must not sleep, must not
 * call into the policy, and may only read flags (READ_ONCE) or trylock.
 */
typedef bool (*pmc_evictable_fn)(void *ctx, u32 slot);

struct pmc_policy_ops {
	const char *name;
	struct pmc_policy *(*create)(u32 nr_slots);
	void (*destroy)(struct pmc_policy *p);
	/*
	 * A read found @oblock cached in @slot. Lock-free. (A write over a
	 * cached block is a replace(): blocks are written out of place.)
	 */
	void (*hit)(struct pmc_policy *p, u32 slot);
	/*
	 * @oblock missed. Returns true when it should be admitted (promoted).
	 * @have_free: a free slot exists, so admitting evicts nothing (the
	 * default policy then always admits). Misses are what the policy
	 * learns reuse from: call it on read misses even when the answer is
	 * ignored (promote always), but not for I/O bypassed as sequential (a
	 * stream teaches nothing and would only age what was learnt).
	 * Lock-free.
	 */
	bool (*miss)(struct pmc_policy *p, u64 oblock, bool have_free);
	/*
	 * @slot now holds @oblock (promotion, a write that cached it, or a
	 * block found at load).
	 */
	void (*insert)(struct pmc_policy *p, u32 slot, u64 oblock);
	/* @slot no longer holds a block (evicted, invalidated, superseded). */
	void (*remove)(struct pmc_policy *p, u32 slot);
	/*
	 * A write put a new copy of the block in @old into @slot (blocks are
	 * written out of place): @slot inherits what was learnt about the
	 * block, and counts the write as a hit; @old holds nothing.
	 * remove(@old) + insert(@slot) in effect, without their cost on
	 * every overwrite. Lock-free.
	 */
	void (*replace)(struct pmc_policy *p, u32 old, u32 slot);
	/*
	 * Pick a resident slot to evict, consulting @evictable; PMC_NO_SLOT
	 * when none is evictable. The slot stays resident until remove().
	 */
	u32 (*evict_candidate)(struct pmc_policy *p, pmc_evictable_fn evictable,
			       void *ctx);
	/*
	 * Periodic aging, for a policy that ages by time: the default one ages
	 * by its own count of misses, and the mechanism calls no tick (the
	 * policy tests do, for the reference policies).
	 */
	void (*tick)(struct pmc_policy *p);
	/* DRAM bytes used (the policy tests report them). */
	size_t (*mem_bytes)(const struct pmc_policy *p);
};

/*
 * @slot now holds @oblock, in place of the copy in @old (PMC_NO_SLOT: it
 * replaces none): the policy call an install ends with.
 */
static inline void pmc_policy_installed(const struct pmc_policy_ops *ops,
					struct pmc_policy *p, u32 slot,
					u64 oblock, u32 old)
{
	if (old != PMC_NO_SLOT)
		ops->replace(p, old, slot);
	else
		ops->insert(p, slot, oblock);
}

/* The policy dm-pmcache uses. */
extern const struct pmc_policy_ops pmc_policy_default;

#endif /* PMCACHE_POLICY_H */

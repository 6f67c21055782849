// SPDX-License-Identifier: GPL-2.0
/*
 * Default admission and replacement policy of dm-pmcache: TinyLFU admission
 * in front of a sampled-LFU CLOCK.
 *
 * Why this one
 * ------------
 * The cache sits in front of a slow disk and holds many more blocks than a
 * page cache, so the policy must be cheap per block (the whole DRAM index
 * budget is 24 bytes per cache block and the policy gets about 4 of them),
 * must take no lock on a hit, and must keep its hot set through a large scan.
 *
 * - LRU, 2Q and ARC need list links per block (8 bytes for u32 prev/next
 *   alone) and a lock or a list move on every hit. S3-FIFO needs queues of
 *   slot numbers (4 bytes per block) plus a ghost queue of block
 *   fingerprints; smq a hash table of ghost entries. None of them fits in
 *   4 bytes per block with a lock-free hit.
 * - A CLOCK-style hand over the slot array needs nothing but a byte per
 *   slot, and a hit is a store to that byte.
 * - The workloads dm-pmcache is judged on (zipf reads, a hot set under a
 *   scan, loops) reward frequency, not recency: LRU gets no hit at all on a
 *   loop one block larger than the cache and loses its hot set to any scan
 *   longer than the cache. Refusing one-time blocks needs a frequency
 *   estimate for blocks that are *not* cached; a count-min sketch of 4-bit
 *   counters (TinyLFU: Einziger, Friedman, Manes, ACM ToS 2017, as in
 *   Caffeine) gives it in 2 bytes per slot with no per-block state.
 *
 * How it works
 * ------------
 * - Every miss() counts the block in the sketch (4 rows, conservative
 *   update: only the counters at the current minimum grow, so collisions
 *   inflate estimates less) and takes its estimate: how often the block
 *   missed recently.
 * - While a free slot exists every miss is admitted: in a cold cache nearly
 *   every miss is a first touch, and refusing it would only cost hits.
 * - When admitting means evicting, a block is admitted only with evidence of
 *   reuse (estimate >= PMC_ADMIT_MIN: it missed before, within the sketch's
 *   memory) and only if it is more frequent than the block it would replace:
 *   the least frequent of the next PMC_SAMPLES resident slots at the hand,
 *   read without the lock. A scan block is seen once, so once the cache is
 *   full a scan does not get in.
 * - Each slot has a frequency byte (0..PMC_FREQ_MAX): the sketch estimate at
 *   insert(), plus one per hit() (saturating; a lost increment is harmless),
 *   so it counts the block's accesses on the scale the sketch counts the
 *   misses of uncached blocks.
 * - evict_candidate() moves the hand over resident slots and picks the least
 *   frequent evictable one among the next PMC_SAMPLES (the first with
 *   frequency 0 at once); the hand moves just past it. A new block lands in
 *   the slot just freed, behind the hand, so it has a whole revolution to
 *   earn hits before it is looked at again.
 * - Aging, so that old popularity fades (without it a shifted workload would
 *   never displace the old hot set):
 *   the sketch is halved once every nr_slots misses, and the slot
 *   frequencies once every nr_slots / PMC_SLOT_AGE_STEP misses *of blocks
 *   with evidence of reuse*. Both are incremental (a cursor halves one sketch
 *   word every few misses, PMC_SLOT_AGE_STEP slot bytes per such miss), so
 *   no call walks a whole table. First-touch misses do not age the slots: a
 *   scan, however long, leaves the hot set's frequencies alone, while a
 *   shift to new hot blocks (which miss repeatedly) ages the old ones out.
 *   The short sketch memory (one cache-full of misses) keeps it accurate
 *   under a scan: about 1.5% of never-seen blocks look reused, against
 *   about 30% with twice that memory. Aging is counted in misses, not time:
 *   with no misses there is nothing to decide. tick() has nothing to do.
 *
 * Memory: 2 bytes per slot (frequency and resident, side by side) + 2
 * bytes per slot (sketch: 4 rows of nr_slots 4-bit counters), 4 bytes per
 * slot in all, reported by mem_bytes().
 *
 * Concurrency: hit() is lock-free (a byte load, and a byte store until the
 * counter saturates). miss() takes no lock: sketch and aging updates are racy
 * read-modify-writes with READ_ONCE/WRITE_ONCE, which may lose an increment
 * or a halving but never reach outside the tables (every index is reduced
 * into range before use). insert(), remove() and replace() take no lock
 * either: they set or clear a slot's resident byte with a plain store, and
 * only the slot's owner calls them (see pmcache_policy.h), so no two CPUs
 * write one byte at once. A byte, not a bit: an overwrite moves residency
 * from one slot to another, and two atomic bit operations on a shared word
 * cost it more than anything else the policy does (they wait for the pmem
 * stores of the write's commit to drain).
 * evict_candidate() takes the policy spinlock (one hand, one evictor at a
 * time) with interrupts disabled, for a bounded time. The evictable
 * callback is called with that lock held and interrupts disabled: it must
 * not sleep, must not call into the policy, and may only read flags or do a
 * trylock.
 */
#include "pmcache_policy.h"

#define PMC_FREQ_MAX		15	/* 4-bit sketch counters; slots alike */
#define PMC_ADMIT_MIN		2	/* misses needed to displace a block */
#define PMC_SAMPLES		16	/* residents compared per eviction */
#define PMC_PEEK_LIMIT		(4 * PMC_SAMPLES) /* slots miss() looks at */
#define PMC_SKETCH_ROWS		4
#define PMC_SKETCH_MIN_WIDTH	64	/* counters per row, for tiny caches */
#define PMC_SLOT_AGE_STEP	4	/* slot bytes halved per reuse miss */

/*
 * A slot's two bytes side by side: an insert, replace or remove touches one
 * cache line per slot, not two. Separate bytes, not bit fields: hit() and
 * aging store the frequency byte without the owner's lock, and must never
 * write the resident byte the owner changes.
 */
struct pmc_slot_policy {
	u8 freq;	/* 0..PMC_FREQ_MAX */
	u8 resident;	/* 0 or 1 */
};

struct pmc_policy {
	spinlock_t lock;	/* the hand: one evictor at a time */
	u32 nr_slots;
	atomic_t nr_resident;
	u32 hand;		/* next slot evict_candidate() looks at */
	u32 row_words;		/* u64 words per sketch row */
	u32 row_width;		/* counters per sketch row: row_words * 16 */
	u32 sketch_every;	/* misses between two sketch word halvings */
	atomic_t misses;	/* all misses: ages the sketch */
	atomic_t reuse_misses;	/* misses with evidence of reuse: the slots */
	struct pmc_slot_policy *slot;	/* in whole groups of 8 */
	u64 *sketch;		/* PMC_SKETCH_ROWS * row_words words */
};

/* splitmix64 finalizer: every input bit affects every output bit. */
static inline u64 pmc_mix64(u64 x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline bool pmc_is_resident(const struct pmc_policy *p, u32 slot)
{
	return READ_ONCE(p->slot[slot].resident);
}

/*
 * Is nothing resident in @slot's group of 8? Two loads. A free slot's
 * frequency byte is zero too, but for a late hit() on a block just removed:
 * then the group is looked at slot by slot, which is only slower.
 */
static inline bool pmc_resident_group_empty(const struct pmc_policy *p, u32 slot)
{
	const u64 *group = (const u64 *)&p->slot[slot & ~7u];

	return !(READ_ONCE(group[0]) | READ_ONCE(group[1]));
}

/* Mark @slot (not) resident; returns the change of the resident count. */
static inline int pmc_set_resident(struct pmc_policy *p, u32 slot, u8 resident)
{
	int delta = (int)resident - (int)p->slot[slot].resident;

	if (delta)
		WRITE_ONCE(p->slot[slot].resident, resident);
	return delta;
}

static inline u32 pmc_next_slot(const struct pmc_policy *p, u32 slot)
{
	return slot + 1 < p->nr_slots ? slot + 1 : 0;
}

/*
 * The counter of hash @h in sketch row @row: returns its word and sets the
 * shift of its nibble. Rows use double hashing over the two halves of @h,
 * reduced into the row by multiply-shift: any width works and the index is
 * always in range.
 */
static inline u64 *pmc_counter(const struct pmc_policy *p, u64 h, u32 row,
			       u32 *shift)
{
	u32 hv = (u32)h + row * ((u32)(h >> 32) | 1);
	u32 idx = (u32)(((u64)hv * p->row_width) >> 32);

	*shift = (idx % 16) * 4;
	return &p->sketch[(size_t)row * p->row_words + idx / 16];
}

/* Estimate of @oblock's recent miss count, 0..PMC_FREQ_MAX. */
static u32 pmc_sketch_estimate(const struct pmc_policy *p, u64 oblock)
{
	u64 h = pmc_mix64(oblock);
	u32 row, shift, c, est = PMC_FREQ_MAX;
	u64 *w;

	for (row = 0; row < PMC_SKETCH_ROWS; row++) {
		w = pmc_counter(p, h, row, &shift);
		c = (READ_ONCE(*w) >> shift) & 15;
		est = min(est, c);
	}
	return est;
}

/*
 * Count one miss of @oblock (conservative update) and return its new
 * estimate. Racy: a concurrent update of the same word may be lost. The
 * nibble is checked again in the word actually written, so a carry never
 * spills into the neighbouring counter.
 */
static u32 pmc_sketch_add(struct pmc_policy *p, u64 oblock)
{
	u32 shift[PMC_SKETCH_ROWS], c[PMC_SKETCH_ROWS];
	u64 h = pmc_mix64(oblock), *w[PMC_SKETCH_ROWS], v;
	u32 row, est = PMC_FREQ_MAX;

	for (row = 0; row < PMC_SKETCH_ROWS; row++) {
		w[row] = pmc_counter(p, h, row, &shift[row]);
		c[row] = (READ_ONCE(*w[row]) >> shift[row]) & 15;
		est = min(est, c[row]);
	}
	if (est == PMC_FREQ_MAX)
		return est;
	for (row = 0; row < PMC_SKETCH_ROWS; row++) {
		if (c[row] != est)
			continue;
		v = READ_ONCE(*w[row]);
		if (((v >> shift[row]) & 15) < 15)
			WRITE_ONCE(*w[row], v + (1ULL << shift[row]));
	}
	return est + 1;
}

/* Miss number @n halves its share of the sketch. Lock-free, racy. */
static void pmc_age_sketch(struct pmc_policy *p, u32 n)
{
	u32 nr_words = PMC_SKETCH_ROWS * p->row_words;
	u64 *w, v;

	if (n % p->sketch_every)
		return;
	w = &p->sketch[(n / p->sketch_every) % nr_words];
	v = READ_ONCE(*w);
	WRITE_ONCE(*w, (v >> 1) & 0x7777777777777777ULL);
}

/* Reuse miss number @n halves its share of the slots. Lock-free, racy. */
static void pmc_age_slots(struct pmc_policy *p, u32 n)
{
	u32 slot = (n * PMC_SLOT_AGE_STEP) % p->nr_slots;	/* wraps: fine */
	u32 k;
	u8 f;

	for (k = 0; k < PMC_SLOT_AGE_STEP; k++) {
		f = READ_ONCE(p->slot[slot].freq);
		if (f)
			WRITE_ONCE(p->slot[slot].freq, f >> 1);
		slot = pmc_next_slot(p, slot);
	}
}

/*
 * Frequency of the block evict_candidate() would pick next, most likely: the
 * least frequent of the next PMC_SAMPLES resident slots from the hand. Read
 * without the lock: an estimate, 0 when nothing resident is in sight.
 */
static u32 pmc_peek_victim_freq(const struct pmc_policy *p)
{
	u32 slot = READ_ONCE(p->hand), looked, seen = 0, best = PMC_FREQ_MAX;

	if (slot >= p->nr_slots)
		slot = 0;
	for (looked = 0; looked < PMC_PEEK_LIMIT && looked < p->nr_slots;
	     looked++, slot = pmc_next_slot(p, slot)) {
		if (!pmc_is_resident(p, slot))
			continue;
		best = min_t(u32, best, READ_ONCE(p->slot[slot].freq));
		if (!best || ++seen == PMC_SAMPLES)
			break;
	}
	return seen ? best : 0;
}

static void pmc_destroy(struct pmc_policy *p)
{
	if (!p)
		return;
	kvfree(p->sketch);
	kvfree(p->slot);
	kvfree(p);
}

static struct pmc_policy *pmc_create(u32 nr_slots)
{
	struct pmc_policy *p;
	u32 width, nr_words;

	if (!nr_slots)
		return NULL;
	p = kvcalloc(1, sizeof(*p), GFP_KERNEL);
	if (!p)
		return NULL;
	spin_lock_init(&p->lock);
	atomic_set(&p->misses, 0);
	atomic_set(&p->reuse_misses, 0);
	p->nr_slots = nr_slots;
	width = max_t(u32, nr_slots, PMC_SKETCH_MIN_WIDTH);
	p->row_words = DIV_ROUND_UP(width, 16);
	p->row_width = p->row_words * 16;
	/*
	 * Every sketch word is halved once per nr_slots misses, or per 3/4
	 * of that (the division rounds 3.99 down to 3). Kept so: aged
	 * exactly once per nr_slots misses, the counters a long scan hashes
	 * onto grow, its blocks look reused, and a hot set lost 10 points of
	 * hits after a scan 16 times the cache (tests/vm/scan-resistance).
	 */
	nr_words = PMC_SKETCH_ROWS * p->row_words;
	p->sketch_every = max_t(u32, 1, nr_slots / nr_words);

	/* Whole groups: evict_candidate() skips 8 empty slots at a time. */
	p->slot = pmc_array_zalloc(ALIGN(nr_slots, 8), sizeof(*p->slot));
	p->sketch = pmc_array_zalloc(nr_words, sizeof(*p->sketch));
	if (!p->slot || !p->sketch) {
		pmc_destroy(p);
		return NULL;
	}
	return p;
}

static void pmc_hit(struct pmc_policy *p, u32 slot)
{
	u8 f;

	if (unlikely(slot >= p->nr_slots))
		return;
	f = READ_ONCE(p->slot[slot].freq);
	if (f < PMC_FREQ_MAX)
		WRITE_ONCE(p->slot[slot].freq, f + 1);
}

static bool pmc_miss(struct pmc_policy *p, u64 oblock, bool have_free)
{
	u32 est = pmc_sketch_add(p, oblock);

	pmc_age_sketch(p, (u32)atomic_inc_return(&p->misses));
	if (est >= PMC_ADMIT_MIN)
		pmc_age_slots(p, (u32)atomic_inc_return(&p->reuse_misses));
	if (have_free)
		return true;
	return est >= PMC_ADMIT_MIN && est > pmc_peek_victim_freq(p);
}

static void pmc_insert(struct pmc_policy *p, u32 slot, u64 oblock)
{
	u32 est = pmc_sketch_estimate(p, oblock);

	if (unlikely(slot >= p->nr_slots))
		return;
	WRITE_ONCE(p->slot[slot].freq, (u8)est);
	if (pmc_set_resident(p, slot, 1))
		atomic_inc(&p->nr_resident);
}

static void pmc_remove(struct pmc_policy *p, u32 slot)
{
	if (unlikely(slot >= p->nr_slots))
		return;
	if (pmc_set_resident(p, slot, 0))
		atomic_dec(&p->nr_resident);
	WRITE_ONCE(p->slot[slot].freq, 0);
}

static void pmc_replace(struct pmc_policy *p, u32 old, u32 slot)
{
	int delta;
	u8 f;

	if (unlikely(old >= p->nr_slots || slot >= p->nr_slots))
		return;
	/*
	 * The write counts as a hit: a block only ever written (a log, a
	 * sub-block write merged into its cached copy) would otherwise keep
	 * the frequency it was first cached with, and once written back be
	 * the first one evicted, however hot.
	 */
	f = READ_ONCE(p->slot[old].freq);
	WRITE_ONCE(p->slot[slot].freq, f < PMC_FREQ_MAX ? f + 1 : f);
	/* The new copy first: the block is never out of the policy. */
	delta = pmc_set_resident(p, slot, 1);
	delta += pmc_set_resident(p, old, 0);
	WRITE_ONCE(p->slot[old].freq, 0);
	/* Only when the two differ: no shared counter on every overwrite. */
	if (delta)
		atomic_add(delta, &p->nr_resident);
}

/*
 * Slots one eviction looks at, at most: the scan runs with interrupts off,
 * and a cache full of dirty blocks has nothing to find. The hand moves on
 * past them, so the next call (the writer's wait loop retries) goes on from
 * there rather than rescanning.
 */
#define PMC_EVICT_SCAN		8192u

/*
 * The least frequent evictable slot among the next PMC_SAMPLES resident ones
 * from the hand, looking at no more than PMC_EVICT_SCAN slots (nor all of
 * them twice). @evictable is called with p->lock held and interrupts off,
 * only for resident slots that would beat the best candidate so far.
 */
static u32 pmc_evict_candidate(struct pmc_policy *p, pmc_evictable_fn evictable,
			       void *ctx)
{
	u32 best = PMC_NO_SLOT, best_freq = PMC_FREQ_MAX + 1;
	u64 limit = min_t(u64, 2ULL * p->nr_slots, PMC_EVICT_SCAN), looked = 0;
	u32 slot, seen = 0, f, skip;
	unsigned long flags;

	spin_lock_irqsave(&p->lock, flags);
	if (!atomic_read(&p->nr_resident))
		goto out;
	slot = p->hand < p->nr_slots ? p->hand : 0;
	while (looked < limit && (seen < PMC_SAMPLES || best == PMC_NO_SLOT)) {
		if (pmc_resident_group_empty(p, slot)) {
			/* Nothing resident up to the end of this group. */
			skip = 8 - slot % 8;
			looked += skip;
			slot = slot + skip < p->nr_slots ? slot + skip : 0;
			continue;
		}
		if (pmc_is_resident(p, slot)) {
			seen++;
			f = READ_ONCE(p->slot[slot].freq);
			if (f < best_freq && evictable(ctx, slot)) {
				best = slot;
				best_freq = f;
				if (!f)
					break;
			}
		}
		looked++;
		slot = pmc_next_slot(p, slot);
	}
	WRITE_ONCE(p->hand, best != PMC_NO_SLOT ? pmc_next_slot(p, best) : slot);
out:
	spin_unlock_irqrestore(&p->lock, flags);
	return best;
}

static void pmc_tick(struct pmc_policy *p)
{
	/* Aging is driven by misses, see the top of this file. */
	(void)p;
}

static size_t pmc_mem_bytes(const struct pmc_policy *p)
{
	return sizeof(*p) + ALIGN((size_t)p->nr_slots, 8) * sizeof(*p->slot) +
	       (size_t)PMC_SKETCH_ROWS * p->row_words * sizeof(*p->sketch);
}

const struct pmc_policy_ops pmc_policy_default = {
	.name = "tinylfu-clock",
	.create = pmc_create,
	.destroy = pmc_destroy,
	.hit = pmc_hit,
	.miss = pmc_miss,
	.insert = pmc_insert,
	.remove = pmc_remove,
	.replace = pmc_replace,
	.evict_candidate = pmc_evict_candidate,
	.tick = pmc_tick,
	.mem_bytes = pmc_mem_bytes,
};

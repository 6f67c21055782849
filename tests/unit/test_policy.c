// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace test of the dm-pmcache policy (pmcache_policy.c).
 *
 * A small mechanism simulator drives a policy through its ops table the way
 * pmcache_target.c does: a cache of N slots, a free list, a map
 * oblock -> slot. On a miss, with a free slot: ask miss(), insert if
 * admitted; without one: ask miss(), and if admitted take evict_candidate(),
 * remove() it and insert() the new block in its slot.
 *
 * Synthetic traces compare the default policy against LRU (below, admits
 * everything) and Belady's OPT (offline, with bypass: the best any policy
 * could do). Also: the evictable callback is honoured, memory stays within
 * budget, and concurrent calls are memory-safe (run it under ASan/UBSan, or
 * build with -fsanitize=thread: `make -C tests/unit tsan`).
 *
 * Output is TAP-like: "ok <name>" / "not ok <name>"; exit status 1 on any
 * failure. `test_policy concurrency` runs only the concurrency test.
 */
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "pmcache_policy.h"

static int nr_failed, nr_passed;

static void check(bool cond, const char *name)
{
	printf("%s %s\n", cond ? "ok" : "not ok", name);
	if (cond)
		nr_passed++;
	else
		nr_failed++;
	fflush(stdout);
}

/* ---- Deterministic PRNG (splitmix64) ---- */

static u64 rng_state = 42;

static u64 rng_next(u64 *s)
{
	u64 z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static u32 rng_below(u64 *s, u32 n)
{
	return (u32)(((rng_next(s) >> 32) * n) >> 32);
}

static double rng_unit(u64 *s)
{
	return (rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- LRU reference policy: admits everything, evicts least recent ---- */

struct lru_policy {
	spinlock_t lock;	/* everything below */
	u32 nr_slots;
	u32 *prev, *next;	/* index nr_slots is the list head */
	u8 *resident;
};

static struct lru_policy *to_lru(struct pmc_policy *p)
{
	return (struct lru_policy *)p;
}

static void lru_unlink(struct lru_policy *l, u32 s)
{
	l->next[l->prev[s]] = l->next[s];
	l->prev[l->next[s]] = l->prev[s];
}

static void lru_push_front(struct lru_policy *l, u32 s)
{
	u32 h = l->nr_slots;

	l->next[s] = l->next[h];
	l->prev[s] = h;
	l->prev[l->next[h]] = s;
	l->next[h] = s;
}

static void lru_destroy(struct pmc_policy *p)
{
	struct lru_policy *l = to_lru(p);

	if (!l)
		return;
	free(l->prev);
	free(l->next);
	free(l->resident);
	free(l);
}

static struct pmc_policy *lru_create(u32 nr_slots)
{
	struct lru_policy *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	spin_lock_init(&l->lock);
	l->nr_slots = nr_slots;
	l->prev = calloc(nr_slots + 1, sizeof(u32));
	l->next = calloc(nr_slots + 1, sizeof(u32));
	l->resident = calloc(nr_slots, 1);
	if (!l->prev || !l->next || !l->resident) {
		lru_destroy((struct pmc_policy *)l);
		return NULL;
	}
	l->prev[nr_slots] = nr_slots;
	l->next[nr_slots] = nr_slots;
	return (struct pmc_policy *)l;
}

static void lru_hit(struct pmc_policy *p, u32 slot)
{
	struct lru_policy *l = to_lru(p);

	spin_lock(&l->lock);
	if (l->resident[slot]) {
		lru_unlink(l, slot);
		lru_push_front(l, slot);
	}
	spin_unlock(&l->lock);
}

static bool lru_miss(struct pmc_policy *p, u64 oblock, bool have_free)
{
	(void)p;
	(void)oblock;
	(void)have_free;
	return true;
}

static void lru_insert(struct pmc_policy *p, u32 slot, u64 oblock)
{
	struct lru_policy *l = to_lru(p);

	(void)oblock;
	spin_lock(&l->lock);
	if (l->resident[slot])
		lru_unlink(l, slot);
	l->resident[slot] = 1;
	lru_push_front(l, slot);
	spin_unlock(&l->lock);
}

static void lru_remove(struct pmc_policy *p, u32 slot)
{
	struct lru_policy *l = to_lru(p);

	spin_lock(&l->lock);
	if (l->resident[slot]) {
		lru_unlink(l, slot);
		l->resident[slot] = 0;
	}
	spin_unlock(&l->lock);
}

static void lru_replace(struct pmc_policy *p, u32 old, u32 slot)
{
	lru_remove(p, old);
	lru_insert(p, slot, 0);
}

static u32 lru_evict_candidate(struct pmc_policy *p, pmc_evictable_fn evictable,
			       void *ctx)
{
	struct lru_policy *l = to_lru(p);
	u32 s, found = PMC_NO_SLOT;

	spin_lock(&l->lock);
	for (s = l->prev[l->nr_slots]; s != l->nr_slots; s = l->prev[s]) {
		if (evictable(ctx, s)) {
			found = s;
			break;
		}
	}
	spin_unlock(&l->lock);
	return found;
}

static void lru_tick(struct pmc_policy *p)
{
	(void)p;
}

static size_t lru_mem_bytes(const struct pmc_policy *p)
{
	const struct lru_policy *l = (const struct lru_policy *)p;

	return sizeof(*l) + (l->nr_slots + 1) * 2 * sizeof(u32) + l->nr_slots;
}

static const struct pmc_policy_ops pmc_policy_lru = {
	.name = "lru",
	.create = lru_create,
	.destroy = lru_destroy,
	.hit = lru_hit,
	.miss = lru_miss,
	.insert = lru_insert,
	.remove = lru_remove,
	.replace = lru_replace,
	.evict_candidate = lru_evict_candidate,
	.tick = lru_tick,
	.mem_bytes = lru_mem_bytes,
};

/* ---- Mechanism simulator ---- */

#define NOT_CACHED U32_MAX

struct sim {
	const struct pmc_policy_ops *ops;
	struct pmc_policy *p;
	u32 nr_slots;
	u32 *free_list;
	u32 nr_free;
	u32 *map;		/* oblock -> slot, NOT_CACHED */
	u32 *slot_block;	/* slot -> oblock, NOT_CACHED when free */
	u8 *dirty;		/* slots the evictable callback refuses */
	u64 hits, misses;
	u64 bad_candidates;	/* evict_candidate returned a refused slot */
	u64 no_candidate;
};

static bool sim_evictable(void *ctx, u32 slot)
{
	struct sim *s = ctx;

	return slot < s->nr_slots && s->slot_block[slot] != NOT_CACHED &&
	       !s->dirty[slot];
}

static void sim_init(struct sim *s, const struct pmc_policy_ops *ops,
		     u32 nr_slots, u32 universe)
{
	u32 i;

	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->p = ops->create(nr_slots);
	s->nr_slots = nr_slots;
	s->free_list = malloc(nr_slots * sizeof(u32));
	s->map = malloc(universe * sizeof(u32));
	s->slot_block = malloc(nr_slots * sizeof(u32));
	s->dirty = calloc(nr_slots, 1);
	if (!s->p || !s->free_list || !s->map || !s->slot_block || !s->dirty) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	memset(s->map, 0xff, universe * sizeof(u32));
	memset(s->slot_block, 0xff, nr_slots * sizeof(u32));
	/* Hand out slots in a scrambled order, as a real free list would. */
	for (i = 0; i < nr_slots; i++)
		s->free_list[i] = i;
	for (i = nr_slots - 1; i > 0; i--) {
		u32 j = rng_below(&rng_state, i + 1), t = s->free_list[i];

		s->free_list[i] = s->free_list[j];
		s->free_list[j] = t;
	}
	s->nr_free = nr_slots;
}

static void sim_fini(struct sim *s)
{
	s->ops->destroy(s->p);
	free(s->free_list);
	free(s->map);
	free(s->slot_block);
	free(s->dirty);
}

static void sim_install(struct sim *s, u32 slot, u32 oblock)
{
	s->ops->insert(s->p, slot, oblock);
	s->slot_block[slot] = oblock;
	s->map[oblock] = slot;
}

/* One read of @oblock; returns true on a hit. */
static bool sim_access(struct sim *s, u32 oblock)
{
	u32 slot = s->map[oblock];

	if (slot != NOT_CACHED) {
		s->ops->hit(s->p, slot);
		s->hits++;
		return true;
	}
	s->misses++;
	if (s->nr_free) {
		if (s->ops->miss(s->p, oblock, true))
			sim_install(s, s->free_list[--s->nr_free], oblock);
		return false;
	}
	if (!s->ops->miss(s->p, oblock, false))
		return false;
	slot = s->ops->evict_candidate(s->p, sim_evictable, s);
	if (slot == PMC_NO_SLOT) {
		s->no_candidate++;
		return false;
	}
	if (!sim_evictable(s, slot)) {
		s->bad_candidates++;
		return false;
	}
	s->ops->remove(s->p, slot);
	s->map[s->slot_block[slot]] = NOT_CACHED;
	s->slot_block[slot] = NOT_CACHED;
	sim_install(s, slot, oblock);
	return false;
}

/* Hit ratio of @ops on @trace, counting only accesses from @measure_from. */
static double run_policy(const struct pmc_policy_ops *ops, u32 nr_slots,
			 const u32 *trace, size_t n, size_t measure_from,
			 u32 universe)
{
	u64 hits = 0, tick_every = nr_slots;
	struct sim s;
	size_t i;

	sim_init(&s, ops, nr_slots, universe);
	for (i = 0; i < n; i++) {
		bool hit = sim_access(&s, trace[i]);

		if (i >= measure_from && hit)
			hits++;
		if (i % tick_every == 0)
			ops->tick(s.p);
	}
	if (s.bad_candidates)
		printf("# %s: %llu bad candidates\n", ops->name,
		       (unsigned long long)s.bad_candidates);
	sim_fini(&s);
	return n > measure_from ? (double)hits / (double)(n - measure_from) : 0;
}

/* ---- Belady's OPT with bypass, offline ---- */

struct heap {
	u64 *v;
	size_t n;
};

static void heap_push(struct heap *h, u64 x)
{
	size_t i = h->n++;

	while (i && h->v[(i - 1) / 2] < x) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = x;
}

static void heap_pop(struct heap *h)
{
	u64 x = h->v[--h->n];
	size_t i = 0, c;

	while ((c = 2 * i + 1) < h->n) {
		if (c + 1 < h->n && h->v[c + 1] > h->v[c])
			c++;
		if (h->v[c] <= x)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	h->v[i] = x;
}

static double run_opt(u32 nr_slots, const u32 *trace, size_t n,
		      size_t measure_from, u32 universe)
{
	u64 *next = malloc(n * sizeof(u64));
	u64 *cur = malloc(universe * sizeof(u64));	/* next use if resident */
	u64 *last = malloc(universe * sizeof(u64));
	struct heap h = { malloc(n * sizeof(u64)), 0 };
	u64 hits = 0, count = 0;
	size_t i;

	if (!next || !cur || !last || !h.v) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	for (i = 0; i < universe; i++) {
		last[i] = U64_MAX;
		cur[i] = U64_MAX;
	}
	/* Next use of each access; "never" is n + i, unique and beyond all. */
	for (i = n; i-- > 0;) {
		next[i] = last[trace[i]] == U64_MAX ? n + i : last[trace[i]];
		last[trace[i]] = i;
	}
	for (i = 0; i < n; i++) {
		u32 b = trace[i];

		if (cur[b] != U64_MAX) {
			if (i >= measure_from)
				hits++;
			cur[b] = next[i];
			heap_push(&h, next[i]);
			continue;
		}
		if (count < nr_slots) {
			count++;
			cur[b] = next[i];
			heap_push(&h, next[i]);
			continue;
		}
		/* Drop stale heap entries: the top must be a resident's. */
		for (;;) {
			u64 top = h.v[0];
			u32 tb = trace[top < n ? top : top - n];

			if (cur[tb] == top)
				break;
			heap_pop(&h);
		}
		if (h.v[0] > next[i]) {
			u64 top = h.v[0];

			cur[trace[top < n ? top : top - n]] = U64_MAX;
			heap_pop(&h);
			cur[b] = next[i];
			heap_push(&h, next[i]);
		}
	}
	free(next);
	free(cur);
	free(last);
	free(h.v);
	return n > measure_from ? (double)hits / (double)(n - measure_from) : 0;
}

/* ---- Traces ---- */

struct trace {
	u32 *v;
	size_t n, cap;
	u32 universe;
};

static void trace_add(struct trace *t, u32 b)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 1 << 16;
		t->v = realloc(t->v, t->cap * sizeof(u32));
		if (!t->v) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
	}
	t->v[t->n++] = b;
	if (b >= t->universe)
		t->universe = b + 1;
}

struct zipf {
	double *cdf;
	u32 *perm;	/* rank -> block: popular blocks are scattered */
	u32 n;
};

static void zipf_init(struct zipf *z, u32 n, double alpha)
{
	double sum = 0;
	u32 i;

	z->n = n;
	z->cdf = malloc(n * sizeof(double));
	z->perm = malloc(n * sizeof(u32));
	if (!z->cdf || !z->perm) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	for (i = 0; i < n; i++) {
		sum += 1.0 / pow(i + 1, alpha);
		z->cdf[i] = sum;
		z->perm[i] = i;
	}
	for (i = 0; i < n; i++)
		z->cdf[i] /= sum;
	for (i = n - 1; i > 0; i--) {
		u32 j = rng_below(&rng_state, i + 1), t = z->perm[i];

		z->perm[i] = z->perm[j];
		z->perm[j] = t;
	}
}

static u32 zipf_next(const struct zipf *z)
{
	double u = rng_unit(&rng_state);
	u32 lo = 0, hi = z->n - 1;

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return z->perm[lo];
}

static void zipf_fini(struct zipf *z)
{
	free(z->cdf);
	free(z->perm);
}

/* ---- Hit-ratio experiments ---- */

#define CACHE	10000u	/* slots; not a power of two on purpose */
#define EPS	0.000000001	/* for "<= opt" on doubles */

struct result {
	const char *name;
	double def, lru, opt;
};

static struct result results[16];
static int nr_results;

static struct result *measure(const char *name, const struct trace *t,
			      size_t measure_from)
{
	struct result *r = &results[nr_results++];

	r->name = name;
	r->def = run_policy(&pmc_policy_default, CACHE, t->v, t->n,
			    measure_from, t->universe);
	r->lru = run_policy(&pmc_policy_lru, CACHE, t->v, t->n, measure_from,
			    t->universe);
	r->opt = run_opt(CACHE, t->v, t->n, measure_from, t->universe);
	printf("# %-28s default %6.2f%%  lru %6.2f%%  opt %6.2f%%\n", name,
	       100 * r->def, 100 * r->lru, 100 * r->opt);
	return r;
}

static void test_zipf_steady(double alpha, const char *name)
{
	u32 footprint = 5 * CACHE;
	struct trace t = { 0 };
	struct result *r;
	struct zipf z;
	size_t i, warm = 100 * CACHE;

	zipf_init(&z, footprint, alpha);
	for (i = 0; i < warm + 30 * CACHE; i++)
		trace_add(&t, zipf_next(&z));
	r = measure(name, &t, warm);
	check(r->def >= r->lru, "zipf steady: default >= lru");
	check(r->def <= r->opt + EPS, "zipf steady: default <= opt");
	zipf_fini(&z);
	free(t.v);
}

static void test_zipf_cold(double alpha, const char *name)
{
	u32 footprint = 5 * CACHE, distinct = 0;
	u8 *seen;
	struct trace t = { 0 };
	struct result *r;
	struct zipf z;
	size_t i;

	/*
	 * From an empty cache, until the trace has touched as many distinct
	 * blocks as the cache holds, then as long again: the cache fills
	 * midway, as in the first minute of a cold cache under fio.
	 */
	zipf_init(&z, footprint, alpha);
	seen = calloc(footprint, 1);
	if (!seen)
		exit(2);
	while (distinct < CACHE) {
		u32 b = zipf_next(&z);

		distinct += !seen[b];
		seen[b] = 1;
		trace_add(&t, b);
	}
	for (i = t.n; i > 0; i--)
		trace_add(&t, zipf_next(&z));
	free(seen);
	r = measure(name, &t, 0);
	check(r->def >= r->lru - 0.02,
	      "zipf cold start: default within 2 points of admit-all lru");
	check(r->def <= r->opt + EPS, "zipf cold start: default <= opt");
	zipf_fini(&z);
	free(t.v);
}

static void test_loop(void)
{
	u32 len = CACHE + CACHE / 10, pass, i;
	struct trace t = { 0 };
	struct result *r;

	for (pass = 0; pass < 30; pass++)
		for (i = 0; i < len; i++)
			trace_add(&t, i);
	r = measure("loop 1.1x cache", &t, 10 * (size_t)len);
	check(r->def >= r->lru + 0.5, "loop: default beats lru by 50 points");
	check(r->def <= r->opt + EPS, "loop: default <= opt");
	free(t.v);
}

/*
 * Warm a hot set of @hot blocks, scan 10x the cache once, then touch each
 * hot block once in random order: the hit ratio of that last pass is the
 * share of the hot set that survived the scan.
 */
static void test_scan(u32 hot, const char *name)
{
	u32 scan = 10 * CACHE, i, *order;
	struct trace t = { 0 };
	struct result *r;
	size_t from;

	for (i = 0; i < 10 * hot; i++)
		trace_add(&t, rng_below(&rng_state, hot));
	for (i = 0; i < scan; i++)
		trace_add(&t, hot + i);
	from = t.n;
	order = malloc(hot * sizeof(u32));
	if (!order)
		exit(2);
	for (i = 0; i < hot; i++)
		order[i] = i;
	for (i = hot - 1; i > 0; i--) {
		u32 j = rng_below(&rng_state, i + 1), x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
	for (i = 0; i < hot; i++)
		trace_add(&t, order[i]);
	r = measure(name, &t, from);
	check(r->def > 0.80, "scan: hot set hit ratio after the scan > 80%");
	check(r->def >= r->lru, "scan: default >= lru");
	check(r->def <= r->opt + EPS, "scan: default <= opt");
	free(order);
	free(t.v);
}

/*
 * Zipf, then a scan, then zipf again: the scan must not cost the zipf hot
 * set (measured over the zipf phase after the scan).
 */
static void test_zipf_scan(void)
{
	struct trace t = { 0 };
	struct result *r, *base;
	struct zipf z;
	size_t i, from;

	zipf_init(&z, 5 * CACHE, 0.9);
	for (i = 0; i < 30 * CACHE; i++)
		trace_add(&t, zipf_next(&z));
	for (i = 0; i < 10 * CACHE; i++)
		trace_add(&t, 5 * CACHE + (u32)i);
	from = t.n;
	for (i = 0; i < 5 * CACHE; i++)
		trace_add(&t, zipf_next(&z));
	r = measure("zipf 0.9 + scan 10x + zipf", &t, from);
	check(r->def >= r->lru, "zipf+scan: default >= lru");
	check(r->def <= r->opt + EPS, "zipf+scan: default <= opt");
	/* Same trace without the scan, as a baseline. */
	memmove(t.v + 30 * CACHE, t.v + 40 * CACHE, 5 * CACHE * sizeof(u32));
	t.n = 35 * CACHE;
	base = measure("  same without the scan", &t, 30 * CACHE);
	check(r->def >= base->def - 0.05,
	      "zipf+scan: scan costs the default < 5 points");
	zipf_fini(&z);
	free(t.v);
}

/*
 * The popularity shifts: zipf 0.9 over one set of blocks, then over another
 * (new ranks, half the blocks new). Reported twice: the transition (the
 * first 20x cache accesses after the shift) and after it (the next 40x):
 * frequency must age, or the old hot set would stay forever.
 */
static void test_zipf_shift(void)
{
	struct result *r1, *r2;
	struct trace t = { 0 };
	struct zipf z1, z2;
	size_t i, from;

	zipf_init(&z1, 5 * CACHE, 0.9);
	zipf_init(&z2, 5 * CACHE, 0.9);
	for (i = 0; i < 5 * CACHE; i++)
		z2.perm[i] += (i & 1) ? 5 * CACHE : 0;
	for (i = 0; i < 50 * CACHE; i++)
		trace_add(&t, zipf_next(&z1));
	from = t.n;
	for (i = 0; i < 20 * CACHE; i++)
		trace_add(&t, zipf_next(&z2));
	r1 = measure("zipf 0.9 shift: transition", &t, from);
	from = t.n;
	for (i = 0; i < 40 * CACHE; i++)
		trace_add(&t, zipf_next(&z2));
	r2 = measure("zipf 0.9 shift: after", &t, from);
	check(r2->def >= r2->lru, "shift: default >= lru once adapted");
	check(r1->def <= r1->opt + EPS && r2->def <= r2->opt + EPS,
	      "shift: default <= opt");
	zipf_fini(&z1);
	zipf_fini(&z2);
	free(t.v);
}

/* ---- Functional tests ---- */

/* evict_candidate honours the callback and returns only resident slots. */
static void test_evictable(void)
{
	const struct pmc_policy_ops *ops = &pmc_policy_default;
	u32 n = 1000, i, slot, bad = 0, none = 0;
	struct sim s;

	sim_init(&s, ops, n, 100 * n);
	/* Fill the cache, then make every other slot dirty. */
	for (i = 0; i < n; i++)
		sim_access(&s, i);
	check(s.nr_free == 0, "evictable: cache fills while slots are free");
	for (i = 0; i < n; i += 2)
		s.dirty[i] = 1;
	for (i = 0; i < 5 * n; i++) {
		slot = ops->evict_candidate(s.p, sim_evictable, &s);
		if (slot == PMC_NO_SLOT) {
			none++;
			continue;
		}
		if (!sim_evictable(&s, slot))
			bad++;
		/* Evict and refill with a new block. */
		ops->remove(s.p, slot);
		s.map[s.slot_block[slot]] = NOT_CACHED;
		sim_install(&s, slot, n + i);
	}
	check(bad == 0 && none == 0,
	      "evictable: candidates are always resident and evictable");
	memset(s.dirty, 1, n);
	check(ops->evict_candidate(s.p, sim_evictable, &s) == PMC_NO_SLOT,
	      "evictable: nothing evictable gives PMC_NO_SLOT");
	/* Removing everything leaves nothing to evict. */
	memset(s.dirty, 0, n);
	for (i = 0; i < n; i++) {
		ops->remove(s.p, i);
		s.map[s.slot_block[i]] = NOT_CACHED;
		s.slot_block[i] = NOT_CACHED;
	}
	check(ops->evict_candidate(s.p, sim_evictable, &s) == PMC_NO_SLOT,
	      "evictable: empty cache gives PMC_NO_SLOT");
	/* Out-of-range and repeated calls are harmless. */
	ops->hit(s.p, n);
	ops->remove(s.p, 0);
	ops->insert(s.p, 3, 77);
	ops->insert(s.p, 3, 78);
	check(ops->evict_candidate(s.p, sim_evictable, &s) == PMC_NO_SLOT,
	      "evictable: callback refusal respected for unknown slots");
	sim_fini(&s);
}

static bool evictable_any(void *ctx, u32 slot)
{
	(void)ctx;
	(void)slot;
	return true;
}

struct one_clean {
	u32 slot;		/* the only evictable slot */
	u64 calls;		/* evictable() calls */
};

static bool evictable_one(void *ctx, u32 slot)
{
	struct one_clean *o = ctx;

	o->calls++;
	return slot == o->slot;
}

/*
 * A full cache of 1M dirty blocks but one: each eviction looks at a bounded
 * number of slots (it runs with interrupts off), and the hand moves on, so
 * that retries reach the clean block without rescanning from one place.
 */
static void test_evict_bounded(void)
{
	const struct pmc_policy_ops *ops = &pmc_policy_default;
	u32 n = 1u << 20, i, got = PMC_NO_SLOT, calls_made = 0;
	struct one_clean o = { .slot = n - 3 };
	u64 most = 0, before;
	struct pmc_policy *p = ops->create(n);

	if (!p) {
		check(false, "evict bounded: policy created");
		return;
	}
	for (i = 0; i < n; i++)
		ops->insert(p, i, i);
	while (got == PMC_NO_SLOT && calls_made < n) {
		before = o.calls;
		got = ops->evict_candidate(p, evictable_one, &o);
		calls_made++;
		if (o.calls - before > most)
			most = o.calls - before;
	}
	check(got == o.slot && most <= 8192,
	      "evict bounded: at most 8192 slots a call, and the retries find the one clean block");
	check(calls_made <= n / 8192 + 2, "evict bounded: the hand moves on between calls");
	ops->destroy(p);
}

/*
 * The hand skips empty groups of 8 slots: a lone resident slot is found
 * wherever it sits, in caches of any size (the last group partly past the
 * end), and after replace() moved it.
 */
static void test_lone_resident(void)
{
	const struct pmc_policy_ops *ops = &pmc_policy_default;
	static const u32 sizes[] = { 1, 7, 8, 9, 21, 64, 100 };
	u32 k, n, j, to, other, got, bad = 0;
	struct pmc_policy *p;

	for (k = 0; k < ARRAY_SIZE(sizes); k++) {
		n = sizes[k];
		for (j = 0; j < n; j++) {
			p = ops->create(n);
			if (!p) {
				bad++;
				continue;
			}
			ops->insert(p, j, 1000 + j);
			got = ops->evict_candidate(p, evictable_any, NULL);
			if (got != j)
				bad++;
			/* Moved: the old slot is gone, the new one found. */
			to = n - 1 - j;
			if (to != j)
				ops->replace(p, j, to);
			got = ops->evict_candidate(p, evictable_any, NULL);
			if (got != to)
				bad++;
			ops->remove(p, to);
			if (ops->evict_candidate(p, evictable_any, NULL) != PMC_NO_SLOT)
				bad++;
			/* A late hit() on the removed slot: still no candidate. */
			ops->hit(p, to);
			other = (to + 1) % n;
			if (other != to) {
				ops->insert(p, other, 2000);
				if (ops->evict_candidate(p, evictable_any, NULL) != other)
					bad++;
			}
			ops->destroy(p);
		}
	}
	check(bad == 0, "evictable: a lone resident slot is found anywhere, any cache size");
}

/* replace(): the new slot inherits the block's frequency and residency. */
static void test_replace(void)
{
	const struct pmc_policy_ops *ops = &pmc_policy_default;
	u32 i, first, second, third;
	struct sim s;

	sim_init(&s, ops, 3, 100);
	/* The mechanism would let any of them go: only the policy decides. */
	for (i = 0; i < 3; i++)
		s.slot_block[i] = 10 + i;
	ops->insert(s.p, 0, 10);
	ops->insert(s.p, 1, 11);
	for (i = 0; i < 10; i++)
		ops->hit(s.p, 0);
	ops->replace(s.p, 0, 2);
	first = ops->evict_candidate(s.p, sim_evictable, &s);
	ops->remove(s.p, first);
	second = ops->evict_candidate(s.p, sim_evictable, &s);
	ops->remove(s.p, second);
	third = ops->evict_candidate(s.p, sim_evictable, &s);
	check(first == 1 && second == 2 && third == PMC_NO_SLOT,
	      "replace: the new slot keeps the block's frequency, the old one is gone");
	sim_fini(&s);

	/*
	 * A block only ever written (no miss, no read hit) against one read
	 * never since: each write counts, so the written one stays.
	 */
	sim_init(&s, ops, 3, 100);
	for (i = 0; i < 3; i++)
		s.slot_block[i] = 10 + i;
	ops->insert(s.p, 1, 10);
	ops->insert(s.p, 2, 11);
	/* Into slot 0, where the clock's hand starts. */
	ops->replace(s.p, 1, 0);
	first = ops->evict_candidate(s.p, sim_evictable, &s);
	check(first == 2, "replace: a write counts as a hit, a block written over is kept");
	sim_fini(&s);
}

static void test_admission_cold(void)
{
	const struct pmc_policy_ops *ops = &pmc_policy_default;
	struct pmc_policy *p = ops->create(100);
	u32 i, admitted = 0;

	for (i = 0; i < 100; i++)
		admitted += ops->miss(p, 1000 + i, true);
	check(admitted == 100, "admission: every miss admitted while free");
	for (i = 0; i < 100; i++)
		ops->insert(p, i, 1000 + i);
	admitted = 0;
	for (i = 0; i < 100; i++)
		admitted += ops->miss(p, 5000 + i, false);
	check(admitted == 0, "admission: first touches refused when full");
	ops->destroy(p);
}

static void test_memory(void)
{
	static const u32 sizes[] = { 1, 7, 100, 10000, 1000003, 4u << 20 };
	const struct pmc_policy_ops *ops = &pmc_policy_default;
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct pmc_policy *p = ops->create(sizes[i]);
		size_t bytes;

		if (!p) {
			ok = false;
			continue;
		}
		bytes = ops->mem_bytes(p);
		printf("# mem: %u slots: %zu bytes (%.3f per slot)\n", sizes[i],
		       bytes, (double)bytes / sizes[i]);
		if (bytes > 4ull * sizes[i] + 512)
			ok = false;
		ops->destroy(p);
	}
	check(ok, "memory: at most 4 bytes per slot (+512)");
	check(!ops->create(0), "memory: zero slots refused");
}

/* ---- Concurrency smoke test ---- */

#define NR_THREADS	4
#define CONC_SLOTS	4096u

struct worker {
	const struct pmc_policy_ops *ops;
	struct pmc_policy *p;
	u32 first, nr;			/* own slots: [first, first + nr) */
	u8 resident[CONC_SLOTS];	/* own view, only this thread */
	int *stop;		/* __atomic accesses */
	u64 seed, ops_done, foreign;
};

static bool worker_evictable(void *ctx, u32 slot)
{
	struct worker *w = ctx;

	return slot >= w->first && slot < w->first + w->nr &&
	       w->resident[slot - w->first];
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	while (!__atomic_load_n(w->stop, __ATOMIC_RELAXED)) {
		u32 r = rng_below(&w->seed, 100);
		u32 i = rng_below(&w->seed, w->nr), slot = w->first + i;
		u64 ob = rng_below(&w->seed, 1u << 20);

		if (r < 50) {
			w->ops->hit(w->p, slot);
		} else if (r < 75) {
			w->ops->miss(w->p, ob, rng_below(&w->seed, 2));
		} else if (r < 85) {
			w->ops->insert(w->p, slot, ob);
			w->resident[i] = 1;
		} else if (r < 92) {
			w->ops->remove(w->p, slot);
			w->resident[i] = 0;
		} else if (r < 99) {
			slot = w->ops->evict_candidate(w->p, worker_evictable, w);
			if (slot != PMC_NO_SLOT) {
				if (!worker_evictable(w, slot))
					w->foreign++;
				else
					w->resident[slot - w->first] = 0;
				w->ops->remove(w->p, slot);
			}
		} else {
			w->ops->tick(w->p);
		}
		w->ops_done++;
	}
	return NULL;
}

static void test_concurrency(void)
{
	const struct pmc_policy_ops *ops = &pmc_policy_default;
	struct pmc_policy *p = ops->create(CONC_SLOTS);
	static struct worker w[NR_THREADS];
	static int stop;
	pthread_t th[NR_THREADS];
	u64 total = 0, foreign = 0;
	bool started = true;
	int i;

	if (!p) {
		check(false, "concurrency: create");
		return;
	}
	for (i = 0; i < NR_THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].ops = ops;
		w[i].p = p;
		w[i].nr = CONC_SLOTS / NR_THREADS;
		w[i].first = i * w[i].nr;
		w[i].stop = &stop;
		w[i].seed = 1000 + i;
		if (pthread_create(&th[i], NULL, worker_run, &w[i]))
			started = false;
	}
	sleep(1);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < NR_THREADS; i++) {
		pthread_join(th[i], NULL);
		total += w[i].ops_done;
		foreign += w[i].foreign;
	}
	printf("# concurrency: %d threads, %llu calls in 1 s\n", NR_THREADS,
	       (unsigned long long)total);
	check(started && foreign == 0,
	      "concurrency: no candidate outside the caller's approval");
	ops->destroy(p);
}

int main(int argc, char **argv)
{
	int i;

	if (argc > 1 && !strcmp(argv[1], "concurrency")) {
		test_concurrency();
		return nr_failed ? 1 : 0;
	}
	test_memory();
	test_admission_cold();
	test_evictable();
	test_evict_bounded();
	test_lone_resident();
	test_replace();

	printf("# hit ratios, cache %u slots (default = %s)\n", CACHE,
	       pmc_policy_default.name);
	test_zipf_steady(0.9, "zipf 0.9 steady, 5x cache");
	test_zipf_steady(1.2, "zipf 1.2 steady, 5x cache");
	test_loop();
	test_scan(CACHE / 2, "hot 0.5x, scan 10x, hot");
	test_scan(CACHE * 9 / 10, "hot 0.9x, scan 10x, hot");
	test_zipf_scan();
	test_zipf_shift();
	test_zipf_cold(0.9, "zipf 0.9 cold start");
	test_zipf_cold(1.2, "zipf 1.2 cold start");

	printf("#\n# %-28s %9s %9s %9s\n", "trace", "default", "lru", "opt");
	for (i = 0; i < nr_results; i++)
		printf("# %-28s %8.2f%% %8.2f%% %8.2f%%\n", results[i].name,
		       100 * results[i].def, 100 * results[i].lru,
		       100 * results[i].opt);

	test_concurrency();
	printf("# test_policy: %d passed, %d failed\n", nr_passed, nr_failed);
	return nr_failed ? 1 : 0;
}

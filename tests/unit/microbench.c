// SPDX-License-Identifier: GPL-2.0
/*
 * Native microbenchmark of dm-pmcache's hot path (make microbench).
 *
 * Built from the module's own sources (pmcache_meta.c, pmcache_index.c,
 * pmcache_alloc.c, pmcache_pmem.c, pmcache_policy.c) on a DRAM buffer
 * standing in for pmem; the userspace pmcache_pmem.c persists with this
 * CPU's real non-temporal stores (movnti) and sfence, as the kernel's
 * memcpy_flushcache and pmem_wmb do on x86. crc32c uses the crc32
 * instruction, as the kernel does (microbench_crc.h).
 *
 * Measured, in the same run, interleaved round by round:
 *   floor         4 KiB non-temporal copy into a cache block + one sfence
 *   cached_write  a 4 KiB overwrite of a dirty cached block, as
 *                 pmc_write_chunk and pmc_install do it: free slot from the
 *                 allocator, the key's guess (pmc_slot_next_key), copy, key,
 *                 fence, stripe lock, index lookup, pmc_rec_replace (commit
 *                 and the clear of the stripe's stale record, fence), index
 *                 replace, policy remove/insert, unlock, the stale slot
 *                 back to the allocator; the replaced copy becomes the
 *                 stripe's stale slot (pmcache_slot.h)
 *   cached_write_new  the same for a block not cached before (no old copy)
 *   cached_write_clean  an overwrite of a block whose copy is clean (written
 *                 back; marked so, untimed, before the batch)
 *   commit_floor  what any crash-atomic out-of-place write costs at least:
 *                 the floor's copy, then pmc_rec_commit (key, fence, commit,
 *                 fence: the commit must not persist before the data), with
 *                 no index, policy or allocator work and no old record
 *   lookup        stripe lock, index lookup, policy hit (a read hit
 *                 without its copy)
 *   cached_read   lookup plus the 4 KiB copy out of pmem
 * Not included: bio handling, per-CPU counters, the dm core.
 *
 *   microbench [--blocks N] [--rounds R]   timing; prints "result NAME NS"
 *   microbench --callgrind N               N of each operation, no timing
 *                                          (for valgrind --tool=callgrind;
 *                                          see the Makefile's microbench)
 */
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pmcache_meta.h"
#include "pmcache_index.h"
#include "pmcache_alloc.h"
#include "pmcache_pmem.h"
#include "pmcache_policy.h"
#include "pmcache_slot.h"

#define BS 4096u
#define NOINLINE __attribute__((noinline))

struct mb {
	u8 *pmem;
	size_t size;
	struct pmc_meta meta;
	struct pmc_index idx;
	struct pmc_alloc alloc;
	const struct pmc_policy_ops *pops;
	struct pmc_policy *pol;
	u8 *src;
	u8 *dst;
	u32 nr;
};

static u64 rng_state = 0x9e3779b97f4a7c15ULL;
static u64 rng(void)
{
	u64 x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "microbench: %s\n", what);
	exit(1);
}

static void mb_setup(struct mb *m, u32 blocks)
{
	struct pmc_origin_id origin = { .sectors = 1ULL << 40, .name = "vdz" };
	u8 uuid[16] = { 1 };
	u32 i;

	memset(m, 0, sizeof(*m));
	m->size = PMC_REC_OFFSET + (size_t)blocks * (BS + PMC_REC_SIZE) + 2 * PMC_DATA_ALIGN;
	m->pmem = mmap(NULL, m->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->pmem == MAP_FAILED)
		die("mmap");
	/*
	 * The kernel reaches pmem through its huge-page direct map: huge
	 * pages here too, asked for before the memset faults the buffer in.
	 */
	madvise(m->pmem, m->size, MADV_HUGEPAGE);
	memset(m->pmem, 0, m->size);
	if (pmc_meta_format(&m->meta, m->pmem, m->size, BS, &origin, uuid, 0))
		die("format");
	m->nr = (u32)m->meta.geo.nr_blocks;
	if (pmc_index_init(&m->idx, m->nr) || pmc_alloc_init(&m->alloc, &m->idx, 64, 1))
		die("index");
	/* As after recovery of an empty cache: every slot free, in order. */
	for (i = m->nr; i-- > 0;)
		pmc_alloc_put(&m->alloc, i);
	m->pops = &pmc_policy_default;
	m->pol = m->pops->create(m->nr);
	if (!m->pol)
		die("policy");
	m->src = aligned_alloc(64, BS);
	m->dst = aligned_alloc(64, BS);
	for (i = 0; i < BS; i++)
		m->src[i] = (u8)rng();
}

/* The floor: what persisting 4 KiB costs at least. */
NOINLINE void mb_floor(struct mb *m, u32 slot)
{
	pmc_pmem_copy(pmc_block_data(&m->meta, slot), m->src, BS);
	pmc_pmem_fence();
}

/* pmc_write_chunk + pmc_install (policy included) + the slot free, for 4 KiB. */
static __always_inline void mb_write(struct mb *m, u64 oblock)
{
	struct pmc_stripe *st = pmc_index_stripe(&m->idx, oblock);
	s64 d_used = 0, d_dirty = 0;	/* pmc_count: per-CPU counters in the kernel */
	u32 slot, old, to_free;
	u64 key;

	/* pmc_get_slot */
	slot = pmc_alloc_take_spare(&m->alloc, 0);
	if (slot == PMC_NO_SLOT)
		slot = pmc_alloc_get(&m->alloc, 0);
	if (slot == PMC_NO_SLOT)
		die("cache full (the working set must fit)");
	m->idx.slots[slot].state = PMC_S_BUSY;
	/* pmc_bio_to_pmem */
	key = pmc_slot_next_key(&m->idx, oblock);
	pmc_pmem_copy(pmc_block_data(&m->meta, slot), m->src, BS);
	pmc_rec_set_key(&m->meta, slot, key);
	pmc_pmem_fence();

	spin_lock(&st->lock);
	atomic_inc(&st->write_seq);
	old = pmc_index_lookup(&m->idx, oblock);
	/* pmc_install: the target's own state machine */
	to_free = pmc_slot_install(&m->idx, &m->meta, slot, oblock, &old, &key, true,
				   &d_used, &d_dirty);
	pmc_policy_installed(m->pops, m->pol, slot, oblock, old);
	spin_unlock(&st->lock);

	/* pmc_slot_free */
	if (to_free != PMC_NO_SLOT) {
		WRITE_ONCE(m->idx.slots[to_free].state, PMC_S_FREE);
		if (!pmc_alloc_keep_spare(&m->alloc, 0, to_free))
			pmc_alloc_put(&m->alloc, to_free);
	}
}

/* The floor of a crash-atomic write: data, then a record committed after it. */
NOINLINE void mb_commit_floor(struct mb *m, u32 slot)
{
	pmc_pmem_copy(pmc_block_data(&m->meta, slot), m->src, BS);
	/* The slot's own key and a dirty commit: what its record holds anyway. */
	pmc_rec_commit(&m->meta, slot, m->idx.slots[slot].key, true);
}

/* One fenced 8-byte record store: what each commit step costs. */
NOINLINE void mb_store64_fence(struct mb *m, u32 slot)
{
	pmc_pmem_store64(&m->meta.recs[slot].key, m->meta.recs[slot].key);
	pmc_pmem_fence();
}

/* Two copies, so that callgrind counts overwrites and first writes apart. */
NOINLINE void mb_cached_write(struct mb *m, u64 oblock)
{
	mb_write(m, oblock);
}

NOINLINE void mb_cached_write_new(struct mb *m, u64 oblock)
{
	mb_write(m, oblock);
}

NOINLINE void mb_cached_write_clean(struct mb *m, u64 oblock)
{
	mb_write(m, oblock);
}

/* A block's copy turns clean as writeback's completion makes it (fenced). */
static void mb_mark_clean(struct mb *m, u64 oblock)
{
	u32 slot = pmc_index_lookup(&m->idx, oblock);

	if (slot == PMC_NO_SLOT)
		die("mark clean: block not cached");
	pmc_slot_wb_done(&m->idx, &m->meta, slot, oblock, true);
}

/* The hit test of pmc_map_read, without the copy. */
NOINLINE u32 mb_lookup(struct mb *m, u64 oblock)
{
	struct pmc_stripe *st = pmc_index_stripe(&m->idx, oblock);
	u32 slot;

	spin_lock(&st->lock);
	slot = pmc_index_lookup(&m->idx, oblock);
	if (slot != PMC_NO_SLOT && (m->idx.slots[slot].state & PMC_S_STALE))
		slot = PMC_NO_SLOT;
	spin_unlock(&st->lock);
	if (slot != PMC_NO_SLOT)
		m->pops->hit(m->pol, slot);
	return slot;
}

/* A 4 KiB read hit: lookup and copy under the stripe lock, as pmc_map_read. */
NOINLINE int mb_cached_read(struct mb *m, u64 oblock)
{
	struct pmc_stripe *st = pmc_index_stripe(&m->idx, oblock);
	u32 slot;
	int r = -1;

	spin_lock(&st->lock);
	slot = pmc_index_lookup(&m->idx, oblock);
	if (slot != PMC_NO_SLOT && !(m->idx.slots[slot].state & PMC_S_STALE))
		r = pmc_pmem_read(m->dst, pmc_block_data(&m->meta, slot), BS);
	spin_unlock(&st->lock);
	if (r == 0)
		m->pops->hit(m->pol, slot);
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void check_crc(void)
{
	u8 buf[64];
	u32 i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (u8)rng();
	for (i = 0; i <= sizeof(buf); i++)
		if (pmc_crc32c_insn(~i, buf, i) != (pmc_crc32c)(~i, buf, i))
			die("crc32 instruction disagrees with pmcache_os.h's crc32c");
}

int main(int argc, char **argv)
{
	u32 blocks = 65536, rounds = 15, cg = 0, hot, i, r;
	u32 wbatch = 20000, lbatch = 200000;
	double *t_floor, *t_write, *t_lookup, *t_read, *t_ratio, *t_st, *t_cf, *t_cf_ratio, *t_wc;
	double t_new;
	u64 *keys;
	u32 *slots;
	struct mb m;

	for (i = 1; i < (u32)argc; i++) {
		if (!strcmp(argv[i], "--blocks") && i + 1 < (u32)argc)
			blocks = (u32)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < (u32)argc)
			rounds = (u32)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--callgrind") && i + 1 < (u32)argc)
			cg = (u32)strtoul(argv[++i], NULL, 0);
		else
			die("usage: microbench [--blocks N] [--rounds R] [--callgrind N]");
	}
	if (blocks < 1024 || !rounds)
		die("--blocks >= 1024, --rounds >= 1");
	check_crc();
	mb_setup(&m, blocks);
	/* Half the cache is the working set: writes never have to evict. */
	hot = m.nr / 2;
	if (cg) {
		wbatch = lbatch = cg;
		rounds = 1;
	}
	keys = malloc(sizeof(*keys) * lbatch);
	slots = malloc(sizeof(*slots) * wbatch);
	t_floor = calloc(rounds, sizeof(double));
	t_write = calloc(rounds, sizeof(double));
	t_lookup = calloc(rounds, sizeof(double));
	t_read = calloc(rounds, sizeof(double));
	t_ratio = calloc(rounds, sizeof(double));
	t_st = calloc(rounds, sizeof(double));
	t_cf = calloc(rounds, sizeof(double));
	t_cf_ratio = calloc(rounds, sizeof(double));
	t_wc = calloc(rounds, sizeof(double));
	if (!keys || !slots || !t_floor || !t_write || !t_lookup || !t_read || !t_ratio || !t_st ||
	    !t_cf || !t_cf_ratio || !t_wc)
		die("malloc");

	/* First writes of the working set: the insert path, timed once. */
	{
		u64 *perm = malloc(sizeof(*perm) * hot);
		double t0;

		if (!perm)
			die("malloc");
		for (i = 0; i < hot; i++)
			perm[i] = i * 7919ULL + 13;	/* distinct origin blocks */
		for (i = hot; i > 1; i--) {
			u32 j = (u32)(rng() % i);
			u64 t = perm[i - 1];

			perm[i - 1] = perm[j];
			perm[j] = t;
		}
		t0 = now_ns();
		for (i = 0; i < hot; i++)
			mb_cached_write_new(&m, perm[i]);
		t_new = (now_ns() - t0) / hot;
		free(perm);
	}

	for (r = 0; r < rounds; r++) {
		double t0;

		for (i = 0; i < lbatch; i++)
			keys[i] = (rng() % hot) * 7919ULL + 13;
		for (i = 0; i < wbatch; i++)
			slots[i] = (u32)(rng() % m.nr);

		t0 = now_ns();
		for (i = 0; i < wbatch; i++)
			mb_floor(&m, slots[i]);
		t_floor[r] = (now_ns() - t0) / wbatch;

		t0 = now_ns();
		for (i = 0; i < wbatch; i++)
			mb_cached_write(&m, keys[i]);
		t_write[r] = (now_ns() - t0) / wbatch;

		t0 = now_ns();
		for (i = 0; i < lbatch; i++)
			if (mb_lookup(&m, keys[i]) == PMC_NO_SLOT)
				die("lookup missed a cached block");
		t_lookup[r] = (now_ns() - t0) / lbatch;

		t0 = now_ns();
		for (i = 0; i < wbatch; i++)
			if (mb_cached_read(&m, keys[i]))
				die("read missed a cached block");
		t_read[r] = (now_ns() - t0) / wbatch;
		t0 = now_ns();
		for (i = 0; i < wbatch; i++)
			mb_store64_fence(&m, slots[i]);
		t_st[r] = (now_ns() - t0) / wbatch;

		t0 = now_ns();
		for (i = 0; i < wbatch; i++)
			mb_commit_floor(&m, slots[i]);
		t_cf[r] = (now_ns() - t0) / wbatch;
		/* Distinct blocks (a prime stride through the working set), all clean. */
		{
			u32 start = (u32)rng(), n = min(wbatch, hot);

			for (i = 0; i < n; i++)
				keys[i] = ((start + i * 4099u) % hot) * 7919ULL + 13;
			for (i = 0; i < n; i++)
				mb_mark_clean(&m, keys[i]);
			t0 = now_ns();
			for (i = 0; i < n; i++)
				mb_cached_write_clean(&m, keys[i]);
			t_wc[r] = (now_ns() - t0) / n;
		}

		t_ratio[r] = t_write[r] / t_floor[r];
		t_cf_ratio[r] = t_cf[r] / t_floor[r];
	}
	if (cg) {
		printf("callgrind: %u of each of mb_floor, mb_cached_write, mb_lookup, mb_cached_read,"
		       " mb_store64_fence, mb_commit_floor, mb_cached_write_clean;"
		       " %u of mb_cached_write_new\n", cg, hot);
		return 0;
	}
	printf("# microbench: dm-pmcache hot path, native, DRAM as pmem (movnti + sfence),"
	       " crc32c by the crc32 instruction\n");
	printf("# cache of %u blocks of 4 KiB, working set %u blocks; %u rounds of %u writes"
	       " / %u lookups, interleaved; medians, ns per operation\n",
	       m.nr, hot, rounds, wbatch, lbatch);
	printf("result floor %.1f\n", median(t_floor, rounds));
	printf("result cached_write %.1f\n", median(t_write, rounds));
	printf("result cached_write_new %.1f\n", t_new);
	printf("result cached_write_clean %.1f\n", median(t_wc, rounds));
	printf("result lookup %.1f\n", median(t_lookup, rounds));
	printf("result cached_read %.1f\n", median(t_read, rounds));
	printf("result store64_fence %.1f\n", median(t_st, rounds));
	printf("result commit_floor %.1f\n", median(t_cf, rounds));
	printf("result write_to_floor %.3f\n", median(t_ratio, rounds));
	printf("result commit_floor_to_floor %.3f\n", median(t_cf_ratio, rounds));
	printf("# floor: 4 KiB movnti copy + sfence; cached_write: overwrite of a cached block"
	       " (alloc, copy, rec_replace, index, policy, free old); cached_write_new: first"
	       " write of a block (timed once, %u writes); lookup: stripe lock + index + policy"
	       " hit; cached_read: lookup + 4 KiB copy out; store64_fence: one 8-byte movnti to a"
	       " record + sfence (a cached write does two: data+key, then commit + the clear of"
	       " an older copy); commit_floor: the floor's copy + pmc_rec_commit (key, fence,"
	       " commit, fence), the least a crash-atomic write can do; cached_write_clean:"
	       " overwrite of a written-back (clean) block\n",
	       hot);
	printf("# write_to_floor: median of the per-round ratios (target: <= 1.5)\n");
	return 0;
}

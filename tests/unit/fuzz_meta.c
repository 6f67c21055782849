// SPDX-License-Identifier: GPL-2.0
/*
 * Deterministic random-corruption fuzzer of the load path: the superblock
 * probe, the dirty count and rebind a table load may run, and recovery of
 * the per-block records (pmcache_meta.c), into the index, the allocator and
 * the policy as pmc_load() feeds them; then tools/pmcache-tool check on a
 * few of the same images (and dump --records).
 *
 * Each case takes a cache formatted in memory (block sizes 512 and 4096,
 * a few sizes, records committed dirty and clean with pmc_rec_commit, some
 * rebound), damages it (random bytes, bit flips, superblock fields set to
 * extremes with and without a fresh checksum, self-consistent but wrong
 * geometries, forged records that pass their checksum, a truncated or grown
 * device, media errors) and loads it as a table load does, for the origin
 * it was made for or another (resized, renamed, another disk id or none,
 * or "format"). The image must be refused with a reason, or recovery must
 * leave an index whose invariants hold (every slot in the cache, every
 * block in the origin and indexed once, the counts the index's, each slot
 * indexed, free once or unreadable) and which is what the records say,
 * computed apart; a second recovery must find nothing to do. ASan and
 * UBSan watch every access; the pmem hooks below also fail any access
 * outside the device, which ASan could miss when it lands in another
 * allocation; an alarm catches a loop.
 *
 * Coverage-free: no feedback, a fixed seed. Case n depends only on the seed
 * and n, so any case runs again on its own (-v says what each case did):
 *
 *   fuzz_meta [--seed N] [--iterations N] [--case N] [--tool PATH|none]
 *             [--tool-cases N] [-v]
 *
 * A longer search: other seeds, more iterations, --tool-cases 200.
 *
 * Output: "ok <name>" / "not ok <name>"; exit status 1 on any failure.
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pmcache_meta.h"
#include "pmcache_index.h"
#include "pmcache_alloc.h"
#include "pmcache_policy.h"
#include "pmcache_pmem.h"

/* GCC says so by a macro, clang by a feature test. */
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif

#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#else
#define ASAN_POISON_MEMORY_REGION(p, n)		((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n)	((void)(p), (void)(n))
#endif

/* As pmcache_target.c: its allocator regions, and a 2-CPU machine. */
#define TABLE_ALLOC_REGIONS	64u
#define TABLE_NR_CPUS		2u

#define DEFAULT_SEED		1u
/*
 * About 2.5 s of CPU under ASan on a 2-core VM, the tool runs included:
 * make check runs it beside the other tests, within its time budget.
 */
#define DEFAULT_ITERATIONS	8000u
/* Images pmcache-tool checks: half of them ones the probe accepted. */
#define DEFAULT_TOOL_CASES	16u
#define MAX_REPORTED		20u
#define CASE_TIMEOUT_S		10u

static unsigned int nr_failed, nr_passed, nr_reported;
static bool verbose;
static u64 opt_seed = DEFAULT_SEED;

static void check(bool cond, const char *name)
{
	printf("%s %s\n", cond ? "ok" : "not ok", name);
	if (cond)
		nr_passed++;
	else
		nr_failed++;
	fflush(stdout);
}

/* The case under way, for reports from a sanitizer or the alarm. */
static long long cur_case = -1;

/* One failed invariant of one case: named, with how to run it again. */
static void fail_case(u64 n, const char *what)
{
	nr_failed++;
	if (nr_reported++ < MAX_REPORTED)
		printf("not ok fuzz case %llu: %s (again: --seed %llu --case %llu)\n",
		       (unsigned long long)n, what, (unsigned long long)opt_seed,
		       (unsigned long long)n);
	fflush(stdout);
}

/* ---- random numbers: splitmix64, one stream per case ---- */

struct rng {
	u64 s;
};

static u64 rnd(struct rng *r)
{
	u64 z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Below @n (n > 0); the bias of a 64-bit modulo is negligible for these n. */
static u64 below(struct rng *r, u64 n)
{
	return rnd(r) % n;
}

static bool one_in(struct rng *r, u64 n)
{
	return !below(r, n);
}

static void rng_for_case(struct rng *r, u64 seed, u64 n)
{
	r->s = seed * 0xd1b54a32d192ed03ULL ^ (n + 1) * 0x8cb92ba72f3d8dd7ULL;
	rnd(r);
}

/* ---- pmem: every access checked against the device, media errors ---- */

#define MAX_POISON 4

static u8 *dev;
static u64 dev_size;
static u64 poison_at[MAX_POISON], poison_len[MAX_POISON];
static unsigned int nr_poison;

static void bad_access(const char *op, const void *p, size_t len)
{
	long long n = READ_ONCE(cur_case);

	printf("not ok fuzz case %lld: pmem %s of %zu bytes at offset %lld, device of %llu bytes (again: --seed %llu --case %lld)\n",
	       n, op, len, (long long)((uintptr_t)p - (uintptr_t)dev), (unsigned long long)dev_size,
	       (unsigned long long)opt_seed, n);
	fflush(stdout);
	/* Going on would scribble on memory that is not the device's. */
	exit(1);
}

static void in_dev(const char *op, const void *p, size_t len)
{
	/* As integers: a pointer outside the device is no pointer into it. */
	uintptr_t at = (uintptr_t)p, start = (uintptr_t)dev;

	if (at < start || at - start > dev_size || len > dev_size - (at - start))
		bad_access(op, p, len);
}

static void h_copy(void *dst, const void *src, size_t len)
{
	in_dev("write", dst, len);
	memmove(dst, src, len);
}

static void h_zero(void *dst, size_t len)
{
	in_dev("zeroing", dst, len);
	memset(dst, 0, len);
}

static void h_store64(__le64 *dst, __le64 val)
{
	in_dev("store", dst, 8);
	if ((uintptr_t)dst & 7)
		bad_access("misaligned store", dst, 8);
	*dst = val;
}

static void h_fence(void)
{
}

/* A read that touches a poisoned range fails as copy_mc_to_kernel does. */
static int h_read(void *dst, const void *src, size_t len)
{
	unsigned int i;
	u64 at;

	in_dev("read", src, len);
	at = (u64)((const u8 *)src - dev);
	for (i = 0; i < nr_poison; i++)
		if (at < poison_at[i] + poison_len[i] && poison_at[i] < at + len)
			return -EIO;
	memcpy(dst, src, len);
	return 0;
}

static const struct pmc_pmem_hooks checked_hooks = {
	.copy = h_copy,
	.zero = h_zero,
	.store64 = h_store64,
	.fence = h_fence,
	.read = h_read,
};

static void use_dev(u8 *base, u64 size)
{
	dev = base;
	dev_size = size;
}

/* ---- the formatted caches every case starts from ---- */

struct geo_spec {
	u32 bs;
	u64 size;
	u64 origin_sectors;	/* of the origin the table names */
};

/*
 * Small enough that a case costs well under a millisecond, varied where the
 * code branches: both block sizes, a size that is no multiple of 4 KiB,
 * one beyond where the probe looks for ZFS labels, an origin of one block
 * (every record is a copy of block 0) and origins smaller than the cache.
 */
static const struct geo_spec geos[] = {
	{ 512, 64u << 10, 2048 },
	{ 512, (64u << 10) + 12345, 256 },
	{ 512, 1u << 20, 1u << 16 },
	{ 4096, 96u << 10, 512 },
	{ 4096, (256u << 10) + 4096, 1u << 14 },
	{ 4096, 1u << 20, 8 },
};

#define NR_VARIANTS 3
#define NR_BASES (ARRAY_SIZE(geos) * NR_VARIANTS)

struct base {
	const struct geo_spec *g;
	u8 *img;
	u64 size;
	struct pmc_origin_id origin;
	char origin_name[PMC_ORIGIN_NAME_LEN + 1];
	u64 nr_blocks;
	u64 data_offset;
};

static struct base bases[NR_BASES];

static u64 origin_blocks_of(u64 sectors, u32 bs)
{
	return sectors >> (ilog2(bs) - 9);
}

/*
 * Commit up to @n records as the write path leaves them: random blocks,
 * mostly of the origin, dirty or clean, with now and then an older copy of
 * a block still committed (a write frees the copy it replaces only later).
 */
static void fill_records(struct pmc_meta *m, struct rng *r, u64 origin_blocks, u32 n)
{
	u32 nr = (u32)m->geo.nr_blocks, slot, i, prev = PMC_NO_SLOT;
	u64 key, oblock;
	u16 gen;

	for (i = 0; i < n; i++) {
		slot = (u32)below(r, nr);
		if (pmc_rec_commit_word(m, slot))
			continue;
		if (prev != PMC_NO_SLOT && one_in(r, 6)) {
			key = le64_to_cpu(m->recs[prev].key);
			oblock = pmc_key_oblock(key);
			gen = pmc_key_gen(key) + (one_in(r, 2) ? 1 : -1);
		} else {
			oblock = one_in(r, 16) ? origin_blocks + below(r, 4) :
						 below(r, origin_blocks);
			gen = (u16)rnd(r);
		}
		key = pmc_key_make(oblock, gen);
		/* The data first, as a write stores it: here just its key. */
		pmc_pmem_copy(pmc_block_data(m, slot), &key, sizeof(key));
		pmc_rec_commit(m, slot, key, one_in(r, 2));
		prev = slot;
	}
}

static void rebind_once(struct pmc_meta *m, const struct pmc_origin_id *o)
{
	struct pmc_index idx;

	if (pmc_index_init(&idx, (u32)m->geo.nr_blocks)) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	pmc_meta_rebind(m, o, &idx);
	pmc_index_exit(&idx);
}

/*
 * Variant 0: just formatted. 1: a third of the slots committed. 2: bound
 * to another origin and back (seq 3, copy 0 current after copy 1), then
 * nearly every slot committed.
 */
static void make_bases(void)
{
	static const u8 uuid[16] = "fuzz-cache-uuid";
	struct pmc_origin_id other = { .sectors = 1234, .name = "some-other-origin" };
	struct pmc_meta m;
	struct rng r;
	unsigned int i, v;

	for (i = 0; i < ARRAY_SIZE(geos); i++) {
		for (v = 0; v < NR_VARIANTS; v++) {
			struct base *b = &bases[i * NR_VARIANTS + v];
			u64 ob, off;

			b->g = &geos[i];
			b->size = geos[i].size;
			b->img = malloc(b->size);
			if (!b->img) {
				fprintf(stderr, "out of memory\n");
				exit(2);
			}
			rng_for_case(&r, 0x5eed, i * NR_VARIANTS + v);
			/* Leftovers of an earlier use: format clears only the records. */
			for (off = 0; off + 8 <= b->size; off += 8) {
				u64 x = rnd(&r);

				memcpy(b->img + off, &x, 8);
			}
			snprintf(b->origin_name, sizeof(b->origin_name), "fuzz-origin-%u", i);
			b->origin.sectors = geos[i].origin_sectors;
			b->origin.name = b->origin_name;
			/* Half of them on a disk that reports an id. */
			if (i & 1) {
				b->origin.uid.type = 3;
				b->origin.uid.len = i == 1 ? 8 : PMC_ORIGIN_UID_LEN;
				b->origin.uid.start = i == 3 ? 2048 : 0;
				memcpy(b->origin.uid.id, "\x50\x00\xc5\x00fuzz-disk-id", 16);
			}
			use_dev(b->img, b->size);
			if (pmc_meta_format(&m, b->img, b->size, geos[i].bs, &b->origin,
					    uuid, 1700000000)) {
				fprintf(stderr, "format of base %u failed\n", i);
				exit(2);
			}
			b->nr_blocks = m.geo.nr_blocks;
			b->data_offset = m.geo.data_offset;
			ob = origin_blocks_of(b->origin.sectors, geos[i].bs);
			if (v == 1)
				fill_records(&m, &r, ob, (u32)(b->nr_blocks / 3));
			if (v == 2) {
				rebind_once(&m, &other);
				rebind_once(&m, &b->origin);
				fill_records(&m, &r, ob, (u32)(b->nr_blocks * 4));
			}
		}
	}
}

/* ---- corruptions ---- */

struct sb_field {
	const char *name;
	size_t off, len;
};

#define SB_FIELD(f) { #f, offsetof(struct pmc_sb, f), sizeof(((struct pmc_sb *)0)->f) }
static const struct sb_field sb_fields[] = {
	SB_FIELD(magic), SB_FIELD(crc), SB_FIELD(version_major),
	SB_FIELD(version_minor), SB_FIELD(compat_flags), SB_FIELD(ro_compat_flags),
	SB_FIELD(incompat_flags), SB_FIELD(block_size), SB_FIELD(seq),
	SB_FIELD(nr_blocks), SB_FIELD(rec_offset), SB_FIELD(data_offset),
	SB_FIELD(pmem_size), SB_FIELD(origin_sectors), SB_FIELD(origin_name),
	SB_FIELD(cache_uuid), SB_FIELD(format_time), SB_FIELD(reserved),
	SB_FIELD(origin_uid_start), SB_FIELD(origin_uid_type), SB_FIELD(origin_uid_len),
	SB_FIELD(origin_uid_pad), SB_FIELD(origin_uid),
};

/* Most a device grows beyond the image (pick_size()). */
#define ARENA_GROW	(64u << 10)

/* A case: the damaged image, the device size the load is given, the table. */
struct fcase {
	u64 n;
	const struct base *b;
	u8 *img;		/* @size bytes in the arena, ASan-poisoned around */
	u64 size;
	u64 poison_at[MAX_POISON], poison_len[MAX_POISON];
	unsigned int nr_poison;
	struct pmc_origin_id origin;
	char origin_name[PMC_ORIGIN_NAME_LEN + 8];
	bool format_arg;	/* the table says "format" */
	enum pmc_probe_result probe;	/* what the load's first probe said */
	char ops[160];		/* what was done, for -v */
};

static void note_op(struct fcase *c, const char *op)
{
	size_t l = strlen(c->ops);

	snprintf(c->ops + l, sizeof(c->ops) - l, "%s%s", l ? "," : "", op);
}

static void put_le(u8 *p, size_t len, u64 v)
{
	size_t i;

	for (i = 0; i < len && i < 8; i++)
		p[i] = (u8)(v >> (8 * i));
}

static u64 get_le(const u8 *p, size_t len)
{
	u64 v = 0;
	size_t i;

	for (i = 0; i < len && i < 8; i++)
		v |= (u64)p[i] << (8 * i);
	return v;
}

static void sb_seal(u8 *sbp)
{
	struct pmc_sb sb;

	memcpy(&sb, sbp, sizeof(sb));
	sb.crc = 0;
	sb.crc = cpu_to_le32(pmc_crc32c(~0u, &sb, sizeof(sb)));
	memcpy(sbp, &sb, sizeof(sb));
}

/* An extreme or telling value for a field of @len bytes of this case. */
static u64 extreme(struct rng *r, const struct fcase *c, const u8 *field, size_t len)
{
	u64 cur = get_le(field, len);

	switch (below(r, 16)) {
	case 0: return 0;
	case 1: return ~0ULL;
	case 2: return 1;
	case 3: return cur + 1;
	case 4: return cur - 1;
	case 5: return cur * 2;
	case 6: return PMC_MAX_BLOCKS;
	case 7: return (u64)PMC_MAX_BLOCKS + 1;
	case 8: return U32_MAX;
	case 9: return 1ULL << 32;
	case 10: return 1ULL << 48;
	case 11: return 1ULL << 63;
	case 12: return c->b->size + below(r, 3) * PMC_DATA_ALIGN;
	case 13: return c->b->data_offset + c->b->size;
	case 14: return cur ^ (1ULL << below(r, len * 8));
	default: return rnd(r);
	}
}

static u8 *sb_at(u8 *img, unsigned int copy)
{
	return img + (size_t)copy * PMC_SB_SIZE;
}

/* Copy 0, copy 1, or both alike (one sound copy would hide the damage). */
static void pick_copies(struct rng *r, unsigned int *from, unsigned int *to)
{
	static const unsigned int ranges[][2] = { { 0, 1 }, { 1, 2 }, { 0, 2 } };
	unsigned int k = (unsigned int)below(r, 3);

	*from = ranges[k][0];
	*to = ranges[k][1];
}

static void corrupt_sb_field(struct rng *r, struct fcase *c)
{
	const struct sb_field *f = &sb_fields[below(r, ARRAY_SIZE(sb_fields))];
	bool seal = !one_in(r, 4) && strcmp(f->name, "crc");
	unsigned int from, to, i;
	u8 fills[] = { 0, 0xff, 'A', 0 }, fill = 0;
	u64 v = 0;

	pick_copies(r, &from, &to);
	if (f->len > 8) {
		fills[3] = (u8)rnd(r);
		fill = fills[below(r, 4)];
	} else {
		v = extreme(r, c, sb_at(c->img, from) + f->off, f->len);
	}
	for (i = from; i < to; i++) {
		u8 *sb = sb_at(c->img, i);

		if (f->len > 8)
			memset(sb + f->off, fill, f->len);
		else
			put_le(sb + f->off, f->len, v);
		if (seal)
			sb_seal(sb);
	}
	note_op(c, f->name);
}

/*
 * A superblock that checks out on its own: a geometry pmc_geometry_compute
 * gives for some device size and block size, sealed. Only the device it is
 * read from can show it wrong (larger than the device, or records that were
 * written for another geometry).
 */
static void corrupt_sb_geometry(struct rng *r, struct fcase *c)
{
	/* The format's block sizes, and some it does not allow. */
	static const u32 sizes[] = { 512, 1024, 2048, 4096, 512, 4096, 256, 768, 8192 };
	struct pmc_geometry g;
	unsigned int from, to, i;
	u64 pmem;

	switch (below(r, 5)) {
	case 0:
		pmem = c->b->size + PMC_DATA_ALIGN * (1 + below(r, 4));
		break;
	case 1:
		pmem = c->b->size - below(r, c->b->size / 2);
		break;
	case 2:
		pmem = 1ULL << (20 + below(r, 24));
		break;
	case 3:
		/* The smallest cache there is. */
		pmem = PMC_REC_OFFSET + PMC_DATA_ALIGN + 16 * (512 + PMC_REC_SIZE);
		break;
	default:
		pmem = c->b->size;
		break;
	}
	if (pmc_geometry_compute(pmem, sizes[below(r, ARRAY_SIZE(sizes))], &g))
		return;
	pick_copies(r, &from, &to);
	for (i = from; i < to; i++) {
		u8 *sb = sb_at(c->img, i);

		put_le(sb + offsetof(struct pmc_sb, block_size), 4, g.block_size);
		put_le(sb + offsetof(struct pmc_sb, nr_blocks), 8, g.nr_blocks);
		put_le(sb + offsetof(struct pmc_sb, rec_offset), 8, g.rec_offset);
		put_le(sb + offsetof(struct pmc_sb, data_offset), 8, g.data_offset);
		put_le(sb + offsetof(struct pmc_sb, pmem_size), 8, g.pmem_size);
		sb_seal(sb);
	}
	note_op(c, "geometry");
}

/* Bytes or bits anywhere in the first @span bytes; sealed now and then. */
static void corrupt_bytes(struct rng *r, struct fcase *c, u64 start, u64 span, bool bits)
{
	unsigned int k, n = 1 + (unsigned int)below(r, 8);
	u64 at;

	if (start >= c->b->size)
		return;
	span = min_t(u64, span, c->b->size - start);
	for (k = 0; k < n; k++) {
		at = start + below(r, span);
		if (bits)
			c->img[at] ^= (u8)(1u << below(r, 8));
		else
			c->img[at] = (u8)rnd(r);
	}
	if (start < PMC_REC_OFFSET && one_in(r, 3)) {
		sb_seal(sb_at(c->img, 0));
		sb_seal(sb_at(c->img, 1));
	}
	note_op(c, bits ? "bits" : "bytes");
}

/* The copies disagree: one overwritten by the other, with another seq. */
static void corrupt_sb_copies(struct rng *r, struct fcase *c)
{
	unsigned int to = (unsigned int)below(r, 2);
	u8 *dst = sb_at(c->img, to);

	switch (below(r, 4)) {
	case 0:
		memcpy(dst, sb_at(c->img, !to), sizeof(struct pmc_sb));
		put_le(dst + offsetof(struct pmc_sb, seq), 8, rnd(r) >> below(r, 64));
		sb_seal(dst);
		note_op(c, "copy-seq");
		break;
	case 1:
		memset(dst, 0, PMC_SB_SIZE);
		note_op(c, "zero-copy");
		break;
	case 2:
		/* Reset by zeroing the first copy; something else may remain. */
		memset(c->img, 0, PMC_SB_SIZE);
		if (c->b->size > 65600 + 8 && one_in(r, 2))
			memcpy(c->img + 65600, "_BHRfS_M", 8);
		note_op(c, "blank");
		break;
	default:
		put_le(dst + offsetof(struct pmc_sb, seq), 8, one_in(r, 2) ? ~0ULL : 0);
		sb_seal(dst);
		note_op(c, "seq");
		break;
	}
}

static u8 *rec_at(struct fcase *c, u64 slot)
{
	return c->img + PMC_REC_OFFSET + slot * PMC_REC_SIZE;
}

/* A block number where recovery's range check and hash are at their edges. */
static u64 pick_oblock(struct rng *r, struct fcase *c, u64 origin_blocks)
{
	switch (below(r, 8)) {
	case 0: return 0;
	case 1: return origin_blocks - 1;
	case 2: return origin_blocks;
	case 3: return PMC_OBLOCK_MASK;
	case 4: return rnd(r) & PMC_OBLOCK_MASK;
	case 5: {
		/* A block some committed record holds: a duplicate. */
		u64 slot = below(r, c->b->nr_blocks);

		return pmc_key_oblock(get_le(rec_at(c, slot), 8));
	}
	default: return below(r, origin_blocks);
	}
}

static u16 pick_gen(struct rng *r)
{
	static const u16 gens[] = { 0, 1, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff };

	return one_in(r, 2) ? gens[below(r, ARRAY_SIZE(gens))] : (u16)rnd(r);
}

/*
 * Records the checksum lets through (the damage a crc cannot see, or a
 * crafted image): extreme blocks and generations, many copies of one block
 * whose generations go round in a circle, unknown flag bits with a crc over
 * them, a record moved to another slot; and plain garbage.
 */
static void corrupt_records(struct rng *r, struct fcase *c)
{
	static const u64 odd_commits[] = { ~0ULL, PMC_REC_VALID, PMC_REC_FLAGS_KNOWN,
					   1ULL << 63 | PMC_REC_VALID };
	u64 nr = c->b->nr_blocks, slot = below(r, nr), ob, key, commit;
	u64 origin_blocks = origin_blocks_of(c->b->origin.sectors, c->b->g->bs);
	unsigned int k, n;
	u32 flags;
	u16 gen;

	switch (below(r, 6)) {
	case 0:
		n = 1 + (unsigned int)below(r, 16);
		for (k = 0; k < n; k++, slot = below(r, nr)) {
			key = pmc_key_make(pick_oblock(r, c, origin_blocks), pick_gen(r));
			commit = pmc_commit_make((u32)slot, key, one_in(r, 2) ? PMC_REC_DIRTY : 0);
			put_le(rec_at(c, slot), 8, key);
			put_le(rec_at(c, slot) + 8, 8, commit);
		}
		note_op(c, "forged");
		break;
	case 1:
		/* One block in many slots, generations 0, 1/3, 2/3 of 2^16 round. */
		ob = pick_oblock(r, c, origin_blocks);
		n = 2 + (unsigned int)below(r, min_t(u64, nr, 64));
		gen = (u16)rnd(r);
		for (k = 0; k < n; k++, slot = (slot + 1 + below(r, 3)) % nr) {
			gen += one_in(r, 2) ? 0x5555 : 1 + (u16)below(r, 3);
			key = pmc_key_make(ob, gen);
			put_le(rec_at(c, slot), 8, key);
			put_le(rec_at(c, slot) + 8, 8,
			       pmc_commit_make((u32)slot, key, k & 1 ? PMC_REC_DIRTY : 0));
		}
		note_op(c, "copies");
		break;
	case 2:
		key = pmc_key_make(pick_oblock(r, c, origin_blocks), pick_gen(r));
		flags = PMC_REC_VALID | (u32)rnd(r);
		commit = ((u64)pmc_rec_crc((u32)slot, key, flags) << 32) | flags;
		put_le(rec_at(c, slot), 8, key);
		put_le(rec_at(c, slot) + 8, 8, commit);
		note_op(c, "flags");
		break;
	case 3:
		memcpy(rec_at(c, below(r, nr)), rec_at(c, slot), PMC_REC_SIZE);
		note_op(c, "moved");
		break;
	case 4:
		/* A whole run of slots: garbage, or all ones, or key-only. */
		n = 1 + (unsigned int)below(r, min_t(u64, nr - slot, 256));
		for (k = 0; k < n; k++) {
			u8 *p = rec_at(c, slot + k);

			if (one_in(r, 3)) {
				memset(p, 0xff, PMC_REC_SIZE);
			} else if (one_in(r, 2)) {
				put_le(p, 8, rnd(r));
			} else {
				put_le(p, 8, rnd(r));
				put_le(p + 8, 8, rnd(r) >> below(r, 64));
			}
		}
		note_op(c, "run");
		break;
	default:
		/* Commit words: ~0, VALID alone, VALID and DIRTY with no crc. */
		put_le(rec_at(c, slot) + 8, 8, odd_commits[below(r, ARRAY_SIZE(odd_commits))]);
		note_op(c, "commit");
		break;
	}
}

static void add_poison(struct fcase *c, u64 at, u64 len)
{
	if (c->nr_poison < MAX_POISON && at < c->b->size) {
		c->poison_at[c->nr_poison] = at;
		c->poison_len[c->nr_poison++] = len;
	}
}

/* Media errors: a superblock copy, its first bytes, records, a signature. */
static void corrupt_media(struct rng *r, struct fcase *c)
{
	u64 nr = c->b->nr_blocks;

	switch (below(r, 5)) {
	case 0:
		add_poison(c, 0, PMC_SB_SIZE);
		break;
	case 1:
		add_poison(c, PMC_SB_SIZE + below(r, 256), 1 + below(r, 64));
		break;
	case 2:
		add_poison(c, below(r, 256), 8);
		break;
	case 3:
		/* Where the probe looks for btrfs over a blank first copy. */
		add_poison(c, 65600, 8);
		break;
	default:
		add_poison(c, PMC_REC_OFFSET + below(r, nr) * PMC_REC_SIZE + below(r, 16),
			   1 + below(r, 64 * PMC_REC_SIZE));
		break;
	}
	note_op(c, "media");
}

/*
 * The size of the device the load is given: mostly the image's, else cut
 * short at an edge of the layout or anywhere, or grown (a larger
 * namespace: the superblock's pmem_size is then smaller, which is fine).
 */
static u64 pick_size(struct rng *r, struct fcase *c)
{
	u64 size = c->b->size, nr = c->b->nr_blocks;

	if (!one_in(r, 6))
		return size;
	note_op(c, "size");
	switch (below(r, 10)) {
	case 0: return below(r, PMC_REC_OFFSET + 1);
	case 1: return PMC_REC_OFFSET - 1;
	case 2: return PMC_REC_OFFSET;
	case 3: return PMC_REC_OFFSET + nr * PMC_REC_SIZE - below(r, 2);
	case 4: return c->b->data_offset - below(r, 2);
	case 5: return size - 1;
	case 6: return size - 1 - below(r, size - PMC_REC_OFFSET);
	case 7: return size + 1 + below(r, 4096);
	case 8: return size + ARENA_GROW;
	default: return below(r, size);
	}
}

/*
 * Where a case's image lives: one buffer for all of them, poisoned for ASan
 * but for the image's bytes, so that a read just before or past the device
 * is reported as with a buffer of its own. A buffer of its own per case
 * would cost more: ASan maps and unmaps every large one, and its faults
 * took three quarters of the run.
 */
#define ARENA_GUARD	PMC_DATA_ALIGN
static u8 *arena, *snapshot;
static u64 arena_room;

static void arena_init(void)
{
	unsigned int i;

	for (i = 0; i < NR_BASES; i++)
		arena_room = max(arena_room, bases[i].size + 2 * ARENA_GROW);
	arena = aligned_alloc(PMC_DATA_ALIGN, arena_room + 2 * ARENA_GUARD);
	snapshot = malloc(arena_room);
	if (!arena || !snapshot) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	ASAN_POISON_MEMORY_REGION(arena, arena_room + 2 * ARENA_GUARD);
}

static void arena_exit(void)
{
	ASAN_UNPOISON_MEMORY_REGION(arena, arena_room + 2 * ARENA_GUARD);
	free(arena);
	free(snapshot);
}

/* Make case @n: deterministic in (seed, n) alone. */
static void make_case(u64 seed, u64 n, struct fcase *c)
{
	struct rng r;
	unsigned int k, nr_ops;
	u8 *work = arena + ARENA_GUARD;

	memset(c, 0, sizeof(*c));
	rng_for_case(&r, seed, n);
	c->n = n;
	c->b = &bases[below(&r, NR_BASES)];
	ASAN_UNPOISON_MEMORY_REGION(work, c->b->size);
	memcpy(work, c->b->img, c->b->size);
	c->img = work;

	nr_ops = 1 + (unsigned int)below(&r, 4);
	for (k = 0; k < nr_ops; k++) {
		switch (below(&r, 12)) {
		case 0:
		case 1:
			corrupt_sb_field(&r, c);
			break;
		case 2:
			corrupt_sb_geometry(&r, c);
			break;
		case 3:
			corrupt_sb_copies(&r, c);
			break;
		case 4:
			corrupt_bytes(&r, c, 0, PMC_REC_OFFSET, one_in(&r, 2));
			break;
		case 5:
			corrupt_bytes(&r, c, 0, PMC_SB_STRUCT_SIZE, true);
			break;
		case 6:
			corrupt_bytes(&r, c, PMC_REC_OFFSET, c->b->nr_blocks * PMC_REC_SIZE,
				      one_in(&r, 2));
			break;
		case 10:
			corrupt_media(&r, c);
			break;
		default:
			/* Most often: the records, under sound superblocks or not. */
			corrupt_records(&r, c);
			break;
		}
	}

	/* The table: mostly the origin the cache was made for. */
	c->origin = c->b->origin;
	snprintf(c->origin_name, sizeof(c->origin_name), "%s", c->b->origin_name);
	switch (below(&r, 16)) {
	case 0:
		snprintf(c->origin_name, sizeof(c->origin_name), "another-origin");
		note_op(c, "other-origin");
		break;
	case 1:
		c->origin.sectors = 8 * (1 + below(&r, c->origin.sectors / 8 + 64));
		if (one_in(&r, 4))
			c->origin.sectors += 1 + below(&r, 7);
		note_op(c, "origin-size");
		break;
	case 2:
		/* The disk renamed: the id decides, and is recorded. */
		snprintf(c->origin_name, sizeof(c->origin_name), "renamed-disk");
		note_op(c, "renamed");
		break;
	case 3:
		/*
		 * Another disk, or another partition of it, under the old
		 * name; over a cache made without an id, its first id.
		 */
		if (one_in(&r, 2))
			c->origin.uid.id[below(&r, PMC_ORIGIN_UID_LEN)] ^= 1;
		else
			c->origin.uid.start += 1 + below(&r, 2);
		c->origin.uid.type = 3;
		c->origin.uid.len = 1 + (u8)below(&r, PMC_ORIGIN_UID_LEN);
		note_op(c, "other-disk");
		break;
	case 4:
		/* No id this time (a device-mapper origin, or a driver without). */
		memset(&c->origin.uid, 0, sizeof(c->origin.uid));
		note_op(c, "no-uid");
		break;
	default:
		break;
	}
	c->origin.name = c->origin_name;
	if (one_in(&r, 24)) {
		c->format_arg = true;
		note_op(c, "format");
	}

	c->size = pick_size(&r, c);
	if (c->size < c->b->size) {
		ASAN_POISON_MEMORY_REGION(work + c->size, c->b->size - c->size);
	} else if (c->size > c->b->size) {
		ASAN_UNPOISON_MEMORY_REGION(work, c->size);
		memset(work + c->b->size, one_in(&r, 2) ? 0 : 0xa5, c->size - c->b->size);
	}
}

static void free_case(struct fcase *c)
{
	ASAN_POISON_MEMORY_REGION(c->img, max(c->size, c->b->size));
	c->img = NULL;
}

/* ---- the load, as a table load and its first resume run it ---- */

enum outcome {
	OUT_REFUSED_PROBE,	/* superblock not usable (or blank and too small) */
	OUT_REFUSED_DIRTY,	/* dirty blocks: no rebind to another origin, no format */
	OUT_REFUSED_ORIGIN,	/* origin size no multiple of the block size */
	OUT_RECOVERED,
	OUT_REBOUND,		/* another origin's clean cache: rebound, recovered */
	OUT_FORMATTED,		/* blank, or "format": formatted, recovered */
	NR_OUTCOMES
};

static const char *const outcome_names[] = {
	"refused by probe", "refused (dirty blocks)", "refused (origin size)",
	"recovered", "rebound and recovered", "formatted and recovered",
};

struct totals {
	u64 outcomes[NR_OUTCOMES];
	u64 probe[PMC_PROBE_MISMATCH + 1];
	u64 with_corrupt, with_duplicates, with_out_of_range, with_unreadable;
	u64 used, dirty;
};

struct freed {
	u8 *seen;
	u32 nr;
	u64 n;
	bool twice, beyond;
};

/* As pmc_recover_free(): the slot is free in the index and in the allocator. */
struct load_ctx {
	struct pmc_index *idx;
	struct pmc_alloc *alloc;
	struct freed f;
};

static void note_free(struct freed *f, u32 slot)
{
	if (slot >= f->nr) {
		f->beyond = true;
		return;
	}
	if (f->seen[slot])
		f->twice = true;
	f->seen[slot] = 1;
	f->n++;
}

static void load_free(void *ctx, u32 slot)
{
	struct load_ctx *l = ctx;

	note_free(&l->f, slot);
	if (slot >= l->idx->nr_slots)
		return;
	l->idx->slots[slot].state = PMC_S_FREE;
	pmc_alloc_put(l->alloc, slot);
}

static void count_free(void *ctx, u32 slot)
{
	note_free(ctx, slot);
}

static bool probe_geometry_sane(const struct pmc_meta *m, u64 size)
{
	const struct pmc_geometry *g = &m->geo;

	return g->block_size >= PMC_MIN_BLOCK_SIZE && g->block_size <= PMC_MAX_BLOCK_SIZE &&
	       is_power_of_2(g->block_size) && g->nr_blocks >= PMC_MIN_BLOCKS &&
	       g->nr_blocks <= PMC_MAX_BLOCKS && g->rec_offset == PMC_REC_OFFSET &&
	       g->pmem_size <= size &&
	       g->data_offset >= g->rec_offset + g->nr_blocks * PMC_REC_SIZE &&
	       g->data_offset + g->nr_blocks * g->block_size <= g->pmem_size &&
	       m->base == dev && (u8 *)m->recs == dev + g->rec_offset &&
	       m->data == dev + g->data_offset && m->sb_copy < PMC_SB_COPIES &&
	       memchr(m->origin_name, 0, sizeof(m->origin_name));
}

/*
 * The id as the kernel log and the tool print it, from whatever the
 * superblock held, into buffers of every size up to the one they use: a
 * string within the buffer, never a byte past it (ASan guards each).
 */
static void check_uid_str(const struct fcase *c, const struct pmc_meta *m)
{
	static const size_t lens[] = { 0, 1, 2, 5, 6, 20, 36, PMC_ORIGIN_UID_STR_LEN - 1,
				       PMC_ORIGIN_UID_STR_LEN };
	unsigned int i;
	char *buf;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		buf = malloc(lens[i] ? lens[i] : 1);
		if (!buf) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
		memset(buf, 'x', lens[i]);
		pmc_origin_uid_str(&m->origin_uid, buf, lens[i]);
		if (lens[i] && !memchr(buf, 0, lens[i]))
			fail_case(c->n, "pmc_origin_uid_str leaves no NUL in its buffer");
		if (lens[i] == PMC_ORIGIN_UID_STR_LEN && m->origin_uid.len &&
		    strlen(buf) < strlen("id.") + 2 * (size_t)m->origin_uid.len)
			fail_case(c->n, "pmc_origin_uid_str cuts the id short in a full buffer");
		free(buf);
	}
}

/*
 * The origin identity pmcache_meta.h documents: the size must match; then
 * the disk ids when both sides have one, else the names.
 */
static bool origin_should_match(const struct pmc_meta *m, const struct pmc_origin_id *o)
{
	const struct pmc_origin_uid *a = &m->origin_uid, *b = &o->uid;

	if (m->origin_sectors > o->sectors)
		return false;
	if (a->len && b->len)
		return a->type == b->type && a->len == b->len && a->start == b->start &&
		       !memcmp(a->id, b->id, a->len);
	if (a->len && o->uid_reportable)
		return false;
	return !strncmp(m->origin_name, o->name, PMC_ORIGIN_NAME_LEN);
}

static bool any_nonzero(const u8 *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return true;
	return false;
}

/* Does the range overlap a media error of this case? */
static bool poisoned(const struct fcase *c, u64 at, u64 len)
{
	unsigned int i;

	for (i = 0; i < c->nr_poison; i++)
		if (at < c->poison_at[i] + c->poison_len[i] && c->poison_at[i] < at + len)
			return true;
	return false;
}

/*
 * A superblock copy as pmcache_format.h defines a usable one: magic,
 * checksum, a version and features this code has, a geometry that
 * pmc_geometry_compute gives for its pmem_size, within the device.
 */
static bool sb_sound(const struct fcase *c, const u8 *img, unsigned int copy)
{
	struct pmc_geometry g;
	struct pmc_sb sb;
	u32 crc, bs;

	if (poisoned(c, (u64)copy * PMC_SB_SIZE, sizeof(sb)))
		return false;
	memcpy(&sb, img + (size_t)copy * PMC_SB_SIZE, sizeof(sb));
	crc = le32_to_cpu(sb.crc);
	sb.crc = 0;
	bs = le32_to_cpu(sb.block_size);
	return le64_to_cpu(sb.magic) == PMC_SB_MAGIC &&
	       crc == pmc_crc32c(~0u, &sb, sizeof(sb)) &&
	       le16_to_cpu(sb.version_major) == PMC_VERSION_MAJOR &&
	       !(le32_to_cpu(sb.incompat_flags) & ~PMC_INCOMPAT_SUPP) &&
	       !(le32_to_cpu(sb.ro_compat_flags) & ~PMC_RO_COMPAT_SUPP) &&
	       bs >= PMC_MIN_BLOCK_SIZE && bs <= PMC_MAX_BLOCK_SIZE && !(bs & (bs - 1)) &&
	       le64_to_cpu(sb.pmem_size) <= c->size &&
	       !pmc_geometry_compute(le64_to_cpu(sb.pmem_size), bs, &g) &&
	       g.nr_blocks == le64_to_cpu(sb.nr_blocks) &&
	       g.rec_offset == le64_to_cpu(sb.rec_offset) &&
	       g.data_offset == le64_to_cpu(sb.data_offset);
}

/*
 * The probe took a sound copy, the one with the highest seq, and describes
 * the cache as that copy does. @img: the device before the probe.
 */
static void check_probe_choice(const struct fcase *c, const struct pmc_meta *m,
			       const u8 *img)
{
	const struct pmc_sb *sb = (const struct pmc_sb *)(img + (size_t)m->sb_copy * PMC_SB_SIZE);
	unsigned int other = !m->sb_copy;

	if (!sb_sound(c, img, m->sb_copy)) {
		fail_case(c->n, "probe took a superblock copy that is not sound");
		return;
	}
	if (sb_sound(c, img, other) &&
	    le64_to_cpu(((const struct pmc_sb *)(img + (size_t)other * PMC_SB_SIZE))->seq) >
	    m->sb_seq) {
		fail_case(c->n, "probe took the older of two sound superblock copies");
		return;
	}
	if (m->sb_seq != le64_to_cpu(sb->seq) || m->geo.block_size != le32_to_cpu(sb->block_size) ||
	    m->geo.nr_blocks != le64_to_cpu(sb->nr_blocks) ||
	    m->geo.data_offset != le64_to_cpu(sb->data_offset) ||
	    m->geo.pmem_size != le64_to_cpu(sb->pmem_size) ||
	    m->origin_sectors != le64_to_cpu(sb->origin_sectors) ||
	    memcmp(m->origin_name, sb->origin_name, PMC_ORIGIN_NAME_LEN) ||
	    memcmp(m->uuid, sb->cache_uuid, sizeof(m->uuid)))
		fail_case(c->n, "probe describes the cache otherwise than its superblock");
}

struct model_rec {
	u64 oblock;
	u32 slot;
};

static int cmp_model_rec(const void *a, const void *b)
{
	const struct model_rec *x = a, *y = b;

	if (x->oblock != y->oblock)
		return x->oblock < y->oblock ? -1 : 1;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/*
 * Recovery as pmcache_format.h describes it, computed apart from
 * meta_scan() over the records as they were (@img): a record is free when
 * its commit word is zero; it counts when its commit word checks out for its
 * slot and key and its block is within the origin; of two copies of a block
 * the one whose generation is after the other's (modulo 2^16) wins, in slot
 * order (the order a scan meets them, which decides for generations that go
 * round in a circle). The index and the counts must be exactly that.
 */
static void check_model(const struct fcase *c, const struct pmc_meta *m,
			const struct pmc_index *idx, const struct pmc_recovery_stats *st,
			u64 origin_blocks, const u8 *img)
{
	u32 nr = (u32)m->geo.nr_blocks, slot, n = 0, i, j;
	struct pmc_recovery_stats want;
	struct model_rec *recs = malloc(sizeof(*recs) * nr);
	char what[200];

	if (!recs) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	memset(&want, 0, sizeof(want));
	for (slot = 0; slot < nr; slot++) {
		u64 at = m->geo.rec_offset + (u64)slot * PMC_REC_SIZE;
		u64 key = get_le(img + at, 8), commit = get_le(img + at + 8, 8);

		if (poisoned(c, at, PMC_REC_SIZE)) {
			want.corrupt++;
			want.unreadable++;
		} else if (!commit) {
			continue;
		} else if (!pmc_commit_ok(slot, key, commit)) {
			want.corrupt++;
		} else if (pmc_key_oblock(key) >= origin_blocks) {
			want.out_of_range++;
		} else {
			recs[n].oblock = pmc_key_oblock(key);
			recs[n++].slot = slot;
		}
	}
	qsort(recs, n, sizeof(*recs), cmp_model_rec);
	for (i = 0; i < n; i = j) {
		u32 win = recs[i].slot;
		u64 wkey = get_le(img + m->geo.rec_offset + (u64)win * PMC_REC_SIZE, 8);
		bool dirty;

		for (j = i + 1; j < n && recs[j].oblock == recs[i].oblock; j++) {
			u64 at = m->geo.rec_offset + (u64)recs[j].slot * PMC_REC_SIZE;
			u64 key = get_le(img + at, 8);

			want.duplicates++;
			if (pmc_gen_after(pmc_key_gen(key), pmc_key_gen(wkey))) {
				win = recs[j].slot;
				wkey = key;
			}
		}
		dirty = get_le(img + m->geo.rec_offset + (u64)win * PMC_REC_SIZE + 8, 8) &
			PMC_REC_DIRTY;
		want.used++;
		want.dirty += dirty;
		if (pmc_index_lookup(idx, recs[i].oblock) != win ||
		    idx->slots[win].key != wkey ||
		    pmc_slot_kind(idx, win) != (dirty ? PMC_S_DIRTY : PMC_S_CLEAN)) {
			snprintf(what, sizeof(what),
				 "block %llu: recovery kept slot %u, the records say slot %u (gen %u, %s)",
				 (unsigned long long)recs[i].oblock,
				 pmc_index_lookup(idx, recs[i].oblock), win, pmc_key_gen(wkey),
				 dirty ? "dirty" : "clean");
			fail_case(c->n, what);
			goto out;
		}
	}
	if (memcmp(&want, st, sizeof(want))) {
		snprintf(what, sizeof(what),
			 "recovery counted used %llu dirty %llu corrupt %llu unreadable %llu dup %llu out %llu;"
			 " the records say %llu %llu %llu %llu %llu %llu",
			 (unsigned long long)st->used, (unsigned long long)st->dirty,
			 (unsigned long long)st->corrupt, (unsigned long long)st->unreadable,
			 (unsigned long long)st->duplicates, (unsigned long long)st->out_of_range,
			 (unsigned long long)want.used, (unsigned long long)want.dirty,
			 (unsigned long long)want.corrupt, (unsigned long long)want.unreadable,
			 (unsigned long long)want.duplicates,
			 (unsigned long long)want.out_of_range);
		fail_case(c->n, what);
	}
out:
	free(recs);
}

static u64 rec_commit(const struct pmc_meta *m, u32 slot)
{
	return le64_to_cpu(m->recs[slot].commit);
}

static u64 rec_key(const struct pmc_meta *m, u32 slot)
{
	return le64_to_cpu(m->recs[slot].key);
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/*
 * What recovery must leave: the index holds only slots of the cache, each
 * with a block of the origin, each block once, reachable by lookup through
 * chains with no cycle; the counts are the index's; every slot is exactly
 * one of indexed, reported free once, or unreadable; an indexed slot's
 * record commits its key and state, a free slot's commit word is zero.
 */
static void check_index(const struct fcase *c, struct pmc_meta *m, struct pmc_index *idx,
			const struct pmc_recovery_stats *st, const struct freed *f,
			u64 origin_blocks)
{
	u32 nr = (u32)m->geo.nr_blocks, slot, nr_buckets, b, walked = 0, steps;
	u64 used = 0, dirty = 0, *oblocks, i;
	char what[160];

	if (idx->nr_slots != nr) {
		fail_case(c->n, "index size is not the cache's");
		return;
	}
	if (f->beyond || f->twice) {
		fail_case(c->n, f->beyond ? "a free slot beyond the cache" :
			  "a slot reported free twice");
		return;
	}
	oblocks = calloc(nr, sizeof(*oblocks));
	if (!oblocks) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	for (slot = 0; slot < nr; slot++) {
		u8 kind = pmc_slot_kind(idx, slot);
		u64 key = idx->slots[slot].key, ob = pmc_key_oblock(key);

		if (kind == PMC_S_FREE)
			continue;
		if (kind != PMC_S_CLEAN && kind != PMC_S_DIRTY) {
			fail_case(c->n, "an indexed slot in an unknown state");
			goto out;
		}
		if (f->seen[slot]) {
			snprintf(what, sizeof(what), "slot %u both indexed and free", slot);
			fail_case(c->n, what);
			goto out;
		}
		if (ob >= origin_blocks) {
			snprintf(what, sizeof(what),
				 "slot %u indexes block %llu of an origin of %llu",
				 slot, (unsigned long long)ob, (unsigned long long)origin_blocks);
			fail_case(c->n, what);
			goto out;
		}
		if (pmc_index_lookup(idx, ob) != slot) {
			snprintf(what, sizeof(what), "block %llu (slot %u) not found by lookup",
				 (unsigned long long)ob, slot);
			fail_case(c->n, what);
			goto out;
		}
		if (rec_key(m, slot) != key ||
		    !pmc_commit_ok(slot, key, rec_commit(m, slot)) ||
		    !!(rec_commit(m, slot) & PMC_REC_DIRTY) != (kind == PMC_S_DIRTY)) {
			snprintf(what, sizeof(what),
				 "slot %u: its record does not commit the index's key and state",
				 slot);
			fail_case(c->n, what);
			goto out;
		}
		oblocks[used++] = ob;
		dirty += kind == PMC_S_DIRTY;
	}
	qsort(oblocks, used, sizeof(*oblocks), cmp_u64);
	for (i = 1; i < used; i++)
		if (oblocks[i] == oblocks[i - 1]) {
			snprintf(what, sizeof(what), "block %llu indexed twice",
				 (unsigned long long)oblocks[i]);
			fail_case(c->n, what);
			goto out;
		}
	if (used != st->used || dirty != st->dirty) {
		snprintf(what, sizeof(what),
			 "counts %llu used, %llu dirty; the index holds %llu, %llu",
			 (unsigned long long)st->used, (unsigned long long)st->dirty,
			 (unsigned long long)used, (unsigned long long)dirty);
		fail_case(c->n, what);
		goto out;
	}
	if (used + f->n + st->unreadable != nr || st->unreadable > st->corrupt) {
		snprintf(what, sizeof(what), "%llu used + %llu free + %llu unreadable != %u slots",
			 (unsigned long long)used, (unsigned long long)f->n,
			 (unsigned long long)st->unreadable, nr);
		fail_case(c->n, what);
		goto out;
	}
	for (slot = 0; slot < nr; slot++)
		if (f->seen[slot] && rec_commit(m, slot)) {
			snprintf(what, sizeof(what), "free slot %u has a commit word", slot);
			fail_case(c->n, what);
			goto out;
		}
	/* Every chain: indexed slots only, no cycle, all of them. */
	nr_buckets = 1u << (64 - idx->hash_shift);
	for (b = 0; b < nr_buckets; b++) {
		for (slot = idx->buckets[b], steps = 0; slot != PMC_NO_SLOT;
		     slot = idx->slots[slot].link) {
			if (slot >= nr || pmc_slot_kind(idx, slot) == PMC_S_FREE ||
			    ++steps > nr || pmc_index_bucket(idx,
					pmc_key_oblock(idx->slots[slot].key)) != b) {
				fail_case(c->n, "a hash chain holds a free or foreign slot, or loops");
				goto out;
			}
			walked++;
		}
	}
	if (walked != used)
		fail_case(c->n, "the hash chains do not hold every indexed slot");
out:
	free(oblocks);
}

/* The allocator hands out each free slot once, and nothing else. */
static void check_alloc(const struct fcase *c, struct pmc_meta *m, struct pmc_alloc *a,
			const struct freed *f)
{
	u32 nr = (u32)m->geo.nr_blocks, slot, cpu = 0;
	u64 got = 0;
	u8 *seen = calloc(nr, 1);

	if (!seen) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	if (pmc_alloc_nr_free(a) != f->n)
		fail_case(c->n, "the allocator's free count is not the slots reported free");
	while ((slot = pmc_alloc_get(a, cpu++ % TABLE_NR_CPUS)) != PMC_NO_SLOT) {
		if (slot >= nr || seen[slot] || !f->seen[slot] || rec_commit(m, slot)) {
			fail_case(c->n, "the allocator hands out a slot that is not free");
			break;
		}
		seen[slot] = 1;
		if (++got > nr)
			break;
	}
	if (got != f->n)
		fail_case(c->n, "the allocator does not hand out every free slot");
	free(seen);
}

/*
 * A second recovery over what the first left finds nothing to drop (but the
 * unreadable records again) and the same blocks in the same slots; the
 * count of dirty blocks agrees.
 */
static void check_second_pass(const struct fcase *c, struct pmc_meta *m,
			      const struct pmc_index *first,
			      const struct pmc_recovery_stats *st1, u64 origin_blocks)
{
	struct pmc_recovery_stats st;
	struct pmc_index idx;
	struct freed f = { .nr = (u32)m->geo.nr_blocks };
	u64 dirty = ~0ULL;
	u32 slot;

	f.seen = calloc(f.nr, 1);
	if (!f.seen || pmc_index_init(&idx, f.nr)) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	if (pmc_meta_recover(m, &idx, origin_blocks, count_free, &f, &st)) {
		fail_case(c->n, "second recovery failed");
		goto out;
	}
	if (st.used != st1->used || st.dirty != st1->dirty || st.duplicates ||
	    st.out_of_range || st.corrupt != st.unreadable ||
	    st.unreadable != st1->unreadable) {
		fail_case(c->n, "a second recovery finds something the first left");
		goto out;
	}
	for (slot = 0; slot < f.nr; slot++)
		if (pmc_slot_kind(&idx, slot) != pmc_slot_kind(first, slot) ||
		    (pmc_slot_kind(&idx, slot) != PMC_S_FREE &&
		     idx.slots[slot].key != first->slots[slot].key)) {
			fail_case(c->n, "a second recovery builds another index");
			goto out;
		}
	/* Unreadable records may be dirty: a format or rebind must not zero them. */
	if (pmc_meta_count_dirty(m, &dirty, NULL) || dirty != st1->dirty + st1->unreadable)
		fail_case(c->n, "pmc_meta_count_dirty disagrees with recovery");
out:
	pmc_index_exit(&idx);
	free(f.seen);
}

/*
 * pmc_probe(), then pmc_load(): probe; over a blank device, or when the
 * table says "format", format (not over dirty blocks); for another origin,
 * count the dirty blocks and refuse, or rebind; for the same one, record a
 * new name or disk id; then the index, the allocator, the policy, and
 * recovery into them, as pmc_alloc_index() and pmc_recover_free() do.
 */
static enum outcome load_case(struct fcase *c, struct totals *t)
{
	const struct pmc_policy_ops *pops = &pmc_policy_default;
	static const u8 uuid[16] = "fuzz-new-uuid";
	enum pmc_probe_result res;
	struct pmc_recovery_stats st;
	struct pmc_policy *policy;
	struct pmc_index idx;
	struct pmc_alloc alloc;
	struct load_ctx l = { &idx, &alloc, { NULL, 0, 0, false, false } };
	enum outcome out = OUT_RECOVERED;
	struct pmc_meta m;
	const char *why = NULL;
	u64 origin_blocks, dirty = 0;
	u32 slot, sect_per_block;
	const u8 *before = snapshot;

	use_dev(c->img, c->size);
	memcpy(poison_at, c->poison_at, sizeof(poison_at));
	memcpy(poison_len, c->poison_len, sizeof(poison_len));
	nr_poison = c->nr_poison;

	/* The probe and the dirty count change nothing on the device. */
	memcpy(snapshot, c->img, c->size);
	res = pmc_meta_probe(&m, c->img, c->size, &why);
	if (res > PMC_PROBE_MISMATCH) {
		fail_case(c->n, "probe returned no known result");
		return OUT_REFUSED_PROBE;
	}
	t->probe[res]++;
	c->probe = res;
	if (res != PMC_PROBE_VALID && (!why || !*why))
		fail_case(c->n, "probe refused an image without a reason");
	/* Blank is the first superblock copy all zero, and nothing else. */
	if (res == PMC_PROBE_BLANK &&
	    (poisoned(c, 0, PMC_SB_SIZE) || any_nonzero(before, PMC_SB_SIZE)))
		fail_case(c->n, "probe calls blank a device whose first 4 KiB are not zero");
	if (c->format_arg && res == PMC_PROBE_VALID) {
		/* Format over a cache: refused while it holds dirty blocks. */
		if (pmc_meta_count_dirty(&m, &dirty, NULL)) {
			fail_case(c->n, "pmc_meta_count_dirty failed");
			return OUT_REFUSED_PROBE;
		}
		if (dirty)
			return OUT_REFUSED_DIRTY;
	}
	if (c->format_arg || res == PMC_PROBE_BLANK) {
		struct pmc_geometry g;

		if (pmc_geometry_compute(c->size, c->b->g->bs, &g))
			return OUT_REFUSED_PROBE;
		if (pmc_meta_format(&m, c->img, c->size, c->b->g->bs, &c->origin, uuid, 0) ||
		    pmc_meta_probe(&m, c->img, c->size, &why) != PMC_PROBE_VALID ||
		    !pmc_meta_origin_matches(&m, &c->origin) || memcmp(m.uuid, uuid, 16)) {
			/* Stores do not clear a media error under the superblocks. */
			if (!poisoned(c, 0, PMC_REC_OFFSET))
				fail_case(c->n, "a format does not leave a cache the probe finds");
			return OUT_REFUSED_PROBE;
		}
		out = OUT_FORMATTED;
	} else if (res != PMC_PROBE_VALID) {
		if (memcmp(before, c->img, c->size))
			fail_case(c->n, "a refused probe changed the device");
		return OUT_REFUSED_PROBE;
	}
	if (!probe_geometry_sane(&m, c->size)) {
		fail_case(c->n, "probe accepted a geometry that does not fit the device");
		return OUT_REFUSED_PROBE;
	}
	if (out != OUT_FORMATTED)
		check_probe_choice(c, &m, before);
	check_uid_str(c, &m);
	if (pmc_meta_origin_matches(&m, &c->origin) != origin_should_match(&m, &c->origin))
		fail_case(c->n, "pmc_meta_origin_matches decides otherwise than the ids or names");
	if (out != OUT_FORMATTED && !pmc_meta_origin_matches(&m, &c->origin)) {
		if (pmc_meta_count_dirty(&m, &dirty, NULL)) {
			fail_case(c->n, "pmc_meta_count_dirty failed");
			return OUT_REFUSED_PROBE;
		}
		if (memcmp(before, c->img, c->size))
			fail_case(c->n, "probe or the dirty count changed the device");
		if (dirty)
			return OUT_REFUSED_DIRTY;
		out = OUT_REBOUND;
	} else if (out != OUT_FORMATTED && memcmp(before, c->img, c->size)) {
		fail_case(c->n, "probe changed the device");
	}

	/* pmc_ctr: the origin's size in whole blocks of the cache. */
	sect_per_block = m.geo.block_size >> 9;
	if (c->origin.sectors & (sect_per_block - 1))
		return OUT_REFUSED_ORIGIN;
	origin_blocks = origin_blocks_of(c->origin.sectors, m.geo.block_size);

	if (pmc_index_init(&idx, (u32)m.geo.nr_blocks) ||
	    pmc_alloc_init(&alloc, &idx, TABLE_ALLOC_REGIONS, TABLE_NR_CPUS)) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	policy = pops->create((u32)m.geo.nr_blocks);
	l.f.nr = (u32)m.geo.nr_blocks;
	l.f.seen = calloc(l.f.nr, 1);
	if (!policy || !l.f.seen) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	if (out == OUT_REBOUND) {
		pmc_meta_rebind(&m, &c->origin, &idx);
		if (!pmc_meta_origin_matches(&m, &c->origin) ||
		    pmc_meta_probe(&m, c->img, c->size, &why) != PMC_PROBE_VALID ||
		    !pmc_meta_origin_matches(&m, &c->origin))
			fail_case(c->n, "after a rebind the probe does not find the new origin");
	}
	if (out == OUT_RECOVERED && pmc_meta_update_origin(&m, &c->origin) &&
	    (pmc_meta_probe(&m, c->img, c->size, &why) != PMC_PROBE_VALID ||
	     !pmc_meta_origin_matches(&m, &c->origin)))
		fail_case(c->n, "after an update of the origin the probe does not find it");
	if (pmc_meta_recover(&m, &idx, origin_blocks, load_free, &l, &st)) {
		fail_case(c->n, "recovery failed");
		goto out;
	}
	for (slot = 0; slot < idx.nr_slots; slot++)
		if (pmc_slot_kind(&idx, slot) != PMC_S_FREE)
			pops->insert(policy, slot, pmc_key_oblock(idx.slots[slot].key));
	(void)pops->mem_bytes(policy);

	check_index(c, &m, &idx, &st, &l.f, origin_blocks);
	if (out == OUT_RECOVERED)
		check_model(c, &m, &idx, &st, origin_blocks, before);
	check_second_pass(c, &m, &idx, &st, origin_blocks);
	check_alloc(c, &m, &alloc, &l.f);
	if ((out == OUT_REBOUND || out == OUT_FORMATTED) && st.used)
		fail_case(c->n, "a rebound or new cache holds blocks");

	t->with_corrupt += !!st.corrupt;
	t->with_duplicates += !!st.duplicates;
	t->with_out_of_range += !!st.out_of_range;
	t->with_unreadable += !!st.unreadable;
	t->used += st.used;
	t->dirty += st.dirty;
out:
	pops->destroy(policy);
	pmc_alloc_exit(&alloc);
	pmc_index_exit(&idx);
	free(l.f.seen);
	return out;
}

/* ---- pmcache-tool check on some of the images ---- */

static const char *tool_path = "../../tools/pmcache-tool";

/*
 * The tool's exit status, or -(signal) when it died of one. Spawned, not
 * forked: a fork copies the page tables of ASan's shadow memory, and took
 * longer than the tool.
 */
static int run_tool(const char *cmd, const char *img, const char *opt)
{
	posix_spawn_file_actions_t fa;
	char *argv[5];
	pid_t pid;
	int st;

	argv[0] = "pmcache-tool";
	argv[1] = (char *)cmd;
	argv[2] = (char *)img;
	argv[3] = (char *)opt;
	argv[4] = NULL;
	if (posix_spawn_file_actions_init(&fa))
		return -1000;
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	st = posix_spawn(&pid, tool_path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (st || waitpid(pid, &st, 0) != pid)
		return -1000;
	if (WIFSIGNALED(st))
		return -WTERMSIG(st);
	return WEXITSTATUS(st);
}

static bool write_image(const char *path, const struct fcase *c)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	u64 off = 0;
	ssize_t w;

	if (fd < 0)
		return false;
	while (off < c->size) {
		w = write(fd, c->img + off, c->size - off);
		if (w <= 0)
			break;
		off += (u64)w;
	}
	close(fd);
	return off == c->size;
}

/*
 * Does copy 1 of @c's image hold a cache that its copy 0 hides (zero, or
 * overwritten by other data)? The tool looks there, as if copy 1 were copy 0.
 */
static bool hides_cache(const struct fcase *c)
{
	u8 copy0[PMC_SB_SIZE];
	struct pmc_meta m;
	const char *why;
	bool hides;

	if (c->size < PMC_REC_OFFSET)
		return false;
	/* The image is the device its reads are checked against, no media error. */
	use_dev(c->img, c->size);
	nr_poison = 0;
	memcpy(copy0, c->img, PMC_SB_SIZE);
	memcpy(c->img, c->img + PMC_SB_SIZE, PMC_SB_SIZE);
	hides = pmc_meta_probe_read_only(&m, c->img, c->size, &why) == PMC_PROBE_VALID;
	memcpy(c->img, copy0, PMC_SB_SIZE);
	return hides;
}

/*
 * The tool loads the image as the module does (its origin from the
 * superblock): it may say the image is bad, but must not crash. Where the
 * fuzzer saw no media error, the probe's verdict is the tool's: usable
 * (exit 0 or 1) or not (exit 2; or 1, a problem, when copy 0 hides a
 * cache).
 */
static void tool_cases(const u64 *cases, unsigned int n, const bool *probe_ok)
{
	char dir[] = "/tmp/pmcache-fuzz.XXXXXX", path[64], what[200];
	unsigned int i, crashed = 0, wrong = 0;
	struct fcase c;
	int rc, rd;

	if (!mkdtemp(dir)) {
		check(false, "fuzz pmcache-tool: a temporary directory");
		return;
	}
	snprintf(path, sizeof(path), "%s/cache.img", dir);
	for (i = 0; i < n; i++) {
		make_case(opt_seed, cases[i], &c);
		if (!write_image(path, &c)) {
			check(false, "fuzz pmcache-tool: write an image");
			free_case(&c);
			break;
		}
		WRITE_ONCE(cur_case, (long long)c.n);
		rc = run_tool("check", path, NULL);
		rd = run_tool("dump", path, "--records");
		WRITE_ONCE(cur_case, -1);
		if (rc < 0 || rd < 0 || rc > 2 || rd > 2) {
			snprintf(what, sizeof(what),
				 "pmcache-tool check/dump exit %d/%d (negative: signal)",
				 rc, rd);
			fail_case(c.n, what);
			crashed++;
		} else if (!c.nr_poison && c.size >= PMC_REC_OFFSET &&
			   (probe_ok[i] ? rc == 2 : rc == 0 || (rc == 1 && !hides_cache(&c)))) {
			snprintf(what, sizeof(what),
				 "pmcache-tool check exits %d where the probe %s",
				 rc, probe_ok[i] ? "accepted the image" : "refused it");
			fail_case(c.n, what);
			wrong++;
		}
		if (verbose)
			printf("# tool case %llu: check %d, dump %d\n",
			       (unsigned long long)c.n, rc, rd);
		free_case(&c);
	}
	unlink(path);
	rmdir(dir);
	snprintf(what, sizeof(what),
		 "fuzz pmcache-tool check and dump: %u damaged images, none crashes it", n);
	check(!crashed, what);
	check(!wrong, "fuzz pmcache-tool: accepts exactly the images the probe accepts");
}

/* ---- main ---- */

static void on_alarm(int sig)
{
	char msg[128];
	int len;

	long long n = READ_ONCE(cur_case);

	(void)sig;
	len = snprintf(msg, sizeof(msg),
		       "not ok fuzz case %lld: did not finish in %u s (a loop?) (again: --seed %llu --case %lld)\n",
		       n, CASE_TIMEOUT_S, (unsigned long long)opt_seed, n);
	if (write(1, msg, (size_t)len) < 0)
		_exit(1);
	_exit(1);
}

#ifdef FUZZ_ASAN
static void on_sanitizer_death(void)
{
	long long n = READ_ONCE(cur_case);

	printf("not ok fuzz case %lld: sanitizer report above (again: --seed %llu --case %lld)\n",
	       n, (unsigned long long)opt_seed, n);
	fflush(stdout);
}
#endif

static int bad_usage(void)
{
	fprintf(stderr,
		"usage: fuzz_meta [--seed N] [--iterations N] [--case N] [--tool PATH|none]\n"
		"                 [--tool-cases N] [-v]\n");
	return 2;
}

static bool parse_u64(const char *s, u64 *v)
{
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return !errno && !*end;
}

int main(int argc, char **argv)
{
	u64 iterations = DEFAULT_ITERATIONS, one_case = ~0ULL, n, first, last;
	u64 nr_tool_cases = DEFAULT_TOOL_CASES, *tool_case, stride;
	unsigned int nr_tool = 0, nr_tool_ok = 0, nr_tool_bad = 0, i;
	bool *tool_probe_ok;
	struct totals t;
	struct timespec t0, t1;
	struct fcase c;
	char what[200];
	double secs;
	int a;

	memset(&t, 0, sizeof(t));
	for (a = 1; a < argc; a++) {
		const char *v = a + 1 < argc ? argv[a + 1] : NULL;

		if (!strcmp(argv[a], "--seed") && parse_u64(v, &opt_seed))
			a++;
		else if (!strcmp(argv[a], "--iterations") && parse_u64(v, &iterations))
			a++;
		else if (!strcmp(argv[a], "--case") && parse_u64(v, &one_case))
			a++;
		else if (!strcmp(argv[a], "--tool-cases") && parse_u64(v, &nr_tool_cases) &&
			 nr_tool_cases <= 1u << 20)
			a++;
		else if (!strcmp(argv[a], "--tool") && v)
			tool_path = argv[++a];
		else if (!strcmp(argv[a], "-v"))
			verbose = true;
		else
			return bad_usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
#ifdef FUZZ_ASAN
	__sanitizer_set_death_callback(on_sanitizer_death);
#endif
	pmc_pmem_set_hooks(&checked_hooks);

	make_bases();
	arena_init();
	tool_case = calloc(nr_tool_cases + 1, sizeof(*tool_case));
	tool_probe_ok = calloc(nr_tool_cases + 1, sizeof(*tool_probe_ok));
	if (!tool_case || !tool_probe_ok) {
		fprintf(stderr, "out of memory\n");
		return 2;
	}
	/* Spread over the run, for images of every base and kind of damage. */
	stride = one_case != ~0ULL ? 1 : max_t(u64, 1, iterations / (4 * nr_tool_cases + 1));
	first = one_case != ~0ULL ? one_case : 0;
	last = one_case != ~0ULL ? one_case + 1 : iterations;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (n = first; n < last; n++) {
		enum outcome out;

		make_case(opt_seed, n, &c);
		WRITE_ONCE(cur_case, (long long)n);
		alarm(CASE_TIMEOUT_S);
		out = load_case(&c, &t);
		alarm(0);
		WRITE_ONCE(cur_case, -1);
		t.outcomes[out]++;
		if (verbose || one_case != ~0ULL)
			printf("# case %llu: base %td, %llu of %llu bytes, %u media errors, [%s]: %s\n",
			       (unsigned long long)n, c.b - bases, (unsigned long long)c.size,
			       (unsigned long long)c.b->size, c.nr_poison, c.ops,
			       outcome_names[out]);
		/* For the tool: half of them images the probe accepted. */
		if (nr_tool < nr_tool_cases && !(n % stride)) {
			bool ok = c.probe == PMC_PROBE_VALID;

			if (ok ? nr_tool_ok < (nr_tool_cases + 1) / 2 :
				 nr_tool_bad < nr_tool_cases / 2) {
				tool_case[nr_tool] = n;
				tool_probe_ok[nr_tool++] = ok;
				nr_tool_ok += ok;
				nr_tool_bad += !ok;
			}
		}
		free_case(&c);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	snprintf(what, sizeof(what),
		 "fuzz probe/load/recover: %llu damaged images (seed %llu), each refused or recovered to a sound index",
		 (unsigned long long)(last - first), (unsigned long long)opt_seed);
	check(!nr_failed, what);
	/* Short runs may miss some; the default one must not. */
	if (one_case == ~0ULL && iterations >= DEFAULT_ITERATIONS) {
		check(t.outcomes[OUT_REFUSED_PROBE] && t.outcomes[OUT_RECOVERED] &&
		      t.outcomes[OUT_REFUSED_ORIGIN] &&
		      t.outcomes[OUT_REBOUND] && t.outcomes[OUT_FORMATTED] &&
		      t.outcomes[OUT_REFUSED_DIRTY] && t.with_corrupt && t.with_duplicates &&
		      t.with_out_of_range && t.with_unreadable,
		      "fuzz: the cases reach every outcome of a load");
	}
	if (strcmp(tool_path, "none")) {
		if (access(tool_path, X_OK))
			check(false, "fuzz pmcache-tool: the tool is built (--tool none to skip)");
		else
			tool_cases(tool_case, nr_tool, tool_probe_ok);
	}

	printf("# fuzz_meta: seed %llu, %llu iterations in %.2f s: %llu refused, %llu recovered\n",
	       (unsigned long long)opt_seed, (unsigned long long)(last - first), secs,
	       (unsigned long long)(t.outcomes[OUT_REFUSED_PROBE] + t.outcomes[OUT_REFUSED_DIRTY] +
				    t.outcomes[OUT_REFUSED_ORIGIN]),
	       (unsigned long long)(t.outcomes[OUT_RECOVERED] + t.outcomes[OUT_REBOUND] +
				    t.outcomes[OUT_FORMATTED]));
	for (i = 0; i < NR_OUTCOMES; i++)
		printf("#   %-32s %llu\n", outcome_names[i], (unsigned long long)t.outcomes[i]);
	printf("#   probe: %llu valid, %llu blank, %llu foreign, %llu corrupt, %llu unsupported, %llu mismatch\n",
	       (unsigned long long)t.probe[PMC_PROBE_VALID],
	       (unsigned long long)t.probe[PMC_PROBE_BLANK],
	       (unsigned long long)t.probe[PMC_PROBE_FOREIGN],
	       (unsigned long long)t.probe[PMC_PROBE_CORRUPT],
	       (unsigned long long)t.probe[PMC_PROBE_UNSUPPORTED],
	       (unsigned long long)t.probe[PMC_PROBE_MISMATCH]);
	printf("#   recoveries with corrupt %llu, duplicates %llu, out of range %llu, unreadable %llu; %llu blocks (%llu dirty) recovered\n",
	       (unsigned long long)t.with_corrupt, (unsigned long long)t.with_duplicates,
	       (unsigned long long)t.with_out_of_range, (unsigned long long)t.with_unreadable,
	       (unsigned long long)t.used, (unsigned long long)t.dirty);
	free(tool_case);
	free(tool_probe_ok);
	arena_exit();
	for (i = 0; i < NR_BASES; i++)
		free(bases[i].img);
	pmc_pmem_set_hooks(NULL);
	return nr_failed ? 1 : 0;
}

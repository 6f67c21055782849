// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace unit tests of dm-pmcache's on-media format and metadata
 * (pmcache_format.h, pmcache_meta.c), index (pmcache_index.c) and free-slot
 * allocator (pmcache_alloc.c): format and probe, the superblock copies,
 * rebind, record commit / replace / free / set_clean and the order of their
 * stores and fences, recovery (duplicates by generation, wraparound,
 * corrupt and out-of-range records, accounting), hash chains, allocation
 * across regions.
 *
 * Output: "ok <name>" / "not ok <name>"; exit status 1 on any failure.
 */
#include "pmcache_meta.h"
#include "pmcache_index.h"
#include "pmcache_alloc.h"
#include "pmcache_pmem.h"
#include "pmcache_slot.h"

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

/* ---- a pmem that records what is done to it ---- */

enum ev_kind { EV_COPY, EV_ZERO, EV_STORE64, EV_FENCE };

struct ev {
	enum ev_kind kind;
	size_t off;
	size_t len;
};

#define MAX_EVENTS 4096

static u8 *dev;
static u64 dev_size;
static struct ev events[MAX_EVENTS];
static unsigned int nr_events;

static void log_ev(enum ev_kind k, const void *p, size_t len)
{
	if (nr_events < MAX_EVENTS) {
		events[nr_events].kind = k;
		events[nr_events].off = p ? (size_t)((const u8 *)p - dev) : 0;
		events[nr_events].len = len;
	}
	nr_events++;
}

static void rec_copy(void *dst, const void *src, size_t len)
{
	memmove(dst, src, len);
	log_ev(EV_COPY, dst, len);
}

static void rec_zero(void *dst, size_t len)
{
	memset(dst, 0, len);
	log_ev(EV_ZERO, dst, len);
}

static void rec_store64(__le64 *dst, __le64 val)
{
	*dst = val;
	log_ev(EV_STORE64, dst, 8);
}

static void rec_fence(void)
{
	log_ev(EV_FENCE, NULL, 0);
}

static const struct pmc_pmem_hooks rec_hooks = {
	.copy = rec_copy,
	.zero = rec_zero,
	.store64 = rec_store64,
	.fence = rec_fence,
};

/* A fresh device of @size bytes (all zero) with the recording hooks. */
static void new_dev(u64 size)
{
	free(dev);
	dev = calloc(1, size);
	if (!dev) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	dev_size = size;
	nr_events = 0;
	pmc_pmem_set_hooks(&rec_hooks);
}

static const u8 uuid_a[16] = "uuid-of-cache-a";
static const u8 uuid_b[16] = "uuid-of-cache-b";
static const struct pmc_origin_id origin_a = { .sectors = 65536, .name = "origin-a" };
static const struct pmc_origin_id origin_b = { .sectors = 32768, .name = "origin-b" };

#define DEV_SIZE	(64u * 1024)
#define BS		512u

static struct pmc_sb *sb_at(unsigned int copy)
{
	return (struct pmc_sb *)(dev + copy * PMC_SB_SIZE);
}

/* Recompute a superblock copy's checksum after a test edits it. */
static void sb_reseal(struct pmc_sb *sb)
{
	sb->crc = 0;
	sb->crc = cpu_to_le32(pmc_crc32c(~0u, sb, sizeof(*sb)));
}

static void format_dev(struct pmc_meta *m, u64 size)
{
	new_dev(size);
	if (pmc_meta_format(m, dev, size, BS, &origin_a, uuid_a, 1234)) {
		fprintf(stderr, "format failed\n");
		exit(2);
	}
}

/* pmc_meta_rebind with an index of its own, as the target's (empty) one. */
static void rebind(struct pmc_meta *m, const struct pmc_origin_id *origin)
{
	struct pmc_index idx;

	if (pmc_index_init(&idx, (u32)m->geo.nr_blocks)) {
		fprintf(stderr, "no memory\n");
		exit(2);
	}
	pmc_meta_rebind(m, origin, &idx);
	pmc_index_exit(&idx);
}

/* ---- format and probe ---- */

static void test_probe_blank_foreign(void)
{
	struct pmc_meta m;
	const char *why;
	u64 i;

	new_dev(DEV_SIZE);
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_BLANK && why,
	      "probe: a zeroed device is blank");
	for (i = 0; i < DEV_SIZE; i++)
		dev[i] = (u8)(i * 37 + 11);
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_FOREIGN && why,
	      "probe: foreign data is not a pmcache device");
	memset(dev, 0, DEV_SIZE);
	dev[PMC_SB_SIZE - 1] = 1;
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_FOREIGN,
	      "probe: one non-zero byte in the first 4 KiB is not blank");
	check(pmc_meta_probe(&m, dev, PMC_REC_OFFSET - 1, &why) == PMC_PROBE_MISMATCH && why,
	      "probe: a device smaller than the superblocks is refused");
}

static void zero_dev_range(u64 start, u64 len, void *arg)
{
	u64 size = *(u64 *)arg;

	if (start > size || len > size - start) {
		fprintf(stderr, "blank range %llu+%llu beyond the device\n",
			(unsigned long long)start, (unsigned long long)len);
		exit(2);
	}
	memset(dev + start, 0, len);
}

/*
 * Another format's signature beyond the first 4 KiB: not blank, and named;
 * zeroing what pmc_meta_blank_ranges() names (as wipe does) makes it blank.
 */
static void test_probe_signatures(void)
{
	static const struct {
		const char *name;
		u64 at;
		const char *magic;
		size_t len;
	} sigs[] = {
		{ "bcache", 4096 + 24, "\xc6\x85\x73\xf6\x4e\x1a\x45\xca"
		  "\x82\x65\xf5\x7f\x48\xba\x6d\x81", 16 },
		{ "MD RAID 1.2", 4096, "\xfc\x4e\x2b\xa9", 4 },
		{ "ISO 9660", 32769, "CD001", 5 },
		{ "btrfs", 65600, "_BHRfS_M", 8 },
		{ "ZFS", 131072 + 5 * 1024, "\x0c\xb1\xba\0\0\0\0\0", 8 },
		{ "ZFS", 131072 + 127 * 1024, "\0\0\0\0\0\xba\xb1\x0c", 8 },
		/* 8 KiB before the end, down to 4 KiB: 1 MiB + 4 KiB */
		{ "MD RAID 1.0", 1052672, "\xfc\x4e\x2b\xa9", 4 },
		/* the end down to 64 KiB (1 MiB), less 64 KiB */
		{ "MD RAID 0.90", 983040, "\xfc\x4e\x2b\xa9", 4 },
	};
	/* Not a multiple of 4 KiB: the end formats round down. */
	u64 size = 1024 * 1024 + 12345;
	struct pmc_meta m;
	const char *why;
	char what[64];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sigs); i++) {
		new_dev(size);
		memcpy(dev + sigs[i].at, sigs[i].magic, sigs[i].len);
		snprintf(what, sizeof(what), "probe: %s is not blank, and named", sigs[i].name);
		check(pmc_meta_probe(&m, dev, size, &why) == PMC_PROBE_FOREIGN && why &&
		      strstr(why, sigs[i].name) && strstr(why, "format"), what);
		pmc_meta_blank_ranges(size, zero_dev_range, &size);
		snprintf(what, sizeof(what), "probe: blank once %s is zeroed", sigs[i].name);
		check(pmc_meta_probe(&m, dev, size, &why) == PMC_PROBE_BLANK, what);
	}
	/* One byte off its place is no signature. */
	new_dev(size);
	memcpy(dev + 65601, "_BHRfS_M", 8);
	check(pmc_meta_probe(&m, dev, size, &why) == PMC_PROBE_BLANK,
	      "probe: a signature out of place does not count");
	/* A device too small for a signature's place is still probed. */
	new_dev(16384);
	check(pmc_meta_probe(&m, dev, 16384, &why) == PMC_PROBE_BLANK,
	      "probe: a small zero device is blank");
}

/*
 * Format, and the blanking of a device a cache moves away from, zero where
 * other formats' signatures lie, as the tool's wipe does: an MD superblock
 * left in the data area would make the device foreign again once its
 * first 4 KiB are zeroed (the README's reset).
 */
static void test_format_blanks_signatures(void)
{
	u64 size = 4u << 20, md090 = (size & ~0xffffull) - 0x10000;
	struct pmc_meta m, p;
	const char *why;

	new_dev(size);
	memcpy(dev + md090, "\xfc\x4e\x2b\xa9", 4);
	memcpy(dev + 65600, "_BHRfS_M", 8);
	check(pmc_meta_probe(&p, dev, size, &why) == PMC_PROBE_FOREIGN,
	      "format of a foreign device: foreign before");
	check(!pmc_meta_format(&m, dev, size, BS, &origin_a, uuid_a, 1) &&
	      pmc_meta_probe(&p, dev, size, &why) == PMC_PROBE_VALID,
	      "format of a foreign device: formatted");
	memset(dev, 0, 4096);
	check(pmc_meta_probe(&p, dev, size, &why) == PMC_PROBE_BLANK,
	      "format of a foreign device: its signatures gone (blank once the first 4 KiB are zeroed)");
	/* A cached block's data that reads as a signature, then a move away. */
	check(!pmc_meta_format(&m, dev, size, BS, &origin_a, uuid_a, 1),
	      "invalidate: formatted");
	memcpy(dev + md090, "\xfc\x4e\x2b\xa9", 4);
	pmc_meta_invalidate(&m, size);
	check(pmc_meta_probe(&p, dev, size, &why) == PMC_PROBE_BLANK,
	      "invalidate: the device left blank, signatures in its data zeroed");
}

static void test_format(void)
{
	struct pmc_geometry g;
	struct pmc_meta m, p;
	const char *why;
	bool ok;

	format_dev(&m, DEV_SIZE);
	check(!pmc_geometry_compute(DEV_SIZE, BS, &g) &&
	      m.geo.nr_blocks == g.nr_blocks && m.geo.data_offset == g.data_offset &&
	      m.geo.rec_offset == PMC_REC_OFFSET &&
	      g.data_offset % PMC_DATA_ALIGN == 0 &&
	      g.data_offset >= PMC_REC_OFFSET + g.nr_blocks * PMC_REC_SIZE &&
	      g.data_offset + g.nr_blocks * BS <= DEV_SIZE,
	      "format: geometry fits the device, data aligned after the records");
	ok = pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && p.sb_seq == 1 && p.sb_copy == 0 && p.geo.nr_blocks == g.nr_blocks &&
	      p.geo.block_size == BS && !memcmp(p.uuid, uuid_a, 16) &&
	      p.origin_sectors == origin_a.sectors &&
	      !strcmp(p.origin_name, origin_a.name),
	      "format: probe finds seq 1 in copy 0, geometry, uuid, origin");
	check(pmc_meta_origin_matches(&p, &origin_a) &&
	      !pmc_meta_origin_matches(&p, &origin_b),
	      "format: origin identity matches only its origin");
	check(!memcmp(sb_at(0), sb_at(1), sizeof(struct pmc_sb)),
	      "format: both copies written, the same");
	check(pmc_meta_probe(&p, dev, DEV_SIZE / 2, &why) == PMC_PROBE_MISMATCH,
	      "probe: a device smaller than the one formatted is a mismatch");
	new_dev(PMC_REC_OFFSET + PMC_DATA_ALIGN + 4 * BS);
	check(pmc_meta_format(&m, dev, dev_size, BS, &origin_a, uuid_a, 0) == -ENOSPC,
	      "format: fewer than PMC_MIN_BLOCKS blocks is -ENOSPC");
}

/*
 * Huge caches: the block count stops at PMC_MAX_BLOCKS (2^31), so u32 sums
 * over slots cannot wrap. 2.0625 TiB at 512-byte blocks would be
 * 2^32 - 24 blocks, where rounding up to whole 64-slot words wrapped to 0.
 */
static void test_geometry_cap(void)
{
	const u64 tib = 1ULL << 40;
	struct pmc_geometry g;

	check(!pmc_geometry_compute(2 * tib + tib / 16, 512, &g) &&
	      g.nr_blocks == PMC_MAX_BLOCKS &&
	      g.data_offset % PMC_DATA_ALIGN == 0 &&
	      g.data_offset >= PMC_REC_OFFSET + g.nr_blocks * PMC_REC_SIZE &&
	      g.data_offset + g.nr_blocks * 512 <= 2 * tib + tib / 16,
	      "geometry: 2.0625 TiB at 512 B stops at 2^31 blocks, and they fit");
	check(!pmc_geometry_compute(16 * tib, 4096, &g) &&
	      g.nr_blocks == PMC_MAX_BLOCKS,
	      "geometry: 16 TiB at 4 KiB stops at 2^31 blocks");
	check(!pmc_geometry_compute(tib, 4096, &g) &&
	      g.nr_blocks + 1 >= (tib - PMC_REC_OFFSET - PMC_DATA_ALIGN) / (4096 + PMC_REC_SIZE),
	      "geometry: 1 TiB at 4 KiB is not capped");
}

static void test_format_order(void)
{
	struct pmc_sb save;
	struct pmc_meta m, p;
	unsigned int i, fences = 0, zero_fence = 0, sb_ev = 0;
	const char *why;
	bool order = true;
	int first_sb_zero = -1, first_sb_copy = -1;
	unsigned int first;

	format_dev(&m, DEV_SIZE);
	/* Records cleared, fenced, before the superblock is written. */
	for (i = 0; i < nr_events && i < MAX_EVENTS; i++) {
		if (events[i].kind == EV_FENCE) {
			fences++;
			continue;
		}
		if (events[i].kind == EV_ZERO &&
		    events[i].off == PMC_REC_OFFSET)
			zero_fence = fences;
		if (events[i].kind == EV_COPY && events[i].off < PMC_REC_OFFSET) {
			sb_ev = i;
			order &= fences > zero_fence;
			if (first_sb_copy < 0)
				first_sb_copy = (int)(events[i].off / PMC_SB_SIZE);
		}
	}
	check(order && sb_ev && events[nr_events - 1].kind == EV_FENCE,
	      "format: records cleared and fenced before the superblock; durable on return");
	/* Torn, copy 1 leaves copy 0 zero: blank, formatted again, not refused. */
	check(first_sb_copy == 1, "format: writes superblock copy 1 first");

	/*
	 * A crash between the two writes of a rebind leaves the copy it
	 * writes second older: a format over it must clear that one first.
	 * (A format writes copy 1 first, so the rebind writes copy 0 first.)
	 */
	first = !m.sb_copy;
	save = *sb_at(!first);
	rebind(&m, &origin_b);
	check(m.sb_copy == first && first == 0, "rebind: writes the other copy first");
	*sb_at(!first) = save;
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID && m.sb_copy == first,
	      "probe: the copy with the higher seq is current");
	nr_events = 0;
	pmc_meta_format(&m, dev, DEV_SIZE, BS, &origin_a, uuid_b, 0);
	for (i = 0; i < nr_events && i < MAX_EVENTS; i++)
		if (events[i].kind == EV_ZERO && events[i].off < PMC_REC_OFFSET) {
			first_sb_zero = (int)(events[i].off / PMC_SB_SIZE);
			break;
		}
	check(first_sb_zero == (int)!first && i + 1 < nr_events &&
	      events[i + 1].kind == EV_FENCE,
	      "format: the older superblock copy is cleared and fenced first");
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_VALID &&
	      p.sb_seq == 1 && !memcmp(p.uuid, uuid_b, 16),
	      "format: a reformat starts again at seq 1 with the new uuid");
}

/* The index of the first event of @kind at @off from @from on; -1: none. */
static int find_ev(unsigned int from, enum ev_kind kind, size_t off)
{
	unsigned int i;

	for (i = from; i < nr_events && i < MAX_EVENTS; i++)
		if (events[i].kind == kind && (kind == EV_FENCE || events[i].off == off))
			return (int)i;
	return -1;
}

/*
 * Superblock writes that a crash tears must leave a copy that reads as
 * damaged (its magic kept), never as another user's data over the other
 * copy (sb_copy0_torn): a reset or format zeroes each copy but its magic
 * first, then the magic; a copy written while damaged or behind is first
 * made the same as the current one.
 */
static void test_sb_tears(void)
{
	struct pmc_meta m, p;
	struct pmc_sb older;
	const char *why;
	unsigned int c;
	bool order = true;
	int z, f, st, c1, c2, zc;

	/* Copy 0 behind copy 1: a rebind torn after its first write. */
	format_dev(&m, DEV_SIZE);
	older = *sb_at(0);
	rebind(&m, &origin_b);
	*sb_at(0) = older;
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID && m.sb_copy == 1 &&
	      !m.sb_copies_same, "tears: copy 0 behind copy 1 loads copy 1");
	nr_events = 0;
	pmc_meta_format(&p, dev, DEV_SIZE, BS, &origin_a, uuid_a, 0);
	for (c = 0; c < PMC_SB_COPIES; c++) {
		z = find_ev(0, EV_ZERO, c * PMC_SB_SIZE + 8);
		f = z < 0 ? -1 : find_ev((unsigned int)z, EV_FENCE, 0);
		st = find_ev(0, EV_STORE64, c * PMC_SB_SIZE);
		/* (The signature blanking zeroes the first 8 KiB again, after.) */
		zc = find_ev(0, EV_ZERO, c * PMC_SB_SIZE);
		order &= z >= 0 && f > z && st > f && (zc < 0 || zc > st);
	}
	check(order, "tears: a format zeroes each superblock copy but its magic, fences, then the magic");
	/* Torn there, over copy 0 behind: copy 1 loads, no foreign device. */
	format_dev(&m, DEV_SIZE);
	older = *sb_at(0);
	rebind(&m, &origin_b);
	*sb_at(0) = older;
	memset((u8 *)sb_at(0) + 8, 0, PMC_SB_SIZE - 8);
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID && m.sb_copy == 1,
	      "tears: a copy 0 zeroed but its magic leaves copy 1 to load");

	/*
	 * Copy 0 torn at a format (no magic, the rest copy 1's): loaded
	 * from copy 1, and the rewrite that makes the copies the same heals
	 * copy 0 first, behind a fence, then writes the new superblock.
	 */
	format_dev(&m, DEV_SIZE);
	sb_at(0)->magic = 0;
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID && m.sb_copy == 1,
	      "tears: a copy 0 torn at a format loads copy 1");
	nr_events = 0;
	pmc_meta_update_origin(&m, &origin_a);
	c1 = find_ev(0, EV_COPY, 0);
	f = c1 < 0 ? -1 : find_ev((unsigned int)c1, EV_FENCE, 0);
	c2 = f < 0 ? -1 : find_ev((unsigned int)f, EV_COPY, 0);
	st = find_ev(0, EV_COPY, PMC_SB_SIZE);
	check(c1 >= 0 && f > c1 && c2 > f && st > c2 && m.sb_copies_same &&
	      !memcmp(sb_at(0), sb_at(1), PMC_SB_SIZE),
	      "tears: a damaged copy is made the current one, fenced, before the rewrite");
}

static void test_probe_corrupt_unsupported(void)
{
	struct pmc_meta m, p;
	const char *why;
	struct pmc_sb save;

	format_dev(&m, DEV_SIZE);
	/* Copy 1 gone (test_two_copies has both), so copy 0 alone decides. */
	memset(sb_at(1), 0, sizeof(struct pmc_sb));
	save = *sb_at(0);
	sb_at(0)->origin_name[3] ^= 1;
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_CORRUPT && why,
	      "probe: a flipped bit in the only superblock is corrupt");
	*sb_at(0) = save;
	sb_at(0)->version_major = cpu_to_le16(PMC_VERSION_MAJOR + 1);
	sb_reseal(sb_at(0));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_UNSUPPORTED && why,
	      "probe: a newer major version is unsupported");
	*sb_at(0) = save;
	sb_at(0)->version_minor = cpu_to_le16(PMC_VERSION_MINOR + 7);
	sb_reseal(sb_at(0));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_VALID,
	      "probe: a newer minor version is fine");
	*sb_at(0) = save;
	sb_at(0)->incompat_flags = cpu_to_le32(0x80);
	sb_reseal(sb_at(0));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_UNSUPPORTED,
	      "probe: unknown incompat flags are unsupported");
	*sb_at(0) = save;
	sb_at(0)->ro_compat_flags = cpu_to_le32(0x80);
	sb_reseal(sb_at(0));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_UNSUPPORTED,
	      "probe: unknown ro_compat flags are unsupported (no read-only mode)");
	*sb_at(0) = save;
	sb_at(0)->compat_flags = cpu_to_le32(0x80);
	sb_reseal(sb_at(0));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_VALID,
	      "probe: unknown compat flags are fine");
	*sb_at(0) = save;
	sb_at(0)->nr_blocks = cpu_to_le64(le64_to_cpu(save.nr_blocks) + 1);
	sb_reseal(sb_at(0));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_MISMATCH && why,
	      "probe: a block count that does not fit is a geometry mismatch");
	*sb_at(0) = save;
	sb_at(0)->data_offset = cpu_to_le64(le64_to_cpu(save.data_offset) + 4096);
	sb_reseal(sb_at(0));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_MISMATCH,
	      "probe: a moved data area is a geometry mismatch");
	*sb_at(0) = save;
	sb_at(0)->block_size = cpu_to_le32(768);
	sb_reseal(sb_at(0));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_MISMATCH,
	      "probe: a block size that is not a power of two is refused");
	*sb_at(0) = save;
	sb_at(0)->block_size = cpu_to_le32(8192);
	sb_reseal(sb_at(0));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_MISMATCH,
	      "probe: a block size above 4096 is refused");
	*sb_at(0) = save;
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_VALID,
	      "probe: the restored superblock is valid again");
	/*
	 * A later version's update torn after its first copy: the newer
	 * copy is of a version not known here, the older one of this one.
	 */
	*sb_at(1) = save;
	sb_at(1)->seq = cpu_to_le64(le64_to_cpu(save.seq) + 1);
	sb_at(1)->incompat_flags = cpu_to_le32(0x80);
	sb_reseal(sb_at(1));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_UNSUPPORTED && why,
	      "probe: a newer copy of an unknown version is no reason to load the older one");
	sb_at(1)->seq = cpu_to_le64(le64_to_cpu(save.seq) - 1);
	sb_reseal(sb_at(1));
	check(pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_VALID && p.sb_copy == 0,
	      "probe: an older copy of an unknown version leaves the newer one to load");
}

static void test_two_copies(void)
{
	struct pmc_meta m, p;
	const char *why;
	struct pmc_sb save, older;
	bool ok;

	format_dev(&m, DEV_SIZE);
	older = *sb_at(0);
	rebind(&m, &origin_b);
	ok = pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && p.sb_seq == 2 && !memcmp(sb_at(0), sb_at(1), sizeof(struct pmc_sb)) &&
	      pmc_meta_origin_matches(&p, &origin_b) && !memcmp(p.uuid, uuid_a, 16),
	      "rebind: seq 2 in both copies names the new origin, same uuid");
	rebind(&p, &origin_a);
	ok = pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && m.sb_seq == 3 && pmc_meta_origin_matches(&m, &origin_a),
	      "rebind: seq 3");
	/* Damage to either copy: the other, the same, is used. */
	save = *sb_at(0);
	sb_at(0)->seq = cpu_to_le64(99);
	ok = pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && m.sb_seq == 3 && m.sb_copy == 1 && pmc_meta_origin_matches(&m, &origin_a),
	      "probe: a damaged copy 0 leaves copy 1, the same superblock");
	/* A torn write of copy 0 (each word zero or copy 1's): copy 1. */
	*sb_at(0) = save;
	sb_at(0)->magic = 0;
	sb_at(0)->nr_blocks = 0;
	ok = pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && m.sb_copy == 1, "probe: a copy 0 torn over zeros leaves copy 1");
	/* Another user's data over copy 0: foreign, whatever copy 1 holds. */
	sb_at(0)->seq = cpu_to_le64(7);
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_FOREIGN &&
	      why == pmc_why_copy0_overwritten,
	      "probe: a copy 0 without magic that is no torn copy 1 is foreign, named so");
	memset(sb_at(0), 0, 1024);			/* mkswap's first 1 KiB */
	memcpy((u8 *)sb_at(0) + 4086, "SWAPSPACE2", 10);
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_FOREIGN &&
	      why == pmc_why_copy0_overwritten,
	      "probe: mkswap over copy 0 is foreign, though copy 1 holds a cache");
	memset(sb_at(0), 0, PMC_SB_SIZE);
	*sb_at(0) = save;
	((u8 *)sb_at(0))[510] = 0x55;			/* an MBR's signature */
	((u8 *)sb_at(0))[511] = 0xaa;
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_FOREIGN &&
	      why == pmc_why_copy0_overwritten,
	      "probe: a partition table beside a whole copy 0 is foreign");
	((u8 *)sb_at(0))[510] = 0;
	((u8 *)sb_at(0))[511] = 0;
	sb_at(1)->crc ^= cpu_to_le32(1);
	((u8 *)sb_at(0))[1080] = 0x53;			/* ext4's magic */
	((u8 *)sb_at(0))[1081] = 0xef;
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) != PMC_PROBE_VALID,
	      "probe: a file system's superblock beside copy 0, copy 1 damaged: refused");
	memset(sb_at(0), 0, PMC_SB_SIZE);
	*sb_at(0) = save;
	sb_at(1)->crc ^= cpu_to_le32(1);
	/* Zeroed, not damaged: the way to reset a cache, as documented. */
	memset(sb_at(0), 0, PMC_SB_SIZE);
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_BLANK,
	      "probe: a zero first copy is blank, whatever the second holds");
	*sb_at(0) = save;
	sb_at(1)->crc ^= cpu_to_le32(1);
	ok = pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && m.sb_seq == 3 && m.sb_copy == 0,
	      "probe: a damaged copy 1 leaves copy 0");
	/* A crash tore the second write: copy 1 still holds the older one. */
	*sb_at(1) = older;
	ok = pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && m.sb_seq == 3 && m.sb_copy == 0,
	      "probe: of two valid copies the higher seq is current");
	/* The first write torn: the newer copy is corrupt, the older one used. */
	sb_at(0)->seq = cpu_to_le64(99);
	ok = pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && m.sb_seq == 1 && m.sb_copy == 1 && pmc_meta_origin_matches(&m, &origin_a),
	      "probe: a corrupt newer copy falls back to the older one");
	sb_at(1)->crc ^= cpu_to_le32(1);
	check(pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_CORRUPT,
	      "probe: magic present but no copy checks out is corrupt");
}

/*
 * A crash between the two writes of a superblock leaves its copies
 * different, the current one 0 here (seq 3, origin A) and copy 1 older
 * (seq 2, origin B), and nothing but a write makes them the same again.
 */
static void make_lagging_copy_1(struct pmc_meta *m)
{
	struct pmc_sb older;
	const char *why;

	format_dev(m, DEV_SIZE);
	rebind(m, &origin_b);
	older = *sb_at(1);
	rebind(m, &origin_a);
	*sb_at(1) = older;
	if (pmc_meta_probe(m, dev, DEV_SIZE, &why) != PMC_PROBE_VALID) {
		fprintf(stderr, "lagging copy: probe failed\n");
		exit(2);
	}
}

static int first_sb_zeroed(void)
{
	unsigned int i;

	for (i = 0; i < nr_events && i < MAX_EVENTS; i++)
		if (events[i].kind == EV_ZERO && events[i].off < PMC_REC_OFFSET)
			return i + 1 < nr_events && events[i + 1].kind == EV_FENCE ?
			       (int)(events[i].off / PMC_SB_SIZE) : -2;
	return -1;
}

static void test_lagging_copy(void)
{
	struct pmc_meta m, p;
	const char *why;
	bool ok;

	make_lagging_copy_1(&m);
	check(m.sb_copy == 0 && m.sb_seq == 3 && !m.sb_copies_same,
	      "probe: copies of different seqs are told apart");
	/*
	 * Blanked (a move), copy 0 first, torn: copy 1 alone would load,
	 * naming origin B over A's records. The older one goes first.
	 */
	nr_events = 0;
	pmc_meta_invalidate(&m, DEV_SIZE);
	check(first_sb_zeroed() == 1 &&
	      pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_BLANK,
	      "invalidate: of two different copies the older is zeroed and fenced first");

	make_lagging_copy_1(&m);
	ok = !pmc_meta_update_origin(&m, &origin_a) &&
	     !memcmp(sb_at(0), sb_at(1), sizeof(struct pmc_sb)) && m.sb_copies_same;
	if (pmc_meta_probe(&p, dev, DEV_SIZE, &why) != PMC_PROBE_VALID)
		p = m;
	check(ok && p.sb_seq == 4 && p.sb_copies_same && pmc_meta_origin_matches(&p, &origin_a),
	      "load: the superblock written again, both copies current (seq 4, origin A)");
	nr_events = 0;
	pmc_meta_update_origin(&p, &origin_a);
	check(nr_events == 0, "load: copies the same, nothing written");
	pmc_meta_invalidate(&p, DEV_SIZE);
	check(first_sb_zeroed() == 0, "invalidate: of two same copies, copy 0 first (blank)");
}

/* A disk that reports an id, as SCSI and NVMe disks do (designator type 3: NAA). */
static struct pmc_origin_id disk(const char *name, u8 id_byte, u64 start)
{
	struct pmc_origin_id o = { .sectors = 65536, .name = name };

	if (id_byte) {
		o.uid.type = 3;
		o.uid.len = 8;
		memset(o.uid.id, id_byte, 8);
		o.uid.start = start;
	}
	return o;
}

static void test_origin_uid(void)
{
	struct pmc_origin_id a_sda = disk("sda", 0xa1, 0), a_sdb = disk("sdb", 0xa1, 0);
	struct pmc_origin_id b_sda = disk("sda", 0xb2, 0), a_sda1 = disk("sda1", 0xa1, 2048);
	struct pmc_origin_id sda = disk("sda", 0, 0), sdb = disk("sdb", 0, 0);
	struct pmc_meta m, p;
	const char *why;
	char str[PMC_ORIGIN_UID_STR_LEN];
	bool ok;

	new_dev(DEV_SIZE);
	ok = !pmc_meta_format(&m, dev, DEV_SIZE, BS, &a_sda, uuid_a, 1) &&
	     pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && (le32_to_cpu(sb_at(0)->compat_flags) & PMC_COMPAT_ORIGIN_UID) &&
	      p.origin_uid.len == 8 && p.origin_uid.id[7] == 0xa1,
	      "origin id: formatted for a disk with an id, the superblock holds it");
	check(pmc_meta_origin_matches(&p, &a_sdb),
	      "origin id: the same disk under another name matches");
	check(!pmc_meta_origin_matches(&p, &b_sda),
	      "origin id: another disk under the recorded name does not");
	check(!pmc_meta_origin_matches(&p, &a_sda1),
	      "origin id: a partition of the same disk does not");
	check(pmc_meta_origin_matches(&p, &sda) && !pmc_meta_origin_matches(&p, &sdb),
	      "origin id: an origin without one is matched by name");
	{
		/* A USB disk, say, under the recorded name: its driver reports none. */
		struct pmc_origin_id usb = sda;

		usb.uid_reportable = true;
		check(!pmc_meta_origin_matches(&p, &usb),
		      "origin id: a disk whose driver reports ids, none now, is another disk");
	}
	pmc_origin_uid_str(&a_sda1.uid, str, sizeof(str));
	check(!strcmp(str, "naa.a1a1a1a1a1a1a1a1+2048"), "origin id: printed as naa.<hex>+<start>");

	check(!pmc_meta_update_origin(&p, &a_sda) && p.sb_seq == 1,
	      "origin id: nothing new, no superblock write");
	check(pmc_meta_update_origin(&p, &a_sdb) && p.sb_seq == 2,
	      "origin id: a renamed disk's new name is written");
	ok = pmc_meta_probe(&m, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && !strcmp(m.origin_name, "sdb") && pmc_meta_origin_matches(&m, &a_sda) &&
	      !pmc_meta_origin_matches(&m, &sda) && m.format_time == 1,
	      "origin id: and read back, the format time kept");

	/* A cache formatted without an id gets its disk's at a load that matches. */
	ok = !pmc_meta_format(&m, dev, DEV_SIZE, BS, &sda, uuid_a, 1);
	check(ok && !(le32_to_cpu(sb_at(0)->compat_flags) & PMC_COMPAT_ORIGIN_UID) &&
	      pmc_meta_origin_matches(&m, &b_sda), "origin id: none recorded, the name decides");
	check(pmc_meta_update_origin(&m, &b_sda) && !pmc_meta_origin_matches(&m, &a_sda),
	      "origin id: recorded when first seen");
	check(!pmc_meta_update_origin(&m, &sda) && m.origin_uid.len == 8,
	      "origin id: never dropped for an origin that reports none");

	/* A length beyond the field, checksum valid: no id read, the name decides. */
	sb_at(0)->origin_uid_len = 200;
	sb_at(1)->origin_uid_len = 200;
	sb_reseal(sb_at(0));
	sb_reseal(sb_at(1));
	ok = pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
	check(ok && !p.origin_uid.len && pmc_meta_origin_matches(&p, &a_sda),
	      "origin id: a length beyond the field is no id");

	/* The origin grew (lvextend): the same one, its new size recorded. */
	{
		struct pmc_origin_id grown = sda, shrunk = sda;

		grown.sectors = 2 * sda.sectors;
		shrunk.sectors = sda.sectors / 2;
		check(pmc_meta_origin_matches(&m, &grown) && !pmc_meta_origin_matches(&m, &shrunk),
		      "origin size: a grown origin matches, a shrunk one does not");
		check(pmc_meta_update_origin(&m, &grown) && m.origin_sectors == grown.sectors &&
		      m.origin_uid.len == 8 && !pmc_meta_origin_matches(&m, &sda),
		      "origin size: the new size recorded, the id kept, the old size no longer matches");
		ok = pmc_meta_probe(&p, dev, DEV_SIZE, &why) == PMC_PROBE_VALID;
		check(ok && p.origin_sectors == grown.sectors, "origin size: and read back");
	}
}

/* ---- records ---- */

static u64 rec_key(const struct pmc_meta *m, u32 slot)
{
	return le64_to_cpu(m->recs[slot].key);
}

static u64 rec_commit(const struct pmc_meta *m, u32 slot)
{
	return le64_to_cpu(m->recs[slot].commit);
}

static void test_key_helpers(void)
{
	u64 k = pmc_key_make(0x123456789abcULL, 0xbeef);

	check(pmc_key_oblock(k) == 0x123456789abcULL && pmc_key_gen(k) == 0xbeef,
	      "key: block in bits 0..47, generation in 48..63");
	check(pmc_key_oblock(pmc_key_make(1ULL << 48 | 5, 1)) == 5,
	      "key: the block number is masked to 48 bits");
	check(pmc_gen_after(1, 0) && !pmc_gen_after(0, 1) && !pmc_gen_after(7, 7),
	      "generation: plain order");
	check(pmc_gen_after(0, 0xffff) && !pmc_gen_after(0xffff, 0) &&
	      pmc_gen_after(2, 0xfffe),
	      "generation: wraps at 2^16");
	check(pmc_gen_after(0x8000, 0x0001) && !pmc_gen_after(0x8001, 0x0001),
	      "generation: half the space ahead is newer, beyond is older");
	{
		/* The format: crc32c of the key, then of the flags, seeded ~slot. */
		__le64 kl = cpu_to_le64(k);
		__le32 fl = cpu_to_le32(PMC_REC_VALID | PMC_REC_DIRTY);
		u32 crc = pmc_crc32c(pmc_crc32c(~7u, &kl, sizeof(kl)), &fl, sizeof(fl));

		check(pmc_rec_crc(7, k, PMC_REC_VALID | PMC_REC_DIRTY) == crc &&
		      pmc_commit_ok(7, k, pmc_commit_make(7, k, PMC_REC_DIRTY)) &&
		      !pmc_commit_ok(8, k, pmc_commit_make(7, k, PMC_REC_DIRTY)),
		      "record crc: key then flags, seeded with the slot");
	}
}

static bool seq_is(unsigned int from, const enum ev_kind *want, unsigned int n)
{
	unsigned int i;

	if (nr_events - from != n)
		return false;
	for (i = 0; i < n; i++)
		if (events[from + i].kind != want[i])
			return false;
	return true;
}

static u64 count_dirty(struct pmc_meta *m)
{
	u64 n = ~0ULL;

	if (pmc_meta_count_dirty(m, &n, NULL))
		check(false, "pmc_meta_count_dirty: no memory");
	return n;
}

static void test_commit_replace_free(void)
{
	static const enum ev_kind commit_seq[] = {
		EV_STORE64, EV_FENCE, EV_STORE64, EV_FENCE };
	static const enum ev_kind replace_seq[] = {
		EV_STORE64, EV_FENCE, EV_STORE64, EV_FENCE, EV_STORE64, EV_FENCE };
	static const enum ev_kind replace_clean_seq[] = {
		EV_STORE64, EV_FENCE, EV_STORE64, EV_STORE64, EV_FENCE };
	struct pmc_meta m;
	u64 k1 = pmc_key_make(42, 7), k2 = pmc_key_make(42, 8);
	unsigned int from;
	u64 c;

	format_dev(&m, DEV_SIZE);
	from = nr_events;
	pmc_rec_commit(&m, 3, k1, true);
	c = rec_commit(&m, 3);
	check(rec_key(&m, 3) == k1 && pmc_commit_ok(3, k1, c) &&
	      (c & PMC_REC_DIRTY) && (c & PMC_REC_VALID),
	      "commit: key and a dirty, valid commit word");
#ifndef PMC_CRASH_BUG_EARLY_COMMIT
	check(seq_is(from, commit_seq, ARRAY_SIZE(commit_seq)) &&
	      events[from].off == PMC_REC_OFFSET + 3 * PMC_REC_SIZE &&
	      events[from + 2].off == PMC_REC_OFFSET + 3 * PMC_REC_SIZE + 8,
	      "commit: key store, fence, commit store, fence");
#endif
	check(!pmc_commit_ok(4, k1, c) && !pmc_commit_ok(3, k2, c),
	      "commit: the checksum binds the slot and the key");
	check(count_dirty(&m) == 1, "commit: one dirty record counted");

	from = nr_events;
	pmc_rec_replace(&m, 9, k2, false, false, PMC_NO_SLOT, 3);
	check(rec_commit(&m, 3) == 0 && pmc_commit_ok(9, k2, rec_commit(&m, 9)) &&
	      !(rec_commit(&m, 9) & PMC_REC_DIRTY),
	      "replace: new copy committed (clean), old record cleared");
	check(seq_is(from, replace_seq, ARRAY_SIZE(replace_seq)) &&
	      events[from + 4].off == PMC_REC_OFFSET + 3 * PMC_REC_SIZE + 8,
	      "replace: a clear_after record is cleared only after the new commit is fenced");
	check(count_dirty(&m) == 0, "replace: no dirty record left");

	/* An older dirty record left behind a newer clean one: not dirty. */
	pmc_rec_commit(&m, 12, pmc_key_make(42, 7), true);
	check(count_dirty(&m) == 0 && rec_commit(&m, 12) != 0,
	      "count_dirty: a superseded dirty record does not count, and stays");
	pmc_rec_commit(&m, 13, pmc_key_make(42, 9), true);
	check(count_dirty(&m) == 1, "count_dirty: a newer dirty record counts once");
	pmc_rec_free(&m, 12);
	pmc_rec_free(&m, 13);

	from = nr_events;
	pmc_rec_replace(&m, 3, pmc_key_make(42, 9), false, true, 9, PMC_NO_SLOT);
	check(rec_commit(&m, 9) == 0 && pmc_commit_ok(3, pmc_key_make(42, 9), rec_commit(&m, 3)),
	      "replace: new copy committed, the clear_with record cleared");
	check(seq_is(from, replace_clean_seq, ARRAY_SIZE(replace_clean_seq)) &&
	      events[from + 2].off == PMC_REC_OFFSET + 3 * PMC_REC_SIZE + 8 &&
	      events[from + 3].off == PMC_REC_OFFSET + 9 * PMC_REC_SIZE + 8,
	      "replace: a clear_with record is cleared in the commit's fence");
	pmc_rec_free(&m, 3);

	from = nr_events;
	pmc_rec_replace(&m, 5, pmc_key_make(43, 0), false, true, PMC_NO_SLOT, PMC_NO_SLOT);
	check(nr_events - from == 4 && pmc_commit_ok(5, pmc_key_make(43, 0),
						     rec_commit(&m, 5)),
	      "replace: with no old copy it is a commit");

	/* The write path: key stored and fenced with the data, before the lock. */
	from = nr_events;
	pmc_rec_set_key(&m, 6, pmc_key_make(43, 1));
	pmc_pmem_fence();
	pmc_rec_replace(&m, 6, pmc_key_make(43, 1), true, true, 5, PMC_NO_SLOT);
	check(rec_commit(&m, 5) == 0 && pmc_commit_ok(6, pmc_key_make(43, 1), rec_commit(&m, 6)) &&
	      seq_is(from, replace_clean_seq, ARRAY_SIZE(replace_clean_seq)) &&
	      events[from].off == PMC_REC_OFFSET + 6 * PMC_REC_SIZE &&
	      events[from + 2].off == PMC_REC_OFFSET + 6 * PMC_REC_SIZE + 8 &&
	      events[from + 3].off == PMC_REC_OFFSET + 5 * PMC_REC_SIZE + 8,
	      "replace with the key durable: the commit and a stale clear share one fence");
	pmc_rec_free(&m, 6);
	pmc_rec_commit(&m, 5, pmc_key_make(43, 0), true);

	pmc_rec_set_clean(&m, 5, pmc_key_make(43, 0));
	c = rec_commit(&m, 5);
	check(pmc_commit_ok(5, pmc_key_make(43, 0), c) && !(c & PMC_REC_DIRTY) &&
	      events[nr_events - 1].kind == EV_STORE64,
	      "set_clean: one store of a clean commit word, fence left to the caller");

	from = nr_events;
	pmc_rec_free(&m, 5);
	check(rec_commit(&m, 5) == 0 && rec_key(&m, 5) == pmc_key_make(43, 0) &&
	      nr_events - from == 2 && events[from + 1].kind == EV_FENCE,
	      "free: commit word cleared and fenced, key left");
	check(!pmc_commit_ok(0, 0, 0) && !pmc_commit_ok(3, k1, c | 0x10),
	      "commit_ok: zero and unknown flags are not committed");
}

/* ---- recovery ---- */

struct freed {
	u32 n;
	u8 seen[1024];
	bool twice;
};

static void note_free(void *ctx, u32 slot)
{
	struct freed *f = ctx;

	if (f->seen[slot])
		f->twice = true;
	f->seen[slot] = 1;
	f->n++;
}

static int recover(struct pmc_meta *m, struct pmc_index *idx, u64 origin_blocks,
		   struct freed *f, struct pmc_recovery_stats *st)
{
	memset(f, 0, sizeof(*f));
	pmc_index_exit(idx);
	if (pmc_index_init(idx, (u32)m->geo.nr_blocks))
		return -ENOMEM;
	return pmc_meta_recover(m, idx, origin_blocks, note_free, f, st);
}

static void test_recover_basic(void)
{
	struct pmc_recovery_stats st;
	struct pmc_index idx = { 0 };
	struct pmc_meta m;
	struct freed f;
	u32 nr;
	int r;

	format_dev(&m, DEV_SIZE);
	nr = (u32)m.geo.nr_blocks;
	pmc_rec_commit(&m, 0, pmc_key_make(100, 0), true);
	pmc_rec_commit(&m, 1, pmc_key_make(101, 3), false);
	pmc_rec_commit(&m, 7, pmc_key_make(7, 1), true);
	nr_events = 0;
	r = recover(&m, &idx, 1000, &f, &st);
	check(!r && st.used == 3 && st.dirty == 2 && !st.corrupt && !st.duplicates &&
	      !st.out_of_range, "recover: counts used and dirty");
	check(pmc_index_lookup(&idx, 100) == 0 && pmc_index_lookup(&idx, 101) == 1 &&
	      pmc_index_lookup(&idx, 7) == 7 && pmc_index_lookup(&idx, 8) == PMC_NO_SLOT,
	      "recover: every committed block is in the index");
	check(pmc_slot_kind(&idx, 0) == PMC_S_DIRTY &&
	      pmc_slot_kind(&idx, 1) == PMC_S_CLEAN &&
	      idx.slots[1].key == pmc_key_make(101, 3),
	      "recover: slot states and keys (with generation)");
	check(f.n == nr - 3 && !f.twice && !f.seen[0] && !f.seen[1] && !f.seen[7],
	      "recover: every other slot is reported free, once");
	check(nr_events == 0, "recover: nothing to clear, no store, no fence");
	pmc_index_exit(&idx);
}

static void test_recover_duplicates(void)
{
	struct pmc_recovery_stats st;
	struct pmc_index idx = { 0 };
	struct pmc_meta m;
	struct freed f;
	int r;

	format_dev(&m, DEV_SIZE);
	/* Newer copy in the higher slot. */
	pmc_rec_commit(&m, 2, pmc_key_make(50, 5), true);
	pmc_rec_commit(&m, 6, pmc_key_make(50, 6), false);
	/* Newer copy in the lower slot. */
	pmc_rec_commit(&m, 3, pmc_key_make(60, 9), true);
	pmc_rec_commit(&m, 8, pmc_key_make(60, 8), false);
	/* Wraparound: generation 0 is newer than 0xffff. */
	pmc_rec_commit(&m, 4, pmc_key_make(70, 0), false);
	pmc_rec_commit(&m, 10, pmc_key_make(70, 0xffff), true);
	pmc_rec_commit(&m, 11, pmc_key_make(80, 0xffff), true);
	pmc_rec_commit(&m, 12, pmc_key_make(80, 0), false);
	nr_events = 0;
	r = recover(&m, &idx, 1000, &f, &st);
	check(!r && st.duplicates == 4 && st.used == 4,
	      "recover: four duplicates resolved, four blocks left");
	check(pmc_index_lookup(&idx, 50) == 6 && pmc_index_lookup(&idx, 60) == 3,
	      "recover: the higher generation wins in either slot order");
	check(pmc_index_lookup(&idx, 70) == 4 && pmc_index_lookup(&idx, 80) == 12,
	      "recover: generation 0 beats 0xffff (wraparound)");
	check(st.dirty == 1 && pmc_slot_kind(&idx, 3) == PMC_S_DIRTY &&
	      pmc_slot_kind(&idx, 6) == PMC_S_CLEAN,
	      "recover: dirty count is the winners' (older dirty copies do not count)");
	check(!rec_commit(&m, 2) && !rec_commit(&m, 8) && !rec_commit(&m, 10) &&
	      !rec_commit(&m, 11) && f.seen[2] && f.seen[8] && f.seen[10] &&
	      f.seen[11] && !f.twice && f.n == m.geo.nr_blocks - 4,
	      "recover: losers are cleared and reported free");
	check(idx.slots[2].state == PMC_S_FREE && idx.slots[8].state == PMC_S_FREE,
	      "recover: losers are free in the index");
	check(nr_events && events[nr_events - 1].kind == EV_FENCE,
	      "recover: the clears are fenced before it returns");
	r = recover(&m, &idx, 1000, &f, &st);
	check(!r && !st.duplicates && st.used == 4 && st.dirty == 1,
	      "recover: a second pass finds nothing to resolve");
	pmc_index_exit(&idx);
}

static void test_recover_corrupt_range(void)
{
	struct pmc_recovery_stats st;
	struct pmc_index idx = { 0 };
	struct pmc_meta m;
	struct freed f;
	int r;

	format_dev(&m, DEV_SIZE);
	pmc_rec_commit(&m, 0, pmc_key_make(1, 0), true);
	pmc_rec_commit(&m, 1, pmc_key_make(2, 0), true);
	pmc_rec_commit(&m, 2, pmc_key_make(3, 0), false);
	pmc_rec_commit(&m, 3, pmc_key_make(999, 0), true);
	pmc_rec_commit(&m, 4, pmc_key_make(4, 0), false);
	/* A key that does not match its commit word (torn record). */
	m.recs[1].key = cpu_to_le64(pmc_key_make(22, 0));
	/* A commit word with an unknown flag. */
	m.recs[2].commit |= cpu_to_le64(0x8);
	/* A record copied to another slot. */
	m.recs[5] = m.recs[4];
	nr_events = 0;
	r = recover(&m, &idx, 100, &f, &st);
	check(!r && st.corrupt == 3 && st.out_of_range == 1 && st.used == 2 &&
	      st.dirty == 1, "recover: corrupt and out-of-range records counted apart");
	check(pmc_index_lookup(&idx, 2) == PMC_NO_SLOT &&
	      pmc_index_lookup(&idx, 22) == PMC_NO_SLOT &&
	      pmc_index_lookup(&idx, 999) == PMC_NO_SLOT &&
	      pmc_index_lookup(&idx, 1) == 0 && pmc_index_lookup(&idx, 4) == 4,
	      "recover: dropped records are not in the index");
	check(!rec_commit(&m, 1) && !rec_commit(&m, 2) && !rec_commit(&m, 3) &&
	      !rec_commit(&m, 5) && f.seen[1] && f.seen[3] && f.seen[5],
	      "recover: dropped records are cleared and their slots free");
	check(events[nr_events - 1].kind == EV_FENCE, "recover: clears fenced");
	r = recover(&m, &idx, 100, &f, &st);
	check(!r && !st.corrupt && !st.out_of_range && st.used == 2,
	      "recover: a second pass is clean");
	pmc_index_exit(&idx);
}

/* The record that reads fail on (test_count_unreadable), as a media error. */
static const void *bad_record;

static int read_fails_on_bad_record(void *dst, const void *src, size_t len)
{
	if ((const u8 *)src < (const u8 *)bad_record + PMC_REC_SIZE &&
	    (const u8 *)src + len > (const u8 *)bad_record)
		return -EIO;
	memcpy(dst, src, len);
	return 0;
}

/*
 * A record a media error hides may be dirty: the count that refuses a
 * format or a rebind over dirty blocks counts it, as the tool's wipe does.
 */
static void test_count_unreadable(void)
{
	struct pmc_pmem_hooks hooks = rec_hooks;
	struct pmc_meta m;

	format_dev(&m, DEV_SIZE);
	pmc_rec_commit(&m, 0, pmc_key_make(1, 0), true);
	pmc_rec_commit(&m, 1, pmc_key_make(2, 0), false);
	check(count_dirty(&m) == 1, "count dirty: one dirty block");
	hooks.read = read_fails_on_bad_record;
	bad_record = &m.recs[0];
	pmc_pmem_set_hooks(&hooks);
	check(count_dirty(&m) == 1, "count dirty: the dirty record unreadable still counts");
	pmc_pmem_set_hooks(&rec_hooks);
}

static void test_rebind_drops(void)
{
	struct pmc_recovery_stats st;
	struct pmc_index idx = { 0 };
	struct pmc_meta m;
	struct freed f;
	int r;

	format_dev(&m, DEV_SIZE);
	pmc_rec_commit(&m, 0, pmc_key_make(1, 0), false);
	pmc_rec_commit(&m, 9, pmc_key_make(2, 0), false);
	rebind(&m, &origin_b);
	r = recover(&m, &idx, 100, &f, &st);
	check(!r && st.used == 0 && f.n == m.geo.nr_blocks,
	      "rebind: every block is dropped");
	check(pmc_meta_origin_matches(&m, &origin_b), "rebind: the new origin is current");
	pmc_index_exit(&idx);
}

/* ---- index ---- */

/*
 * The marks a flush (PMC_S_FLUSH) and the age work (PMC_S_AGED) put on a
 * dirty copy: a newer copy written over one not under writeback takes
 * them over; over one under writeback, the tombstone keeps the flush's
 * mark until its writeback lands; a copy whose writeback landed has none.
 */
static void test_slot_marks(void)
{
	struct pmc_index idx;
	struct pmc_meta m;
	s64 du = 0, dd = 0;
	u32 old;

	format_dev(&m, DEV_SIZE);
	check(!pmc_index_init(&idx, (u32)m.geo.nr_blocks), "marks: index init");
	old = PMC_NO_SLOT;
	pmc_slot_install(&idx, &m, 1, 5, &old, NULL, true, &du, &dd);
	idx.slots[1].state |= PMC_S_FLUSH | PMC_S_AGED;
	old = 1;
	pmc_slot_install(&idx, &m, 2, 5, &old, NULL, true, &du, &dd);
	check(idx.slots[2].state == (PMC_S_DIRTY | PMC_S_FLUSH | PMC_S_AGED),
	      "marks: a copy over a marked one not under writeback takes the marks over");
	idx.slots[2].state |= PMC_S_WB;
	old = 2;
	pmc_slot_install(&idx, &m, 3, 5, &old, NULL, true, &du, &dd);
	check(idx.slots[3].state == (PMC_S_DIRTY | PMC_S_WB_WAIT) &&
	      (idx.slots[2].state & (PMC_S_STALE | PMC_S_FLUSH)) == (PMC_S_STALE | PMC_S_FLUSH),
	      "marks: over a copy under writeback, the tombstone keeps the flush's mark");
	check(pmc_slot_wb_done(&idx, &m, 2, 5, true) == PMC_WB_FREE &&
	      !(idx.slots[2].state & PMC_S_FLUSH) && idx.slots[3].state == PMC_S_DIRTY,
	      "marks: the tombstone's writeback landed: mark gone, the newer copy may go");
	idx.slots[3].state |= PMC_S_FLUSH | PMC_S_WB;
	check(pmc_slot_wb_done(&idx, &m, 3, 5, false) == PMC_WB_KEPT &&
	      idx.slots[3].state == (PMC_S_DIRTY | PMC_S_FLUSH),
	      "marks: a failed writeback keeps the flush's mark");
	idx.slots[3].state |= PMC_S_WB;
	check(pmc_slot_wb_done(&idx, &m, 3, 5, true) == PMC_WB_CLEANED &&
	      idx.slots[3].state == PMC_S_CLEAN,
	      "marks: a landed writeback leaves a clean copy with no mark");

	old = PMC_NO_SLOT;
	pmc_slot_install(&idx, &m, 4, 6, &old, NULL, true, &du, &dd);
	idx.slots[4].state |= PMC_S_FLUSH | PMC_S_WB;
	old = 4;
	pmc_slot_install(&idx, &m, 5, 6, &old, NULL, true, &du, &dd);
	check(pmc_slot_wb_done(&idx, &m, 4, 6, false) == PMC_WB_FREE &&
	      idx.slots[5].state == (PMC_S_DIRTY | PMC_S_FLUSH),
	      "marks: a marked tombstone's failed writeback hands the mark to the newer copy");
	pmc_index_exit(&idx);
}

static void test_index(void)
{
	struct pmc_index idx;
	u32 i, nr = 16, nr_buckets;
	bool ok = true, chains = false;
	u64 b;

	check(!pmc_index_init(&idx, nr), "index: init");
	nr_buckets = 1u << (64 - idx.hash_shift);
	check(nr_buckets == 8 && pmc_index_mem_bytes(&idx) > 0,
	      "index: half a bucket per slot");
	for (i = 0; i < nr; i++)
		pmc_index_insert(&idx, i, pmc_key_make(1000 + i * 3, (u16)i),
				 i & 1 ? PMC_S_DIRTY : PMC_S_CLEAN);
	for (i = 0; i < nr; i++) {
		ok &= pmc_index_lookup(&idx, 1000 + i * 3) == i;
		ok &= pmc_slot_kind(&idx, i) == (i & 1 ? PMC_S_DIRTY : PMC_S_CLEAN);
		chains |= idx.slots[i].link != PMC_NO_SLOT;
	}
	check(ok && chains, "index: 16 blocks in 8 buckets all found (chains)");
	check(pmc_index_lookup(&idx, 1001) == PMC_NO_SLOT &&
	      pmc_index_lookup(&idx, 0) == PMC_NO_SLOT,
	      "index: absent blocks are not found");
	/* Remove from heads, middles and tails of chains. */
	for (i = 0; i < nr; i += 2)
		pmc_index_remove(&idx, i);
	ok = true;
	for (i = 0; i < nr; i++)
		ok &= pmc_index_lookup(&idx, 1000 + i * 3) == (i & 1 ? i : PMC_NO_SLOT);
	check(ok, "index: removal keeps the rest of each chain");
	pmc_index_remove(&idx, 0);	/* not in the hash: no effect */
	ok = true;
	for (i = 1; i < nr; i += 2)
		ok &= pmc_index_lookup(&idx, 1000 + i * 3) == i;
	check(ok, "index: removing a slot that is not in the hash changes nothing");
	/* Two copies of one block: lookup finds the last inserted. */
	pmc_index_insert(&idx, 0, pmc_key_make(1003, 9), PMC_S_DIRTY);
	check(pmc_index_lookup(&idx, 1003) == 0, "index: lookup finds the newest insert");
	pmc_index_remove(&idx, 0);
	check(pmc_index_lookup(&idx, 1003) == 1, "index: then the older copy again");
	/* Large block numbers share buckets without confusion. */
	ok = true;
	for (i = 0; i < nr; i++)
		pmc_index_remove(&idx, i);
	for (i = 0, b = PMC_OBLOCK_MASK - 20; i < nr; i++, b++)
		pmc_index_insert(&idx, i, pmc_key_make(b, 0), PMC_S_CLEAN);
	for (i = 0, b = PMC_OBLOCK_MASK - 20; i < nr; i++, b++)
		ok &= pmc_index_lookup(&idx, b) == i;
	check(ok, "index: 48-bit block numbers");
	pmc_index_exit(&idx);
	check(!pmc_index_init(&idx, 1) && (1u << (64 - idx.hash_shift)) == 2,
	      "index: a one-slot index has two buckets");
	pmc_index_exit(&idx);
}

/* ---- allocator ---- */

/*
 * An index of 2^27 slots: its slot array (16 bytes a slot) passes INT_MAX
 * bytes, which the kernel's kvmalloc refuses (pmcache_user.h's refuses as
 * it does): a 2 GiB table of such a cache could not be loaded. 2 GiB of
 * memory, touched by pmc_index_reset, for about a second.
 */
static void test_index_large(void)
{
	struct pmc_index idx;
	u32 nr = 1u << 27;

	check(!pmc_index_init(&idx, nr) && idx.slots[nr - 1].link == PMC_NO_SLOT,
	      "index: 2^27 slots, more than INT_MAX bytes of them");
	pmc_index_exit(&idx);
}

static void test_alloc(void)
{
	struct pmc_index idx;
	struct pmc_alloc a;
	u32 nr = 40, i, slot, got[40];
	u8 seen[40] = { 0 };
	bool ok = true;

	pmc_index_init(&idx, nr);
	check(!pmc_alloc_init(&a, &idx, 64, 1) && a.nr_regions == nr &&
	      a.slots_per_region == 1, "alloc: regions are clipped to the slots");
	pmc_alloc_exit(&a);
	check(!pmc_alloc_init(&a, &idx, 0, 0) && a.nr_regions == 1,
	      "alloc: zero regions means one");
	pmc_alloc_exit(&a);
	/* Four CPUs over four regions: CPU n looks in region n first. */
	pmc_alloc_init(&a, &idx, 4, 4);
	check(a.slots_per_region == 10 && pmc_alloc_nr_free(&a) == 0 &&
	      pmc_alloc_get(&a, 0) == PMC_NO_SLOT, "alloc: starts empty");
	for (i = 0; i < nr; i++)
		pmc_alloc_put(&a, i);
	check(pmc_alloc_nr_free(&a) == nr, "alloc: put counts");
	slot = pmc_alloc_get(&a, 2);
	check(slot / 10 == 2, "alloc: prefers the hint's region");
	pmc_alloc_put(&a, slot);
	slot = pmc_alloc_get(&a, 6);
	check(slot / 10 == 2, "alloc: the hint wraps around the regions");
	pmc_alloc_put(&a, slot);
	for (i = 0; i < nr; i++) {
		got[i] = pmc_alloc_get(&a, 1);
		if (got[i] >= nr || seen[got[i]])
			ok = false;
		else
			seen[got[i]] = 1;
	}
	check(ok, "alloc: every slot handed out once, across all regions");
	check(pmc_alloc_get(&a, 1) == PMC_NO_SLOT && pmc_alloc_nr_free(&a) == 0,
	      "alloc: exhaustion gives PMC_NO_SLOT");
	pmc_alloc_put(&a, 35);
	check(pmc_alloc_get(&a, 0) == 35, "alloc: a slot in another region is found");
	for (i = 0; i < nr; i++)
		pmc_alloc_put(&a, got[i] == 35 ? 35 : got[i]);
	check(pmc_alloc_nr_free(&a) == nr, "alloc: all back");
	slot = pmc_alloc_get(&a, 3);
	check(pmc_alloc_take_spare(&a, 3) == PMC_NO_SLOT &&
	      pmc_alloc_keep_spare(&a, 3, slot) && !pmc_alloc_keep_spare(&a, 3, 0) &&
	      pmc_alloc_take_spare(&a, 2) == PMC_NO_SLOT &&
	      pmc_alloc_take_spare(&a, 3) == slot &&
	      pmc_alloc_take_spare(&a, 3) == PMC_NO_SLOT,
	      "alloc: one spare per CPU, taken back once, by that CPU only");
	check(!pmc_alloc_keep_spare(&a, 4, slot) && pmc_alloc_take_spare(&a, 4) == PMC_NO_SLOT,
	      "alloc: no spare for a CPU beyond nr_cpus");
	check(pmc_alloc_nr_free(&a) == nr - 1, "alloc: spares are not counted as free");
	pmc_alloc_put(&a, slot);
	/* 2^31 slots, the format's most, all free: the count must not wrap. */
	slot = pmc_alloc_get(&a, 0);
	atomic64_set(&a.nr_free, (s64)PMC_MAX_BLOCKS - 1);
	pmc_alloc_put(&a, slot);
	check(pmc_alloc_nr_free(&a) == PMC_MAX_BLOCKS && pmc_alloc_get(&a, 0) != PMC_NO_SLOT,
	      "alloc: 2^31 free slots are counted, and handed out");
	pmc_alloc_exit(&a);
	pmc_index_exit(&idx);
}

/* Recovery feeds the allocator (as pmc_load does): every free slot once. */
struct load_ctx {
	struct pmc_index *idx;
	struct pmc_alloc *a;
};

static void load_free(void *ctx, u32 slot)
{
	struct load_ctx *l = ctx;

	l->idx->slots[slot].state = PMC_S_FREE;
	pmc_alloc_put(l->a, slot);
}

static void test_recover_into_alloc(void)
{
	struct pmc_recovery_stats st;
	struct pmc_index idx;
	struct pmc_alloc a;
	struct pmc_meta m;
	struct load_ctx l = { &idx, &a };
	u32 nr, n = 0, slot;
	bool ok = true;

	format_dev(&m, DEV_SIZE);
	nr = (u32)m.geo.nr_blocks;
	pmc_rec_commit(&m, 1, pmc_key_make(5, 0), true);
	pmc_rec_commit(&m, 2, pmc_key_make(5, 1), true);
	pmc_index_init(&idx, nr);
	pmc_alloc_init(&a, &idx, 64, 1);
	pmc_meta_recover(&m, &idx, 100, load_free, &l, &st);
	check(pmc_alloc_nr_free(&a) == nr - st.used && st.used == 1,
	      "recover + alloc: free count is slots minus used");
	while ((slot = pmc_alloc_get(&a, 0)) != PMC_NO_SLOT) {
		ok &= slot != 2 && rec_commit(&m, slot) == 0;
		n++;
	}
	check(ok && n == nr - 1,
	      "recover + alloc: every free slot has a zero commit word");
	pmc_alloc_exit(&a);
	pmc_index_exit(&idx);
}

int main(void)
{
	test_probe_blank_foreign();
	test_probe_signatures();
	test_format();
	test_format_blanks_signatures();
	test_geometry_cap();
	test_format_order();
	test_sb_tears();
	test_probe_corrupt_unsupported();
	test_two_copies();
	test_lagging_copy();
	test_origin_uid();
	test_key_helpers();
	test_commit_replace_free();
	test_recover_basic();
	test_recover_duplicates();
	test_recover_corrupt_range();
	test_count_unreadable();
	test_rebind_drops();
	test_index();
	test_index_large();
	test_slot_marks();
	test_alloc();
	test_recover_into_alloc();
	pmc_pmem_set_hooks(NULL);
	free(dev);
	printf("# test_meta: %d passed, %d failed\n", nr_passed, nr_failed);
	return nr_failed ? 1 : 0;
}

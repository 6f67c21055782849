// SPDX-License-Identifier: GPL-2.0
/*
 * Superblock and record handling: format, probe, commit, recovery.
 */
#include "pmcache_meta.h"
#include "pmcache_pmem.h"
#include "pmcache_index.h"
#include "pmcache_policy.h"

static struct pmc_sb *sb_copy(u8 *base, unsigned int copy)
{
	return (struct pmc_sb *)(base + (size_t)copy * PMC_SB_SIZE);
}

static u32 sb_crc(const struct pmc_sb *sb)
{
	struct pmc_sb tmp;

	memcpy(&tmp, sb, sizeof(tmp));
	tmp.crc = 0;
	return pmc_crc32c(~0u, &tmp, sizeof(tmp));
}

/* Whether pmem at @p holds only zeroes; false where a media error hides it. */
static bool all_zero(const u8 *p, size_t len)
{
	u64 buf[32];
	size_t n, i;

	for (; len; p += n, len -= n) {
		n = min_t(size_t, len, sizeof(buf));
		if (pmc_pmem_read(buf, p, n))
			return false;
		for (i = 0; i < n / sizeof(buf[0]); i++)
			if (buf[i])
				return false;
	}
	return true;
}

/*
 * Signatures of what often lives on a block device beyond its first 4 KiB,
 * where a zero first page would otherwise read as blank and be formatted:
 * a btrfs or ZFS pool, a bcache or MD member (MD 0.90 and 1.0 keep theirs
 * at the end), an ISO image. A hit costs the user a "format" argument; a
 * miss would cost them the file system, so these err towards refusing.
 */
#define FOREIGN(what)	"not a pmcache device: it holds " what "; pass format to overwrite it"

struct pmc_signature {
	const char *why;
	/*
	 * From the start, at offset + n * step for n < count; or, when < 0,
	 * -offset before the end, rounded down to @align as MD rounds.
	 */
	s64 offset;
	u32 step, count, align;
	u8 len;
	u8 magic[16];
};

static const struct pmc_signature pmc_signatures[] = {
	{ FOREIGN("a bcache superblock"), 4096 + 24, 0, 1, 0, 16, { 0xc6, 0x85, 0x73, 0xf6,
	  0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81 } },
	{ FOREIGN("an MD RAID 1.2 superblock"), 4096, 0, 1, 0, 4, { 0xfc, 0x4e, 0x2b, 0xa9 } },
	{ FOREIGN("an ISO 9660 image"), 32768 + 1, 0, 1, 0, 5, "CD001" },
	{ FOREIGN("a btrfs file system"), 65536 + 64, 0, 1, 0, 8, "_BHRfS_M" },
	/* ZFS label 0: uberblocks of 1 KiB or more from 128 KiB on. */
	{ FOREIGN("a ZFS label"), 131072, 1024, 128, 0, 8, { 0x0c, 0xb1, 0xba } },
	{ FOREIGN("a ZFS label"), 131072, 1024, 128, 0, 8, { 0, 0, 0, 0, 0, 0xba, 0xb1, 0x0c } },
	/* MD 1.0: 8 KiB before the end, down to 4 KiB. */
	{ FOREIGN("an MD RAID 1.0 superblock"), -8192, 0, 1, 4096, 4, { 0xfc, 0x4e, 0x2b, 0xa9 } },
	/* MD 0.90: the end down to 64 KiB, less 64 KiB. */
	{ FOREIGN("an MD RAID 0.90 superblock"), -65536, 0, 1, 65536, 4,
	  { 0xfc, 0x4e, 0x2b, 0xa9 } },
};

/* Where @sig's n-th copy is on a device of @size bytes; false if outside. */
static bool pmc_signature_at(const struct pmc_signature *sig, u32 n, u64 size,
			     u64 *at)
{
	if (sig->offset >= 0)
		*at = sig->offset + (u64)n * sig->step;
	else if (size >= (u64)-sig->offset)
		*at = (size + sig->offset) & ~((u64)sig->align - 1);
	else
		return false;
	return *at + sig->len <= size;
}

#define PMC_SIGNATURES_END (pmc_signatures + ARRAY_SIZE(pmc_signatures))

/* Why the device is not blank, by a known signature on it; NULL if none. */
static const char *pmc_foreign_signature(const u8 *base, u64 size)
{
	const struct pmc_signature *sig;
	u8 buf[16];
	u64 at;
	u32 n;

	for (sig = pmc_signatures; sig < PMC_SIGNATURES_END; sig++)
		for (n = 0; n < sig->count && pmc_signature_at(sig, n, size, &at); n++)
			/* Unreadable: cannot be shown blank, so not formatted. */
			if (pmc_pmem_read(buf, base + at, sig->len) ||
			    !memcmp(buf, sig->magic, sig->len))
				return sig->why;
	return NULL;
}

void pmc_meta_blank_ranges(u64 size, void (*fn)(u64 start, u64 len, void *arg),
			   void *arg)
{
	const struct pmc_signature *sig;
	u64 at;
	u32 n;

	fn(0, min_t(u64, size, PMC_REC_OFFSET), arg);
	for (sig = pmc_signatures; sig < PMC_SIGNATURES_END; sig++)
		for (n = 0; n < sig->count && pmc_signature_at(sig, n, size, &at); n++)
			fn(at, sig->len, arg);
}

static void meta_set_origin(struct pmc_meta *m, const struct pmc_origin_id *o)
{
	m->origin_sectors = o->sectors;
	memset(m->origin_name, 0, sizeof(m->origin_name));
	strncpy(m->origin_name, o->name, PMC_ORIGIN_NAME_LEN);
	m->origin_uid = o->uid;
	if (m->origin_uid.len > PMC_ORIGIN_UID_LEN)
		m->origin_uid.len = 0;
}

void pmc_origin_dm_name(const char *dm_name, char *buf, size_t len)
{
	if (strlen(dm_name) <= PMC_ORIGIN_NAME_LEN - 3)
		snprintf(buf, len, "dm:%s", dm_name);
	else	/* too long: a prefix and a checksum of the whole */
		snprintf(buf, len, "dm:%.20s~%08x", dm_name,
			 pmc_crc32c(0, dm_name, strlen(dm_name)));
}

void pmc_origin_uid_str(const struct pmc_origin_uid *uid, char *buf, size_t len)
{
	static const char * const prefix[] = { "id", "t10", "eui", "naa" };
	size_t at;
	unsigned int i;

	if (!len)
		return;
	buf[0] = 0;
	if (!uid->len || uid->len > PMC_ORIGIN_UID_LEN)
		return;
	at = snprintf(buf, len, "%s.", prefix[uid->type < ARRAY_SIZE(prefix) ? uid->type : 0]);
	for (i = 0; i < uid->len && at < len; i++)
		at += snprintf(buf + at, len - at, "%02x", uid->id[i]);
	if (uid->start && at < len)
		snprintf(buf + at, len - at, "+%llu", (unsigned long long)uid->start);
}

static void meta_set_geometry(struct pmc_meta *m, u8 *base,
			      const struct pmc_geometry *g)
{
	m->base = base;
	m->geo = *g;
	m->recs = (struct pmc_rec *)(base + g->rec_offset);
	m->data = base + g->data_offset;
}

/* Check one superblock copy; 0 when usable, else -EINVAL with *why set. */
static int sb_check(const struct pmc_sb *sb, u64 size, bool read_only,
		    struct pmc_geometry *g, enum pmc_probe_result *res,
		    const char **why)
{
	u32 ro_compat_unknown = le32_to_cpu(sb->ro_compat_flags) & ~PMC_RO_COMPAT_SUPP;
	struct pmc_geometry want;
	u32 bs;

	if (le64_to_cpu(sb->magic) != PMC_SB_MAGIC) {
		*res = PMC_PROBE_FOREIGN;
		*why = "no pmcache superblock";
		return -EINVAL;
	}
	if (le32_to_cpu(sb->crc) != sb_crc(sb)) {
		*res = PMC_PROBE_CORRUPT;
		*why = "superblock checksum mismatch";
		return -EINVAL;
	}
	/*
	 * Unknown ro_compat features too, unless @read_only: an older
	 * reader may only read such a cache, and the module, which always
	 * writes, has no read-only mode to fall back to.
	 */
	if (le16_to_cpu(sb->version_major) != PMC_VERSION_MAJOR ||
	    (le32_to_cpu(sb->incompat_flags) & ~PMC_INCOMPAT_SUPP) ||
	    (ro_compat_unknown && !read_only)) {
		*res = PMC_PROBE_UNSUPPORTED;
		*why = "unsupported on-media version or incompatible features";
		return -EINVAL;
	}
	bs = le32_to_cpu(sb->block_size);
	if (bs < PMC_MIN_BLOCK_SIZE || bs > PMC_MAX_BLOCK_SIZE || !is_power_of_2(bs) ||
	    le64_to_cpu(sb->pmem_size) > size ||
	    pmc_geometry_compute(le64_to_cpu(sb->pmem_size), bs, &want) ||
	    want.nr_blocks != le64_to_cpu(sb->nr_blocks) ||
	    want.rec_offset != le64_to_cpu(sb->rec_offset) ||
	    want.data_offset != le64_to_cpu(sb->data_offset)) {
		*res = PMC_PROBE_MISMATCH;
		*why = "superblock geometry does not fit the cache device";
		return -EINVAL;
	}
	*g = want;
	return 0;
}

const char pmc_why_copy0_overwritten[] =
	"superblock copy 0 overwritten by other data, copy 1 holds a cache: pmcache-tool check it";

/*
 * Copy 0 readable, not zero, without pmcache's magic, copy 1 a sound
 * superblock: is copy 0 a torn write of one? A format writes copy 1, then
 * the same bytes over a zero copy 0; a reset zeroes copy 0 while it is the
 * same as copy 1: torn, each of its words is zero or copy 1's. A copy 0
 * that holds anything else was written over by another user of the device
 * (mkswap, a partition table, mkfs), who owns it now: loaded from copy 1,
 * the cache would write its records over that user's data, and serve
 * clean copies stale since. A part that cannot be read is damage, not
 * another user: left out of the comparison.
 */
static bool sb_copy0_torn(const u8 *base)
{
	__le64 w0[8], w1[8];
	unsigned int at, i;

	for (at = 0; at < PMC_SB_SIZE; at += sizeof(w0)) {
		/* Decided by the words that can be read. */
		if (pmc_pmem_read(w0, base + at, sizeof(w0)) ||
		    pmc_pmem_read(w1, base + PMC_SB_SIZE + at, sizeof(w1)))
			continue;
		for (i = 0; i < ARRAY_SIZE(w0); i++)
			if (w0[i] && w0[i] != w1[i])
				return false;
	}
	return true;
}

/*
 * Copy 0 beyond its superblock is zero in every state a cache leaves it
 * (a format zeroes both copies' 4 KiB, an update writes the superblock
 * alone): anything there was written by another user of the device, a
 * partition table (its last 66 bytes of sector 0), an LVM label (sector
 * 1), a file system's superblock (at 1 KiB), over a copy 0 left whole.
 */
static bool sb_copy0_tail_zero(const u8 *base)
{
	u64 buf[8];
	unsigned int at, i;

	for (at = PMC_SB_STRUCT_SIZE; at < PMC_SB_SIZE; at += sizeof(buf)) {
		if (pmc_pmem_read(buf, base + at, sizeof(buf)))
			continue;
		for (i = 0; i < ARRAY_SIZE(buf); i++)
			if (buf[i])
				return false;
	}
	return true;
}

static enum pmc_probe_result meta_probe(struct pmc_meta *m, u8 *base, u64 size,
					bool read_only, const char **why)
{
	enum pmc_probe_result res[PMC_SB_COPIES], best_res = PMC_PROBE_FOREIGN;
	u64 seq[PMC_SB_COPIES] = {};
	const char *reason[PMC_SB_COPIES];
	struct pmc_geometry g, best_g;
	struct pmc_sb sb, best_sb = {};
	bool overwritten;
	int best = -1;
	unsigned int i;

	memset(m, 0, sizeof(*m));
	*why = NULL;
	if (size < PMC_REC_OFFSET) {
		*why = "cache device too small";
		return PMC_PROBE_MISMATCH;
	}
	/*
	 * A zero first superblock copy makes the device blank whatever the
	 * second holds: zeroing the first 4 KiB is how a cache is reset (the
	 * second copy is there for a first one damaged, not wiped), and a
	 * format zeroes the first copy before it writes anything.
	 */
	if (all_zero(base, PMC_SB_SIZE)) {
		*why = pmc_foreign_signature(base, size);
		if (!*why) {
			*why = "blank";
			return PMC_PROBE_BLANK;
		}
		return PMC_PROBE_FOREIGN;
	}
	for (i = 0; i < PMC_SB_COPIES; i++) {
		if (pmc_pmem_read(&sb, sb_copy(base, i), sizeof(sb))) {
			res[i] = PMC_PROBE_CORRUPT;
			reason[i] = "media error in superblock";
			continue;
		}
		if (!i && !sb_copy0_tail_zero(base)) {
			res[i] = PMC_PROBE_FOREIGN;
			reason[i] = "not a pmcache device; zero it or pass format";
			continue;
		}
		if (sb_check(&sb, size, read_only, &g, &res[i], &reason[i])) {
			if (res[i] == PMC_PROBE_UNSUPPORTED)
				seq[i] = le64_to_cpu(sb.seq);
			continue;
		}
		res[i] = PMC_PROBE_VALID;
		seq[i] = le64_to_cpu(sb.seq);
		if (best < 0 || le64_to_cpu(sb.seq) > le64_to_cpu(best_sb.seq)) {
			best = i;
			best_sb = sb;
			best_g = g;
		}
	}
	if (best < 0) {
		/* Report the most telling reason. */
		for (i = 0; i < PMC_SB_COPIES; i++)
			if (res[i] != PMC_PROBE_FOREIGN) {
				*why = reason[i];
				return res[i];
			}
		*why = "not a pmcache device; zero it or pass format";
		return best_res;
	}
	overwritten = best == 1 && res[0] == PMC_PROBE_FOREIGN && !sb_copy0_torn(base);
	/*
	 * A newer copy of a version this code does not know (a later
	 * module's update, torn before its second copy) may describe records
	 * of that version: the older copy is no fallback.
	 */
	for (i = 0; i < PMC_SB_COPIES; i++)
		if (res[i] == PMC_PROBE_UNSUPPORTED && seq[i] > le64_to_cpu(best_sb.seq)) {
			*why = reason[i];
			return PMC_PROBE_UNSUPPORTED;
		}
	meta_set_geometry(m, base, &best_g);
	m->sb_seq = le64_to_cpu(best_sb.seq);
	m->sb_copy = best;
	/* Both copies are written whole, with the same seq: same seq, same copy. */
	m->sb_copies_same = res[!best] == PMC_PROBE_VALID && seq[!best] == seq[best];
	m->origin_sectors = le64_to_cpu(best_sb.origin_sectors);
	memcpy(m->origin_name, best_sb.origin_name, PMC_ORIGIN_NAME_LEN);
	m->origin_name[PMC_ORIGIN_NAME_LEN] = 0;
	/* A length beyond the field: no id (the name decides), never a read past it. */
	if ((le32_to_cpu(best_sb.compat_flags) & PMC_COMPAT_ORIGIN_UID) &&
	    best_sb.origin_uid_len <= PMC_ORIGIN_UID_LEN) {
		m->origin_uid.start = le64_to_cpu(best_sb.origin_uid_start);
		m->origin_uid.type = best_sb.origin_uid_type;
		m->origin_uid.len = best_sb.origin_uid_len;
		memcpy(m->origin_uid.id, best_sb.origin_uid, PMC_ORIGIN_UID_LEN);
	}
	memcpy(m->uuid, best_sb.cache_uuid, sizeof(m->uuid));
	m->format_time = le64_to_cpu(best_sb.format_time);
	if (overwritten) {
		/* @m describes copy 1's cache all the same: its dirty blocks count. */
		*why = pmc_why_copy0_overwritten;
		return PMC_PROBE_FOREIGN;
	}
	return PMC_PROBE_VALID;
}

enum pmc_probe_result pmc_meta_probe(struct pmc_meta *m, u8 *base, u64 size,
				     const char **why)
{
	return meta_probe(m, base, size, false, why);
}

enum pmc_probe_result pmc_meta_probe_read_only(struct pmc_meta *m, u8 *base,
					       u64 size, const char **why)
{
	return meta_probe(m, base, size, true, why);
}

/*
 * Write the superblock into both copies, durable on return: first the one
 * that is not current, then, once that is, the other. A crash tears at most
 * one of them, and the other is whole (the old contents or the new); after
 * the second both are the same, so that damage to either one later leaves
 * the other to load from, and never an older superblock (which could name
 * the origin from before a rebind).
 *
 * A format (both copies zero, m->sb_seq 0) writes copy 1 first: torn, it
 * leaves copy 0 zero, a blank device the next load formats again; copy 0
 * torn after it leaves copy 1 to load. Copy 0 first would leave a torn copy
 * 0 alone, refused as a cache that may hold dirty blocks.
 */
/*
 * Make copy @copy, damaged or behind, the same as the current one, durably,
 * before it is written: a crash tearing that write then leaves in it
 * words of one superblock or the other, its magic among them (the same in
 * both), and it reads as damaged; torn over what it held (a copy 0 torn
 * at a format, without its magic), it would read as another user's data
 * (sb_copy0_torn) and refuse the device.
 */
static void meta_heal_sb(struct pmc_meta *m, unsigned int copy)
{
	struct pmc_sb cur;

	if (pmc_pmem_read(&cur, sb_copy(m->base, !copy), sizeof(cur)))
		return;
	pmc_pmem_copy(sb_copy(m->base, copy), &cur, sizeof(cur));
	pmc_pmem_zero((u8 *)sb_copy(m->base, copy) + sizeof(cur), PMC_SB_SIZE - sizeof(cur));
	pmc_pmem_fence();
}

static void meta_write_sb(struct pmc_meta *m, u64 now)
{
	struct pmc_sb sb;
	unsigned int copy = m->sb_seq ? !m->sb_copy : 1;

	BUILD_BUG_ON(sizeof(struct pmc_sb) != PMC_SB_STRUCT_SIZE);
	BUILD_BUG_ON(sizeof(struct pmc_rec) != PMC_REC_SIZE);
	memset(&sb, 0, sizeof(sb));
	sb.magic = cpu_to_le64(PMC_SB_MAGIC);
	sb.version_major = cpu_to_le16(PMC_VERSION_MAJOR);
	sb.version_minor = cpu_to_le16(PMC_VERSION_MINOR);
	sb.block_size = cpu_to_le32(m->geo.block_size);
	sb.seq = cpu_to_le64(m->sb_seq + 1);
	sb.nr_blocks = cpu_to_le64(m->geo.nr_blocks);
	sb.rec_offset = cpu_to_le64(m->geo.rec_offset);
	sb.data_offset = cpu_to_le64(m->geo.data_offset);
	sb.pmem_size = cpu_to_le64(m->geo.pmem_size);
	sb.origin_sectors = cpu_to_le64(m->origin_sectors);
	memcpy(sb.origin_name, m->origin_name, PMC_ORIGIN_NAME_LEN);
	if (m->origin_uid.len) {
		sb.compat_flags = cpu_to_le32(PMC_COMPAT_ORIGIN_UID);
		sb.origin_uid_start = cpu_to_le64(m->origin_uid.start);
		sb.origin_uid_type = m->origin_uid.type;
		sb.origin_uid_len = m->origin_uid.len;
		memcpy(sb.origin_uid, m->origin_uid.id, PMC_ORIGIN_UID_LEN);
	}
	memcpy(sb.cache_uuid, m->uuid, sizeof(sb.cache_uuid));
	/* 0: a rewrite (rebind, new origin name) keeps the format's time. */
	if (now)
		m->format_time = now;
	sb.format_time = cpu_to_le64(m->format_time);
	sb.crc = cpu_to_le32(sb_crc(&sb));
	if (m->sb_seq && !m->sb_copies_same)
		meta_heal_sb(m, copy);
	pmc_pmem_copy(sb_copy(m->base, copy), &sb, sizeof(sb));
	pmc_pmem_fence();
	pmc_pmem_copy(sb_copy(m->base, !copy), &sb, sizeof(sb));
	pmc_pmem_fence();
	m->sb_seq++;
	m->sb_copy = copy;
	m->sb_copies_same = true;
}

/* Zero the record area (not fenced), in pieces, rescheduling in between. */
static void meta_zero_records(struct pmc_meta *m)
{
	u64 nr = m->geo.nr_blocks, at, n;

	for (at = 0; at < nr; at += n) {
		n = min_t(u64, nr - at, 16 * PMC_RESCHED_EVERY);
		pmc_pmem_zero(&m->recs[at], n * PMC_REC_SIZE);
		cond_resched();
	}
}

/*
 * Invalidate both superblock copies, @older first, each behind a fence: from
 * here until meta_write_sb the device is not a cache (a crash leaves its
 * first 4 KiB zero, and the next load formats it). Were the current copy
 * cleared first, a crash could bring the older one back (say, naming the
 * origin from before a rebind) over records it does not describe. The
 * records are zeroed only after both: a half-zeroed record area is never
 * loaded, where an older copy of a block that writes leave to be cleared
 * later (pmcache_slot.h) could outlive its newer copy's record.
 */
static void meta_invalidate_sb(u8 *base, unsigned int older)
{
	unsigned int i, copy;

	/*
	 * Each copy but its magic first, then the magic: torn, a copy keeps
	 * its magic and reads as damaged, never as another user's data
	 * (sb_copy0_torn: the older copy's words are no copy of the other's).
	 */
	for (i = 0; i < PMC_SB_COPIES; i++) {
		copy = i ? !older : older;
		pmc_pmem_zero((u8 *)sb_copy(base, copy) + sizeof(__le64),
			      PMC_SB_SIZE - sizeof(__le64));
		pmc_pmem_fence();
		pmc_pmem_store64(&sb_copy(base, copy)->magic, 0);
		pmc_pmem_fence();
	}
}

static void meta_blank_range(u64 start, u64 len, void *base)
{
	pmc_pmem_zero((u8 *)base + start, len);
}

/*
 * Zero where the probe looks for other formats' signatures, as the tool's
 * wipe does: a signature left in the data area (an MD superblock near the
 * end), or a record that reads as one, would make the device foreign once
 * its superblocks are zeroed, and blkid would name it so meanwhile.
 */
static void meta_blank_signatures(u8 *base, u64 size)
{
	pmc_meta_blank_ranges(size, meta_blank_range, base);
}

/*
 * Which superblock copy of a probed valid cache to zero first. Copy 0 when
 * the two are the same: zero, it makes the device blank at once
 * (pmc_meta_probe), and torn, it leaves the other, the same superblock.
 * When they differ, the older (or damaged) one, as meta_invalidate_sb
 * says: torn then, the current one leaves no valid copy (refused), never
 * the older one alone.
 */
static unsigned int meta_invalidate_first(const struct pmc_meta *m)
{
	return m->sb_copies_same ? 0 : !m->sb_copy;
}

void pmc_meta_invalidate(struct pmc_meta *m, u64 size)
{
	meta_invalidate_sb(m->base, meta_invalidate_first(m));
	/*
	 * After them: zeroed under a valid one, a record drops its block.
	 * By the device's size, from whose end the probe looks too.
	 */
	meta_blank_signatures(m->base, size);
	pmc_pmem_fence();
}

int pmc_meta_format(struct pmc_meta *m, u8 *base, u64 size, u32 block_size,
		    const struct pmc_origin_id *origin, const u8 uuid[16],
		    u64 now)
{
	struct pmc_geometry g;
	unsigned int first = 0;
	const char *why;
	int r;

	r = pmc_geometry_compute(size, block_size, &g);
	if (r)
		return r;
	if (pmc_meta_probe(m, base, size, &why) == PMC_PROBE_VALID)
		first = meta_invalidate_first(m);
	memset(m, 0, sizeof(*m));
	meta_set_geometry(m, base, &g);
	meta_set_origin(m, origin);
	memcpy(m->uuid, uuid, sizeof(m->uuid));
	meta_invalidate_sb(base, first);
	meta_zero_records(m);
	meta_blank_signatures(base, size);
	pmc_pmem_fence();
	meta_write_sb(m, now);
	return 0;
}

static bool uid_equal(const struct pmc_origin_uid *a, const struct pmc_origin_uid *b)
{
	return a->len == b->len && a->type == b->type && a->start == b->start &&
	       !memcmp(a->id, b->id, a->len);
}

bool pmc_meta_origin_matches(const struct pmc_meta *m,
			     const struct pmc_origin_id *origin)
{
	const struct pmc_origin_uid *had = &m->origin_uid, *has = &origin->uid;

	/*
	 * Grown (lvextend), it is the same origin: every cached block is
	 * still where it was. Shrunk, it is not.
	 */
	if (m->origin_sectors > origin->sectors)
		return false;
	if (had->len && has->len)
		return uid_equal(had, has);
	if (had->len && origin->uid_reportable)
		return false;
	return !strncmp(m->origin_name, origin->name, PMC_ORIGIN_NAME_LEN);
}

/*
 * Recovery's scan into @idx (empty). @write: clear the records it drops
 * (corrupt, out of range, superseded), durably, and report free slots to
 * @free_slot (if not NULL); otherwise change nothing in pmem.
 */
static int meta_scan(struct pmc_meta *m, struct pmc_index *idx, u64 origin_blocks,
		     void (*free_slot)(void *ctx, u32 slot), void *ctx,
		     struct pmc_recovery_stats *st, bool write)
{
	u32 slot, nr = (u32)m->geo.nr_blocks;
	bool cleared = false;

	memset(st, 0, sizeof(*st));
	for (slot = 0; slot < nr; slot++) {
		struct pmc_rec rec;
		u64 key, commit, oblock;
		u32 other;
		bool dirty;

		if (!(slot % PMC_RESCHED_EVERY))
			cond_resched();
		if (pmc_pmem_read_record(&rec, &m->recs[slot], sizeof(rec))) {
			/* Unreadable record: the slot is lost, not reused. */
			st->corrupt++;
			st->unreadable++;
			continue;
		}
		commit = le64_to_cpu(rec.commit);
		key = le64_to_cpu(rec.key);
		if (!commit) {
			if (write && free_slot)
				free_slot(ctx, slot);
			continue;
		}
		oblock = pmc_key_oblock(key);
		if (!pmc_commit_ok(slot, key, commit) || oblock >= origin_blocks) {
			if (pmc_commit_ok(slot, key, commit))
				st->out_of_range++;
			else
				st->corrupt++;
			if (write) {
				pmc_rec_clear(m, slot);
				cleared = true;
				if (free_slot)
					free_slot(ctx, slot);
			}
			continue;
		}
		dirty = commit & PMC_REC_DIRTY;
		other = pmc_index_lookup(idx, oblock);
		if (other != PMC_NO_SLOT) {
			u32 loser = slot;

			st->duplicates++;
			if (pmc_gen_after(pmc_key_gen(key), pmc_key_gen(idx->slots[other].key))) {
				/* This one is newer: it replaces the one found. */
				loser = other;
				st->used--;
				if (pmc_slot_kind(idx, other) == PMC_S_DIRTY)
					st->dirty--;
				pmc_index_remove(idx, other);
				idx->slots[other].state = PMC_S_FREE;
				pmc_index_insert(idx, slot, key,
						 dirty ? PMC_S_DIRTY : PMC_S_CLEAN);
				st->used++;
				if (dirty)
					st->dirty++;
			}
			if (write) {
				pmc_rec_clear(m, loser);
				cleared = true;
				if (free_slot)
					free_slot(ctx, loser);
			}
			continue;
		}
		pmc_index_insert(idx, slot, key, dirty ? PMC_S_DIRTY : PMC_S_CLEAN);
		st->used++;
		if (dirty)
			st->dirty++;
	}
	if (cleared)
		pmc_pmem_fence();
	return 0;
}

int pmc_meta_recover(struct pmc_meta *m, struct pmc_index *idx,
		     u64 origin_blocks,
		     void (*free_slot)(void *ctx, u32 slot), void *ctx,
		     struct pmc_recovery_stats *st)
{
	return meta_scan(m, idx, origin_blocks, free_slot, ctx, st, true);
}

void pmc_meta_rebind(struct pmc_meta *m, const struct pmc_origin_id *origin,
		     struct pmc_index *idx)
{
	struct pmc_recovery_stats st;

	/*
	 * Records superseded by newer ones (writes leave them to be cleared
	 * later, pmcache_slot.h) go first, durably, as recovery clears them:
	 * should the zeroing below stop half way, one of them could
	 * otherwise outlive its newer copy's record and come back, stale,
	 * at the next load of the old origin.
	 */
	meta_scan(m, idx, U64_MAX, NULL, NULL, &st, true);
	pmc_index_reset(idx);
	meta_zero_records(m);
	pmc_pmem_fence();
	meta_set_origin(m, origin);
	meta_write_sb(m, 0);
}

bool pmc_meta_update_origin(struct pmc_meta *m, const struct pmc_origin_id *origin)
{
	const struct pmc_origin_uid *had = &m->origin_uid, *has = &origin->uid;
	struct pmc_origin_id now = *origin;

	if (m->origin_sectors == origin->sectors &&
	    (!has->len || (!strncmp(m->origin_name, origin->name, PMC_ORIGIN_NAME_LEN) &&
			   uid_equal(had, has)))) {
		if (!m->sb_copies_same)
			meta_write_sb(m, 0);
		return false;
	}
	/* Grown, matched by name: the id recorded stays. */
	if (!has->len)
		now.uid = *had;
	meta_set_origin(m, &now);
	meta_write_sb(m, 0);
	return true;
}

int pmc_meta_count_dirty(struct pmc_meta *m, u64 *dirty, u64 *unreadable)
{
	struct pmc_recovery_stats st;
	struct pmc_index idx;
	int r;

	r = pmc_index_init(&idx, (u32)m->geo.nr_blocks);
	if (r)
		return r;
	/* Every block counts, in range of this origin or not. */
	r = meta_scan(m, &idx, U64_MAX, NULL, NULL, &st, false);
	pmc_index_exit(&idx);
	*dirty = st.dirty + st.unreadable;
	if (unreadable)
		*unreadable = st.unreadable;
	return r;
}

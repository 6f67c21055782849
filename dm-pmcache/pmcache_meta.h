/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Superblock and per-block records: format, load, commit, recovery.
 * Pure logic over a mapping of the cache device; all pmem writes go through
 * pmcache_pmem.h. Builds in the kernel and in userspace.
 */
#ifndef PMCACHE_META_H
#define PMCACHE_META_H

#include "pmcache_format.h"
#include "pmcache_pmem.h"

struct pmc_index;

/*
 * What the origin's disk says it is (struct pmc_sb.origin_uid): len 0 when
 * it says nothing, or when the origin is a device-mapper device, whose name
 * is stable and whose disk id would be the same for two volumes of one
 * physical disk.
 */
struct pmc_origin_uid {
	u64 start;
	u8 type;
	u8 len;
	u8 id[PMC_ORIGIN_UID_LEN];
};

/*
 * The name recorded for a device-mapper origin: "dm:<name>", or for a name
 * too long for the field a prefix and a checksum of the whole. The module
 * records it, pmcache-tool compares with it: one spelling for both.
 */
void pmc_origin_dm_name(const char *dm_name, char *buf, size_t len);

/* "naa.5000c500...", with "+<start>" for a partition; "" when none. */
#define PMC_ORIGIN_UID_STR_LEN	(4 + 2 * PMC_ORIGIN_UID_LEN + 22)
void pmc_origin_uid_str(const struct pmc_origin_uid *uid, char *buf, size_t len);

/* In-memory view of a mapped cache device. */
struct pmc_meta {
	u8 *base;			/* start of the mapping */
	struct pmc_geometry geo;
	struct pmc_rec *recs;
	u8 *data;
	u64 sb_seq;			/* seq of the current superblock copy */
	unsigned int sb_copy;		/* which copy is current */
	bool sb_copies_same;		/* the other copy is valid, with the same seq */
	u64 origin_sectors;
	char origin_name[PMC_ORIGIN_NAME_LEN + 1];
	struct pmc_origin_uid origin_uid;
	u8 uuid[16];
	u64 format_time;		/* seconds since the epoch, informational */
};

enum pmc_probe_result {
	PMC_PROBE_VALID,	/* a pmcache superblock we can use */
	PMC_PROBE_BLANK,	/* first 4 KiB zero, no known signature: free to format */
	PMC_PROBE_FOREIGN,	/* something else lives there */
	PMC_PROBE_CORRUPT,	/* pmcache magic, but no copy checks out */
	PMC_PROBE_UNSUPPORTED,	/* newer version or unknown incompat flags */
	PMC_PROBE_MISMATCH,	/* geometry does not fit this device */
};

/* Origin identity a cache is bound to. */
struct pmc_origin_id {
	u64 sectors;
	const char *name;
	struct pmc_origin_uid uid;
	/*
	 * Its driver reports disk ids (get_unique_id): without one now, it
	 * is another disk than one recorded with an id. Not so a driver that
	 * has no such method (NVMe under 6.1): its name decides.
	 */
	bool uid_reportable;
};

/*
 * Read the superblock of the mapped device at @base (@size bytes). On
 * PMC_PROBE_VALID @m describes the cache; otherwise *@why says what is wrong.
 */
enum pmc_probe_result pmc_meta_probe(struct pmc_meta *m, u8 *base, u64 size,
				     const char **why);

/*
 * The *why of PMC_PROBE_FOREIGN for a device whose superblock copy 0 holds
 * other data (a partition table, mkswap, a file system written over it)
 * while copy 1 still holds a cache: the tool looks behind it.
 */
extern const char pmc_why_copy0_overwritten[];

/*
 * pmc_meta_probe() for a reader that never writes the device (the tool's
 * check, dump and rescue): unknown read-only-compatible features are no
 * reason to refuse it, as they are for the module.
 */
enum pmc_probe_result pmc_meta_probe_read_only(struct pmc_meta *m, u8 *base,
					       u64 size, const char **why);

/*
 * Call @fn on every byte range of a device of @size bytes that, zeroed,
 * makes pmc_meta_probe() call it blank: both superblock copies and where
 * other formats keep their signatures.
 */
void pmc_meta_blank_ranges(u64 size, void (*fn)(u64 start, u64 len, void *arg),
			   void *arg);

/* Format: clear every record, then write the superblock. */
int pmc_meta_format(struct pmc_meta *m, u8 *base, u64 size, u32 block_size,
		    const struct pmc_origin_id *origin, const u8 uuid[16],
		    u64 now);

/*
 * Make the device of @size bytes blank (both superblock copies zero, and
 * other formats' signature places): the next table on it formats it. For
 * a cache whose copies are all clean and no longer wanted. Durable on
 * return.
 */
void pmc_meta_invalidate(struct pmc_meta *m, u64 size);

/*
 * Bind a cache holding no dirty data to another origin: drops every block.
 * @idx: an empty index of the cache's size, used on the way and left empty.
 */
void pmc_meta_rebind(struct pmc_meta *m, const struct pmc_origin_id *origin,
		     struct pmc_index *idx);

/*
 * @origin, which matches (pmc_meta_origin_matches) and has a disk id, is
 * recorded as the superblock's origin if its name or id differ from what
 * is there: a renamed disk's new name, or the id of a disk first seen
 * without one. Writes the superblock again, too, if the probe found its
 * two copies different (a crash between their writes, or damage to one):
 * until both are current again, losing the newer one would bring back an
 * older superblock. Keeps every block; durable on return. True if it
 * recorded another origin.
 */
bool pmc_meta_update_origin(struct pmc_meta *m, const struct pmc_origin_id *origin);

/*
 * Does the superblock's origin match? The size must; then, when both the
 * superblock and @origin have a disk id, the ids decide (a disk renamed
 * at the next boot is the same origin, another disk under its old name is
 * not); otherwise the names.
 */
bool pmc_meta_origin_matches(const struct pmc_meta *m,
			     const struct pmc_origin_id *origin);

static inline u8 *pmc_block_data(const struct pmc_meta *m, u32 slot)
{
	return m->data + (size_t)slot * m->geo.block_size;
}

static inline u64 pmc_rec_commit_word(const struct pmc_meta *m, u32 slot)
{
	return le64_to_cpu(READ_ONCE(m->recs[slot].commit));
}

/*
 * The record protocol. Inline, as the index operations: every write runs
 * it, and it is a handful of stores and fences.
 */

/* Free a slot's record; persistent after the next fence. */
static inline void pmc_rec_clear(struct pmc_meta *m, u32 slot)
{
	pmc_pmem_store64(&m->recs[slot].commit, 0);
}

/*
 * Store @slot's key (the slot is free, so its commit word is zero and the
 * record stays free): persistent after the next fence. A write stores it
 * ahead of the commit, next to the block's data, so that the one fence the
 * data needs makes the key durable too.
 */
static inline void pmc_rec_set_key(struct pmc_meta *m, u32 slot, u64 key)
{
	pmc_pmem_store64(&m->recs[slot].key, cpu_to_le64(key));
}

/*
 * Store @slot's commit word for @key, dirty or clean: persistent after the
 * next fence. The block's data and key must be durable already.
 */
static inline void pmc_rec_set_commit(struct pmc_meta *m, u32 slot, u64 key,
				      bool dirty)
{
	pmc_pmem_store64(&m->recs[slot].commit,
			 cpu_to_le64(pmc_commit_make(slot, key,
						     dirty ? PMC_REC_DIRTY : 0)));
}

/* Store key, fence, store the commit word: persistent after the next fence. */
static inline void pmc_rec_commit_unfenced(struct pmc_meta *m, u32 slot,
					   u64 key, bool dirty)
{
	pmc_rec_set_key(m, slot, key);
#ifndef PMC_CRASH_BUG_EARLY_COMMIT
	/* The data and the key must be persistent before the commit word. */
	pmc_pmem_fence();
#else
	/*
	 * Only for the self-test of the userspace crash explorer
	 * (tests/unit): without this fence the commit word can persist
	 * before the block's data and key, which it must report.
	 */
#endif
	pmc_rec_set_commit(m, slot, key, dirty);
}

/*
 * Commit @slot (free, its data already copied) as holding @key. Durable when
 * this returns: key store, fence, commit store, fence.
 */
static inline void pmc_rec_commit(struct pmc_meta *m, u32 slot, u64 key,
				  bool dirty)
{
	pmc_rec_commit_unfenced(m, slot, key, dirty);
	pmc_pmem_fence();
}

/*
 * Out-of-place update: commit @slot as the copy of @key, durably.
 * @key_durable: @key and the block's data are durable already
 * (pmc_rec_set_key, then a fence), so the commit word is stored at once;
 * otherwise the key is stored and fenced first.
 * @clear_with (PMC_NO_SLOT: none): a record cleared in the commit's fence,
 * one that may vanish before the commit persists or after it: an older copy
 * of some block whose newer copy is durable already.
 * @clear_after (PMC_NO_SLOT: none): a record cleared only once the commit
 * is durable, a fence later: the copy this one replaces, when it must not
 * be lost before the commit is.
 * On return both are free for reuse.
 */
static inline void pmc_rec_replace(struct pmc_meta *m, u32 slot, u64 key,
				   bool key_durable, bool dirty, u32 clear_with,
				   u32 clear_after)
{
	if (key_durable)
		pmc_rec_set_commit(m, slot, key, dirty);
	else
		pmc_rec_commit_unfenced(m, slot, key, dirty);
	if (clear_with != PMC_NO_SLOT)
		pmc_rec_clear(m, clear_with);
	pmc_pmem_fence();
	if (clear_after == PMC_NO_SLOT)
		return;
	pmc_rec_clear(m, clear_after);
	pmc_pmem_fence();
}

/* Free a slot's record; durable on return, so the slot may be reused. */
static inline void pmc_rec_free(struct pmc_meta *m, u32 slot)
{
	pmc_rec_clear(m, slot);
	pmc_pmem_fence();
}

/* Mark a committed slot clean; persistent after the next fence. */
static inline void pmc_rec_set_clean(struct pmc_meta *m, u32 slot, u64 key)
{
	pmc_rec_set_commit(m, slot, key, false);
}

/* What recovery found. */
struct pmc_recovery_stats {
	u64 used;
	u64 dirty;
	u64 corrupt;		/* records that failed their checksum */
	u64 unreadable;		/* of those, the ones a media error hid: left as they are */
	u64 duplicates;		/* older copies superseded by a newer one */
	u64 out_of_range;	/* blocks beyond the origin's end */
};

/*
 * Rebuild @idx from the records: every committed slot goes in, older
 * duplicates and corrupt records are cleared. Free slots are reported to
 * @free_slot. Durable when it returns.
 */
int pmc_meta_recover(struct pmc_meta *m, struct pmc_index *idx,
		     u64 origin_blocks,
		     void (*free_slot)(void *ctx, u32 slot), void *ctx,
		     struct pmc_recovery_stats *st);

/*
 * Count the blocks that may be dirty, without changing anything: those
 * whose newest record is dirty, in a scan as recovery's (an older record of
 * a block, superseded by a newer one, counts as the newer one does), and
 * the records a media error makes unreadable, which may be dirty too: a
 * load leaves them in place, a format or a rebind would zero them. Needs a
 * temporary index of the cache's size. *@unreadable (if not NULL): how many
 * of *@dirty are such records. 0 or -ENOMEM.
 */
int pmc_meta_count_dirty(struct pmc_meta *m, u64 *dirty, u64 *unreadable);

#endif /* PMCACHE_META_H */

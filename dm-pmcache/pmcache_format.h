/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-pmcache on-media format: the one definition shared by the kernel module
 * and the userspace tools. Every multi-byte field is little endian; nothing in
 * here is an in-memory structure.
 *
 * Layout of the cache device (byte offsets):
 *
 *   0          superblock copy 0 (4 KiB)
 *   4096       superblock copy 1 (4 KiB)
 *   8192       record area: one 16-byte struct pmc_rec per cache block
 *   data_off   data area: nr_blocks blocks of block_size bytes
 *
 * The superblock is written at format time and when the cache is rebound to
 * another origin, into both copies with a higher sequence number: first the
 * copy that is not current, then, behind a fence, the other. A torn update
 * leaves one copy valid; afterwards either copy alone will do.
 *
 * A record is free when its commit word is zero. A block is written out of
 * place: data into a free block, then the record's key word, a fence, then
 * the commit word (one 8-byte store), a fence. Only then is the block it
 * replaces freed. Recovery therefore may find two committed records for one
 * origin block; the key's generation (incremented modulo 2^16 on each
 * replacement) says which one is newer.
 */
#ifndef PMCACHE_FORMAT_H
#define PMCACHE_FORMAT_H

#include "pmcache_os.h"

#define PMC_SB_MAGIC		0x31454843414d5044ULL	/* "DPMACHE1" */
#define PMC_VERSION_MAJOR	1
#define PMC_VERSION_MINOR	0

/* Feature flags. A kernel refuses a cache with incompat bits it lacks. */
/*
 * The superblock holds the origin disk's unique id (origin_uid): a module
 * without it compares the origin's name only, as before.
 */
#define PMC_COMPAT_ORIGIN_UID	0x1u
#define PMC_COMPAT_SUPP		PMC_COMPAT_ORIGIN_UID
#define PMC_RO_COMPAT_SUPP	0u
#define PMC_INCOMPAT_SUPP	0u

#define PMC_SB_SIZE		4096u	/* room for each copy */
#define PMC_SB_STRUCT_SIZE	256u	/* what is used and checksummed */
#define PMC_SB_COPIES		2u
#define PMC_REC_OFFSET		(PMC_SB_SIZE * PMC_SB_COPIES)
#define PMC_REC_SIZE		16u
/* Slots (blocks of the data area) count from 0; this one is none (in DRAM). */
#define PMC_NO_SLOT		U32_MAX
#define PMC_ORIGIN_NAME_LEN	32u
#define PMC_ORIGIN_UID_LEN	16u
/* origin_uid_type: SCSI VPD page 0x83 designator types, as enum blk_unique_id. */
#define PMC_UID_T10		1u
#define PMC_UID_EUI64		2u
#define PMC_UID_NAA		3u
#define PMC_MIN_BLOCK_SIZE	512u
#define PMC_MAX_BLOCK_SIZE	4096u
#define PMC_DATA_ALIGN		4096u
#define PMC_MIN_BLOCKS		16u
/*
 * Most blocks a cache uses; pmem beyond them is left unused. Slot numbers
 * are u32 and the allocator, policy and index round counts of them up:
 * 2^31 leaves those sums room. It is 1 TiB of cache at 512-byte blocks,
 * 8 TiB at 4 KiB.
 */
#define PMC_MAX_BLOCKS		0x80000000u	/* 2^31 */

struct pmc_sb {
	__le64 magic;
	__le32 crc;		/* crc32c of the struct with this field zero */
	__le16 version_major;
	__le16 version_minor;
	__le32 compat_flags;
	__le32 ro_compat_flags;
	__le32 incompat_flags;
	__le32 block_size;	/* bytes, power of two, 512..4096 */
	__le64 seq;		/* the valid copy with the highest seq is current */
	__le64 nr_blocks;
	__le64 rec_offset;	/* bytes from the start of the device */
	__le64 data_offset;
	__le64 pmem_size;	/* bytes of the cache device at format time */
	__le64 origin_sectors;	/* size of the origin this cache belongs to */
	u8 origin_name[PMC_ORIGIN_NAME_LEN];	/* kernel name, NUL padded */
	u8 cache_uuid[16];
	__le64 format_time;	/* seconds since the epoch, informational */
	/*
	 * With PMC_COMPAT_ORIGIN_UID: the unique id the origin's disk reports
	 * (a SCSI VPD page 0x83 designator, an NVMe EUI-64 or NGUID), which
	 * it keeps under any name: its type (the designator type, 1 T10, 2
	 * EUI-64, 3 NAA), its length in bytes, and the origin's first sector
	 * in that disk (a partition's start).
	 */
	__le64 origin_uid_start;
	u8 origin_uid_type;
	u8 origin_uid_len;
	u8 origin_uid_pad[6];
	u8 origin_uid[PMC_ORIGIN_UID_LEN];
	u8 reserved[PMC_SB_STRUCT_SIZE - 168];
} __packed;

/*
 * struct pmc_rec.key: origin block number in bits 0..47, generation in bits
 * 48..63. struct pmc_rec.commit: zero when free; otherwise PMC_REC_VALID,
 * PMC_REC_DIRTY, and in bits 32..63 the crc32c of the key and the low 32
 * bits of the commit word, seeded with the slot number so a record in the
 * wrong place does not validate.
 */
struct pmc_rec {
	__le64 key;
	__le64 commit;
} __packed;

#define PMC_OBLOCK_BITS		48
#define PMC_OBLOCK_MASK		((1ULL << PMC_OBLOCK_BITS) - 1)
#define PMC_GEN_SHIFT		48
#define PMC_REC_VALID		0x1u
#define PMC_REC_DIRTY		0x2u
#define PMC_REC_FLAGS_KNOWN	(PMC_REC_VALID | PMC_REC_DIRTY)

static inline u64 pmc_key_make(u64 oblock, u16 gen)
{
	return (oblock & PMC_OBLOCK_MASK) | ((u64)gen << PMC_GEN_SHIFT);
}

static inline u64 pmc_key_oblock(u64 key)
{
	return key & PMC_OBLOCK_MASK;
}

static inline u16 pmc_key_gen(u64 key)
{
	return (u16)(key >> PMC_GEN_SHIFT);
}

static inline u32 pmc_rec_crc(u32 slot, u64 key, u32 flags)
{
	/* One call over both: the same crc as key, then flags (every commit). */
	struct {
		__le64 key;
		__le32 flags;
	} __packed buf = { cpu_to_le64(key), cpu_to_le32(flags) };

	return pmc_crc32c(~slot, &buf, sizeof(buf));
}

static inline u64 pmc_commit_make(u32 slot, u64 key, u32 flags)
{
	flags |= PMC_REC_VALID;
	return ((u64)pmc_rec_crc(slot, key, flags) << 32) | flags;
}

/* Is the commit word a committed record for this slot and key? */
static inline bool pmc_commit_ok(u32 slot, u64 key, u64 commit)
{
	u32 flags = (u32)commit;

	if (!(flags & PMC_REC_VALID) || (flags & ~PMC_REC_FLAGS_KNOWN))
		return false;
	return (u32)(commit >> 32) == pmc_rec_crc(slot, key, flags);
}

/* Is generation a newer than b, modulo 2^16? */
static inline bool pmc_gen_after(u16 a, u16 b)
{
	return (s16)(a - b) > 0;
}

/* Geometry of a cache device: where records and data live. */
struct pmc_geometry {
	u32 block_size;
	u64 nr_blocks;
	u64 rec_offset;
	u64 data_offset;
	u64 pmem_size;
};

/*
 * Largest number of blocks that fit, at most PMC_MAX_BLOCKS: records, then
 * data aligned to PMC_DATA_ALIGN. Returns -ENOSPC when fewer than
 * PMC_MIN_BLOCKS fit.
 */
static inline int pmc_geometry_compute(u64 pmem_size, u32 block_size,
				       struct pmc_geometry *g)
{
	u64 n, data_off;

	if (pmem_size < PMC_REC_OFFSET + PMC_DATA_ALIGN)
		return -ENOSPC;
	n = (pmem_size - PMC_REC_OFFSET - PMC_DATA_ALIGN) /
	    (block_size + PMC_REC_SIZE);
	if (n > PMC_MAX_BLOCKS)
		n = PMC_MAX_BLOCKS;
	for (;;) {
		data_off = ALIGN(PMC_REC_OFFSET + n * PMC_REC_SIZE,
				 (u64)PMC_DATA_ALIGN);
		if (data_off + n * block_size <= pmem_size || !n)
			break;
		n--;
	}
	if (n < PMC_MIN_BLOCKS)
		return -ENOSPC;
	g->block_size = block_size;
	g->nr_blocks = n;
	g->rec_offset = PMC_REC_OFFSET;
	g->data_offset = data_off;
	g->pmem_size = pmem_size;
	return 0;
}

#endif /* PMCACHE_FORMAT_H */

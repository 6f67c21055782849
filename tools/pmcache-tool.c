// SPDX-License-Identifier: GPL-2.0
/*
 * pmcache-tool: offline inspection and rescue of a dm-pmcache cache device.
 *
 *   pmcache-tool check  <cache dev|image>
 *   pmcache-tool dump   <cache dev|image> [--records]
 *   pmcache-tool rescue <cache dev|image> <origin dev|image> [--dry-run] [--force]
 *   pmcache-tool wipe   <cache dev|image> [--force]
 *   pmcache-tool repair <cache dev|image> [--force]
 *   pmcache-tool belongs <cache dev> <origin dev>
 *
 * It reads the device with the module's own format and recovery code
 * (dm-pmcache/pmcache_meta.c, built for userspace). The cache device is
 * mapped privately: recovery's clean-ups stay in this process, and only
 * "wipe" and "repair" (a superblock copy) ever write to the cache. "rescue"
 * writes the newest copy of every dirty block to the origin, for when the
 * module cannot be loaded; the cache keeps its blocks, dirty. Written to on
 * its own after that, the origin would be overwritten with those old blocks
 * by the next dmsetup create: "wipe" (--force, as the blocks are still
 * dirty) makes the cache blank first, so that the next dmsetup create
 * formats it.
 *
 * Exit status: 0 sound (or done), 1 problems found (corrupt or out-of-range
 * records, I/O errors) or dirty blocks in the way, 2 not a usable pmcache
 * device or bad usage.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/sysmacros.h>
#include <limits.h>
#include <strings.h>
#include <unistd.h>

#ifndef BLKGETSIZE64	/* <linux/fs.h> would clash with the __le types */
#define BLKGETSIZE64 _IOR(0x12, 114, size_t)
#endif
#ifndef BLKFLSBUF
#define BLKFLSBUF _IO(0x12, 97)
#endif

#include "pmcache_meta.h"
#include "pmcache_index.h"
#include "pmcache_pmem.h"

struct cache_view {
	u8 *map;
	u64 size;
	enum pmc_probe_result probe;	/* meaningful once @probed */
	bool probed;
	bool copy0_overwritten;	/* other data in copy 0, a cache in copy 1 */
	struct pmc_meta meta;
	struct pmc_index idx;
	struct pmc_recovery_stats st;
	u64 nr_free;
	dev_t rdev;		/* the cache's block device; 0: an image file */
};

/* The mapped cache device, read again around a media error (retry_read). */
static int retry_fd = -1;
static const u8 *retry_base;
static u64 retry_size;

/*
 * A bad sector fails the mapping's whole page, which the block device
 * reads at once: read the 512-byte sectors under [@src, @src + @len) one
 * at a time with O_DIRECT instead, so that only a bad one fails. A record
 * is 16 bytes: a page of them lost for one bad sector would be 256 dirty
 * blocks that rescue cannot find, where 32 share that sector.
 */
static int retry_read(void *dst, const void *src, size_t len)
{
	static u8 sector[512] __aligned(4096);
	const u8 *p = src;
	u64 off, at, from, to;

	if (retry_fd < 0 || p < retry_base || p + len > retry_base + retry_size)
		return -EIO;
	off = p - retry_base;
	for (at = off & ~511ULL; at < off + len; at += 512) {
		if (pread(retry_fd, sector, 512, (off_t)at) != 512)
			return -EIO;
		from = at > off ? at : off;
		to = at + 512 < off + len ? at + 512 : off + len;
		memcpy((u8 *)dst + (from - off), sector + (from - at), to - from);
	}
	return 0;
}

static u64 dev_size(int fd)
{
	struct stat s;
	u64 bytes;

	if (fstat(fd, &s))
		return 0;
	if (S_ISBLK(s.st_mode))
		return ioctl(fd, BLKGETSIZE64, &bytes) ? 0 : bytes;
	return S_ISREG(s.st_mode) ? (u64)s.st_size : 0;
}

/*
 * open(2) @path if it is a block device or a regular file; a clear message
 * and -1 if not. Checked first: opening a FIFO would wait for a writer.
 */
static int open_dev_or_file(const char *path, int flags)
{
	struct stat s;

	if (!stat(path, &s) && !S_ISBLK(s.st_mode) && !S_ISREG(s.st_mode)) {
		fprintf(stderr, "%s: not a block device or an image file\n", path);
		errno = EINVAL;
		return -1;
	}
	return open(path, flags);
}

/* An open that failed: why, and for a device in use, what to do. */
static void open_failed(const char *path)
{
	if (errno == EBUSY)
		fprintf(stderr, "%s: in use (held by a live dm table, dmsetup remove that device first;\n"
			"or mounted, or open by another program)\n", path);
	else
		perror(path);
}

/* Open @path as a cache device or image; a clear message and -1 if not. */
static int open_dev(const char *path, int flags, u64 *size)
{
	struct stat s;
	int fd = open_dev_or_file(path, flags);

	if (fd < 0 && errno == EINVAL)
		return -1;
	if (fd < 0) {
		open_failed(path);
		return -1;
	}
	if (fstat(fd, &s) || (!S_ISBLK(s.st_mode) && !S_ISREG(s.st_mode))) {
		fprintf(stderr, "%s: not a block device or an image file\n", path);
		close(fd);
		return -1;
	}
	*size = dev_size(fd);
	if (*size < PMC_REC_OFFSET) {
		fprintf(stderr, "%s: %llu bytes, too small for a pmcache device\n", path,
			(unsigned long long)*size);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The probe's reasons are the module's, worded for dmsetup ("...; pass
 * format to overwrite it"): print what was found, without that advice.
 */
static void print_why(const char *path, const char *why)
{
	const char *advice = strchr(why, ';');

	fprintf(stderr, "%s: %.*s\n", path, advice ? (int)(advice - why) : (int)strlen(why), why);
}

static void count_free(void *ctx, u32 slot)
{
	(void)slot;
	((struct cache_view *)ctx)->nr_free++;
}

/* Map the cache read-only and probe its superblock; 0 or an exit status. */
static int map_probe(const char *path, struct cache_view *v, bool quiet_blank)
{
	struct stat s;
	const char *why;
	int fd;

	memset(v, 0, sizeof(*v));
	fd = open_dev(path, O_RDONLY, &v->size);
	if (fd < 0)
		return 2;
	/*
	 * The module writes pmem through DAX, around the block device's page
	 * cache, where an earlier read may have left pages (kept while a dm
	 * table holds the device open): drop them, or the mapping shows them.
	 */
	if (!fstat(fd, &s) && S_ISBLK(s.st_mode)) {
		ioctl(fd, BLKFLSBUF, 0);
		v->rdev = s.st_rdev;
	}
	/*
	 * Private: recovery may clear records, in this process only.
	 * NORESERVE: only the pages it touches are copied, so a cache larger
	 * than RAM and swap can be mapped at all.
	 */
	v->map = mmap(NULL, v->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	close(fd);
	if (v->map == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	if (v->rdev && retry_fd < 0) {
		retry_fd = open(path, O_RDONLY | O_DIRECT);
		retry_base = v->map;
		retry_size = v->size;
	}
	/*
	 * Features that forbid writing do not stop reading: check, dump and
	 * rescue read the cache; wipe zeroes it whole, repair refuses them.
	 */
	v->probe = pmc_meta_probe_read_only(&v->meta, v->map, v->size, &why);
	v->probed = true;
	v->copy0_overwritten = v->probe == PMC_PROBE_FOREIGN && why == pmc_why_copy0_overwritten;
	switch (v->probe) {
	case PMC_PROBE_VALID:
		break;
	case PMC_PROBE_BLANK:
		if (!quiet_blank)
			fprintf(stderr, "%s: blank (never formatted, or wiped)\n", path);
		return 2;
	default:
		print_why(path, why);
		return 2;
	}
	return 0;
}

/* Recover the probed cache into an index, as the module loads it; 0 or 2. */
static int recover(struct cache_view *v)
{
	if (pmc_index_init(&v->idx, (u32)v->meta.geo.nr_blocks)) {
		fprintf(stderr, "out of memory\n");
		return 2;
	}
	pmc_meta_recover(&v->meta, &v->idx,
			 v->meta.origin_sectors >> (ilog2(v->meta.geo.block_size) - 9),
			 count_free, v, &v->st);
	return 0;
}

/* Map and load the cache read-only; 0 or an exit status. */
static int load(const char *path, struct cache_view *v, bool quiet_blank)
{
	int r = map_probe(path, v, quiet_blank);

	return r ? r : recover(v);
}

/* @dir/@file of sysfs, its first line without the newline; false if none. */
static bool sysfs_line(const char *dir, const char *file, char *buf, size_t len)
{
	char path[PATH_MAX];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f)
		return false;
	ok = fgets(buf, (int)len, f);
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = 0;
	return ok && *buf;
}

/*
 * Print the bad sectors the kernel lists in the cache device (a partition:
 * those of its disk, shifted by its start); how many ranges. DAX refuses to
 * map a range holding one, and the module maps the whole device: it cannot
 * load the cache until they are cleared, which loses what they held.
 */
static unsigned int print_bad_sectors(const struct cache_view *v)
{
	char dir[PATH_MAX], line[128], *rest;
	u64 start = 0, first, last, end;
	unsigned int ranges = 0;
	FILE *f;

	if (!v->rdev)
		return 0;
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", major(v->rdev), minor(v->rdev));
	if (sysfs_line(dir, "partition", line, sizeof(line))) {
		if (!sysfs_line(dir, "start", line, sizeof(line)))
			return 0;
		start = strtoull(line, NULL, 10);
		/* The kernel follows the link before it takes "..": the disk. */
		strncat(dir, "/..", sizeof(dir) - strlen(dir) - 1);
	}
	strncat(dir, "/badblocks", sizeof(dir) - strlen(dir) - 1);
	f = fopen(dir, "r");
	if (!f)
		return 0;
	/* Lines of "<first sector> <count>", of the disk; the cache's, printed. */
	end = start + (v->size >> 9);
	while (fgets(line, sizeof(line), f)) {
		first = strtoull(line, &rest, 10);
		last = first + strtoull(rest, NULL, 10);
		first = first > start ? first : start;
		last = last < end ? last : end;
		if (first >= last)
			continue;
		printf("bad sectors:   %" PRIu64 " at sector %" PRIu64,
		       last - first, first - start);
		printf(" of the cache (bytes %" PRIu64 "-%" PRIu64 ")\n", (first - start) << 9,
		       ((last - start) << 9) - 1);
		ranges++;
	}
	fclose(f);
	return ranges;
}

static void print_summary(const char *path, const struct cache_view *v)
{
	const struct pmc_meta *m = &v->meta;
	char uid[PMC_ORIGIN_UID_STR_LEN];
	int i;

	printf("device:        %s (%" PRIu64 " bytes)\n", path, v->size);
	printf("format:        pmcache %u.%u, superblock copy %u, seq %" PRIu64 "\n",
	       PMC_VERSION_MAJOR, PMC_VERSION_MINOR, m->sb_copy, m->sb_seq);
	printf("uuid:          ");
	for (i = 0; i < 16; i++)
		printf("%02x%s", m->uuid[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
	pmc_origin_uid_str(&m->origin_uid, uid, sizeof(uid));
	printf("\norigin:        %s, %" PRIu64 " sectors%s%s\n", m->origin_name, m->origin_sectors,
	       *uid ? ", disk " : "", uid);
	printf("block size:    %u\n", m->geo.block_size);
	printf("blocks:        %" PRIu64 " total, %" PRIu64 " used, %" PRIu64 " dirty, %" PRIu64
	       " free\n", m->geo.nr_blocks, v->st.used, v->st.dirty, v->nr_free);
	printf("records:       %" PRIu64 " corrupt, %" PRIu64 " out of range, %" PRIu64
	       " older duplicates\n", v->st.corrupt, v->st.out_of_range, v->st.duplicates);
}

enum pmc_copy0 {
	PMC_COPY0_SOUND,		/* neither zero nor overwritten */
	PMC_COPY0_HIDES_NOTHING,	/* zero, and no sound copy 1: a blank device */
	PMC_COPY0_HIDES_CACHE,		/* a sound copy 1 behind it, loaded */
	PMC_COPY0_HIDES_UNREADABLE,	/* copy 1 unreadable, or no memory to load it */
};

/*
 * Copy 0 zero is blank to the probe (or foreign, when cached data happens
 * to hold another format's signature), and the next dmsetup create
 * formats the device; a wipe interrupted, or a media error cleared with
 * zeros, leaves a cache behind it in copy 1. Copy 0 overwritten by other
 * data is foreign to the probe, a cache behind it too. That copy is
 * looked at as copy 0, in this process's private mapping, and loaded into
 * @v; @sb gets it. @v: mapped by map_probe.
 */
static enum pmc_copy0 load_behind_copy0(struct cache_view *v, u8 *sb)
{
	static const u8 zero[PMC_SB_SIZE];
	const char *why;

	if (!v->copy0_overwritten &&
	    (pmc_pmem_read(sb, v->map, PMC_SB_SIZE) || memcmp(sb, zero, PMC_SB_SIZE)))
		return PMC_COPY0_SOUND;
	if (pmc_pmem_read(sb, v->map + PMC_SB_SIZE, PMC_SB_STRUCT_SIZE))
		return PMC_COPY0_HIDES_UNREADABLE;
	/* Its superblock alone: what lies beyond it in copy 1 the module ignores. */
	memset(sb + PMC_SB_STRUCT_SIZE, 0, PMC_SB_SIZE - PMC_SB_STRUCT_SIZE);
	pmc_pmem_copy(v->map, sb, PMC_SB_SIZE);
	if (pmc_meta_probe_read_only(&v->meta, v->map, v->size, &why) != PMC_PROBE_VALID)
		return PMC_COPY0_HIDES_NOTHING;
	/* Out of memory: what copy 1 holds is not known, as when unreadable. */
	return recover(v) ? PMC_COPY0_HIDES_UNREADABLE : PMC_COPY0_HIDES_CACHE;
}

static const char *copy0_state(const struct cache_view *v)
{
	return v->copy0_overwritten ? "is overwritten by other data" : "is zero";
}

/*
 * A device blank or foreign to the probe: print the cache behind copy 0,
 * if any; true if it holds dirty blocks, which a dmsetup create would drop
 * (formatting the device) or refuse.
 */
static bool print_behind_copy0(const char *path, struct cache_view *v)
{
	u8 sb[PMC_SB_SIZE];

	if (!v->probed || (v->probe != PMC_PROBE_BLANK && v->probe != PMC_PROBE_FOREIGN) ||
	    load_behind_copy0(v, sb) != PMC_COPY0_HIDES_CACHE)
		return false;
	fprintf(stderr, "%s: superblock copy 0 %s, but copy 1 holds the cache of %s (%" PRIu64
		" blocks used, %" PRIu64 " dirty): %s;\n"
		"pmcache-tool repair --force brings the cache back (%s), wipe --force drops it\n",
		path, copy0_state(v), v->meta.origin_name, v->st.used, v->st.dirty,
		v->copy0_overwritten ? "the module refuses the device" :
		"a dmsetup create formats the device",
		v->copy0_overwritten ? "and loses what was written over copy 0" :
		"a wipe interrupted, or a media error cleared with zeros?");
	return v->st.dirty;
}

/*
 * What stops the module from loading a cache that reads well here, printed;
 * true if anything does. A superblock copy behind the other is noted only:
 * the module rewrites it at load.
 */
static bool print_load_problems(const char *path, struct cache_view *v)
{
	struct pmc_meta probed;
	const char *why;
	bool refused = false;

	if (pmc_meta_probe(&probed, v->map, v->size, &why) == PMC_PROBE_UNSUPPORTED) {
		printf("refused:       this version of the module refuses to load it (%s)\n", why);
		refused = true;
	}
	if (print_bad_sectors(v)) {
		printf("refused:       DAX cannot map %s with bad sectors: the module cannot load\n"
		       "               it (pmcache-tool rescue, then clear them)\n", path);
		refused = true;
	}
	if (!v->meta.sb_copies_same)
		printf("note:          superblock copy %u is damaged or behind copy %u (a torn\n"
		       "               update): the module rewrites it at load, or pmcache-tool repair\n",
		       !v->meta.sb_copy, v->meta.sb_copy);
	return refused;
}

static int cmd_check(const char *path)
{
	struct cache_view v;
	int r = load(path, &v, false);
	bool refused;

	/* A cache behind copy 0 is a problem: refused, or formatted over its dirty blocks. */
	if (r)
		return print_behind_copy0(path, &v) || v.copy0_overwritten ? 1 : r;
	print_summary(path, &v);
	refused = print_load_problems(path, &v);
	if (v.st.corrupt || v.st.out_of_range) {
		printf("result:        PROBLEMS (the module drops these records at load)\n");
		return 1;
	}
	if (refused) {
		printf("result:        PROBLEMS (%" PRIu64 " dirty blocks)\n", v.st.dirty);
		return 1;
	}
	if (v.st.dirty)
		printf("result:        sound; %" PRIu64 " dirty blocks not on the origin yet\n",
		       v.st.dirty);
	else
		printf("result:        sound, no dirty blocks\n");
	return 0;
}

static int cmd_dump(const char *path, bool records)
{
	struct cache_view v;
	u32 slot;
	int r = load(path, &v, false);
	bool refused;

	/* As check: a cache behind copy 0 is a problem. */
	if (r)
		return print_behind_copy0(path, &v) || v.copy0_overwritten ? 1 : r;
	print_summary(path, &v);
	refused = print_load_problems(path, &v);
	if (!records)
		return v.st.corrupt || v.st.out_of_range || refused ? 1 : 0;
	printf("slot oblock gen state\n");
	for (slot = 0; slot < v.idx.nr_slots; slot++) {
		u8 kind = pmc_slot_kind(&v.idx, slot);

		if (kind == PMC_S_FREE)
			continue;
		printf("%u %" PRIu64 " %u %s\n", slot, pmc_key_oblock(v.idx.slots[slot].key),
		       pmc_key_gen(v.idx.slots[slot].key), kind == PMC_S_DIRTY ? "dirty" : "clean");
	}
	/* The exit status of check: the listing leaves out what failed to load. */
	return v.st.corrupt || v.st.out_of_range || refused ? 1 : 0;
}

/* Does @hex (lower-case hex digits) spell the @len bytes of @id? */
static bool hex_is(const char *hex, const u8 *id, unsigned int len)
{
	unsigned int i;
	char two[3];

	if (strlen(hex) != 2 * len)
		return false;
	for (i = 0; i < len; i++) {
		snprintf(two, sizeof(two), "%02x", id[i]);
		if (strncasecmp(hex + 2 * i, two, 2))
			return false;
	}
	return true;
}

/* @s with every character that is not a hex digit taken out, in place. */
static char *hex_only(char *s)
{
	char *to = s;
	const char *from;

	for (from = s; *from; from++)
		if (isxdigit((unsigned char)*from))
			*to++ = *from;
	*to = 0;
	return s;
}

/*
 * Does the disk under @sys report @uid? A SCSI disk: its wwid
 * ("naa.5000c5...", "eui.0025...") or any logical-unit designator of its
 * VPD page 0x83 (where the module's get_unique_id looks). An NVMe
 * namespace: its NGUID ("00112233-4455-...") or its EUI-64 ("00 11 22
 * ..."), which its get_unique_id gives as an EUI-64 id (6.11 and later).
 * -1 when the disk reports no id at all: then, as in the module, the name
 * decides.
 */
static int disk_has_uid(const char *sys, const struct pmc_origin_uid *uid)
{
	static const char *const nvme_ids[] = { "nguid", "eui" };
	char line[256], path[96];
	const char *dot;
	u8 page[1024];
	int found = -1;
	size_t n, at;
	unsigned int i;
	FILE *f;

	for (i = 0; i < sizeof(nvme_ids) / sizeof(nvme_ids[0]); i++) {
		if (!sysfs_line(sys, nvme_ids[i], line, sizeof(line)))
			continue;
		found = 0;
		if (uid->type == PMC_UID_EUI64 && hex_is(hex_only(line), uid->id, uid->len))
			return 1;
	}
	if (sysfs_line(sys, "device/wwid", line, sizeof(line))) {
		found = 0;
		dot = strchr(line, '.');
		if (dot && hex_is(dot + 1, uid->id, uid->len))
			return 1;
	}
	snprintf(path, sizeof(path), "%s/device/vpd_pg83", sys);
	f = fopen(path, "rb");
	if (!f)
		return found;
	n = fread(page, 1, sizeof(page), f);
	fclose(f);
	if (n < 4)
		return found;
	found = 0;
	for (at = 4; at + 4 <= n && at + 4 + page[at + 3] <= n; at += 4 + page[at + 3])
		if (!((page[at + 1] >> 4) & 3) && (page[at + 1] & 0xf) == uid->type &&
		    page[at + 3] == uid->len && !memcmp(page + at + 4, uid->id, uid->len))
			return 1;
	return found;
}

/*
 * Does the disk under @sys (named @name) have a driver that reports ids, as
 * the module's get_unique_id? SCSI disks; NVMe namespaces from 6.11 on.
 * Such a disk reporting none, under a name recorded with an id, is another
 * disk (pmc_origin_id.uid_reportable).
 */
static bool disk_reports_uids(const char *sys, const char *name)
{
	unsigned int maj = 0, min = 0;
	struct utsname u;
	char path[96];

	snprintf(path, sizeof(path), "%s/device/scsi_disk", sys);
	if (!access(path, F_OK))
		return true;
	if (strncmp(name, "nvme", 4) || uname(&u) || sscanf(u.release, "%u.%u", &maj, &min) != 2)
		return false;
	return maj > 6 || (maj == 6 && min >= 11);
}

/*
 * Is the block device @os the origin the cache was bound to? As the module
 * decides it (pmc_meta_origin_matches): by the disk's unique id when the
 * superblock and the disk have one, else by name (a dm device's dm name, or
 * the kernel's name). @what: what @os is, for the message.
 */
static bool origin_is(const struct pmc_meta *m, const struct stat *os, char *what, size_t len)
{
	char sys[48], part[64], disk[64], link[PATH_MAX], name[PMC_ORIGIN_NAME_LEN + 8];
	char dm[256], start[32];
	const char *base;
	ssize_t l;
	int has;

	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", major(os->st_rdev), minor(os->st_rdev));
	l = readlink(sys, link, sizeof(link) - 1);
	if (l < 0) {
		snprintf(what, len, "unknown to sysfs");
		return false;
	}
	link[l] = 0;
	base = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	if (sysfs_line(sys, "dm/name", dm, sizeof(dm))) {
		pmc_origin_dm_name(dm, name, sizeof(name));
		snprintf(what, len, "%s", name);
		return !strncmp(m->origin_name, name, PMC_ORIGIN_NAME_LEN);
	}
	snprintf(name, sizeof(name), "%.*s", (int)PMC_ORIGIN_NAME_LEN, base);
	snprintf(what, len, "%s", name);
	/* A partition: the disk's id, and where the partition starts. */
	snprintf(part, sizeof(part), "%s/partition", sys);
	snprintf(disk, sizeof(disk), "%s%s", sys, access(part, F_OK) ? "" : "/..");
	if (m->origin_uid.len) {
		u64 first = sysfs_line(sys, "start", start, sizeof(start)) ?
			    strtoull(start, NULL, 10) : 0;

		has = disk_has_uid(disk, &m->origin_uid);
		if (has >= 0)
			return has && first == m->origin_uid.start;
		if (disk_reports_uids(disk, name))
			return false;
	}
	return !strncmp(m->origin_name, name, PMC_ORIGIN_NAME_LEN);
}

/*
 * Is the image file @fs the backing file of a loop device? @what: that
 * device, for the message.
 */
static bool backs_loop_device(const struct stat *fs, char *what, size_t len)
{
	char path[PATH_MAX], file[PATH_MAX];
	struct dirent *e;
	struct stat bs;
	DIR *d = opendir("/sys/block");
	bool found = false;

	/* Every loop device, not only loop0-255: losetup makes more on demand. */
	while (d && !found && (e = readdir(d))) {
		if (strncmp(e->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop", e->d_name);
		if (!sysfs_line(path, "backing_file", file, sizeof(file)))
			continue;
		found = !stat(file, &bs) && bs.st_dev == fs->st_dev && bs.st_ino == fs->st_ino;
		if (found)
			snprintf(what, len, "/dev/%s", e->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

static int cmd_rescue(const char *cache, const char *origin, bool dry_run, bool force)
{
	struct cache_view v;
	u64 written = 0, osize;
	u8 *buf;
	u32 slot, bs;
	int fd, r = load(cache, &v, false);
	char what[PATH_MAX], uid[PMC_ORIGIN_UID_STR_LEN];
	struct stat cs, os;

	if (r) {
		u8 sb[PMC_SB_SIZE];

		/*
		 * Behind a copy 0 another user wrote over, the cache is read
		 * as copy 1 describes it (in this process's private mapping):
		 * rescue writes only the origin. Behind a zero one, a reset,
		 * it says how to bring the cache back first.
		 */
		if (!v.copy0_overwritten || load_behind_copy0(&v, sb) != PMC_COPY0_HIDES_CACHE) {
			print_behind_copy0(cache, &v);
			return r;
		}
		fprintf(stderr,
			"%s: superblock copy 0 is overwritten by other data: rescuing the cache\n"
			"copy 1 describes\n", cache);
		r = 0;
	}
	/* O_EXCL: not under a live table (a block device in use is EBUSY). */
	fd = open_dev_or_file(origin, dry_run ? O_RDONLY : O_WRONLY | O_EXCL);
	if (fd < 0) {
		if (errno != EINVAL)
			open_failed(origin);
		return 2;
	}
	if (fstat(fd, &os)) {
		perror(origin);
		close(fd);
		return 2;
	}
	/* The module refuses this pairing too: the blocks would land in the cache. */
	if (!stat(cache, &cs) &&
	    (S_ISBLK(cs.st_mode) && S_ISBLK(os.st_mode) ? cs.st_rdev == os.st_rdev :
	     cs.st_dev == os.st_dev && cs.st_ino == os.st_ino)) {
		fprintf(stderr, "%s is the cache device itself; refusing\n", origin);
		close(fd);
		return 2;
	}
	/*
	 * O_EXCL guards a block device only: a file that backs a loop device
	 * may be the origin of a live table under the loop device's name.
	 */
	if (S_ISREG(os.st_mode) && !dry_run && backs_loop_device(&os, what, sizeof(what))) {
		fprintf(stderr, "%s backs %s: rescue to that device (refused under a live table)\n",
			origin, what);
		close(fd);
		return 2;
	}
	if (S_ISBLK(os.st_mode) && !origin_is(&v.meta, &os, what, sizeof(what))) {
		pmc_origin_uid_str(&v.meta.origin_uid, uid, sizeof(uid));
		fprintf(stderr, "%s is %s, but the cache belongs to %s%s%s; %s\n", origin, what,
			v.meta.origin_name, *uid ? ", disk " : "", uid,
			force ? "writing there as --force says" :
			"refusing (--force writes there anyway)");
		if (!force) {
			close(fd);
			return 2;
		}
	}
	osize = dev_size(fd);
	/*
	 * Grown since (lvextend), it is the same origin, as the module decides.
	 * In sectors: a damaged size shifted to bytes could wrap to a small one.
	 */
	if (osize >> 9 < v.meta.origin_sectors) {
		fprintf(stderr, "%s: %" PRIu64 " sectors, but the cache belongs to an origin of %"
			PRIu64 " sectors (%s); refusing\n", origin, osize >> 9,
			v.meta.origin_sectors, v.meta.origin_name);
		close(fd);
		return 2;
	}
	/*
	 * Pages of the origin read before the table used it may be stale: a
	 * block smaller than a page would be written back with them.
	 */
	if (S_ISBLK(os.st_mode) && !dry_run)
		ioctl(fd, BLKFLSBUF, 0);
	bs = v.meta.geo.block_size;
	buf = aligned_alloc(4096, PMC_MAX_BLOCK_SIZE);
	if (!buf) {
		fprintf(stderr, "out of memory\n");
		close(fd);
		return 2;
	}
	if (v.st.corrupt || v.st.out_of_range) {
		fprintf(stderr, "%" PRIu64 " corrupt and %" PRIu64
			" out-of-range records: what they held cannot be rescued\n",
			v.st.corrupt, v.st.out_of_range);
		r = 1;
	}
	for (slot = 0; slot < v.idx.nr_slots; slot++) {
		u64 oblock;

		if (pmc_slot_kind(&v.idx, slot) != PMC_S_DIRTY)
			continue;
		oblock = pmc_key_oblock(v.idx.slots[slot].key);
		if (pmc_pmem_read(buf, pmc_block_data(&v.meta, slot), bs)) {
			fprintf(stderr, "media error reading block %" PRIu64 "\n", oblock);
			r = 1;
			continue;
		}
		if (!dry_run && pwrite(fd, buf, bs, (off_t)(oblock * bs)) != (ssize_t)bs) {
			perror("write to origin");
			r = 1;
			continue;
		}
		written++;
	}
	if (!dry_run && fsync(fd)) {
		perror("fsync origin");
		r = 1;
	}
	close(fd);
	free(buf);
	printf("%s %" PRIu64 " dirty blocks of %u bytes to %s\n",
	       dry_run ? "would write" : "wrote", written, bs, origin);
	fflush(stdout);
	if (!dry_run && written)
		fprintf(stderr,
			"the cache still holds these blocks, dirty: before %s is written without\n"
			"the cache, run \"pmcache-tool wipe %s --force\", or a later dmsetup create\n"
			"writes them back over newer data\n", origin, cache);
	return r;
}

/*
 * Is the cache bound to @origin (its disk id or name, and a size not
 * smaller), or blank? For pmcache-assemble, before it creates a device at
 * boot: a cache device of another origin there means that the names in
 * its table file changed, and the module would take that cache over (its
 * clean copies dropped) while this origin's own cache, dirty maybe, waits
 * under another name. Reads the superblock only.
 */
static int cmd_belongs(const char *cache, const char *origin)
{
	char what[PATH_MAX], uid[PMC_ORIGIN_UID_STR_LEN];
	struct cache_view v;
	struct stat os;
	u64 osize;
	int fd, r = map_probe(cache, &v, true);

	/* Blank is anyone's, unless it hides dirty blocks the create would drop. */
	if (r) {
		if (print_behind_copy0(cache, &v))
			return 1;
		return v.probed && v.probe == PMC_PROBE_BLANK ? 0 : r;
	}
	fd = open_dev_or_file(origin, O_RDONLY);
	if (fd < 0) {
		if (errno != EINVAL)
			perror(origin);
		return 2;
	}
	if (fstat(fd, &os) || !S_ISBLK(os.st_mode)) {
		fprintf(stderr, "%s: not a block device\n", origin);
		close(fd);
		return 2;
	}
	osize = dev_size(fd);
	close(fd);
	if (origin_is(&v.meta, &os, what, sizeof(what)) && osize >> 9 >= v.meta.origin_sectors)
		return 0;
	pmc_origin_uid_str(&v.meta.origin_uid, uid, sizeof(uid));
	fprintf(stderr, "%s holds the cache of %s (%" PRIu64 " sectors%s%s), not of %s (%s, %"
		PRIu64 " sectors)\n", cache, v.meta.origin_name, v.meta.origin_sectors,
		*uid ? ", disk " : "", uid, origin, what, osize >> 9);
	return 1;
}

struct zero_range {
	int fd;
	int err;
};

static void zero_range(u64 start, u64 len, void *arg)
{
	static const u8 zero[PMC_SB_SIZE * PMC_SB_COPIES];
	struct zero_range *z = arg;

	while (len && !z->err) {
		size_t n = min_t(u64, len, sizeof(zero));

		if (pwrite(z->fd, zero, n, start) != (ssize_t)n)
			z->err = errno ? errno : EIO;
		start += n;
		len -= n;
	}
}

/*
 * Make the cache blank: both superblock copies zero, and every place the
 * probe looks for another format's signature, so that the next load formats
 * it.
 */
static int cmd_wipe(const char *cache, bool force)
{
	struct zero_range z = { .err = 0 };
	struct cache_view v;
	u64 size, copy0;
	int r;

	/*
	 * O_EXCL first, and held while it decides: no live table uses the
	 * device, and none can start using it between the look and the wipe.
	 */
	z.fd = open_dev(cache, O_WRONLY | O_EXCL, &size);
	if (z.fd < 0)
		return 2;
	r = load(cache, &v, true);
	if (!v.probed) {
		r = 2;	/* not there, not a device, too small: said why */
		goto out;
	}
	if (v.copy0_overwritten && !force) {
		u8 sb[PMC_SB_SIZE];

		/* Another user's now: not to be zeroed unless forced. */
		if (load_behind_copy0(&v, sb) == PMC_COPY0_HIDES_CACHE)
			fprintf(stderr,
				"%s: copy 1 holds the cache of %s, %" PRIu64
				" dirty blocks: rescue them first\n",
				cache, v.meta.origin_name, v.st.dirty);
		fprintf(stderr,
			"%s: superblock copy 0 overwritten by other data: another user may own\n"
			"the device now; pass --force to zero its superblocks and signatures anyway\n",
			cache);
		r = 2;
		goto out;
	}
	if (v.probe == PMC_PROBE_BLANK) {
		u8 sb[PMC_SB_SIZE];

		/* A cache behind a zero copy 0 is wiped as any: its dirty blocks need --force. */
		if (load_behind_copy0(&v, sb) != PMC_COPY0_HIDES_CACHE) {
			printf("%s is blank already: the next dmsetup create formats it\n", cache);
			r = 0;
			goto out;
		}
		r = 0;
	}
	if (r == 2 && !force) {
		/* load() said what it found: another format, or a damaged cache. */
		fprintf(stderr,
			"%s: %s; pass --force to zero its superblocks and signatures anyway\n",
			cache, v.probe == PMC_PROBE_FOREIGN ? "not a pmcache device" :
			"not loadable, but it may be a pmcache device holding dirty blocks");
		goto out;
	}
	if (!r && (v.st.corrupt || v.st.out_of_range) && !force) {
		/* The module drops them at load; what they held may have been dirty. */
		fprintf(stderr,
			"%s holds %" PRIu64 " records that fail their checksum or cannot be read\n"
			"and %" PRIu64 " out of the origin's range, which may have held dirty\n"
			"blocks: rescue what can be first; --force wipes\n",
			cache, v.st.corrupt, v.st.out_of_range);
		r = 1;
		goto out;
	}
	if (!r && v.st.dirty && !force) {
		fprintf(stderr,
			"%s holds %" PRIu64 " dirty blocks: rescue them first; --force loses them\n",
			cache, v.st.dirty);
		r = 1;
		goto out;
	}
	/*
	 * Copy 0 first, and durable before anything else: zero, it makes the
	 * device blank; torn, copy 1 still loads the whole cache. Zeroed
	 * before it, a record or a block in the data area (where signatures
	 * are looked for) would be lost from a cache that still loads.
	 */
	/*
	 * Its magic last: torn, copy 0 keeps it and reads as damaged, never
	 * as another user's data over copy 1 (which still loads).
	 */
	copy0 = min_t(u64, size, PMC_SB_SIZE);
	if (copy0 > sizeof(__le64))
		zero_range(sizeof(__le64), copy0 - sizeof(__le64), &z);
	if (!z.err && fsync(z.fd))
		z.err = errno;
	if (!z.err)
		zero_range(0, min_t(u64, copy0, sizeof(__le64)), &z);
	if (!z.err && fsync(z.fd))
		z.err = errno;
	if (!z.err)
		pmc_meta_blank_ranges(size, zero_range, &z);
	if (z.err || fsync(z.fd)) {
		fprintf(stderr, "%s: %s\n", cache, strerror(z.err ? z.err : errno));
		r = 1;
		goto out;
	}
	printf("wiped %s: the next dmsetup create formats it\n", cache);
	r = 0;
out:
	close(z.fd);
	return r;
}

/*
 * Rewrite a superblock copy from the other, sound one: one that a media error
 * makes unreadable (the write clears the error, as any write through the
 * block device does), one that fails its checksum, or an older one. A zeroed
 * copy 0 is a reset (the next dmsetup create formats the device) unless a
 * media error there was cleared with zeros: only with @force is the cache
 * copy 1 describes brought back. Only the copy's own 4 KiB are written.
 */
static int cmd_repair(const char *cache, bool force)
{
	u8 sb[PMC_SB_SIZE];
	struct cache_view v;
	enum pmc_copy0 behind;
	unsigned int good;
	ssize_t n;
	u64 size;
	int fd, r;

	/* O_EXCL, as wipe: no live table uses the device while it is written. */
	fd = open_dev(cache, O_WRONLY | O_EXCL, &size);
	if (fd < 0)
		return 2;
	r = map_probe(cache, &v, true);
	if (!v.probed) {
		r = 2;
		goto out;
	}
	behind = load_behind_copy0(&v, sb);
	if (behind == PMC_COPY0_HIDES_UNREADABLE) {
		fprintf(stderr, "%s: superblock copy 0 %s, copy 1 unreadable: %s\n", cache,
			copy0_state(&v), "nothing to repair from");
		r = 2;
		goto out;
	} else if (behind == PMC_COPY0_HIDES_NOTHING) {
		printf("%s is blank (copy 0 zero, no sound copy 1): nothing to repair\n", cache);
		r = 0;
		goto out;
	} else if (behind == PMC_COPY0_HIDES_CACHE) {
		good = 1;
		printf("%s: superblock copy 0 %s; copy 1 is the cache of %s (%" PRIu64
		       " blocks used, %" PRIu64 " dirty)\n", cache, copy0_state(&v),
		       v.meta.origin_name, v.st.used, v.st.dirty);
		if (!force && v.copy0_overwritten) {
			fprintf(stderr,
				"%s: another user of the device wrote over copy 0 (a partition table,\n"
				"mkswap, mkfs?) and may own it now; pass --force to bring the cache back\n"
				"over what was written (not if the origin was written on its own since:\n"
				"its copies are stale; rescue the dirty blocks instead)\n", cache);
			r = 1;
			goto out;
		}
		if (!force) {
			fprintf(stderr,
				"%s: a zero copy 0 resets the cache (the next dmsetup create formats it);\n"
				"if it was zeroed to clear a media error, pass --force to bring the cache\n"
				"back (not if the origin was written on its own since: its copies are stale)\n",
				cache);
			r = 1;
			goto out;
		}
	} else if (r) {
		/* map_probe said why: no copy is sound, or it is no cache. */
		goto out;
	} else if (v.meta.sb_copies_same) {
		printf("%s: both superblock copies are sound, nothing to repair\n", cache);
		goto out;
	} else {
		good = v.meta.sb_copy;
		if (pmc_pmem_read(sb, v.map + good * PMC_SB_SIZE, PMC_SB_SIZE)) {
			fprintf(stderr, "%s: superblock copy %u unreadable\n", cache, good);
			r = 2;
			goto out;
		}
	}
	/* The probe let them pass for reading; this writes. */
	if (le32_to_cpu(((struct pmc_sb *)sb)->ro_compat_flags) & ~PMC_RO_COMPAT_SUPP) {
		fprintf(stderr, "%s: the cache has features this version must not write\n", cache);
		r = 2;
		goto out;
	}
	n = pwrite(fd, sb, sizeof(sb), (off_t)!good * PMC_SB_SIZE);
	if (n != (ssize_t)sizeof(sb) || fsync(fd)) {
		fprintf(stderr, "%s: writing superblock copy %u: %s\n", cache, !good,
			n >= 0 && n != (ssize_t)sizeof(sb) ? "short write" : strerror(errno));
		r = 1;
		goto out;
	}
	printf("%s: superblock copy %u rewritten from copy %u (a cache of %s, seq %llu)\n",
	       cache, !good, good, v.meta.origin_name, (unsigned long long)v.meta.sb_seq);
	r = 0;
out:
	close(fd);
	return r;
}

static int usage(FILE *to, int status)
{
	fprintf(to,
		"usage: pmcache-tool check  <cache dev|image>\n"
		"       pmcache-tool dump   <cache dev|image> [--records]\n"
		"       pmcache-tool rescue <cache dev|image> <origin dev|image> [--dry-run] [--force]\n"
		"       pmcache-tool wipe   <cache dev|image> [--force]\n"
		"       pmcache-tool repair <cache dev|image> [--force]\n"
		"       pmcache-tool belongs <cache dev> <origin dev>\n"
		"\n"
		"Offline: not on a cache a live dm table uses.\n"
		"  check   load the cache as the module would and report what it holds,\n"
		"          and what would stop the module loading it (bad sectors the\n"
		"          kernel lists in the device, features it does not know)\n"
		"  dump    the same summary; --records lists every cached block\n"
		"  rescue  write the newest copy of every dirty block to the origin\n"
		"          (--dry-run: read and count them, write nothing, naming the\n"
		"          blocks media errors make unreadable: check reads no data);\n"
		"          the cache keeps them; refuses a device that is not the\n"
		"          cache's origin (by its disk id or name, as the module\n"
		"          checks) without --force\n"
		"  wipe    make the device blank, so that the next dmsetup create formats\n"
		"          it; refuses dirty blocks, damaged records or another format\n"
		"          without --force\n"
		"  repair  rewrite a superblock copy from the other, sound one: one a\n"
		"          media error makes unreadable (the write clears it), a damaged\n"
		"          or an older one; a zeroed copy 0 (a reset: the next dmsetup\n"
		"          create formats the device) only with --force, after a media\n"
		"          error there was cleared with zeros\n"
		"  belongs exit 0 if the cache is bound to that origin (as the module\n"
		"          decides: its disk id or name, and a size not smaller) or\n"
		"          blank, 1 if bound to another (named) or if a zero copy 0\n"
		"          hides a cache with dirty blocks (the create would format it),\n"
		"          2 if not a cache\n"
		"\n"
		"Exit status: 0 sound or done, 1 problems found or dirty blocks in the way,\n"
		"2 not a usable pmcache device, or wrong arguments.\n");
	return status;
}

/* What each command takes: its devices, and the options it knows. */
static const struct command {
	const char *name;
	int devices;
	const char *options[2];
} commands[] = {
	{ "check", 1, { NULL } },
	{ "dump", 1, { "--records" } },
	{ "rescue", 2, { "--dry-run", "--force" } },
	{ "repair", 1, { "--force" } },
	{ "belongs", 2, { NULL } },
	{ "wipe", 1, { "--force" } },
};

/* The bit of @opt among @c's options, or 0. */
static unsigned int command_option(const struct command *c, const char *opt)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(c->options) && c->options[i]; i++)
		if (!strcmp(opt, c->options[i]))
			return 1u << i;
	return 0;
}

int main(int argc, char **argv)
{
	const struct command *c = NULL;
	const char *dev[2] = { NULL, NULL };
	unsigned int opts = 0, bit, i;
	int ndev = 0, a;

	/* A media error in the mapped device: -EIO from the reads, not a crash. */
	pmc_pmem_catch_media_errors(retry_read);
	if (argc < 2)
		return usage(stderr, 2);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
		return usage(stdout, 0);
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			c = &commands[i];
	if (!c) {
		fprintf(stderr, "pmcache-tool: no command %s (--help)\n", argv[1]);
		return 2;
	}
	/* Options anywhere after the command, each once. */
	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h"))
			return usage(stdout, 0);
		if (argv[a][0] == '-' && argv[a][1] == '-') {
			bit = command_option(c, argv[a]);
			if (!bit || (opts & bit)) {
				fprintf(stderr, "pmcache-tool %s: %s %s (--help)\n", c->name,
					bit ? "twice:" : "no option", argv[a]);
				return 2;
			}
			opts |= bit;
		} else if (ndev < c->devices) {
			dev[ndev++] = argv[a];
		} else {
			fprintf(stderr, "pmcache-tool %s: one device too many: %s (--help)\n",
				c->name, argv[a]);
			return 2;
		}
	}
	if (ndev < c->devices) {
		fprintf(stderr, "pmcache-tool %s: wants %s (--help)\n", c->name,
			c->devices == 1 ? "a cache device" : "a cache device and an origin");
		return 2;
	}
	if (!strcmp(c->name, "check"))
		return cmd_check(dev[0]);
	if (!strcmp(c->name, "dump"))
		return cmd_dump(dev[0], opts & 1);
	if (!strcmp(c->name, "rescue"))
		return cmd_rescue(dev[0], dev[1], opts & 1, opts & 2);
	if (!strcmp(c->name, "repair"))
		return cmd_repair(dev[0], opts & 1);
	if (!strcmp(c->name, "belongs"))
		return cmd_belongs(dev[0], dev[1]);
	return cmd_wipe(dev[0], opts & 1);
}

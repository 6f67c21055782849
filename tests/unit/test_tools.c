// SPDX-License-Identifier: GPL-2.0
/*
 * tools/pmcache-tool against cache images made with the module's own format
 * code: check finds clean, corrupt and foreign devices; dump lists the
 * blocks; rescue writes exactly the newest dirty copies to the origin and
 * refuses an origin of the wrong size; wipe makes a cache blank, but not one
 * holding dirty blocks or something else unless forced; repair rewrites a
 * damaged or zeroed superblock copy from the other.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pmcache_meta.h"
#include "pmcache_pmem.h"

#define TOOL "../../tools/pmcache-tool"
#define PMEM_SIZE (4u << 20)
#define BS 4096u
#define ORIGIN_SECTORS 8192u	/* 4 MiB */

static int failures;

static void ok(bool cond, const char *what)
{
	printf("%s %s\n", cond ? "ok" : "not ok", what);
	if (!cond)
		failures++;
}

static int run(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void fill(u8 *buf, u64 oblock, u32 version)
{
	u32 i;

	for (i = 0; i < BS; i++)
		buf[i] = (u8)(oblock * 31 + version * 7 + i);
}

/* Write a block into @slot and commit it, as the module's write path does. */
static void put(struct pmc_meta *m, u32 slot, u64 oblock, u16 gen, u32 version, bool dirty)
{
	u8 buf[BS];

	fill(buf, oblock, version);
	pmc_pmem_copy(pmc_block_data(m, slot), buf, BS);
	pmc_rec_commit(m, slot, pmc_key_make(oblock, gen), dirty);
}

static u8 *make_image(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	u8 *map;

	if (fd < 0 || ftruncate(fd, PMEM_SIZE))
		exit(2);
	map = mmap(NULL, PMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return map == MAP_FAILED ? NULL : map;
}

/* An origin image of @sectors, all zero. */
static void make_origin(const char *path, u64 sectors)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)(sectors * 512)))
		exit(2);
	close(fd);
}

/* Attach @path to a free loop device, named into @lo; false if none. */
static bool loop_attach(const char *path, char *lo, size_t len)
{
	char cmd[256];
	bool got;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "losetup -f --show %s", path);
	p = popen(cmd, "r");
	if (!p)
		return false;
	got = fgets(lo, (int)len, p);
	pclose(p);
	if (!got)
		return false;
	lo[strcspn(lo, "\n")] = 0;
	return *lo;
}

/*
 * A cache image holding one dirty block (10), its first sector zeroed: a
 * media error there cleared with a write of zeros. Still mapped.
 */
static u8 *image_with_sector0_zeroed(const char *path, struct pmc_meta *m,
				     const struct pmc_origin_id *oid, const u8 *uuid)
{
	u8 *map = make_image(path);

	if (!map || pmc_meta_format(m, map, PMEM_SIZE, BS, oid, uuid, 0))
		exit(2);
	put(m, 0, 10, 0, 1, true);
	memset(map, 0, 512);
	return map;
}

static bool origin_block_is(const char *path, u64 oblock, int version)
{
	u8 want[BS], got[BS];
	int fd = open(path, O_RDONLY);
	bool same;

	if (fd < 0 || pread(fd, got, BS, oblock * BS) != BS)
		return false;
	close(fd);
	if (version < 0)
		memset(want, 0, BS);
	else
		fill(want, oblock, version);
	same = !memcmp(want, got, BS);
	return same;
}

/*
 * rescue knows an NVMe origin by its NGUID or EUI-64, as the module does
 * (6.11 and later), whatever its name. Needs root, unshare and losetup: a
 * loop device stands for the disk, and a sysfs of its own (a tmpfs over
 * /sys/dev/block, in a mount namespace of its own) gives it a name and ids.
 */
static void test_nvme_ids(const char *dir)
{
	struct pmc_origin_id oid = {
		.sectors = ORIGIN_SECTORS, .name = "nvme0n1",
		.uid = { .type = PMC_UID_EUI64, .len = 16,
			 .id = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff } },
	};
	/* NAME NGUID-or-EUI FILE VALUE: rescue to the loop device under that sysfs. */
	static const char *const rescue_as =
		"unshare -m sh -c 'mount --make-rprivate / && mount -t tmpfs none /sys/dev/block &&"
		" d=%s/sys.$$/%s && mkdir -p $d && echo \"%s\" > $d/%s &&"
		" ln -s $d /sys/dev/block/$((0x$(stat -c %%t %s))):$((0x$(stat -c %%T %s))) &&"
		" " TOOL " rescue %s %s' >/dev/null 2>&1";
	char img[160], org[160], lo[64] = "";
	u8 uuid[16] = { 4, 5, 6 };
	struct pmc_meta m;
	u8 *map;

	if (geteuid() || run("unshare -m true && losetup -f >/dev/null") != 0) {
		printf("ok # skip NVMe ids: not root, or no mount namespace or loop device here\n");
		return;
	}
	snprintf(img, sizeof(img), "%s/nvme-cache.img", dir);
	snprintf(org, sizeof(org), "%s/nvme-origin.img", dir);
	map = make_image(img);
	if (!map || pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0))
		exit(2);
	put(&m, 0, 10, 0, 3, true);
	munmap(map, PMEM_SIZE);
	make_origin(org, ORIGIN_SECTORS);
	if (!loop_attach(org, lo, sizeof(lo))) {
		ok(false, "NVMe ids: losetup");
		return;
	}
	ok(run(rescue_as, dir, "nvme0n1", "00112233-4455-6677-8899-aabbccddeef0", "nguid", lo, lo,
	       img, lo) == 2 && origin_block_is(org, 10, -1),
	   "rescue: an NVMe disk under the cache's origin name with another NGUID is refused");
	ok(run(rescue_as, dir, "nvme1n1", "00112233-4455-6677-8899-aabbccddeeff", "nguid", lo, lo,
	       img, lo) == 0 && origin_block_is(org, 10, 3),
	   "rescue: the cache's NVMe disk under another name is known by its NGUID");

	/* A namespace without an NGUID: its EUI-64, 8 bytes. */
	oid.uid.len = 8;
	map = make_image(img);
	if (!map || pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0))
		exit(2);
	put(&m, 0, 11, 0, 4, true);
	munmap(map, PMEM_SIZE);
	ok(run(rescue_as, dir, "nvme0n1", "00 11 22 33 44 55 66 70", "eui", lo, lo, img, lo) == 2 &&
	   origin_block_is(org, 11, -1),
	   "rescue: an NVMe disk under the cache's origin name with another EUI-64 is refused");
	ok(run(rescue_as, dir, "nvme2n1", "00 11 22 33 44 55 66 77", "eui", lo, lo, img, lo) == 0 &&
	   origin_block_is(org, 11, 4),
	   "rescue: the cache's NVMe disk under another name is known by its EUI-64");
	run("losetup -d %s", lo);
}

/*
 * check names the bad sectors the kernel lists in the cache device, whose
 * mapping DAX refuses: the module cannot load it. A loop device of the
 * image stands for the pmem, a sysfs of its own lists them: as a disk, then
 * as a partition starting at sector 2048 of a disk whose list is shifted.
 */
static void test_bad_sectors(const char *dir)
{
	/* LAYOUT CHECK-ARGS: check the loop device under that sysfs. */
	static const char *const check_as =
		"unshare -m sh -c 'mount --make-rprivate / && mount -t tmpfs none /sys/dev/block &&"
		" d=%s/sys.$$ && mkdir -p $d/part && %s &&"
		" ln -s $d/%s /sys/dev/block/$((0x$(stat -c %%t %s))):$((0x$(stat -c %%T %s))) &&"
		" " TOOL " check %s' %s";
	struct pmc_origin_id oid = { .sectors = ORIGIN_SECTORS, .name = "vdb" };
	char img[160], lo[64] = "";
	u8 uuid[16] = { 7 };
	struct pmc_meta m;
	u8 *map;

	if (geteuid() || run("unshare -m true") != 0) {
		printf("ok # skip bad sectors: not root, or no mount namespace here\n");
		return;
	}
	snprintf(img, sizeof(img), "%s/bad-sectors.img", dir);
	map = make_image(img);
	if (!map || pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0))
		exit(2);
	put(&m, 0, 10, 0, 3, true);
	munmap(map, PMEM_SIZE);
	if (!loop_attach(img, lo, sizeof(lo))) {
		printf("ok # skip bad sectors: no loop device here\n");
		return;
	}
	ok(run(check_as, dir, "echo > $d/badblocks", "", lo, lo, lo, "| grep -q 'result: *sound'")
	   == 0, "check: a cache device with an empty bad-sector list is sound");
	ok(run(check_as, dir, "echo 4096 8 > $d/badblocks", "", lo, lo, lo, ">/dev/null") == 1 &&
	   run(check_as, dir, "echo 4096 8 > $d/badblocks", "", lo, lo, lo,
	       "| grep -q '8 at sector 4096 of the cache (bytes 2097152-2101247)'") == 0,
	   "check: bad sectors in the cache device are named, exit 1 (the module cannot map it)");
	ok(run(check_as, dir,
	       "printf \"100 8\\n2040 10\\n\" > $d/badblocks && echo 1 > $d/part/partition &&"
	       " echo 2048 > $d/part/start", "part", lo, lo, lo,
	       "| grep -c '^bad sectors' | grep -qx 1") == 0 &&
	   run(check_as, dir,
	       "printf \"100 8\\n2040 10\\n\" > $d/badblocks && echo 1 > $d/part/partition &&"
	       " echo 2048 > $d/part/start", "part", lo, lo, lo,
	       "| grep -q '2 at sector 0 of the cache (bytes 0-1023)'") == 0,
	   "check: a partition's bad sectors are its disk's, shifted by its start, cut at it");
	run("losetup -d %s", lo);
}

/*
 * A sector that fails every read, as a media error does (dm's error target
 * over it, a loop device of the image around it): the mapping fails its
 * whole page, and the tool reads the page's other sectors on their own.
 * A bad sector among the records loses its 32 records, not the page's 256;
 * one in superblock copy 1 leaves copy 0 in use.
 */
static void test_unreadable_sector(const char *dir)
{
	/* The image's loop device, but for one sector that fails every read. */
	static const char *const table =
		"printf '0 %u linear %s 0\\n%u 1 error\\n%u %u linear %s %u\\n' |"
		" dmsetup create pmcache-tool-bad";
	struct pmc_origin_id oid = { .sectors = ORIGIN_SECTORS, .name = "vdb" };
	char img[160], org[160], lo[64] = "";
	u8 uuid[16] = { 8 };
	struct pmc_meta m;
	unsigned int i;
	u8 *map;

	if (geteuid() || run("dmsetup version >/dev/null 2>&1") != 0) {
		printf("ok # skip unreadable sector: not root, or no dmsetup here\n");
		return;
	}
	snprintf(img, sizeof(img), "%s/bad-sector.img", dir);
	snprintf(org, sizeof(org), "%s/bad-sector-origin.img", dir);
	map = make_image(img);
	if (!map || pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0))
		exit(2);
	/* Slots 0-39: records in sectors 16 and 17, of page 2 (sectors 16-23). */
	for (i = 0; i < 40; i++)
		put(&m, i, 100 + i, 0, 1, true);
	munmap(map, PMEM_SIZE);
	make_origin(org, ORIGIN_SECTORS);
	if (!loop_attach(img, lo, sizeof(lo))) {
		printf("ok # skip unreadable sector: no loop device here\n");
		return;
	}
	run("dmsetup remove pmcache-tool-bad 2>/dev/null");
	ok(run(table, 18, lo, 18, 19, PMEM_SIZE / 512 - 19, lo, 19) == 0 &&
	   run(TOOL " rescue /dev/mapper/pmcache-tool-bad %s 2>&1 | grep -q '^wrote 40 dirty'",
	       org) == 0 &&
	   run(TOOL " rescue /dev/mapper/pmcache-tool-bad %s >/dev/null 2>&1", org) == 1 &&
	   origin_block_is(org, 100, 1) && origin_block_is(org, 139, 1),
	   "rescue: a bad sector among the records loses those 32 records, not their page's");
	run("dmsetup remove pmcache-tool-bad");
	ok(run(table, 8, lo, 8, 9, PMEM_SIZE / 512 - 9, lo, 9) == 0 &&
	   run(TOOL " check /dev/mapper/pmcache-tool-bad 2>&1 | grep -q '40 dirty blocks not on'")
	   == 0 &&
	   run(TOOL " check /dev/mapper/pmcache-tool-bad 2>&1 | grep -q 'copy 1 is damaged'") == 0,
	   "check: a bad sector in superblock copy 1 leaves copy 0 in use, noted");
	run("dmsetup remove pmcache-tool-bad");
	run("losetup -d %s", lo);
}

int main(void)
{
	char dir[] = "/tmp/pmcache-tool-test.XXXXXX", img[128], org[128], bad[128];
	struct pmc_origin_id oid = { .sectors = ORIGIN_SECTORS, .name = "vdb" };
	u8 uuid[16] = { 1, 2, 3 };
	struct pmc_meta m;
	u8 *map;
	int fd;

	if (!mkdtemp(dir))
		return 2;
	snprintf(img, sizeof(img), "%s/cache.img", dir);
	snprintf(org, sizeof(org), "%s/origin.img", dir);
	snprintf(bad, sizeof(bad), "%s/small-origin.img", dir);

	map = make_image(img);
	if (!map || pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0))
		return 2;
	put(&m, 0, 10, 0, 1, true);		/* block 10, dirty */
	put(&m, 1, 11, 0, 1, false);		/* block 11, clean */
	put(&m, 2, 12, 4, 1, true);		/* block 12: older copy... */
	put(&m, 3, 12, 5, 2, true);		/* ...and the newer one */
	put(&m, 4, 13, 0, 1, true);		/* block 13, dirty */
	munmap(map, PMEM_SIZE);

	make_origin(org, ORIGIN_SECTORS);
	make_origin(bad, ORIGIN_SECTORS / 2);

	ok(run(TOOL " check %s >/dev/null", img) == 0, "check: a clean cache exits 0");
	ok(run(TOOL " dump %s --records | grep -q '^3 12 5 dirty$'", img) == 0,
	   "dump: lists the newest copy of a duplicated block");
	ok(run(TOOL " dump %s --records | grep -q '^2 12 '", img) != 0,
	   "dump: not the older copy");
	ok(run(TOOL " check %s | grep -q '4 used, 3 dirty'", img) == 0,
	   "check: counts used and dirty blocks");
	ok(run(TOOL " rescue %s %s >/dev/null 2>&1", img, bad) == 2,
	   "rescue: refuses an origin smaller than the recorded one");
	ok(run(TOOL " rescue %s %s --dry-run | grep -q 'would write 3 '", img, org) == 0,
	   "rescue --dry-run: counts the dirty blocks");
	ok(origin_block_is(org, 10, -1), "rescue --dry-run: writes nothing");
	ok(run(TOOL " rescue %s %s >/dev/null", img, org) == 0, "rescue: exits 0");
	ok(origin_block_is(org, 10, 1) && origin_block_is(org, 12, 2) &&
	   origin_block_is(org, 13, 1), "rescue: the origin holds the newest dirty data");
	ok(origin_block_is(org, 11, -1), "rescue: clean blocks are left alone");
	ok(run(TOOL " check %s | grep -q '4 used, 3 dirty'", img) == 0,
	   "rescue: the cache itself is unchanged");
	ok(run(TOOL " rescue %s %s 2>&1 >/dev/null | grep -q 'pmcache-tool wipe'", img, org) == 0,
	   "rescue: says to wipe the cache before the origin is written alone");
	ok(run(TOOL " rescue %s %s >/dev/null 2>&1", img, img) == 2,
	   "rescue: refuses the cache itself as the origin");
	ok(run(TOOL " dump %s --record >/dev/null 2>&1", img) == 2 &&
	   run(TOOL " wipe %s --forse >/dev/null 2>&1", img) == 2,
	   "a misspelt option is bad usage, not ignored");
	ok(run(TOOL " --help | grep -q 'Exit status'") == 0, "--help: usage on stdout, exit 0");
	ok(run(TOOL " rescue --dry-run %s %s >/dev/null 2>&1", img, org) == 0 &&
	   run(TOOL " dump --records %s | grep -q '^3 12 5 dirty$'", img) == 0,
	   "options before the devices are taken as after them");
	ok(run(TOOL " wipe --force 2>&1 | grep -q 'wants a cache device'") == 0 &&
	   run(TOOL " check %s %s 2>&1 | grep -q 'one device too many'", img, img) == 0 &&
	   run(TOOL " dump %s --records --records 2>&1 | grep -q 'twice'", img) == 0,
	   "bad usage says what is wrong");
	ok(run(TOOL " belongs %s %s 2>&1 | grep -q 'not a block device'", img, org) == 0 &&
	   run(TOOL " belongs %s %s >/dev/null 2>&1", img, org) == 2,
	   "belongs: an origin that is no block device exits 2, named (the VM tests the rest)");
	ok(run(TOOL " wipe %s >/dev/null 2>&1", img) == 1,
	   "wipe: refuses a cache holding dirty blocks");
	ok(run(TOOL " check %s | grep -q '4 used, 3 dirty'", img) == 0,
	   "wipe: the refused cache is unchanged");
	ok(run(TOOL " wipe %s --force >/dev/null", img) == 0, "wipe --force: exits 0");
	ok(run(TOOL " check %s 2>&1 | grep -q 'blank'", img) == 0,
	   "wipe --force: the cache is blank (the next dmsetup create formats it)");
	ok(run(TOOL " wipe %s | grep -q 'blank already'", img) == 0,
	   "wipe: a blank device is nothing to do, exit 0");

	/* A record failing its checksum may have held a dirty block. */
	map = make_image(img);
	if (!map || pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0))
		return 2;
	put(&m, 0, 10, 0, 1, false);
	put(&m, 1, 11, 0, 1, false);
	m.recs[1].commit ^= cpu_to_le64(1ULL << 40);
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " wipe %s >/dev/null 2>&1", img) == 1 &&
	   run(TOOL " check %s | grep -q '1 corrupt'", img) == 0,
	   "wipe: refuses a cache with a damaged record, and leaves it");
	ok(run(TOOL " dump %s >/dev/null", img) == 1 &&
	   run(TOOL " dump %s --records >/dev/null", img) == 1,
	   "dump: exits 1 on a damaged record, as check does");
	ok(run(TOOL " wipe %s --force >/dev/null", img) == 0, "wipe --force: wipes it");

	/* A record beyond the origin's end may have held a dirty block too. */
	map = make_image(img);
	if (!map || pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0))
		return 2;
	put(&m, 0, 10, 0, 1, false);
	put(&m, 1, ORIGIN_SECTORS / 8 + 5, 0, 1, true);
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " check %s | grep -q '1 out of range'", img) == 0 &&
	   run(TOOL " wipe %s 2>&1 | grep -q '1 out of the origin'", img) == 0 &&
	   run(TOOL " check %s >/dev/null", img) == 1,
	   "wipe: refuses a cache with a record beyond the origin, and leaves it");

	/* A recorded size so large that in bytes it wraps to a small one. */
	{
		struct pmc_origin_id huge = oid;

		huge.sectors = (1ULL << 55) + 8;
		map = make_image(img);
		if (!map || pmc_meta_format(&m, map, PMEM_SIZE, BS, &huge, uuid, 0))
			return 2;
		put(&m, 0, 10, 0, 1, true);
		munmap(map, PMEM_SIZE);
		ok(run(TOOL " rescue %s %s 2>&1 | grep -q 'belongs to an origin'", img, org) == 0,
		   "rescue: refuses an origin smaller than a recorded size that wraps in bytes");
	}

	/* An image file behind a loop device: O_EXCL cannot guard it. */
	{
		char lo[64] = "";

		if (loop_attach(org, lo, sizeof(lo))) {
			map = make_image(img);
			if (!map || pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0))
				return 2;
			put(&m, 0, 10, 0, 1, true);
			munmap(map, PMEM_SIZE);
			ok(run(TOOL " rescue %s %s 2>&1 | grep -q 'backs %s'", img, org, lo) == 0,
			   "rescue: refuses an image file a loop device uses, naming the device");
			run("losetup -d %s", lo);
			/* losetup makes loop devices past 255 on demand. */
			if (run("losetup /dev/loop300 %s", org) == 0) {
				ok(run(TOOL " rescue %s %s 2>&1 | grep -q 'backs /dev/loop300'",
				       img, org) == 0,
				   "rescue: refuses an image file that loop300 uses");
				run("losetup -d /dev/loop300");
			}
		} else {
			printf("# skipped: no loop device for the backing-file check\n");
		}
	}

	/*
	 * Larger than this machine's RAM (sparse): the private mapping must
	 * not ask for that much memory up front.
	 */
	ok(run("truncate -s 256G %s/huge.img && " TOOL " check %s/huge.img 2>&1 | grep -q blank",
	       dir, dir) == 0, "check: maps a device larger than memory");
	run("rm -f %s/huge.img", dir);

	/* Corrupt one record's key: its checksum no longer matches. */
	map = make_image(bad);
	pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0);
	put(&m, 0, 10, 0, 1, true);
	put(&m, 1, 11, 0, 1, true);
	m.recs[1].key ^= cpu_to_le64(1);
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " check %s >/dev/null", bad) == 1, "check: a corrupt record exits 1");
	ok(run(TOOL " check %s | grep -q '1 corrupt'", bad) == 0, "check: reports it");
	ok(run(TOOL " rescue %s %s >/dev/null 2>&1", bad, org) == 1,
	   "rescue: exits 1 when a corrupt record may have held dirty data");

	/* A damaged superblock may hide dirty blocks: wipe needs --force. */
	map = make_image(bad);
	pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0);
	map[16] ^= 1;			/* both copies: magic intact, checksum not */
	map[PMC_SB_SIZE + 16] ^= 1;
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " wipe %s 2>&1 | grep -q 'may be a pmcache device'", bad) == 0,
	   "wipe: a cache it cannot load may hold dirty blocks: refused without --force");

	/*
	 * repair. Copy 0 zeroed (a media error in it cleared with a write of
	 * zeros) makes a cache with a dirty block look blank; repair brings
	 * it back from copy 1.
	 */
	map = image_with_sector0_zeroed(bad, &m, &oid, uuid);
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " check %s 2>&1 | grep -q blank", bad) == 0,
	   "check: a zeroed superblock copy 0 reads as blank (a reset)");
	ok(run(TOOL " check %s 2>&1 | grep -q 'copy 1 holds the cache of vdb (1 blocks used, 1 dirty)'",
	       bad) == 0, "check: names the cache a zeroed copy 0 hides");
	ok(run(TOOL " belongs %s /dev/null 2>&1 | grep -q 'a dmsetup create formats'", bad) == 0 &&
	   run(TOOL " belongs %s /dev/null >/dev/null 2>&1", bad) == 1,
	   "belongs: a zeroed copy 0 hiding dirty blocks exits 1 (a create would format them away)");
	ok(run(TOOL " wipe %s 2>&1 | grep -q '1 dirty blocks: rescue them first'", bad) == 0 &&
	   run(TOOL " belongs %s /dev/null >/dev/null 2>&1", bad) == 1,
	   "wipe: dirty blocks behind a zeroed copy 0 need --force, nothing written without");
	ok(run(TOOL " repair %s 2>&1 | grep -q '1 dirty)'", bad) == 0 &&
	   run(TOOL " repair %s >/dev/null 2>&1", bad) == 1 &&
	   run(TOOL " check %s 2>&1 | grep -q blank", bad) == 0,
	   "repair: a zeroed copy 0 (a reset?) names the cache behind it, exits 1 and "
	   "writes nothing without --force");
	ok(run(TOOL " repair %s --force | grep -q 'copy 0 rewritten from copy 1'", bad) == 0 &&
	   run(TOOL " check %s | grep -q '1 dirty blocks not on the origin'", bad) == 0,
	   "repair --force: a zeroed copy 0 is rewritten from copy 1, the dirty block back");
	ok(run("cmp -n %u %s %s -i 0:%u", PMC_SB_SIZE, bad, bad, PMC_SB_SIZE) == 0,
	   "repair: the two copies are the same again");
	ok(run(TOOL " repair %s | grep -q 'both superblock copies are sound'", bad) == 0,
	   "repair: two sound copies are nothing to do, exit 0");
	map = make_image(bad);
	pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0);
	put(&m, 0, 10, 0, 1, false);
	memset(map, 0, 512);
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " belongs %s /dev/null >/dev/null 2>&1", bad) == 0,
	   "belongs: a zeroed copy 0 hiding clean blocks only is blank (exit 0)");
	map = image_with_sector0_zeroed(bad, &m, &oid, uuid);
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " wipe %s --force >/dev/null 2>&1", bad) == 0 &&
	   run(TOOL " belongs %s /dev/null >/dev/null 2>&1", bad) == 0 &&
	   run(TOOL " repair %s --force 2>&1 | grep -q 'is blank'", bad) == 0,
	   "wipe --force: a cache behind a zeroed copy 0 is wiped too (blank, nothing to repair)");
	/* Copy 1 with a bad checksum: rewritten from copy 0. */
	map = make_image(bad);
	pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0);
	put(&m, 0, 10, 0, 1, true);
	map[PMC_SB_SIZE + 16] ^= 1;
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " check %s | grep -q 'copy 1 is damaged or behind copy 0'", bad) == 0,
	   "check: a superblock copy that fails its checksum is noted, exit 0");
	ok(run(TOOL " repair %s | grep -q 'copy 1 rewritten from copy 0'", bad) == 0 &&
	   run("cmp -n %u %s %s -i 0:%u", PMC_SB_SIZE, bad, bad, PMC_SB_SIZE) == 0,
	   "repair: a copy failing its checksum is rewritten from the other");
	/* Neither copy sound: nothing to repair from, nothing written. */
	map = make_image(bad);
	pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0);
	map[16] ^= 1;
	map[PMC_SB_SIZE + 16] ^= 1;
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " repair %s >/dev/null 2>&1", bad) == 2 &&
	   run(TOOL " check %s 2>&1 | grep -q 'checksum mismatch'", bad) == 0,
	   "repair: no sound copy exits 2 and writes nothing");
	map = make_image(bad);
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " repair %s --force | grep -q 'is blank'", bad) == 0,
	   "repair: a blank device is nothing to do, exit 0");
	/*
	 * Copy 0 zero and cached data that looks like another format's
	 * signature (MD 0.90 near the end): foreign to the probe, a cache
	 * behind copy 0 all the same.
	 */
	map = image_with_sector0_zeroed(bad, &m, &oid, uuid);
	{
		u64 md = ((PMEM_SIZE >> 9) & ~127ULL) * 512 - 65536;

		memcpy(map + md, "\xfc\x4e\x2b\xa9", 4);	/* MD 0.90 magic, LE */
	}
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " check %s >/dev/null 2>&1", bad) == 1 &&
	   run(TOOL " repair %s --force | grep -q 'copy 0 rewritten from copy 1'", bad) == 0 &&
	   run("cmp -n %u %s %s -i 0:%u", PMC_SB_SIZE, bad, bad, PMC_SB_SIZE) == 0,
	   "repair --force: a zeroed copy 0 the probe calls foreign is rewritten too");
	/*
	 * mkswap over a cache: copy 0 overwritten (its first 1 KiB zeroed,
	 * the swap signature at its end), copy 1 the cache's. The module
	 * refuses it; the tool names the cache behind, belongs exits 1, repair
	 * needs --force to bring it back over the other user's data.
	 */
	map = image_with_sector0_zeroed(bad, &m, &oid, uuid);
	put(&m, 1, 20, 0, 7, true);		/* block 20, dirty, for rescue */
	memset(map, 0, 1024);
	memcpy(map + 4086, "SWAPSPACE2", 10);
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " wipe %s 2>&1 | grep -q '2 dirty blocks: rescue them first'", bad) == 0 &&
	   run(TOOL " wipe %s >/dev/null 2>&1", bad) == 2 &&
	   run(TOOL " check %s >/dev/null 2>&1", bad) == 1,
	   "wipe: an overwritten copy 0 (another user's) needs --force, its dirty blocks counted");
	ok(run(TOOL " rescue %s %s 2>&1 | grep -q 'rescuing the cache'", bad, org) == 0 &&
	   run(TOOL " rescue %s %s >/dev/null 2>&1", bad, org) == 0 &&
	   origin_block_is(org, 20, 7),
	   "rescue: reads the cache behind an overwritten copy 0, writes its dirty blocks");
	ok(run(TOOL " check %s >/dev/null 2>&1", bad) == 1 &&
	   run(TOOL " check %s 2>&1 | grep -q 'copy 0 is overwritten by other data, but copy 1 "
	       "holds the cache of vdb (2 blocks used, 2 dirty): the module refuses'", bad) == 0,
	   "check: a copy 0 overwritten by other data (mkswap) over a cache, exit 1, named");
	ok(run(TOOL " belongs %s /dev/null >/dev/null 2>&1", bad) == 1 &&
	   run(TOOL " dump %s >/dev/null 2>&1", bad) == 1,
	   "belongs and dump: a copy 0 overwritten over dirty blocks exits 1");
	ok(run(TOOL " repair %s 2>&1 | grep -q 'another user of the device wrote over copy 0'",
	       bad) == 0 && run(TOOL " repair %s >/dev/null 2>&1", bad) == 1 &&
	   run(TOOL " check %s >/dev/null 2>&1", bad) == 1,
	   "repair: an overwritten copy 0 needs --force, nothing written without");
	ok(run(TOOL " repair %s --force | grep -q 'copy 0 rewritten from copy 1'", bad) == 0 &&
	   run(TOOL " check %s | grep -q 'sound; 2 dirty blocks'", bad) == 0,
	   "repair --force: an overwritten copy 0 is rewritten from copy 1, the cache back");
	/* Unknown ro_compat features: read, never written. */

	/*
	 * A read-only-compatible feature this code does not know: the module
	 * (which writes) refuses the cache, the tool (which only reads it)
	 * loads it.
	 */
	map = make_image(bad);
	pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0);
	put(&m, 0, 10, 0, 1, true);
	{
		unsigned int i;
		const char *why;
		struct pmc_meta probed;

		for (i = 0; i < PMC_SB_COPIES; i++) {
			struct pmc_sb *sb = (struct pmc_sb *)(map + i * PMC_SB_SIZE);

			sb->ro_compat_flags = cpu_to_le32(1u << 31);
			sb->crc = 0;
			sb->crc = cpu_to_le32(pmc_crc32c(~0u, sb, sizeof(*sb)));
		}
		ok(pmc_meta_probe(&probed, map, PMEM_SIZE, &why) == PMC_PROBE_UNSUPPORTED &&
		   pmc_meta_probe_read_only(&probed, map, PMEM_SIZE, &why) == PMC_PROBE_VALID,
		   "probe: an unknown ro_compat feature refuses a writer, not a reader");
	}
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " check %s >/dev/null", bad) == 1 &&
	   run(TOOL " check %s | grep -q 'PROBLEMS (1 dirty blocks)'", bad) == 0 &&
	   run(TOOL " check %s | grep -q 'module refuses to load it (unsupported'", bad) == 0,
	   "check: reads a cache with an unknown ro_compat feature, exit 1: the module refuses it");

	/* Something else altogether. */
	map = make_image(bad);
	memcpy(map, "XFSB", 4);
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " check %s 2>&1 | grep -q 'not a pmcache device'", bad) == 0,
	   "check: a foreign device is named as such");
	ok(run(TOOL " wipe %s 2>&1 | grep -q 'not a pmcache device;'", bad) == 0,
	   "wipe: names a foreign device as such");
	ok(run(TOOL " check %s >/dev/null 2>&1", bad) == 2, "check: a foreign device exits 2");
	ok(run(TOOL " wipe %s >/dev/null 2>&1", bad) == 2 &&
	   run(TOOL " check %s 2>&1 | grep -q 'not a pmcache device'", bad) == 0,
	   "wipe: leaves a foreign device alone without --force");

	/* A btrfs file system: its first 4 KiB are zero, its signature is not. */
	map = make_image(bad);
	memcpy(map + 65600, "_BHRfS_M", 8);
	munmap(map, PMEM_SIZE);
	ok(run(TOOL " check %s 2>&1 | grep -q 'holds a btrfs file system'", bad) == 0,
	   "check: a signature beyond the first 4 KiB is named");
	ok(run(TOOL " wipe %s --force >/dev/null", bad) == 0 &&
	   run(TOOL " check %s 2>&1 | grep -q 'blank'", bad) == 0,
	   "wipe --force: zeroes the signature too, leaving the device blank");

	/*
	 * A media error, as the tool meets it through its mapping: a page of
	 * a file mapping beyond the file's end raises SIGBUS as poison does.
	 */
	fd = open(bad, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 8192))
		return 2;
	map = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED || ftruncate(fd, 4096))
		return 2;
	close(fd);
	{
		u8 buf[64];

		pmc_pmem_catch_media_errors(NULL);
		ok(pmc_pmem_read(buf, map, sizeof(buf)) == 0 &&
		   pmc_pmem_read(buf, map + 4096, sizeof(buf)) == -EIO &&
		   pmc_pmem_read(buf, map, sizeof(buf)) == 0,
		   "a SIGBUS in a read of the mapped device is -EIO, and reads go on");
		pmc_pmem_set_hooks(NULL);
	}
	munmap(map, 8192);

	/* A FIFO would hold open(2) until a writer comes. */
	map = make_image(img);
	if (!map || pmc_meta_format(&m, map, PMEM_SIZE, BS, &oid, uuid, 0))
		return 2;
	put(&m, 0, 10, 0, 1, true);
	munmap(map, PMEM_SIZE);
	snprintf(bad, sizeof(bad), "%s/fifo", dir);
	ok(run("mkfifo %s && timeout 10 " TOOL " check %s 2>&1 | grep -q 'not a block device'",
	       bad, bad) == 0 &&
	   run("timeout 10 " TOOL " rescue %s %s --dry-run 2>&1 | grep -q 'not a block device'",
	       img, bad) == 0,
	   "check and rescue: a FIFO is refused at once");

	test_nvme_ids(dir);
	test_bad_sectors(dir);
	test_unreadable_sector(dir);

	run("rm -rf %s", dir);
	printf("# test_tools: %d failed\n", failures);
	return failures ? 1 : 0;
}

#!/bin/sh
# vm-run: --pmem-size 256M --origin-iops 0 --timeout 600
# guards: what would lose dirty blocks is refused, and loses nothing.
# - format over a cache holding dirty blocks: refused at the table load,
#   and at the first resume when the live table dirtied blocks after a
#   load that found none (the reload of `dmsetup table`, which prints
#   `format` back, is the everyday way to get there);
# - a format with another block_size, dirtied between its load and resume;
# - a cache device another user wrote over (copy 0), a cache in copy 1:
#   refused (format too, over its dirty blocks), named by pmcache-tool
#   check, back after repair --force;
# - a second dm device on the same cache device (also through another
#   device over the same pmem), or on the same origin;
# - a table whose cache device changed between its load and its resume,
#   and after its refusal the dirty blocks of the table dm dropped with it,
#   or that a table that never loaded found on its device, hold the tables
#   after it; its clean copies go with a move;
# - a reload onto another cache device while the replaced one holds dirty
#   blocks (at the load, at the resume, at every resume after, and for
#   every table after); the cache device a reload leaves clean is made
#   blank, so that going back to it later serves no stale copy;
# - a clean copy of data the origin may still hold in its volatile cache
#   (writethrough): the origin is flushed before the copy is committed;
# - a writeback batch some of whose writes fail: the others turn clean;
# - an origin that fails every write while the cache is all dirty: writes
#   fail with EIO instead of hanging, and the device can still be removed;
#   once it works again, slowly, writers that wait for a block do not fail;
# - health and the error count (I/O errors, and records found corrupt at
#   load): a table reload does not reset them, clear_stats does.
. "$SCRIPTDIR/lib.sh"

blocks_of() { dm_status_field "$1" "$2"; }	# 3: used, 4: dirty
# resume_refused WHAT PATTERN: resuming pc must fail, the kernel log saying
# PATTERN; else fail with "WHAT".
resume_refused() {
	dmesg -c >/dev/null
	if dmsetup resume pc 2>/dev/null; then
		fail "$1"
	fi
	dmesg | grep -q "$2" || { dmesg | tail; fail "the resume's refusal is not in the kernel log"; }
}

# create_refused CACHE ORIGIN WHAT PATTERN: creating pc2 on CACHE and ORIGIN
# must fail, the kernel log saying PATTERN, and leave no device; else fail
# with "WHAT".
create_refused() {
	dmesg -c >/dev/null
	if CACHE_DEV=$1 ORIGIN_DEV=$2 pmcache_table | dmsetup create pc2 2>/dev/null; then
		fail "$3"
	fi
	dmesg | grep -q "$4" || { dmesg | tail -3; fail "no reason given: $3"; }
	[ ! -e /dev/mapper/pc2 ] || fail "device left behind: $3"
}

# pa_first_resume_fails: loads $table_pa into pc and makes its first resume
# fail (pa's first 4 KiB zeroed between the load and the resume: the
# device changed since the load), then puts pa's first 4 KiB back. dm then
# drops the table pc had, and pc's table is one that never loaded.
pa_first_resume_fails() {
	dd if=/dev/mapper/pa of=/tmp/pa-sb bs=4096 count=1 2>/dev/null
	dmsetup load pc --table "$table_pa" || fail "load on pa"
	# The table holds pa open: only an fsync puts this past the page cache.
	dd if=/dev/zero of=/dev/mapper/pa bs=4096 count=1 conv=notrunc,fsync 2>/dev/null
	resume_refused "resumed over a cache device that changed since its load" \
		"pmcache: the cache device changed since this table was loaded"
	dd if=/tmp/pa-sb of=/dev/mapper/pa bs=4096 count=1 conv=notrunc,fsync 2>/dev/null
}

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
half=$(( $(sectors "$ORIGIN") / 2 ))
dmsetup create oa --table "0 $half linear $ORIGIN 0"
dmsetup create ob --table "0 $half linear $ORIGIN $half"
assert_blockdev oa; assert_blockdev ob

log "format over dirty blocks"
ORIGIN_DEV=/dev/mapper/oa pmcache_create pc format
job="--name=w --filename=/dev/mapper/pc --direct=1 --rw=write --bs=64k --size=8M --verify=crc32c --verify_fatal=1"
fio $job >/dev/null || fail "write"
[ "$(blocks_of pc 4)" -gt 0 ] || fail "nothing dirty"
case " $(dmsetup table pc) " in *" format "*) ;; *) fail "format not printed back: $(dmsetup table pc)" ;; esac
dmesg -c >/dev/null
if dmsetup reload pc --table "$(dmsetup table pc)" 2>/dev/null; then
	fail "format accepted over dirty blocks"
fi
dmesg | grep -q "pmcache: the cache holds dirty blocks: flush them" || { dmesg | tail -3; fail "the refusal does not say what to do"; }
dmesg | grep -q "pmcache: cache holds [0-9]* dirty (or unreadable) blocks" || fail "the kernel log does not count them"
fio $job --verify_only=1 >/dev/null || fail "data lost after the refused format"

log "format loaded clean, dirtied before its resume"
dmsetup message pc 0 flush
assert_eq "$(blocks_of pc 4)" 0 "dirty after flush"
dmsetup reload pc --table "$(dmsetup table pc)" || fail "format refused over a clean cache"
job2="--name=w2 --filename=/dev/mapper/pc --direct=1 --rw=write --bs=64k --size=4M --offset=16M --verify=crc32c --verify_fatal=1"
fio $job2 >/dev/null || fail "write under the loaded table"
[ "$(blocks_of pc 4)" -gt 0 ] || fail "nothing dirty before the resume"
resume_refused "format resumed over dirty blocks" "pmcache: .*flush them"
dmesg | grep -q "pmcache: .*formatted" && fail "formatted anyway"
# Back to a table without format: everything is there.
dmsetup reload pc --table "$(ORIGIN_DEV=/dev/mapper/oa pmcache_table)" || fail "reload without format"
dmsetup resume pc || fail "resume without format"
fio $job --verify_only=1 >/dev/null || fail "first data lost"
fio $job2 --verify_only=1 >/dev/null || fail "data written before the refused resume lost"

log "a cache device another user wrote over (mkswap's marks): refused, the cache behind it kept"
dm_remove pc
# Dirty blocks in the cache, then what mkswap writes: its first 1 KiB
# zeroed, its signature at the end of the first 4 KiB (copy 0); copy 1 is
# the cache's.
ORIGIN_DEV=/dev/mapper/oa pmcache_create pc
fio $job --randseed=99 >/dev/null || fail "write"
dirty=$(blocks_of pc 4)
dm_remove pc
dd if=/dev/zero of="$PMEM" bs=1024 count=1 conv=notrunc 2>/dev/null
printf SWAPSPACE2 | dd of="$PMEM" bs=1 seek=4086 conv=notrunc 2>/dev/null
dmesg -c >/dev/null
if ORIGIN_DEV=/dev/mapper/oa pmcache_table | dmsetup create pc 2>/dev/null; then
	fail "a cache device mkswap wrote over was loaded"
fi
dmesg | grep -q "superblock copy 0 overwritten by other data" ||
	{ dmesg | tail -3; fail "the refusal does not say copy 0 was written over"; }
rc=0; pmcache-tool check "$PMEM" >/tmp/out 2>&1 || rc=$?
assert_eq "$rc" 1 "pmcache-tool check's exit over an overwritten copy 0"
grep -q "overwritten by other data, but copy 1 holds the cache .* $dirty dirty" /tmp/out ||
	{ cat /tmp/out; fail "check does not name the cache behind copy 0"; }
dmesg -c >/dev/null
if ORIGIN_DEV=/dev/mapper/oa pmcache_table format | dmsetup create pc 2>/dev/null; then
	fail "format accepted over the dirty blocks behind an overwritten copy 0"
fi
dmesg | grep -q "pmcache: cache holds $dirty dirty (or unreadable) blocks" ||
	{ dmesg | tail -3; fail "the format's refusal does not count the blocks behind copy 0"; }
pmcache-tool repair "$PMEM" --force >/dev/null || fail "repair --force"
ORIGIN_DEV=/dev/mapper/oa pmcache_create pc
assert_eq "$(blocks_of pc 4)" "$dirty" "dirty blocks after repair --force"
fio $job --randseed=99 --verify_only=1 >/dev/null || fail "data lost behind the overwritten copy 0"
dmsetup message pc 0 flush

log "format with another block_size, dirtied before its resume"
# The recount at the resume must read the records by the geometry they were
# written with (512-byte blocks: 8 times as many as the format's 4 KiB).
dmsetup message pc 0 flush
dm_remove pc
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/oa pmcache_create pc block_size 512
dmsetup reload pc --table "$(ORIGIN_DEV=/dev/mapper/oa pmcache_table format)" ||
	fail "format refused over a clean cache"
# From CPU 1, whose free slots lie in the upper half of the cache: beyond
# the records a 4 KiB geometry has.
job3="--name=w3 --filename=/dev/mapper/pc --direct=1 --rw=randwrite --bs=4k --size=2M --offset=24M --cpus_allowed=1 --verify=crc32c --verify_fatal=1"
fio $job3 >/dev/null || fail "write under the loaded table"
[ "$(blocks_of pc 4)" -gt 0 ] || fail "nothing dirty before the resume"
resume_refused "a format with another block_size resumed over dirty blocks" "pmcache: .*flush them"
dmsetup reload pc --table "$(ORIGIN_DEV=/dev/mapper/oa pmcache_table block_size 512)" ||
	fail "reload without format"
dmsetup resume pc || fail "resume without format"
fio $job3 --verify_only=1 >/dev/null || fail "data written before the refused resume lost"

log "one cache device, one origin, one dm device"
create_refused "$PMEM" /dev/mapper/ob "a second device on the same cache device" \
	"pmcache: the cache device is in use by another pmcache device"
dmsetup message pc 0 flush
dm_remove pc
# Two slices of the pmem, both on origin oa.
pm=$(sectors "$PMEM")
dmsetup create pa --table "0 $((pm / 2)) linear $PMEM 0"
dmsetup create pb --table "0 $((pm / 2)) linear $PMEM $((pm / 2))"
dd if=/dev/zero of=/dev/mapper/pa bs=4096 count=1 2>/dev/null
dd if=/dev/zero of=/dev/mapper/pb bs=4096 count=1 2>/dev/null
CACHE_DEV=/dev/mapper/pa ORIGIN_DEV=/dev/mapper/oa pmcache_create pc
create_refused /dev/mapper/pb /dev/mapper/oa "a second cache on the same origin" \
	"pmcache: the origin is cached by another pmcache device"
# The whole pmem while pc caches in pa, a slice of it: another device, the same memory.
create_refused "$PMEM" /dev/mapper/ob "a second cache on pmem another's cache device maps too" \
	"pmcache: the cache device shares pmem with another pmcache device's"
# An origin on pmem: over pc's cache (pa's range), or over its own cache device's.
dmsetup create pa2 --table "0 $((pm / 2)) linear $PMEM 0"
dmsetup create pb2 --table "0 $((pm / 2)) linear $PMEM $((pm / 2))"
create_refused /dev/mapper/pb /dev/mapper/pa2 "an origin on the pmem of another's cache device" \
	"pmcache: cache device or origin shares pmem with another pmcache device"
create_refused /dev/mapper/pb /dev/mapper/pb2 "an origin on the pmem of its own cache device" \
	"pmcache: the origin shares pmem with the cache device"
dmsetup remove pa2
dmsetup remove pb2
log "one device's cache device, another's origin: refused"
create_refused /dev/mapper/pb /dev/mapper/pa "a device whose origin is another's cache device" \
	"pmcache: the origin is the cache device of a pmcache device"
log "a reload whose origin is the device's own cache device: refused, the cache kept"
dmesg -c >/dev/null
table=$(dmsetup table pc)
CACHE_DEV=/dev/mapper/pb ORIGIN_DEV=/dev/mapper/pa pmcache_table | dmsetup load pc 2>/dev/null &&
	fail "a reload onto the old cache device as its origin"
dmesg | grep -q "pmcache: the origin is the cache device of a pmcache device" ||
	{ dmesg | tail -3; fail "no reason given for the reload"; }
dmsetup suspend pc && dmsetup resume pc || fail "suspend/resume after the refused reload"
assert_eq "$(dmsetup table pc)" "$table" "the table after the refused reload"
log "a reload onto another cache device leaves no dirty block behind"
job4="--name=w4 --filename=/dev/mapper/pc --direct=1 --rw=randwrite --bs=4k --size=2M --verify=crc32c --verify_fatal=1"
job5="--name=w5 --filename=/dev/mapper/pc --direct=1 --rw=randwrite --bs=4k --size=2M --offset=8M --verify=crc32c --verify_fatal=1"
table_pb=$(CACHE_DEV=/dev/mapper/pb ORIGIN_DEV=/dev/mapper/oa pmcache_table)
fio $job4 >/dev/null || fail "write"
[ "$(blocks_of pc 4)" -gt 0 ] || fail "nothing dirty"
dmesg -c >/dev/null
if dmsetup reload pc --table "$table_pb" 2>/dev/null; then
	fail "a reload onto another cache device accepted over dirty blocks"
fi
dmesg | grep -q "pmcache: .*flush them before changing the cache device" ||
	{ dmesg | tail -3; fail "the refusal does not say what to do"; }
dmsetup message pc 0 flush
dmsetup reload pc --table "$table_pb" || fail "reload onto another cache device refused, all clean"
fio $job5 >/dev/null || fail "write under the loaded table"
resume_refused "resumed onto another cache device over dirty blocks" \
	"pmcache: .*flush them before changing the cache device"
# The replaced table is gone now (dm drops it even when the resume fails).
resume_refused "a second resume onto another cache device accepted" \
	"pmcache: .*flush them before changing the cache device"
# Nor does a table after it, loaded over the one that cannot resume.
dmesg -c >/dev/null
if dmsetup reload pc --table "$table_pb" 2>/dev/null && dmsetup resume pc 2>/dev/null; then
	fail "a third table onto another cache device resumed, the dirty blocks left in the first"
fi
dmesg | grep -q "pmcache: .*flush them before changing the cache device" ||
	{ dmesg | tail -3; fail "the third table's refusal does not say why"; }
dmsetup reload pc --table "$(CACHE_DEV=/dev/mapper/pa ORIGIN_DEV=/dev/mapper/oa pmcache_table)" ||
	fail "reload onto the cache device that holds the dirty blocks"
dmsetup resume pc || fail "resume onto the cache device that holds the dirty blocks"
fio $job4 --verify_only=1 >/dev/null && fio $job5 --verify_only=1 >/dev/null ||
	fail "data lost by the refused reload"
dmsetup message pc 0 flush

log "a cache device left clean keeps no copy that could go stale"
# pa holds clean copies of job4's blocks; pb takes over and they change.
dmsetup reload pc --table "$table_pb" && dmsetup resume pc || fail "move to pb, all clean"
# Checksums, not fio's verify: that passes on another job's blocks at the
# same offsets (it checks each block's header and crc, not whose it is).
sum_old=$(sum_of if=/dev/mapper/pc bs=1M count=2)
fio --name=w6 --filename=/dev/mapper/pc --direct=1 --rw=randwrite --bs=4k --size=2M \
    --randseed=4242 >/dev/null || fail "write through pb"
dmsetup message pc 0 flush
sum_pb=$(sum_of if=/dev/mapper/pc bs=1M count=2)
[ "$sum_pb" != "$sum_old" ] || fail "the writes through pb changed nothing"
dmsetup reload pc --table "$(CACHE_DEV=/dev/mapper/pa ORIGIN_DEV=/dev/mapper/oa pmcache_table)" &&
	dmsetup resume pc || fail "back to pa"
assert_eq "$(sum_of if=/dev/mapper/pc bs=1M count=2)" "$sum_pb" \
	"pa served copies older than the origin: the data"
log "a table refused over dirty blocks of its own cache device hands them on"
# Loaded over pa clean; the live table dirties pa meanwhile; the resume is
# refused (passthrough over dirty blocks): no table after it may resume on
# pb while pa holds them.
table_pa=$(CACHE_DEV=/dev/mapper/pa ORIGIN_DEV=/dev/mapper/oa pmcache_table)
dmsetup message pc 0 flush
dmsetup reload pc --table "$(CACHE_DEV=/dev/mapper/pa ORIGIN_DEV=/dev/mapper/oa pmcache_table mode passthrough)" ||
	fail "passthrough over a clean cache refused"
fio --name=w7 --filename=/dev/mapper/pc --direct=1 --rw=randwrite --bs=4k --size=1M \
    --offset=40M >/dev/null || fail "write under the loaded table"
[ "$(blocks_of pc 4)" -gt 0 ] || fail "nothing dirty"
sum_w7=$(sum_of if=/dev/mapper/pc bs=1M skip=40 count=1)
resume_refused "passthrough resumed over dirty blocks" "pmcache: .*before passthrough"
dmesg -c >/dev/null
if dmsetup reload pc --table "$table_pb" 2>/dev/null && dmsetup resume pc 2>/dev/null; then
	fail "a table on pb resumed, the dirty blocks a refused table found left in pa"
fi
dmesg | grep -q "pmcache: .*flush them before changing the cache device" ||
	{ dmesg | tail -3; fail "the table on pb was refused, but not for the blocks left in pa"; }
dmsetup reload pc --table "$table_pa" && dmsetup resume pc || fail "back to pa"
assert_eq "$(sum_of if=/dev/mapper/pc bs=1M skip=40 count=1)" "$sum_w7" \
	"the blocks written under the refused table"
dmsetup message pc 0 flush
# Another origin, another cache device: fine.
CACHE_DEV=/dev/mapper/pb ORIGIN_DEV=/dev/mapper/ob pmcache_create pc2

log "a cache device that changed between the table load and the resume"
# A table loaded over a blank device decides to format it; should a cache
# with dirty blocks be there by its resume (another table's resume wrote
# it meanwhile: two admins at once), the resume is refused, not a format.
job8="--name=w8 --filename=/dev/mapper/pc2 --direct=1 --rw=randwrite --bs=4k --size=1M --verify=crc32c --verify_fatal=1"
fio $job8 >/dev/null || fail "write through pc2"
[ "$(blocks_of pc2 4)" -gt 0 ] || fail "nothing dirty in pc2"
dm_remove pc2
dd if=/dev/mapper/pb of=/tmp/pb-sb bs=4096 count=1 2>/dev/null
dd if=/dev/zero of=/dev/mapper/pb bs=4096 count=1 2>/dev/null
dmsetup create pc3 --notable
dmsetup load pc3 --table "$(CACHE_DEV=/dev/mapper/pb ORIGIN_DEV=/dev/mapper/ob pmcache_table)" ||
	fail "load over a blank cache device"
# The table holds pb open: only an fsync puts this past the page cache.
dd if=/tmp/pb-sb of=/dev/mapper/pb bs=4096 count=1 conv=notrunc,fsync 2>/dev/null
dmesg -c >/dev/null
if dmsetup resume pc3 2>/dev/null; then
	fail "a table resumed over a cache device that changed since its load: $(dmesg | grep pmcache)"
fi
dmesg | grep -q "pmcache: the cache device changed since this table was loaded" ||
	{ dmesg | tail -3; fail "the refusal does not say why"; }
dmesg | grep -q "pmcache: .*formatted" && fail "formatted anyway"
dm_remove pc3
CACHE_DEV=/dev/mapper/pb ORIGIN_DEV=/dev/mapper/ob pmcache_create pc2
fio $job8 --verify_only=1 >/dev/null || fail "dirty blocks lost by the refused resume"
dmsetup message pc2 0 flush
dm_remove pc2

log "a table whose first resume failed keeps the dirty blocks of the one it replaced"
# pc on pa with dirty blocks; a reload on pa whose resume fails (its cache
# device changed: the first 4 KiB zeroed meanwhile, put back after): dm
# drops the live table anyway, and no table after it may resume on pb.
job9="--name=w9 --filename=/dev/mapper/pc --direct=1 --rw=randwrite --bs=4k --size=1M --offset=48M --verify=crc32c --verify_fatal=1"
fio $job9 >/dev/null || fail "write through pc"
[ "$(blocks_of pc 4)" -gt 0 ] || fail "nothing dirty in pc"
pa_first_resume_fails
dmesg -c >/dev/null
if dmsetup reload pc --table "$table_pb" 2>/dev/null && dmsetup resume pc 2>/dev/null; then
	fail "a table on pb resumed, the dirty blocks of the table dropped with the failed resume left in pa"
fi
dmesg | grep -q "pmcache: .*flush them before changing the cache device" ||
	{ dmesg | tail -3; fail "the table on pb was refused, but not for the blocks left in pa"; }
pa_dev=$(dmsetup info -c --noheadings -o major,minor pa | tr -d ' ')
dmesg | grep -q "pmcache: the dirty blocks are in cache device $pa_dev: load a table on it" ||
	{ dmesg | tail -3; fail "the refusal does not name the cache device holding the blocks"; }
dmsetup reload pc --table "$table_pa" && dmsetup resume pc || fail "back to pa"
fio $job9 --verify_only=1 >/dev/null || fail "dirty blocks lost"
dmsetup message pc 0 flush

log "a table whose first resume failed, resumed again on its device: flushed, a move goes"
fio $job9 --randseed=4343 >/dev/null || fail "write through pc"
[ "$(blocks_of pc 4)" -gt 0 ] || fail "nothing dirty in pc"
pa_first_resume_fails
dmsetup resume pc || fail "the same table resumed again"
fio $job9 --randseed=4343 --verify_only=1 >/dev/null || fail "dirty blocks lost"
dmsetup message pc 0 flush || fail "flush"
dmsetup reload pc --table "$table_pb" && dmsetup resume pc ||
	fail "a move refused after the blocks the failed resume held were flushed"
dmsetup reload pc --table "$table_pa" && dmsetup resume pc || fail "back to pa"

log "a table that never loaded: its cache device's dirty blocks hold, its clean copies go"
# Left by a removed table: dirty blocks in pa. A new table on pa whose
# first resume fails knows nothing of them; a table on pb after it must
# still be refused. Other data than job9's, which the origin holds now:
# lost, the dirty blocks would not verify from there.
job9b="$job9 --randseed=4242"
fio $job9b >/dev/null || fail "write through pc"
dirty=$(blocks_of pc 4)
[ "$dirty" -gt 0 ] || fail "nothing dirty in pc"
dm_remove pc
dmsetup create pc --notable
pa_first_resume_fails
dmsetup load pc --table "$table_pb" || fail "load on pb"
resume_refused "a table on pb resumed, the dirty blocks in pa of a table that never loaded" \
	"pmcache: .*flush them before changing the cache device"
dmsetup load pc --table "$table_pa" && dmsetup resume pc || fail "back to pa"
assert_eq "$(blocks_of pc 4)" "$dirty" "dirty blocks back on pa"
fio $job9b --verify_only=1 >/dev/null || fail "dirty blocks lost"
dmsetup message pc 0 flush
# Now clean copies in pa: the move to pb after such a failed resume must
# leave pa blank, or a move back would serve them after pb's writes.
sum_old=$(sum_of if=/dev/mapper/pc bs=1M skip=48 count=1)
pa_first_resume_fails
dmsetup reload pc --table "$table_pb" && dmsetup resume pc || fail "move to pb, pa clean"
fio --name=w10 --filename=/dev/mapper/pc --direct=1 --rw=randwrite --bs=4k --size=1M \
    --offset=48M --randseed=777 >/dev/null || fail "write through pb"
dmsetup message pc 0 flush
sum_pb=$(sum_of if=/dev/mapper/pc bs=1M skip=48 count=1)
[ "$sum_pb" != "$sum_old" ] || fail "the writes through pb changed nothing"
dmsetup reload pc --table "$table_pa" && dmsetup resume pc || fail "back to pa"
assert_eq "$(sum_of if=/dev/mapper/pc bs=1M skip=48 count=1)" "$sum_pb" \
	"pa served copies older than the origin after a move that followed a failed resume: the data"
dm_remove pc
dm_remove pa; dm_remove pb

log "a clean copy of a writethrough write: the origin is flushed before it"
# /sys/block/<disk>/stat field 16: flush requests completed.
origin_flushes() { awk '{ print $16 }' "/sys/block/${ORIGIN##*/}/stat"; }
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/oa pmcache_create pc mode writethrough
f0=$(origin_flushes)
used0=$(blocks_of pc 3)
dd if=/dev/urandom of=/dev/mapper/pc bs=4096 count=1 seek=77 oflag=direct 2>/dev/null
sleep 1
[ "$(blocks_of pc 3)" -gt "$used0" ] || fail "the writethrough write was not cached"
[ "$(origin_flushes)" -gt "$f0" ] || fail "cached clean without an origin flush"
# Reads of data already durable on the origin need none.
f1=$(origin_flushes)
dd if=/dev/mapper/pc of=/dev/null bs=4096 count=64 skip=1000 iflag=direct 2>/dev/null
sleep 1
assert_eq "$(origin_flushes)" "$f1" "origin flushes for read promotions"
dm_remove pc

log "an origin flush before a promotion fails: an error, the copy not made"
modprobe dm-flakey
dmsetup create of --table "0 $half flakey $ORIGIN 0 3600 0"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/of pmcache_create pc mode writearound
# A write to the origin through the target: the next promotion flushes.
dd if=/dev/urandom of=/dev/mapper/pc bs=4096 count=1 seek=5 oflag=direct 2>/dev/null ||
	fail "write around the cache"
dmsetup suspend of
dmsetup reload of --table "0 $half flakey $ORIGIN 0 0 3600 1 error_writes"
dmsetup resume of
used0=$(blocks_of pc 3)
dd if=/dev/mapper/pc of=/dev/null bs=4096 count=1 skip=2000 iflag=direct 2>/dev/null ||
	fail "a read with the origin failing only writes"
sleep 1
assert_eq "$(blocks_of pc 3)" "$used0" "blocks used after a promotion whose flush failed"
[ "$(dm_status_field pc 11)" -ge 1 ] && [ "$(dm_status_field pc 12)" = degraded ] ||
	fail "a failed origin flush is not in errors and health: $(dmsetup status pc)"
log "a message flush whose origin flush fails: EIO, and an error"
errs=$(dm_status_field pc 11)
if dmsetup message pc 0 flush 2>/dev/null; then
	fail "message flush succeeded with the origin failing its flush"
fi
assert_eq "$(dm_status_field pc 11)" $((errs + 1)) "errors after a message flush that failed"
dm_remove pc
dmsetup remove of

log "writeback: a batch's writes fail while the one before is flushed: that one is clean, this one dirty"
# The origin: its first 64 MiB mapped linearly, the rest an error target,
# which takes no flushes. Batches of 64 blocks: A (in the linear part) is
# the first, B (in the error part) the second; A's flush runs beside B's
# failing writes. The slot scan finds A first: written on CPU 0 (the
# allocator's first region), and last (each region hands out its slots
# from the top).
lin=131072
printf '0 %s linear %s 0\n%s %s error\n' $lin "$ORIGIN" $lin $((half - lin)) |
	dmsetup create of || fail "create the half-failing origin"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/of pmcache_create pc writeback_jobs 64
dmsetup message pc 0 writeback_pause 600000 || fail "writeback_pause"
head -c $((64 * 4096)) /dev/urandom > /tmp/wbA
head -c $((64 * 4096)) /dev/urandom > /tmp/wbB
taskset -c 1 dd if=/tmp/wbB of=/dev/mapper/pc bs=4096 seek=20000 oflag=direct 2>/dev/null ||
	fail "writing B"
taskset -c 0 dd if=/tmp/wbA of=/dev/mapper/pc bs=4096 seek=100 oflag=direct 2>/dev/null ||
	fail "writing A"
assert_eq "$(blocks_of pc 4)" 128 "dirty blocks before the flush"
errs=$(dm_status_field pc 11)
if dmsetup message pc 0 flush 2>/dev/null; then
	fail "message flush succeeded with B's writes failing"
fi
sleep 1
assert_eq "$(blocks_of pc 4)" 64 "dirty blocks after A was written back and B failed (B's)"
assert_eq "$(sum_of if="$ORIGIN" bs=4096 skip=100 count=64 iflag=direct)" \
	"$(sha256sum < /tmp/wbA)" "the origin's copy of A"
[ "$(dm_status_field pc 11)" -gt "$errs" ] ||
	fail "writeback's failures are not in errors: $(dmsetup status pc)"
dmesg | grep -q "writeback to the origin failed" ||
	fail "no kernel log line for the failed writeback"
dmsetup suspend of
dmsetup reload of --table "0 $half linear $ORIGIN 0"
dmsetup resume of
dmsetup message pc 0 flush || fail "message flush with the origin healed"
assert_eq "$(blocks_of pc 4)" 0 "dirty blocks after the flush"
assert_eq "$(sum_of if="$ORIGIN" bs=4096 skip=20000 count=64 iflag=direct)" \
	"$(sha256sum < /tmp/wbB)" "the origin's copy of B"
dm_remove pc
dmsetup remove of

log "writeback: a batch some of whose writes fail: only their blocks stay dirty"
# One batch of 64 blocks, none adjacent (a bio each): 32 over the linear
# part, 32 over the error part. The flush that follows the writes covers
# the 32 that reached the origin: they turn clean.
printf '0 %s linear %s 0\n%s %s error\n' $lin "$ORIGIN" $lin $((half - lin)) |
	dmsetup create of || fail "create the half-failing origin"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/of pmcache_create pc writeback_jobs 128
dmsetup message pc 0 writeback_pause 600000 || fail "writeback_pause"
head -c $((64 * 4096)) /dev/urandom > /tmp/wbC
for i in $(seq 0 2 62); do
	dd if=/tmp/wbC of=/dev/mapper/pc bs=4096 skip=$i seek=$((1000 + i)) count=1 \
		oflag=direct 2>/dev/null || fail "writing block $((1000 + i))"
	dd if=/tmp/wbC of=/dev/mapper/pc bs=4096 skip=$((i + 1)) seek=$((20000 + i)) count=1 \
		oflag=direct 2>/dev/null || fail "writing block $((20000 + i))"
done
assert_eq "$(blocks_of pc 4)" 64 "dirty blocks before the flush"
if dmsetup message pc 0 flush 2>/dev/null; then
	fail "message flush succeeded with half its writes failing"
fi
assert_eq "$(blocks_of pc 4)" 32 "dirty blocks after a batch half of whose writes failed"
for i in $(seq 0 2 62); do
	dd if="$ORIGIN" of=/tmp/got bs=4096 skip=$((1000 + i)) count=1 iflag=direct 2>/dev/null
	dd if=/tmp/wbC of=/tmp/want bs=4096 skip=$i count=1 2>/dev/null
	cmp -s /tmp/got /tmp/want || fail "the origin's block $((1000 + i)) after writeback"
done
dmsetup suspend of
dmsetup reload of --table "0 $half linear $ORIGIN 0"
dmsetup resume of
dmsetup message pc 0 flush || fail "message flush with the origin healed"
assert_eq "$(blocks_of pc 4)" 0 "dirty blocks after the flush"
for i in $(seq 0 2 62); do
	dd if="$ORIGIN" of=/tmp/got bs=4096 skip=$((20000 + i)) count=1 iflag=direct 2>/dev/null
	dd if=/tmp/wbC of=/tmp/want bs=4096 skip=$((i + 1)) count=1 2>/dev/null
	cmp -s /tmp/got /tmp/want || fail "the origin's block $((20000 + i)) after the healed flush"
done
dm_remove pc
dmsetup remove of

log "health and errors stay with the device across a table reload"
dmsetup create oe --table "0 $half error"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/oe pmcache_create pc
dd if=/dev/mapper/pc of=/dev/null bs=4096 count=1 2>/dev/null &&
	fail "a read from a failing origin succeeded"
errs=$(dm_status_field pc 11)
[ "$errs" -gt 0 ] && [ "$(dm_status_field pc 12)" = degraded ] ||
	fail "status after a failed read: $(dmsetup status pc)"
# Nothing cached, nothing dirty: the new table sees no error of its own.
dmsetup reload pc --table "$(dmsetup table pc)" || fail "reload"
dmsetup resume pc || fail "resume"
log "after the reload: $(dmsetup status pc)"
[ "$(dm_status_field pc 12)" = degraded ] && [ "$(dm_status_field pc 11)" -ge "$errs" ] ||
	fail "the reload lost the health or the errors: $(dmsetup status pc)"
dmsetup message pc 0 clear_stats
assert_eq "$(dm_status_field pc 11)" 0 "errors after clear_stats"
dm_remove pc
dm_remove oe

log "records found corrupt at load are errors, and stay errors across a reload"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/oa pmcache_create pc
dm_remove pc
# The first 4 KiB of the record area (256 records after the two superblock
# copies): random words, whose checksums do not match.
head -c 4096 /dev/urandom | dd of="$PMEM" bs=4096 seek=2 count=1 conv=notrunc 2>/dev/null
ORIGIN_DEV=/dev/mapper/oa pmcache_create pc
errs=$(dm_status_field pc 11)
[ "$errs" -ge 200 ] && [ "$(dm_status_field pc 12)" = degraded ] ||
	fail "status after a load that dropped corrupt records: $(dmsetup status pc)"
dmsetup reload pc --table "$(dmsetup table pc)" || fail "reload"
dmsetup resume pc || fail "resume"
assert_eq "$(dm_status_field pc 11)" "$errs" "errors after a reload (the load cleared them)"
dmsetup message pc 0 clear_stats
assert_eq "$(dm_status_field pc 11)" 0 "errors after clear_stats"
dm_remove pc

log "an origin that fails every write, a cache all dirty"
dmsetup create oe --table "0 $half linear $ORIGIN 0"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/oe pmcache_create pc sequential_cutoff 0
dmsetup suspend oe
dmsetup reload oe --table "0 $half error"
dmsetup resume oe
dmesg -c >/dev/null
t0=$(date +%s)
# More than the cache holds: once it is all dirty, writes need writeback.
if timeout 120 fio --name=fill --filename=/dev/mapper/pc --direct=1 --rw=write --bs=64k \
	--size=$(( $(sectors "$PMEM") * 512 * 3 / 2 )) >/tmp/fio.out 2>&1; then
	fail "writes beyond the cache succeeded with a failing origin"
fi
t=$(( $(date +%s) - t0 ))
[ "$t" -lt 100 ] || fail "the failing writes took $t s (hung?)"
grep -q "Input/output error" /tmp/fio.out || { tail -5 /tmp/fio.out; fail "fio did not see EIO"; }
dmesg | grep -q "pmcache: no free block, writeback fails: failing a write" ||
	{ dmesg | tail; fail "the failed write is not in the kernel log"; }
log "status: $(dmsetup status pc)"
[ "$(dm_status_field pc 12)" = degraded ] || fail "health: $(dmsetup status pc)"
# The first 64 MiB, dirty in the cache (the origin has none of it).
sum_dirty=$(sum_of if=/dev/mapper/pc bs=1M count=64)
dm_remove pc
# The origin heals: the dirty blocks go to it.
dmsetup suspend oe
dmsetup reload oe --table "0 $half linear $ORIGIN 0"
dmsetup resume oe
ORIGIN_DEV=/dev/mapper/oe pmcache_create pc sequential_cutoff 0
[ "$(blocks_of pc 4)" -gt 0 ] || fail "the dirty blocks did not survive"
dmsetup message pc 0 flush || fail "flush after the origin healed"
assert_eq "$(blocks_of pc 4)" 0 "dirty after flush"
dm_remove pc
assert_eq "$(sum_of if="$ORIGIN" bs=1M count=64 iflag=direct)" "$sum_dirty" \
	"the healed origin's data after the flush"

log "an origin that failed and works again, slowly: writers waiting for a block get no EIO"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/oe pmcache_create pc sequential_cutoff 0
fio --name=some --filename=/dev/mapper/pc --direct=1 --rw=write --bs=64k --size=1M >/dev/null ||
	fail "write before the failure"
dmsetup suspend oe
dmsetup reload oe --table "0 $half error"
dmsetup resume oe
if dmsetup message pc 0 flush 2>/dev/null; then
	fail "a flush succeeded over a failing origin"
fi
# Works again, each I/O 800 ms late: a batch lands (its writes, then its
# flush) long after a writer waiting for a block would give up on a
# writeback still taken for failing; its writes reach the origin sooner.
dmsetup suspend oe
dmsetup reload oe --table "0 $half delay $ORIGIN 0 800"
dmsetup resume oe
dmesg -c >/dev/null
t0=$(date +%s)
timeout 300 fio --name=fill2 --filename=/dev/mapper/pc --direct=1 --rw=write --bs=64k \
	--size=$(( $(sectors "$PMEM") * 512 * 3 / 2 )) >/tmp/fio.out 2>&1 ||
	{ grep -i "error" /tmp/fio.out | head -3; fail "writes failed over an origin that works again"; }
log "1.5 times the cache written in $(($(date +%s) - t0)) s, no write failed"
dmesg | grep -q "no free block, writeback fails" && fail "a write was failed over an origin that works again"
dm_remove pc
dm_remove oe; dm_remove oa; dm_remove ob
log "ok"

#!/bin/sh
# vm-run: --pmem-size 256M --origin-iops 0
# offline-tools: pmcache-tool on the real devices, as an admin runs it when
# the module cannot be loaded. Under a live table it writes to neither device
# (O_EXCL); after the table is removed, check and dump count the dirty blocks
# left in the cache, wipe refuses them, repair brings back a superblock
# copy 0 that a write of zeros reset, rescue refuses a disk that is not
# the origin and writes them to the origin (fio verifies the origin
# itself), and after wipe --force the next create
# formats the cache and reads the data from the origin.
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
# No writeback by age: the dirty counts below must hold still.
pmcache_create pc max_dirty_age 0
job="--name=ot --direct=1 --ioengine=psync --rw=randwrite --bs=4k --size=16M --randseed=7 --verify=crc32c --verify_fatal=1"
fio --filename=/dev/mapper/pc $job --do_verify=0 >/dev/null || fail "write"
dirty=$(dm_status_field pc 4)
[ "$dirty" -gt 0 ] || fail "nothing dirty"
log "dirty blocks: $dirty"

log "under a live table"
pmcache-tool rescue "$PMEM" "$ORIGIN" >/tmp/out 2>&1 && { cat /tmp/out; fail "rescue wrote to the origin of a live table"; }
pmcache-tool wipe "$PMEM" --force >/tmp/out 2>&1 && { cat /tmp/out; fail "wipe wrote to the cache of a live table"; }
pmcache-tool repair "$PMEM" >/tmp/out 2>&1 && { cat /tmp/out; fail "repair opened the cache of a live table"; }
[ "$(dm_status_field pc 4)" = "$dirty" ] || fail "the live cache changed: $(dmsetup status pc)"
# check only reads: under a live table it shows the cache as it is now,
# not as the block device's page cache kept it from its last run.
pmcache-tool check "$PMEM" >/tmp/out 2>&1 || { cat /tmp/out; fail "check under a live table"; }
grep -q " $dirty dirty," /tmp/out || { cat /tmp/out; fail "check under a live table: not $dirty dirty"; }
fio --filename=/dev/mapper/pc --name=more --direct=1 --ioengine=psync --rw=write --bs=4k \
	--size=1M --offset=32M >/dev/null || fail "write more"
dirty=$(dm_status_field pc 4)
pmcache-tool check "$PMEM" >/tmp/out 2>&1 || { cat /tmp/out; fail "check under a live table"; }
grep -q " $dirty dirty," /tmp/out || { cat /tmp/out; fail "check under a live table again: not $dirty dirty (stale pages?)"; }
dm_remove pc

log "check, dump, wipe without --force"
pmcache-tool check "$PMEM" >/tmp/check.out 2>&1 || { cat /tmp/check.out; fail "check of a clean cache"; }
cat /tmp/check.out
grep -q " $dirty dirty," /tmp/check.out || fail "check does not count $dirty dirty blocks"
assert_eq "$(pmcache-tool dump "$PMEM" --records | grep -c ' dirty$')" "$dirty" "dirty blocks dump lists"
rc=0; pmcache-tool wipe "$PMEM" >/tmp/out 2>&1 || rc=$?
assert_eq "$rc" 1 "wipe's exit status over dirty blocks"
grep -q "holds $dirty dirty blocks" /tmp/out || { cat /tmp/out; fail "wipe does not say why"; }

log "repair: the first sector zeroed (a media error cleared so) looks blank; repair brings the cache back"
dd if=/dev/zero of="$PMEM" bs=512 count=1 conv=notrunc,fsync 2>/dev/null || fail "zeroing sector 0"
pmcache-tool check "$PMEM" 2>&1 | grep -q blank || fail "a zeroed superblock copy 0 does not read as blank"
rc=0; pmcache-tool repair "$PMEM" >/tmp/out 2>&1 || rc=$?
assert_eq "$rc" 1 "repair's exit status over a zero copy 0 (a reset?) without --force"
grep -q "$dirty dirty)" /tmp/out || { cat /tmp/out; fail "repair does not name the cache behind copy 0"; }
pmcache-tool check "$PMEM" 2>&1 | grep -q blank || fail "repair without --force wrote"
pmcache-tool repair "$PMEM" --force >/tmp/out 2>&1 || { cat /tmp/out; fail "repair --force"; }
grep -q "copy 0 rewritten from copy 1" /tmp/out || { cat /tmp/out; fail "repair did not rewrite copy 0"; }
pmcache-tool check "$PMEM" >/tmp/out 2>&1 || { cat /tmp/out; fail "check after repair"; }
grep -q " $dirty dirty," /tmp/out || { cat /tmp/out; fail "after repair: not $dirty dirty"; }
pmcache-tool repair "$PMEM" 2>&1 | grep -q "both superblock copies are sound" || fail "repair of a sound cache"

log "rescue onto a disk of the same size that is not the origin: refused"
modprobe loop 2>/dev/null || true
truncate -s "$(blockdev --getsize64 "$ORIGIN")" /tmp/decoy.img
decoy=$(losetup -f) && losetup "$decoy" /tmp/decoy.img || fail "losetup"
rc=0; pmcache-tool rescue "$PMEM" "$decoy" >/tmp/out 2>&1 || rc=$?
assert_eq "$rc" 2 "rescue's exit status onto another disk"
grep -q "but the cache belongs to ${ORIGIN##*/}" /tmp/out || { cat /tmp/out; fail "rescue does not say whose the cache is"; }
[ "$(dd if="$decoy" bs=1M count=16 2>/dev/null | tr -d '\000' | wc -c)" = 0 ] || fail "rescue wrote to another disk"
pmcache-tool rescue "$PMEM" "$decoy" --dry-run --force >/tmp/out 2>&1 || { cat /tmp/out; fail "rescue --force"; }
grep -q "^would write $dirty dirty blocks" /tmp/out || { cat /tmp/out; fail "rescue --force --dry-run"; }
losetup -d "$decoy"
rm -f /tmp/decoy.img

log "rescue"
fio --filename="$ORIGIN" $job --verify_only=1 >/dev/null 2>&1 && fail "the origin held the data before the rescue"
pmcache-tool rescue "$PMEM" "$ORIGIN" >/tmp/out 2>/dev/null || { cat /tmp/out; fail "rescue"; }
grep -q "^wrote $dirty dirty blocks" /tmp/out || { cat /tmp/out; fail "rescue wrote another number of blocks"; }
fio --filename="$ORIGIN" $job --verify_only=1 >/dev/null || fail "the origin does not hold the rescued data"

log "wipe --force, then create"
pmcache-tool wipe "$PMEM" --force >/dev/null || fail "wipe --force"
pmcache-tool check "$PMEM" 2>&1 | grep -q blank || fail "not blank after wipe --force"
dmesg -c >/dev/null
pmcache_create pc
dmesg | grep -q "pmcache: .*formatted" || { dmesg | tail -3; fail "the wiped cache was not formatted"; }
fio --filename=/dev/mapper/pc $job --verify_only=1 >/dev/null || fail "the data through the new cache"
dm_remove pc
log "ok"

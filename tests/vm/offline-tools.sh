#!/bin/sh
# vm-run: --pmem-size 256M --origin-iops 0
# offline-tools: pmcache-tool on the real devices, as an admin runs it when
# the module cannot be loaded. Under a live table it writes to neither device
# (O_EXCL); after the table is removed, check and dump count the dirty blocks
# left in the cache, wipe refuses them, repair brings back a superblock
# copy 0 that a write of zeros reset, check names bad sectors listed in
# the pmem (the module refuses the device then), rescue reads around a bad
# sector among the records,
# rescue refuses a disk that is not
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

log "bad sectors the pmem lists (in copy 1 of the superblock): create refused, check names them"
disk=$(basename "$(readlink -f "$PMEM")")
# QEMU's NVDIMM cannot clear poison (it has no clear-error call): a write
# over a listed sector fails with EIO, as on hardware that cannot clear
# it. Enabled again, the namespace lists none (no real poison here), as
# after a reboot: the pmem keeps its data.
relist_bad_sectors() {
	ndctl disable-namespace namespace0.0 >/dev/null &&
		ndctl enable-namespace namespace0.0 >/dev/null || fail "enabling the namespace again"
	for _ in 1 2 3 4 5 6 7 8 9 10; do [ -b "$PMEM" ] && break; sleep 0.5; done
	assert_eq "$(cat "/sys/block/$disk/badblocks")" "" "bad sectors after the namespace came back"
}
echo "8 8" > "/sys/block/$disk/badblocks" || fail "listing bad sectors"
dmesg -c >/dev/null
dmsetup create pc --table "0 $(sectors "$ORIGIN") pmcache $PMEM $ORIGIN 0" 2>/dev/null &&
	fail "created over bad sectors"
dmesg | grep -q "cache device has bad blocks" || { dmesg | tail -3; fail "the refusal does not name bad blocks"; }
rc=0; pmcache-tool check "$PMEM" >/tmp/out 2>&1 || rc=$?
cat /tmp/out
assert_eq "$rc" 1 "check's exit status over bad sectors"
grep -q "^bad sectors: *8 at sector 8 of the cache" /tmp/out || fail "check does not name the bad sectors"
grep -q " $dirty dirty," /tmp/out || fail "check over bad sectors: not $dirty dirty"
relist_bad_sectors
pmcache-tool check "$PMEM" >/tmp/out 2>&1 || { cat /tmp/out; fail "check once no sector is listed bad"; }

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

log "a bad sector among the records: rescue reads the rest of their page, losing only that sector's"
few="--name=few --direct=1 --rw=write --bs=4k --size=256k --offset=64M --verify=crc32c --verify_fatal=1"
fio --filename=/dev/mapper/pc $few --do_verify=0 >/dev/null || fail "write 64 blocks"
dm_remove pc
pmcache-tool dump "$PMEM" --records | awk '$4 == "dirty" { print $1 }' > /tmp/slots
assert_eq "$(wc -l < /tmp/slots)" 64 "dirty blocks"
# Record of slot s: byte 8192 + 16 s, sector 16 + s / 32, page 2 + s / 256.
# Two sectors holding none of them, in the page of the first one's: one
# bad, one with a corrupt record, which recovery clears in the tool's
# private mapping (a store into a page the device cannot read).
# shellcheck disable=SC2046 # words
set -- $(awk '{ held[16 + int($1 / 32)] = 1; if (NR == 1) page = 2 + int($1 / 256) }
	END { for (x = 8 * page; x < 8 * page + 8; x++) if (!(x in held)) print x }' /tmp/slots)
[ $# -ge 2 ] || fail "fewer than two sectors of the first dirty record's page hold no dirty record"
bad=$1 junk=$2
head -c 16 /dev/urandom | dd of="$PMEM" bs=16 seek=$((junk * 32)) count=1 conv=notrunc,fsync 2>/dev/null ||
	fail "writing a corrupt record"
echo "$bad 1" > "/sys/block/$disk/badblocks" || fail "listing a bad sector"
rc=0; pmcache-tool rescue "$PMEM" "$ORIGIN" >/tmp/out 2>&1 || rc=$?
cat /tmp/out
assert_eq "$rc" 1 "rescue's exit status over 32 unreadable records and a corrupt one"
grep -q "^33 corrupt and 0 out-of-range records" /tmp/out || fail "not 33 corrupt records"
grep -q "^wrote 64 dirty blocks" /tmp/out || fail "rescue lost dirty blocks whose records share a page with a bad sector"
fio --filename="$ORIGIN" $few --verify_only=1 >/dev/null || fail "the origin does not hold the rescued blocks"
relist_bad_sectors
rc=0; pmcache-tool check "$PMEM" >/tmp/out 2>&1 || rc=$?
assert_eq "$rc" 1 "check's exit status once no sector is listed bad (the corrupt record)"
grep -q "^records: *1 corrupt" /tmp/out || { cat /tmp/out; fail "check once no sector is listed bad: not 1 corrupt record"; }
pmcache-tool wipe "$PMEM" --force >/dev/null || fail "wipe --force after the rescue"
log "ok"

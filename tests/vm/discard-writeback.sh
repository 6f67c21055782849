#!/bin/sh
# vm-run: --pmem-size 128M --origin-iops 100 --timeout 300 --kernel-args slub_debug=FZ
# discard-writeback: a discard of a block whose writeback is in flight
# leaves a tombstone; a sub-block write to that block waits for the
# writeback, retrying, and then lands intact (the retry once reused a freed
# bounce buffer and freed it again: slub_debug reports that double free).
# A discard of the whole device, far larger than the cache, drops every
# cached block.
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc
dev=/dev/mapper/pc
# 256 dirty blocks 256 KiB apart: one writeback batch of 256 separate origin
# writes, about 2.5 s at 100 IOPS.
fio --name=spread --filename=$dev --direct=1 --rw=write:252k --bs=4k --size=64M \
	--output-format=terse >/dev/null || fail "spread writes"
assert_eq "$(dm_status_field pc 4)" 256 "dirty blocks"
b=$((200 * 64))
dmsetup message pc 0 flush &
fpid=$!
writeback_in_flight() { [ "$(dm_status_field pc 10)" -gt 0 ]; }
wait_until 100 0.05 "writeback never started" writeback_in_flight
log "writeback in flight: $(dmsetup status pc)"
blkdiscard -o $((b * 4096)) -l 4096 $dev || fail "blkdiscard"
part="--name=part --filename=$dev --direct=1 --rw=write --bs=512 --size=512 --offset=$((b * 4096 + 1536)) --verify=crc32c --verify_fatal=1"
writeback_in_flight || fail "the writeback ended before the write: no retry to test"
fio $part --do_verify=0 >/dev/null || fail "sub-block write after the discard"
wait $fpid || fail "flush"
fio $part --verify_only=1 >/dev/null || fail "the sub-block write did not land"

log "discard of the whole device"
[ "$(dm_status_field pc 3)" -gt 0 ] || fail "nothing cached before the whole discard"
blkdiscard $dev || fail "blkdiscard of the whole device"
assert_eq "$(dm_status_field pc 3)" 0 "blocks left after discarding everything"
dm_remove pc
log "ok"

#!/bin/sh
# vm-run: --pmem-size 128M --origin-iops 100 --timeout 300
# discard-writeback: a discard of a block whose writeback is in flight
# leaves a tombstone; a sub-block write to that block waits for the
# writeback, retrying, and then lands intact (the retry once reused a freed
# bounce buffer and freed it again). A discard of the whole device, far
# larger than the cache, drops every cached block.
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc
dev=/dev/mapper/pc
# 256 dirty blocks 256 KiB apart: one writeback batch of 256 separate origin
# writes, about 2.5 s at 100 IOPS.
i=0
while [ $i -lt 256 ]; do
	dd if=/dev/urandom of=$dev bs=4096 count=1 seek=$((i * 64)) oflag=direct 2>/dev/null
	i=$((i + 1))
done
assert_eq "$(dm_status_field pc 4)" 256 "dirty blocks"
b=$((200 * 64))
head -c 512 /dev/urandom > /tmp/pattern
dmsetup message pc 0 flush &
fpid=$!
i=0
until [ "$(dm_status_field pc 10)" -gt 0 ]; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "writeback never started"
	sleep 0.05
done
log "writeback in flight: $(dmsetup status pc)"
blkdiscard -o $((b * 4096)) -l 4096 $dev || fail "blkdiscard"
dd if=/tmp/pattern of=$dev bs=512 count=1 seek=$((b * 8 + 3)) oflag=direct 2>/dev/null ||
	fail "sub-block write after the discard"
wait $fpid || fail "flush"
dd if=$dev of=/tmp/back bs=512 count=1 skip=$((b * 8 + 3)) iflag=direct 2>/dev/null
cmp -s /tmp/pattern /tmp/back || fail "the sub-block write did not land"

log "discard of the whole device"
[ "$(dm_status_field pc 3)" -gt 0 ] || fail "nothing cached before the whole discard"
blkdiscard $dev || fail "blkdiscard of the whole device"
assert_eq "$(dm_status_field pc 3)" 0 "blocks left after discarding everything"
dm_remove pc
log "ok"

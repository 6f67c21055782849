#!/bin/sh
# vm-run: --pmem-size 48M --origin-iops 3000 --timeout 900
# cache-full: writing three times the cache with random 4 KiB blocks, the
# cache fills with dirty data; writers wait for writeback, nothing fails and
# every block verifies.
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc high_watermark 95 low_watermark 90
total=$(dm_status_field pc 2)
log "cache: $total blocks"
fio --name=full --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=randwrite \
    --bs=4k --size=$((total * 4096 * 3)) --numjobs=2 --offset_increment=$((total * 4096 * 3)) \
    --verify=crc32c --verify_fatal=1 --output-format=terse >/tmp/fio.out || { cat /tmp/fio.out; fail "fio"; }
log "status: $(dmsetup status pc)"
assert_eq "$(dm_status_field pc 11)" 0 "errors"
[ "$(dm_status_field pc 9)" -ge "$total" ] || fail "writeback did not run through the cache"
dm_remove pc
log "ok"

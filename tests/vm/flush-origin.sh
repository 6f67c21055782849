#!/bin/sh
# vm-run: --pmem-size 256M --origin-iops 0
# flush-origin: write through the cache, "message flush", remove; the origin
# alone then holds every block (verified by fio on the origin itself).
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc
job="--name=fo --direct=1 --ioengine=psync --rw=randwrite --bs=4k --size=96M --randseed=42 --verify=crc32c --verify_fatal=1"
fio --filename=/dev/mapper/pc $job --do_verify=0 >/dev/null || fail "write"
dirty=$(dm_status_field pc 4)
log "dirty after write: $dirty"
[ "$dirty" -gt 20000 ] || fail "expected the writes to be cached dirty"
dmsetup message pc 0 flush || fail "message flush"
assert_eq "$(dm_status_field pc 4)" 0 "dirty after flush"
[ "$(dm_status_field pc 9)" -ge "$dirty" ] || fail "writebacks done < dirty"
dm_remove pc
fio --filename="$ORIGIN" $job --verify_only=1 >/tmp/fio.out || { cat /tmp/fio.out; fail "origin does not hold the data"; }

# Blocks dirty for longer than max_dirty_age are written back unasked.
pmcache_create pc max_dirty_age 2000
assert_eq "$(dm_table_field pc 4)" "max_dirty_age" "table printed back"
fio --name=age --filename=/dev/mapper/pc --direct=1 --rw=randwrite --bs=4k --size=4M \
    --offset=512M >/dev/null || fail "age write"
[ "$(dm_status_field pc 4)" -gt 0 ] || fail "nothing dirty after the age write"
i=0
while [ "$(dm_status_field pc 4)" -gt 0 ]; do
	i=$((i + 1)); [ $i -le 10 ] || fail "still $(dm_status_field pc 4) dirty blocks 10 s after writing"
	sleep 1
done
log "dirty blocks written back by age within $i s"
dm_remove pc
log "ok"

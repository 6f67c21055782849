#!/bin/sh
# vm-run: --pmem-size 128M --origin-iops 2000 --timeout 900
# modes: switch writeback -> writethrough -> writearound -> passthrough ->
# writeback by table reload, with dirty data present and under I/O; fio
# verify stays clean throughout, clean blocks survive the switches.
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc
job="--name=m --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=randwrite --bs=4k --size=96M --randseed=99 --verify=crc32c --verify_fatal=1"
fio --name=pre --filename=/dev/mapper/pc --direct=1 --rw=write --bs=64k --size=32M --offset=1G --verify=crc32c --do_verify=0 >/dev/null
[ "$(dm_status_field pc 4)" -gt 0 ] || fail "no dirty data before the switches"
fio $job --loops=3 --output-format=terse >/tmp/fio.out 2>&1 &
fpid=$!
switch() { # mode
	dmsetup reload pc --table "$(pmcache_table mode "$1")" || fail "reload to $1"
	dmsetup resume pc || fail "resume in $1"
	assert_eq "$(dm_table_field pc 5)" "$1" "table mode"
	assert_eq "$(dm_status_field pc 13)" "$1" "status mode"
	log "now $1: $(dmsetup status pc)"
	sleep 4
}
sleep 3
switch writethrough
switch writearound
# passthrough is refused while dirty blocks exist: flush first.
if [ "$(dm_status_field pc 4)" -gt 0 ]; then
	dmsetup reload pc --table "$(pmcache_table mode passthrough)" 2>/dev/null &&
		fail "passthrough accepted with dirty blocks"
fi
dmsetup message pc 0 flush || fail "flush"
switch passthrough
switch writeback
wait $fpid || { cat /tmp/fio.out; fail "fio across mode switches"; }
# Its last loop's verify has just checked the data. A verify_only after the
# re-create would also pass over blocks of the earlier loops (same offsets,
# valid headers): compare sums.
sum=$(sum_of if=/dev/mapper/pc bs=1M count=96)
[ "$(dm_status_field pc 3)" -gt 0 ] || fail "no cached blocks left"
fio --name=pre --filename=/dev/mapper/pc --direct=1 --rw=write --bs=64k --size=32M --offset=1G \
    --verify=crc32c --verify_only=1 >/dev/null || fail "pre-switch data"
dm_remove pc
pmcache_create pc
fio $job --verify_only=1 >/tmp/fio.out || { cat /tmp/fio.out; fail "verify after re-create"; }
assert_eq "$(sum_of if=/dev/mapper/pc bs=1M count=96)" "$sum" "the data after re-create"
dm_remove pc
log "ok"

#!/bin/sh
# vm-run: --pmem-size 128M --origin-iops 2000 --timeout 900
# reload-under-io: suspend/resume and table reloads while fio writes and
# verifies; then remove + create finds every block.
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc
table=$(dmsetup table pc)
job="--name=rl --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=randwrite --bs=4k --size=160M --randseed=7 --verify=crc32c --verify_fatal=1"
fio $job --output-format=terse >/tmp/fio.out 2>&1 &
fpid=$!
i=0
while [ $i -lt 6 ] && kill -0 $fpid 2>/dev/null; do
	sleep 2
	dmsetup suspend pc && dmsetup resume pc || fail "suspend/resume"
	sleep 1
	dmsetup reload pc --table "$(pmcache_table)" && dmsetup resume pc || fail "reload"
	i=$((i + 1))
done
wait $fpid || { cat /tmp/fio.out; fail "fio during reloads"; }
[ $i -ge 3 ] || fail "fio finished before enough reloads ($i)"
log "$i reload cycles; $(dmsetup status pc)"
dm_remove pc
pmcache_create pc
fio $job --verify_only=1 >/tmp/fio.out || { cat /tmp/fio.out; fail "verify after re-create"; }
assert_eq "$(dm_status_field pc 11)" 0 "errors"
dm_remove pc
log "ok"

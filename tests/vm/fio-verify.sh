#!/bin/sh
# vm-run: --pmem-size 128M --origin-iops 0 --timeout 900
# fio-verify: data written through the cache reads back right (crc32c), for
# random and sequential I/O of 512 B, 4 KiB, 64 KiB and 1 MiB, unaligned
# offsets, variable sizes and two jobs, over a working set more than twice
# the cache (128 MiB of pmem; the first job alone writes more than it holds)
# so that writeback, eviction and reuse all happen.
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc block_size 4096 high_watermark 40 low_watermark 20
dev=/dev/mapper/pc
cache_blocks=$(dm_status_field pc 2)
log "cache: $cache_blocks blocks"

v() { # name, fio options...: write then verify, fail on any error
	n=$1; shift
	log "$n"
	fio --name="$n" --filename=$dev --direct=1 --ioengine=psync \
	    --verify=crc32c --verify_fatal=1 --group_reporting \
	    --output-format=terse "$@" >/tmp/fio.out || { cat /tmp/fio.out; fail "fio $n"; }
	awk -F';' '{ if ($5 != 0) exit 1 }' /tmp/fio.out || fail "fio $n reported errors"
}

v rand4k-2jobs --rw=randwrite --bs=4k --size=72M --numjobs=2 --offset_increment=72M
v seq1m --rw=write --bs=1M --size=64M --offset=512M
v rand64k --rw=randwrite --bs=64k --size=32M --offset=1G
v rand512 --rw=randwrite --bs=512 --size=4M --offset=1536M
v unaligned4k --rw=write --bs=4k --size=16M --offset=1677722112
v unaligned-var --rw=randwrite --bsrange=512-12k --blockalign=512 --size=16M --offset=1700M
v mixed-rw --rw=randrw --bs=4k --size=16M --offset=256M --numjobs=2 --offset_increment=16M

# Everything written is read again in one pass over the cache + origin mix.
log "re-verify rand4k after the other jobs pushed it out"
fio --name=rand4k-2jobs --filename=$dev --direct=1 --ioengine=psync --rw=randwrite \
    --bs=4k --size=72M --numjobs=2 --offset_increment=72M --verify=crc32c \
    --verify_only=1 --verify_fatal=1 --output-format=terse >/tmp/fio.out || { cat /tmp/fio.out; fail "re-verify"; }

st=$(dmsetup status pc)
log "status: $st"
assert_eq "$(dm_status_field pc 11)" 0 "errors"
assert_eq "$(dm_status_field pc 12)" ok "health"
[ "$(dm_status_field pc 9)" -gt 0 ] || fail "no writeback happened"
[ "$(dm_status_field pc 15)" -gt 0 ] || fail "no eviction happened"
dm_remove pc
log "ok"

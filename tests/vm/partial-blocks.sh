#!/bin/sh
# vm-run: --pmem-size 128M --origin-iops 0
# partial-blocks: writes smaller than a cache block at any 512-byte alignment,
# to blocks that are uncached, cached dirty and cached clean; every read
# returns the right data, in the cache and on the origin after a flush. An
# origin whose size is no multiple of the block size is cached whole.
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
# sequential_cutoff 0: the sequential fill below is cached whole.
pmcache_create pc sequential_cutoff 0
dev=/dev/mapper/pc
fv() { # name, options: write + verify
	n=$1; shift
	log "$n"
	fio --name="$n" --filename=$dev --direct=1 --ioengine=psync --verify=crc32c \
	    --verify_fatal=1 --output-format=terse "$@" >/tmp/fio.out || { cat /tmp/fio.out; fail "$n"; }
}
# 1. Uncached: 512 B and 1.5 KiB writes go around the cache.
fv uncached512 --rw=randwrite --bs=512 --size=4M --offset=0
fv uncached1536 --rw=randwrite --bs=1536 --blockalign=512 --size=6M --offset=8M
# 2. Cached dirty: fill with 4 KiB blocks, then overwrite pieces of them.
fio --name=fill --filename=$dev --direct=1 --rw=write --bs=64k --size=16M --offset=16M >/dev/null
[ "$(dm_status_field pc 3)" -ge 4096 ] || fail "the 16 MiB fill is not all cached"
fv dirty512 --rw=randwrite --bs=512 --size=8M --offset=16M
fv dirty-var --rw=randwrite --bsrange=512-3584 --blockalign=512 --size=8M --offset=24M
# 3. Cached clean: flush, then overwrite pieces again.
dmsetup message pc 0 flush
assert_eq "$(dm_status_field pc 4)" 0 "dirty after flush"
# A pattern of its own, not crc32c headers: dirty512 wrote the same offsets
# with valid headers, which a lost clean512 write would leave in place.
fv clean512 --rw=randwrite --bs=512 --size=8M --offset=16M \
	--verify=pattern --verify_pattern=0x5a5a5a5a%o
[ "$(dm_status_field pc 7)" -gt 0 ] || fail "no partial write hit the cache"
# 4. The device and the origin agree after flush + remove.
sum_dev=$(sum_of if=$dev bs=1M count=40)
dmsetup message pc 0 flush
dm_remove pc
sum_org=$(sum_of if="$ORIGIN" bs=1M count=40 iflag=direct)
assert_eq "$sum_org" "$sum_dev" "origin vs cache device checksum"

# The smallest cache block: 512 bytes, so no write is partial.
pmcache_create pc block_size 512 format
assert_eq "$(dm_status_field pc 1)" 512 "block size"
fv bs512-var --rw=randwrite --bsrange=512-64k --size=16M --offset=64M
dmsetup message pc 0 flush
dm_remove pc
pmcache_create pc block_size 512
fio --name=bs512-var --filename=$dev --direct=1 --ioengine=psync --rw=randwrite --bsrange=512-64k \
    --size=16M --offset=64M --verify=crc32c --verify_only=1 >/dev/null || fail "512-byte blocks after re-create"
dm_remove pc
# 5. A partial write that went around the cache (its block was not cached)
# and still waits on its way to the origin, held there for 8 s by the io.max of its
# cgroup, must not be overtaken by the writeback of a whole-block write
# cached after it: the origin would end with the partial write on top,
# while the cache holds, as clean, the whole block without it.
log "writeback behind a write around the cache"
pmcache_create pc format
slow_cgroup 64
b=25000	# an uncached block
misses=$(dm_status_field pc 8)
# fio, not dd: busybox dd takes oflag=direct but writes through the page cache.
sh -c 'echo $$ >/sys/fs/cgroup/slow/cgroup.procs
	exec fio --name=part --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=write \
		--bs=512 --size=512 --offset=$(($1 * 4096)) --buffer_pattern=0x11 >/dev/null' sh "$b" &
slow=$!
missed() { [ "$(dm_status_field pc 8)" -gt "$misses" ]; }
wait_until 100 0.05 "the partial write did not go to the origin" missed
fio --name=whole --filename=$dev --direct=1 --ioengine=psync --rw=write --bs=4096 --size=4096 \
    --offset=$((b * 4096)) --buffer_pattern=0x22 >/dev/null
assert_eq "$(dm_status_field pc 4)" 1 "the whole-block write is cached dirty"
kill -0 $slow 2>/dev/null || fail "the partial write was not held (no io.max?)"
dmsetup message pc 0 flush
wait $slow || fail "the partial write failed"
sum_dev=$(sum_of if=$dev bs=4096 skip=$b count=1)
dm_remove pc
sum_org=$(sum_of if="$ORIGIN" bs=4096 skip=$b count=1 iflag=direct)
assert_eq "$sum_org" "$sum_dev" "the block on the origin vs its clean copy in the cache"

log "an origin whose size is no multiple of the block size: the whole of it, its last partial block too"
# 8 MiB and 3 sectors (a partition of an odd size): the table covers all of it.
odd=$((8 * 2048 + 3))
dmsetup create oddorigin --table "0 $odd linear $ORIGIN $((64 * 2048))" || fail "create oddorigin"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/oddorigin pmcache_create pc sequential_cutoff 0
assert_eq "$(sectors $dev)" "$odd" "sectors of the cached device"
# 512 B to 8 KiB at any 512-byte alignment over all of it, its end too
fv odd --rw=randwrite --bsrange=512-8k --blockalign=512 --size=$((odd * 512)) --offset=0 \
	--norandommap --number_ios=6000
fio --name=tail --filename=$dev --direct=1 --rw=write --bs=512 --size=3584 \
	--offset=$(((odd - 7) * 512)) --verify=crc32c --verify_fatal=1 >/dev/null ||
	fail "the last 3.5 KiB, the partial block and the one before"
dmsetup message pc 0 flush || fail "flush"
sum_dev=$(sum_of if=$dev bs=512 count=$odd)
dm_remove pc
assert_eq "$(sum_of if=/dev/mapper/oddorigin bs=512 count=$odd iflag=direct)" "$sum_dev" \
	"the odd-sized origin after the flush vs what the cache read"
dm_remove oddorigin
log "ok"

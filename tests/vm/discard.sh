#!/bin/sh
# vm-run: --pmem-size 128M --origin-iops 0
# discard: a discard drops the cached blocks it covers (dirty ones too),
# leaves the others intact, and the dropped blocks stay dropped after a
# remove + create (the drop is durable); all that also over an origin that
# takes no discard (the target then ends discards itself).
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc sequential_cutoff 0
dev=/dev/mapper/pc
job="--direct=1 --ioengine=psync --rw=write --bs=64k --verify=crc32c --verify_fatal=1"
fio --name=a --filename=$dev $job --size=16M --offset=0 >/dev/null || fail "write a"
fio --name=b --filename=$dev $job --size=16M --offset=16M >/dev/null || fail "write b"
used=$(dm_status_field pc 3)
assert_eq "$used" 8192 "used blocks after 32 MiB"
blkdiscard -o 0 -l $((16 * 1024 * 1024)) $dev || fail "blkdiscard"
assert_eq "$(dm_status_field pc 3)" 4096 "used blocks after discarding 16 MiB"
assert_eq "$(dm_status_field pc 4)" 4096 "dirty blocks after discarding 16 MiB"
# A discard that covers only parts of blocks drops none of them.
pc_discards() { awk '{ print $12 }' "/sys/block/dm-$(dmsetup info -c --noheadings -o minor pc)/stat"; }
d0=$(pc_discards)
blkdiscard -o $((16 * 1024 * 1024 + 512)) -l 3072 $dev || fail "partial blkdiscard"
[ "$(pc_discards)" -gt "$d0" ] || fail "the partial discard never reached pc"
assert_eq "$(dm_status_field pc 3)" 4096 "partial discard dropped a block"
fio --name=b --filename=$dev $job --size=16M --offset=16M --verify_only=1 >/tmp/fio.out || { cat /tmp/fio.out; fail "b after discard"; }
dm_remove pc
pmcache_create pc sequential_cutoff 0
assert_eq "$(dm_status_field pc 3)" 4096 "used blocks after re-create"
fio --name=b --filename=$dev $job --size=16M --offset=16M --verify_only=1 >/dev/null || fail "b after re-create"
dm_remove pc

log "an origin that takes no discard (a loop device on ramfs)"
modprobe loop 2>/dev/null || true
mkdir -p /mnt/nodiscard
mount -t ramfs ramfs /mnt/nodiscard || fail "mount ramfs"
dd if=/dev/zero of=/mnt/nodiscard/origin bs=1M count=64 2>/dev/null
lo=$(losetup -f) && losetup "$lo" /mnt/nodiscard/origin || fail "losetup"
assert_eq "$(cat "/sys/block/${lo#/dev/}/queue/discard_max_bytes")" 0 \
	"discard_max_bytes of the loop device (the test needs an origin that takes none)"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=$lo pmcache_create pc sequential_cutoff 0
q=/sys/block/dm-$(dmsetup info -c --noheadings -o minor pc)/queue
[ "$(cat $q/discard_max_bytes)" -gt 0 ] ||
	fail "pmcache over an origin that takes no discard takes none either"
fio --name=c --filename=$dev $job --size=4M --offset=0 >/dev/null || fail "write c"
fio --name=d --filename=$dev $job --size=4M --offset=4M >/dev/null || fail "write d"
assert_eq "$(dm_status_field pc 3)" 2048 "used blocks after 8 MiB"
blkdiscard -o 0 -l $((4 * 1024 * 1024)) $dev || fail "blkdiscard over an origin that takes none"
assert_eq "$(dm_status_field pc 3)" 1024 "used blocks after discarding 4 MiB"
assert_eq "$(dm_status_field pc 4)" 1024 "dirty blocks after discarding 4 MiB"
assert_eq "$(dm_status_field pc 11)" 0 "errors after the discard"
fio --name=d --filename=$dev $job --size=4M --offset=4M --verify_only=1 >/tmp/fio.out ||
	{ cat /tmp/fio.out; fail "d after the discard"; }
dmsetup message pc 0 flush || fail "flush"
dm_remove pc
losetup -d "$lo"
umount /mnt/nodiscard
# A read that misses while a discard of its block is on its way to the
# origin (held there for 8 s by the io.max of the discarding cgroup: wbps=64, a
# discard counts as 512 bytes; long enough for a slow fio start) reads
# the data the discard is about to drop: its promotion must not install it,
# or the cache would keep serving it after the origin dropped it.
log "a read beside a discard in flight: no copy of the dropped data"
b=3000	# a block the cache does not hold
dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null
dd if=/tmp/blk of="$ORIGIN" bs=4096 seek=$b count=1 conv=notrunc 2>/dev/null
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc promote always
slow_cgroup 64
sh -c 'echo $$ >/sys/fs/cgroup/slow/cgroup.procs
	exec blkdiscard -o $(($1 * 4096)) -l 4096 /dev/mapper/pc' sh "$b" &
slow=$!
# In flight in pc (dm counts a discard as a write): it passed the cache's
# map, and waits at the origin. Else the read could come first and test
# nothing.
inflight=/sys/block/dm-$(dmsetup info -c --noheadings -o minor pc)/inflight
discard_held() { [ "$(awk '{ print $2 }' "$inflight")" -ge 1 ]; }
wait_until 100 0.05 "the discard did not reach the cache" discard_held
promotions=$(dm_status_field pc 14)
fio --name=r --filename=$dev --direct=1 --ioengine=psync --rw=read --bs=4k --size=4k \
    --offset=$((b * 4096)) >/dev/null || fail "read"
discard_held || fail "the discard was not held until after the read (no io.max?)"
wait $slow || fail "the discard failed"
sleep 1	# let a promotion, if any, finish
sum_dev=$(sum_of if=$dev bs=4096 skip=$b count=1)
sum_org=$(sum_of if="$ORIGIN" bs=4096 skip=$b count=1 iflag=direct)
log "promotions: $promotions before the read, $(dm_status_field pc 14) after"
assert_eq "$sum_dev" "$sum_org" "the block through the cache vs on the origin after the discard"
# Else the test shows nothing: the origin must have dropped the data.
[ "$sum_org" != "$(sha256sum < /tmp/blk)" ] || fail "the origin kept the discarded block"
dm_remove pc
log "ok"

#!/bin/sh
# vm-run: --pmem-size 128M --origin-iops 0
# reader-buffer: a reader that changes its O_DIRECT buffer while its read
# of uncached blocks is in flight gets what it gets, but the cache keeps
# the origin's data: a promotion copies from pages of its own, never from
# the reader's (else one reader could change what every other one reads).
# Likewise a writethrough writer's clean copies equal what the origin got.
# The reader: fio reading through the cache into a buffer that a second
# fio, reading a loop device full of 0xee, overwrites all the time (both
# map the same tmpfs file as their buffer: iomem=mmapshared).
. "$SCRIPTDIR/lib.sh"

modprobe loop
dd if=/dev/urandom of="$ORIGIN" bs=1M count=8 2>/dev/null
sync
head -c 4194304 /dev/zero | tr '\0' '\356' > /tmp/ee.img
ee=$(losetup -f) && losetup "$ee" /tmp/ee.img || fail "losetup"
head -c 65536 /dev/zero > /dev/shm/buf	# kept: fio maps it, shared

# start_scribbler: the second fio, overwriting the shared buffer until killed.
start_scribbler() {
	fio --name=scribble --filename="$ee" --direct=1 --rw=read --bs=4k --time_based \
	    --runtime=600 --iomem=mmapshared:/dev/shm/buf >/tmp/scribble.out 2>&1 &
	scribbler=$!
	sleep 1
	kill -0 $scribbler 2>/dev/null || { cat /tmp/scribble.out; fail "the scribbling fio did not start"; }
}

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc promote always sequential_cutoff 0
start_scribbler
fio --name=reader --filename=/dev/mapper/pc --direct=1 --rw=randread --bs=4k --size=8M \
    --iomem=mmapshared:/dev/shm/buf >/dev/null || fail "the reader's fio"
kill $scribbler
wait $scribbler 2>/dev/null || true
promotions=$(dm_status_field pc 14)
[ "$promotions" -ge 2048 ] || fail "only $promotions promotions: the reads were not misses"
log "$promotions blocks promoted; comparing the cache with the origin"
# Page cache reads of the dm device: every block is a hit now.
hits=$(dm_status_field pc 5)
sum_dev=$(sum_of if=/dev/mapper/pc bs=1M count=8)
[ "$(dm_status_field pc 5)" -gt "$hits" ] || fail "the check did not read from the cache"
sum_org=$(sum_of if="$ORIGIN" bs=1M count=8 iflag=direct)
if [ "$sum_dev" != "$sum_org" ]; then
	n=0 b=0
	while [ $b -lt 2048 ]; do
		x=$(sum_of if=/dev/mapper/pc bs=4096 skip=$b count=1)
		y=$(sum_of if="$ORIGIN" bs=4096 skip=$b count=1 iflag=direct)
		[ "$x" = "$y" ] || n=$((n + 1))
		b=$((b + 1))
	done
	fail "$n of 2048 cached blocks differ from the origin: the reader's changes went into the cache"
fi
dm_remove pc

# The same for a writer in writethrough mode: the origin and the clean copy
# of each block must hold the same bytes, whatever the buffer held when.
log "a writer changing its buffer during writethrough writes"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc mode writethrough promote always sequential_cutoff 0
start_scribbler
fio --name=writer --filename=/dev/mapper/pc --direct=1 --rw=randwrite --bs=4k --size=8M \
    --offset=16M --iomem=mmapshared:/dev/shm/buf >/dev/null || fail "the writer's fio"
kill $scribbler
wait $scribbler 2>/dev/null || true
promotions=$(dm_status_field pc 14)
[ "$promotions" -ge 1024 ] || fail "only $promotions clean copies of 2048 writes"
hits=$(dm_status_field pc 5)
sum_dev=$(sum_of if=/dev/mapper/pc bs=1M skip=16 count=8)
[ "$(dm_status_field pc 5)" -gt "$hits" ] || fail "the check did not read from the cache"
dm_remove pc
sum_org=$(sum_of if="$ORIGIN" bs=1M skip=16 count=8 iflag=direct)
assert_eq "$sum_dev" "$sum_org" "the clean copies vs the origin after writes from a changing buffer"
losetup -d "$ee"
log "ok"

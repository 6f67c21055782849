#!/bin/sh
# vm-run: --pmem-size 48M --origin-iops 3000 --timeout 900
# cache-full: writing three times the cache with random 4 KiB blocks, the
# cache fills with dirty data; writers wait for writeback, nothing fails and
# every block verifies. Then flush: one in progress gives way to a suspend;
# one while writers outrun writeback returns once the blocks dirty when it
# began are on the origin (fio verifies the origin itself).
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

# dm waits for a message to end before it suspends: a flush must give up
# at the start of a suspend, not hold it until the cache is clean.
log "a flush in progress gives way to a suspend"
modprobe dm-delay
dmsetup create slow --table "0 $(sectors "$ORIGIN") delay $ORIGIN 0 0 $ORIGIN 0 2000"
assert_blockdev slow
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
# 16 writeback writes at a time, 2 s each: 2048 blocks take minutes.
ORIGIN_DEV=/dev/mapper/slow pmcache_create pc writeback_jobs 16
fio --name=d --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=randwrite --bs=4k \
    --size=8M >/dev/null || fail "write"
dirty=$(dm_status_field pc 4)
dmsetup message pc 0 flush 2>/tmp/flush.err &
fpid=$!
sleep 3
kill -0 $fpid 2>/dev/null || fail "the flush ended before the suspend (dirty: $dirty)"
t0=$(date +%s)
dmsetup suspend pc || fail "suspend"
t=$(( $(date +%s) - t0 ))
log "suspend took $t s, $(dm_status_field pc 4) of $dirty blocks still dirty"
[ "$t" -lt 15 ] || fail "the suspend waited $t s for the flush"
if wait $fpid; then fail "the flush succeeded with dirty blocks left"; fi
grep -qi "busy" /tmp/flush.err || { cat /tmp/flush.err; fail "the flush's error is not EBUSY"; }
[ "$(dm_status_field pc 4)" -gt 0 ] || fail "no dirty blocks left: the test showed nothing"
dmsetup resume pc
dm_remove pc
dm_remove slow
log "a flush while writes go on"
# A flush while writes go on: it writes back the blocks dirty when it
# began and returns, however fast the writers dirty others. The origin
# takes 20 ms a write (dm-delay) and writeback 8 blocks at a time, so the
# writers (1500 IOPS) outrun writeback: a flush that waited for a clean
# cache would wait for them to stop, and then for their blocks. Half of
# their writes rewrite the flush's own blocks (with the same bytes), so
# that the copies it waits for keep moving: once it returns, the origin
# must hold those 8 MiB.
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
echo "0 $(sectors "$ORIGIN") delay $ORIGIN 0 0 $ORIGIN 0 20 $ORIGIN 0 0" | dmsetup create od ||
	fail "dm-delay"
ORIGIN_DEV=/dev/mapper/od pmcache_create pc writeback_jobs 8 max_dirty_age 0 sequential_cutoff 0
fio --name=pre --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=write --bs=64k \
	--size=8M --buffer_pattern=0x5a >/dev/null || fail "write before the flush"
assert_eq "$(dm_status_field pc 4)" 2048 "dirty blocks before the flush"
want=$(dd if=/dev/zero bs=1M count=8 2>/dev/null | tr '\000' '\132' | sha256sum | cut -d' ' -f1)
fio --name=during --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=randwrite --bs=4k \
	--size=16M --buffer_pattern=0x5a --rate_iops=1500 --runtime=120 --time_based >/dev/null &
fpid=$!
sleep 2
t0=$(now_ms)
dmsetup message pc 0 flush || fail "message flush while writes go on"
took=$(($(now_ms) - t0))
running=yes; kill -0 $fpid 2>/dev/null || running=no
dirty=$(dm_status_field pc 4)
log "flush while writing: $took ms, writers still running: $running, $dirty blocks dirty after it"
[ "$running" = yes ] || fail "the flush took $took ms: it waited for the writers to stop"
[ "$dirty" -gt 0 ] || fail "no dirty blocks after the flush: the writers did not outrun writeback"
got=$(sum_of if=/dev/mapper/od bs=1M count=8 iflag=direct | cut -d' ' -f1)
assert_eq "$got" "$want" "sha256 of the origin's first 8 MiB after the flush (dirty when it began)"
kill $fpid; wait $fpid || true	# its 120 s only bound the test
# The writers' errors, which fio's killed run does not report.
assert_eq "$(dm_status_field pc 11)" 0 "errors after the writers ($(dmsetup status pc))"
dm_remove pc	# dirty blocks and all: the next scenario starts blank
dm_remove od

log "ok"

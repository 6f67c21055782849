#!/bin/sh
# vm-run: --pmem-size 256M --origin-iops 0
# flush-origin: write through the cache, "message flush", remove; the origin
# alone then holds every block (verified by fio on the origin itself).
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc
job="--name=fo --direct=1 --ioengine=psync --rw=randwrite --bs=4k --size=64M --randseed=42 --verify=crc32c --verify_fatal=1"
fio --filename=/dev/mapper/pc $job --do_verify=0 >/dev/null || fail "write"
dirty=$(dm_status_field pc 4)
log "dirty after write: $dirty"
[ "$dirty" -gt 14000 ] || fail "expected the writes to be cached dirty"
dmsetup message pc 0 flush || fail "message flush"
assert_eq "$(dm_status_field pc 4)" 0 "dirty after flush"
[ "$(dm_status_field pc 9)" -ge "$dirty" ] || fail "writebacks done < dirty"
dm_remove pc
fio --filename="$ORIGIN" $job --verify_only=1 >/tmp/fio.out || { cat /tmp/fio.out; fail "origin does not hold the data"; }

# A flush (fsync) goes on to the origin only when a write went there since
# the origin's last flush: a cached write's fsync ends in the cache. The
# origin here is dm-delay holding every flush for 2 s (and nothing else).
modprobe dm-delay || fail "modprobe dm-delay"
echo "0 $(sectors "$ORIGIN") delay $ORIGIN 0 0 $ORIGIN 0 0 $ORIGIN 0 2000" | dmsetup create od ||
	fail "dm-delay"
assert_blockdev od
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
fsync_ms() { # OFFSET LEN: ms taken by an O_DIRECT write and an fsync of the device
	set -- "$1" "$2" "$(now_ms)"
	xfs_io -d -c "pwrite -q -S 0x5a $1 $2" -c fsync /dev/mapper/pc || fail "write + fsync at $1"
	echo $(($(now_ms) - $3))
}
ORIGIN_DEV=/dev/mapper/od pmcache_create pc
# (a new table's first flush always goes: the table before it may have
# left origin writes unflushed)
t=$(fsync_ms 0 4096)
[ "$t" -ge 2000 ] || fail "the first fsync of a new table took $t ms: not sent to the origin"
for off in 4096 8192 12288; do
	t=$(fsync_ms $off 4096)
	[ "$t" -lt 1500 ] || fail "fsync of a cached write took $t ms: sent to the origin"
done
# a partial block that is not cached is written to the origin
t=$(fsync_ms 419430400 512)
[ "$t" -ge 2000 ] || fail "fsync after an origin write took $t ms: the origin was not flushed"
log "fsync: cached writes flush nothing on the origin, an origin write is flushed"
# "message flush": writeback flushes the origin after its last batch; the
# message flushes it again only for writes around the cache since then.
flush_msg_ms() {
	set -- "$(now_ms)"
	dmsetup message pc 0 flush || fail "message flush"
	echo $(($(now_ms) - $1))
}
xfs_io -d -c "pwrite -q -S 0x33 1048576 65536" /dev/mapper/pc || fail "cached write"
[ "$(dm_status_field pc 4)" -gt 0 ] || fail "nothing dirty before the message"
t=$(flush_msg_ms)
[ "$t" -ge 2000 ] || fail "message flush took $t ms: writeback did not flush the origin"
[ "$t" -lt 3500 ] || fail "message flush took $t ms: the origin was flushed twice"
xfs_io -d -c "pwrite -q -S 0x5a 419430912 512" /dev/mapper/pc || fail "origin write"
t=$(flush_msg_ms)
[ "$t" -ge 2000 ] || fail "message flush after an origin write took $t ms: no origin flush"
log "message flush: one origin flush after writeback, one for a write around the cache ($t ms)"
dm_remove pc
dm_remove od

# Blocks dirty for longer than max_dirty_age are written back unasked.
pmcache_create pc max_dirty_age 2000
assert_eq "$(dm_table_field pc 4)" "max_dirty_age" "table printed back"
age_job="--name=age --direct=1 --rw=randwrite --bs=4k --size=4M --offset=512M --verify=crc32c"
# shellcheck disable=SC2086
fio $age_job --filename=/dev/mapper/pc --do_verify=0 >/dev/null || fail "age write"
[ "$(dm_status_field pc 4)" -gt 0 ] || fail "nothing dirty after the age write"
all_clean() { [ "$(dm_status_field pc 4)" -eq 0 ]; }
wait_until 11 1 "dirty blocks remain 10 s after writing" all_clean
# On the origin itself, not only by the counters.
# shellcheck disable=SC2086
fio $age_job --filename="$ORIGIN" --verify_only=1 >/tmp/fio.out 2>&1 ||
	{ cat /tmp/fio.out; fail "the blocks written back by age are not on the origin"; }
log "dirty blocks written back by age within $waited s, on the origin"
# A block rewritten every 0.2 s, faster than the age ticks (every 1 s):
# still written back, each new copy keeping the age of the first.
wb0=$(dm_status_field pc 9)
ow0=$(origin_stat 5)
fio --name=hot --filename=/dev/mapper/pc --direct=1 --rw=write --bs=4k --size=4k \
    --offset=600M --rate_iops=5 --runtime=8 --time_based >/dev/null &
fpid=$!
sleep 5
wb1=$(dm_status_field pc 9)
wait $fpid || fail "hot write"
ow1=$(origin_stat 5)
[ "$wb1" -gt "$wb0" ] ||
	fail "a block rewritten every 0.2 s was not written back in 5 s (writebacks $wb0 -> $wb1)"
# The origin's own count of writes (its stat's 5th field) saw them.
[ "$ow1" -gt "$ow0" ] || fail "no write reached the origin ($ow0 -> $ow1 writes)"
log "a block rewritten 5 times a second went to the origin by age too"
dm_remove pc
log "ok"

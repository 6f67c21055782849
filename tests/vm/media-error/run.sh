#!/bin/sh
# media-error, in the guest, under a test build of the module (see
# ../media-error.host): fail_reads=N fails the next N reads of pmem.
#  - Clean copies: the reads are served from the origin (fio verify), the
#    copies dropped, counted as errors and misses, health degraded, named
#    in the kernel log.
#  - A 512-byte write into a clean block whose copy has a media error: it
#    goes to the origin, which then holds the merged block.
#  - A dirty copy is the only one: the read fails, the block stays dirty
#    and reads back once the error is gone. Writeback reads each block
#    first: one that fails is not written, stays dirty and fails the
#    flush; written back once the error is gone. The slot of a copy that
#    failed a read is not used again.
#  - fail_origin_flushes=N fails the next N origin flushes: writeback's
#    batches stay dirty (the one written beside the failed flush too), one
#    error is counted, the flush fails; then all of it is written back.
#    In writethrough, with nothing else to kick it, a drain that a failed
#    origin flush stopped starts again by itself. A cache all dirty whose
#    origin flushes all fail: a write waiting for a block fails, no hang.
#  - fail_record_reads=N fails the next N record reads at load: such a
#    record may be a dirty block's, so a reload onto another cache device
#    is refused, and the cache device keeps it.
. "$SCRIPTDIR/lib.sh"

knob=/sys/module/dm_pmcache/parameters/fail_reads
[ -w "$knob" ] || fail "no $knob: not a test build of the module (PMC_FAULT_INJECTION=y)"
inject() { echo "$1" > "$knob"; }
# bytes BYTE COUNT: COUNT bytes of value BYTE (decimal) on stdout.
bytes() { dd if=/dev/zero bs="$2" count=1 2>/dev/null | tr '\000' "\\$(printf '%03o' "$1")"; }

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc sequential_cutoff 0 max_dirty_age 0
dev=/dev/mapper/pc
job="--direct=1 --ioengine=psync --bs=4k --verify=crc32c --verify_fatal=1"
# overwrite NAME: write block 2048 twice with fio job NAME: a replaced
# copy's slot is freed at its stripe's next commit.
overwrite() {
	for i in 1 2; do
		fio --name="$1" --filename=$dev $job --rw=write --size=4k --offset=8M \
			--do_verify=0 >/dev/null || fail "overwrite the block ($1, $i)"
	done
}

log "clean copies with media errors: read from the origin, dropped"
fio --name=a --filename=$dev $job --rw=write --size=4M --offset=0 --do_verify=0 >/dev/null ||
	fail "write"
dmsetup message pc 0 flush || fail "flush"
assert_eq "$(dm_status_field pc 3)" 1024 "blocks cached"
assert_eq "$(dm_status_field pc 4)" 0 "dirty blocks after the flush"
misses=$(dm_status_field pc 6)
inject 3
fio --name=a --filename=$dev $job --rw=write --size=4M --offset=0 --verify_only=1 \
	>/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "clean blocks with media errors did not read back"; }
assert_eq "$(cat $knob)" 0 "injected errors not met"
assert_eq "$(dm_status_field pc 11)" 3 "errors"
assert_eq "$(dm_status_field pc 12)" degraded "health"
assert_eq $(($(dm_status_field pc 6) - misses)) 3 "read misses (the dropped copies)"
dmesg | grep -q "media error in the clean copy of block 2: dropped" ||
	{ dmesg | tail -n 20; fail "no kernel log line for block 2"; }
log "the drop is durable: created again, no older record of those blocks, every block verifies"
dm_remove pc
pmcache_create pc sequential_cutoff 0 max_dirty_age 0
# The reads promoted the three blocks again: a bad copy's record left
# behind would be a duplicate of each at this load.
loaded=$(dmesg | grep 'pmcache: loaded ' | tail -n 1)
case $loaded in
*" 0 duplicates resolved"*) ;;
*) fail "the dropped copies' records came back at load: $loaded" ;;
esac
fio --name=a --filename=$dev $job --rw=write --size=4M --offset=0 --verify_only=1 \
	>/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "after re-create"; }

log "a 512-byte write into a clean block whose copy has a media error: to the origin"
blk=3072	# 12 MiB
fio --name=p --filename=$dev --direct=1 --rw=write --bs=4k --size=4k --offset=$((blk * 4096)) \
	--buffer_pattern=0x11 >/dev/null || fail "write the block"
dmsetup message pc 0 flush || fail "flush"
used=$(dm_status_field pc 3)
inject 1
fio --name=q --filename=$dev --direct=1 --rw=write --bs=512 --size=512 \
	--offset=$((blk * 4096 + 1024)) --buffer_pattern=0x33 >/tmp/fio.out 2>&1 ||
	{ cat /tmp/fio.out; fail "the partial write failed"; }
assert_eq "$(cat $knob)" 0 "injected error not met"
assert_eq "$(dm_status_field pc 3)" $((used - 1)) "blocks cached (the copy dropped)"
want=$({ bytes 17 1024; bytes 51 512; bytes 17 2560; } | sha256sum | cut -d' ' -f1)
got=$(sum_of if="$ORIGIN" bs=4096 skip=$blk count=1 iflag=direct | cut -d' ' -f1)
assert_eq "$got" "$want" "the origin's block after the partial write"
sync; echo 3 > /proc/sys/vm/drop_caches
got=$(sum_of if=$dev bs=4096 skip=$blk count=1 | cut -d' ' -f1)
assert_eq "$got" "$want" "the block read through the cache"

log "a dirty copy with a media error: kept, the read fails"
fio --name=d --filename=$dev $job --rw=write --size=4k --offset=8M --do_verify=0 >/dev/null ||
	fail "write the dirty block"
assert_eq "$(dm_status_field pc 4)" 1 "dirty blocks"
errors=$(dm_status_field pc 11)
inject 1
if fio --name=d --filename=$dev $job --rw=write --size=4k --offset=8M --verify_only=1 \
	>/tmp/fio.out 2>&1; then
	fail "a media error in a dirty block was not reported"
fi
assert_eq "$(cat $knob)" 0 "injected error not met"
assert_eq "$(dm_status_field pc 4)" 1 "dirty blocks after the error"
assert_eq "$(dm_status_field pc 11)" $((errors + 1)) "errors"
fio --name=d --filename=$dev $job --rw=write --size=4k --offset=8M --verify_only=1 \
	>/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "the dirty block once the error is gone"; }

log "the pmem block that failed reads is not used again once its copy is replaced"
overwrite e
dmesg | grep -q "failed a read: out of use until a reload" ||
	{ dmesg | tail -n 20; fail "the slot of the dirty copy that failed a read went back to use"; }
fio --name=e --filename=$dev $job --rw=write --size=4k --offset=8M --verify_only=1 \
	>/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "the overwritten block"; }

log "writeback of a dirty copy with a media error: nothing written, the block stays dirty, the flush fails"
# Writeback reads each block before the origin gets its pmem pages.
before=$(sum_of if="$ORIGIN" bs=4096 skip=2048 count=1 iflag=direct | cut -d' ' -f1)
errors=$(dm_status_field pc 11)
# Every read fails, as with real poison: writeback tries the block again
# (the flush's own retries, then later ones), and none may write it.
inject 1000
if dmsetup message pc 0 flush 2>/tmp/flush.err; then
	fail "a flush succeeded over a dirty block that could not be read"
fi
grep -qi 'Input/output error' /tmp/flush.err ||
	{ cat /tmp/flush.err; fail "the flush failed, but not with EIO"; }
sleep 1
[ "$(cat $knob)" -lt 1000 ] || fail "writeback did not read the block"
assert_eq "$(dm_status_field pc 4)" 1 "dirty blocks after the failed writeback"
[ "$(dm_status_field pc 11)" -gt "$errors" ] || fail "errors: $(dmsetup status pc)"
assert_eq "$(sum_of if="$ORIGIN" bs=4096 skip=2048 count=1 iflag=direct | cut -d' ' -f1)" \
	"$before" "the origin's block after the failed writeback"
dmesg | grep -q "media error in dirty block 2048: not written, stays dirty" ||
	{ dmesg | tail -n 20; fail "no kernel log line for the writeback of block 2048"; }
log "the error gone: the flush writes it back"
inject 0
dmsetup message pc 0 flush || fail "flush once the error is gone"
assert_eq "$(dm_status_field pc 4)" 0 "dirty blocks"
fio --name=e --filename="$ORIGIN" $job --rw=write --size=4k --offset=8M --verify_only=1 \
	>/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "the origin's block after the writeback"; }
log "a slot whose every line writeback read again is back in use"
overwrite f
assert_eq "$(dmesg | grep -c "failed a read: out of use until a reload")" 1 \
	"slots taken out of use (the one writeback read again is not)"

dmsetup message pc 0 flush || fail "flush"
dm_remove pc

fknob=/sys/module/dm_pmcache/parameters/fail_origin_flushes
# flush_fails NAME KIB MIB: write KIB KiB at MIB MiB, then every origin
# flush fails (the message kicks writeback again while it waits, and a run
# may follow the one that failed): the flush fails, nothing turns clean,
# each failed origin flush is one error (however many batches it was to
# make durable: they all stay dirty). Then the flushes work: all of it
# written back.
flush_fails() {
	dmesg -c >/dev/null
	fio --name="$1" --filename=$dev $job --rw=write --size="$2k" --offset="$3M" \
		--do_verify=0 >/dev/null || fail "$1: write"
	dirty=$(dm_status_field pc 4)
	assert_eq "$dirty" $(($2 / 4)) "$1: dirty blocks"
	errors=$(dm_status_field pc 11)
	echo 1000 > $fknob
	if dmsetup message pc 0 flush 2>/dev/null; then
		fail "$1: a flush succeeded over an origin flush that failed"
	fi
	sleep 1
	failed=$((1000 - $(cat $fknob)))
	echo 0 > $fknob
	[ "$failed" -ge 1 ] || fail "$1: no origin flush failed"
	assert_eq "$(dm_status_field pc 4)" "$dirty" "$1: dirty blocks after the failed origin flushes"
	assert_eq "$(dm_status_field pc 11)" $((errors + failed)) \
		"$1: errors after $failed failed origin flushes"
	dmesg | grep -q "writeback to the origin failed: -5" ||
		{ dmesg | tail -n 20; fail "$1: no kernel log line for the failed origin flush"; }
	dmsetup message pc 0 flush || fail "$1: flush once the origin flushes again"
	assert_eq "$(dm_status_field pc 4)" 0 "$1: dirty blocks at the end"
	fio --name="$1" --filename="$ORIGIN" $job --rw=write --size="$2k" --offset="$3M" \
		--verify_only=1 >/tmp/fio.out 2>&1 ||
		{ cat /tmp/fio.out; fail "$1: the origin's blocks after writeback"; }
}
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
# Batches of 64 adjacent blocks, a request each: four are sent before the
# first lands, and one origin flush is for all those whose writes completed.
pmcache_create pc sequential_cutoff 0 max_dirty_age 0 writeback_jobs 64
dmsetup message pc 0 writeback_pause 600000 || fail "writeback_pause"
log "writeback's origin flush fails for batches in flight together: they all stay dirty"
flush_fails batches 1200 16
log "the last batch's origin flush fails: it stays dirty"
flush_fails one-batch 40 32
log "writethrough: a drain stopped by a failed origin flush starts again by itself"
fio --name=retry --filename=$dev $job --rw=write --size=40k --offset=48M --do_verify=0 \
	>/dev/null || fail "retry: write"
assert_eq "$(dm_status_field pc 4)" 10 "retry: dirty blocks"
errors=$(dm_status_field pc 11)
echo 1 > $fknob
# No message, no max_dirty_age, writes around the cache: only writeback's
# own retry drains it after the failure.
dmsetup reload pc --table "$(pmcache_table mode writethrough sequential_cutoff 0 \
	max_dirty_age 0 writeback_jobs 64)" || fail "reload to writethrough"
dmsetup resume pc || fail "resume in writethrough"
clean() { [ "$(dm_status_field pc 4)" = 0 ]; }
wait_until 30 0.5 "retry: still dirty blocks after 15 s" clean
assert_eq "$(cat $fknob)" 0 "retry: the origin flush that was to fail"
assert_eq "$(dm_status_field pc 11)" $((errors + 1)) "retry: errors"
fio --name=retry --filename="$ORIGIN" $job --rw=write --size=40k --offset=48M \
	--verify_only=1 >/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "retry: the origin's blocks"; }
dm_remove pc

log "a cache all dirty over an origin that takes writes and fails its flushes: writes fail, none hangs"
# Writeback's writes reach the origin and its flushes fail: nothing turns
# clean. A writer waiting for a block fails with EIO (a second after the
# first failed landing it saw) rather than wait for ever, and suspend and
# remove with it.
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc sequential_cutoff 0
echo 100000000 > $fknob
dmesg -c >/dev/null
t0=$(date +%s)
if timeout 120 fio --name=full --filename=$dev --direct=1 --ioengine=psync --rw=write \
	--bs=64k --size=$(( $(sectors "$PMEM") * 512 * 3 / 2 )) >/tmp/fio.out 2>&1; then
	fail "writes beyond the cache succeeded with every origin flush failing"
fi
t=$(( $(date +%s) - t0 ))
echo 0 > $fknob
log "failed after $t s: $(dmsetup status pc)"
[ "$t" -lt 100 ] || fail "the writes took $t s (hung?)"
grep -q "Input/output error" /tmp/fio.out || { tail -5 /tmp/fio.out; fail "fio did not see EIO"; }
dmesg | grep -q "no free block, writeback fails: failing a write" ||
	{ dmesg | tail; fail "the failed write is not in the kernel log"; }
dmsetup message pc 0 flush || fail "flush once the origin flushes again"
assert_eq "$(dm_status_field pc 4)" 0 "dirty blocks at the end"
dm_remove pc

log "a record unreadable at load counts as dirty: a move to another cache device is refused, the cache kept"
rknob=/sys/module/dm_pmcache/parameters/fail_record_reads
pm=$(sectors "$PMEM")
dmsetup create pa --table "0 $((pm / 2)) linear $PMEM 0" || fail "move: create pa"
dmsetup create pb --table "0 $((pm / 2)) linear $PMEM $((pm / 2))" || fail "move: create pb"
dd if=/dev/zero of=/dev/mapper/pa bs=4096 count=2 2>/dev/null
dd if=/dev/zero of=/dev/mapper/pb bs=4096 count=2 2>/dev/null
CACHE_DEV=/dev/mapper/pa pmcache_create pc sequential_cutoff 0
fio --name=mv --filename=$dev $job --rw=write --size=1M --offset=0 --do_verify=0 >/dev/null ||
	fail "move: write"
dmsetup message pc 0 flush || fail "move: flush"
before=$(dm_status_field pc 3)
dm_remove pc
echo 1 > "$rknob"
dmesg -c >/dev/null
CACHE_DEV=/dev/mapper/pa pmcache_create pc sequential_cutoff 0
assert_eq "$(cat "$rknob")" 0 "move: the record read that was to fail"
assert_eq "$(dm_status_field pc 4)" 0 "move: dirty blocks"
[ "$(dm_status_field pc 11)" -ge 1 ] || fail "move: the unreadable record is no error: $(dmsetup status pc)"
used=$(dm_status_field pc 3)
dmesg -c >/dev/null
if CACHE_DEV=/dev/mapper/pb pmcache_table sequential_cutoff 0 | dmsetup reload pc 2>/dev/null; then
	fail "move: a reload onto another cache device accepted over an unreadable record"
fi
dmesg | grep -q "1 unreadable records count as dirty" ||
	{ dmesg | tail -3; fail "move: the refusal does not name the unreadable record"; }
dm_remove pc
# Read well now: the cache holds every block it held before the load, the
# one behind the unreadable record too.
pmcache-tool check /dev/mapper/pa >/tmp/out 2>&1 || { cat /tmp/out; fail "move: check of the kept cache"; }
grep -q "^blocks: .* $before used" /tmp/out ||
	{ cat /tmp/out; fail "move: not the $before blocks held before the load ($used loaded)"; }
fio --name=mv --filename="$ORIGIN" $job --rw=write --size=1M --offset=0 --verify_only=1 \
	>/dev/null || fail "move: the origin's blocks"
dm_remove pa
dm_remove pb
log "ok"

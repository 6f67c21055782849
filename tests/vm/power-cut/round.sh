#!/bin/sh
# power-cut, one boot (tests/vm/power-cut.host boots this once per round and
# once more at the end). A boot:
#   1. (not in round 1) re-creates the cache with the previous round's table,
#      checks the recovery (kernel log "loaded N blocks", blocks used = N,
#      health ok, errors 0), and has fio check every write that completed
#      before the previous power cut (--verify_only --verify_state_load);
#      on the last boot it also shows the check is not vacuous: the same
#      verify shifted to a region nothing ever wrote must fail;
#   2. (not on the last boot) creates the cache with this round's table
#      (round 1 formats it), starts fio writing through it with O_DIRECT|O_SYNC
#      and crc32c headers, and at a random moment touches fio's trigger file:
#      fio saves every job's verify state on the state disk and runs
#      power-cut/cut.sh, which cuts the power (sysrq o) while a second,
#      unverified fio writer and writeback are still running.
# Env from the host: ROUND (1..ROUNDS, or ROUNDS+1 on the last boot),
# LAST (1 on the last boot: verify only), KIND (early|writeback|full),
# BS (fio block size), CUT_DELAY (seconds after KIND's condition holds),
# FIO_SEED; CORRUPT=1 (test of the test, last boot only): flip one byte of
# the last write fio saw complete before the cut, so the verify must fail.
#
# fio pitfall: a --verify_only run saves its own state at exit (all writes
# "issued") over the one it loaded unless --verify_state_save=0.
# The job and table of a round are kept on the state disk for the next boot.
. "$SCRIPTDIR/lib.sh"

PC_STATE=$(state_mount)/power-cut
export PC_STATE
dev=/dev/mapper/pc
# Verified jobs write 2 * JOB_SIZE from JOB_OFF, a region of its own for
# each of 6 rounds in turn: fio's verify takes any block whose header and
# crc are right for its offset, whichever job wrote it, so a completed
# write lost at the cut would pass unseen over the same block of an
# earlier round; over a region no recent round wrote, it cannot. The
# background writer BG_OFF..+256M; nothing ever writes at NEVER_OFF (the
# negative control reads there).
JOB_SIZE=64M BG_OFF=1G NEVER_OFF=3G
JOB_OFF=$(( ((ROUND - 1) % 6) * 128 ))M

check_health() { # WHEN
	st=$(dmsetup status pc)
	assert_eq "$(dm_status_field pc 12)" ok "health $1 ($st)"
	assert_eq "$(dm_status_field pc 11)" 0 "errors $1 ($st)"
}

# fio_terse_kb OUT FIELD: sum of a terse (v3) field over the jobs
# (6 = read KiB, 47 = write KiB).
fio_terse_kb() { awk -F';' -v f="$2" '$1 == 3 { s += $f } END { print s + 0 }' "$1"; }

# corrupt_last_write: flip a byte in the data of the last write job 0 saw
# complete (its state file: the first completion's offset is at byte 184).
corrupt_last_write() {
	off=$(od -An -t u8 -j 184 -N 8 "$PC_STATE/fio/local-pc-0-verify.state" | tr -d ' ')
	sec=$((off / 512))
	dd if=$dev of=/tmp/sector bs=512 skip=$sec count=1 iflag=direct 2>/dev/null
	b=$(dd if=/tmp/sector bs=1 skip=100 count=1 2>/dev/null)
	if [ "$b" = X ]; then b=Y; else b=X; fi
	printf %s "$b" | dd of=/tmp/sector bs=1 seek=100 conv=notrunc 2>/dev/null
	dd if=/tmp/sector of=$dev bs=512 seek=$sec count=1 oflag=direct conv=notrunc 2>/dev/null
	log "CORRUPT: flipped byte 100 of the block at offset $off (fio's last completed write)"
}

verify_previous() {
	prev=$((ROUND - 1))
	[ -s "$PC_STATE/job" ] || fail "no fio job of round $prev on the state disk"
	[ -f "$PC_STATE/table" ] || fail "no table of round $prev on the state disk"
	n=0
	for f in "$PC_STATE"/fio/*verify.state; do
		if [ -f "$f" ]; then n=$((n + 1)); fi
	done
	[ "$n" = 2 ] || fail "round $prev left $n fio verify state files, not 2 (did the trigger fire?)"
	job=$(cat "$PC_STATE/job")
	table=$(cat "$PC_STATE/table")
	# Verified all the same, but it was not the round its kind says.
	[ ! -s "$PC_STATE/uncut" ] || fail "round $prev was cut without its condition: $(cat "$PC_STATE/uncut")"
	log "round $prev: verify after the power cut; table: ${table:-(defaults)}"

	# shellcheck disable=SC2086 # the feature args are words
	pmcache_create pc $table
	line=$(dmesg | grep -o 'pmcache: loaded [0-9]* blocks.*' | tail -n 1)
	[ -n "$line" ] || fail "no 'loaded N blocks' line in the kernel log"
	log "kernel: $line"
	loaded=$(echo "$line" | sed 's/^pmcache: loaded \([0-9]*\) blocks.*/\1/')
	[ "$loaded" -gt 0 ] || fail "the cache came back empty"
	assert_eq "$(dm_status_field pc 3)" "$loaded" "blocks used right after the load"
	check_health "after recovery"

	[ "${CORRUPT:-0}" != 1 ] || corrupt_last_write

	vflags="--verify_only=1 --verify_state_load=1 --verify_state_save=0 --aux-path=$PC_STATE/fio"
	# shellcheck disable=SC2086 # $job and $vflags are lists of fio options
	if ! fio $job $vflags --output-format=terse > /tmp/verify.out 2>&1; then
		grep -v '^3;' /tmp/verify.out || true
		log "status: $(dmsetup status pc)"
		fail "round $prev: a write that completed before the power cut does not read back"
	fi
	kb=$(fio_terse_kb /tmp/verify.out 6)
	[ "$kb" -gt 0 ] || { cat /tmp/verify.out; fail "round $prev: fio verified nothing"; }
	log "round $prev: fio verified $kb KiB written before the cut"

	if [ "${LAST:-0}" = 1 ]; then
		# Negative control: the same verify over a region never written must fail.
		# shellcheck disable=SC2086
		if fio $job $vflags --offset="$NEVER_OFF" --output-format=terse > /tmp/neg.out 2>&1; then
			cat /tmp/neg.out
			fail "negative control: verifying a never-written region passed"
		fi
		grep -q 'verify: bad' /tmp/neg.out || { cat /tmp/neg.out; fail "negative control failed for another reason"; }
		log "negative control: $(grep -m1 'verify: bad' /tmp/neg.out | cut -c1-60)... (as it must)"
	fi
	check_health "after the verify"
	log "status: $(dmsetup status pc)"
	dm_remove pc
}

# status_ge FIELD N: the status field (see README "Status") is >= N
status_ge() { [ "$(dm_status_field pc "$1")" -ge "$2" ]; }
wait_until() { # WHAT TEST...: poll every 0.05 s, at most 120 s (by the clock:
	# on a loaded host one poll can take far longer than 0.05 s)
	what=$1; shift
	t_end=$(($(date +%s) + 120))
	until "$@"; do
		if [ "$(date +%s)" -ge $t_end ]; then
			log "$what not reached in 120 s, cutting anyway (the next boot fails the round)"
			echo "$what not reached in 120 s" > "$PC_STATE/uncut"
			sync
			return 0
		fi
		sleep 0.05
	done
}
writes_ge() { [ $(($(dm_status_field pc 7) + $(dm_status_field pc 8))) -ge "$1" ]; }
writeback_running() { status_ge 10 1; }
# Every block used, 80% or more dirty: writeback (high_watermark 95) takes
# the dirty count down to the low watermark, 90%, and its batches below it.
cache_full() {
	t=$(dm_status_field pc 2)
	status_ge 3 "$t" && [ $(($(dm_status_field pc 4) * 100)) -ge $((t * 80)) ]
}

write_round() {
	round_cache "$PC_STATE"
	total=$(dm_status_field pc 2)
	job="--name=pc --filename=$dev --direct=1 --sync=1 --ioengine=psync --rw=randwrite"
	job="$job --bs=$BS --size=$JOB_SIZE --offset=$JOB_OFF --numjobs=2 --offset_increment=$JOB_SIZE"
	job="$job --randseed=$FIO_SEED --verify=crc32c --verify_fatal=1"
	rm -rf "$PC_STATE/fio" "$PC_STATE/uncut"
	mkdir -p "$PC_STATE/fio"
	echo "$table" > "$PC_STATE/table"
	echo "$job" > "$PC_STATE/job"
	sync
	log "round $ROUND ($KIND, bs $BS, cut ${CUT_DELAY}s after the condition): $total cache blocks, table: ${table:-(defaults)}"

	# The cut: once KIND's condition holds, wait CUT_DELAY, touch the trigger.
	out=$(readlink /proc/$$/fd/1)
	rm -f /tmp/pc.trigger /tmp/pc.cond
	(
		wait_until "256 verified writes" writes_ge 256
		# Unverified sub-block and multi-block writes elsewhere, rate-limited
		# not to slow the fill down: more I/O in flight at the cut.
		fio --name=bg --filename=$dev --direct=1 --ioengine=psync --rw=randwrite \
		    --bsrange=512-32k --blockalign=512 --offset=$BG_OFF --size=256M --rate_iops=200 \
		    --time_based --runtime=600 --randseed="$FIO_SEED" > /dev/null 2>&1 &
		case $KIND in
		writeback) wait_until "writeback" writeback_running ;;
		full) wait_until "a full cache" cache_full ;;
		esac
		touch /tmp/pc.cond
		w0=$(($(dm_status_field pc 7) + $(dm_status_field pc 8)))
		sleep "$CUT_DELAY"
		# Still moving (the writer in the background never ends): a
		# stall before the cut, every writer blocked, fails the round.
		wait_until "a write after the condition held" writes_ge $((w0 + 1))
		log "cut now: $(dmsetup status pc)"
		touch /tmp/pc.trigger
	) &
	# shellcheck disable=SC2086
	fio $job --do_verify=0 --verify_state_save=1 --aux-path="$PC_STATE/fio" \
	    --trigger-file=/tmp/pc.trigger --trigger="sh $SCRIPTDIR/power-cut/cut.sh > $out 2>&1" \
	    --output-format=terse > /tmp/write.out 2>&1 || { cat /tmp/write.out; fail "fio write"; }
	# Only if fio wrote its whole region before the trigger (it then saved
	# its state at exit): cut the power here.
	# The condition held, and the cut came after the writes (CUT_DELAY):
	# still a cut of its kind, of a cache at rest. Else the round was not.
	if [ -e /tmp/pc.cond ]; then
		log "fio finished before the cut ($(fio_terse_kb /tmp/write.out 47) KiB written), after its condition held"
	else
		log "fio finished before the cut ($(fio_terse_kb /tmp/write.out 47) KiB written) and its condition: the next boot fails the round"
		echo "fio finished before the cut and its condition ($KIND)" > "$PC_STATE/uncut"
	fi
	sync
	power_cut
}

[ "$ROUND" = 1 ] || verify_previous
if [ "${LAST:-0}" = 1 ]; then
	state_umount
	log "ok"
	exit 0
fi
write_round

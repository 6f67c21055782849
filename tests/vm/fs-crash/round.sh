#!/bin/sh
# fs-crash, one boot (tests/vm/fs-crash.host boots this once per round and
# once more at the end). A boot:
#   1. (not in round 1) re-creates the cache with the previous round's table
#      (kernel log "loaded N blocks", health ok, errors 0), mounts the
#      previous round's file system (the journal / log is replayed), checks
#      that no file system error was logged and that every file the workload
#      recorded as fsynced has its recorded content (check.sh), unmounts,
#      and has e2fsck -fn / xfs_repair -n report it clean; on the last boot
#      also shows that the checker catches one flipped byte;
#   2. (not on the last boot) makes a new ext4 or xfs on the cache, runs
#      workload.sh (creates, writes, renames, appends, deletes, fsyncs; a
#      record of what is durable on the state disk) plus unsynced background
#      writes, and cuts the power (sysrq o) CUT_DELAY seconds after the
#      workload's 10th durable operation (writeback: and a writeback batch in
#      flight; full: and a cache full of dirty data).
# Env from the host: ROUND, LAST, FS (ext4|xfs), KIND (early|writeback|full),
# CUT_DELAY, WSEED (the workload's $RANDOM seed), CORRUPT (test of the test, last boot: "data" flips a byte of a
# recorded file, "meta" zeroes the root inode on disk before the fsck; the
# scenario must then FAIL).
. "$SCRIPTDIR/lib.sh"
. "$SCRIPTDIR/fs-crash/check.sh"

ST=$(state_mount)/fs-crash
dev=/dev/mapper/pc
mnt=/mnt/pc
mkdir -p $mnt

check_health() { # WHEN
	s=$(dmsetup status pc)
	assert_eq "$(dm_status_field pc 12)" ok "health $1 ($s)"
	assert_eq "$(dm_status_field pc 11)" 0 "errors $1 ($s)"
}
FS_ERRORS='EXT4-fs (error|warning)|XFS .*(Corruption|corruption|Internal error|I/O error|[Uu]nmount and run xfs_repair|CRC error)|Buffer I/O error|critical medium error'
check_fs_log() { # WHEN
	if dmesg | grep -E "$FS_ERRORS"; then fail "file system errors in the kernel log $1"; fi
}

# zero_root_inode FS: overwrite the on-disk root inode (CORRUPT=meta)
be() { # OFFSET BYTES: big-endian unsigned integer at OFFSET of $dev
	dd if=$dev bs=1 skip="$1" count="$2" 2>/dev/null | od -An -tu1 -v |
		awk '{ for (i = 1; i <= NF; i++) v = v * 256 + $i } END { printf "%d\n", v }'
}
le() { # OFFSET BYTES: little-endian
	dd if=$dev bs=1 skip="$1" count="$2" 2>/dev/null | od -An -tu1 -v |
		awk '{ for (i = 1; i <= NF; i++) b[n++] = $i } END { for (i = n - 1; i >= 0; i--) v = v * 256 + b[i]; printf "%d\n", v }'
}
zero_root_inode() {
	if [ "$1" = ext4 ]; then
		bsize=$((1024 << $(le $((1024 + 24)) 4)))
		isize=$(le $((1024 + 88)) 2)
		itable=$(dumpe2fs "$dev" 2>/dev/null | sed -n 's/.*Inode table at \([0-9]*\)-.*/\1/p' | head -n 1)
		off=$((itable * bsize + isize))	# inode 2 is the second one
		len=$isize
	else
		bsize=$(be 4 4) agblocks=$(be 84 4) rootino=$(be 56 8)
		isize=$(be 104 2) inopblog=$(be 123 1) agblklog=$(be 124 1)
		agno=$((rootino >> (agblklog + inopblog)))
		agbno=$(( (rootino >> inopblog) & ((1 << agblklog) - 1) ))
		idx=$((rootino & ((1 << inopblog) - 1)))
		off=$(( (agno * agblocks + agbno) * bsize + idx * isize ))
		len=$isize
	fi
	dd if=/dev/zero of=$dev bs=1 seek=$off count="$len" conv=notrunc 2>/dev/null
	sync
	log "CORRUPT: zeroed the $1 root inode ($len bytes at $off)"
}

check_previous() {
	prev=$((ROUND - 1))
	[ -s "$ST/fstype" ] || fail "no file system type of round $prev on the state disk"
	[ -f "$ST/log" ] || fail "no record log of round $prev on the state disk"
	fs=$(cat "$ST/fstype") table=$(cat "$ST/table")
	log "round $prev: check $fs after the power cut; table: ${table:-(defaults)}"
	# shellcheck disable=SC2086 # the feature args are words
	pmcache_create pc $table
	line=$(dmesg | grep -o 'pmcache: loaded [0-9]* blocks.*' | tail -n 1)
	[ -n "$line" ] || fail "no 'loaded N blocks' line in the kernel log"
	log "kernel: $line"
	check_health "after recovery"

	mount -t "$fs" $dev $mnt || fail "round $prev: mounting $fs failed"
	log "kernel: $(dmesg | grep -E 'EXT4-fs \(dm|XFS \(dm' | tail -n 3 | sed 's/^\[[^]]*\] //' | tr '\n' ';')"
	check_fs_log "after mounting"
	if [ "${CORRUPT:-}" = data ]; then
		fs_expect "$ST/log" > /tmp/expect
		victim=$(awk '$1 == "F" && $4 > 0 { print $2; exit }' /tmp/expect)
		b=$(head -c 1 "$mnt/$victim")
		if [ "$b" = X ]; then b=Y; else b=X; fi
		printf %s "$b" | dd of="$mnt/$victim" bs=1 count=1 conv=notrunc 2>/dev/null
		sync "$mnt/$victim"
		log "CORRUPT: changed the first byte of $victim"
	fi
	fs_check $mnt "$ST/log" > /tmp/check.out || { cat /tmp/check.out; fail "round $prev ($fs): fsynced data lost or wrong after the power cut"; }
	log "round $prev: $(cat /tmp/check.out)"
	# The cut came after 10 durable operations: a log that lost them checks nothing.
	n=$(sed -n 's/^checked: \([0-9]*\) durable.*/\1/p' /tmp/check.out)
	[ "${n:-0}" -ge 10 ] || fail "round $prev ($fs): only ${n:-0} durable operations recorded"
	if [ "${LAST:-0}" = 1 ]; then
		# Negative control: one flipped byte in a recorded file must be caught.
		victim=$(awk '$1 == "F" && $4 > 0 { print $2; exit }' /tmp/expect)
		[ -n "$victim" ] || fail "negative control: no recorded non-empty file"
		cp "$mnt/$victim" /tmp/saved
		b=$(head -c 1 "$mnt/$victim")
		if [ "$b" = X ]; then b=Y; else b=X; fi
		printf %s "$b" | dd of="$mnt/$victim" bs=1 count=1 conv=notrunc 2>/dev/null
		if fs_check $mnt "$ST/log" > /tmp/neg.out; then
			cat /tmp/neg.out; fail "negative control: a flipped byte in $victim was not caught"
		fi
		log "negative control: $(grep -m1 MISMATCH /tmp/neg.out | cut -c1-70)... (as it must)"
		cp /tmp/saved "$mnt/$victim"
	fi
	umount $mnt
	[ "${CORRUPT:-}" != meta ] || zero_root_inode "$fs"
	rc=0
	if [ "$fs" = ext4 ]; then
		e2fsck -fn $dev > /tmp/fsck.out 2>&1 || rc=$?
	else
		xfs_repair -n $dev > /tmp/fsck.out 2>&1 || rc=$?
	fi
	[ $rc = 0 ] || { cat /tmp/fsck.out; fail "round $prev: $fs is not clean after the power cut (fsck exit $rc)"; }
	log "round $prev: $fs clean: $(tail -n 1 /tmp/fsck.out)"
	check_fs_log "after the check"
	check_health "after the check"
	log "status: $(dmsetup status pc)"
	dm_remove pc
}

status_ge() { [ "$(dm_status_field pc "$1")" -ge "$2" ]; }
cache_full() {
	t=$(dm_status_field pc 2)
	status_ge 3 "$t" && [ $(($(dm_status_field pc 4) * 100)) -ge $((t * 90)) ]
}

wb_running() { status_ge 10 1 || status_ge 9 $(($1 + 1)); }	# WB0: a batch in flight, or landed
ops_ge() { [ "$(cat /tmp/fs-ops 2>/dev/null || echo 0)" -ge "$1" ]; }
wait_for() { # SECONDS WHAT TEST...: poll every 0.1 s by the clock; 1 on timeout
	t_end=$(($(date +%s) + $1)); shift 2
	until "$@"; do
		[ "$(date +%s)" -lt $t_end ] || return 1
		sleep 0.1
	done
}

run_round() {
	round_cache "$ST"
	echo "$FS" > "$ST/fstype"
	echo "$table" > "$ST/table"
	: > "$ST/log"
	sync "$ST/fstype" "$ST/table" "$ST/log" "$ST"
	# A 1 GiB file system (ext4 with a 16 MiB journal; xfs wants 64 MiB).
	if [ "$FS" = ext4 ]; then
		mkfs.ext4 -q -F -J size=16 $dev 1G || fail "mkfs.ext4"
	else
		mkfs.xfs -q -f -d size=1g $dev || fail "mkfs.xfs"
	fi
	mount -t "$FS" $dev $mnt
	log "round $ROUND: $FS ($KIND, cut ${CUT_DELAY}s after the 10th durable operation); table: ${table:-(defaults)}"

	# Background writes. early, writeback: unsynced, 1.25 MB/s, flushed by the
	# kernel within about a second. full: O_DIRECT, as fast as they go, to
	# fill the cache with dirty data (unsynced page-cache writes at that rate
	# pile up faster than writeback drains them, and with ext4's ordered data
	# every fsync of the workload would wait for that pile).
	echo 100 > /proc/sys/vm/dirty_expire_centisecs
	echo 50 > /proc/sys/vm/dirty_writeback_centisecs
	mkdir -p $mnt/noise
	(
		i=0
		while :; do
			if [ "$KIND" = full ]; then
				dd if=/dev/urandom of=$mnt/noise/n$((i % 16)) bs=1M count=2 oflag=direct 2>/dev/null
			else
				head -c 256k /dev/urandom > $mnt/noise/n$((i % 16))
				sleep 0.2
			fi
			[ $((i % 5)) != 0 ] || mv $mnt/noise/n$((i % 16)) $mnt/noise/old
			i=$((i + 1))
		done
	) &
	npid=$!
	sh "$SCRIPTDIR/fs-crash/workload.sh" $mnt "$ST/log" "${WSEED:-}" &
	wpid=$!

	wait_for 120 "10 durable operations" ops_ge 10 ||
		fail "the workload did not get going in 120 s: $(cat /tmp/fs-ops 2>/dev/null) operations; $(dmsetup status pc)"
	case $KIND in
	writeback)
		# Writeback at work: a batch in flight, or one landed since the
		# workload began (a batch can come and go between two looks:
		# one run waited 120 s for a look that caught one in flight).
		wb0=$(dm_status_field pc 9)
		wait_for 60 writeback wb_running "$wb0" ||
			fail "no writeback in 60 s, a round of kind writeback: $(dmsetup status pc)" ;;
	full) wait_for 120 "a full cache" cache_full ||
		fail "the cache did not fill in 120 s, a round of kind full: $(dmsetup status pc)" ;;
	esac
	ops0=$(cat /tmp/fs-ops)
	sleep "$CUT_DELAY"
	kill -0 $wpid 2>/dev/null || fail "the workload died"
	kill -0 $npid 2>/dev/null || fail "the background writer died"
	# Still moving: a stall before the cut (the workload blocked) fails.
	wait_for 60 "a durable operation after the condition held" ops_ge $((ops0 + 1)) ||
		fail "no durable operation in 60 s before the cut (hung?): $(dmsetup status pc)"
	log "cut now: $(cat /tmp/fs-ops) durable operations; $(dmsetup status pc)"
	check_fs_log "before the cut"
	power_cut
}

[ "$ROUND" = 1 ] || check_previous
if [ "${LAST:-0}" = 1 ]; then
	state_umount
	log "ok"
	exit 0
fi
run_round

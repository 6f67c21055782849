#!/bin/sh
# shellcheck disable=SC3028 # busybox ash has $RANDOM
# fs-crash workload: sh workload.sh MNT LOG [SEED]. Runs until the power goes.
#
# Creates, writes, renames, appends and deletes files under MNT/d0..d3 with
# fsyncs, one operation at a time, and records each one in LOG (on the state
# disk, fsynced after every line):
#   B <op> <type> <name> <sha256> <size> [<name2>] .   before the operation
#   E <op> .                                            after it is durable
# An operation with its E line is durable: the checker (check.sh) wants its
# result exactly. At most one operation (the last) has a B without an E: it
# was in flight at the cut, and the checker accepts what its type allows.
# Types: new (name was never recorded), replace (tmp file written and
# fsynced, renamed over name, dir fsynced: rename atomicity), move (name ->
# name2 in another dir, both dirs fsynced), delete, append (the old bytes
# must survive an append in flight). Every line ends with " ." so a line torn
# by the cut is recognised.
# Data comes from /dev/urandom via /tmp (RAM): sizes 0, 1..8 KiB (any byte
# count), 16..144 KiB, 1 MiB. /tmp/fs-ops counts durable operations.
set -eu
MNT=$1 LOG=$2
[ -z "${3:-}" ] || RANDOM=$3
LIVE=/tmp/live	# name sha size of every recorded file that exists
: > $LIVE
echo 0 > /tmp/fs-ops

rec() { echo "$* ." >> "$LOG"; sync "$LOG"; }

new_data() { # -> /tmp/data, $sha, $size
	r=$((RANDOM % 100))
	if [ $r -lt 5 ]; then size=0
	elif [ $r -lt 50 ]; then size=$((RANDOM % 8192 + 1))
	elif [ $r -lt 92 ]; then size=$(( (RANDOM % 128 + 16) * 1024 + RANDOM % 2 * (RANDOM % 4096) ))
	else size=1048576
	fi
	head -c $size /dev/urandom > /tmp/data
	sha=$(sha256sum /tmp/data | cut -c1-64)
}

pick_live() { # -> $pname $psha $psize of a random recorded file; 1 if none
	n=$(wc -l < $LIVE)
	[ "$n" -gt 0 ] || return 1
	# shellcheck disable=SC2046 # three words
	set -- $(sed -n "$((RANDOM % n + 1))p" $LIVE)
	pname=$1 psha=$2 psize=$3
}
live_del() { grep -v "^$1 " $LIVE > $LIVE.new || true; mv $LIVE.new $LIVE; }

mkdir -p "$MNT/d0" "$MNT/d1" "$MNT/d2" "$MNT/d3"
sync "$MNT/d0" "$MNT/d1" "$MNT/d2" "$MNT/d3" "$MNT"

op=0
while :; do
	op=$((op + 1))
	r=$((RANDOM % 100))
	pick_live || r=0
	if [ $r -lt 35 ]; then	# new
		name=d$((RANDOM % 4))/f$op
		new_data
		rec B $op new $name $sha $size
		cp /tmp/data "$MNT/$name"
		sync "$MNT/$name" "$MNT/${name%/*}"
		echo "$name $sha $size" >> $LIVE
	elif [ $r -lt 55 ]; then	# replace: write a temp file, rename it over name
		new_data
		tmp=${pname%/*}/.tmp$op
		cp /tmp/data "$MNT/$tmp"
		sync "$MNT/$tmp"
		rec B $op replace $pname $sha $size
		mv "$MNT/$tmp" "$MNT/$pname"
		sync "$MNT/${pname%/*}"
		live_del $pname
		echo "$pname $sha $size" >> $LIVE
	elif [ $r -lt 67 ]; then	# move to another dir
		name=d$((RANDOM % 4))/m$op
		rec B $op move $pname $psha $psize $name
		mv "$MNT/$pname" "$MNT/$name"
		sync "$MNT/${pname%/*}" "$MNT/${name%/*}"
		live_del $pname
		echo "$name $psha $psize" >> $LIVE
	elif [ $r -lt 77 ]; then	# delete
		rec B $op delete $pname - -
		rm "$MNT/$pname"
		sync "$MNT/${pname%/*}"
		live_del $pname
	else	# append
		head -c $((RANDOM % 20000 + 1)) /dev/urandom > /tmp/more
		cp "$MNT/$pname" /tmp/data
		cat /tmp/more >> /tmp/data
		sha=$(sha256sum /tmp/data | cut -c1-64)
		size=$(wc -c < /tmp/data)
		rec B $op append $pname $sha $size
		cat /tmp/more >> "$MNT/$pname"
		sync "$MNT/$pname"
		live_del $pname
		echo "$pname $sha $size" >> $LIVE
	fi
	rec E $op
	echo $op > /tmp/fs-ops
done

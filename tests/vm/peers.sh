# shellcheck shell=dash
# Guest-side set-up and tear-down of the block caches dm-pmcache is compared
# with (benchmarks: tests/vm/bench/run.sh; the zipf scenario). Source it
# after lib.sh:
#   . "$SCRIPTDIR/lib.sh"; . "$SCRIPTDIR/peers.sh"
#
#   peers_init CACHE_MB [META_MB]
#       Two dm-linear slices of $PMEM: bench_meta (META_MB, default 16, at
#       the start; dm-cache's metadata) and bench_cdev (CACHE_MB after it):
#       the cache device of every system, so that all caches have the same
#       size. $CDEV, $MDEV name them.
#   peer_up SYS [NAME]
#       Create system SYS over $ORIGIN (caches emptied first); sets PEER_DEV
#       to the block device to run I/O on. SYS is one of
#         origin      the origin alone
#         linear      dm-linear over pmem (bench_cdev itself): the ceiling
#         writecache  dm-writecache, pmem mode, 4 KiB blocks
#         dmcache     dm-cache, smq, writeback, 32 KiB blocks (its minimum)
#         bcache      bcache, writeback mode, 4 KiB blocks
#         pmcache     dm-pmcache, default table (writeback)
#       Extra arguments for pmcache: PMCACHE_ARGS (feature args); for
#       dm-writecache: WRITECACHE_ARGS (its optional args, without the count);
#       for bcache: BCACHE_BUCKET (make-bcache --bucket; default 512k, less
#       for caches under 512 MiB: CACHE_MB/1024 MiB, so it has 1024 buckets).
#   peer_down SYS       tear it down (dirty data is dropped, not written back)
#   peer_status SYS     one line: the system's own counters
#   peer_fill SYS       "used total" cache blocks (0 0 when not a cache;
#                       bcache: percent of buckets in use, "P 100")
#   peer_hold_writeback SYS  no writeback until peer_drain
#   peer_drain SYS      write back every dirty block; returns when clean
#                       (pmcache, writecache, bcache)
#   peer_dirty SYS      dirty cache blocks now (bcache: its dirty_data in
#                       4 KiB blocks, rounded up)
#   peer_clean SYS      true when no block is dirty
#   origin_ios          "reads writes" completed by the origin disk so far
#   origin_trace        "uptime writes" of the origin every 10 ms, until killed
#   now_ms              milliseconds since boot
# shellcheck disable=SC2034 # for the scripts that source this
PEER_SYSTEMS="origin linear writecache dmcache bcache pmcache"
PEER_NAME=bench_sys

# No exec: under TCG one costs tens of ms, more than a dense drain's
# differences. /proc/uptime counts in hundredths of a second.
now_ms() {
	local up
	read -r up _ < /proc/uptime
	up=${up%.*}${up#*.}
	while [ "${#up}" -gt 1 ] && [ "${up#0}" != "$up" ]; do up=${up#0}; done
	echo $((up * 10))
}

# Zero the first MiB of a device: no superblock of an earlier system remains.
zap() {
	dd if=/dev/zero of="$1" bs=1M count=1 conv=fsync 2>/dev/null || fail "zeroing $1"
}

origin_ios() {
	awk '{ print $1, $5 }' "/sys/block/${ORIGIN##*/}/stat"
}

origin_trace() {
	local u w
	while :; do
		read -r u _ < /proc/uptime
		read -r _ _ _ _ w _ < "/sys/block/${ORIGIN##*/}/stat"
		echo "$u $w"
		sleep 0.01
	done
}

peers_init() { # CACHE_MB [META_MB]
	local cache_mb=$1 meta_mb=${2:-16} psz
	psz=$(sectors "$PMEM")
	[ $(((meta_mb + cache_mb) * 2048)) -le "$psz" ] ||
		fail "pmem has $((psz / 2048)) MiB, need $((meta_mb + cache_mb))"
	dmsetup create bench_meta --table "0 $((meta_mb * 2048)) linear $PMEM 0" ||
		fail "bench_meta"
	dmsetup create bench_cdev --table "0 $((cache_mb * 2048)) linear $PMEM $((meta_mb * 2048))" ||
		fail "bench_cdev"
	assert_blockdev bench_meta
	assert_blockdev bench_cdev
	MDEV=/dev/mapper/bench_meta CDEV=/dev/mapper/bench_cdev
	# Everything the peers need, loaded once (busybox modprobe ignores
	# softdeps; vm-init loaded the crc32c provider first).
	modprobe dm-writecache || fail "modprobe dm-writecache"
	modprobe dm-cache || fail "modprobe dm-cache"
	modprobe dm-cache-smq || fail "modprobe dm-cache-smq"
	modprobe bcache || fail "modprobe bcache"
	# shellcheck disable=SC2034 # for the scripts that source this
	CACHE_MB=$cache_mb
}

peers_exit() {
	dm_remove bench_cdev
	dm_remove bench_meta
}

bcache_dev() { # the bcacheN directory in /sys/block, or nothing
	local d
	for d in /sys/block/bcache*; do
		[ -d "$d" ] && { echo "$d"; return 0; }
	done
	return 0
}
bcache_set() { # the cache set directory in /sys/fs/bcache, or nothing
	local d
	for d in /sys/fs/bcache/*-*; do
		[ -d "$d" ] && { echo "$d"; return 0; }
	done
	return 0
}

# bcache_register: register cache and backing device, wait for bcacheN.
bcache_register() {
	local i b
	# (a device bcache_stop released may stay busy for a moment)
	i=0
	until echo "$CDEV" > /sys/fs/bcache/register 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || fail "bcache: register $CDEV"
		sleep 0.1
	done
	[ $i = 0 ] || log "bcache: $CDEV was busy for $i x 0.1 s before it registered"
	echo "$ORIGIN" > /sys/fs/bcache/register || fail "bcache: register $ORIGIN"
	i=0
	while [ -z "$(bcache_dev)" ]; do
		i=$((i + 1)); [ $i -lt 300 ] || fail "bcache: no bcache device"
		sleep 0.1
	done
	b=$(bcache_dev)
	PEER_DEV=/dev/${b##*/}
	if [ ! -b "$PEER_DEV" ]; then
		mknod "$PEER_DEV" b "$(cut -d: -f1 "$b/dev")" "$(cut -d: -f2 "$b/dev")"
	fi
	assert_blockdev "$PEER_DEV"
	i=0
	until grep -q . "$b/bcache/cache_mode" 2>/dev/null && [ -n "$(bcache_set)" ]; do
		i=$((i + 1)); [ $i -lt 300 ] || fail "bcache: not attached"
		sleep 0.1
	done
}

peer_up() { # SYS [NAME]
	local n=${2:-$PEER_NAME} osz bucket
	osz=$(sectors "$ORIGIN")
	case $1 in
	origin) PEER_DEV=$ORIGIN ;;
	linear) PEER_DEV=$CDEV ;;
	writecache)
		zap "$CDEV"
		# shellcheck disable=SC2086 # optional args are words
		set -- ${WRITECACHE_ARGS:-}
		dmsetup create "$n" --table "0 $osz writecache p $ORIGIN $CDEV 4096 $# $*" ||
			fail "dmsetup create writecache"
		assert_blockdev "$n"; PEER_DEV=/dev/mapper/$n ;;
	dmcache)
		zap "$MDEV"; zap "$CDEV"
		# DMCACHE_ARGS, by default migration_threshold 32768: up to 16
		# MiB of promotions in flight (its default is 1 MiB), so that
		# smq warms as fast as it can. "" for its defaults.
		# shellcheck disable=SC2086 # optional args are words
		set -- ${DMCACHE_ARGS-migration_threshold 32768}
		dmsetup create "$n" --table \
			"0 $osz cache $MDEV $CDEV $ORIGIN 64 1 writeback smq $# $*" ||
			fail "dmsetup create cache"
		assert_blockdev "$n"; PEER_DEV=/dev/mapper/$n ;;
	bcache)
		zap "$CDEV"
		# make-bcache --wipe-bcache still refuses a backing device with
		# a bcache superblock ("non-bcache superblock"): clear it (4 KiB
		# at 4 KiB; what an earlier bcache run left on the origin)
		dd if=/dev/zero of="$ORIGIN" bs=4096 seek=1 count=1 conv=fsync 2>/dev/null ||
			fail "clearing the origin's bcache superblock"
		# bcache wants more than 512 buckets ("nbuckets is too small"):
		# its default 512 KiB, or smaller for small caches
		bucket=${BCACHE_BUCKET:-$((CACHE_MB >= 512 ? 512 : CACHE_MB))k}
		make-bcache --wipe-bcache --block 4k --bucket "$bucket" \
			-B "$ORIGIN" -C "$CDEV" >/tmp/make-bcache.out 2>&1 ||
			{ cat /tmp/make-bcache.out; fail "make-bcache"; }
		bcache_register
		echo writeback > "$(bcache_dev)/bcache/cache_mode" || fail "bcache: writeback mode"
		# As the others hold dirty blocks up to their 50% watermark: no
		# background writeback from 10% dirty on (its default) during
		# the measurements; 40 is its most. No bypass of the cache when
		# it deems itself congested (TCG's latency spikes).
		echo 40 > "$(bcache_dev)/bcache/writeback_percent" || fail "bcache: writeback_percent"
		echo 0 > "$(bcache_set)/congested_read_threshold_us" || fail "bcache: congested_read"
		echo 0 > "$(bcache_set)/congested_write_threshold_us" || fail "bcache: congested_write"
		;;
	pmcache)
		zap "$CDEV"
		# shellcheck disable=SC2086 # feature args are words
		CACHE_DEV=$CDEV pmcache_create "$n" ${PMCACHE_ARGS:-}
		PEER_DEV=/dev/mapper/$n ;;
	*) fail "peer_up: unknown system $1" ;;
	esac
}

# bcache_stop: stop the backing device and the cache set (no writeback).
bcache_stop() {
	local b s i
	b=$(bcache_dev)
	[ -z "$b" ] || echo 1 > "$b/bcache/stop"
	s=$(bcache_set)
	[ -z "$s" ] || echo 1 > "$s/stop"
	i=0
	# gone from sysfs, and both devices released (their bcache directory)
	while [ -n "$(bcache_dev)" ] || [ -n "$(bcache_set)" ] ||
	      [ -e "/sys/block/${ORIGIN##*/}/bcache" ] ||
	      [ -e "/sys/class/block/$(basename "$(readlink -f "$CDEV")")/bcache" ]; do
		i=$((i + 1)); [ $i -lt 600 ] || fail "bcache: did not stop"
		sleep 0.1
	done
}

peer_down() { # SYS [NAME]
	local n=${2:-$PEER_NAME}
	case $1 in
	origin|linear) ;;
	writecache|dmcache|pmcache) dm_remove "$n" ;;
	bcache) bcache_stop ;;
	esac
	PEER_DEV=
}

peer_status() { # SYS [NAME]
	local n=${2:-$PEER_NAME} b
	case $1 in
	origin|linear) echo "-" ;;
	writecache|dmcache|pmcache) dmsetup status "$n" ;;
	bcache)
		b=$(bcache_dev)/bcache
		echo "state=$(cat "$b/state") dirty_data=$(cat "$b/dirty_data")" \
		     "hits=$(cat "$b/stats_total/cache_hits") misses=$(cat "$b/stats_total/cache_misses")" \
		     "bypass_hits=$(cat "$b/stats_total/cache_bypass_hits")" \
		     "bypass_misses=$(cat "$b/stats_total/cache_bypass_misses")" \
		     "available=$(cat "$(bcache_set)/cache_available_percent")%" ;;
	esac
}

# "used total" in cache blocks of the system's own size.
peer_fill() { # SYS [NAME]
	local n=${2:-$PEER_NAME} t f a
	case $1 in
	pmcache) echo "$(dm_status_field "$n" 3) $(dm_status_field "$n" 2)" ;;
	dmcache) dm_status_field "$n" 4 | tr / ' ' ;;
	writecache)
		t=$(dm_status_field "$n" 2) f=$(dm_status_field "$n" 3)
		echo "$((t - f)) $t" ;;
	bcache)
		# buckets in use, in percent (cache_available_percent only
		# counts dirty data)
		a=$(awk '/^Unused:/ { sub("%", "", $2); print $2 }' \
			"$(bcache_set)/cache0/priority_stats")
		echo "$((100 - a)) 100" ;;
	*) echo "0 0" ;;
	esac
}

peer_dirty() { # SYS [NAME]
	peer_count_dirty "$@"
	echo "$PEER_DIRTY"
}

# peer_count_dirty SYS [NAME]: PEER_DIRTY = the dirty cache blocks now. In
# the caller's shell, with one dmsetup for the dm targets and a read of
# sysfs for a clean bcache: the drain polls it every 10 ms.
peer_count_dirty() { # SYS [NAME]
	local n=${2:-$PEER_NAME} v
	case $1 in
	pmcache | dmcache | writecache)
		# shellcheck disable=SC2046 # the status words, after SYS
		set -- "$1" $(dmsetup status "$n")
		[ $# -gt 7 ] || fail "peer_count_dirty: no status of $n"
		case $1 in
		pmcache) PEER_DIRTY=$8 ;;
		dmcache) PEER_DIRTY=${15} ;;
		# blocks not free are dirty or under writeback (it frees clean ones)
		writecache) PEER_DIRTY=$(($6 - $7)) ;;
		esac ;;
	bcache)
		# dirty_data is human-readable (3 significant digits): 4 KiB
		# blocks, rounded up, so that only "0.0k" reads as 0
		read -r v < "$(bcache_dev)/bcache/dirty_data"
		if [ "$v" = 0.0k ]; then
			PEER_DIRTY=0
		else
			PEER_DIRTY=$(echo "$v" | awk '{ n = $1 + 0; u = substr($1, length($1));
				m = (u == "k") ? 1024 : (u == "M") ? 1048576 : (u == "G") ? 1073741824 : 1;
				b = n * m / 4096; print (b == int(b)) ? b : int(b) + 1 }')
		fi ;;
	*) PEER_DIRTY=0 ;;
	esac
}

# peer_hold_writeback SYS: no writeback until peer_drain (dm-writecache
# holds dirty blocks below its watermarks anyway). bcache: also no 30 s
# writeback_delay later, which its writeback thread would otherwise sleep
# through, uninterruptibly, once it found nothing to do.
peer_hold_writeback() { # SYS [NAME]
	local n=${2:-$PEER_NAME} d
	case $1 in
	pmcache) dmsetup message "$n" 0 writeback_pause 600000 || fail "writeback_pause" ;;
	bcache)
		d=$(bcache_dev)/bcache
		echo 0 > "$d/writeback_delay"
		echo 0 > "$d/writeback_running" ;;
	esac
}

# peer_clean SYS [NAME]: true when no block is dirty (dm-writecache: every
# block free again).
peer_clean() { # SYS [NAME]
	case $1 in
	pmcache | writecache | bcache) peer_count_dirty "$@" ;;
	*) fail "peer_clean: not for $1" ;;
	esac
	[ "$PEER_DIRTY" = 0 ]
}

# peer_drain SYS: write every dirty block back to the origin; returns when
# the system reports it clean: dm-pmcache's message returns only then, the
# others are polled every 10 ms until a status read finds nothing dirty.
# Check with peer_clean afterwards.
peer_drain() { # SYS [NAME]
	local n=${2:-$PEER_NAME} d
	case $1 in
	pmcache)
		# The message returns once every block is clean, on the origin
		# and flushed there. Not polled meanwhile: the polls' execs
		# would compete for the two vCPUs with the message's own
		# start. Its return is the report that every block is clean:
		# the status read that checks it is the caller's, after its
		# timer (bcache's report is a read of its sysfs, no exec).
		dmsetup message "$n" 0 flush || fail "pmcache flush" ;;
	writecache)
		# As dm-pmcache's: its message returns once writeback is done
		# (process_flush_mesg waits for the writeback work, which with
		# writeback_all waits for every write, FUA, to complete): its
		# return is the report; the caller checks it clean after its timer.
		dmsetup message "$n" 0 flush || fail "writecache flush" ;;
	bcache)
		# full speed (no rate control), and wake the writeback thread
		d=$(bcache_dev)/bcache
		echo 0 > "$d/writeback_delay"
		echo 0 > "$d/writeback_percent"
		echo 1 > "$d/writeback_running"
		# ("state" turns clean only once the thread next finds nothing
		# to do)
		until peer_clean bcache; do sleep 0.01; done ;;
	*) fail "peer_drain: not for $1" ;;
	esac
}

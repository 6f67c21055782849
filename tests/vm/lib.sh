# shellcheck shell=dash
# Guest-side helpers for VM scenarios (busybox ash). Source it first:
#   . "$SCRIPTDIR/lib.sh"
# It turns on `set -eu`: any failing command fails the scenario.
#
# Environment from the VM's /init (scripts/vm-init):
#   PMEM        /dev/pmem0 (fsdax namespace)
#   ORIGIN      the slow origin disk (virtio-blk, throttled by vm-run)
#   STATE_DISK  a small (64 MiB) disk that survives reboots with --state;
#               state_mount puts an ext4 file system on it
#   TESTDIR=/tests  SCRIPTDIR=/tests/vm  FIODIR=/tests/fio  EXTRADIR=/vmrun/extra
#   KERNEL      6.1 or 6.12; ROUNDS, QUICK if set on the host; --env extras
#   DM_DISABLE_UDEV=1 so that dmsetup creates /dev/mapper nodes itself
set -eu

# --- reporting ---------------------------------------------------------------
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "== $*"; }
# sum_of DD-ARG...: sha256sum's line for what dd reads; for a read that
# fails or reads nothing, a line no other read prints (two failed reads
# must not compare equal)
sum_of() {
	if dd "$@" of=/tmp/sum_of.$$ 2>/dev/null && [ -s /tmp/sum_of.$$ ]; then
		sha256sum < /tmp/sum_of.$$
	else
		echo "unreadable-$(cat /proc/sys/kernel/random/uuid)  dd $*"
	fi
	rm -f /tmp/sum_of.$$
}

# --- assertions --------------------------------------------------------------
assert_blockdev() { # NAME or /path: the device node must exist as a block device
	case $1 in /*) d=$1 ;; *) d=/dev/mapper/$1 ;; esac
	[ -b "$d" ] || fail "$d is not a block device"
}
assert_eq() { # ACTUAL EXPECTED [what]
	[ "$1" = "$2" ] || fail "${3:-value}: got '$1', expected '$2'"
}

# --- device-mapper -----------------------------------------------------------
sectors() { blockdev --getsz "$1"; }

# pmcache_table [ARG...]: the table line of a pmcache device over the whole
# origin, with feature ARGs. Devices from CACHE_DEV / ORIGIN_DEV, default
# $PMEM / $ORIGIN. The one place that knows the target's argument layout:
#   <cache dev> <origin dev> <#feature args> [<feature args>...]
pmcache_table() {
	c=${CACHE_DEV:-$PMEM} o=${ORIGIN_DEV:-$ORIGIN}
	echo "0 $(sectors "$o") pmcache $c $o $#${*:+ $*}"
}
pmcache_create() { # NAME [ARG...]: create, assert the node exists
	n=$1; shift
	dmsetup create "$n" --table "$(pmcache_table "$@")" || fail "dmsetup create $n failed"
	assert_blockdev "$n"
}
dev_t_of() { # DEVICE: its major:minor, as dmsetup table prints it
	cat "/sys/class/block/$(basename "$(readlink -f "$1")")/dev"
}
origin_stat() { # N: field N of the origin disk's own stat (1 reads, 5 writes completed)
	awk -v n="$1" '{ print $n }' "/sys/block/$(basename "$(readlink -f "$ORIGIN")")/stat"
}
dm_remove() { # NAME: remove, retrying while the device is busy
	i=0
	until dmsetup remove "$1" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 50 ] || fail "dmsetup remove $1 failed"
		sleep 0.1
	done
}
# dm_status_field NAME N: Nth word (from 1) of the target's own status,
# i.e. after "<start> <length> <target>".
dm_status_field() {
	dmsetup status "$1" | awk -v n="$2" '{ print $(n + 3) }'
}
# dm_table_field NAME N: same for `dmsetup table`.
dm_table_field() {
	dmsetup table "$1" | awk -v n="$2" '{ print $(n + 3) }'
}

# --- fio -----------------------------------------------------------------------
# fio_run JOBFILE [fio args]: JOBFILE is a path or a name in $FIODIR
# (name.fio). Fails the scenario when fio fails.
fio_run() {
	j=$1; shift
	case $j in */*) ;; *) j=$FIODIR/${j%.fio}.fio ;; esac
	fio "$j" "$@" || fail "fio $j failed"
}

# --- persistent state across boots --------------------------------------------
# state_mount: mount $STATE_DISK on /state (mkfs.ext4 on first use); prints /state.
# wait_until TRIES PAUSE WHAT COMMAND...: rerun COMMAND until it succeeds,
# PAUSE seconds apart; fail with WHAT after TRIES runs. $waited: the pauses.
wait_until() {
	_tries=$1 _pause=$2 _what=$3
	shift 3
	waited=0
	until "$@"; do
		waited=$((waited + 1))
		[ $waited -lt "$_tries" ] || fail "$_what"
		sleep "$_pause"
	done
}

mounted() { grep -q " $1 " /proc/mounts; }
# slow_cgroup WBPS: cgroup /sys/fs/cgroup/slow, whose writes to the origin
# blk-throttle holds to WBPS bytes a second (a discard counts as 512 bytes):
# a write started from it ("echo $$ > /sys/fs/cgroup/slow/cgroup.procs")
# stays on its way to the origin long enough for a test to race it.
slow_cgroup() {
	mounted /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
	echo +io >/sys/fs/cgroup/cgroup.subtree_control
	mkdir -p /sys/fs/cgroup/slow
	echo "$(cat "/sys/class/block/${ORIGIN##*/}/dev") wbps=$1" >/sys/fs/cgroup/slow/io.max
}
state_mount() {
	mkdir -p /state
	if ! mounted /state; then
		if ! mount -t ext4 "$STATE_DISK" /state 2>/dev/null; then
			mkfs.ext4 -q -F "$STATE_DISK" >/dev/null
			mount -t ext4 "$STATE_DISK" /state
		fi
	fi
	echo /state
}
state_umount() { sync; if mounted /state; then umount /state; fi; }

# --- power cuts ----------------------------------------------------------------
# power_cut: power the VM off now, without sync or any clean-up (sysrq o).
# vm-run reports this as success when the kernel log is clean.
power_cut() {
	# I/O errors so far fail this boot: no boot after the cut sees them.
	# (The cut still happens, now: vm-run takes the exit status printed.)
	errs=$(dmesg | grep -E "Buffer I/O error|I/O error, dev|critical medium error" | head -n 3)
	for d in $(dmsetup ls --target pmcache 2>/dev/null | awk '$2 ~ /^\(/ { print $1 }'); do
		[ "$(dm_status_field "$d" 11)" = 0 ] || errs="$errs${errs:+; }$d: $(dmsetup status "$d")"
	done
	if [ -n "$errs" ]; then
		echo "FAIL: I/O errors before the power cut: $errs"
		echo "@@VMRUN-EXIT 1@@"
	fi
	echo "@@VMRUN-POWERCUT@@"
	echo "<5>@@VMRUN-POWERCUT@@" > /dev/kmsg
	stty -F /dev/ttyS1 raw 2>/dev/null || true	# drain the console first
	echo o > /proc/sysrq-trigger
	sleep 60
	fail "sysrq power-off did not happen"
}
# power_cut_after SEC: power_cut in the background after SEC seconds.
power_cut_after() { (sleep "$1"; power_cut) & }

# round_cache DIR: the cache of a power-cut round (power-cut, fs-crash), by
# ROUND and KIND (early, writeback, full) of the round's environment. Round
# 1 empties DIR (the round's state) and formats the cache; later rounds
# must find it again. Sets $table to KIND's feature arguments.
round_cache() {
	case $KIND in
	early) table='' ;;
	writeback) table='high_watermark 10 low_watermark 5' ;;
	full) table='high_watermark 95 low_watermark 90' ;;
	*) fail "unknown KIND $KIND" ;;
	esac
	if [ "$ROUND" = 1 ]; then
		rm -rf "$1"
		dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null	# the one format
	fi
	mkdir -p "$1"
	# shellcheck disable=SC2086
	pmcache_create pc $table
	if [ "$ROUND" = 1 ]; then
		dmesg | grep -q 'pmcache: .*formatted' || fail "round 1 did not format the cache"
	elif dmesg | grep -q 'pmcache: .*formatted'; then
		fail "round $ROUND formatted the cache again"
	fi
}

#!/bin/sh
# vm-run: --pmem-size 256M --origin-iops 0
# wrong-origin: a cache holding dirty blocks of one origin refuses another
# origin, saying which one it expects; the right origin still finds its data.
# A clean cache may move to another origin: it drops its blocks.
. "$SCRIPTDIR/lib.sh"

half=$(( $(sectors "$ORIGIN") / 2 ))
dmsetup create oa --table "0 $half linear $ORIGIN 0"
dmsetup create ob --table "0 $half linear $ORIGIN $half"
assert_blockdev oa; assert_blockdev ob
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/oa pmcache_create pc
job="--name=w --filename=/dev/mapper/pc --direct=1 --rw=write --bs=64k --size=8M --verify=crc32c --verify_fatal=1"
fio $job >/dev/null || fail "write"
[ "$(dm_status_field pc 4)" -gt 0 ] || fail "nothing dirty"
dm_remove pc

dmesg -c >/dev/null
if ORIGIN_DEV=/dev/mapper/ob pmcache_table | dmsetup create pc 2>/tmp/err; then
	fail "a dirty cache accepted another origin"
fi
dmesg | grep "pmcache" | tail -3
dmesg | grep -q "dirty (or unreadable) blocks of origin dm:oa" || { dmesg | tail; fail "the kernel log does not name the expected origin"; }
dmesg | grep -q "pmcache: cache holds dirty data of another origin" || fail "the table error does not say why"
[ ! -e /dev/mapper/pc ] || fail "device left behind"

ORIGIN_DEV=/dev/mapper/oa pmcache_create pc
fio $job --verify_only=1 >/dev/null || fail "data lost after the refused attempt"
dmsetup message pc 0 flush
dm_remove pc

# Clean now: binding to the other origin drops the blocks.
ORIGIN_DEV=/dev/mapper/ob pmcache_create pc
assert_eq "$(dm_status_field pc 3)" 0 "blocks kept for the wrong origin"
# ob never held oa's data: the job's verify must fail there.
fio $job --verify_only=1 >/dev/null 2>&1 && fail "oa's blocks served for ob"
dm_remove pc

log "an origin that grew (lvextend) keeps its cache, dirty blocks and all"
dmsetup create og --table "0 131072 linear $ORIGIN 0"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
ORIGIN_DEV=/dev/mapper/og pmcache_create pc
dd if=/dev/urandom of=/tmp/g bs=1M count=8 2>/dev/null
dd if=/tmp/g of=/dev/mapper/pc bs=1M 2>/dev/null && sync || fail "write"
dirty=$(dm_status_field pc 4)
[ "$dirty" -gt 0 ] || fail "nothing dirty"
dm_remove pc
dmsetup reload og --table "0 262144 linear $ORIGIN 0" && dmsetup resume og || fail "grow og"
dmesg -c >/dev/null
ORIGIN_DEV=/dev/mapper/og pmcache_create pc
assert_eq "$(dm_status_field pc 4)" "$dirty" "dirty blocks after the origin grew"
dmesg | grep -q "pmcache: origin dm:og grew from 131072 to 262144 sectors: recorded" ||
	{ dmesg | tail -3; fail "the new size is not in the kernel log"; }
assert_eq "$(sum_of if=/dev/mapper/pc bs=1M count=8)" "$(sha256sum < /tmp/g)" \
	"the data after the origin grew"
dm_remove pc
log "and shrunk back, it is another origin: refused over the dirty blocks"
dmsetup reload og --table "0 131072 linear $ORIGIN 0" && dmsetup resume og || fail "shrink og"
dmesg -c >/dev/null
if ORIGIN_DEV=/dev/mapper/og pmcache_table | dmsetup create pc 2>/dev/null; then
	fail "a shrunk origin accepted over dirty blocks"
fi
dmesg | grep -q "pmcache: .*cache holds dirty data of another origin" ||
	{ dmesg | tail -3; fail "the refusal of the shrunk origin does not say why"; }
dmsetup reload og --table "0 262144 linear $ORIGIN 0" && dmsetup resume og || fail "grow og again"
ORIGIN_DEV=/dev/mapper/og pmcache_create pc
dmsetup message pc 0 flush
dm_remove pc
dm_remove og
dm_remove oa; dm_remove ob
log "ok"

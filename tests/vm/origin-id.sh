#!/bin/sh
# vm-run: --pmem-size 256M --origin-iops 0 --scsi-disk 256M --scsi-disk 256M
# origin-id: a cache is bound to its origin disk's unique id (here a SCSI
# WWN, VPD page 0x83), not only to the name the kernel gave the disk. Two
# disks of one size swap names, as they may at a reboot: the cache holding
# dirty blocks of the first refuses the second, now under the recorded
# name, and follows the first to its new name with every block.
. "$SCRIPTDIR/lib.sh"

modprobe virtio_scsi
modprobe sd_mod
wait_until 100 0.1 "no SCSI disks sda and sdb" [ -b /dev/sdb ]
wwid() { cat "/sys/block/$1/device/wwid"; }
wwid_a=$(wwid sda) wwid_b=$(wwid sdb)
[ "$wwid_a" != "$wwid_b" ] || fail "the two disks have one wwid: $wwid_a"
log "sda is $wwid_a, sdb is $wwid_b"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
job="--name=w --direct=1 --rw=randwrite --bs=4k --size=8M --verify=crc32c --verify_fatal=1"
ORIGIN_DEV=/dev/sda pmcache_create pc
# shellcheck disable=SC2086 # the job's words
fio $job --filename=/dev/mapper/pc >/dev/null || fail "write"
dirty=$(dm_status_field pc 4)
[ "$dirty" -gt 0 ] || fail "nothing dirty"
dm_remove pc
pmcache-tool dump "$PMEM" >/tmp/show
grep -q "^origin: *sda, .*disk $wwid_a$" /tmp/show ||
	{ cat /tmp/show; fail "pmcache-tool dump does not give the origin's disk id"; }

log "the disks swap names"
# .../host0/target0:0:1/0:0:1:0: the host and the SCSI target of a disk
path_a=$(readlink -f /sys/block/sda/device) path_b=$(readlink -f /sys/block/sdb/device)
host=${path_a%/target*}
host=${host##*/}
tgt_a=${path_a##*:0:} tgt_a=${tgt_a%%:*}
tgt_b=${path_b##*:0:} tgt_b=${tgt_b%%:*}
echo 1 >/sys/block/sda/device/delete
echo 1 >/sys/block/sdb/device/delete
wait_until 50 0.1 "disks not deleted" [ ! -b /dev/sda ]
# The second disk first: it gets the lowest free name, sda.
echo "0 $tgt_b 0" >"/sys/class/scsi_host/$host/scan"
wait_until 50 0.1 "target $tgt_b not back" [ -b /dev/sda ]
echo "0 $tgt_a 0" >"/sys/class/scsi_host/$host/scan"
wait_until 50 0.1 "target $tgt_a not back" [ -b /dev/sdb ]
assert_eq "$(wwid sda)" "$wwid_b" "sda after the swap"
assert_eq "$(wwid sdb)" "$wwid_a" "sdb after the swap"

log "another disk under the recorded name and size: refused"
dmesg -c >/dev/null
if ORIGIN_DEV=/dev/sda pmcache_table | dmsetup create pc 2>/tmp/err; then
	dmsetup status pc
	fail "a cache with dirty blocks of one disk took another under its name"
fi
dmesg | grep pmcache | tail -3
dmesg | grep -q "dirty (or unreadable) blocks of origin sda (.*disk $wwid_a)" ||
	fail "the kernel log does not name the expected disk"
[ ! -e /dev/mapper/pc ] || fail "device left behind"
rc=0; pmcache-tool rescue "$PMEM" /dev/sda --dry-run >/tmp/out 2>&1 || rc=$?
assert_eq "$rc" 2 "pmcache-tool rescue onto the other disk under the old name"
pmcache-tool rescue "$PMEM" /dev/sdb --dry-run >/tmp/out 2>&1 || { cat /tmp/out; fail "rescue onto the renamed disk"; }
grep -q "^would write $dirty dirty blocks" /tmp/out || { cat /tmp/out; fail "rescue --dry-run onto the renamed disk"; }

log "the same disk under its new name: every block there"
dmesg -c >/dev/null
ORIGIN_DEV=/dev/sdb pmcache_create pc
assert_eq "$(dm_status_field pc 4)" "$dirty" "dirty blocks on the renamed disk"
dmesg | grep -q "origin sdb (was sda) is disk $wwid_a" ||
	{ dmesg | tail -3; fail "the kernel log does not report the new name"; }
# shellcheck disable=SC2086
fio $job --filename=/dev/mapper/pc --verify_only=1 >/dev/null || fail "data through the cache"
dmsetup message pc 0 flush
dm_remove pc
# shellcheck disable=SC2086
fio $job --filename=/dev/sdb --verify_only=1 >/dev/null || fail "data on the renamed disk"
pmcache-tool dump "$PMEM" | grep -q "^origin: *sdb, " || fail "the new name was not recorded"
log "ok"

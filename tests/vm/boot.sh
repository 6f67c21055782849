#!/bin/sh
# vm-run: --pmem-size 256M --origin-iops 0
# boot: the VM comes up with pmem0 in fsdax mode, dm-pmcache.ko loaded and
# the pmcache target registered; device-mapper nodes appear without udev.
. "$SCRIPTDIR/lib.sh"

log "kernel $(uname -r) ($KERNEL)"
mode=$(cat /sys/bus/nd/devices/namespace0.0/mode)
case $mode in fsdax|memory) ;; *) fail "namespace0.0 mode is $mode, not fsdax" ;; esac
assert_blockdev "$PMEM"
assert_eq "$(cat /sys/block/pmem0/queue/dax)" 1 "pmem0 queue/dax"
log "pmem0: $(sectors "$PMEM") sectors, mode $mode"

assert_blockdev "$ORIGIN"
assert_blockdev "$STATE_DISK"
log "origin $ORIGIN: $(sectors "$ORIGIN") sectors; state disk $STATE_DISK"

grep -q '^dm_pmcache ' /proc/modules || fail "dm_pmcache is not loaded"
dmsetup targets
dmsetup targets | grep -q '^pmcache ' || fail "dmsetup targets does not list pmcache"

# /dev/mapper nodes without udev (DM_DISABLE_UDEV=1 from /init).
dmsetup create bench-linear --table "0 2048 linear $ORIGIN 0"
assert_blockdev bench-linear
assert_eq "$(dm_table_field bench-linear 1)" "$(cat /sys/block/${ORIGIN#/dev/}/dev)" "linear table device"
dm_remove bench-linear
[ ! -e /dev/mapper/bench-linear ] || fail "/dev/mapper/bench-linear left behind"
log "ok"

#!/bin/sh
# vm-run: --pmem-size 128M --origin-iops 0
# discard: a discard drops the cached blocks it covers (dirty ones too),
# leaves the others intact, and the dropped blocks stay dropped after a
# remove + create (the drop is durable).
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc sequential_cutoff 0
dev=/dev/mapper/pc
job="--direct=1 --ioengine=psync --rw=write --bs=64k --verify=crc32c --verify_fatal=1"
fio --name=a --filename=$dev $job --size=16M --offset=0 >/dev/null || fail "write a"
fio --name=b --filename=$dev $job --size=16M --offset=16M >/dev/null || fail "write b"
used=$(dm_status_field pc 3)
assert_eq "$used" 8192 "used blocks after 32 MiB"
blkdiscard -o 0 -l $((16 * 1024 * 1024)) $dev || fail "blkdiscard"
assert_eq "$(dm_status_field pc 3)" 4096 "used blocks after discarding 16 MiB"
assert_eq "$(dm_status_field pc 4)" 4096 "dirty blocks after discarding 16 MiB"
# A discard that covers only parts of blocks drops none of them.
blkdiscard -o $((16 * 1024 * 1024 + 512)) -l 3072 $dev 2>/dev/null || true
assert_eq "$(dm_status_field pc 3)" 4096 "partial discard dropped a block"
fio --name=b --filename=$dev $job --size=16M --offset=16M --verify_only=1 >/tmp/fio.out || { cat /tmp/fio.out; fail "b after discard"; }
dm_remove pc
pmcache_create pc sequential_cutoff 0
assert_eq "$(dm_status_field pc 3)" 4096 "used blocks after re-create"
fio --name=b --filename=$dev $job --size=16M --offset=16M --verify_only=1 >/dev/null || fail "b after re-create"
dm_remove pc
log "ok"

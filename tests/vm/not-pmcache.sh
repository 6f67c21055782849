#!/bin/sh
# vm-run: --pmem-size 256M --origin-iops 0
# not-pmcache: a cache device holding something else (in its first 4 KiB,
# or another format's signature beyond them) is refused (nothing is written
# to it) unless "format" is given; a device without DAX and a pmem
# namespace in raw mode are refused with a clear message, not an oops; so
# are a superblock damaged in both copies (look first: it may hold dirty
# blocks) and a read-only table.
. "$SCRIPTDIR/lib.sh"

expect_refusal() { # what, pattern, table: dmsetup fails, the kernel log says why
	dmesg -c >/dev/null
	if dmsetup create pc --table "$3" 2>/tmp/err; then
		dm_remove pc
		fail "$1 was accepted"
	fi
	dmesg >/tmp/err
	grep -q "pmcache: $2" /tmp/err || { cat /tmp/err; fail "$1: message lacks '$2'"; }
	log "$1 refused: $(grep -o "pmcache: $2.*" /tmp/err | head -1)"
	[ ! -e /dev/mapper/pc ] || fail "$1: device left behind"
}

# Foreign data in the first 4 KiB.
printf 'XFSB this is some other file system' | dd of="$PMEM" conv=notrunc 2>/dev/null
sum_before=$(sum_of if="$PMEM" bs=1M count=8)
expect_refusal "foreign cache device" "not a pmcache device" "$(pmcache_table)"
assert_eq "$(sum_of if="$PMEM" bs=1M count=8)" "$sum_before" "refused device changed"

# A btrfs file system: its first 64 KiB are zero, then its superblock.
dd if=/dev/zero of="$PMEM" bs=4096 count=1 conv=notrunc 2>/dev/null
printf '_BHRfS_M' | dd of="$PMEM" bs=1 seek=65600 conv=notrunc 2>/dev/null
sum_before=$(sum_of if="$PMEM" bs=1M count=8)
expect_refusal "btrfs cache device" "not a pmcache device: it holds a btrfs file system" \
	"$(pmcache_table)"
assert_eq "$(sum_of if="$PMEM" bs=1M count=8)" "$sum_before" \
	"refused btrfs device changed"

# format overrides.
pmcache_create pc format
fio --name=w --filename=/dev/mapper/pc --direct=1 --rw=write --bs=4k --size=4M --verify=crc32c >/dev/null || fail "fio after format"
dm_remove pc
# The table with format is not needed again; without it the cache loads.
pmcache_create pc
assert_eq "$(dm_status_field pc 3)" 1024 "blocks after reload"
fio --name=w --filename=/dev/mapper/pc --direct=1 --rw=write --bs=4k --size=4M --verify=crc32c \
    --verify_only=1 >/dev/null || fail "the data after reload"
dm_remove pc

# A superblock damaged in both copies (magic intact): its dirty blocks
# cannot be counted, so the advice is to look before a format.
dd if="$PMEM" of=/tmp/sb bs=4096 count=2 2>/dev/null
printf 'X' | dd of="$PMEM" bs=1 seek=16 conv=notrunc 2>/dev/null
printf 'X' | dd of="$PMEM" bs=1 seek=4112 conv=notrunc 2>/dev/null
expect_refusal "damaged superblock" "cache superblock unusable; it may hold dirty blocks" \
	"$(pmcache_table)"
dd if=/tmp/sb of="$PMEM" bs=4096 count=2 conv=notrunc 2>/dev/null

# A read-only table: its first resume could still write pmem, its
# writeback the origin.
sum_before=$(sum_of if="$PMEM" bs=1M count=8)
dmesg -c >/dev/null
dmsetup create --readonly pc --table "$(pmcache_table)" 2>/dev/null &&
	{ dm_remove pc; fail "a read-only table was accepted"; }
dmesg | grep -q "pmcache: read-only tables are not supported" ||
	{ dmesg | tail -5; fail "a read-only table: no reason given"; }
[ ! -e /dev/mapper/pc ] || fail "a read-only table: device left behind"
assert_eq "$(sum_of if="$PMEM" bs=1M count=8)" "$sum_before" \
	"the cache device after a refused read-only table"

# Bad arguments.
expect_refusal "block size 1000" "block_size" "$(pmcache_table block_size 1000)"
expect_refusal "unknown argument" "unknown feature" "$(pmcache_table frobnicate)"
expect_refusal "changed block size" "block_size differs" "$(pmcache_table block_size 512)"

# A block device without DAX.
CACHE_DEV=$STATE_DISK expect_refusal "non-DAX cache device" "cache device does not support DAX" \
	"$(CACHE_DEV=$STATE_DISK pmcache_table)"

# A raw (non-fsdax) pmem namespace: dm-writecache oopses here.
ndctl create-namespace -f -e namespace0.0 -m raw >/dev/null || fail "ndctl raw"
expect_refusal "raw pmem namespace" "cache device does not support DAX" "$(pmcache_table)"
ndctl create-namespace -f -e namespace0.0 -m fsdax -a 4k >/dev/null || fail "ndctl fsdax"

# An origin of more blocks than a record's key can name (2^48), over a
# blank cache (4 KiB blocks).
wait_until 50 0.1 "no /dev/pmem0 after the namespace change" test -b "$PMEM"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
dmsetup create huge --table "0 $(( (1 << 51) + 8 )) error" || fail "an error target of 2^51 sectors"
expect_refusal "an origin of 2^48 + 1 blocks" "origin too large" \
	"$(ORIGIN_DEV=/dev/mapper/huge pmcache_table)"
dm_remove huge
log "ok"

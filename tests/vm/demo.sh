#!/bin/sh
# vm-run: --pmem-size 512M --timeout 600
# The demo: a pmcache device over emulated pmem and a disk throttled to 300
# IOPS; the same short fio jobs on the disk alone and through the cache.
. "$SCRIPTDIR/lib.sh"

echo
log "kernel $(uname -r); pmem $PMEM ($(($(sectors "$PMEM") / 2048)) MiB, fsdax); origin $ORIGIN ($(($(sectors "$ORIGIN") / 2048)) MiB, throttled to 300 IOPS)"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
log "dmsetup create demo --table \"$(pmcache_table)\""
pmcache_create demo
run() { # label, device, rw: 10 s of 4 KiB random I/O over 32 MiB
	fio --name="$1" --filename="$2" --direct=1 --ioengine=psync --rw="$3" --bs=4k \
	    --size=32M --offset=128M --runtime=10 --time_based --output-format=terse >/tmp/fio.out ||
		fail "fio $1"
	awk -F';' -v l="$1" -v rw="$3" '{
		if (rw == "randwrite") { iops = $49; lat = $81 } else { iops = $8; lat = $40 }
		printf "  %-28s %9d IOPS   mean latency %8.1f us\n", l, iops, lat }' /tmp/fio.out
}
echo
log "4 KiB random writes, 1 job, 10 s each"
run "origin alone" "$ORIGIN" randwrite
run "through pmcache" /dev/mapper/demo randwrite
echo
log "4 KiB random reads of a 32 MiB hot set, 10 s each (cache warmed by one pass)"
fio --name=warm --filename=/dev/mapper/demo --direct=1 --rw=randread --bs=4k --size=32M \
    --offset=512M --output-format=terse >/dev/null
run "origin alone" "$ORIGIN" randread
fio --name=hot --filename=/dev/mapper/demo --direct=1 --ioengine=psync --rw=randread --bs=4k \
    --size=32M --offset=512M --runtime=10 --time_based --output-format=terse >/tmp/fio.out
awk -F';' '{ printf "  %-28s %9d IOPS   mean latency %8.1f us\n", "through pmcache (hot set)", $8, $40 }' /tmp/fio.out
echo
log "dmsetup status demo:"
dmsetup status demo
echo "  fields: block_size total used dirty read_hits read_misses write_hits write_misses"
echo "          writebacks in_flight errors health mode promotions evictions seq_bypasses"
log "dmsetup message demo 0 flush; dmsetup status demo"
dmsetup message demo 0 flush
dmsetup status demo
dm_remove demo

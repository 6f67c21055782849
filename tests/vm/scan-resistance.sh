#!/bin/sh
# vm-run: --pmem-size 64M --origin-size 1G --origin-iops 0 --timeout 600
# scan-resistance: warm a hot set, read the whole origin once sequentially,
# then the hot set again: its hit ratio stays above 80%. Run with the
# sequential bypass off, so the admission policy alone has to resist the
# scan, and again with the default bypass.
. "$SCRIPTDIR/lib.sh"

hot() { # name: random 4 KiB reads over the 16 MiB hot set, each block once
	fio --name="$1" --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=randread \
	    --bs=4k --size=16M --offset=256M --output-format=terse >/dev/null || fail "fio $1"
}
for cutoff in 0 4194304; do
	dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
	pmcache_create pc sequential_cutoff $cutoff
	log "sequential_cutoff $cutoff: cache of $(dm_status_field pc 2) blocks"
	hot warm1; sleep 1; hot warm2
	log "scan the whole origin"
	fio --name=scan --filename=/dev/mapper/pc --direct=1 --ioengine=psync --rw=read \
	    --bs=64k --output-format=terse >/dev/null || fail "scan"
	sleep 1
	log "after scan: $(dmsetup status pc)"
	dmsetup message pc 0 clear_stats
	r0=$(origin_stat 1)
	hot after
	hits=$(dm_status_field pc 5) misses=$(dm_status_field pc 6)
	ratio=$((hits * 100 / (hits + misses)))
	# The origin's own count: 4096 reads of the hot set, under 20% of them there.
	oreads=$(($(origin_stat 1) - r0))
	log "hot set after the scan: hits $hits, misses $misses ($ratio%); origin reads $oreads"
	[ "$ratio" -gt 80 ] || fail "hot-set hit ratio $ratio% <= 80% (sequential_cutoff $cutoff)"
	[ "$oreads" -lt 820 ] || fail "the hot set read the origin $oreads times of 4096 (sequential_cutoff $cutoff)"
	dm_remove pc
done
log "ok"

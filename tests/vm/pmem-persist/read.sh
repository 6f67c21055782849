#!/bin/sh
# pmem-persist, boot 2: the checksums recorded in boot 1 match pmem0's data.
. "$SCRIPTDIR/lib.sh"

state=$(state_mount)
[ -s "$state/pmem.sums" ] || fail "no checksums from boot 1 on the state disk"
n=0
while read -r off sum; do
	got=$(dd if="$PMEM" bs=1M skip="$off" count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
	assert_eq "$got" "$sum" "sha256 of 4 MiB at $off MiB"
	n=$((n + 1))
done < "$state/pmem.sums"
assert_eq "$n" 3 "chunks checked"
state_umount
log "ok: $n chunks read back"
power_cut

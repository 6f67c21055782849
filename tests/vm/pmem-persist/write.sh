#!/bin/sh
# pmem-persist, boot 1: write random data at both ends and in the middle of
# pmem0 (O_DIRECT: nothing left in the page cache), record the checksums on
# the state disk, then wait for the host to cut the power.
. "$SCRIPTDIR/lib.sh"

mib=$(( $(sectors "$PMEM") / 2048 ))
state=$(state_mount)
: > "$state/pmem.sums"
for off in 0 $((mib / 2)) $((mib - 4)); do
	dd if=/dev/urandom of=/tmp/chunk bs=1M count=4 iflag=fullblock 2>/dev/null
	dd if=/tmp/chunk of="$PMEM" bs=1M seek=$off oflag=direct conv=notrunc 2>/dev/null
	echo "$off $(sha256sum < /tmp/chunk | cut -d' ' -f1)" >> "$state/pmem.sums"
done
cat "$state/pmem.sums"
state_umount
log "written; waiting for the power cut"
sleep 600

#!/bin/sh
# pmem-persist, boots 2 and 3: the chunks recorded in $SUMS by the boot
# before are pmem0's data. With $NEXT: new chunks, recorded in $NEXT, for
# the next boot to check after this one's power cut from the guest.
. "$SCRIPTDIR/lib.sh"
. "$SCRIPTDIR/pmem-persist/chunks.sh"

state=$(state_mount)
check_chunks "$state/$SUMS"
log "ok: $n chunks of $SUMS read back"
if [ -n "${NEXT:-}" ]; then
	write_chunks "$state/$NEXT"
	log "written for the next boot: $NEXT"
fi
state_umount
power_cut

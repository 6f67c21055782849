#!/bin/sh
# pmem-persist, boot 1: write the chunks (chunks.sh), record their checksums
# on the state disk, then wait for the host to cut the power.
. "$SCRIPTDIR/lib.sh"
. "$SCRIPTDIR/pmem-persist/chunks.sh"

state=$(state_mount)
write_chunks "$state/pmem.sums"
state_umount
log "written; waiting for the power cut"
sleep 600

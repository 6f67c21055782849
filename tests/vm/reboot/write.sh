#!/bin/sh
. "$SCRIPTDIR/lib.sh"
. "$SCRIPTDIR/reboot/common.sh"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc max_dirty_age 600000
fio $JOB_RAND --do_verify=0 >/dev/null || fail "random write"
fio $JOB_SEQ --do_verify=0 >/dev/null || fail "sequential write"
# Some writeback, so the machine dies with clean and dirty blocks.
dmsetup message pc 0 writeback_pause 0
log "before power cut: $(dmsetup status pc)"
[ "$(dm_status_field pc 4)" -gt 0 ] || fail "nothing dirty before the power cut"
power_cut

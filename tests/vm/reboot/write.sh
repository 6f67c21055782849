#!/bin/sh
. "$SCRIPTDIR/lib.sh"
. "$SCRIPTDIR/reboot/common.sh"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 2>/dev/null
pmcache_create pc $PC_ARGS
fio $JOB_SEQ --do_verify=0 >/dev/null || fail "sequential write"
# Written back: clean copies, beside the dirty ones written next.
dmsetup message pc 0 flush || fail "flush"
fio $JOB_RAND --do_verify=0 >/dev/null || fail "random write"
log "before power cut: $(dmsetup status pc)"
dirty=$(dm_status_field pc 4)
[ "$dirty" -gt 0 ] && [ "$(dm_status_field pc 3)" -gt "$dirty" ] ||
	fail "not both clean and dirty blocks before the power cut: $(dmsetup status pc)"
power_cut

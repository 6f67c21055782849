#!/bin/sh
. "$SCRIPTDIR/lib.sh"
. "$SCRIPTDIR/reboot/common.sh"
pmcache_create pc $PC_ARGS
log "after reboot: $(dmsetup status pc)"
dirty=$(dm_status_field pc 4)
[ "$dirty" -gt 0 ] && [ "$(dm_status_field pc 3)" -gt "$dirty" ] ||
	fail "not both the clean and the dirty blocks came back: $(dmsetup status pc)"
fio $JOB_RAND --verify_only=1 >/tmp/fio.out || { cat /tmp/fio.out; fail "random blocks"; }
fio $JOB_SEQ --verify_only=1 >/tmp/fio.out || { cat /tmp/fio.out; fail "sequential blocks"; }
dmsetup message pc 0 flush
dm_remove pc
# And the origin alone holds it all after the flush.
JOB_RAND=$(echo "$JOB_RAND" | sed "s|/dev/mapper/pc|$ORIGIN|")
JOB_SEQ=$(echo "$JOB_SEQ" | sed "s|/dev/mapper/pc|$ORIGIN|")
fio $JOB_RAND --verify_only=1 >/dev/null || fail "origin after flush (random blocks)"
fio $JOB_SEQ --verify_only=1 >/dev/null || fail "origin after flush (sequential blocks)"
log "ok"

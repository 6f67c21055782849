#!/bin/sh
# power-cut: fio's --trigger command. fio runs it right after it saved the
# verify state of every job (with O_SYNC, into $STATE_DIR/fio on the state
# disk) and told its jobs to stop; the background writer and writeback are
# still running. Sync the state disk once more and cut the power.
. "$SCRIPTDIR/lib.sh"
log "fio saved its verify state: $(cd "$PC_STATE/fio" && echo *)"
sync
power_cut

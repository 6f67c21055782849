# shellcheck shell=bash
# Host-side helpers for multi-boot scenarios (tests/vm/NAME.host, bash).
# scripts/run-vm-tests runs NAME.host with this environment:
#   TOP      the repository root
#   KERNEL   6.1 or 6.12
#   SCRATCH  an empty scratch directory (on /dev/shm), removed afterwards
#   LOGDIR   where per-boot logs go (kept)
#   ROUNDS   (optional) from --rounds
# The script exits 0 for PASS, anything else for FAIL.

# vm_boot NAME [vm-run args...]: boot the scenario's machine (its disks live
# in $SCRATCH/state, so each call is a reboot of the same machine); logs go to
# $LOGDIR/NAME/{console,kernel}.log. Returns vm-run's status.
vm_boot() {
	local name=$1; shift
	echo "---- boot: $name"
	"$TOP/scripts/vm-run" --kernel "$KERNEL" --state "$SCRATCH/state" \
		--log-dir "$LOGDIR/$name" "$@"
}

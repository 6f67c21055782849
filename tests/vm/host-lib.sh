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

# vm_boot_retry NAME [vm-run args...]: vm_boot, and boot again (at most
# twice more) when the guest kernel died before dm-pmcache was even loaded,
# e.g. the rare TCG flake of an int3 oops while the kernel patches its own
# code at boot: nothing of the scenario ran, its disks are untouched. Long
# multi-round scenarios use it so that such a flake does not end the run.
vm_boot_retry() {
	local name=$1 rc try
	shift
	for try in 1 2 3; do
		rc=0
		vm_boot "$name" "$@" || rc=$?
		if [ "$rc" = 0 ] || [ $try = 3 ] || grep -q 'dm_pmcache' "$LOGDIR/$name/kernel.log"; then
			return "$rc"
		fi
		cp "$LOGDIR/$name/kernel.log" "$LOGDIR/$name/kernel.log.early-death-$try"
		echo "---- $name: the kernel died before dm-pmcache was loaded (exit $rc, log kept as kernel.log.early-death-$try); booting again"
	done
}

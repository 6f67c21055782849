#!/bin/sh
# systemd-boot: tools/pmcache-assemble.service at a real boot (Debian 12,
# systemd, udev), run by scripts/test-systemd: three boots of one machine
# (vm-run --root-disk, --state), PHASE=1, 2, 3 in turn.
#   1  install the unit as its own comment says (systemctl enable), write
#      /etc/pmcachetab (the cache and the origin by their /dev/disk/by-id
#      links, and a bad line the unit must survive) and an fstab line
#      mounting /dev/mapper/fast; mkfs.ext4 on the origin.
#   2  the unit created fast before local file systems mounted: fstab
#      mounted it at boot. Write 64 MiB into it and leave them dirty.
#   3  the shutdown unmounted it, then the unit's ExecStop removed fast
#      without an error; the boot assembled it again, with every block
#      (sha256), from pmem. systemctl stop and start of the unit remove
#      and create the device.
# No unit may have failed in any boot.
. "$SCRIPTDIR/lib.sh"

tab=/etc/pmcachetab
sums=/var/lib/pmcache-test
no_failed_units() {
	f=$(systemctl --failed --no-legend --plain | awk '{ print $1 }')
	# shellcheck disable=SC2086 # a list of units
	[ -z "$f" ] || { systemctl status --no-pager $f >&2 || true; fail "failed units:" $f; }
}

case ${PHASE:?} in
1)
	log "install the unit, a table line and an fstab line"
	install -m 644 "$EXTRADIR/pmcache-assemble.service" /etc/systemd/system/
	systemctl enable pmcache-assemble.service
	[ -x /usr/local/sbin/pmcache-assemble ] || fail "pmcache-assemble not installed"
	mkfs.ext4 -q -F "$ORIGIN"
	# sequential_cutoff 0: the 64 MiB file, written in order, is cached too;
	# max_dirty_age 0: its blocks stay dirty across the reboot (boots under
	# TCG take longer than the default 30 s).
	# The cache by udev's stable link, as the script's help says; a second
	# line is bad: the unit must still stay active (its stop removes fast).
	cache=$(ls /dev/disk/by-id/pmem-* 2>/dev/null | head -n 1)
	[ -b "$cache" ] || { ls -l /dev/disk/by-id >&2; fail "no /dev/disk/by-id/pmem-* link"; }
	echo "fast $cache $ORIGIN mode writeback sequential_cutoff 0 max_dirty_age 0" > "$tab"
	echo "half-a-line $cache" >> "$tab"
	mkdir -p /mnt/fast "$sums"
	echo "/dev/mapper/fast /mnt/fast ext4 defaults 0 2" >> /etc/fstab
	no_failed_units
	;;
2)
	log "the unit assembled fast at boot and fstab mounted it"
	assert_eq "$(systemctl is-active pmcache-assemble.service)" active "the unit"
	assert_eq "$(findmnt -n -o SOURCE /mnt/fast)" /dev/mapper/fast "/mnt/fast's device"
	assert_eq "$(dmsetup table fast | cut -d' ' -f3)" pmcache "fast's target"
	# The mount waited for the unit: it ran first, which its Before= says.
	a=$(systemctl show -P ExecMainExitTimestampMonotonic pmcache-assemble.service)
	m=$(systemctl show -P ActiveEnterTimestampMonotonic mnt-fast.mount)
	[ "$a" -gt 0 ] && [ "$m" -ge "$a" ] || fail "mnt-fast.mount ($m) before the unit ended ($a)"
	no_failed_units
	log "write 64 MiB through it"
	head -c 64M /dev/urandom > /mnt/fast/data
	sync
	sha256sum /mnt/fast/data | cut -d' ' -f1 > "$sums/data"
	sync
	dirty=$(dm_status_field fast 4)
	[ "$dirty" -ge 16384 ] || fail "only $dirty dirty blocks after a 64 MiB write"
	echo "$dirty" > "$sums/dirty"
	echo "dirty blocks at shutdown: $dirty"
	;;
3)
	log "the previous boot's shutdown stopped the unit cleanly"
	journalctl -b -1 -u pmcache-assemble.service -o cat --no-pager > /tmp/prev
	cat /tmp/prev
	grep -q "pmcachetab:2: want" /tmp/prev || fail "the bad line was not named at start"
	sed -n '/Stopping/,$p' /tmp/prev > /tmp/prev.stop
	grep -q "Stopped" /tmp/prev.stop || fail "the unit was not stopped at shutdown"
	! grep -qiE "fail|error" /tmp/prev.stop || fail "the unit's stop reported an error"
	log "assembled again at boot, every block from before"
	assert_eq "$(systemctl is-active pmcache-assemble.service)" active "the unit"
	assert_eq "$(findmnt -n -o SOURCE /mnt/fast)" /dev/mapper/fast "/mnt/fast's device"
	# --stop does not flush: the dirty blocks of the last boot are still
	# dirty (the shutdown's unmount may have added some).
	dirty=$(dm_status_field fast 4)
	[ "$dirty" -ge "$(cat "$sums/dirty")" ] ||
		fail "$dirty dirty blocks after the reboot, $(cat "$sums/dirty") before"
	assert_eq "$(sha256sum /mnt/fast/data | cut -d' ' -f1)" "$(cat "$sums/data")" "data's sha256"
	no_failed_units
	log "systemctl stop removes fast, start creates it again"
	systemctl stop mnt-fast.mount
	systemctl stop pmcache-assemble.service
	dmsetup info fast >/dev/null 2>&1 && fail "fast is still there after systemctl stop"
	systemctl start pmcache-assemble.service
	assert_blockdev fast
	mount /mnt/fast
	assert_eq "$(sha256sum /mnt/fast/data | cut -d' ' -f1)" "$(cat "$sums/data")" "data's sha256 after stop and start"
	umount /mnt/fast
	dmsetup message fast 0 flush
	assert_eq "$(dm_status_field fast 4)" 0 "dirty blocks after flush"
	no_failed_units
	;;
*) fail "PHASE=$PHASE" ;;
esac
echo "PASS: systemd-boot phase $PHASE"

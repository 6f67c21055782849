#!/bin/sh
# vm-run: --pmem-size 256M --origin-iops 0
# assemble: boot-time assembly with pmcache-assemble from a table file. It
# creates what the file lists (feature args counted), reports a bad line by
# its number and still creates the others, leaves existing devices alone
# (a second run changes nothing) but names a device of a listed name that
# is not pmcache (--stop leaves it too) or a pmcache device over other
# devices, takes CRLF line ends, refuses
# quotes, waits for a device that appears late, refuses "format", a
# cache device holding another origin's cache and one whose zeroed
# superblock copy 0 hides dirty blocks (a create would format it), an
# origin another device holds open (LVM on it), and --stop removes the
# devices; created again, the cache holds every block written before (fio
# verify).
. "$SCRIPTDIR/lib.sh"

dd if=/dev/zero of="$PMEM" bs=4096 count=2 2>/dev/null
tab=/tmp/pmcachetab
cat > "$tab" <<EOT
# name   cache   origin   feature args
fast $PMEM $ORIGIN mode writeback sequential_cutoff 0   # a comment

bad
EOT
rc=0; pmcache-assemble -f "$tab" -w 1 >/tmp/out 2>&1 || rc=$?
cat /tmp/out
assert_eq "$rc" 1 "exit status with a bad line"
grep -q "$tab:4: want <name>" /tmp/out || fail "the bad line is not named"
assert_blockdev fast
assert_eq "$(dmsetup table fast | cut -d' ' -f3-)" \
	"pmcache $(dev_t_of "$PMEM") $(dev_t_of "$ORIGIN") 4 mode writeback sequential_cutoff 0" "table"
job="--name=as --filename=/dev/mapper/fast --direct=1 --rw=randwrite --bs=4k --size=8M --randseed=3 --verify=crc32c --verify_fatal=1"
fio $job --do_verify=0 >/dev/null || fail "write"
[ "$(dm_status_field fast 4)" -gt 0 ] || fail "nothing dirty"

log "again, the bad line gone: nothing changes"
sed -i '/^bad/d' "$tab"
before=$(dmsetup status fast)
pmcache-assemble -f "$tab" -w 1 >/tmp/out 2>&1 || { cat /tmp/out; fail "second run"; }
grep -q "fast exists already" /tmp/out || { cat /tmp/out; fail "second run did not leave fast alone"; }
assert_eq "$(dmsetup status fast)" "$before" "status after a second run"

log "a line naming other devices than the pmcache device of its name has: left alone, named"
echo "fast $ORIGIN $PMEM" > /tmp/tab2
rc=0; pmcache-assemble -f /tmp/tab2 -w 1 >/tmp/out 2>&1 || rc=$?
cat /tmp/out
assert_eq "$rc" 3 "exit status of a line whose devices the device of its name does not use"
grep -q "/tmp/tab2:1: a pmcache device fast exists over $(dev_t_of "$PMEM") and $(dev_t_of "$ORIGIN")" /tmp/out ||
	fail "a pmcache device over other devices passed for the line's"
assert_eq "$(dmsetup status fast)" "$before" "status after the mismatched line"

log "--stop, then assemble again: the cache comes back with its blocks"
pmcache-assemble -f "$tab" --stop || fail "--stop"
dmsetup info fast >/dev/null 2>&1 && fail "fast still there after --stop"
log "superblock copy 0 zeroed (a media error cleared so), dirty blocks behind it: not formatted at boot"
dd if=/dev/zero of="$PMEM" bs=4096 count=1 oflag=direct 2>/dev/null || fail "zeroing copy 0"
rc=0; pmcache-assemble -f "$tab" -w 1 >/tmp/out 2>&1 || rc=$?
cat /tmp/out
assert_eq "$rc" 3 "exit status over a zero copy 0 hiding dirty blocks"
grep -q "copy 1 holds the cache of" /tmp/out || fail "the cache behind copy 0 is not named"
dmsetup info fast >/dev/null 2>&1 && fail "fast created over a zero copy 0 hiding dirty blocks"
pmcache-tool repair "$PMEM" --force >/dev/null || fail "repair --force"
pmcache-assemble -f "$tab" -w 1 >/dev/null || fail "assemble after --stop and the repair"
[ "$(dm_status_field fast 4)" -gt 0 ] || fail "the dirty blocks did not come back"
fio $job --verify_only=1 >/dev/null || fail "data after --stop and assemble"

log "a cache device that holds another origin's cache (names changed?): refused, kept"
dmsetup message fast 0 flush || fail "flush"
pmcache-assemble -f "$tab" --stop || fail "--stop"
used=$(pmcache-tool check "$PMEM" | awk '/^blocks:/ { print $4 }')
[ "$used" -gt 0 ] || fail "the flushed cache holds no blocks ($used)"
half=$(( $(sectors "$ORIGIN") / 2 ))
dmsetup create otherorigin --table "0 $half linear $ORIGIN $half" || fail "create otherorigin"
echo "moved $PMEM /dev/mapper/otherorigin" > /tmp/tab2
rc=0; pmcache-assemble -f /tmp/tab2 -w 1 >/tmp/out 2>&1 || rc=$?
cat /tmp/out
assert_eq "$rc" 3 "exit status over another origin's cache (its only line)"
grep -q "/tmp/tab2:1: moved: not created: .* holds the cache of" /tmp/out ||
	fail "the cache of another origin is not named"
dmsetup info moved >/dev/null 2>&1 && fail "moved was created over another origin's cache"
assert_eq "$(pmcache-tool check "$PMEM" | awk '/^blocks:/ { print $4 }')" "$used" "blocks held after the refusal"
dm_remove otherorigin

log "an origin another device holds (LVM activated on it): refused, named"
dd if=/dev/zero of="$PMEM" bs=4096 count=2 2>/dev/null
dmsetup create lv --table "0 $half linear $ORIGIN 0" || fail "create lv"
echo "held $PMEM $ORIGIN" > /tmp/tab2
rc=0; pmcache-assemble -f /tmp/tab2 -w 1 >/tmp/out 2>&1 || rc=$?
cat /tmp/out
assert_eq "$rc" 3 "exit status over an origin in use"
grep -q "/tmp/tab2:1: held: not created: $ORIGIN is in use by lv" /tmp/out ||
	fail "the origin's other user is not named"
dmsetup info held >/dev/null 2>&1 && fail "held created over an origin in use"
dm_remove lv

log "an origin that appears 3 s late; format (in any case, as the kernel reads it) refused"
dd if=/dev/zero of="$PMEM" bs=4096 count=2 2>/dev/null
cat > "$tab" <<EOT
late $PMEM /dev/mapper/lateorigin
fmt $PMEM $ORIGIN Format
EOT
( sleep 3; dmsetup create lateorigin --table "0 $half linear $ORIGIN 0" ) &
rc=0; pmcache-assemble -f "$tab" -w 20 >/tmp/out 2>&1 || rc=$?
wait
cat /tmp/out
assert_eq "$rc" 1 "exit status with format listed"
grep -q "$tab:2: fmt: \"format\" does not belong" /tmp/out || fail "format not refused by name"
assert_blockdev late
dmsetup info fmt >/dev/null 2>&1 && fail "fmt created"
dm_remove late
dm_remove lateorigin

log "a device that never appears"
echo "never $PMEM /dev/mapper/nothing" > "$tab"
rc=0; pmcache-assemble -f "$tab" -w 2 >/tmp/out 2>&1 || rc=$?
assert_eq "$rc" 3 "exit status with a missing device (no device at all)"
grep -q "no block device /dev/mapper/nothing after 2 s" /tmp/out || { cat /tmp/out; fail "missing device not named"; }

log "-w with a leading zero (the shell would read it as octal): refused"
rc=0; pmcache-assemble -f "$tab" -w 08 >/tmp/out 2>&1 || rc=$?
assert_eq "$rc" 2 "exit status of -w 08"

log "two lines whose devices never appear: one deadline for both"
printf 'never1 %s /dev/mapper/nothing1\nnever2 %s /dev/mapper/nothing2\n' "$PMEM" "$PMEM" > "$tab"
t0=$(date +%s)
rc=0; pmcache-assemble -f "$tab" -w 4 >/tmp/out 2>&1 || rc=$?
took=$(($(date +%s) - t0))
assert_eq "$rc" 3 "exit status with two missing devices"
[ "$took" -lt 7 ] || { cat /tmp/out; fail "each line waited on its own: $took s for two lines at -w 4"; }

log "a file with CRLF line ends; a quoted field; a device of that name that is not pmcache"
dd if=/dev/zero of="$PMEM" bs=4096 count=2 2>/dev/null
# Over no device: one over the origin would be another user of it.
dmsetup create other --table "0 $half error" || fail "create other"
printf 'crlf %s %s mode writeback\r\nquoted "%s" %s\nother %s %s\n' \
	"$PMEM" "$ORIGIN" "$PMEM" "$ORIGIN" "$PMEM" "$ORIGIN" > "$tab"
rc=0; pmcache-assemble -f "$tab" -w 2 >/tmp/out 2>&1 || rc=$?
cat /tmp/out
assert_eq "$rc" 1 "exit status with a quoted line and a foreign device"
assert_blockdev crlf
assert_eq "$(dmsetup table crlf | cut -d' ' -f6-)" "2 mode writeback" "the CRLF line's feature args"
grep -q "$tab:2: no quotes" /tmp/out || fail "the quoted line is not named at once"
grep -q "$tab:3: a device other exists and is not a pmcache device" /tmp/out ||
	fail "a device of that name that is not pmcache passed for one"
rc=0; pmcache-assemble -f "$tab" --stop >/tmp/out 2>&1 || rc=$?
assert_eq "$rc" 1 "--stop with a foreign device of a listed name"
dmsetup info crlf >/dev/null 2>&1 && fail "crlf still there after --stop"
dmsetup info other >/dev/null 2>&1 || fail "--stop removed a device that is not pmcache"
dm_remove other
log "ok"

# pmem-persist: 4 MiB chunks of random data at both ends and in the middle
# of pmem0, written with O_DIRECT (nothing left in the page cache), their
# checksums in a file of the state disk.

# write_chunks FILE: write them, record "offset-MiB sha256" lines in FILE
write_chunks() {
	mib=$(( $(sectors "$PMEM") / 2048 ))
	: > "$1"
	for off in 0 $((mib / 2)) $((mib - 4)); do
		dd if=/dev/urandom of=/tmp/chunk bs=1M count=4 iflag=fullblock 2>/dev/null
		dd if=/tmp/chunk of="$PMEM" bs=1M seek=$off oflag=direct conv=notrunc 2>/dev/null ||
			fail "writing 4 MiB at $off MiB"
		echo "$off $(sha256sum < /tmp/chunk | cut -d' ' -f1)" >> "$1"
	done
	cat "$1"
}

# check_chunks FILE: pmem0 holds the chunks FILE records
check_chunks() {
	[ -s "$1" ] || fail "no checksums in $1 from the boot before"
	n=0
	while read -r off sum; do
		got=$(sum_of if="$PMEM" bs=1M skip="$off" count=4 iflag=direct | cut -d' ' -f1)
		assert_eq "$got" "$sum" "sha256 of 4 MiB at $off MiB ($1)"
		n=$((n + 1))
	done < "$1"
	assert_eq "$n" 3 "chunks checked"
}

# shellcheck shell=dash
# fs-crash checker, sourced by round.sh: fs_check MNT LOG compares the files
# under MNT with what workload.sh recorded in LOG (see there). Prints what it
# checked and every mismatch; returns 0 when there is none.

# fs_expect LOG: the state LOG promises, one line each:
#   F <name> <sha> <size>   durable: must exist with exactly this content
#   A <name>                durable delete or move: must not exist
#   I <type> <name> <sha> <size> [<name2>]   the operation in flight
#   O <name> <sha> <size>   the state before it, of a name it touches
#   O <name> - -            (did not exist)
#   X <n> <why>             the log itself is broken
fs_expect() {
	awk '
	function ok_b() {
		return $1 == "B" && (NF == 7 || NF == 8) && $2 ~ /^[0-9]+$/ &&
		       ($5 ~ /^[0-9a-f]+$/ && length($5) == 64 || $5 == "-") &&
		       ($6 ~ /^[0-9]+$/ || $6 == "-")
	}
	{ lines++ }
	$NF != "." { bad++; badline = NR; next }
	ok_b() {
		if (pend != "") { print "X " NR " two operations in flight"; exit }
		pend = $2; ptype = $3; pname = $4; psha = $5; psize = $6
		pname2 = NF == 8 ? $7 : ""
		next
	}
	$1 == "E" && NF == 3 && $2 == pend {
		if (ptype == "move") { st[pname2] = st[pname]; st[pname] = "-" }
		else if (ptype == "delete") st[pname] = "-"
		else st[pname] = psha " " psize
		pend = ""; done++
		next
	}
	{ bad++; badline = NR }
	END {
		if (bad > 1 || (bad == 1 && badline != lines)) {
			print "X " badline " malformed line before the end of the log"
		}
		for (n in st) {
			if (pend != "" && (n == pname || n == pname2)) continue
			if (st[n] == "-") print "A " n; else print "F " n " " st[n]
		}
		if (pend != "") {
			print "I " ptype " " pname " " psha " " psize (pname2 != "" ? " " pname2 : "")
			print "O " pname " " (((pname in st) && st[pname] != "-") ? st[pname] : "- -")
			if (pname2 != "") print "O " pname2 " - -"
		}
		print "D " done
	}' "$1"
}

sha_of() { sha256sum "$1" | cut -c1-64; }

fs_check() { # MNT LOG
	mnt=$1
	fs_expect "$2" > /tmp/expect
	bad=0 nf=0 na=0 inflight='none'
	old1=''	# the state before the operation in flight, of its (first) name
	while read -r k a b c d e; do
		case $k in
		X) echo "MISMATCH: the record log is broken at line $a: $b $c $d $e"; bad=$((bad + 1)) ;;
		D) done_ops=$a ;;
		A)
			na=$((na + 1))
			if [ -e "$mnt/$a" ]; then echo "MISMATCH: $a exists, deleted or moved away (durably)"; bad=$((bad + 1)); fi
			;;
		F)
			nf=$((nf + 1))
			if [ ! -f "$mnt/$a" ]; then
				echo "MISMATCH: $a is missing (expected $c bytes, sha256 $b)"; bad=$((bad + 1))
			else
				got=$(sha_of "$mnt/$a") gsize=$(wc -c < "$mnt/$a")
				if [ "$got" != "$b" ]; then
					echo "MISMATCH: $a: $gsize bytes, sha256 $got; expected $c bytes, sha256 $b"
					bad=$((bad + 1))
				fi
			fi
			;;
		O) [ -n "$old1" ] || old1="$b $c" ;;
		I) inflight="$a $b $c $d $e" ;;
		esac
	done < /tmp/expect
	if [ "$inflight" != none ]; then
		# shellcheck disable=SC2086
		set -- $inflight
		t=$1 n=$2 nsha=$3 n2=${5:-}
		osha=${old1% *} osize=${old1#* }
		f=$mnt/$n
		have=absent
		[ -e "$f" ] && have="$(wc -c < "$f") bytes, sha256 $(sha_of "$f")"
		why=''
		case $t in
		new) ;;	# anything: the file was never durable
		replace)	# rename is atomic: the old or the new content
			[ -f "$f" ] || why="missing"
			[ -z "$why" ] && { g=$(sha_of "$f"); [ "$g" = "$osha" ] || [ "$g" = "$nsha" ] || why="neither old nor new content"; }
			;;
		delete)
			[ ! -e "$f" ] || [ "$(sha_of "$f")" = "$osha" ] || why="neither absent nor the old content"
			;;
		move)	# exactly one of the two names, with the content
			f2=$mnt/$n2
			if [ -e "$f" ] && [ -e "$f2" ]; then why="both $n and $n2 exist"
			elif [ -e "$f" ]; then [ "$(sha_of "$f")" = "$osha" ] || why="$n changed"
			elif [ -e "$f2" ]; then [ "$(sha_of "$f2")" = "$osha" ] || why="$n2 has other content"
			else why="neither $n nor $n2 exists"
			fi
			have="$have; $n2: $([ -e "$f2" ] && echo present || echo absent)"
			;;
		append)	# the old bytes must survive
			if [ ! -f "$f" ]; then why="missing"
			elif [ "$(wc -c < "$f")" -lt "$osize" ]; then why="shorter than before"
			elif [ "$(head -c "$osize" "$f" | sha256sum | cut -c1-64)" != "$osha" ]; then why="the old bytes changed"
			fi
			;;
		esac
		if [ -n "$why" ]; then
			echo "MISMATCH: operation in flight ($t $n): $why; found $have"
			bad=$((bad + 1))
		fi
		inflight="$t $n: $have"
	fi
	echo "checked: ${done_ops:-0} durable operations; $nf files with their content, $na names absent; in flight: $inflight"
	[ "$bad" = 0 ]
}

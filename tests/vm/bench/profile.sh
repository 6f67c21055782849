#!/bin/sh
# Guest side of scripts/profile: one fio workload on each system in turn,
# sampled with perf (cpu-clock on every vCPU) while it runs. Prints, per
# system, lines the host turns into a table:
#   PROFILE-RUN <system> <iops> <samples> <idle samples> <module samples>
#   PROFILE-SYM <system> <samples> <symbol>
#   PROFILE-OFF <system> <samples> <symbol>+<offset>   (PROFILE_OFFSETS only)
# Environment: PROFILE_SYSTEMS, PROFILE_WORKLOAD (a job in tests/fio/),
# PROFILE_SECONDS, PROFILE_TOP, PROFILE_OFFSETS (symbols whose samples are
# also counted per offset); perf comes as $EXTRADIR/perf.tgz.
. "$SCRIPTDIR/lib.sh"
. "$SCRIPTDIR/peers.sh"

systems=${PROFILE_SYSTEMS:-linear pmcache}
job=$FIODIR/${PROFILE_WORKLOAD:-randwrite-qd1}.fio
secs=${PROFILE_SECONDS:-8}
top=${PROFILE_TOP:-40}
[ -f "$job" ] || fail "no fio job $job"

(cd / && tar xzf "$EXTRADIR/perf.tgz") || fail "unpacking perf"
perf() { /usr/lib/perflibs/ld-linux-x86-64.so.2 --library-path /usr/lib/perflibs /usr/bin/perf "$@"; }
echo -1 > /proc/sys/kernel/perf_event_paranoid
echo 0 > /proc/sys/kernel/kptr_restrict
perf --version >/dev/null || fail "perf does not run in the guest"

peers_init 512
# The module's symbols, to count its share of the samples.
grep '\[dm_pmcache\]' /proc/kallsyms | awk '{ print $3 }' | sort -u > /tmp/module.syms

for sys in $systems; do
	log "$sys"
	peer_up "$sys"
	# Precondition (the first writes of a cache allocate), then sample
	# the middle of a longer run.
	DEV=$PEER_DEV SIZE=128M RUNTIME=3 fio "$job" --output-format=terse >/dev/null ||
		fail "fio on $sys"
	DEV=$PEER_DEV SIZE=128M RUNTIME=$((secs + 4)) fio "$job" --eta=never \
		--output-format=json --output=/tmp/fio.json &
	fpid=$!
	sleep 2
	perf record -q -e cpu-clock -F 4000 -a -o /tmp/perf.data -- sleep "$secs" ||
		fail "perf record on $sys"
	wait $fpid || fail "fio on $sys"
	# Rate over the whole run: the sampled window is its middle.
	iops=$(awk '/"(read|write)" : \{/ { f = 1 } f && /"iops" :/ { gsub(/[",]/, ""); s += $3; f = 0 }
		END { printf "%d", s }' /tmp/fio.json)
	perf report -i /tmp/perf.data --no-children -n --sort sym --stdio -g none 2>/dev/null |
		awk '/^ *[0-9.]+%/ { n = $2; $1 = ""; $2 = ""; $3 = ""; sub(/^ +/, ""); print n, $0 }' > /tmp/syms
	awk -v sys="$sys" -v iops="$iops" '
		FILENAME == ARGV[1] { mod[$1] = 1; next }
		{ all += $1; if ($2 ~ /safe_halt|default_idle|cpu_idle/) idle += $1
		  if ($2 in mod) m += $1 }
		END { print "PROFILE-RUN", sys, iops, all, idle, m + 0 }' /tmp/module.syms /tmp/syms
	head -n "$top" /tmp/syms | awk -v sys="$sys" '{ print "PROFILE-SYM", sys, $0 }'
	if [ -n "${PROFILE_OFFSETS:-}" ]; then
		perf script -i /tmp/perf.data -F ip,sym,symoff 2>/dev/null |
			awk -v want=" $PROFILE_OFFSETS " -v sys="$sys" '
				{ s = $2; sub(/\+0x[0-9a-f]+$/, "", s)
				  if (index(want, " " s " ")) n[$2]++ }
				END { for (k in n) print "PROFILE-OFF", sys, n[k], k }'
	fi
	peer_down "$sys"
done

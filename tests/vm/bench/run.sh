#!/bin/sh
# The benchmark's guest side (scripts/bench boots one VM with it; see there
# for the vm-run options). For every workload in tests/fio/ and every system
# (tests/vm/peers.sh), one after the other on the same emulated pmem and the
# same throttled origin: create the system with an empty cache, precondition,
# run the workload, tear it down. Then writeback drain and resume time.
#
# Results go to the console as base64 gzipped tar archives between
#   @@BENCH-B64 <name>@@ ... @@BENCH-END@@
# (one per measurement: fio.json, meta, status.before, status.after),
# which scripts/bench unpacks into build/bench/raw/.
#
# Environment: QUICK (short runs), BENCH_WORKLOADS, BENCH_SYSTEMS,
# BENCH_EXTRA ("drain resume" by default) to run a subset.
. "$SCRIPTDIR/lib.sh"
. "$SCRIPTDIR/peers.sh"

CACHE_MB=512
# PASSES: every measurement is repeated, the systems in reverse order the
# second time; the report takes the better pass (other VMs on the host slow
# some measurements down, never speed one up).
if [ -n "${QUICK:-}" ]; then
	RT=3 WARM=8 N_DRAIN=2048 PASSES=1 DENSE_PASSES=1 SPARSE_PASSES=1
else
	RT=10 WARM=30 N_DRAIN=4096 PASSES=2 DENSE_PASSES=5 SPARSE_PASSES=3
fi
PASSES=${BENCH_PASSES:-$PASSES}
MiB=1048576
W_SIZE=$((128 * MiB))	# random writes: a quarter of the cache, below every dirty watermark
R_SIZE=$((128 * MiB))	# preconditioned read / mixed region
S_SIZE=$((256 * MiB))	# sequential region
L_SIZE=$((64 * MiB))	# database log
WORKLOADS=${BENCH_WORKLOADS-randwrite-qd1 randwrite-2j randwrite-2x8 randread-hit zipf-read randrw-8k seqwrite-1m seqread-1m fsync-log}
SYSTEMS=${BENCH_SYSTEMS:-$PEER_SYSTEMS}
EXTRA=${BENCH_EXTRA-drain resume}

# emit NAME DIR: the directory as a base64 gzipped tar on the console.
emit() {
	echo "@@BENCH-B64 $1@@"
	tar -cz -C "$2" . | base64
	echo "@@BENCH-END@@"
}

nw=0 ns=0 rsys=
for w in $WORKLOADS; do nw=$((nw + 1)); done
for s in $SYSTEMS; do ns=$((ns + 1)) rsys="$s $rsys"; done
log "bench: kernel $(uname -r), $(nproc) CPUs; pmem $((($(sectors "$PMEM")) / 2048)) MiB," \
    "origin $(($(sectors "$ORIGIN") / 2048)) MiB; cache $CACHE_MB MiB per system;" \
    "$nw workloads x $ns systems x $PASSES passes, ${RT} s each${QUICK:+ (QUICK)}"
peers_init $CACHE_MB
cat > /tmp/params <<EOF
cache_mb=$CACHE_MB
passes=$PASSES
runtime=$RT
warmup=$WARM
n_drain=$N_DRAIN
quick=${QUICK:-}
kernel=$(uname -r)
cpus=$(nproc)
origin_mb=$(($(sectors "$ORIGIN") / 2048))
pmem_mb=$(($(sectors "$PMEM") / 2048))
EOF
mkdir -p /tmp/p && cp /tmp/params /tmp/p/params && emit params /tmp/p

# run_fio JOB SIZE RUNTIME OUT [SEED]
run_fio() {
	sz=$2
	# the ceiling device is only as large as the cache
	dsz=$(($(sectors "$PEER_DEV") * 512))
	[ "$sz" = all ] && sz=$dsz
	[ "$sz" -le "$dsz" ] || sz=$dsz
	DEV=$PEER_DEV SIZE=$sz RUNTIME=$3 SEED=${5:-1} THETA=1.2 \
		fio "$FIODIR/$1.fio" --lat_percentiles=1 --output-format=json --output="$4" \
		>/tmp/fio.err 2>&1 ||
		{ cat /tmp/fio.err "$4"; fail "fio $1 on $PEER_DEV"; }
}

k=0
for w in $WORKLOADS; do
	case $w in
	randwrite-*) size=$W_SIZE ;;
	randread-hit|randrw-8k) size=$R_SIZE ;;
	zipf-read) size=all ;;
	seq*) size=$S_SIZE ;;
	fsync-log) size=$L_SIZE ;;
	*) fail "unknown workload $w" ;;
	esac
	for pass in $(seq "$PASSES"); do
		order=$SYSTEMS
		[ $((pass % 2)) = 1 ] || order=$rsys
		for s in $order; do
			k=$((k + 1))
			rd=/tmp/r/$w.$s.$pass	# (lib.sh's helpers use d and i)
			rm -rf /tmp/r; mkdir -p "$rd"
			echo "-- [$k/$((nw * ns * PASSES))] $w on $s (pass $pass; $(($(now_ms) / 1000)) s since boot)"
			t0=$(now_ms)
			# dm-cache's migration_threshold raised for zipf only: the
			# same migrations write its dirty blocks back, and in the
			# hit workloads (which send nothing to the origin, so it
			# counts as idle) 16 MiB of them fill the origin's queue
			# in front of its own writes.
			# shellcheck disable=SC2034 # read by peers.sh
			if [ "$w" = zipf-read ]; then unset DMCACHE_ARGS; else DMCACHE_ARGS=; fi
			peer_up "$s"
			# Preconditioning (the origin alone has nothing to warm).
			if [ "$s" != origin ]; then
				case $w in
				randread-hit|randrw-8k) run_fio precondition "$size" 0 /tmp/pre.json ;;
				zipf-read) [ "$s" = linear ] || run_fio zipf-read "$size" "$WARM" /tmp/pre.json 1 ;;
				esac
			fi
			sync
			peer_status "$s" > "$rd/status.before"
			# shellcheck disable=SC2046 # two numbers
			set -- $(origin_ios)
			r0=$1 w0=$2 t1=$(now_ms)
			run_fio "$w" "$size" "$RT" "$rd/fio.json" 2
			t2=$(now_ms)
			# shellcheck disable=SC2046 # two numbers
			set -- $(origin_ios)
			peer_status "$s" > "$rd/status.after"
			{
				echo "workload=$w"
				echo "system=$s"
				echo "pass=$pass"
				echo "origin_reads=$(($1 - r0))"
				echo "origin_writes=$(($2 - w0))"
				echo "fio_ms=$((t2 - t1))"
				echo "prep_ms=$((t1 - t0))"
				echo "fill=$(peer_fill "$s")"
				echo "dirty=$(peer_dirty "$s")"
			} > "$rd/meta"
			peer_down "$s"
			emit "$w.$s.$pass" "$rd"
		done
	done
done

# ---- writeback drain: N random dirty 4 KiB blocks -> clean ------------------
# sparse: N blocks anywhere on the origin (almost never adjacent);
# dense: N blocks in an N-block region (every block dirty: adjacent runs).
# N is larger than pmcache's writeback batch (writeback_jobs, 1024), as
# any real backlog is.
drain_one() { # SYS LAYOUT
	s=$1 layout=$2
	peer_up "$s"
	case $layout in
	sparse) region=$(($(sectors "$ORIGIN") * 512)) ;;
	dense) region=$((N_DRAIN * 4096)) ;;
	esac
	peer_hold_writeback "$s"
	fio --name=dirty --filename="$PEER_DEV" --direct=1 --ioengine=psync --rw=randwrite \
	    --bs=4k --size="$region" --number_ios="$N_DRAIN" --output-format=terse \
	    >/tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "drain: fio on $s"; }
	sync
	dirty=$(peer_dirty "$s")
	# shellcheck disable=SC2046 # two numbers
	set -- $(origin_ios)
	w0=$2 t0=$(now_ms)
	# The origin's write count every 10 ms, to tell when writeback
	# reached the origin and when its last write ended.
	origin_trace > /tmp/trace &
	tp=$!
	peer_drain "$s"
	t1=$(now_ms)
	kill $tp; wait $tp 2>/dev/null || true
	peer_clean "$s" || fail "drain: $s reported clean with $PEER_DIRTY dirty blocks"
	# shellcheck disable=SC2046 # two numbers
	set -- $(awk -v t0="$t0" -v w0="$w0" 'NR == 1 { w = w0 } $2 != w && first == "" { first = int($1 * 1000) - t0 }
		$2 != w { last = int($1 * 1000) - t0 } { w = $2 }
		END { print (first == "" ? "-" : first), (last == "" ? "-" : last) }' /tmp/trace)
	first=$1 last=$2
	# shellcheck disable=SC2046 # two numbers
	set -- $(origin_ios)
	echo "drain $layout $s $N_DRAIN $dirty $((t1 - t0)) $(($2 - w0)) $first $last" >> /tmp/x/drain
	log "[$(($(now_ms) / 1000)) s] drain ($layout): $s: $dirty dirty blocks clean in $((t1 - t0)) ms," \
	    "$(($2 - w0)) origin writes, the first $first ms, the last $last ms after the start"
	peer_down "$s"
}

# ---- resume: time to bring back a full, dirty cache -------------------------
# Writeback held while it fills (dm-pmcache and dm-writecache with their
# high watermark at 95%): as many dirty blocks as each system keeps.
resume_one() { # SYS
	s=$1
	PMCACHE_ARGS="high_watermark 95 low_watermark 90"
	WRITECACHE_ARGS=$PMCACHE_ARGS
	peer_up "$s"
	PMCACHE_ARGS= WRITECACHE_ARGS=
	peer_hold_writeback "$s"
	fill=$((CACHE_MB * MiB * 9 / 10))
	fio --name=fill --filename="$PEER_DEV" --direct=1 --ioengine=psync --rw=randwrite \
	    --bs=64k --size="$fill" --output-format=terse >/tmp/fio.out 2>&1 ||
		{ cat /tmp/fio.out; fail "resume: fio on $s"; }
	sync
	# One a line: set -e sees each status read fail.
	used=$(peer_fill "$s")
	dirty=$(peer_dirty "$s")
	case $s in
	bcache)
		bcache_stop
		t0=$(now_ms); bcache_register; t1=$(now_ms) ;;
	*)
		table=$(dmsetup table "$PEER_NAME")
		dm_remove "$PEER_NAME"
		t0=$(now_ms)
		dmsetup create "$PEER_NAME" --table "$table" || fail "resume: create $s"
		t1=$(now_ms) ;;
	esac
	after=$(peer_dirty "$s")
	echo "resume $s $used $dirty $after $((t1 - t0))" >> /tmp/x/resume
	log "[$(($(now_ms) / 1000)) s] resume: $s: used/total $used, $dirty dirty; create took $((t1 - t0)) ms; $after dirty after"
	peer_down "$s"
}

mkdir -p /tmp/x
for e in $EXTRA; do
	case $e in
	drain)
		dsys='' rdsys=''
		for s in writecache bcache pmcache; do
			case " $SYSTEMS " in *" $s "*) dsys="$dsys $s" rdsys="$s $rdsys" ;; esac
		done
		# The sparse drain (13 s) is set by the origin's rate, and
		# the systems end within tens of ms of each other; the dense
		# one takes a fraction of a second, of the order of an exec
		# under TCG. Each layout SPARSE_PASSES / DENSE_PASSES times,
		# every other pass in reverse system order; the report takes
		# the median.
		for layout in sparse dense; do
			passes=$SPARSE_PASSES
			[ "$layout" = sparse ] || passes=$DENSE_PASSES
			for pass in $(seq "$passes"); do
				order=$dsys
				[ $((pass % 2)) = 1 ] || order=$rdsys
				for s in $order; do drain_one "$s" "$layout"; done
			done
		done ;;
	resume)
		# dm-cache with its defaults, whatever workload ran last.
		DMCACHE_ARGS=
		for s in writecache dmcache bcache pmcache; do
			case " $SYSTEMS " in *" $s "*) resume_one "$s" ;; esac
		done ;;
	esac
done
[ -z "$EXTRA" ] || emit extra /tmp/x
peers_exit
log "bench: done"

// SPDX-License-Identifier: GPL-2.0
/*
 * Crash-state explorer for dm-pmcache's on-media protocol.
 *
 * The real pmcache_meta.c, pmcache_index.c and pmcache_alloc.c run on a
 * simulated pmem (pmem_sim.c) that sees every store and fence. A reference
 * mechanism (ref_cache.c, which mirrors pmcache_target.c and
 * pmcache_writeback.c) drives them through random operation sequences:
 * format, full and partial writes (new block, overwrite of a clean, dirty or
 * under-writeback block), promotion of a read (a clean install), eviction,
 * discard (also during writeback: tombstones), writeback (collect, origin
 * write, mark clean with one fence; writes and discards in between),
 * restart, superblock rebind to another origin, reformat, and restart from
 * a crash image (recovery itself under the simulator).
 *
 * After every store and at every fence, the explorer makes crash images:
 * each 64-byte line written since the last fence persisted or not (every
 * subset when at most 12 lines are pending, seeded random subsets beyond),
 * and torn lines (any subset of a line's pending 8-byte words). On each
 * image it runs what the kernel runs at load (pmc_meta_probe, format when
 * blank, rebind when the origin changed, pmc_meta_recover into a fresh
 * index) and checks:
 *
 *   - load succeeds, or refuses with a message, only mid-format: a
 *     cache of another origin being formatted over, or a format that
 *     began on a device refused already (torn or foreign);
 *   - every block reads back its last completed content, or for the
 *     operation in flight its previous content: nothing else (content is
 *     compared whole, so a mix of two versions is caught);
 *   - a clean block holds what the origin model holds (dirty data not yet
 *     on the origin must be dirty);
 *   - recovery's used/dirty counts match a recount of the records, every
 *     committed record is in the index once, every free slot has a zero
 *     commit word, and a second recovery changes nothing;
 *   - no corrupt record is ever found (the protocol never makes one), and
 *     no out-of-range block.
 *
 * Blocks are filled with content derived from (block, version), so a
 * block that reads an older version, a neighbour's data or a torn copy
 * shows. The origin is a model (an array) that writeback updates when its
 * batch is durable.
 *
 * Limits: one thread, so the ordering between CPUs (a fence orders only
 * the stores of its own CPU) is not modelled; interleavings exist only at
 * operation granularity (writes and discards between writeback's collect,
 * origin write and completion); the origin is atomic per operation and
 * never crashes mid-write; a bio is one block and one segment; the policy
 * is replaced by a random evictable slot. Images are deduplicated between
 * two fences, so the count is of distinct images per fence interval.
 *
 * Usage: crash_explorer [--seed N|random] [--min-states N] [--ops N]
 *                       [--tear-max N] [--random N] [--mixed N]
 *                       [--expect-violations] [--race] [-v]
 *   --tear-max N   torn subsets per line and point (0: all 254)
 *   --random N     random line subsets per point beyond 12 lines
 *   --mixed N      states per point with several torn lines at once
 *   --race         also write around the cache while an older copy's
 *                  writeback bio may be in flight (a known target race)
 *   -v             trace operations and print every violation
 * A violation names its sequence seed: --seed <it> --min-states 1 -v
 * replays that sequence alone. Prints "<N> crash states checked, <M>
 * violations" and an "ok"/"not ok" line for the unit-test runner.
 */
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#include "pmem_sim.h"
#include "ref_cache.h"
#include "pmcache_pmem.h"

#define MAX_EXHAUSTIVE_LINES	12u
#define DEDUP_BITS		18u
#define MAX_PRINTED		8u

enum op_kind {
	OP_NONE,
	OP_FORMAT,
	OP_WRITE,
	OP_PARTIAL,
	OP_ORIGIN_WRITE,
	OP_PROMOTE,
	OP_EVICT,
	OP_DISCARD,
	OP_WB_FINISH,
	OP_SUSPEND,
	OP_RESTART,
	OP_REBIND,
	OP_RECOVER,
	OP_MODE,
	OP_MOVE,
};

static const char * const op_names[] = {
	[OP_NONE] = "idle",
	[OP_FORMAT] = "format",
	[OP_WRITE] = "write",
	[OP_PARTIAL] = "partial write",
	[OP_ORIGIN_WRITE] = "write around the cache",
	[OP_PROMOTE] = "promotion",
	[OP_EVICT] = "eviction",
	[OP_DISCARD] = "discard",
	[OP_WB_FINISH] = "writeback completion",
	[OP_SUSPEND] = "suspend",
	[OP_RESTART] = "restart",
	[OP_REBIND] = "rebind",
	[OP_RECOVER] = "recovery after a crash",
	[OP_MODE] = "mode switch (reload)",
	[OP_MOVE] = "move away (blanked) and back",
};

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	u8 data[];
};

#define ARENA_CHUNK	(1u << 20)

struct dedup_ent {
	u64 h;
	u64 epoch;
};

struct xp {
	/* Options. */
	u64 seed;
	u64 min_states;
	u32 ops;
	u32 tear_max;
	u32 nr_random;
	u32 nr_mixed;
	bool expect_violations;
	bool race;
	bool verbose;

	/* Device of the current sequence. */
	u32 bs;
	u32 nb;
	u32 nob;		/* origin blocks */
	u64 size;
	u64 data_off;
	struct pmsim sim;
	u8 *img;
	struct pmsim_line *lines;
	u32 max_lines;
	u8 *choice;		/* per line: mask of its words that persist */
	u8 *tmask;		/* per line: written by the last store */

	/* The live mechanism. */
	struct ref_cache rc;
	struct pmc_meta moved_meta;	/* the cache a move leaves (do_move) */
	bool live;
	bool wb_active;		/* a batch between collect and finish */
	bool wb_written;	/* ... and its origin writes are done */
	enum ref_mode mode;

	/* The model. */
	u8 *origin[2];
	int ocur;		/* origin the cache is (being) bound to */
	int prev_ocur;		/* origin of the cache a format replaces */
	const u8 **want;	/* per block: content, NULL = the origin's */
	const u8 **pre;		/* before the operation in flight */
	bool *inflight;
	u8 uuid[16];
	u8 prev_uuid[16];
	u64 version;
	struct arena_chunk *arena;

	/* Operation in flight. */
	enum op_kind op;
	u32 op_index;
	u64 seq_seed;
	u64 rng;

	/* Capture for a restart from a crash image. */
	bool capturing;
	u64 cap_seen;
	bool cap_valid;
	bool cap_refused;
	/* The format in flight began on a device refused already. */
	bool fmt_over_refused;
	bool cap_blank;
	bool cap_rebind;
	int cap_ocur;
	bool cap_old_valid;	/* refused: a valid superblock, of ... */
	int cap_old_ocur;	/* ... this origin, uuid in cap_uuid */
	u8 *cap_img;
	u8 *cap_origin[2];
	const u8 **cap_read;
	u8 cap_uuid[16];

	/* Deduplication of images between two fences. */
	struct dedup_ent *dedup;
	u64 epoch;
	u64 epoch_count;

	/* Results. */
	u64 states;
	u64 violations;
	u64 refused;
	u64 torn_states;
	u64 random_points;
	u64 sequences;
	u64 ops_done;
	u64 crash_restarts;
	u32 printed;

	/* Scratch for the checker. */
	struct ref_cache crc;
	const u8 **readback;
};

/* ---- small helpers ---- */

static u64 mix64(u64 z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static u64 rnd(struct xp *x)
{
	return mix64(x->rng += 0x9e3779b97f4a7c15ULL);
}

static u32 rnd_below(struct xp *x, u32 n)
{
	return (u32)(((rnd(x) >> 32) * n) >> 32);
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p) {
		fprintf(stderr, "crash_explorer: out of memory\n");
		exit(2);
	}
	return p;
}

static u8 *arena_alloc(struct xp *x, size_t n)
{
	struct arena_chunk *c = x->arena;
	u8 *p;

	if (!c || c->used + n > ARENA_CHUNK) {
		c = xmalloc(sizeof(*c) + ARENA_CHUNK);
		c->next = x->arena;
		x->arena = c;
	}
	p = c->data + c->used;
	c->used += ALIGN(n, (size_t)8);
	return p;
}

static void arena_free(struct xp *x)
{
	while (x->arena) {
		struct arena_chunk *c = x->arena;

		x->arena = c->next;
		free(c);
	}
}

static const u8 *arena_dup(struct xp *x, const u8 *src)
{
	u8 *p = arena_alloc(x, x->bs);

	memcpy(p, src, x->bs);
	return p;
}

/* Content of version @ver of block @ob: every 8-byte word tells both. */
static void fill_content(u8 *p, u32 bs, u64 ob, u64 ver, u64 salt)
{
	u32 i;

	for (i = 0; i < bs / 8; i++) {
		u64 w = mix64(salt ^ (ob << 40) ^ (ver << 12) ^ i);

		memcpy(p + i * 8, &w, 8);
	}
}

static const u8 *origin_block(const struct xp *x, u64 ob)
{
	return x->origin[x->ocur] + ob * x->bs;
}

static const u8 *resolve(const struct xp *x, const u8 *c, u64 ob)
{
	return c ? c : origin_block(x, ob);
}

static const char *origin_name(int k)
{
	return k ? "pmsim-origin-b" : "pmsim-origin-a";
}

static struct pmc_origin_id origin_id(const struct xp *x)
{
	struct pmc_origin_id id = {
		.sectors = (u64)x->nob * x->bs / 512,
		.name = origin_name(x->ocur),
	};

	return id;
}

static void violation(struct xp *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void violation(struct xp *x, const char *fmt, ...)
{
	va_list ap;

	x->violations++;
	if ((x->printed >= MAX_PRINTED ||
	     (x->expect_violations && x->printed >= 2)) && !x->verbose)
		return;
	x->printed++;
	printf("# VIOLATION (seed %llu, op %u: %s, store %llu, fence %llu): ",
	       (unsigned long long)x->seq_seed, x->op_index, op_names[x->op],
	       (unsigned long long)x->sim.stores,
	       (unsigned long long)x->sim.fences);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* ---- the checker: what the kernel would find after a crash here ---- */

static u32 first_diff(const u8 *a, const u8 *b, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return i;
	return n;
}

/* Records, index and allocator agree after a recovery. */
static void check_recovered(struct xp *x, struct ref_cache *c, u8 *img)
{
	struct pmc_rec *recs = (struct pmc_rec *)(img + c->meta.geo.rec_offset);
	u32 nr = (u32)c->meta.geo.nr_blocks, slot;
	u64 used = 0, dirty = 0;

	for (slot = 0; slot < nr; slot++) {
		u64 key = le64_to_cpu(recs[slot].key);
		u64 commit = le64_to_cpu(recs[slot].commit);
		u8 st = c->idx.slots[slot].state;

		if (!commit) {
			if (st != PMC_S_FREE)
				violation(x, "slot %u has no record but is not free after recovery",
					  slot);
			continue;
		}
		if (!pmc_commit_ok(slot, key, commit)) {
			violation(x, "recovery left an invalid record in slot %u", slot);
			continue;
		}
		used++;
		if (commit & PMC_REC_DIRTY)
			dirty++;
		if (st != ((commit & PMC_REC_DIRTY) ? PMC_S_DIRTY : PMC_S_CLEAN) ||
		    c->idx.slots[slot].key != key)
			violation(x, "slot %u: index state %#x key %#llx, record key %#llx commit %#llx",
				  slot, st, (unsigned long long)c->idx.slots[slot].key,
				  (unsigned long long)key, (unsigned long long)commit);
		else if (pmc_index_lookup(&c->idx, pmc_key_oblock(key)) != slot)
			violation(x, "two committed records for block %llu after recovery",
				  (unsigned long long)pmc_key_oblock(key));
	}
	if (used != c->rst.used || dirty != c->rst.dirty ||
	    (s64)used != c->nr_used || (s64)dirty != c->nr_dirty)
		violation(x, "recovery counted %llu used / %llu dirty, the records say %llu / %llu",
			  (unsigned long long)c->rst.used,
			  (unsigned long long)c->rst.dirty,
			  (unsigned long long)used, (unsigned long long)dirty);
	if (pmc_alloc_nr_free(&c->alloc) != nr - used)
		violation(x, "%u free slots after recovery, %llu expected",
			  pmc_alloc_nr_free(&c->alloc),
			  (unsigned long long)(nr - used));
}

/* A second recovery of a recovered image finds nothing to do. */
static void check_idempotent(struct xp *x, struct ref_cache *c, u8 *img)
{
	struct pmc_origin_id oid = origin_id(x);
	struct ref_cache c2;
	const char *err;
	u64 stores = pmsim_direct_stores;
	int r;

	r = ref_load(&c2, img, x->size, x->bs, &oid, x->nob, false, x->uuid, 1, &err);
	if (r) {
		violation(x, "a recovered image does not load again: %s", err);
	} else if (pmsim_direct_stores != stores || c2.rst.duplicates ||
		   c2.rst.corrupt || c2.rst.out_of_range ||
		   c2.rst.used != c->rst.used || c2.rst.dirty != c->rst.dirty ||
		   c2.action != REF_ACT_LOAD) {
		violation(x, "recovery is not idempotent (second pass: %llu used, %llu dirty, %llu duplicates, %llu stores)",
			  (unsigned long long)c2.rst.used,
			  (unsigned long long)c2.rst.dirty,
			  (unsigned long long)c2.rst.duplicates,
			  (unsigned long long)(pmsim_direct_stores - stores));
	}
	ref_destroy(&c2);
}

/*
 * Load the image in x->img as the kernel would and check it. Runs in the
 * middle of a store hook: switch to direct stores and back.
 */
static void check_image(struct xp *x)
{
	struct pmc_origin_id oid = origin_id(x);
	struct ref_cache *c = &x->crc;
	bool capture = false, old_cache = false;
	bool fmt = x->op == OP_FORMAT || x->op == OP_MOVE;
	const char *err;
	u64 ob;
	int r;

	x->states++;
	if (x->capturing) {
		x->cap_seen++;
		if (rnd_below(x, (u32)min_t(u64, x->cap_seen, U32_MAX)) == 0) {
			capture = true;
			x->cap_valid = true;
			memcpy(x->cap_img, x->img, x->size);
			memcpy(x->cap_origin[0], x->origin[0], (size_t)x->nob * x->bs);
			memcpy(x->cap_origin[1], x->origin[1], (size_t)x->nob * x->bs);
			x->cap_ocur = x->ocur;
		}
	}
	pmsim_install_direct();
	r = ref_load(c, x->img, x->size, x->bs, &oid, x->nob, false, x->uuid,
		     x->states, &err);
	if (r) {
		/*
		 * Mid-format the device may be still the old cache, which
		 * holds dirty data of another origin; or, when the format
		 * began on a device refused already, no cache yet. A format
		 * over a cache never leaves one refused as torn or foreign.
		 */
		if (!fmt || !err ||
		    (!((c->probe == PMC_PROBE_FOREIGN || c->probe == PMC_PROBE_CORRUPT) &&
		       x->fmt_over_refused) &&
		     !(c->probe == PMC_PROBE_VALID &&
		       !memcmp(c->meta.uuid, x->prev_uuid, 16) &&
		       !strcmp(c->probed_origin, origin_name(x->prev_ocur)) &&
		       x->prev_ocur != x->ocur)))
			violation(x, "load refused (probe %d, superblock of %s): %s",
				  c->probe, c->probed_origin,
				  err ? err : "(no reason given)");
		x->refused++;
		if (capture) {
			x->cap_refused = true;
			/* The cache the restart formats over: the one refused. */
			x->cap_old_valid = c->probe == PMC_PROBE_VALID;
			if (x->cap_old_valid) {
				memcpy(x->cap_uuid, c->meta.uuid, 16);
				x->cap_old_ocur = !strcmp(c->probed_origin, origin_name(1));
			}
		}
		goto out;
	}
	if (c->probe == PMC_PROBE_BLANK) {
		if (!fmt)
			violation(x, "the cache device reads as blank");
	} else if (memcmp(c->meta.uuid, x->uuid, 16)) {
		if (fmt && !memcmp(c->meta.uuid, x->prev_uuid, 16))
			old_cache = true;
		else
			violation(x, "the superblock names a cache that is neither this one nor the one being formatted over");
	}
	if (old_cache && strcmp(c->probed_origin, origin_name(x->prev_ocur)))
		violation(x, "an older superblock (origin %s, seq %llu, copy %u) came back over the cache of %s",
			  c->probed_origin, (unsigned long long)c->meta.sb_seq,
			  c->meta.sb_copy, origin_name(x->prev_ocur));
	if (c->action == REF_ACT_REBIND && x->op != OP_REBIND &&
	    !(old_cache && x->prev_ocur != x->ocur))
		violation(x, "the superblock names another origin (%s)",
			  c->probed_origin);
	if (c->rst.corrupt && !old_cache)
		violation(x, "recovery found %llu corrupt records",
			  (unsigned long long)c->rst.corrupt);
	if (c->rst.out_of_range)
		violation(x, "recovery found %llu records beyond the origin",
			  (unsigned long long)c->rst.out_of_range);
	check_recovered(x, c, x->img);

	for (ob = 0; ob < x->nob; ob++) {
		u32 slot = ref_lookup(c, ob);
		const u8 *got, *a, *b;

		got = slot == PMC_NO_SLOT ? origin_block(x, ob) :
		      x->img + x->data_off + (size_t)slot * x->bs;
		a = resolve(x, x->want[ob], ob);
		b = x->inflight[ob] ? resolve(x, x->pre[ob], ob) : NULL;
		if (memcmp(got, a, x->bs) && (!b || memcmp(got, b, x->bs))) {
			violation(x, "block %llu (%s, slot %d) reads data it never held or a mix: differs from %s at byte %u",
				  (unsigned long long)ob,
				  slot == PMC_NO_SLOT ? "from the origin" :
				  (c->idx.slots[slot].state & PMC_S_DIRTY) ? "dirty" : "clean",
				  slot == PMC_NO_SLOT ? -1 : (int)slot,
				  b ? "both its current and previous content" :
				  "its last completed content",
				  first_diff(got, a, x->bs));
		} else if (slot != PMC_NO_SLOT &&
			   (c->idx.slots[slot].state & PMC_S_KIND_MASK) == PMC_S_CLEAN &&
			   memcmp(got, origin_block(x, ob), x->bs)) {
			violation(x, "block %llu is clean in slot %u but the origin holds other data",
				  (unsigned long long)ob, slot);
		}
		x->readback[ob] = slot == PMC_NO_SLOT ? NULL : got;
	}
	if (capture) {
		x->cap_refused = false;
		x->cap_blank = c->probe == PMC_PROBE_BLANK;
		x->cap_rebind = c->action == REF_ACT_REBIND;
		memcpy(x->cap_uuid, c->meta.uuid, 16);
		for (ob = 0; ob < x->nob; ob++)
			x->cap_read[ob] = x->readback[ob] ?
					  arena_dup(x, x->readback[ob]) : NULL;
	}
	check_idempotent(x, c, x->img);
out:
	ref_destroy(c);
	pmsim_install(&x->sim);
}

/* ---- crash images ---- */

static bool dedup_new(struct xp *x, u64 h)
{
	u64 mask = (1ULL << DEDUP_BITS) - 1, i = h & mask;

	if (x->epoch_count > (mask >> 1))
		return true;	/* table full: count them all */
	for (;;) {
		struct dedup_ent *e = &x->dedup[i];

		if (e->epoch != x->epoch) {
			e->epoch = x->epoch;
			e->h = h;
			x->epoch_count++;
			return true;
		}
		if (e->h == h)
			return false;
		i = (i + 1) & mask;
	}
}

static void new_epoch(struct xp *x)
{
	x->epoch++;
	x->epoch_count = 0;
}

/*
 * Image = pers + for line i the words in x->choice[i] (bit j: the line's
 * j-th pending word), each with its latest value, or with a random earlier
 * one when @any_value (a word stored twice before a fence).
 */
static void try_image(struct xp *x, u32 n, bool any_value)
{
	u64 h = 0x51ed2701ULL, salt = any_value ? rnd(x) : 0;
	u32 i, j, pass;

	for (pass = 0; pass < 2; pass++) {
		if (pass) {
			if (!dedup_new(x, h))
				return;
			memcpy(x->img, x->sim.pers, x->size);
		}
		for (i = 0; i < n; i++) {
			const struct pmsim_line *l = &x->lines[i];

			for (j = 0; j < l->nwords; j++) {
				const struct pmsim_word *pw;
				u32 v;

				if (!(x->choice[i] & (1u << j)))
					continue;
				pw = &x->sim.pend[l->word[j]];
				v = pw->nvals - 1;
				if (any_value && pw->nvals > 1)
					v = mix64(salt ^ pw->w) % pw->nvals;
				if (pass)
					memcpy(x->img + (size_t)pw->w * 8, &pw->vals[v], 8);
				else
					h = mix64(h ^ ((u64)pw->w << 8) ^ v) + pw->vals[v];
			}
		}
	}
	check_image(x);
}

static u8 full_mask(const struct pmsim_line *l)
{
	return (u8)((1u << l->nwords) - 1);
}

static u8 random_mask(struct xp *x, const struct pmsim_line *l)
{
	return (u8)(rnd(x) & full_mask(l));
}

/*
 * All crash images at this point: the lines pending since the last fence,
 * @off/@len the store that was just made (len 0: all lines count as new).
 */
static void explore_point(struct xp *x, size_t off, size_t len)
{
	u32 n = pmsim_lines(&x->sim, x->lines, x->max_lines), i, k;
	u32 first_line = off / PMSIM_LINE;
	u32 last_line = len ? (off + len - 1) / PMSIM_LINE : U32_MAX;
	u64 touched = 0;
	bool any_touched = false;
	u8 *t = x->tmask;

	for (i = 0; i < n; i++) {
		t[i] = !len || (x->lines[i].line >= first_line &&
				x->lines[i].line <= last_line);
		if (t[i]) {
			any_touched = true;
			if (i < 64)
				touched |= 1ULL << i;
		}
	}
	/* Nothing persisted beyond the last fence. */
	memset(x->choice, 0, n);
	try_image(x, n, false);
	if (!any_touched)
		return;

	/* Whole lines: every subset, or seeded random ones. */
	if (n <= MAX_EXHAUSTIVE_LINES) {
		u32 m;

		for (m = 1; m < (1u << n); m++) {
			if (!(m & touched))
				continue;
			for (i = 0; i < n; i++)
				x->choice[i] = (m >> i) & 1 ? full_mask(&x->lines[i]) : 0;
			try_image(x, n, false);
		}
	} else {
		x->random_points++;
		for (i = 0; i < n; i++)
			x->choice[i] = full_mask(&x->lines[i]);
		try_image(x, n, false);
		for (k = 0; k < x->nr_random; k++) {
			bool hit = false;

			for (i = 0; i < n; i++) {
				x->choice[i] = rnd(x) & 1 ? full_mask(&x->lines[i]) : 0;
				hit |= t[i] && x->choice[i];
			}
			if (!hit) {
				u32 pick = rnd_below(x, n);

				while (!t[pick])
					pick = (pick + 1) % n;
				x->choice[pick] = full_mask(&x->lines[pick]);
			}
			try_image(x, n, false);
		}
	}

	/* Torn lines: each proper subset of a new line's words. */
	for (i = 0; i < n; i++) {
		const struct pmsim_line *l = &x->lines[i];
		u32 subsets, s;

		if (!t[i] || l->nwords < 2)
			continue;
		subsets = (1u << l->nwords) - 2;
		for (s = 1; s <= subsets; s++) {
			u32 m = s;

			if (x->tear_max && subsets > x->tear_max) {
				if (s > x->tear_max)
					break;
				m = 1 + rnd_below(x, subsets);
			}
			for (k = 0; k < n; k++)
				x->choice[k] = rnd(x) & 1 ? full_mask(&x->lines[k]) : 0;
			x->choice[i] = (u8)m;
			x->torn_states++;
			try_image(x, n, false);
		}
	}

	/* Several torn lines at once, and earlier values of rewritten words. */
	for (k = 0; k < x->nr_mixed; k++) {
		for (i = 0; i < n; i++) {
			u32 r = rnd_below(x, 5);

			x->choice[i] = r < 2 ? 0 : r < 4 ? full_mask(&x->lines[i]) :
				       random_mask(x, &x->lines[i]);
		}
		try_image(x, n, true);
	}
}

static void after_store(void *ctx, size_t off, size_t len)
{
	explore_point(ctx, off, len);
}

static void after_fence(void *ctx)
{
	new_epoch(ctx);
}

/* ---- operations: the model's side ---- */

static void op_begin(struct xp *x, enum op_kind op)
{
	x->op = op;
	x->op_index++;
	if (x->verbose)
		printf("# op %u: %s (origin %s)\n", x->op_index, op_names[op],
		       origin_name(x->ocur));
	new_epoch(x);
}

/* Block @ob goes from what it holds to @post when the operation completes. */
static void op_touch(struct xp *x, u64 ob, const u8 *post)
{
	if (x->verbose)
		printf("#   block %llu (slot %d)\n", (unsigned long long)ob,
		       x->live ? (int)pmc_index_lookup(&x->rc.idx, ob) : -1);
	if (!x->inflight[ob]) {
		x->pre[ob] = x->want[ob];
		x->inflight[ob] = true;
	}
	x->want[ob] = post;
}

static void live_check(struct xp *x)
{
	const char *why;
	u64 ob;

	if (!x->live)
		return;
	if (ref_check_counters(&x->rc, &why))
		violation(x, "live: %s", why);
	for (ob = 0; ob < x->nob; ob++) {
		u32 slot = ref_lookup(&x->rc, ob);
		const u8 *got = slot == PMC_NO_SLOT ? origin_block(x, ob) :
				pmc_block_data(&x->rc.meta, slot);

		if (memcmp(got, resolve(x, x->want[ob], ob), x->bs))
			violation(x, "live: block %llu reads other data than the last write%s",
				  (unsigned long long)ob,
				  slot == PMC_NO_SLOT ? " (from the origin)" : "");
	}
}

/* The operation completed: check the images where it is done. */
static void op_end(struct xp *x)
{
	u32 ob;

	for (ob = 0; ob < x->nob; ob++)
		x->inflight[ob] = false;
	x->op = OP_NONE;
	new_epoch(x);
	explore_point(x, 0, 0);
	live_check(x);
	x->ops_done++;
}

/* ---- operations: the mechanism's side ---- */

/* The batch's bios and the origin flush completed; @some: only some of them. */
static void wb_origin_write(struct xp *x, bool some)
{
	u32 i;

	for (i = 0; i < x->rc.nr_items; i++) {
		const struct ref_wb_item *it = &x->rc.items[i];

		if (some && rnd_below(x, 2))
			continue;

		if (x->verbose)
			printf("# writeback to the origin: block %llu from slot %u%s\n",
			       (unsigned long long)it->oblock, it->slot,
			       x->rc.idx.slots[it->slot].state & PMC_S_STALE ? " (stale)" : "");

		memcpy(x->origin[x->ocur] + it->oblock * x->bs,
		       pmc_block_data(&x->rc.meta, it->slot), x->bs);
	}
	x->wb_written = true;
}

/*
 * One batch in 8 fails (an origin I/O error; the kernel's pmc_wb_work),
 * when some of its writes landed or none: its copies stay dirty, and a
 * discarded block's tombstone goes all the same.
 */
static void wb_finish(struct xp *x)
{
	bool ok = rnd_below(x, 8) != 0;

	if (!x->wb_written)
		wb_origin_write(x, !ok);
	op_begin(x, OP_WB_FINISH);
	ref_wb_finish(&x->rc, ok);
	op_end(x);
	x->wb_active = false;
	x->wb_written = false;
}

static void wb_start(struct xp *x, u32 max)
{
	if (x->wb_active)
		wb_finish(x);
	if (ref_wb_collect(&x->rc, max)) {
		if (x->verbose)
			printf("# writeback collects %u blocks\n", x->rc.nr_items);
		x->wb_active = true;
		x->wb_written = false;
	}
}

/* Write back everything (the kernel's "flush" message). */
static void flush_all(struct xp *x)
{
	for (;;) {
		wb_start(x, x->nb);
		if (!x->wb_active)
			break;
		wb_finish(x);
	}
}

/* What the kernel does when no slot is free: wait for writeback. */
static void make_room(struct xp *x)
{
	if (x->wb_active)
		wb_finish(x);
	else
		flush_all(x);
}

/* A write of @len bytes at @off of block @ob, as pmc_map_write takes it. */
static void do_write(struct xp *x, u64 ob, u32 off, u32 len)
{
	u8 *merged = arena_alloc(x, x->bs);
	u8 *src = arena_alloc(x, x->bs);
	enum ref_write_result res;
	bool promote;
	int tries;

	fill_content(src, x->bs, ob, ++x->version, x->seq_seed);
	for (tries = 0; tries < 4; tries++) {
		/* What the block holds now (writeback may have changed it). */
		memcpy(merged, resolve(x, x->want[ob], ob), x->bs);
		memcpy(merged + off, src + off, len);
		op_begin(x, len == x->bs ? OP_WRITE : OP_PARTIAL);
		op_touch(x, ob, merged);
		res = ref_map_write(&x->rc, ob, off, len, src + off, &promote);
		if (res == REF_W_CACHE) {
			op_end(x);
			return;
		}
		if (res == REF_W_ORIGIN) {
			/* The origin write completed. */
			x->op = OP_ORIGIN_WRITE;
			memcpy(x->origin[x->ocur] + ob * x->bs + off, src + off, len);
			op_end(x);
			if (promote) {
				op_begin(x, OP_PROMOTE);
				ref_promote(&x->rc, ob, origin_block(x, ob));
				op_end(x);
			}
			return;
		}
		/* Nothing was written yet: the write has not started. */
		x->want[ob] = x->pre[ob];
		x->inflight[ob] = false;
		x->op = OP_NONE;
		if (res == REF_W_RETRY && !x->wb_active) {
			violation(x, "a write to block %llu would loop forever (no writeback in flight)",
				  (unsigned long long)ob);
			return;
		}
		/* The kernel loops, or waits, until writeback makes room. */
		make_room(x);
	}
	violation(x, "a write to block %llu made no progress after writeback",
		  (unsigned long long)ob);
}

static void do_partial(struct xp *x, u64 ob)
{
	u32 sectors = x->bs / 512, off = rnd_below(x, sectors) * 512;
	u32 len = (1 + rnd_below(x, sectors - off / 512)) * 512;

	if (len == x->bs)
		len -= 512;
	if (!len) {
		off = 0;
		len = 512;
	}
	do_write(x, ob, off, len);
}

static void do_promote(struct xp *x, u64 ob)
{
	int r;

	if (ref_lookup(&x->rc, ob) != PMC_NO_SLOT ||
	    x->mode == REF_MODE_PASSTHROUGH)
		return;		/* a hit, or no promotions */
	op_begin(x, OP_PROMOTE);
	r = ref_promote(&x->rc, ob, origin_block(x, ob));
	op_end(x);
	if (r && r != -ENOSPC && r != -EEXIST)
		violation(x, "promotion failed: %d", r);
}

static void do_evict(struct xp *x)
{
	op_begin(x, OP_EVICT);
	ref_evict(&x->rc);
	op_end(x);
}

static void do_discard(struct xp *x, u64 first, u64 last)
{
	u64 ob;

	op_begin(x, OP_DISCARD);
	for (ob = first; ob <= last; ob++)
		op_touch(x, ob, NULL);
	ref_invalidate(&x->rc, first, last);
	op_end(x);
}

/*
 * Load (format, rebind, recover) the device in sim as op @op; OP_MOVE
 * blanks the live cache first, as a move to another cache device does
 * (pmc_drop_replaced_cache), and the format is the table's return.
 */
static void do_load(struct xp *x, enum op_kind op, bool format)
{
	struct pmc_origin_id oid;
	const char *err;
	int r;

	if (x->live)
		ref_destroy(&x->rc);
	x->live = false;
	x->wb_active = false;
	x->wb_written = false;
	oid = origin_id(x);
	if (op == OP_FORMAT || op == OP_MOVE) {
		struct pmc_meta pm;
		enum pmc_probe_result pr = pmc_meta_probe(&pm, x->sim.mem, x->size, &err);

		x->fmt_over_refused = pr == PMC_PROBE_FOREIGN || pr == PMC_PROBE_CORRUPT;
	}
	op_begin(x, op);
	if (op == OP_MOVE)
		pmc_meta_invalidate(&x->moved_meta, x->size);
	r = ref_load(&x->rc, x->sim.mem, x->size, x->bs, &oid, x->nob, format,
		     x->uuid, x->seq_seed ^ x->op_index, &err);
	if (r) {
		violation(x, "%s failed: %s", op_names[op], err);
		op_end(x);
		exit(2);
	}
	x->live = true;
	x->rc.mode = x->mode;
	op_end(x);
}

static void do_format(struct xp *x, int origin, enum op_kind op)
{
	u64 ob;

	x->prev_ocur = x->ocur;
	x->ocur = origin;
	memcpy(x->prev_uuid, x->uuid, 16);
	for (ob = 0; ob < 16; ob += 8) {
		u64 v = rnd(x);

		memcpy(x->uuid + ob, &v, 8);
	}
	for (ob = 0; ob < x->nob; ob++) {
		x->pre[ob] = x->want[ob];
		x->inflight[ob] = true;
		x->want[ob] = NULL;
	}
	/* do_load's op_begin must not clear what was set up above. */
	if (x->live)
		ref_destroy(&x->rc);
	x->live = false;
	x->wb_active = false;
	x->wb_written = false;
	do_load(x, op, true);
}

/* Suspend before a table reload: stale records cleared, no content moves. */
static void do_suspend(struct xp *x)
{
	if (!x->live)
		return;
	op_begin(x, OP_SUSPEND);
	ref_suspend(&x->rc);
	op_end(x);
}

static void do_restart(struct xp *x)
{
	if (x->wb_active)
		wb_finish(x);
	do_suspend(x);
	do_load(x, OP_RESTART, false);
}

/* Reload the table with another mode (the mode is not on media). */
static void do_mode_switch(struct xp *x)
{
	x->mode = rnd_below(x, 4);
	if (x->wb_active)
		wb_finish(x);
	do_suspend(x);
	do_load(x, OP_MODE, false);
}

/* Bind the cache to the other origin: only a clean cache may be. */
static void do_rebind(struct xp *x)
{
	u64 ob;

	flush_all(x);
	if (x->rc.nr_dirty)
		violation(x, "dirty blocks left after a flush");
	ref_destroy(&x->rc);
	x->live = false;
	x->ocur = !x->ocur;
	for (ob = 0; ob < x->nob; ob++)
		x->want[ob] = NULL;
	do_load(x, OP_REBIND, false);
	if (x->rc.action != REF_ACT_REBIND)
		violation(x, "loading with another origin did not rebind");
}

/*
 * Move the table to another cache device and back. Only a clean cache may
 * be left: it is blanked, and the table back on it formats it. Mid-way the
 * device reads as blank, is refused (a torn superblock), or holds this
 * cache whole; never an older superblock over these records.
 */
static void do_move(struct xp *x)
{
	flush_all(x);
	if (x->rc.nr_dirty)
		violation(x, "dirty blocks left after a flush");
	do_suspend(x);
	x->moved_meta = x->rc.meta;
	do_format(x, x->ocur, OP_MOVE);
}

/* ---- sequences ---- */

static void random_op(struct xp *x);

/* Run one operation, then restart from a random crash image taken in it. */
static void do_crash_restart(struct xp *x)
{
	u64 ob;

	x->capturing = true;
	x->cap_seen = 0;
	x->cap_valid = false;
	random_op(x);
	x->capturing = false;
	if (!x->cap_valid)
		return;
	x->crash_restarts++;
	if (x->live)
		ref_destroy(&x->rc);
	x->live = false;
	x->wb_active = false;
	x->wb_written = false;
	pmsim_load(&x->sim, x->cap_img);
	/* The origin as it was at the crash. */
	x->ocur = x->cap_ocur;
	memcpy(x->origin[0], x->cap_origin[0], (size_t)x->nob * x->bs);
	memcpy(x->origin[1], x->cap_origin[1], (size_t)x->nob * x->bs);
	for (ob = 0; ob < x->nob; ob++)
		x->want[ob] = x->cap_refused ? NULL : x->cap_read[ob];
	if (x->cap_refused || x->cap_blank) {
		/*
		 * Mid-format: the kernel refuses the device (the admin
		 * passes "format") or formats it because it is blank.
		 */
		if (x->cap_refused && x->cap_old_valid) {
			/* Refused: a valid cache, of the other origin. */
			memcpy(x->prev_uuid, x->cap_uuid, 16);
			x->prev_ocur = x->cap_old_ocur;
		} else {
			memcpy(x->prev_uuid, x->uuid, 16);
			x->prev_ocur = x->ocur;
		}
		x->uuid[0] ^= 0x5a;
		do_load(x, OP_FORMAT, x->cap_refused);
		return;
	}
	memcpy(x->uuid, x->cap_uuid, 16);
	/* Crashed mid-rebind: the load rebinds again. */
	do_load(x, x->cap_rebind ? OP_REBIND : OP_RECOVER, false);
}

/* Blocks whose older copy's writeback bio may still be in flight. */
static bool wb_race_window(struct xp *x, u64 ob)
{
	u32 i;

	if (!x->wb_active || x->wb_written)
		return false;
	for (i = 0; i < x->rc.nr_items; i++)
		if (x->rc.items[i].oblock == ob)
			return ref_lookup(&x->rc, ob) == PMC_NO_SLOT;
	return false;
}

static u64 pick_block(struct xp *x)
{
	/* Half the time a block of the batch in writeback, if any. */
	if (x->wb_active && x->rc.nr_items && rnd_below(x, 2))
		return x->rc.items[rnd_below(x, x->rc.nr_items)].oblock;
	return rnd_below(x, x->nob);
}

static void random_op(struct xp *x)
{
	u32 r = rnd_below(x, 100);
	u64 ob = pick_block(x);
	bool window = wb_race_window(x, ob);
	bool to_origin = window && !x->race;

	if (r < 34) {
		if (!to_origin || x->mode == REF_MODE_WRITEBACK)
			do_write(x, ob, 0, x->bs);
	} else if (r < 46) {
		if (x->bs == 512)
			do_write(x, ob, 0, x->bs);
		else if (!to_origin)
			do_partial(x, ob);
	} else if (r < 56) {
		/*
		 * Not in the window even with --race: a promotion there
		 * caches the origin's data of a discarded block while an
		 * older copy's writeback still changes it (both contents
		 * were held; reads of a discarded block are undefined).
		 */
		if (!window)
			do_promote(x, ob);
	} else if (r < 62) {
		do_evict(x);
	} else if (r < 68) {
		u64 last = ob + rnd_below(x, 3);

		last = min_t(u64, x->nob - 1, last);

		do_discard(x, ob, last);
	} else if (r < 76) {
		wb_start(x, 1 + rnd_below(x, 8));
	} else if (r < 82) {
		if (x->wb_active && !x->wb_written)
			wb_origin_write(x, false);
		else if (x->wb_active)
			wb_finish(x);
	} else if (r < 85) {
		if (x->wb_active)
			wb_finish(x);
	} else if (r < 87) {
		do_restart(x);
	} else if (r < 88) {
		do_mode_switch(x);
	} else if (r < 89) {
		do_rebind(x);
	} else if (r < 90) {
		do_format(x, rnd_below(x, 3) ? x->ocur : !x->ocur, OP_FORMAT);
	} else if (r < 91) {
		do_move(x);
	} else if (!x->capturing) {
		do_crash_restart(x);
	} else {
		do_write(x, ob, 0, x->bs);
	}
}

static void run_sequence(struct xp *x, u64 seed)
{
	u64 ob, i;

	x->seq_seed = seed;
	x->rng = mix64(seed);
	x->bs = rnd_below(x, 3) ? 512 : 1024;
	x->nb = 16 + rnd_below(x, 17);
	x->nob = x->nb + x->nb / 2 + rnd_below(x, 8);
	x->size = ALIGN(12288 + (u64)x->nb * (x->bs + 16), (u64)PMSIM_LINE);
	x->data_off = 12288;
	x->op_index = 0;
	x->version = 0;
	x->ocur = 0;
	x->mode = REF_MODE_WRITEBACK;
	x->live = false;
	x->wb_active = false;
	x->wb_written = false;
	memset(x->uuid, 0, 16);
	memset(x->prev_uuid, 0, 16);

	if (pmsim_init(&x->sim, x->size)) {
		fprintf(stderr, "crash_explorer: cannot allocate the simulator\n");
		exit(2);
	}
	x->sim.after_store = after_store;
	x->sim.after_fence = after_fence;
	x->sim.ctx = x;
	x->img = xmalloc(x->size);
	x->cap_img = xmalloc(x->size);
	x->max_lines = x->size / PMSIM_LINE;
	x->lines = xmalloc(x->max_lines * sizeof(*x->lines));
	x->choice = xmalloc(x->max_lines + 1);
	x->tmask = xmalloc(x->max_lines + 1);
	for (i = 0; i < 2; i++) {
		x->origin[i] = xmalloc((size_t)x->nob * x->bs);
		x->cap_origin[i] = xmalloc((size_t)x->nob * x->bs);
		for (ob = 0; ob < x->nob; ob++)
			fill_content(x->origin[i] + ob * x->bs, x->bs, ob, 0,
				     seed * 2 + i + 1);
	}
	x->want = xmalloc(x->nob * sizeof(*x->want));
	x->pre = xmalloc(x->nob * sizeof(*x->pre));
	x->cap_read = xmalloc(x->nob * sizeof(*x->cap_read));
	x->readback = xmalloc(x->nob * sizeof(*x->readback));
	x->inflight = xmalloc(x->nob * sizeof(*x->inflight));

	/* A blank device, or one with something else on it. */
	if (rnd_below(x, 3) == 0) {
		for (i = 0; i + 8 <= x->size; i += 8) {
			u64 v = rnd(x);

			memcpy(x->sim.mem + i, &v, 8);
		}
		pmsim_load(&x->sim, x->sim.mem);
	}
	pmsim_install(&x->sim);
	do_format(x, 0, OP_FORMAT);
	for (i = 0; i < x->ops; i++)
		random_op(x);
	if (x->wb_active)
		wb_finish(x);
	do_restart(x);

	if (x->live)
		ref_destroy(&x->rc);
	x->live = false;
	pmc_pmem_set_hooks(NULL);
	pmsim_exit(&x->sim);
	for (i = 0; i < 2; i++) {
		free(x->origin[i]);
		free(x->cap_origin[i]);
	}
	free(x->img);
	free(x->cap_img);
	free(x->lines);
	free(x->choice);
	free(x->tmask);
	free(x->want);
	free(x->pre);
	free(x->cap_read);
	free(x->readback);
	free(x->inflight);
	arena_free(x);
	x->sequences++;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: crash_explorer [--seed N|random] [--min-states N] [--ops N]\n"
		"                      [--tear-max N] [--random N] [--mixed N]\n"
		"                      [--expect-violations] [--race] [-v]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct xp *x = xmalloc(sizeof(*x));
	struct timespec t0, t1;
	bool ok;
	double secs;
	u64 seq;
	int i;

	x->seed = 1;
	x->min_states = 300000;
	x->ops = 60;
	x->tear_max = 16;
	x->nr_random = 64;
	x->nr_mixed = 8;
#ifdef PMC_CRASH_BUG_EARLY_COMMIT
	/* Built with a fence missing from pmcache_meta.c: it must fail. */
	x->expect_violations = true;
#endif
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--seed") && v) {
			x->seed = strcmp(v, "random") ? strtoull(v, NULL, 0) :
				  (u64)time(NULL) ^ ((u64)getpid() << 32);
			i++;
		} else if (!strcmp(a, "--min-states") && v) {
			x->min_states = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--ops") && v) {
			x->ops = strtoul(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--tear-max") && v) {
			x->tear_max = strtoul(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--random") && v) {
			x->nr_random = strtoul(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--mixed") && v) {
			x->nr_mixed = strtoul(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--expect-violations")) {
			x->expect_violations = true;
		} else if (!strcmp(a, "--race")) {
			x->race = true;
		} else if (!strcmp(a, "-v")) {
			x->verbose = true;
		} else {
			usage();
		}
	}
	x->dedup = xmalloc(sizeof(*x->dedup) << DEDUP_BITS);
	x->epoch = 1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (seq = 0; x->states < x->min_states; seq++) {
		run_sequence(x, x->seed + seq);
		/* The self-test has shown what it must once it has failed. */
		if (x->expect_violations && x->violations)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

	printf("# seed %llu: %llu sequences, %llu operations (%llu restarts from crash images), %llu torn-line states, %llu points with random subsets, %llu refused loads (mid-format), %.1f s\n",
	       (unsigned long long)x->seed, (unsigned long long)x->sequences,
	       (unsigned long long)x->ops_done,
	       (unsigned long long)x->crash_restarts,
	       (unsigned long long)x->torn_states,
	       (unsigned long long)x->random_points,
	       (unsigned long long)x->refused, secs);
	printf("%llu crash states checked, %llu violations\n",
	       (unsigned long long)x->states, (unsigned long long)x->violations);
	if (x->expect_violations) {
		ok = x->violations > 0;
		printf("%s crash explorer self-test: a misplaced fence is reported (%llu violations)\n",
		       ok ? "ok" : "not ok", (unsigned long long)x->violations);
	} else {
		ok = !x->violations && x->states >= x->min_states;
		printf("%s crash explorer: %llu states, %llu violations\n",
		       ok ? "ok" : "not ok", (unsigned long long)x->states,
		       (unsigned long long)x->violations);
	}
	free(x->dedup);
	free(x);
	return ok ? 0 : 1;
}

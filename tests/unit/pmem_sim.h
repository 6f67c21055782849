/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Simulated persistent memory for the crash explorer.
 *
 * Installed through pmc_pmem_set_hooks(), it sees every store, flush and
 * fence dm-pmcache makes. Two byte arrays of the device's size:
 *
 *   mem   what the CPU sees: every store lands here at once (the module
 *         reads its own writes back from here);
 *   pers  the persistence domain: what survives a power cut for sure.
 *
 * The helpers flush as they store (pmc_pmem_copy, pmc_pmem_zero and
 * pmc_pmem_store64 are store + flush), so a stored word is "pending" until
 * the next fence, which copies every pending word from mem to pers. A crash
 * image is pers plus any subset of the pending words: a 64-byte line that
 * was written since its last fence reached pmem wholly, not at all, or (a
 * torn line) as any subset of its 8-byte words. 8-byte aligned stores are
 * atomic, so no word is ever torn.
 *
 * A word stored twice before one fence keeps every value it held (up to
 * PMSIM_MAX_VALS), since any of them may be the one that persisted.
 *
 * The hooks are global (pmc_pmem_set_hooks() takes no context), so there
 * is one active simulator at a time.
 */
#ifndef PMEM_SIM_H
#define PMEM_SIM_H

#include "pmcache_os.h"

#define PMSIM_LINE		64u
#define PMSIM_WORDS_PER_LINE	8u
#define PMSIM_MAX_VALS		4u

/* One 8-byte word stored since the last fence. */
struct pmsim_word {
	u32 w;				/* word index: byte offset / 8 */
	u32 nvals;			/* values it held since the fence */
	u64 vals[PMSIM_MAX_VALS];	/* oldest first; the last is in mem */
};

/* A line with pending words that change what is persistent. */
struct pmsim_line {
	u32 line;			/* line index: byte offset / 64 */
	u32 nwords;
	u32 word[PMSIM_WORDS_PER_LINE];	/* indices into pmsim.pend */
};

struct pmsim {
	u8 *mem;
	u8 *pers;
	size_t size;			/* a multiple of PMSIM_LINE */
	struct pmsim_word *pend;
	u32 nr_pend;
	s32 *pend_of;			/* word index -> index in pend, or -1 */
	/* Statistics. */
	u64 stores;			/* store hook calls */
	u64 fences;
	u64 rewrites;			/* words stored twice before a fence */
	u64 lost_values;		/* rewrites beyond PMSIM_MAX_VALS */
	/*
	 * Called after every store (with the byte range it wrote) and
	 * after every fence; the crash explorer generates images there.
	 */
	void (*after_store)(void *ctx, size_t off, size_t len);
	void (*after_fence)(void *ctx);
	void *ctx;
};

/* Allocate a simulator of @size bytes, both arrays zero. */
int pmsim_init(struct pmsim *s, size_t size);
void pmsim_exit(struct pmsim *s);
/* Make @s the simulator the hooks feed. */
void pmsim_install(struct pmsim *s);
/* Replace the whole device (mem and pers) with @img; nothing pending. */
void pmsim_load(struct pmsim *s, const u8 *img);
/* Persist everything pending, as a fence would, without calling after_fence. */
void pmsim_settle(struct pmsim *s);

/*
 * Pending lines whose words differ from pers (stores that change nothing
 * persistent are left out: their images are the same). Returns how many,
 * at most @max, in the order they were first written.
 */
u32 pmsim_lines(const struct pmsim *s, struct pmsim_line *lines, u32 max);
/* The value word @pw (index into pend) has if value @v persisted. */
static inline u64 pmsim_word_val(const struct pmsim *s, u32 pw, u32 v)
{
	return s->pend[pw].vals[v];
}

/*
 * Direct mode: the hooks store straight into whatever memory they are
 * given, fences do nothing; recovery runs on crash images this way. Every
 * store is counted in pmsim_direct_stores.
 */
void pmsim_install_direct(void);
extern u64 pmsim_direct_stores;

#endif /* PMEM_SIM_H */

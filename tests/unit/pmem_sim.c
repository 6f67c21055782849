// SPDX-License-Identifier: GPL-2.0
/*
 * Simulated persistent memory for the crash explorer: see pmem_sim.h.
 */
#include "pmem_sim.h"
#include "pmcache_pmem.h"

static struct pmsim *cur;

int pmsim_init(struct pmsim *s, size_t size)
{
	size_t nwords = size / 8, i;

	memset(s, 0, sizeof(*s));
	if (size % PMSIM_LINE)
		return -EINVAL;
	s->size = size;
	s->mem = calloc(1, size);
	s->pers = calloc(1, size);
	s->pend = calloc(nwords, sizeof(*s->pend));
	s->pend_of = malloc(nwords * sizeof(*s->pend_of));
	if (!s->mem || !s->pers || !s->pend || !s->pend_of) {
		pmsim_exit(s);
		return -ENOMEM;
	}
	for (i = 0; i < nwords; i++)
		s->pend_of[i] = -1;
	return 0;
}

void pmsim_exit(struct pmsim *s)
{
	if (cur == s)
		cur = NULL;
	free(s->mem);
	free(s->pers);
	free(s->pend);
	free(s->pend_of);
	memset(s, 0, sizeof(*s));
}

static u64 word_at(const u8 *p, u32 w)
{
	u64 v;

	memcpy(&v, p + (size_t)w * 8, 8);
	return v;
}

static void set_word(u8 *p, u32 w, u64 v)
{
	memcpy(p + (size_t)w * 8, &v, 8);
}

/* Bytes [off, off + len) of mem were just written: note their words. */
static void note_store(struct pmsim *s, size_t off, size_t len)
{
	u32 w, first = off / 8, last = (off + len - 1) / 8;

	for (w = first; w <= last; w++) {
		u64 v = word_at(s->mem, w);
		struct pmsim_word *pw;

		if (s->pend_of[w] < 0) {
			s->pend_of[w] = s->nr_pend;
			pw = &s->pend[s->nr_pend++];
			pw->w = w;
			pw->nvals = 1;
			pw->vals[0] = v;
			continue;
		}
		pw = &s->pend[s->pend_of[w]];
		if (pw->vals[pw->nvals - 1] == v)
			continue;
		s->rewrites++;
		if (pw->nvals == PMSIM_MAX_VALS) {
			/* Keep the first and the latest values. */
			memmove(&pw->vals[1], &pw->vals[2],
				(PMSIM_MAX_VALS - 2) * sizeof(u64));
			pw->nvals--;
			s->lost_values++;
		}
		pw->vals[pw->nvals++] = v;
	}
}

static size_t offset_of(struct pmsim *s, const void *p, size_t len)
{
	const u8 *b = p;

	if (b < s->mem || b + len > s->mem + s->size || b + len < b) {
		fprintf(stderr, "pmem_sim: store outside the device (%p, %zu)\n",
			p, len);
		abort();
	}
	return b - s->mem;
}

static void sim_copy(void *dst, const void *src, size_t len)
{
	struct pmsim *s = cur;
	size_t off;

	if (!len)
		return;
	off = offset_of(s, dst, len);
	memmove(dst, src, len);
	s->stores++;
	note_store(s, off, len);
	if (s->after_store)
		s->after_store(s->ctx, off, len);
}

static void sim_zero(void *dst, size_t len)
{
	struct pmsim *s = cur;
	size_t off;

	if (!len)
		return;
	off = offset_of(s, dst, len);
	memset(dst, 0, len);
	s->stores++;
	note_store(s, off, len);
	if (s->after_store)
		s->after_store(s->ctx, off, len);
}

static void sim_store64(__le64 *dst, __le64 val)
{
	struct pmsim *s = cur;
	size_t off = offset_of(s, dst, 8);

	if (off & 7) {
		fprintf(stderr, "pmem_sim: unaligned 8-byte store at %zu\n", off);
		abort();
	}
	memcpy(dst, &val, 8);
	s->stores++;
	note_store(s, off, 8);
	if (s->after_store)
		s->after_store(s->ctx, off, 8);
}

void pmsim_settle(struct pmsim *s)
{
	u32 i;

	for (i = 0; i < s->nr_pend; i++) {
		struct pmsim_word *pw = &s->pend[i];

		set_word(s->pers, pw->w, pw->vals[pw->nvals - 1]);
		s->pend_of[pw->w] = -1;
	}
	s->nr_pend = 0;
}

static void sim_fence(void)
{
	struct pmsim *s = cur;

	pmsim_settle(s);
	s->fences++;
	if (s->after_fence)
		s->after_fence(s->ctx);
}

static const struct pmc_pmem_hooks sim_hooks = {
	.copy = sim_copy,
	.zero = sim_zero,
	.store64 = sim_store64,
	.fence = sim_fence,
};

void pmsim_install(struct pmsim *s)
{
	cur = s;
	pmc_pmem_set_hooks(&sim_hooks);
}

void pmsim_load(struct pmsim *s, const u8 *img)
{
	u32 i;

	for (i = 0; i < s->nr_pend; i++)
		s->pend_of[s->pend[i].w] = -1;
	s->nr_pend = 0;
	memcpy(s->mem, img, s->size);
	memcpy(s->pers, img, s->size);
}

u32 pmsim_lines(const struct pmsim *s, struct pmsim_line *lines, u32 max)
{
	u32 i, n = 0, k, v;

	for (i = 0; i < s->nr_pend; i++) {
		const struct pmsim_word *pw = &s->pend[i];
		u64 p = word_at(s->pers, pw->w);
		u32 line = pw->w / PMSIM_WORDS_PER_LINE;
		bool changes = false;

		for (v = 0; v < pw->nvals; v++)
			changes |= pw->vals[v] != p;
		if (!changes)
			continue;
		/* Lines are few: a linear search keeps first-write order. */
		for (k = 0; k < n; k++)
			if (lines[k].line == line)
				break;
		if (k == n) {
			if (n == max)
				continue;
			lines[n].line = line;
			lines[n].nwords = 0;
			n++;
		}
		lines[k].word[lines[k].nwords++] = i;
	}
	return n;
}

/* ---- direct mode ---- */

u64 pmsim_direct_stores;

static void direct_copy(void *dst, const void *src, size_t len)
{
	memmove(dst, src, len);
	pmsim_direct_stores++;
}

static void direct_zero(void *dst, size_t len)
{
	memset(dst, 0, len);
	pmsim_direct_stores++;
}

static void direct_store64(__le64 *dst, __le64 val)
{
	*dst = val;
	pmsim_direct_stores++;
}

static void direct_fence(void)
{
}

static const struct pmc_pmem_hooks direct_hooks = {
	.copy = direct_copy,
	.zero = direct_zero,
	.store64 = direct_store64,
	.fence = direct_fence,
};

void pmsim_install_direct(void)
{
	pmc_pmem_set_hooks(&direct_hooks);
}

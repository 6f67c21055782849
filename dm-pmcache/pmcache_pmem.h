/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The only way dm-pmcache touches persistent memory. Every store, flush and
 * fence to the cache device goes through these helpers, so that the
 * persistence rules live in one place and the userspace crash explorer can
 * observe every step (see pmcache_pmem.c, which holds the userspace
 * versions and the kernel's less frequent ones).
 *
 * Model: a store reaches the persistence domain only after it was flushed
 * (pmc_pmem_copy and pmc_pmem_store64 flush for you) and a later
 * pmc_pmem_fence() returned. Until then any subset of the written 8-byte
 * words may have persisted.
 */
#ifndef PMCACHE_PMEM_H
#define PMCACHE_PMEM_H

#include "pmcache_os.h"

/* Fill @len bytes of pmem with zero; persistent after the next fence. */
void pmc_pmem_zero(void *dst, size_t len);
/* Read from pmem; -EIO on a media error instead of a machine check. */
int pmc_pmem_read(void *dst, const void *src, size_t len);
/*
 * The same, for a record read at load: test builds of the module fail the
 * next fail_record_reads of them (tests/vm/media-error), a record that a
 * media error makes unreadable.
 */
int pmc_pmem_read_record(void *dst, const void *src, size_t len);

#ifdef __KERNEL__
/*
 * The three a write does several times each are inline in the kernel: a
 * call and return apiece would cost more than the store or fence itself.
 * Userspace has them in pmcache_pmem.c, where the crash explorer hooks them.
 */
#include <linux/libnvdimm.h>

/* Copy @len bytes to pmem; persistent after the next fence. */
static inline void pmc_pmem_copy(void *dst, const void *src, size_t len)
{
	memcpy_flushcache(dst, src, len);
}

/* One atomic 8-byte store (@dst 8-byte aligned); persistent after the next fence. */
static inline void pmc_pmem_store64(__le64 *dst, __le64 val)
{
	/* An aligned 8-byte memcpy_flushcache is one movnti: atomic. */
	memcpy_flushcache(dst, &val, sizeof(val));
}

/* Order: everything copied or stored before is persistent when this returns. */
static inline void pmc_pmem_fence(void)
{
	pmem_wmb();
}

/*
 * Whether all of @len bytes at @src can be read: -EIO where a load would
 * meet a media error (a machine check, for a reader not using copy_mc).
 * Poison is kept per cache line: one byte of each line is read, not all
 * of them, each load machine-check safe as copy_mc's are.
 */
int pmc_pmem_probe(const void *src, size_t len);

#ifdef PMC_FAULT_INJECTION
bool pmc_fault_take(int *remaining);
#endif
#else
void pmc_pmem_copy(void *dst, const void *src, size_t len);
void pmc_pmem_store64(__le64 *dst, __le64 val);
void pmc_pmem_fence(void);
#endif

#ifndef __KERNEL__
/*
 * Userspace: by default the helpers use this CPU's real non-temporal stores
 * and fences on ordinary memory (for the microbenchmark). The crash explorer
 * installs hooks to observe every step, pmcache-tool one for reads (a media
 * error there is a SIGBUS). A NULL hook keeps the default.
 */
struct pmc_pmem_hooks {
	void (*copy)(void *dst, const void *src, size_t len);
	void (*zero)(void *dst, size_t len);
	void (*store64)(__le64 *dst, __le64 val);
	void (*fence)(void);
	int (*read)(void *dst, const void *src, size_t len);
};

void pmc_pmem_set_hooks(const struct pmc_pmem_hooks *hooks);
/*
 * For pmcache-tool, which reads a device through a mapping: a media error
 * there is a SIGBUS. After this call pmc_pmem_read returns -EIO for it, as
 * the kernel's copy_mc does, and the reader goes on; or, with @retry, what
 * @retry returns for that read: the mapping fails a whole page for one bad
 * sector, and @retry may read the sectors around it another way. Stores
 * into such a page (the mapping is private) are dropped. Installs the
 * hooks (and a SIGBUS handler): not for use with other hooks.
 */
void pmc_pmem_catch_media_errors(int (*retry)(void *dst, const void *src, size_t len));
#endif

#endif /* PMCACHE_PMEM_H */

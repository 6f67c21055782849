/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The small environment the pure logic of dm-pmcache (format, metadata,
 * recovery, index, allocation, policy) is written against. In the kernel it
 * is the kernel itself; in userspace (unit tests, crash explorer, fuzzers,
 * microbenchmarks, tools) the same source files build against the
 * equivalents below.
 */
#ifndef PMCACHE_OS_H
#define PMCACHE_OS_H

#ifdef __KERNEL__

#include <linux/types.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/spinlock.h>
#include <linux/atomic.h>
#include <linux/compiler.h>
#include <linux/bitops.h>
#include <linux/log2.h>
#include <linux/crc32.h>
#include <linux/errno.h>
#include <linux/sort.h>
#include <linux/minmax.h>
#include <linux/sched.h>
#include <asm/byteorder.h>

#ifdef CONFIG_X86_64
#include <asm/cpufeature.h>
#endif
#include <linux/vmalloc.h>

/*
 * A zeroed array of @n elements of @size bytes, freed with kvfree: the
 * per-slot arrays of a cache of 2^27 blocks or more pass INT_MAX bytes,
 * which kvmalloc refuses (with a WARN); vmalloc takes them.
 */
static inline void *pmc_array_zalloc(size_t n, size_t size)
{
	if (size && n > INT_MAX / size)
		return vcalloc(n, size);
	return kvcalloc(n, size, GFP_KERNEL);
}

#else /* userspace */

/* tools/include/pmcache_user.h: the userspace equivalents. */
#include "pmcache_user.h"

#endif /* __KERNEL__ */

/*
 * Loops over every slot (load, recovery, format; up to 2^31 of them) call
 * cond_resched() once per this many: a large cache takes seconds to load,
 * and the ioctl that loads it must not hold its CPU all that time.
 */
#define PMC_RESCHED_EVERY	4096u

#ifdef __x86_64__
/*
 * crc32c, raw (uninverted), by the SSE4.2 crc32 instruction: one per 8
 * bytes. The kernel's pmc_crc32c below uses it when the CPU has SSE4.2; the
 * microbenchmark (tests/unit) times the hot path with it. Inline asm, so
 * the compiler needs no -msse4.2 for it.
 */
static inline u32 pmc_crc32c_insn(u32 crc, const void *p, size_t len)
{
	const u8 *b = p;
	u64 q;
	u32 l;

	for (; len >= 8; len -= 8, b += 8) {
		memcpy(&q, b, 8);
		asm("crc32q %1, %q0" : "+r" (crc) : "rm" (q));
	}
	if (len >= 4) {
		memcpy(&l, b, 4);
		asm("crc32l %1, %0" : "+r" (crc) : "rm" (l));
		len -= 4;
		b += 4;
	}
	for (; len; len--, b++)
		asm("crc32b %1, %0" : "+r" (crc) : "rm" (*b));
	return crc;
}
#endif

#ifdef __KERNEL__
/*
 * crc32c, raw (uninverted). The records' 12-byte crcs are on the write path.
 * crc32c() (libcrc32c) goes through the crypto API on every call, and
 * __crc32c_le, the library function behind it, is table-driven on x86 in
 * these kernels (6.1, 6.12): under TCG it cost about 350 ns per write. x86
 * CPUs with SSE4.2 (all that have pmem) compute the same values with one
 * instruction per 8 bytes.
 */
static inline u32 pmc_crc32c(u32 crc, const void *p, size_t len)
{
#ifdef CONFIG_X86_64
	if (static_cpu_has(X86_FEATURE_XMM4_2))
		return pmc_crc32c_insn(crc, p, len);
#endif
	return __crc32c_le(crc, p, len);
}
#endif /* __KERNEL__ */

#endif /* PMCACHE_OS_H */

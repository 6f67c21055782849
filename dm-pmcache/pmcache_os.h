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
#include <asm/byteorder.h>

/*
 * crc32c() (libcrc32c) goes through the crypto API on every call; the
 * records' 12-byte crcs are on the write path, so call the library's
 * crc32c directly: the same function, the same values (raw, uninverted).
 */
#define pmc_crc32c(seed, p, len)	__crc32c_le(seed, (const unsigned char *)(p), len)

#else /* userspace */

/* tools/include/pmcache_user.h: the userspace equivalents. */
#include "pmcache_user.h"

#endif /* __KERNEL__ */

#endif /* PMCACHE_OS_H */

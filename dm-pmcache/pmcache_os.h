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
#include <linux/crc32c.h>
#include <linux/errno.h>
#include <linux/sort.h>
#include <linux/minmax.h>
#include <asm/byteorder.h>

#define pmc_crc32c(seed, p, len)	crc32c(seed, p, len)

#else /* userspace */

/* tools/include/pmcache_user.h: the userspace equivalents. */
#include "pmcache_user.h"

#endif /* __KERNEL__ */

#endif /* PMCACHE_OS_H */

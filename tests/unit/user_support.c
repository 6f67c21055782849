// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace definitions of the few kernel library functions pmcache_os.h
 * declares. Linked into every unit-test program.
 */
#include "pmcache_os.h"

void sort(void *base, size_t num, size_t size,
	  int (*cmp)(const void *, const void *), void *swap_unused)
{
	(void)swap_unused;
	if (num > 1)
		qsort(base, num, size, cmp);
}

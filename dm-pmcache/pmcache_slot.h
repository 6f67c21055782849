/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The life of a cached copy, in the index and in pmem together: a new copy
 * becomes current (retiring the one it replaces, or leaving it behind as a
 * tombstone while its writeback runs), and a copy whose writeback ended
 * turns clean or is freed. Pure logic, called under the stripe lock of the
 * block. The target and the userspace crash-state explorer (tests/unit)
 * both drive these functions, so the explorer checks the code that runs.
 */
#ifndef PMCACHE_SLOT_H
#define PMCACHE_SLOT_H

#include "pmcache_index.h"
#include "pmcache_meta.h"

/*
 * Make @slot (its data already in pmem) the current copy of @oblock, dirty
 * or clean, durably. *@old_p: the copy it replaces (PMC_NO_SLOT: none); left
 * naming the copy the policy must forget, or PMC_NO_SLOT. Returns the slot
 * that can be freed now (the replaced copy), PMC_NO_SLOT if none. The
 * changes of the used and dirty block counts are added to *@d_used and
 * *@d_dirty.
 */
u32 pmc_slot_install(struct pmc_index *idx, struct pmc_meta *meta, u32 slot,
		     u64 oblock, u32 *old_p, bool dirty, s64 *d_used, s64 *d_dirty);

enum pmc_wb_outcome {
	PMC_WB_KEPT,		/* writeback failed: still dirty, taken again later */
	PMC_WB_CLEANED,		/* clean, durably */
	PMC_WB_FREE,		/* a tombstone: out of the index, the caller frees it */
};

/*
 * The writeback of @slot (a copy of @oblock) has ended, @ok when its data
 * and an origin flush are done.
 */
enum pmc_wb_outcome pmc_slot_wb_done(struct pmc_index *idx, struct pmc_meta *meta,
				     u32 slot, u64 oblock, bool ok);

#endif /* PMCACHE_SLOT_H */

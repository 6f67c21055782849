// SPDX-License-Identifier: GPL-2.0
/*
 * Free-slot allocator: per-region stacks.
 */
#include "pmcache_alloc.h"

int pmc_alloc_init(struct pmc_alloc *a, struct pmc_index *idx, u32 nr_regions,
		   u32 nr_cpus)
{
	u32 i;

	memset(a, 0, sizeof(*a));
	if (!nr_regions)
		nr_regions = 1;
	if (nr_regions > idx->nr_slots)
		nr_regions = idx->nr_slots;
	a->nr_regions = nr_regions;
	a->slots_per_region = DIV_ROUND_UP(idx->nr_slots, nr_regions);
	a->slots = idx->slots;
	if (!nr_cpus)
		nr_cpus = 1;
	a->nr_cpus = nr_cpus;
	a->region_stride = max_t(u32, 1, nr_regions / nr_cpus);
	a->regions = kvcalloc(nr_regions, sizeof(*a->regions), GFP_KERNEL);
	a->spares = kvcalloc(nr_cpus, sizeof(*a->spares), GFP_KERNEL);
	if (!a->regions || !a->spares) {
		pmc_alloc_exit(a);
		return -ENOMEM;
	}
	for (i = 0; i < nr_cpus; i++)
		a->spares[i].slot = PMC_NO_SLOT;
	for (i = 0; i < nr_regions; i++) {
		spin_lock_init(&a->regions[i].lock);
		a->regions[i].head = PMC_NO_SLOT;
	}
	atomic64_set(&a->nr_free, 0);
	return 0;
}

void pmc_alloc_exit(struct pmc_alloc *a)
{
	kvfree(a->regions);
	kvfree(a->spares);
	a->regions = NULL;
	a->spares = NULL;
}

static u32 region_pop(struct pmc_alloc *a, struct pmc_region *r)
{
	u32 slot;

	if (!READ_ONCE(r->count))
		return PMC_NO_SLOT;
	spin_lock(&r->lock);
	slot = r->head;
	if (slot != PMC_NO_SLOT) {
		r->head = a->slots[slot].link;
		a->slots[slot].link = PMC_NO_SLOT;
		r->count--;
	}
	spin_unlock(&r->lock);
	return slot;
}

u32 pmc_alloc_get(struct pmc_alloc *a, unsigned int cpu)
{
	u32 i, start, slot;

	if (!pmc_alloc_nr_free(a))
		return PMC_NO_SLOT;
	start = (u32)(((u64)cpu * a->region_stride) % a->nr_regions);
	for (i = 0; i < a->nr_regions; i++) {
		u32 r = start + i;

		if (r >= a->nr_regions)
			r -= a->nr_regions;
		slot = region_pop(a, &a->regions[r]);
		if (slot != PMC_NO_SLOT) {
			atomic64_dec(&a->nr_free);
			return slot;
		}
	}
	return PMC_NO_SLOT;
}

void pmc_alloc_put(struct pmc_alloc *a, u32 slot)
{
	struct pmc_region *r = &a->regions[slot / a->slots_per_region];

	spin_lock(&r->lock);
	a->slots[slot].link = r->head;
	r->head = slot;
	r->count++;
	spin_unlock(&r->lock);
	atomic64_inc(&a->nr_free);
}

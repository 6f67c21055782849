// SPDX-License-Identifier: GPL-2.0
/* Placeholder: registers the target so the test bench can load it. */
#include <linux/module.h>
#include <linux/device-mapper.h>

static int pmcache_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	ti->error = "pmcache: not implemented yet";
	return -EINVAL;
}

static struct target_type pmcache_target = {
	.name = "pmcache",
	.version = {0, 1, 0},
	.module = THIS_MODULE,
	.ctr = pmcache_ctr,
};

static int __init dm_pmcache_init(void)
{
	return dm_register_target(&pmcache_target);
}

static void __exit dm_pmcache_exit(void)
{
	dm_unregister_target(&pmcache_target);
}

module_init(dm_pmcache_init);
module_exit(dm_pmcache_exit);
MODULE_DESCRIPTION("device-mapper write-back cache in persistent memory");
MODULE_LICENSE("GPL");

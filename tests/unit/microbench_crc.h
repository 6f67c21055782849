/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Forced in front of every source of the microbenchmark (-include): the
 * kernel's pmc_crc32c (pmcache_os.h) computes crc32c with the CPU's crc32
 * instruction (pmc_crc32c_insn), the userspace build with a bitwise loop
 * that is only meant for tests. For timing the kernel's hot path natively,
 * use the instruction too. pmcache_os.h is included first (its guard then
 * keeps it out), so the macro below replaces every later use;
 * (pmc_crc32c)(...) still calls the bitwise one, which the microbenchmark
 * checks the instruction against.
 */
#ifndef MICROBENCH_CRC_H
#define MICROBENCH_CRC_H

#include "pmcache_os.h"

#define pmc_crc32c(seed, p, len) pmc_crc32c_insn(seed, p, len)

#endif /* MICROBENCH_CRC_H */

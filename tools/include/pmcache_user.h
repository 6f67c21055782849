/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace half of dm-pmcache/pmcache_os.h: what the pure logic of the
 * module (format, metadata, recovery, index, allocation, policy) needs from
 * the kernel, for the unit tests, the crash explorer, the microbenchmark and
 * the tools. Userspace code, so not held to kernel style.
 */
#ifndef PMCACHE_USER_H
#define PMCACHE_USER_H

#include <limits.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>
#include <endian.h>
#include <pthread.h>
#include <sys/mman.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;
typedef int32_t s32;
typedef int16_t s16;
/* The same types as <linux/types.h>, so either may come first. */
typedef unsigned short __le16;
typedef unsigned int __le32;
typedef unsigned long long __le64;

#define cpu_to_le16(x) htole16(x)
#define cpu_to_le32(x) htole32(x)
#define cpu_to_le64(x) htole64(x)
#define le16_to_cpu(x) le16toh(x)
#define le32_to_cpu(x) le32toh(x)
#define le64_to_cpu(x) le64toh(x)

#define __packed __attribute__((packed))
#define __aligned(x) __attribute__((aligned(x)))
#ifndef __always_inline	/* glibc's <sys/cdefs.h> has one */
#define __always_inline inline __attribute__((always_inline))
#endif
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#if defined(__SANITIZE_THREAD__)
/*
 * Marked accesses are intended races (as KCSAN treats them): make them
 * relaxed atomics so ThreadSanitizer reports only unmarked ones. Scalars only.
 */
#define READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#else
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#endif
/* Release and acquire: C11's, for pmc_index_insert and pmc_index_holds. */
#define smp_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
/* Paired with smp_store_release. */
#define smp_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
/* An intended race (a guess checked later); the marked access inside it. */
#define data_race(expr) (expr)
#define BUILD_BUG_ON(c) _Static_assert(!(c), #c)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ALIGN(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a) - 1)) == 0)
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))
#define min_t(t, a, b) ((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b) ((t)(a) > (t)(b) ? (t)(a) : (t)(b))
#define U32_MAX UINT32_MAX
#define U64_MAX UINT64_MAX
#define GFP_KERNEL 0

/* Long loops let the kernel schedule; userspace has nothing to do. */
static inline void cond_resched(void) {}

static inline bool is_power_of_2(unsigned long n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

static inline int ilog2_u64(u64 n)
{
	return 63 - __builtin_clzll(n);
}
#define ilog2(n) ilog2_u64(n)

static inline unsigned long roundup_pow_of_two(unsigned long n)
{
	return n <= 1 ? 1 : 1UL << (64 - __builtin_clzl(n - 1));
}

/*
 * Cache-line aligned: the arrays of __aligned(64) structs need it. Large
 * ones on huge pages, as the kernel's kvmalloc gives them (from the direct
 * map, or vmalloc with VM_ALLOW_HUGE_VMAP): asked for before the memset
 * faults them in, so that the microbenchmark's index misses cost what they
 * cost in the kernel.
 */
static inline void *kvcalloc(size_t n, size_t size, int gfp)
{
	size_t len;
	void *p;

	(void)gfp;
	/* As the kernel's kvmalloc, which refuses more than INT_MAX bytes. */
	if (size && n > INT_MAX / size)
		return NULL;
	len = ALIGN(max_t(size_t, n * size, 1), (size_t)64);
	p = aligned_alloc(len >= (2u << 20) ? (2u << 20) : 64, len);
	if (!p)
		return NULL;
	if (len >= (2u << 20))
		madvise(p, len, MADV_HUGEPAGE);
	memset(p, 0, len);
	return p;
}

static inline void *kvmalloc_array(size_t n, size_t size, int gfp)
{
	return kvcalloc(n, size, gfp);
}

/* pmcache_os.h's, for arrays beyond kvmalloc's INT_MAX bytes. */
static inline void *pmc_array_zalloc(size_t n, size_t size)
{
	if (size && n > INT_MAX / size)
		return n > SIZE_MAX / size ? NULL : calloc(n, size);
	return kvcalloc(n, size, 0);
}

static inline void *kzalloc(size_t size, int gfp)
{
	(void)gfp;
	return calloc(1, size);
}

static inline void kvfree(const void *p)
{
	free((void *)p);
}

static inline void kfree(const void *p)
{
	free((void *)p);
}

/* A spinlock for the userspace build: the tests are threaded too. */
typedef struct { pthread_spinlock_t l; } spinlock_t;
static inline void spin_lock_init(spinlock_t *s)
{
	pthread_spin_init(&s->l, PTHREAD_PROCESS_PRIVATE);
}
static inline void spin_lock(spinlock_t *s) { pthread_spin_lock(&s->l); }
static inline void spin_unlock(spinlock_t *s) { pthread_spin_unlock(&s->l); }
static inline void spin_lock_irq(spinlock_t *s) { pthread_spin_lock(&s->l); }
static inline void spin_unlock_irq(spinlock_t *s) { pthread_spin_unlock(&s->l); }
#define spin_lock_irqsave(s, f) do { (f) = 0; pthread_spin_lock(&(s)->l); } while (0)
#define spin_unlock_irqrestore(s, f) do { (void)(f); pthread_spin_unlock(&(s)->l); } while (0)

#define xchg(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define cmpxchg(p, o, n) ({ __typeof__(*(p)) __old = (o); \
	__atomic_compare_exchange_n((p), &__old, (n), false, __ATOMIC_SEQ_CST, \
				    __ATOMIC_SEQ_CST); __old; })

typedef struct { int counter; } atomic_t;
static inline int atomic_read(const atomic_t *a) { return __atomic_load_n(&a->counter, __ATOMIC_RELAXED); }
static inline void atomic_set(atomic_t *a, int v) { __atomic_store_n(&a->counter, v, __ATOMIC_RELAXED); }
static inline void atomic_inc(atomic_t *a) { __atomic_add_fetch(&a->counter, 1, __ATOMIC_SEQ_CST); }
static inline void atomic_dec(atomic_t *a) { __atomic_sub_fetch(&a->counter, 1, __ATOMIC_SEQ_CST); }
static inline void atomic_add(int i, atomic_t *a) { __atomic_add_fetch(&a->counter, i, __ATOMIC_SEQ_CST); }
static inline int atomic_inc_return(atomic_t *a) { return __atomic_add_fetch(&a->counter, 1, __ATOMIC_SEQ_CST); }
static inline int atomic_dec_return(atomic_t *a) { return __atomic_sub_fetch(&a->counter, 1, __ATOMIC_SEQ_CST); }

typedef struct { s64 counter; } atomic64_t;
static inline s64 atomic64_read(const atomic64_t *a) { return __atomic_load_n(&a->counter, __ATOMIC_RELAXED); }
static inline void atomic64_set(atomic64_t *a, s64 v) { __atomic_store_n(&a->counter, v, __ATOMIC_RELAXED); }
static inline void atomic64_inc(atomic64_t *a) { __atomic_add_fetch(&a->counter, 1, __ATOMIC_RELAXED); }
static inline void atomic64_dec(atomic64_t *a) { __atomic_sub_fetch(&a->counter, 1, __ATOMIC_RELAXED); }
static inline void atomic64_add(s64 v, atomic64_t *a) { __atomic_add_fetch(&a->counter, v, __ATOMIC_RELAXED); }
static inline void atomic64_sub(s64 v, atomic64_t *a) { __atomic_sub_fetch(&a->counter, v, __ATOMIC_RELAXED); }

static inline bool test_and_set_bit(unsigned long nr, unsigned long *addr)
{
	unsigned long bit = 1UL << (nr % 64);

	return __atomic_fetch_or(&addr[nr / 64], bit, __ATOMIC_SEQ_CST) & bit;
}

static inline bool test_and_clear_bit(unsigned long nr, unsigned long *addr)
{
	unsigned long bit = 1UL << (nr % 64);

	return __atomic_fetch_and(&addr[nr / 64], ~bit, __ATOMIC_SEQ_CST) & bit;
}

static inline unsigned int raw_smp_processor_id(void)
{
	return 0;
}

/* crc32c (Castagnoli), bitwise table-free: userspace speed is not the point. */
static inline u32 pmc_crc32c(u32 crc, const void *p, size_t len)
{
	const u8 *b = p;
	int k;

	while (len--) {
		crc ^= *b++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1)));
	}
	return crc;
}

void sort(void *base, size_t num, size_t size,
	  int (*cmp)(const void *, const void *), void *swap_unused);

#define pr_err(...) fprintf(stderr, __VA_ARGS__)
#define pr_warn(...) fprintf(stderr, __VA_ARGS__)
#define pr_info(...) do { } while (0)
#define pr_debug(...) do { } while (0)


#endif /* PMCACHE_USER_H */

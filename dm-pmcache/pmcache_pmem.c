// SPDX-License-Identifier: GPL-2.0
/*
 * Persistence helpers: with pmcache_pmem.h (where the kernel's copy, store
 * and fence are inline), the only code that stores to, flushes and fences
 * persistent memory. See pmcache_pmem.h for the model.
 */
#include "pmcache_pmem.h"

#ifdef __KERNEL__

#include <linux/uaccess.h>

/* pmc_pmem_copy, pmc_pmem_store64 and pmc_pmem_fence: inline, in the header. */

void pmc_pmem_zero(void *dst, size_t len)
{
	static const u8 zeroes[256] __aligned(64);

	while (len) {
		size_t n = min_t(size_t, len, sizeof(zeroes));

		memcpy_flushcache(dst, zeroes, n);
		dst += n;
		len -= n;
	}
}

#ifdef PMC_FAULT_INJECTION
#include <linux/moduleparam.h>

/*
 * Test builds only (kbuild PMC_FAULT_INJECTION=y; tests/vm/media-error.host):
 * the next fail_reads reads of pmem fail as a media error does. QEMU's
 * emulated NVDIMMs have no way to raise a machine check on a load.
 */
static int fail_reads;
module_param(fail_reads, int, 0600);
MODULE_PARM_DESC(fail_reads, "test build: fail this many of the next pmem reads (media error)");

/* Test builds: take one of the @remaining failures to inject, if any is left. */
bool pmc_fault_take(int *remaining)
{
	int n = READ_ONCE(*remaining);

	while (n > 0) {
		int seen = cmpxchg(remaining, n, n - 1);

		if (seen == n)
			return true;
		n = seen;
	}
	return false;
}

static bool pmc_fail_this_read(void)
{
	return pmc_fault_take(&fail_reads);
}

static int fail_record_reads;
module_param(fail_record_reads, int, 0600);
MODULE_PARM_DESC(fail_record_reads, "test build: fail this many of the next record reads at load");

static bool pmc_fail_this_record_read(void)
{
	return pmc_fault_take(&fail_record_reads);
}
#else
static inline bool pmc_fail_this_read(void)
{
	return false;
}

static inline bool pmc_fail_this_record_read(void)
{
	return false;
}
#endif

int pmc_pmem_read(void *dst, const void *src, size_t len)
{
	/* A merge's empty head or tail reads nothing: no injected error. */
	if (!len)
		return 0;
	if (pmc_fail_this_read())
		return -EIO;
	return copy_mc_to_kernel(dst, src, len) ? -EIO : 0;
}

int pmc_pmem_read_record(void *dst, const void *src, size_t len)
{
	if (pmc_fail_this_record_read())
		return -EIO;
	return pmc_pmem_read(dst, src, len);
}

/*
 * x86 keeps poison per 64-byte line, the smallest line of any CPU that
 * recovers from a machine check in copy_mc; a larger line is read more
 * than once, never skipped.
 */
#define PMC_MEDIA_ERROR_GRANULE	64

#ifdef CONFIG_X86_64
#include <asm/asm.h>
#include <asm/extable_fixup_types.h>

/*
 * A load of each line from @p (aligned) up to @end, in one loop: a call
 * of copy_mc_to_kernel a line costs many times the load (a batch of 1024
 * blocks took 1.5 ms under QEMU's TCG). The load has the exception-table
 * entry copy_mc's own loads have (EX_TYPE_DEFAULT_MCE_SAFE): a machine
 * check on it is one the kernel recovers from, and resumes at the fixup,
 * with the error, as it does for a page fault there.
 */
static int pmc_probe_lines(const u8 *p, const u8 *end)
{
	int err = -EIO;
	u8 tmp;

	asm volatile("1:	movb (%[p]), %[tmp]\n"
		     "	add %[step], %[p]\n"
		     "	cmp %[end], %[p]\n"
		     "	jb 1b\n"
		     "	xor %[err], %[err]\n"
		     "2:\n"
		     _ASM_EXTABLE_TYPE(1b, 2b, EX_TYPE_DEFAULT_MCE_SAFE)
		     : [p] "+r" (p), [err] "+r" (err), [tmp] "=&q" (tmp)
		     : [end] "r" (end), [step] "i" (PMC_MEDIA_ERROR_GRANULE)
		     : "cc", "memory");
	return err;
}
#else
static int pmc_probe_lines(const u8 *p, const u8 *end)
{
	u8 byte;

	for (; p < end; p += PMC_MEDIA_ERROR_GRANULE)
		if (copy_mc_to_kernel(&byte, p, 1))
			return -EIO;
	return 0;
}
#endif

int pmc_pmem_probe(const void *src, size_t len)
{
	if (!len)
		return 0;
	if (pmc_fail_this_read())
		return -EIO;
	/* A load of any byte of a poisoned line consumes the poison. */
	return pmc_probe_lines(PTR_ALIGN_DOWN((const u8 *)src, PMC_MEDIA_ERROR_GRANULE),
			       (const u8 *)src + len);
}

#else /* userspace */

#include <immintrin.h>
#include <setjmp.h>
#include <signal.h>

static const struct pmc_pmem_hooks *pmc_hooks;

void pmc_pmem_set_hooks(const struct pmc_pmem_hooks *hooks)
{
	pmc_hooks = hooks;
}

/* Write back every cache line of [p, p + len). */
static void native_flush_lines(const void *p, size_t len)
{
	uintptr_t line = (uintptr_t)p & ~63UL, end = (uintptr_t)p + len;

	for (; line < end; line += 64)
		_mm_clflush((const void *)line);
}

/*
 * Non-temporal copy, as the kernel's memcpy_flushcache does on x86; the
 * bytes before the first and after the last aligned word are stored
 * through the cache and their lines written back.
 */
static void native_copy(void *dst, const void *src, size_t len)
{
	size_t head = min_t(size_t, len, -(uintptr_t)dst & 7);
	u8 *d = dst;
	const u8 *s = src;

	if (head) {
		memcpy(d, s, head);
		native_flush_lines(d, head);
		d += head;
		s += head;
		len -= head;
	}
	for (; len >= 8; len -= 8, d += 8, s += 8) {
		long long v;

		memcpy(&v, s, 8);
		_mm_stream_si64((long long *)d, v);
	}
	if (len) {
		memcpy(d, s, len);
		native_flush_lines(d, len);
	}
}

void pmc_pmem_copy(void *dst, const void *src, size_t len)
{
	if (pmc_hooks && pmc_hooks->copy)
		pmc_hooks->copy(dst, src, len);
	else
		native_copy(dst, src, len);
}

void pmc_pmem_zero(void *dst, size_t len)
{
	if (pmc_hooks && pmc_hooks->zero) {
		pmc_hooks->zero(dst, len);
		return;
	}
	memset(dst, 0, len);
	native_flush_lines(dst, len);
}

void pmc_pmem_store64(__le64 *dst, __le64 val)
{
	if (pmc_hooks && pmc_hooks->store64)
		pmc_hooks->store64(dst, val);
	else
		_mm_stream_si64((long long *)dst, (long long)val);
}

void pmc_pmem_fence(void)
{
	if (pmc_hooks && pmc_hooks->fence)
		pmc_hooks->fence();
	else
		_mm_sfence();
}

/*
 * Where a SIGBUS returns to: the one thread (pmcache-tool has one).
 * volatile, and fenced against the accesses it guards: else the store
 * arming it is dead to the compiler, which sees nothing read it.
 */
static sigjmp_buf *volatile media_error_jmp;
static int (*media_error_retry)(void *dst, const void *src, size_t len);

static void on_sigbus(int sig)
{
	if (media_error_jmp)
		siglongjmp(*media_error_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void arm_media_error(sigjmp_buf *jb)
{
	media_error_jmp = jb;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static void disarm_media_error(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	media_error_jmp = NULL;
}

static int catching_read(void *dst, const void *src, size_t len)
{
	sigjmp_buf jb;

	if (sigsetjmp(jb, 1)) {
		media_error_jmp = NULL;
		return media_error_retry ? media_error_retry(dst, src, len) : -EIO;
	}
	arm_media_error(&jb);
	memcpy(dst, src, len);
	disarm_media_error();
	return 0;
}

/*
 * The tool's stores go to its private mapping (recovery clears records
 * there): a page the device cannot read cannot be copied for them either.
 * Such a store is dropped; the device is never written through the map.
 */
static void catching_copy(void *dst, const void *src, size_t len)
{
	sigjmp_buf jb;

	if (sigsetjmp(jb, 1)) {
		media_error_jmp = NULL;
		return;
	}
	arm_media_error(&jb);
	memcpy(dst, src, len);
	disarm_media_error();
}

static void catching_zero(void *dst, size_t len)
{
	static const u8 zero[4096];
	size_t n;

	for (; len; dst = (u8 *)dst + n, len -= n) {
		n = min_t(size_t, len, sizeof(zero));
		catching_copy(dst, zero, n);
	}
}

static void catching_store64(__le64 *dst, __le64 val)
{
	catching_copy(dst, &val, sizeof(val));
}

void pmc_pmem_catch_media_errors(int (*retry)(void *dst, const void *src, size_t len))
{
	static const struct pmc_pmem_hooks hooks = {
		.read = catching_read,
		.copy = catching_copy,
		.zero = catching_zero,
		.store64 = catching_store64,
	};
	struct sigaction sa = { .sa_handler = on_sigbus };

	media_error_retry = retry;
	sigaction(SIGBUS, &sa, NULL);
	pmc_pmem_set_hooks(&hooks);
}

int pmc_pmem_read(void *dst, const void *src, size_t len)
{
	if (pmc_hooks && pmc_hooks->read)
		return pmc_hooks->read(dst, src, len);
	memcpy(dst, src, len);
	return 0;
}

int pmc_pmem_read_record(void *dst, const void *src, size_t len)
{
	return pmc_pmem_read(dst, src, len);
}

#endif /* __KERNEL__ */

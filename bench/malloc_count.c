/* malloc_count.so: counts heap allocations made by vnicd's worker threads
 * (threads named "vnic-worker-N"), for the benchmark's allocations-per-packet
 * figure. LD_PRELOAD it into vnicd; at exit it prints
 * "malloc_count: worker allocations N" to stderr. Other threads are not
 * counted (the control thread allocates when it reconciles and writes status). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <stddef.h>

static unsigned long worker_allocs;

static int in_worker(void)
{
	char name[16] = {0};
	prctl(PR_GET_NAME, name, 0, 0, 0);
	return strncmp(name, "vnic-worker-", 12) == 0;
}

static void count(void)
{
	if (in_worker())
		__atomic_add_fetch(&worker_allocs, 1, __ATOMIC_RELAXED);
}

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
int posix_memalign(void **out, size_t align, size_t n)
{
	count();
	*out = __libc_memalign(align, n);
	return *out ? 0 : 12;
}

__attribute__((destructor)) static void report(void)
{
	fprintf(stderr, "malloc_count: worker allocations %lu\n", worker_allocs);
}

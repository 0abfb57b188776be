/* CVnicShim: what Swift cannot import from the C library, and the one shared
 * BPF header. Each helper says why it exists. Kept small on purpose.
 */
#ifndef VNIC_SHIM_H
#define VNIC_SHIM_H

#include <stdint.h>
#include <sys/eventfd.h>   /* eventfd: the workers wake the control thread */
#include <sys/signalfd.h>  /* signalfd: the control thread polls its signals */
#include <poll.h>
#include <sys/socket.h>    /* sendto: the workers' transmit kicks */
#include <sys/vfs.h>      /* statfs: is /sys/fs/bpf a bpffs (pinning) */
#include "../../../bpf/vnic.shared.h"

/* pthread_setaffinity_np and CPU_SET are hidden from Swift (_GNU_SOURCE,
 * macros). Pins the calling thread to one core; 0 or an errno. */
int vnic_pin_current_thread(int core);

/* The cores the calling thread may run on, as a bit mask of the first 64 CPUs
 * (sched_getaffinity + CPU_ISSET are macros), or 0 on failure. */
uint64_t vnic_current_thread_affinity_mask(void);

/* Lets the calling thread run on the cores in `mask` (bit i: core i, the first
 * 64 only); 0 or an errno. */
int vnic_set_current_thread_affinity_mask(uint64_t mask);

/* sched_getcpu is _GNU_SOURCE-only. */
int vnic_current_cpu(void);

/* pthread_setname_np is _GNU_SOURCE-only; names are cut to 15 bytes. */
void vnic_set_current_thread_name(const char *name);

/* An idle worker's wait: its epoll instance, where every socket it serves is
 * registered edge-triggered (new frames wake it; frames it left waiting do
 * not), for at most `ns` nanoseconds, or with no timeout when `ns` < 0
 * (epoll_pwait2; epoll_wait rounded up to a millisecond where the kernel lacks it). The tags of what fired go to
 * `tags` (at most `max`, up to 256); the eventfd tagged `drain` is read.
 * Returns how many, 0 on timeout, -1 on error. */
int vnic_epoll_wait(int epfd, uint64_t *tags, int max, long ns, uint64_t drain, int drain_fd);

/* Registers `fd` with epoll instance `epfd` for input, edge-triggered, with
 * `tag`. 0 or an errno. A closed socket leaves the instance by itself. */
int vnic_epoll_add(int epfd, int fd, uint64_t tag);

/* A new epoll instance (close-on-exec), or -1. */
int vnic_epoll_create(void);

/* The number of rx and tx queues of a device in the calling thread's network
 * namespace (ETHTOOL_GCHANNELS through SIOCETHTOOL; /sys may show another
 * namespace). Combined channels count for both. 0 or an errno. */
int vnic_queue_counts(const char *ifname, uint32_t *rx, uint32_t *tx);

/* Counters written by one worker and read by the control thread: relaxed
 * atomics (Synchronization.Atomic cannot live in raw shared memory). They
 * compile to plain loads and stores on x86-64. */
static inline void vnic_counter_add(uint64_t *c, uint64_t n) {
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
static inline uint64_t vnic_counter_load(const uint64_t *c) {
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Publication of a worker's table (a raw pointer) from the control thread. */
static inline void *vnic_exchange_pointer(void **slot, void *value) {
	return __atomic_exchange_n(slot, value, __ATOMIC_ACQ_REL);
}
static inline void *vnic_load_pointer_relaxed(void *const *slot) {
	return __atomic_load_n(slot, __ATOMIC_RELAXED);
}
static inline void vnic_store_u64_release(uint64_t *p, uint64_t v) {
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline void vnic_store_u32_release(uint32_t *p, uint32_t v) {
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint64_t vnic_load_u64_acquire(const uint64_t *p) {
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* A worker about to sleep and a worker handing it frames (Worker's handoff):
 * each stores, then fences, then loads the other's word (Dekker), so either
 * the sleeper sees the frames or the producer sees the sleeper and wakes it. */
static inline void vnic_fence_seq_cst(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void vnic_store_u64_relaxed(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/* A VNIC's rate limiter state, shared by its workers: compare-and-swap.
 * On failure *expected is updated to the current value. */
static inline _Bool vnic_cas_u64(uint64_t *p, uint64_t *expected, uint64_t desired) {
	return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Entries in an AF_XDP ring as another thread sees it: the kernel's or the
 * owning worker's producer and consumer indexes, loaded atomically. */
static inline uint32_t vnic_ring_level(const uint32_t *producer, const uint32_t *consumer) {
	return __atomic_load_n(producer, __ATOMIC_ACQUIRE) - __atomic_load_n(consumer, __ATOMIC_ACQUIRE);
}

/* rdtsc: cycle counts in benchmarks and the workers' busy ratio. */
static inline uint64_t vnic_rdtsc(void) {
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* The names of the XDP counters and of the workers' drop reasons, by index
 * (bpf/vnic.shared.h's lists); "" past the end. */
const char *vnic_xdp_counter_name(unsigned i);
const char *vnic_drop_name(unsigned i);

/* MSG_DONTWAIT for the workers' transmit kicks, by a name of this module (the
 * macro reaches Swift through whichever module first includes sys/socket.h). */
static const int vnic_msg_dontwait = MSG_DONTWAIT;

#endif

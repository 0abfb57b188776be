#include "vnic_shim.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>

int vnic_epoll_wait(int epfd, uint64_t *tags, int max, long ns, uint64_t drain, int drain_fd)
{
	struct epoll_event ev[256];
	struct timespec ts = { .tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L };
	if (max > 256)
		max = 256;
	/* ns < 0: no timeout. */
	int n = (int)syscall(SYS_epoll_pwait2, epfd, ev, max, ns < 0 ? NULL : &ts, NULL, 0);
	if (n < 0 && errno == ENOSYS)
		n = epoll_wait(epfd, ev, max, ns < 0 ? -1 : (int)((ns + 999999) / 1000000));
	for (int i = 0; i < n; i++) {
		tags[i] = ev[i].data.u64;
		if (ev[i].data.u64 == drain) {
			uint64_t v;
			if (read(drain_fd, &v, sizeof(v)) < 0) { /* EAGAIN: drained already */ }
		}
	}
	return n;
}

int vnic_epoll_create(void)
{
	return epoll_create1(EPOLL_CLOEXEC);
}

int vnic_epoll_add(int epfd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = tag };
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

int vnic_pin_current_thread(int core)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(core, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int vnic_set_current_thread_affinity_mask(uint64_t mask)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int i = 0; i < 64; i++)
		if (mask & (1ULL << i))
			CPU_SET(i, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

uint64_t vnic_current_thread_affinity_mask(void)
{
	cpu_set_t set;
	uint64_t mask = 0;
	if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		return 0;
	for (int i = 0; i < 64; i++)
		if (CPU_ISSET(i, &set))
			mask |= (uint64_t)1 << i;
	return mask;
}

int vnic_current_cpu(void) { return sched_getcpu(); }

void vnic_set_current_thread_name(const char *name)
{
	char buf[16];
	strncpy(buf, name, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = 0;
	pthread_setname_np(pthread_self(), buf);
}

int vnic_queue_counts(const char *ifname, uint32_t *rx, uint32_t *tx)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr;
	int fd, err = 0;

	if (strlen(ifname) >= IFNAMSIZ)
		return ENAMETOOLONG;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	ifr.ifr_data = (void *)&ch;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0) {
		err = errno;
		if (err == EOPNOTSUPP) { /* a driver without channels: one queue */
			*rx = *tx = 1;
			err = 0;
		}
	} else {
		*rx = ch.rx_count + ch.combined_count;
		*tx = ch.tx_count + ch.combined_count;
		if (*rx == 0) *rx = 1;
		if (*tx == 0) *tx = 1;
	}
	close(fd);
	return err;
}

/* The names of bpf/vnic.shared.h's lists, in their order. */
#define VNIC_X_NAME(id, name, what) name,
static const char *const xdp_counter_names[] = { VNIC_XDP_COUNTERS(VNIC_X_NAME) };
static const char *const drop_names[] = { VNIC_DROP_REASONS(VNIC_X_NAME) };
#undef VNIC_X_NAME

const char *vnic_xdp_counter_name(unsigned i) { return i < VNIC_XDP_COUNTER_MAX ? xdp_counter_names[i] : ""; }
const char *vnic_drop_name(unsigned i) { return i < VNIC_DROP_REASON_MAX ? drop_names[i] : ""; }

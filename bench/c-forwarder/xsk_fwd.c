/*
 * xsk_fwd: the benchmark's two C baselines (bench/suite.sh), between the same
 * veths vnicd forwards between (the lab's uplink0 and vm1p in P-host).
 *
 *   xsk_fwd fwd --bpf OBJ --in IF --out IF [--queues Q] [--cores C,..] [--generic]
 *       A plain AF_XDP forwarder (libxdp, copy mode): per queue q one thread,
 *       pinned to the q-th core, with a socket on IN queue q (fed by the XDP
 *       program xdp_xsk: every frame to its queue's socket) and a TX-only
 *       socket on OUT queue q sharing its UMEM. Bursts of 64, no checks, no
 *       lookups: the floor of what userspace forwarding costs.
 *   xsk_fwd redirect --bpf OBJ --in IF --out IF [--pass-netns PATH --pass-dev IF] [--generic]
 *       Kernel XDP redirect: xdp_devmap on IN sends every frame to OUT through a
 *       devmap (no userspace at all: the in-kernel ceiling). A veth only takes
 *       XDP_REDIRECTed frames in native mode when its peer has an XDP program:
 *       xdp_pass is attached to PASS-DEV in the namespace PASS-NETNS.
 *
 * Both attach through bpf_link, so the programs go away with the process (also
 * after kill -9). Runs until SIGINT or SIGTERM, prints "xsk_fwd: ready" on
 * stderr once set up, and its counters as one JSON line on stdout at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#define BURST 64
#define FRAMES 8192
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define RING 2048
#define MAXQ 64

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what, int err)
{
	fprintf(stderr, "xsk_fwd: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

struct queue {
	int q, core;
	const char *in, *out;
	struct xsk_umem *umem;
	struct xsk_ring_prod fill, fill2, tx;
	struct xsk_ring_cons comp, comp2, rx;
	struct xsk_socket *rxs, *txs;
	void *area;
	uint64_t pool[FRAMES];
	uint32_t pool_count;
	uint64_t rx_packets, tx_packets, tx_dropped;
	pthread_t thread;
};

static void setup_queue(struct queue *w, int generic)
{
	size_t size = (size_t)FRAMES * FRAME_SIZE;
	w->area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->area == MAP_FAILED)
		die("mmap", errno);
	struct xsk_umem_config ucfg = { .fill_size = FRAMES / 2, .comp_size = RING, .frame_size = FRAME_SIZE };
	int err = xsk_umem__create(&w->umem, w->area, size, &w->fill, &w->comp, &ucfg);
	if (err)
		die("xsk_umem__create", err);
	struct xsk_socket_config scfg = {
		.rx_size = RING, .tx_size = RING,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE,
		.bind_flags = XDP_COPY,
	};
	/* Re-binding right after an earlier socket closed can fail with EBUSY. */
	for (int t = 0;; t++) {
		err = xsk_socket__create(&w->rxs, w->in, w->q, w->umem, &w->rx, NULL, &scfg);
		if (err != -EBUSY || t == 50)
			break;
		usleep(100000);
	}
	if (err)
		die("xsk_socket__create (in)", err);
	for (int t = 0;; t++) {
		err = xsk_socket__create_shared(&w->txs, w->out, w->q, w->umem, NULL, &w->tx, &w->fill2, &w->comp2, &scfg);
		if (err != -EBUSY || t == 50)
			break;
		usleep(100000);
	}
	if (err)
		die("xsk_socket__create_shared (out)", err);

	uint32_t idx, n = FRAMES / 2;
	if (xsk_ring_prod__reserve(&w->fill, n, &idx) != n)
		die("fill ring", ENOSPC);
	for (uint32_t i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&w->fill, idx + i) = (uint64_t)i * FRAME_SIZE;
	xsk_ring_prod__submit(&w->fill, n);
	for (uint32_t i = n; i < FRAMES; i++)
		w->pool[w->pool_count++] = (uint64_t)i * FRAME_SIZE;
}

static void *run_queue(void *arg)
{
	struct queue *w = arg;
	if (w->core >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(w->core, &set);
		pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	}
	int txfd = xsk_socket__fd(w->txs);
	struct pollfd pfd = { .fd = xsk_socket__fd(w->rxs), .events = POLLIN };
	unsigned idle = 0;
	int kick = 0;
	while (!stop) {
		uint32_t idx, tidx, n, i;
		/* Copy mode sends a bounded batch (32) per kick: kick while the kernel
		 * has not taken everything submitted. */
		for (int t = 0; kick && t < BURST / 32 + 1; t++) {
			sendto(txfd, NULL, 0, MSG_DONTWAIT, NULL, 0);
			kick = *w->tx.producer != __atomic_load_n(w->tx.consumer, __ATOMIC_ACQUIRE);
		}
		/* Frames the OUT socket has sent come back to the pool... */
		n = xsk_ring_cons__peek(&w->comp2, RING, &idx);
		for (i = 0; i < n; i++)
			w->pool[w->pool_count++] = *xsk_ring_cons__comp_addr(&w->comp2, idx + i);
		if (n)
			xsk_ring_cons__release(&w->comp2, n);
		/* ...and from there to the IN socket's fill ring. */
		n = xsk_prod_nb_free(&w->fill, w->pool_count);
		if (n > w->pool_count)
			n = w->pool_count;
		if (n >= BURST && xsk_ring_prod__reserve(&w->fill, n, &idx) == n) {
			for (i = 0; i < n; i++)
				*xsk_ring_prod__fill_addr(&w->fill, idx + i) = w->pool[--w->pool_count];
			xsk_ring_prod__submit(&w->fill, n);
		}

		n = xsk_ring_cons__peek(&w->rx, BURST, &idx);
		if (!n) {
			if (kick)
				continue;
			/* Idle: wait in poll after a while, as vnicd's workers do. */
			if (++idle > 20000) {
				poll(&pfd, 1, 10);
				idle = 0;
			}
			continue;
		}
		idle = 0;
		w->rx_packets += n;
		if (xsk_ring_prod__reserve(&w->tx, n, &tidx) == n) {
			for (i = 0; i < n; i++) {
				const struct xdp_desc *d = xsk_ring_cons__rx_desc(&w->rx, idx + i);
				struct xdp_desc *t = xsk_ring_prod__tx_desc(&w->tx, tidx + i);
				t->addr = d->addr;
				t->len = d->len;
				t->options = 0;
			}
			xsk_ring_prod__submit(&w->tx, n);
			w->tx_packets += n;
		} else {
			for (i = 0; i < n; i++)
				w->pool[w->pool_count++] = xsk_ring_cons__rx_desc(&w->rx, idx + i)->addr;
			w->tx_dropped += n;
		}
		xsk_ring_cons__release(&w->rx, n);
		kick = 1;
	}
	return NULL;
}

static int attach(struct bpf_object *obj, const char *prog, const char *ifname, int generic)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, prog);
	if (!p)
		die(prog, ENOENT);
	int ifindex = if_nametoindex(ifname);
	if (!ifindex)
		die(ifname, errno);
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
	int fd = bpf_link_create(bpf_program__fd(p), ifindex, BPF_XDP, &opts);
	if (fd < 0)
		die("attach XDP (bpf_link)", errno);
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: xsk_fwd fwd|redirect --bpf OBJ --in IF --out IF [--queues Q] [--cores C,..]\n"
			"               [--pass-netns PATH --pass-dev IF] [--generic]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1], *obj_path = NULL, *in = NULL, *out = NULL, *cores = NULL;
	const char *pass_netns = NULL, *pass_dev = NULL;
	int queues = 1, generic = 0;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--generic")) { generic = 1; continue; }
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(a, "--bpf")) obj_path = v;
		else if (!strcmp(a, "--in")) in = v;
		else if (!strcmp(a, "--out")) out = v;
		else if (!strcmp(a, "--queues")) queues = atoi(v);
		else if (!strcmp(a, "--cores")) cores = v;
		else if (!strcmp(a, "--pass-netns")) pass_netns = v;
		else if (!strcmp(a, "--pass-dev")) pass_dev = v;
		else usage();
	}
	if (!obj_path || !in || !out || queues < 1 || queues > MAXQ)
		usage();
	int fwd = !strcmp(mode, "fwd");
	if (!fwd && strcmp(mode, "redirect"))
		usage();

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
	if (!obj)
		die(obj_path, errno);
	int err = bpf_object__load(obj);
	if (err)
		die("load BPF object", err);

	if (!fwd) {
		int devs = bpf_object__find_map_fd_by_name(obj, "devs");
		uint32_t key = 0, ifindex = if_nametoindex(out);
		if (!ifindex)
			die(out, errno);
		if (bpf_map_update_elem(devs, &key, &ifindex, 0))
			die("devmap update", errno);
		if (pass_netns && pass_dev) {
			int self = open("/proc/self/ns/net", O_RDONLY), other = open(pass_netns, O_RDONLY);
			if (self < 0 || other < 0)
				die(pass_netns, errno);
			if (setns(other, CLONE_NEWNET))
				die("setns", errno);
			attach(obj, "xdp_pass", pass_dev, generic);
			if (setns(self, CLONE_NEWNET))
				die("setns back", errno);
		}
		attach(obj, "xdp_devmap", in, generic);
		fprintf(stderr, "xsk_fwd: ready\n");
		while (!stop)
			pause();
		printf("{\"mode\":\"redirect\"}\n");
		return 0;
	}

	static struct queue qs[MAXQ];
	const char *c = cores;
	for (int q = 0; q < queues; q++) {
		qs[q].q = q;
		qs[q].in = in;
		qs[q].out = out;
		qs[q].core = -1;
		if (c && *c) {
			qs[q].core = atoi(c);
			c = strchr(c, ',');
			c = c ? c + 1 : NULL;
		}
		setup_queue(&qs[q], generic);
	}
	int xsks = bpf_object__find_map_fd_by_name(obj, "xsks");
	for (int q = 0; q < queues; q++) {
		uint32_t key = q;
		int fd = xsk_socket__fd(qs[q].rxs);
		if (bpf_map_update_elem(xsks, &key, &fd, 0))
			die("xskmap update", errno);
	}
	attach(obj, "xdp_xsk", in, generic);
	for (int q = 0; q < queues; q++)
		pthread_create(&qs[q].thread, NULL, run_queue, &qs[q]);
	fprintf(stderr, "xsk_fwd: ready\n");
	uint64_t rx = 0, tx = 0, drop = 0;
	for (int q = 0; q < queues; q++) {
		pthread_join(qs[q].thread, NULL);
		rx += qs[q].rx_packets;
		tx += qs[q].tx_packets;
		drop += qs[q].tx_dropped;
	}
	printf("{\"mode\":\"fwd\",\"queues\":%d,\"rx_packets\":%llu,\"tx_packets\":%llu,\"tx_dropped\":%llu}\n", queues,
	       (unsigned long long)rx, (unsigned long long)tx, (unsigned long long)drop);
	return 0;
}

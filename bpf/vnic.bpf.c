// SPDX-License-Identifier: GPL-2.0
/* vnic.bpf.c: the XDP side of the dataplane.
 *
 * vnic_uplink runs on the uplink NIC. It looks the destination MAC up in
 * vnic_macs and redirects the frame into the AF_XDP socket of that VNIC on the
 * queue it arrived on (uplink_xsks[vnic * queue_count + queue]). Broadcast and
 * multicast go to the uplink socket of the queue (slot = queue), whose worker
 * copies them to every VNIC. Unknown unicast is dropped and counted.
 *
 * vnic_port runs on every VM port and redirects everything the VM sends into
 * the port's socket for that queue (port_xsks, same slot scheme), so that every
 * frame a VM sends passes the workers' checks. Nothing falls through to the host
 * stack: frames without a socket are dropped and counted.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "vnic.shared.h"

/* Written by vnicd before load; the only .rodata variable. */
const volatile struct vnic_settings settings = { .queue_count = 1 };

/* Destination MAC -> VNIC index, for the uplink. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VNIC_MAX_VNICS);
	__type(key, struct vnic_mac_key);
	__type(value, struct vnic_mac_entry);
} vnic_macs SEC(".maps");

/* Uplink sockets: per (VNIC, queue), plus the uplink socket per queue at VNIC 0.
 * max_entries is set by vnicd before load (VNIC count bound * queue_count). */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} uplink_xsks SEC(".maps");

/* Port ifindex -> VNIC index, for the port program. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VNIC_MAX_VNICS);
	__type(key, __u32);
	__type(value, __u32);
} port_vnics SEC(".maps");

/* Port sockets per (VNIC, queue); max_entries set by vnicd like uplink_xsks. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} port_xsks SEC(".maps");

/* Per-CPU event counters, indexed by enum vnic_xdp_counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VNIC_XDP_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vnic_counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&vnic_counters, &which);
	if (c)
		*c += 1;
}

SEC("xdp")
int vnic_uplink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 queue = ctx->rx_queue_index;
	__u32 nq = settings.queue_count;

	if ((void *)(eth + 1) > end) {
		count(VNIC_XDP_MALFORMED);
		return XDP_DROP;
	}
	if (queue >= nq) {
		count(VNIC_XDP_BAD_QUEUE);
		return XDP_DROP;
	}
	if (eth->h_dest[0] & 1) {
		/* Broadcast or multicast: the uplink socket of this queue floods it. */
		if (bpf_redirect_map(&uplink_xsks, queue, XDP_DROP) == XDP_REDIRECT) {
			count(VNIC_XDP_FLOODED);
			return XDP_REDIRECT;
		}
		count(VNIC_XDP_NO_SOCKET);
		return XDP_DROP;
	}

	struct vnic_mac_key key = {};
	__builtin_memcpy(key.addr, eth->h_dest, ETH_ALEN);
	struct vnic_mac_entry *e = bpf_map_lookup_elem(&vnic_macs, &key);
	if (!e) {
		count(VNIC_XDP_UNKNOWN_DST);
		return XDP_DROP;
	}
	__u32 slot = e->vnic_index * nq + queue;
	if (bpf_redirect_map(&uplink_xsks, slot, XDP_DROP) == XDP_REDIRECT) {
		count(VNIC_XDP_REDIRECTED);
		return XDP_REDIRECT;
	}
	count(VNIC_XDP_NO_SOCKET);
	return XDP_DROP;
}

SEC("xdp")
int vnic_port(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 queue = ctx->rx_queue_index;
	__u32 nq = settings.queue_count;

	__u32 *vnic = bpf_map_lookup_elem(&port_vnics, &ifindex);
	if (!vnic) {
		count(VNIC_XDP_PORT_UNKNOWN);
		return XDP_DROP;
	}
	if (queue >= nq) {
		count(VNIC_XDP_BAD_QUEUE);
		return XDP_DROP;
	}
	if (bpf_redirect_map(&port_xsks, *vnic * nq + queue, XDP_DROP) == XDP_REDIRECT) {
		count(VNIC_XDP_PORT_REDIRECTED);
		return XDP_REDIRECT;
	}
	count(VNIC_XDP_NO_SOCKET);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

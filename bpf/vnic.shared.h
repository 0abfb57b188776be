/* vnic.shared.h: every map key, map value, counter index and constant shared by
 * the XDP programs (bpf/vnic.bpf.c) and the Swift dataplane, which imports this
 * header through the CVnicShim module instead of redeclaring anything.
 * Fixed-width types, explicit padding; a Swift test checks the sizes.
 *
 * XSKMAP slots: slot(vnic, queue) = vnic * queue_count + queue. VNIC index 0 is
 * reserved for the uplink's own socket on each queue: it receives broadcast and
 * multicast (flooded to every VNIC by the worker) and transmits to the wire.
 */
#ifndef VNIC_SHARED_H
#define VNIC_SHARED_H

#include <linux/types.h>

#define VNIC_MAX_VNICS      65536u  /* VNIC indexes are 1 ... VNIC_MAX_VNICS-1 */
#define VNIC_MAX_QUEUES     64u     /* uplink queues (= workers) */
#define VNIC_UPLINK_INDEX   0u      /* the reserved index of the uplink socket */

/* Key of vnic_macs: a destination MAC in wire order. */
struct vnic_mac_key {
	__u8  addr[6];
	__u16 pad;              /* always 0 */
};

/* Value of vnic_macs. */
struct vnic_mac_entry {
	__u32 vnic_index;       /* 1 ... VNIC_MAX_VNICS-1 */
	__u32 flags;            /* reserved, 0 */
};

/* Load-time settings, the only variable in .rodata (written before load). */
struct vnic_settings {
	__u32 queue_count;      /* XSKMAP stride: the number of uplink queues */
	__u32 pad;
};

/* Names are kept once, here, as X-macro lists: X(IDENTIFIER, "name", "what it
 * counts"). The enums below are made from them, and so are the names vnicd
 * reports (vnic_shim.c: vnic_xdp_counter_name, vnic_drop_name). */

/* Per-CPU counters of the XDP programs (index into vnic_counters). */
#define VNIC_XDP_COUNTERS(X) \
	X(REDIRECTED, "redirected", "uplink unicast redirected to a VNIC socket") \
	X(FLOODED, "flooded", "uplink broadcast/multicast to the uplink socket") \
	X(UNKNOWN_DST, "unknown-dst", "uplink unicast to a MAC no VNIC owns: dropped") \
	X(NO_SOCKET, "no-socket", "known destination but no socket bound yet: dropped") \
	X(MALFORMED, "malformed", "shorter than an Ethernet header: dropped") \
	X(BAD_QUEUE, "bad-queue", "rx queue >= queue_count: dropped") \
	X(PORT_REDIRECTED, "port-redirected", "VM port frame redirected to the port socket") \
	X(PORT_UNKNOWN, "port-unknown", "frame on a port no VNIC owns: dropped")

enum vnic_xdp_counter {
#define VNIC_X(id, name, what) VNIC_XDP_##id,
	VNIC_XDP_COUNTERS(VNIC_X)
#undef VNIC_X
	VNIC_XDP_COUNTER_MAX
};

/* Per VNIC and worker counters kept by the Swift workers (not a BPF map);
 * declared here so the layout has one definition. rx = towards the VM.
 * The drop reasons up to SPOOF_SERVICE are AntiSpoof's verdicts, in the same
 * order. */
#define VNIC_DROP_REASONS(X) \
	X(SPOOF_MAC, "spoof-mac", "source MAC not the VNIC's (mac-nospoof)") \
	X(MALFORMED, "malformed", "truncated headers, bad IHL, lengths that lie") \
	X(SPOOF_IP, "spoof-ip", "IPv4 source not the VNIC's (ip-nospoof)") \
	X(SPOOF_ARP, "spoof-arp", "ARP sender MAC or IP not the VNIC's, ARP reply from 0.0.0.0 (ip-nospoof)") \
	X(SPOOF_IPV6, "spoof-ipv6", "IPv6 source not the VNIC's (ip-nospoof)") \
	X(SPOOF_DHCP, "spoof-dhcp", "DHCP server or relay message, or a foreign client (dhcp-nospoof)") \
	X(RESTRICTED, "restricted", "not IPv4, IPv6 or ARP (restricted)") \
	X(SPOOF_ND, "spoof-nd", "ND: target or link-layer option not the VNIC's, hop limit not 255 (ip-nospoof)") \
	X(RA_GUARD, "ra-guard", "router advertisement or redirect, IPv6 or IPv4 (ip-nospoof, ra-guard)") \
	X(FRAGMENT, "fragment", "fragmented ND, headers split off the first fragment (ip-nospoof)") \
	X(UNCHECKABLE, "uncheckable", "a network header the checks cannot see: stacked/802.1ad tags, LLC, MPLS, PPPoE (ip-nospoof)") \
	X(SPOOF_SERVICE, "spoof-service", "the service address as a source, or service traffic inside a tag (always)") \
	X(TX_FULL, "tx-full", "the destination's transmit ring was full") \
	X(NO_BUFFER, "no-buffer", "no free frame to copy a flooded frame into") \
	X(REQUEST_RATE, "request-rate", "a configuration request over the VNIC's rate, or the control ring full") \
	X(HANDOFF_FULL, "handoff-full", "the ring to the worker that owns the port's queue was full") \
	X(NO_CONFIG, "no-config", "the VNIC's database record could not be read: its policy is unknown")

enum vnic_drop_reason {
#define VNIC_X(id, name, what) VNIC_DROP_##id,
	VNIC_DROP_REASONS(VNIC_X)
#undef VNIC_X
	VNIC_DROP_REASON_MAX
};

struct vnic_counters {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
	__u64 drops[VNIC_DROP_REASON_MAX];
};

#endif

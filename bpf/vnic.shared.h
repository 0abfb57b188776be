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

/* Per-CPU counters of the XDP programs (index into vnic_counters). */
enum vnic_xdp_counter {
	VNIC_XDP_REDIRECTED = 0,  /* uplink unicast redirected to a VNIC socket */
	VNIC_XDP_FLOODED,         /* uplink broadcast/multicast to the uplink socket */
	VNIC_XDP_UNKNOWN_DST,     /* uplink unicast to a MAC no VNIC owns: dropped */
	VNIC_XDP_NO_SOCKET,       /* known destination but no socket bound yet: dropped */
	VNIC_XDP_MALFORMED,       /* shorter than an Ethernet header: dropped */
	VNIC_XDP_BAD_QUEUE,       /* rx queue >= queue_count: dropped */
	VNIC_XDP_PORT_REDIRECTED, /* VM port frame redirected to the port socket */
	VNIC_XDP_PORT_UNKNOWN,    /* frame on a port no VNIC owns: dropped */
	VNIC_XDP_COUNTER_MAX
};

/* Per VNIC and worker counters kept by the Swift workers (not a BPF map);
 * declared here so the layout has one definition. rx = towards the VM.
 * The drop reasons up to VNIC_DROP_SPOOF_SERVICE are AntiSpoof's verdicts, in
 * the same order. */
enum vnic_drop_reason {
	VNIC_DROP_SPOOF_MAC = 0,  /* source MAC not the VNIC's (mac-nospoof) */
	VNIC_DROP_MALFORMED,      /* truncated headers, bad IHL, lengths that lie */
	VNIC_DROP_SPOOF_IP,       /* IPv4 source not the VNIC's (ip-nospoof) */
	VNIC_DROP_SPOOF_ARP,      /* ARP sender MAC or IP not the VNIC's, ARP reply from 0.0.0.0 (ip-nospoof) */
	VNIC_DROP_SPOOF_IPV6,     /* IPv6 source not the VNIC's (ip-nospoof) */
	VNIC_DROP_SPOOF_DHCP,     /* DHCP server or relay message, or a foreign client (dhcp-nospoof) */
	VNIC_DROP_RESTRICTED,     /* not IPv4, IPv6 or ARP (restricted) */
	VNIC_DROP_SPOOF_ND,       /* ND: target or link-layer option not the VNIC's, hop limit not 255 (ip-nospoof) */
	VNIC_DROP_RA_GUARD,       /* router advertisement or redirect, IPv6 or IPv4 (ip-nospoof, ra-guard) */
	VNIC_DROP_FRAGMENT,       /* fragmented ND, headers split off the first fragment (ip-nospoof) */
	VNIC_DROP_UNCHECKABLE,    /* a network header the checks cannot see: stacked/802.1ad tags, LLC, MPLS, PPPoE (ip-nospoof) */
	VNIC_DROP_SPOOF_SERVICE,  /* the service address as a source, or service traffic inside a tag (always) */
	VNIC_DROP_TX_FULL,        /* the destination's transmit ring was full */
	VNIC_DROP_NO_BUFFER,      /* no free frame to copy a flooded frame into */
	VNIC_DROP_REQUEST_RATE,   /* a configuration request over the VNIC's rate, or the control ring full */
	VNIC_DROP_HANDOFF_FULL,   /* the ring to the worker that owns the port's queue was full */
	VNIC_DROP_NO_CONFIG,      /* the VNIC's database record could not be read: its policy is unknown */
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

#!/usr/bin/python3
"""Port-security battery (issue 13): crafted frames sent from VM1's namespace of a
vnic-lab, each N times, captured on the wire (wire0) and on VM2 (its vnic0), with
vnicd's drop counters for VM1's VNIC read before and after.

Attacks come from the anchors' repertoires and the RFCs: OVN's tests/ovn.at port
security (MAC, IPv4/IPv6 source, ARP, ND targets and link-layer options), VPP's
test_acl_plugin*.py (fragments, extension headers, tags), libvirt's clean-traffic
filters (no-mac-spoofing, no-ip-spoofing, no-arp-spoofing, no-other-l2-traffic,
no-other-rarp-traffic, allow-dhcp/dhcp-server filtering), thc-ipv6's
flood_router6 -H/-D/-F (RA behind hop-by-hop, destination and fragment headers)
and RFC 7113 (RA guard evasion), RFC 6980 (fragmented ND), RFC 7112 (header
chain split off the first fragment), CVE-2021-20267 and Kubernetes
CVE-2020-10749 (RAs and ND options from a workload), canonical/lxd#7808 (what a
second tag or LLC hides). Legitimate cases are their twins: what a kernel stack
sends (ARP, ND, DAD, MLD, RS, DHCP clients, fragments, one 802.1Q tag).

Each case names the protection phases it runs in and the drop reason it expects
there (None: legitimate, every copy must arrive where it was sent). The test
(Tests/IntegrationTests/PortSecurityBatteryTests.swift) sets VM1's protection
for a phase, runs this with --phase, and asserts on the JSON lines printed:
  {"name", "class", "expected", "sent", "wire", "vm2", "to", "drops": {reason: delta}}

Usage: battery.py --prefix P --status DB-status.json --phase all|ip|mac [--count N] [--only CLASSES]
       battery.py --list [--phase P]     battery.py --dump Tests/fuzz/frames   (the frame fuzzer's seeds)
Needs root (setns into the lab's namespaces), Python 3 and scapy (Debian python3-scapy).
"""
import argparse
import ctypes
import json
import os
import socket
import struct
import sys
import time

from scapy.all import (ARP, BOOTP, DHCP, ICMP, IP, LLC, SNAP, TCP, UDP, Dot1AD, Dot1Q, Dot3, Ether, ICMPv6EchoRequest,
                       ICMPv6MLDMultAddrRec, ICMPv6MLReport, ICMPv6MLReport2, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA,
                       ICMPv6ND_Redirect, ICMPv6ND_RS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo,
                       ICMPv6NDOptRouteInfo, ICMPv6NDOptSrcLLAddr, IPOption_Router_Alert, IPv6, IPv6ExtHdrDestOpt,
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, PadN, Raw, RouterAlert, mac2str)
from scapy.contrib.igmp import IGMP
from scapy.layers.dhcp6 import (DHCP6_Advertise, DHCP6_Reconf, DHCP6_RelayForward, DHCP6_Reply, DHCP6_Request,
                                DHCP6_Solicit, DHCP6OptClientId, DUID_LL)
from scapy.layers.ppp import PPP, PPPoE

# The contract's lab (../shared/DESIGN.md): VM I is 02:00:00:00:01:0I, 10.77.0.(10+I).
MAC1, MAC2, WIRE_MAC = "02:00:00:00:01:01", "02:00:00:00:01:02", "02:00:00:00:00:01"
IP1, IP2, WIRE_IP = "10.77.0.11", "10.77.0.12", "10.77.0.1"
LL1, LL2, WIRE_LL = "fe80::ff:fe00:101", "fe80::ff:fe00:102", "fe80::ff:fe00:1"
BCAST = "ff:ff:ff:ff:ff:ff"
SERVICE = "169.254.169.254"
ALL_NODES, ALL_ROUTERS, DHCP6_SERVERS = "ff02::1", "ff02::2", "ff02::1:2"
ALL_NODES_MAC, ALL_ROUTERS_MAC, DHCP6_MAC = "33:33:00:00:00:01", "33:33:00:00:00:02", "33:33:00:01:00:02"


def snm(addr):
    """Solicited-node multicast address and MAC of an IPv6 address."""
    tail = socket.inet_pton(socket.AF_INET6, addr)[-3:]
    return "ff02::1:ff%02x:%02x%02x" % tuple(tail), "33:33:ff:%02x:%02x:%02x" % tuple(tail)


def pad(b):
    return b + b"\0" * (60 - len(b)) if len(b) < 60 else b


def chaddr(mac):
    return mac2str(mac) + b"\0" * 10


PH_ALL = ("all", "ip")          # every protection / every but restricted
ALL3 = ("all", "ip", "mac")


class Case:
    def __init__(self, cls, name, pkt, expected, to="wire", phases=PH_ALL):
        self.cls, self.name, self.to = cls, name, to
        self.frame = pad(bytes(pkt))
        # expected: a reason, None (legitimate), or {phase: reason}
        self.expected = expected if isinstance(expected, dict) else {p: expected for p in phases}


def cases():
    c = []
    A = lambda *a, **k: c.append(Case(*a, **k))
    e = lambda dst=WIRE_MAC, src=MAC1: Ether(dst=dst, src=src)
    v4 = lambda src=IP1, dst=WIRE_IP, **k: IP(src=src, dst=dst, **k)
    v6 = lambda src=LL1, dst=WIRE_LL, hlim=64, **k: IPv6(src=src, dst=dst, hlim=hlim, **k)
    u = lambda s=40000, d=7777: UDP(sport=s, dport=d)
    payload = Raw(b"vnic-battery" * 2)
    ns_dst, ns_mac = snm(WIRE_LL)
    ra = lambda: (ICMPv6ND_RA(routerlifetime=1800, prf=1) / ICMPv6NDOptPrefixInfo(prefix="2001:db8:bad::", prefixlen=64)
                  / ICMPv6NDOptMTU(mtu=1400) / ICMPv6NDOptSrcLLAddr(lladdr=MAC1))

    # --- MAC spoofing (OVN ovn.at "port security": eth.src; libvirt no-mac-spoofing) ---
    A("mac", "source MAC of VM2", e(src=MAC2) / v4() / u() / payload, "spoof-mac")
    A("mac", "source MAC of the wire (gateway)", e(dst=BCAST, src=WIRE_MAC) / ARP(op=2, hwsrc=WIRE_MAC, psrc=WIRE_IP, hwdst=BCAST, pdst=IP2), "spoof-mac", to="both")
    A("mac", "broadcast source MAC", e(src=BCAST) / v4() / u() / payload, "spoof-mac")
    A("mac", "multicast source MAC", e(src="01:00:5e:00:00:01") / v4() / u() / payload, "spoof-mac")
    A("mac", "all-zero source MAC", e(src="00:00:00:00:00:00") / v4() / u() / payload, "spoof-mac")
    A("mac", "random source MAC, IPv6", e(src="02:de:ad:be:ef:01") / v6() / u() / payload, "spoof-mac")
    A("mac", "source MAC of VM2 in an 802.1Q tag", e(src=MAC2) / Dot1Q(vlan=5) / v4() / u() / payload, "spoof-mac")
    A("mac", "source MAC of VM2, ARP request", e(dst=BCAST, src=MAC2) / ARP(op=1, hwsrc=MAC2, psrc=IP2, pdst=WIRE_IP), "spoof-mac", to="both")
    A("mac", "source MAC of VM2 to VM2", e(dst=MAC2, src=MAC2) / v4(dst=IP2) / u() / payload, "spoof-mac", to="vm2")

    # --- IPv4 source (OVN ip4.src; libvirt no-ip-spoofing; VPP ACL source match) ---
    A("ipv4", "source of VM2", e() / v4(src=IP2) / u() / payload, "spoof-ip")
    A("ipv4", "source of the gateway, echo to VM2", e(dst=MAC2) / v4(src=WIRE_IP, dst=IP2) / ICMP(), "spoof-ip", to="vm2")
    A("ipv4", "public source, TCP SYN", e() / v4(src="8.8.8.8") / TCP(sport=4444, dport=80, flags="S"), "spoof-ip")
    A("ipv4", "broadcast source", e() / v4(src="255.255.255.255") / u() / payload, "spoof-ip")
    A("ipv4", "loopback source", e() / v4(src="127.0.0.1") / u() / payload, "spoof-ip")
    A("ipv4", "multicast source", e() / v4(src="224.0.0.1") / u() / payload, "spoof-ip")
    A("ipv4", "source of VM2 in an 802.1Q tag", e() / Dot1Q(vlan=5) / v4(src=IP2) / u() / payload, "spoof-ip")
    A("ipv4", "0.0.0.0 source, not DHCP", e() / v4(src="0.0.0.0") / u(1234, 5678) / payload, "spoof-ip")
    A("ipv4", "0.0.0.0 source on DHCP ports, not BOOTP", e(dst=BCAST) / v4(src="0.0.0.0", dst="255.255.255.255") / u(68, 67) / payload,
      "spoof-ip", to="both")
    A("ipv4", "source of VM2, later fragment", e() / v4(src=IP2, proto=17, frag=100) / payload, "spoof-ip")
    A("ipv4", "source of VM2 with IP options", e() / v4(src=IP2, options=[IPOption_Router_Alert()]) / u() / payload, "spoof-ip")

    # --- ARP (OVN arp.sha/arp.spa; libvirt no-arp-spoofing, no-arp-ip-spoofing, no-arp-mac-spoofing) ---
    A("arp", "reply claiming the gateway's address", e() / ARP(op=2, hwsrc=MAC1, psrc=WIRE_IP, hwdst=WIRE_MAC, pdst=WIRE_IP), "spoof-arp")
    A("arp", "reply claiming VM2's address to VM2", e(dst=MAC2) / ARP(op=2, hwsrc=MAC1, psrc=WIRE_IP, hwdst=MAC2, pdst=IP2), "spoof-arp", to="vm2")
    A("arp", "gratuitous ARP for the gateway's address", e(dst=BCAST) / ARP(op=1, hwsrc=MAC1, psrc=WIRE_IP, pdst=WIRE_IP), "spoof-arp", to="both")
    A("arp", "request from VM2's address", e(dst=BCAST) / ARP(op=1, hwsrc=MAC1, psrc=IP2, pdst=WIRE_IP), "spoof-arp", to="both")
    A("arp", "sender MAC not the frame's", e() / ARP(op=2, hwsrc=MAC2, psrc=IP1, hwdst=WIRE_MAC, pdst=WIRE_IP), "spoof-arp")
    A("arp", "reply from 0.0.0.0", e() / ARP(op=2, hwsrc=MAC1, psrc="0.0.0.0", hwdst=WIRE_MAC, pdst=WIRE_IP), "spoof-arp")
    A("arp", "probe from 0.0.0.0 for VM2's address (DAD denial)", e(dst=BCAST) / ARP(op=1, hwsrc=MAC1, psrc="0.0.0.0", pdst=IP2), "spoof-arp", to="both")
    A("arp", "RARP request inside ARP", e(dst=BCAST) / ARP(op=3, hwsrc=MAC1, psrc=IP1, pdst=IP2), "spoof-arp", to="both")
    A("arp", "InARP reply", e() / ARP(op=9, hwsrc=MAC1, psrc=IP2, hwdst=WIRE_MAC, pdst=WIRE_IP), "spoof-arp")
    A("arp", "hardware type IEEE 802", e() / ARP(hwtype=6, op=2, hwsrc=MAC1, psrc=WIRE_IP, hwdst=WIRE_MAC, pdst=WIRE_IP), "spoof-arp")
    A("arp", "protocol size 16", Ether(dst=WIRE_MAC, src=MAC1, type=0x0806) / Raw(bytes.fromhex("0001080006100002") + mac2str(MAC1)
      + b"\x0a\x4d\x00\x01" * 4 + mac2str(WIRE_MAC) + b"\x0a\x4d\x00\x01" * 4), "spoof-arp")
    A("arp", "reply claiming the gateway in an 802.1Q tag", e() / Dot1Q(vlan=5) / ARP(op=2, hwsrc=MAC1, psrc=WIRE_IP, hwdst=WIRE_MAC, pdst=WIRE_IP),
      "spoof-arp")

    # --- IPv6 source (OVN ip6.src; libvirt no-ipv6-spoofing) ---
    A("ipv6", "link-local of VM2", e() / v6(src=LL2) / ICMPv6EchoRequest(), "spoof-ipv6")
    A("ipv6", "global source outside its addresses", e() / v6(src="2001:db8::1") / u() / payload, "spoof-ipv6")
    A("ipv6", "loopback source", e() / v6(src="::1") / u() / payload, "spoof-ipv6")
    A("ipv6", "multicast source", e() / v6(src="ff02::1") / u() / payload, "spoof-ipv6")
    A("ipv6", "unspecified source, echo", e() / v6(src="::") / ICMPv6EchoRequest(), "spoof-ipv6")
    A("ipv6", "the gateway's link-local", e() / v6(src=WIRE_LL, dst=LL2) / ICMPv6EchoRequest(), "spoof-ipv6")
    A("ipv6", "link-local of VM2 behind a destination header", e() / v6(src=LL2) / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)]) / u() / payload,
      "spoof-ipv6")
    A("ipv6", "link-local of VM2, later fragment", e() / v6(src=LL2) / IPv6ExtHdrFragment(offset=100, nh=17, id=7) / payload, "spoof-ipv6")

    # --- Neighbour discovery (OVN nd.target/nd.sll/nd.tll; CVE-2021-20267: ND from a workload) ---
    na = lambda tgt, ll=MAC1, hlim=255, dst=WIRE_LL, dmac=WIRE_MAC, pre=None: (
        e(dst=dmac) / (v6(dst=dst, hlim=hlim) / pre if pre is not None else v6(dst=dst, hlim=hlim))
        / ICMPv6ND_NA(tgt=tgt, R=0, S=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=ll))
    A("nd", "NA for VM2's address", na(LL2), "spoof-nd")
    A("nd", "NA for the gateway's address", na(WIRE_LL, dst=ALL_NODES, dmac=ALL_NODES_MAC), "spoof-nd", to="both")
    A("nd", "NA for its own address, target MAC of VM2", na(LL1, ll=MAC2), "spoof-nd")
    A("nd", "NA for its own address, target MAC of the gateway", na(LL1, ll=WIRE_MAC), "spoof-nd")
    A("nd", "NS with VM2's MAC as source link-layer address", e(dst=ns_mac) / v6(dst=ns_dst, hlim=255) / ICMPv6ND_NS(tgt=WIRE_LL)
      / ICMPv6NDOptSrcLLAddr(lladdr=MAC2), "spoof-nd")
    A("nd", "NS with hop limit 64", e(dst=ns_mac) / v6(dst=ns_dst, hlim=64) / ICMPv6ND_NS(tgt=WIRE_LL) / ICMPv6NDOptSrcLLAddr(lladdr=MAC1), "spoof-nd")
    A("nd", "NA with hop limit 1", na(LL1, hlim=1), "spoof-nd")
    d2, m2 = snm(LL2)
    A("nd", "DAD probe for VM2's address", Ether(dst=m2, src=MAC1) / IPv6(src="::", dst=d2, hlim=255) / ICMPv6ND_NS(tgt=LL2), "spoof-nd", to="both")
    A("nd", "DAD probe for the gateway's address", e(dst=ns_mac) / IPv6(src="::", dst=ns_dst, hlim=255) / ICMPv6ND_NS(tgt=WIRE_LL), "spoof-nd")
    A("nd", "NA for VM2's address behind a destination header", na(LL2, pre=IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)])), "spoof-nd")
    A("nd", "NA for VM2's address behind hop-by-hop and routing headers", na(LL2, pre=IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting()), "spoof-nd")
    A("nd", "RS with VM2's MAC as source link-layer address", e(dst=ALL_ROUTERS_MAC) / v6(dst=ALL_ROUTERS, hlim=255) / ICMPv6ND_RS()
      / ICMPv6NDOptSrcLLAddr(lladdr=MAC2), "spoof-nd", to="both")
    A("nd", "DAD probe with a source link-layer option", Ether(dst=snm(LL1)[1], src=MAC1) / IPv6(src="::", dst=snm(LL1)[0], hlim=255)
      / ICMPv6ND_NS(tgt=LL1) / ICMPv6NDOptSrcLLAddr(lladdr=MAC1), "spoof-nd", to="both")

    # --- Router guard (RFC 6105; thc-ipv6 flood_router6 -H/-D/-F; RFC 7113; Kubernetes CVE-2020-10749) ---
    A("ra-guard", "RA with a rogue prefix (flood_router6)", e(dst=ALL_NODES_MAC) / v6(dst=ALL_NODES, hlim=255) / ra(), "ra-guard", to="both")
    A("ra-guard", "RA with a route information option", e(dst=ALL_NODES_MAC) / v6(dst=ALL_NODES, hlim=255) / ICMPv6ND_RA(prf=1)
      / ICMPv6NDOptRouteInfo(prefix="::", plen=0, prf=1), "ra-guard", to="both")
    A("ra-guard", "RA behind hop-by-hop (flood_router6 -H)", e(dst=ALL_NODES_MAC) / v6(dst=ALL_NODES, hlim=255) / IPv6ExtHdrHopByHop() / ra(),
      "ra-guard", to="both")
    A("ra-guard", "RA behind a destination header (flood_router6 -D)", e(dst=ALL_NODES_MAC) / v6(dst=ALL_NODES, hlim=255)
      / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)]) / ra(), "ra-guard", to="both")
    A("ra-guard", "RA behind many destination headers", e(dst=ALL_NODES_MAC) / v6(dst=ALL_NODES, hlim=255)
      / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting() / ra(), "ra-guard", to="both")
    A("ra-guard", "RA unicast to VM2", e(dst=MAC2) / v6(dst=LL2, hlim=255) / ra(), "ra-guard", to="vm2")
    A("ra-guard", "RA with a hop limit below 255", e(dst=ALL_NODES_MAC) / v6(dst=ALL_NODES, hlim=64) / ra(), "ra-guard", to="both")
    A("ra-guard", "Redirect of VM2's traffic", e(dst=MAC2) / v6(dst=LL2, hlim=255) / ICMPv6ND_Redirect(tgt=LL1, dst="2001:db8::1"), "ra-guard", to="vm2")
    A("ra-guard", "Redirect behind a destination header", e(dst=MAC2) / v6(dst=LL2, hlim=255) / IPv6ExtHdrDestOpt()
      / ICMPv6ND_Redirect(tgt=LL1, dst="2001:db8::1"), "ra-guard", to="vm2")
    A("ra-guard", "IPv4 ICMP redirect to VM2", e(dst=MAC2) / v4(dst=IP2) / ICMP(type=5, code=1, gw=IP1) / v4(src=IP2, dst="8.8.8.8") / u(),
      "ra-guard", to="vm2")
    A("ra-guard", "IPv4 ICMP router advertisement", e(dst=BCAST) / v4(dst="255.255.255.255") / ICMP(type=9) / Raw(b"\x01\x02\x07\x08" + socket.inet_aton(IP1) + b"\0\0\0\x01"),
      "ra-guard", to="both")

    # --- Fragments (RFC 6980, RFC 7112, RFC 7113, flood_router6 -F; VPP ACL fragment tests) ---
    A("fragment", "RA in a fragment (flood_router6 -F)", e(dst=ALL_NODES_MAC) / v6(dst=ALL_NODES, hlim=255) / IPv6ExtHdrFragment(m=1, id=9) / ra(),
      "fragment", to="both")
    first = bytes(e(dst=ALL_NODES_MAC) / v6(dst=ALL_NODES, hlim=255) / IPv6ExtHdrFragment(m=1, id=10, nh=60)
                  / IPv6ExtHdrDestOpt(nh=58, options=[PadN(optdata=b"\0" * 14)]))
    A("fragment", "RA whose ICMPv6 header is in the second fragment (RFC 7113)", Raw(first), "fragment", to="both")
    A("fragment", "NS in an atomic fragment (RFC 6980)", e(dst=ns_mac) / v6(dst=ns_dst, hlim=255) / IPv6ExtHdrFragment(m=0, id=11)
      / ICMPv6ND_NS(tgt=WIRE_LL) / ICMPv6NDOptSrcLLAddr(lladdr=MAC1), "fragment")
    A("fragment", "NA in a first fragment", e() / v6(hlim=255) / IPv6ExtHdrFragment(m=1, id=12) / ICMPv6ND_NA(tgt=LL1) / ICMPv6NDOptDstLLAddr(lladdr=MAC1),
      "fragment")
    cut = bytearray(bytes(e() / v6() / IPv6ExtHdrFragment(m=1, id=13, nh=60) / IPv6ExtHdrDestOpt(nh=17, options=[PadN(optdata=b"\0" * 30)]) / u()))
    cut = cut[:14 + 40 + 8 + 8]
    cut[18:20] = struct.pack("!H", 16)
    A("fragment", "header chain cut in the first fragment (RFC 7112)", Raw(bytes(cut)), "fragment")
    tcp = bytearray(bytes(e() / v6() / IPv6ExtHdrFragment(m=1, id=14, nh=6)) + b"\x11\x5c\x00\x50")
    tcp[18:20] = struct.pack("!H", 12)
    A("fragment", "TCP header split off the first fragment", Raw(bytes(tcp)), "fragment")
    A("fragment", "IPv4 first fragment with half a UDP header", e() / IP(src=IP1, dst=WIRE_IP, flags="MF", proto=17, id=15) / Raw(b"\x9c\x40\x1e\x61"),
      "fragment")
    A("fragment", "IPv4 first fragment with half an ICMP header", e() / IP(src=IP1, dst=WIRE_IP, flags="MF", proto=1, id=16) / Raw(b"\x05"), "fragment")

    # --- DHCP servers and clients (libvirt clean-traffic's DHCP filters; OVN's dhcp tests; DHCP starvation) ---
    dh = lambda op, mac, msg, s, d, src=IP1, dst="255.255.255.255", dmac=BCAST, **k: (
        Ether(dst=dmac, src=MAC1) / IP(src=src, dst=dst) / UDP(sport=s, dport=d)
        / BOOTP(op=op, chaddr=chaddr(mac), xid=0x1234, yiaddr=IP1 if op == 2 else "0.0.0.0", **k)
        / DHCP(options=[("message-type", msg), ("server_id", IP1), "end"]))
    A("dhcp", "OFFER from port 67", dh(2, MAC2, "offer", 67, 68), "spoof-dhcp", to="both")
    A("dhcp", "ACK from port 67", dh(2, MAC2, "ack", 67, 68), "spoof-dhcp", to="both")
    A("dhcp", "OFFER from port 6767 to a client", dh(2, MAC2, "offer", 6767, 68), "spoof-dhcp", to="both")
    A("dhcp", "BOOTREPLY on other ports", dh(2, MAC2, "offer", 1000, 2000), "spoof-dhcp", to="both")
    A("dhcp", "ACK in a BOOTREQUEST", dh(1, MAC1, "ack", 68, 67, src="0.0.0.0"), "spoof-dhcp", to="both")
    A("dhcp", "NAK from port 1234", dh(2, MAC2, "nak", 1234, 68), "spoof-dhcp", to="both")
    A("dhcp", "FORCERENEW to VM2", dh(2, MAC2, "force_renew", 5000, 68, dst=IP2, dmac=MAC2), "spoof-dhcp", to="vm2")
    A("dhcp", "DISCOVER with a foreign chaddr (starvation)", dh(1, "02:99:00:00:00:01", "discover", 68, 67, src="0.0.0.0"), "spoof-dhcp", to="both")
    A("dhcp", "DISCOVER with a foreign chaddr from port 1068", dh(1, "02:99:00:00:00:02", "discover", 1068, 67, src="0.0.0.0"), "spoof-dhcp", to="both")
    req = (Ether(dst=BCAST, src=MAC1) / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
           / BOOTP(op=1, chaddr=chaddr(MAC1), xid=0x99) / DHCP(options=[("message-type", "request"), ("client_id", b"\x01" + mac2str(MAC2)), "end"]))
    A("dhcp", "REQUEST with VM2's MAC as client id", req, "spoof-dhcp", to="both")
    frag = (Ether(dst=BCAST, src=MAC1) / IP(src="0.0.0.0", dst="255.255.255.255", flags="MF", id=17) / UDP(sport=68, dport=67, len=600)
            / BOOTP(op=1, chaddr=chaddr(MAC1), xid=0x98) / DHCP(options=[("message-type", "discover"), "end"]))
    A("dhcp", "fragmented DISCOVER", frag, "spoof-dhcp", to="both")
    A("dhcp", "BOOTP request without a cookie, foreign chaddr", Ether(dst=BCAST, src=MAC1) / IP(src="0.0.0.0", dst="255.255.255.255")
      / UDP(sport=68, dport=67) / BOOTP(op=1, chaddr=chaddr("02:99:00:00:00:03"), xid=0x97), "spoof-dhcp", to="both")
    A("dhcp", "relayed request from port 67 (a relay agent)", dh(1, MAC1, "discover", 67, 67, dst=WIRE_IP, dmac=WIRE_MAC, giaddr=IP1), "spoof-dhcp")
    A("dhcp", "OFFER in an 802.1Q tag", Ether(dst=BCAST, src=MAC1) / Dot1Q(vlan=5) / IP(src=IP1, dst="255.255.255.255") / UDP(sport=67, dport=68)
      / BOOTP(op=2, chaddr=chaddr(MAC2), xid=1) / DHCP(options=[("message-type", "offer"), "end"]), "spoof-dhcp", to="both")
    d6 = lambda s, d, msg, dst=DHCP6_SERVERS, dmac=DHCP6_MAC, pre=None: (
        Ether(dst=dmac, src=MAC1) / (IPv6(src=LL1, dst=dst, hlim=1) / pre if pre is not None else IPv6(src=LL1, dst=dst, hlim=1))
        / UDP(sport=s, dport=d) / msg)
    A("dhcp", "DHCPv6 ADVERTISE from port 547", d6(547, 546, DHCP6_Advertise(), dst=LL2, dmac=MAC2), "spoof-dhcp", to="vm2")
    A("dhcp", "DHCPv6 REPLY to a client from port 5000", d6(5000, 546, DHCP6_Reply(), dst=LL2, dmac=MAC2), "spoof-dhcp", to="vm2")
    A("dhcp", "DHCPv6 RECONFIGURE to a client", d6(5000, 546, DHCP6_Reconf(), dst=ALL_NODES, dmac=ALL_NODES_MAC), "spoof-dhcp", to="both")
    A("dhcp", "DHCPv6 RELAY-FORW (a relay agent)", d6(546, 547, DHCP6_RelayForward(linkaddr="::", peeraddr=LL2)), "spoof-dhcp", to="both")
    A("dhcp", "DHCPv6 REPLY to the servers", d6(546, 547, DHCP6_Reply()), "spoof-dhcp", to="both")
    A("dhcp", "DHCPv6 ADVERTISE behind a destination header", d6(547, 546, DHCP6_Advertise(), dst=LL2, dmac=MAC2,
      pre=IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)])), "spoof-dhcp", to="vm2")

    # --- What the checks cannot see into (canonical/lxd#7808; libvirt no-other-l2-traffic): ip-nospoof alone stops them ---
    hidden = {"all": "restricted", "ip": "uncheckable"}
    A("uncheckable", "802.1ad + 802.1Q (QinQ), spoofed IPv4 inside", e() / Dot1AD(vlan=5) / Dot1Q(vlan=7) / v4(src=IP2) / u() / payload, hidden)
    A("uncheckable", "two 802.1Q tags, ARP spoof inside", e(dst=BCAST) / Dot1Q(vlan=5) / Dot1Q(vlan=7) / ARP(op=2, hwsrc=MAC1, psrc=WIRE_IP, pdst=IP2),
      hidden, to="both")
    A("uncheckable", "802.1ad tag, spoofed IPv4 inside", e() / Dot1AD(vlan=5) / v4(src=IP2) / u() / payload, hidden)
    A("uncheckable", "LLC/SNAP carrying IPv4", Dot3(dst=WIRE_MAC, src=MAC1) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800)
      / v4(src=IP2) / u() / payload, hidden)
    A("uncheckable", "MPLS carrying IPv4", Ether(dst=WIRE_MAC, src=MAC1, type=0x8847) / Raw(bytes.fromhex("000141ff")) / v4(src=IP2) / u() / payload, hidden)
    A("uncheckable", "PPPoE session carrying IPv4", Ether(dst=WIRE_MAC, src=MAC1) / PPPoE(sessionid=1) / PPP(proto=0x21) / v4(src=IP2) / u() / payload, hidden)
    A("uncheckable", "RARP", Ether(dst=BCAST, src=MAC1, type=0x8035) / ARP(op=3, hwsrc=MAC1, hwdst=MAC1), hidden, to="both")
    A("uncheckable", "802.3 frame with a raw payload", Dot3(dst=WIRE_MAC, src=MAC1) / Raw(b"\xff\xff" + b"\0" * 40), hidden)
    A("uncheckable", "local experimental ethertype", Ether(dst=WIRE_MAC, src=MAC1, type=0x88B5) / payload, hidden)
    A("uncheckable", "LLDP", Ether(dst="01:80:c2:00:00:0e", src=MAC1, type=0x88CC) / Raw(b"\x02\x07\x04" + mac2str(MAC1) + b"\0\0"), hidden, to="both")

    # --- The service address (what a VM must never be; the guest protocol's notifications) ---
    svc = "spoof-service"
    A("service", "forged notification to VM2 (mtu=1400)", Ether(dst=MAC2, src=MAC1) / IP(src=SERVICE, dst=IP2) / UDP(sport=7177, dport=7178)
      / Raw(b"\x01\x04\x00\x00\x00\x00\x00\x2a\x03mtu\x00\x041400"), svc, to="vm2", phases=ALL3)
    A("service", "service address as a source to the wire", e() / IP(src=SERVICE, dst=WIRE_IP) / u() / payload, svc, phases=ALL3)
    A("service", "ARP reply for the service address", e(dst=MAC2) / ARP(op=2, hwsrc=MAC1, psrc=SERVICE, hwdst=MAC2, pdst=IP2), svc, to="vm2", phases=ALL3)
    A("service", "guest request in an 802.1Q tag", Ether(dst=BCAST, src=MAC1) / Dot1Q(vlan=5) / IP(src=IP1, dst=SERVICE) / UDP(sport=50000, dport=7177)
      / Raw(b"\x01\x01\x00\x00\x00\x00\x00\x07\x03mtu\x00\x041400"), svc, to="both", phases=ALL3)
    A("service", "forged notification in an 802.1Q tag", Ether(dst=MAC2, src=MAC1) / Dot1Q(vlan=5) / IP(src=SERVICE, dst=IP2) / UDP(sport=7177, dport=7178)
      / Raw(b"\x01\x04\x00\x00\x00\x00\x00\x2b\x03mtu\x00\x041400"), svc, to="vm2", phases=ALL3)
    A("service", "ICMP from the service address", e() / IP(src=SERVICE, dst=WIRE_IP) / ICMP(), svc, phases=ALL3)

    # --- Legitimate twins: every copy arrives, no drop is counted ---
    L = lambda name, pkt, to="wire": A("legitimate", name, pkt, None, to=to)
    L("IPv4 UDP to the wire", e() / v4() / u() / payload)
    L("IPv4 UDP to VM2", e(dst=MAC2) / v4(dst=IP2) / u() / payload, to="vm2")
    L("ICMP echo to the wire", e() / v4() / ICMP() / payload)
    L("TCP SYN to the wire", e() / v4() / TCP(sport=40001, dport=80, flags="S"))
    L("IPv4 with a router alert option (IGMPv2 report)", Ether(dst="01:00:5e:00:00:16", src=MAC1)
      / IP(src=IP1, dst="224.0.0.22", ttl=1, options=[IPOption_Router_Alert()]) / IGMP(type=0x16, gaddr="239.1.1.1"), to="both")
    L("ARP request for the gateway", e(dst=BCAST) / ARP(op=1, hwsrc=MAC1, psrc=IP1, pdst=WIRE_IP), to="both")
    L("ARP reply to the gateway", e() / ARP(op=2, hwsrc=MAC1, psrc=IP1, hwdst=WIRE_MAC, pdst=WIRE_IP))
    L("gratuitous ARP for its address", e(dst=BCAST) / ARP(op=1, hwsrc=MAC1, psrc=IP1, pdst=IP1), to="both")
    L("ARP probe from 0.0.0.0 for its address (RFC 5227)", e(dst=BCAST) / ARP(op=1, hwsrc=MAC1, psrc="0.0.0.0", pdst=IP1), to="both")
    L("ARP request in an 802.1Q tag", e(dst=BCAST) / Dot1Q(vlan=5) / ARP(op=1, hwsrc=MAC1, psrc=IP1, pdst=WIRE_IP), to="both")
    L("IPv4 UDP in an 802.1Q tag", e() / Dot1Q(vlan=5) / v4() / u() / payload)
    L("NS for the gateway with its link-layer address", e(dst=ns_mac) / v6(dst=ns_dst, hlim=255) / ICMPv6ND_NS(tgt=WIRE_LL) / ICMPv6NDOptSrcLLAddr(lladdr=MAC1),
      to="both")
    L("NA for its address", na(LL1))
    L("DAD probe for its address", Ether(dst=snm(LL1)[1], src=MAC1) / IPv6(src="::", dst=snm(LL1)[0], hlim=255) / ICMPv6ND_NS(tgt=LL1), to="both")
    # A solicitation goes to the wire and to the VMs that advertised as routers: VM2 has not.
    L("RS from :: (RFC 4861 6.3.7)", e(dst=ALL_ROUTERS_MAC) / IPv6(src="::", dst=ALL_ROUTERS, hlim=255) / ICMPv6ND_RS(), to="wire")
    L("RS from its link-local address", e(dst=ALL_ROUTERS_MAC) / v6(dst=ALL_ROUTERS, hlim=255) / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=MAC1), to="wire")
    L("MLDv2 report from ::", Ether(dst="33:33:00:00:00:16", src=MAC1) / IPv6(src="::", dst="ff02::16", hlim=1)
      / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(dst=snm(LL1)[0])]), to="both")
    L("MLDv1 report from ::", Ether(dst="33:33:ff:00:01:01", src=MAC1) / IPv6(src="::", dst=snm(LL1)[0], hlim=1)
      / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport(mladdr=snm(LL1)[0]), to="both")
    L("MLDv2 report from its link-local address", Ether(dst="33:33:00:00:00:16", src=MAC1) / IPv6(src=LL1, dst="ff02::16", hlim=1)
      / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(dst="ff02::fb")]), to="both")
    L("ICMPv6 echo to the gateway", e() / v6() / ICMPv6EchoRequest())
    L("IPv6 UDP behind a destination header", e() / v6() / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)]) / u() / payload)
    L("DHCP DISCOVER from 0.0.0.0", dh(1, MAC1, "discover", 68, 67, src="0.0.0.0"), to="both")
    L("DHCP REQUEST with its client id", Ether(dst=BCAST, src=MAC1) / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
      / BOOTP(op=1, chaddr=chaddr(MAC1), xid=0x96) / DHCP(options=[("message-type", "request"), ("client_id", b"\x01" + mac2str(MAC1)), "end"]), to="both")
    L("DHCP RELEASE to the server", dh(1, MAC1, "release", 68, 67, src=IP1, dst=WIRE_IP, dmac=WIRE_MAC))
    L("DHCPv6 SOLICIT", d6(546, 547, DHCP6_Solicit() / DHCP6OptClientId(duid=DUID_LL(lladdr=MAC1))), to="both")
    L("DHCPv6 REQUEST", d6(546, 547, DHCP6_Request() / DHCP6OptClientId(duid=DUID_LL(lladdr=MAC1))), to="both")
    L("IPv4 UDP, first fragment of 3000 bytes", e() / IP(src=IP1, dst=WIRE_IP, flags="MF", id=21) / UDP(sport=40002, dport=7777, len=3008, chksum=0)
      / Raw(b"\0" * 1472))
    L("IPv4 UDP, last fragment", e() / IP(src=IP1, dst=WIRE_IP, frag=185, proto=17, id=21) / Raw(b"\0" * 1000))
    L("IPv4 ICMP echo, first fragment", e() / IP(src=IP1, dst=WIRE_IP, flags="MF", id=22) / ICMP(chksum=0) / Raw(b"\0" * 1472))
    L("IPv6 UDP, first fragment", e() / v6() / IPv6ExtHdrFragment(m=1, id=23) / UDP(sport=40003, dport=7777, len=3008, chksum=0) / Raw(b"\0" * 1400))
    L("IPv6 UDP, later fragment", e() / v6() / IPv6ExtHdrFragment(offset=176, m=0, id=23, nh=17) / Raw(b"\0" * 1000))
    return c


# --- sockets in the lab's namespaces ---

libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000
SOL_PACKET, PACKET_AUXDATA, PACKET_OUTGOING, TP_STATUS_VLAN_VALID = 263, 8, 4, 0x10


def packet_socket(namespace, ifname):
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open("/run/netns/" + namespace, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + namespace)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        s.bind((ifname, 0))
        s.setblocking(False)
        return s
    finally:
        libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


def drain(s):
    """Frames the interface received (not sent), with a stripped VLAN tag put back."""
    out = []
    while True:
        try:
            data, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(20))
        except BlockingIOError:
            return out
        if addr[2] == PACKET_OUTGOING:
            continue
        for level, kind, value in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= 20:
                status, _, _, _, _, tci, tpid = struct.unpack("IIIHHHH", value[:20])
                if status & TP_STATUS_VLAN_VALID:
                    data = data[:12] + struct.pack("!HH", tpid or 0x8100, tci) + data[12:]
        out.append(data)


def status(path):
    with open(path) as f:
        return json.load(f)


def drops(st, vnic):
    return dict(st["vnics"].get(vnic, {}).get("drops", {}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prefix", default="vl")
    ap.add_argument("--status", help="vnicd's DB-status.json")
    ap.add_argument("--phase", choices=["all", "ip", "mac"], default="all")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--vnic", default="vnic1")
    ap.add_argument("--list", action="store_true", help="print the cases and exit")
    ap.add_argument("--only", help="comma list of classes to run")
    ap.add_argument("--dump", metavar="DIR", help="write each case's frame to DIR/battery-NNN (the frame fuzzer's seeds) and exit")
    a = ap.parse_args()
    todo = [x for x in cases() if a.phase in x.expected]
    if a.only:
        todo = [x for x in todo if x.cls in a.only.split(",")]
    if a.dump:
        for i, x in enumerate(cases()):
            with open(os.path.join(a.dump, "battery-%03d" % i), "wb") as f:
                f.write(x.frame)
        return 0
    if a.list:
        for x in todo:
            print(json.dumps({"class": x.cls, "name": x.name, "expected": x.expected[a.phase], "to": x.to, "bytes": len(x.frame)}))
        return 0
    if not a.status:
        ap.error("--status is required")
    p = a.prefix
    tx = packet_socket(p + "-vm1", "vnic0")
    wire = packet_socket(p + "-wire", "wire0")
    vm2 = packet_socket(p + "-vm2", "vnic0")
    for x in todo:
        drain(wire); drain(vm2)
        before = status(a.status)
        for _ in range(a.count):
            tx.send(x.frame)
        sent_at = time.time()
        # vnicd rewrites its status every 250 ms: wait for one written after the last copy.
        deadline = sent_at + 3
        while True:
            time.sleep(0.05)
            try:
                after = status(a.status)
            except (OSError, ValueError):
                continue
            if after["updated"] > sent_at + 0.05 or time.time() > deadline:
                break
        untagged = x.frame[:12] + x.frame[16:] if x.frame[12:14] == b"\x81\x00" else None
        seen = lambda frames: sum(1 for f in frames if f == x.frame or (untagged is not None and f == untagged))
        d0, d1 = drops(before, a.vnic), drops(after, a.vnic)
        delta = {k: d1.get(k, 0) - d0.get(k, 0) for k in set(d0) | set(d1) if d1.get(k, 0) != d0.get(k, 0)}
        print(json.dumps({"class": x.cls, "name": x.name, "expected": x.expected[a.phase], "to": x.to, "sent": a.count,
                          "wire": seen(drain(wire)), "vm2": seen(drain(vm2)), "drops": delta}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

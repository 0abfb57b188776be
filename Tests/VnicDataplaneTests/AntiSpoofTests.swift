// AntiSpoof on golden frames. The captured ones were recorded with
// `tcpdump -i vm1p -w` in a vnic-lab (VM1 = 02:00:00:00:01:01, 10.77.0.11,
// link-local fe80::ff:fe00:101) while VM1's vnic0 went down and up and pinged
// 10.77.0.1; the others are built from them, or from FrameBuilder, as each says.
import CVnicShim
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
        // An RFC 5227 probe (sender IP 0.0.0.0) is legitimate.
        var probe = Self.arpRequest; probe.replaceSubrange(28..<32, with: [0, 0, 0, 0])
        XCTAssertEqual(verdict(probe, Self.all), .pass)
    }

    func testForeignIPv6SourceIsSpoofIPv6() {
        // The RS with another VM's link-local source (fe80::ff:fe00:102).
        var f = Self.routerSolicitation; f[37] = 0x02
        XCTAssertEqual(verdict(f, [.ipNospoof]), .spoofIPv6)
        // A DAD probe for someone else's address.
        var dad = Self.dadNS; dad[77] = 0x02
        XCTAssertEqual(verdict(dad, [.ipNospoof]), .spoofIPv6)
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
        for frame in [Self.dadNS, Self.mldFromUnspecified, Self.arpRequest, Self.routerSolicitation, udp(), dhcp()] {
            for n in 0...frame.count {
                let exact = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 1)
                exact.copyMemory(from: frame, byteCount: n)
                _ = AntiSpoof.check(exact, len: n, policy(Self.all))
                exact.deallocate()
            }
        }
    }

    func testEUI64OfTheLabMAC() {
        XCTAssertEqual(AntiSpoof.eui64(MACKey.from(Self.vmMAC.bytes)), 0x0000_00FF_FE00_0101)
    }
}

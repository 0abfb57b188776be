// IPv6 text (RFC 4291 2.2 in, RFC 5952 out), networks, and the EUI-64 and
// SLAAC addresses a MAC gives.
import VnicCore
import XCTest

final class IPv6Tests: XCTestCase {
    func testParsesAndPrintsCanonically() {
        let cases: [(String, String)] = [
            ("::", "::"), ("::1", "::1"), ("fd00::11", "fd00::11"), ("FD00:0:0:0:0:0:0:11", "fd00::11"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),          // the first of two equal runs (RFC 5952 4.2.3)
            ("2001:0db8:0000:0001:0000:0000:0000:0001", "2001:db8:0:1::1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),          // one zero group is not shortened (4.2.2)
            ("1::", "1::"), ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"), ("::ffff:10.0.0.1", "::ffff:a00:1"),
            ("fe80::ff:fe00:101", "fe80::ff:fe00:101"),
        ]
        for (text, canonical) in cases {
            let a = IPv6Address(text)
            XCTAssertEqual(a?.description, canonical, text)
            XCTAssertEqual(a.flatMap { IPv6Address($0.description) }, a, "\(text) round trip")
        }
        XCTAssertEqual(IPv6Address("2001:db8::1")?.hi, 0x2001_0DB8_0000_0000)
        XCTAssertEqual(IPv6Address("2001:db8::1")?.lo, 1)
        XCTAssertEqual(IPv6Address("2001:db8::1")?.bytes, [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])
        XCTAssertEqual(IPv6Address(bytes: IPv6Address("fd00::11")!.bytes), IPv6Address("fd00::11"))
    }

    func testRejectsMalformedText() {
        for bad in ["", ":", ":::", "1:::2", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
                    "::1:2:3:4:5:6:7:8", ":1::", "1::2:", "fe80::1%eth0", "[::1]", "10.0.0.1", "::10.0.0.256", "1.2.3.4::"] {
            XCTAssertNil(IPv6Address(bad), bad)
        }
        XCTAssertNil(IPv6Interface("fd00::1/129"))
        XCTAssertNil(IPv6Interface("fd00::1/064"))
        XCTAssertNil(IPv6CIDR("fd00::1/64"), "host bits set")
    }

    func testNetworksAndMasks() {
        let c = IPv6CIDR("fd00:77::/64")!
        XCTAssertTrue(c.contains(IPv6Address("fd00:77::abcd")!))
        XCTAssertFalse(c.contains(IPv6Address("fd00:78::1")!))
        XCTAssertEqual(c.last, IPv6Address("fd00:77::ffff:ffff:ffff:ffff"))
        XCTAssertEqual(IPv6CIDR("fd00::5")?.prefixLength, 128)
        XCTAssertEqual(IPv6CIDR("fd00::5")?.description, "fd00::5")
        XCTAssertTrue(IPv6CIDR("::/0")!.contains(IPv6Address("2001:db8::1")!))
        XCTAssertEqual(IPv6CIDR.mask(0).0, 0)
        XCTAssertEqual(IPv6CIDR.mask(64).1, 0)
        XCTAssertEqual(IPv6CIDR.mask(72).1, 0xFF00_0000_0000_0000)
        XCTAssertEqual(IPv6CIDR.mask(128).1, .max)
        XCTAssertEqual(IPv6CIDR.network(containing: IPv6Address("fd00:77::1:2")!, prefixLength: 112).description, "fd00:77::1:0/112")
    }

    func testMACGivesLinkLocalAndSLAACAddresses() {
        let mac = MACAddress("02:00:00:00:01:01")!
        XCTAssertEqual(IPv6Address.linkLocal(mac).description, "fe80::ff:fe00:101", "what Linux makes (captured)")
        XCTAssertEqual(IPv6Address.linkLocal(MACAddress("52:54:00:12:34:56")!).description, "fe80::5054:ff:fe12:3456")
        let prefix = IPv6Interface("fd00:77::/64")!
        XCTAssertTrue(prefix.isSLAACPrefix)
        XCTAssertEqual(prefix.address(for: mac).description, "fd00:77::ff:fe00:101")
        let fixed = IPv6Interface("fd00:77::11/64")!
        XCTAssertFalse(fixed.isSLAACPrefix)
        XCTAssertEqual(fixed.address(for: mac), fixed.address)
        XCTAssertTrue(IPv6Address("fe80::1")!.isLinkLocal)
        XCTAssertTrue(IPv6Address("ff02::1")!.isMulticast)
        for notHost in ["::", "::1", "::ffff:10.0.0.1", "ff02::1", "fe80::1", "::10.0.0.1"] {
            XCTAssertFalse(IPv6Address(notHost)!.isUnicastHost, notHost)
        }
        XCTAssertTrue(IPv6Address("2001:db8::1")!.isUnicastHost)
    }
}

final class RouterAdvertisementTests: XCTestCase {
    let appliance = MACAddress("02:a9:fe:a9:fe:01")!
    let vm = MACAddress("02:00:00:00:01:01")!

    /// The ICMPv6 checksum verifies (summing the pseudo-header and the message, checksum included, gives 0).
    func verifies(_ f: [UInt8]) -> Bool {
        let src = IPv6Address(bytes: f[22..<38])!, dst = IPv6Address(bytes: f[38..<54])!
        return RouterAdvertisement.checksum(src: src, dst: dst, next: 58, Array(f[54...])) == 0
    }

    func testSLAACAdvertisementWithALinkLocalGateway() throws {
        let prefixes = RouterAdvertisement.prefixes(of: [IPv6Interface("fd00:77::/64")!, IPv6Interface("fd00:78::11/64")!,
                                                         IPv6Interface("fd00:77::5/64")!], mode: .slaac)
        XCTAssertEqual(prefixes, [.init(network: IPv6CIDR("fd00:77::/64")!, autonomous: true),
                                  .init(network: IPv6CIDR("fd00:78::/64")!, autonomous: false)],
                       "once each; autonomous only where the VNIC has a SLAAC prefix")
        let f = RouterAdvertisement.frame(mode: .slaac, prefixes: prefixes, mtu: 1400, gateway: IPv6Address("fe80::1"),
                                          applianceMAC: appliance, dstMAC: vm, dstIP: IPv6Address.linkLocal(vm))
        XCTAssertEqual(Array(f[0..<14]), vm.bytes + appliance.bytes + [0x86, 0xDD])
        XCTAssertEqual(f[20], 58); XCTAssertEqual(f[21], 255, "hop limit 255")
        XCTAssertEqual(IPv6Address(bytes: f[22..<38]), IPv6Address("fe80::1"), "the gateway is the router")
        XCTAssertEqual(f[54], 134)
        XCTAssertEqual(f[59], 0, "no M or O flag")
        XCTAssertEqual(UInt16(f[60]) << 8 | UInt16(f[61]), 1800, "router lifetime: a default router")
        XCTAssertTrue(verifies(f))
        // Options after the 16-byte fixed part: MTU (no source link-layer address: the gateway's MAC is not known), 2 prefixes.
        XCTAssertEqual(Array(f[70..<78]), [5, 1, 0, 0, 0, 0, 0x05, 0x78])
        XCTAssertEqual(Array(f[78..<82]), [3, 4, 64, 0xC0])
        XCTAssertEqual(Array(f[94..<110]), IPv6Address("fd00:77::")!.bytes)
        XCTAssertEqual(Array(f[110..<114]), [3, 4, 64, 0x80])
        XCTAssertEqual(f.count, 142)
        XCTAssertEqual(f.count - 54, Int(f[18]) << 8 | Int(f[19]), "payload length")
    }

    func testManagedWithoutGatewayAndWithdrawnPrefix() {
        let f = RouterAdvertisement.frame(mode: .managed, prefixes: [.init(network: IPv6CIDR("fd00:77::/64")!, autonomous: false, withdrawn: true)],
                                          mtu: 1500, gateway: IPv6Address("fd00:77::1"), applianceMAC: appliance,
                                          dstMAC: MACAddress("33:33:00:00:00:01")!, dstIP: RouterAdvertisement.allNodes)
        XCTAssertEqual(IPv6Address(bytes: f[22..<38]), IPv6Address.linkLocal(appliance), "a global gateway cannot be an RA's source")
        XCTAssertEqual(f[59], 0xC0, "M and O")
        XCTAssertEqual(Array(f[60..<62]), [0, 0], "router lifetime 0: no default route")
        XCTAssertEqual(Array(f[70..<78]), [1, 1] + appliance.bytes, "the sender's link-layer address")
        XCTAssertEqual(Array(f[86..<98]), [3, 4, 64, 0x80, 0, 0, 0, 0, 0, 0, 0, 0], "withdrawn: lifetimes 0")
        XCTAssertTrue(verifies(f))
    }

    func testSolicitationIsRecognised() {
        // Captured: router solicitation from fe80::ff:fe00:101 (AntiSpoofTests).
        let rs: [UInt8] = [
            0x33, 0x33, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00,
            0x00, 0x10, 0x3a, 0xff, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x00,
            0x01, 0x01, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
            0x85, 0x00, 0x79, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01]
        XCTAssertEqual(RouterAdvertisement.solicitation(rs), IPv6Address("fe80::ff:fe00:101"))
        XCTAssertTrue(verifies(rs), "the checksum routine agrees with the kernel's")
        var hop = rs; hop[21] = 64
        XCTAssertNil(RouterAdvertisement.solicitation(hop), "hop limit below 255: not from the link")
        XCTAssertNil(RouterAdvertisement.solicitation(Array(rs.prefix(60))))
    }
}

final class DHCPv6MessageTests: XCTestCase {
    func testRoundTripAndWhatAClientSends() throws {
        var m = DHCPv6Message(kind: .reply, transactionID: 0xABCDEF)
        m.clientID = [0, 1, 0, 1, 1, 2, 3, 4, 2, 0, 0, 0, 1, 1]
        m.serverID = DHCPv6Message.duid(MACAddress("02:a9:fe:a9:fe:01")!)
        m.iaNA = [DHCPv6Message.IANA(iaid: 7, t1: 1800, t2: 2880, addresses: [(IPv6Address("fd00:77::11")!, 3600, 3600)])]
        m.status = (.success, "")
        let bytes = m.encoded()
        XCTAssertEqual(Array(bytes[0..<4]), [7, 0xAB, 0xCD, 0xEF])
        XCTAssertEqual(DHCPv6Message.parse(bytes), m)
        XCTAssertEqual(m.serverID, [0, 3, 0, 1, 0x02, 0xa9, 0xfe, 0xa9, 0xfe, 0x01])
        // A SOLICIT as dhcpcd sends it: client id, an IA_NA without addresses, elapsed time, option request.
        let solicit: [UInt8] = [1, 0x12, 0x34, 0x56,
                                0, 1, 0, 4, 0, 3, 0, 1,                      // client id (truncated DUID, as opaque bytes)
                                0, 3, 0, 12, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0,   // IA_NA iaid 9
                                0, 8, 0, 2, 0, 0,                            // elapsed time
                                0, 6, 0, 2, 0, 23]                           // option request: DNS
        let s = try XCTUnwrap(DHCPv6Message.parse(solicit))
        XCTAssertEqual(s.kind, .solicit)
        XCTAssertEqual(s.transactionID, 0x123456)
        XCTAssertEqual(s.clientID, [0, 3, 0, 1])
        XCTAssertEqual(s.iaNA.map(\.iaid), [9])
        XCTAssertTrue(s.iaNA[0].addresses.isEmpty)
    }

    func testMalformedIsNil() {
        XCTAssertNil(DHCPv6Message.parse([1, 0, 0]), "no room for the header")
        XCTAssertNil(DHCPv6Message.parse([99, 0, 0, 0]), "unknown type")
        XCTAssertNil(DHCPv6Message.parse([1, 0, 0, 0, 0, 1, 0, 9, 1]), "an option past the end")
        XCTAssertNil(DHCPv6Message.parse([1, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 1]), "an IA_NA shorter than 12")
        XCTAssertNil(DHCPv6Message.parse([1, 0, 0, 0, 0, 3, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0]),
                     "an IA address shorter than 24")
    }

    func testServerFrameIsAValidDatagram() throws {
        var m = DHCPv6Message(kind: .advertise, transactionID: 1)
        m.clientID = [1]
        let vm = MACAddress("02:00:00:00:01:01")!, appliance = MACAddress("02:a9:fe:a9:fe:01")!
        let f = DHCPv6Message.serverFrame(m, applianceMAC: appliance, dstMAC: vm, dstIP: IPv6Address.linkLocal(vm))
        XCTAssertEqual(Array(f[0..<12]), vm.bytes + appliance.bytes)
        XCTAssertEqual(f[20], 17)
        XCTAssertEqual(Array(f[54..<58]), [0x02, 0x23, 0x02, 0x22], "547 -> 546")
        let udp = Array(f[54...])
        XCTAssertEqual(RouterAdvertisement.checksum(src: IPv6Address(bytes: f[22..<38])!, dst: IPv6Address(bytes: f[38..<54])!, next: 17, udp), 0,
                       "the UDP checksum verifies")
        // What a client sends back is recognised as one.
        var request = f
        request.replaceSubrange(54..<58, with: [0x02, 0x22, 0x02, 0x23])
        let d = try XCTUnwrap(DHCPv6Message.clientDatagram(request))
        XCTAssertEqual(d.sourcePort, 546)
        XCTAssertEqual(DHCPv6Message.parse(d.payload)?.clientID, [1])
        request[20] = 0   // behind a hop-by-hop header: not looked at
        XCTAssertNil(DHCPv6Message.clientDatagram(request))
    }
}

import XCTest
@testable import VnicCore

final class IPv4CIDRTests: XCTestCase {
    func testParsing() {
        XCTAssertEqual(IPv4CIDR("10.0.0.0/24")?.description, "10.0.0.0/24")
        XCTAssertEqual(IPv4CIDR("10.0.0.5")?.prefixLength, 32, "a bare address is a /32")
        XCTAssertEqual(IPv4CIDR("10.0.0.5")?.description, "10.0.0.5", "a /32 prints bare")
        XCTAssertEqual(IPv4CIDR("10.0.0.5/32")?.description, "10.0.0.5")
        XCTAssertEqual(IPv4CIDR("0.0.0.0/0")?.description, "0.0.0.0/0")
        for bad in ["10.0.0.1/24", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08", "10.0.0/8", "", "/24",
                    "10.0.0.0/24/1", "10.0.0.0/ 24", "1.0.0.0/0"] {
            XCTAssertNil(IPv4CIDR(bad), bad)
        }
        XCTAssertNil(IPv4CIDR(network: IPv4Address("10.0.0.1")!, prefixLength: 31))
        XCTAssertNotNil(IPv4CIDR(network: IPv4Address("10.0.0.2")!, prefixLength: 31))
    }

    func testMembershipAndBounds() {
        let net = IPv4CIDR("10.0.1.0/24")!
        XCTAssertTrue(net.contains(IPv4Address("10.0.1.0")!))
        XCTAssertTrue(net.contains(IPv4Address("10.0.1.255")!))
        XCTAssertFalse(net.contains(IPv4Address("10.0.2.0")!))
        XCTAssertFalse(net.contains(IPv4Address("10.0.0.255")!))
        XCTAssertEqual(net.last, IPv4Address("10.0.1.255"))
        let all = IPv4CIDR("0.0.0.0/0")!
        XCTAssertTrue(all.contains(IPv4Address("255.255.255.255")!))
        XCTAssertEqual(all.last, IPv4Address("255.255.255.255"))
        let one = IPv4CIDR("10.0.0.7")!
        XCTAssertTrue(one.contains(IPv4Address("10.0.0.7")!))
        XCTAssertFalse(one.contains(IPv4Address("10.0.0.6")!))
        XCTAssertEqual(IPv4CIDR.mask(0), 0)
        XCTAssertEqual(IPv4CIDR.mask(1), 0x8000_0000)
        XCTAssertEqual(IPv4CIDR.mask(32), 0xFFFF_FFFF)
        XCTAssertEqual(IPv4CIDR.network(containing: IPv4Address("10.0.1.77")!, prefixLength: 24), net)
        XCTAssertLessThan(IPv4CIDR("10.0.0.0/8")!, IPv4CIDR("10.0.0.0/16")!)
    }
}

final class PortRangeTests: XCTestCase {
    func testParsingAndEdges() {
        XCTAssertEqual(PortRange("22")?.description, "22")
        XCTAssertEqual(PortRange("8000-8080")?.description, "8000-8080")
        XCTAssertEqual(PortRange("1-65535")?.upper, 65535)
        XCTAssertEqual(PortRange("80-80")?.description, "80")
        for bad in ["0", "65536", "8080-8000", "-1", "1-", "a", "", "022", "1-2-3", " 22", "+22"] {
            XCTAssertNil(PortRange(bad), bad)
        }
        let r = PortRange(8000, 8080)!
        XCTAssertTrue(r.contains(8000) && r.contains(8080))
        XCTAssertFalse(r.contains(7999) || r.contains(8081))
        XCTAssertTrue(r.overlaps(PortRange(8080, 9000)!))
        XCTAssertFalse(r.overlaps(PortRange(8081, 9000)!))
        XCTAssertNil(PortRange(0, 1))
    }
}

final class LinkValueTests: XCTestCase {
    func testProtection() {
        var bad = ""
        XCTAssertEqual(Protection.parse("mac-nospoof", bad: &bad), [.macNospoof])
        XCTAssertEqual(Protection.parse("restricted,ip-nospoof", bad: &bad), [.ipNospoof, .restricted])
        XCTAssertEqual(Protection.parse("none", bad: &bad), [])
        XCTAssertNil(Protection.parse("mac-nospoof,bogus", bad: &bad))
        XCTAssertEqual(bad, "bogus")
        XCTAssertNil(Protection.parse("", bad: &bad))
        XCTAssertNil(Protection.parse("ip-nospoof,ip-nospoof", bad: &bad))
        XCTAssertEqual(bad, "ip-nospoof")
        XCTAssertEqual(Protection.all.description, "mac-nospoof,ip-nospoof,dhcp-nospoof,restricted", "dladm's order")
        XCTAssertEqual(Protection().description, "none")
        XCTAssertEqual(Protection.default, [.macNospoof])
        XCTAssertEqual(Protection.all.rawValue, 0x0F, "stored bits")
    }

    func testEnumsParseTheirOwnNamesOnly() {
        XCTAssertEqual(Priority("medium"), .medium)
        XCTAssertNil(Priority("Medium"))
        XCTAssertEqual(Priority.default, .high)
        XCTAssertEqual(Transport("udp"), .udp)
        XCTAssertEqual(Transport.both.rawValue, Transport.tcp.rawValue | Transport.udp.rawValue)
        XCTAssertTrue(Transport.both.needsSerialProcessing)
        XCTAssertFalse(Transport.udp.needsSerialProcessing)
        XCTAssertEqual(AdminState("down"), .down)
        XCTAssertNil(AdminState("off"))
        XCTAssertEqual(Routing("on"), .on)
        XCTAssertNil(Routing("1"))
        for p in Priority.allCases { XCTAssertEqual(Priority(p.description), p) }
        for t in Transport.allCases { XCTAssertEqual(Transport(t.description), t) }
    }
}

// The DHCP codec: what vnic's server reads from clients and writes back.
import VnicCore
import XCTest

final class DHCPMessageTests: XCTestCase {
    let mac = MACAddress("02:00:00:00:01:01")!

    /// A REQUEST as a client in SELECTING state sends it (RFC 2131 4.3.2).
    func request() -> DHCPMessage {
        var m = DHCPMessage()
        m.op = 1; m.xid = 0x1234_5678; m.flags = 0x8000; m.chaddr = mac
        m.options = [(53, [3]), DHCPMessage.addressOption(50, IPv4Address("10.77.0.22")!),
                     DHCPMessage.addressOption(54, IPv4Address("10.77.0.1")!), (55, [1, 3, 26, 51])]
        return m
    }

    func testRoundTripAndAccessors() throws {
        let bytes = request().encoded()
        XCTAssertGreaterThanOrEqual(bytes.count, 300, "BOOTP minimum")
        XCTAssertEqual(Array(bytes[236..<240]), [0x63, 0x82, 0x53, 0x63], "magic cookie")
        let m = try XCTUnwrap(DHCPMessage.parse(bytes))
        XCTAssertEqual(m, request())
        XCTAssertEqual(m.kind, .request)
        XCTAssertEqual(m.requestedAddress, IPv4Address("10.77.0.22"))
        XCTAssertEqual(m.serverIdentifier, IPv4Address("10.77.0.1"))
        XCTAssertTrue(m.broadcast)
        XCTAssertEqual(m.chaddr, mac)
    }

    func testPadOptionsAreSkipped() throws {
        var bytes = Array(request().encoded().prefix(240)) + [0, 0, 53, 1, 1, 0, 255]
        XCTAssertEqual(DHCPMessage.parse(bytes)?.kind, .discover)
        bytes[242] = 54   // no message type left: not a DHCP message
        XCTAssertNil(DHCPMessage.parse(bytes))
    }

    func testEveryTruncationAndCorruptionIsRejected() {
        let good = request().encoded()
        let end = good.lastIndex(of: 255)!
        for n in 0...end { XCTAssertNil(DHCPMessage.parse(good.prefix(n)), "cut to \(n) bytes") }
        var cookie = good; cookie[237] = 0
        XCTAssertNil(DHCPMessage.parse(cookie), "bad magic cookie")
        var hlen = good; hlen[2] = 16
        XCTAssertNil(DHCPMessage.parse(hlen), "not a 6-byte hardware address")
        var overrun = good; overrun[241] = 250
        XCTAssertNil(DHCPMessage.parse(overrun), "an option longer than the datagram")
        var noEnd = Array(good.prefix(end)); noEnd += [0, 0]
        XCTAssertNil(DHCPMessage.parse(noEnd), "no end option")
    }

    func testParsesASlice() {
        let frame = [UInt8](repeating: 0xAA, count: 42) + request().encoded()
        XCTAssertEqual(DHCPMessage.parse(frame[42...])?.xid, 0x1234_5678, "a UDP payload inside a frame")
    }
}

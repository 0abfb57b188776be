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

    func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    /// RFC 2104's HMAC-MD5 vectors and RFC 4231's HMAC-SHA256 (test cases 1 and 2).
    func testHMACVectors() {
        typealias M = MessageAuthentication
        XCTAssertEqual(hex(M.hmacMD5(key: [UInt8](repeating: 0x0b, count: 16), Array("Hi There".utf8))),
                       "9294727a3638bb1c13f48ef8158bfc9d")
        XCTAssertEqual(hex(M.hmacMD5(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))),
                       "750c783e6ab0b503eaa86e310a5db738")
        XCTAssertEqual(hex(M.hmacMD5(key: [UInt8](repeating: 0xAA, count: 80),
                                     Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))),
                       "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd")
        XCTAssertEqual(hex(M.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8))),
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        XCTAssertEqual(hex(M.hmacSHA256(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        XCTAssertTrue(M.equal([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(M.equal([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(M.equal([1, 2], [1, 2, 3]))
        XCTAssertEqual(M.randomKey(32).count, 32)
        XCTAssertNotEqual(M.randomKey(32), M.randomKey(32))
    }

    /// A signed FORCERENEW: option 90 last, protocol 3 / HMAC-MD5 / type 2, and
    /// its MAC is HMAC-MD5 of the datagram with the MAC zeroed (as a client checks it).
    func testSignedForceRenew() throws {
        var m = DHCPMessage()
        m.xid = 7; m.chaddr = mac; m.ciaddr = IPv4Address("10.77.0.12")!
        m.options = [(53, [9]), DHCPMessage.addressOption(54, IPv4Address("10.77.0.1")!)]
        let key = Array(0..<16).map(UInt8.init)
        let bytes = m.encoded(signedWith: key, replay: 0x0102_0304_0506_0708)
        let parsed = try XCTUnwrap(DHCPMessage.parse(bytes))
        XCTAssertEqual(parsed.kind, .forceRenew)
        let auth = try XCTUnwrap(parsed.option(90))
        XCTAssertEqual(auth.count, 3 + 8 + 1 + 16)
        XCTAssertEqual(Array(auth.prefix(12)), [3, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 2])
        let at = try XCTUnwrap((0..<(bytes.count - 28)).first { Array(bytes[$0..<($0 + 2)]) == [90, 28] })
        var zeroed = bytes
        zeroed.replaceSubrange((at + 14)..<(at + 30), with: [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(Array(auth.suffix(16)), MessageAuthentication.hmacMD5(key: key, zeroed))
        XCTAssertEqual(DHCPMessage.reconfigureKeyOption(key, replay: 1).value.count, 28, "the ACK's key option")
    }
}

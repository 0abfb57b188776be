import XCTest
@testable import VnicCore

final class MACAddressTests: XCTestCase {
    func testParsesColonAndDashForms() {
        XCTAssertEqual(MACAddress("02:00:00:00:01:0a")?.rawValue, 0x0200_0000_010A)
        XCTAssertEqual(MACAddress("02-00-00-00-01-0A")?.rawValue, 0x0200_0000_010A)
        XCTAssertEqual(MACAddress("FF:ff:Ff:fF:ff:FF")?.rawValue, 0xFFFF_FFFF_FFFF)
        // One hex digit per octet (Solaris prints MACs that way: 2:8:20:c2:39:38).
        XCTAssertEqual(MACAddress("2:8:20:c2:39:38")?.rawValue, 0x0208_20C2_3938)
        XCTAssertEqual(MACAddress("0:0:0:0:0:0")?.rawValue, 0)
    }

    func testRejectsMalformedText() {
        for bad in ["", ":", "02:00:00:00:01", "02:00:00:00:01:01:01", "02:00:00:00:01:", ":02:00:00:00:01",
                    "02::00:00:00:01", "002:00:00:00:00:01", "02:00:00:00:00:0g", "+2:00:00:00:00:01",
                    "-2:00:00:00:00:01", "02:00:00:00:00:+1", "0x:00:00:00:00:01", "02:00-00:00:00:01",
                    " 02:00:00:00:00:01", "02:00:00:00:00:01 ", "02 00 00 00 00 01", "020000000001",
                    "02:00:00:00:00:０１", "zz", "random"] {
            XCTAssertNil(MACAddress(bad), "'\(bad)' parsed")
        }
    }

    func testDescriptionIsLowercaseTwoDigitsAndRoundTrips() {
        let m = MACAddress(rawValue: 0x0A0B_0C0D_0E0F)
        XCTAssertEqual(m.description, "0a:0b:0c:0d:0e:0f")
        XCTAssertEqual(MACAddress(m.description), m)
        XCTAssertEqual(MACAddress("2:8:20:C2:39:38")?.description, "02:08:20:c2:39:38")
    }

    func testBytesAreInWireOrder() {
        let m = MACAddress(bytes: (0x02, 0x11, 0x22, 0x33, 0x44, 0x55))
        XCTAssertEqual(m.bytes, [0x02, 0x11, 0x22, 0x33, 0x44, 0x55])
        XCTAssertEqual(m.rawValue, 0x0211_2233_4455)
    }

    func testRawValueKeepsOnly48Bits() {
        XCTAssertEqual(MACAddress(rawValue: 0xFFFF_0200_0000_0001).rawValue, 0x0200_0000_0001)
    }

    func testClassification() {
        let unicast = MACAddress("02:00:00:00:01:01")!
        XCTAssertTrue(unicast.isAssignableUnicast)
        XCTAssertFalse(unicast.isMulticast)
        let multicast = MACAddress("01:00:5e:00:00:01")!
        XCTAssertTrue(multicast.isMulticast)
        XCTAssertFalse(multicast.isAssignableUnicast)
        let broadcast = MACAddress("ff:ff:ff:ff:ff:ff")!
        XCTAssertTrue(broadcast.isBroadcast && broadcast.isMulticast && !broadcast.isAssignableUnicast)
        let zero = MACAddress(rawValue: 0)
        XCTAssertTrue(zero.isZero)
        XCTAssertFalse(zero.isAssignableUnicast)
        // The group bit is the low bit of the first octet, not of the last.
        XCTAssertFalse(MACAddress("02:00:00:00:00:01")!.isMulticast)
        XCTAssertTrue(MACAddress("03:00:00:00:00:00")!.isMulticast)
    }

    func testRandomIsLocallyAdministeredUnicast() {
        var g = SystemRandomNumberGenerator()
        var seen = Set<MACAddress>()
        for _ in 0..<1000 {
            let m = MACAddress.random(using: &g)
            XCTAssertTrue(m.isAssignableUnicast, "\(m)")
            XCTAssertEqual(m.bytes[0] & 0x03, 0x02, "\(m) is not locally administered unicast")
            seen.insert(m)
        }
        XCTAssertGreaterThan(seen.count, 990)
    }

    func testOrdering() {
        XCTAssertLessThan(MACAddress("02:00:00:00:00:01")!, MACAddress("02:00:00:00:00:02")!)
        XCTAssertLessThan(MACAddress("01:ff:ff:ff:ff:ff")!, MACAddress("02:00:00:00:00:00")!)
    }
}

import XCTest
@testable import VnicCore

final class IPv4AddressTests: XCTestCase {
    func testParsesDottedQuadInHostOrder() {
        XCTAssertEqual(IPv4Address("10.0.0.1")?.rawValue, 0x0A00_0001)
        XCTAssertEqual(IPv4Address("0.0.0.0")?.rawValue, 0)
        XCTAssertEqual(IPv4Address("255.255.255.255")?.rawValue, 0xFFFF_FFFF)
        XCTAssertEqual(IPv4Address("192.168.100.200")?.rawValue, 0xC0A8_64C8)
    }

    func testRejectsMalformedText() {
        for bad in ["", ".", "...", "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.", ".1.2.3", "256.0.0.1", "1.2.3.256",
                    "01.2.3.4", "1.2.3.04", "00.0.0.0", "1.2.3.0004", "+1.2.3.4", "1.2.3.-4", "1.2.3.4 ", " 1.2.3.4",
                    "1.2.3.4/24", "a.b.c.d", "0x1.2.3.4", "1.2.3.٤", "１.2.3.4", "1,2,3,4", "1000.2.3.4", "10"] {
            XCTAssertNil(IPv4Address(bad), "'\(bad)' parsed")
        }
    }

    func testDescriptionRoundTrips() {
        for text in ["0.0.0.0", "10.77.0.11", "255.255.255.255", "1.2.3.4", "172.16.254.1"] {
            XCTAssertEqual(IPv4Address(text)?.description, text)
        }
    }

    func testOrderingIsNumeric() {
        XCTAssertLessThan(IPv4Address("9.255.255.255")!, IPv4Address("10.0.0.0")!)
        XCTAssertLessThan(IPv4Address("10.0.0.2")!, IPv4Address("10.0.0.10")!)
    }
}

final class IPv4InterfaceTests: XCTestCase {
    func testParsesAddressAndPrefix() {
        let i = IPv4Interface("10.77.0.11/24")
        XCTAssertEqual(i?.address, IPv4Address("10.77.0.11"))
        XCTAssertEqual(i?.prefixLength, 24)
        XCTAssertEqual(IPv4Interface("10.0.0.1/0")?.prefixLength, 0)
        XCTAssertEqual(IPv4Interface("10.0.0.1/32")?.prefixLength, 32)
    }

    func testBareAddressIsSlash32() {
        XCTAssertEqual(IPv4Interface("10.0.0.1")?.prefixLength, 32)
    }

    func testRejectsMalformedText() {
        for bad in ["", "/", "/24", "10.0.0.1/", "10.0.0.1/33", "10.0.0.1/255", "10.0.0.1/256", "10.0.0.1/-1",
                    "10.0.0.1/+8", "10.0.0.1/ 8", "10.0.0.1/8 ", "10.0.0.1/8/8", "10.0.0.1//8", "10.0.0.1/x",
                    "10.0.0.1/0x8", "10.0.0/24", "10.0.0.256/24", "10.0.0.1/２４", "10.0.0.1\\24"] {
            XCTAssertNil(IPv4Interface(bad), "'\(bad)' parsed")
        }
    }

    func testDescriptionRoundTrips() {
        for text in ["10.77.0.11/24", "0.0.0.0/0", "192.168.1.1/32"] {
            XCTAssertEqual(IPv4Interface(text)?.description, text)
        }
        XCTAssertEqual(IPv4Interface("10.0.0.1")?.description, "10.0.0.1/32")
    }
}

final class VnicErrorTests: XCTestCase {
    func testExitCodes() {
        XCTAssertEqual(VnicError("x").exitCode, 1)
        XCTAssertEqual(VnicError.usage("x").exitCode, 2)
        XCTAssertEqual(VnicError.usage("bad mac").description, "bad mac")
    }
}

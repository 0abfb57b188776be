import Foundation
import XCTest
@testable import VnicConfig
import VnicCore

final class VNICRecordTests: XCTestCase {
    func valid() -> VNICRecord {
        VNICRecord(name: "vm1", link: "uplink0", port: "vm1p", mac: MACAddress("02:00:00:00:01:01")!,
                   ips: [IPv4Interface("10.77.0.11/24")!], gateway: IPv4Address("10.77.0.1"))
    }

    func check(_ change: (inout VNICRecord) -> Void, fails fragments: String..., file: StaticString = #filePath, line: UInt = #line) {
        var r = valid()
        change(&r)
        do {
            try r.validate()
            XCTFail("\(r) validated", file: file, line: line)
        } catch {
            XCTAssertEqual(error.exitCode, 2, file: file, line: line)
            for f in fragments { XCTAssertTrue(error.message.contains(f), "'\(error.message)' lacks '\(f)'", file: file, line: line) }
        }
    }

    func testValidRecordPasses() throws {
        try valid().validate()
        var r = valid()
        r.port = nil; r.ips = []; r.gateway = nil
        try r.validate()
        XCTAssertEqual(r.mtu, 1500)
    }

    func testNames() throws {
        for ok in ["a", "vm1", "A.b-c_d", String(repeating: "x", count: 31), "z9"] {
            var r = valid(); r.name = ok
            XCTAssertNoThrow(try r.validate(), ok)
        }
        for bad in ["", "1vm", "_vm", ".vm", "-vm", String(repeating: "x", count: 32), "vm 1", "vm/1", "vm:1",
                    "vm1\n", "vé", "vm,1", "vm=1"] {
            check({ $0.name = bad }, fails: "name:")
        }
    }

    func testInterfaceNames() {
        for ok in ["eth0", "a", "vm1p", String(repeating: "i", count: 15), "veth-1.2_x", "..."] {
            var r = valid(); r.link = ok; r.port = ok + "p"
            if ok.utf8.count == 15 { r.port = "p" }
            XCTAssertNoThrow(try r.validate(), ok)
        }
        for bad in ["", ".", "..", "a/b", "a b", "a\tb", "a:b", String(repeating: "i", count: 16), "ééééééééx"] {
            check({ $0.link = bad }, fails: "link:")
            check({ $0.port = bad }, fails: "port:")
        }
        check({ $0.port = $0.link }, fails: "port:", "link")
    }

    func testMACMustBeAssignableUnicast() {
        check({ $0.mac = MACAddress("01:00:5e:00:00:01")! }, fails: "mac:", "multicast")
        check({ $0.mac = MACAddress("ff:ff:ff:ff:ff:ff")! }, fails: "mac:")
        check({ $0.mac = MACAddress(rawValue: 0) }, fails: "mac:", "00:00:00:00:00:00")
    }

    func testAddresses() {
        check({ $0.ips = [IPv4Interface("0.0.0.1/8")!] }, fails: "ip:", "unicast")
        check({ $0.ips = [IPv4Interface("127.0.0.1/8")!] }, fails: "ip:")
        check({ $0.ips = [IPv4Interface("224.0.0.1/24")!] }, fails: "ip:")
        check({ $0.ips = [IPv4Interface("255.255.255.255/32")!] }, fails: "ip:")
        check({ $0.ips = [IPv4Interface("10.0.0.1/0")!] }, fails: "ip:", "prefix length 0")
        check({ $0.ips = [IPv4Interface("10.77.0.0/24")!] }, fails: "ip:", "network address")
        check({ $0.ips = [IPv4Interface("10.77.0.255/24")!] }, fails: "ip:", "broadcast address")
        check({ $0.ips = [IPv4Interface("10.0.0.1/24")!, IPv4Interface("10.0.0.1/16")!] }, fails: "ip:", "twice")
        check({ r in r.ips = (1...65).map { IPv4Interface(address: IPv4Address(rawValue: 0x0A00_0000 + UInt32($0)), prefixLength: 32) } },
              fails: "ip:", "at most 64")
        var r = valid()
        r.ips = [IPv4Interface("10.0.0.0/31")!, IPv4Interface("10.0.0.255/32")!, IPv4Interface("192.168.0.1/30")!]
        XCTAssertNoThrow(try r.validate(), "/31 and /32 have no network or broadcast address")
    }

    func testGatewayAndMTU() {
        check({ $0.gateway = IPv4Address("0.0.0.0") }, fails: "gateway:")
        check({ $0.gateway = IPv4Address("239.1.1.1") }, fails: "gateway:")
        check({ $0.mtu = 67 }, fails: "mtu:", "68-9216")
        check({ $0.mtu = 9217 }, fails: "mtu:")
        var r = valid()
        r.mtu = 68; XCTAssertNoThrow(try r.validate())
        r.mtu = 9216; XCTAssertNoThrow(try r.validate())
    }
}

final class VNICParameterTests: XCTestCase {
    func testTagsAreUniqueAndStable() {
        XCTAssertEqual(VNICParameter.allCases.map(\.tag), [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 24, 8])
        XCTAssertEqual(Set(VNICParameter.allCases.map(\.tag)).count, VNICParameter.allCases.count)
        XCTAssertEqual(Set(VNICParameter.allCases.map(\.rawValue)).count, VNICParameter.allCases.count)
        for p in VNICParameter.allCases { XCTAssertEqual(VNICParameter(tag: p.tag), p) }
        XCTAssertNil(VNICParameter(tag: 0))
        XCTAssertNil(VNICParameter(tag: 999))
    }

    func testParseAndText() throws {
        var r = VNICRecord(name: "x", link: "l", mac: MACAddress(rawValue: 0))
        try VNICParameter.mac.parse("02:00:00:00:01:01", into: &r)
        try VNICParameter.ip.parse("10.0.0.1/24,10.0.1.1/16", into: &r)
        try VNICParameter.gateway.parse("10.0.0.254", into: &r)
        try VNICParameter.mtu.parse("9000", into: &r)
        try VNICParameter.port.parse("vm1p", into: &r)
        XCTAssertEqual(VNICParameter.mac.text(of: r), "02:00:00:00:01:01")
        XCTAssertEqual(VNICParameter.ip.text(of: r), "10.0.0.1/24,10.0.1.1/16")
        XCTAssertEqual(VNICParameter.gateway.text(of: r), "10.0.0.254")
        XCTAssertEqual(VNICParameter.mtu.text(of: r), "9000")
        XCTAssertEqual(VNICParameter.port.text(of: r), "vm1p")
        r.port = nil; r.gateway = nil; r.ips = []
        XCTAssertNil(VNICParameter.port.text(of: r))
        XCTAssertNil(VNICParameter.gateway.text(of: r))
        XCTAssertNil(VNICParameter.ip.text(of: r))
    }

    func testRandomMAC() throws {
        var r = VNICRecord(name: "x", link: "l", mac: MACAddress(rawValue: 0))
        try VNICParameter.mac.parse("random", into: &r)
        XCTAssertTrue(r.mac.isAssignableUnicast)
        XCTAssertEqual(r.mac.bytes[0] & 0x02, 0x02)
    }

    func testParseErrorsNameTheValue() {
        var r = VNICRecord(name: "x", link: "l", mac: MACAddress(rawValue: 0))
        assertVnicError(try VNICParameter.mac.parse("zz", into: &r), exitCode: 2,
                        "mac: 'zz' is not a MAC address (e.g. 02:00:00:00:01:01 or random)")
        assertVnicError(try VNICParameter.ip.parse("10.0.0.1", into: &r), exitCode: 2, "'10.0.0.1'", "prefix length")
        assertVnicError(try VNICParameter.ip.parse("10.0.0.1/24,", into: &r), exitCode: 2, "ip: ''")
        assertVnicError(try VNICParameter.ip.parse("10.0.0.1/33", into: &r), exitCode: 2, "10.0.0.1/33")
        assertVnicError(try VNICParameter.gateway.parse("10.0.0.1/24", into: &r), exitCode: 2, "gateway:")
        assertVnicError(try VNICParameter.mtu.parse("+9000", into: &r), exitCode: 2, "mtu: '+9000'")
        assertVnicError(try VNICParameter.mtu.parse("99999999999", into: &r), exitCode: 2, "mtu:")
        assertVnicError(try VNICParameter.index.parse("3", into: &r), exitCode: 2, "index")
    }
}

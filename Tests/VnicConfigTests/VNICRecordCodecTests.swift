import XCTest
@testable import VnicConfig
import VnicCore

final class VNICRecordCodecTests: XCTestCase {
    let full = VNICRecord(name: "vm1", link: "uplink0", port: "vm1p", mac: MACAddress("02:00:00:00:01:01")!,
                          ips: [IPv4Interface("10.77.0.11/24")!, IPv4Interface("192.168.1.5/16")!],
                          gateway: IPv4Address("10.77.0.1"), mtu: 9000, index: 7)

    func testRoundTripsEveryField() throws {
        XCTAssertEqual(try VNICRecordCodec.decode(VNICRecordCodec.encode(full)), full)
        let minimal = VNICRecord(name: "a", link: "l", mac: MACAddress("02:00:00:00:00:01")!, index: 1)
        XCTAssertEqual(try VNICRecordCodec.decode(VNICRecordCodec.encode(minimal)), minimal)
    }

    /// The record's fields in order: (tag, value bytes).
    func fields(_ bytes: [UInt8]) -> [(UInt16, [UInt8])] {
        var out: [(UInt16, [UInt8])] = []
        var i = 2
        while i + 4 <= bytes.count {
            let tag = UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8, len = Int(bytes[i + 2]) | Int(bytes[i + 3]) << 8
            out.append((tag, Array(bytes[i + 4..<i + 4 + len])))
            i += 4 + len
        }
        return out
    }

    func testLayoutIsVersionThenHotPrefixThenTheRest() {
        let r = VNICRecord(name: "ab", link: "l", mac: MACAddress("02:11:22:33:44:55")!,
                           ips: [IPv4Interface("10.0.0.1/24")!], mtu: 1500, index: 0x0102)
        let bytes = VNICRecordCodec.encode(r)
        XCTAssertEqual(Array(bytes[0..<2]), [3, 0], "format version u16 LE")
        XCTAssertEqual(Array(bytes[2..<10]), [8, 0, 4, 0, 0x02, 0x01, 0, 0], "index first: tag 8, length 4, u32 LE")
        XCTAssertEqual(Array(bytes[10..<20]), [4, 0, 6, 0, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55], "mac in wire order")
        let f = fields(bytes)
        XCTAssertEqual(f.map(\.0), [8, 4, 17, 15, 14, 18, 23, 22, 1, 2, 5, 7, 10, 11, 13, 19, 20, 24],
                       "hot prefix (index mac protection priority maxbw allowed-ips and its IPv6 part, ra-guard), then table order; no port, gateway, tcp-ports, tcp-buffer, cpus")
        XCTAssertEqual(f[2].1, [1], "protection: mac-nospoof")
        XCTAssertEqual(f[3].1, [2], "priority: high")
        XCTAssertEqual(f[4].1, [0, 0, 0, 0, 0, 0, 0, 0], "maxbw: 0 = unlimited")
        XCTAssertEqual(f[5].1, [], "allowed-ips: present and empty")
        XCTAssertEqual(f[6].1, [], "allowed-ips (IPv6): present and empty")
        XCTAssertEqual(f[7].1, [0], "ra-guard: on")
        XCTAssertEqual(f[8].1, [0x61, 0x62], "name UTF-8")
        XCTAssertEqual(f[10].1, [10, 0, 0, 1, 24], "ip: address in network order, prefix")
        XCTAssertEqual(f[11].1, [0xDC, 0x05, 0, 0], "mtu u32 LE")
        XCTAssertEqual(f[12].1, [3], "transport both")
    }

    func testNewFieldsAndPoliciesEncoding() throws {
        var r = full
        r.maxbw = 1_500_000_000
        r.allowedIPs = [IPv4CIDR("10.77.0.0/24")!, IPv4CIDR("192.168.1.5")!]
        r.cpus = [0, 2, 3]
        r.tcpPorts = [PortRange(22, 22)!, PortRange(8000, 8080)!]
        r.tcpBuffer = 262_144
        r.policy[.mtu] = .any
        r.policy[.ip] = .values([PolicyItem(lower: 0x0A00_0014, upper: 0x0A00_001D, form: .range)])
        let f = fields(VNICRecordCodec.encode(r))
        func value(_ tag: UInt16) -> [UInt8]? { f.first { $0.0 == tag }?.1 }
        XCTAssertEqual(value(14), [0x00, 0x2F, 0x68, 0x59, 0, 0, 0, 0], "maxbw u64 LE")
        XCTAssertEqual(value(18), [10, 77, 0, 0, 24, 192, 168, 1, 5, 32])
        XCTAssertEqual(value(16), [0, 0, 2, 0, 3, 0])
        XCTAssertEqual(value(9), [22, 0, 22, 0, 0x40, 0x1F, 0x90, 0x1F])
        XCTAssertEqual(value(12), [0, 0, 4, 0])
        XCTAssertEqual(value(0x1000 + 7), [1], "policy mtu: any")
        XCTAssertEqual(value(0x1000 + 5), [2, 1, 0, 0x14, 0, 0, 0x0A, 0, 0, 0, 0, 0x1D, 0, 0, 0x0A, 0, 0, 0, 0])
        XCTAssertNil(value(0x1000 + 4), "deny is absent")
        XCTAssertEqual(f.suffix(2).map(\.0), [0x1005, 0x1007], "policies last")
        XCTAssertEqual(try VNICRecordCodec.decode(VNICRecordCodec.encode(r)), r)
    }

    func testFormat1RecordsDecodeWithDefaults() throws {
        // A record as the v1 writer made it: format 1, tags 1-8 in table order.
        let v1: [UInt8] = [1, 0, 1, 0, 2, 0, 0x61, 0x62, 2, 0, 1, 0, 0x6C, 4, 0, 6, 0, 2, 0x11, 0x22, 0x33, 0x44, 0x55,
                           5, 0, 5, 0, 10, 0, 0, 1, 24, 7, 0, 4, 0, 0x28, 0x23, 0, 0, 8, 0, 4, 0, 3, 0, 0, 0]
        let r = try VNICRecordCodec.decode(v1)
        XCTAssertEqual(r.name, "ab")
        XCTAssertEqual(r.mtu, 9000)
        XCTAssertEqual(r.index, 3)
        XCTAssertEqual(r.protection, [.macNospoof])
        XCTAssertEqual(r.priority, .high)
        XCTAssertNil(r.maxbw)
        XCTAssertEqual(r.transport, .both)
        XCTAssertEqual(r.policy, VNICPolicy())
    }

    func testUnknownTagsAreSkipped() throws {
        var bytes = VNICRecordCodec.encode(full)
        // A newer writer's fields: one in the middle, one empty, one at the end.
        let extra: [UInt8] = [0xE9, 0x03, 3, 0, 0xAA, 0xBB, 0xCC]
        bytes.insert(contentsOf: extra, at: 2)
        bytes += [0x00, 0x40, 0, 0]
        bytes += [0xFF, 0xFF, 5, 0, 1, 2, 3, 4, 5]
        XCTAssertEqual(try VNICRecordCodec.decode(bytes), full)
    }

    func testMissingMTUMeansDefault() throws {
        var r = VNICRecord(name: "a", link: "l", mac: MACAddress("02:00:00:00:00:01")!, index: 1)
        r.mtu = 9000
        var bytes = VNICRecordCodec.encode(r)
        let mtuField = try XCTUnwrap((2..<bytes.count - 8).first { bytes[$0] == 7 && bytes[$0 + 1] == 0 && bytes[$0 + 2] == 4 && bytes[$0 + 4] == 0x28 })
        bytes.removeSubrange(mtuField..<mtuField + 8)
        XCTAssertEqual(try VNICRecordCodec.decode(bytes).mtu, 1500)
    }

    func testTruncatedRecordsAreRejected() {
        let bytes = VNICRecordCodec.encode(full)
        for cut in [0, 1, 3, 5, 7, bytes.count - 1] {
            XCTAssertThrowsError(try VNICRecordCodec.decode(Array(bytes[0..<cut])), "cut at \(cut)") { e in
                XCTAssertEqual((e as? VnicError)?.exitCode, 1)
            }
        }
    }

    func testMalformedFieldsAreRejected() {
        func record(_ fields: [[UInt8]]) -> [UInt8] { [1, 0] + fields.flatMap { $0 } }
        let name: [UInt8] = [1, 0, 1, 0, 0x61], link: [UInt8] = [2, 0, 1, 0, 0x6C]
        let mac: [UInt8] = [4, 0, 6, 0, 2, 0, 0, 0, 0, 1], index: [UInt8] = [8, 0, 4, 0, 1, 0, 0, 0]
        XCTAssertNoThrow(try VNICRecordCodec.decode(record([name, link, mac, index])))
        assertVnicError(try VNICRecordCodec.decode(record([link, mac, index])), exitCode: 1, "no name")
        assertVnicError(try VNICRecordCodec.decode(record([name, mac, index])), exitCode: 1, "no link")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, index])), exitCode: 1, "no mac")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac])), exitCode: 1, "no index")
        assertVnicError(try VNICRecordCodec.decode(record([name, name, link, mac, index])), exitCode: 1, "twice")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, [4, 0, 5, 0, 2, 0, 0, 0, 0], index])),
                        exitCode: 1, "mac", "5 bytes")
        assertVnicError(try VNICRecordCodec.decode(record([[1, 0, 2, 0, 0xC3, 0x28], link, mac, index])),
                        exitCode: 1, "UTF-8")
        assertVnicError(try VNICRecordCodec.decode([4, 0] + Array(record([name, link, mac, index]).dropFirst(2))),
                        exitCode: 1, "format 4")
        assertVnicError(try VNICRecordCodec.decode([0, 0] + Array(record([name, link, mac, index]).dropFirst(2))),
                        exitCode: 1, "format 0")
        // New fields: wrong sizes and values.
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [14, 0, 4, 0, 1, 0, 0, 0]])),
                        exitCode: 1, "maxbw", "4 bytes")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [15, 0, 1, 0, 7]])),
                        exitCode: 1, "priority", "unknown value 7")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [17, 0, 1, 0, 0x30]])),
                        exitCode: 1, "protection", "unknown bits")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [18, 0, 5, 0, 10, 0, 0, 1, 24]])),
                        exitCode: 1, "allowed-ips", "invalid network")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [9, 0, 3, 0, 1, 0, 2]])),
                        exitCode: 1, "tcp-ports", "multiple of 4")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [0x07, 0x10, 2, 0, 4, 0]])),
                        exitCode: 1, "policy mtu", "unknown rule 4")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [0x07, 0x10, 2, 0, 3, 0]])),
                        exitCode: 1, "policy mtu", "multiple of 34")
        // IPv6 fields: an ip of neither 5 nor 17 bytes, a prefix over 128, allowed-ips' IPv6 part with host bits.
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [5, 0, 6, 0, 1, 2, 3, 4, 5, 6]])),
                        exitCode: 1, "ip", "expected 5 (IPv4) or 17 (IPv6)")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [5, 0, 17, 0, 0xFD] + Array(repeating: 0, count: 15) + [129]])),
                        exitCode: 1, "ip", "prefix length 129")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [23, 0, 17, 0, 0xFD] + Array(repeating: 0, count: 14) + [1, 64]])),
                        exitCode: 1, "allowed-ips", "invalid IPv6 network")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [23, 0, 0, 0], [23, 0, 0, 0]])),
                        exitCode: 1, "allowed-ips", "twice")
        assertVnicError(try VNICRecordCodec.decode(record([name, link, mac, index, [0x07, 0x10, 5, 0, 2, 0, 0, 0, 0]])),
                        exitCode: 1, "policy mtu", "multiple of 18")
        // A policy tag for a field the VM may never change is a newer writer's: skipped.
        XCTAssertNoThrow(try VNICRecordCodec.decode(record([name, link, mac, index, [0x0E, 0x10, 1, 0, 1]])))
    }
}

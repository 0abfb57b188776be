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

    func testLayoutIsVersionThenTagLengthValue() {
        let r = VNICRecord(name: "ab", link: "l", mac: MACAddress("02:11:22:33:44:55")!,
                           ips: [IPv4Interface("10.0.0.1/24")!], mtu: 1500, index: 0x0102)
        let bytes = VNICRecordCodec.encode(r)
        XCTAssertEqual(Array(bytes[0..<2]), [1, 0], "format version u16 LE")
        XCTAssertEqual(Array(bytes[2..<8]), [1, 0, 2, 0, 0x61, 0x62], "name: tag 1, length 2, 'ab'")
        XCTAssertEqual(Array(bytes[8..<13]), [2, 0, 1, 0, 0x6C], "link: tag 2, length 1")
        XCTAssertEqual(Array(bytes[13..<23]), [4, 0, 6, 0, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55], "mac in wire order")
        XCTAssertEqual(Array(bytes[23..<32]), [5, 0, 5, 0, 10, 0, 0, 1, 24], "ip: address in network order, prefix")
        XCTAssertEqual(Array(bytes[32..<40]), [7, 0, 4, 0, 0xDC, 0x05, 0, 0], "mtu u32 LE")
        XCTAssertEqual(Array(bytes[40..<48]), [8, 0, 4, 0, 0x02, 0x01, 0, 0], "index u32 LE")
        XCTAssertEqual(bytes.count, 48, "no port, no gateway")
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
        let r = VNICRecord(name: "a", link: "l", mac: MACAddress("02:00:00:00:00:01")!, index: 1)
        var bytes = VNICRecordCodec.encode(r)
        let mtuField = bytes.count - 16
        XCTAssertEqual(bytes[mtuField], 7)
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
        assertVnicError(try VNICRecordCodec.decode([2, 0] + Array(record([name, link, mac, index]).dropFirst(2))),
                        exitCode: 1, "format 2")
    }
}

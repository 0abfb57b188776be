// TCP segmentation of a guest's TSO frame: each segment must be a frame a
// receiver takes as it is (lengths, checksums, sequence numbers, flags), and
// the segments' payloads together must be the original payload.
@testable import VnicDataplane
import XCTest

final class SegmentationTests: XCTestCase {
    /// A TCP frame: Ethernet (+ a tag), IPv4 or IPv6, TCP with 12 bytes of
    /// options, `payload` bytes, the checksum field partial as a stack leaves it.
    func frame(ipv6: Bool = false, tagged: Bool = false, payload: Int, flags: UInt8 = 0x19) -> [UInt8] {
        var f: [UInt8] = [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0x01, 0x02]
        if tagged { f += [0x81, 0x00, 0x00, 0x07] }
        let tcpLen = 32 + payload
        if ipv6 {
            f += [0x86, 0xDD, 0x60, 0, 0, 0, UInt8(tcpLen >> 8), UInt8(tcpLen & 0xFF), 6, 64]
            f += [0xfd, 0] + [UInt8](repeating: 0, count: 13) + [0x12] + [0xfd, 0] + [UInt8](repeating: 0, count: 13) + [0x01]
        } else {
            let total = 20 + tcpLen
            f += [0x08, 0x00, 0x45, 0, UInt8((total >> 8) & 0xFF), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, 64, 6, 0, 0,
                  10, 77, 0, 12, 10, 77, 0, 1]
        }
        f += [0x9c, 0x40, 0x00, 0x50, 0x10, 0x00, 0x00, 0x00, 0, 0, 0, 1, 0x80, flags | 0x80, 0xff, 0xff, 0, 0, 0, 0]
        f += [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]
        f += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        return f
    }

    func sum(_ b: ArraySlice<UInt8>) -> UInt32 {
        var s: UInt32 = 0, i = b.startIndex
        while i + 1 < b.endIndex { s += UInt32(b[i]) << 8 | UInt32(b[i + 1]); i += 2 }
        if i < b.endIndex { s += UInt32(b[i]) << 8 }
        while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
        return s
    }

    func check(ipv6: Bool, tagged: Bool) throws {
        let payload = 10_000
        let big = frame(ipv6: ipv6, tagged: tagged, payload: payload)
        let l3 = tagged ? 18 : 14, ipLen = ipv6 ? 40 : 20, l4 = l3 + ipLen
        let out = UnsafeMutableRawPointer.allocate(byteCount: 2 * big.count, alignment: 64)
        defer { out.deallocate() }
        let lengths = try XCTUnwrap(big.withUnsafeBytes { TCPSegmentation.segment($0.baseAddress!, len: $0.count, mtu: 1500, into: out) })
        let mss = 1500 - ipLen - 32
        XCTAssertEqual(lengths.count, (payload + mss - 1) / mss)
        var at = 0, rebuilt: [UInt8] = []
        for (k, n) in lengths.enumerated() {
            let s = Array(UnsafeRawBufferPointer(start: out + at, count: n))
            at += n
            XCTAssertLessThanOrEqual(n - l3, 1500, "segment \(k) fits the MTU")
            let segPayload = n - l4 - 32
            if ipv6 {
                XCTAssertEqual(Int(s[l3 + 4]) << 8 | Int(s[l3 + 5]), 32 + segPayload)
            } else {
                XCTAssertEqual(Int(s[l3 + 2]) << 8 | Int(s[l3 + 3]), 20 + 32 + segPayload)
                XCTAssertEqual(Int(s[l3 + 4]) << 8 | Int(s[l3 + 5]), 0x1234 + k, "IPv4 id")
                XCTAssertEqual(sum(s[l3..<(l3 + 20)]), 0xFFFF, "IPv4 header checksum of segment \(k)")
            }
            // TCP checksum over the pseudo-header and the segment.
            var pseudo: [UInt8] = ipv6 ? Array(s[(l3 + 8)..<(l3 + 40)]) : Array(s[(l3 + 12)..<(l3 + 20)])
            let l4len = 32 + segPayload
            pseudo += [0, 6, UInt8(l4len >> 8), UInt8(l4len & 0xFF)]
            XCTAssertEqual(sum((pseudo + s[l4..<n])[...]), 0xFFFF, "TCP checksum of segment \(k)")
            let seq = Int(s[l4 + 4]) << 24 | Int(s[l4 + 5]) << 16 | Int(s[l4 + 6]) << 8 | Int(s[l4 + 7])
            XCTAssertEqual(seq, 0x1000_0000 + k * mss, "sequence number of segment \(k)")
            let flags = s[l4 + 13]
            XCTAssertEqual(flags & 0x09 != 0, k == lengths.count - 1, "FIN and PSH on the last segment only (\(k))")
            XCTAssertEqual(flags & 0x80 != 0, k == 0, "CWR on the first segment only (\(k))")
            XCTAssertEqual(Array(s[0..<l3]), Array(big[0..<l3]), "the link header repeats")
            rebuilt += s[(l4 + 32)...]
        }
        XCTAssertEqual(rebuilt, Array(big[(l4 + 32)...]), "the payloads together are the original")
    }

    func testIPv4() throws { try check(ipv6: false, tagged: false) }
    func testIPv6() throws { try check(ipv6: true, tagged: false) }
    func testBehindATag() throws { try check(ipv6: false, tagged: true) }

    func testOnlyTCPIsCut() {
        var udp = frame(payload: 3000)
        udp[23] = 17
        let out = UnsafeMutableRawPointer.allocate(byteCount: 8192, alignment: 64)
        defer { out.deallocate() }
        XCTAssertNil(udp.withUnsafeBytes { TCPSegmentation.segment($0.baseAddress!, len: $0.count, mtu: 1500, into: out) })
        let short = Array(frame(payload: 3000).prefix(40))
        XCTAssertNil(short.withUnsafeBytes { TCPSegmentation.segment($0.baseAddress!, len: $0.count, mtu: 1500, into: out) })
        var fragment = frame(payload: 3000)
        fragment[20] = 0x20   // more fragments
        XCTAssertNil(fragment.withUnsafeBytes { TCPSegmentation.segment($0.baseAddress!, len: $0.count, mtu: 1500, into: out) })
    }
}

// ChecksumCompletion on frames built here: a segment whose checksum field holds
// the folded pseudo-header sum (what Linux leaves for the device under transmit
// checksum offload) gets its full checksum; anything else is left alone.
import VnicCore
@testable import VnicDataplane
import XCTest

final class ChecksumCompletionTests: XCTestCase {
    static let vm = MACAddress("02:00:00:00:01:01")!, wire = MACAddress("02:00:00:00:00:01")!

    /// The Internet checksum of the pseudo-header and the segment, as a receiver checks it (0 = valid).
    func verify(_ f: [UInt8]) -> UInt16 {
        f.withUnsafeBytes { b in
            let p = b.baseAddress!
            let v6 = be16(p, 12) == 0x86DD
            let o = 14
            let ihl = v6 ? 40 : Int(b[o] & 0x0F) * 4
            let l4len = v6 ? Int(be16(p, o + 4)) : Int(be16(p, o + 2)) - ihl
            let proto = UInt64(b[o + (v6 ? 6 : 9)])
            let pseudo = ChecksumCompletion.sum16(p, v6 ? o + 8 : o + 12, v6 ? 32 : 8) &+ proto &+ UInt64(l4len)
            return ~ChecksumCompletion.fold(pseudo &+ ChecksumCompletion.sum16(p, o + ihl, l4len))
        }
    }

    /// An IPv4 or IPv6 frame carrying `proto` (6 or 17) with `payload`, its
    /// checksum field set to the folded pseudo-header sum (partial) or to `field`.
    func frame(v6: Bool, proto: UInt8, payload: [UInt8], field: UInt16? = nil) -> [UInt8] {
        var l4: [UInt8] = proto == 6
            ? [0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0] + payload
            : [0x9c, 0x40, 0x1e, 0x61] + FrameBuilder.be16(UInt16(8 + payload.count)) + [0, 0] + payload
        let at = proto == 6 ? 16 : 6
        var f: [UInt8]
        if v6 {
            let src: [UInt8] = [0xfe, 0x80] + [UInt8](repeating: 0, count: 9) + [0xff, 0xfe, 0, 1, 1]
            let dst: [UInt8] = [0xfe, 0x80] + [UInt8](repeating: 0, count: 9) + [0xff, 0xfe, 0, 0, 1]
            f = Self.wire.bytes + Self.vm.bytes + [0x86, 0xdd, 0x60, 0, 0, 0] + FrameBuilder.be16(UInt16(l4.count)) + [proto, 64] + src + dst
        } else {
            var ip: [UInt8] = [0x45, 0] + FrameBuilder.be16(UInt16(20 + l4.count)) + [0, 1, 0x40, 0, 64, proto, 0, 0,
                                                                                       10, 77, 0, 11, 10, 77, 0, 1]
            let c = FrameBuilder.checksum(ip); ip[10] = UInt8(c >> 8); ip[11] = UInt8(c & 0xFF)
            f = Self.wire.bytes + Self.vm.bytes + [0x08, 0x00] + ip
        }
        let pseudo: UInt16 = (f + l4).withUnsafeBytes { b in
            let p = b.baseAddress!
            let s = v6 ? ChecksumCompletion.sum16(p, 22, 32) : ChecksumCompletion.sum16(p, 26, 8)
            return ChecksumCompletion.fold(s &+ UInt64(proto) &+ UInt64(l4.count))
        }
        let value = field ?? pseudo
        l4[at] = UInt8(value >> 8); l4[at + 1] = UInt8(value & 0xFF)
        return f + l4
    }

    func complete(_ f: inout [UInt8]) -> Bool {
        let n = f.count
        return f.withUnsafeMutableBytes { ChecksumCompletion.complete($0.baseAddress!, len: n) }
    }

    func testPartialChecksumsAreCompleted() {
        for v6 in [false, true] {
            for proto: UInt8 in [6, 17] {
                for size in [0, 1, 7, 100, 1401] {
                    var f = frame(v6: v6, proto: proto, payload: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
                    XCTAssertNotEqual(verify(f), 0, "partial: invalid until completed")
                    XCTAssertTrue(complete(&f), "v6 \(v6) proto \(proto) size \(size)")
                    XCTAssertEqual(verify(f), 0, "v6 \(v6) proto \(proto) size \(size)")
                    XCTAssertFalse(complete(&f), "a complete checksum is left alone")
                }
            }
        }
    }

    func testCompleteAndAbsentChecksumsAreLeftAlone() {
        var full = frame(v6: false, proto: 6, payload: [1, 2, 3])
        _ = complete(&full)
        let before = full
        XCTAssertFalse(complete(&full)); XCTAssertEqual(full, before)
        var none = frame(v6: false, proto: 17, payload: [1, 2, 3], field: 0)   // IPv4 UDP without a checksum
        XCTAssertFalse(complete(&none))
        var fragment = frame(v6: false, proto: 17, payload: [UInt8](repeating: 9, count: 64))
        fragment[20] = 0x20                                                     // more fragments
        XCTAssertFalse(complete(&fragment))
        var tagged = frame(v6: false, proto: 17, payload: [1, 2, 3])
        tagged.insert(contentsOf: [0x81, 0x00, 0, 5], at: 12)
        XCTAssertTrue(complete(&tagged), "behind one 802.1Q tag")
        var icmp = frame(v6: false, proto: 6, payload: []); icmp[23] = 1
        XCTAssertFalse(complete(&icmp))
    }

    func testEveryTruncationIsSafe() {
        for base in [frame(v6: false, proto: 6, payload: [1, 2, 3]), frame(v6: true, proto: 17, payload: [4, 5])] {
            for n in 0...base.count {
                let exact = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 1)
                exact.copyMemory(from: base, byteCount: n)
                _ = ChecksumCompletion.complete(exact, len: n)
                exact.deallocate()
            }
        }
    }
}

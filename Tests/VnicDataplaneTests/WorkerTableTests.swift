import CLibXDP
import CVnicShim
import VnicCore
@testable import VnicDataplane
import XCTest

final class WorkerTableTests: XCTestCase {
    /// MACKey.load reads the six bytes of a frame the same way MACKey.from packs them.
    func testMACKeyMatchesFrameBytes() {
        let mac = MACAddress("02:00:00:00:01:2a")!
        let frame: [UInt8] = mac.bytes + [0xff, 0xff]
        let loaded = frame.withUnsafeBytes { MACKey.load($0.baseAddress!) }
        XCTAssertEqual(loaded, MACKey.from(mac.bytes))
        XCTAssertFalse(MACKey.isGroup(loaded))
        XCTAssertTrue(MACKey.isGroup(MACKey.from(MACAddress("33:33:ff:00:00:01")!.bytes)))
        XCTAssertTrue(MACKey.isGroup(MACKey.from(MACAddress("ff:ff:ff:ff:ff:ff")!.bytes)))
    }

    /// Every MAC in the table is found at its entry; others are not, including 0.
    func testLookupFindsEveryEntryAndNothingElse() {
        let rx = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)
        let port = UnsafeMutablePointer<QueueRings>.allocate(capacity: 1)
        let counters = UnsafeMutablePointer<vnic_counters>.allocate(capacity: 1)
        let tat = UnsafeMutablePointer<UInt64>.allocate(capacity: 3)
        let prefixes = UnsafeMutablePointer<(UInt32, UInt32)>.allocate(capacity: 1)
        let v6 = UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>.allocate(capacity: 1)
        defer { rx.deallocate(); port.deallocate(); counters.deallocate(); tat.deallocate(); prefixes.deallocate(); v6.deallocate() }
        var entries: [VNICEntry] = []
        for i in 0..<1000 {
            let mac = MACAddress(rawValue: 0x02_00_00_00_00_00 | UInt64(i * 7919))
            let key = MACKey.from(mac.bytes)
            let policy = SpoofPolicy(mac: key, protection: .default, ipv4: prefixes, ipv4Count: 0, ipv6: v6, ipv6Count: 0)
            entries.append(VNICEntry(index: UInt32(i + 1), mac: key, uplinkRX: rx, port: port, counters: counters,
                                     policy: policy, limiter: RateLimiter(bitsPerSecond: 0), tat: tat))
        }
        let t = WorkerTable.make(generation: 1, entries: entries, reclaim: [])
        defer { WorkerTable.destroy(t) }
        for (i, e) in entries.enumerated() { XCTAssertEqual(t.pointee.lookup(e.mac), i) }
        XCTAssertEqual(t.pointee.lookup(MACKey.from(MACAddress("02:00:00:ff:ff:ff")!.bytes)), -1)
        XCTAssertEqual(t.pointee.lookup(0), -1)
        let empty = WorkerTable.make(generation: 2, entries: [], reclaim: [3, 4])
        defer { WorkerTable.destroy(empty) }
        XCTAssertEqual(empty.pointee.lookup(entries[0].mac), -1)
        XCTAssertEqual(empty.pointee.reclaimCount, 2)
    }
}

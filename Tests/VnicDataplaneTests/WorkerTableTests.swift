import CLibXDP
import CVnicShim
import Foundation
import VnicConfig
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
        let tat = UnsafeMutablePointer<UInt64>.allocate(capacity: 4)
        defer { rx.deallocate(); port.deallocate(); counters.deallocate(); tat.deallocate() }
        var entries: [VNICEntry] = []
        for i in 0..<1000 {
            let mac = MACAddress(rawValue: 0x02_00_00_00_00_00 | UInt64(i * 7919))
            let key = MACKey.from(mac.bytes)
            entries.append(VNICEntry(index: UInt32(i + 1), mac: key, uplinkRX: rx, port: port, counters: counters, tat: tat))
        }
        let t = WorkerTable.make(generation: 1, entries: entries)
        defer { WorkerTable.destroy(t) }
        for (i, e) in entries.enumerated() { XCTAssertEqual(t.pointee.lookup(e.mac), i) }
        XCTAssertEqual(t.pointee.lookup(MACKey.from(MACAddress("02:00:00:ff:ff:ff")!.bytes)), -1)
        XCTAssertEqual(t.pointee.lookup(0), -1)
        let empty = WorkerTable.make(generation: 2, entries: [])
        defer { WorkerTable.destroy(empty) }
        XCTAssertEqual(empty.pointee.lookup(entries[0].mac), -1)
    }

    /// A new table looks at every entry (all hot); markBusy sets one bit, in entry order.
    func testHotBitmapStartsFullAndMarksEntries() {
        let rx = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)
        let counters = UnsafeMutablePointer<vnic_counters>.allocate(capacity: 1)
        let tat = UnsafeMutablePointer<UInt64>.allocate(capacity: 4)
        defer { rx.deallocate(); counters.deallocate(); tat.deallocate() }
        for n in [0, 1, 63, 64, 65, 1000] {
            let entries = (0..<n).map { i in
                VNICEntry(index: UInt32(i + 1), mac: UInt64(i + 1) << 8, uplinkRX: rx, port: nil, counters: counters, tat: tat)
            }
            let t = WorkerTable.make(generation: 1, entries: entries)
            defer { WorkerTable.destroy(t) }
            XCTAssertEqual(t.pointee.hotWords, (n + 63) / 64)
            let bits = (0..<max(t.pointee.hotWords, 1)).reduce(0) { $0 + t.pointee.hot[$1].nonzeroBitCount }
            XCTAssertEqual(bits, n, "every entry of \(n) starts hot, and no bit beyond them")
            guard n > 0 else { continue }
            for w in 0..<t.pointee.hotWords { t.pointee.hot[w] = 0 }
            t.pointee.markBusy(n - 1, loop: 7)
            XCTAssertEqual(t.pointee.hot[(n - 1) / 64], 1 << UInt64((n - 1) % 64))
            XCTAssertEqual(t.pointee.lastBusy[n - 1], 7)
        }
    }

    /// --frames and --buffer-memory: the cap bounds the default, a cap below
    /// 4,096 frames per worker or an explicit --frames above it is a usage error.
    func testBufferMemoryBoundsTheFrames() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vnic-frames-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try ConfigStore.open(path: dir.appendingPathComponent("vnic.db").path, create: true)
        var o = Dataplane.Options(uplink: "x", bpfObject: "x", store: store)
        XCTAssertEqual(try Dataplane.framesPerWorker(o, workers: 2), 16384)
        o.bufferMemory = 64 << 20   // half for the workers' UMEMs
        XCTAssertEqual(try Dataplane.framesPerWorker(o, workers: 2), 8192)
        o.bufferMemory = 16 << 20
        XCTAssertThrowsError(try Dataplane.framesPerWorker(o, workers: 4)) { e in
            XCTAssertTrue((e as? VnicError)?.message.hasPrefix("--buffer-memory: half of 16 MiB") ?? false, "\(e)")
            XCTAssertEqual((e as? VnicError)?.exitCode, 2)
        }
        o.bufferMemory = 128 << 20
        o.framesPerWorker = 32768
        XCTAssertThrowsError(try Dataplane.framesPerWorker(o, workers: 2)) { e in
            XCTAssertTrue((e as? VnicError)?.message.hasPrefix("--frames: 32768") ?? false, "\(e)")
        }
        o.bufferMemory = nil
        o.framesPerWorker = UInt32.max / 2   // 4 TiB: more than this host has
        XCTAssertThrowsError(try Dataplane.framesPerWorker(o, workers: 1)) { e in
            XCTAssertTrue((e as? VnicError)?.message.contains("more than this host has available") ?? false, "\(e)")
        }
    }
}

final class CopyFrameTests: XCTestCase {
    /// Every length from 0 to 300 (the inline 32-64 and 65-128 byte paths and memcpy) copies exactly, and nothing past it.
    func testCopiesEveryLengthExactly() {
        let src = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 64)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 64)
        defer { src.deallocate(); dst.deallocate() }
        for i in 0..<512 { src.storeBytes(of: UInt8(truncatingIfNeeded: i &* 7 &+ 3), toByteOffset: i, as: UInt8.self) }
        for offset in [0, 1, 5] {
            for n in 0...300 {
                dst.initializeMemory(as: UInt8.self, repeating: 0xEE, count: 512)
                copyFrame(dst + offset, src + offset, n)
                for i in 0..<512 {
                    let want: UInt8 = i >= offset && i < offset + n ? src.load(fromByteOffset: i, as: UInt8.self) : 0xEE
                    if dst.load(fromByteOffset: i, as: UInt8.self) != want { XCTFail("length \(n) offset \(offset): byte \(i)"); break }
                }
            }
        }
    }
}

// The worker's reads: a reader renewed per burst, views over the record bytes.
import Foundation
import XCTest
@testable import VnicConfig
import VnicCore

final class FastPathTests: XCTestCase {
    var store: ConfigStore!

    override func setUpWithError() throws {
        store = try ConfigStore.open(path: try makeTemporaryDirectory(self) + "/vnic.db", create: true)
    }

    func testViewReadsWhatTheRecordHolds() throws {
        var r = sampleRecord(1)
        r.maxbw = 250_000_000
        r.priority = .medium
        r.protection = [.macNospoof, .ipNospoof, .restricted]
        r.allowedIPs = [IPv4CIDR("10.77.1.0/24")!, IPv4CIDR("192.168.5.5")!]
        r.mtu = 9000
        r.state = .down
        r.transport = .udp
        let stored = try store.create(r)
        let plain = try store.create(sampleRecord(2))

        let reader = try ConfigReader(store: store)
        try reader.beginBurst()
        let v = try XCTUnwrap(reader.vnic(index: stored.index))
        XCTAssertEqual(v.index, stored.index)
        XCTAssertEqual(v.mac, r.mac)
        XCTAssertEqual(v.protection, r.protection)
        XCTAssertEqual(v.priority, .medium)
        XCTAssertEqual(v.maxbw, 250_000_000)
        XCTAssertEqual(v.mtu, 9000)
        XCTAssertEqual(v.state, .down)
        XCTAssertEqual(v.transport, .udp)
        XCTAssertEqual(v.allowedIPs.count, 2)
        XCTAssertEqual(v.allowedIPs[0].network, 0x0A4D_0100)
        XCTAssertEqual(v.allowedIPs[0].prefixLength, 24)
        XCTAssertTrue(v.permitsSource(IPv4Address("10.77.1.200")!))
        XCTAssertTrue(v.permitsSource(IPv4Address("192.168.5.5")!))
        XCTAssertFalse(v.permitsSource(IPv4Address("192.168.5.6")!))
        XCTAssertFalse(v.permitsSource(r.ips[0].address), "allowed-ips replaces the VNIC's own addresses")

        let p = try XCTUnwrap(reader.vnic(index: plain.index))
        XCTAssertEqual(p.protection, [.macNospoof], "the default")
        XCTAssertEqual(p.priority, .high)
        XCTAssertNil(p.maxbw)
        XCTAssertTrue(p.allowedIPs.isEmpty)
        XCTAssertTrue(p.permitsSource(plain.ips[0].address), "no allowed-ips: its own addresses")
        XCTAssertFalse(p.permitsSource(IPv4Address("10.0.0.1")!))
        XCTAssertNil(reader.vnic(index: 999))
        XCTAssertEqual(reader.generation(), try store.generation())
        reader.endBurst()
    }

    func testABurstIsASnapshotAndTheNextOneSeesNewCommits() throws {
        let r = try store.create(sampleRecord(1))
        let reader = try ConfigReader(store: store)
        try reader.withBurst { reader in
            XCTAssertNil(reader.vnic(index: 2))
            XCTAssertNil(reader.vnic(index: r.index)?.maxbw)
            // Another writer commits during the burst: this burst does not see it.
            let store: ConfigStore = self.store
            let writer = Thread {
                _ = try? store.create(sampleRecord(2))
                _ = try? store.update { (tx) throws(VnicError) in
                    try tx.update(name: r.name, reason: "test") { $0.maxbw = 1_000_000 }
                }
            }
            writer.start()
            while !writer.isFinished { usleep(1000) }
            XCTAssertNil(reader.vnic(index: 2))
            XCTAssertNil(reader.vnic(index: r.index)?.maxbw)
        }
        try reader.withBurst { reader in
            XCTAssertNotNil(reader.vnic(index: 2))
            XCTAssertEqual(reader.vnic(index: r.index)?.maxbw, 1_000_000)
            XCTAssertEqual(reader.generation(), 4)
        }
    }

    func testAReaderMovesBetweenThreadsAndBurstsRepeat() throws {
        try store.create(sampleRecord(1))
        let reader = try ConfigReader(store: store)
        for _ in 0..<3 {
            let ok = Mutex(false)
            let t = Thread {
                do {
                    let found = try reader.withBurst { $0.vnic(index: 1) != nil }
                    ok.withLock { $0 = found }
                } catch {}
            }
            t.start()
            while !t.isFinished { usleep(1000) }
            XCTAssertTrue(ok.withLock { $0 })
        }
        for _ in 0..<10_000 {
            try reader.beginBurst()
            XCTAssertNotNil(reader.vnic(index: 1))
            reader.endBurst()
        }
        reader.endBurst()   // a second end is harmless
    }

    /// A burst renews the snapshot only after a commit: without one the held
    /// snapshot serves (no LMDB round for a one-frame burst); after releaseSnapshot
    /// the next burst takes a new one.
    func testABurstRenewsOnlyAfterACommit() throws {
        let stored = try store.create(sampleRecord(1))
        let reader = try ConfigReader(store: store)
        try reader.beginBurst()
        let first = reader.heldTxnID
        reader.endBurst()
        for _ in 0..<3 {
            try reader.beginBurst()
            XCTAssertEqual(reader.heldTxnID, first, "nothing committed: the same snapshot")
            XCTAssertEqual(reader.vnic(index: stored.index)?.mtu, 1500)
            reader.endBurst()
        }
        try store.update { (tx) throws(VnicError) in
            try tx.update(name: stored.name, reason: "test") { r in r.mtu = 9000 }
        }
        try reader.beginBurst()
        XCTAssertGreaterThan(reader.heldTxnID, first, "a commit: a new snapshot")
        XCTAssertEqual(reader.vnic(index: stored.index)?.mtu, 9000)
        reader.endBurst()
        reader.releaseSnapshot()
        XCTAssertFalse(reader.held)
        try reader.withBurst { XCTAssertEqual($0.vnic(index: stored.index)?.mtu, 9000) }
        XCTAssertTrue(reader.held)
    }

    func testMalformedRecordsReadAsDefaultsWithoutTrapping() throws {
        try store.create(sampleRecord(1))
        let bad: [[UInt8]] = [[], [2], [2, 0], [2, 0, 4, 0, 6], [2, 0, 4, 0, 200, 0, 1, 2], [2, 0, 17, 0, 2, 0, 1, 1],
                              [2, 0, 18, 0, 3, 0, 10, 0, 0], [2, 0, 14, 0, 4, 0, 1, 2, 3, 4]]
        for (i, bytes) in bad.enumerated() {
            try store.environment.write { txn in
                try txn.put(store.tables.vnics, key: Schema.indexKey(1), value: bytes)
            }
            let reader = try ConfigReader(store: store)
            try reader.withBurst { reader in
                guard let v = reader.vnic(index: 1) else { return XCTFail("case \(i): no view") }
                XCTAssertEqual(v.mac, MACAddress(rawValue: 0), "case \(i)")
                XCTAssertEqual(v.protection, [.macNospoof], "case \(i)")
                XCTAssertNil(v.maxbw, "case \(i)")
                XCTAssertEqual(v.allowedIPs.count, 0, "case \(i)")
                XCTAssertFalse(v.permitsSource(IPv4Address("10.0.0.1")!), "case \(i)")
            }
        }
    }

    /// DataplaneFields (the worker's one walk) reads what each accessor reads:
    /// records with every field set, with defaults, and damaged ones.
    func testOneWalkReadsWhatTheAccessorsRead() throws {
        var full = sampleRecord(1)
        full.maxbw = 250_000_000
        full.protection = [.macNospoof, .ipNospoof, .restricted]
        full.mtu = 9000
        full.dhcp = .on
        full.raGuard = .off
        full.ipv6RA = .managed
        var records = [VNICRecordCodec.encode(full), VNICRecordCodec.encode(sampleRecord(2))]
        records += [[], [2], [2, 0], [2, 0, 4, 0, 6], [2, 0, 4, 0, 200, 0, 1, 2], [2, 0, 17, 0, 2, 0, 1, 1],
                    [2, 0, 14, 0, 4, 0, 1, 2, 3, 4], [2, 0, 20, 0, 1, 0, 1, 7, 0, 4, 0, 0x10, 0x27, 0, 0]]
        let cut = VNICRecordCodec.encode(full)
        for n in stride(from: 0, to: cut.count, by: 7) { records.append(Array(cut.prefix(n))) }
        for (i, bytes) in records.enumerated() {
            bytes.withUnsafeBytes { b in
                let v = VNICView(bytes: b)
                let f = DataplaneFields(v)
                XCTAssertEqual(f.mac, v.mac, "case \(i)")
                XCTAssertEqual(f.protection, v.protection, "case \(i)")
                XCTAssertEqual(f.raGuard, v.raGuard, "case \(i)")
                XCTAssertEqual(f.maxbw, v.maxbw ?? 0, "case \(i)")
                XCTAssertEqual(f.mtu, v.mtu, "case \(i)")
                XCTAssertEqual(f.dhcp, v.dhcp, "case \(i)")
                XCTAssertEqual(f.ipv6RA, v.ipv6RA, "case \(i)")
            }
        }
        let f = VNICRecordCodec.encode(full).withUnsafeBytes { DataplaneFields(VNICView(bytes: $0)) }
        XCTAssertEqual([f.maxbw, UInt64(f.mtu)], [250_000_000, 9000])
        XCTAssertEqual(f.dhcp, .on)
        XCTAssertEqual(f.ipv6RA, .managed)
    }

    func testCIDRListEdges() {
        let bytes: [UInt8] = [0, 0, 0, 0, 0, 10, 0, 0, 7, 32]
        bytes.withUnsafeBytes { b in
            let all = CIDRListView(bytes: UnsafeRawBufferPointer(rebasing: b[0..<5]))
            XCTAssertTrue(all.contains(IPv4Address("255.255.255.255")!), "/0 holds everything")
            let one = CIDRListView(bytes: UnsafeRawBufferPointer(rebasing: b[5..<10]))
            XCTAssertTrue(one.contains(IPv4Address("10.0.0.7")!))
            XCTAssertFalse(one.contains(IPv4Address("10.0.0.6")!), "/32 holds one")
            XCTAssertFalse(CIDRListView(bytes: UnsafeRawBufferPointer(start: nil, count: 0)).contains(IPv4Address("1.1.1.1")!))
        }
    }
}

import Synchronization

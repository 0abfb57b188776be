// Write transactions (batches), the audit log, and a full database.
import Foundation
import XCTest
@testable import VnicConfig
import VnicCore

final class TransactionTests: XCTestCase {
    var dir = ""
    var path: String { dir + "/vnic.db" }

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
    }

    func testABatchIsOneCommitAndAllOrNothing() throws {
        let store = try ConfigStore.open(path: path, create: true)
        try store.update { (tx) throws(VnicError) in
            for n in 0..<500 { try tx.create(sampleRecord(n)) }
            try tx.delete(name: sampleRecord(7).name)
            try tx.create(sampleRecord(1000))   // takes the freed index 8
        }
        XCTAssertEqual(try store.generation(), 2, "one commit, one generation")
        XCTAssertEqual(try store.vnics().count, 500)
        XCTAssertEqual(try store.vnic(named: sampleRecord(1000).name)?.index, 8)
        XCTAssertEqual(try store.consistencyProblems(), [])
        // A failure anywhere (here: the last one, a duplicate) discards the whole batch.
        assertVnicError(try store.update { (tx) throws(VnicError) in
            for n in 500..<600 { try tx.create(sampleRecord(n)) }
            try tx.create(sampleRecord(3))
        }, exitCode: 2, "already exists")
        XCTAssertEqual(try store.vnics().count, 500)
        XCTAssertEqual(try store.generation(), 2)
        XCTAssertNil(try store.vnic(named: sampleRecord(550).name))
        XCTAssertEqual(try store.auditEntries().count, 502, "500 creates, 1 delete, 1 create; nothing of the failed batch")
    }

    func testChangesInsideATransactionSeeEachOther() throws {
        let store = try ConfigStore.open(path: path, create: true)
        try store.update { (tx) throws(VnicError) in
            let a = try tx.create(sampleRecord(1))
            XCTAssertEqual(try tx.vnic(named: a.name), a)
            try tx.update(name: a.name, reason: "t") { $0.mtu = 9000 }
            XCTAssertEqual(try tx.vnic(index: a.index)?.mtu, 9000)
            XCTAssertTrue(tx.configurationChanged)
        }
        XCTAssertEqual(try store.vnic(named: sampleRecord(1).name)?.mtu, 9000)
    }

    func testUpdateMovesTheMACAndPortIndexes() throws {
        let store = try ConfigStore.open(path: path, create: true)
        let a = try store.create(sampleRecord(1)), b = try store.create(sampleRecord(2))
        let newMAC = MACAddress("02:00:00:00:aa:01")!
        try store.update { (tx) throws(VnicError) in
            try tx.update(name: a.name, reason: "t") { r in r.mac = newMAC; r.port = "newport" }
        }
        XCTAssertEqual(try store.consistencyProblems(), [])
        // The old MAC and port are free, the new ones are taken.
        var c = sampleRecord(3)
        c.mac = a.mac; c.port = a.port
        XCTAssertEqual(try store.create(c).index, 3)
        assertVnicError(try store.update { (tx) throws(VnicError) in
            try tx.update(name: b.name, reason: "t") { $0.mac = newMAC }
        }, exitCode: 2, "mac \(newMAC) is already used by VNIC '\(a.name)'")
        assertVnicError(try store.update { (tx) throws(VnicError) in
            try tx.update(name: b.name, reason: "t") { $0.port = "newport" }
        }, exitCode: 2, "port newport is already used")
        assertVnicError(try store.update { (tx) throws(VnicError) in
            try tx.update(name: b.name, reason: "t") { $0.name = "renamed" }
        }, exitCode: 2, "name: cannot be changed")
        assertVnicError(try store.update { (tx) throws(VnicError) in
            try tx.update(name: "ghost", reason: "t") { $0.mtu = 9000 }
        }, exitCode: 2, "VNIC 'ghost' does not exist")
        XCTAssertEqual(try store.vnic(named: b.name), b)
    }

    func testAnUnchangedUpdateCommitsNothing() throws {
        let store = try ConfigStore.open(path: path, create: true)
        let a = try store.create(sampleRecord(1))
        let g = try store.generation(), n = try store.auditEntries().count
        try store.update { (tx) throws(VnicError) in
            try tx.update(name: a.name, reason: "t") { $0.mtu = a.mtu }
            XCTAssertFalse(tx.configurationChanged)
        }
        XCTAssertEqual(try store.generation(), g)
        XCTAssertEqual(try store.auditEntries().count, n)
    }

    func testAuditEntriesAppendReadAndFilter() throws {
        let store = try ConfigStore.open(path: path, create: true)
        let a = try store.create(sampleRecord(1)), b = try store.create(sampleRecord(2))
        try store.update { (tx) throws(VnicError) in
            try tx.update(name: a.name, reason: "vnicadm set") { r in r.mtu = 9000; r.gateway = IPv4Address("10.77.0.1") }
        }
        let g = try store.generation()
        let appended = try store.appendAudit([
            AuditEntry(time: 1_700_000_000_123_000_000, vnic: b.name, origin: .vm, parameter: "mac",
                       old: "\(b.mac)", new: "02:00:00:00:00:66", verdict: .denied, reason: "spoof: source MAC is not the VNIC's"),
            AuditEntry(vnic: b.name, origin: .vm, parameter: "mtu", old: "1500", new: String(repeating: "x", count: 5000),
                       verdict: .denied, reason: "long"),
        ])
        XCTAssertEqual(try store.generation(), g, "audit-only appends do not bump the generation")
        XCTAssertEqual(appended.map(\.sequence), [5, 6])
        let all = try store.auditEntries()
        XCTAssertEqual(all.map(\.sequence), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(all.map(\.parameter), ["vnic", "vnic", "gateway", "mtu", "mac", "mtu"])
        XCTAssertEqual(all[3].old, "1500")
        XCTAssertEqual(all[3].new, "9000")
        XCTAssertEqual(all[3].reason, "vnicadm set")
        XCTAssertEqual(all[2].old, nil)
        XCTAssertEqual(all[4].timeText, "2023-11-14T22:13:20.123Z")
        XCTAssertEqual(all[4].origin, .vm)
        XCTAssertEqual(all[4].verdict, .denied)
        XCTAssertLessThanOrEqual(all[5].new!.utf8.count, AuditEntry.maxText)
        XCTAssertTrue(all[5].new!.hasSuffix("..."))
        XCTAssertEqual(try store.auditEntries(vnic: b.name).map(\.sequence), [2, 5, 6])
        XCTAssertEqual(try store.auditEntries(after: 4).map(\.sequence), [5, 6])
        XCTAssertEqual(try store.auditEntries(after: 1, limit: 2).map(\.sequence), [2, 3])
        XCTAssertEqual(try store.lastAuditSequence(), 6)
        // Deleting a VNIC keeps its history and adds to it.
        try store.delete(name: b.name)
        XCTAssertEqual(try store.auditEntries(vnic: b.name).map(\.sequence), [2, 5, 6, 7])
        // Another process's appends continue the sequence.
        let other = try ConfigStore.open(path: path, create: false)
        XCTAssertEqual(try other.appendAudit([AuditEntry(vnic: "x", origin: .host, parameter: "p", old: nil, new: nil,
                                                          verdict: .applied, reason: "")]).map(\.sequence), [8])
        XCTAssertEqual(try store.consistencyProblems(), [])
    }

    /// A guest's answer to a host change is a typed outcome (tag 9), read back as
    /// written; entries without it read as no outcome, and an unknown value is refused.
    func testGuestOutcomeIsTyped() throws {
        let store = try ConfigStore.open(path: path, create: true)
        var ack = AuditEntry(vnic: "vm1", origin: .host, parameter: "mtu", old: nil, new: "1400", verdict: .applied,
                             reason: "guest acknowledged")
        ack.guest = .acknowledged
        var none = ack
        none.guest = .unacknowledged
        none.reason = "anything at all"
        let plain = AuditEntry(vnic: "vm1", origin: .host, parameter: "mtu", old: "1500", new: "1400", verdict: .applied,
                               reason: "guest said so")
        try store.appendAudit([ack, none, plain])
        XCTAssertEqual(try store.auditEntries().map(\.guest), [.acknowledged, .unacknowledged, nil],
                       "the outcome is the field's, whatever the reason text says")
        var bytes = ack.encode()
        bytes[bytes.count - 1] = 7
        XCTAssertThrowsError(try bytes.withUnsafeBytes { b throws(VnicError) in try AuditEntry.decode(b, sequence: 1) })
    }

    func testAFullDatabaseRefusesTheWriteAndKeepsWhatItHad() throws {
        let store = try ConfigStore.open(path: path, create: true, mapSize: 256 << 10)
        var created = 0
        var failure: VnicError?
        for n in 0..<10_000 {
            do {
                try store.create(sampleRecord(n))
                created += 1
            } catch {
                failure = error
                break
            }
        }
        let e = try XCTUnwrap(failure, "256 KiB never filled up")
        XCTAssertEqual(e.exitCode, 1)
        XCTAssertTrue(e.message.contains("database \(path) is full (map size 256 KiB"), e.message)
        XCTAssertTrue(e.message.contains("VNIC_DB_MAP_SIZE"), e.message)
        XCTAssertTrue(e.message.hasSuffix("nothing was changed"), e.message)
        XCTAssertGreaterThan(created, 10)
        XCTAssertEqual(try store.vnics().count, created, "the failed write left no trace")
        XCTAssertEqual(try store.generation(), UInt64(created) + 1)
        XCTAssertNil(try store.vnic(named: sampleRecord(created).name))
        XCTAssertEqual(try store.consistencyProblems(), [])
        // A batch that does not fit changes nothing either.
        assertVnicError(try store.update { (tx) throws(VnicError) in
            for n in 20_000..<20_200 { try tx.create(sampleRecord(n, group: 3)) }
        }, exitCode: 1, "is full")
        XCTAssertEqual(try store.vnics().count, created)
    }

    func testMapSizeFromTheEnvironment() throws {
        XCTAssertEqual(try ConfigStore.mapSize(environment: [:]), 1 << 30)
        XCTAssertEqual(try ConfigStore.mapSize(environment: ["VNIC_DB_MAP_SIZE": "64K"]), 65536)
        XCTAssertEqual(try ConfigStore.mapSize(environment: ["VNIC_DB_MAP_SIZE": "4G"]), 4 << 30)
        XCTAssertEqual(try ConfigStore.mapSize(environment: ["VNIC_DB_MAP_SIZE": "1048576"]), 1 << 20)
        assertVnicError(try ConfigStore.mapSize(environment: ["VNIC_DB_MAP_SIZE": "10Q"]), exitCode: 2, "VNIC_DB_MAP_SIZE: '10Q'")
        assertVnicError(try ConfigStore.mapSize(environment: ["VNIC_DB_MAP_SIZE": "1K"]), exitCode: 2, "at least 4K")
    }
}

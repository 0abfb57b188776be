// Schema 1 -> 2: a database written in the v1 layout (as the first vnicadm wrote
// it) opens, migrates in one write transaction, and keeps every VNIC.
import Foundation
import XCTest
@testable import VnicConfig
import VnicCore

final class SchemaMigrationTests: XCTestCase {
    var dir = ""
    var path: String { dir + "/vnic.db" }

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
    }

    /// A record in format 1: u16 version 1, then tags 1-8 in the v1 writer's order.
    static func v1Record(name: String, link: String, port: String?, mac: [UInt8], ips: [([UInt8], UInt8)],
                         gateway: [UInt8]?, mtu: UInt32, index: UInt32) -> [UInt8] {
        var out: [UInt8] = [1, 0]
        func field(_ tag: UInt16, _ v: [UInt8]) {
            out += [UInt8(tag & 0xFF), UInt8(tag >> 8), UInt8(v.count & 0xFF), UInt8(v.count >> 8)] + v
        }
        field(1, Array(name.utf8))
        field(2, Array(link.utf8))
        if let port { field(3, Array(port.utf8)) }
        field(4, mac)
        for (a, len) in ips { field(5, a + [len]) }
        if let gateway { field(6, gateway) }
        field(7, (0..<4).map { UInt8(truncatingIfNeeded: mtu >> (8 * $0)) })
        field(8, (0..<4).map { UInt8(truncatingIfNeeded: index >> (8 * $0)) })
        return out
    }

    /// Writes a schema 1 database by hand: tables meta, vnics, names, macs,
    /// ports (no audit), version 1, generation 7, three VNICs (index 1, 2, 4).
    func writeV1Database(corruptIndex: UInt32? = nil) throws {
        let env = try LMDBEnvironment.open(path: path)
        try env.write { txn in
            let meta = try txn.createDatabase("meta"), vnics = try txn.createDatabase("vnics")
            let names = try txn.createDatabase("names"), macs = try txn.createDatabase("macs"), ports = try txn.createDatabase("ports")
            try txn.put(meta, key: Array("schema-version".utf8), value: [1, 0, 0, 0])
            try txn.put(meta, key: Array("generation".utf8), value: [7, 0, 0, 0, 0, 0, 0, 0])
            for (i, name) in [(UInt32(1), "vm1"), (2, "vm2"), (4, "vm4")] {
                let mac: [UInt8] = [2, 0, 0, 0, 1, UInt8(i)]
                var record = Self.v1Record(name: name, link: "uplink0", port: i == 2 ? nil : "\(name)p", mac: mac,
                                           ips: [([10, 77, 0, UInt8(10 + i)], 24)], gateway: i == 1 ? [10, 77, 0, 1] : nil,
                                           mtu: i == 4 ? 9000 : 1500, index: i)
                if i == corruptIndex { record = [1, 0, 1, 0, 9, 0] }
                let key: [UInt8] = [0, 0, 0, UInt8(i)], value: [UInt8] = [UInt8(i), 0, 0, 0]
                try txn.put(vnics, key: key, value: record)
                try txn.put(names, key: Array(name.utf8), value: value)
                try txn.put(macs, key: mac, value: value)
                if i != 2 { try txn.put(ports, key: Array("\(name)p".utf8), value: value) }
            }
        }
    }

    func rawRecord(_ store: ConfigStore, _ index: UInt32) throws -> [UInt8]? {
        try store.environment.read { txn in try txn.get(store.tables.vnics, key: Schema.indexKey(index)).map(Array.init) }
    }

    func testV1DatabaseIsMigratedOnOpen() throws {
        try writeV1Database()
        let store = try ConfigStore.open(path: path, create: false)
        XCTAssertEqual(try store.storedSchemaVersion(), Schema.version)
        XCTAssertEqual(try store.generation(), 8, "the migration is a commit: generation 7 -> 8")
        XCTAssertNotNil(store.tables.audit, "the audit table exists")
        let vnics = try store.vnics()
        XCTAssertEqual(vnics.map(\.name), ["vm1", "vm2", "vm4"])
        XCTAssertEqual(vnics.map(\.index), [1, 2, 4])
        XCTAssertEqual(vnics[0].gateway, IPv4Address("10.77.0.1"))
        XCTAssertEqual(vnics[0].ips, [IPv4Interface("10.77.0.11/24")!])
        XCTAssertEqual(vnics[1].port, nil)
        XCTAssertEqual(vnics[2].mtu, 9000)
        for r in vnics {
            XCTAssertEqual(r.protection, [.macNospoof], "new fields at their defaults")
            XCTAssertEqual(r.priority, .high)
            XCTAssertNil(r.maxbw)
            XCTAssertEqual(r.policy, VNICPolicy())
            let raw = try XCTUnwrap(try rawRecord(store, r.index))
            XCTAssertEqual(Array(raw[0..<2]), [3, 0], "\(r.name): rewritten in the current format")
            XCTAssertEqual(raw, VNICRecordCodec.encode(r))
        }
        XCTAssertEqual(try store.consistencyProblems(), [])
        // It works as a schema 2 database: new VNICs take the free index, properties stick.
        XCTAssertEqual(try store.create(sampleRecord(9)).index, 3)
        try store.update { (tx) throws(VnicError) in
            try tx.update(name: "vm4", reason: "test") { (r) throws(VnicError) in try VNICParameter.maxbw.parse("1G", into: &r) }
        }
        XCTAssertEqual(try store.vnic(named: "vm4")?.maxbw, 1_000_000_000)
        XCTAssertEqual(try store.auditEntries().map(\.parameter), ["vnic", "maxbw"])
        // Opening again migrates nothing.
        XCTAssertEqual(try ConfigStore.open(path: path, create: true).generation(), try store.generation())
    }

    func testAFailedMigrationLeavesTheV1DatabaseAsItWas() throws {
        try writeV1Database(corruptIndex: 2)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        assertVnicError(try ConfigStore.open(path: path, create: false), exitCode: 1, "corrupt")
        let env = try LMDBEnvironment.open(path: path)
        try env.read { txn in
            let meta = try XCTUnwrap(try txn.openDatabase("meta", create: false))
            XCTAssertEqual(try txn.get(meta, key: "schema-version").map(Array.init), [1, 0, 0, 0])
            XCTAssertEqual(try txn.get(meta, key: "generation").map(Array.init), [7, 0, 0, 0, 0, 0, 0, 0])
            XCTAssertNil(try txn.openDatabase("audit", create: false), "no half migration")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)).count, before.count)
    }

    func testV1DatabaseWithoutWriteAccessIsReadAsItIs() throws {
        try writeV1Database()
        // This process holds the file read-only: ConfigStore shares that environment.
        var options = LMDBEnvironment.Options()
        options.readOnly = true
        let readOnly = try LMDBEnvironment.open(path: path, options: options)
        let store = try ConfigStore.open(path: path, create: false)
        XCTAssertTrue(store.environment === readOnly)
        XCTAssertNotNil(store.readOnlyReason)
        XCTAssertEqual(try store.storedSchemaVersion(), 1)
        XCTAssertEqual(try store.vnics().map(\.name), ["vm1", "vm2", "vm4"])
        XCTAssertEqual(try store.generation(), 7)
        XCTAssertEqual(try store.auditEntries(), [])
        assertVnicError(try store.create(sampleRecord(9)), exitCode: 1, "read-only", "nothing was changed")
        // The fast path reads format 1 records too (defaults for the hot fields).
        let reader = try ConfigReader(store: store)
        try reader.beginBurst()
        let v = try XCTUnwrap(reader.vnic(index: 4))
        XCTAssertEqual(v.mac, MACAddress("02:00:00:00:01:04"))
        XCTAssertEqual(v.protection, [.macNospoof])
        XCTAssertEqual(v.mtu, 9000)
        reader.endBurst()
    }
}

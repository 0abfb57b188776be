import Foundation
import XCTest
@testable import VnicConfig
import VnicCore

final class ConfigStoreTests: XCTestCase {
    var dir = ""
    var path: String { dir + "/vnic.db" }

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
    }

    func testCreateReadDeleteRoundTripOfEveryField() throws {
        let store = try ConfigStore.open(path: path, create: true)
        let record = VNICRecord(name: "vm1", link: "uplink0", port: "vm1p", mac: MACAddress("02:00:00:00:01:01")!,
                                ips: [IPv4Interface("10.77.0.11/24")!, IPv4Interface("10.78.0.11/16")!],
                                gateway: IPv4Address("10.77.0.1"), mtu: 9000, index: 4242)
        let stored = try store.create(record)
        var expected = record
        expected.index = 1   // assigned, the input's index is ignored
        XCTAssertEqual(stored, expected)
        XCTAssertEqual(try store.vnic(named: "vm1"), expected)
        XCTAssertEqual(try store.vnic(index: 1), expected)
        XCTAssertEqual(try store.vnics(), [expected])

        let bare = try store.create(VNICRecord(name: "bare", link: "uplink1", mac: MACAddress("02:00:00:00:01:02")!))
        XCTAssertEqual(bare.port, nil)
        XCTAssertEqual(bare.gateway, nil)
        XCTAssertEqual(bare.ips, [])
        XCTAssertEqual(bare.mtu, 1500)
        XCTAssertEqual(try store.vnic(named: "bare"), bare)

        XCTAssertEqual(try store.delete(name: "vm1"), expected)
        XCTAssertNil(try store.vnic(named: "vm1"))
        XCTAssertNil(try store.vnic(index: 1))
        XCTAssertEqual(try store.vnics(), [bare])
        XCTAssertEqual(try store.consistencyProblems(), [])
    }

    func testRecordsSurviveReopening() throws {
        var expected: [VNICRecord] = []
        do {
            let store = try ConfigStore.open(path: path, create: true)
            for n in [3, 1, 2] { expected.append(try store.create(sampleRecord(n))) }
        }
        let reopened = try ConfigStore.open(path: path, create: false)
        XCTAssertEqual(try reopened.vnics(), expected.sorted { $0.name < $1.name })
        XCTAssertEqual(try reopened.generation(), 4)
    }

    func testVNICsAreSortedByName() throws {
        let store = try ConfigStore.open(path: path, create: true)
        for (i, name) in ["zeta", "Alpha", "beta", "alpha", "b.2", "b-1"].enumerated() {
            var r = sampleRecord(i)
            r.name = name
            try store.create(r)
        }
        XCTAssertEqual(try store.vnics().map(\.name), ["Alpha", "alpha", "b-1", "b.2", "beta", "zeta"])
    }

    func testIndexIsSmallestFreeAndReusedAfterDelete() throws {
        let store = try ConfigStore.open(path: path, create: true)
        for n in 0..<5 { XCTAssertEqual(try store.create(sampleRecord(n)).index, UInt32(n + 1)) }
        try store.delete(name: sampleRecord(1).name)   // frees 2
        try store.delete(name: sampleRecord(3).name)   // frees 4
        XCTAssertEqual(try store.create(sampleRecord(10)).index, 2)
        XCTAssertEqual(try store.create(sampleRecord(11)).index, 4)
        XCTAssertEqual(try store.create(sampleRecord(12)).index, 6)
        try store.delete(name: sampleRecord(0).name)   // frees 1
        XCTAssertEqual(try store.create(sampleRecord(13)).index, 1)
        // Indexes of the VNICs that stayed did not move.
        XCTAssertEqual(try store.vnic(named: sampleRecord(2).name)?.index, 3)
        XCTAssertEqual(try store.vnic(named: sampleRecord(4).name)?.index, 5)
        let all = try store.vnics().map(\.index)
        XCTAssertEqual(Set(all).count, all.count)
        XCTAssertEqual(try store.consistencyProblems(), [])
    }

    func testIndexesRunOutAt65535() throws {
        let store = try ConfigStore.open(path: path, create: true)
        // Fill the index space directly (65535 creates would take minutes of fsync).
        try store.environment.write { txn in
            for i in VNICRecord.indexRange {
                var r = sampleRecord(Int(i), group: 9, port: false)
                r.index = i
                try txn.put(store.tables.vnics, key: Schema.indexKey(i), value: VNICRecordCodec.encode(r))
            }
        }
        assertVnicError(try store.create(sampleRecord(1)), exitCode: 1, "no free VNIC index")
        // Freeing one makes exactly that one available.
        try store.environment.write { txn in _ = try txn.delete(store.tables.vnics, key: Schema.indexKey(40000)) }
        XCTAssertEqual(try store.create(sampleRecord(1)).index, 40000)
    }

    func testGenerationBumpsOncePerCommittedWrite() throws {
        let store = try ConfigStore.open(path: path, create: true)
        XCTAssertEqual(try store.generation(), 1, "creating the database is its first write")
        try store.create(sampleRecord(1))
        XCTAssertEqual(try store.generation(), 2)
        try store.create(sampleRecord(2))
        XCTAssertEqual(try store.generation(), 3)
        try store.delete(name: sampleRecord(1).name)
        XCTAssertEqual(try store.generation(), 4)
        // Failed writes commit nothing.
        XCTAssertThrowsError(try store.create(sampleRecord(2)))
        XCTAssertThrowsError(try store.delete(name: "nope"))
        var invalid = sampleRecord(5)
        invalid.mtu = 1
        XCTAssertThrowsError(try store.create(invalid))
        XCTAssertEqual(try store.generation(), 4)
        // Opening again (with create) does not write.
        _ = try ConfigStore.open(path: path, create: true)
        XCTAssertEqual(try store.generation(), 4)
        let snapshot = try store.snapshot()
        XCTAssertEqual(snapshot.generation, 4)
        XCTAssertEqual(snapshot.vnics, try store.vnics())
    }

    func testDuplicatesAreRejectedNamingTheOwner() throws {
        let store = try ConfigStore.open(path: path, create: true)
        let first = try store.create(sampleRecord(1))
        var sameName = sampleRecord(2)
        sameName.name = first.name
        assertVnicError(try store.create(sameName), exitCode: 2, "VNIC '\(first.name)' already exists")
        var sameMAC = sampleRecord(2)
        sameMAC.mac = first.mac
        assertVnicError(try store.create(sameMAC), exitCode: 2, "mac \(first.mac)", "'\(first.name)'")
        var samePort = sampleRecord(2)
        samePort.port = first.port
        assertVnicError(try store.create(samePort), exitCode: 2, "port \(first.port!)", "'\(first.name)'")
        // VNICs without a port do not collide with each other.
        try store.create(sampleRecord(3, port: false))
        try store.create(sampleRecord(4, port: false))
        // After a delete, its name, MAC and port are free again.
        try store.delete(name: first.name)
        var reuse = first
        reuse.index = 0
        XCTAssertEqual(try store.create(reuse).index, 1)
        XCTAssertEqual(try store.vnics().count, 3)
        XCTAssertEqual(try store.consistencyProblems(), [])
    }

    func testInvalidRecordsAreRejected() throws {
        let store = try ConfigStore.open(path: path, create: true)
        var r = sampleRecord(1)
        r.name = "1bad"
        assertVnicError(try store.create(r), exitCode: 2, "name:", "1bad")
        r = sampleRecord(1); r.link = "a/b"
        assertVnicError(try store.create(r), exitCode: 2, "link:")
        r = sampleRecord(1); r.port = String(repeating: "p", count: 16)
        assertVnicError(try store.create(r), exitCode: 2, "port:")
        r = sampleRecord(1); r.mac = MACAddress("01:00:5e:00:00:01")!
        assertVnicError(try store.create(r), exitCode: 2, "mac:")
        r = sampleRecord(1); r.mac = MACAddress(rawValue: 0)
        assertVnicError(try store.create(r), exitCode: 2, "mac:")
        r = sampleRecord(1); r.ips = [IPv4Interface("224.0.0.5/24")!]
        assertVnicError(try store.create(r), exitCode: 2, "ip:")
        r = sampleRecord(1); r.mtu = 100_000
        assertVnicError(try store.create(r), exitCode: 2, "mtu:")
        XCTAssertEqual(try store.vnics(), [])
    }

    func testDeleteOfUnknownVNICIsAUsageError() throws {
        let store = try ConfigStore.open(path: path, create: true)
        assertVnicError(try store.delete(name: "ghost"), exitCode: 2, "VNIC 'ghost' does not exist")
        XCTAssertNil(try store.vnic(named: "ghost"))
    }

    func testOpeningAMissingDatabaseWithoutCreateFailsNamingIt() throws {
        assertVnicError(try ConfigStore.open(path: path, create: false), exitCode: 1, "database \(path) does not exist")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "a failed open must not create the file")
        let nested = dir + "/no/such/dir/vnic.db"
        assertVnicError(try ConfigStore.open(path: nested, create: false), exitCode: 1, nested)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/no"))
    }

    func testCreateMakesTheParentDirectoriesAndTwoFiles() throws {
        let nested = dir + "/a/b/vnic.db"
        let store = try ConfigStore.open(path: nested, create: true)
        try store.create(sampleRecord(1))
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/a/b")
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o755)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/a/b").sorted(), ["vnic.db", "vnic.db-lock"])
    }

    func testGarbageFileFailsClearly() throws {
        let garbage = Data((0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        try garbage.write(to: URL(fileURLWithPath: path))
        for create in [false, true] {
            assertVnicError(try ConfigStore.open(path: path, create: create), exitCode: 1, path, "not an LMDB database")
        }
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: dir + "/short.db"))
        assertVnicError(try ConfigStore.open(path: dir + "/short.db", create: false), exitCode: 1, dir + "/short.db", "LMDB")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), garbage, "the file is left alone")
    }

    func testDirectoryAndForeignLMDBFilesFailClearly() throws {
        assertVnicError(try ConfigStore.open(path: dir, create: true), exitCode: 1, dir, "directory")
        // An LMDB file without our tables (here: an empty file, which LMDB initializes).
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        assertVnicError(try ConfigStore.open(path: path, create: false), exitCode: 1, path, "not a vnic configuration database")
        // With create it becomes one.
        XCTAssertEqual(try ConfigStore.open(path: path, create: true).generation(), 1)
        assertVnicError(try ConfigStore.open(path: "", create: true), exitCode: 2, "empty")
    }

    func testNewerSchemaIsRefused() throws {
        do {
            let store = try ConfigStore.open(path: path, create: true)
            try store.environment.write { txn in
                try txn.put(store.tables.meta, key: Array("schema-version".utf8), value: [4, 0, 0, 0])
            }
        }
        assertVnicError(try ConfigStore.open(path: path, create: false), exitCode: 1, path, "schema version 4")
        assertVnicError(try ConfigStore.open(path: path, create: true), exitCode: 1, path, "schema version 4")
    }

    func testCorruptRecordIsARuntimeErrorNamingTheIndex() throws {
        let store = try ConfigStore.open(path: path, create: true)
        try store.create(sampleRecord(1))
        try store.environment.write { txn in
            try txn.put(store.tables.vnics, key: Schema.indexKey(1), value: [1, 0, 1, 0, 9, 0])
        }
        assertVnicError(try store.vnics(), exitCode: 1, "index 1", "corrupt")
        XCTAssertFalse(try store.consistencyProblems().isEmpty)
    }

    func testOneEnvironmentPerFileInAProcess() throws {
        let a = try ConfigStore.open(path: path, create: true)
        let b = try ConfigStore.open(path: path, create: false)
        let c = try ConfigStore.open(path: dir + "/../" + URL(fileURLWithPath: dir).lastPathComponent + "/vnic.db", create: false)
        XCTAssertTrue(a.environment === b.environment)
        XCTAssertTrue(a.environment === c.environment, "the same file by another path name")
        try b.create(sampleRecord(1))
        XCTAssertEqual(try a.vnics().count, 1, "a reader sees another handle's commit")
        XCTAssertEqual(try a.generation(), 2)
    }

    func testReaderSeesCommitsOfOtherStoresImmediately() throws {
        let reader = try ConfigStore.open(path: path, create: true)
        let before = try reader.generation()
        for n in 0..<20 {
            try reader.create(sampleRecord(n))
            XCTAssertEqual(try reader.generation(), before + UInt64(n) + 1)
        }
    }

    func testDatabasePathResolution() {
        XCTAssertEqual(ConfigStore.databasePath(option: "/x.db", environment: ["VNIC_DB": "/y.db"]), "/x.db")
        XCTAssertEqual(ConfigStore.databasePath(option: nil, environment: ["VNIC_DB": "/y.db"]), "/y.db")
        XCTAssertEqual(ConfigStore.databasePath(option: nil, environment: [:]), "/var/lib/vnic/vnic.db")
        XCTAssertEqual(ConfigStore.databasePath(option: "", environment: ["VNIC_DB": ""]), "/var/lib/vnic/vnic.db")
    }

    func testKeyLayout() throws {
        let store = try ConfigStore.open(path: path, create: true)
        let r = try store.create(sampleRecord(1))
        try store.environment.read { txn in
            let t = store.tables
            XCTAssertEqual(try txn.get(t.meta, key: "schema-version").map(Array.init), [3, 0, 0, 0])
            XCTAssertEqual(try txn.get(t.meta, key: "generation").map(Array.init), [2, 0, 0, 0, 0, 0, 0, 0])
            XCTAssertEqual(try txn.get(t.names, key: r.name).map(Array.init), [1, 0, 0, 0])
            XCTAssertEqual(try txn.get(t.macs, key: r.mac.bytes).map(Array.init), [1, 0, 0, 0])
            XCTAssertEqual(try txn.get(t.ports, key: r.port!).map(Array.init), [1, 0, 0, 0])
            let value = try XCTUnwrap(try txn.get(t.vnics, key: [0, 0, 0, 1]))
            XCTAssertEqual(try VNICRecordCodec.decode(value), r)
            let audit = try XCTUnwrap(t.audit)
            XCTAssertEqual(try txn.count(audit), 1, "the create is audited")
            XCTAssertNotNil(try txn.get(audit, key: [0, 0, 0, 0, 0, 0, 0, 1]), "sequence 1, u64 big-endian")
        }
    }
}

// A host's LMDB database as its copy of the fleet's desired state in etcd
// (VnicFleet's FleetSync), against a real 3-member etcd cluster and a real
// LMDB file: the listing, following, a restart that resumes from the stored
// revision, and 100 changes compacted away while the host was stopped.
import Foundation
import VnicConfig
import VnicCore
import VnicFleet
import XCTest

final class FleetSyncTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("vnic-fleet-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func record(_ name: String, _ n: Int, mtu: UInt32 = 1500) -> VNICRecord {
        var r = VNICRecord(name: name, link: "uplink0", port: "vm\(n)p", mac: MACAddress(rawValue: 0x0200_0000_0100 + UInt64(n)),
                           ips: [IPv4Interface("10.77.\(n / 200).\(n % 200 + 10)/16")!])
        r.mtu = mtu
        return r
    }

    func put(_ client: EtcdClient, host: String, _ r: VNICRecord) throws {
        try client.put(FleetSync.key(host: host, vnic: r.name), VNICRecordCodec.encode(r))
    }

    /// The database's VNICs without the host-local index, by name.
    func copy(_ store: ConfigStore) throws -> [String: VNICRecord] {
        Dictionary(uniqueKeysWithValues: try store.vnics().map { r in var r = r; r.index = 0; return (r.name, r) })
    }

    func waitFor(_ what: String, seconds: Double = 5, _ done: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while try !done() {
            guard Date() < deadline else { throw FixtureError(message: "not within \(seconds) s: \(what)") }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    func testTheDatabaseIsTheCopyOfItsHostsKeysAndFollowsThem() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        for n in 1...3 { try put(client, host: "a", record("vnic\(n)", n)) }
        try put(client, host: "b", record("other", 9))
        let store = try ConfigStore.open(path: dir.appendingPathComponent("a.db").path, create: true)
        let sync = FleetSync(client: client, store: store, host: "a")
        try sync.start()
        defer { sync.stop() }
        XCTAssertEqual(try copy(store).keys.sorted(), ["vnic1", "vnic2", "vnic3"], "host a's VNICs, not b's")
        XCTAssertEqual(try copy(store)["vnic2"], record("vnic2", 2))
        XCTAssertEqual(sync.resyncs, 1)

        let start = Date()
        try put(client, host: "a", record("vnic4", 4))
        try put(client, host: "a", record("vnic2", 2, mtu: 9000))
        let last = try client.delete(FleetSync.key(host: "a", vnic: "vnic1"))
        XCTAssertEqual(last, 1)
        try waitFor("vnic4 created, vnic2's MTU, vnic1 deleted") {
            let c = try copy(store)
            return c.keys.sorted() == ["vnic2", "vnic3", "vnic4"] && c["vnic2"]?.mtu == 9000
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1, "within 1 s of the writes")
        let revision = try XCTUnwrap(client.get(FleetSync.key(host: "a", vnic: "vnic2"))).modRevision
        try waitFor("the stored revision") { try store.fleetRevision() ?? 0 >= UInt64(revision) }
        XCTAssertTrue(try store.auditEntries().contains { $0.reason.hasPrefix("fleet: etcd revision") }, "audited as the fleet's")
        XCTAssertEqual(sync.errors, [])
    }

    /// Stopped, then restarted: it resumes from the revision it stored, with no listing.
    func testARestartResumesFromTheStoredRevision() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        try put(client, host: "a", record("vnic1", 1))
        let store = try ConfigStore.open(path: dir.appendingPathComponent("a.db").path, create: true)
        let first = FleetSync(client: client, store: store, host: "a")
        try first.start()
        first.stop()
        for n in 2...6 { try put(client, host: "a", record("vnic\(n)", n)) }
        let again = FleetSync(client: client, store: store, host: "a")
        try again.start()
        defer { again.stop() }
        try waitFor("vnic1..vnic6") { try copy(store).count == 6 }
        XCTAssertEqual(again.resyncs, 0, "followed from the stored revision, not listed")
    }

    /// The case: 100 changes while the host is stopped, compacted
    /// past them: at start it lists again and converges to exactly etcd's state.
    func testHundredChangesCompactedAwayConvergeExactly() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        for n in 1...20 { try put(client, host: "a", record("vnic\(n)", n)) }
        let store = try ConfigStore.open(path: dir.appendingPathComponent("a.db").path, create: true)
        let first = FleetSync(client: client, store: store, host: "a")
        try first.start()
        try waitFor("20 VNICs") { try copy(store).count == 20 }
        first.stop()
        var desired = Dictionary(uniqueKeysWithValues: (1...20).map { ("vnic\($0)", record("vnic\($0)", $0)) })
        var rng = SystemRandomNumberGenerator()
        for k in 0..<100 {
            let n = Int.random(in: 1...40, using: &rng)
            let name = "vnic\(n)"
            if k % 3 == 2, desired[name] != nil {
                try client.delete(FleetSync.key(host: "a", vnic: name))
                desired[name] = nil
            } else {
                let r = record(name, n, mtu: UInt32(1280 + k))
                try put(client, host: "a", r)
                desired[name] = r
            }
        }
        let now = try client.list(prefix: "/").revision
        try client.compact(now)
        let again = FleetSync(client: client, store: store, host: "a")
        try again.start()
        defer { again.stop() }
        try waitFor("the copy of etcd's state") { try copy(store) == desired }
        XCTAssertEqual(again.resyncs, 1, "listed once, when the stored revision was found compacted")
        XCTAssertEqual(try store.consistencyProblems(), [])
        XCTAssertEqual(again.errors, [])
    }

    /// The host's audit entries go to etcd in order, the newest `auditKept`
    /// kept; a new publisher goes on after the last one etcd has.
    func testTheHostsAuditGoesToEtcdInOrderAndIsTrimmed() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        let store = try ConfigStore.open(path: dir.appendingPathComponent("a.db").path, create: true)
        func audit(_ n: Int) throws {
            try store.appendAudit((0..<n).map { AuditEntry(vnic: "vnic1", origin: .host, parameter: "mtu", old: nil, new: "\($0)",
                                                          verdict: .applied, reason: "test") })
        }
        func published() throws -> [UInt64] {
            let prefix = HostPublisher.auditPrefix(host: "a")
            return try client.list(prefix: prefix).kvs.compactMap { UInt64($0.key.dropFirst(prefix.count)) }
        }
        try audit(30)
        var publisher = HostPublisher(client: client, host: "a", store: store, auditKept: 10)
        publisher.start()
        try waitFor("30 entries published, 10 kept") { try published() == Array(21...30) }
        publisher.stop()
        let kv = try XCTUnwrap(client.get(HostPublisher.auditKey(host: "a", sequence: 30)))
        XCTAssertEqual(try AuditEntry.decode(kv.value, sequence: 30).new, "29", "the entry itself")
        try audit(5)
        publisher = HostPublisher(client: client, host: "a", store: store, auditKept: 10)
        publisher.start()
        defer { publisher.stop() }
        try waitFor("31...35 after a restart") { try published() == Array(26...35) }
    }

    /// A record the database refuses (a MAC another VNIC has) is left out and
    /// said once; the host's other VNICs are copied.
    func testARefusedRecordIsLeftOutAndSaidOnce() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        try put(client, host: "a", record("vnic1", 1))
        var clash = record("vnic2", 2)
        clash.mac = record("vnic1", 1).mac
        try put(client, host: "a", clash)
        try put(client, host: "a", record("vnic3", 3))
        let store = try ConfigStore.open(path: dir.appendingPathComponent("a.db").path, create: true)
        let sync = FleetSync(client: client, store: store, host: "a")
        try sync.resync()
        XCTAssertEqual(try copy(store).keys.sorted(), ["vnic1", "vnic3"])
        let said = sync.newErrors()
        XCTAssertEqual(said.count, 1)
        XCTAssertTrue(said.first?.contains("vnic vnic2: mac 02:00:00:00:01:01 is already used by VNIC 'vnic1'") == true, "\(said)")
        XCTAssertEqual(sync.newErrors(), [], "said once")
    }
}

// The fleet's etcd client (VnicFleet) against a real 3-member etcd cluster on
// loopback: what vnicd and vnicadm --etcd will build on (issue 19): reads and
// writes through any member, a transaction's compare on a key's mod revision
// (how a VM's request and an admin's change to the same VNIC are ordered), a
// watch from a revision that survives the loss of the member it streams from,
// a compacted revision reported, leases, and all members gone said in one line.
import Foundation
import VnicCore
import VnicFleet
import XCTest

final class EtcdClientTests: XCTestCase {
    func testWritesAreReadFromEveryMemberAndListedByPrefix() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        let r1 = try client.put("/vnic/hosts/a/vnics/vnic1", Array("mtu=1500".utf8))
        let r2 = try client.put("/vnic/hosts/a/vnics/vnic2", Array("mtu=9000".utf8))
        try client.put("/vnic/hosts/b/vnics/vnic1", Array("x".utf8))
        XCTAssertEqual(r2, r1 + 1)
        for i in cluster.clientPorts.indices {
            let one = try EtcdClient(endpoints: "127.0.0.1:\(cluster.clientPorts[i])")
            XCTAssertEqual(try one.get("/vnic/hosts/a/vnics/vnic2")?.text, "mtu=9000", "member \(i)")
        }
        let listed = try client.list(prefix: "/vnic/hosts/a/")
        XCTAssertEqual(listed.kvs.map(\.key), ["/vnic/hosts/a/vnics/vnic1", "/vnic/hosts/a/vnics/vnic2"], "host a's keys only, sorted")
        XCTAssertEqual(listed.revision, r2 + 1)
        XCTAssertEqual(try client.list(prefix: "/vnic/hosts/a/", revision: r1).kvs.count, 1, "as of a past revision")
        XCTAssertEqual(try client.delete("/vnic/hosts/a/", prefix: true), 2)
        XCTAssertNil(try client.get("/vnic/hosts/a/vnics/vnic1"))
    }

    /// The compare-and-swap a VM request commits with: on the mod revision the
    /// request was checked against; an admin's change in between wins.
    func testATransactionHoldsOnlyIfTheKeyIsUnchanged() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        try client.put("/vnic/k", Array("1".utf8))
        let seen = try XCTUnwrap(client.get("/vnic/k")).modRevision
        try client.put("/vnic/k", Array("admin".utf8))   // the admin's change
        let lost = try client.transaction(if: [.modRevision("/vnic/k", seen)], then: [.put("/vnic/k", Array("vm".utf8))])
        XCTAssertFalse(lost.succeeded)
        XCTAssertEqual(try client.get("/vnic/k")?.text, "admin", "the value that stands")
        let now = try XCTUnwrap(client.get("/vnic/k")).modRevision
        let won = try client.transaction(if: [.modRevision("/vnic/k", now)], then: [.put("/vnic/k", Array("vm".utf8))])
        XCTAssertTrue(won.succeeded)
        XCTAssertEqual(try client.get("/vnic/k")?.text, "vm")
        XCTAssertTrue(try client.transaction(if: [.modRevision("/vnic/new", 0)], then: [.put("/vnic/new", [1])]).succeeded,
                      "mod revision 0: the key does not exist yet")
    }

    /// A watch from a revision delivers every change in order, once each, also
    /// across the kill of the member it streams from, the leader; writes go
    /// on through the others.
    func testAWatchResumesOnAnotherMemberWhenItsMemberDies() throws {
        let cluster = try EtcdCluster(test: self)
        let leader = try cluster.waitForLeader()
        // The leader first: the watch streams from it.
        let order = [leader] + cluster.clientPorts.indices.filter { $0 != leader }
        let client = try EtcdClient(endpoints: order.map { "127.0.0.1:\(cluster.clientPorts[$0])" }.joined(separator: ","))
        let start = try client.put("/vnic/w/0", Array("0".utf8))
        let events = Events()
        let watch = EtcdWatch(client: client, prefix: "/vnic/w/", from: start) { events.append(contentsOf: $0) }
        defer { watch.cancel() }
        for i in 1...5 { try client.put("/vnic/w/\(i)", Array("\(i)".utf8)) }
        try events.wait(puts: 6)
        cluster.kill(leader)
        XCTAssertNotEqual(try cluster.waitForLeader(), leader, "a new leader")
        for i in 6...10 { try client.put("/vnic/w/\(i)", Array("\(i)".utf8)) }
        try client.delete("/vnic/w/3")
        try events.wait(puts: 11, deletes: 1)
        XCTAssertEqual(events.puts.map(\.key), (0...10).map { "/vnic/w/\($0)" }, "every put once, in order")
        XCTAssertEqual(events.puts.map(\.modRevision), Array(start...(start + 10)))
        XCTAssertEqual(events.deletes, ["/vnic/w/3"])
        XCTAssertGreaterThanOrEqual(watch.restarts, 1, "the stream started again on another member")
    }

    func testAWatchFromACompactedRevisionSaysSo() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        let first = try client.put("/vnic/c", [1])
        for v in 2...5 { try client.put("/vnic/c", [UInt8(v)]) }
        let last = try client.put("/vnic/c", [6])
        try client.compact(last)
        let events = Events()
        let watch = EtcdWatch(client: client, prefix: "/vnic/", from: first) { events.append(contentsOf: $0) }
        defer { watch.cancel() }
        try events.wait { $0.compacted != nil }
        XCTAssertEqual(events.compacted, last)
        XCTAssertTrue(events.puts.isEmpty)
    }

    func testALeaseKeepsItsKeyWhileRenewed() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        let lease = try client.grantLease(ttl: 2)
        try client.put("/vnic/hosts/a/alive", Array("up".utf8), lease: lease)
        for _ in 0..<4 {
            Thread.sleep(forTimeInterval: 0.75)
            XCTAssertGreaterThan(try client.keepAlive(lease), 0)
        }
        XCTAssertEqual(try client.get("/vnic/hosts/a/alive")?.lease, lease, "3 s on a 2 s lease: kept by renewals")
        let deadline = Date().addingTimeInterval(6)
        while try client.get("/vnic/hosts/a/alive") != nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        XCTAssertNil(try client.get("/vnic/hosts/a/alive"), "gone once no longer renewed")
    }

    func testEveryMemberGoneIsOneLineNamingThem() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints, timeout: 0.5)
        for i in cluster.clientPorts.indices { cluster.kill(i) }
        XCTAssertThrowsError(try client.get("/vnic/x")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("etcd unreachable"), text)
            for p in cluster.clientPorts { XCTAssertTrue(text.contains("127.0.0.1:\(p)"), text) }
            XCTAssertFalse(text.contains("\n"))
        }
        XCTAssertThrowsError(try EtcdClient(endpoints: "127.0.0.1")) { XCTAssertTrue("\($0)".contains("not an endpoint")) }
    }
}

/// What a watch delivered, for a test to wait on.
final class Events: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [WatchEvent] = []

    func append(contentsOf e: [WatchEvent]) { lock.lock(); list += e; lock.unlock() }
    var all: [WatchEvent] { lock.lock(); defer { lock.unlock() }; return list }
    var puts: [KeyValue] { all.compactMap { if case .put(let kv) = $0 { kv } else { nil } } }
    var deletes: [String] { all.compactMap { if case .delete(let k, _) = $0 { k } else { nil } } }
    var compacted: Int64? { all.lazy.compactMap { if case .compacted(let r) = $0 { r } else { nil } }.first }

    func wait(seconds: Double = 10, until done: (Events) -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !done(self) {
            guard Date() < deadline else { throw FixtureError(message: "watch: after \(seconds) s: \(all)") }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    func wait(puts: Int, deletes: Int = 0) throws {
        try wait { $0.puts.count >= puts && $0.deletes.count >= deletes }
    }
}

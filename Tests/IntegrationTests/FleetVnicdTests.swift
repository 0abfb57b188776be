// vnicd --etcd ENDPOINTS --host NAME in a lab (issue 19, first wiring): the
// host's VNICs come from etcd through its database (FleetSync), another
// host's do not, a VNIC created with `vnicadm --etcd` is up within 1 s and one
// deleted goes, and a restart resumes from the database's copy. etcd runs in
// the lab's host namespace, where vnicd is (a namespace's loopback is its
// own); the test writes there with vnicadm, or etcd's JSON gateway.
import Foundation
import VnicConfig
import VnicCore
import VnicFleet
import VnicLabKit
import XCTest

final class FleetVnicdTests: XCTestCase {
    func testVnicdServesItsHostsVNICsFromEtcd() throws {
        let lab = try LabFixture(test: self, vms: 2)
        let t = lab.topology
        let cluster = try EtcdCluster(members: 3, namespace: t.hostNamespace, test: self)
        func record(_ vm: Int, name: String? = nil) -> VNICRecord {
            VNICRecord(name: name ?? "vnic\(vm)", link: t.uplink, port: t.port(vm), mac: t.vmMAC(vm), ips: [t.vmIP(vm)])
        }
        func put(_ host: String, _ r: VNICRecord) throws {
            _ = try cluster.gateway(0, "/v3/kv/put", ["key": Data(FleetSync.key(host: host, vnic: r.name).utf8).base64EncodedString(),
                                                     "value": Data(VNICRecordCodec.encode(r)).base64EncodedString()])
        }
        func waitFor(_ what: String, seconds: Double = 1, _ done: (RuntimeStatus) -> Bool) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let s = lab.status(), done(s) { return }
                usleep(20_000)
            }
            throw FixtureError(message: "not within \(seconds) s: \(what); status: \(lab.status().map { "\($0.vnics.mapValues(\.state))" } ?? "none")")
        }
        try put("A", record(1))
        try put("B", record(2, name: "elsewhere"))
        let argv = [try lab.bin("vnicd"), "--db", lab.database, "--link", t.uplink, "--etcd", cluster.endpoints, "--host", "A"]
        var vnicd = try lab.start(in: t.hostNamespace, argv)
        try waitFor("vnic1 up", seconds: 10) { $0.vnics["vnic1"]?.state == "up" }
        XCTAssertNil(lab.status()?.vnics["elsewhere"], "host B's VNIC is not A's")
        XCTAssertTrue(vnicd.stderrSoFar.contains("fleet: host A follows etcd"), vnicd.stderrSoFar)

        // What an admin types, on a host of the fleet (here the lab's, where etcd answers).
        func vnicadm(_ args: String...) throws {
            let r = try lab.run(in: t.hostNamespace, [try lab.bin("vnicadm"), "--etcd", cluster.endpoints, "--host", "A"] + args)
            XCTAssertTrue(r.succeeded, r.diagnostic)
        }
        try vnicadm("create-vnic", "-l", t.uplink, "-m", t.vmMAC(2).description, "--port", t.port(2), "-i", t.vmIP(2).description, "vnic2")
        try waitFor("vnic2 up within 1 s of vnicadm --etcd create-vnic") { $0.vnics["vnic2"]?.state == "up" }
        try vnicadm("delete-vnic", "vnic1")
        try waitFor("vnic1 gone within 1 s of vnicadm --etcd delete-vnic") { $0.vnics["vnic1"] == nil }

        // The host's status, published under its lease, read from etcd (within its publishing second).
        func showStats(_ args: String...) throws -> CommandResult {
            try lab.run(in: t.hostNamespace, [try lab.bin("vnicadm"), "--etcd", cluster.endpoints, "--host", "A", "show-stats"] + args)
        }
        let until = Date().addingTimeInterval(3)
        var stats = try showStats("-p", "-o", "link,state")
        while !(stats.succeeded && stats.stdout.contains("vnic2:up") && !stats.stdout.contains("vnic1:")) && Date() < until {
            usleep(200_000)
            stats = try showStats("-p", "-o", "link,state")
        }
        XCTAssertTrue(stats.stdout.contains("vnic2:up") && !stats.stdout.contains("vnic1:"), stats.diagnostic)
        // The host's audit entries, published to etcd: the creation the fleet made.
        var events = try lab.run(in: t.hostNamespace, [try lab.bin("vnicadm"), "--etcd", cluster.endpoints, "--host", "A",
                                                       "show-events", "-p", "-o", "vnic,reason", "vnic2"])
        let auditUntil = Date().addingTimeInterval(3)
        while !events.stdout.contains("etcd revision") && Date() < auditUntil {
            usleep(200_000)
            events = try lab.run(in: t.hostNamespace, [try lab.bin("vnicadm"), "--etcd", cluster.endpoints, "--host", "A",
                                                       "show-events", "-p", "-o", "vnic,reason", "vnic2"])
        }
        XCTAssertTrue(events.stdout.hasPrefix("vnic2:fleet") && events.stdout.contains("etcd revision"), events.diagnostic)

        // Stopped; a change meanwhile; started again from the database's copy.
        let stopped = vnicd.terminate()
        stats = try showStats()
        XCTAssertEqual(stats.status, 1, "a stopped host publishes no status: \(stopped.stderr.suffix(600))")
        XCTAssertTrue(stats.stderr.contains("host A publishes no status"), stats.stderr)
        try put("A", record(1))
        // 100 changes while vnicd is stopped (each its own revision), then etcd
        // compacted past them: at start vnicd lists again and converges exactly.
        var lines: [String] = []
        for k in 0..<100 {
            switch k % 4 {
            case 0, 1: lines.append("create-vnic -l \(t.uplink) -m 02:00:00:00:0a:\(String(format: "%02x", k)) --port p\(k) x\(k)")
            case 2: lines.append("set-linkprop -p priority=low x\(k - 1)")
            default: lines.append("delete-vnic x\(k - 3)")
            }
        }
        let file = lab.path("changes.txt")
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        try vnicadm("batch", "--per-line", "-f", file)
        let top = try cluster.gateway(0, "/v3/kv/range", ["key": Data("/".utf8).base64EncodedString(), "count_only": true])
        let revision = try XCTUnwrap((top["header"] as? [String: Any])?["revision"] as? String)
        _ = try cluster.gateway(0, "/v3/kv/compaction", ["revision": revision, "physical": true])
        vnicd = try lab.start(in: t.hostNamespace, argv)
        try waitFor("vnic1 and vnic2 up after the restart", seconds: 10) {
            $0.vnics["vnic1"]?.state == "up" && $0.vnics["vnic2"]?.state == "up"
        }
        let store = try ConfigStore.open(path: lab.database, create: false)
        let desired = try lab.run(in: t.hostNamespace, [try lab.bin("vnicadm"), "--etcd", cluster.endpoints, "--host", "A",
                                                        "show-vnic", "-p", "-o", "name,mac,port,mtu"]).stdout
        let local = try lab.vnicadm("show-vnic", "-p", "-o", "name,mac,port,mtu").stdout
        XCTAssertEqual(local, desired, "exactly etcd's state")
        XCTAssertEqual(try store.vnics().count, 2 + 50 - 25, "vnic1, vnic2 and the 25 x* not deleted")
        XCTAssertEqual(try store.vnics().filter { $0.priority == .low }.count, 25)
        XCTAssertNotNil(try store.fleetRevision())
        _ = vnicd.terminate()
    }

    /// A VM's request through the fleet: committed to etcd (compare on the
    /// VNIC's revision) before the VM hears "accepted"; with etcd gone, denied
    /// and audited ("fleet store unreachable") while forwarding goes on.
    func testAVMRequestIsCommittedToEtcdFirstAndDeniedWithoutIt() throws {
        let lab = try LabFixture(test: self, vms: 1)
        let t = lab.topology
        let cluster = try EtcdCluster(members: 3, namespace: t.hostNamespace, test: self)
        var r = VNICRecord(name: "vnic1", link: t.uplink, port: t.port(1), mac: t.vmMAC(1), ips: [t.vmIP(1)])
        r.policy[.mtu] = try VNICParameter.mtu.parsePolicy("1280-9000")
        let key = Data(FleetSync.key(host: "A", vnic: "vnic1").utf8).base64EncodedString()
        _ = try cluster.gateway(0, "/v3/kv/put", ["key": key, "value": Data(VNICRecordCodec.encode(r)).base64EncodedString()])
        let vnicd = try lab.start(in: t.hostNamespace, [try lab.bin("vnicd"), "--db", lab.database, "--link", t.uplink,
                                                         "--etcd", cluster.endpoints, "--host", "A"])
        let deadline = Date().addingTimeInterval(10)
        while lab.status()?.vnics["vnic1"]?.state != "up" && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(lab.status()?.vnics["vnic1"]?.state, "up", vnicd.stderrSoFar)

        let ok = try lab.run(in: t.vmNamespace(1), [try lab.bin("vnic-guest"), "request", "mtu=1400"], timeout: .seconds(20))
        XCTAssertEqual(ok.status, 0, ok.diagnostic)
        let kvs = try cluster.gateway(1, "/v3/kv/range", ["key": key])["kvs"] as? [[String: Any]] ?? []
        let stored = try VNICRecordCodec.decode([UInt8](try XCTUnwrap((kvs.first?["value"] as? String).flatMap { Data(base64Encoded: $0) })))
        XCTAssertEqual(stored.mtu, 1400, "in etcd")
        let store = try ConfigStore.open(path: lab.database, create: false)
        XCTAssertEqual(try store.vnic(named: "vnic1")?.mtu, 1400, "in the host's copy")
        XCTAssertEqual(try lab.link(t.vmInterface, in: t.vmNamespace(1)).mtu, 1400, "in the guest")

        for i in cluster.members.indices { cluster.kill(i) }
        let denied = try lab.run(in: t.vmNamespace(1), [try lab.bin("vnic-guest"), "request", "mtu=1300", "--timeout", "5"],
                                 timeout: .seconds(20))
        XCTAssertNotEqual(denied.status, 0, "no acceptance without the fleet store")
        XCTAssertEqual(try store.vnic(named: "vnic1")?.mtu, 1400, "unchanged")
        let last = try XCTUnwrap(store.auditEntries().last { $0.origin == .vm })
        XCTAssertEqual(last.verdict, .denied)
        XCTAssertTrue(last.reason.hasPrefix("fleet store unreachable"), last.reason)
        let ping = try lab.run(in: t.wireNamespace, "ping", "-c", "3", "-i", "0.2", "-W", "2", t.vmIP(1).address.description)
        XCTAssertTrue(ping.succeeded, "forwarding goes on without etcd: \(ping.stdout)")
    }

    /// Two hosts (two labs, two vnicd) on one 3-member cluster. A VNIC
    /// created for host A is up on A within 1 s and absent on B; the etcd
    /// leader killed, both keep forwarding and a change made after the
    /// election reaches its host; a delete removes the VNIC; B cut off from
    /// etcd forwards with no loss, denies and audits its VM's request, and
    /// converges when it reaches etcd again. The cluster runs in A's host
    /// namespace; B's reaches it over a veth pair between the two labs' host
    /// namespaces (cut by setting B's end down).
    func testTwoHostsOnOneClusterTheLeaderKilledAndAHostCutOff() throws {
        let a = try LabFixture(test: self, vms: 1), b = try LabFixture(test: self, vms: 1)
        let ta = a.topology, tb = b.topology
        let (va, vb) = ("f\(a.prefix.suffix(5))a", "f\(a.prefix.suffix(5))b")
        _ = try Command.run(["ip", "link", "add", va, "netns", ta.hostNamespace, "type", "veth", "peer", "name", vb, "netns", tb.hostNamespace])
        for (ns, dev, addr) in [(ta.hostNamespace, va, "10.254.0.1/30"), (tb.hostNamespace, vb, "10.254.0.2/30")] {
            for args in [["ip", "addr", "add", addr, "dev", dev], ["ip", "link", "set", dev, "up"], ["ip", "link", "set", "lo", "up"]] {
                let r = try inNamespace(ns, args)
                XCTAssertTrue(r.succeeded, r.diagnostic)
            }
        }
        let cluster = try EtcdCluster(members: 3, namespace: ta.hostNamespace, alsoListen: "10.254.0.1", test: self)
        let fromA = cluster.endpoints, fromB = cluster.endpoints(at: "10.254.0.1")
        func vnicadm(_ host: String, _ args: String...) throws {
            let r = try a.run(in: ta.hostNamespace, [try a.bin("vnicadm"), "--etcd", fromA, "--host", host] + args)
            XCTAssertTrue(r.succeeded, r.diagnostic)
        }
        func waitFor(_ lab: LabFixture, _ what: String, seconds: Double, _ done: (RuntimeStatus) -> Bool) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let s = lab.status(), done(s) { return }
                usleep(20_000)
            }
            throw FixtureError(message: "\(lab.prefix): not within \(seconds) s: \(what); status: \(lab.status().map { "\($0.vnics.mapValues(\.state))" } ?? "none")")
        }
        func ping(_ lab: LabFixture) throws -> Bool {
            try lab.run(in: lab.topology.wireNamespace, "ping", "-c", "2", "-i", "0.2", "-W", "2",
                        lab.topology.vmIP(1).address.description).succeeded
        }
        try vnicadm("B", "create-vnic", "-l", tb.uplink, "-m", tb.vmMAC(1).description, "--port", tb.port(1), "-i", tb.vmIP(1).description, "b1")
        _ = try a.start(in: ta.hostNamespace, [try a.bin("vnicd"), "--db", a.database, "--link", ta.uplink, "--etcd", fromA, "--host", "A"])
        _ = try b.start(in: tb.hostNamespace, [try b.bin("vnicd"), "--db", b.database, "--link", tb.uplink, "--etcd", fromB, "--host", "B"])
        try waitFor(b, "b1 up on B", seconds: 10) { $0.vnics["b1"]?.state == "up" }
        try waitFor(a, "vnicd A serving", seconds: 10) { _ in true }

        try vnicadm("A", "create-vnic", "-l", ta.uplink, "-m", ta.vmMAC(1).description, "--port", ta.port(1), "-i", ta.vmIP(1).description, "a1")
        try waitFor(a, "a1 up on A within 1 s", seconds: 1) { $0.vnics["a1"]?.state == "up" }
        XCTAssertNil(b.status()?.vnics["a1"], "not on B")
        XCTAssertTrue(try ping(a) && ping(b), "both forward")

        let leader = try cluster.waitForLeader()
        cluster.kill(leader)
        XCTAssertNotEqual(try cluster.waitForLeader(), leader)
        XCTAssertTrue(try ping(a) && ping(b), "both forward after the leader's loss")
        try vnicadm("B", "set-linkprop", "-p", "protection=mac-nospoof,ip-nospoof", "b1")
        let store = try ConfigStore.open(path: b.database, create: false)
        let deadline = Date().addingTimeInterval(5)
        while try store.vnic(named: "b1")?.protection != [.macNospoof, .ipNospoof] && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(try store.vnic(named: "b1")?.protection, [.macNospoof, .ipNospoof], "a change after the election reached B")

        try vnicadm("A", "delete-vnic", "a1")
        try waitFor(a, "a1 removed from A within 1 s", seconds: 1) { $0.vnics["a1"] == nil }

        // B cut off from etcd: it forwards with no loss, denies its VM's request
        // (audited), and converges once it reaches etcd again.
        try vnicadm("B", "set-policy", "-p", "mtu=1280-9000", "b1")
        while try store.vnic(named: "b1")?.policy[.mtu] == nil && Date() < deadline.addingTimeInterval(5) { usleep(50_000) }
        XCTAssertTrue(try inNamespace(tb.hostNamespace, "ip", "link", "set", vb, "down").succeeded)
        let flood = try b.run(in: tb.wireNamespace, "ping", "-c", "50", "-i", "0.02", "-W", "1", tb.vmIP(1).address.description)
        XCTAssertTrue(flood.stdout.contains(" 0% packet loss"), "no loss while etcd is unreachable: \(flood.stdout)")
        let request = try b.run(in: tb.vmNamespace(1), [try b.bin("vnic-guest"), "request", "mtu=1400", "--timeout", "8"], timeout: .seconds(30))
        XCTAssertNotEqual(request.status, 0, "not accepted without the fleet store")
        let audit = try XCTUnwrap(store.auditEntries().last { $0.origin == .vm })
        XCTAssertTrue(audit.verdict == .denied && audit.reason.hasPrefix("fleet store unreachable"), "\(audit)")
        try vnicadm("B", "set", "b1", "mtu=1300")   // made while B cannot hear it
        XCTAssertEqual(try store.vnic(named: "b1")?.mtu, 1500)
        XCTAssertTrue(try inNamespace(tb.hostNamespace, "ip", "link", "set", vb, "up").succeeded)
        let back = Date().addingTimeInterval(30)
        while try store.vnic(named: "b1")?.mtu != 1300 && Date() < back { usleep(100_000) }
        XCTAssertEqual(try store.vnic(named: "b1")?.mtu, 1300, "B converged once it reached etcd again")
    }

    /// A VM's request and an admin's change to the same VNIC at once: whichever
    /// etcd takes last stands, and etcd, the host's database and the guest's
    /// interface agree on it.
    func testAVMRequestAndAnAdminChangeAtOnceEndAgreed() throws {
        let lab = try LabFixture(test: self, vms: 1)
        let t = lab.topology
        let cluster = try EtcdCluster(members: 3, namespace: t.hostNamespace, test: self)
        func vnicadm(_ args: String...) throws -> CommandResult {
            try lab.run(in: t.hostNamespace, [try lab.bin("vnicadm"), "--etcd", cluster.endpoints, "--host", "A"] + args)
        }
        XCTAssertTrue(try vnicadm("create-vnic", "-l", t.uplink, "-m", t.vmMAC(1).description, "--port", t.port(1),
                                  "-i", t.vmIP(1).description, "vnic1").succeeded)
        XCTAssertTrue(try vnicadm("set-policy", "-p", "mtu=1280-9000", "vnic1").succeeded)
        _ = try lab.start(in: t.hostNamespace, [try lab.bin("vnicd"), "--db", lab.database, "--link", t.uplink,
                                                 "--etcd", cluster.endpoints, "--host", "A"])
        var deadline = Date().addingTimeInterval(10)
        while lab.status()?.vnics["vnic1"]?.state != "up" && Date() < deadline { usleep(50_000) }
        let store = try ConfigStore.open(path: lab.database, create: false)   // vnicd made it
        while try store.vnic(named: "vnic1")?.policy[.mtu] == nil && Date() < deadline { usleep(50_000) }
        _ = try lab.start(in: t.vmNamespace(1), [try lab.bin("vnic-guest"), "listen"])   // applies what the host changes
        usleep(300_000)
        for round in 0..<3 {
            let (vm, admin) = (1400 - 10 * round, 1300 - 10 * round)
            let request = try lab.start(in: t.vmNamespace(1), [try lab.bin("vnic-guest"), "request", "mtu=\(vm)", "--timeout", "5"])
            let set = try vnicadm("set", "vnic1", "mtu=\(admin)", "--wait", "0")
            _ = request.wait(timeout: .seconds(20))
            XCTAssertTrue(set.succeeded || set.stderr.contains("changed in etcd meanwhile"), set.diagnostic)
            // Agreement: etcd, the host's copy, the guest's interface.
            var agreed = false
            deadline = Date().addingTimeInterval(5)
            var last = ""
            while !agreed && Date() < deadline {
                usleep(100_000)
                let fleet = Int(try vnicadm("show-vnic", "-p", "-o", "mtu", "vnic1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
                let local = Int(try store.vnic(named: "vnic1")?.mtu ?? 0)
                let guest = try lab.link(t.vmInterface, in: t.vmNamespace(1)).mtu
                last = "etcd \(fleet), host \(local), guest \(guest)"
                agreed = fleet == local && local == guest && [vm, admin].contains(fleet)
            }
            XCTAssertTrue(agreed, "round \(round): \(last)")
        }
    }
}

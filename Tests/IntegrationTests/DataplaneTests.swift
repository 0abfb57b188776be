// Dataplane integration tests: the real vnicd, vnicadm and vnic-pktgen binaries
// in a namespace lab per test, with the XDP classifier loaded into the kernel and
// real AF_XDP sockets. Each test builds its own lab (unique prefix) and tears it
// down, whatever happens.
import Foundation
import VnicCore
import VnicPlatform
import VnicLabKit
import XCTest

final class DataplaneTests: XCTestCase {

    // MARK: helpers

    private func makeLab(vms: Int = 2, queues: Int = 2) throws -> (LabFixture, String) {
        let lab = try LabFixture(test: self, vms: vms, queues: queues)
        try lab.createVNICs()
        return (lab, lab.database)
    }

    private func xdpAttached(_ lab: LabFixture) throws -> [String] {
        try lab.links(in: lab.topology.hostNamespace).filter { $0.xdp != nil }.map(\.name)
    }

    private func ping(_ lab: LabFixture, from ns: String, _ ip: IPv4Address) throws -> CommandResult {
        try lab.run(in: ns, "ping", "-c", "2", "-i", "0.2", "-W", "2", "\(ip)")
    }

    // MARK: tests

    /// Ping from the wire to each VM, from each VM to the wire, and VM to VM (ARP included).
    func testPingThroughVnicd() throws {
        let (lab, _) = try makeLab()
        let t = lab.topology
        _ = try lab.startVnicd()
        for vm in t.vmNumbers {
            var r = try ping(lab, from: t.wireNamespace, t.vmIP(vm).address)
            XCTAssertTrue(r.succeeded, "wire -> vm\(vm): \(r.stdout) \(r.stderr)")
            r = try ping(lab, from: t.vmNamespace(vm), t.wireIP.address)
            XCTAssertTrue(r.succeeded, "vm\(vm) -> wire: \(r.stdout) \(r.stderr)")
        }
        let r = try ping(lab, from: t.vmNamespace(1), t.vmIP(2).address)
        XCTAssertTrue(r.succeeded, "vm1 -> vm2: \(r.stdout) \(r.stderr)")
        // VM to VM stays inside the appliance: nothing of it reaches the uplink.
        let s = try lab.freshStatus()
        XCTAssertGreaterThan(s.vnics["vnic2"]?.rxPackets ?? 0, 0)
    }

    /// The generic (skb) XDP mode forwards too, for drivers without native XDP.
    func testGenericXDPModeForwards() throws {
        let (lab, _) = try makeLab(queues: 1)
        let t = lab.topology
        _ = try lab.startVnicd(["--xdp-mode", "generic"])
        XCTAssertTrue(try lab.links(in: t.hostNamespace).first { $0.name == t.uplink }?.xdp != nil)
        var r = try ping(lab, from: t.wireNamespace, t.vmIP(1).address)
        XCTAssertTrue(r.succeeded, "wire -> vm1 in generic mode: \(r.stdout)")
        r = try ping(lab, from: t.vmNamespace(2), t.vmIP(1).address)
        XCTAssertTrue(r.succeeded, "vm2 -> vm1 in generic mode: \(r.stdout)")
    }

    /// 10,000 frames to VM1's MAC reach VM1 and only VM1, over both uplink queues;
    /// frames to an unknown MAC reach no VM and are counted; workers are pinned.
    func testSteeringByDestinationMACOnTwoQueues() throws {
        let (lab, _) = try makeLab()
        let t = lab.topology
        let vnicd = try lab.startVnicd()
        let sink1 = try lab.startSink(vm: 1, seconds: 6)
        let sink2 = try lab.startSink(vm: 2, seconds: 6)
        let pktgen = try lab.bin("vnic-pktgen")
        var r = try lab.run(in: t.wireNamespace, pktgen, "-i", t.wire, "--dst-mac", "\(t.vmMAC(1))",
                            "--dst-ip", "\(t.vmIP(1).address)", "--count", "10000", "--queues", "2",
                            "--flows", "4", "--rate", "20000")
        XCTAssertTrue(r.succeeded, r.diagnostic)
        r = try lab.run(in: t.wireNamespace, pktgen, "-i", t.wire, "--dst-mac", "02:00:00:00:0e:ee",
                        "--count", "1234", "--queues", "2", "--rate", "20000")
        XCTAssertTrue(r.succeeded, r.diagnostic)
        let got1 = try SinkReport(sink1), got2 = try SinkReport(sink2)
        XCTAssertEqual(got1.received, 10000, "frames to VM1's MAC that reached VM1")
        XCTAssertEqual(got1.out_of_order, 0)
        XCTAssertEqual(got2.received, 0, "frames that reached VM2")

        let s = try lab.freshStatus()
        XCTAssertEqual(s.classifier["unknown-dst"], 1234, "unknown-destination counter")
        // What an admin reads: show-stats' line for the uplink.
        struct Line: Decodable { var link: String; var drops: [String: UInt64]? }
        let lines = try JSONDecoder().decode([Line].self, from: Data(try lab.vnicadm("show-stats", "--json").stdout.utf8))
        XCTAssertEqual(lines.first { $0.link == t.uplink }?.drops?["unknown-dst"], 1234, "show-stats unknown-dst")
        XCTAssertEqual(s.queues.count, 2)
        for q in s.queues { XCTAssertGreaterThan(q.rxPackets, 1000, "uplink queue \(q.queue) carried traffic") }
        // The wire's own broadcasts and multicasts (IPv6 DAD, ND) are flooded to VM1 too.
        XCTAssertGreaterThanOrEqual(s.vnics["vnic1"]?.rxPackets ?? 0, 10000)

        // Each worker thread may run on exactly one core, a different one each.
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(s.pid)/task")
        var cores: [String: String] = [:]
        for task in tasks {
            let comm = (try? String(contentsOfFile: "/proc/\(s.pid)/task/\(task)/comm", encoding: .utf8)) ?? ""
            guard comm.hasPrefix("vnic-worker-") else { continue }
            let st = try String(contentsOfFile: "/proc/\(s.pid)/task/\(task)/status", encoding: .utf8)
            let allowed = st.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }?
                .split(separator: "\t").last.map(String.init) ?? "?"
            cores[comm.trimmingCharacters(in: .whitespacesAndNewlines)] = allowed
        }
        XCTAssertEqual(cores.count, 2, "worker threads: \(cores)")
        for (name, allowed) in cores { XCTAssertNotNil(Int(allowed), "\(name) may run on \(allowed), not one core") }
        XCTAssertEqual(Set(cores.values).count, 2, "workers share a core: \(cores)")
        _ = vnicd.terminate()
    }

    /// This lab's pin directories in bpffs (/sys/fs/bpf/vnic/NETNS-UPLINK).
    private func pins(_ lab: LabFixture) -> [String] {
        PinLayout.directories(netns: "/run/netns/" + lab.topology.hostNamespace)
    }

    /// SIGTERM detaches and unpins everything. kill -9 leaves the classifier
    /// pinned and attached with its tables; a new vnicd adopts it and forwards
    /// again: the frames lost in the gap are counted and printed.
    func testStopDetachesAndARestartAfterKillAdoptsThePinnedClassifier() throws {
        let (lab, _) = try makeLab(queues: 1)
        let t = lab.topology
        var vnicd = try lab.startVnicd()
        XCTAssertEqual(Set(try xdpAttached(lab)), Set([t.uplink] + t.ports))
        XCTAssertEqual(pins(lab).count, 1, "vnicd pinned its classifier")
        vnicd.signal(SIGTERM)
        let r = vnicd.wait(timeout: .seconds(10))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try xdpAttached(lab), [], "XDP still attached after SIGTERM")
        XCTAssertEqual(pins(lab), [], "pins left after SIGTERM")

        vnicd = try lab.startVnicd()
        XCTAssertFalse(vnicd.stderrSoFar.contains("adopted"), "nothing was pinned to adopt")
        // 50,000 frames to VM1 at 10 kpps; vnicd is killed after 1.5 s and started again at once.
        let sink = try lab.startSink(vm: 1, seconds: 10)
        let traffic = try lab.start(in: t.wireNamespace, try lab.bin("vnic-pktgen"), "-i", t.wire,
                                    "--dst-mac", "\(t.vmMAC(1))", "--count", "50000", "--rate", "10000")
        usleep(1_500_000)
        vnicd.signal(SIGKILL)
        _ = vnicd.wait(timeout: .seconds(10))
        XCTAssertEqual(Set(try xdpAttached(lab)), Set([t.uplink] + t.ports), "the pinned classifier stays attached")
        try? FileManager.default.removeItem(atPath: lab.database + "-status.json")   // the dead vnicd's
        let killed = Date()
        vnicd = try lab.startVnicd()
        let back = Date().timeIntervalSince(killed)
        XCTAssertTrue(traffic.wait(timeout: .seconds(30)).succeeded)
        let report = try SinkReport(sink)
        let lost = 50_000 - report.received
        print("kill -9 under 10 kpps: vnicd forwarding again after \(String(format: "%.2f", back)) s; \(lost) of 50000 frames lost in the gap")
        XCTAssertTrue(vnicd.stderrSoFar.contains("adopted the classifier pinned at"), vnicd.stderrSoFar)
        XCTAssertLessThan(back, 1.0, "vnicd up again within 1 s")
        XCTAssertLessThan(lost, 10_000, "forwarding resumed within 1 s of the kill")
        XCTAssertEqual(report.out_of_order, 0)
        let p = try ping(lab, from: t.wireNamespace, t.vmIP(2).address)
        XCTAssertTrue(p.succeeded, "after restart: \(p.stdout)")
    }

    /// A host where nothing mounted a bpffs (a mount namespace of the test's with
    /// a plain tmpfs over /sys/fs/bpf, whatever the machine has there): vnicd
    /// mounts one, pins its classifier in it, and after kill -9 the classifier
    /// stays attached and the next vnicd, in the same namespace, adopts it.
    func testWithoutABPFFSVnicdMountsOneAndARestartAfterKillAdoptsIt() throws {
        let (lab, _) = try makeLab(queues: 1)
        let t = lab.topology
        let holder = try Command.start(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                        "mount -t tmpfs -o size=64k,mode=0755 none /sys/fs/bpf && echo ready >&2 && exec sleep 300"])
        addTeardownBlock { holder.terminate() }
        let ready = Date().addingTimeInterval(5)
        while !holder.stderrSoFar.contains("ready") && holder.isRunning && Date() < ready { usleep(20_000) }
        guard holder.stderrSoFar.contains("ready") else { return XCTFail("no mount namespace: \(holder.terminate().diagnostic)") }
        let root = "/proc/\(holder.pid)/root"
        func bpffs() -> Bool {
            Preflight.isBPFFS(mountinfo: (try? String(contentsOfFile: "/proc/\(holder.pid)/mountinfo", encoding: .utf8)) ?? "")
        }
        XCTAssertFalse(bpffs(), "the test's mount namespace starts without a bpffs")
        let pinDir = root + (PinLayout.directory(netns: "/run/netns/" + t.hostNamespace, uplink: t.uplink) ?? "?")
        let wrapper = ["nsenter", "--mount=/proc/\(holder.pid)/ns/mnt", "--"]

        var vnicd = try lab.startVnicd(wrapper: wrapper)
        XCTAssertTrue(vnicd.stderrSoFar.contains("mounted a bpf file system at /sys/fs/bpf"), vnicd.stderrSoFar)
        XCTAssertTrue(bpffs(), "vnicd mounted a bpffs at /sys/fs/bpf")
        XCTAssertTrue(FileManager.default.fileExists(atPath: pinDir + "/link-uplink-native"),
                      "vnicd pinned its classifier's link at \(pinDir): \(PinLayout.entries(pinDir))")
        XCTAssertEqual(pins(lab), [], "nothing of this lab is pinned in the test runner's own mount namespace")

        vnicd.signal(SIGKILL)
        _ = vnicd.wait(timeout: .seconds(10))
        XCTAssertEqual(Set(try xdpAttached(lab)), Set([t.uplink] + t.ports), "the pinned classifier stays attached after kill -9")
        try? FileManager.default.removeItem(atPath: lab.database + "-status.json")   // the dead vnicd's
        vnicd = try lab.startVnicd(wrapper: wrapper)
        XCTAssertFalse(vnicd.stderrSoFar.contains("mounted a bpf file system"), "the bpffs was there: \(vnicd.stderrSoFar)")
        XCTAssertTrue(vnicd.stderrSoFar.contains("adopted the classifier pinned at"), vnicd.stderrSoFar)
        for vm in t.vmNumbers {
            let p = try ping(lab, from: t.wireNamespace, t.vmIP(vm).address)
            XCTAssertTrue(p.succeeded, "wire -> vm\(vm) after the restart: \(p.stdout)")
        }
        vnicd.signal(SIGTERM)
        XCTAssertEqual(vnicd.wait(timeout: .seconds(10)).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pinDir), "SIGTERM unpins: \(PinLayout.entries(pinDir))")
        XCTAssertEqual(try xdpAttached(lab), [], "XDP still attached after SIGTERM")
    }

    /// A VNIC deleted while no vnicd runs: the restarted vnicd adopts the pins and
    /// drops the deleted VNIC's table entries and port link.
    func testRestartAfterKillDropsWhatTheDatabaseNoLongerHas() throws {
        let (lab, _) = try makeLab(queues: 1)
        let t = lab.topology
        var vnicd = try lab.startVnicd()
        vnicd.signal(SIGKILL)
        _ = vnicd.wait(timeout: .seconds(10))
        try lab.vnicadm("delete-vnic", "vnic2")
        try? FileManager.default.removeItem(atPath: lab.database + "-status.json")
        let cmd = try lab.start(in: t.hostNamespace, [try lab.bin("vnicd"), "--db", lab.database])
        let deadline = Date().addingTimeInterval(10)
        while lab.status()?.vnics["vnic1"]?.state != "up" && Date() < deadline { usleep(50_000) }
        vnicd = cmd
        XCTAssertTrue(vnicd.stderrSoFar.contains("1 stale table entr") || vnicd.stderrSoFar.contains("2 stale table entries"), vnicd.stderrSoFar)
        XCTAssertTrue(vnicd.stderrSoFar.contains("1 stale port link removed"), vnicd.stderrSoFar)
        XCTAssertEqual(Set(try xdpAttached(lab)), Set([t.uplink, t.port(1)]), "vm2p's pinned program went with vnic2")
        XCTAssertTrue(try ping(lab, from: t.wireNamespace, t.vmIP(1).address).succeeded)
        XCTAssertFalse(try ping(lab, from: t.wireNamespace, t.vmIP(2).address).succeeded, "vnic2 is gone")
    }

    /// A VNIC created or deleted while vnicd runs is picked up within 1 s, and the
    /// other VNIC's traffic goes on without loss.
    func testLiveCreateAndDeleteSpareOtherVNICs() throws {
        let (lab, db) = try makeLab(queues: 1)
        let t = lab.topology
        let vnicadm = try lab.bin("vnicadm")
        _ = try lab.startVnicd()
        let sink1 = try lab.startSink(vm: 1, seconds: 6)
        let traffic = try lab.start(in: t.wireNamespace, try lab.bin("vnic-pktgen"), "-i", t.wire,
                                    "--dst-mac", "\(t.vmMAC(1))", "--count", "40000", "--rate", "10000")

        XCTAssertTrue(try Command.run([vnicadm, "delete-vnic", "--db", db, "vnic2"]).succeeded)
        var gone = false
        let d1 = Date().addingTimeInterval(1)
        while Date() < d1 && !gone { gone = lab.status()?.vnics["vnic2"] == nil; usleep(20_000) }
        XCTAssertTrue(gone, "vnicd still has vnic2 1 s after delete-vnic")
        XCTAssertFalse(try lab.run(in: t.wireNamespace, "ping", "-c", "1", "-W", "1", "\(t.vmIP(2).address)").succeeded,
                       "vm2 still reachable after delete-vnic")

        let c = try Command.run([vnicadm, "create-vnic", "--db", db, "-l", t.uplink, "-m", "\(t.vmMAC(2))",
                                 "--port", t.port(2), "-i", "\(t.vmIP(2))", "vnic2"])
        XCTAssertTrue(c.succeeded, c.diagnostic)
        var up = false
        let d2 = Date().addingTimeInterval(1)
        while Date() < d2 && !up { up = lab.status()?.vnics["vnic2"]?.state == "up"; usleep(20_000) }
        XCTAssertTrue(up, "vnicd did not bring vnic2 up within 1 s")
        XCTAssertTrue(try ping(lab, from: t.wireNamespace, t.vmIP(2).address).succeeded)

        XCTAssertTrue(traffic.wait(timeout: .seconds(20)).succeeded)
        XCTAssertEqual(try SinkReport(sink1).received, 40000, "vnic1 lost frames while vnic2 was deleted and re-created")
    }

    /// VM1's MAC changes while traffic flows to VM2: VM2 loses nothing, and frames
    /// to the new MAC reach VM1 within 100 ms of the commit.
    func testMACChangeInPlaceSparesOtherVNICs() throws {
        let (lab, db) = try makeLab(queues: 2)
        let t = lab.topology
        let pktgen = try lab.bin("vnic-pktgen")
        _ = try lab.startVnicd()
        let sink1 = try lab.startSink(vm: 1, seconds: 7)
        let sink2 = try lab.startSink(vm: 2, seconds: 7)
        let newMAC = "02:00:00:00:01:a1"
        let toVM2 = try lab.start(in: t.wireNamespace, pktgen, "-i", t.wire, "--dst-mac", "\(t.vmMAC(2))",
                                  "--dst-ip", "\(t.vmIP(2).address)", "--count", "30000", "--rate", "10000")
        // The other uplink queue: one AF_XDP socket per queue without a shared UMEM.
        let toNew = try lab.start(in: t.wireNamespace, pktgen, "-i", t.wire, "--dst-mac", newMAC,
                                  "--duration", "3", "--rate", "10000", "--first-queue", "1")
        usleep(1_000_000)
        let before = monotonicNanos()
        let set = try Command.run([try lab.bin("vnicadm"), "set", "--db", db, "vnic1", "mac=\(newMAC)"])
        XCTAssertTrue(set.succeeded, set.diagnostic)
        let sent2 = toVM2.wait(timeout: .seconds(20)), sentNew = toNew.wait(timeout: .seconds(20))
        XCTAssertTrue(sent2.succeeded, sent2.diagnostic)
        XCTAssertTrue(sentNew.succeeded, sentNew.diagnostic)
        let r1 = try SinkReport(sink1), r2 = try SinkReport(sink2)
        XCTAssertEqual(r2.received, 30000, "VM2 lost frames while VM1's MAC changed")
        XCTAssertGreaterThan(r1.received, 0, "nothing reached VM1 at its new MAC")
        if r1.received > 0 {
            let ms = Double(Int64(r1.first_arrival_ns) - Int64(before)) / 1e6
            print("mac change: first frame at the new MAC \(ms) ms after vnicadm set started")
            XCTAssertLessThan(ms, 100, "first frame at the new MAC \(ms) ms after vnicadm set started")
        }
        XCTAssertEqual(lab.status()?.vnics["vnic1"]?.state, "up")
    }

    /// Bad input: one line naming the problem, exit 1 or 2, nothing left attached.
    func testBadInputIsNamed() throws {
        let (lab, db) = try makeLab(queues: 2)
        let t = lab.topology
        let vnicd = try lab.bin("vnicd")
        func check(_ argv: [String], exit code: Int32, mentions token: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let r = try lab.run(in: t.hostNamespace, argv)
            XCTAssertEqual(r.status, code, "\(argv): \(r.stderr)", file: file, line: line)
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(argv) printed: \(r.stderr)", file: file, line: line)
            XCTAssertTrue(r.stderr.contains(token), "\(argv): '\(r.stderr)' does not name \(token)", file: file, line: line)
        }
        try check([vnicd, "--db", db, "--link", "nosuch0"], exit: 1, mentions: "nosuch0")
        try check([vnicd, "--db", lab.path("missing.db")], exit: 1, mentions: lab.path("missing.db"))
        let garbage = lab.path("garbage.db")
        _ = FileManager.default.createFile(atPath: garbage, contents: Data(repeating: 0x5A, count: 8192))
        try check([vnicd, "--db", garbage], exit: 1, mentions: garbage)
        try check([vnicd, "--db", db, "--queues", "3"], exit: 2, mentions: "--queues")
        try check([vnicd, "--db", db, "--cores", "0,x"], exit: 2, mentions: "x")
        try check([try lab.bin("vnicadm"), "create-vnic", "--db", db, "-l", t.uplink, "-m", "02:00:zz:00:00:01", "vnicx"],
                  exit: 2, mentions: "02:00:zz:00:00:01")
        XCTAssertEqual(try xdpAttached(lab), [], "a failed start left XDP attached")
    }
}

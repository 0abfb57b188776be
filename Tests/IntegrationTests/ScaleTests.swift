// A host's worth of VMs (issue 15): 256 VMs on a 2-queue uplink, two workers.
// The frame budget (a port's fill ring follows its traffic) must let every VM
// answer its first ping with nothing starved at idle, frames for a VM must
// reach that VM only, and a burst to one VM must arrive whole while the 255
// others sit idle. Runs in the serial phase (scripts/test.sh): it times a burst.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class ScaleTests: XCTestCase {
    static let vms = 256

    func testTwoHundredFiftySixVMsOnTwoQueues() throws {
        let lab = try LabFixture(test: self, vms: Self.vms, queues: 2)
        let t = lab.topology
        try lab.useDatabaseOnTmpfs(self)
        try lab.createVNICs()
        // Both workers on core 0; the generator and the sink on core 1, which no worker uses.
        let started = Date()
        let vnicd = try lab.startVnicd(["--cores", "0,0"])
        let upSeconds = Date().timeIntervalSince(started)
        XCTAssertLessThan(upSeconds, 10, "\(Self.vms) VNICs up")

        // Idle: no socket short of frames.
        Thread.sleep(forTimeInterval: 1)
        var s = try lab.freshStatus()
        XCTAssertEqual(s.vnics.values.filter { $0.state == "up" }.count, Self.vms)
        XCTAssertEqual(noBuffer(s), [:], "no-buffer drops at idle after start")
        XCTAssertNotNil(s.memory, "vnicd reports its memory")
        if let m = s.memory {
            XCTAssertGreaterThan(m.residentBytesPerVNIC, 0)
            XCTAssertLessThanOrEqual(m.residentBytesPerVNIC, 1 << 20, "RSS per VNIC: \(m)")
        }

        // Every VM answers its first ping from the wire (one ping each, in one shell).
        let script = t.vmNumbers.map { "ping -c 1 -W 2 -q \(t.vmIP($0).address) >/dev/null 2>&1 || echo \($0)" }
            .joined(separator: "\n")
        let sweep = try lab.run(in: t.wireNamespace, ["sh", "-c", script], timeout: .seconds(600))
        let missed = sweep.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(missed, [], "VMs that did not answer their first ping: \(missed.prefix(20))")

        // Unicast to each VM reaches that VM only: 3 frames to each, and each
        // VM's interface got exactly 3 unicast (or broadcast) frames meanwhile.
        let before = try unicastReceived(lab)
        for vm in t.vmNumbers {
            let g = try lab.run(in: t.wireNamespace, [try lab.bin("vnic-pktgen"), "-i", t.wire, "--dst-mac", "\(t.vmMAC(vm))",
                                                      "--dst-ip", "\(t.vmIP(vm).address)", "--count", "3", "--json"])
            XCTAssertTrue(g.succeeded, "pktgen to vm\(vm): \(g.diagnostic)")
        }
        Thread.sleep(forTimeInterval: 0.5)
        let after = try unicastReceived(lab)
        let wrong = t.vmNumbers.filter { (after[$0] ?? 0) - (before[$0] ?? 0) != 3 }
            .map { "vm\($0): \((after[$0] ?? 0) - (before[$0] ?? 0))" }
        XCTAssertEqual(wrong, [], "VMs that did not get exactly their 3 frames")

        // A 4,096-frame burst to one VM, as fast as the generator sends from core 1,
        // arrives whole while the 255 others are idle.
        let target = Self.vms / 2
        let sink = try lab.start(in: t.vmNamespace(target), ["taskset", "-c", "1", try lab.bin("vnic-pktgen"), "--sink",
                                                            "-i", t.vmInterface, "--duration", "6", "--json"])
        let ready = Date().addingTimeInterval(5)
        while !sink.stderrSoFar.contains("sink ready") && Date() < ready { usleep(20_000) }
        let burst = try lab.run(in: t.wireNamespace, ["taskset", "-c", "1", try lab.bin("vnic-pktgen"), "-i", t.wire,
                                                      "--dst-mac", "\(t.vmMAC(target))", "--dst-ip", "\(t.vmIP(target).address)",
                                                      "--count", "4096", "--json"])
        XCTAssertTrue(burst.succeeded, burst.diagnostic)
        let report = try SinkReport(sink)
        XCTAssertEqual(report.received, 4096, "the burst to vm\(target) arrived whole")
        XCTAssertEqual(report.out_of_order, 0)

        // Idle again: still nothing starved anywhere.
        Thread.sleep(forTimeInterval: 1)
        s = try lab.freshStatus()
        XCTAssertEqual(noBuffer(s), [:], "no-buffer drops after the sweep and the burst")
        XCTAssertEqual(s.vnics.values.filter { $0.state == "up" }.count, Self.vms)
        XCTAssertTrue(vnicd.isRunning)
    }

    /// VNICs with no-buffer drops (a fill ring found empty), by name.
    private func noBuffer(_ s: RuntimeStatus) -> [String: UInt64] {
        s.vnics.compactMapValues { $0.drops["no-buffer"] }
    }

    /// Unicast and broadcast frames each VM's interface received so far
    /// (received minus multicast: the VMs' own IPv6 chatter is flooded to all).
    private func unicastReceived(_ lab: LabFixture) throws -> [Int: Int] {
        let t = lab.topology
        var out: [Int: Int] = [:]
        for vm in t.vmNumbers {
            let r = try Command.run(["ip", "-n", t.vmNamespace(vm), "-s", "-j", "link", "show", "dev", t.vmInterface])
            struct Entry: Decodable {
                struct Stats: Decodable { struct Dir: Decodable { var packets: Int; var multicast: Int? }; var rx: Dir }
                var stats64: Stats
            }
            guard r.succeeded, let e = try JSONDecoder().decode([Entry].self, from: Data(r.stdout.utf8)).first else {
                throw FixtureError(message: "\(r.commandLine): \(r.diagnostic)")
            }
            out[vm] = e.stats64.rx.packets - (e.stats64.rx.multicast ?? 0)
        }
        return out
    }
}

// maxbw against the real kernel: VM1 limited to 100 Mbit/s sends about twice
// that; the wire sees VM1 at the limit (within 2%), in order per flow, while
// VM2's traffic passes whole at its own rate.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class BandwidthIntegrationTests: XCTestCase {
    struct SendReport: Decodable { var sent: Int; var seconds: Double }

    func testMaxbwHoldsVM1AtTheLimitAndSparesVM2() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let t = lab.topology
        try lab.createVNICs()
        try lab.vnicadm("set-linkprop", "-p", "maxbw=100M", "vnic1")
        _ = try lab.startVnicd()
        let pktgen = try lab.bin("vnic-pktgen")
        func sink(from vm: Int) throws -> RunningCommand {
            let s = try lab.start(in: t.wireNamespace, pktgen, "--sink", "-i", t.wire, "--duration", "8", "--idle", "1",
                                  "--src-ip", "\(t.vmIP(vm).address)", "--json")
            let deadline = Date().addingTimeInterval(5)
            while !s.stderrSoFar.contains("sink ready") && Date() < deadline { usleep(20_000) }
            return s
        }
        let sink1 = try sink(from: 1), sink2 = try sink(from: 2)
        func send(from vm: Int, rate: Int, flows: Int) throws -> RunningCommand {
            try lab.start(in: t.vmNamespace(vm), pktgen, "-i", t.vmInterface, "--dst-mac", "\(t.wireMAC)",
                          "--src-mac", "\(t.vmMAC(vm))", "--src-ip", "\(t.vmIP(vm).address)",
                          "--dst-ip", "\(t.wireIP.address)", "--size", "1500", "--rate", "\(rate)",
                          "--duration", "4", "--flows", "\(flows)", "--json")
        }
        // 16,500 frames/s of 1500 B is 198 Mbit/s; 4,000/s is 48 Mbit/s.
        let vm1 = try send(from: 1, rate: 16_500, flows: 8)
        let vm2 = try send(from: 2, rate: 4_000, flows: 4)
        let sent1 = vm1.wait(timeout: .seconds(20)), sent2 = vm2.wait(timeout: .seconds(20))
        XCTAssertTrue(sent1.succeeded && sent2.succeeded, "\(sent1.diagnostic) \(sent2.diagnostic)")
        let r1 = try SinkReport(sink1), r2 = try SinkReport(sink2)

        let rate1 = Double(r1.bytes) * 8 / r1.seconds
        XCTAssertEqual(rate1, 100e6, accuracy: 2e6, "VM1 at the wire: \(rate1 / 1e6) Mbit/s")
        XCTAssertEqual(r1.out_of_order, 0, "VM1's flows out of order")

        let s2 = try JSONDecoder().decode(SendReport.self, from: Data((sent2.stdout.split(separator: "\n").last ?? "").utf8))
        XCTAssertEqual(r2.received, s2.sent, "VM2 lost frames")
        let rate2 = Double(r2.bytes) * 8 / r2.seconds
        XCTAssertEqual(rate2, 48e6, accuracy: 48e6 * 0.02, "VM2 at the wire: \(rate2 / 1e6) Mbit/s")
        XCTAssertEqual(r2.out_of_order, 0)
        // VM1's excess is counted as the rate limit's; VM2 lost nothing.
        let s = try lab.freshStatus()
        XCTAssertGreaterThan(s.vnics["vnic1"]?.drops["rate-limit"] ?? 0, 0, "\(s.vnics["vnic1"]?.drops ?? [:])")
        XCTAssertEqual(s.vnics["vnic2"]?.drops ?? [:], [:])
    }
}

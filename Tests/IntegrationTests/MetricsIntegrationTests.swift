// vnicd --metrics: the Prometheus endpoint read while traffic flows through the
// real dataplane. The endpoint listens on the lab host namespace's loopback, so
// it is fetched from inside that namespace (bash's /dev/tcp: no curl needed).
import Foundation
import VnicLabKit
import XCTest

final class MetricsIntegrationTests: XCTestCase {
    private func scrape(_ lab: LabFixture, port: Int) throws -> [String: Double] {
        let r = try lab.run(in: lab.topology.hostNamespace, "bash", "-c",
                            "exec 3<>/dev/tcp/127.0.0.1/\(port); printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' >&3; cat <&3")
        XCTAssertTrue(r.succeeded, r.diagnostic)
        XCTAssertTrue(r.stdout.hasPrefix("HTTP/1.1 200"), String(r.stdout.prefix(200)))
        var series: [String: Double] = [:]
        for line in r.stdout.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let v = Double(parts[1].trimmingCharacters(in: .whitespacesAndNewlines)) { series[String(parts[0])] = v }
        }
        return series
    }

    func testCountersMoveDuringTraffic() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 2)
        try lab.createVNICs()
        let port = 9100 + Int.random(in: 0..<800)
        let vnicd = try lab.startVnicd(["--metrics", "\(port)"])
        // The VNICs are up (what startVnicd waits for) a moment before the endpoint is served.
        let line = "metrics at http://127.0.0.1:\(port)/metrics"
        let deadline = Date().addingTimeInterval(5)
        while !vnicd.stderrSoFar.contains(line) && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(vnicd.stderrSoFar.contains(line), vnicd.stderrSoFar)
        usleep(300_000)
        let before = try scrape(lab, port: port)
        let rx = #"vnic_rx_packets_total{vnic="vnic1"}"#   // received by VNIC 1: towards VM1
        let t = lab.topology
        let sent = try lab.run(in: t.wireNamespace, try lab.bin("vnic-pktgen"), "-i", t.wire, "--dst-mac", "\(t.vmMAC(1))",
                               "--dst-ip", "\(t.vmIP(1).address)", "--count", "5000", "--queues", "2", "--rate", "20000")
        XCTAssertTrue(sent.succeeded, sent.diagnostic)
        let unknown = try lab.run(in: t.wireNamespace, try lab.bin("vnic-pktgen"), "-i", t.wire, "--dst-mac", "02:00:00:00:07:07",
                                  "--count", "300", "--rate", "10000")
        XCTAssertTrue(unknown.succeeded, unknown.diagnostic)
        usleep(600_000)   // two status rounds (every 250 ms) feed the exporter
        let after = try scrape(lab, port: port)
        let grown = (after[rx] ?? 0) - (before[rx] ?? 0)
        XCTAssertGreaterThanOrEqual(grown, 5000, "frames to VM1 counted: \(after.filter { $0.key.contains("vnic1") })")
        XCTAssertEqual((after[#"vnic_classifier_total{counter="unknown-dst"}"#] ?? 0) - (before[#"vnic_classifier_total{counter="unknown-dst"}"#] ?? 0), 300)
        XCTAssertEqual(after[#"vnic_up{vnic="vnic1"}"#], 1)
        XCTAssertNotNil(after[#"vnic_vsq_depth{vnic="vnic1",direction="to-vm"}"#])
        XCTAssertNotNil(after["vnic_config_generation"])
        let busy = after.filter { $0.key.hasPrefix("vnic_worker_busy_ratio{queue=") }
        XCTAssertEqual(busy.count, 2, "one busy ratio per worker: \(busy)")
        for (k, v) in busy { XCTAssertTrue((0...1).contains(v), "\(k) = \(v)") }
    }

    func testBadAddressIsAUsageError() throws {
        let lab = try LabFixture(test: self, vms: 1, queues: 1)
        try lab.createVNICs()
        let r = try lab.run(in: lab.topology.hostNamespace, try lab.bin("vnicd"), "--db", lab.database, "--metrics", "localhost:x")
        XCTAssertEqual(r.status, 2, r.diagnostic)
        XCTAssertTrue(r.stderr.contains("--metrics: 'localhost:x'"), r.stderr)
    }
}

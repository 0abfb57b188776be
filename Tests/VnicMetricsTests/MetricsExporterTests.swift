// The exporter's arithmetic on fake statuses: totals become monotonic
// counters, the busy ratio comes from cycle increments, addresses parse.
import VnicCore
import VnicMetrics
import XCTest

final class MetricsExporterTests: XCTestCase {
    func status(rx: UInt64, spoof: UInt64, busy: UInt64, cycles: UInt64, generation: UInt64 = 3) -> RuntimeStatus {
        var v = RuntimeStatus.VNIC(state: "up")
        v.rxPackets = rx; v.rxBytes = rx * 64; v.txPackets = 7; v.txBytes = 700
        v.drops = ["spoof-mac": spoof]
        v.vsqToVM = 12
        var s = RuntimeStatus(pid: 1, updated: 0, generation: generation, classifier: ["unknown-dst": 5],
                              queues: [RuntimeStatus.Queue(queue: 0, core: 1, rxPackets: rx, txPackets: 7, freeFrames: 100,
                                                           busyCycles: busy, cycles: cycles)],
                              vnics: ["vnic1": v, "vnic2": RuntimeStatus.VNIC(state: "down: no port")])
        s.requests = ["accepted": 2, "denied": 1]
        return s
    }

    func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    func testCountersFollowTheTotals() {
        let e = MetricsExporter()
        e.update(status(rx: 100, spoof: 3, busy: 0, cycles: 0))
        var t = e.text()
        XCTAssertEqual(value(t, #"vnic_rx_packets_total{vnic="vnic1"}"#), 100, t)
        XCTAssertEqual(value(t, #"vnic_rx_bytes_total{vnic="vnic1"}"#), 6400)
        XCTAssertEqual(value(t, #"vnic_drops_total{vnic="vnic1",reason="spoof-mac"}"#), 3)
        XCTAssertEqual(value(t, #"vnic_vsq_depth{vnic="vnic1",direction="to-vm"}"#), 12)
        XCTAssertEqual(value(t, #"vnic_up{vnic="vnic1"}"#), 1)
        XCTAssertEqual(value(t, #"vnic_up{vnic="vnic2"}"#), 0)
        XCTAssertEqual(value(t, #"vnic_classifier_total{counter="unknown-dst"}"#), 5)
        XCTAssertEqual(value(t, #"vnic_requests_total{verdict="denied"}"#), 1)
        XCTAssertEqual(value(t, "vnic_config_generation"), 3)
        e.update(status(rx: 250, spoof: 3, busy: 0, cycles: 0, generation: 4))
        t = e.text()
        XCTAssertEqual(value(t, #"vnic_rx_packets_total{vnic="vnic1"}"#), 250, "moves by the growth, not re-added")
        XCTAssertEqual(value(t, "vnic_config_generation"), 4)
        e.update(status(rx: 10, spoof: 3, busy: 0, cycles: 0))   // the VNIC was re-created: its count restarted
        XCTAssertEqual(value(e.text(), #"vnic_rx_packets_total{vnic="vnic1"}"#), 260, "a counter never goes down")
    }

    func testBusyRatioIsTheShareOfCyclesSinceTheLastUpdate() {
        let e = MetricsExporter()
        e.update(status(rx: 0, spoof: 0, busy: 1_000, cycles: 10_000))
        e.update(status(rx: 0, spoof: 0, busy: 1_000 + 3_000, cycles: 10_000 + 4_000))
        XCTAssertEqual(value(e.text(), #"vnic_worker_busy_ratio{queue="0",core="1"}"#), 0.75)
    }

    func testAddresses() throws {
        XCTAssertEqual(try MetricsExporter.Address(parsing: "9100").description, "127.0.0.1:9100", "a port alone: loopback")
        XCTAssertEqual(try MetricsExporter.Address(parsing: "0.0.0.0:9101").description, "0.0.0.0:9101")
        XCTAssertEqual(try MetricsExporter.Address(parsing: "[::1]:9102").description, "[::1]:9102")
        for bad in ["", "x", "0", "70000", "10.0.0:80", "1.2.3.4:", "[::1]", "[zz]:80", "host:80"] {
            XCTAssertThrowsError(try MetricsExporter.Address(parsing: bad), bad) { error in
                XCTAssertEqual((error as? VnicError)?.exitCode, 2, bad)
                XCTAssertTrue("\(error)".contains("--metrics: '\(bad)'"), "\(error)")
            }
        }
    }
}

// MetricsExporter: vnicd's Prometheus endpoint. The control thread feeds it the
// daemon's status a few times a second (never a worker, never per packet):
// swift-metrics counters and gauges, backed by swift-prometheus's registry,
// which FlyingFox serves as text at GET /metrics.
//
// Exported (labels in braces):
//   vnic_rx_packets_total, vnic_rx_bytes_total, vnic_tx_packets_total,
//   vnic_tx_bytes_total {vnic}            as `vnicadm show-stats` counts them
//   vnic_drops_total {vnic, reason}       spoof-mac, vsq-full, rate-limit, ...
//   vnic_vsq_depth {vnic, direction}      frames waiting: to-vm, from-vm
//   vnic_up {vnic}                        1 forwarding, 0 down
//   vnic_worker_busy_ratio {queue, core}  share of the worker's cycles spent
//                                         moving frames since the last update
//   vnic_worker_rx_packets_total, vnic_worker_tx_packets_total {queue}
//   vnic_classifier_total {counter}       the XDP classifier's counters (unknown-dst, ...)
//   vnic_config_generation                the database generation applied
//   vnic_requests_total {verdict}         in-band requests: accepted, denied, ...
//   vnicd_resident_bytes, vnicd_packet_buffer_bytes, vnicd_resident_bytes_per_vnic
//                                         the daemon's memory (RSS, UMEMs, RSS per VNIC up)
import CoreMetrics
import FlyingFox
import FlyingSocks
import Foundation
import Prometheus
import Synchronization
import VnicCore

public final class MetricsExporter: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private struct State {
        var counters: [String: (CoreMetrics.Counter, UInt64)] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
        var cycles: [Int: (busy: UInt64, all: UInt64)] = [:]
    }
    private let state = Mutex(State())

    public init() {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
    }

    /// Takes the totals of a status: counters move by what they grew since the
    /// last update (a total that shrank, a re-created VNIC, counts as new).
    public func update(_ s: RuntimeStatus) {
        state.withLock { st in
            func count(_ name: String, _ labels: [(String, String)], _ total: UInt64) {
                let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
                let (counter, last) = st.counters[key] ?? (CoreMetrics.Counter(label: name, dimensions: labels, factory: factory), 0)
                let delta = total >= last ? total - last : total
                if delta > 0 { counter.increment(by: Int64(clamping: delta)) }
                st.counters[key] = (counter, total)
            }
            func gauge(_ name: String, _ labels: [(String, String)], _ value: Double) {
                let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
                let g = st.gauges[key] ?? CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
                st.gauges[key] = g
                g.record(value)
            }
            for (name, v) in s.vnics {
                let l = [("vnic", name)]
                count("vnic_rx_packets_total", l, v.rxPackets)
                count("vnic_rx_bytes_total", l, v.rxBytes)
                count("vnic_tx_packets_total", l, v.txPackets)
                count("vnic_tx_bytes_total", l, v.txBytes)
                for (reason, n) in v.drops { count("vnic_drops_total", l + [("reason", reason)], n) }
                gauge("vnic_vsq_depth", l + [("direction", "to-vm")], Double(v.vsqToVM))
                gauge("vnic_vsq_depth", l + [("direction", "from-vm")], Double(v.vsqFromVM))
                gauge("vnic_up", l, v.state == "up" ? 1 : 0)
            }
            for q in s.queues {
                let l = [("queue", String(q.queue))]
                count("vnic_worker_rx_packets_total", l, q.rxPackets)
                count("vnic_worker_tx_packets_total", l, q.txPackets)
                let before = st.cycles[q.queue] ?? (0, 0)
                let all = q.cycles &- before.all, busy = q.busyCycles &- before.busy
                st.cycles[q.queue] = (q.busyCycles, q.cycles)
                if all > 0 && all >= busy {
                    gauge("vnic_worker_busy_ratio", l + [("core", String(q.core))], Double(busy) / Double(all))
                }
            }
            for (name, n) in s.classifier { count("vnic_classifier_total", [("counter", name)], n) }
            for (verdict, n) in s.requests ?? [:] { count("vnic_requests_total", [("verdict", verdict)], n) }
            gauge("vnic_config_generation", [], Double(s.generation))
            if let m = s.memory {
                gauge("vnicd_resident_bytes", [], Double(m.residentBytes))
                gauge("vnicd_packet_buffer_bytes", [], Double(m.packetBufferBytes))
                gauge("vnicd_resident_bytes_per_vnic", [], Double(m.residentBytesPerVNIC))
            }
        }
    }

    /// The Prometheus text exposition of everything exported.
    public func text() -> String { registry.emitToString() }

    // MARK: serving

    /// Where `--metrics ADDR` listens: `PORT` (loopback), `IPV4:PORT` or `[IPV6]:PORT`.
    public struct Address: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: UInt16
        public var isIPv6: Bool

        public init(parsing text: String) throws(VnicError) {
            let bad = VnicError.usage("--metrics: '\(text)' is not PORT, IPV4:PORT or [IPV6]:PORT")
            var hostPart = "127.0.0.1", portPart = Substring(text)
            isIPv6 = false
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { throw bad }
                hostPart = String(text[text.index(after: text.startIndex)..<close])
                portPart = text[text.index(close, offsetBy: 2)...]
                isIPv6 = true
                var a6 = in6_addr()
                guard inet_pton(AF_INET6, hostPart, &a6) == 1 else { throw bad }
            } else if let colon = text.lastIndex(of: ":") {
                hostPart = String(text[..<colon])
                portPart = text[text.index(after: colon)...]
                guard IPv4Address(hostPart) != nil else { throw bad }
            }
            guard let port = UInt16(portPart), port > 0 else { throw bad }
            host = hostPart
            self.port = port
        }

        public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Serves GET /metrics on `address` from Swift concurrency's threads; returns
    /// once listening, or throws naming the address (e.g. it is in use).
    public func serve(on address: Address) throws(VnicError) {
        let server: HTTPServer
        do {
            let socketAddress: any SocketAddress = address.isIPv6
                ? try sockaddr_in6.inet6(ip6: address.host, port: address.port)
                : try sockaddr_in.inet(ip4: address.host, port: address.port)
            server = HTTPServer(address: socketAddress, logger: .disabled)
        } catch {
            throw VnicError("--metrics \(address): \(error)")
        }
        final class Start: Sendable {
            let failure = Mutex<String?>(nil)
            let ready = DispatchSemaphore(value: 0)
        }
        let start = Start()
        let exporter = self
        Task.detached {
            await server.appendRoute("GET /metrics") { _ in
                HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                             body: Data(exporter.registry.emitToBuffer()))
            }
            do {
                try await server.run()
            } catch {
                start.failure.withLock { $0 = "\(error)" }
                start.ready.signal()
            }
        }
        Task.detached {
            do { try await server.waitUntilListening(timeout: 5) } catch { start.failure.withLock { $0 = $0 ?? "\(error)" } }
            start.ready.signal()
        }
        if start.ready.wait(timeout: .now() + 6) == .timedOut {
            throw VnicError("--metrics \(address): the HTTP server did not start listening")
        }
        if let why = start.failure.withLock({ $0 }) {
            throw VnicError("--metrics \(address): cannot listen (\(why))")
        }
    }
}

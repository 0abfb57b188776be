// vnicadm show-stats [-p -o FIELD[,..]] [--json] [-i SECONDS [--count N]] [NAME]
// Per-VNIC counters from the running vnicd's status file (RuntimeStatus, next
// to the database), like dladm show-link -s.
import ArgumentParser
import Foundation
import VnicCLI
import VnicConfig
import VnicCore
import VnicFleet

struct ShowStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-stats",
        abstract: "Show per-VNIC traffic counters of the running vnicd: rx/tx packets and bytes, drops by reason.",
        discussion: """
            Fields: \(fields.joined(separator: ",")). IPACKETS/RBYTES: frames the VNIC received (towards the VM); \
            OPACKETS/OBYTES: frames it sent; DROPS: dropped frames, REASONS: the drops by reason. \
            With -i, a first report of the totals, then every SECONDS the change since the report before \
            (like dladm show-link -s -i), until interrupted or --count reports. Exits 1 when no vnicd is \
            running for the database (or it stops).
            """)

    static let fields = ["link", "state", "ipackets", "rbytes", "opackets", "obytes", "drops", "reasons"]

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var format: OutputOptions

    @Option(name: [.customShort("i"), .customLong("interval")],
            help: ArgumentHelp("Report every SECONDS the change since the last report.", valueName: "seconds"))
    var interval: Double?

    @Option(name: .customLong("count"), help: ArgumentHelp("With -i: stop after N reports.", valueName: "n"))
    var count: Int?

    @Argument(help: ArgumentHelp("Show only this VNIC.", valueName: "name"))
    var name: String?

    func validate() throws {
        try format.check(known: Self.fields, example: "link,ipackets")
        if let interval, !(interval > 0 && interval <= 86400) {
            throw ValidationError("-i: '\(interval)' is not a number of seconds above 0")
        }
        if let count, count < 1 { throw ValidationError("--count: '\(count)' must be at least 1") }
        if count != nil && interval == nil { throw ValidationError("--count needs -i SECONDS") }
    }

    /// One VNIC's counters at one time.
    struct Sample {
        var state: String
        var counters: RuntimeStatus.VNIC?

        /// The change since `old` (the totals when a counter went back: vnicd restarted).
        func minus(_ old: Sample?) -> Sample {
            guard var c = counters, let o = old?.counters else { return self }
            if c.rxPackets < o.rxPackets || c.txPackets < o.txPackets || c.rxBytes < o.rxBytes || c.txBytes < o.txBytes {
                return self
            }
            c.rxPackets -= o.rxPackets; c.rxBytes -= o.rxBytes
            c.txPackets -= o.txPackets; c.txBytes -= o.txBytes
            c.drops = c.drops.reduce(into: [:]) { d, kv in
                let v = kv.value >= (o.drops[kv.key] ?? 0) ? kv.value - (o.drops[kv.key] ?? 0) : kv.value
                if v > 0 { d[kv.key] = v }
            }
            return Sample(state: state, counters: c)
        }
    }

    func run() throws {
        let out = Output(parseable: format.parseable, json: format.json, fields: try Output.fields(format.output, known: Self.fields))
        let path = database.path
        var previous: [String: Sample] = [:]
        var reports = 0
        while true {
            let status: RuntimeStatus
            if let t = FleetMode.target {
                // What the host's vnicd publishes under its lease (HostPublisher).
                guard let kv = try t.client.get(HostPublisher.statusKey(host: t.host)) else {
                    throw VnicError("host \(t.host) publishes no status (its vnicd is not running, or has not reached etcd for its lease's 5 s)")
                }
                do { status = try RuntimeStatus.decode(kv.value) } catch {
                    throw VnicError("etcd \(kv.key): not a status (\(error))")
                }
            } else {
                guard let s = RuntimeStatus.readLive(database: path) else {
                    throw VnicError("no vnicd is running for database \(path) (no live status in \(RuntimeStatus.path(forDatabase: path)))")
                }
                status = s
            }
            let current = try samples(status, path: path)
            let shown = current.map { (name, s) in (name, s.minus(previous[name])) }
            if format.json {
                print(JSONValue.array(shown.map { name, s in Self.json(name, s) }).text)
            } else {
                out.print(rows: shown.map { name, s in Self.row(name, s) })
            }
            flushStandardOutput()
            reports += 1
            guard let interval, count.map({ reports < $0 }) ?? true else { return }
            previous = Dictionary(current.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
            Thread.sleep(forTimeInterval: interval)
        }
    }

    /// The VNICs to show, sorted by name: all the daemon serves, or NAME.
    func samples(_ status: RuntimeStatus, path: String) throws -> [(String, Sample)] {
        guard let name else {
            return status.vnics.sorted { $0.key < $1.key }.map { ($0.key, Sample(state: $0.value.state, counters: $0.value)) }
                + (status.uplink.map { [($0, Self.uplinkSample(status))] } ?? [])
        }
        if let v = status.vnics[name] { return [(name, Sample(state: v.state, counters: v))] }
        // Not served: say why, if the database knows it at all.
        guard let r = try database.open(create: false).vnic(named: name) else {
            throw VnicError.usage("VNIC '\(name)' does not exist")
        }
        return [(name, Sample(state: r.state == .down ? "down" : "not served", counters: nil))]
    }

    /// The uplink's own line: what the classifier saw on it (frames to the wire
    /// are OPACKETS; drops in XDP, such as unknown-dst, by reason).
    static func uplinkSample(_ status: RuntimeStatus) -> Sample {
        var c = RuntimeStatus.VNIC(state: "uplink")
        c.rxPackets = status.queues.reduce(0) { $0 + $1.rxPackets }
        c.txPackets = status.queues.reduce(0) { $0 + $1.txPackets }
        for reason in ["unknown-dst", "no-socket", "malformed", "bad-queue", "port-unknown"] {
            if let n = status.classifier[reason], n > 0 { c.drops[reason] = n }
        }
        return Sample(state: "uplink", counters: c)
    }

    static func row(_ name: String, _ s: Sample) -> [String: String?] {
        let c = s.counters
        let drops = c.map { $0.drops.values.reduce(0, +) }
        let reasons = c.flatMap { $0.drops.isEmpty ? nil : $0.drops.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }
        return ["link": name, "state": s.state, "ipackets": c.map { String($0.rxPackets) }, "rbytes": c.map { String($0.rxBytes) },
                "opackets": c.map { String($0.txPackets) }, "obytes": c.map { String($0.txBytes) },
                "drops": drops.map(String.init), "reasons": reasons]
    }

    static func json(_ name: String, _ s: Sample) -> JSONValue {
        guard let c = s.counters else { return .object([("link", .string(name)), ("state", .string(s.state))]) }
        return .object([
            ("link", .string(name)), ("state", .string(s.state)),
            ("rx_packets", .number(c.rxPackets)), ("rx_bytes", .number(c.rxBytes)),
            ("tx_packets", .number(c.txPackets)), ("tx_bytes", .number(c.txBytes)),
            ("drops", .object(c.drops.sorted { $0.key < $1.key }.map { ($0.key, .number($0.value)) })),
        ])
    }
}

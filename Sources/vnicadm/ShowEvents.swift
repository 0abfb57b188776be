// vnicadm show-events [-p -o FIELD[,..]] [--json] [-f] [NAME]
// The audit log: host changes, the VMs' requests accepted or denied, spoof warnings.
import ArgumentParser
import Foundation
import VnicCLI
import VnicConfig
import VnicCore
import VnicFleet

struct ShowEvents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-events",
        abstract: "Show the audit log: changes by the host, the VMs' requests accepted or denied, spoof warnings.",
        discussion: """
            Fields: \(fields.joined(separator: ",")). TIME is UTC; ORIGIN host or vm; VERDICT applied (a host \
            change), accepted or denied (a VM's request or frame); PARAMETER is the field, 'vnic' for \
            create/delete, 'policy.FIELD' for a policy. -f follows: prints new entries as they are committed \
            until interrupted. --json prints a JSON array, or with -f one JSON object per line.
            """)

    static let fields = ["seq", "time", "vnic", "origin", "parameter", "old", "new", "verdict", "reason", "guest"]
    static let defaults = ["time", "vnic", "origin", "parameter", "old", "new", "verdict", "reason"]

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var format: OutputOptions

    @Flag(name: [.customShort("f"), .customLong("follow")], help: "Keep printing new entries as they are committed.")
    var follow = false

    @Argument(help: ArgumentHelp("Show only this VNIC's entries.", valueName: "name"))
    var name: String?

    func validate() throws {
        try format.check(known: Self.fields, defaults: Self.defaults, example: "time,vnic,verdict")
    }

    static func row(_ e: AuditEntry) -> [String: String?] {
        ["seq": String(e.sequence), "time": e.timeText, "vnic": e.vnic, "origin": e.origin.description,
         "parameter": e.parameter, "old": e.old, "new": e.new, "verdict": e.verdict.description, "reason": e.reason,
         "guest": e.guest?.description]
    }

    static func json(_ e: AuditEntry, fields: [String]) -> JSONValue {
        let row = Self.row(e)
        return .object(fields.map { f in
            switch f {
            case "seq": (f, .number(e.sequence))
            case "time": (f, .string(e.timeText))
            default: (f, (row[f] ?? nil).map(JSONValue.string) ?? .null)
            }
        })
    }

    func run() throws {
        let fields = try Output.fields(format.output, known: Self.fields, defaults: Self.defaults)
        var entries: [AuditEntry]
        let store: ConfigStore
        if let t = FleetMode.target {
            // What the host's vnicd published (its last 1,000 entries).
            if follow { throw VnicError.usage("show-events --follow: not with --etcd (run it on host \(t.host))") }
            let prefix = HostPublisher.auditPrefix(host: t.host)
            entries = []
            for kv in try t.client.list(prefix: prefix).kvs {
                guard let seq = UInt64(kv.key.dropFirst(prefix.count)) else { continue }
                let e = try AuditEntry.decode(kv.value, sequence: seq)
                if name == nil || e.vnic == name { entries.append(e) }
            }
            store = try database.open(create: false)
            if let name, entries.isEmpty, try store.vnic(named: name) == nil {
                throw VnicError.usage("VNIC '\(name)' does not exist and has no events")
            }
        } else {
            store = try database.open(create: false)
            if let name, try store.vnic(named: name) == nil, try store.auditEntries(vnic: name, limit: 1).isEmpty {
                throw VnicError.usage("VNIC '\(name)' does not exist and has no events")
            }
            entries = try store.auditEntries(vnic: name)
        }
        var last = entries.last?.sequence ?? 0
        if !follow {
            if format.json {
                print(JSONValue.array(entries.map { Self.json($0, fields: fields) }).text)
            } else {
                Output(parseable: format.parseable, json: false, fields: fields).print(rows: entries.map(Self.row))
            }
            return
        }
        // Follow: fixed columns (the widths cannot wait for entries not yet written).
        var first = true
        while true {
            for e in entries {
                if format.json {
                    print(Self.json(e, fields: fields).text)
                } else if format.parseable {
                    FieldOutput.parseable(rows: [fields.map { Self.row(e)[$0] ?? nil }]).forEach { print($0) }
                } else {
                    if first { print(Self.followLine(fields, fields.map { $0.uppercased() })) }
                    print(Self.followLine(fields, fields.map { (Self.row(e)[$0] ?? nil) ?? "--" }))
                }
                first = false
            }
            if first && !format.json && !format.parseable {
                print(Self.followLine(fields, fields.map { $0.uppercased() }))
                first = false
            }
            flushStandardOutput()
            Thread.sleep(forTimeInterval: 0.1)
            last = max(last, entries.last?.sequence ?? 0)
            // Entries of other VNICs are skipped without advancing past unseen ones.
            let newer = try store.auditEntries(after: last)
            last = newer.last?.sequence ?? last
            entries = newer.filter { name == nil || $0.vnic == name }
        }
    }

    static let followWidths: [String: Int] = ["seq": 6, "time": 24, "vnic": 12, "origin": 6, "parameter": 12,
                                              "old": 20, "new": 20, "verdict": 8]

    static func followLine(_ fields: [String], _ cells: [String]) -> String {
        var line = ""
        for (i, c) in cells.enumerated() {
            if i == cells.count - 1 { line += c; break }
            let w = followWidths[fields[i]] ?? 12
            line += c + String(repeating: " ", count: max(2, w - c.count + 2))
        }
        return line
    }
}

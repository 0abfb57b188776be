// vnicadm show-vnic [-p -o FIELD[,..]] [--json] [NAME]
import ArgumentParser
import VnicCLI
import VnicConfig
import VnicCore

struct ShowVNIC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-vnic",
        abstract: "Show VNICs, their parameters and state.",
        discussion: """
            Fields: \(defaults.joined(separator: ",")) (default), also: \
            \(known.filter { !defaults.contains($0) }.joined(separator: ",")), or all. \
            STATE is the running vnicd's state of the VNIC (unknown without one), or down when set down \
            (vnicadm set NAME state=down). Link properties: show-linkprop.
            """)

    /// The fields: the table's identity fields and parameters (`state` is the
    /// administrator's state combined with the daemon's).
    static let known: [String] = VNICParameter.allCases.filter { $0.kind != .property }.map(\.rawValue)
    static let defaults = ["name", "link", "port", "mac", "ip", "gateway", "mtu", "state"]

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var format: OutputOptions

    @Argument(help: ArgumentHelp("Show only this VNIC.", valueName: "name"))
    var name: String?

    // validate() runs inside ArgumentParser, which exits 2 (via CommandEntry)
    // only for a ValidationError.
    func validate() throws {
        try format.check(known: Self.known, defaults: Self.defaults, example: "name,mac")
    }

    func run() throws {
        let fields = try Output.fields(format.output, known: Self.known, defaults: Self.defaults)
        let store = try database.open(create: false)
        let records = try store.vnics(named: name)
        let status = RuntimeStatus.readLive(database: store.path)
        func state(_ r: VNICRecord) -> String {
            r.state == .down ? "down" : status?.vnics[r.name]?.state ?? "unknown"
        }
        func text(_ f: String, _ r: VNICRecord) -> String? {
            f == "state" ? state(r) : VNICParameter(rawValue: f)?.text(of: r)
        }

        if format.json {
            func value(_ f: String, _ r: VNICRecord) -> JSONValue {
                switch f {
                case "ip": .array(r.ips.map { .string($0.description) } + r.ips6.map { .string($0.description) })
                case "mtu": .number(UInt64(r.mtu))
                case "index": .number(UInt64(r.index))
                default: text(f, r).map(JSONValue.string) ?? .null
                }
            }
            print(JSONValue.array(records.map { r in .object(fields.map { ($0, value($0, r)) }) }).text)
            return
        }
        let rows = records.map { r in fields.map { text($0, r) } }
        let lines = format.parseable ? FieldOutput.parseable(rows: rows) : FieldOutput.table(fields: fields, rows: rows)
        for line in lines { print(line) }
    }
}

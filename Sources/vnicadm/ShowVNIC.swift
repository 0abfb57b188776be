// vnicadm show-vnic [-p -o FIELD[,..]] [--json] [NAME]
import ArgumentParser
import VnicConfig
import VnicCore

struct ShowVNIC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-vnic",
        abstract: "Show VNICs and their state.",
        discussion: "Fields: \(Field.defaults.map(\.rawValue).joined(separator: ",")) (also: index, or all).")

    /// The fields show-vnic prints: the stored parameters plus the daemon's state.
    enum Field: String, CaseIterable {
        case name, link, port, mac, ip, gateway, mtu, state, index
        static let defaults: [Field] = [.name, .link, .port, .mac, .ip, .gateway, .mtu, .state]

        var parameter: VNICParameter? { VNICParameter(rawValue: rawValue) }

        func text(_ r: VNICRecord, state: String) -> String? {
            self == .state ? state : parameter?.text(of: r)
        }

        func json(_ r: VNICRecord, state: String) -> JSONValue {
            switch self {
            case .ip: .array(r.ips.map { .string($0.description) })
            case .mtu: .number(UInt64(r.mtu))
            case .index: .number(UInt64(r.index))
            default: text(r, state: state).map(JSONValue.string) ?? .null
            }
        }
    }

    @OptionGroup var database: DatabaseOptions

    @Flag(name: [.customShort("p"), .customLong("parseable")], help: "Machine-parseable output (requires -o).")
    var parseable = false

    @Option(name: [.customShort("o"), .customLong("output")],
            help: ArgumentHelp("The fields to print, comma-separated, or 'all'.", valueName: "field[,..]"))
    var output: String?

    @Flag(name: .customLong("json"), help: "Print a JSON array of objects.")
    var json = false

    @Argument(help: ArgumentHelp("Show only this VNIC.", valueName: "name"))
    var name: String?

    // validate() runs inside ArgumentParser, which exits 2 (via CommandEntry)
    // only for a ValidationError.
    func validate() throws {
        if parseable && output == nil { throw ValidationError("-p requires -o FIELD[,..] (e.g. -p -o name,mac)") }
        if parseable && json { throw ValidationError("-p and --json cannot be combined") }
        do { _ = try fields() } catch { throw ValidationError(error.message) }
    }

    func fields() throws(VnicError) -> [Field] {
        guard let output else { return Field.defaults }
        if output == "all" { return Field.defaults }
        return try output.split(separator: ",", omittingEmptySubsequences: false).map { (f) throws(VnicError) in
            guard let field = Field(rawValue: String(f)) else {
                throw .usage("-o: unknown field '\(f)' (fields: \(Field.defaults.map(\.rawValue).joined(separator: ",")),index)")
            }
            return field
        }
    }

    func run() throws {
        let fields = try fields()
        let store = try database.open(create: false)
        let records: [VNICRecord]
        if let name {
            guard let r = try store.vnic(named: name) else { throw VnicError.usage("VNIC '\(name)' does not exist") }
            records = [r]
        } else {
            records = try store.vnics()
        }
        let status = RuntimeStatus.readLive(database: store.path)
        func state(_ r: VNICRecord) -> String { status?.vnics[r.name]?.state ?? "unknown" }

        let lines: [String]
        if json {
            let array = JSONValue.array(records.map { r in .object(fields.map { ($0.rawValue, $0.json(r, state: state(r))) }) })
            lines = [array.text]
        } else {
            let rows = records.map { r in fields.map { $0.text(r, state: state(r)) } }
            lines = parseable ? FieldOutput.parseable(rows: rows)
                : FieldOutput.table(fields: fields.map(\.rawValue), rows: rows)
        }
        for line in lines { print(line) }
    }
}

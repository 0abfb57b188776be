// vnicadm set-linkprop -p prop=val[,..] NAME
// vnicadm reset-linkprop [-p prop[,..]] NAME
// vnicadm show-linkprop [-c -o FIELD[,..]] [--json] [-p prop[,..]] [NAME]
// The link properties are the rows of kind `property` in VNICParameter.
import ArgumentParser
import VnicCLI
import VnicConfig
import VnicCore

private let propertyNames = VNICParameter.properties.map(\.rawValue).joined(separator: ", ")

struct SetLinkProp: WriteCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-linkprop",
        abstract: "Set link properties of a VNIC (admin-only; the VM can never change them).",
        discussion: "Properties: " + VNICParameter.properties.map { "\($0.rawValue): \($0.syntax)" }.joined(separator: "; ") + ".")

    @OptionGroup var database: DatabaseOptions

    @Option(name: [.customShort("p"), .customLong("prop")],
            help: ArgumentHelp("prop=value[,prop=value...] (repeatable; list values continue after commas).", valueName: "prop=val[,..]"))
    var props: [String] = []

    @Argument(help: ArgumentHelp("The VNIC.", valueName: "name"))
    var name: String

    func validate() throws {
        if props.isEmpty { throw ValidationError("-p prop=value is required (properties: \(propertyNames))") }
    }

    func check() throws(VnicError) {
        try checkValues(try PropertyList.parse(props, allowed: VNICParameter.properties))
    }

    func apply(_ tx: inout ConfigTransaction) throws(VnicError) {
        let changes = try PropertyList.parse(props, allowed: VNICParameter.properties)
        try tx.update(name: name, reason: "vnicadm set-linkprop") { (r) throws(VnicError) in
            for (p, value) in changes { try p.parse(value, into: &r) }
        }
    }
}

struct ResetLinkProp: WriteCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset-linkprop",
        abstract: "Reset link properties of a VNIC to their defaults (all of them without -p).")

    @OptionGroup var database: DatabaseOptions

    @Option(name: [.customShort("p"), .customLong("prop")],
            help: ArgumentHelp("The properties to reset, comma-separated (repeatable).", valueName: "prop[,..]"))
    var props: [String] = []

    @Argument(help: ArgumentHelp("The VNIC.", valueName: "name"))
    var name: String

    func check() throws(VnicError) {
        _ = try ShowLinkProp.properties(props)
    }

    func apply(_ tx: inout ConfigTransaction) throws(VnicError) {
        let selected = try ShowLinkProp.properties(props)
        try tx.update(name: name, reason: "vnicadm reset-linkprop") { r in
            for p in selected { p.reset(&r) }
        }
    }
}

struct ShowLinkProp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-linkprop",
        abstract: "Show the link properties of VNICs (dladm's LINK PROPERTY PERM VALUE DEFAULT POSSIBLE).",
        discussion: """
            Fields: \(fields.joined(separator: ",")). '--' marks an unset value. -c -o prints \
            parseable lines (fields joined by ':', with ':' and '\\' escaped when several fields are printed).
            """)

    static let fields = ["link", "property", "perm", "value", "default", "possible"]

    @OptionGroup var database: DatabaseOptions

    @Flag(name: [.customShort("c"), .customLong("parseable")], help: "Machine-parseable output (requires -o).")
    var parseable = false

    @Option(name: [.customShort("o"), .customLong("output")],
            help: ArgumentHelp("The fields to print, comma-separated, or 'all'.", valueName: "field[,..]"))
    var output: String?

    @Flag(name: .customLong("json"), help: "Print a JSON array of objects.")
    var json = false

    @Option(name: [.customShort("p"), .customLong("prop")],
            help: ArgumentHelp("Only these properties, comma-separated.", valueName: "prop[,..]"))
    var props: [String] = []

    @Argument(help: ArgumentHelp("Show only this VNIC.", valueName: "name"))
    var name: String?

    func validate() throws {
        if parseable && output == nil { throw ValidationError("-c requires -o FIELD[,..] (e.g. -c -o link,property,value)") }
        if parseable && json { throw ValidationError("-c and --json cannot be combined") }
        do {
            _ = try Output.fields(output, known: Self.fields)
            _ = try Self.properties(props)
        } catch { throw ValidationError(error.message) }
    }

    /// The properties named in `-p` lists (all of them when none is given).
    static func properties(_ lists: [String]) throws(VnicError) -> [VNICParameter] {
        guard !lists.isEmpty else { return VNICParameter.properties }
        var out: [VNICParameter] = []
        for item in lists.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            let p = try PropertyList.lookup(String(item), allowed: VNICParameter.properties, what: "property")
            if !out.contains(p) { out.append(p) }
        }
        return out
    }

    func run() throws {
        let out = Output(parseable: parseable, json: json, fields: try Output.fields(output, known: Self.fields))
        let selected = try Self.properties(props)
        let store = try database.open(create: false)
        let records = try store.vnics(named: name)
        let rows: [[String: String?]] = records.flatMap { r in
            selected.map { p in
                ["link": r.name, "property": p.rawValue, "perm": "rw", "value": p.text(of: r),
                 "default": p.defaultText, "possible": p.possible]
            }
        }
        out.print(rows: rows)
    }
}

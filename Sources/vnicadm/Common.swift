// What the subcommands share: writes as transactions (so `batch` can run many
// in one), `-p name=value[,..]` lists, and output in the three dladm forms.
import ArgumentParser
import VnicCLI
import VnicConfig
import VnicCore
#if canImport(Glibc)
import Glibc
#endif

/// A subcommand that changes the database. `apply` makes its changes inside a
/// transaction; `run` gives it one of its own, and `batch` runs many in one.
protocol WriteCommand: ParsableCommand {
    var database: DatabaseOptions { get }
    /// Whether a missing database is created (create-vnic) or an error.
    static var createsDatabase: Bool { get }
    /// Checks the values given without the database (batch runs this for
    /// every line before it writes anything).
    func check() throws(VnicError)
    func apply(_ tx: inout ConfigTransaction) throws(VnicError)
}

extension WriteCommand {
    static var createsDatabase: Bool { false }
    func check() throws(VnicError) {}

    func run() throws {
        let store = try database.open(create: Self.createsDatabase)
        try store.update { (tx) throws(VnicError) in try apply(&tx) }
        try FleetMode.commit()
    }
}

/// `-p prop=val[,prop=val...]` lists. A comma-separated item without '=' is
/// another value of the item before it (dladm's `cpus=0,1,2`), kept joined by
/// commas for that field's parser.
enum PropertyList {
    static func parse(_ lists: [String], allowed: [VNICParameter], what: String = "property") throws(VnicError) -> [(VNICParameter, String)] {
        var result: [(VNICParameter, String)] = []
        for list in lists {
            for item in list.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                guard let eq = item.firstIndex(of: "=") else {
                    guard !item.isEmpty, let last = result.popLast() else {
                        throw .usage("-p: '\(list)' is not \(what)=value[,\(what)=value...]")
                    }
                    result.append((last.0, last.1 + "," + item))
                    continue
                }
                let key = String(item[..<eq]), value = String(item[item.index(after: eq)...])
                let parameter = try lookup(key, allowed: allowed, what: what)
                guard !result.contains(where: { $0.0 == parameter }) else {
                    throw .usage("-p: \(what) '\(key)' is given twice")
                }
                result.append((parameter, value))
            }
        }
        return result
    }

    /// A field by name among `allowed`; the error lists the known ones and,
    /// for a field of another kind, says which subcommand sets it.
    static func lookup(_ key: String, allowed: [VNICParameter], what: String) throws(VnicError) -> VNICParameter {
        if let p = VNICParameter(rawValue: key), allowed.contains(p) { return p }
        if let p = VNICParameter(rawValue: key) {
            let hint = switch p.kind {
            case .property: "it is a link property: use set-linkprop"
            case .parameter: p.vmMayChange || what != "parameter" ? "it is a VNIC parameter: use vnicadm set" : "it is a VNIC parameter"
            case .identity: "it is fixed at create-vnic"
            }
            throw .usage("\(key): not a \(what) here (\(hint))")
        }
        throw .usage("unknown \(what) '\(key)' (known: \(allowed.map(\.rawValue).joined(separator: ", ")))")
    }
}

/// Parses and validates each value on its own (on a blank record): the checks
/// that need no database.
func checkValues(_ changes: [(VNICParameter, String)]) throws(VnicError) {
    for (p, value) in changes {
        var r = VNICRecord(name: "x", link: "x", mac: MACAddress(rawValue: 2 << 40))
        try p.parse(value, into: &r)
        try p.validate(r)
    }
}

/// `NAME=VALUE` arguments of `vnicadm set`.
enum Assignments {
    static func parse(_ items: [String], allowed: [VNICParameter]) throws(VnicError) -> [(VNICParameter, String)] {
        var result: [(VNICParameter, String)] = []
        for item in items {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw .usage("'\(item)' is not PARAM=VALUE (e.g. mtu=9000)")
            }
            let p = try PropertyList.lookup(String(item[..<eq]), allowed: allowed, what: "parameter")
            guard !result.contains(where: { $0.0 == p }) else { throw .usage("\(p.rawValue): is given twice") }
            result.append((p, String(item[item.index(after: eq)...])))
        }
        return result
    }
}

/// Output options of the show-* subcommands: human columns, `-p -o` parseable
/// (`-c -o` for show-linkprop, like dladm), or JSON.
struct Output {
    var parseable: Bool
    var json: Bool
    var fields: [String]

    /// Prints rows of the selected fields (`values(field)` per row).
    func print(rows: [[String: String?]]) {
        let selected = rows.map { row in fields.map { row[$0] ?? nil } }
        let lines: [String]
        if json {
            lines = [JSONValue.array(rows.map { row in
                .object(fields.map { f in (f, (row[f] ?? nil).map(JSONValue.string) ?? .null) })
            }).text]
        } else if parseable {
            lines = FieldOutput.parseable(rows: selected)
        } else {
            lines = FieldOutput.table(fields: fields, rows: selected)
        }
        for line in lines { Swift.print(line) }
    }

    /// The `-o` list: known fields, comma-separated, or `all`.
    static func fields(_ output: String?, known: [String], defaults: [String]? = nil) throws(VnicError) -> [String] {
        guard let output, output != "all" else { return output == "all" ? known : defaults ?? known }
        return try output.split(separator: ",", omittingEmptySubsequences: false).map { (f) throws(VnicError) in
            guard known.contains(String(f)) else {
                throw .usage("-o: unknown field '\(f)' (fields: \(known.joined(separator: ",")))")
            }
            return String(f)
        }
    }
}

/// Flushes stdout (follow and interval modes print as they go).
func flushStandardOutput() { fflush(nil) }

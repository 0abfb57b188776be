// vnicadm: the administration CLI of the VNIC configuration database, modelled
// on dladm. Subcommands each take `--db PATH` (else $VNIC_DB, else
// /var/lib/vnic/vnic.db). Exit codes by the contract: 0 success, 1 runtime
// failure, 2 usage error, with one line on stderr ("vnicadm: <message>").
import ArgumentParser
import VnicConfig
import VnicCore
#if canImport(Glibc)
import Glibc
#endif

struct VnicAdm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vnicadm",
        abstract: "Administer the VNICs of the vnic appliance (modelled on dladm).",
        discussion: """
            Every subcommand takes --db PATH (else $VNIC_DB, else \(ConfigStore.defaultPath)); \
            $\(ConfigStore.mapSizeVariable) sets the most the database may grow to (default 1G). \
            Exit status: 0 success, 1 runtime failure (database missing, read-only or full, no vnicd), \
            2 usage error; errors are one line naming the bad input.

            Batch mode: 'vnicadm batch [-f FILE|-] [--per-line]' runs one write subcommand per line \
            (create-vnic, delete-vnic, set, set-linkprop, reset-linkprop, set-policy; without 'vnicadm' \
            and --db), all in one transaction (all or nothing; a killed vnicadm leaves the database as it \
            was), or with --per-line each line on its own. 10,000 create-vnic lines take a few seconds. \
            See vnicadm batch --help.
            """,
        subcommands: [CreateVNIC.self, DeleteVNIC.self, ShowVNIC.self, SetLinkProp.self, ResetLinkProp.self,
                      ShowLinkProp.self, SetPolicy.self, ShowPolicy.self, SetParameters.self, ShowStats.self,
                      ShowEvents.self, Batch.self, Check.self])

    func run() throws {
        let names = VnicAdm.configuration.subcommands.compactMap { $0.configuration.commandName }
        throw VnicError.usage("missing subcommand (\(names.joined(separator: ", "))); see vnicadm --help")
    }
}

/// Where the database is, for every subcommand.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("db"), help: ArgumentHelp(
        "The configuration database (default: $VNIC_DB, else \(ConfigStore.defaultPath)).", valueName: "path"))
    var db: String?

    var path: String { ConfigStore.databasePath(option: db) }

    func validate() throws {
        if let db, db.isEmpty { throw ValidationError("--db: the path is empty") }
    }

    /// The database, or with `--etcd`/`--host` the host's VNICs in etcd as a
    /// scratch copy (FleetCopy) that `FleetMode.commit()` writes back.
    func open(create: Bool) throws -> ConfigStore {
        if let t = FleetMode.target {
            let copy = try FleetCopy(client: t.client, host: t.host)
            FleetMode.copy = copy
            return copy.store
        }
        return try ConfigStore.open(path: path, create: create)
    }
}

/// `-p -o FIELD[,..]` and `--json`, for the show subcommands (dladm's parseable output).
struct OutputOptions: ParsableArguments {
    @Flag(name: [.customShort("p"), .customLong("parseable")], help: "Machine-parseable output (requires -o).")
    var parseable = false

    @Option(name: [.customShort("o"), .customLong("output")],
            help: ArgumentHelp("The fields to print, comma-separated, or 'all'.", valueName: "field[,..]"))
    var output: String?

    @Flag(name: .customLong("json"), help: "Print JSON (an array of objects).")
    var json = false

    /// The combination and the field names, as usage errors (exit 2).
    func check(known: [String], defaults: [String]? = nil, example: String) throws {
        if parseable && output == nil { throw ValidationError("-p requires -o FIELD[,..] (e.g. -p -o \(example))") }
        if parseable && json { throw ValidationError("-p and --json cannot be combined") }
        do { _ = try Output.fields(output, known: known, defaults: defaults) } catch { throw ValidationError(error.message) }
    }
}

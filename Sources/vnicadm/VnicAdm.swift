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
        subcommands: [CreateVNIC.self, DeleteVNIC.self, ShowVNIC.self])

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

    func open(create: Bool) throws -> ConfigStore { try ConfigStore.open(path: path, create: create) }
}

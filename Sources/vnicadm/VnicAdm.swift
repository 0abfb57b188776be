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

enum VnicAdmEntry {
    /// Parses, runs, and exits with the contract's code.
    static func main(arguments: [String]) -> Never {
        do {
            var command = try VnicAdm.parseAsRoot(arguments)
            try command.run()
            exit(0)
        } catch let e as VnicError {
            fail(e.message, e.exitCode)
        } catch {
            let code = VnicAdm.exitCode(for: error)
            if code == .success {   // --help and other clean exits
                let text = VnicAdm.fullMessage(for: error)
                if !text.isEmpty { print(text) }
                exit(0)
            }
            // ArgumentParser reports bad arguments as 64 (EX_USAGE); the contract says 2.
            let message = VnicAdm.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let usage = code == .validationFailure || error is ValidationError
            fail(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message,
                 usage ? 2 : (code.rawValue == 0 ? 1 : code.rawValue))
        }
    }

    private static func fail(_ message: String, _ code: Int32) -> Never {
        let line = Array("vnicadm: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        exit(code)
    }
}

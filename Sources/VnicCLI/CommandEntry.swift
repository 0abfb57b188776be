// VnicCLI: the one entry point every executable uses, so that all of them keep
// the contract's exit codes: 0 success, 1 runtime failure, 2 usage error, with
// one line on stderr naming the bad input ("vnicd: --queues: ...") and no trace.
import ArgumentParser
import Glibc
import VnicCore

public enum CommandEntry {
    /// Parses the arguments, runs the command and exits with the contract's code.
    public static func main<C: ParsableCommand>(_ command: C.Type, arguments: [String]? = nil) -> Never {
        let name = C.configuration.commandName ?? "vnic"
        do {
            var cmd = try C.parseAsRoot(arguments)
            try cmd.run()
            exit(0)
        } catch let e as VnicError {
            printError("\(name): \(e.message.oneLine)")
            exit(e.exitCode)
        } catch {
            let code = C.exitCode(for: error)
            if code == .success {   // --help, --version
                let text = C.fullMessage(for: error)
                if !text.isEmpty { print(text) }
                exit(0)
            }
            // ArgumentParser says 64 (EX_USAGE) for bad arguments; the contract says 2.
            var message = C.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            if message.hasPrefix("Error: ") { message.removeFirst(7) }
            let usage = code == .validationFailure || error is ValidationError
            printError("\(name): \(message)")
            exit(usage ? 2 : (code.rawValue == 0 ? 1 : code.rawValue))
        }
    }

}

// vnic-guest: the guest agent. `request` asks the appliance (169.254.169.254,
// in-band on the VM's link) for a change; `listen` applies its notifications.
import ArgumentParser
import Glibc
import VnicCLI
import VnicCore
import VnicGuest

struct GuestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vnic-guest",
        abstract: "The vnic guest agent: request configuration changes, apply notifications.",
        subcommands: [Request.self, Listen.self])
}

struct Request: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the appliance to change PARAM to VALUE; exit 0 accepted (and applied), 3 no answer.",
        discussion: "PARAM: \(GuestParameter.names). A bare ip address gets the prefix length of the interface's first address.")

    @Argument(help: "PARAM=VALUE") var assignment: String
    @Option(help: "Seconds to wait for an answer (the request is resent every 200 ms).") var timeout: Double = 3
    @Option(name: .short, help: "The interface (default: the only non-loopback interface that is up).") var i: String?

    func validate() throws {
        do { _ = try GuestAssignment(parsing: assignment) } catch { throw ValidationError(error.message) }
        guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout: '\(timeout)' is not in (0, 3600]") }
    }

    func run() throws {
        let a = try GuestAssignment(parsing: assignment)
        print(try GuestAgent.request(a, interface: i, timeout: timeout))
    }
}

struct Listen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the appliance's notifications to this guest's stack and acknowledge them, until killed.")

    @Option(name: .short, help: "The interface (default: the only non-loopback interface that is up).") var i: String?

    func run() throws {
        signal(SIGINT) { _ in _exit(0) }
        signal(SIGTERM) { _ in _exit(0) }
        // One write(2) per line: seen at once when stdout is a pipe or a file.
        try GuestAgent.listen(interface: i, log: { line in
            var s = line + "\n"
            s.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
        }, warn: { printError("vnic-guest: \($0)") })
    }
}

// vnic-lab guest exec|start|stop: the lab's QEMU guests (see QEMUGuest).
// Exit status: exec exits with the command's status; otherwise 0 success,
// 1 runtime failure, 2 usage error.
import ArgumentParser
import Foundation
import Glibc
import VnicCore
import VnicLabKit

extension VnicLab {
    struct Guest: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run commands in, stop and start the lab's QEMU guests (vnic-lab up --qemu K).",
            discussion: """
                VM is the VM's number (2) or name (vm2). The console of guest VM I is \
                /run/vnic-lab/P/vmI.console (a unix socket; its output since QEMU started is in vmI.log).
                """,
            subcommands: [Exec.self, Start.self, Stop.self])

        func run() throws { throw VnicError.usage("missing subcommand: exec, start or stop (see --help)") }
    }
}

/// The VM argument: "2" or "vm2".
func parseVM(_ text: String) throws -> Int {
    let digits = text.hasPrefix("vm") ? String(text.dropFirst(2)) : text
    guard let n = Int(digits), LabTopology.vmRange.contains(n), !digits.hasPrefix("0") else {
        throw ValidationError("VM: '\(text)' is not a VM number in \(LabTopology.vmRange) (or vmN)")
    }
    return n
}

func seconds(_ text: String, flag: String) throws -> Int {
    guard let n = Int(text), (1...86_400).contains(n) else { throw ValidationError("\(flag): '\(text)' is not in 1...86400") }
    return n
}

extension VnicLab.Guest {
    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a shell command in a guest over its console; print its output (stdout and stderr) and exit with its status.",
            discussion: "Example: vnic-lab guest exec --prefix P 2 -- ip -j addr show dev eth0. The words after -- are joined with spaces into one /bin/sh command (as ssh does); its stdin is /dev/null. Past --timeout the guest gets ^C and vnic-lab exits 1.")

        @OptionGroup var prefixOption: PrefixOption
        @Option(help: "Seconds to wait for the command.")
        var timeout: String = "30"
        @Argument(help: "The guest: its VM number or name.")
        var vm: String
        @Argument(parsing: .postTerminator, help: "The command, after --.")
        var command: [String] = []

        func validate() throws {
            _ = try parseVM(vm)
            _ = try seconds(timeout, flag: "--timeout")
            if command.isEmpty { throw ValidationError("missing command after -- (vnic-lab guest exec VM -- COMMAND...)") }
        }

        func run() throws {
            let lab = try Lab.preflight()
            let guest = try QEMUGuest.load(prefix: prefixOption.prefix, vm: try parseVM(vm), ip: lab.ip)
            let result = try guest.exec(command.joined(separator: " "), timeout: .seconds(try seconds(timeout, flag: "--timeout")))
            FileHandle.standardOutput.write(Data(result.output.utf8))
            Glibc.exit(result.status)
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Boot a stopped guest (QEMU makes its tap again: a new ifindex) and wait for its ready line.")

        @OptionGroup var prefixOption: PrefixOption
        @Option(help: "Seconds to wait for the ready line.")
        var timeout: String = "\(Int(QEMUGuest.defaultBootTimeout.components.seconds))"
        @Option(help: "For a guest never started: the accelerator (auto, kvm, tcg).")
        var accel: String = "auto"
        @Argument(help: "The guest: its VM number or name.")
        var vm: String
        @Flag(name: .shortAndLong, help: "Print each command that changes something.")
        var verbose = false

        func validate() throws {
            _ = try parseVM(vm)
            _ = try seconds(timeout, flag: "--timeout")
            guard AcceleratorChoice(rawValue: accel) != nil else { throw ValidationError("--accel: '\(accel)' is not auto, kvm or tcg") }
        }

        func run() throws {
            var lab = try Lab.preflight()
            if verbose { lab.log = { FileHandle.standardError.write(Data("+ \($0)\n".utf8)) } }
            LabInterrupt.install()
            var settings = Lab.GuestSettings()
            settings.accelerator = AcceleratorChoice(rawValue: accel) ?? .auto
            let guest = try lab.guest(prefix: prefixOption.prefix, vm: try parseVM(vm), settings: settings)
            let what = "guest \(guest.name) of lab \(prefixOption.prefix)"
            guard let boot = try lab.start(guest, timeout: .seconds(try seconds(timeout, flag: "--timeout"))) else {
                print("\(what): already running (pid \(guest.pid.map(String.init) ?? "?"))")
                return
            }
            let tap = (try? lab.links(in: guest.configuration.hostNamespace))?.first { $0.name == guest.configuration.tap }
            print("\(what): ready in \(String(format: "%.1f", boot.seconds)) s (pid \(guest.pid.map(String.init) ?? "?"), "
                  + "tap \(guest.configuration.tap) ifindex \(tap.map { String($0.ifindex) } ?? "?"))")
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Power a guest off (SIGTERM, then SIGKILL, if it does not within --timeout); its tap goes with QEMU.")

        @OptionGroup var prefixOption: PrefixOption
        @Option(help: "Seconds to wait for the poweroff before signalling QEMU.")
        var timeout: String = "15"
        @Argument(help: "The guest: its VM number or name.")
        var vm: String
        @Flag(name: .shortAndLong, help: "Print each command that changes something.")
        var verbose = false

        func validate() throws {
            _ = try parseVM(vm)
            _ = try seconds(timeout, flag: "--timeout")
        }

        func run() throws {
            let lab = try Lab.preflight()
            var guest = try QEMUGuest.load(prefix: prefixOption.prefix, vm: try parseVM(vm), ip: lab.ip)
            if verbose { guest.log = { FileHandle.standardError.write(Data("+ \($0)\n".utf8)) } }
            let what = "guest \(guest.name) of lab \(prefixOption.prefix)"
            let stopped = try guest.stop(grace: .seconds(try seconds(timeout, flag: "--timeout")))
            print(stopped ? "\(what): stopped (tap \(guest.configuration.tap) removed)" : "\(what): not running")
        }
    }
}

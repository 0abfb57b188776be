// vnic-lab: builds, removes and shows the namespace topology that tests and
// benchmarks run the appliance in (see LabTopology for the names).
// Exit status: 0 success, 1 runtime failure, 2 usage error; one line on stderr.
import ArgumentParser
import Foundation
import VnicCore
import VnicLabKit

struct VnicLab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vnic-lab",
        abstract: "Build the vnic test/bench topology in network namespaces.",
        discussion: """
            With prefix P: namespace P-host holds uplink0 and the ports vm1p..vmNp; P-wire holds \
            wire0 (02:00:00:00:00:01, 10.77.0.1/24), the peer of uplink0; P-vmI holds vnic0 \
            (02:00:00:00:01:XX, 10.77.0.(10+I)/24), the peer of vmIp. Nothing is created in the \
            root namespace.
            """,
        subcommands: [Up.self, Down.self, Status.self])

    /// No subcommand is a usage error, not a request for help.
    func run() throws { throw VnicError.usage("missing subcommand: up, down or status (see --help)") }
}

/// --prefix, shared by every subcommand.
struct PrefixOption: ParsableArguments {
    @Option(help: "Namespace prefix: 1-8 characters of a-z, 0-9, '-', starting with a letter.")
    var prefix: String = LabTopology.defaultPrefix

    func validate() throws {
        do { try LabTopology.validate(prefix: prefix) } catch { throw ValidationError(error.message) }
    }
}

extension VnicLab {
    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the lab, or complete a partial one; a complete one is left as it is.")

        @Option(help: "Number of VMs (\(LabTopology.vmRange)).")
        var vms: String = "2"
        @Option(help: "Queues per interface, on uplink0 and every port (\(LabTopology.queueRange)).")
        var queues: String = "1"
        @OptionGroup var prefixOption: PrefixOption
        @Option(name: .customLong("checksum-offload"),
                help: "Transmit checksum offload on the VMs' veth ends: on (the kernel's default, as containers have it; vnicd completes their partial checksums) or off (their stacks compute every checksum). wire0's is always off: it stands for a physical wire.")
        var checksumOffload: String = "on"
        @Flag(name: .shortAndLong, help: "Print each command that changes something.")
        var verbose = false

        /// Integers are taken as text so a bad one gets the same message as an out-of-range one.
        static func count(_ text: String, flag: String, range: ClosedRange<Int>) throws -> Int {
            guard let n = Int(text), range.contains(n) else {
                throw ValidationError("\(flag): '\(text)' is not in \(range)")
            }
            return n
        }

        func topology() throws -> LabTopology {
            let n = try Self.count(vms, flag: "--vms", range: LabTopology.vmRange)
            let q = try Self.count(queues, flag: "--queues", range: LabTopology.queueRange)
            guard checksumOffload == "on" || checksumOffload == "off" else {
                throw ValidationError("--checksum-offload: '\(checksumOffload)' is not on or off")
            }
            do {
                var t = try LabTopology(prefix: prefixOption.prefix, vms: n, queues: q)
                t.vmChecksumOffload = checksumOffload == "on"
                return t
            } catch {
                throw ValidationError(error.message)
            }
        }

        func validate() throws { _ = try topology() }

        func run() throws {
            let t = try topology()
            var lab = try Lab.preflight()
            if verbose { lab.log = { FileHandle.standardError.write(Data("+ \($0)\n".utf8)) } }
            LabInterrupt.install()
            let report = try lab.up(t)
            print(report.changed
                  ? "\(t): up (\(report.steps.count) change\(report.steps.count == 1 ? "" : "s"), "
                    + "\(report.createdNamespaces.count) namespace\(report.createdNamespaces.count == 1 ? "" : "s") created)"
                  : "\(t): up (already complete, nothing changed)")
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove every namespace of the lab; nothing there is not an error.")

        @OptionGroup var prefixOption: PrefixOption
        @Flag(name: .shortAndLong, help: "Print each command.")
        var verbose = false

        func run() throws {
            var lab = try Lab.preflight()
            if verbose { lab.log = { FileHandle.standardError.write(Data("+ \($0)\n".utf8)) } }
            let removed = try lab.down(prefix: prefixOption.prefix)
            let names = removed.count <= 6 ? removed.joined(separator: " ")
                : removed.prefix(3).joined(separator: " ") + " ... " + removed.last!
            print(removed.isEmpty ? "no lab with prefix \(prefixOption.prefix)"
                  : "lab \(prefixOption.prefix): removed \(removed.count) namespace\(removed.count == 1 ? "" : "s") (\(names))")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the lab's namespaces and their interfaces (MAC, queues, state, XDP, peer, addresses).")

        @OptionGroup var prefixOption: PrefixOption
        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let lab = try Lab.preflight()
            guard let status = try lab.status(prefix: prefixOption.prefix) else {
                print(json ? "null" : "no lab with prefix \(prefixOption.prefix)")
                return
            }
            print(json ? status.json() : status.text(), terminator: json ? "\n" : "")
        }
    }
}

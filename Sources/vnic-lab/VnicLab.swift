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
            With prefix P: namespace P-host holds uplink0 and the ports vm1p..vmNp \
            (02:00:00:HH:02:LL); P-wire holds wire0 (02:00:00:00:00:01, 10.77.0.1/24), the peer of \
            uplink0; P-vmI holds vnic0 (02:00:00:HH:01:LL, 10.77.0.(10+I)/24), the peer of vmIp. \
            HH and LL are I's high and low byte (VM 17: 02:00:00:00:01:11). Labs of more than 244 \
            VMs use 10.77.0.0/16: VM I gets 10.77.0.0 + 10 + I (VM 300: 10.77.1.54/16), wire0 \
            10.77.0.1/16. Nothing is created in the root namespace.

            With --qemu K the last K VMs are QEMU guests instead of namespaces: VM I then has no \
            P-vmI; its port is the tap vmIt in P-host, which QEMU (run inside P-host) creates and \
            removes, as libvirt attaches a guest: not persistent, so every guest start is a new \
            ifindex. The guest's eth0 (virtio-net, QEMU's default offloads) has the VM's MAC and \
            address, gateway 10.77.0.1. Its serial console is /run/vnic-lab/P/vmI.console; \
            'vnic-lab guest exec' runs commands there. The image is made by \
            scripts/guest-image.sh (busybox, iproute2, vnic-guest, iperf3).
            """,
        subcommands: [Up.self, Down.self, Status.self, Guest.self])

    /// No subcommand is a usage error, not a request for help.
    func run() throws { throw VnicError.usage("missing subcommand: up, down, status or guest (see --help)") }
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
        @Option(help: "How many of the VMs, the last ones, are QEMU guests on taps (0...--vms).")
        var qemu: String = "0"
        @Option(name: .customLong("guest-queues"),
                help: "Queues of each guest's tap and virtio-net device, and its vCPUs (\(LabTopology.guestQueueRange); 1: libvirt's default single-queue tap).")
        var guestQueues: String = "1"
        @Option(help: "QEMU accelerator: auto (KVM if a probe boots, cached in /run/vnic-lab/accel; else TCG), kvm or tcg.")
        var accel: String = "auto"
        @Option(name: .customLong("guest-image"),
                help: "Directory of the guest image (vmlinuz, initrd.img); default $VNIC_GUEST_DIR, else .build/guest of this checkout, made or refreshed with scripts/guest-image.sh.")
        var guestImage: String?
        @Option(name: .customLong("boot-timeout"), help: "Seconds to wait for the guests' ready line.")
        var bootTimeout: String = "\(Int(QEMUGuest.defaultBootTimeout.components.seconds))"
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
            let k = try Self.count(qemu, flag: "--qemu", range: 0...n)
            let g = try Self.count(guestQueues, flag: "--guest-queues", range: LabTopology.guestQueueRange)
            guard checksumOffload == "on" || checksumOffload == "off" else {
                throw ValidationError("--checksum-offload: '\(checksumOffload)' is not on or off")
            }
            do {
                var t = try LabTopology(prefix: prefixOption.prefix, vms: n, queues: q, qemuGuests: k, guestQueues: g)
                t.vmChecksumOffload = checksumOffload == "on"
                return t
            } catch {
                throw ValidationError(error.message)
            }
        }

        func settings() throws -> Lab.GuestSettings {
            var s = Lab.GuestSettings()
            guard let a = AcceleratorChoice(rawValue: accel) else {
                throw ValidationError("--accel: '\(accel)' is not auto, kvm or tcg")
            }
            s.accelerator = a
            s.imageDirectory = guestImage
            s.bootTimeout = .seconds(try Self.count(bootTimeout, flag: "--boot-timeout", range: 1...3600))
            return s
        }

        func validate() throws {
            _ = try topology()
            _ = try settings()
        }

        func run() throws {
            let t = try topology()
            var lab = try Lab.preflight()
            if verbose { lab.log = { FileHandle.standardError.write(Data("+ \($0)\n".utf8)) } }
            LabInterrupt.install()
            let report = try lab.up(t, guests: try settings())
            let changes = report.steps.count + report.startedGuests.count
            print(report.changed
                  ? "\(t): up (\(changes) change\(changes == 1 ? "" : "s"), "
                    + "\(report.createdNamespaces.count) namespace\(report.createdNamespaces.count == 1 ? "" : "s") created"
                    + (report.startedGuests.isEmpty ? "" : ", \(report.startedGuests.count) guest\(report.startedGuests.count == 1 ? "" : "s") booted") + ")"
                  : "\(t): up (already complete, nothing changed)")
            for vm in report.startedGuests {
                let seconds = report.bootTimes[vm].map { String(format: "%.1f", $0.seconds) } ?? "?"
                print("guest vm\(vm): ready in \(seconds) s (tap \(t.port(vm)), \(t.vmMAC(vm)), \(t.vmIP(vm)), "
                      + "accel \(report.accelerator?.rawValue ?? "?"): \(report.acceleratorReason ?? ""))")
            }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the lab's QEMU guests, remove every namespace of the lab and /run/vnic-lab/P; nothing there is not an error.")

        @OptionGroup var prefixOption: PrefixOption
        @Flag(name: .shortAndLong, help: "Print each command.")
        var verbose = false

        func run() throws {
            var lab = try Lab.preflight()
            if verbose { lab.log = { FileHandle.standardError.write(Data("+ \($0)\n".utf8)) } }
            let report = try lab.tearDown(prefix: prefixOption.prefix)
            let removed = report.namespaces
            let names = removed.count <= 6 ? removed.joined(separator: " ")
                : removed.prefix(3).joined(separator: " ") + " ... " + removed.last!
            let guests = report.guests.isEmpty ? ""
                : "stopped \(report.guests.count) guest\(report.guests.count == 1 ? "" : "s") (\(report.guests.map { "vm\($0)" }.joined(separator: " "))), "
            print(removed.isEmpty && report.guests.isEmpty ? "no lab with prefix \(prefixOption.prefix)"
                  : "lab \(prefixOption.prefix): \(guests)removed \(removed.count) namespace\(removed.count == 1 ? "" : "s") (\(names))")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the lab's namespaces and their interfaces (MAC, queues, state, XDP, peer, addresses), and its QEMU guests (pid, tap, running or not).")

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

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}

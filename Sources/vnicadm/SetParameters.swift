// vnicadm set NAME PARAM=VALUE [..]: a host-initiated change of VNIC parameters.
import ArgumentParser
import Foundation
import VnicConfig
import VnicCore

struct SetParameters: WriteCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change parameters of a VNIC (host-initiated; audited with origin host).",
        discussion: """
            Parameters: \(VNICParameter.parameters.map { "\($0.rawValue) (\($0.syntax))" }.joined(separator: "; ")). \
            All changes are one transaction; each changed parameter gets an audit entry (show-events). \
            vnicd follows the database within milliseconds and notifies the VM's guest agent \
            (vnic-guest listen) of each changed parameter the VM holds, retrying until it acknowledges or \
            3 s pass; vnicadm waits for that outcome (--wait) and prints it, one line per parameter.
            """)

    @OptionGroup var database: DatabaseOptions

    @Argument(help: ArgumentHelp("The VNIC.", valueName: "name"))
    var name: String

    @Argument(help: ArgumentHelp("PARAM=VALUE (one or more).", valueName: "param=value"))
    var assignments: [String] = []

    @Option(help: ArgumentHelp("Seconds to wait for the guest's acknowledgement (0: do not wait).", valueName: "seconds"))
    var wait: Double = 4

    func validate() throws {
        if !(wait >= 0 && wait <= 600) { throw ValidationError("--wait: '\(wait)' is not in 0...600 seconds") }
        if assignments.isEmpty { throw ValidationError("give at least one PARAM=VALUE (e.g. vnicadm set \(name) mtu=9000)") }
    }

    func check() throws(VnicError) {
        try checkValues(try Assignments.parse(assignments, allowed: VNICParameter.parameters))
    }

    func apply(_ tx: inout ConfigTransaction) throws(VnicError) {
        let changes = try Assignments.parse(assignments, allowed: VNICParameter.parameters)
        try tx.update(name: name, reason: "vnicadm set") { (r) throws(VnicError) in
            for (p, value) in changes { try p.parse(value, into: &r) }
        }
    }

    /// Commits, then reports what the guest made of each change vnicd told it about.
    func run() throws {
        let store = try database.open(create: false)
        let before = try store.lastAuditSequence()
        try store.update { (tx) throws(VnicError) in try apply(&tx) }
        if let t = FleetMode.target {
            try FleetMode.commit()
            print("\(name): committed to the fleet; host \(t.host)'s vnicd applies it and notifies the VM")
            return
        }
        let held = Set(VNICParameter.policyParameters.map(\.rawValue))
        let changed = try store.auditEntries(after: before, vnic: name)
            .filter { $0.origin == .host && $0.verdict == .applied && held.contains($0.parameter) }
        guard !changed.isEmpty, wait > 0 else { return }
        guard RuntimeStatus.readLive(database: database.path) != nil else {
            print("\(name): the VM was not notified: no vnicd is running for \(database.path)")
            return
        }
        var outcome: [String: String] = [:]
        let deadline = Date().addingTimeInterval(wait)
        while outcome.count < changed.count && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            for e in try store.auditEntries(after: before, vnic: name) where e.guest != nil {
                outcome[e.parameter] = e.reason
            }
        }
        for e in changed {
            print("\(name) \(e.parameter)=\(e.new ?? ""): \(outcome[e.parameter] ?? "no word from vnicd within \(wait) s")")
        }
    }
}

// vnicadm set NAME PARAM=VALUE [..]: a host-initiated change of VNIC parameters.
import ArgumentParser
import VnicConfig
import VnicCore

struct SetParameters: WriteCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change parameters of a VNIC (host-initiated; audited with origin host).",
        discussion: """
            Parameters: \(VNICParameter.parameters.map { "\($0.rawValue) (\($0.syntax))" }.joined(separator: "; ")). \
            All changes are one transaction; each changed parameter gets an audit entry (show-events). \
            vnicd follows the database within milliseconds. Notifying the VM's guest agent of the new \
            values is not implemented yet (a later issue): the guest learns them when that lands.
            """)

    @OptionGroup var database: DatabaseOptions

    @Argument(help: ArgumentHelp("The VNIC.", valueName: "name"))
    var name: String

    @Argument(help: ArgumentHelp("PARAM=VALUE (one or more).", valueName: "param=value"))
    var assignments: [String] = []

    func validate() throws {
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
}

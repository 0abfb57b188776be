// vnicadm delete-vnic NAME
import ArgumentParser
import VnicConfig
import VnicCore

struct DeleteVNIC: WriteCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-vnic",
        abstract: "Delete a VNIC.")

    @OptionGroup var database: DatabaseOptions

    @Argument(help: ArgumentHelp("The VNIC to delete.", valueName: "name"))
    var name: String

    func apply(_ tx: inout ConfigTransaction) throws(VnicError) {
        try tx.delete(name: name, reason: "vnicadm delete-vnic")
    }
}

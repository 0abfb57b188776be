// vnicadm delete-vnic NAME
import ArgumentParser
import VnicConfig

struct DeleteVNIC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-vnic",
        abstract: "Delete a VNIC.")

    @OptionGroup var database: DatabaseOptions

    @Argument(help: ArgumentHelp("The VNIC to delete.", valueName: "name"))
    var name: String

    func run() throws {
        try database.open(create: false).delete(name: name)
    }
}

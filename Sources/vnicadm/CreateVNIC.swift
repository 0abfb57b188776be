// vnicadm create-vnic -l LINK -m MAC|random [--port IFNAME] [-i IP/LEN]... [-p prop=val[,..]] NAME
import ArgumentParser
import VnicConfig
import VnicCore

struct CreateVNIC: WriteCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-vnic",
        abstract: "Create a VNIC over an uplink.",
        discussion: """
            Parameters and properties (-p): \(VNICParameter.allCases.filter(\.isCreateProperty).map(\.rawValue).joined(separator: ", ")). \
            Several may be given comma-separated (-p mtu=9000,gateway=10.77.0.1,maxbw=1G) or with several -p; \
            a list value continues after commas (-p cpus=0,1,allowed-ips=10.77.0.11).
            """)

    static var createsDatabase: Bool { true }

    @OptionGroup var database: DatabaseOptions

    @Option(name: [.customShort("l"), .customLong("link")], help: ArgumentHelp("The uplink interface.", valueName: "link"))
    var link: String

    @Option(name: [.customShort("m"), .customLong("mac")],
            help: ArgumentHelp("The VNIC's MAC, or 'random' for a random locally administered one.", valueName: "mac"))
    var mac: String

    @Option(name: .customLong("port"), help: ArgumentHelp("The host-side interface of the VM (veth or tap).", valueName: "ifname"))
    var port: String?

    @Option(name: [.customShort("i"), .customLong("ip")],
            help: ArgumentHelp("An address of the VM with its prefix length (repeatable, or comma-separated).", valueName: "ip/len"))
    var ips: [String] = []

    @Option(name: [.customShort("p"), .customLong("prop")],
            help: ArgumentHelp("Parameters and properties: name=value[,name=value...].", valueName: "prop=val[,..]"))
    var props: [String] = []

    @Argument(help: ArgumentHelp("The VNIC's name (1-31 of A-Z a-z 0-9 _ . -, starting with a letter).", valueName: "name"))
    var name: String

    /// The record the arguments describe (syntax checked; the store validates the rest).
    func record() throws(VnicError) -> VNICRecord {
        var record = VNICRecord(name: name, link: link, mac: MACAddress(rawValue: 0))
        try VNICParameter.name.parse(name, into: &record)
        try VNICParameter.link.parse(link, into: &record)
        try VNICParameter.mac.parse(mac, into: &record)
        if let port { try VNICParameter.port.parse(port, into: &record) }
        if !ips.isEmpty { try VNICParameter.ip.parse(ips.joined(separator: ","), into: &record) }
        for (parameter, value) in try PropertyList.parse(props, allowed: VNICParameter.allCases.filter(\.isCreateProperty)) {
            try parameter.parse(value, into: &record)
        }
        return record
    }

    func check() throws(VnicError) {
        try record().validate()
    }

    func apply(_ tx: inout ConfigTransaction) throws(VnicError) {
        try tx.create(try record(), reason: "vnicadm create-vnic")
    }
}

// vnicadm create-vnic -l LINK -m MAC|random [--port IFNAME] [-i IP/LEN]... [-p prop=val[,..]] NAME
import ArgumentParser
import VnicConfig
import VnicCore

struct CreateVNIC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-vnic",
        abstract: "Create a VNIC over an uplink.",
        discussion: """
            Properties (-p): \(VNICParameter.allCases.filter(\.isCreateProperty).map(\.rawValue).joined(separator: ", ")). \
            Several may be given comma-separated (-p mtu=9000,gateway=10.77.0.1) or with several -p.
            """)

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
            help: ArgumentHelp("Properties: prop=value[,prop=value...].", valueName: "prop=val[,..]"))
    var props: [String] = []

    @Argument(help: ArgumentHelp("The VNIC's name (1-31 of A-Z a-z 0-9 _ . -, starting with a letter).", valueName: "name"))
    var name: String

    func run() throws {
        var record = VNICRecord(name: name, link: link, mac: MACAddress(rawValue: 0))
        try VNICParameter.name.parse(name, into: &record)
        try VNICParameter.link.parse(link, into: &record)
        try VNICParameter.mac.parse(mac, into: &record)
        if let port { try VNICParameter.port.parse(port, into: &record) }
        if !ips.isEmpty { try VNICParameter.ip.parse(ips.joined(separator: ","), into: &record) }
        for (parameter, value) in try PropertyList.parse(props, allowed: VNICParameter.allCases.filter(\.isCreateProperty)) {
            try parameter.parse(value, into: &record)
        }
        let store = try database.open(create: true)
        try store.create(record)
    }
}

/// `-p prop=val[,prop=val...]` lists. A comma-separated item without '=' is
/// another value of the property before it (dladm's `cpus=0,1,2`), kept
/// joined by commas for that property's parser.
enum PropertyList {
    static func parse(_ lists: [String], allowed: [VNICParameter]) throws(VnicError) -> [(VNICParameter, String)] {
        var result: [(VNICParameter, String)] = []
        for list in lists {
            for item in list.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                guard let eq = item.firstIndex(of: "=") else {
                    guard !item.isEmpty, let last = result.popLast() else {
                        throw .usage("-p: '\(list)' is not prop=value[,prop=value...]")
                    }
                    result.append((last.0, last.1 + "," + item))
                    continue
                }
                let key = String(item[..<eq]), value = String(item[item.index(after: eq)...])
                guard let parameter = VNICParameter(rawValue: key), allowed.contains(parameter) else {
                    throw .usage("-p: unknown property '\(key)' (known: \(allowed.map(\.rawValue).joined(separator: ", ")))")
                }
                guard !result.contains(where: { $0.0 == parameter }) else {
                    throw .usage("-p: property '\(key)' is given twice")
                }
                result.append((parameter, value))
            }
        }
        return result
    }
}

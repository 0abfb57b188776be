// vnicadm set-policy -p PARAM=deny|any|VALUES [-p ..] NAME
// vnicadm show-policy [-p -o FIELD[,..]] [--json] [NAME]
// The VM's change policy, per parameter (VNICPolicy); the parameters a policy
// may open are the table's rows with a policy domain.
import ArgumentParser
import VnicCLI
import VnicConfig
import VnicCore

private let policyNames = VNICParameter.policyParameters.map(\.rawValue).joined(separator: ", ")

struct SetPolicy: WriteCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-policy",
        abstract: "Set what the VM may change, and to what.",
        discussion: """
            Parameters: \(policyNames). Each -p PARAM=deny (the default: the VM may not change it), \
            PARAM=any (any valid value), or PARAM=VALUES: a comma list of values, ranges and, for addresses, \
            CIDRs, e.g. -p ip=10.77.0.20-10.77.0.29,10.77.1.0/24 -p mtu=1280-9000 -p transport=tcp,both. \
            A value list request passes when every value it sets (each address of an ip list, each port range) \
            lies inside the set. Link properties are never the VM's to change.
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(name: [.customShort("p"), .customLong("policy")],
            help: ArgumentHelp("PARAM=deny|any|VALUES (repeatable).", valueName: "param=policy"))
    var policies: [String] = []

    @Argument(help: ArgumentHelp("The VNIC.", valueName: "name"))
    var name: String

    func validate() throws {
        if policies.isEmpty { throw ValidationError("-p PARAM=deny|any|VALUES is required (parameters: \(policyNames))") }
    }

    func rules() throws(VnicError) -> [(VNICParameter, PolicyRule)] {
        var rules: [(VNICParameter, PolicyRule)] = []
        for (p, text) in try PropertyList.parse(policies, allowed: VNICParameter.allCases, what: "parameter") {
            rules.append((p, try p.parsePolicy(text)))
        }
        return rules
    }

    func check() throws(VnicError) {
        _ = try rules()
    }

    func apply(_ tx: inout ConfigTransaction) throws(VnicError) {
        let rules = try rules()
        try tx.update(name: name, reason: "vnicadm set-policy") { r in
            for (p, rule) in rules { r.policy[p] = rule }
        }
    }
}

struct ShowPolicy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-policy",
        abstract: "Show what the VMs may change: per VNIC and parameter, the policy and the current value.",
        discussion: "Fields: \(fields.joined(separator: ",")). POLICY is deny, any, or the values allowed.")

    static let fields = ["link", "parameter", "policy", "value"]

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var format: OutputOptions

    @Argument(help: ArgumentHelp("Show only this VNIC.", valueName: "name"))
    var name: String?

    func validate() throws {
        try format.check(known: Self.fields, example: "link,parameter,policy")
    }

    func run() throws {
        let out = Output(parseable: format.parseable, json: format.json, fields: try Output.fields(format.output, known: Self.fields))
        let store = try database.open(create: false)
        let records = try store.vnics(named: name)
        let rows: [[String: String?]] = records.flatMap { r in
            VNICParameter.policyParameters.map { p in
                ["link": r.name, "parameter": p.rawValue, "policy": r.policy.text(p), "value": p.text(of: r)]
            }
        }
        out.print(rows: rows)
    }
}

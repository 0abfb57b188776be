// VNICPolicy: what a VNIC's VM may change, parameter by parameter (the patent's
// "policy"): `deny` (the default), `any`, or a set of values. A value set is a
// comma list of values, ranges (`10.0.0.20-10.0.0.29`, `1280-9000`) and, for
// addresses, CIDRs (`10.0.1.0/24`). Overlapping items are allowed; their union
// counts.
//
// Every parameter the VM may be allowed to change has a `PolicyDomain` in the
// parameter table: how its values map onto unsigned integers (MACs and IPv4
// addresses by value, choices by position) and how a requested value breaks into
// the integer ranges that must all lie in the set ("atoms": each address of an
// `ip` list, each range of `tcp-ports`). Integers are 128 bits wide: in the `ip`
// domain an IPv4 address is its 32-bit value and an IPv6 address its 128-bit one
// (IPv6 values below 2^32, ::/96, are no host's and are refused, so the two never
// meet). Matching is then domain-free: every atom
// must be covered by the union of the set's items. A request whose value has no
// atoms (clearing the gateway, an empty `ip` list) matches any value set.
import VnicCore

/// One item of a value set: an inclusive range of the domain's integers and the
/// form it was written in (so `show-policy` prints it back the same way).
public struct PolicyItem: Hashable, Sendable {
    public enum Form: Hashable, Sendable {
        case single
        case range
        /// An IPv4 or IPv6 network of this prefix length.
        case cidr(UInt8)
    }
    public var lower: UInt128
    public var upper: UInt128
    public var form: Form

    public init(lower: UInt128, upper: UInt128, form: Form) {
        self.lower = lower
        self.upper = upper
        self.form = form
    }
    public static func single(_ v: UInt128) -> PolicyItem { PolicyItem(lower: v, upper: v, form: .single) }
}

/// What the VM may do with one parameter.
public enum PolicyRule: Hashable, Sendable {
    /// The VM may not change it (the default).
    case deny
    /// The VM may change it to any valid value.
    case any
    /// The VM may change it to values inside this set.
    case values([PolicyItem])

    /// Whether every atom lies inside the rule (deny: none does; any: all do).
    public func covers(_ atoms: [ClosedRange<UInt128>]) -> Bool {
        switch self {
        case .deny: return false
        case .any: return true
        case .values(let items):
            let merged = PolicyRule.merge(items)
            return atoms.allSatisfy { atom in merged.contains { $0.lowerBound <= atom.lowerBound && atom.upperBound <= $0.upperBound } }
        }
    }

    /// The union of the items as disjoint, non-adjacent ranges in order.
    static func merge(_ items: [PolicyItem]) -> [ClosedRange<UInt128>] {
        var out: [ClosedRange<UInt128>] = []
        for item in items.sorted(by: { $0.lower < $1.lower }) {
            if let last = out.last, last.upperBound == .max || item.lower <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, item.upper)
            } else {
                out.append(item.lower...item.upper)
            }
        }
        return out
    }

    static let maxItems = 256
}

/// How one parameter's values read as integers for policy matching.
public enum PolicyDomain: Sendable {
    /// MAC addresses (`02:00:00:00:01:00-02:00:00:00:01:ff`).
    case mac
    /// IPv4 addresses, ranges and CIDRs (gateway).
    case ipv4
    /// IPv4 and IPv6 addresses, ranges and CIDRs (ip).
    case ip
    /// Plain numbers within a range (mtu: `1280-9000`).
    case number(ClosedRange<UInt64>)
    /// Byte sizes with binary units within a range (tcp-buffer: `64K-4M`).
    case size(ClosedRange<UInt64>)
    /// TCP/UDP ports 1-65535.
    case port
    /// One of the names, by position.
    case choice([String])

    /// ipv4 or ip.
    var isAddress: Bool {
        switch self {
        case .ipv4, .ip: true
        default: false
        }
    }

    var example: String {
        switch self {
        case .mac: "02:00:00:00:01:00-02:00:00:00:01:ff"
        case .ipv4: "10.0.0.20-10.0.0.29 or 10.0.1.0/24"
        case .ip: "10.0.0.20-10.0.0.29, 10.0.1.0/24 or fd00:77::/64"
        case .number(let r): "\(r.lowerBound)-\(r.upperBound)"
        case .size: "64K-4M"
        case .port: "8000-8080"
        case .choice(let names): names.joined(separator: ",")
        }
    }

    var what: String {
        switch self {
        case .mac: "a MAC address or range"
        case .ipv4: "an IPv4 address, range or CIDR"
        case .ip: "an IPv4 or IPv6 address, range or CIDR"
        case .number: "a number or range"
        case .size: "a size or range"
        case .port: "a port or range"
        case .choice(let names): "one of " + names.joined(separator: ", ")
        }
    }

    /// Parses one scalar value of the domain.
    func scalar(_ s: Substring) -> UInt128? {
        switch self {
        case .mac: return MACAddress(s).map { UInt128($0.rawValue) }
        case .ipv4: return IPv4Address(s).map { UInt128($0.rawValue) }
        case .ip:
            if let a = IPv4Address(s) { return UInt128(a.rawValue) }
            return IPv6Address(s).flatMap { $0.value > UInt128(UInt32.max) ? $0.value : nil }
        case .number(let r): return ValueSyntax.parseUnsigned(s).flatMap { r.contains($0) ? UInt128($0) : nil }
        case .size(let r): return ValueSyntax.parseSize(String(s)).flatMap { r.contains($0) ? UInt128($0) : nil }
        case .port: return PortRange(s).flatMap { $0.lower == $0.upper ? UInt128($0.lower) : nil }
        case .choice(let names): return names.firstIndex(of: String(s)).map { UInt128($0) }
        }
    }

    func format(_ v: UInt128) -> String {
        switch self {
        case .mac: MACAddress(rawValue: UInt64(truncatingIfNeeded: v)).description
        case .ipv4: IPv4Address(rawValue: UInt32(truncatingIfNeeded: v)).description
        case .ip: v <= UInt128(UInt32.max) ? IPv4Address(rawValue: UInt32(v)).description : IPv6Address(value: v).description
        case .number, .port: String(v)
        case .size: ValueSyntax.formatSize(UInt64(truncatingIfNeeded: v))
        case .choice(let names): v < names.count ? names[Int(v)] : String(v)
        }
    }

    /// Parses `deny`, `any` or a value set; errors name the parameter and the token.
    func parseRule(_ text: String, parameter: String) throws(VnicError) -> PolicyRule {
        switch text {
        case "deny": return .deny
        case "any": return .any
        case "": throw .usage("\(parameter): the policy is empty (deny, any, or values like \(example))")
        default: break
        }
        var items: [PolicyItem] = []
        for token in text.split(separator: ",", omittingEmptySubsequences: false) {
            items.append(try parseItem(token, parameter: parameter))
        }
        guard items.count <= PolicyRule.maxItems else {
            throw .usage("\(parameter): \(items.count) policy values; at most \(PolicyRule.maxItems)")
        }
        return .values(items)
    }

    func parseItem(_ token: Substring, parameter: String) throws(VnicError) -> PolicyItem {
        func bad(_ why: String? = nil) -> VnicError {
            .usage("\(parameter): '\(token)' is not \(why ?? what) (e.g. \(example))")
        }
        if token == "deny" || token == "any" {
            throw .usage("\(parameter): '\(token)' cannot be combined with values (give it alone)")
        }
        if case .ip = self, token.contains(":"), token.contains("/") {
            guard let cidr = IPv6CIDR(token) else {
                if let (a, len) = IPv6Address.parseWithPrefix(token) {
                    let n = IPv6CIDR.network(containing: a, prefixLength: len)
                    throw .usage("\(parameter): '\(token)' has host bits set (did you mean \(n.network)/\(n.prefixLength)?)")
                }
                throw bad()
            }
            guard cidr.network.value > UInt128(UInt32.max) else { throw bad("a host's IPv6 network (::/96 is no host's)") }
            return PolicyItem(lower: cidr.first.value, upper: cidr.last.value, form: .cidr(cidr.prefixLength))
        }
        if self.isAddress, token.contains("/") {
            guard let cidr = IPv4CIDR(token) else {
                if let i = IPv4Interface(token), i.prefixLength <= 32, token.split(separator: "/").count == 2,
                   let a = IPv4Address(token.split(separator: "/")[0]) {
                    let n = IPv4CIDR.network(containing: a, prefixLength: i.prefixLength)
                    throw .usage("\(parameter): '\(token)' has host bits set (did you mean \(n.network)/\(n.prefixLength)?)")
                }
                throw bad()
            }
            return PolicyItem(lower: UInt128(cidr.first.rawValue), upper: UInt128(cidr.last.rawValue), form: .cidr(cidr.prefixLength))
        }
        // A range's '-' is the one that splits it into two valid scalars (MACs may be written with '-').
        if let v = scalar(token) { return .single(v) }
        let dashes = token.indices.filter { token[$0] == "-" }
        for d in dashes {
            if let lo = scalar(token[..<d]), let hi = scalar(token[token.index(after: d)...]) {
                guard lo <= hi else { throw bad("a range: \(token[..<d]) is above \(token[token.index(after: d)...])") }
                if case .ip = self, (lo <= UInt128(UInt32.max)) != (hi <= UInt128(UInt32.max)) {
                    throw bad("a range: its ends are of two address families")
                }
                return PolicyItem(lower: lo, upper: hi, form: .range)
            }
        }
        throw bad()
    }

    /// The text of a rule: `deny`, `any`, or the items as written.
    func text(of rule: PolicyRule) -> String {
        switch rule {
        case .deny: return "deny"
        case .any: return "any"
        case .values(let items):
            return items.map { item in
                switch item.form {
                case .single: format(item.lower)
                case .range: format(item.lower) + "-" + format(item.upper)
                case .cidr(let len): format(item.lower) + "/\(len)"
                }
            }.joined(separator: ",")
        }
    }
}

extension VNICRecord {
    /// The record as the VM's request `parameter=value` would make it: the value
    /// parsed and validated, and inside the VNIC's policy; else a usage error
    /// saying why (the reason a denied request is audited with). Uniqueness
    /// among VNICs is the store's to check.
    public func requesting(_ parameter: VNICParameter, _ value: String) throws(VnicError) -> VNICRecord {
        var candidate = self
        try parameter.parse(value, into: &candidate)
        try parameter.validate(candidate)
        guard policy.allows(parameter, in: candidate) else {
            throw .usage("policy \(parameter.rawValue)=\(policy.text(parameter)) does not allow it")
        }
        return candidate
    }
}

/// A VNIC's policy: a rule per parameter the VM may be allowed to change;
/// parameters not mentioned are denied.
public struct VNICPolicy: Hashable, Sendable {
    /// Rules other than `deny`, by parameter name.
    public private(set) var rules: [String: PolicyRule] = [:]

    public init() {}

    public subscript(_ p: VNICParameter) -> PolicyRule {
        get { rules[p.rawValue] ?? .deny }
        set { rules[p.rawValue] = newValue == .deny ? nil : newValue }
    }

    /// Whether the VM may make `record`'s `parameter` what it is in `candidate`.
    /// An unchanged value is allowed only where the rule allows that value too.
    public func allows(_ parameter: VNICParameter, in candidate: VNICRecord) -> Bool {
        guard let spec = parameter.policyDomain else { return false }
        return self[parameter].covers(parameter.policyAtoms(candidate, spec))
    }

    /// The rule as text (`deny`, `any`, `10.0.0.20-10.0.0.29,10.0.1.0/24`).
    public func text(_ parameter: VNICParameter) -> String {
        parameter.policyDomain?.text(of: self[parameter]) ?? "deny"
    }
}

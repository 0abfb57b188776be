// VNICParameter: the one table of everything a VNIC record holds. Each row is a
// field with:
//   - its name (the CLI's word: `show-vnic -o`, `set NAME mtu=9000`,
//     `set-linkprop -p maxbw=1G`, `set-policy -p ip=...`, and later the guest
//     protocol's) and a help line saying its syntax;
//   - its kind: `identity` (fixed at create-vnic: name, link, port, index),
//     `parameter` (the VM's configuration; `vnicadm set`), or `property`
//     (admin-only link properties like dladm's; `set-linkprop`);
//   - whether the dataplane acts on it, and whether a policy may let the VM
//     change it (its `policyDomain`, which also says how values are matched);
//   - its parser (text -> record field, errors naming the token), printer
//     (field -> the same text), default (`reset`), validator (rules that need
//     no other VNIC), and its TLV tag and value bytes in the database record.
// The CLI, the record codec, validation and policy matching all iterate this
// table; a new field is one more row (and a new tag).
import VnicCore

public struct VNICParameter: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case identity, parameter, property
    }

    /// The field's name in the CLI and the guest protocol.
    public let rawValue: String
    /// The field's TLV tag in the record (never renumbered or reused).
    public let tag: UInt16
    public let kind: Kind
    /// The syntax, for help and error messages: "bandwidth (e.g. 100M, 1G)".
    public let syntax: String
    /// Whether vnicd must act when it changes (classifier, anti-spoof, VSQ, workers).
    public let affectsDataplane: Bool
    /// How values are matched against a policy; nil: the VM may never change it.
    public let policyDomain: PolicyDomain?
    /// The possible values where they are a short list (show-linkprop's POSSIBLE).
    public let possible: String?

    /// Position in the record's hot prefix (read by the fast path), if any.
    let hotRank: Int?
    /// Whether the tag may occur more than once (one occurrence per list item).
    let repeatable: Bool
    /// Whether a record without the tag is corrupt.
    let required: Bool
    let parseText: @Sendable (String, inout VNICRecord) throws(VnicError) -> Void
    let printText: @Sendable (VNICRecord) -> String?
    let resetValue: @Sendable (inout VNICRecord) -> Void
    let check: @Sendable (VNICRecord) throws(VnicError) -> Void
    let encodeField: @Sendable (VNICRecord, inout TLVWriter) -> Void
    let decodeField: @Sendable (UnsafeRawBufferPointer, inout VNICRecord) throws(VnicError) -> Void
    let atoms: @Sendable (VNICRecord) -> [ClosedRange<UInt128>]
    /// A second tag the row stores part of its value under (allowed-ips' IPv6
    /// networks), decoded by `decodeExtra`.
    let extraTag: UInt16?
    let decodeExtra: (@Sendable (UnsafeRawBufferPointer, inout VNICRecord) throws(VnicError) -> Void)?

    /// Whether `vnicadm set` may change it (a parameter) or `set-linkprop` (a property).
    public var isSettable: Bool { kind != .identity }
    /// Whether a policy may let the VM change it.
    public var vmMayChange: Bool { policyDomain != nil }
    public var isProperty: Bool { kind == .property }
    /// Whether `create-vnic -p NAME=VALUE` sets it (mac and ip have their own flags).
    public var isCreateProperty: Bool { isSettable && self != .mac && self != .ip }

    public var description: String { rawValue }
    public static func == (a: VNICParameter, b: VNICParameter) -> Bool { a.tag == b.tag }
    public func hash(into h: inout Hasher) { h.combine(tag) }

    public init?(rawValue: String) {
        guard let p = VNICParameter.allCases.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = p
    }

    public init?(tag: UInt16) {
        guard let p = VNICParameter.allCases.first(where: { $0.tag == tag }) else { return nil }
        self = p
    }

    /// Parses `text` into `record`'s field. Checks the syntax; `validate()` checks the value.
    public func parse(_ text: String, into record: inout VNICRecord) throws(VnicError) {
        try parseText(text, &record)
    }

    /// The value as text (lists comma-separated); nil when unset or empty.
    public func text(of record: VNICRecord) -> String? { printText(record) }

    /// Sets the field to its default (identity fields keep their value).
    public func reset(_ record: inout VNICRecord) { resetValue(&record) }

    /// The default as text; nil when the default is unset/empty.
    public var defaultText: String? {
        var r = VNICRecord.blank
        resetValue(&r)
        return printText(r)
    }

    /// Checks the field's value in `record` (rules that need no other VNIC).
    public func validate(_ record: VNICRecord) throws(VnicError) { try check(record) }

    func policyAtoms(_ record: VNICRecord, _ domain: PolicyDomain) -> [ClosedRange<UInt128>] { atoms(record) }

    /// Parses a policy (`deny`, `any`, or values); a usage error for a field the VM may never change.
    public func parsePolicy(_ text: String) throws(VnicError) -> PolicyRule {
        guard let domain = policyDomain else {
            let why = kind == .property ? "a link property" : kind == .identity ? "fixed at create-vnic" : "not changeable by the VM"
            throw .usage("\(rawValue): is \(why); the VM may never change it (policy parameters: \(VNICParameter.policyParameters.map(\.rawValue).joined(separator: ", ")))")
        }
        return try domain.parseRule(text, parameter: rawValue)
    }

    // MARK: the table

    /// Every field, in the order the CLI lists them.
    public static let allCases: [VNICParameter] = [
        .name, .link, .port, .mac, .ip, .gateway, .mtu, .tcpPorts, .transport, .routing, .tcpBuffer, .state,
        .maxbw, .priority, .cpus, .protection, .allowedIPs, .deniedRequests, .dhcp, .dhcpLease, .raGuard, .ipv6RA, .index,
    ]
    public static var parameters: [VNICParameter] { allCases.filter { $0.kind == .parameter } }
    public static var properties: [VNICParameter] { allCases.filter { $0.kind == .property } }
    public static var policyParameters: [VNICParameter] { allCases.filter(\.vmMayChange) }

    public static let name = VNICParameter(
        "name", tag: FieldTag.name, .identity, syntax: "1-31 of A-Z a-z 0-9 _ . -, starting with a letter", required: true,
        parse: { (t, r) throws(VnicError) in try VNICRecord.validateName(t); r.name = t },
        print: { $0.name },
        check: { (r) throws(VnicError) in try VNICRecord.validateName(r.name) },
        encode: { r, w in w.text(FieldTag.name, r.name) },
        decode: { (v, r) throws(VnicError) in r.name = try TLV.text(v, "name") })

    public static let link = VNICParameter(
        "link", tag: FieldTag.link, .identity, syntax: "an interface name", required: true,
        parse: { (t, r) throws(VnicError) in try VNICRecord.validateInterfaceName(t, field: "link"); r.link = t },
        print: { $0.link },
        check: { (r) throws(VnicError) in try VNICRecord.validateInterfaceName(r.link, field: "link") },
        encode: { r, w in w.text(FieldTag.link, r.link) },
        decode: { (v, r) throws(VnicError) in r.link = try TLV.text(v, "link") })

    public static let port = VNICParameter(
        "port", tag: FieldTag.port, .identity, syntax: "an interface name (the VM's veth or tap)",
        parse: { (t, r) throws(VnicError) in try VNICRecord.validateInterfaceName(t, field: "port"); r.port = t },
        print: { $0.port },
        check: { (r) throws(VnicError) in
            guard let port = r.port else { return }
            try VNICRecord.validateInterfaceName(port, field: "port")
            if port == r.link { throw .usage("port: '\(port)' is the VNIC's link; a port is the VM's own interface") }
        },
        encode: { r, w in if let p = r.port { w.text(FieldTag.port, p) } },
        decode: { (v, r) throws(VnicError) in r.port = try TLV.text(v, "port") })

    public static let index = VNICParameter(
        "index", tag: FieldTag.index, .identity, syntax: "assigned by the database", hotRank: 0, required: true,
        parse: { (_, _) throws(VnicError) in throw .usage("index: is assigned by the database and cannot be set") },
        print: { String($0.index) },
        encode: { r, w in w.u32(FieldTag.index, r.index) },
        decode: { (v, r) throws(VnicError) in r.index = try TLV.u32(v, "index") })

    public static let mac = VNICParameter(
        "mac", tag: FieldTag.mac, .parameter, syntax: "a MAC address (e.g. 02:00:00:00:01:01 or random)",
        dataplane: true, policy: .mac, hotRank: 1, required: true,
        parse: { (t, r) throws(VnicError) in
            if t == "random" { r.mac = .random(); return }
            guard let m = MACAddress(t) else { throw .usage("mac: '\(t)' is not a MAC address (e.g. 02:00:00:00:01:01 or random)") }
            r.mac = m
        },
        print: { $0.mac.description },
        check: { (r) throws(VnicError) in
            if r.mac.isMulticast { throw .usage("mac: \(r.mac) is a multicast address; a VNIC needs a unicast MAC") }
            if r.mac.isZero { throw .usage("mac: \(r.mac) is not an assignable address") }
        },
        encode: { r, w in w.field(FieldTag.mac, r.mac.bytes) },
        decode: { (v, r) throws(VnicError) in
            try TLV.need(v, 6, "mac")
            r.mac = MACAddress(bytes: (v[0], v[1], v[2], v[3], v[4], v[5]))
        },
        atoms: { [UInt128($0.mac.rawValue)...UInt128($0.mac.rawValue)] })

    public static let ip = VNICParameter(
        "ip", tag: FieldTag.ip, .parameter,
        syntax: "IPv4 and IPv6 addresses with prefix lengths (e.g. 10.77.0.11/24,fd00:77::11/64; a /64 with no interface identifier, fd00:77::/64, is a SLAAC prefix)",
        dataplane: true, policy: .ip, repeatable: true,
        parse: { (t, r) throws(VnicError) in
            var v4: [IPv4Interface] = [], v6: [IPv6Interface] = []
            for s in ValueSyntax.items(t) {
                if s.contains(":") { v6.append(try VNICParameter.parseInterface6(String(s))) }
                else { v4.append(try VNICParameter.parseInterface(String(s))) }
            }
            r.ips = v4
            r.ips6 = v6
        },
        print: { r in
            let all = r.ips.map(\.description) + r.ips6.map(\.description)
            return all.isEmpty ? nil : all.joined(separator: ",")
        },
        reset: { $0.ips = []; $0.ips6 = [] },
        check: { (r) throws(VnicError) in
            guard r.ips.count + r.ips6.count <= VNICRecord.maxAddresses else {
                throw .usage("ip: \(r.ips.count + r.ips6.count) addresses given; at most \(VNICRecord.maxAddresses)")
            }
            var seen = Set<IPv4Address>()
            for ip in r.ips {
                try VNICRecord.validateHostAddress(ip)
                guard seen.insert(ip.address).inserted else { throw .usage("ip: \(ip.address) is given twice") }
            }
            var seen6 = Set<IPv6Address>()
            for ip in r.ips6 {
                try VNICRecord.validateHostAddress(ip)
                let a = ip.address(for: r.mac)
                guard seen6.insert(a).inserted else {
                    throw .usage(ip.isSLAACPrefix ? "ip: \(ip) gives \(a), which is given twice" : "ip: \(a) is given twice")
                }
            }
        },
        // One field per address: 5 bytes for IPv4, 17 for IPv6 (the length tells the family).
        encode: { r, w in
            for ip in r.ips { w.field(FieldTag.ip, TLV.be32(ip.address.rawValue) + [ip.prefixLength]) }
            for ip in r.ips6 { w.field(FieldTag.ip, ip.address.bytes + [ip.prefixLength]) }
        },
        decode: { (v, r) throws(VnicError) in
            switch v.count {
            case 5: r.ips.append(IPv4Interface(address: IPv4Address(rawValue: TLV.be32(v)), prefixLength: v[4]))
            case 17:
                guard v[16] <= 128 else { throw VnicError("field ip has IPv6 prefix length \(v[16])") }
                r.ips6.append(IPv6Interface(address: IPv6Address(bytes: v[0..<16])!, prefixLength: v[16]))
            default: throw VnicError("field ip has \(v.count) bytes, expected 5 (IPv4) or 17 (IPv6)")
            }
        },
        atoms: { r in
            r.ips.map { UInt128($0.address.rawValue)...UInt128($0.address.rawValue) }
                + r.ips6.map { let a = $0.address(for: r.mac).value; return a...a }
        })

    public static let gateway = VNICParameter(
        "gateway", tag: FieldTag.gateway, .parameter,
        syntax: "an IPv4 and/or an IPv6 address (e.g. 10.77.0.1 or 10.77.0.1,fe80::1; an IPv6 gateway router advertisements name must be link-local)",
        policy: .ip, repeatable: true,
        parse: { (t, r) throws(VnicError) in
            var v4: IPv4Address?, v6: IPv6Address?
            for s in ValueSyntax.items(t) {
                if s.contains(":") {
                    guard let a = IPv6Address(s) else { throw .usage("gateway: '\(s)' is not an IPv6 address (e.g. fe80::1)") }
                    guard v6 == nil else { throw .usage("gateway: two IPv6 gateways given; one per family") }
                    v6 = a
                } else {
                    guard let a = IPv4Address(s) else { throw .usage("gateway: '\(s)' is not an IPv4 address (e.g. 10.77.0.1)") }
                    guard v4 == nil else { throw .usage("gateway: two IPv4 gateways given; one per family") }
                    v4 = a
                }
            }
            r.gateway = v4
            r.gateway6 = v6
        },
        print: { r in
            let all = [r.gateway?.description, r.gateway6?.description].compactMap { $0 }
            return all.isEmpty ? nil : all.joined(separator: ",")
        },
        reset: { $0.gateway = nil; $0.gateway6 = nil },
        check: { (r) throws(VnicError) in
            if let g = r.gateway, !g.isUnicastHost { throw .usage("gateway: \(g) is not a unicast host address") }
            if let g = r.gateway6, !(g.isUnicastHost || (g.isLinkLocal && g.lo != 0)) {
                throw .usage("gateway: \(g) is not a unicast address")
            }
        },
        // One field per family: 4 bytes for IPv4, 16 for IPv6.
        encode: { r, w in
            if let g = r.gateway { w.field(FieldTag.gateway, TLV.be32(g.rawValue)) }
            if let g = r.gateway6 { w.field(FieldTag.gateway, g.bytes) }
        },
        decode: { (v, r) throws(VnicError) in
            switch v.count {
            case 4:
                guard r.gateway == nil else { throw VnicError("field gateway has two IPv4 gateways") }
                r.gateway = IPv4Address(rawValue: TLV.be32(v))
            case 16:
                guard r.gateway6 == nil else { throw VnicError("field gateway has two IPv6 gateways") }
                r.gateway6 = IPv6Address(bytes: v)
            default: throw VnicError("field gateway has \(v.count) bytes, expected 4 (IPv4) or 16 (IPv6)")
            }
        },
        atoms: { r in
            (r.gateway.map { [UInt128($0.rawValue)...UInt128($0.rawValue)] } ?? [])
                + (r.gateway6.map { [$0.value...$0.value] } ?? [])
        })

    public static let mtu = VNICParameter(
        "mtu", tag: FieldTag.mtu, .parameter,
        syntax: "a number \(VNICRecord.mtuRange.lowerBound)-\(VNICRecord.mtuRange.upperBound)",
        dataplane: true, policy: .number(UInt64(VNICRecord.mtuRange.lowerBound)...UInt64(VNICRecord.mtuRange.upperBound)),
        parse: { (t, r) throws(VnicError) in
            guard let v = ValueSyntax.parseUnsigned(Substring(t)), let m = UInt32(exactly: v) else {
                throw .usage("mtu: '\(t)' is not a number")
            }
            r.mtu = m
        },
        print: { String($0.mtu) },
        reset: { $0.mtu = VNICRecord.defaultMTU },
        check: { (r) throws(VnicError) in
            guard VNICRecord.mtuRange.contains(r.mtu) else {
                throw .usage("mtu: \(r.mtu) is out of range (\(VNICRecord.mtuRange.lowerBound)-\(VNICRecord.mtuRange.upperBound))")
            }
        },
        encode: { r, w in w.u32(FieldTag.mtu, r.mtu) },
        decode: { (v, r) throws(VnicError) in r.mtu = try TLV.u32(v, "mtu") },
        atoms: { [UInt128($0.mtu)...UInt128($0.mtu)] })

    public static let tcpPorts = VNICParameter(
        "tcp-ports", tag: FieldTag.tcpPorts, .parameter,
        syntax: "TCP ports and ranges the VM serves (e.g. 22,80,8000-8080)", policy: .port,
        parse: { (t, r) throws(VnicError) in
            r.tcpPorts = try ValueSyntax.items(t).map { (s) throws(VnicError) in
                guard let p = PortRange(s) else { throw .usage("tcp-ports: '\(s)' is not a port or range (e.g. 22,80,8000-8080)") }
                return p
            }.sorted()
        },
        print: { $0.tcpPorts.isEmpty ? nil : $0.tcpPorts.map(\.description).joined(separator: ",") },
        reset: { $0.tcpPorts = [] },
        check: { (r) throws(VnicError) in
            guard r.tcpPorts.count <= VNICRecord.maxListItems else {
                throw .usage("tcp-ports: \(r.tcpPorts.count) items; at most \(VNICRecord.maxListItems)")
            }
            let sorted = r.tcpPorts.sorted()
            for (a, b) in zip(sorted, sorted.dropFirst()) where a.overlaps(b) {
                throw .usage("tcp-ports: \(a) and \(b) overlap")
            }
        },
        encode: { r, w in
            if !r.tcpPorts.isEmpty {
                w.field(FieldTag.tcpPorts, r.tcpPorts.flatMap { TLV.le16($0.lower) + TLV.le16($0.upper) })
            }
        },
        decode: { (v, r) throws(VnicError) in
            try TLV.needMultiple(v, 4, "tcp-ports")
            r.tcpPorts = try stride(from: 0, to: v.count, by: 4).map { (i) throws(VnicError) in
                guard let p = PortRange(TLV.u16(v, at: i), TLV.u16(v, at: i + 2)) else { throw VnicError("field tcp-ports has an invalid range") }
                return p
            }
        },
        atoms: { $0.tcpPorts.map { UInt128($0.lower)...UInt128($0.upper) } })

    public static let transport = VNICParameter.choice(
        "transport", tag: FieldTag.transport, .parameter, Transport.self, keyPath: \.transport, dataplane: true,
        syntax: "tcp, udp or both: the VSQ processes TCP serially, UDP-only concurrently")

    public static let routing = VNICParameter.choice(
        "routing", tag: FieldTag.routing, .parameter, Routing.self, keyPath: \.routing, dataplane: false,
        syntax: "off or on: whether the guest forwards IPv4 (net.ipv4.ip_forward); stored for the guest")

    public static let tcpBuffer = VNICParameter(
        "tcp-buffer", tag: FieldTag.tcpBuffer, .parameter,
        syntax: "the guest's TCP buffer size in bytes (e.g. 256K, 4M; \(ValueSyntax.formatSize(UInt64(VNICRecord.tcpBufferRange.lowerBound)))-\(ValueSyntax.formatSize(UInt64(VNICRecord.tcpBufferRange.upperBound))); empty: the guest's default",
        policy: .size(UInt64(VNICRecord.tcpBufferRange.lowerBound)...UInt64(VNICRecord.tcpBufferRange.upperBound)),
        parse: { (t, r) throws(VnicError) in
            if t.isEmpty { r.tcpBuffer = nil; return }
            guard let v = ValueSyntax.parseSize(t) else { throw .usage("tcp-buffer: '\(t)' is not a size (e.g. 256K, 4M)") }
            guard let b = UInt32(exactly: v) else { throw .usage("tcp-buffer: '\(t)' is out of range") }
            r.tcpBuffer = b
        },
        print: { $0.tcpBuffer.map { ValueSyntax.formatSize(UInt64($0)) } },
        reset: { $0.tcpBuffer = nil },
        check: { (r) throws(VnicError) in
            if let b = r.tcpBuffer, !VNICRecord.tcpBufferRange.contains(b) {
                throw .usage("tcp-buffer: \(ValueSyntax.formatSize(UInt64(b))) is out of range (\(ValueSyntax.formatSize(UInt64(VNICRecord.tcpBufferRange.lowerBound)))-\(ValueSyntax.formatSize(UInt64(VNICRecord.tcpBufferRange.upperBound))))")
            }
        },
        encode: { r, w in if let b = r.tcpBuffer { w.u32(FieldTag.tcpBuffer, b) } },
        decode: { (v, r) throws(VnicError) in r.tcpBuffer = try TLV.u32(v, "tcp-buffer") },
        atoms: { r in r.tcpBuffer.map { [UInt128($0)...UInt128($0)] } ?? [] })

    public static let state = VNICParameter.choice(
        "state", tag: FieldTag.state, .parameter, AdminState.self, keyPath: \.state, dataplane: true,
        syntax: "up or down: down keeps the VNIC configured but asks vnicd not to forward for it")

    public static let maxbw = VNICParameter(
        "maxbw", tag: FieldTag.maxbw, .property,
        syntax: "a bandwidth in bits/s (e.g. 100M, 1G; a bare number is megabits)", dataplane: true, hotRank: 4,
        parse: { (t, r) throws(VnicError) in
            guard let v = ValueSyntax.parseBandwidth(t) else { throw .usage("maxbw: '\(t)' is not a bandwidth (e.g. 100M, 1G)") }
            r.maxbw = v
        },
        print: { $0.maxbw.map(ValueSyntax.formatBandwidth) },
        reset: { $0.maxbw = nil },
        check: { (r) throws(VnicError) in
            if let b = r.maxbw, !VNICRecord.maxbwRange.contains(b) {
                throw .usage("maxbw: \(ValueSyntax.formatBandwidth(b)) is out of range (\(ValueSyntax.formatBandwidth(VNICRecord.maxbwRange.lowerBound))-\(ValueSyntax.formatBandwidth(VNICRecord.maxbwRange.upperBound)))")
            }
        },
        encode: { r, w in w.u64(FieldTag.maxbw, r.maxbw ?? 0) },   // always: the fast path finds it in the hot prefix
        decode: { (v, r) throws(VnicError) in
            let b = try TLV.u64(v, "maxbw")
            r.maxbw = b == 0 ? nil : b
        })

    public static let priority = VNICParameter.choice(
        "priority", tag: FieldTag.priority, .property, Priority.self, keyPath: \.priority, dataplane: true,
        syntax: "low, medium or high", hotRank: 3)

    public static let deniedRequests = VNICParameter.choice(
        "denied-requests", tag: FieldTag.deniedRequests, .property, DeniedRequests.self, keyPath: \.deniedRequests,
        dataplane: false,
        syntax: "drop or reply: what a VM's denied request gets (drop: nothing, it times out; reply: a refusal naming the reason)")

    public static let dhcp = VNICParameter.choice(
        "dhcp", tag: FieldTag.dhcp, .property, DHCPServer.self, keyPath: \.dhcp, dataplane: true,
        syntax: "off or on: vnic's DHCP servers answer the VM: DHCPv4 with its address, prefix, gateway, MTU and lease, DHCPv6 with its IPv6 addresses (its DHCP never reaches the wire)")

    public static let raGuard = VNICParameter.choice(
        "ra-guard", tag: FieldTag.raGuard, .property, RAGuard.self, keyPath: \.raGuard, dataplane: true,
        syntax: "on or off: under ip-nospoof the VM sends no router advertisement or redirect (IPv6 RA and Redirect, IPv4 ICMP redirect and router advertisement); off for a VM that is a router",
        hotRank: 6)

    public static let ipv6RA = VNICParameter.choice(
        "ipv6-ra", tag: FieldTag.ipv6RA, .property, IPv6RA.self, keyPath: \.ipv6RA, dataplane: true,
        syntax: "off, slaac or managed: vnicd answers the VM's router solicitations (and every 200 s) with its IPv6 prefixes, MTU and IPv6 gateway; slaac: the VM makes its address in a SLAAC prefix itself; managed: the M flag, a DHCPv6 server gives it")

    public static let dhcpLease = VNICParameter(
        "dhcp-lease", tag: FieldTag.dhcpLease, .property,
        syntax: "seconds a DHCP lease lasts (\(VNICRecord.dhcpLeaseRange.lowerBound)-\(VNICRecord.dhcpLeaseRange.upperBound)); clients renew at half",
        parse: { (t, r) throws(VnicError) in
            guard let v = UInt32(t) else { throw .usage("dhcp-lease: '\(t)' is not a number of seconds") }
            r.dhcpLease = v
        },
        print: { String($0.dhcpLease) },
        reset: { $0.dhcpLease = VNICRecord.defaultDHCPLease },
        check: { (r) throws(VnicError) in
            guard VNICRecord.dhcpLeaseRange.contains(r.dhcpLease) else {
                throw .usage("dhcp-lease: \(r.dhcpLease) s is out of range (\(VNICRecord.dhcpLeaseRange.lowerBound)-\(VNICRecord.dhcpLeaseRange.upperBound))")
            }
        },
        encode: { r, w in if r.dhcpLease != VNICRecord.defaultDHCPLease { w.u32(FieldTag.dhcpLease, r.dhcpLease) } },
        decode: { (v, r) throws(VnicError) in r.dhcpLease = try TLV.u32(v, "dhcp-lease") },
        atoms: { r in [UInt128(r.dhcpLease)...UInt128(r.dhcpLease)] })

    public static let cpus = VNICParameter(
        "cpus", tag: FieldTag.cpus, .property,
        syntax: "CPU numbers and ranges for the VNIC's processing (e.g. 0,2-3)", dataplane: true,
        parse: { (t, r) throws(VnicError) in
            var cpus: [Int] = []
            for item in ValueSyntax.items(t) {
                let parts = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
                guard let lo = ValueSyntax.parseUnsigned(parts[0]), let hi = parts.count == 2 ? ValueSyntax.parseUnsigned(parts[1]) : lo,
                      lo <= hi, hi <= UInt64(VNICRecord.cpuRange.upperBound) else {
                    throw .usage("cpus: '\(item)' is not a CPU number or range (e.g. 0,2-3; CPUs \(VNICRecord.cpuRange.lowerBound)-\(VNICRecord.cpuRange.upperBound))")
                }
                for c in Int(lo)...Int(hi) {
                    guard !cpus.contains(c) else { throw .usage("cpus: CPU \(c) is given twice") }
                    cpus.append(c)
                }
            }
            r.cpus = cpus.sorted()
        },
        print: { $0.cpus.isEmpty ? nil : ValueSyntax.formatCPUs($0.cpus) },
        reset: { $0.cpus = [] },
        check: { (r) throws(VnicError) in
            guard r.cpus.count <= VNICRecord.maxCPUs else { throw .usage("cpus: \(r.cpus.count) CPUs; at most \(VNICRecord.maxCPUs)") }
            var seen = Set<Int>()
            for c in r.cpus {
                guard VNICRecord.cpuRange.contains(c) else { throw .usage("cpus: \(c) is out of range (\(VNICRecord.cpuRange.lowerBound)-\(VNICRecord.cpuRange.upperBound))") }
                guard seen.insert(c).inserted else { throw .usage("cpus: CPU \(c) is given twice") }
            }
        },
        encode: { r, w in if !r.cpus.isEmpty { w.field(FieldTag.cpus, r.cpus.flatMap { TLV.le16(UInt16(truncatingIfNeeded: $0)) }) } },
        decode: { (v, r) throws(VnicError) in
            try TLV.needMultiple(v, 2, "cpus")
            r.cpus = stride(from: 0, to: v.count, by: 2).map { Int(TLV.u16(v, at: $0)) }
        })

    public static let protection = VNICParameter(
        "protection", tag: FieldTag.protection, .property,
        syntax: "a comma list of mac-nospoof, ip-nospoof, dhcp-nospoof, restricted, or none",
        dataplane: true, possible: Protection.names.map(\.0).joined(separator: ","), hotRank: 2,
        parse: { (t, r) throws(VnicError) in
            var bad = ""
            guard let p = Protection.parse(t, bad: &bad) else {
                throw .usage("protection: '\(bad)' is not \(t.split(separator: ",").filter { $0 == bad }.count > 1 ? "allowed twice" : "a protection") (\(Protection.names.map(\.0).joined(separator: ", ")), or none)")
            }
            r.protection = p
        },
        print: { $0.protection.description },
        reset: { $0.protection = .default },
        encode: { r, w in w.u8(FieldTag.protection, r.protection.rawValue) },
        decode: { (v, r) throws(VnicError) in
            let bits = try TLV.u8(v, "protection")
            guard bits & ~Protection.all.rawValue == 0 else { throw VnicError("field protection has unknown bits \(bits)") }
            r.protection = Protection(rawValue: bits)
        })

    public static let allowedIPs = VNICParameter(
        "allowed-ips", tag: FieldTag.allowedIPs, .property,
        syntax: "IPv4 and IPv6 addresses and CIDRs the VM may send from with ip-nospoof (e.g. 10.77.0.11,10.77.1.0/24,fd00:77::/64); empty: its ip addresses (each family's list replaces that family's addresses; the IPv6 link-local address always passes)",
        dataplane: true, hotRank: 5,
        parse: { (t, r) throws(VnicError) in
            var v4: [IPv4CIDR] = [], v6: [IPv6CIDR] = []
            for s in ValueSyntax.items(t) {
                if s.contains(":") {
                    if let c = IPv6CIDR(s) { v6.append(c); continue }
                    if let (a, len) = IPv6Address.parseWithPrefix(s) {
                        let n = IPv6CIDR.network(containing: a, prefixLength: len)
                        throw .usage("allowed-ips: '\(s)' has host bits set (did you mean \(n.network)/\(n.prefixLength)?)")
                    }
                    throw .usage("allowed-ips: '\(s)' is not an IPv6 address or CIDR (e.g. fd00:77::11 or fd00:77::/64)")
                }
                if let c = IPv4CIDR(s) { v4.append(c); continue }
                let parts = s.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
                if parts.count == 2, let a = IPv4Address(parts[0]), let len = UInt8(parts[1]), len <= 32 {
                    let n = IPv4CIDR.network(containing: a, prefixLength: len)
                    throw .usage("allowed-ips: '\(s)' has host bits set (did you mean \(n.network)/\(n.prefixLength)?)")
                }
                throw .usage("allowed-ips: '\(s)' is not an IPv4 address or CIDR (e.g. 10.77.0.11 or 10.77.1.0/24)")
            }
            r.allowedIPs = v4
            r.allowedIPs6 = v6
        },
        print: { r in
            let all = r.allowedIPs.map(\.description) + r.allowedIPs6.map(\.description)
            return all.isEmpty ? nil : all.joined(separator: ",")
        },
        reset: { $0.allowedIPs = []; $0.allowedIPs6 = [] },
        check: { (r) throws(VnicError) in
            guard r.allowedIPs.count + r.allowedIPs6.count <= VNICRecord.maxAddresses else {
                throw .usage("allowed-ips: \(r.allowedIPs.count + r.allowedIPs6.count) entries; at most \(VNICRecord.maxAddresses)")
            }
            var seen = Set<IPv4CIDR>()
            for c in r.allowedIPs where !seen.insert(c).inserted { throw .usage("allowed-ips: \(c) is given twice") }
            var seen6 = Set<IPv6CIDR>()
            for c in r.allowedIPs6 where !seen6.insert(c).inserted { throw .usage("allowed-ips: \(c) is given twice") }
        },
        // Always, both (empty when none): the fast path finds them in the hot prefix.
        encode: { r, w in
            w.field(FieldTag.allowedIPs, r.allowedIPs.flatMap { TLV.be32($0.network.rawValue) + [$0.prefixLength] })
            w.field(FieldTag.allowedIPs6, r.allowedIPs6.flatMap { $0.network.bytes + [$0.prefixLength] })
        },
        decode: { (v, r) throws(VnicError) in
            try TLV.needMultiple(v, 5, "allowed-ips")
            r.allowedIPs = try stride(from: 0, to: v.count, by: 5).map { (i) throws(VnicError) in
                let a = UInt32(v[i]) << 24 | UInt32(v[i + 1]) << 16 | UInt32(v[i + 2]) << 8 | UInt32(v[i + 3])
                guard let c = IPv4CIDR(network: IPv4Address(rawValue: a), prefixLength: v[i + 4]) else {
                    throw VnicError("field allowed-ips has an invalid network")
                }
                return c
            }
        },
        extraTag: FieldTag.allowedIPs6,
        decodeExtra: { (v, r) throws(VnicError) in
            try TLV.needMultiple(v, 17, "allowed-ips (IPv6)")
            r.allowedIPs6 = try stride(from: 0, to: v.count, by: 17).map { (i) throws(VnicError) in
                guard let c = IPv6CIDR(network: IPv6Address(bytes: v[i..<i + 16])!, prefixLength: v[i + 16]) else {
                    throw VnicError("field allowed-ips has an invalid IPv6 network")
                }
                return c
            }
        })

    // MARK: row builders

    init(_ name: String, tag: UInt16, _ kind: Kind, syntax: String, dataplane: Bool = false, policy: PolicyDomain? = nil,
         possible: String? = nil, hotRank: Int? = nil, repeatable: Bool = false, required: Bool = false,
         parse: @escaping @Sendable (String, inout VNICRecord) throws(VnicError) -> Void,
         print: @escaping @Sendable (VNICRecord) -> String?,
         reset: @escaping @Sendable (inout VNICRecord) -> Void = { _ in },
         check: @escaping @Sendable (VNICRecord) throws(VnicError) -> Void = { _ in },
         encode: @escaping @Sendable (VNICRecord, inout TLVWriter) -> Void,
         decode: @escaping @Sendable (UnsafeRawBufferPointer, inout VNICRecord) throws(VnicError) -> Void,
         atoms: @escaping @Sendable (VNICRecord) -> [ClosedRange<UInt128>] = { _ in [] },
         extraTag: UInt16? = nil,
         decodeExtra: (@Sendable (UnsafeRawBufferPointer, inout VNICRecord) throws(VnicError) -> Void)? = nil) {
        rawValue = name
        self.tag = tag
        self.kind = kind
        self.syntax = syntax
        affectsDataplane = dataplane
        // The VM may hold exactly the parameters of VnicCore's GuestParameter
        // list (what the guest agent knows); the row says how values match.
        let vmHolds = GuestParameter(rawValue: name) != nil
        precondition(!vmHolds || policy != nil, "\(name): a parameter the VM may hold needs a policy domain")
        policyDomain = vmHolds ? policy : nil
        self.possible = possible
        self.hotRank = hotRank
        self.repeatable = repeatable
        self.required = required
        parseText = parse
        printText = print
        resetValue = reset
        self.check = check
        encodeField = encode
        decodeField = decode
        self.atoms = atoms
        self.extraTag = extraTag
        self.decodeExtra = decodeExtra
    }

    /// A row for an enum-valued field stored as one byte (its raw value).
    static func choice<T: RawRepresentable & CaseIterable & CustomStringConvertible & Sendable>(
        _ name: String, tag: UInt16, _ kind: Kind, _ type: T.Type, keyPath: WritableKeyPath<VNICRecord, T> & Sendable,
        dataplane: Bool, syntax: String, hotRank: Int? = nil) -> VNICParameter
    where T.RawValue == UInt8, T.AllCases: Sendable {
        let names = T.allCases.map(\.description)
        let fallback = VNICRecord.blank[keyPath: keyPath]
        return VNICParameter(
            name, tag: tag, kind, syntax: syntax, dataplane: dataplane, policy: .choice(names),
            possible: names.joined(separator: ","), hotRank: hotRank,
            parse: { (t, r) throws(VnicError) in
                guard let v = T.allCases.first(where: { $0.description == t }) else {
                    throw .usage("\(name): '\(t)' is not \(names.dropLast().joined(separator: ", ")) or \(names.last!)")
                }
                r[keyPath: keyPath] = v
            },
            print: { $0[keyPath: keyPath].description },
            reset: { $0[keyPath: keyPath] = fallback },
            encode: { r, w in w.u8(tag, r[keyPath: keyPath].rawValue) },
            decode: { (v, r) throws(VnicError) in
                let raw = try TLV.u8(v, name)
                guard let x = T(rawValue: raw) else { throw VnicError("field \(name) has unknown value \(raw)") }
                r[keyPath: keyPath] = x
            },
            atoms: { r in
                let i = UInt128(names.firstIndex(of: r[keyPath: keyPath].description) ?? 0)
                return [i...i]
            })
    }

    /// Parses one IPv6 `ADDRESS/LEN`; the prefix length is required, as for IPv4.
    public static func parseInterface6(_ text: String) throws(VnicError) -> IPv6Interface {
        guard let i = IPv6Interface(text) else {
            throw .usage("ip: '\(text)' is not an IPv6 address with prefix length (e.g. fd00:77::11/64)")
        }
        guard text.contains("/") else {
            throw .usage("ip: '\(text)' needs a prefix length (e.g. \(text)/64)")
        }
        return i
    }

    /// Parses one `A.B.C.D/LEN`; the prefix length is required (a bare address
    /// is more often a forgotten /24 than a meant /32).
    public static func parseInterface(_ text: String) throws(VnicError) -> IPv4Interface {
        guard let i = IPv4Interface(text) else {
            throw .usage("ip: '\(text)' is not an IPv4 address with prefix length (e.g. 10.77.0.11/24)")
        }
        guard text.contains("/") else {
            throw .usage("ip: '\(text)' needs a prefix length (e.g. \(text)/24)")
        }
        return i
    }
}

/// The record's TLV tags, as constants the inlinable fast path can use. The rows
/// above are the only other place that names them.
///
///  tag  field        value bytes                                          since
///   1   name         UTF-8                                                 v1
///   2   link         UTF-8                                                 v1
///   3   port         UTF-8 (absent: no port)                               v1
///   4   mac          6 bytes, wire order                                   v1
///   5   ip           4 bytes address (network order) + 1 byte prefix;      v1
///                    one occurrence per address, in order
///   6   gateway      4 bytes, network order (absent: none)                 v1
///   7   mtu          u32 LE (absent: 1500)                                 v1
///   8   index        u32 LE                                                v1
///   9   tcp-ports    per range: u16 LE lower, u16 LE upper                  v2
///  10   transport    u8: 1 tcp, 2 udp, 3 both (absent: both)               v2
///  11   routing      u8: 0 off, 1 on (absent: off)                         v2
///  12   tcp-buffer   u32 LE bytes (absent: the guest's default)            v2
///  13   state        u8: 0 up, 1 down (absent: up)                         v2
///  14   maxbw        u64 LE bits/s, 0 unlimited                            v2
///  15   priority     u8: 0 low, 1 medium, 2 high (absent: high)            v2
///  16   cpus         per CPU: u16 LE                                       v2
///  17   protection   u8 bits: 1 mac-, 2 ip-, 4 dhcp-nospoof, 8 restricted  v2
///                    (absent: mac-nospoof)
///  18   allowed-ips  per network: 4 bytes (network order) + 1 byte prefix  v2
///  19   denied-requests u8: 0 drop, 1 reply (absent: drop)                 v2
///  20   dhcp         u8: 0 off, 1 on (absent: off)                         v2
///  21   dhcp-lease   u32 LE seconds (absent: 3600)                         v2
///  22   ra-guard     u8: 0 on, 1 off (absent: on)                          v2
///   5   ip (IPv6)    16 bytes address (network order) + 1 byte prefix     v3
///  23   allowed-ips  (its IPv6 networks) per network: 16 bytes + 1 byte    v3
///                    prefix; always written right after tag 18
///   6   gateway (IPv6) 16 bytes, network order                            v3
///  24   ipv6-ra      u8: 0 off, 1 slaac, 2 managed (absent: off)           v3
///  0x1000 + tag      the VM's policy for that field (VNICRecordCodec)       v2
public enum FieldTag {
    public static let name: UInt16 = 1
    public static let link: UInt16 = 2
    public static let port: UInt16 = 3
    public static let mac: UInt16 = 4
    public static let ip: UInt16 = 5
    public static let gateway: UInt16 = 6
    public static let mtu: UInt16 = 7
    public static let index: UInt16 = 8
    public static let tcpPorts: UInt16 = 9
    public static let transport: UInt16 = 10
    public static let routing: UInt16 = 11
    public static let tcpBuffer: UInt16 = 12
    public static let state: UInt16 = 13
    public static let maxbw: UInt16 = 14
    public static let priority: UInt16 = 15
    public static let cpus: UInt16 = 16
    public static let protection: UInt16 = 17
    public static let allowedIPs: UInt16 = 18
    public static let deniedRequests: UInt16 = 19
    public static let dhcp: UInt16 = 20
    public static let dhcpLease: UInt16 = 21
    public static let raGuard: UInt16 = 22
    public static let allowedIPs6: UInt16 = 23
    public static let ipv6RA: UInt16 = 24
    /// Added to a field's tag for the VM's policy on that field.
    public static let policyBase: UInt16 = 0x1000
}

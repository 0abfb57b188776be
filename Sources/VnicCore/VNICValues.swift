// Value types of a VNIC's parameters and link properties that the database, the
// CLI and the dataplane all use: typed, parsed from and printed as the text the
// CLI takes (parsers return nil on bad input; VnicConfig's parameter table turns
// that into a message naming the token). Numeric raw values are what the
// database record stores, so they never change.

/// An IPv4 network: an address with its prefix length and no host bits set
/// (`10.77.0.0/24`; `10.77.0.5` alone is `/32`).
public struct IPv4CIDR: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let network: IPv4Address
    public let prefixLength: UInt8

    /// nil when `prefixLength` > 32 or `network` has host bits set.
    public init?(network: IPv4Address, prefixLength: UInt8) {
        guard prefixLength <= 32, network.rawValue & ~IPv4CIDR.mask(prefixLength) == 0 else { return nil }
        self.network = network
        self.prefixLength = prefixLength
    }

    /// Parses `A.B.C.D` (a /32) or `A.B.C.D/LEN` without host bits (`10.0.0.1/24` is
    /// refused: use `network(containing:)` to mean "the subnet of").
    public init?(_ text: some StringProtocol) {
        guard let (a, len) = IPv4Address.parseWithPrefix(text) else { return nil }
        self.init(network: a, prefixLength: len)
    }

    /// The network of `prefixLength` bits that contains `address`.
    public static func network(containing address: IPv4Address, prefixLength: UInt8) -> IPv4CIDR {
        let len = min(prefixLength, 32)
        return IPv4CIDR(network: IPv4Address(rawValue: address.rawValue & mask(len)), prefixLength: len)!
    }

    /// The netmask of a prefix length (`0` for /0).
    @inlinable
    public static func mask(_ prefixLength: UInt8) -> UInt32 {
        prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - min(prefixLength, 32))
    }

    public var first: IPv4Address { network }
    public var last: IPv4Address { IPv4Address(rawValue: network.rawValue | ~IPv4CIDR.mask(prefixLength)) }

    @inlinable
    public func contains(_ address: IPv4Address) -> Bool {
        address.rawValue & IPv4CIDR.mask(prefixLength) == network.rawValue
    }

    /// `10.0.0.0/24`; a /32 prints as the bare address.
    public var description: String { prefixLength == 32 ? network.description : "\(network)/\(prefixLength)" }

    public static func < (a: IPv4CIDR, b: IPv4CIDR) -> Bool {
        (a.network.rawValue, a.prefixLength) < (b.network.rawValue, b.prefixLength)
    }
}

/// A TCP/UDP port or an inclusive range of them (`80`, `8000-8080`); ports 1...65535.
public struct PortRange: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let lower: UInt16
    public let upper: UInt16

    /// nil when `lower` is 0 or above `upper`.
    public init?(_ lower: UInt16, _ upper: UInt16) {
        guard lower >= 1, lower <= upper else { return nil }
        self.lower = lower
        self.upper = upper
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let lo = PortRange.port(parts[0]) else { return nil }
        if parts.count == 2 {
            guard let hi = PortRange.port(parts[1]) else { return nil }
            self.init(lo, hi)
        } else {
            self.init(lo, lo)
        }
    }

    private static func port(_ s: some StringProtocol) -> UInt16? {
        guard (1...5).contains(s.count), s.allSatisfy({ $0.isASCII && $0.isNumber }), s.first != "0" else { return nil }
        return UInt16(s)
    }

    public func contains(_ port: UInt16) -> Bool { lower <= port && port <= upper }
    public func overlaps(_ other: PortRange) -> Bool { lower <= other.upper && other.lower <= upper }

    public var description: String { lower == upper ? String(lower) : "\(lower)-\(upper)" }
    public static func < (a: PortRange, b: PortRange) -> Bool { (a.lower, a.upper) < (b.lower, b.upper) }
}

/// dladm's `protection` link property: the anti-spoof checks on the VNIC's
/// outbound frames. Bits as stored in the database.
public struct Protection: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The source MAC must be the VNIC's own (the patent's check).
    @inlinable public static var macNospoof: Protection { Protection(rawValue: 1 << 0) }
    /// The source IP (and ARP sender) must be one of the allowed addresses.
    @inlinable public static var ipNospoof: Protection { Protection(rawValue: 1 << 1) }
    /// No DHCP server replies from the VM.
    @inlinable public static var dhcpNospoof: Protection { Protection(rawValue: 1 << 2) }
    /// Only IPv4, IPv6 and ARP frames.
    @inlinable public static var restricted: Protection { Protection(rawValue: 1 << 3) }

    /// What a new VNIC gets: `mac-nospoof`.
    @inlinable public static var `default`: Protection { .macNospoof }
    @inlinable public static var all: Protection { Protection(rawValue: 0x0F) }

    /// The names dladm uses, in its order; `none` is the empty set.
    public static let names: [(String, Protection)] = [
        ("mac-nospoof", .macNospoof), ("ip-nospoof", .ipNospoof), ("dhcp-nospoof", .dhcpNospoof), ("restricted", .restricted),
    ]

    /// Parses a comma list of names (`mac-nospoof,ip-nospoof`) or `none`; nil
    /// names the first unknown or repeated item through `bad`.
    public static func parse(_ text: String, bad: inout String) -> Protection? {
        if text == "none" { return [] }
        var result: Protection = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let p = names.first(where: { $0.0 == item })?.1, !result.contains(p) else {
                bad = String(item)
                return nil
            }
            result.insert(p)
        }
        return result
    }

    /// `mac-nospoof,ip-nospoof`, or `none`.
    public var description: String {
        rawValue & Protection.all.rawValue == 0 ? "none"
            : Protection.names.filter { contains($0.1) }.map(\.0).joined(separator: ",")
    }
}

/// dladm's `priority` link property: the VNIC's share when queues contend.
public enum Priority: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case low = 0, medium = 1, high = 2
    public static let `default`: Priority = .high
    public init?(_ text: String) {
        guard let p = Priority.allCases.first(where: { $0.description == text }) else { return nil }
        self = p
    }
    public var description: String {
        switch self {
        case .low: "low"
        case .medium: "medium"
        case .high: "high"
        }
    }
}

/// The `transport` parameter: which transport the VM's traffic uses, which picks
/// the VSQ's discipline (TCP needs serial processing; `both` takes the stricter).
/// Raw values are bits: tcp 1, udp 2, both 3.
public enum Transport: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case tcp = 1, udp = 2, both = 3
    public static let `default`: Transport = .both
    public init?(_ text: String) {
        guard let t = Transport.allCases.first(where: { $0.description == text }) else { return nil }
        self = t
    }
    public var description: String {
        switch self {
        case .tcp: "tcp"
        case .udp: "udp"
        case .both: "both"
        }
    }
    /// Whether the VSQ must process one flow at a time (TCP involved).
    public var needsSerialProcessing: Bool { self != .udp }
}

/// The `state` parameter: the administrator's wish. `down` keeps the VNIC in
/// the database but asks the daemon not to forward for it.
public enum AdminState: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case up = 0, down = 1
    public static let `default`: AdminState = .up
    public init?(_ text: String) {
        guard let s = AdminState.allCases.first(where: { $0.description == text }) else { return nil }
        self = s
    }
    public var description: String { self == .up ? "up" : "down" }
}

/// The `routing` parameter, a guest-stack setting stored for the guest: whether
/// the guest forwards IPv4 between its interfaces (`net.ipv4.ip_forward`).
public enum Routing: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case off = 0, on = 1
    public static let `default`: Routing = .off
    public init?(_ text: String) {
        guard let r = Routing.allCases.first(where: { $0.description == text }) else { return nil }
        self = r
    }
    public var description: String { self == .off ? "off" : "on" }
}

/// The `denied-requests` link property: what a VM's denied in-band request
/// gets. `drop` (the default, the seed's behaviour): nothing, the guest times
/// out; `reply`: a refusal naming the reason. Either way it is audited.
public enum DeniedRequests: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case drop = 0, reply = 1
    public static let `default`: DeniedRequests = .drop
    public var description: String { self == .drop ? "drop" : "reply" }
}

/// The `ra-guard` link property: under ip-nospoof the VM may not send router
/// advertisements or redirects (IPv6 RA and Redirect, IPv4 ICMP redirect and
/// router advertisement), RFC 6105. `off` for a VM that is a router.
public enum RAGuard: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case on = 0, off = 1
    public static let `default`: RAGuard = .on
    public var description: String { self == .on ? "on" : "off" }
}

/// The `dhcp` link property: whether vnic's DHCPv4 server answers the VM's
/// DHCP client (and keeps its DHCP off the wire).
public enum DHCPServer: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case off = 0, on = 1
    public static let `default`: DHCPServer = .off
    public var description: String { self == .off ? "off" : "on" }
}

/// The `ipv6-ra` link property: whether vnicd sends the VM router
/// advertisements (answers to its router solicitations, and one every 200 s)
/// with its IPv6 prefixes, MTU and IPv6 gateway, like OVN's ipv6_ra_configs
/// address_mode: `slaac` (the VM makes its address in a SLAAC prefix itself),
/// `managed` (the M flag: a DHCPv6 server gives the addresses). Under `off` the
/// VM's solicitations go where its other multicast goes.
public enum IPv6RA: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case off = 0, slaac = 1, managed = 2
    public static let `default`: IPv6RA = .off
    public var description: String {
        switch self {
        case .off: "off"
        case .slaac: "slaac"
        case .managed: "managed"
        }
    }
}

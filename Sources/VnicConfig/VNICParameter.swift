// VNICParameter: the one table of a VNIC's stored fields. For each: the name the
// CLI uses (`show-vnic -o`, `create-vnic -p`), its TLV tag and value encoding in
// the database record, how text becomes a value and a value becomes text.
// A later parameter is one more case here; the codec and the CLI follow.
import VnicCore

public enum VNICParameter: String, CaseIterable, Sendable {
    case name, link, port, mac, ip, gateway, mtu, index

    /// The field's tag in the database record (see `VNICRecordCodec`).
    /// Tags are never renumbered or reused; a new field takes the next number.
    ///
    ///  tag  field    value bytes                                  occurs
    ///   1   name     UTF-8                                        once, required
    ///   2   link     UTF-8                                        once, required
    ///   3   port     UTF-8                                        at most once
    ///   4   mac      6 bytes, wire order                          once, required
    ///   5   ip       4 bytes address (network order) + 1 byte     once per address, in order
    ///                prefix length
    ///   6   gateway  4 bytes, network order                       at most once
    ///   7   mtu      u32 little-endian                            at most once (absent: 1500)
    ///   8   index    u32 little-endian                            once, required
    public var tag: UInt16 {
        switch self {
        case .name: 1
        case .link: 2
        case .port: 3
        case .mac: 4
        case .ip: 5
        case .gateway: 6
        case .mtu: 7
        case .index: 8
        }
    }

    public init?(tag: UInt16) {
        guard let p = VNICParameter.allCases.first(where: { $0.tag == tag }) else { return nil }
        self = p
    }

    /// Whether `create-vnic -p NAME=VALUE` sets it (the others have their own flags
    /// or are the store's).
    public var isCreateProperty: Bool { self == .mtu || self == .gateway }

    /// The value as text: addresses comma-separated; nil when unset or empty.
    public func text(of r: VNICRecord) -> String? {
        switch self {
        case .name: r.name
        case .link: r.link
        case .port: r.port
        case .mac: r.mac.description
        case .ip: r.ips.isEmpty ? nil : r.ips.map(\.description).joined(separator: ",")
        case .gateway: r.gateway?.description
        case .mtu: String(r.mtu)
        case .index: String(r.index)
        }
    }

    /// Parses `text` into `record`'s field. Checks the syntax only; the rest is
    /// `VNICRecord.validate()`'s. `mac` also takes `random` (a random locally
    /// administered unicast address); `ip` takes a comma list of A.B.C.D/LEN.
    public func parse(_ text: String, into r: inout VNICRecord) throws(VnicError) {
        switch self {
        case .name:
            try VNICRecord.validateName(text)
            r.name = text
        case .link:
            try VNICRecord.validateInterfaceName(text, field: "link")
            r.link = text
        case .port:
            try VNICRecord.validateInterfaceName(text, field: "port")
            r.port = text
        case .mac:
            if text == "random" {
                r.mac = .random()
            } else if let m = MACAddress(text) {
                r.mac = m
            } else {
                throw .usage("mac: '\(text)' is not a MAC address (e.g. 02:00:00:00:01:01 or random)")
            }
        case .ip:
            r.ips = try text.split(separator: ",", omittingEmptySubsequences: false).map { (t) throws(VnicError) in
                try VNICParameter.parseInterface(String(t))
            }
        case .gateway:
            guard let a = IPv4Address(text) else {
                throw .usage("gateway: '\(text)' is not an IPv4 address (e.g. 10.77.0.1)")
            }
            r.gateway = a
        case .mtu:
            guard let v = UInt32(text), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
                throw .usage("mtu: '\(text)' is not a number")
            }
            r.mtu = v
        case .index:
            throw .usage("index: is assigned by the database and cannot be set")
        }
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

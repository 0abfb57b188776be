// VNICRecord: one VNIC's configuration as the database stores it, and the
// rules every stored record obeys (checked by `validate()` before each write).
import VnicCore

public struct VNICRecord: Equatable, Sendable {
    /// The VNIC's name: 1...31 of `A-Z a-z 0-9 _ . -`, starting with a letter.
    public var name: String
    /// The uplink interface whose traffic the VNIC shares.
    public var link: String
    /// The host side of the VM's veth/tap, if attached.
    public var port: String?
    /// The VNIC's own MAC: unicast, non-zero, unique in the database.
    public var mac: MACAddress
    /// The VM's IPv4 addresses with their prefix lengths, in the order given.
    public var ips: [IPv4Interface]
    /// The VM's IPv6 addresses with their prefix lengths, in the order given
    /// (the `ip` parameter holds both families). A /64 with no interface
    /// identifier is a SLAAC prefix: the VM's address there is its MAC's EUI-64.
    public var ips6: [IPv6Interface] = []
    /// The VM's default route.
    public var gateway: IPv4Address?
    /// The VM's IPv6 default route (a link-local address is what router
    /// advertisements can name; the `gateway` parameter holds both families).
    public var gateway6: IPv6Address?
    public var mtu: UInt32
    /// The dataplane slot: assigned by the store at create (the smallest free
    /// one in `indexRange`), unique, stable for the VNIC's life. Ignored on input.
    public var index: UInt32

    // Parameters added in schema 2 (defaults: what a v1 record means).
    /// TCP ports and ranges the VM serves, sorted, not overlapping.
    public var tcpPorts: [PortRange] = []
    /// Which transport the VM uses (picks the VSQ's discipline).
    public var transport: Transport = .default
    /// Whether the guest forwards IPv4 (stored for the guest).
    public var routing: Routing = .default
    /// The guest's TCP buffer size in bytes; nil: the guest's default.
    public var tcpBuffer: UInt32?
    /// The administrator's state: `down` asks vnicd not to forward for the VNIC.
    public var state: AdminState = .default

    // Link properties (admin-only, like dladm's).
    /// Bandwidth limit in bits per second; nil: unlimited.
    public var maxbw: UInt64?
    public var priority: Priority = .default
    public var deniedRequests: DeniedRequests = .default
    public var dhcp: DHCPServer = .default
    public var raGuard: RAGuard = .default
    /// Router advertisements from vnicd to the VM (`ipv6-ra`).
    public var ipv6RA: IPv6RA = .default
    /// Seconds a DHCP lease lasts (the `dhcp-lease` property).
    public var dhcpLease: UInt32 = VNICRecord.defaultDHCPLease
    /// CPUs for the VNIC's processing, sorted; empty: any.
    public var cpus: [Int] = []
    /// Anti-spoof checks on the VNIC's outbound frames (default: mac-nospoof).
    public var protection: Protection = .default
    /// IPv4 networks the VM may send from under ip-nospoof; empty: its `ips`.
    public var allowedIPs: [IPv4CIDR] = []
    /// IPv6 networks the VM may send from under ip-nospoof; empty: its `ips6`
    /// (the `allowed-ips` property holds both families; each family's list
    /// replaces that family's addresses only). Its link-local address always passes.
    public var allowedIPs6: [IPv6CIDR] = []

    /// What the VM may change, and to what.
    public var policy = VNICPolicy()

    public static let defaultMTU: UInt32 = 1500
    public static let mtuRange: ClosedRange<UInt32> = 68...9216
    public static let indexRange: ClosedRange<UInt32> = 1...65535
    public static let maxNameLength = 31
    /// Linux's IFNAMSIZ (16) less the terminating NUL.
    public static let maxInterfaceNameLength = 15
    public static let maxAddresses = 64
    /// At most this many items in tcp-ports.
    public static let maxListItems = 64
    public static let maxbwRange: ClosedRange<UInt64> = 1_000...1_000_000_000_000
    public static let tcpBufferRange: ClosedRange<UInt32> = 4096...(256 << 20)
    public static let dhcpLeaseRange: ClosedRange<UInt32> = 60...31_536_000
    public static let defaultDHCPLease: UInt32 = 3600
    public static let cpuRange: ClosedRange<Int> = 0...4095
    public static let maxCPUs = 256

    public init(name: String, link: String, port: String? = nil, mac: MACAddress,
                ips: [IPv4Interface] = [], gateway: IPv4Address? = nil,
                mtu: UInt32 = VNICRecord.defaultMTU, index: UInt32 = 0) {
        self.name = name
        self.link = link
        self.port = port
        self.mac = mac
        self.ips = ips
        self.gateway = gateway
        self.mtu = mtu
        self.index = index
    }

    /// Every field at its default, no name, link or MAC: what decoding starts from.
    static let blank = VNICRecord(name: "", link: "", mac: MACAddress(rawValue: 0))

    /// The IPv4 networks ip-nospoof lets the VM send from: `allowedIPs`, or
    /// its own `ips` (each a /32) when that is empty. Read by the dataplane's
    /// own rule (`VNICView.forEachSource`) from the encoded record: one rule.
    public var effectiveAllowedIPs: [IPv4CIDR] {
        var out: [IPv4CIDR] = []
        VNICRecordCodec.encode(self).withUnsafeBytes { bytes in
            VNICView(bytes: bytes).forEachSource { network, length in
                out.append(IPv4CIDR.network(containing: IPv4Address(rawValue: network), prefixLength: length))
            }
        }
        return out
    }

    /// The IPv6 networks ip-nospoof lets the VM send from besides its link-local
    /// address: `allowedIPs6`, or when that is empty its own `ips6` (a SLAAC
    /// prefix as the address its MAC gives there), each as a /128. Read by the
    /// dataplane's own rule (`VNICView.forEachSource6`) from the encoded record.
    public var effectiveAllowedIPs6: [IPv6CIDR] {
        var out: [IPv6CIDR] = []
        VNICRecordCodec.encode(self).withUnsafeBytes { bytes in
            VNICView(bytes: bytes).forEachSource6 { hi, lo, length in
                if let c = IPv6CIDR(network: IPv6Address(hi: hi, lo: lo), prefixLength: length) { out.append(c) }
            }
        }
        return out
    }

    /// Checks everything about the record that does not depend on other VNICs
    /// (uniqueness is the store's job): each field's rule from the parameter
    /// table, in table order. Throws a usage error naming the field.
    public func validate() throws(VnicError) {
        for p in VNICParameter.allCases { try p.validate(self) }
    }

    /// A VNIC name: 1...31 of `A-Z a-z 0-9 _ . -`, starting with a letter.
    public static func validateName(_ name: String) throws(VnicError) {
        let ok = (1...maxNameLength).contains(name.utf8.count)
            && name.utf8.first.map(isASCIILetter) == true
            && name.utf8.allSatisfy { isASCIILetter($0) || (0x30...0x39).contains($0) || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D }
        if !ok {
            throw .usage("name: '\(name)' is not a valid VNIC name (1-\(maxNameLength) of A-Z a-z 0-9 _ . -, starting with a letter)")
        }
    }

    /// A Linux interface name as the kernel accepts it (`dev_valid_name`):
    /// 1...15 bytes, not `.` or `..`, no `/`, `:` or whitespace. Control
    /// characters are refused too (they would garble the CLI's output).
    public static func validateInterfaceName(_ name: String, field: String) throws(VnicError) {
        let bytes = name.utf8
        let ok = (1...maxInterfaceNameLength).contains(bytes.count) && name != "." && name != ".."
            && bytes.allSatisfy { $0 > 0x20 && $0 != 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") }
        if !ok {
            throw .usage("\(field): '\(name)' is not a valid interface name (1-\(maxInterfaceNameLength) bytes, no '/', ':' or whitespace)")
        }
    }

    /// An address a VM may own: unicast, not loopback, not the network or
    /// broadcast address of its subnet (for prefixes up to /30), prefix >= 1.
    static func validateHostAddress(_ ip: IPv4Interface) throws(VnicError) {
        guard ip.address.isUnicastHost else { throw .usage("ip: \(ip) is not a unicast host address") }
        guard ip.prefixLength >= 1 else { throw .usage("ip: \(ip) has prefix length 0") }
        if ip.prefixLength <= 30 {
            let hostMask = UInt32.max >> UInt32(ip.prefixLength)
            let host = ip.address.rawValue & hostMask
            if host == 0 { throw .usage("ip: \(ip) is the network address of its subnet") }
            if host == hostMask { throw .usage("ip: \(ip) is the broadcast address of its subnet") }
        }
    }

    /// An IPv6 address a VM may own (IPv6Address.isUnicastHost), prefix 1...128;
    /// a SLAAC prefix is a /64 with no interface identifier.
    static func validateHostAddress(_ ip: IPv6Interface) throws(VnicError) {
        if ip.address.isLinkLocal {
            throw .usage("ip: \(ip) is a link-local address (every VNIC has its own, fe80:: with its MAC's EUI-64)")
        }
        guard ip.address.isUnicastHost else { throw .usage("ip: \(ip) is not a unicast host address") }
        guard ip.prefixLength >= 1 else { throw .usage("ip: \(ip) has prefix length 0") }
        let cidr = IPv6CIDR.network(containing: ip.address, prefixLength: ip.prefixLength)
        if cidr.network == ip.address && ip.prefixLength < 127 && !ip.isSLAACPrefix {
            throw .usage("ip: \(ip) is the subnet-router anycast address of its subnet (a /64 with no interface identifier is a SLAAC prefix)")
        }
    }

    private static func isASCIILetter(_ b: UInt8) -> Bool { (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) }
}

extension IPv4Address {
    /// Not 0.0.0.0/8, not loopback (127/8), not multicast or reserved (224/3).
    var isUnicastHost: Bool {
        let first = rawValue >> 24
        return first != 0 && first != 127 && first < 224
    }
}

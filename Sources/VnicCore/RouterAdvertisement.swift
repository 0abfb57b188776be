// RouterAdvertisement: the RA (RFC 4861 4.2) vnicd sends a VM whose VNIC has
// `ipv6-ra` on, as OVN's ipv6_ra_configs do: its prefixes (RFC 4861 4.6.2
// prefix information, on-link; autonomous under `slaac` for a SLAAC prefix
// entry only, so a VM with a fixed address makes no second one that anti-spoof
// would drop; the M and O flags under `managed`),
// its MTU (4.6.4) and, where the VNIC's IPv6 gateway is a link-local address,
// that gateway as the router (an RA's source must be link-local, RFC 4861
// 6.1.2; the guest then resolves the gateway's MAC by neighbour discovery on
// the wire). Without one the appliance's own link-local address sends it with
// router lifetime 0: addresses, no default route. Also the recognition of a
// VM's Router Solicitation (RFC 4861 4.1) that vnicd answers.

public enum RouterAdvertisement {
    /// How the VM gets its addresses (the `ipv6-ra` property's values but off).
    public enum Mode: Sendable { case slaac, managed }

    /// Router lifetime with a default router (RFC 4861 6.2.1's default: 3 x 600 s).
    public static let routerLifetime: UInt16 = 1800
    /// Prefix lifetimes (radvd's defaults), renewed by every RA; a prefix the
    /// VNIC no longer has is announced once with both at 0 (deprecated at once;
    /// RFC 4862 5.5.3 keeps an unauthenticated valid lifetime 2 hours).
    public static let validLifetime: UInt32 = 86_400
    public static let preferredLifetime: UInt32 = 14_400
    /// Unsolicited RAs: every this many seconds (RFC 4861's MaxRtrAdvInterval default is 600).
    public static let interval: UInt64 = 200

    public static let allNodes = IPv6Address(hi: 0xFF02_0000_0000_0000, lo: 1)

    /// The RA frame to `dstMAC`/`dstIP` (a soliciting VM's link-local address, or all-nodes).
    /// `prefixes` are announced as given (`prefixes(of:mode:)`).
    public static func frame(mode: Mode, prefixes: [Prefix], mtu: UInt32, gateway: IPv6Address?,
                             applianceMAC: MACAddress, dstMAC: MACAddress, dstIP: IPv6Address) -> [UInt8] {
        let router = gateway.flatMap { $0.isLinkLocal ? $0 : nil }
        let srcIP = router ?? IPv6Address.linkLocal(applianceMAC)
        var icmp: [UInt8] = [134, 0, 0, 0]                              // type, code, checksum
        icmp.append(64)                                                 // cur hop limit
        icmp.append(mode == .managed ? 0xC0 : 0x00)                     // M and O for managed
        icmp += FrameBuilder.be16(router == nil ? 0 : routerLifetime)
        icmp += FrameBuilder.be32(0) + FrameBuilder.be32(0)             // reachable time, retrans timer: unspecified
        if router == nil { icmp += [1, 1] + applianceMAC.bytes }        // source link-layer address: the sender's
        icmp += [5, 1, 0, 0] + FrameBuilder.be32(mtu)                   // MTU
        for p in prefixes {
            icmp += [3, 4, p.network.prefixLength, p.autonomous ? 0xC0 : 0x80]    // on-link (L), autonomous (A)
            icmp += FrameBuilder.be32(p.withdrawn ? 0 : validLifetime) + FrameBuilder.be32(p.withdrawn ? 0 : preferredLifetime)
            icmp += FrameBuilder.be32(0)
            icmp += p.network.network.bytes
        }
        let sum = checksum(src: srcIP, dst: dstIP, next: 58, icmp)
        icmp[2] = UInt8(sum >> 8); icmp[3] = UInt8(sum & 0xFF)
        let ip: [UInt8] = [0x60, 0, 0, 0] + FrameBuilder.be16(UInt16(icmp.count)) + [58, 255] + srcIP.bytes + dstIP.bytes
        return FrameBuilder.ethernet(dst: dstMAC, src: applianceMAC, type: 0x86DD, payload: ip + icmp)
    }

    public struct Prefix: Equatable, Sendable {
        public var network: IPv6CIDR
        /// The A flag: the VM makes its address there itself (SLAAC).
        public var autonomous: Bool
        /// No longer the VNIC's: lifetimes 0.
        public var withdrawn = false
        public init(network: IPv6CIDR, autonomous: Bool, withdrawn: Bool = false) {
            self.network = network; self.autonomous = autonomous; self.withdrawn = withdrawn
        }
    }

    /// The prefixes a VNIC announces: the network of each of its IPv6 addresses,
    /// once each, in order; autonomous for a SLAAC prefix entry under `slaac`.
    public static func prefixes(of addresses: [IPv6Interface], mode: Mode) -> [Prefix] {
        var out: [Prefix] = []
        for a in addresses {
            let n = IPv6CIDR.network(containing: a.address, prefixLength: a.prefixLength)
            let auto = mode == .slaac && a.isSLAACPrefix
            if let i = out.firstIndex(where: { $0.network == n }) { out[i].autonomous = out[i].autonomous || auto; continue }
            out.append(Prefix(network: n, autonomous: auto))
        }
        return out
    }

    /// The ICMPv6 checksum over the IPv6 pseudo-header (RFC 8200 8.1) and `payload`.
    public static func checksum(src: IPv6Address, dst: IPv6Address, next: UInt8, _ payload: [UInt8]) -> UInt16 {
        let pseudo = src.bytes + dst.bytes + FrameBuilder.be32(UInt32(payload.count)) + [0, 0, 0, next]
        return FrameBuilder.checksum(pseudo + payload)
    }

    /// Whether `frame` is an untagged Router Solicitation (IPv6, next header
    /// ICMPv6 with no extension header, type 133, hop limit 255) and its source
    /// address (:: or the VM's link-local address).
    public static func solicitation(_ f: [UInt8]) -> IPv6Address? {
        guard f.count >= 14 + 40 + 8, f[12] == 0x86, f[13] == 0xDD, f[14] >> 4 == 6, f[20] == 58, f[21] == 255,
              f[54] == 133 else { return nil }
        return IPv6Address(bytes: f[22..<38])
    }
}

// AntiSpoof: the checks on every frame a VM sends, by its VNIC's `protection`
// (dladm's values). Pure functions over the frame's bytes: no allocation, every
// read bounds-checked against the frame length, so a malformed frame (truncated
// headers, bad IHL, lengths that lie) is a verdict, never a crash or a read past
// the frame.
//
// What is checked, by protection (the README's port-security table says why):
// - always: the service address 169.254.169.254 is never a VM's source (IPv4
//   or ARP sender) nor, past the worker's intercept of untagged requests, a
//   destination, whatever the VNIC's protection.
// - mac-nospoof: the source MAC is the VNIC's.
// - restricted: only IPv4, IPv6 and ARP.
// - ip-nospoof: IPv4/IPv6 sources and the ARP sender are the VNIC's; ARP from
//   0.0.0.0 only as an RFC 5227 probe for an address the VNIC may use; IPv6
//   neighbour discovery: hop limit 255, an advertised (or DAD-probed) target
//   the VNIC's, link-layer address options the VNIC's MAC, never fragmented
//   (RFC 6980); a first fragment must hold the whole header chain (RFC 7112);
//   router guard (RFC 6105, `ra-guard`): no IPv6 RA or Redirect, no IPv4 ICMP
//   redirect or router advertisement; a frame whose network header the checks
//   cannot see (stacked or 802.1ad tags, LLC/SNAP, MPLS, PPPoE, ...) is
//   `uncheckable`.
// - dhcp-nospoof: no DHCP server (or relay) message, recognised by what it is
//   whatever its ports (BOOTREPLY, a server's message type, a DHCPv6 server's
//   message), and a client's chaddr/client-id are the VNIC's MAC.
//
// IPv6: the whole extension header chain (RFC 8200) is walked, bounded by the
// frame and by `maxExtensionHeaders`. A VNIC's own IPv6 addresses are its EUI-64
// link-local address (what Linux makes by default, and what OpenStack port
// security allows) and its allowed-ips; :: is a source only for DAD probes,
// Router Solicitations (RFC 4861 6.3.7) and MLD reports (RFC 3590).
//
// One 802.1Q tag is looked through, so a tag does not hide what it carries.
import CVnicShim
import VnicCore

/// The verdict on one outbound frame; raw values index the drop counters
/// (enum vnic_drop_reason in bpf/vnic.shared.h).
public enum SpoofVerdict: UInt32, Sendable {
    case pass = 0xFFFF_FFFF
    case spoofMAC = 0, malformed, spoofIP, spoofARP, spoofIPv6, spoofDHCP, restricted
    case spoofND, raGuard, fragment, uncheckable, spoofService
}

/// What the checks compare a frame against. Generic (specialised, never an
/// existential): the worker passes a view of the VNIC's database record read for
/// the loop (`RecordPolicy`), tests and the fuzzer pass `SpoofPolicy`.
public protocol SourcePolicy {
    /// The VNIC's MAC as `MACKey`.
    var mac: UInt64 { get }
    var protection: Protection { get }
    /// The `ra-guard` property: under ip-nospoof, no router advertisements or redirects.
    var raGuard: Bool { get }
    /// Whether an IPv4 source (host order) is the VNIC's (ip-nospoof).
    func allowsIPv4(_ address: UInt32) -> Bool
    /// Whether an IPv6 source or ND target is the VNIC's (ip-nospoof).
    func allowsIPv6(_ hi: UInt64, _ lo: UInt64) -> Bool
}

/// A policy in caller-owned memory, for tests and the fuzzer: the VNIC's MAC
/// (as `MACKey`), its protection, and the prefixes it may use as a source (no
/// ARC). The worker's policy is the VNIC's record (RecordPolicy).
public struct SpoofPolicy: FramePolicy {
    public var mac: UInt64
    public var protection: Protection
    public var raGuard: Bool
    public var dhcp = false
    public var answersRS = false
    /// (network, mask) pairs in host order.
    public var ipv4: UnsafePointer<(UInt32, UInt32)>
    public var ipv4Count: Int
    /// IPv6 prefixes it may use besides its EUI-64 link-local address:
    /// (network high, network low, mask high, mask low).
    public var ipv6: UnsafePointer<(UInt64, UInt64, UInt64, UInt64)>
    public var ipv6Count: Int
    public init(mac: UInt64, protection: Protection, raGuard: Bool = true, ipv4: UnsafePointer<(UInt32, UInt32)>, ipv4Count: Int,
                ipv6: UnsafePointer<(UInt64, UInt64, UInt64, UInt64)>, ipv6Count: Int) {
        self.mac = mac; self.protection = protection; self.raGuard = raGuard; self.ipv4 = ipv4; self.ipv4Count = ipv4Count
        self.ipv6 = ipv6; self.ipv6Count = ipv6Count
    }

    @inline(__always)
    public func allowsIPv4(_ a: UInt32) -> Bool {
        for i in 0..<ipv4Count where a & ipv4[i].1 == ipv4[i].0 { return true }
        return false
    }

    /// Its link-local address (fe80::/64 with the MAC's EUI-64) or an allowed prefix.
    @inline(__always)
    public func allowsIPv6(_ hi: UInt64, _ lo: UInt64) -> Bool {
        if hi == 0xFE80_0000_0000_0000 && lo == AntiSpoof.eui64(mac) { return true }
        for i in 0..<ipv6Count where hi & ipv6[i].2 == ipv6[i].0 && lo & ipv6[i].3 == ipv6[i].1 { return true }
        return false
    }
}

/// Big-endian loads at a byte offset; the callers check bounds first.
@inline(__always) func be16(_ p: UnsafeRawPointer, _ o: Int) -> UInt16 { UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
@inline(__always) func be32(_ p: UnsafeRawPointer, _ o: Int) -> UInt32 { UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
@inline(__always) func be64(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 { UInt64(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
@inline(__always) func byte(_ p: UnsafeRawPointer, _ o: Int) -> UInt8 { p.load(fromByteOffset: o, as: UInt8.self) }

public enum AntiSpoof {
    static let ethIPv4: UInt16 = 0x0800, ethARP: UInt16 = 0x0806, ethIPv6: UInt16 = 0x86DD
    static let ethVLAN: UInt16 = 0x8100, ethQinQ: UInt16 = 0x88A8
    /// 169.254.169.254, host order.
    static var service: UInt32 { @inline(__always) get { GuestProtocol.serviceAddressValue } }
    /// More extension headers than this in one packet: `uncheckable`.
    static let maxExtensionHeaders = 16

    /// The verdict on a frame of `len` bytes a VM sent.
    @inline(__always)
    public static func check<P: SourcePolicy>(_ f: UnsafeRawPointer, len: Int, _ p: P) -> SpoofVerdict {
        if let v = plainIPv4(f, len: len, p) { return v }
        return general(f, len: len, p)
    }

    /// The common frame in one pass, inline: untagged IPv4 without options, not
    /// a fragment, TCP, or UDP with no DHCP port and no BOOTP magic cookie
    /// where a DHCP message would hold it. For such a frame the general checks
    /// come down to the source MAC, the lengths and the source address; nil
    /// for any other frame (and for the service address), which `general`
    /// decides. The verdicts are the same by construction; a unit test runs
    /// both over the fuzzer's corpus and mutations of it.
    @inline(__always)
    static func plainIPv4<P: SourcePolicy>(_ f: UnsafeRawPointer, len: Int, _ p: P) -> SpoofVerdict? {
        guard len >= 34, f.loadUnaligned(fromByteOffset: 12, as: UInt16.self) == UInt16(0x0800).bigEndian,
              byte(f, 14) == 0x45 else { return nil }
        // First whether it is such a frame, then the checks: a frame the worker's
        // services may take (Classify) never gets a verdict here.
        let total = Int(be16(f, 16))
        guard total >= 20, 14 + total <= len,
              f.loadUnaligned(fromByteOffset: 20, as: UInt16.self) & UInt16(0x3FFF).bigEndian == 0 else { return nil }
        let src = be32(f, 26)
        guard src != service, be32(f, 30) != service else { return nil }
        let proto = byte(f, 23)
        if proto == 17 {
            guard total >= 28 else { return nil }
            let ulen = Int(be16(f, 38))
            guard ulen >= 8, 34 + ulen <= 14 + total else { return nil }
            // Ports 67 and 68 either way; a ports' word with any of them goes the general way.
            let sport = be16(f, 34), dport = be16(f, 36)
            guard sport &- 67 > 1, dport &- 67 > 1 else { return nil }
            guard ulen < 8 + 240 || be32(f, 42 + 236) != 0x6382_5363 else { return nil }
        } else if proto != 6 {
            return nil
        }
        if p.protection.contains(.macNospoof), MACKey.load(f + 6) != p.mac { return .spoofMAC }
        guard p.protection.contains(.ipNospoof) else { return .pass }
        return p.allowsIPv4(src) ? .pass : .spoofIP
    }

    /// Every frame: the checks in full.
    @inline(never)
    static func general<P: SourcePolicy>(_ f: UnsafeRawPointer, len: Int, _ p: P) -> SpoofVerdict {
        guard len >= 14 else { return .malformed }
        if p.protection.contains(.macNospoof), MACKey.load(f + 6) != p.mac { return .spoofMAC }
        var l3 = 14
        var type = be16(f, 12)
        if type == ethVLAN {
            guard len >= 18 else { return .malformed }
            type = be16(f, 16)
            l3 = 18
        }
        switch type {
        case ethIPv4: return ipv4(f, l3, len, p)
        case ethARP: return arp(f, l3, len, p)
        case ethIPv6: return ipv6(f, l3, len, p)
        default:
            // A second tag, an 802.1ad tag, LLC/SNAP, MPLS, PPPoE, ...: what it
            // carries is not looked at, so ip-nospoof cannot let it pass.
            if p.protection.contains(.restricted) { return .restricted }
            return p.protection.contains(.ipNospoof) ? .uncheckable : .pass
        }
    }

    // MARK: ARP

    @inline(__always)
    static func arp<P: SourcePolicy>(_ f: UnsafeRawPointer, _ o: Int, _ len: Int, _ p: P) -> SpoofVerdict {
        guard len >= o + 28 else { return .malformed }
        let spa = be32(f, o + 14)                                         // sender IP
        if spa == service { return .spoofService }
        guard p.protection.contains(.ipNospoof) else { return .pass }
        // Ethernet/IPv4 ARP only: hardware 1, protocol 0x0800, sizes 6 and 4; request or reply.
        guard be16(f, o) == 1, be16(f, o + 2) == ethIPv4, byte(f, o + 4) == 6, byte(f, o + 5) == 4 else { return .spoofARP }
        let op = be16(f, o + 6)
        guard op == 1 || op == 2 else { return .spoofARP }
        if MACKey.load(f + o + 8) != p.mac { return .spoofARP }          // sender MAC
        if spa == 0 {
            // Only a request can be a probe (RFC 5227), and only for an address the VNIC may use.
            return op == 1 && p.allowsIPv4(be32(f, o + 24)) ? .pass : .spoofARP
        }
        return p.allowsIPv4(spa) ? .pass : .spoofARP
    }

    // MARK: IPv4

    @inline(__always)
    static func ipv4<P: SourcePolicy>(_ f: UnsafeRawPointer, _ o: Int, _ len: Int, _ p: P) -> SpoofVerdict {
        guard len >= o + 20 else { return .malformed }
        let vihl = byte(f, o)
        let ihl = Int(vihl & 0x0F) * 4
        let total = Int(be16(f, o + 2))
        guard vihl >> 4 == 4, ihl >= 20, total >= ihl, o + total <= len else { return .malformed }
        let src = be32(f, o + 12)
        // Nothing to or from the service address passes (the worker intercepts the
        // guest's requests before the checks: what comes here is in a tag, or forged).
        if src == service || be32(f, o + 16) == service { return .spoofService }
        let pr = p.protection
        guard pr.contains(.ipNospoof) || pr.contains(.dhcpNospoof) else { return .pass }
        let proto = byte(f, o + 9)
        let frag = be16(f, o + 6)
        let offset = frag & 0x1FFF, more = frag & 0x2000 != 0
        let l4 = o + ihl, end = o + total
        var dhcpClient = false
        if offset == 0 && proto == 17 {
            // A first fragment's UDP length is the whole datagram's: only what is here is read.
            guard end >= l4 + 8 else { return more ? .fragment : .malformed }
            let sport = be16(f, l4), dport = be16(f, l4 + 2), ulen = Int(be16(f, l4 + 4))
            guard ulen >= 8, more || l4 + ulen <= end else { return .malformed }
            let payload = l4 + 8, payloadEnd = more ? end : l4 + ulen
            let dhcpPorts = sport == 67 || sport == 68 || dport == 67 || dport == 68
            // BOOTP/DHCP, by its magic cookie whatever the ports, or by its ports.
            let bootp = payloadEnd >= payload + 236
                && ((payloadEnd >= payload + 240 && be32(f, payload + 236) == 0x6382_5363) || dhcpPorts)
            if pr.contains(.dhcpNospoof) {
                if sport == 67 || dport == 68 { return .spoofDHCP }      // a server's or relay's, or to a client
                if more && dhcpPorts { return .spoofDHCP }                // DHCP is never fragmented
                if bootp {
                    let v = dhcpMessage(f, payload, payloadEnd, p)
                    if v != .pass { return v }
                }
            }
            dhcpClient = bootp && sport == 68 && dport == 67 && byte(f, payload) == 1
        } else if offset == 0 && proto == 1 && pr.contains(.ipNospoof) && p.raGuard {
            guard end >= l4 + 4 else { return more ? .fragment : .malformed }
            let t = byte(f, l4)
            if t == 5 || t == 9 { return .raGuard }                       // redirect, router advertisement
        }
        if pr.contains(.ipNospoof) && !p.allowsIPv4(src) && !(src == 0 && dhcpClient) {
            return .spoofIP
        }
        return .pass
    }

    /// A BOOTP/DHCP message in [start, end): a client's (BOOTREQUEST) hardware
    /// address, and a client identifier of type 1 (Ethernet) if present, must be
    /// the VNIC's MAC (other client-id types, RFC 4361 DUIDs, cannot be tied to
    /// the MAC and pass); a BOOTREPLY, or a server's message type, is a server's.
    @inline(__always)
    static func dhcpMessage<P: SourcePolicy>(_ f: UnsafeRawPointer, _ start: Int, _ end: Int, _ p: P) -> SpoofVerdict {
        guard byte(f, start) == 1 else { return .spoofDHCP }                               // op BOOTREQUEST
        guard byte(f, start + 1) == 1, byte(f, start + 2) == 6, MACKey.load(f + start + 28) == p.mac else { return .spoofDHCP }
        guard end >= start + 240, be32(f, start + 236) == 0x6382_5363 else { return .pass }   // BOOTP: no options
        var o = start + 240
        while o < end {
            let code = byte(f, o)
            if code == 255 { break }
            if code == 0 { o += 1; continue }
            guard o + 2 <= end else { return .malformed }
            let n = Int(byte(f, o + 1))
            guard o + 2 + n <= end else { return .malformed }
            if code == 61 && n == 7 && byte(f, o + 2) == 1 {
                if MACKey.load(f + o + 3) != p.mac { return .spoofDHCP }
            }
            if code == 53 && n == 1 && isServerMessageType(byte(f, o + 2)) { return .spoofDHCP }
            o += 2 + n
        }
        return .pass
    }

    /// DHCPv4 message types only a server (or a lease-query responder) sends:
    /// OFFER, ACK, NAK, FORCERENEW, LEASEUNASSIGNED/UNKNOWN/ACTIVE, LEASEQUERYDONE, LEASEQUERYSTATUS.
    static let serverTypes: UInt64 = 0x2_BA64   // bits 2, 5, 6, 9, 11, 12, 13, 15, 17 (a unit test derives it)
    @inline(__always)
    static func isServerMessageType(_ t: UInt8) -> Bool { t < 64 && (UInt64(1) << UInt64(t)) & serverTypes != 0 }


    // MARK: IPv6

    @inline(__always)
    static func ipv6<P: SourcePolicy>(_ f: UnsafeRawPointer, _ o: Int, _ len: Int, _ p: P) -> SpoofVerdict {
        guard len >= o + 40 else { return .malformed }
        guard byte(f, o) >> 4 == 6 else { return .malformed }
        let end = o + 40 + Int(be16(f, o + 4))
        guard end <= len else { return .malformed }
        let pr = p.protection
        guard pr.contains(.ipNospoof) || pr.contains(.dhcpNospoof) else { return .pass }
        // The extension header chain, to the upper layer (RFC 8200 4.1).
        var next = byte(f, o + 6)
        var l4 = o + 40
        var fragmented = false, firstFragment = true
        var headers = 0
        chain: while true {
            switch next {
            case 0, 43, 60, 135, 139, 140, 253, 254:   // hop-by-hop, routing, destination, mobility, HIP, shim6, experiments
                guard l4 + 8 <= end else { return fragmented ? .fragment : .malformed }
                next = byte(f, l4)
                l4 += (Int(byte(f, l4 + 1)) + 1) * 8
            case 51:                                    // authentication header: length in 4-byte units, minus 2
                guard l4 + 8 <= end else { return fragmented ? .fragment : .malformed }
                next = byte(f, l4)
                l4 += (Int(byte(f, l4 + 1)) + 2) * 4
            case 44:                                    // fragment
                guard l4 + 8 <= end else { return fragmented ? .fragment : .malformed }
                next = byte(f, l4)
                fragmented = true
                firstFragment = be16(f, l4 + 2) & 0xFFF8 == 0
                l4 += 8
                if !firstFragment { break chain }       // the upper layer is in the first fragment
            default:
                break chain                             // the upper layer (or ESP, or no next header)
            }
            headers += 1
            guard l4 <= end else { return fragmented ? .fragment : .malformed }
            guard headers <= maxExtensionHeaders else { return .uncheckable }
        }
        let srcHi = be64(f, o + 8), srcLo = be64(f, o + 16)
        let unspecified = srcHi == 0 && srcLo == 0
        if firstFragment && next == 17 {
            guard l4 + 8 <= end else { return fragmented ? .fragment : .malformed }
            if pr.contains(.dhcpNospoof) {
                let sport = be16(f, l4), dport = be16(f, l4 + 2)
                if sport == 547 || dport == 546 { return .spoofDHCP }    // a server's or relay's, or to a client
                if dport == 547 {
                    guard l4 + 9 <= end else { return fragmented ? .fragment : .malformed }
                    if isServerMessageType6(byte(f, l4 + 8)) { return .spoofDHCP }
                }
            }
        }
        guard pr.contains(.ipNospoof) else { return .pass }
        if firstFragment && next == 58 {
            guard l4 + 4 <= end else { return fragmented ? .fragment : .malformed }
            let type = byte(f, l4)
            if type >= 133 && type <= 137 {
                let v = neighbourDiscovery(f, o, l4, end, type, fragmented: fragmented, unspecified: unspecified, p)
                if v != .pass || unspecified { return v }
            } else if unspecified && (type == 131 || type == 132 || type == 143) {
                return .pass                                             // MLD while the address is tentative
            }
        } else if fragmented && firstFragment && next == 6 && l4 + 20 > end {
            return .fragment                                             // a TCP header split off (RFC 7112)
        }
        return p.allowsIPv6(srcHi, srcLo) ? .pass : .spoofIPv6
    }

    /// DHCPv6 messages only a server or relay sends: ADVERTISE, REPLY,
    /// RECONFIGURE, RELAY-FORW, RELAY-REPL, LEASEQUERY-REPLY/DONE/DATA, DHCPV4-RESPONSE.
    static let serverTypes6: UInt64 = 0x23_B484   // bits 2, 7, 10, 12, 13, 15, 16, 17, 21 (a unit test derives it)
    @inline(__always)
    static func isServerMessageType6(_ t: UInt8) -> Bool { t < 64 && (UInt64(1) << UInt64(t)) & serverTypes6 != 0 }

    /// RS, RA, NS, NA and Redirect (RFC 4861) at `l4`; `.pass` lets the source
    /// check decide (a DAD probe or a solicitation from :: passes here for good).
    @inline(__always)
    static func neighbourDiscovery<P: SourcePolicy>(_ f: UnsafeRawPointer, _ o: Int, _ l4: Int, _ end: Int, _ type: UInt8,
                                                     fragmented: Bool, unspecified: Bool, _ p: P) -> SpoofVerdict {
        if fragmented { return .fragment }                               // RFC 6980
        if (type == 134 || type == 137) && p.raGuard { return .raGuard } // RFC 6105
        if byte(f, o + 7) != 255 { return .spoofND }                     // hop limit: from the link itself
        // Fixed part: RS 8, RA 16, NS and NA 24, Redirect 40 bytes, then options.
        let fixed = type == 133 ? 8 : type == 134 ? 16 : type == 137 ? 40 : 24
        guard l4 + fixed <= end else { return .malformed }
        if unspecified && type != 133 && type != 135 { return .spoofIPv6 }   // only RS and DAD probes come from ::
        if type == 136 || (type == 135 && unspecified) {
            // An advertisement, or a DAD probe, claims its target: it must be the
            // VNIC's. (A plain solicitation's target is the neighbour asked about.)
            if !p.allowsIPv6(be64(f, l4 + 8), be64(f, l4 + 16)) { return .spoofND }
        }
        // Options: a source (1) or target (2) link-layer address must be the VNIC's MAC.
        var opt = l4 + fixed
        while opt < end {
            guard opt + 2 <= end else { return .malformed }
            let kind = byte(f, opt), units = Int(byte(f, opt + 1))
            guard units > 0, opt + units * 8 <= end else { return .malformed }
            if kind == 1 || kind == 2 {
                if unspecified && kind == 1 { return .spoofND }          // none from :: (RFC 4861 4.1, 4.3)
                if MACKey.load(f + opt + 2) != p.mac { return .spoofND }
            }
            opt += units * 8
        }
        return .pass
    }

    /// The interface identifier (modified EUI-64) of a MAC given as `MACKey`.
    @inline(__always)
    static func eui64(_ key: UInt64) -> UInt64 {
        // MACKey holds the octets little-endian: octet i at bits 8i..8i+7.
        let b0 = (key & 0xFF) ^ 0x02, b1 = key >> 8 & 0xFF, b2 = key >> 16 & 0xFF
        let b3 = key >> 24 & 0xFF, b4 = key >> 32 & 0xFF, b5 = key >> 40 & 0xFF
        return b0 << 56 | b1 << 48 | b2 << 40 | 0xFF << 32 | 0xFE << 24 | b3 << 16 | b4 << 8 | b5
    }
}

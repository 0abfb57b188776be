// AntiSpoof: the checks on every frame a VM sends, by its VNIC's `protection`
// (dladm's values). Pure functions over the frame's bytes: no allocation, every
// read bounds-checked against the frame length, so a malformed frame (truncated
// headers, bad IHL, lengths that lie) is a verdict, never a crash or a read past
// the frame.
//
// IPv6: a VNIC's own addresses are its EUI-64 link-local address (what Linux
// makes by default, and what OpenStack port security allows) and its allowed-ips.
//
// Order: malformed Ethernet -> mac-nospoof -> restricted -> per protocol
// (ARP, IPv4 with DHCP, IPv6 with ND/DAD/DHCPv6). One VLAN tag (802.1Q/802.1ad)
// is looked through, so a tag does not hide what it carries.
import CVnicShim
import VnicCore

/// The verdict on one outbound frame; raw values index the drop counters.
public enum SpoofVerdict: UInt32, Sendable {
    case pass = 0xFFFF_FFFF
    case spoofMAC = 0, malformed, spoofIP, spoofARP, spoofIPv6, spoofDHCP, restricted
}

/// What the checks compare a frame against. Generic (specialised, never an
/// existential): the worker passes a view of the VNIC's database record read for
/// the burst (`RecordPolicy`), tests and fallbacks pass `SpoofPolicy`.
public protocol SourcePolicy {
    /// The VNIC's MAC as `MACKey`.
    var mac: UInt64 { get }
    var protection: Protection { get }
    /// Whether an IPv4 source (host order) is the VNIC's (ip-nospoof).
    func allowsIPv4(_ address: UInt32) -> Bool
    /// Whether an IPv6 source or ND target is the VNIC's (ip-nospoof).
    func allowsIPv6(_ hi: UInt64, _ lo: UInt64) -> Bool
}

/// A policy in caller-owned memory: the VNIC's MAC (as `MACKey`), its
/// protection, and the IPv4 prefixes it may use as a source (no ARC on the path).
public struct SpoofPolicy: SourcePolicy {
    public var mac: UInt64
    public var protection: Protection
    /// (network, mask) pairs in host order.
    public var ipv4: UnsafePointer<(UInt32, UInt32)>
    public var ipv4Count: Int
    /// IPv6 prefixes it may use besides its EUI-64 link-local address:
    /// (network high, network low, mask high, mask low).
    public var ipv6: UnsafePointer<(UInt64, UInt64, UInt64, UInt64)>
    public var ipv6Count: Int
    public init(mac: UInt64, protection: Protection, ipv4: UnsafePointer<(UInt32, UInt32)>, ipv4Count: Int,
                ipv6: UnsafePointer<(UInt64, UInt64, UInt64, UInt64)>, ipv6Count: Int) {
        self.mac = mac; self.protection = protection; self.ipv4 = ipv4; self.ipv4Count = ipv4Count
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

public enum AntiSpoof {
    static let ethIPv4: UInt16 = 0x0800, ethARP: UInt16 = 0x0806, ethIPv6: UInt16 = 0x86DD
    static let ethVLAN: UInt16 = 0x8100, ethQinQ: UInt16 = 0x88A8

    /// The verdict on a frame of `len` bytes a VM sent.
    @inline(__always)
    public static func check<P: SourcePolicy>(_ f: UnsafeRawPointer, len: Int, _ p: P) -> SpoofVerdict {
        guard len >= 14 else { return .malformed }
        if p.protection.contains(.macNospoof), MACKey.load(f + 6) != p.mac { return .spoofMAC }
        var l3 = 14
        var type = be16(f, 12)
        if type == ethVLAN || type == ethQinQ {
            guard len >= 18 else { return .malformed }
            type = be16(f, 16)
            l3 = 18
        }
        switch type {
        case ethIPv4: return ipv4(f, l3, len, p)
        case ethARP: return arp(f, l3, len, p)
        case ethIPv6: return ipv6(f, l3, len, p)
        default: return p.protection.contains(.restricted) ? .restricted : .pass
        }
    }

    // MARK: ARP

    @inline(__always)
    static func arp<P: SourcePolicy>(_ f: UnsafeRawPointer, _ o: Int, _ len: Int, _ p: P) -> SpoofVerdict {
        guard p.protection.contains(.ipNospoof) else { return .pass }
        guard len >= o + 28 else { return .malformed }
        // Ethernet/IPv4 ARP only: hardware 1, protocol 0x0800, sizes 6 and 4.
        guard be16(f, o) == 1, be16(f, o + 2) == ethIPv4, f.load(fromByteOffset: o + 4, as: UInt8.self) == 6,
              f.load(fromByteOffset: o + 5, as: UInt8.self) == 4 else { return .spoofARP }
        if MACKey.load(f + o + 8) != p.mac { return .spoofARP }          // sender MAC
        let spa = be32(f, o + 14)                                         // sender IP
        if spa != 0 && !p.allowsIPv4(spa) { return .spoofARP }           // 0: an RFC 5227 probe
        return .pass
    }

    // MARK: IPv4

    @inline(__always)
    static func ipv4<P: SourcePolicy>(_ f: UnsafeRawPointer, _ o: Int, _ len: Int, _ p: P) -> SpoofVerdict {
        guard len >= o + 20 else { return .malformed }
        let vihl = f.load(fromByteOffset: o, as: UInt8.self)
        let ihl = Int(vihl & 0x0F) * 4
        let total = Int(be16(f, o + 2))
        guard vihl >> 4 == 4, ihl >= 20, total >= ihl, o + total <= len else { return .malformed }
        let proto = f.load(fromByteOffset: o + 9, as: UInt8.self)
        let src = be32(f, o + 12)
        // UDP: DHCP is looked at before the source (a client starts from 0.0.0.0).
        var dhcpClient = false
        if proto == 17 && be16(f, o + 6) & 0x1FFF == 0 {                 // first fragment only
            let u = o + ihl
            guard o + total >= u + 8 else { return .malformed }
            let sport = be16(f, u), dport = be16(f, u + 2), ulen = Int(be16(f, u + 4))
            guard ulen >= 8, u + ulen <= o + total else { return .malformed }
            if p.protection.contains(.dhcpNospoof) {
                if sport == 67 { return .spoofDHCP }                      // a server (or relay) reply
                if sport == 68 && dport == 67 {
                    let v = dhcpClientMessage(f, u + 8, u + ulen, p)
                    if v != .pass { return v }
                }
            }
            dhcpClient = sport == 68 && dport == 67
        }
        if p.protection.contains(.ipNospoof) && !p.allowsIPv4(src) && !(src == 0 && dhcpClient) {
            return .spoofIP
        }
        return .pass
    }

    /// A DHCP client message in [start, end): its hardware address, and a client
    /// identifier of type 1 (Ethernet) if present, must be the VNIC's MAC. Other
    /// client-id types (RFC 4361 DUIDs) cannot be tied to the MAC and pass.
    @inline(__always)
    static func dhcpClientMessage<P: SourcePolicy>(_ f: UnsafeRawPointer, _ start: Int, _ end: Int, _ p: P) -> SpoofVerdict {
        guard end >= start + 240 else { return .malformed }
        guard f.load(fromByteOffset: start, as: UInt8.self) == 1 else { return .spoofDHCP }   // op BOOTREQUEST
        let htype = f.load(fromByteOffset: start + 1, as: UInt8.self), hlen = f.load(fromByteOffset: start + 2, as: UInt8.self)
        guard htype == 1, hlen == 6, MACKey.load(f + start + 28) == p.mac else { return .spoofDHCP }
        guard be32(f, start + 236) == 0x6382_5363 else { return .malformed }                  // magic cookie
        var o = start + 240
        while o < end {
            let code = f.load(fromByteOffset: o, as: UInt8.self)
            if code == 255 { break }
            if code == 0 { o += 1; continue }
            guard o + 2 <= end else { return .malformed }
            let n = Int(f.load(fromByteOffset: o + 1, as: UInt8.self))
            guard o + 2 + n <= end else { return .malformed }
            if code == 61 && n == 7 && f.load(fromByteOffset: o + 2, as: UInt8.self) == 1 {
                if MACKey.load(f + o + 3) != p.mac { return .spoofDHCP }
            }
            o += 2 + n
        }
        return .pass
    }

    // MARK: IPv6

    @inline(__always)
    static func ipv6<P: SourcePolicy>(_ f: UnsafeRawPointer, _ o: Int, _ len: Int, _ p: P) -> SpoofVerdict {
        guard len >= o + 40 else { return .malformed }
        guard f.load(fromByteOffset: o, as: UInt8.self) >> 4 == 6 else { return .malformed }
        let end = o + 40 + Int(be16(f, o + 4))
        guard end <= len else { return .malformed }
        // The upper layer, past a hop-by-hop header (MLD carries one).
        var next = f.load(fromByteOffset: o + 6, as: UInt8.self)
        var l4 = o + 40
        if next == 0 {
            guard l4 + 8 <= end else { return .malformed }
            next = f.load(fromByteOffset: l4, as: UInt8.self)
            l4 += (Int(f.load(fromByteOffset: l4 + 1, as: UInt8.self)) + 1) * 8
            guard l4 <= end else { return .malformed }
        }
        if p.protection.contains(.dhcpNospoof) && next == 17 {
            guard l4 + 8 <= end else { return .malformed }
            if be16(f, l4) == 547 { return .spoofDHCP }                   // a DHCPv6 server/relay
        }
        guard p.protection.contains(.ipNospoof) else { return .pass }
        let srcHi = UInt64(bigEndian: f.loadUnaligned(fromByteOffset: o + 8, as: UInt64.self))
        let srcLo = UInt64(bigEndian: f.loadUnaligned(fromByteOffset: o + 16, as: UInt64.self))
        if next == 58 {
            guard l4 + 4 <= end else { return .malformed }
            let icmpType = f.load(fromByteOffset: l4, as: UInt8.self)
            // An advertisement, or a duplicate-address probe (from ::), claims its
            // target: it must be one of the VNIC's. (A plain solicitation's target is
            // the neighbour asked about.)
            let unspecified = srcHi == 0 && srcLo == 0
            if icmpType == 136 || (icmpType == 135 && unspecified) {
                guard l4 + 24 <= end else { return .malformed }
                let tHi = UInt64(bigEndian: f.loadUnaligned(fromByteOffset: l4 + 8, as: UInt64.self))
                let tLo = UInt64(bigEndian: f.loadUnaligned(fromByteOffset: l4 + 16, as: UInt64.self))
                if !p.allowsIPv6(tHi, tLo) { return .spoofIPv6 }
                if unspecified { return .pass }                                      // DAD
            }
            if unspecified && icmpType == 143 { return .pass }    // MLDv2 report while the address is tentative
        }
        return p.allowsIPv6(srcHi, srcLo) ? .pass : .spoofIPv6
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

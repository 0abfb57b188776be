// IPv6 addresses, interfaces and networks: parsed from RFC 4291 section 2.2
// text (`fd00::11`, `2001:db8:0:1::/64`, `::ffff:10.0.0.1`), printed in the
// RFC 5952 canonical form (lower case, the longest run of two or more zero
// groups as `::`, the first such run on a tie), so what is stored prints one way.

/// An IPv6 address as two 64-bit halves in host order (`hi` holds the first 8 bytes).
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var hi: UInt64
    public var lo: UInt64

    public init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }

    /// The address as one 128-bit number (policy matching).
    public var value: UInt128 { UInt128(hi) << 64 | UInt128(lo) }
    public init(value: UInt128) { hi = UInt64(truncatingIfNeeded: value >> 64); lo = UInt64(truncatingIfNeeded: value) }

    /// The 16 bytes in wire order.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: hi >> (56 - 8 * UInt64($0))) }
            + (0..<8).map { UInt8(truncatingIfNeeded: lo >> (56 - 8 * UInt64($0))) }
    }

    /// From 16 bytes in wire order; nil when `b` is not 16 bytes.
    public init?(bytes b: some Collection<UInt8>) {
        guard b.count == 16 else { return nil }
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, x) in b.enumerated() {
            if i < 8 { h = h << 8 | UInt64(x) } else { l = l << 8 | UInt64(x) }
        }
        hi = h; lo = l
    }

    /// Parses RFC 4291 text: eight groups of 1-4 hex digits, one `::` for a run
    /// of zero groups, optionally a dotted IPv4 address as the last 32 bits. No
    /// zone (`%eth0`), no brackets.
    public init?(_ text: some StringProtocol) {
        let s = Substring(text)
        guard !s.isEmpty, s.utf8.count <= 45, s.contains(":") else { return nil }
        var head: [UInt16] = [], tail: [UInt16] = []
        let halves = s.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring, allowIPv4: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            var out: [UInt16] = []
            for (i, item) in items.enumerated() {
                if i == items.count - 1 && allowIPv4 && item.contains(".") {
                    guard let v4 = IPv4Address(item) else { return nil }
                    out.append(UInt16(v4.rawValue >> 16)); out.append(UInt16(v4.rawValue & 0xFFFF))
                    continue
                }
                guard (1...4).contains(item.count), item.allSatisfy(\.isHexDigit), let g = UInt16(item, radix: 16) else { return nil }
                out.append(g)
            }
            return out
        }
        if halves.count == 1 {
            guard let g = groups(halves[0], allowIPv4: true), g.count == 8 else { return nil }
            head = g
        } else {
            guard let h = groups(halves[0], allowIPv4: false), let t = groups(halves[1], allowIPv4: true),
                  h.count + t.count <= 7 else { return nil }
            head = h; tail = t
        }
        let all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, g) in all.enumerated() {
            if i < 4 { h = h << 16 | UInt64(g) } else { l = l << 16 | UInt64(g) }
        }
        hi = h; lo = l
    }

    /// `ADDRESS` (prefix 128) or `ADDRESS/LEN` with LEN 0...128 written without
    /// leading zeros: the text form of IPv6Interface and IPv6CIDR.
    public static func parseWithPrefix(_ text: some StringProtocol) -> (IPv6Address, UInt8)? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let a = IPv6Address(parts[0]) else { return nil }
        guard parts.count == 2 else { return (a, 128) }
        return IPv4Address.prefixLength(parts[1], max: 128).map { (a, $0) }
    }

    /// The eight 16-bit groups.
    public var groups: [UInt16] {
        (0..<4).map { UInt16(truncatingIfNeeded: hi >> (48 - 16 * UInt64($0))) }
            + (0..<4).map { UInt16(truncatingIfNeeded: lo >> (48 - 16 * UInt64($0))) }
    }

    /// RFC 5952 text.
    public var description: String {
        let g = groups
        var bestStart = -1, bestLength = 1, i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLength { bestStart = i; bestLength = j - i }
                i = j
            } else {
                i += 1
            }
        }
        func hex(_ r: ArraySlice<UInt16>) -> String { r.map { String($0, radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(g[...]) }
        return hex(g[..<bestStart]) + "::" + hex(g[(bestStart + bestLength)...])
    }

    public static func < (a: IPv6Address, b: IPv6Address) -> Bool { (a.hi, a.lo) < (b.hi, b.lo) }

    /// fe80::/10.
    public var isLinkLocal: Bool { hi >> 54 == 0x3FA }
    /// ff00::/8.
    public var isMulticast: Bool { hi >> 56 == 0xFF }
    /// An address a VM may own as its global or unique local address: not ::,
    /// not ::1, not IPv4-compatible or -mapped (::/80 and ::ffff:0:0/96), not
    /// multicast, not link-local (every VNIC has its own, from its MAC).
    public var isUnicastHost: Bool {
        !(hi == 0 && lo >> 48 == 0) && !(hi == 0 && lo >> 32 == 0xFFFF) && !isMulticast && !isLinkLocal
    }

    /// The modified EUI-64 interface identifier of a MAC (RFC 4291 appendix A).
    public static func interfaceIdentifier(_ mac: MACAddress) -> UInt64 {
        let m = mac.rawValue   // the 48 bits, first octet highest
        let upper = (m >> 24) ^ 0x02_0000, lower = m & 0xFF_FFFF
        return upper << 40 | 0xFF_FE00_0000 | lower
    }

    /// The VNIC's link-local address: fe80::/64 with its MAC's EUI-64.
    public static func linkLocal(_ mac: MACAddress) -> IPv6Address {
        IPv6Address(hi: 0xFE80_0000_0000_0000, lo: interfaceIdentifier(mac))
    }
}

/// An interface address: an IPv6 address with its prefix length (`fd00::11/64`).
/// A /64 whose interface identifier is zero (`fd00:77::/64`) names a prefix the
/// VM configures itself in by SLAAC (its address is the prefix and its MAC's EUI-64).
public struct IPv6Interface: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv6Address
    public var prefixLength: UInt8

    public init(address: IPv6Address, prefixLength: UInt8) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `ADDRESS/LEN` (LEN 0...128); a bare address means /128.
    public init?(_ text: some StringProtocol) {
        guard let (a, len) = IPv6Address.parseWithPrefix(text) else { return nil }
        self.init(address: a, prefixLength: len)
    }

    /// Whether this names a SLAAC prefix (a /64 with no interface identifier).
    public var isSLAACPrefix: Bool { prefixLength == 64 && address.lo == 0 }

    /// The address the VM has in it: its own, or for a SLAAC prefix the prefix with `mac`'s EUI-64.
    public func address(for mac: MACAddress) -> IPv6Address {
        isSLAACPrefix ? IPv6Address(hi: address.hi, lo: IPv6Address.interfaceIdentifier(mac)) : address
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// An IPv6 network: an address with its prefix length and no host bits set
/// (`fd00:77::/64`; an address alone is a /128).
public struct IPv6CIDR: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let network: IPv6Address
    public let prefixLength: UInt8

    /// nil when `prefixLength` > 128 or `network` has host bits set.
    public init?(network: IPv6Address, prefixLength: UInt8) {
        guard prefixLength <= 128 else { return nil }
        let (mh, ml) = IPv6CIDR.mask(prefixLength)
        guard network.hi & ~mh == 0, network.lo & ~ml == 0 else { return nil }
        self.network = network
        self.prefixLength = prefixLength
    }

    public init?(_ text: some StringProtocol) {
        guard let (a, len) = IPv6Address.parseWithPrefix(text) else { return nil }
        self.init(network: a, prefixLength: len)
    }

    /// The network of `prefixLength` bits that contains `address`.
    public static func network(containing a: IPv6Address, prefixLength: UInt8) -> IPv6CIDR {
        let len = min(prefixLength, 128)
        let (mh, ml) = mask(len)
        return IPv6CIDR(network: IPv6Address(hi: a.hi & mh, lo: a.lo & ml), prefixLength: len)!
    }

    /// The mask of a prefix length as (high, low) halves.
    @inlinable
    public static func mask(_ prefixLength: UInt8) -> (UInt64, UInt64) {
        let n = UInt64(min(prefixLength, 128))
        let h: UInt64 = n == 0 ? 0 : n >= 64 ? .max : UInt64.max << (64 - n)
        let l: UInt64 = n <= 64 ? 0 : n == 128 ? .max : UInt64.max << (128 - n)
        return (h, l)
    }

    public var first: IPv6Address { network }
    public var last: IPv6Address {
        let (mh, ml) = IPv6CIDR.mask(prefixLength)
        return IPv6Address(hi: network.hi | ~mh, lo: network.lo | ~ml)
    }

    public func contains(_ a: IPv6Address) -> Bool {
        let (mh, ml) = IPv6CIDR.mask(prefixLength)
        return a.hi & mh == network.hi && a.lo & ml == network.lo
    }

    /// `fd00:77::/64`; a /128 prints as the bare address.
    public var description: String { prefixLength == 128 ? network.description : "\(network)/\(prefixLength)" }

    public static func < (a: IPv6CIDR, b: IPv6CIDR) -> Bool { (a.network, a.prefixLength) < (b.network, b.prefixLength) }
}

extension Substring {
    /// Splits at every `::` (text with three or more such parts is not an address).
    fileprivate func components(separatedByDoubleColon _: Void) -> [Substring] {
        var parts: [Substring] = []
        var start = startIndex, i = startIndex
        while i < endIndex {
            let n = index(after: i)
            if self[i] == ":" && n < endIndex && self[n] == ":" {
                parts.append(self[start..<i])
                start = index(after: n)
                i = start
                // ":::" is not valid: the next character may not be another ':'
                if i < endIndex && self[i] == ":" { return [self, self, self] }
                continue
            }
            i = n
        }
        parts.append(self[start..<endIndex])
        return parts
    }
}

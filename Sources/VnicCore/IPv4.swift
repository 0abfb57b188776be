/// An IPv4 address in host order (10.0.0.1 is 0x0A000001).
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Parses dotted-quad text; rejects leading zeros that would read as octal elsewhere.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard (1...3).contains(p.count), p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  !(p.count > 1 && p.first == "0"), let o = UInt8(p) else { return nil }
            v = v << 8 | UInt32(o)
        }
        rawValue = v
    }

    /// `A.B.C.D` (prefix 32) or `A.B.C.D/LEN` with LEN 0...32 written without
    /// leading zeros: the text form of IPv4Interface and IPv4CIDR.
    public static func parseWithPrefix(_ text: some StringProtocol) -> (IPv4Address, UInt8)? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let a = IPv4Address(parts[0]) else { return nil }
        guard parts.count == 2 else { return (a, 32) }
        return prefixLength(parts[1], max: 32).map { (a, $0) }
    }

    /// A prefix length 0...`max` in decimal without leading zeros (IPv4 and IPv6 text).
    static func prefixLength(_ l: some StringProtocol, max: UInt8) -> UInt8? {
        guard (1...3).contains(l.count), l.allSatisfy({ $0.isASCII && $0.isNumber }), !(l.count > 1 && l.first == "0"),
              let len = UInt8(l), len <= max else { return nil }
        return len
    }

    public var description: String {
        "\(rawValue >> 24).\(rawValue >> 16 & 0xFF).\(rawValue >> 8 & 0xFF).\(rawValue & 0xFF)"
    }
    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.rawValue < b.rawValue }
}

/// An interface address: an IPv4 address with its prefix length (`10.77.0.11/24`).
public struct IPv4Interface: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var prefixLength: UInt8

    public init(address: IPv4Address, prefixLength: UInt8) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `A.B.C.D/LEN` (LEN 0...32); a bare address means /32.
    public init?(_ text: some StringProtocol) {
        guard let (a, len) = IPv4Address.parseWithPrefix(text) else { return nil }
        self.init(address: a, prefixLength: len)
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

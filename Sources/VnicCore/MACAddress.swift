/// An Ethernet MAC address, stored in the low 48 bits of a UInt64 in wire order
/// (the first octet is the most significant byte of the 48).
public struct MACAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue & 0xFFFF_FFFF_FFFF }

    public init(bytes b: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) {
        rawValue = UInt64(b.0) << 40 | UInt64(b.1) << 32 | UInt64(b.2) << 24
            | UInt64(b.3) << 16 | UInt64(b.4) << 8 | UInt64(b.5)
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (or all `-` separated; one or two hex digits per
    /// octet). Signs, `0x` prefixes, spaces and mixed separators are rejected.
    public init?(_ text: some StringProtocol) {
        let separator: Character = text.contains(":") ? ":" : "-"
        let parts = text.split(separator: separator, omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var value: UInt64 = 0
        for part in parts {
            // UInt8(_:radix:) alone would accept "+f": insist on hex digits.
            guard (1...2).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isHexDigit }),
                  let o = UInt8(part, radix: 16) else { return nil }
            value = value << 8 | UInt64(o)
        }
        rawValue = value
    }

    /// The six octets in wire order.
    public var bytes: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: rawValue >> (40 - 8 * UInt64($0))) } }

    public var isMulticast: Bool { (rawValue >> 40) & 1 == 1 }
    public var isBroadcast: Bool { rawValue == 0xFFFF_FFFF_FFFF }
    public var isZero: Bool { rawValue == 0 }
    /// A unicast, non-zero address: what a VNIC may own.
    public var isAssignableUnicast: Bool { !isMulticast && !isZero }

    /// A random locally administered unicast address (02:xx:...).
    public static func random<G: RandomNumberGenerator>(using g: inout G) -> MACAddress {
        var v = UInt64.random(in: 0...0xFFFF_FFFF_FFFF, using: &g)
        v &= ~(UInt64(0x01) << 40)   // unicast
        v |= UInt64(0x02) << 40      // locally administered
        return MACAddress(rawValue: v)
    }
    public static func random() -> MACAddress { var g = SystemRandomNumberGenerator(); return random(using: &g) }

    public var description: String {
        bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }

    public static func < (a: MACAddress, b: MACAddress) -> Bool { a.rawValue < b.rawValue }
}

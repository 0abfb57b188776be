// FrameBuilder: builds Ethernet/IPv4/UDP frames as bytes (generators, golden test
// frames). Checksums are computed; UDP's is left 0, which IPv4 allows.

public enum FrameBuilder {
    public static let ethernetHeader = 14
    public static let ipv4Header = 20
    public static let udpHeader = 8
    /// Bytes before the UDP payload.
    public static let headers = ethernetHeader + ipv4Header + udpHeader

    /// An Ethernet II + IPv4 + UDP frame of exactly `length` bytes (no FCS), the
    /// payload zero-filled. `length` must be at least `headers`.
    public static func udp(dst: MACAddress, src: MACAddress, srcIP: IPv4Address, dstIP: IPv4Address,
                           srcPort: UInt16, dstPort: UInt16, length: Int, ttl: UInt8 = 64) -> [UInt8] {
        precondition(length >= headers && length <= 65535 + ethernetHeader)
        var f = [UInt8](repeating: 0, count: length)
        f.replaceSubrange(0..<6, with: dst.bytes)
        f.replaceSubrange(6..<12, with: src.bytes)
        f[12] = 0x08; f[13] = 0x00
        let ipLen = length - ethernetHeader
        var ip: [UInt8] = [0x45, 0, UInt8(ipLen >> 8), UInt8(ipLen & 0xFF), 0, 0, 0x40, 0, ttl, 17, 0, 0]
        ip += be32(srcIP.rawValue) + be32(dstIP.rawValue)
        let sum = checksum(ip)
        ip[10] = UInt8(sum >> 8); ip[11] = UInt8(sum & 0xFF)
        f.replaceSubrange(14..<34, with: ip)
        let udpLen = ipLen - ipv4Header
        f.replaceSubrange(34..<42, with: be16(srcPort) + be16(dstPort) + be16(UInt16(udpLen)) + [0, 0])
        return f
    }

    /// The Internet checksum (RFC 1071) of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count { sum &+= UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
        if i < bytes.count { sum &+= UInt32(bytes[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) &+ (sum >> 16) }
        return ~UInt16(sum)
    }

    public static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    public static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
}

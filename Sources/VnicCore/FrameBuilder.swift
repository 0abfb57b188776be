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

    /// An Ethernet II frame: header and payload, padded to the 60-byte minimum.
    public static func ethernet(dst: MACAddress, src: MACAddress, type: UInt16, payload: [UInt8]) -> [UInt8] {
        var f = dst.bytes + src.bytes + be16(type) + payload
        if f.count < 60 { f += [UInt8](repeating: 0, count: 60 - f.count) }
        return f
    }

    /// An Ethernet/IPv4 ARP message (RFC 826): op 1 request, 2 reply.
    public static func arp(op: UInt16, src: MACAddress, dst: MACAddress, senderMAC: MACAddress, senderIP: IPv4Address,
                           targetMAC: MACAddress, targetIP: IPv4Address) -> [UInt8] {
        let body = be16(1) + be16(0x0800) + [6, 4] + be16(op) + senderMAC.bytes + be32(senderIP.rawValue)
            + targetMAC.bytes + be32(targetIP.rawValue)
        return ethernet(dst: dst, src: src, type: 0x0806, payload: body)
    }

    /// An IPv6 UDP datagram (RFC 8200) with a zero payload of `payloadLength` bytes;
    /// addresses are 16 bytes each. The UDP checksum is left 0 (the checks here
    /// do not verify it).
    public static func ipv6UDP(dst: MACAddress, src: MACAddress, srcIP: [UInt8], dstIP: [UInt8],
                               srcPort: UInt16, dstPort: UInt16, payloadLength: Int = 8) -> [UInt8] {
        precondition(srcIP.count == 16 && dstIP.count == 16)
        let udpLen = 8 + payloadLength
        let ip: [UInt8] = [0x60, 0, 0, 0] + be16(UInt16(udpLen)) + [17, 64] + srcIP + dstIP
        let udp = be16(srcPort) + be16(dstPort) + be16(UInt16(udpLen)) + [0, 0] + [UInt8](repeating: 0, count: payloadLength)
        return ethernet(dst: dst, src: src, type: 0x86DD, payload: ip + udp)
    }

    /// A DHCP message (RFC 2131) over IPv4/UDP: `op` 1 from a client (68 -> 67),
    /// 2 from a server (67 -> 68); htype 1, hlen 6, `chaddr`, the magic cookie,
    /// then `options` (message type first, e.g. [53, 1, 1] for DISCOVER) and end.
    public static func dhcp(op: UInt8, src: MACAddress, dst: MACAddress, srcIP: IPv4Address, dstIP: IPv4Address,
                            chaddr: MACAddress, options: [UInt8]) -> [UInt8] {
        let sport: UInt16 = op == 1 ? 68 : 67
        var f = udp(dst: dst, src: src, srcIP: srcIP, dstIP: dstIP, srcPort: sport, dstPort: sport == 68 ? 67 : 68,
                    length: headers + 240 + options.count + 1)
        f[42] = op; f[43] = 1; f[44] = 6
        f.replaceSubrange(70..<76, with: chaddr.bytes)
        f.replaceSubrange(278..<282, with: [0x63, 0x82, 0x53, 0x63])
        f.replaceSubrange(282..<(282 + options.count), with: options)
        f[282 + options.count] = 255
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

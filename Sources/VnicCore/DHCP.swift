// DHCP (RFC 2131/2132) messages as vnic's DHCPv4 server reads and writes them:
// the BOOTP fixed part, the magic cookie, options as type-length-value. The
// parser is bounded (every length checked against the datagram); anything
// that does not hold is nil, which the caller counts as malformed.

public struct DHCPMessage: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        case discover = 1, offer, request, decline, ack, nak, release, inform, forceRenew
    }

    public var op: UInt8 = 2
    public var xid: UInt32 = 0
    public var secs: UInt16 = 0
    public var flags: UInt16 = 0
    public var ciaddr = IPv4Address(rawValue: 0)
    public var yiaddr = IPv4Address(rawValue: 0)
    public var siaddr = IPv4Address(rawValue: 0)
    public var giaddr = IPv4Address(rawValue: 0)
    public var chaddr = MACAddress(rawValue: 0)
    /// Options in the order they came (or are to be written), pad and end excluded.
    public var options: [(code: UInt8, value: [UInt8])] = []

    public init() {}

    public static let bootpSize = 236
    public static let magic: [UInt8] = [0x63, 0x82, 0x53, 0x63]

    public static func == (a: DHCPMessage, b: DHCPMessage) -> Bool {
        a.op == b.op && a.xid == b.xid && a.secs == b.secs && a.flags == b.flags && a.ciaddr == b.ciaddr
            && a.yiaddr == b.yiaddr && a.siaddr == b.siaddr && a.giaddr == b.giaddr && a.chaddr == b.chaddr
            && a.options.map(\.code) == b.options.map(\.code) && a.options.map(\.value) == b.options.map(\.value)
    }

    /// The first value of option `code`.
    public func option(_ code: UInt8) -> [UInt8]? { options.first { $0.code == code }?.value }

    /// Option 53, the message type.
    public var kind: Kind? { option(53).flatMap { $0.count == 1 ? Kind(rawValue: $0[0]) : nil } }

    /// Option 50, the address the client asks for.
    public var requestedAddress: IPv4Address? { option(50).flatMap(Self.address) }

    /// Option 54, the server the client answers.
    public var serverIdentifier: IPv4Address? { option(54).flatMap(Self.address) }

    /// Whether the client asked for broadcast replies (flags bit 15).
    public var broadcast: Bool { flags & 0x8000 != 0 }

    static func address(_ v: [UInt8]) -> IPv4Address? {
        v.count == 4 ? IPv4Address(rawValue: UInt32(v[0]) << 24 | UInt32(v[1]) << 16 | UInt32(v[2]) << 8 | UInt32(v[3])) : nil
    }

    /// Parses a DHCP datagram (the UDP payload); nil when it is not one: too
    /// short, not Ethernet/6-byte hardware addresses, no magic cookie, an option
    /// running past the end, no end option, or no valid message type.
    public static func parse<C: RandomAccessCollection>(_ bytes: C) -> DHCPMessage? where C.Element == UInt8, C.Index == Int {
        let b = bytes.startIndex
        guard bytes.count >= bootpSize + 4 + 1 else { return nil }
        func u8(_ o: Int) -> UInt8 { bytes[b + o] }
        func u16(_ o: Int) -> UInt16 { UInt16(u8(o)) << 8 | UInt16(u8(o + 1)) }
        func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) << 16 | UInt32(u16(o + 2)) }
        guard u8(1) == 1, u8(2) == 6, u8(0) == 1 || u8(0) == 2 else { return nil }
        guard (0..<4).allSatisfy({ u8(bootpSize + $0) == magic[$0] }) else { return nil }
        var m = DHCPMessage()
        m.op = u8(0); m.xid = u32(4); m.secs = u16(8); m.flags = u16(10)
        m.ciaddr = IPv4Address(rawValue: u32(12)); m.yiaddr = IPv4Address(rawValue: u32(16))
        m.siaddr = IPv4Address(rawValue: u32(20)); m.giaddr = IPv4Address(rawValue: u32(24))
        m.chaddr = MACAddress(bytes: (u8(28), u8(29), u8(30), u8(31), u8(32), u8(33)))
        var o = bootpSize + 4
        var ended = false
        while o < bytes.count {
            let code = u8(o)
            if code == 0 { o += 1; continue }
            if code == 255 { ended = true; break }
            guard o + 1 < bytes.count else { return nil }
            let len = Int(u8(o + 1))
            guard o + 2 + len <= bytes.count else { return nil }
            m.options.append((code, (0..<len).map { u8(o + 2 + $0) }))
            o += 2 + len
        }
        guard ended, m.kind != nil else { return nil }
        return m
    }

    /// The datagram: fixed part, cookie, options, end, padded to the 300-byte
    /// BOOTP minimum some clients expect.
    public func encoded() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.bootpSize)
        out[0] = op; out[1] = 1; out[2] = 6
        func put32(_ v: UInt32, _ o: Int) { out.replaceSubrange(o..<(o + 4), with: FrameBuilder.be32(v)) }
        put32(xid, 4)
        out.replaceSubrange(8..<10, with: FrameBuilder.be16(secs))
        out.replaceSubrange(10..<12, with: FrameBuilder.be16(flags))
        put32(ciaddr.rawValue, 12); put32(yiaddr.rawValue, 16); put32(siaddr.rawValue, 20); put32(giaddr.rawValue, 24)
        out.replaceSubrange(28..<34, with: chaddr.bytes)
        out += Self.magic
        for (code, value) in options {
            out += [code, UInt8(min(value.count, 255))] + value.prefix(255)
        }
        out.append(255)
        if out.count < 300 { out += [UInt8](repeating: 0, count: 300 - out.count) }
        return out
    }

    // MARK: reconfigure-key authentication (RFC 3118 protocol 3, HMAC-MD5; RFC 6704)

    /// Option 90 handing the client `key` (in an ACK): later FORCERENEWs are signed with it.
    public static func reconfigureKeyOption(_ key: [UInt8], replay: UInt64) -> (code: UInt8, value: [UInt8]) {
        (90, [3, 1, 0] + FrameBuilder.be32(UInt32(replay >> 32)) + FrameBuilder.be32(UInt32(truncatingIfNeeded: replay)) + [1] + key)
    }

    /// The datagram with an option 90 (protocol 3, HMAC-MD5, type 2) whose MAC
    /// is HMAC-MD5 under `key` of the whole datagram with the MAC, hops and
    /// giaddr zeroed (RFC 3118 section 5). `self` must not hold an option 90.
    public func encoded(signedWith key: [UInt8], replay: UInt64) -> [UInt8] {
        var m = self
        let header: [UInt8] = [3, 1, 0] + FrameBuilder.be32(UInt32(replay >> 32))
            + FrameBuilder.be32(UInt32(truncatingIfNeeded: replay)) + [2]
        m.options.append((90, header + [UInt8](repeating: 0, count: 16)))
        var bytes = m.encoded()
        // The MAC's place: option 90 is the last option, its 16 bytes end just before the end option.
        let end = Self.bootpSize + 4 + m.options.reduce(0) { $0 + 2 + $1.value.count }
        let mac = (end - 16)..<end
        var signed = bytes
        signed[3] = 0
        signed.replaceSubrange(24..<28, with: [0, 0, 0, 0])
        bytes.replaceSubrange(mac, with: MessageAuthentication.hmacMD5(key: key, signed))
        return bytes
    }

    /// An option holding one IPv4 address.
    public static func addressOption(_ code: UInt8, _ a: IPv4Address) -> (code: UInt8, value: [UInt8]) {
        (code, FrameBuilder.be32(a.rawValue))
    }

    /// An option holding a 32-bit number (lease times).
    public static func u32Option(_ code: UInt8, _ v: UInt32) -> (code: UInt8, value: [UInt8]) {
        (code, FrameBuilder.be32(v))
    }
}

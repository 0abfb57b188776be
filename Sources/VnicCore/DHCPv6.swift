// DHCPv6 (RFC 8415) as vnic's server needs it: the message (type, transaction
// id, options), the options it reads and writes (client and server
// identifiers, IA_NA with its addresses, status codes), and the IPv6/UDP frame
// around it. Parsing is bounds-checked and returns nil on anything malformed.

public struct DHCPv6Message: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        case solicit = 1, advertise, request, confirm, renew, rebind, reply, release, decline, reconfigure
        case informationRequest = 11
    }

    public enum Option {
        public static let clientID: UInt16 = 1, serverID: UInt16 = 2, iaNA: UInt16 = 3, iaAddress: UInt16 = 5
        public static let optionRequest: UInt16 = 6, elapsedTime: UInt16 = 8, statusCode: UInt16 = 13, rapidCommit: UInt16 = 14
    }

    public enum Status: UInt16, Sendable {
        case success = 0, unspecFail = 1, noAddrsAvail = 2, noBinding = 3, notOnLink = 4
    }

    /// An identity association for non-temporary addresses (RFC 8415 21.4).
    public struct IANA: Equatable, Sendable {
        public var iaid: UInt32
        public var t1: UInt32
        public var t2: UInt32
        /// Addresses with their preferred and valid lifetimes (seconds).
        public var addresses: [(address: IPv6Address, preferred: UInt32, valid: UInt32)]
        public var status: (Status, String)?

        public init(iaid: UInt32, t1: UInt32 = 0, t2: UInt32 = 0, addresses: [(address: IPv6Address, preferred: UInt32, valid: UInt32)] = [],
                    status: (Status, String)? = nil) {
            self.iaid = iaid; self.t1 = t1; self.t2 = t2; self.addresses = addresses; self.status = status
        }

        public static func == (a: IANA, b: IANA) -> Bool {
            a.iaid == b.iaid && a.t1 == b.t1 && a.t2 == b.t2 && a.status?.0 == b.status?.0 && a.status?.1 == b.status?.1
                && a.addresses.map(\.address) == b.addresses.map(\.address) && a.addresses.map(\.preferred) == b.addresses.map(\.preferred)
                && a.addresses.map(\.valid) == b.addresses.map(\.valid)
        }
    }

    public var kind: Kind
    public var transactionID: UInt32
    public var clientID: [UInt8]?
    public var serverID: [UInt8]?
    public var iaNA: [IANA] = []
    public var status: (Status, String)?
    public var rapidCommit = false

    public init(kind: Kind, transactionID: UInt32) {
        self.kind = kind
        self.transactionID = transactionID & 0xFF_FFFF
    }

    public static func == (a: DHCPv6Message, b: DHCPv6Message) -> Bool {
        a.kind == b.kind && a.transactionID == b.transactionID && a.clientID == b.clientID && a.serverID == b.serverID
            && a.iaNA == b.iaNA && a.status?.0 == b.status?.0 && a.status?.1 == b.status?.1 && a.rapidCommit == b.rapidCommit
    }

    /// A server DUID-LL (RFC 8415 11.4): type 3, hardware type 1 (Ethernet), the MAC.
    public static func duid(_ mac: MACAddress) -> [UInt8] { [0, 3, 0, 1] + mac.bytes }

    /// Parses a client's or server's message; nil when malformed (lengths that
    /// run past the end, an IA_NA shorter than its fixed part, an unknown type).
    public static func parse(_ b: some Collection<UInt8>) -> DHCPv6Message? {
        let bytes = Array(b)
        guard bytes.count >= 4, let kind = Kind(rawValue: bytes[0]) else { return nil }
        var m = DHCPv6Message(kind: kind, transactionID: UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3]))
        guard let options = Self.options(bytes[4...]) else { return nil }
        for (code, value) in options {
            switch code {
            case Option.clientID: m.clientID = Array(value)
            case Option.serverID: m.serverID = Array(value)
            case Option.rapidCommit: m.rapidCommit = true
            case Option.statusCode: m.status = status(value)
            case Option.iaNA:
                guard value.count >= 12 else { return nil }
                var ia = IANA(iaid: be32(value, 0), t1: be32(value, 4), t2: be32(value, 8))
                guard let inner = Self.options(value.dropFirst(12)) else { return nil }
                for (c, v) in inner {
                    if c == Option.iaAddress {
                        guard v.count >= 24, let a = IPv6Address(bytes: v.prefix(16)) else { return nil }
                        ia.addresses.append((a, be32(v, 16), be32(v, 20)))
                    } else if c == Option.statusCode {
                        ia.status = status(v)
                    }
                }
                m.iaNA.append(ia)
            default: continue
            }
        }
        return m
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = [kind.rawValue, UInt8(transactionID >> 16 & 0xFF), UInt8(transactionID >> 8 & 0xFF), UInt8(transactionID & 0xFF)]
        func option(_ code: UInt16, _ value: [UInt8]) -> [UInt8] { FrameBuilder.be16(code) + FrameBuilder.be16(UInt16(value.count)) + value }
        func statusOption(_ s: (Status, String)) -> [UInt8] { option(Option.statusCode, FrameBuilder.be16(s.0.rawValue) + Array(s.1.utf8)) }
        if let c = clientID { out += option(Option.clientID, c) }
        if let s = serverID { out += option(Option.serverID, s) }
        if rapidCommit { out += option(Option.rapidCommit, []) }
        for ia in iaNA {
            var v = FrameBuilder.be32(ia.iaid) + FrameBuilder.be32(ia.t1) + FrameBuilder.be32(ia.t2)
            for a in ia.addresses {
                v += option(Option.iaAddress, a.address.bytes + FrameBuilder.be32(a.preferred) + FrameBuilder.be32(a.valid))
            }
            if let s = ia.status { v += statusOption(s) }
            out += option(Option.iaNA, v)
        }
        if let s = status { out += statusOption(s) }
        return out
    }

    static func options(_ b: ArraySlice<UInt8>) -> [(UInt16, ArraySlice<UInt8>)]? {
        var out: [(UInt16, ArraySlice<UInt8>)] = []
        var i = b.startIndex
        while i < b.endIndex {
            guard b.endIndex - i >= 4 else { return nil }
            let code = UInt16(b[i]) << 8 | UInt16(b[i + 1]), len = Int(b[i + 2]) << 8 | Int(b[i + 3])
            guard b.endIndex - (i + 4) >= len else { return nil }
            out.append((code, b[(i + 4)..<(i + 4 + len)]))
            i += 4 + len
        }
        return out
    }

    static func be32(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt32 {
        let i = b.startIndex + at
        return UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func status(_ v: ArraySlice<UInt8>) -> (Status, String)? {
        guard v.count >= 2 else { return nil }
        let code = UInt16(v[v.startIndex]) << 8 | UInt16(v[v.startIndex + 1])
        return (Status(rawValue: code) ?? .unspecFail, String(decoding: v.dropFirst(2), as: UTF8.self))
    }

    // MARK: the frame

    /// An untagged IPv6/UDP datagram to the server port (547) with no extension
    /// header: the client's MAC and address, and the DHCPv6 payload.
    public static func clientDatagram(_ f: [UInt8]) -> (mac: MACAddress, source: IPv6Address, sourcePort: UInt16, payload: ArraySlice<UInt8>)? {
        guard f.count >= 62, f[12] == 0x86, f[13] == 0xDD, f[14] >> 4 == 6, f[20] == 17 else { return nil }
        let payloadLength = Int(f[18]) << 8 | Int(f[19])
        guard 54 + payloadLength <= f.count, payloadLength >= 8 else { return nil }
        let udpLength = Int(f[58]) << 8 | Int(f[59])
        guard f[56] == 0x02, f[57] == 0x23, udpLength >= 8, 54 + udpLength <= 54 + payloadLength else { return nil }
        let mac = MACAddress(bytes: (f[6], f[7], f[8], f[9], f[10], f[11]))
        return (mac, IPv6Address(bytes: f[22..<38])!, UInt16(f[54]) << 8 | UInt16(f[55]), f[62..<(54 + udpLength)])
    }

    /// The server's datagram (547 -> `port`) from `applianceMAC`'s link-local address, with its UDP checksum.
    public static func serverFrame(_ m: DHCPv6Message, applianceMAC: MACAddress, dstMAC: MACAddress, dstIP: IPv6Address,
                                   port: UInt16 = 546) -> [UInt8] {
        let src = IPv6Address.linkLocal(applianceMAC)
        let payload = m.encoded()
        var udp = FrameBuilder.be16(547) + FrameBuilder.be16(port) + FrameBuilder.be16(UInt16(8 + payload.count)) + [0, 0] + payload
        var sum = RouterAdvertisement.checksum(src: src, dst: dstIP, next: 17, udp)
        if sum == 0 { sum = 0xFFFF }
        udp[6] = UInt8(sum >> 8); udp[7] = UInt8(sum & 0xFF)
        let ip: [UInt8] = [0x60, 0, 0, 0] + FrameBuilder.be16(UInt16(udp.count)) + [17, 255] + src.bytes + dstIP.bytes
        return FrameBuilder.ethernet(dst: dstMAC, src: applianceMAC, type: 0x86DD, payload: ip + udp)
    }
}

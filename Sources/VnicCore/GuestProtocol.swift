// GuestProtocol: the in-band configuration protocol between a VM's guest agent
// (vnic-guest) and the appliance (vnicd), version 1.
//
// Transport: UDP over IPv4 on the VM's own link. The guest sends to the service
// address 169.254.169.254, UDP port 7177, from any port; the appliance answers
// from 169.254.169.254:7177 to that port. Host-initiated notifications go to
// UDP port 7178 of the guest. The guest agent sends and receives whole Ethernet
// frames (AF_PACKET), so it needs no route or ARP entry for the service
// address; vnicd intercepts these datagrams on the VM's port (they are never
// forwarded) and attributes them to the VNIC of that port, never to anything
// the frame claims.
//
// Message (big-endian):
//   u8  version (1)
//   u8  type: 1 request, 2 accepted, 3 denied, 4 notify, 5 ack, 6 hello, 7 key
//   u16 reserved (0)
//   u32 id: the request's (requests, their replies) or the notification's
//   u8  parameter length P, then P bytes: the parameter's name ("ip", "mtu", ...)
//   u16 value length V, then V bytes: the value as text, as vnicadm takes it
//       (a reply carries the applied value; a denial, its reason)
//   notify only: u8 32, then HMAC-SHA256 under the VNIC's notification key of
//       every byte before it (the authenticator)
// Nothing else may follow. Parameter names and value syntax are those of the
// database's one parameter table.
//
// Notifications are unforgeable by another VM (or anything on the wire): the
// guest agent applies only those its VNIC's key signs. It gets the key in its
// first exchange: a hello (parameter "key", empty value, a random id) from its
// port to the service, answered by a key message with the same id whose value
// is the key in 64 hex digits. What that rests on: vnicd intercepts the hello
// on the VM's own port (it never reaches another VM or the wire), answers only
// there, and never forwards a frame from a VM with the service address as its
// source (AntiSpoof, whatever the VNIC's protection); a forger would also have
// to guess the hello's 32-bit id within its second. vnicd keeps the keys in
// memory: after its restart a notification fails the old key, and the agent
// asks again (at most once a second) and checks the retransmission.

public enum GuestProtocol {
    public static let version: UInt8 = 1
    /// 169.254.169.254, the link-local service address.
    public static let serviceAddress = IPv4Address(rawValue: serviceAddressValue)
    /// The same in host order, a constant the fast path folds in (a `static let`
    /// of another module is read through its lazy accessor on every use).
    @inlinable public static var serviceAddressValue: UInt32 { 0xA9FE_A9FE }
    public static let servicePort: UInt16 = 7177
    public static let guestPort: UInt16 = 7178
    public static let maxParameterLength = 32
    public static let maxValueLength = 1024
    /// The parameter a hello and its key message carry.
    public static let keyParameter = "key"
    public static let authenticatorLength = 32
}

public struct GuestMessage: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        case request = 1, accepted = 2, denied = 3, notify = 4, ack = 5, hello = 6, key = 7
    }
    public var kind: Kind
    public var id: UInt32
    public var parameter: String
    public var value: String
    /// HMAC-SHA256 of the rest under the VNIC's key (notifications); empty: none.
    public var authenticator: [UInt8] = []

    public init(kind: Kind, id: UInt32, parameter: String, value: String) {
        self.kind = kind; self.id = id; self.parameter = parameter; self.value = value
    }

    public func encoded() -> [UInt8] {
        var out = unsignedBytes()
        if !authenticator.isEmpty { out.append(UInt8(truncatingIfNeeded: authenticator.count)); out += authenticator }
        return out
    }

    private func unsignedBytes() -> [UInt8] {
        let p = Array(parameter.utf8), v = Array(value.utf8)
        var out: [UInt8] = [GuestProtocol.version, kind.rawValue, 0, 0]
        out += FrameBuilder.be32(id)
        out.append(UInt8(truncatingIfNeeded: p.count)); out += p
        out += FrameBuilder.be16(UInt16(truncatingIfNeeded: v.count)); out += v
        return out
    }

    /// The message with its authenticator under `key`.
    public func signed(with key: [UInt8]) -> GuestMessage {
        var m = self
        m.authenticator = MessageAuthentication.hmacSHA256(key: key, unsignedBytes())
        return m
    }

    /// Whether its authenticator is the one `key` gives.
    public func isSigned(by key: [UInt8]) -> Bool {
        authenticator.count == GuestProtocol.authenticatorLength
            && MessageAuthentication.equal(authenticator, MessageAuthentication.hmacSHA256(key: key, unsignedBytes()))
    }

    /// A key message's key (64 hex digits); nil for anything else.
    public var key: [UInt8]? {
        guard kind == .key, parameter == GuestProtocol.keyParameter, value.utf8.count == 64 else { return nil }
        let digits = Array(value.utf8)
        var out: [UInt8] = []
        for i in stride(from: 0, to: 64, by: 2) {
            guard let b = UInt8(String(decoding: digits[i...i + 1], as: UTF8.self), radix: 16) else { return nil }
            out.append(b)
        }
        return out
    }

    /// The key message that answers hello `id` with `key`.
    public static func keyMessage(id: UInt32, _ key: [UInt8]) -> GuestMessage {
        let hex = key.map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
        return GuestMessage(kind: .key, id: id, parameter: GuestProtocol.keyParameter, value: hex)
    }

    /// Decodes a message, or says in one line what is wrong with it.
    public static func decode(_ b: some Collection<UInt8>) -> Result<GuestMessage, GuestProtocolError> {
        let b = Array(b)
        guard b.count >= 11 else { return .failure(.init("message of \(b.count) bytes is shorter than 11")) }
        guard b[0] == GuestProtocol.version else { return .failure(.init("version \(b[0]) is not 1")) }
        guard let kind = Kind(rawValue: b[1]) else { return .failure(.init("type \(b[1]) is unknown")) }
        let id = UInt32(b[4]) << 24 | UInt32(b[5]) << 16 | UInt32(b[6]) << 8 | UInt32(b[7])
        let pLen = Int(b[8])
        guard (1...GuestProtocol.maxParameterLength).contains(pLen), b.count >= 9 + pLen + 2 else {
            return .failure(.init("parameter length \(pLen) does not fit"))
        }
        let vLen = Int(b[9 + pLen]) << 8 | Int(b[10 + pLen])
        let end = 11 + pLen + vLen
        let signed = kind == .notify && b.count == end + 1 + GuestProtocol.authenticatorLength
            && Int(b[end]) == GuestProtocol.authenticatorLength
        guard vLen <= GuestProtocol.maxValueLength, b.count == end || signed else {
            return .failure(.init("value length \(vLen) does not match the message"))
        }
        guard let parameter = String(validating: b[9..<(9 + pLen)], as: UTF8.self),
              parameter.utf8.allSatisfy({ $0 >= 0x21 && $0 < 0x7F }),
              let value = String(validating: b[(11 + pLen)..<end], as: UTF8.self) else {
            return .failure(.init("parameter or value is not valid text"))
        }
        var m = GuestMessage(kind: kind, id: id, parameter: parameter, value: value)
        if signed { m.authenticator = Array(b[(end + 1)...]) }
        return .success(m)
    }
}

public struct GuestProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension FrameBuilder {
    /// A protocol message in an Ethernet/IPv4/UDP frame.
    public static func guestFrame(dst: MACAddress, src: MACAddress, srcIP: IPv4Address, dstIP: IPv4Address,
                                  srcPort: UInt16, dstPort: UInt16, message: GuestMessage) -> [UInt8] {
        let payload = message.encoded()
        var f = udp(dst: dst, src: src, srcIP: srcIP, dstIP: dstIP, srcPort: srcPort, dstPort: dstPort,
                    length: headers + payload.count)
        f.replaceSubrange(headers..<(headers + payload.count), with: payload)
        if f.count < 60 { f += [UInt8](repeating: 0, count: 60 - f.count) }
        return f
    }

    /// The UDP payload of an IPv4 frame (no options check beyond the IHL), with
    /// its addresses and ports; nil when it is not IPv4/UDP or lengths do not hold.
    public static func udpPayload(_ f: [UInt8]) -> (srcIP: IPv4Address, dstIP: IPv4Address, srcPort: UInt16,
                                                    dstPort: UInt16, payload: ArraySlice<UInt8>)? {
        guard f.count >= 42, f[12] == 0x08, f[13] == 0x00, f[14] >> 4 == 4, f[23] == 17 else { return nil }
        let ihl = Int(f[14] & 0x0F) * 4
        let total = Int(f[16]) << 8 | Int(f[17])
        guard ihl >= 20, total >= ihl + 8, 14 + total <= f.count else { return nil }
        let u = 14 + ihl
        let ulen = Int(f[u + 4]) << 8 | Int(f[u + 5])
        guard ulen >= 8, u + ulen <= 14 + total else { return nil }
        func ip(_ o: Int) -> IPv4Address { IPv4Address(rawValue: UInt32(f[o]) << 24 | UInt32(f[o + 1]) << 16 | UInt32(f[o + 2]) << 8 | UInt32(f[o + 3])) }
        return (ip(26), ip(30), UInt16(f[u]) << 8 | UInt16(f[u + 1]), UInt16(f[u + 2]) << 8 | UInt16(f[u + 3]),
                f[(u + 8)..<(u + ulen)])
    }
}

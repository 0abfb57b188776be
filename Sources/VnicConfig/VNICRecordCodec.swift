// VNICRecordCodec: the binary form of a VNICRecord in the database.
//
//   u16 format version (little-endian, currently 1)
//   then fields, each: u16 tag, u16 length (both little-endian), `length` bytes
//
// Tags and value encodings are listed once, at `VNICParameter.tag`. Numbers are
// little-endian, addresses in wire order, so a reader on the fast path can take
// fields straight out of the map without copying.
// Compatibility: a decoder skips tags it does not know, so a newer writer may add
// fields without a version bump; the version changes only for a layout an older
// reader would misread, and such a record is refused, not guessed at.
import VnicCore

public enum VNICRecordCodec {
    public static let formatVersion: UInt16 = 1

    public static func encode(_ r: VNICRecord) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + 9 * r.ips.count)
        append(formatVersion, to: &out)
        func field(_ p: VNICParameter, _ bytes: some Collection<UInt8>) {
            append(p.tag, to: &out)
            append(UInt16(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        }
        // Lengths fit u16: names are validated to 31 bytes, interface names to 15.
        field(.name, r.name.utf8)
        field(.link, r.link.utf8)
        if let port = r.port { field(.port, port.utf8) }
        field(.mac, r.mac.bytes)
        for ip in r.ips { field(.ip, bigEndianBytes(ip.address.rawValue) + [ip.prefixLength]) }
        if let gw = r.gateway { field(.gateway, bigEndianBytes(gw.rawValue)) }
        field(.mtu, littleEndianBytes(r.mtu))
        field(.index, littleEndianBytes(r.index))
        return out
    }

    /// Decodes a record; throws (runtime error, exit 1) on a truncated or
    /// malformed one, or one of a newer incompatible format.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(VnicError) -> VNICRecord {
        func corrupt(_ why: String) -> VnicError { VnicError("corrupt VNIC record: \(why)") }
        guard bytes.count >= 2 else { throw corrupt("\(bytes.count) bytes, too short for a header") }
        let version = u16(bytes, at: 0)
        guard version == formatVersion else {
            throw VnicError("VNIC record format \(version) is not supported (this build reads format \(formatVersion))")
        }
        var name: String?, link: String?, port: String?, mac: MACAddress?
        var ips: [IPv4Interface] = [], gateway: IPv4Address?, mtu: UInt32?, index: UInt32?
        var offset = 2
        while offset < bytes.count {
            guard bytes.count - offset >= 4 else { throw corrupt("truncated field header at byte \(offset)") }
            let tag = u16(bytes, at: offset), length = Int(u16(bytes, at: offset + 2))
            let start = offset + 4
            guard bytes.count - start >= length else { throw corrupt("field \(tag) runs past the end (\(length) bytes at byte \(start))") }
            let value = UnsafeRawBufferPointer(rebasing: bytes[start..<start + length])
            offset = start + length
            guard let p = VNICParameter(tag: tag) else { continue }   // a newer writer's field
            func need(_ n: Int) throws(VnicError) {
                guard length == n else { throw corrupt("field \(p.rawValue) has \(length) bytes, expected \(n)") }
            }
            func once<T>(_ v: T?) throws(VnicError) {
                guard v == nil else { throw corrupt("field \(p.rawValue) occurs twice") }
            }
            switch p {
            case .name: try once(name); name = try text(value, p)
            case .link: try once(link); link = try text(value, p)
            case .port: try once(port); port = try text(value, p)
            case .mac:
                try once(mac); try need(6)
                mac = MACAddress(bytes: (value[0], value[1], value[2], value[3], value[4], value[5]))
            case .ip:
                try need(5)
                ips.append(IPv4Interface(address: IPv4Address(rawValue: be32(value)), prefixLength: value[4]))
            case .gateway: try once(gateway); try need(4); gateway = IPv4Address(rawValue: be32(value))
            case .mtu: try once(mtu); try need(4); mtu = value.loadUnaligned(as: UInt32.self).littleEndian
            case .index: try once(index); try need(4); index = value.loadUnaligned(as: UInt32.self).littleEndian
            }
        }
        guard let name else { throw corrupt("no name") }
        guard let link else { throw corrupt("VNIC \(name) has no link") }
        guard let mac else { throw corrupt("VNIC \(name) has no mac") }
        guard let index else { throw corrupt("VNIC \(name) has no index") }
        return VNICRecord(name: name, link: link, port: port, mac: mac, ips: ips, gateway: gateway,
                          mtu: mtu ?? VNICRecord.defaultMTU, index: index)
    }

    public static func decode(_ bytes: [UInt8]) throws(VnicError) -> VNICRecord {
        do {
            return try bytes.withUnsafeBytes { b in try decode(b) }
        } catch let e as VnicError {
            throw e
        } catch {
            throw VnicError("\(error)")
        }
    }

    // MARK: byte helpers

    static func append(_ v: UInt16, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v))
        out.append(UInt8(truncatingIfNeeded: v >> 8))
    }
    static func littleEndianBytes(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func bigEndianBytes(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
    static func u16(_ b: UnsafeRawBufferPointer, at i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    static func be32(_ b: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
    }
    static func text(_ b: UnsafeRawBufferPointer, _ p: VNICParameter) throws(VnicError) -> String {
        guard let s = String(validating: b, as: UTF8.self) else {
            throw VnicError("corrupt VNIC record: field \(p.rawValue) is not UTF-8")
        }
        return s
    }
}

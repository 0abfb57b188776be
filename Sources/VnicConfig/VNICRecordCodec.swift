// VNICRecordCodec: the binary form of a VNICRecord in the database.
//
//   u16 format version (little-endian: 3; formats 1 and 2 are still read)
//   then fields, each: u16 tag, u16 length (both little-endian), `length` bytes
//
// Tags and value encodings are listed once, at `FieldTag` (VNICParameter.swift);
// each row of the parameter table encodes and decodes its own field.
// Format 2 begins with the hot prefix the fast path reads, always present and in
// this order: index, mac, protection, priority, maxbw, allowed-ips, ra-guard (rows with a
// `hotRank`); then the other fields in table order; then the VM's policies
// (tag 0x1000 + the field's tag; deny is absent). Format 3 (schema 3) adds IPv6:
// `ip` fields of 17 bytes, allowed-ips' IPv6 networks (tag 23, right after tag
// 18 in the hot prefix) and policy rules of 128-bit values (rule 3); a format 2
// reader would refuse such a record as corrupt, so the version says it first.
//
// Numbers are little-endian, addresses in wire order, so a reader on the fast
// path takes fields straight out of the map (VNICView). A decoder skips tags it
// does not know, so a newer writer may add fields without a version bump; the
// version changes only for a layout an older reader would misread, and such a
// record is refused, not guessed at.
import VnicCore

public enum VNICRecordCodec {
    public static let formatVersion: UInt16 = 3
    /// The formats this build decodes.
    public static let readableFormats: ClosedRange<UInt16> = 1...3

    /// The rows in encoding order: the hot prefix, then the rest in table order.
    static let encodingOrder: [VNICParameter] = {
        let hot = VNICParameter.allCases.filter { $0.hotRank != nil }.sorted { $0.hotRank! < $1.hotRank! }
        return hot + VNICParameter.allCases.filter { $0.hotRank == nil }
    }()

    public static func encode(_ r: VNICRecord) -> [UInt8] {
        var w = TLVWriter()
        w.bytes.reserveCapacity(128 + 9 * r.ips.count + 21 * r.ips6.count)
        w.append16(formatVersion)
        // Lengths fit u16: names are validated to 31 bytes, lists to a few hundred items.
        for p in encodingOrder { p.encodeField(r, &w) }
        for p in VNICParameter.policyParameters {
            let rule = r.policy[p]
            guard rule != .deny else { continue }
            w.field(FieldTag.policyBase + p.tag, encodePolicy(rule))
        }
        return w.bytes
    }

    /// Decodes a record; throws (runtime error, exit 1) on a truncated or
    /// malformed one, or one of a newer incompatible format.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(VnicError) -> VNICRecord {
        func corrupt(_ why: String) -> VnicError { VnicError("corrupt VNIC record: \(why)") }
        guard bytes.count >= 2 else { throw corrupt("\(bytes.count) bytes, too short for a header") }
        let version = TLV.u16(bytes, at: 0)
        guard readableFormats.contains(version) else {
            throw VnicError("VNIC record format \(version) is not supported (this build reads formats \(readableFormats.lowerBound)-\(readableFormats.upperBound))")
        }
        var r = VNICRecord.blank
        var seen = Set<UInt16>()
        var offset = 2
        while offset < bytes.count {
            guard bytes.count - offset >= 4 else { throw corrupt("truncated field header at byte \(offset)") }
            let tag = TLV.u16(bytes, at: offset), length = Int(TLV.u16(bytes, at: offset + 2))
            let start = offset + 4
            guard bytes.count - start >= length else { throw corrupt("field \(tag) runs past the end (\(length) bytes at byte \(start))") }
            let value = UnsafeRawBufferPointer(rebasing: bytes[start..<start + length])
            offset = start + length
            if tag > FieldTag.policyBase, let p = VNICParameter(tag: tag - FieldTag.policyBase), p.policyDomain != nil {
                guard seen.insert(tag).inserted else { throw corrupt("policy \(p.rawValue) occurs twice") }
                do { r.policy[p] = try decodePolicy(value) } catch { throw corrupt("policy \(p.rawValue): \(error.message)") }
                continue
            }
            if let p = VNICParameter.allCases.first(where: { $0.extraTag == tag }), let decodeExtra = p.decodeExtra {
                guard seen.insert(tag).inserted else { throw corrupt("field \(p.rawValue) occurs twice") }
                do { try decodeExtra(value, &r) } catch { throw corrupt(error.message) }
                continue
            }
            guard let p = VNICParameter(tag: tag) else { continue }   // a newer writer's field
            guard seen.insert(tag).inserted || p.repeatable else { throw corrupt("field \(p.rawValue) occurs twice") }
            do { try p.decodeField(value, &r) } catch { throw corrupt(error.message) }
        }
        for p in VNICParameter.allCases where p.required && !seen.contains(p.tag) {
            throw corrupt(p == .name ? "no name" : "VNIC \(r.name) has no \(p.rawValue)")
        }
        return r
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

    // MARK: policies
    //
    //   u8 rule: 1 any, 2 values of 64 bits, 3 values of 128 bits (an IPv6 one)
    //   values: per item 18 (rule 2) or 34 (rule 3) bytes: u8 form (0 value,
    //   1 range, 2 CIDR), u8 prefix length (CIDR), LE lower, LE upper

    static func encodePolicy(_ rule: PolicyRule) -> [UInt8] {
        switch rule {
        case .deny: return []
        case .any: return [1]
        case .values(let items):
            let wide = items.contains { $0.upper > UInt128(UInt64.max) }
            var out: [UInt8] = [wide ? 3 : 2]
            for item in items {
                switch item.form {
                case .single: out += [0, 0]
                case .range: out += [1, 0]
                case .cidr(let len): out += [2, len]
                }
                if wide {
                    out += TLV.le128(item.lower) + TLV.le128(item.upper)
                } else {
                    out += TLV.le64(UInt64(item.lower)) + TLV.le64(UInt64(item.upper))
                }
            }
            return out
        }
    }

    static func decodePolicy(_ v: UnsafeRawBufferPointer) throws(VnicError) -> PolicyRule {
        guard let kind = v.first else { throw VnicError("empty") }
        switch kind {
        case 1:
            guard v.count == 1 else { throw VnicError("'any' with \(v.count - 1) extra bytes") }
            return .any
        case 2, 3:
            let size = kind == 2 ? 18 : 34
            guard (v.count - 1) % size == 0 else { throw VnicError("\(v.count - 1) bytes of values, not a multiple of \(size)") }
            var items: [PolicyItem] = []
            for i in stride(from: 1, to: v.count, by: size) {
                let form: PolicyItem.Form
                switch v[i] {
                case 0: form = .single
                case 1: form = .range
                case 2:
                    guard v[i + 1] <= (kind == 2 ? 32 : 128) else { throw VnicError("CIDR prefix length \(v[i + 1])") }
                    form = .cidr(v[i + 1])
                default: throw VnicError("unknown value form \(v[i])")
                }
                let lo = kind == 2 ? UInt128(TLV.u64(v, at: i + 2)) : TLV.u128(v, at: i + 2)
                let hi = kind == 2 ? UInt128(TLV.u64(v, at: i + 10)) : TLV.u128(v, at: i + 18)
                guard lo <= hi else { throw VnicError("range \(lo)-\(hi) is empty") }
                items.append(PolicyItem(lower: lo, upper: hi, form: form))
            }
            return .values(items)
        default:
            throw VnicError("unknown rule \(kind)")
        }
    }

    // MARK: byte helpers (kept for the schema's key helpers)

    static func littleEndianBytes(_ v: UInt32) -> [UInt8] { TLV.le32(v) }
    static func bigEndianBytes(_ v: UInt32) -> [UInt8] { TLV.be32(v) }
    static func be32(_ b: UnsafeRawBufferPointer) -> UInt32 { TLV.be32(b) }
}

/// Builds a record: the format version, then tag-length-value fields.
struct TLVWriter {
    var bytes: [UInt8] = []

    mutating func append16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
    }
    mutating func field(_ tag: UInt16, _ value: some Collection<UInt8>) {
        append16(tag)
        append16(UInt16(value.count))
        bytes.append(contentsOf: value)
    }
    mutating func text(_ tag: UInt16, _ s: String) { field(tag, s.utf8) }
    mutating func u8(_ tag: UInt16, _ v: UInt8) { field(tag, CollectionOfOne(v)) }
    mutating func u32(_ tag: UInt16, _ v: UInt32) { field(tag, TLV.le32(v)) }
    mutating func u64(_ tag: UInt16, _ v: UInt64) { field(tag, TLV.le64(v)) }
}

/// Reading and writing the value bytes of fields.
enum TLV {
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
    static func be32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
    static func le128(_ v: UInt128) -> [UInt8] { le64(UInt64(truncatingIfNeeded: v)) + le64(UInt64(truncatingIfNeeded: v >> 64)) }
    static func u128(_ b: UnsafeRawBufferPointer, at i: Int) -> UInt128 { UInt128(u64(b, at: i + 8)) << 64 | UInt128(u64(b, at: i)) }

    static func u16(_ b: UnsafeRawBufferPointer, at i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    static func u64(_ b: UnsafeRawBufferPointer, at i: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(b[i + $1]) << (8 * UInt64($1)) }
    }
    static func be32(_ b: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
    }

    static func need(_ v: UnsafeRawBufferPointer, _ n: Int, _ field: String) throws(VnicError) {
        guard v.count == n else { throw VnicError("field \(field) has \(v.count) bytes, expected \(n)") }
    }
    static func needMultiple(_ v: UnsafeRawBufferPointer, _ n: Int, _ field: String) throws(VnicError) {
        guard v.count % n == 0 else { throw VnicError("field \(field) has \(v.count) bytes, not a multiple of \(n)") }
    }
    static func u8(_ v: UnsafeRawBufferPointer, _ field: String) throws(VnicError) -> UInt8 {
        try need(v, 1, field)
        return v[0]
    }
    static func u32(_ v: UnsafeRawBufferPointer, _ field: String) throws(VnicError) -> UInt32 {
        try need(v, 4, field)
        return v.loadUnaligned(as: UInt32.self).littleEndian
    }
    static func u64(_ v: UnsafeRawBufferPointer, _ field: String) throws(VnicError) -> UInt64 {
        try need(v, 8, field)
        return v.loadUnaligned(as: UInt64.self).littleEndian
    }
    static func text(_ v: UnsafeRawBufferPointer, _ field: String) throws(VnicError) -> String {
        guard let s = String(validating: v, as: UTF8.self) else { throw VnicError("field \(field) is not UTF-8") }
        return s
    }
}

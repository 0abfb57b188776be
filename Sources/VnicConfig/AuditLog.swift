// AuditLog: the append-only record of configuration changes and refusals.
//
// Table `audit`: key u64 big-endian sequence number (1, 2, ...; appended with
// MDB_APPEND, never rewritten), value an AuditEntry record:
//
//   u16 format version (LE, 1), then u16 tag, u16 length, value (like VNIC records)
//    1 time       u64 LE nanoseconds since 1970 (UTC)
//    2 vnic       UTF-8
//    3 origin     u8: 1 host, 2 vm
//    4 parameter  UTF-8 (a table field, `vnic` for create/delete, `policy.FIELD`)
//    5 old        UTF-8 (absent: none)
//    6 new        UTF-8 (absent: none)
//    7 verdict    u8: 1 accepted, 2 denied, 3 applied
//    8 reason     UTF-8
//    9 guest      u8: 1 acknowledged, 2 not acknowledged in time (absent: not a
//                 guest's answer); older readers skip it
//
// Who appends: vnicadm for host changes (verdict `applied`), in the same write
// transaction as the change; the daemon for the VM's requests (`accepted` with
// the change, or `denied` alone) and spoof warnings (`denied`, parameter the
// field that was spoofed). Appends that change no configuration do not bump the
// generation, so they do not make vnicd reload. The oldest entries are dropped
// beyond `ConfigStore.auditCapacity` so that a storm of warnings cannot fill the
// database.
import Foundation
import VnicCore

public struct AuditEntry: Equatable, Sendable {
    public enum Origin: UInt8, Sendable, CustomStringConvertible, CaseIterable {
        case host = 1, vm = 2
        public var description: String { self == .host ? "host" : "vm" }
    }
    public enum Verdict: UInt8, Sendable, CustomStringConvertible, CaseIterable {
        /// A VM's request that the policy allowed and that was applied.
        case accepted = 1
        /// A VM's request (or frame) that was refused.
        case denied = 2
        /// A host-initiated change that was applied.
        case applied = 3
        public var description: String {
            switch self {
            case .accepted: "accepted"
            case .denied: "denied"
            case .applied: "applied"
            }
        }
    }

    /// What a guest agent made of a host change it was told about (vnicd's
    /// notification): the typed outcome `vnicadm set` waits for.
    public enum GuestOutcome: UInt8, Sendable, CustomStringConvertible, CaseIterable {
        case acknowledged = 1
        case unacknowledged = 2
        public var description: String { self == .acknowledged ? "acknowledged" : "unacknowledged" }
    }

    /// Assigned when appended (1, 2, ...); 0 before.
    public var sequence: UInt64 = 0
    /// Nanoseconds since 1970, UTC.
    public var time: UInt64
    public var vnic: String
    public var origin: Origin
    public var parameter: String
    public var old: String?
    public var new: String?
    public var verdict: Verdict
    public var reason: String
    /// Set on the entry that records a guest's answer to a host change.
    public var guest: GuestOutcome? = nil

    public init(time: UInt64 = AuditEntry.now(), vnic: String, origin: Origin, parameter: String,
                old: String?, new: String?, verdict: Verdict, reason: String) {
        self.time = time
        self.vnic = vnic
        self.origin = origin
        self.parameter = parameter
        self.old = old
        self.new = new
        self.verdict = verdict
        self.reason = reason
    }

    /// The wall clock in nanoseconds since 1970.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// `2026-11-25T00:18:03.123Z`.
    public var timeText: String {
        var t = time_t(time / 1_000_000_000)
        var tm = tm()
        gmtime_r(&t, &tm)
        let ms = (time / 1_000_000) % 1000
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(msText)Z"
    }

    // MARK: codec

    static let formatVersion: UInt16 = 1
    /// Longer texts are cut to this many bytes (whole characters).
    static let maxText = 1024

    /// The entry in the audit table's format (also a fleet host's audit keys' values).
    public func encode() -> [UInt8] {
        var w = TLVWriter()
        w.append16(AuditEntry.formatVersion)
        w.u64(1, time)
        w.text(2, AuditEntry.cut(vnic))
        w.u8(3, origin.rawValue)
        w.text(4, AuditEntry.cut(parameter))
        if let old { w.text(5, AuditEntry.cut(old)) }
        if let new { w.text(6, AuditEntry.cut(new)) }
        w.u8(7, verdict.rawValue)
        w.text(8, AuditEntry.cut(reason))
        if let guest { w.u8(9, guest.rawValue) }
        return w.bytes
    }

    /// An entry from `encode()`'s bytes, with its sequence number.
    public static func decode(_ bytes: [UInt8], sequence: UInt64) throws(VnicError) -> AuditEntry {
        let r = bytes.withUnsafeBytes { b in Result { () throws(VnicError) in try decode(b, sequence: sequence) } }
        return try r.get()
    }

    static func decode(_ b: UnsafeRawBufferPointer, sequence: UInt64) throws(VnicError) -> AuditEntry {
        func corrupt(_ why: String) -> VnicError { VnicError("corrupt audit entry \(sequence): \(why)") }
        guard b.count >= 2, TLV.u16(b, at: 0) == formatVersion else { throw corrupt("unknown format") }
        var e = AuditEntry(time: 0, vnic: "", origin: .host, parameter: "", old: nil, new: nil, verdict: .applied, reason: "")
        e.sequence = sequence
        var offset = 2
        while offset < b.count {
            guard b.count - offset >= 4 else { throw corrupt("truncated field header") }
            let tag = TLV.u16(b, at: offset), length = Int(TLV.u16(b, at: offset + 2))
            guard b.count - offset - 4 >= length else { throw corrupt("field \(tag) runs past the end") }
            let v = UnsafeRawBufferPointer(rebasing: b[offset + 4..<offset + 4 + length])
            offset += 4 + length
            do throws(VnicError) {
                switch tag {
                case 1: e.time = try TLV.u64(v, "time")
                case 2: e.vnic = try TLV.text(v, "vnic")
                case 3:
                    guard let o = Origin(rawValue: try TLV.u8(v, "origin")) else { throw VnicError("unknown origin") }
                    e.origin = o
                case 4: e.parameter = try TLV.text(v, "parameter")
                case 5: e.old = try TLV.text(v, "old")
                case 6: e.new = try TLV.text(v, "new")
                case 7:
                    guard let d = Verdict(rawValue: try TLV.u8(v, "verdict")) else { throw VnicError("unknown verdict") }
                    e.verdict = d
                case 8: e.reason = try TLV.text(v, "reason")
                case 9:
                    guard let g = GuestOutcome(rawValue: try TLV.u8(v, "guest")) else { throw VnicError("unknown guest outcome") }
                    e.guest = g
                default: continue
                }
            } catch {
                throw corrupt(error.message)
            }
        }
        return e
    }

    static func cut(_ s: String) -> String {
        guard s.utf8.count > maxText else { return s }
        var out = ""
        for c in s {
            if out.utf8.count + String(c).utf8.count > maxText - 3 { break }
            out.append(c)
        }
        return out + "..."
    }

    static func key(_ sequence: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64($0))) } }
    static func sequence(ofKey k: UnsafeRawBufferPointer) -> UInt64? {
        k.count == 8 ? k.reduce(0) { $0 << 8 | UInt64($1) } : nil
    }
}

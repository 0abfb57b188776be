// Schema: the database's named tables and key layout (schema version 3).
//
//   table   key                        value
//   meta    "schema-version"           u32 LE: 3
//   meta    "generation"               u64 LE: bumped by every committed configuration change
//   vnics   index, u32 big-endian      VNIC record (VNICRecordCodec, format 3)
//   names   VNIC name, UTF-8           index, u32 LE
//   macs    MAC, 6 bytes wire order    index, u32 LE
//   ports   port name, UTF-8           index, u32 LE
//   audit   sequence, u64 big-endian   audit entry (AuditLog.swift)            (since 2)
//
// Records are keyed by index (the dataplane slot) so the fast path reaches one
// with a single lookup; names, macs and ports are unique indexes onto them,
// written in the same transaction (MDB_NOOVERWRITE makes uniqueness the
// database's own check). A VNIC's parameters, link properties, state and
// policy all live in its one record, so a VNIC is always wholly present or
// wholly absent. Numeric keys are big-endian so LMDB's byte order is numeric
// order; values are little-endian, the native order of every target.
// A fresh database has generation 1: creating it is its first write.
//
// Versions and migration: a build reads versions up to `version` and refuses
// newer ones. Opening an older database with write access migrates it in one
// write transaction (`migrate`), which also bumps the generation:
//   1 -> 2: create `audit`; rewrite every record from format 1 to format 2
//           (new fields at their defaults: protection mac-nospoof, priority
//           high, no maxbw, every parameter denied to the VM).
//   2 -> 3: rewrite every record in format 3, which may hold IPv6 addresses
//           (17-byte `ip` fields, tag 23, 128-bit policy values): a build that
//           reads only schema 2 must refuse the database rather than drop them
//           when it rewrites a record. Nothing else changes.
// Without write access an older database is read as it is (format 1 records
// decode with the same defaults; no audit log).
import VnicCore

enum Schema {
    static let version: UInt32 = 3
    static let schemaVersionKey = "schema-version"
    static let generationKey = "generation"
    /// The etcd revision a fleet host's database is the copy of (VnicFleet's FleetSync).
    static let fleetRevisionKey = "fleet-revision"

    enum Table: String, CaseIterable {
        case meta, vnics, names, macs, ports, audit

        /// The schema version that introduced the table.
        var since: UInt32 { self == .audit ? 2 : 1 }
    }

    static func indexKey(_ index: UInt32) -> [UInt8] { VNICRecordCodec.bigEndianBytes(index) }
    static func indexValue(_ index: UInt32) -> [UInt8] { VNICRecordCodec.littleEndianBytes(index) }
    static func macKey(_ mac: MACAddress) -> [UInt8] { mac.bytes }

    static func decodeIndexKey(_ b: UnsafeRawBufferPointer) -> UInt32? {
        b.count == 4 ? VNICRecordCodec.be32(b) : nil
    }
    static func decodeIndexValue(_ b: UnsafeRawBufferPointer) -> UInt32? {
        b.count == 4 ? b.loadUnaligned(as: UInt32.self).littleEndian : nil
    }
    static func decodeU32(_ b: UnsafeRawBufferPointer) -> UInt32? {
        b.count == 4 ? b.loadUnaligned(as: UInt32.self).littleEndian : nil
    }
    static func decodeU64(_ b: UnsafeRawBufferPointer) -> UInt64? {
        b.count == 8 ? b.loadUnaligned(as: UInt64.self).littleEndian : nil
    }
    static func u32Value(_ v: UInt32) -> [UInt8] { VNICRecordCodec.littleEndianBytes(v) }
    static func u64Value(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
}

/// The opened tables of one database.
struct Tables: Sendable {
    let meta, vnics, names, macs, ports: LMDBDatabase
    /// nil only in a version 1 database opened without write access.
    let audit: LMDBDatabase?

    /// Opens every table, creating the missing ones.
    init(creatingIn txn: inout WriteTransaction) throws {
        meta = try txn.createDatabase(Schema.Table.meta.rawValue)
        vnics = try txn.createDatabase(Schema.Table.vnics.rawValue)
        names = try txn.createDatabase(Schema.Table.names.rawValue)
        macs = try txn.createDatabase(Schema.Table.macs.rawValue)
        ports = try txn.createDatabase(Schema.Table.ports.rawValue)
        audit = try txn.createDatabase(Schema.Table.audit.rawValue)
    }

    /// Opens the tables that schema `version` has; the result names the first one missing.
    static func open<T: LMDBTransaction & ~Copyable>(in txn: borrowing T, version: UInt32) throws -> Result<Tables, MissingTable> {
        var found: [Schema.Table: LMDBDatabase] = [:]
        for t in Schema.Table.allCases {
            guard let db = try txn.openDatabase(t.rawValue, create: false) else {
                if t.since > version { continue }
                return .failure(MissingTable(table: t))
            }
            found[t] = db
        }
        return .success(Tables(meta: found[.meta]!, vnics: found[.vnics]!, names: found[.names]!,
                               macs: found[.macs]!, ports: found[.ports]!, audit: found[.audit]))
    }

    private init(meta: LMDBDatabase, vnics: LMDBDatabase, names: LMDBDatabase, macs: LMDBDatabase, ports: LMDBDatabase,
                 audit: LMDBDatabase?) {
        self.meta = meta; self.vnics = vnics; self.names = names; self.macs = macs; self.ports = ports; self.audit = audit
    }

    struct MissingTable: Error { let table: Schema.Table }
}

extension Schema {
    /// Brings a database of schema `from` to `version` inside `txn` (the
    /// caller commits; a failure aborts the whole migration). Returns what it did.
    static func migrate(from: UInt32, tables: Tables, _ txn: inout WriteTransaction) throws -> String {
        var steps: [String] = []
        var v = from
        // Every step rewrites the records in the current format (decoding fills
        // new fields' defaults), so once is enough however old the database.
        var records: [(key: [UInt8], value: [UInt8])] = []
        try txn.forEach(in: tables.vnics) { key, value in
            let r = try VNICRecordCodec.decode(value)
            records.append((Array(key), VNICRecordCodec.encode(r)))
            return true
        }
        for (key, value) in records { try txn.put(tables.vnics, key: key, value: value) }
        if v == 1 {
            steps.append("1->2: \(records.count) record(s) rewritten, audit table created")
            v = 2
        }
        if v == 2 {
            steps.append("2->3: \(records.count) record(s) rewritten in format \(VNICRecordCodec.formatVersion) (IPv6 addresses)")
            v = 3
        }
        try txn.put(tables.meta, key: Array(schemaVersionKey.utf8), value: u32Value(v))
        return steps.joined(separator: "; ")
    }
}

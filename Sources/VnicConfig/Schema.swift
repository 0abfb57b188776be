// Schema: the database's named tables and key layout (schema version 1).
//
//   table   key                        value
//   meta    "schema-version"           u32 LE: 1
//   meta    "generation"               u64 LE: bumped by every committed write
//   vnics   index, u32 big-endian      VNIC record (VNICRecordCodec)
//   names   VNIC name, UTF-8           index, u32 LE
//   macs    MAC, 6 bytes wire order    index, u32 LE
//   ports   port name, UTF-8           index, u32 LE
//
// Records are keyed by index (the dataplane slot) so the fast path reaches one
// with a single lookup; names, macs and ports are unique indexes onto them,
// written in the same transaction (MDB_NOOVERWRITE makes uniqueness the
// database's own check). Numeric keys are big-endian so LMDB's byte order is
// numeric order; values are little-endian, the native order of every target.
// A fresh database has generation 1: creating it is its first write.
// A later schema adds tables (properties, policy, audit log) and bumps
// `schemaVersion` only when an older build could not use the database safely.
import VnicCore

enum Schema {
    static let version: UInt32 = 1
    static let schemaVersionKey = "schema-version"
    static let generationKey = "generation"

    enum Table: String, CaseIterable {
        case meta, vnics, names, macs, ports
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

    /// Opens every table, creating the missing ones.
    init(creatingIn txn: inout WriteTransaction) throws {
        meta = try txn.createDatabase(Schema.Table.meta.rawValue)
        vnics = try txn.createDatabase(Schema.Table.vnics.rawValue)
        names = try txn.createDatabase(Schema.Table.names.rawValue)
        macs = try txn.createDatabase(Schema.Table.macs.rawValue)
        ports = try txn.createDatabase(Schema.Table.ports.rawValue)
    }

    /// Opens every table; the result names the first one missing.
    static func open(in txn: borrowing ReadTransaction) throws -> Result<Tables, MissingTable> {
        var found: [Schema.Table: LMDBDatabase] = [:]
        for t in Schema.Table.allCases {
            guard let db = try txn.openDatabase(t.rawValue, create: false) else { return .failure(MissingTable(table: t)) }
            found[t] = db
        }
        return .success(Tables(meta: found[.meta]!, vnics: found[.vnics]!, names: found[.names]!,
                               macs: found[.macs]!, ports: found[.ports]!))
    }

    private init(meta: LMDBDatabase, vnics: LMDBDatabase, names: LMDBDatabase, macs: LMDBDatabase, ports: LMDBDatabase) {
        self.meta = meta; self.vnics = vnics; self.names = names; self.macs = macs; self.ports = ports
    }

    struct MissingTable: Error { let table: Schema.Table }
}

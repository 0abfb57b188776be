// ConfigStore: the VNIC configuration database (see Schema.swift for its layout).
//
// Writers (vnicadm, later the control plane) commit one LMDB write transaction
// per change (`update`, or a whole batch of changes in one); it checks
// uniqueness, writes the records, their indexes and audit entries, and bumps the
// generation, so every reader sees all of a change or none of it, and a writer
// killed mid-transaction leaves the last commit intact. Writers of all
// processes take turns on LMDB's writer lock.
// Readers (vnicd) poll `generation()` and reload (`snapshot()`) when it moves;
// reads reuse one read transaction (reset + renew), so polling allocates nothing
// in LMDB and costs one lookup. Workers use a `ConfigReader` (FastPath.swift).
// Every error is a VnicError: 2 for bad input (invalid or conflicting values,
// unknown VNIC), 1 for everything else (missing, read-only, full or unreadable
// database, LMDB); a failed write changes nothing.
import CLMDB
import Foundation
import Synchronization
import VnicCore

public final class ConfigStore: Sendable {
    /// `/var/lib/vnic/vnic.db`: where the database lives without `--db` or `$VNIC_DB`.
    public static let defaultPath = "/var/lib/vnic/vnic.db"
    /// The environment variable naming the database.
    public static let pathVariable = "VNIC_DB"
    /// The environment variable that sets the map size (the most the file may
    /// grow to) when a process opens the database: bytes, or with K/M/G.
    public static let mapSizeVariable = "VNIC_DB_MAP_SIZE"
    public static let defaultMapSize = 1 << 30
    /// The schema this build writes and reads.
    public static let schemaVersion = Schema.version
    /// The audit log keeps at most this many entries (the oldest go first).
    public static let auditCapacity = 1_000_000

    public let path: String
    let environment: LMDBEnvironment
    let tables: Tables
    /// Why writes are impossible ("Read-only file system"), nil when they are possible.
    public let readOnlyReason: String?
    /// Reused read transaction; reset between uses.
    private let reader: Mutex<ReadTransaction>

    private init(path: String, environment: LMDBEnvironment, tables: Tables, readOnlyReason: String?,
                 reader: consuming ReadTransaction) {
        self.path = path
        self.environment = environment
        self.tables = tables
        self.readOnlyReason = readOnlyReason
        self.reader = Mutex(reader)
    }

    /// The database path by the contract: `option` (`--db`), else `$VNIC_DB`,
    /// else `defaultPath`. Empty values count as unset.
    public static func databasePath(option: String?,
                                    environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let option, !option.isEmpty { return option }
        if let env = environment[pathVariable], !env.isEmpty { return env }
        return defaultPath
    }

    /// The map size to open with: `$VNIC_DB_MAP_SIZE` (e.g. `64K`, `4G`), else 1 GiB.
    public static func mapSize(environment: [String: String] = ProcessInfo.processInfo.environment) throws(VnicError) -> Int {
        guard let text = environment[mapSizeVariable], !text.isEmpty else { return defaultMapSize }
        guard let v = ValueSyntax.parseSize(text), v >= 4096, let n = Int(exactly: v) else {
            throw .usage("\(mapSizeVariable): '\(text)' is not a size of at least 4K (e.g. 64M, 4G)")
        }
        return n
    }

    // Opening is serialized in the process: LMDB wants sub-databases opened from
    // one transaction at a time.
    private static let openLock = Mutex(())

    /// Opens the database at `path`. With `create`, a missing file (and its
    /// missing parent directories, mode 0755) is created and initialized;
    /// without, a missing file is an error naming the path. A file this process
    /// already has open is shared (LMDB allows one environment per file and process).
    /// An older schema is migrated (one write transaction) when the file is
    /// writable, and read as it is when not. A file that cannot be written
    /// (read-only mount, no permission) opens read-only: reads work, writes
    /// fail naming the reason. `mapSize` nil: `mapSize(environment:)`.
    public static func open(path: String, create: Bool, mapSize: Int? = nil) throws(VnicError) -> ConfigStore {
        let size: Int
        if let mapSize { size = mapSize } else { size = try Self.mapSize() }
        let store = try openLock.withLock { _ throws(VnicError) in try openLocked(path: path, create: create, mapSize: size) }
        return store
    }

    private static func openLocked(path: String, create: Bool, mapSize: Int) throws(VnicError) -> ConfigStore {
        guard !path.isEmpty else { throw .usage("database path is empty") }
        var st = stat()
        let existed: Bool
        if stat(path, &st) != 0 {
            let err = errno
            guard err == ENOENT else { throw VnicError("database \(path): \(String(cString: strerror(err)))") }
            guard create else {
                throw VnicError("database \(path) does not exist (create a VNIC with vnicadm create-vnic first)")
            }
            try makeParentDirectory(of: path)
            existed = false
        } else if st.st_mode & S_IFMT == S_IFDIR {
            throw VnicError("database \(path) is a directory, not a database file")
        } else if st.st_mode & S_IFMT != S_IFREG {
            throw VnicError("database \(path) is not a regular file")
        } else {
            existed = true
        }

        var options = LMDBEnvironment.Options()
        options.mapSize = mapSize
        let environment: LMDBEnvironment
        var readOnlyReason: String?
        do {
            environment = try LMDBEnvironment.open(path: path, options: options)
        } catch let e as LMDBError where existed && (e.code == EACCES || e.code == EROFS) {
            // No write access to the data file (or the lock file): read what is there.
            options.readOnly = true
            readOnlyReason = String(cString: strerror(e.code))
            do { environment = try LMDBEnvironment.open(path: path, options: options) } catch { throw openError(error, path) }
        } catch let e as LMDBError where !existed && (e.code == EACCES || e.code == EROFS) {
            throw VnicError("create database \(path): \(String(cString: strerror(e.code)))")
        } catch {
            throw openError(error, path)
        }
        if readOnlyReason == nil && environment.isReadOnly { readOnlyReason = "opened read-only by this process" }
        // A file cut short (a failed copy, a full disk during a copy): refuse it
        // before anything reads a page past its end.
        // Its size now, after the open (LMDB writes the meta pages into an empty file).
        var opened = stat()
        if existed, stat(path, &opened) == 0, Int(opened.st_size) < environment.pagesSize {
            throw VnicError("database \(path) is truncated: \(opened.st_size) bytes, its pages need \(environment.pagesSize) (restore it from a copy)")
        }

        return try mapErrors { () throws -> ConfigStore in
            // What is there: the schema version (nil: not initialized) and the tables it has.
            let found: (version: UInt32?, tables: Tables?) = try {
                let txn = try ReadTransaction(environment)
                guard let meta = try txn.openDatabase(Schema.Table.meta.rawValue, create: false),
                      let v = try txn.get(meta, key: Schema.schemaVersionKey) else {
                    try txn.commit()
                    return (nil, nil)
                }
                let version = try checkSchema(v, path)
                switch try Tables.open(in: txn, version: version) {
                case .success(let t):
                    try txn.commit()   // keeps the table handles for the environment
                    return (version, t)
                case .failure(let missing):
                    throw VnicError("database \(path) is not a vnic configuration database (no table '\(missing.table.rawValue)')")
                }
            }()

            let tables: Tables
            if let version = found.version, let t = found.tables, version == Schema.version || readOnlyReason != nil {
                tables = t   // current, or older and read as it is
            } else if found.version == nil && !create {
                let why = try environment.read { txn in
                    try txn.openDatabase(Schema.Table.meta.rawValue, create: false) == nil ? "no table 'meta'" : "no schema version"
                }
                throw VnicError("database \(path) is not a vnic configuration database (\(why))")
            } else if let reason = readOnlyReason {
                throw VnicError("database \(path) is read-only (\(reason)) and not initialized")
            } else {
                // Initialize or migrate, re-checking inside the write transaction:
                // another process may have done it meanwhile.
                tables = try environment.write { txn in
                    let t = try Tables(creatingIn: &txn)
                    if let v = try txn.get(t.meta, key: Schema.schemaVersionKey) {
                        let version = try checkSchema(v, path)
                        if version < Schema.version {
                            _ = try Schema.migrate(from: version, tables: t, &txn)
                            let g = try txn.get(t.meta, key: Schema.generationKey).flatMap(Schema.decodeU64) ?? 0
                            try txn.put(t.meta, key: Array(Schema.generationKey.utf8), value: Schema.u64Value(g &+ 1))
                        }
                    } else {
                        try txn.put(t.meta, key: Array(Schema.schemaVersionKey.utf8), value: Schema.u32Value(Schema.version))
                        try txn.put(t.meta, key: Array(Schema.generationKey.utf8), value: Schema.u64Value(1))
                    }
                    return t
                }
            }
            var reader = try ReadTransaction(environment)
            reader.reset()
            return ConfigStore(path: path, environment: environment, tables: tables, readOnlyReason: readOnlyReason, reader: reader)
        }
    }

    @discardableResult
    private static func checkSchema(_ v: UnsafeRawBufferPointer, _ path: String) throws(VnicError) -> UInt32 {
        guard let version = Schema.decodeU32(v) else {
            throw VnicError("database \(path) has a corrupt schema version (\(v.count) bytes)")
        }
        guard version >= 1 else { throw VnicError("database \(path) has schema version 0") }
        guard version <= Schema.version else {
            throw VnicError("database \(path) has schema version \(version); this build reads up to \(Schema.version)")
        }
        return version
    }

    /// The schema version stored in the file (below `schemaVersion` only when
    /// an older database was opened without write access).
    public func storedSchemaVersion() throws(VnicError) -> UInt32 {
        try withSnapshot { txn throws in
            guard let v = try txn.get(tables.meta, key: Schema.schemaVersionKey) else { throw VnicError("no schema version") }
            return try ConfigStore.checkSchema(v, path)
        }
    }

    private static func openError(_ error: any Error, _ path: String) -> VnicError {
        guard let e = error as? LMDBError else { return VnicError("open database \(path): \(error)") }
        if e.code == MDB_INVALID || e.code == MDB_VERSION_MISMATCH {
            return VnicError("database \(path) is not an LMDB database this build can read (\(e.message))")
        }
        return VnicError(e.description)
    }

    private static func makeParentDirectory(of path: String) throws(VnicError) {
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
        } catch {
            var st = stat()
            let why = stat(parent, &st) == 0 ? "not a directory" : (error as NSError).localizedDescription
            throw VnicError("create directory \(parent) for database \(path): \(why)")
        }
    }

    // MARK: reading

    /// The number of committed configuration changes so far (a fresh database
    /// has 1). Cheap: one lookup in the reused read transaction.
    public func generation() throws(VnicError) -> UInt64 {
        try withSnapshot { txn throws in try readGeneration(txn) }
    }

    /// Every VNIC, sorted by name.
    public func vnics() throws(VnicError) -> [VNICRecord] {
        try withSnapshot { txn throws in try readVNICs(txn) }
    }

    /// The generation and every VNIC (sorted by name), from one snapshot.
    public func snapshot() throws(VnicError) -> ConfigSnapshot {
        try withSnapshot { txn throws in ConfigSnapshot(generation: try readGeneration(txn), vnics: try readVNICs(txn)) }
    }

    /// The etcd revision this database is the copy of (a fleet host's), or
    /// nil when it has never been synced from etcd.
    public func fleetRevision() throws(VnicError) -> UInt64? {
        try withSnapshot { txn throws in try txn.get(tables.meta, key: Schema.fleetRevisionKey).flatMap(Schema.decodeU64) }
    }

    public func vnic(named name: String) throws(VnicError) -> VNICRecord? {
        try withSnapshot { txn throws in
            guard let i = try indexOf(name: name, txn) else { return nil }
            return try readRecord(index: i, txn)
        }
    }

    /// The VNIC `name`, or every VNIC when `name` is nil (what `show-*`
    /// commands list); a usage error when the named one does not exist.
    public func vnics(named name: String?) throws(VnicError) -> [VNICRecord] {
        guard let name else { return try vnics() }
        guard let r = try vnic(named: name) else { throw .usage("VNIC '\(name)' does not exist") }
        return [r]
    }

    public func vnic(index: UInt32) throws(VnicError) -> VNICRecord? {
        try withSnapshot { txn throws in try readRecord(index: index, txn) }
    }

    /// Audit entries with a sequence number above `after`, oldest first; only
    /// those of `vnic` when given; at most `limit` (the oldest ones).
    public func auditEntries(after: UInt64 = 0, vnic: String? = nil, limit: Int = .max) throws(VnicError) -> [AuditEntry] {
        guard let audit = tables.audit else { return [] }
        return try withSnapshot { txn throws in
            var out: [AuditEntry] = []
            guard limit > 0 else { return out }
            try txn.forEach(in: audit, from: AuditEntry.key(after &+ 1)) { key, value in
                guard let seq = AuditEntry.sequence(ofKey: key) else { return true }
                let e = try AuditEntry.decode(value, sequence: seq)
                if vnic == nil || e.vnic == vnic { out.append(e) }
                return out.count < limit
            }
            return out
        }
    }

    /// The sequence number of the newest audit entry (0 when there is none).
    public func lastAuditSequence() throws(VnicError) -> UInt64 {
        guard let audit = tables.audit else { return 0 }
        return try withSnapshot { txn throws in
            try txn.lastKey(in: audit).flatMap { k in k.withUnsafeBytes { AuditEntry.sequence(ofKey: $0) } } ?? 0
        }
    }

    /// Runs `body` in the reused read transaction, renewed to the latest commit.
    private func withSnapshot<R>(_ body: (borrowing ReadTransaction) throws -> R) throws(VnicError) -> R {
        try mapErrors {
            try reader.withLock { txn in
                try txn.renew()
                defer { txn.reset() }
                return try body(txn)
            }
        }
    }

    func readGeneration<T: LMDBTransaction & ~Copyable>(_ txn: borrowing T) throws -> UInt64 {
        guard let b = try txn.get(tables.meta, key: Schema.generationKey), let g = Schema.decodeU64(b) else {
            throw VnicError("database \(path) has no valid generation")
        }
        return g
    }

    func readVNICs<T: LMDBTransaction & ~Copyable>(_ txn: borrowing T) throws -> [VNICRecord] {
        var indexes: [UInt32] = []
        try txn.forEach(in: tables.names) { key, value in
            guard let i = Schema.decodeIndexValue(value) else {
                throw VnicError("database \(path): corrupt entry for '\(String(decoding: key, as: UTF8.self))' in table names")
            }
            indexes.append(i)
            return true
        }
        return try indexes.map { i in
            guard let r = try readRecord(index: i, txn) else {
                throw VnicError("database \(path): VNIC index \(i) is named but has no record")
            }
            return r
        }
    }

    func readRecord<T: LMDBTransaction & ~Copyable>(index: UInt32, _ txn: borrowing T) throws -> VNICRecord? {
        guard let b = try txn.get(tables.vnics, key: Schema.indexKey(index)) else { return nil }
        do {
            return try VNICRecordCodec.decode(b)
        } catch {
            throw VnicError("database \(path): VNIC index \(index): \(error.message)")
        }
    }

    func indexOf<T: LMDBTransaction & ~Copyable>(name: String, _ txn: borrowing T) throws -> UInt32? {
        guard let b = try txn.get(tables.names, key: name) else { return nil }
        guard let i = Schema.decodeIndexValue(b) else {
            throw VnicError("database \(path): corrupt entry for '\(name)' in table names")
        }
        return i
    }

    // MARK: writing

    /// Runs `body` in one write transaction and commits it: all of its changes
    /// or (when it throws, or the commit fails) none. The generation is bumped
    /// once when the configuration changed; a transaction that only appended
    /// audit entries commits without a bump; one that did nothing is not
    /// committed. Writers of all processes take turns.
    public func update<R>(_ body: (inout ConfigTransaction) throws(VnicError) -> R) throws(VnicError) -> R {
        if let reason = readOnlyReason { throw VnicError("database \(path) is read-only (\(reason)); nothing was changed") }
        return try writeErrors {
            var tx = ConfigTransaction(store: self, txn: try WriteTransaction(environment))
            let result = try body(&tx)
            try tx.finish()
            return result
        }
    }

    /// Stores a new VNIC (see `ConfigTransaction.create`) in its own transaction.
    @discardableResult
    public func create(_ record: VNICRecord) throws(VnicError) -> VNICRecord {
        try update { (tx) throws(VnicError) in try tx.create(record) }
    }

    /// Removes a VNIC (see `ConfigTransaction.delete`) in its own transaction.
    @discardableResult
    public func delete(name: String) throws(VnicError) -> VNICRecord {
        try update { (tx) throws(VnicError) in try tx.delete(name: name) }
    }

    /// Whether commits flush the meta page separately (LMDB's default) or, off,
    /// once per commit (MDB_NOMETASYNC): atomicity and consistency stay, a power
    /// loss may undo the last commit. vnicd turns it off for its own commits
    /// (VM requests, audit entries) so a reply does not wait for two flushes.
    public func setSyncMetadata(_ enabled: Bool) throws(VnicError) {
        let rc = mdb_env_set_flags(environment.handle, UInt32(MDB_NOMETASYNC), enabled ? 0 : 1)
        guard rc == MDB_SUCCESS else {
            throw VnicError(LMDBError(code: rc, operation: "set flags of database \(path)").description)
        }
    }

    /// Appends audit entries (the daemon's VM requests it refused, spoof
    /// warnings) in one transaction. Does not bump the generation. Returns
    /// the entries with their sequence numbers.
    @discardableResult
    public func appendAudit(_ entries: [AuditEntry]) throws(VnicError) -> [AuditEntry] {
        try update { (tx) throws(VnicError) in try entries.map { (e) throws(VnicError) in try tx.appendAudit(e) } }
    }

    /// A VM's request to set `parameter` to `value`, attributed to the VNIC at
    /// `index` (the daemon knows it from the port the request arrived on):
    /// parsed, validated, checked against the VNIC's policy and uniqueness,
    /// applied when allowed, and audited either way (origin vm), in one
    /// transaction; `confirm` (a fleet host's) commits an allowed change where
    /// it must be first, or refuses it. Throws only for database failures.
    public func handleVMRequest(index: UInt32, parameter: String, value: String, via: String = "VM request",
                                confirm: ConfirmVMRequest? = nil) throws(VnicError) -> VMRequestOutcome {
        try update { (tx) throws(VnicError) in
            try tx.handleVMRequest(index: index, parameter: parameter, value: value, via: via, confirm: confirm)
        }
    }

    /// Maps a failed write to one line: read-only, full (MDB_MAP_FULL), no
    /// space; in every case the transaction was aborted and nothing changed.
    func writeErrors<R>(_ body: () throws -> R) throws(VnicError) -> R {
        do {
            return try body()
        } catch let e as VnicError {
            throw e
        } catch let e as LMDBError {
            throw writeError(e)
        } catch {
            throw VnicError("\(error)")
        }
    }

    func writeError(_ e: LMDBError) -> VnicError {
        switch e.code {
        case MDB_MAP_FULL:
            let size = environment.mapSize
            let text = size < 1 << 20 ? "\(size / 1024) KiB" : "\(size >> 20) MiB"
            return VnicError("database \(path) is full (map size \(text); \(ConfigStore.mapSizeVariable) raises it); nothing was changed")
        case ENOSPC:
            return VnicError("database \(path): no space left on device; nothing was changed")
        case EROFS, EACCES, EPERM:
            return VnicError("database \(path) is read-only (\(String(cString: strerror(e.code)))); nothing was changed")
        default:
            return VnicError("\(e.description); nothing was changed")
        }
    }

    // MARK: checking

    /// Cross-checks the tables (every name, MAC and port entry points at a
    /// record that has it, every record is named, decodes and validates) and
    /// returns the problems found; empty when consistent.
    public func consistencyProblems() throws(VnicError) -> [String] {
        try withSnapshot { txn throws in
            var problems: [String] = []
            var records: [UInt32: VNICRecord] = [:]
            try txn.forEach(in: tables.vnics) { key, value in
                guard let i = Schema.decodeIndexKey(key) else { problems.append("vnics: key of \(key.count) bytes"); return true }
                do {
                    let r = try VNICRecordCodec.decode(value)
                    if r.index != i { problems.append("vnics: record under index \(i) says index \(r.index)") }
                    if !VNICRecord.indexRange.contains(i) { problems.append("vnics: index \(i) out of range") }
                    do throws(VnicError) { try r.validate() } catch { problems.append("vnics: index \(i): \(error.message)") }
                    records[i] = r
                } catch {
                    problems.append("vnics: index \(i): \(error)")
                }
                return true
            }
            problems += try checkIndexTable(tables.names, records, txn) { Array($0.name.utf8) }
            problems += try checkIndexTable(tables.macs, records, txn) { Schema.macKey($0.mac) }
            problems += try checkIndexTable(tables.ports, records, txn) { $0.port.map { Array($0.utf8) } }
            if let audit = tables.audit {
                var previous: UInt64 = 0
                try txn.forEach(in: audit) { key, value in
                    guard let seq = AuditEntry.sequence(ofKey: key), seq > previous else {
                        problems.append("audit: key out of order after \(previous)")
                        return true
                    }
                    previous = seq
                    do throws(VnicError) { _ = try AuditEntry.decode(value, sequence: seq) } catch { problems.append("audit: \(error.message)") }
                    return true
                }
            }
            return problems
        }
    }

    /// Checks that `table` holds exactly one entry per record with a `field`,
    /// keyed by it and pointing at that record.
    private func checkIndexTable(_ table: LMDBDatabase, _ records: [UInt32: VNICRecord], _ txn: borrowing ReadTransaction,
                                 field: (VNICRecord) -> [UInt8]?) throws -> [String] {
        var problems: [String] = []
        var count = 0
        try txn.forEach(in: table) { key, value in
            count += 1
            guard let i = Schema.decodeIndexValue(value), let r = records[i] else {
                problems.append("\(table.name): an entry points at no record")
                return true
            }
            if field(r) != Array(key) { problems.append("\(table.name): entry for index \(i) does not match VNIC '\(r.name)'") }
            return true
        }
        let expected = records.values.filter { field($0) != nil }.count
        if count != expected { problems.append("\(table.name): \(count) entries for \(expected) VNICs") }
        return problems
    }

    /// Maps LMDB failures to runtime errors and passes VnicErrors through.
    private func mapErrors<R>(_ body: () throws -> R) throws(VnicError) -> R {
        try ConfigStore.mapErrors(body)
    }

    static func mapErrors<R>(_ body: () throws -> R) throws(VnicError) -> R {
        do {
            return try body()
        } catch let e as VnicError {
            throw e
        } catch let e as LMDBError {
            throw VnicError(e.description)
        } catch {
            throw VnicError("\(error)")
        }
    }
}

/// The whole configuration at one generation.
public struct ConfigSnapshot: Equatable, Sendable {
    public var generation: UInt64
    /// Sorted by name.
    public var vnics: [VNICRecord]
    public init(generation: UInt64, vnics: [VNICRecord]) {
        self.generation = generation
        self.vnics = vnics
    }
}

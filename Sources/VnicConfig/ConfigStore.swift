// ConfigStore: the VNIC configuration database (see Schema.swift for its layout).
//
// Writers (vnicadm, later the control plane) commit one LMDB write transaction
// per change; it checks uniqueness, writes the record and its indexes, and bumps
// the generation, so every reader sees all of a change or none of it, and a
// writer killed mid-transaction leaves the last commit intact. Writers of all
// processes take turns on LMDB's writer lock.
// Readers (vnicd) poll `generation()` and reload (`snapshot()`) when it moves;
// reads reuse one read transaction (reset + renew), so polling allocates nothing
// in LMDB and costs one lookup.
// Every error is a VnicError: 2 for bad input (invalid or conflicting values,
// unknown VNIC), 1 for everything else (missing or unreadable database, LMDB).
import CLMDB
import Foundation
import Synchronization
import VnicCore

public final class ConfigStore: Sendable {
    /// `/var/lib/vnic/vnic.db`: where the database lives without `--db` or `$VNIC_DB`.
    public static let defaultPath = "/var/lib/vnic/vnic.db"
    /// The environment variable naming the database.
    public static let pathVariable = "VNIC_DB"
    /// The schema this build writes and reads.
    public static let schemaVersion = Schema.version

    public let path: String
    let environment: LMDBEnvironment
    let tables: Tables
    /// Reused read transaction; reset between uses.
    private let reader: Mutex<ReadTransaction>

    private init(path: String, environment: LMDBEnvironment, tables: Tables, reader: consuming ReadTransaction) {
        self.path = path
        self.environment = environment
        self.tables = tables
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

    // Opening is serialized in the process: LMDB wants sub-databases opened from
    // one transaction at a time.
    private static let openLock = Mutex(())

    /// Opens the database at `path`. With `create`, a missing file (and its
    /// missing parent directories, mode 0755) is created and initialized;
    /// without, a missing file is an error naming the path. A file this process
    /// already has open is shared (LMDB allows one environment per file and process).
    public static func open(path: String, create: Bool) throws(VnicError) -> ConfigStore {
        try openLock.withLock { _ throws(VnicError) in try openLocked(path: path, create: create) }
    }

    private static func openLocked(path: String, create: Bool) throws(VnicError) -> ConfigStore {
        guard !path.isEmpty else { throw .usage("database path is empty") }
        var st = stat()
        if stat(path, &st) != 0 {
            let err = errno
            guard err == ENOENT else { throw VnicError("database \(path): \(String(cString: strerror(err)))") }
            guard create else {
                throw VnicError("database \(path) does not exist (create a VNIC with vnicadm create-vnic first)")
            }
            try makeParentDirectory(of: path)
        } else if st.st_mode & S_IFMT == S_IFDIR {
            throw VnicError("database \(path) is a directory, not a database file")
        } else if st.st_mode & S_IFMT != S_IFREG {
            throw VnicError("database \(path) is not a regular file")
        }

        let environment: LMDBEnvironment
        do {
            environment = try LMDBEnvironment.open(path: path)
        } catch let e as LMDBError where e.code == EACCES && !create {
            // A reader without write access to the data file (not the lock file).
            var ro = LMDBEnvironment.Options()
            ro.readOnly = true
            do { environment = try LMDBEnvironment.open(path: path, options: ro) } catch { throw openError(error, path) }
        } catch {
            throw openError(error, path)
        }

        return try mapErrors { () throws -> ConfigStore in
            let tables: Tables
            if create && !environment.isReadOnly {
                tables = try environment.write { txn in
                    let t = try Tables(creatingIn: &txn)
                    if let v = try txn.get(t.meta, key: Schema.schemaVersionKey) {
                        try checkSchema(v, path)
                    } else {
                        try txn.put(t.meta, key: Array(Schema.schemaVersionKey.utf8), value: Schema.u32Value(Schema.version))
                        try txn.put(t.meta, key: Array(Schema.generationKey.utf8), value: Schema.u64Value(1))
                    }
                    return t
                }
            } else {
                let txn = try ReadTransaction(environment)
                switch try Tables.open(in: txn) {
                case .success(let t): tables = t
                case .failure(let missing):
                    throw VnicError("database \(path) is not a vnic configuration database (no table '\(missing.table.rawValue)')")
                }
                guard let v = try txn.get(tables.meta, key: Schema.schemaVersionKey) else {
                    throw VnicError("database \(path) is not a vnic configuration database (no schema version)")
                }
                try checkSchema(v, path)
                try txn.commit()   // keeps the table handles for the environment
            }
            var reader = try ReadTransaction(environment)
            reader.reset()
            return ConfigStore(path: path, environment: environment, tables: tables, reader: reader)
        }
    }

    private static func checkSchema(_ v: UnsafeRawBufferPointer, _ path: String) throws(VnicError) {
        guard let version = Schema.decodeU32(v) else {
            throw VnicError("database \(path) has a corrupt schema version (\(v.count) bytes)")
        }
        guard version <= Schema.version else {
            throw VnicError("database \(path) has schema version \(version); this build reads up to \(Schema.version)")
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

    /// The number of committed writes so far (a fresh database has 1). Cheap:
    /// one lookup in the reused read transaction.
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

    public func vnic(named name: String) throws(VnicError) -> VNICRecord? {
        try withSnapshot { txn throws in
            guard let i = try indexOf(name: name, txn) else { return nil }
            return try readRecord(index: i, txn)
        }
    }

    public func vnic(index: UInt32) throws(VnicError) -> VNICRecord? {
        try withSnapshot { txn throws in try readRecord(index: index, txn) }
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

    private func readGeneration<T: LMDBTransaction & ~Copyable>(_ txn: borrowing T) throws -> UInt64 {
        guard let b = try txn.get(tables.meta, key: Schema.generationKey), let g = Schema.decodeU64(b) else {
            throw VnicError("database \(path) has no valid generation")
        }
        return g
    }

    private func readVNICs<T: LMDBTransaction & ~Copyable>(_ txn: borrowing T) throws -> [VNICRecord] {
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

    private func readRecord<T: LMDBTransaction & ~Copyable>(index: UInt32, _ txn: borrowing T) throws -> VNICRecord? {
        guard let b = try txn.get(tables.vnics, key: Schema.indexKey(index)) else { return nil }
        do {
            return try VNICRecordCodec.decode(b)
        } catch {
            throw VnicError("database \(path): VNIC index \(index): \(error.message)")
        }
    }

    private func indexOf<T: LMDBTransaction & ~Copyable>(name: String, _ txn: borrowing T) throws -> UInt32? {
        guard let b = try txn.get(tables.names, key: name) else { return nil }
        guard let i = Schema.decodeIndexValue(b) else {
            throw VnicError("database \(path): corrupt entry for '\(name)' in table names")
        }
        return i
    }

    // MARK: writing

    /// Stores a new VNIC: validates it, refuses a name, MAC or port already in
    /// use (usage errors naming the VNIC that has it), assigns the smallest free
    /// index, and returns the record as stored.
    @discardableResult
    public func create(_ record: VNICRecord) throws(VnicError) -> VNICRecord {
        try record.validate()
        return try write { txn in
            let t = tables
            if try txn.get(t.names, key: record.name) != nil {
                throw VnicError.usage("VNIC '\(record.name)' already exists")
            }
            if let owner = try owner(of: t.macs, key: Schema.macKey(record.mac), txn) {
                throw VnicError.usage("mac \(record.mac) is already used by VNIC '\(owner)'")
            }
            if let port = record.port, let owner = try owner(of: t.ports, key: Array(port.utf8), txn) {
                throw VnicError.usage("port \(port) is already used by VNIC '\(owner)'")
            }
            var stored = record
            stored.index = try smallestFreeIndex(txn)
            let index = Schema.indexValue(stored.index)
            // NOOVERWRITE on every unique key: the checks above give the message,
            // these make a violation impossible to commit.
            var fresh = try txn.put(t.vnics, key: Schema.indexKey(stored.index),
                                    value: VNICRecordCodec.encode(stored), noOverwrite: true)
            fresh = try txn.put(t.names, key: Array(stored.name.utf8), value: index, noOverwrite: true) && fresh
            fresh = try txn.put(t.macs, key: Schema.macKey(stored.mac), value: index, noOverwrite: true) && fresh
            if let port = stored.port {
                fresh = try txn.put(t.ports, key: Array(port.utf8), value: index, noOverwrite: true) && fresh
            }
            guard fresh else { throw VnicError("database \(path): a unique key of VNIC '\(stored.name)' is already present") }
            return stored
        }
    }

    /// Removes a VNIC and frees its index; a usage error if there is none by that name.
    /// Returns the record removed.
    @discardableResult
    public func delete(name: String) throws(VnicError) -> VNICRecord {
        try write { txn in
            let t = tables
            guard let index = try indexOf(name: name, txn) else {
                throw VnicError.usage("VNIC '\(name)' does not exist")
            }
            guard let record = try readRecord(index: index, txn) else {
                throw VnicError("database \(path): VNIC '\(name)' (index \(index)) has no record")
            }
            try txn.delete(t.names, key: Array(name.utf8))
            try txn.delete(t.vnics, key: Schema.indexKey(index))
            try deleteIndexEntry(t.macs, key: Schema.macKey(record.mac), ifIndex: index, &txn)
            if let port = record.port { try deleteIndexEntry(t.ports, key: Array(port.utf8), ifIndex: index, &txn) }
            return record
        }
    }

    /// Runs `body` in a write transaction, bumps the generation and commits.
    private func write<R>(_ body: (inout WriteTransaction) throws -> R) throws(VnicError) -> R {
        try mapErrors {
            try environment.write { txn in
                let result = try body(&txn)
                let next = try readGeneration(txn) &+ 1
                try txn.put(tables.meta, key: Array(Schema.generationKey.utf8), value: Schema.u64Value(next))
                return result
            }
        }
    }

    private func owner(of table: LMDBDatabase, key: [UInt8], _ txn: borrowing WriteTransaction) throws -> String? {
        guard let b = try txn.get(table, key: key) else { return nil }
        guard let i = Schema.decodeIndexValue(b), let r = try readRecord(index: i, txn) else { return "?" }
        return r.name
    }

    private func deleteIndexEntry(_ table: LMDBDatabase, key: [UInt8], ifIndex index: UInt32,
                                  _ txn: inout WriteTransaction) throws {
        if let b = try txn.get(table, key: key), Schema.decodeIndexValue(b) == index {
            try txn.delete(table, key: key)
        }
    }

    /// The smallest index in `VNICRecord.indexRange` that no VNIC has.
    private func smallestFreeIndex(_ txn: borrowing WriteTransaction) throws -> UInt32 {
        var candidate = VNICRecord.indexRange.lowerBound
        try txn.forEach(in: tables.vnics) { key, _ in
            guard let i = Schema.decodeIndexKey(key) else { return true }
            if i < candidate { return true }
            if i > candidate { return false }   // a gap: candidate is free
            candidate += 1
            return candidate <= VNICRecord.indexRange.upperBound
        }
        guard VNICRecord.indexRange.contains(candidate) else {
            throw VnicError("database \(path): no free VNIC index (all \(VNICRecord.indexRange.count) in use)")
        }
        return candidate
    }

    // MARK: checking

    /// Cross-checks the tables (every name, MAC and port entry points at a
    /// record that has it, every record is named) and returns the problems
    /// found; empty when consistent.
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
                    records[i] = r
                } catch {
                    problems.append("vnics: index \(i): \(error)")
                }
                return true
            }
            problems += try checkIndexTable(tables.names, records, txn) { Array($0.name.utf8) }
            problems += try checkIndexTable(tables.macs, records, txn) { Schema.macKey($0.mac) }
            problems += try checkIndexTable(tables.ports, records, txn) { $0.port.map { Array($0.utf8) } }
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

    private static func mapErrors<R>(_ body: () throws -> R) throws(VnicError) -> R {
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

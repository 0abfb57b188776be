// LMDB: small owning Swift types over LMDB's C API, in the style of swift-system.
//
// - `LMDBEnvironment`: one memory-mapped database file (`MDB_NOSUBDIR`: the data
//   is PATH, the lock table PATH-lock). Opened once per process per file: LMDB
//   forbids opening the same file twice in one process (closing the second copy
//   would drop the first one's locks), so `open` returns the environment that
//   is already open for that file, and closing happens under the same lock.
// - `ReadTransaction` / `WriteTransaction`: `~Copyable` owners of an `MDB_txn`;
//   dropping one aborts it. A read transaction is a snapshot; `reset()` +
//   `renew()` reuse it without a new allocation (`MDB_NOTLS` lets it move
//   between threads, never be used by two at once). A write transaction is
//   begun, used and committed on one thread (LMDB's writer lock is a mutex).
// - `LMDBDatabase`: a named sub-database handle (`MDB_dbi`), valid for the
//   environment's life once the transaction that opened it has committed.
// - `LMDBError`: the LMDB or errno code plus what was being done, printed as
//   "open database /x/vnic.db: No such file or directory".
//
// Values returned by `get` and `forEach` point into the map and are valid only
// while their transaction is open and not reset: copy what must outlive it.
import CLMDB
import Synchronization
import VnicCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed LMDB call: the code (an LMDB `MDB_*` code or an errno) and what was
/// being done when it failed. Everything in LMDB.swift throws this.
public struct LMDBError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var operation: String
    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }
    /// LMDB's own text for `code` (the corresponding C function is `mdb_strerror`).
    public var message: String { String(cString: mdb_strerror(code)) }
    public var description: String { "\(operation): \(message)" }

    public static let notFound: Int32 = MDB_NOTFOUND
    public static let keyExists: Int32 = MDB_KEYEXIST
    public static let invalid: Int32 = MDB_INVALID
    public static let mapFull: Int32 = MDB_MAP_FULL
    public static let mapResized: Int32 = MDB_MAP_RESIZED
}

@inline(__always)
func lmdbCheck(_ rc: Int32, _ operation: @autoclosure () -> String) throws {
    if rc != MDB_SUCCESS { throw LMDBError(code: rc, operation: operation()) }
}

/// A named sub-database of an environment (the corresponding C type is `MDB_dbi`).
public struct LMDBDatabase: Hashable, Sendable {
    public let name: String
    public let dbi: MDB_dbi
}

/// One LMDB environment: a memory-mapped database file and its lock file.
public final class LMDBEnvironment: @unchecked Sendable {
    // @unchecked: the MDB_env is thread-safe for everything this type exposes
    // (transactions serialize writers; readers use MDB_NOTLS); it is closed only
    // in deinit, when no transaction can hold a reference any more.

    public struct Options: Sendable {
        /// Upper bound of the map (and so of the file); the file grows as needed.
        public var mapSize: Int = 1 << 30
        /// How many named sub-databases may be opened.
        public var maxDatabases: UInt32 = 32
        /// Reader slots shared by all processes (one per live read transaction).
        public var maxReaders: UInt32 = 126
        /// Mode of a newly created data file (and its lock file).
        public var fileMode: mode_t = 0o644
        /// Open with `MDB_RDONLY`: reads only (the lock file must still be writable).
        public var readOnly = false
        public init() {}
    }

    /// The `MDB_env *`.
    public let handle: OpaquePointer
    public let path: String
    public let isReadOnly: Bool
    private let fileID: FileID

    private init(handle: OpaquePointer, path: String, readOnly: Bool, fileID: FileID) {
        self.handle = handle
        self.path = path
        self.isReadOnly = readOnly
        self.fileID = fileID
    }

    /// Opens the database file at `path` (creating it when missing, unless
    /// read-only), or returns the environment this process already has open for
    /// the same file (then `options` are not applied again).
    /// The corresponding C functions are `mdb_env_create` and `mdb_env_open`.
    public static func open(path: String, options: Options = Options()) throws -> LMDBEnvironment {
        while true {
            let found: Result<LMDBEnvironment?, any Error> = registry.withLock { open in
                var st = stat()
                if stat(path, &st) == 0, let entry = open[FileID(st)] {
                    // nil: its last reference is gone and it is closing; wait for that.
                    return .success(entry.environment)
                }
                do {
                    let env = try openNew(path: path, options: options)
                    open[env.fileID] = WeakEnvironment(environment: env)
                    return .success(env)
                } catch {
                    return .failure(error)
                }
            }
            switch found {
            case .success(let env?): return env
            case .success(nil): sched_yield()
            case .failure(let error): throw error
            }
        }
    }

    private static func openNew(path: String, options: Options) throws -> LMDBEnvironment {
        var env: OpaquePointer?
        try lmdbCheck(mdb_env_create(&env), "create LMDB environment for \(path)")
        guard let env else { throw LMDBError(code: ENOMEM, operation: "create LMDB environment for \(path)") }
        do {
            try lmdbCheck(mdb_env_set_mapsize(env, options.mapSize), "set map size of database \(path)")
            try lmdbCheck(mdb_env_set_maxdbs(env, options.maxDatabases), "set max databases of database \(path)")
            try lmdbCheck(mdb_env_set_maxreaders(env, options.maxReaders), "set max readers of database \(path)")
            var flags = UInt32(MDB_NOSUBDIR) | UInt32(MDB_NOTLS)
            if options.readOnly { flags |= UInt32(MDB_RDONLY) }
            try lmdbCheck(mdb_env_open(env, path, flags, options.fileMode), "open database \(path)")
            var fd: Int32 = -1
            try lmdbCheck(mdb_env_get_fd(env, &fd), "open database \(path)")
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw LMDBError(code: errno, operation: "stat database \(path)") }
            // Reader slots of processes that died (kill -9) inside a read
            // transaction would pin old pages forever: free them now.
            var dead: Int32 = 0
            _ = mdb_reader_check(env, &dead)
            return LMDBEnvironment(handle: env, path: path, readOnly: options.readOnly, fileID: FileID(st))
        } catch {
            mdb_env_close(env)
            throw error
        }
    }

    deinit {
        let id = fileID
        let env = handle
        LMDBEnvironment.registry.withLock { open in
            mdb_env_close(env)
            if open[id]?.environment == nil { open[id] = nil }
        }
    }

    /// Runs `body` in a fresh read transaction (a snapshot of the last commit).
    public func read<R>(_ body: (borrowing ReadTransaction) throws -> R) throws -> R {
        let txn = try ReadTransaction(self)
        return try body(txn)
    }

    /// Runs `body` in a write transaction and commits it; if `body` throws, the
    /// transaction is aborted and nothing is written. Writers of all processes
    /// take turns (LMDB's writer lock); the commit is durable when this returns.
    @discardableResult
    public func write<R>(_ body: (inout WriteTransaction) throws -> R) throws -> R {
        var txn = try WriteTransaction(self)
        let result = try body(&txn)
        try txn.commit()
        return result
    }

    /// The map size in bytes: the most the database file may grow to
    /// (the corresponding C function is `mdb_env_info`).
    public var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info.me_mapsize
    }

    /// The bytes the data file must hold for the pages its meta page counts
    /// (LMDB reads them through the map: a shorter file would fault, SIGBUS).
    public var pagesSize: Int {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        mdb_env_info(handle, &info)
        mdb_env_stat(handle, &stat)
        return (info.me_last_pgno + 1) * Int(stat.ms_psize)
    }

    /// Frees the reader slots of dead processes; returns how many it freed.
    /// The corresponding C function is `mdb_reader_check`.
    @discardableResult
    public func removeStaleReaders() -> Int {
        var dead: Int32 = 0
        _ = mdb_reader_check(handle, &dead)
        return Int(dead)
    }

    /// Adopts a map size grown by another process (after `MDB_MAP_RESIZED`).
    func adoptMapSize() throws {
        try lmdbCheck(mdb_env_set_mapsize(handle, 0), "adopt new map size of database \(path)")
    }

    // Open environments of this process, by file identity.
    private struct FileID: Hashable {
        var device: UInt64
        var inode: UInt64
        init(_ st: stat) { device = UInt64(st.st_dev); inode = UInt64(st.st_ino) }
    }
    private struct WeakEnvironment { weak var environment: LMDBEnvironment? }
    private static let registry = Mutex<[FileID: WeakEnvironment]>([:])
}

/// Begins a transaction, adopting a map grown by another process once.
private func beginTransaction(_ env: LMDBEnvironment, flags: UInt32, what: String) throws -> OpaquePointer {
    var txn: OpaquePointer?
    var rc = mdb_txn_begin(env.handle, nil, flags, &txn)
    if rc == MDB_MAP_RESIZED {
        try env.adoptMapSize()
        rc = mdb_txn_begin(env.handle, nil, flags, &txn)
    }
    try lmdbCheck(rc, "begin \(what) transaction on database \(env.path)")
    guard let txn else { throw LMDBError(code: EINVAL, operation: "begin \(what) transaction on database \(env.path)") }
    return txn
}

/// Operations every transaction has: lookups, scans, opening sub-databases.
public protocol LMDBTransaction: ~Copyable {
    /// The `MDB_txn *`; valid while the transaction is.
    var handle: OpaquePointer { get }
    var environment: LMDBEnvironment { get }
}

extension LMDBTransaction where Self: ~Copyable {
    /// The value stored under `key`, or nil. The bytes point into the map and
    /// are valid until this transaction ends or is reset.
    /// The corresponding C function is `mdb_get`.
    public func get(_ db: LMDBDatabase, key: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer? {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val()
        let rc = mdb_get(handle, db.dbi, &k, &v)
        if rc == MDB_NOTFOUND { return nil }
        try lmdbCheck(rc, "read \(db.name) in database \(environment.path)")
        return UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)
    }

    public func get(_ db: LMDBDatabase, key: [UInt8]) throws -> UnsafeRawBufferPointer? {
        try key.withUnsafeBytes { (k) in try get(db, key: k) }
    }

    public func get(_ db: LMDBDatabase, key: String) throws -> UnsafeRawBufferPointer? {
        try get(db, key: Array(key.utf8))
    }

    /// Calls `body` with every key and value of `db` in key order, from the first
    /// key >= `start` when given, until it returns false. The buffers are valid
    /// only during the call. The corresponding C function is `mdb_cursor_get`
    /// (`MDB_FIRST` or `MDB_SET_RANGE`, then `MDB_NEXT`).
    public func forEach(in db: LMDBDatabase, from start: [UInt8]? = nil,
                        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool) throws {
        var cursor: OpaquePointer?
        try lmdbCheck(mdb_cursor_open(handle, db.dbi, &cursor), "scan \(db.name) in database \(environment.path)")
        defer { mdb_cursor_close(cursor) }
        let first = start ?? []
        try first.withUnsafeBytes { (kb) throws in
            var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            var v = MDB_val()
            var op = start == nil ? MDB_FIRST : MDB_SET_RANGE
            while true {
                let rc = mdb_cursor_get(cursor, &k, &v, op)
                if rc == MDB_NOTFOUND { return }
                try lmdbCheck(rc, "scan \(db.name) in database \(environment.path)")
                guard try body(UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size),
                               UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)) else { return }
                op = MDB_NEXT
            }
        }
    }

    /// The last key of `db` in key order, copied; nil when `db` is empty.
    public func lastKey(in db: LMDBDatabase) throws -> [UInt8]? {
        var cursor: OpaquePointer?
        try lmdbCheck(mdb_cursor_open(handle, db.dbi, &cursor), "scan \(db.name) in database \(environment.path)")
        defer { mdb_cursor_close(cursor) }
        var k = MDB_val(), v = MDB_val()
        let rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST)
        if rc == MDB_NOTFOUND { return nil }
        try lmdbCheck(rc, "scan \(db.name) in database \(environment.path)")
        return Array(UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size))
    }

    /// How many entries `db` holds (the corresponding C function is `mdb_stat`).
    public func count(_ db: LMDBDatabase) throws -> Int {
        var st = MDB_stat()
        try lmdbCheck(mdb_stat(handle, db.dbi, &st), "stat \(db.name) in database \(environment.path)")
        return st.ms_entries
    }

    /// Opens the named sub-database; nil when it does not exist and `create` is
    /// false. LMDB requires that a process open sub-databases from one
    /// transaction at a time, finished before the next opens any: callers
    /// serialize (ConfigStore opens them under its open lock). The handle stays
    /// valid after this transaction commits; an abort closes it.
    /// The corresponding C function is `mdb_dbi_open`.
    func openDatabase(_ name: String, create: Bool) throws -> LMDBDatabase? {
        var dbi: MDB_dbi = 0
        let rc = mdb_dbi_open(handle, name, create ? UInt32(MDB_CREATE) : 0, &dbi)
        if rc == MDB_NOTFOUND && !create { return nil }
        try lmdbCheck(rc, "open table \(name) in database \(environment.path)")
        return LMDBDatabase(name: name, dbi: dbi)
    }
}

/// A read-only snapshot of the database. Dropping it aborts it.
/// Sendable: with `MDB_NOTLS` a read transaction may move to another thread
/// (never be used by two at once, which `~Copyable` already rules out). A write
/// transaction is not: LMDB's writer lock belongs to the thread that began it.
public struct ReadTransaction: ~Copyable, LMDBTransaction, @unchecked Sendable {
    public let handle: OpaquePointer
    public let environment: LMDBEnvironment
    private var isFinished = false

    /// Begins a read transaction (the corresponding C function is `mdb_txn_begin`).
    public init(_ environment: LMDBEnvironment) throws {
        self.environment = environment
        handle = try beginTransaction(environment, flags: UInt32(MDB_RDONLY), what: "read")
    }

    /// Releases the snapshot but keeps the transaction object and its reader
    /// slot for `renew()`. The corresponding C function is `mdb_txn_reset`.
    public mutating func reset() {
        mdb_txn_reset(handle)
    }

    /// Takes a new snapshot (of the latest commit of any process) after `reset()`.
    /// The corresponding C function is `mdb_txn_renew`.
    public mutating func renew() throws {
        var rc = mdb_txn_renew(handle)
        if rc == MDB_MAP_RESIZED {
            try environment.adoptMapSize()
            rc = mdb_txn_renew(handle)
        }
        try lmdbCheck(rc, "renew read transaction on database \(environment.path)")
    }

    /// Ends the transaction keeping the sub-database handles it opened.
    /// The corresponding C function is `mdb_txn_commit`.
    public consuming func commit() throws {
        isFinished = true
        try lmdbCheck(mdb_txn_commit(handle), "finish read transaction on database \(environment.path)")
    }

    deinit {
        if !isFinished { mdb_txn_abort(handle) }
    }
}

/// The one write transaction of the database (all processes take turns).
/// Dropping it uncommitted aborts it.
public struct WriteTransaction: ~Copyable, LMDBTransaction {
    public let handle: OpaquePointer
    public let environment: LMDBEnvironment
    private var isFinished = false

    /// Begins a write transaction, waiting for the writer lock
    /// (the corresponding C function is `mdb_txn_begin`).
    public init(_ environment: LMDBEnvironment) throws {
        self.environment = environment
        handle = try beginTransaction(environment, flags: 0, what: "write")
    }

    /// Stores `value` under `key`. With `noOverwrite`, an existing key is left
    /// alone and the result is false. The corresponding C function is `mdb_put`.
    @discardableResult
    public mutating func put(_ db: LMDBDatabase, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                             noOverwrite: Bool = false) throws -> Bool {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        let rc = mdb_put(handle, db.dbi, &k, &v, noOverwrite ? UInt32(MDB_NOOVERWRITE) : 0)
        if rc == MDB_KEYEXIST && noOverwrite { return false }
        try lmdbCheck(rc, "write \(db.name) in database \(environment.path)")
        return true
    }

    /// Appends `value` under `key`, which must sort after every key of `db`
    /// (the corresponding C function is `mdb_put` with `MDB_APPEND`).
    public mutating func append(_ db: LMDBDatabase, key: [UInt8], value: [UInt8]) throws {
        try key.withUnsafeBytes { (kb) in
            try value.withUnsafeBytes { (vb) in
                var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
                var v = MDB_val(mv_size: vb.count, mv_data: UnsafeMutableRawPointer(mutating: vb.baseAddress))
                try lmdbCheck(mdb_put(handle, db.dbi, &k, &v, UInt32(MDB_APPEND)), "append to \(db.name) in database \(environment.path)")
            }
        }
    }

    @discardableResult
    public mutating func put(_ db: LMDBDatabase, key: [UInt8], value: [UInt8],
                             noOverwrite: Bool = false) throws -> Bool {
        try key.withUnsafeBytes { (k) in
            try value.withUnsafeBytes { (v) in
                try put(db, key: k, value: v, noOverwrite: noOverwrite)
            }
        }
    }

    /// Removes `key`; false when it was not there. The corresponding C function is `mdb_del`.
    @discardableResult
    public mutating func delete(_ db: LMDBDatabase, key: [UInt8]) throws -> Bool {
        try key.withUnsafeBytes { (kb) in
            var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            let rc = mdb_del(handle, db.dbi, &k, nil)
            if rc == MDB_NOTFOUND { return false }
            try lmdbCheck(rc, "delete from \(db.name) in database \(environment.path)")
            return true
        }
    }

    /// Opens (creating when missing) a named sub-database; see `openDatabase(_:create:)`.
    func createDatabase(_ name: String) throws -> LMDBDatabase {
        // openDatabase(create: true) never returns nil.
        try openDatabase(name, create: true)!
    }

    /// Makes the changes durable and visible to new snapshots, or throws and
    /// writes nothing. The corresponding C function is `mdb_txn_commit`.
    public consuming func commit() throws {
        isFinished = true   // mdb_txn_commit frees the transaction even when it fails
        try lmdbCheck(mdb_txn_commit(handle), "commit to database \(environment.path)")
    }

    deinit {
        if !isFinished { mdb_txn_abort(handle) }
    }
}

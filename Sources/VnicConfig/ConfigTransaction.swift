// ConfigTransaction: the changes one write transaction makes (ConfigStore.update).
// Every operation keeps the store's invariants inside the transaction: records
// validate, names/MACs/ports are unique (their index tables follow the record),
// indexes are never shared, and each change to a VNIC appends audit entries
// (one per field that changed). Nothing is visible to others until the
// transaction commits; if anything throws, none of it is.
import CLMDB
import VnicCore

/// Where a VM's request inside its policy must also be committed before it is
/// accepted (a fleet host: etcd, with a compare on the VNIC's revision): called
/// with the record and the record the request makes of it, inside the write
/// transaction; nil: committed there, go on; a reason: the request is denied
/// with it and nothing changes.
public typealias ConfirmVMRequest = (_ record: VNICRecord, _ requested: VNICRecord) -> String?

public struct ConfigTransaction: ~Copyable {
    let store: ConfigStore
    var txn: WriteTransaction
    /// Whether the configuration changed (then the generation is bumped once).
    public private(set) var configurationChanged = false
    /// Whether audit entries were appended.
    public private(set) var auditAppended = false
    /// Whether the fleet revision was written.
    private var metaWritten = false
    /// Every index below this one is known to be taken (a batch of creates
    /// then finds the next free index without rescanning).
    private var freeIndexHint = VNICRecord.indexRange.lowerBound
    private var nextAuditSequence: UInt64?

    init(store: ConfigStore, txn: consuming WriteTransaction) {
        self.store = store
        self.txn = txn
    }

    private var tables: Tables { store.tables }
    private var path: String { store.path }

    /// Commits (bumping the generation when the configuration changed), or
    /// aborts when nothing was written.
    consuming func finish() throws {
        if configurationChanged {
            let next = try store.readGeneration(txn) &+ 1
            try txn.put(tables.meta, key: Array(Schema.generationKey.utf8), value: Schema.u64Value(next))
        }
        if auditAppended, let audit = tables.audit {
            try trimAudit(audit)
        }
        if configurationChanged || auditAppended || metaWritten {
            try txn.commit()
        }
        // else: dropping the transaction aborts it.
    }

    // MARK: reading inside the transaction (sees its own changes)

    /// Every VNIC, sorted by name.
    public func vnics() throws(VnicError) -> [VNICRecord] {
        try store.writeErrors { () throws in try store.readVNICs(txn) }
    }

    /// The etcd revision the database is the copy of (nil: never synced).
    public func fleetRevision() throws(VnicError) -> UInt64? {
        try store.writeErrors { () throws in try txn.get(tables.meta, key: Schema.fleetRevisionKey).flatMap(Schema.decodeU64) }
    }

    /// Records that the database is now the copy of etcd revision `revision`
    /// (committed with the transaction's changes; alone, it commits too).
    public mutating func setFleetRevision(_ revision: UInt64) throws(VnicError) {
        _ = try store.writeErrors { () throws in
            try txn.put(tables.meta, key: Array(Schema.fleetRevisionKey.utf8), value: Schema.u64Value(revision))
        }
        metaWritten = true
    }

    public func vnic(named name: String) throws(VnicError) -> VNICRecord? {
        try store.writeErrors {
            guard let i = try store.indexOf(name: name, txn) else { return nil }
            return try store.readRecord(index: i, txn)
        }
    }

    public func vnic(index: UInt32) throws(VnicError) -> VNICRecord? {
        try store.writeErrors { try store.readRecord(index: index, txn) }
    }

    /// The VNIC named `name`; a usage error naming it when there is none.
    public func existing(_ name: String) throws(VnicError) -> VNICRecord {
        guard let r = try vnic(named: name) else { throw .usage("VNIC '\(name)' does not exist") }
        return r
    }

    // MARK: changes

    /// Stores a new VNIC: validates it, refuses a name, MAC or port already in
    /// use (usage errors naming the VNIC that has it), assigns the smallest free
    /// index, audits the creation, and returns the record as stored.
    @discardableResult
    public mutating func create(_ record: VNICRecord, reason: String = "create-vnic") throws(VnicError) -> VNICRecord {
        try record.validate()
        let stored = try store.writeErrors { () throws -> VNICRecord in
            let t = tables
            if try txn.get(t.names, key: record.name) != nil {
                throw VnicError.usage("VNIC '\(record.name)' already exists")
            }
            if let owner = try owner(of: t.macs, key: Schema.macKey(record.mac)) {
                throw VnicError.usage("mac \(record.mac) is already used by VNIC '\(owner)'")
            }
            if let port = record.port, let owner = try owner(of: t.ports, key: Array(port.utf8)) {
                throw VnicError.usage("port \(port) is already used by VNIC '\(owner)'")
            }
            var stored = record
            stored.index = try smallestFreeIndex()
            freeIndexHint = stored.index + 1
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
        configurationChanged = true
        try appendAudit(AuditEntry(vnic: stored.name, origin: .host, parameter: "vnic", old: nil,
                                   new: "\(stored.mac) on \(stored.link)", verdict: .applied, reason: reason))
        return stored
    }

    /// Removes a VNIC and frees its index; a usage error if there is none by
    /// that name. Audits the removal; returns the record removed.
    @discardableResult
    public mutating func delete(name: String, reason: String = "delete-vnic") throws(VnicError) -> VNICRecord {
        let record = try store.writeErrors { () throws -> VNICRecord in
            let t = tables
            guard let index = try store.indexOf(name: name, txn) else {
                throw VnicError.usage("VNIC '\(name)' does not exist")
            }
            guard let record = try store.readRecord(index: index, txn) else {
                throw VnicError("database \(path): VNIC '\(name)' (index \(index)) has no record")
            }
            try txn.delete(t.names, key: Array(name.utf8))
            try txn.delete(t.vnics, key: Schema.indexKey(index))
            try deleteIndexEntry(t.macs, key: Schema.macKey(record.mac), ifIndex: index)
            if let port = record.port { try deleteIndexEntry(t.ports, key: Array(port.utf8), ifIndex: index) }
            freeIndexHint = min(freeIndexHint, index)
            return record
        }
        configurationChanged = true
        try appendAudit(AuditEntry(vnic: name, origin: .host, parameter: "vnic", old: "\(record.mac) on \(record.link)",
                                   new: nil, verdict: .applied, reason: reason))
        return record
    }

    /// Changes the VNIC named `name` with `change`, then validates the result,
    /// keeps the MAC and port indexes in step (refusing a MAC or port another
    /// VNIC has), stores it, and appends one audit entry per field (and
    /// policy) that changed, with `origin`, `verdict` and `reason`. Name and
    /// index cannot change. Returns the record as stored; an unchanged record
    /// writes nothing.
    @discardableResult
    public mutating func update(name: String, origin: AuditEntry.Origin = .host, verdict: AuditEntry.Verdict = .applied,
                                reason: String, _ change: (inout VNICRecord) throws(VnicError) -> Void) throws(VnicError) -> VNICRecord {
        let old = try existing(name)
        var new = old
        try change(&new)
        guard new.name == old.name, new.index == old.index else {
            throw .usage("\(new.name != old.name ? "name" : "index"): cannot be changed (delete and create the VNIC instead)")
        }
        guard new != old else { return old }
        try new.validate()
        try store.writeErrors { () throws in
            let t = tables
            let index = Schema.indexValue(old.index)
            if new.mac != old.mac {
                if let owner = try owner(of: t.macs, key: Schema.macKey(new.mac)) {
                    throw VnicError.usage("mac \(new.mac) is already used by VNIC '\(owner)'")
                }
                try deleteIndexEntry(t.macs, key: Schema.macKey(old.mac), ifIndex: old.index)
                try txn.put(t.macs, key: Schema.macKey(new.mac), value: index, noOverwrite: true)
            }
            if new.port != old.port {
                if let port = new.port, let owner = try owner(of: t.ports, key: Array(port.utf8)) {
                    throw VnicError.usage("port \(port) is already used by VNIC '\(owner)'")
                }
                if let port = old.port { try deleteIndexEntry(t.ports, key: Array(port.utf8), ifIndex: old.index) }
                if let port = new.port { try txn.put(t.ports, key: Array(port.utf8), value: index, noOverwrite: true) }
            }
            try txn.put(t.vnics, key: Schema.indexKey(old.index), value: VNICRecordCodec.encode(new))
        }
        configurationChanged = true
        for p in VNICParameter.allCases {
            let a = p.text(of: old), b = p.text(of: new)
            if a != b {
                try appendAudit(AuditEntry(vnic: name, origin: origin, parameter: p.rawValue, old: a, new: b,
                                           verdict: verdict, reason: reason))
            }
        }
        for p in VNICParameter.policyParameters where old.policy[p] != new.policy[p] {
            try appendAudit(AuditEntry(vnic: name, origin: origin, parameter: "policy." + p.rawValue,
                                       old: old.policy.text(p), new: new.policy.text(p), verdict: verdict, reason: reason))
        }
        return new
    }

    /// Appends one audit entry and returns it with its sequence number.
    @discardableResult
    public mutating func appendAudit(_ entry: AuditEntry) throws(VnicError) -> AuditEntry {
        guard let audit = tables.audit else {
            throw VnicError("database \(path) has no audit log (schema \(Schema.version) needed)")
        }
        var e = entry
        try store.writeErrors { () throws in
            let seq = try nextAuditSequence ?? ((try txn.lastKey(in: audit)).flatMap { k in
                k.withUnsafeBytes { AuditEntry.sequence(ofKey: $0) }
            } ?? 0) + 1
            e.sequence = seq
            try txn.append(audit, key: AuditEntry.key(seq), value: e.encode())
            nextAuditSequence = seq + 1
        }
        auditAppended = true
        return e
    }

    /// See `ConfigStore.handleVMRequest`.
    public mutating func handleVMRequest(index: UInt32, parameter name: String, value: String, via: String = "VM request",
                                         confirm: ConfirmVMRequest? = nil) throws(VnicError) -> VMRequestOutcome {
        guard let record = try vnic(index: index) else {
            let e = try appendAudit(AuditEntry(vnic: "#\(index)", origin: .vm, parameter: name, old: nil, new: value,
                                               verdict: .denied, reason: "no VNIC has index \(index)"))
            return VMRequestOutcome(entry: e, record: nil)
        }
        func deny(_ why: String, old: String?) throws(VnicError) -> VMRequestOutcome {
            let e = try appendAudit(AuditEntry(vnic: record.name, origin: .vm, parameter: name, old: old, new: value,
                                               verdict: .denied, reason: why))
            return VMRequestOutcome(entry: e, record: record)
        }
        guard let p = VNICParameter(rawValue: name) else { return try deny("unknown parameter", old: nil) }
        let old = p.text(of: record)
        guard p.vmMayChange else { return try deny("\(name) is not changeable by the VM", old: old) }
        let candidate: VNICRecord
        do {
            candidate = try record.requesting(p, value)
        } catch {
            return try deny(error.message, old: old)
        }
        if candidate != record, let confirm, let refusal = confirm(record, candidate) {
            return try deny(refusal, old: old)   // e.g. the fleet's store did not take it
        }
        let stored: VNICRecord
        do {
            stored = try update(name: record.name, origin: .vm, verdict: .accepted, reason: via) { r in r = candidate }
        } catch where error.exitCode == 2 {
            return try deny(error.message, old: old)   // e.g. a MAC another VNIC has
        }
        if stored == record {   // already that value: nothing to change, audit the request anyway
            let e = try appendAudit(AuditEntry(vnic: record.name, origin: .vm, parameter: name, old: old, new: old,
                                               verdict: .accepted, reason: "\(via) (unchanged)"))
            return VMRequestOutcome(entry: e, record: stored)
        }
        let e = AuditEntry(vnic: record.name, origin: .vm, parameter: name, old: old, new: p.text(of: stored),
                           verdict: .accepted, reason: via)
        return VMRequestOutcome(entry: e, record: stored)
    }

    // MARK: helpers

    private func owner(of table: LMDBDatabase, key: [UInt8]) throws -> String? {
        guard let b = try txn.get(table, key: key) else { return nil }
        guard let i = Schema.decodeIndexValue(b), let r = try store.readRecord(index: i, txn) else { return "?" }
        return r.name
    }

    private mutating func deleteIndexEntry(_ table: LMDBDatabase, key: [UInt8], ifIndex index: UInt32) throws {
        if let b = try txn.get(table, key: key), Schema.decodeIndexValue(b) == index {
            try txn.delete(table, key: key)
        }
    }

    /// The smallest index in `VNICRecord.indexRange` that no VNIC has, scanning
    /// from `freeIndexHint` (every index below it is taken).
    private mutating func smallestFreeIndex() throws -> UInt32 {
        var candidate = max(freeIndexHint, VNICRecord.indexRange.lowerBound)
        guard candidate <= VNICRecord.indexRange.upperBound else {
            throw VnicError("database \(path): no free VNIC index (all \(VNICRecord.indexRange.count) in use)")
        }
        try txn.forEach(in: tables.vnics, from: Schema.indexKey(candidate)) { key, _ in
            guard let i = Schema.decodeIndexKey(key) else { return true }
            if i < candidate { return true }
            if i > candidate { return false }   // a gap: candidate is free
            candidate += 1
            return candidate <= VNICRecord.indexRange.upperBound
        }
        guard VNICRecord.indexRange.contains(candidate) else {
            throw VnicError("database \(path): no free VNIC index (all \(VNICRecord.indexRange.count) in use)")
        }
        freeIndexHint = candidate
        return candidate
    }

    /// Drops the oldest audit entries beyond `ConfigStore.auditCapacity`.
    private mutating func trimAudit(_ audit: LMDBDatabase) throws {
        let excess = try txn.count(audit) - ConfigStore.auditCapacity
        guard excess > 0 else { return }
        var keys: [[UInt8]] = []
        try txn.forEach(in: audit) { key, _ in
            keys.append(Array(key))
            return keys.count < excess
        }
        for k in keys { try txn.delete(audit, key: k) }
    }
}

/// What became of a VM's request: the audit entry written (its verdict and
/// reason) and the VNIC's record afterwards (nil when no VNIC had the index).
public struct VMRequestOutcome: Sendable {
    public var entry: AuditEntry
    public var record: VNICRecord?
    public var accepted: Bool { entry.verdict == .accepted }
}

// FleetSync: a host's LMDB database as its local copy of the fleet's desired
// state in etcd (issue 19). etcd holds every host's VNICs under
//
//   /vnic/v1/hosts/HOST/vnics/NAME   the VNIC's record (VNICRecordCodec, the
//                                    database's own format; its index is the
//                                    host's business and ignored)
//
// The copy is made by listing HOST's keys at a revision and converging the
// database to them in one transaction (`resync`), then following a watch from
// the next revision, each watch message (whole etcd revisions) applied in one
// transaction (`apply`). Each transaction stores the etcd revision it brings
// the database to (ConfigStore.fleetRevision), and events at or below it are
// skipped: applying is idempotent, and a restart resumes from the stored
// revision. A revision etcd has compacted away means listing again: whatever
// happened meanwhile, the database converges to exactly what etcd holds. The
// fast path and vnicd's reconciler read the database as before: they do not
// know the fleet exists.
import Foundation
import Synchronization
import VnicConfig
import VnicCore

public final class FleetSync: Sendable {
    public let client: EtcdClient
    public let store: ConfigStore
    public let host: String
    private let following = Mutex<EtcdWatch?>(nil)
    private let counts = Mutex((resyncs: 0, applied: 0, errors: [String](), reported: 0))
    private let changed: @Sendable () -> Void
    /// When a VM request last found etcd unreachable (monotonic ns).
    private let unreachableSince = Mutex<UInt64?>(nil)

    /// `changed` is called after each transaction that changed the database (to wake vnicd's loop).
    public init(client: EtcdClient, store: ConfigStore, host: String, changed: @escaping @Sendable () -> Void = {}) {
        self.client = client; self.store = store; self.host = host; self.changed = changed
    }

    public static func vnicsPrefix(host: String) -> String { "/vnic/v1/hosts/\(host)/vnics/" }
    public static func key(host: String, vnic: String) -> String { vnicsPrefix(host: host) + vnic }

    /// How many times the copy was made from a full listing, and how many watch messages were applied.
    public var resyncs: Int { counts.withLock { $0.resyncs } }
    public var applied: Int { counts.withLock { $0.applied } }
    /// What could not be applied (a record that does not decode or validate), a line each.
    public var errors: [String] { counts.withLock { $0.errors } }
    /// The errors since the last call (vnicd logs them once a second).
    public func newErrors() -> [String] {
        counts.withLock { c in defer { c.reported = c.errors.count }; return Array(c.errors.dropFirst(min(c.reported, c.errors.count))) }
    }

    /// Lists this host's VNICs at etcd's latest revision and makes the
    /// database exactly their copy in one transaction; returns the revision.
    @discardableResult
    public func resync() throws(VnicError) -> Int64 {
        let (revision, kvs) = try client.list(prefix: FleetSync.vnicsPrefix(host: host))
        var desired: [String: VNICRecord] = [:]
        for kv in kvs {
            if let r = decode(kv) { desired[r.name] = r }
        }
        let reason = "fleet: etcd revision \(revision) (listed)"
        let changedAny = try store.update { (tx) throws(VnicError) -> Bool in
            let before = tx.configurationChanged
            // Removals first (a name, MAC or port may pass to another VNIC), then changes, then new ones.
            for old in try tx.vnics() where desired[old.name] == nil { try tx.delete(name: old.name, reason: reason) }
            for r in desired.values.sorted(by: { $0.name < $1.name }) { try upsert(&tx, r, reason: reason) }
            try tx.setFleetRevision(UInt64(revision))
            return tx.configurationChanged != before
        }
        counts.withLock { $0.resyncs += 1 }
        if changedAny { changed() }
        return revision
    }

    /// Applies one watch message's events (puts and deletes of this host's
    /// VNIC keys) in one transaction, with the revision it reaches; what is
    /// at or below the stored revision is skipped.
    public func apply(_ events: [WatchEvent]) throws(VnicError) {
        let prefix = FleetSync.vnicsPrefix(host: host)
        let changedAny = try store.update { (tx) throws(VnicError) -> Bool in
            let stored = Int64(try tx.fleetRevision() ?? 0)
            var top: Int64 = stored
            let before = tx.configurationChanged
            for e in events {
                switch e {
                case .put(let kv) where kv.modRevision > stored && kv.key.hasPrefix(prefix):
                    top = max(top, kv.modRevision)
                    guard let r = decode(kv) else { continue }
                    try upsert(&tx, r, reason: "fleet: etcd revision \(kv.modRevision)")
                case .delete(let key, let revision) where revision > stored && key.hasPrefix(prefix):
                    top = max(top, revision)
                    let name = String(key.dropFirst(prefix.count))
                    if try tx.vnic(named: name) != nil { try tx.delete(name: name, reason: "fleet: etcd revision \(revision)") }
                case .progress(let revision) where revision > stored:
                    top = max(top, revision)
                default:
                    break
                }
            }
            if top > stored { try tx.setFleetRevision(UInt64(top)) }
            return tx.configurationChanged != before
        }
        counts.withLock { $0.applied += 1 }
        if changedAny { changed() }
    }

    /// A VM's request the policy allows, committed to etcd before the VM is
    /// told "accepted" (the patent's method across the fleet): a put of the
    /// requested record on condition that the VNIC's key is still at the
    /// revision of the record checked. nil: committed; else why not, for the
    /// audit log: an admin's change meanwhile wins (the VM hears of the value
    /// that stands when it arrives), and with etcd unreachable VM requests are
    /// denied while forwarding goes on.
    public func commitVMRequest(_ record: VNICRecord, _ requested: VNICRecord) -> String? {
        let key = FleetSync.key(host: host, vnic: record.name)
        // The caller holds the database's write transaction and vnicd's control
        // thread: within 2 s of finding etcd unreachable, say so at once.
        let now = DispatchTime.now().uptimeNanoseconds
        if let last = unreachableSince.withLock({ $0 }), now &- last < 2_000_000_000 {
            return "fleet store unreachable"
        }
        do {
            guard let kv = try client.get(key) else { return "fleet: VNIC \(record.name) is not in the fleet store" }
            var current = try VNICRecordCodec.decode(kv.value)
            current.index = record.index
            guard current == record else { return "fleet: changed in the fleet store meanwhile" }
            let done = try client.transaction(if: [.modRevision(key, kv.modRevision)],
                                              then: [.put(key, VNICRecordCodec.encode(requested))])
            return done.succeeded ? nil : "fleet: changed in the fleet store meanwhile"
        } catch {
            unreachableSince.withLock { $0 = now }
            return "fleet store unreachable (\(error.message))"
        }
    }

    /// Follows etcd from the stored revision (a full listing first when there
    /// is none, or when etcd no longer has the revision after it).
    public func start() throws(VnicError) {
        let from: Int64
        if let stored = try store.fleetRevision() { from = Int64(stored) + 1 } else { from = try resync() + 1 }
        watch(from: from)
    }

    public func stop() {
        following.withLock { w in w?.cancel(); w = nil }
    }

    private func watch(from revision: Int64) {
        let w = EtcdWatch(client: client, prefix: FleetSync.vnicsPrefix(host: host), from: revision) { [weak self] events in
            guard let self else { return }
            if case .compacted = events.first {
                // Listed again, then followed from there, off the old watch's queue.
                DispatchQueue.global().async { self.relist() }
                return
            }
            do throws(VnicError) {
                try self.apply(events)
            } catch {
                // The database did not take it: list again rather than go on with a gap.
                self.failed("apply: \(error.message)")
                DispatchQueue.global().async { self.relist() }
            }
        }
        following.withLock { old in old?.cancel(); old = w }
    }

    private func relist() {
        guard following.withLock({ $0 != nil }) else { return }   // stopped meanwhile
        do {
            watch(from: try resync() + 1)
        } catch {
            failed("list: \(error.message)")
            DispatchQueue.global().asyncAfter(deadline: .now() + 1) { [weak self] in self?.relist() }
        }
    }

    private func failed(_ what: String) {
        counts.withLock { c in
            c.errors.append(what)
            if c.errors.count > 100 { c.errors.removeFirst(); c.reported = max(0, c.reported - 1) }
        }
    }

    /// The record under `kv`, or nil (counted as an error) when it does not decode.
    private func decode(_ kv: KeyValue) -> VNICRecord? {
        do {
            return try VNICRecordCodec.decode(kv.value)
        } catch {
            failed("\(kv.key) at revision \(kv.modRevision): \(error.message)")
            return nil
        }
    }

    /// Creates `r` or changes the VNIC of its name to it, keeping the index
    /// this host gave it. A record the database refuses (it does not validate,
    /// or takes a MAC or port another VNIC has) is left out and said in
    /// `errors`: one bad record does not hold up the host's others.
    private func upsert(_ tx: inout ConfigTransaction, _ r: VNICRecord, reason: String) throws(VnicError) {
        do {
            if try tx.vnic(named: r.name) != nil {
                try tx.update(name: r.name, reason: reason) { (old) throws(VnicError) in
                    let index = old.index
                    old = r
                    old.index = index
                }
            } else {
                try tx.create(r, reason: reason)
            }
        } catch where error.exitCode == 2 {   // a usage error: the record, not the database
            failed("vnic \(r.name): \(error.message) (\(reason))")
        }
    }
}

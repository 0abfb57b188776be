// HostPublisher: a fleet host's liveness and status in etcd (issue 19):
//
//   /vnic/v1/hosts/HOST/status   vnicd's status (RuntimeStatus as JSON: each
//                                VNIC's state and counters), put under a
//                                lease of `ttl` seconds that vnicd renews
//
//   /vnic/v1/hosts/HOST/audit/SEQ  the host's audit entries (AuditEntry's own
//                                  format; SEQ its sequence, 20 digits), the
//                                  last `auditKept` of them
//
// A host whose vnicd stopped, crashed or lost etcd for longer than the lease
// has no status key: its absence is the host's death notice. Audit entries go
// in order, from the one after the last in etcd, so none is lost while etcd
// is away (the database keeps them) and none is put twice. Everything here
// runs on a thread of its own, once a second: etcd's latency never reaches
// vnicd's control thread, which only hands over its latest status.
import Foundation
import Synchronization
import VnicConfig
import VnicCore

public final class HostPublisher: Sendable {
    public let client: EtcdClient
    public let host: String
    public let ttl: Int64
    private struct State {
        var latest: [UInt8]?
        var stopped = false
        var lease: Int64 = 0
        var published = 0
        var lastError: String?
    }
    private let state = Mutex(State())
    /// Held for a round: `stop` waits for the one in flight before it removes the key.
    private let rounds = Mutex(())

    /// The database whose audit entries go to etcd (nil: none).
    public let store: ConfigStore?
    /// How many audit entries etcd keeps per host.
    public let auditKept: UInt64
    /// The last audit sequence known to be in etcd (nil: not asked yet).
    private let auditInEtcd = Mutex<UInt64?>(nil)

    public static func statusKey(host: String) -> String { "/vnic/v1/hosts/\(host)/status" }
    public static func auditPrefix(host: String) -> String { "/vnic/v1/hosts/\(host)/audit/" }
    public static func auditKey(host: String, sequence: UInt64) -> String {
        let digits = String(sequence)
        return auditPrefix(host: host) + String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    public init(client: EtcdClient, host: String, ttl: Int64 = 5, store: ConfigStore? = nil, auditKept: UInt64 = 1000) {
        self.client = client; self.host = host; self.ttl = ttl; self.store = store; self.auditKept = auditKept
    }

    /// The status to publish next (the newest wins).
    public func publish(_ status: [UInt8]) { state.withLock { $0.latest = status } }

    /// How many times the status was put; the last failure, if the last round failed.
    public var published: Int { state.withLock { $0.published } }
    public var lastError: String? { state.withLock { $0.lastError } }

    public func start() {
        let thread = Thread { [self] in
            while !state.withLock({ $0.stopped }) {
                rounds.withLock { _ in if !state.withLock({ $0.stopped }) { round() } }
                Thread.sleep(forTimeInterval: 1)
            }
        }
        thread.name = "vnic-fleet"
        thread.start()
    }

    /// Stops publishing and removes the status key (a clean stop is said at once).
    public func stop() {
        state.withLock { $0.stopped = true }
        let lease = rounds.withLock { _ in state.withLock { $0.lease } }
        if lease != 0 { _ = try? client.delete(HostPublisher.statusKey(host: host)) }
    }

    private func round() {
        publishAudit()
        let (latest, held) = state.withLock { ($0.latest, $0.lease) }
        guard let latest else { return }
        do {
            var lease = held
            if lease != 0, try client.keepAlive(lease) <= 0 { lease = 0 }   // expired meanwhile
            if lease == 0 { lease = try client.grantLease(ttl: ttl) }
            try client.put(HostPublisher.statusKey(host: host), latest, lease: lease)
            state.withLock { $0.lease = lease; $0.published += 1; $0.lastError = nil }
        } catch {
            state.withLock { $0.lease = 0; $0.lastError = error.message }
        }
    }

    /// The database's audit entries after the last one in etcd, 100 to a
    /// transaction, then the oldest beyond `auditKept` removed.
    private func publishAudit() {
        guard let store else { return }
        do {
            var last: UInt64
            if let known = auditInEtcd.withLock({ $0 }) {
                last = known
            } else {
                let key = try client.last(prefix: HostPublisher.auditPrefix(host: host))?.key
                last = key.flatMap { UInt64($0.dropFirst(HostPublisher.auditPrefix(host: host).count)) } ?? 0
            }
            let entries = try store.auditEntries(after: last, limit: 1000)
            for chunk in stride(from: 0, to: entries.count, by: 100) {
                let part = entries[chunk..<min(chunk + 100, entries.count)]
                _ = try client.transaction(if: [], then: part.map { .put(HostPublisher.auditKey(host: host, sequence: $0.sequence), $0.encode()) })
                last = part.last!.sequence
                auditInEtcd.withLock { $0 = last }
            }
            auditInEtcd.withLock { $0 = last }
            if !entries.isEmpty && last > auditKept {
                try client.delete(from: HostPublisher.auditPrefix(host: host),
                                  to: HostPublisher.auditKey(host: host, sequence: last - auditKept + 1))
            }
        } catch {
            auditInEtcd.withLock { $0 = nil }   // ask etcd again next time
            state.withLock { $0.lastError = error.message }
        }
    }
}

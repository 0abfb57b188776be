// HostPublisher: a fleet host's liveness and status in etcd (issue 19):
//
//   /vnic/v1/hosts/HOST/status   vnicd's status (RuntimeStatus as JSON: each
//                                VNIC's state and counters), put under a
//                                lease of `ttl` seconds that vnicd renews
//
// A host whose vnicd stopped, crashed or lost etcd for longer than the lease
// has no status key: its absence is the host's death notice. Everything here
// runs on a thread of its own, once a second: etcd's latency never reaches
// vnicd's control thread, which only hands over its latest status.
import Foundation
import Synchronization
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

    public static func statusKey(host: String) -> String { "/vnic/v1/hosts/\(host)/status" }

    public init(client: EtcdClient, host: String, ttl: Int64 = 5) {
        self.client = client; self.host = host; self.ttl = ttl
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
}

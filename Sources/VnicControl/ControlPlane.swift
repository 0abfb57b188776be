// ControlPlane: vnicd's control thread as a library: the in-band configuration
// service (GuestService, with DHCPService, DHCPv6Service and RouterAdvertiser),
// the reconciler (Reconciler: a database generation in, a plan out, then
// applied), and the spoof warnings. It talks to the dataplane only through
// `ControlDataplane` (send a frame to a VM, apply the VNICs), which vnicd's
// `Dataplane` implements and unit tests fake; vnicd's executable is the wiring
// (options, signals, the poll loop).
import Glibc
import Logging
import VnicConfig
import VnicCore

/// What the control plane needs of the dataplane.
public protocol ControlDataplane: AnyObject {
    /// Queues `frame` to VNIC `index`'s VM on worker `queue`; false when that
    /// worker's ring from the control thread is full.
    @discardableResult
    func send(toVNIC index: UInt32, queue: Int, frame: [UInt8]) -> Bool
    /// The VNICs that are up now (what a plan is computed against).
    var running: [VNICSpec] { get }
    /// Carries out a plan computed against `running`; returns what changed, a line each.
    func perform(_ plan: VNICPlan) -> [String]
}

/// vnicd's log (swift-log, VnicLogHandler: one line per event on stderr).
public let logger = Logger(label: "vnicd")

public func log(_ line: String) {
    logger.info("\(line)")
}

/// Logs what a reconcile did; a long list (thousands of VNICs at start) is cut
/// to its first lines and a count.
public func log(changes: [String]) {
    changes.prefix(20).forEach(log)
    if changes.count > 20 { log("... and \(changes.count - 20) more changes") }
}

public func monotonicNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Spoofed frames become warnings for the host: at most one per second per VNIC
/// and reason, in the log and the audit log (origin vm, verdict denied), each
/// saying how many frames it stands for beyond the first (suppressed).
public struct SpoofWarnings {
    /// The drop reasons that are spoofing (the dataplane's `spoofReasons`).
    let reasons: [String]
    /// Drops already reported, per "vnic reason".
    var reported: [String: UInt64] = [:]

    public init(reasons: [String]) { self.reasons = reasons }

    /// Called once a second with the daemon's status: a warning per VNIC and
    /// reason whose drops grew since the last call.
    public mutating func check(_ status: RuntimeStatus, store: ConfigStore) {
        var entries: [AuditEntry] = []
        for (name, vnic) in status.vnics.sorted(by: { $0.key < $1.key }) {
            for reason in reasons {
                let total = vnic.drops[reason] ?? 0
                let key = name + " " + reason
                let new = total &- (reported[key] ?? 0)
                guard total > (reported[key] ?? 0) else { reported[key] = total; continue }
                reported[key] = total
                let text = "\(reason): \(new) frame\(new == 1 ? "" : "s") dropped (\(new - 1) suppressed)"
                logger.warning("vnic \(name) \(text)")
                entries.append(AuditEntry(vnic: name, origin: .vm, parameter: "frame", old: nil, new: nil,
                                          verdict: .denied, reason: text))
            }
        }
        if !entries.isEmpty {
            do { try store.appendAudit(entries) } catch { log("audit spoof warnings: \(error.message)") }
        }
    }
}

/// Follows the database for one uplink. A new generation becomes a plan
/// (`plan`: pure, a snapshot and the dataplane's running VNICs in, the actions
/// that bring the dataplane to the desired VNICs and this uplink's records
/// out), which `apply` hands to the dataplane and then to the guest service
/// (which tells the VMs what the host changed). A database that cannot
/// be read keeps the current configuration, said once per distinct error.
public final class Reconciler {
    public struct Plan: Equatable {
        public var generation: UInt64
        /// The dataplane's part: this uplink's VNICs not set down by the
        /// administrator, and the actions (update, remove, add) that make them run.
        public var vnics: VNICPlan
        /// Every VNIC record of this uplink (the guest service compares them with what it knew).
        public var records: [VNICRecord]
    }

    public let store: ConfigStore
    public let uplink: String
    let dp: any ControlDataplane
    /// The generation applied last.
    public private(set) var generation: UInt64
    /// Told of every applied plan (set once vnicd made it).
    public var guest: GuestService?
    private var lastError: String?

    public init(store: ConfigStore, uplink: String, dataplane: any ControlDataplane, generation: UInt64) {
        self.store = store; self.uplink = uplink; dp = dataplane; self.generation = generation
    }

    /// The plan for `snapshot`, against the dataplane's `running` VNICs (pure).
    public static func plan(_ snapshot: ConfigSnapshot, uplink: String, running: [VNICSpec]) -> Plan {
        let records = snapshot.vnics.filter { $0.link == uplink }
        return Plan(generation: snapshot.generation,
                    vnics: VNICPlan(running: running, desired: specs(records, uplink: uplink)), records: records)
    }

    /// The VNICs of `uplink` that the administrator has not set down, as the dataplane needs them.
    public static func specs(_ records: [VNICRecord], uplink: String) -> [VNICSpec] {
        records.filter { $0.link == uplink && $0.state == .up }.map { r in
            var s = VNICSpec(name: r.name, index: r.index, mac: r.mac, port: r.port)
            s.priority = r.priority
            return s
        }
    }

    /// The dataplane first, then the guest service; returns what the dataplane changed.
    @discardableResult
    public func apply(_ plan: Plan, now: UInt64) -> [String] {
        generation = plan.generation
        let changes = dp.perform(plan.vnics)
        guest?.configChanged(plan.records, now: now)
        return changes
    }

    /// Applies the database's latest generation if it is not the one applied.
    public func reconcile() {
        do {
            let snap = try store.snapshot()
            guard snap.generation != generation else { lastError = nil; return }
            log(changes: apply(Reconciler.plan(snap, uplink: uplink, running: dp.running), now: monotonicNow()))
            lastError = nil
        } catch {
            failed(error)
        }
    }

    /// The cheap check of the control loop: reconciles when the generation moved.
    public func poll() {
        do {
            if try store.generation() != generation { reconcile() }
        } catch {
            failed(error)
        }
    }

    private func failed(_ error: VnicError) {
        let message = "read \(store.path): \(error)"
        if message != lastError { logger.error("\(message) (keeping the current configuration)") }
        lastError = message
    }
}

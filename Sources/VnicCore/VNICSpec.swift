// VNICSpec: a VNIC as the dataplane takes it from the control plane.

/// What the dataplane needs of a VNIC to give it sockets and a place in the
/// forwarding map. Its policy (protection, sources, maxbw, dhcp, ipv6-ra, MTU)
/// is not here: the workers read it from the VNIC's record in the database,
/// once per loop, so a change applies at the next loop with no new table.
public struct VNICSpec: Equatable, Sendable {
    public var name: String
    public var index: UInt32
    public var mac: MACAddress
    public var port: String?
    /// The order in which the workers serve VNICs (high first).
    public var priority: Priority = .default
    public init(name: String, index: UInt32, mac: MACAddress, port: String?) {
        self.name = name; self.index = index; self.mac = mac; self.port = port
    }
}

/// One step that brings the dataplane's running VNICs to the desired ones.
public enum VNICAction: Equatable, Sendable, CustomStringConvertible {
    /// Same port and index: applied in place (a new MAC gets its classifier
    /// key before the old one goes; a new priority reaches the workers with
    /// their next table). No socket closes.
    case update(from: VNICSpec, to: VNICSpec)
    /// Taken down: gone from the desired set, or coming back (a new port or
    /// index, or a port the kernel recreated).
    case remove(VNICSpec, why: Removal)
    /// Brought up: new, re-added after a removal, or down until now.
    case add(VNICSpec)

    public enum Removal: Equatable, Sendable {
        /// Not desired any more (deleted, set down, moved to another uplink).
        case removed
        /// Its port or index changed: added again.
        case changed
        /// Its port changed under it (the reason, for the log): added again.
        case reattach(String)
    }

    /// The log line of an update or a removal (an addition's line says how it went).
    public var description: String {
        switch self {
        case .update(let old, let new):
            return old.mac != new.mac ? "vnic \(old.name) mac \(old.mac) -> \(new.mac)"
                : "vnic \(old.name) priority \(old.priority) -> \(new.priority)"
        case .remove(let s, .removed): return "vnic \(s.name) removed"
        case .remove(let s, .changed): return "vnic \(s.name) changed: re-adding"
        case .remove(let s, .reattach(let reason)): return "vnic \(s.name) \(reason): re-attaching"
        case .add(let s): return "vnic \(s.name) add"
        }
    }
}

/// The dataplane's part of a reconcile, computed before anything is touched
/// (as Snabb's compute_config_actions): the running VNICs and the desired ones
/// in, the actions out, in the order they are applied: updates in place, then
/// removals, then additions by index (so a VNIC re-added on a new port gets its
/// slot after the old sockets are gone).
public struct VNICPlan: Equatable, Sendable {
    /// The desired VNICs, one per name (the first of a name wins).
    public var desired: [VNICSpec]
    public var actions: [VNICAction]

    /// `reattach`: running VNICs to take down and bring up again whatever
    /// their spec, with the reason for the log.
    public init(running: [VNICSpec], desired: [VNICSpec], reattach: [String: String] = [:]) {
        var seen = Set<String>()
        let wanted = desired.filter { seen.insert($0.name).inserted }
        let byName = Dictionary(uniqueKeysWithValues: wanted.map { ($0.name, $0) })
        let running = running.sorted { $0.name < $1.name }
        var updates: [VNICAction] = [], removals: [VNICAction] = []
        var staying = Set<String>()
        for old in running {
            if let reason = reattach[old.name] {
                removals.append(.remove(old, why: byName[old.name] == nil ? .removed : .reattach(reason)))
            } else if let new = byName[old.name] {
                if new == old {
                    staying.insert(old.name)
                } else if new.index == old.index && new.port == old.port {
                    updates.append(.update(from: old, to: new))
                    staying.insert(old.name)
                } else {
                    removals.append(.remove(old, why: .changed))
                }
            } else {
                removals.append(.remove(old, why: .removed))
            }
        }
        let additions = wanted.filter { !staying.contains($0.name) }.sorted { $0.index < $1.index }.map(VNICAction.add)
        self.desired = wanted
        actions = updates + removals + additions
    }

    /// Nothing to do.
    public var isEmpty: Bool { actions.isEmpty }
}

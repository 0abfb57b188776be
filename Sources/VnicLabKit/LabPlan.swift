// From a topology and the observed kernel state to the `ip` commands that make
// the kernel match the topology. Pure: no process is run here, so the plan is
// unit-testable and `up` on a complete lab plans nothing (idempotence by
// construction, not by tolerating "File exists").
//
// Convergence rules: create what is missing, fix what `up` owns (MAC, MTU,
// admin state, the contract's address, the host's IPv6 switch, the peers'
// transmit checksum offload), never remove what others added (extra addresses, XDP
// programs). A veth end without its expected peer is deleted and the pair made
// again; a pair is never created in the root namespace. A guest's tap is QEMU's
// (it exists while the guest runs): the plan only fixes its MAC, MTU and state.

/// One command of a plan: arguments for `ip`, and how to undo it if `up` fails later.
public struct LabStep: Hashable, Sendable, CustomStringConvertible {
    public var ipArguments: [String]
    /// `ip` arguments that remove what this step created (for rollback).
    public var undo: [String]?
    /// Deleting a stale link that may vanish by itself meanwhile (its namespace is being destroyed).
    public var mayFail: Bool

    public init(_ ipArguments: [String], undo: [String]? = nil, mayFail: Bool = false) {
        self.ipArguments = ipArguments
        self.undo = undo
        self.mayFail = mayFail
    }
    public var description: String { Command.commandLine(["ip"] + ipArguments) }
}

public enum LabPlan {
    /// The shape (N, Q, K guests, G guest queues) of an existing lab as far as it
    /// can be told: the alias `up` writes on uplink0 first, else the VM namespaces,
    /// the ports (veths and taps) and uplink0's queues (K and G unknown).
    public static func existingShape(prefix: String, namespaces: [String], host: NamespaceState?)
        -> (vms: Int?, queues: Int?, qemu: Int?, guestQueues: Int?) {
        if let alias = host?[link: LabTopology.uplink]?.alias, let shape = LabTopology.shape(fromAlias: alias) {
            return (shape.vms, shape.queues, shape.qemu, shape.guestQueues)
        }
        let vmNumbers = namespaces.compactMap { LabTopology.vmNumber(namespace: $0, prefix: prefix) }
        let portNumbers = (host?.links ?? []).compactMap { LabTopology.vmNumber(port: $0.name) }
        return ((vmNumbers + portNumbers).max(), host?[link: LabTopology.uplink]?.txQueues, nil, nil)
    }

    /// Why `topology` cannot be brought up over what exists, or nil when it can
    /// (nothing there, a partial lab of the same shape, or a complete one).
    public static func conflict(_ topology: LabTopology, namespaces: [String], host: NamespaceState?) -> String? {
        let shape = existingShape(prefix: topology.prefix, namespaces: namespaces, host: host)
        let vmsDiffer = shape.vms.map { $0 != topology.vms } ?? false
        // Without the alias, fewer VMs than asked for is a partial lab, not a conflict.
        let recorded = host?[link: LabTopology.uplink]?.alias.flatMap(LabTopology.shape(fromAlias:)) != nil
        let vmsConflict = recorded ? vmsDiffer : (shape.vms ?? 0) > topology.vms
        let queuesConflict = shape.queues.map { $0 != topology.queues } ?? false
        let guestsConflict = shape.qemu.map { $0 != topology.qemuGuests } ?? false
            || (topology.qemuGuests > 0 && shape.guestQueues.map { $0 != topology.guestQueues } ?? false)
        // A VM namespace where the new lab wants a guest (no alias to tell the shape).
        let namespaceForGuest = namespaces.contains { ns in
            LabTopology.vmNumber(namespace: ns, prefix: topology.prefix).map(topology.isGuest) ?? false
        }
        guard vmsConflict || queuesConflict || guestsConflict || namespaceForGuest else { return nil }
        func flags(_ vms: Int?, _ queues: Int?, _ qemu: Int?, _ guestQueues: Int?) -> String {
            [vms.map { "--vms \($0)" }, queues.map { "--queues \($0)" },
             qemu.flatMap { $0 > 0 ? "--qemu \($0)" : nil },
             (qemu ?? 0) > 0 ? guestQueues.flatMap { $0 > 1 ? "--guest-queues \($0)" : nil } : nil]
                .compactMap { $0 }.joined(separator: " ")
        }
        var existing = flags(shape.vms, shape.queues, shape.qemu, shape.guestQueues)
        if namespaceForGuest && !recorded { existing += " (VM namespaces where guests are asked for)" }
        return "a lab with prefix '\(topology.prefix)' already exists with \(existing), "
            + "not \(flags(topology.vms, topology.queues, topology.qemuGuests, topology.guestQueues)); "
            + "remove it first with 'vnic-lab down --prefix \(topology.prefix)'"
    }

    /// The steps that make the kernel match `topology`. `observed` holds the
    /// namespaces of the lab that exist; a missing one is created.
    public static func steps(_ t: LabTopology, observed: [String: NamespaceState]) -> [LabStep] {
        var steps: [LabStep] = []
        // A namespace made by this plan starts empty: lo down, nothing else.
        func state(_ ns: String) -> NamespaceState {
            observed[ns] ?? NamespaceState(name: ns, links: [])
        }

        for ns in t.namespaces where observed[ns] == nil {
            steps.append(LabStep(["netns", "add", ns], undo: ["netns", "del", ns]))
        }
        // Before any interface exists in it, so the host's own stack never speaks on them.
        if state(t.hostNamespace).ipv6Disabled != true {
            steps.append(LabStep(["netns", "exec", t.hostNamespace, "sysctl", "-q", "-w",
                                  "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]))
        }
        for ns in t.namespaces where state(ns)[link: "lo"]?.isAdminUp != true {
            steps.append(LabStep(["-n", ns, "link", "set", "dev", "lo", "up"]))
        }

        let mtu = String(LabTopology.mtu)
        let q = String(t.queues)
        for pair in t.vethPairs {
            let host = state(pair.hostNamespace), peer = state(pair.peerNamespace)
            var hostLink = host[link: pair.hostName], peerLink = peer[link: pair.peerName]
            let paired = hostLink.flatMap { h in
                peerLink.map { p in
                    h.kind == "veth" && p.kind == "veth" && h.peerIfindex == p.ifindex && p.peerIfindex == h.ifindex
                        && h.peerNetnsID != nil && p.peerNetnsID != nil
                        && [h.txQueues, h.rxQueues, p.txQueues, p.rxQueues].allSatisfy { $0 == t.queues }
                }
            } ?? false
            if !paired {
                if hostLink != nil {
                    steps.append(LabStep(["-n", pair.hostNamespace, "link", "del", "dev", pair.hostName], mayFail: true))
                }
                if peerLink != nil {
                    steps.append(LabStep(["-n", pair.peerNamespace, "link", "del", "dev", pair.peerName], mayFail: true))
                }
                steps.append(LabStep(
                    ["-n", pair.hostNamespace, "link", "add", pair.hostName,
                     "numtxqueues", q, "numrxqueues", q, "address", pair.hostMAC.description, "mtu", mtu,
                     "type", "veth", "peer", "name", pair.peerName, "netns", pair.peerNamespace,
                     "numtxqueues", q, "numrxqueues", q, "address", pair.peerMAC.description, "mtu", mtu],
                    undo: ["-n", pair.hostNamespace, "link", "del", "dev", pair.hostName]))
                hostLink = nil
                peerLink = nil
            }
            for (ns, name, link, mac) in [(pair.hostNamespace, pair.hostName, hostLink, pair.hostMAC),
                                          (pair.peerNamespace, pair.peerName, peerLink, pair.peerMAC)] {
                guard let link else { continue }
                var change: [String] = []
                if link.mac != mac { change += ["address", mac.description] }
                if link.mtu != LabTopology.mtu { change += ["mtu", mtu] }
                if !change.isEmpty { steps.append(LabStep(["-n", ns, "link", "set", "dev", name] + change)) }
            }
            if pair.hostName == LabTopology.uplink, hostLink?.alias != t.shapeAlias {
                steps.append(LabStep(["-n", pair.hostNamespace, "link", "set", "dev", pair.hostName,
                                      "alias", t.shapeAlias]))
            }
            if !(peerLink?.ipv4.contains(pair.peerIP) ?? false) {
                steps.append(LabStep(["-n", pair.peerNamespace, "addr", "add", pair.peerIP.description,
                                      "dev", pair.peerName]))
            }
            // The peer is where a kernel stack sends from. With transmit checksum
            // offload on (the kernel's default) veth hands over TCP/UDP frames whose
            // checksum is partial, which vnicd completes for what VMs send. wire0
            // stands for a physical wire, whose frames carry full checksums: off
            // there; on the VMs' ends the kernel's default unless asked otherwise.
            let wantOff = pair.hostName == LabTopology.uplink || !t.vmChecksumOffload
            let isOff = peerLink != nil && peer.txChecksumOff.contains(pair.peerName)
            if wantOff != isOff {
                steps.append(LabStep(["netns", "exec", pair.peerNamespace, "ethtool", "-K", pair.peerName, "tx", wantOff ? "off" : "on"]))
            }
            for (ns, name, link) in [(pair.hostNamespace, pair.hostName, hostLink),
                                     (pair.peerNamespace, pair.peerName, peerLink)] where link?.isAdminUp != true {
                steps.append(LabStep(["-n", ns, "link", "set", "dev", name, "up"]))
            }
        }
        // Guests: a veth port left from a namespace VM goes; a running guest's tap
        // (QEMU's, see QEMUGuest.launch) gets the port MAC, the MTU and up.
        let host = state(t.hostNamespace)
        for vm in t.guestVMs {
            if host[link: LabTopology.vethPort(vm)] != nil {
                steps.append(LabStep(["-n", t.hostNamespace, "link", "del", "dev", LabTopology.vethPort(vm)], mayFail: true))
            }
            guard let tap = host[link: t.port(vm)] else { continue }
            var change: [String] = []
            if tap.mac != t.portMAC(vm) { change += ["address", t.portMAC(vm).description] }
            if tap.mtu != LabTopology.mtu { change += ["mtu", mtu] }
            if !tap.isAdminUp { change += ["up"] }
            if !change.isEmpty { steps.append(LabStep(["-n", t.hostNamespace, "link", "set", "dev", t.port(vm)] + change)) }
        }
        return steps
    }
}

// RouterAdvertiser: vnicd's router advertisements to the VMs whose VNIC has
// `ipv6-ra` on (RouterAdvertisement says what one holds), on the control
// thread: an answer to each router solicitation the workers hand up (unicast
// to the VM's link-local address, or all-nodes when it solicits from ::), one
// unsolicited every 200 s, and one at once when the VNIC's IPv6 addresses,
// gateway, MTU or ipv6-ra change (prefixes it lost announced with lifetime 0).
// Each goes out on the VM's port only.
import VnicConfig
import VnicCore

public final class RouterAdvertiser {
    static let allNodesMAC = MACAddress("33:33:00:00:00:01")!
    let dp: any ControlDataplane
    /// When each VNIC (by index) last got an unsolicited RA.
    var lastSent: [UInt32: UInt64] = [:]
    /// RAs sent, for the status (requests: "ra-solicited", "ra-unsolicited").
    public internal(set) var counts: [String: UInt64] = [:]
    private var nextTick: UInt64 = 0

    init(dataplane: any ControlDataplane) { dp = dataplane }

    static func mode(_ r: VNICRecord) -> RouterAdvertisement.Mode? {
        switch r.ipv6RA {
        case .off: nil
        case .slaac: .slaac
        case .managed: .managed
        }
    }

    func frame(_ r: VNICRecord, withdrawn: [IPv6CIDR] = [], to dstMAC: MACAddress = allNodesMAC,
               _ dstIP: IPv6Address = RouterAdvertisement.allNodes) -> [UInt8]? {
        guard let mode = Self.mode(r) else { return nil }
        var prefixes = RouterAdvertisement.prefixes(of: r.ips6, mode: mode)
        prefixes += withdrawn.filter { w in !prefixes.contains { $0.network == w } }
            .map { RouterAdvertisement.Prefix(network: $0, autonomous: true, withdrawn: true) }
        return RouterAdvertisement.frame(mode: mode, prefixes: prefixes, mtu: r.mtu, gateway: r.gateway6,
                                         applianceMAC: GuestService.applianceMAC, dstMAC: dstMAC, dstIP: dstIP)
    }

    /// A router solicitation from VNIC `r`'s VM, handed up on `queue`.
    func solicited(_ r: VNICRecord, queue: Int, source: IPv6Address, frame: [UInt8]) {
        let vmMAC = MACAddress(bytes: (frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]))
        // From :: (RFC 4861 6.2.6): to all-nodes; else to the soliciting address.
        let unspecified = source.hi == 0 && source.lo == 0
        guard let ra = unspecified ? self.frame(r) : self.frame(r, to: vmMAC, source) else { return }
        dp.send(toVNIC: r.index, queue: queue, frame: ra)
        counts["ra-solicited", default: 0] &+= 1
    }

    /// A new generation: an RA at once where what it says changed.
    func configChanged(old: [UInt32: VNICRecord], new records: [VNICRecord], now: UInt64) {
        for r in records where r.ipv6RA != .off {
            guard let o = old[r.index], o.name == r.name else { lastSent[r.index] = nil; continue }   // the next tick sends
            guard o.ips6 != r.ips6 || o.gateway6 != r.gateway6 || o.mtu != r.mtu || o.ipv6RA != r.ipv6RA || o.mac != r.mac else { continue }
            let had = Set(RouterAdvertisement.prefixes(of: o.ips6, mode: .slaac).map(\.network))
            let has = Set(RouterAdvertisement.prefixes(of: r.ips6, mode: .slaac).map(\.network))
            send(r, withdrawn: Array(had.subtracting(has)), now: now)
        }
        let live = Set(records.filter { $0.ipv6RA != .off }.map(\.index))
        lastSent = lastSent.filter { live.contains($0.key) }
    }

    /// Unsolicited RAs that are due (every VNIC with ipv6-ra on, every 200 s);
    /// looks once a second.
    func tick(_ records: [UInt32: VNICRecord], now: UInt64) {
        guard now >= nextTick else { return }
        nextTick = now + 1_000_000_000
        for (index, r) in records where r.ipv6RA != .off {
            if let last = lastSent[index], now &- last < RouterAdvertisement.interval * 1_000_000_000 { continue }
            send(r, now: now)
        }
    }

    private func send(_ r: VNICRecord, withdrawn: [IPv6CIDR] = [], now: UInt64) {
        guard let ra = frame(r, withdrawn: withdrawn) else { return }
        // A full ring: the next tick tries again.
        guard dp.send(toVNIC: r.index, queue: 0, frame: ra) else { return }
        lastSent[r.index] = now
        counts["ra-unsolicited", default: 0] &+= 1
    }
}

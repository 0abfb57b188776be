// GuestService: vnicd's side of the in-band configuration protocol (VnicCore's
// GuestProtocol), on the control thread, never on a worker.
//
// VM-initiated: a worker intercepts a request on a VM's port and hands it up
// tagged with that port's VNIC. Here it is decoded, answered from the cache if
// its id was seen (never applied twice), else checked against the VNIC's policy
// and committed with its audit entry in one transaction
// (ConfigStore.handleVMRequest); when accepted, the dataplane is reconciled
// (classifier, anti-spoof state, VSQ settings) and only then the VM gets the
// reply with the applied value. A denied request is audited and dropped, or
// answered with a refusal where the VNIC's `denied-requests` property is `reply`.
//
// Host-initiated: when the database changes a parameter the VM may hold (the
// parameter table's policy parameters) and the change did not come from the VM,
// the VM is notified (UDP to its port 7178), again every 200 ms until it acks
// or 3 s passed; the outcome goes to the audit log, where `vnicadm set` reads it.
// Notifications are signed with the VNIC's notification key, which the guest
// agent gets by a hello on its port (GuestProtocol says what that rests on).
//
// Router solicitations from VMs whose VNIC has ipv6-ra on come up the same way
// and go to the RouterAdvertiser.
import Foundation
import VnicConfig
import VnicCore

public final class GuestService {
    static let applianceMAC = MACAddress("02:a9:fe:a9:fe:01")!
    static let notifyInterval: UInt64 = 200_000_000
    static let notifyTimeout: UInt64 = 3_000_000_000

    let store: ConfigStore
    let dp: any ControlDataplane
    /// Reconciles the dataplane with the database now (after an accepted request).
    let reconcile: () -> Void
    /// The records as vnicd last knew them, by index: what a new generation is
    /// compared with to find host-initiated changes.
    var known: [UInt32: VNICRecord] = [:]
    /// Answers already given, per VNIC: id -> reply frame (nil: denied and dropped).
    var answered: [UInt32: [(id: UInt32, reply: [UInt8]?)]] = [:]
    /// Notifications waiting for an ack.
    struct Pending { var vnic: String; var index: UInt32; var message: GuestMessage; var frame: [UInt8]; var first: UInt64; var last: UInt64 }
    var pending: [Pending] = []
    /// Requests by outcome, for the status.
    public internal(set) var counts: [String: UInt64] = [:]
    /// The transaction id of each VNIC's last DHCP client message: a FORCERENEW
    /// must carry it (DHCPService).
    var dhcpXIDs: [UInt32: UInt32] = [:]
    /// Each VNIC's reconfigure key, handed to its DHCP client in every ACK and
    /// used to sign FORCERENEW (in memory: a restarted vnicd hands out new ones).
    var dhcpKeys: [UInt32: [UInt8]] = [:]
    /// Each VNIC's notification key (GuestProtocol), handed out on a hello; in
    /// memory, like the DHCP keys.
    var notifyKeys: [UInt32: [UInt8]] = [:]
    /// Router advertisements to the VMs with ipv6-ra on.
    public let advertiser: RouterAdvertiser
    /// Where an allowed request must be committed first (a fleet host: etcd,
    /// FleetSync.commitVMRequest); nil: the database alone.
    public var confirmRequest: ConfirmVMRequest?

    public init(store: ConfigStore, dataplane: any ControlDataplane, records: [VNICRecord], reconcile: @escaping () -> Void) {
        self.store = store
        dp = dataplane
        self.reconcile = reconcile
        advertiser = RouterAdvertiser(dataplane: dataplane)
        known = Dictionary(records.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
    }

    // MARK: VM to appliance

    /// A frame a worker handed up from VNIC `index`'s port (worker `queue`).
    public func handle(index: UInt32, queue: Int, frame: [UInt8]) {
        if let source = RouterAdvertisement.solicitation(frame) {
            guard let r = known[index] else { return }
            return advertiser.solicited(r, queue: queue, source: source, frame: frame)
        }
        if DHCPv6Message.clientDatagram(frame) != nil { return dhcp6(index: index, queue: queue, frame: frame) }   // DHCPv6Service
        guard let udp = FrameBuilder.udpPayload(frame), frame.count >= 12 else { return count("malformed") }
        if udp.dstPort == 67 { return dhcp(index: index, queue: queue, payload: udp.payload) }   // DHCPService
        let message: GuestMessage
        switch GuestMessage.decode(udp.payload) {
        case .success(let m): message = m
        case .failure: return count("malformed")
        }
        let vmMAC = MACAddress(bytes: (frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]))
        switch message.kind {
        case .ack: acknowledged(index: index, message)
        case .request: request(index: index, queue: queue, message, vmMAC: vmMAC, vmIP: udp.srcIP, vmPort: udp.srcPort)
        case .hello where message.parameter == GuestProtocol.keyParameter:
            // Answered on the port it came in on only, to the address and port it came from.
            let reply = FrameBuilder.guestFrame(dst: vmMAC, src: Self.applianceMAC, srcIP: GuestProtocol.serviceAddress,
                                                dstIP: udp.srcIP.rawValue == 0 ? IPv4Address(rawValue: .max) : udp.srcIP,
                                                srcPort: GuestProtocol.servicePort, dstPort: udp.srcPort,
                                                message: .keyMessage(id: message.id, notifyKey(index)))
            dp.send(toVNIC: index, queue: queue, frame: reply)
            count("hello")
        default: count("malformed")
        }
    }

    private func request(index: UInt32, queue: Int, _ m: GuestMessage, vmMAC: MACAddress, vmIP: IPv4Address, vmPort: UInt16) {
        if let seen = answered[index]?.first(where: { $0.id == m.id }) {
            count("duplicate")
            if let reply = seen.reply { dp.send(toVNIC: index, queue: queue, frame: reply) }
            return
        }
        let outcome: VMRequestOutcome
        do {
            outcome = try store.handleVMRequest(index: index, parameter: m.parameter, value: m.value, confirm: confirmRequest)
        } catch {
            logger.error("vm request on vnic #\(index): \(error.message)")
            return count("error")
        }
        var reply: [UInt8]? = nil
        if outcome.accepted {
            if let r = outcome.record { known[index] = r }   // the VM's own change: no notification back
            reconcile()                                      // database and VNIC first, then the reply
            let value = outcome.entry.new ?? m.value
            reply = FrameBuilder.guestFrame(dst: vmMAC, src: Self.applianceMAC, srcIP: GuestProtocol.serviceAddress,
                                            dstIP: vmIP.rawValue == 0 ? IPv4Address(rawValue: .max) : vmIP,
                                            srcPort: GuestProtocol.servicePort, dstPort: vmPort,
                                            message: GuestMessage(kind: .accepted, id: m.id, parameter: m.parameter, value: value))
            dp.send(toVNIC: index, queue: queue, frame: reply!)
            count("accepted")
            log("vnic \(outcome.entry.vnic): VM request \(m.parameter)=\(value) accepted")
        } else {
            count("denied")
            log("vnic \(outcome.entry.vnic): VM request \(m.parameter)=\(m.value) denied: \(outcome.entry.reason)")
            if outcome.record?.deniedRequests == .reply {   // the admin chose a refusal over silence
                reply = FrameBuilder.guestFrame(dst: vmMAC, src: Self.applianceMAC, srcIP: GuestProtocol.serviceAddress,
                                                dstIP: vmIP.rawValue == 0 ? IPv4Address(rawValue: .max) : vmIP,
                                                srcPort: GuestProtocol.servicePort, dstPort: vmPort,
                                                message: GuestMessage(kind: .denied, id: m.id, parameter: m.parameter,
                                                                      value: outcome.entry.reason))
                dp.send(toVNIC: index, queue: queue, frame: reply!)
            }
        }
        var list = answered[index, default: []]
        list.append((m.id, reply))
        if list.count > 64 { list.removeFirst(list.count - 64) }
        answered[index] = list
    }

    // MARK: appliance to VM

    /// A new generation: notifies the VMs of changes they did not ask for.
    public func configChanged(_ records: [VNICRecord], now: UInt64) {
        var next: [UInt32: VNICRecord] = [:]
        for r in records {
            next[r.index] = r
            guard let old = known[r.index], old.name == r.name else { continue }
            for p in VNICParameter.policyParameters {
                let value = p.text(of: r) ?? ""
                guard value != (p.text(of: old) ?? "") else { continue }
                notify(r, p.rawValue, value, now: now)
            }
            // A DHCP client holds the old configuration: tell it to renew (DHCPService).
            if r.dhcp == .on, old.dhcp == .on, let held = old.ips.first?.address,
               r.ips != old.ips || r.gateway != old.gateway || r.mtu != old.mtu {
                forceRenew(r, held: held)
            }
        }
        advertiser.configChanged(old: known, new: records, now: now)
        known = next
    }

    private func notify(_ r: VNICRecord, _ parameter: String, _ value: String, now: UInt64) {
        pending.removeAll { $0.index == r.index && $0.message.parameter == parameter }   // superseded
        let m = GuestMessage(kind: .notify, id: UInt32.random(in: 1...UInt32.max), parameter: parameter, value: value)
            .signed(with: notifyKey(r.index))
        let vmIP = r.ips.first?.address ?? IPv4Address(rawValue: .max)
        let frame = FrameBuilder.guestFrame(dst: r.mac, src: Self.applianceMAC, srcIP: GuestProtocol.serviceAddress,
                                            dstIP: vmIP, srcPort: GuestProtocol.servicePort, dstPort: GuestProtocol.guestPort,
                                            message: m)
        pending.append(Pending(vnic: r.name, index: r.index, message: m, frame: frame, first: now, last: now))
        dp.send(toVNIC: r.index, queue: 0, frame: frame)
    }

    private func acknowledged(index: UInt32, _ m: GuestMessage) {
        guard let i = pending.firstIndex(where: { $0.index == index && $0.message.id == m.id }) else { return count("stale-ack") }
        let p = pending.remove(at: i)
        count("acknowledged")
        audit(p, .acknowledged, reason: "guest acknowledged")
        log("vnic \(p.vnic): guest acknowledged \(p.message.parameter)=\(p.message.value)")
    }

    /// Retransmits what is not acknowledged; gives up after the timeout.
    public func tick(now: UInt64) {
        advertiser.tick(known, now: now)
        guard !pending.isEmpty else { return }
        var expired: [Pending] = []
        pending.removeAll { p in
            if now >= p.first &+ Self.notifyTimeout { expired.append(p); return true }
            return false
        }
        for i in pending.indices where now >= pending[i].last &+ Self.notifyInterval {
            pending[i].last = now
            dp.send(toVNIC: pending[i].index, queue: 0, frame: pending[i].frame)
        }
        for p in expired {
            count("unacknowledged")
            audit(p, .unacknowledged, reason: "guest did not acknowledge within 3 s")
            logger.warning("vnic \(p.vnic): guest did not acknowledge \(p.message.parameter)=\(p.message.value)")
        }
    }

    private func audit(_ p: Pending, _ outcome: AuditEntry.GuestOutcome, reason: String) {
        var e = AuditEntry(vnic: p.vnic, origin: .host, parameter: p.message.parameter, old: nil, new: p.message.value,
                           verdict: .applied, reason: reason)
        e.guest = outcome
        do { try store.appendAudit([e]) } catch { logger.error("audit: \(error.message)") }
    }

    func count(_ what: String) { counts[what, default: 0] &+= 1 }

    private func notifyKey(_ index: UInt32) -> [UInt8] {
        if let k = notifyKeys[index] { return k }
        let k = MessageAuthentication.randomKey(32)
        notifyKeys[index] = k
        return k
    }
}

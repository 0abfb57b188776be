// vnicd's control plane without a kernel: the guest service, the DHCP service,
// the reconciler and the spoof warnings against a fake dataplane (it records
// the frames sent to VMs and the VNICs applied) and a real LMDB database.
import Foundation
import VnicConfig
@testable import VnicControl
import VnicCore
import XCTest

final class FakeDataplane: ControlDataplane {
    var sent: [(index: UInt32, queue: Int, frame: [UInt8])] = []
    var running: [VNICSpec] = []
    var performed: [VNICPlan] = []
    func send(toVNIC index: UInt32, queue: Int, frame: [UInt8]) -> Bool {
        sent.append((index, queue, frame))
        return true
    }
    func perform(_ plan: VNICPlan) -> [String] {
        performed.append(plan)
        running = plan.desired
        return plan.actions.map(\.description)
    }
    /// The guest messages sent, decoded, and forgotten.
    func takeMessages() -> [GuestMessage] {
        defer { sent.removeAll() }
        return sent.compactMap { s in
            guard let u = FrameBuilder.udpPayload(s.frame), case .success(let m) = GuestMessage.decode(u.payload) else { return nil }
            return m
        }
    }
    /// The DHCP messages sent, parsed, and forgotten.
    func takeDHCP() -> [DHCPMessage] {
        defer { sent.removeAll() }
        return sent.compactMap { s in FrameBuilder.udpPayload(s.frame).flatMap { DHCPMessage.parse($0.payload) } }
    }
}

final class ControlPlaneTests: XCTestCase {
    static let vm = MACAddress("02:00:00:00:01:01")!
    var dir: URL!
    var store: ConfigStore!
    var dp: FakeDataplane!
    var reconciler: Reconciler!
    var guest: GuestService!
    var index: UInt32 = 0

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("vnic-control-\(getpid())-\(UUID().uuidString)")
        store = try ConfigStore.open(path: dir.appendingPathComponent("vnic.db").path, create: true)
        var r = VNICRecord(name: "vnic1", link: "uplink0", port: "vm1p", mac: Self.vm, ips: [IPv4Interface("10.77.0.11/24")!])
        r.gateway = IPv4Address("10.77.0.1")
        r.policy[.mtu] = try VNICParameter.mtu.parsePolicy("1280-9000")
        index = try store.create(r).index
        var other = VNICRecord(name: "vnic2", link: "uplink1", port: "vm2p", mac: MACAddress("02:00:00:00:01:02")!,
                               ips: [IPv4Interface("10.77.0.12/24")!])
        other.state = .up
        try store.create(other)
        dp = FakeDataplane()
        let snap = try store.snapshot()
        reconciler = Reconciler(store: store, uplink: "uplink0", dataplane: dp, generation: snap.generation)
        let first = Reconciler.plan(snap, uplink: "uplink0", running: [])
        _ = dp.perform(first.vnics)   // as vnicd starts
        dp.performed.removeAll()
        guest = GuestService(store: store, dataplane: dp, records: first.records,
                             reconcile: { [unowned self] in reconciler.reconcile() })
        reconciler.guest = guest
    }

    override func tearDown() {
        guest = nil; reconciler = nil; store = nil
        try? FileManager.default.removeItem(at: dir)
    }

    func fromVM(_ m: GuestMessage, port: UInt16 = 40000) -> [UInt8] {
        FrameBuilder.guestFrame(dst: GuestService.applianceMAC, src: Self.vm, srcIP: IPv4Address("10.77.0.11")!,
                                dstIP: GuestProtocol.serviceAddress, srcPort: port, dstPort: GuestProtocol.servicePort, message: m)
    }

    func request(_ parameter: String, _ value: String, id: UInt32) -> [UInt8] {
        fromVM(GuestMessage(kind: .request, id: id, parameter: parameter, value: value))
    }

    // MARK: reconciler

    func testThePlanIsThisUplinksVNICsThatAreUp() throws {
        try store.update { (tx) throws(VnicError) in
            var r = VNICRecord(name: "vnic3", link: "uplink0", port: "vm3p", mac: MACAddress("02:00:00:00:01:03")!)
            r.state = .down
            r.priority = .low
            try tx.create(r)
        }
        let plan = Reconciler.plan(try store.snapshot(), uplink: "uplink0", running: dp.running)
        XCTAssertEqual(plan.vnics.desired.map(\.name), ["vnic1"], "not the other uplink's, not one set down")
        XCTAssertEqual(plan.vnics.actions, [], "vnic1 runs as it is; vnic3 is down")
        XCTAssertEqual(plan.records.map(\.name), ["vnic1", "vnic3"], "the guest service sees every record of the uplink")
        XCTAssertEqual(plan.generation, try store.generation())
    }

    func testReconcileAppliesOnlyANewGeneration() throws {
        reconciler.poll()
        XCTAssertTrue(dp.performed.isEmpty, "nothing committed since")
        let before = dp.running
        try store.update { (tx) throws(VnicError) in try tx.update(name: "vnic1", reason: "t") { $0.priority = .low } }
        reconciler.poll()
        XCTAssertEqual(dp.performed.count, 1)
        var after = before[0]
        after.priority = .low
        XCTAssertEqual(dp.performed[0].actions, [.update(from: before[0], to: after)], "in place, nothing re-added")
        XCTAssertEqual(reconciler.generation, try store.generation())
        reconciler.poll()
        XCTAssertEqual(dp.performed.count, 1)
        try store.update { (tx) throws(VnicError) in try tx.update(name: "vnic1", reason: "t") { $0.state = .down } }
        reconciler.poll()
        XCTAssertEqual(dp.performed.last?.actions, [.remove(after, why: .removed)], "set down: taken down")
    }

    // MARK: VM-initiated

    func testARequestInsideThePolicyIsCommittedAppliedAndAnswered() throws {
        guest.handle(index: index, queue: 1, frame: request("mtu", "9000", id: 7))
        XCTAssertEqual(try store.vnic(named: "vnic1")?.mtu, 9000)
        XCTAssertEqual(dp.performed.count, 1, "the dataplane is reconciled before the reply")
        XCTAssertEqual(dp.sent.map(\.queue), [1], "answered on the queue the request came from")
        let reply = dp.takeMessages()
        XCTAssertEqual(reply.map(\.kind), [.accepted])
        XCTAssertEqual(reply.first?.id, 7)
        XCTAssertEqual(reply.first?.value, "9000")
        XCTAssertEqual(guest.counts["accepted"], 1)
        let audit = try store.auditEntries(vnic: "vnic1").last
        XCTAssertEqual(audit?.origin, .vm)
        XCTAssertEqual(audit?.verdict, .accepted)
        // Its own change is not notified back to it.
        reconciler.poll()
        XCTAssertTrue(dp.takeMessages().isEmpty)
    }

    func testARequestOutsideThePolicyIsDeniedAuditedAndDropped() throws {
        guest.handle(index: index, queue: 0, frame: request("mtu", "9500", id: 8))
        guest.handle(index: index, queue: 0, frame: request("ip", "10.77.0.99/24", id: 9))
        XCTAssertEqual(try store.vnic(named: "vnic1")?.mtu, 1500)
        XCTAssertTrue(dp.sent.isEmpty, "denied requests are dropped (denied-requests=drop)")
        XCTAssertEqual(guest.counts["denied"], 2)
        XCTAssertEqual(try store.auditEntries(vnic: "vnic1").suffix(2).map(\.verdict), [.denied, .denied])
        // The administrator chose a refusal.
        try store.update { (tx) throws(VnicError) in try tx.update(name: "vnic1", reason: "t") { $0.deniedRequests = .reply } }
        reconciler.poll()
        guest.handle(index: index, queue: 0, frame: request("mtu", "9500", id: 10))
        XCTAssertEqual(dp.takeMessages().map(\.kind), [.denied])
    }

    func testADuplicateIsAnsweredAgainNotAppliedTwice() throws {
        let frame = request("mtu", "1400", id: 11)
        guest.handle(index: index, queue: 0, frame: frame)
        let audits = try store.auditEntries().count
        guest.handle(index: index, queue: 0, frame: frame)
        let replies = dp.takeMessages()
        XCTAssertEqual(replies.count, 2)
        XCTAssertEqual(replies[0], replies[1], "the same answer")
        XCTAssertEqual(try store.auditEntries().count, audits, "applied once")
        XCTAssertEqual(guest.counts["duplicate"], 1)
    }

    func testMalformedRequestsAreCountedNotAnswered() {
        var bad = request("mtu", "1400", id: 12)
        bad[bad.count - 1] ^= 0xFF
        bad.removeLast(3)
        guest.handle(index: index, queue: 0, frame: bad)
        guest.handle(index: index, queue: 0, frame: [0, 1, 2])
        XCTAssertTrue(dp.sent.isEmpty)
        XCTAssertEqual(guest.counts["malformed"], 2)
    }

    // MARK: host-initiated

    func testAHostChangeIsNotifiedRetransmittedAndAcknowledged() throws {
        try store.update { (tx) throws(VnicError) in try tx.update(name: "vnic1", reason: "vnicadm set") { $0.mtu = 1400 } }
        reconciler.reconcile()
        let first = dp.takeMessages()
        XCTAssertEqual(first.map(\.kind), [.notify])
        XCTAssertEqual(first.first?.parameter, "mtu")
        XCTAssertEqual(first.first?.value, "1400")
        let now = monotonicNow()
        guest.tick(now: now + GuestService.notifyInterval + 1)
        XCTAssertEqual(dp.takeMessages().map(\.id), [first[0].id], "resent until acknowledged")
        guest.handle(index: index, queue: 0, frame: fromVM(GuestMessage(kind: .ack, id: first[0].id, parameter: "mtu", value: "1400"),
                                                           port: GuestProtocol.guestPort))
        guest.tick(now: now + 2 * GuestService.notifyInterval + 2)
        XCTAssertTrue(dp.sent.isEmpty, "acknowledged: no more")
        XCTAssertEqual(try store.auditEntries(vnic: "vnic1").last?.guest, .acknowledged)
    }

    func testAnUnacknowledgedNotificationIsAuditedAfterItsTimeout() throws {
        try store.update { (tx) throws(VnicError) in try tx.update(name: "vnic1", reason: "vnicadm set") { $0.mtu = 1400 } }
        reconciler.reconcile()
        XCTAssertEqual(dp.takeMessages().count, 1)
        guest.tick(now: monotonicNow() + GuestService.notifyTimeout + 1)
        XCTAssertEqual(guest.counts["unacknowledged"], 1)
        XCTAssertEqual(try store.auditEntries(vnic: "vnic1").last?.guest, .unacknowledged)
    }

    // MARK: DHCP

    func dhcp(_ kind: DHCPMessage.Kind, xid: UInt32, ciaddr: String = "0.0.0.0", requested: String? = nil) -> [UInt8] {
        var options: [UInt8] = [53, 1, kind.rawValue]
        if let requested { options += [50, 4] + FrameBuilder.be32(IPv4Address(requested)!.rawValue) }
        options += [255]
        var f = FrameBuilder.dhcp(op: 1, src: Self.vm, dst: MACAddress("ff:ff:ff:ff:ff:ff")!, srcIP: IPv4Address(ciaddr)!,
                                  dstIP: IPv4Address("255.255.255.255")!, chaddr: Self.vm, options: options)
        f.replaceSubrange(46..<50, with: FrameBuilder.be32(xid))
        f.replaceSubrange(54..<58, with: FrameBuilder.be32(IPv4Address(ciaddr)!.rawValue))
        return f
    }

    func testDHCPOffersAcksRenewsAndReleasesTheVNICsAddress() throws {
        try store.update { (tx) throws(VnicError) in try tx.update(name: "vnic1", reason: "t") { $0.dhcp = .on } }
        reconciler.poll()
        guest.handle(index: index, queue: 0, frame: dhcp(.discover, xid: 0x1234))
        let offer = dp.takeDHCP()
        XCTAssertEqual(offer.map(\.kind), [.offer])
        XCTAssertEqual(offer.first?.yiaddr, IPv4Address("10.77.0.11"))
        XCTAssertEqual(offer.first?.xid, 0x1234)
        guest.handle(index: index, queue: 0, frame: dhcp(.request, xid: 0x1235, requested: "10.77.0.11"))
        let ack = dp.takeDHCP()
        XCTAssertEqual(ack.map(\.kind), [.ack])
        XCTAssertEqual(ack.first?.option(3), FrameBuilder.be32(IPv4Address("10.77.0.1")!.rawValue), "the gateway as router option")
        guest.handle(index: index, queue: 0, frame: dhcp(.request, xid: 0x1236, ciaddr: "10.77.0.11"))
        XCTAssertEqual(dp.takeDHCP().map(\.kind), [.ack], "a renewal of its address")
        guest.handle(index: index, queue: 0, frame: dhcp(.request, xid: 0x1237, ciaddr: "10.77.0.99"))
        XCTAssertEqual(dp.takeDHCP().map(\.kind), [.nak], "a renewal of an address it does not have")
        guest.handle(index: index, queue: 0, frame: dhcp(.release, xid: 0x1238, ciaddr: "10.77.0.11"))
        XCTAssertTrue(dp.takeDHCP().isEmpty, "a release gets no answer")
        XCTAssertEqual(try store.vnic(named: "vnic1")?.ips, [IPv4Interface("10.77.0.11/24")!], "and changes nothing")
    }

    func testDHCPIsIgnoredWhereVnicsServerIsOff() {
        guest.handle(index: index, queue: 0, frame: dhcp(.discover, xid: 1))
        XCTAssertTrue(dp.sent.isEmpty)
        XCTAssertEqual(guest.counts["dhcp-ignored"], 1)
    }

    // MARK: spoof warnings

    func testSpoofWarningsAreOnePerReasonPerCallWithWhatTheyStandFor() throws {
        var warnings = SpoofWarnings(reasons: ["spoof-mac", "spoof-ip"])
        var status = RuntimeStatus(pid: 1, updated: 0, generation: 1, classifier: [:], queues: [], vnics: [:], uplink: "uplink0")
        var v = RuntimeStatus.VNIC(state: "up")
        v.drops = ["spoof-ip": 5, "tx-full": 9]
        status.vnics["vnic1"] = v
        let before = try store.auditEntries().count
        warnings.check(status, store: store)
        var new = try store.auditEntries().dropFirst(before)
        XCTAssertEqual(new.map(\.reason), ["spoof-ip: 5 frames dropped (4 suppressed)"], "spoofing only, once")
        XCTAssertEqual(new.first?.origin, .vm)
        warnings.check(status, store: store)
        XCTAssertEqual(try store.auditEntries().count, before + 1, "nothing new: nothing said")
        status.vnics["vnic1"]?.drops["spoof-ip"] = 6
        status.vnics["vnic1"]?.drops["spoof-mac"] = 1
        warnings.check(status, store: store)
        new = try store.auditEntries().dropFirst(before + 1)
        XCTAssertEqual(new.map(\.reason), ["spoof-mac: 1 frame dropped (0 suppressed)", "spoof-ip: 1 frame dropped (0 suppressed)"])
    }
}

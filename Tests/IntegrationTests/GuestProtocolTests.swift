// The in-band configuration protocol end to end: vnic-guest in a VM's
// namespace, vnicd in the host's, a real database with a policy.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class GuestProtocolTests: XCTestCase {
    private func makeLab() throws -> LabFixture {
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        try lab.createVNICs()
        try lab.vnicadm("set-policy", "-p", "ip=10.77.0.20-10.77.0.29", "vnic1")
        try lab.vnicadm("set-linkprop", "-p", "protection=mac-nospoof,ip-nospoof", "vnic1")
        _ = try lab.startVnicd()
        return lab
    }

    private func guest(_ lab: LabFixture, vm: Int, _ args: String...) throws -> CommandResult {
        try lab.run(in: lab.topology.vmNamespace(vm), [try lab.bin("vnic-guest")] + args, timeout: .seconds(20))
    }

    private func vnic1(_ lab: LabFixture, _ field: String) throws -> String {
        try lab.vnicadm("show-vnic", "-p", "-o", field, "vnic1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func addresses(_ lab: LabFixture, vm: Int) throws -> [String] {
        try lab.link(lab.topology.vmInterface, in: lab.topology.vmNamespace(vm)).addresses
            .filter { $0.family == "inet" }.map(\.description)
    }

    /// Accepted inside the policy: database, VNIC, guest stack and anti-spoof all follow.
    func testRequestInsidePolicyIsAppliedEverywhere() throws {
        let lab = try makeLab()
        let t = lab.topology
        let r = try guest(lab, vm: 1, "request", "ip=10.77.0.21")
        XCTAssertEqual(r.status, 0, r.diagnostic)
        XCTAssertEqual(try vnic1(lab, "ip"), "10.77.0.21/24", "show-vnic")
        XCTAssertEqual(try addresses(lab, vm: 1), ["10.77.0.21/24"], "VM1's interface")
        let ping = try lab.run(in: t.wireNamespace, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.77.0.21")
        XCTAssertTrue(ping.succeeded, "ping the new address from the wire: \(ping.stdout)")
        // The old address is now a spoof.
        let old = FrameBuilder.udp(dst: t.wireMAC, src: t.vmMAC(1), srcIP: t.vmIP(1).address, dstIP: t.wireIP.address,
                                   srcPort: 40000, dstPort: 9, length: 60)
        let send = try lab.run(in: t.vmNamespace(1), try lab.bin("vnic-pktgen"), "-i", t.vmInterface, "--frame-hex",
                               old.map { String(format: "%02x", $0) }.joined(), "--count", "50", "--rate", "10000")
        XCTAssertTrue(send.succeeded, send.diagnostic)
        usleep(400_000)
        XCTAssertEqual(try lab.freshStatus().vnics["vnic1"]?.drops["spoof-ip"], 50, "frames from the old address")
        XCTAssertEqual(try lab.freshStatus().requests?["accepted"], 1)
    }

    /// Denied outside the policy, or for a parameter the policy denies: no answer
    /// (exit 3), nothing changes, the audit log says why.
    func testRequestsOutsidePolicyAreDroppedAndAudited() throws {
        let lab = try makeLab()
        var r = try guest(lab, vm: 1, "request", "ip=10.77.0.99", "--timeout", "1")
        XCTAssertEqual(r.status, 3, r.diagnostic)
        r = try guest(lab, vm: 1, "request", "mac=02:00:00:00:01:77", "--timeout", "1")
        XCTAssertEqual(r.status, 3, r.diagnostic)
        XCTAssertEqual(try vnic1(lab, "ip"), "10.77.0.11/24")
        XCTAssertEqual(try vnic1(lab, "mac"), "02:00:00:00:01:01")
        XCTAssertEqual(try addresses(lab, vm: 1), ["10.77.0.11/24"])
        let events = try lab.vnicadm("show-events", "-p", "-o", "origin,parameter,new,verdict", "vnic1").stdout
        XCTAssertTrue(events.contains("vm:ip:10.77.0.99/24:denied"), events)
        XCTAssertTrue(events.contains("vm:mac:02\\:00\\:00\\:00\\:01\\:77:denied"), events)
    }

    /// With `denied-requests=reply` the VM gets a refusal naming the reason
    /// instead of silence; the request is still denied, changes nothing, and is audited.
    func testDeniedRequestGetsARefusalWhenTheLinkPropertySaysSo() throws {
        let lab = try makeLab()
        var r = try guest(lab, vm: 1, "request", "ip=10.77.0.98", "--timeout", "1")
        XCTAssertEqual(r.status, 3, r.diagnostic)
        XCTAssertTrue(r.stderr.contains("no answer"), "default drop: \(r.diagnostic)")
        let set = try lab.vnicadm("set-linkprop", "-p", "denied-requests=reply", "vnic1")
        XCTAssertEqual(set.status, 0, set.diagnostic)
        XCTAssertEqual(try lab.vnicadm("show-linkprop", "-c", "-o", "value", "-p", "denied-requests", "vnic1").stdout, "reply\n")
        usleep(100_000)
        r = try guest(lab, vm: 1, "request", "ip=10.77.0.99", "--timeout", "5")
        XCTAssertEqual(r.status, 3, r.diagnostic)
        XCTAssertTrue(r.stderr.contains("denied: policy ip=10.77.0.20-10.77.0.29 does not allow it"), r.diagnostic)
        XCTAssertEqual(try vnic1(lab, "ip"), "10.77.0.11/24")
        let events = try lab.vnicadm("show-events", "-p", "-o", "origin,parameter,new,verdict", "vnic1").stdout
        XCTAssertTrue(events.contains("vm:ip:10.77.0.99/24:denied"), events)
    }

    /// VM2 asking for VM1's changes, even with VM1's MAC and IP, changes nothing of VM1.
    func testRequestsAreAttributedToThePortTheyCameFrom() throws {
        let lab = try makeLab()
        let t = lab.topology
        let message = GuestMessage(kind: .request, id: 7, parameter: "ip", value: "10.77.0.22/24")
        let forged = FrameBuilder.guestFrame(dst: MACAddress(rawValue: 0xFFFF_FFFF_FFFF), src: t.vmMAC(1),
                                             srcIP: t.vmIP(1).address, dstIP: GuestProtocol.serviceAddress,
                                             srcPort: 50000, dstPort: GuestProtocol.servicePort, message: message)
        let send = try lab.run(in: t.vmNamespace(2), try lab.bin("vnic-pktgen"), "-i", t.vmInterface, "--frame-hex",
                               forged.map { String(format: "%02x", $0) }.joined(), "--count", "3", "--rate", "100")
        XCTAssertTrue(send.succeeded, send.diagnostic)
        let r = try guest(lab, vm: 2, "request", "ip=10.77.0.22", "--timeout", "1")
        XCTAssertEqual(r.status, 3, "VM2's own policy denies it: \(r.diagnostic)")
        usleep(300_000)
        XCTAssertEqual(try vnic1(lab, "ip"), "10.77.0.11/24", "VM1 changed by VM2's request")
        let events = try lab.vnicadm("show-events", "-p", "-o", "vnic,origin,verdict").stdout
        XCTAssertFalse(events.contains("vnic1:vm:accepted"), events)
        XCTAssertTrue(events.contains("vnic2:vm:denied"), events)
    }

    /// Host-initiated: vnicadm set reaches the guest agent, which applies it and acks.
    func testHostChangeIsAppliedInTheGuest() throws {
        let lab = try makeLab()
        let t = lab.topology
        _ = try lab.start(in: t.vmNamespace(1), try lab.bin("vnic-guest"), "listen")
        usleep(300_000)
        let start = Date()
        let set = try lab.vnicadm("set", "vnic1", "mtu=1400")
        XCTAssertTrue(set.stdout.contains("mtu=1400: guest acknowledged"), set.stdout)
        var mtu = 0
        while Date().timeIntervalSince(start) < 1 {
            mtu = try lab.link(t.vmInterface, in: t.vmNamespace(1)).mtu
            if mtu == 1400 { break }
            usleep(20_000)
        }
        XCTAssertEqual(mtu, 1400, "VM1's MTU 1 s after vnicadm set")
        // Without an agent, vnicadm says so.
        let none = try lab.vnicadm("set", "--wait", "1", "vnic2", "mtu=1400")
        XCTAssertTrue(none.stdout.contains("did not acknowledge") || none.stdout.contains("no word"), none.stdout)
    }

    /// Notifications cannot be forged, even between VNICs with only mac-nospoof:
    /// VM1's forgeries (the service address as source) never leave vnicd, and a
    /// forgery from the wire, which reaches VM2, is not signed with VM2's key, so
    /// its agent ignores it. The appliance's own notification still applies.
    func testForgedNotificationsChangeNothing() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let t = lab.topology
        try lab.createVNICs()   // protection: mac-nospoof, the default
        _ = try lab.startVnicd()
        let listen = try lab.start(in: t.vmNamespace(2), try lab.bin("vnic-guest"), "listen")
        usleep(500_000)
        func forged(from mac: MACAddress, id: UInt32) -> String {
            let m = GuestMessage(kind: .notify, id: id, parameter: "mtu", value: "1400").signed(with: MessageAuthentication.randomKey(32))
            return FrameBuilder.guestFrame(dst: t.vmMAC(2), src: mac, srcIP: GuestProtocol.serviceAddress, dstIP: t.vmIP(2).address,
                                           srcPort: GuestProtocol.servicePort, dstPort: GuestProtocol.guestPort, message: m)
                .map { String(format: "%02x", $0) }.joined()
        }
        let fromVM1 = try lab.run(in: t.vmNamespace(1), try lab.bin("vnic-pktgen"), "-i", t.vmInterface,
                                  "--frame-hex", forged(from: t.vmMAC(1), id: 4242), "--count", "200", "--rate", "2000")
        XCTAssertTrue(fromVM1.succeeded, fromVM1.diagnostic)
        let fromWire = try lab.run(in: t.wireNamespace, try lab.bin("vnic-pktgen"), "-i", t.wire,
                                   "--frame-hex", forged(from: t.wireMAC, id: 4343), "--count", "20", "--rate", "200")
        XCTAssertTrue(fromWire.succeeded, fromWire.diagnostic)
        usleep(500_000)
        XCTAssertEqual(try lab.link(t.vmInterface, in: t.vmNamespace(2)).mtu, 1500, "a forged notification changed VM2's MTU")
        let s = try lab.freshStatus()
        XCTAssertEqual(s.vnics["vnic1"]?.drops["spoof-service"], 200, "VM1's forgeries: \(s.vnics["vnic1"]?.drops ?? [:])")
        XCTAssertTrue(listen.stderrSoFar.contains("notification 4343 mtu=1400: not signed with this VNIC's key; ignored"),
                      "the wire's forgery reached VM2's agent and was ignored: \(listen.stderrSoFar)")
        XCTAssertFalse(listen.stderrSoFar.contains("4242"), "VM1's forgery reached VM2: \(listen.stderrSoFar)")
        // The appliance's own notification is signed with the key the agent holds.
        let set = try lab.vnicadm("set", "vnic2", "mtu=1400")
        XCTAssertTrue(set.stdout.contains("mtu=1400: guest acknowledged"), set.stdout)
        XCTAssertEqual(try lab.link(t.vmInterface, in: t.vmNamespace(2)).mtu, 1400)
    }

    /// Malformed and random requests: dropped and counted; vnicd runs on; the database is unchanged.
    func testMalformedRequestsAreDroppedAndCounted() throws {
        let lab = try makeLab()
        let t = lab.topology
        let before = try lab.vnicadm("show-vnic", "-p", "-o", "name,mac,ip,mtu").stdout
        var rng = SystemRandomNumberGenerator()
        var frames: [String] = []
        for i in 0..<10 {
            // Protocol header shapes that lie, then random bytes.
            var payload: [UInt8] = i < 5 ? [1, 1, 0, 0, 0, 0, 0, UInt8(i), 200, 0] : []
            payload += (0..<(8 + i * 13)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var f = FrameBuilder.udp(dst: MACAddress(rawValue: 0xFFFF_FFFF_FFFF), src: t.vmMAC(1), srcIP: t.vmIP(1).address,
                                     dstIP: GuestProtocol.serviceAddress, srcPort: 50000, dstPort: GuestProtocol.servicePort,
                                     length: FrameBuilder.headers + payload.count)
            f.replaceSubrange(FrameBuilder.headers..<f.count, with: payload)
            frames.append(f.map { String(format: "%02x", $0) }.joined())
        }
        // 1,000 requests at 1,000/s: over the VNIC's request rate (50/s), so each is
        // either dropped by its worker (request-rate) or reaches vnicd and is malformed.
        for hex in frames {
            let send = try lab.run(in: t.vmNamespace(1), try lab.bin("vnic-pktgen"), "-i", t.vmInterface,
                                   "--frame-hex", hex, "--count", "100", "--rate", "1000")
            XCTAssertTrue(send.succeeded, send.diagnostic)
        }
        usleep(500_000)
        let s = try lab.freshStatus()
        let counted = (s.requests?["malformed"] ?? 0) + (s.vnics["vnic1"]?.drops["request-rate"] ?? 0)
        XCTAssertEqual(counted, 1000, "requests dropped and counted: \(s.requests ?? [:]) \(s.vnics["vnic1"]?.drops ?? [:])")
        XCTAssertEqual(try lab.vnicadm("show-vnic", "-p", "-o", "name,mac,ip,mtu").stdout, before)
        // Still serving: a good request is answered.
        let r = try GuestProtocolTests.retrying { try self.guest(lab, vm: 1, "request", "ip=10.77.0.23") }
        XCTAssertEqual(r.status, 0, r.diagnostic)
    }

    /// The request rate (50/s) may still be spent right after a flood: try for a few seconds.
    static func retrying(_ body: () throws -> CommandResult) rethrows -> CommandResult {
        var r = try body()
        for _ in 0..<3 where r.status != 0 { sleep(1); r = try body() }
        return r
    }
}

// vnic's DHCP server with real clients inside the VMs' namespaces: busybox
// udhcpc and dhcpcd get their VNIC's address, gateway and MTU from the
// database, a requested address is a change request under the ip policy
// (ACK or NAK, audited), a host change reaches the client when it renews,
// (FORCERENEW makes dhcpcd renew at once), and malformed DHCP is dropped and
// counted while the server keeps answering.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class DHCPIntegrationTests: XCTestCase {
    private static let script = TestEnvironment.packageRoot.appendingPathComponent("Tests/dhcp/udhcpc.script").path

    private func makeLab() throws -> LabFixture {
        for tool in ["udhcpc", "dhcpcd", "unshare"] where Command.find(tool) == nil {
            throw TestEnvironment.unavailable("\(tool) not installed (apt-get install udhcpc dhcpcd-base util-linux)")
        }
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        try lab.createVNICs()
        for vm in [1, 2] {
            try lab.vnicadm("set-linkprop", "-p", "dhcp=on,protection=mac-nospoof,ip-nospoof,dhcp-nospoof", "vnic\(vm)")
            try lab.vnicadm("set", "--wait", "0", "vnic\(vm)", "gateway=10.77.0.1", "mtu=1450")
            // The VM starts without an address: DHCP gives it.
            let flush = try lab.run(in: lab.topology.vmNamespace(vm), "ip", "-4", "addr", "flush", "dev", lab.topology.vmInterface)
            XCTAssertTrue(flush.succeeded, flush.diagnostic)
        }
        try lab.vnicadm("set-policy", "-p", "ip=10.77.0.20-10.77.0.29", "vnic1")
        try lab.vnicadm("set-policy", "-p", "ip=10.77.0.30-10.77.0.39", "vnic2")
        _ = try lab.startVnicd()
        return lab
    }

    /// busybox udhcpc, once (-q), with the lab's event script; its events go to `log`.
    private func udhcpc(_ lab: LabFixture, vm: Int, log: String, _ extra: [String] = []) throws -> CommandResult {
        try lab.run(in: lab.topology.vmNamespace(vm),
                    ["env", "UDHCPC_LOG=\(log)", "udhcpc", "-i", lab.topology.vmInterface, "-f", "-q", "-n", "-t", "4", "-T", "1",
                     "-s", Self.script] + extra, timeout: .seconds(30))
    }

    /// dhcpcd in a private mount namespace (its /run/dhcpcd and lease directory
    /// are the test's own), IPv4 only, in the foreground, once.
    private func dhcpcd(_ lab: LabFixture, vm: Int, leases: String) throws -> CommandResult {
        try lab.run(in: lab.topology.vmNamespace(vm), try dhcpcdArgv(lab, leases: leases, oneshot: true), timeout: .seconds(40))
    }

    private func dhcpcdArgv(_ lab: LabFixture, leases: String, oneshot: Bool) throws -> [String] {
        try FileManager.default.createDirectory(atPath: leases, withIntermediateDirectories: true)
        let sh = "mkdir -p /run/dhcpcd && mount -t tmpfs none /run/dhcpcd && mount --bind \(leases) /var/lib/dhcpcd && "
            + "exec dhcpcd -f /dev/null -4 \(oneshot ? "-1" : "") -B -A -d -t 15 --nohook resolv.conf -c /bin/true \(lab.topology.vmInterface)"
        return ["unshare", "-m", "sh", "-c", sh]
    }

    private func guestState(_ lab: LabFixture, vm: Int) throws -> (ipv4: [String], mtu: Int, routes: String) {
        let link = try lab.link(lab.topology.vmInterface, in: lab.topology.vmNamespace(vm))
        let routes = try lab.run(in: lab.topology.vmNamespace(vm), "ip", "-4", "route").stdout
        return (link.ipv4.map(\.description), link.mtu, routes)
    }

    private func vnicIP(_ lab: LabFixture, _ vm: Int) throws -> String {
        try lab.vnicadm("show-vnic", "-p", "-o", "ip", "vnic\(vm)").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func pingWire(_ lab: LabFixture, vm: Int) throws -> CommandResult {
        try lab.run(in: lab.topology.vmNamespace(vm), "ping", "-c", "1", "-W", "2", "10.77.0.1")
    }

    func testUdhcpcGetsItsVNICAndAsksForAnotherAddress() throws {
        let lab = try makeLab()
        let log = lab.path("udhcpc.log")
        var r = try udhcpc(lab, vm: 1, log: log)
        XCTAssertEqual(r.status, 0, r.diagnostic)
        var g = try guestState(lab, vm: 1)
        XCTAssertEqual(g.ipv4, ["10.77.0.11/24"], r.diagnostic)
        XCTAssertEqual(g.mtu, 1450)
        XCTAssertTrue(g.routes.contains("default via 10.77.0.1"), g.routes)
        XCTAssertTrue(try pingWire(lab, vm: 1).succeeded, "VM1 reaches the wire with its DHCP address")

        // Option 50 inside the policy: a change request, accepted; database and guest agree.
        r = try udhcpc(lab, vm: 1, log: log, ["-r", "10.77.0.22"])
        XCTAssertEqual(r.status, 0, r.diagnostic)
        XCTAssertEqual(try vnicIP(lab, 1), "10.77.0.22/24")
        g = try guestState(lab, vm: 1)
        XCTAssertEqual(g.ipv4, ["10.77.0.22/24"], r.diagnostic)
        XCTAssertTrue(try pingWire(lab, vm: 1).succeeded, "anti-spoof follows the new address")
        let events = try lab.vnicadm("show-events", "-p", "-o", "origin,parameter,new,verdict,reason", "vnic1").stdout
        XCTAssertTrue(events.contains("vm:ip:10.77.0.22/24:accepted:DHCP request"), events)

        // A host change: the client learns it when it renews (SIGUSR1 makes udhcpc renew now):
        // its renewal of 10.77.0.22 is NAKed, it starts over and is offered 10.77.0.25.
        func bound() -> Int {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.hasPrefix("bound ") }.count
        }
        let before = bound()
        let daemon = try lab.start(in: lab.topology.vmNamespace(1), "env", "UDHCPC_LOG=\(log)", "udhcpc", "-i",
                                   lab.topology.vmInterface, "-f", "-s", Self.script)
        defer { _ = daemon.terminate() }
        var deadline = Date().addingTimeInterval(10)
        while bound() == before && Date() < deadline { usleep(100_000) }
        XCTAssertEqual(bound(), before + 1, "the udhcpc daemon took its lease")
        try lab.vnicadm("set", "--wait", "0", "vnic1", "ip=10.77.0.25/24")
        let pid = try lab.run(in: lab.topology.vmNamespace(1), "pgrep", "-n", "-x", "udhcpc").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(try Command.run(["kill", "-USR1", pid]).succeeded, "signal udhcpc \(pid)")
        deadline = Date().addingTimeInterval(15)
        while try guestState(lab, vm: 1).ipv4 != ["10.77.0.25/24"] && Date() < deadline { usleep(100_000) }
        XCTAssertEqual(try guestState(lab, vm: 1).ipv4, ["10.77.0.25/24"], (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        XCTAssertTrue(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("nak "), "the renewal of the old address was NAKed")
        XCTAssertTrue(try pingWire(lab, vm: 1).succeeded)
        XCTAssertGreaterThanOrEqual(try lab.freshStatus().requests?["dhcp-nak"] ?? 0, 1)
    }

    func testDhcpcdGetsItsVNICAndANakForAnAddressOutsideThePolicy() throws {
        let lab = try makeLab()
        let leases = lab.path("dhcpcd-leases")
        var r = try dhcpcd(lab, vm: 2, leases: leases)
        XCTAssertEqual(r.status, 0, r.diagnostic)
        var g = try guestState(lab, vm: 2)
        XCTAssertEqual(g.ipv4, ["10.77.0.12/24"], r.diagnostic)
        XCTAssertTrue(g.routes.contains("default via 10.77.0.1"), g.routes)
        XCTAssertTrue(try pingWire(lab, vm: 2).succeeded, "VM2 reaches the wire with its DHCP address")

        // The host moves VM2 to 10.77.0.33. dhcpcd starts again from its stored lease and
        // REQUESTs 10.77.0.12 (INIT-REBOOT): outside VM2's policy, so NAK and audited;
        // it then starts over and gets 10.77.0.33.
        try lab.vnicadm("set", "--wait", "0", "vnic2", "ip=10.77.0.33/24")
        _ = try lab.run(in: lab.topology.vmNamespace(2), "ip", "-4", "addr", "flush", "dev", lab.topology.vmInterface)
        r = try dhcpcd(lab, vm: 2, leases: leases)
        XCTAssertEqual(r.status, 0, r.diagnostic)
        XCTAssertTrue(r.stderr.contains("NAK"), "dhcpcd saw the NAK: \(r.stderr)")
        g = try guestState(lab, vm: 2)
        XCTAssertEqual(g.ipv4, ["10.77.0.33/24"], r.diagnostic)
        XCTAssertEqual(try vnicIP(lab, 2), "10.77.0.33/24", "the denied request changed nothing")
        let events = try lab.vnicadm("show-events", "-p", "-o", "origin,parameter,new,verdict,reason", "vnic2").stdout
        XCTAssertTrue(events.contains("vm:ip:10.77.0.12/24:denied:policy ip=10.77.0.30-10.77.0.39 does not allow it"), events)
        XCTAssertTrue(try pingWire(lab, vm: 2).succeeded)

        // dhcpcd running: a host change sends FORCERENEW; dhcpcd renews at once (its
        // lease would renew in 30 min), gets a NAK for 10.77.0.33 and is given 10.77.0.34.
        let daemon = try lab.start(in: lab.topology.vmNamespace(2), try dhcpcdArgv(lab, leases: leases, oneshot: false))
        defer { _ = daemon.terminate() }
        var deadline = Date().addingTimeInterval(15)
        while !daemon.stderrSoFar.contains("leased 10.77.0.33") && daemon.isRunning && Date() < deadline { usleep(100_000) }
        XCTAssertTrue(daemon.stderrSoFar.contains("leased 10.77.0.33"), daemon.stderrSoFar)
        XCTAssertTrue(try pingWire(lab, vm: 2).succeeded)
        try lab.vnicadm("set", "--wait", "0", "vnic2", "ip=10.77.0.34/24")
        deadline = Date().addingTimeInterval(15)
        while try guestState(lab, vm: 2).ipv4 != ["10.77.0.34/24"] && Date() < deadline { usleep(100_000) }
        XCTAssertEqual(try guestState(lab, vm: 2).ipv4, ["10.77.0.34/24"], daemon.stderrSoFar)
        XCTAssertTrue(daemon.stderrSoFar.contains("accepted reconfigure key"), daemon.stderrSoFar)
        XCTAssertFalse(daemon.stderrSoFar.contains("unauthenticated Force Renew"), daemon.stderrSoFar)
        XCTAssertTrue(daemon.stderrSoFar.contains(": Force Renew from"), daemon.stderrSoFar)
        XCTAssertGreaterThanOrEqual(try lab.freshStatus().requests?["dhcp-forcerenew"] ?? 0, 1)
        XCTAssertTrue(try pingWire(lab, vm: 2).succeeded)
    }

    func testMalformedDHCPIsDroppedAndCountedAndTheServerKeepsAnswering() throws {
        let lab = try makeLab()
        let t = lab.topology
        // 300 broken datagrams to port 67 from VM1: cut short, bad cookie, options past the end.
        var broken: [[UInt8]] = []
        let good = FrameBuilder.dhcp(op: 1, src: t.vmMAC(1), dst: MACAddress(rawValue: 0xFFFF_FFFF_FFFF),
                                     srcIP: IPv4Address(rawValue: 0), dstIP: IPv4Address(rawValue: .max),
                                     chaddr: t.vmMAC(1), options: [53, 1, 1])
        var cut = Array(good.prefix(FrameBuilder.headers + 100))
        cut[16] = 0; cut[17] = UInt8(cut.count - 14)                    // IPv4 total length of what is left
        cut[38] = 0; cut[39] = UInt8(cut.count - 34)                    // UDP length
        broken.append(cut)
        var cookie = good; cookie[FrameBuilder.headers + 236] = 0x64
        broken.append(cookie)
        var overrun = good; overrun[FrameBuilder.headers + 240 + 1] = 200   // option 53 claims 200 bytes
        broken.append(overrun)
        for (i, frame) in broken.enumerated() {
            let r = try lab.run(in: t.vmNamespace(1), try lab.bin("vnic-pktgen"), "-i", t.vmInterface, "--frame-hex",
                                frame.map { String(format: "%02x", $0) }.joined(), "--count", "100", "--rate", "40")
            XCTAssertTrue(r.succeeded, "frame \(i): \(r.diagnostic)")
        }
        // A DHCP server message from the VM: a spoof under dhcp-nospoof, never answered or forwarded.
        let offer = FrameBuilder.dhcp(op: 2, src: t.vmMAC(1), dst: MACAddress(rawValue: 0xFFFF_FFFF_FFFF),
                                      srcIP: IPv4Address(rawValue: 0), dstIP: IPv4Address(rawValue: .max),
                                      chaddr: t.vmMAC(2), options: [53, 1, 2])
        let sent = try lab.run(in: t.vmNamespace(1), try lab.bin("vnic-pktgen"), "-i", t.vmInterface, "--frame-hex",
                               offer.map { String(format: "%02x", $0) }.joined(), "--count", "20", "--rate", "100")
        XCTAssertTrue(sent.succeeded, sent.diagnostic)
        usleep(400_000)
        let status = try lab.freshStatus()
        let requests = status.requests ?? [:]
        let vnic1 = try XCTUnwrap(status.vnics["vnic1"])
        XCTAssertEqual((requests["dhcp-malformed"] ?? 0) + (vnic1.drops["request-rate"] ?? 0), 300,
                       "every broken datagram dropped and counted: \(requests) \(vnic1.drops)")
        XCTAssertEqual(vnic1.drops["spoof-dhcp"], 20, "\(vnic1.drops)")
        XCTAssertNil(requests["dhcp-offer"], "nothing was answered")

        // And the server still answers, VM2 as well as VM1.
        for vm in [1, 2] {
            let r = try udhcpc(lab, vm: vm, log: lab.path("u\(vm).log"))
            XCTAssertEqual(r.status, 0, r.diagnostic)
            XCTAssertEqual(try guestState(lab, vm: vm).ipv4, ["\(t.vmIP(vm))"], r.diagnostic)
        }
    }
}

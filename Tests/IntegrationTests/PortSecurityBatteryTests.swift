// Port security against an attacker's repertoire (issue 13), on the real kernel:
// Tests/portsecurity/battery.py sends each crafted frame 20 times from VM1's
// namespace through its veth (as the VM's own stack would), captures on the wire
// and on VM2, and reads vnicd's drop counters before and after. Every attack
// must be seen 0 times at both and counted under its reason, exactly; every
// legitimate twin must arrive in full where it was sent, with no drop counted.
// Three phases of VM1's protection: every protection; all but restricted (what
// ip-nospoof alone stops of what the checks cannot see into); mac-nospoof only
// (the service address is guarded whatever the protection).
//
// The impact tests run the ND, RA and DHCP attacks against live victim stacks:
// VM2's and the wire's kernels keep their neighbour caches, routes and
// addresses, and a DHCP client in VM2 takes no lease from VM1 acting as a server.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class PortSecurityBatteryTests: XCTestCase {
    static let copies = 20
    static let python = "/usr/bin/python3"
    static var script: String { TestEnvironment.packageRoot.appendingPathComponent("Tests/portsecurity/battery.py").path }

    struct Outcome: Decodable {
        var `class`: String
        var name: String
        var expected: String?
        var to: String
        var sent: Int
        var wire: Int
        var vm2: Int
        var drops: [String: Int]
    }

    /// Debian's python3 with scapy (python3-scapy): the battery's frames are scapy's.
    static func requireScapy() throws {
        guard FileManager.default.isExecutableFile(atPath: python),
              (try? Command.run([python, "-c", "import scapy.all"]))?.succeeded == true else {
            throw TestEnvironment.unavailable("\(python) with scapy not found (apt-get install python3-scapy)")
        }
    }

    private func battery(_ lab: LabFixture, phase: String, only: String? = nil) throws -> [Outcome] {
        let r = try Command.run([Self.python, Self.script, "--prefix", lab.prefix, "--status", lab.database + "-status.json",
                                 "--phase", phase, "--count", "\(Self.copies)"] + (only.map { ["--only", $0] } ?? []),
                                timeout: .seconds(300))
        guard r.succeeded else { throw FixtureError(message: "battery.py --phase \(phase): \(r.diagnostic)") }
        return try r.stdout.split(separator: "\n").map { try JSONDecoder().decode(Outcome.self, from: Data($0.utf8)) }
    }

    private func protect(_ lab: LabFixture, _ protection: String) throws {
        try lab.vnicadm("set-linkprop", "-p", "protection=\(protection)", "vnic1")
        let deadline = Date().addingTimeInterval(3)
        let before = lab.status()?.updated ?? 0
        while (lab.status()?.updated ?? 0) <= before + 0.1 && Date() < deadline { usleep(50_000) }
    }

    func testAttacksAreStoppedAndCountedAndTheirLegitimateTwinsPass() throws {
        try Self.requireScapy()
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        try lab.createVNICs()
        _ = try lab.startVnicd()
        var attacks = 0, legitimate = 0, classes: Set<String> = [], reasons: Set<String> = []
        for (phase, protection) in [("all", "mac-nospoof,ip-nospoof,dhcp-nospoof,restricted"),
                                    ("ip", "mac-nospoof,ip-nospoof,dhcp-nospoof"), ("mac", "mac-nospoof")] {
            try protect(lab, protection)
            let outcomes = try battery(lab, phase: phase)
            XCTAssertFalse(outcomes.isEmpty, "phase \(phase) ran no case")
            for o in outcomes {
                let what = "[\(protection)] \(o.class): \(o.name)"
                if let reason = o.expected {
                    attacks += 1; classes.insert(o.class); reasons.insert(reason)
                    XCTAssertEqual(o.wire, 0, "\(what): seen on the wire")
                    XCTAssertEqual(o.vm2, 0, "\(what): seen on VM2")
                    XCTAssertEqual(o.drops, [reason: o.sent], "\(what): counted as \(reason)")
                } else {
                    legitimate += 1
                    // At least every copy (the VM's own stack may send an identical frame beside them).
                    if o.to == "wire" || o.to == "both" { XCTAssertGreaterThanOrEqual(o.wire, o.sent, "\(what): lost on the way to the wire") }
                    else { XCTAssertEqual(o.wire, 0, "\(what): reached the wire") }
                    if o.to == "vm2" || o.to == "both" { XCTAssertGreaterThanOrEqual(o.vm2, o.sent, "\(what): lost on the way to VM2") }
                    else { XCTAssertEqual(o.vm2, 0, "\(what): reached VM2") }
                    XCTAssertEqual(o.drops, [:], "\(what): a legitimate frame was dropped")
                }
            }
        }
        print("port security battery: \(attacks) attacks in \(classes.count) classes stopped, \(legitimate) legitimate cases passed")
        // Each reason reached the host's warning and audit path.
        usleep(1_200_000)
        let events = try lab.vnicadm("show-events", "vnic1").stdout
        for reason in reasons.sorted() {
            XCTAssertTrue(events.contains("\(reason): "), "no warning for \(reason) in show-events: \(events.suffix(2000))")
        }
        XCTAssertGreaterThanOrEqual(attacks, 80)
        XCTAssertGreaterThanOrEqual(legitimate, 25)
    }

    // MARK: impact on live victims

    /// Neighbour entries of a namespace (both families) as "address lladdr".
    private func neighbours(_ lab: LabFixture, _ ns: String) throws -> Set<String> {
        let r = try lab.run(in: ns, "ip", "-j", "neigh", "show")
        struct N: Decodable { var dst: String; var lladdr: String? }
        let all = try JSONDecoder().decode([N].self, from: Data(r.stdout.utf8))
        return Set(all.compactMap { n in n.lladdr.map { "\(n.dst) \($0)" } })
    }

    private func routesAndAddresses(_ lab: LabFixture, _ ns: String) throws -> [String] {
        var out: [String] = []
        for argv in [["ip", "-4", "route"], ["ip", "-6", "route"], ["ip", "-o", "addr"]] {
            out += try lab.run(in: ns, argv).stdout.split(separator: "\n").map { String($0).replacingOccurrences(of: #"valid_lft \S+ preferred_lft \S+"#, with: "", options: .regularExpression) }
        }
        return out.sorted()
    }

    func testNeighbourRouterAndDHCPAttacksChangeNothingInTheVictims() throws {
        try Self.requireScapy()
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let t = lab.topology
        try lab.createVNICs()
        try lab.vnicadm("set-linkprop", "-p", "protection=mac-nospoof,ip-nospoof,dhcp-nospoof", "vnic1")
        _ = try lab.startVnicd()
        // Live victims: VM2 and the wire know each other and VM1 (both families), and accept RAs.
        for ns in [t.vmNamespace(2), t.wireNamespace] {
            try lab.run(in: ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_ra=1", "net.ipv6.conf.\(ns == t.wireNamespace ? t.wire : t.vmInterface).accept_ra=2")
        }
        for (ns, targets) in [(t.vmNamespace(2), ["10.77.0.1", "10.77.0.11"]), (t.wireNamespace, ["10.77.0.11", "10.77.0.12"])] {
            for ip in targets { _ = try lab.run(in: ns, "ping", "-c", "1", "-W", "1", ip) }
        }
        let ll = ["fe80::ff:fe00:1", "fe80::ff:fe00:101", "fe80::ff:fe00:102"]
        for (ns, dev) in [(t.vmNamespace(2), t.vmInterface), (t.wireNamespace, t.wire)] {
            for a in ll { _ = try lab.run(in: ns, "ping", "-c", "1", "-W", "1", "\(a)%\(dev)") }
        }
        let vm1MAC = "\(t.vmMAC(1))"
        let before = try [t.vmNamespace(2), t.wireNamespace].map { (try neighbours(lab, $0), try routesAndAddresses(lab, $0)) }

        let outcomes = try battery(lab, phase: "ip", only: "arp,nd,ra-guard,fragment,dhcp")
        XCTAssertGreaterThan(outcomes.count, 40)
        usleep(500_000)
        for (i, ns) in [t.vmNamespace(2), t.wireNamespace].enumerated() {
            let n = try neighbours(lab, ns)
            // Nothing but VM1's own addresses may point at VM1's MAC.
            let poisoned = n.filter { $0.hasSuffix(vm1MAC) && !$0.hasPrefix("10.77.0.11 ") && !$0.hasPrefix("fe80::ff:fe00:101 ") }
            XCTAssertEqual(poisoned, [], "\(ns): neighbour entries poisoned with VM1's MAC")
            XCTAssertEqual(try routesAndAddresses(lab, ns), before[i].1, "\(ns): routes or addresses changed")
        }
        // The rogue prefix and route of the RAs are nowhere.
        let vm2 = try lab.run(in: t.vmNamespace(2), "ip", "-6", "addr").stdout + (try lab.run(in: t.vmNamespace(2), "ip", "-6", "route").stdout)
        XCTAssertFalse(vm2.contains("2001:db8:bad"), vm2)
        XCTAssertFalse(vm2.contains("default"), "VM2 installed a default route: \(vm2)")
    }

    /// VM1 runs a DHCP server that answers VM2's client from port 67 and from
    /// port 6767: with dhcp-nospoof, VM2's udhcpc gets no lease from it; with the
    /// appliance's server on (dhcp=on), VM2 takes the appliance's lease.
    func testADHCPClientTakesItsLeaseOnlyFromTheAppliance() throws {
        try Self.requireScapy()
        guard Command.find("udhcpc") != nil else { throw TestEnvironment.unavailable("udhcpc not found") }
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let t = lab.topology
        try lab.createVNICs()
        try lab.vnicadm("set-linkprop", "-p", "protection=mac-nospoof,ip-nospoof,dhcp-nospoof", "vnic1")
        _ = try lab.startVnicd()
        let rogue = try lab.start(in: t.vmNamespace(1), Self.python, TestEnvironment.packageRoot.appendingPathComponent("Tests/portsecurity/rogue_dhcp.py").path,
                                  "--interface", t.vmInterface, "--offer", "10.77.0.200")
        usleep(500_000)
        XCTAssertTrue(rogue.isRunning, rogue.stderrSoFar)
        let script = TestEnvironment.packageRoot.appendingPathComponent("Tests/dhcp/udhcpc.script").path
        try lab.run(in: t.vmNamespace(2), "ip", "addr", "flush", "dev", t.vmInterface)
        let none = try lab.run(in: t.vmNamespace(2), ["udhcpc", "-i", t.vmInterface, "-n", "-q", "-f", "-t", "3", "-T", "1", "-s", script],
                               timeout: .seconds(20))
        XCTAssertNotEqual(none.status, 0, "udhcpc took a lease with no server but VM1's: \(none.stdout) \(none.stderr)")
        XCTAssertFalse(try lab.run(in: t.vmNamespace(2), "ip", "-4", "addr").stdout.contains("10.77.0.200"))
        let answered = rogue.stderrSoFar.components(separatedBy: "answered").count - 1
        XCTAssertGreaterThan(answered, 0, "the rogue server saw no DISCOVER: \(rogue.stderrSoFar)")
        let status = try lab.freshStatus()
        XCTAssertGreaterThanOrEqual(status.vnics["vnic1"]?.drops["spoof-dhcp"] ?? 0, UInt64(answered), "\(status.vnics["vnic1"]?.drops ?? [:])")

        try lab.vnicadm("set-linkprop", "-p", "dhcp=on", "vnic2")
        usleep(300_000)
        let lease = try lab.run(in: t.vmNamespace(2), ["udhcpc", "-i", t.vmInterface, "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", script],
                                timeout: .seconds(20))
        XCTAssertEqual(lease.status, 0, lease.diagnostic)
        let addr = try lab.run(in: t.vmNamespace(2), "ip", "-4", "addr").stdout
        XCTAssertTrue(addr.contains("10.77.0.12/24"), "the appliance's lease: \(addr)")
        XCTAssertFalse(addr.contains("10.77.0.200"), addr)
        _ = rogue.terminate()
    }
}

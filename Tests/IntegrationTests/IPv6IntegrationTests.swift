// IPv6 through vnicd with ip-nospoof (issue 16): the kernel's own IPv6 stack in
// the VM namespace, at its defaults (DAD, neighbour discovery, a link-local
// and a static global address, transmit checksum offload on), ping6 both ways
// and TCP over IPv6 (iperf3 -6) with no drop at all; a source the VNIC does
// not have, from the same VM, dropped and counted as spoof-ipv6.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class IPv6IntegrationTests: XCTestCase {
    static let wire6 = "fd00:77::1", vm6 = "fd00:77::11"

    /// Adds `address` to `interface` in `ns` and waits until DAD has passed
    /// (the address is no longer tentative); fails on a DAD failure.
    func addAddress(_ lab: LabFixture, _ ns: String, _ interface: String, _ address: String, nodad: Bool = false) throws {
        let r = try lab.run(in: ns, ["ip", "-6", "addr", "add", address, "dev", interface] + (nodad ? ["nodad"] : []))
        XCTAssertTrue(r.succeeded, r.diagnostic)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let show = try lab.run(in: ns, "ip", "-6", "addr", "show", "dev", interface).stdout
            XCTAssertFalse(show.contains("dadfailed"), "\(ns): DAD failed for \(address): \(show)")
            if !show.contains("tentative") { return }
            usleep(100_000)
        }
        XCTFail("\(ns): \(address) still tentative after 10 s")
    }

    /// The VNIC's anti-spoof drops by reason (the verdicts on what the VM sent;
    /// congestion, vsq-full and the like, is TCP's to handle and not counted here).
    static let verdicts: Set = ["spoof-mac", "malformed", "spoof-ip", "spoof-arp", "spoof-ipv6", "spoof-dhcp", "restricted",
                                "spoof-nd", "ra-guard", "fragment", "uncheckable", "spoof-service"]
    func drops(_ lab: LabFixture, _ vnic: String) throws -> [String: UInt64] {
        try lab.freshStatus().vnics[vnic]?.drops.filter { $0.value > 0 && Self.verdicts.contains($0.key) } ?? ["missing": 1]
    }

    func testKernelIPv6StackThroughIPNospoof() throws {
        guard Command.find("iperf3") != nil else { throw TestEnvironment.unavailable("iperf3 not found (install the Debian package iperf3)") }
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let t = lab.topology
        try lab.createVNICs()
        for vm in 1...2 {
            try lab.vnicadm("set", "vnic\(vm)", "ip=\(t.vmIP(vm)),fd00:77::\(10 + vm)/64")
            try lab.vnicadm("set-linkprop", "-p", "protection=mac-nospoof,ip-nospoof,dhcp-nospoof", "vnic\(vm)")
        }
        let shown = try lab.vnicadm("show-vnic", "-p", "-o", "ip", "vnic1").stdout
        XCTAssertEqual(shown.trimmingCharacters(in: .whitespacesAndNewlines), "\(t.vmIP(1)),fd00:77::11/64", "show-vnic -p -o ip")
        _ = try lab.startVnicd()
        let vm1 = t.vmNamespace(1)
        let linkLocal1 = IPv6Address.linkLocal(t.vmMAC(1)).description

        // DAD for the static addresses goes through vnicd (the VM's probe from ::) and passes.
        try addAddress(lab, t.wireNamespace, t.wire, "\(Self.wire6)/64")
        try addAddress(lab, vm1, t.vmInterface, "\(Self.vm6)/64")
        try addAddress(lab, t.vmNamespace(2), t.vmInterface, "fd00:77::12/64")

        // ping6 both ways on the global addresses, and to VM1's link-local address.
        for (ns, target) in [(vm1, Self.wire6), (t.wireNamespace, Self.vm6), (t.wireNamespace, "\(linkLocal1)%\(t.wire)"),
                             (vm1, "fd00:77::12")] {
            let r = try lab.run(in: ns, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", target)
            XCTAssertTrue(r.succeeded && r.stdout.contains(" 0% packet loss"), "\(ns) -> \(target): \(r.diagnostic)")
        }
        // VM1's neighbour entry for the wire was learnt by ND through vnicd.
        let neighbours = try lab.run(in: vm1, "ip", "-6", "neigh", "show", Self.wire6).stdout
        XCTAssertTrue(neighbours.contains(t.wireMAC.description), neighbours)

        // TCP over IPv6 both ways (VM1's stack at its default offloads: partial checksums completed by vnicd).
        let server = try lab.start(in: t.wireNamespace, "iperf3", "-s", "-p", "5201")
        defer { _ = server.terminate() }
        usleep(500_000)
        for reverse in [false, true] {
            let r = try lab.run(in: vm1, ["iperf3", "-6", "-c", Self.wire6, "-p", "5201", "-t", "2", "-J"] + (reverse ? ["-R"] : []),
                                timeout: .seconds(30))
            XCTAssertTrue(r.succeeded, r.diagnostic)
            let end = ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any])?["end"] as? [String: Any] ?? [:]
            let sent = (end["sum_sent"] as? [String: Any])?["bytes"] as? Int ?? -1
            let received = (end["sum_received"] as? [String: Any])?["bytes"] as? Int ?? -2
            let way = reverse ? "wire -> VM1" : "VM1 -> wire"
            XCTAssertGreaterThan(received, 1 << 20, "TCP over IPv6 \(way) moved data")
            XCTAssertGreaterThanOrEqual(Double(received), 0.98 * Double(sent), "TCP over IPv6 \(way): \(received) of \(sent) bytes")
        }
        XCTAssertEqual(try drops(lab, "vnic1"), [:], "no false positive: legitimate IPv6 from VM1 is never dropped")
        XCTAssertEqual(try drops(lab, "vnic2"), [:], "no false positive for VM2")

        // A source VM1 does not have: its echo requests never reach the wire.
        try addAddress(lab, vm1, t.vmInterface, "fd00:77::99/64", nodad: true)
        let spoofed = try lab.run(in: vm1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "1", "-I", "fd00:77::99", Self.wire6)
        XCTAssertFalse(spoofed.succeeded, "no echo reply to a forged source: \(spoofed.stdout)")
        XCTAssertTrue(spoofed.stdout.contains("100% packet loss"), spoofed.stdout)
        let d = try drops(lab, "vnic1")
        XCTAssertGreaterThanOrEqual(d["spoof-ipv6"] ?? 0, 3, "the 3 echo requests are counted: \(d)")
        XCTAssertEqual(d.keys.filter { $0 != "spoof-ipv6" && $0 != "spoof-nd" }, [], "nothing else dropped: \(d)")

        // allowed-ips takes the VM's IPv6 network: the same source passes.
        try lab.vnicadm("set-linkprop", "-p", "allowed-ips=\(t.vmIP(1).address),fd00:77::/64", "vnic1")
        let allowed = try lab.run(in: vm1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-I", "fd00:77::99", Self.wire6)
        XCTAssertTrue(allowed.succeeded, "fd00:77::99 inside allowed-ips fd00:77::/64: \(allowed.diagnostic)")
    }

    /// In-band: VM1's agent asks for an IPv6 address inside its policy
    /// (accepted, applied in the guest, enforced by anti-spoof) and for one
    /// outside (denied, audited); the host's `vnicadm set` of an IPv6 address
    /// reaches the listening agent, which applies it.
    func testInBandIPv6Changes() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let t = lab.topology
        try lab.createVNICs()
        // What the issue saw refused: an IPv6 address at create-vnic, an IPv6 allowed-ips.
        try lab.vnicadm("create-vnic", "-l", t.uplink, "-m", "02:00:00:00:09:01", "-i", "fd00::11/64", "vnic9")
        try lab.vnicadm("set-linkprop", "-p", "allowed-ips=fd00::11/128", "vnic9")
        XCTAssertEqual(try lab.vnicadm("show-linkprop", "-c", "-o", "value", "-p", "allowed-ips", "vnic9").stdout, "fd00::11\n")
        let json = try lab.vnicadm("show-vnic", "--json", "-o", "name,ip", "vnic9").stdout
        XCTAssertTrue(json.contains("\"fd00::11/64\""), json)
        try lab.vnicadm("delete-vnic", "vnic9")
        let v4 = t.vmIP(1).description
        try lab.vnicadm("set", "vnic1", "ip=\(v4),fd00:77::11/64")
        try lab.vnicadm("set-policy", "-p", "ip=\(t.vmIP(1).address),fd00:77::20-fd00:77::2f", "vnic1")
        try lab.vnicadm("set-linkprop", "-p", "protection=mac-nospoof,ip-nospoof", "vnic1")
        _ = try lab.startVnicd()
        let vm1 = t.vmNamespace(1)
        try addAddress(lab, t.wireNamespace, t.wire, "\(Self.wire6)/64")
        func guest(_ args: String...) throws -> CommandResult {
            try lab.run(in: vm1, [try lab.bin("vnic-guest")] + args, timeout: .seconds(20))
        }
        func shown() throws -> String {
            try lab.vnicadm("show-vnic", "-p", "-o", "ip", "vnic1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func addresses6() throws -> [String] {
            try lab.link(t.vmInterface, in: vm1).addresses.filter { $0.family == "inet6" && !$0.description.hasPrefix("fe80") }.map(\.description)
        }

        // Inside the policy: the database, the guest's stack and anti-spoof follow.
        let ok = try guest("request", "ip=\(v4),fd00:77::21")
        XCTAssertEqual(ok.status, 0, ok.diagnostic)
        XCTAssertEqual(try shown(), "\(v4),fd00:77::21/64", "show-vnic: the bare IPv6 address got /64")
        XCTAssertEqual(try addresses6(), ["fd00:77::21/64"], "VM1's interface")
        var ping = try lab.run(in: t.wireNamespace, "ping", "-6", "-c", "3", "-i", "0.3", "-W", "2", "fd00:77::21")
        XCTAssertTrue(ping.succeeded, "the wire reaches the new address (after DAD): \(ping.diagnostic)")
        try addAddress(lab, vm1, t.vmInterface, "fd00:77::11/64", nodad: true)
        ping = try lab.run(in: vm1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "1", "-I", "fd00:77::11", Self.wire6)
        XCTAssertFalse(ping.succeeded, "the old address is no longer the VM's: \(ping.stdout)")
        XCTAssertGreaterThanOrEqual(try drops(lab, "vnic1")["spoof-ipv6"] ?? 0, 3)

        // Outside the policy: no answer, nothing changes, audited.
        let denied = try guest("request", "ip=\(v4),fd00:99::1/64", "--timeout", "1")
        XCTAssertEqual(denied.status, 3, denied.diagnostic)
        XCTAssertEqual(try shown(), "\(v4),fd00:77::21/64")
        let events = try lab.vnicadm("show-events", "-p", "-o", "origin,parameter,new,verdict", "vnic1").stdout
        XCTAssertTrue(events.contains("vm:ip:\(v4),fd00\\:99\\:\\:1/64:denied"), events)
        XCTAssertTrue(events.contains("vm:ip:\(v4),fd00\\:77\\:\\:21/64:accepted"), events)

        // The host sets an IPv6 address: the listening agent applies it and the old one goes.
        _ = try lab.run(in: vm1, "ip", "-6", "addr", "del", "fd00:77::11/64", "dev", t.vmInterface)
        _ = try lab.start(in: vm1, try lab.bin("vnic-guest"), "listen")
        usleep(300_000)
        let set = try lab.vnicadm("set", "vnic1", "ip=\(v4),fd00:77::22/64")
        XCTAssertTrue(set.stdout.contains("guest acknowledged"), set.stdout)
        XCTAssertEqual(try addresses6(), ["fd00:77::22/64"], "VM1's interface after vnicadm set")
        ping = try lab.run(in: t.wireNamespace, "ping", "-6", "-c", "3", "-i", "0.3", "-W", "2", "fd00:77::22")
        XCTAssertTrue(ping.succeeded, ping.diagnostic)
        // And an IPv6 default route.
        let gw = try lab.vnicadm("set", "vnic1", "gateway=fe80::1")
        XCTAssertTrue(gw.stdout.contains("guest acknowledged"), gw.stdout)
        let route = try lab.run(in: vm1, "ip", "-6", "route", "show", "default").stdout
        XCTAssertTrue(route.contains("via fe80::1"), "VM1's IPv6 default route: \(route)")
    }

    /// A guest at the kernel's defaults (accept_ra on, no static address) on a
    /// VNIC with a SLAAC prefix and ipv6-ra=slaac under ip-nospoof: it
    /// configures itself from vnicd's router advertisement (sent when vnicd
    /// starts, and as the answer to its solicitation when its link comes up
    /// again), takes the default route via the gateway on the wire, and its
    /// traffic passes. VM2, without ipv6-ra, gets nothing of it.
    func testSLAACGuestConfiguresItselfFromTheAppliancesAdvertisement() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let t = lab.topology
        try lab.createVNICs()
        try lab.vnicadm("set", "vnic1", "ip=\(t.vmIP(1)),fd00:77::/64", "gateway=fe80::1", "mtu=1400")
        try lab.vnicadm("set-linkprop", "-p", "protection=mac-nospoof,ip-nospoof,dhcp-nospoof", "-p", "ipv6-ra=slaac", "vnic1")
        let vm1 = t.vmNamespace(1)
        // The gateway on the wire: fe80::1, and a global address to ping.
        try addAddress(lab, t.wireNamespace, t.wire, "fe80::1/64")
        try addAddress(lab, t.wireNamespace, t.wire, "\(Self.wire6)/64")
        _ = try lab.startVnicd()
        let slaac = IPv6Interface(address: IPv6Interface("fd00:77::/64")!.address(for: t.vmMAC(1)), prefixLength: 64).description

        func waitForAddress(_ what: String) throws {
            let deadline = Date().addingTimeInterval(10)
            var show = ""
            while Date() < deadline {
                show = try lab.run(in: vm1, "ip", "-6", "addr", "show", "dev", t.vmInterface).stdout
                if show.contains(slaac) && !show.contains("tentative") { return }
                usleep(100_000)
            }
            XCTFail("\(what): VM1 has no \(slaac) within 10 s: \(show)")
        }
        try waitForAddress("the advertisement vnicd sends when it starts")
        let route = try lab.run(in: vm1, "ip", "-6", "route", "show", "default").stdout
        XCTAssertTrue(route.contains("via fe80::1"), "default route via the gateway: \(route)")
        XCTAssertEqual(try lab.link(t.vmInterface, in: vm1).mtu, 1500, "the link's MTU is its own")
        let mtu6 = try lab.run(in: vm1, "sysctl", "-n", "net.ipv6.conf.\(t.vmInterface).mtu").stdout
        XCTAssertEqual(mtu6.trimmingCharacters(in: .whitespacesAndNewlines), "1400", "the RA's MTU")
        for (ns, target) in [(vm1, Self.wire6), (t.wireNamespace, String(slaac.prefix { $0 != "/" }))] {
            let r = try lab.run(in: ns, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", target)
            XCTAssertTrue(r.succeeded, "\(ns) -> \(target): \(r.diagnostic)")
        }

        // Its link goes down and up: the address goes, its solicitation is answered, the address comes back.
        _ = try lab.run(in: vm1, "ip", "-6", "addr", "flush", "dev", t.vmInterface, "scope", "global")
        _ = try lab.run(in: vm1, "ip", "link", "set", "dev", t.vmInterface, "down")
        _ = try lab.run(in: vm1, "ip", "link", "set", "dev", t.vmInterface, "up")
        try waitForAddress("the answer to its router solicitation")
        XCTAssertGreaterThanOrEqual(try lab.freshStatus().requests?["ra-solicited"] ?? 0, 1, "vnicd answered a solicitation")

        let vm2 = try lab.run(in: t.vmNamespace(2), "ip", "-6", "addr", "show", "dev", t.vmInterface, "scope", "global").stdout
        XCTAssertEqual(vm2.trimmingCharacters(in: .whitespacesAndNewlines), "", "VM2 (ipv6-ra off) got no prefix")
        XCTAssertEqual(try drops(lab, "vnic1"), [:], "no false positive: DAD, ND and traffic from the SLAAC address pass")
    }

    /// A router solicitation reaches the wire and the VMs that are routers:
    /// none until VM1 sends a router advertisement, then VM1 and not VM2
    /// (VNICs at the default protection, where any VM may answer).
    func testSolicitationsReachOnlyTheVMsThatAdvertised() throws {
        let lab = try LabFixture(test: self, vms: 3, queues: 1)
        let t = lab.topology
        try lab.createVNICs()
        _ = try lab.startVnicd()
        func hex(_ f: [UInt8]) -> String { f.map { String(format: "%02x", $0) }.joined() }
        func send(from vm: Int, _ frame: [UInt8], count: Int) throws {
            let r = try lab.run(in: t.vmNamespace(vm), try lab.bin("vnic-pktgen"), "-i", t.vmInterface, "--frame-hex", hex(frame),
                                "--count", "\(count)", "--rate", "1000")
            XCTAssertTrue(r.succeeded, r.diagnostic)
        }
        // VM3's solicitation: from its link-local address to all-routers, with its link-layer address.
        let src = IPv6Address.linkLocal(t.vmMAC(3)), allRouters = IPv6Address(hi: 0xFF02_0000_0000_0000, lo: 2)
        var icmp: [UInt8] = [133, 0, 0, 0, 0, 0, 0, 0, 1, 1] + t.vmMAC(3).bytes
        let sum = RouterAdvertisement.checksum(src: src, dst: allRouters, next: 58, icmp)
        icmp[2] = UInt8(sum >> 8); icmp[3] = UInt8(sum & 0xFF)
        let rs = FrameBuilder.ethernet(dst: MACAddress("33:33:00:00:00:02")!, src: t.vmMAC(3), type: 0x86DD,
                                       payload: [0x60, 0, 0, 0, 0, UInt8(icmp.count), 58, 255] + src.bytes + allRouters.bytes + icmp)
        func received() throws -> [Int: UInt64] {
            let s = try lab.freshStatus()
            return [1: s.vnics["vnic1"]?.rxPackets ?? 0, 2: s.vnics["vnic2"]?.rxPackets ?? 0]
        }
        var before = try received()
        try send(from: 3, rs, count: 50)
        usleep(300_000)
        var after = try received()
        for vm in [1, 2] { XCTAssertLessThan(after[vm]! - before[vm]!, 10, "VM\(vm) is no router: the 50 solicitations do not reach it") }

        // VM1 advertises (a router with a link-local address, as radvd sends on start).
        let ra = RouterAdvertisement.frame(mode: .slaac, prefixes: [], mtu: 1500, gateway: IPv6Address.linkLocal(t.vmMAC(1)),
                                           applianceMAC: t.vmMAC(1), dstMAC: MACAddress("33:33:00:00:00:01")!,
                                           dstIP: RouterAdvertisement.allNodes)
        try send(from: 1, ra, count: 1)
        usleep(100_000)
        before = try received()
        try send(from: 3, rs, count: 50)
        usleep(300_000)
        after = try received()
        XCTAssertGreaterThanOrEqual(after[1]! - before[1]!, 50, "VM1 advertised: every solicitation reaches it")
        XCTAssertLessThan(after[2]! - before[2]!, 10, "VM2 still does not get them")
    }

    /// dhcpcd (IPv6 only, its defaults) on a VNIC with dhcp=on and
    /// ipv6-ra=managed under ip-nospoof and dhcp-nospoof: the RA's M flag sends
    /// it to DHCPv6, vnicd's server gives the VNIC's address, dhcpcd configures
    /// it, and traffic from it passes. Its DHCPv6 never reaches the wire.
    func testDhcpcdGetsItsAddressFromVnicsDHCPv6Server() throws {
        for tool in ["dhcpcd", "unshare", "tcpdump"] where Command.find(tool) == nil {
            throw TestEnvironment.unavailable("\(tool) not installed (apt-get install dhcpcd-base util-linux tcpdump)")
        }
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let t = lab.topology
        try lab.createVNICs()
        try lab.vnicadm("set", "vnic1", "ip=\(t.vmIP(1)),fd00:77::11/64")
        try lab.vnicadm("set-linkprop", "-p", "protection=mac-nospoof,ip-nospoof,dhcp-nospoof", "-p", "dhcp=on",
                        "-p", "ipv6-ra=managed", "vnic1")
        try addAddress(lab, t.wireNamespace, t.wire, "\(Self.wire6)/64")
        _ = try lab.startVnicd()
        let capture = try lab.start(in: t.wireNamespace, "tcpdump", "-n", "-l", "-i", t.wire, "udp port 547 or udp port 546")
        defer { _ = capture.terminate() }
        let leases = lab.path("dhcpcd6-leases")
        try FileManager.default.createDirectory(atPath: leases, withIntermediateDirectories: true)
        let sh = "mkdir -p /run/dhcpcd && mount -t tmpfs none /run/dhcpcd && mount --bind \(leases) /var/lib/dhcpcd && "
            + "exec dhcpcd -f /dev/null -6 -1 -B -d -t 20 --nohook resolv.conf -c /bin/true \(t.vmInterface)"
        let r = try lab.run(in: t.vmNamespace(1), ["unshare", "-m", "sh", "-c", sh], timeout: .seconds(40))
        XCTAssertTrue(r.succeeded, "dhcpcd -6: \(r.diagnostic)")
        let show = try lab.run(in: t.vmNamespace(1), "ip", "-6", "addr", "show", "dev", t.vmInterface, "scope", "global").stdout
        XCTAssertTrue(show.contains("fd00:77::11/"), "dhcpcd configured the VNIC's address: \(show)\n\(r.stderr.suffix(2000))")
        let ping = try lab.run(in: t.vmNamespace(1), "ping", "-6", "-c", "3", "-i", "0.3", "-W", "2", "-I", "fd00:77::11", Self.wire6)
        XCTAssertTrue(ping.succeeded, "from the leased address to the wire: \(ping.diagnostic)")
        let s = try lab.freshStatus()
        XCTAssertGreaterThanOrEqual(s.requests?["dhcp6-reply"] ?? 0, 1, "vnicd replied: \(s.requests ?? [:])")
        XCTAssertEqual(try drops(lab, "vnic1"), [:], "no false positive")
        usleep(200_000)
        XCTAssertFalse(capture.terminate().stdout.contains("dhcp6"), "the VM's DHCPv6 stays off the wire")
    }
}

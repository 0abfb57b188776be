// vnic-lab against the kernel: each test builds its own lab (unique prefix) with
// the real binary and checks it with `ip -j` from inside the namespaces. The
// expected names, MACs and addresses are written out as the contract states
// them, so a wrong formula in LabTopology fails here too.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class LabTests: XCTestCase {

    func testUpBuildsTheContractTopology() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 2)
        let p = lab.prefix
        XCTAssertEqual(try lab.existingNamespaces(), ["\(p)-host", "\(p)-vm1", "\(p)-vm2", "\(p)-wire"])

        // Host: uplink0 and the ports, up, no addresses at all (IPv6 off), 2 queues each way.
        let host = try lab.links(in: "\(p)-host")
        XCTAssertEqual(Set(host.map(\.name)), ["lo", "uplink0", "vm1p", "vm2p"])
        for link in host where link.name != "lo" {
            XCTAssertEqual(link.kind, "veth", link.name)
            XCTAssertEqual(link.txQueues, 2, "\(link.name) numtxqueues")
            XCTAssertEqual(link.rxQueues, 2, "\(link.name) numrxqueues")
            XCTAssertTrue(link.isAdminUp, "\(link.name) is down")
            XCTAssertEqual(link.mtu, 1500, link.name)
            XCTAssertEqual(link.addresses, [], "\(link.name) has addresses")
            XCTAssertNil(link.xdp, link.name)
        }
        XCTAssertEqual(host.first { $0.name == "uplink0" }?.address, "02:00:00:00:00:02")
        XCTAssertTrue(host.first { $0.name == "lo" }?.isAdminUp ?? false, "lo down in host")
        let sysctl = try lab.run(in: "\(p)-host", "sysctl", "-n",
                                 "net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6")
        XCTAssertEqual(sysctl.stdout.split(separator: "\n"), ["1", "1"], "IPv6 not disabled in the host namespace")

        // Wire and VMs: one interface with the contract's MAC and address.
        let expected = [("\(p)-wire", "wire0", "02:00:00:00:00:01", "10.77.0.1/24"),
                        ("\(p)-vm1", "vnic0", "02:00:00:00:01:01", "10.77.0.11/24"),
                        ("\(p)-vm2", "vnic0", "02:00:00:00:01:02", "10.77.0.12/24")]
        for (ns, name, mac, ip) in expected {
            let links = try lab.links(in: ns)
            XCTAssertEqual(Set(links.map(\.name)), ["lo", name], ns)
            let link = try XCTUnwrap(links.first { $0.name == name }, "\(name) in \(ns)")
            XCTAssertEqual(link.address, mac, ns)
            XCTAssertEqual(link.ipv4.map(\.description), [ip], ns)
            XCTAssertEqual([link.txQueues, link.rxQueues], [2, 2], "\(ns) \(name) queues")
            XCTAssertTrue(link.isAdminUp, "\(ns) \(name) down")
            XCTAssertEqual(link.mtu, 1500)
            XCTAssertTrue(links.first { $0.name == "lo" }?.isAdminUp ?? false, "lo down in \(ns)")
            // Transmit checksum offload: off on wire0 (its frames carry full checksums, as
            // from a real NIC); the kernel's default (on) on the VMs' ends.
            let features = try lab.run(in: ns, "ethtool", "-k", name)
            let offload = name == "wire0" ? "tx-checksumming: off" : "tx-checksumming: on"
            XCTAssertTrue(features.stdout.contains(offload), "\(ns) \(name): \(features.stdout.prefix(200))")
        }
    }

    func testTopologyNamesMatchTheKernel() throws {
        let lab = try LabFixture(test: self, vms: 3, queues: 1)
        let t = lab.topology
        XCTAssertEqual(Set(try lab.existingNamespaces()), Set(t.namespaces))
        for pair in t.vethPairs {
            XCTAssertEqual(try lab.link(pair.hostName, in: pair.hostNamespace).mac, pair.hostMAC)
            let peer = try lab.link(pair.peerName, in: pair.peerNamespace)
            XCTAssertEqual(peer.mac, pair.peerMAC)
            XCTAssertEqual(peer.ipv4, [pair.peerIP])
        }
        XCTAssertEqual(try lab.link(t.vmInterface, in: t.vmNamespace(3)).address, "02:00:00:00:01:03")
    }

    /// Each host-side end and its far side are the two ends of one veth: by ifindex and
    /// namespace id, and by a frame sent on one arriving on the other.
    func testHostEndsArePeersOfWireAndVMs() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let t = lab.topology
        for pair in t.vethPairs {
            let host = try lab.link(pair.hostName, in: pair.hostNamespace)
            let peer = try lab.link(pair.peerName, in: pair.peerNamespace)
            XCTAssertEqual(host.peerIfindex, peer.ifindex, "\(pair.hostName) -> \(pair.peerName)")
            XCTAssertEqual(peer.peerIfindex, host.ifindex, "\(pair.peerName) -> \(pair.hostName)")
            let ids = try Command.run(["ip", "-n", pair.hostNamespace, "-j", "netns", "list-id"])
            let nsid = try XCTUnwrap(host.peerNetnsID, "\(pair.hostName) has no link-netnsid")
            XCTAssertTrue(ids.stdout.contains("{\"nsid\":\(nsid),\"name\":\"\(pair.peerNamespace)\"}"),
                          "\(pair.hostNamespace) nsid \(nsid) is not \(pair.peerNamespace): \(ids.stdout)")

            // An ARP request for an address nobody has leaves the far side and reaches the host end.
            let before = try lab.rxPackets(pair.hostName, in: pair.hostNamespace)
            try lab.run(in: pair.peerNamespace, "ping", "-c", "1", "-W", "1", "10.77.0.250")
            let after = try lab.rxPackets(pair.hostName, in: pair.hostNamespace)
            XCTAssertGreaterThan(after, before, "nothing sent on \(pair.peerName) arrived on \(pair.hostName)")
        }
    }

    func testUpTwiceChangesNothing() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 2)
        let before = try snapshot(lab)
        let again = try lab.lab("up", "--vms", "2", "--queues", "2", "--verbose")
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stderr, "", "a complete lab ran commands:\n\(again.stderr)")
        XCTAssertTrue(again.stdout.contains("nothing changed"), again.stdout)
        XCTAssertEqual(try snapshot(lab), before)
        XCTAssertEqual(try lab.existingNamespaces().count, 4)
    }

    func testUpCompletesAPartialLab() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 2)
        let t = lab.topology
        _ = try Command.run(["ip", "netns", "del", t.vmNamespace(2)])
        try lab.run(in: t.wireNamespace, "ip", "link", "set", "dev", t.wire, "down")
        let uplinkBefore = try lab.link(t.uplink, in: t.hostNamespace).ifindex

        let result = try lab.lab("up", "--vms", "2", "--queues", "2")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(Set(try lab.existingNamespaces()), Set(t.namespaces))
        let vnic = try lab.link(t.vmInterface, in: t.vmNamespace(2))
        XCTAssertEqual(vnic.mac, t.vmMAC(2))
        XCTAssertEqual(vnic.ipv4, [t.vmIP(2)])
        XCTAssertEqual(vnic.peerIfindex, try lab.link(t.port(2), in: t.hostNamespace).ifindex)
        XCTAssertTrue(try lab.link(t.wire, in: t.wireNamespace).isAdminUp)
        XCTAssertEqual(try lab.link(t.uplink, in: t.hostNamespace).ifindex, uplinkBefore, "uplink0 was recreated")
    }

    func testDownRemovesEveryNamespaceAndIsIdempotent() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let down = try lab.lab("down")
        XCTAssertEqual(down.status, 0, down.stderr)
        XCTAssertEqual(try lab.existingNamespaces(), [])
        let again = try lab.lab("down")
        XCTAssertEqual(again.status, 0, again.stderr)
        let status = try lab.lab("status")
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.contains("no lab with prefix \(lab.prefix)"), status.stdout)
    }

    func testUpWithAnotherShapeFailsAndChangesNothing() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 2)
        let before = try snapshot(lab)
        for args in [["--vms", "3", "--queues", "2"], ["--vms", "1", "--queues", "2"], ["--vms", "2", "--queues", "1"]] {
            let result = try lab.lab(["up"] + args)
            XCTAssertEqual(result.status, 1, "up \(args): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("vnic-lab down --prefix \(lab.prefix)"), result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        }
        XCTAssertEqual(try snapshot(lab), before)
    }

    func testBadArgumentsExitTwoNamingTheToken() throws {
        let binary = try TestEnvironment.binary("vnic-lab")
        let cases: [([String], String)] = [
            (["up", "--vms", "0"], "'0'"), (["up", "--vms", "4001"], "'4001'"), (["up", "--vms", "two"], "'two'"),
            (["up", "--queues", "0"], "'0'"), (["up", "--queues", "65"], "'65'"),
            (["up", "--prefix", "Bad"], "'Bad'"), (["up", "--prefix", "9lab"], "'9lab'"),
            (["up", "--prefix", "toolong12"], "'toolong12'"), (["up", "--prefix", ""], "''"),
            (["down", "--prefix", "a_b"], "'a_b'"), (["status", "--prefix", "a.b"], "'a.b'"),
            (["up", "--bogus"], "--bogus"), (["frobnicate"], "frobnicate"), (["up", "--vms"], "--vms"),
            ([], "subcommand"),
        ]
        for (args, token) in cases {
            let result = try Command.run([binary] + args)
            XCTAssertEqual(result.status, 2, "\(args): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(token), "\(args): stderr does not name \(token): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("vnic-lab: "), "\(args): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(args): not one line: \(result.stderr)")
        }
        for args in [["--help"], ["up", "--help"], ["down", "--help"], ["status", "--help"]] {
            let result = try Command.run([binary] + args)
            XCTAssertEqual(result.status, 0, "\(args): \(result.stderr)")
            XCTAssertTrue(result.stdout.contains("USAGE"), "\(args)")
        }
    }

    /// Nothing of a lab ever appears in the root namespace, not even for a moment:
    /// `ip monitor link` in the root namespace sees no event for any lab interface
    /// while a lab goes up and down, and the root's links are the same afterwards.
    func testNothingIsCreatedInTheRootNamespace() throws {
        try TestEnvironment.requireLabPrivileges()
        let rootBefore = try rootLinks()
        let monitor = try Command.start(["ip", "-o", "monitor", "link"])
        Thread.sleep(forTimeInterval: 0.3)  // let it subscribe
        let lab = try LabFixture(test: self, vms: 3, queues: 2)
        XCTAssertEqual(try lab.lab("down").status, 0)
        Thread.sleep(forTimeInterval: 0.3)
        let events = monitor.terminate().stdout
        let names = [LabTopology.uplink, LabTopology.wire, LabTopology.vmInterface] + lab.topology.ports
        let ours = events.split(separator: "\n").filter { line in names.contains { line.contains(": \($0)") } }
        XCTAssertEqual(ours, [], "lab interfaces appeared in the root namespace")
        XCTAssertEqual(try rootLinks(), rootBefore, "the root namespace's links changed")
    }

    func testStatusShowsInterfacesPeersAndXDP() throws {
        let lab = try LabFixture(test: self, vms: 1, queues: 2)
        let t = lab.topology
        let xdp = try attachPassProgram(lab, to: t.port(1), in: t.hostNamespace)

        let text = try lab.lab("status")
        XCTAssertEqual(text.status, 0, text.stderr)
        for token in [t.hostNamespace, t.wireNamespace, t.vmNamespace(1), "uplink0", "02:00:00:00:00:02",
                      "wire0@\(t.wireNamespace)", "10.77.0.11/24", "2/2"] {
            XCTAssertTrue(text.stdout.contains(token), "status lacks \(token):\n\(text.stdout)")
        }
        let json = try lab.lab("status", "--json")
        XCTAssertEqual(json.status, 0, json.stderr)
        let status = try JSONDecoder().decode(LabStatus.self, from: Data(json.stdout.utf8))
        XCTAssertEqual(status.prefix, lab.prefix)
        XCTAssertEqual(status.vms, 1)
        XCTAssertEqual(status.queues, 2)
        XCTAssertEqual(status.namespaces.map(\.name), [t.hostNamespace, t.wireNamespace, t.vmNamespace(1)])
        let interfaces = status.namespaces.flatMap(\.interfaces)
        let uplink = try XCTUnwrap(interfaces.first { $0.name == t.uplink })
        XCTAssertEqual(uplink.peer, "\(t.wire)@\(t.wireNamespace)")
        XCTAssertEqual([uplink.txQueues, uplink.rxQueues], [2, 2])
        XCTAssertEqual(interfaces.first { $0.name == t.vmInterface }?.peer, "\(t.port(1))@\(t.hostNamespace)")
        if xdp {
            let port = try XCTUnwrap(interfaces.first { $0.name == t.port(1) })
            XCTAssertEqual(port.xdp?.mode, "native")
            XCTAssertEqual(port.xdp?.programs.first?.name, "lab_pass")
            XCTAssertTrue(text.stdout.contains("native"), text.stdout)
        }
    }

    /// A failed `up` removes what it created: with `sysctl` and `ethtool` out of
    /// PATH, `ip netns exec` fails right after the namespaces were made.
    func testFailedUpRemovesWhatItCreated() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 1, up: false)
        let dir = lab.path("bin")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/ip", withDestinationPath: try XCTUnwrap(Command.find("ip")))
        let result = try Command.run([try lab.bin("vnic-lab"), "up", "--prefix", lab.prefix],
                                     environment: ["PATH": dir])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("sysctl"), "the failing command is not named: \(result.stderr)")
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertEqual(try lab.existingNamespaces(), [], "a failed up left namespaces behind")
    }

    /// SIGTERM in the middle of a large `up`: exit 1, and nothing of the lab is left.
    func testInterruptedUpRemovesWhatItCreated() throws {
        let lab = try LabFixture(test: self, vms: LabTopology.vmRange.upperBound, queues: 1, up: false)
        let up = try Command.start([try lab.bin("vnic-lab"), "up", "--prefix", lab.prefix,
                                    "--vms", "\(lab.topology.vms)"])
        Thread.sleep(forTimeInterval: 1)
        up.signal(SIGTERM)
        let result = up.wait(timeout: .seconds(120))
        if result.status == 0 { throw XCTSkip("up of \(lab.topology.vms) VMs finished within a second") }
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("interrupted"), result.stderr)
        XCTAssertEqual(try lab.existingNamespaces(), [], "an interrupted up left namespaces behind")
    }

    /// Without CAP_NET_ADMIN/CAP_SYS_ADMIN (root with them dropped): exit 1, saying so.
    func testWithoutPrivilegesExitsOne() throws {
        try TestEnvironment.requireLabPrivileges()
        guard Command.find("setpriv") != nil else { throw TestEnvironment.unavailable("setpriv (util-linux) not found") }
        let prefix = "tnopriv"
        for sub in ["up", "down", "status"] {
            let result = try Command.run(["setpriv", "--inh-caps=-all", "--bounding-set=-net_admin,-sys_admin", "--",
                                          try TestEnvironment.binary("vnic-lab"), sub, "--prefix", prefix])
            XCTAssertEqual(result.status, 1, "\(sub): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("root (CAP_NET_ADMIN"), "\(sub): \(result.stderr)")
        }
        XCTAssertEqual(try LabFixture.namespaces(startingWith: prefix + "-"), [])
    }

    /// Without `ip` (hidden in a private mount namespace): exit 1, "ip (iproute2) not found".
    func testWithoutIpExitsOne() throws {
        try TestEnvironment.requireLabPrivileges()
        guard Command.find("unshare") != nil else { throw TestEnvironment.unavailable("unshare (util-linux) not found") }
        let script = """
            for p in /usr/local/sbin/ip /usr/local/bin/ip /usr/sbin/ip /usr/bin/ip /sbin/ip /bin/ip; do
              [ -e "$p" ] && mount --bind /dev/null "$p"; done; exec "$0" up --prefix tnoip
            """
        let result = try Command.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script,
                                      try TestEnvironment.binary("vnic-lab")])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(result.stderr, "vnic-lab: ip (iproute2) not found\n")
    }

    // MARK: Helpers

    /// Everything `up` manages, per namespace: ifindex (a recreated link gets a new
    /// one), MAC, MTU, queues, admin state, alias, peer, addresses. Not IPv6
    /// link-local addresses: the kernel adds them by itself once the carrier is up.
    private func snapshot(_ lab: LabFixture) throws -> [String: [String]] {
        var result: [String: [String]] = [:]
        for ns in try lab.existingNamespaces() {
            result[ns] = try lab.links(in: ns).map { l in
                "\(l.ifindex) \(l.name) \(l.address ?? "-") mtu \(l.mtu) q \(l.txQueues)/\(l.rxQueues) "
                    + "\(l.isAdminUp ? "up" : "down") alias \(l.alias ?? "-") peer \(l.peerIfindex ?? 0)/\(l.peerNetnsID ?? -1) "
                    + l.addresses.filter { !$0.local.hasPrefix("fe80:") }.map(\.description).sorted().joined(separator: ",")
            }
        }
        return result
    }

    private func rootLinks() throws -> [String] {
        let result = try Command.run(["ip", "-o", "link", "show"])
        XCTAssertEqual(result.status, 0)
        // "3: name@peer: <FLAGS> ..." -> "3: name@peer"
        return result.stdout.split(separator: "\n").map { $0.split(separator: ":").prefix(2).joined(separator: ":") }
    }

    /// Attaches a two-instruction XDP_PASS program to `link` (in the lab only), if
    /// clang can build one; returns whether it did.
    private func attachPassProgram(_ lab: LabFixture, to link: String, in namespace: String) throws -> Bool {
        guard let clang = Command.find("clang") else { return false }
        let source = lab.path("pass.c"), object = lab.path("pass.o")
        try """
            __attribute__((section("xdp"), used)) int lab_pass(void *ctx) { return 2; /* XDP_PASS */ }
            char _license[] __attribute__((section("license"), used)) = "GPL";
            """.write(toFile: source, atomically: true, encoding: .utf8)
        let build = try Command.run([clang, "-O2", "-target", "bpf", "-c", source, "-o", object])
        guard build.succeeded else { return false }
        let attach = try lab.run(in: namespace, "ip", "link", "set", "dev", link, "xdp", "obj", object, "sec", "xdp")
        XCTAssertEqual(attach.status, 0, attach.stderr)
        return attach.succeeded
    }
}

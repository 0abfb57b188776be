// LabTopology, LabPlan and the iproute2 JSON decoding, without a kernel: these
// run anywhere (no root, no binaries) and pin the contract's names and formulas.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class LabPlanTests: XCTestCase {

    func testContractNamesAndAddresses() throws {
        let t = try LabTopology(prefix: "vl", vms: 17, queues: 4)
        XCTAssertEqual(t.hostNamespace, "vl-host")
        XCTAssertEqual(t.wireNamespace, "vl-wire")
        XCTAssertEqual(t.vmNamespace(17), "vl-vm17")
        XCTAssertEqual(t.namespaces.count, 19)
        XCTAssertEqual(t.port(17), "vm17p")
        XCTAssertEqual(t.vmMAC(17).description, "02:00:00:00:01:11")
        XCTAssertEqual(t.vmMAC(1).description, "02:00:00:00:01:01")
        XCTAssertEqual(t.vmIP(17).description, "10.77.0.27/24")
        XCTAssertEqual(t.wireMAC.description, "02:00:00:00:00:01")
        XCTAssertEqual(t.wireIP.description, "10.77.0.1/24")
        XCTAssertEqual(t.uplinkMAC.description, "02:00:00:00:00:02")
        let last = try LabTopology(vms: LabTopology.largestSlash24Lab)
        XCTAssertEqual(last.vmIP(last.vms).description, "10.77.0.254/24")
        XCTAssertEqual(last.wireIP.description, "10.77.0.1/24")
        XCTAssertEqual(LabTopology.shape(fromAlias: t.shapeAlias)?.vms, 17)
        XCTAssertEqual(LabTopology.shape(fromAlias: t.shapeAlias)?.queues, 4)
    }

    /// Past 244 VMs: a /16 with wire0 in it, MACs with I's high byte (the contract's plan).
    func testLargeLabsUseASlash16() throws {
        let t = try LabTopology(prefix: "vl", vms: 1000, queues: 2)
        XCTAssertEqual(t.wireIP.description, "10.77.0.1/16")
        XCTAssertEqual(t.vmIP(1).description, "10.77.0.11/16")
        XCTAssertEqual(t.vmIP(245).description, "10.77.0.255/16")
        XCTAssertEqual(t.vmIP(300).description, "10.77.1.54/16")
        XCTAssertEqual(t.vmIP(1000).description, "10.77.3.242/16")
        XCTAssertEqual(t.vmMAC(17).description, "02:00:00:00:01:11")
        XCTAssertEqual(t.vmMAC(300).description, "02:00:00:01:01:2c")
        XCTAssertEqual(t.portMAC(300).description, "02:00:00:01:02:2c")
        XCTAssertEqual(t.vmMAC(4000).description, "02:00:00:0f:01:a0")
        XCTAssertEqual(t.vmNamespace(1000), "vl-vm1000")
        XCTAssertEqual(LabTopology.vmNumber(namespace: "vl-vm1000", prefix: "vl"), 1000)
        XCTAssertEqual(LabTopology.vmNumber(port: "vm1000p"), 1000)
        let all = Set(t.vmNumbers.map { t.vmMAC($0) } + t.vmNumbers.map { t.portMAC($0) } + [t.wireMAC, t.uplinkMAC])
        XCTAssertEqual(all.count, 2 * t.vms + 2, "two VMs share a MAC")
        XCTAssertEqual(Set(t.vmNumbers.map { t.vmIP($0).address }).count, t.vms)
        XCTAssertEqual(try LabTopology(vms: LabTopology.vmRange.upperBound).vmIP(4000).description, "10.77.15.170/16")
    }

    func testDefaults() throws {
        let t = try LabTopology()
        XCTAssertEqual([t.prefix, "\(t.vms)", "\(t.queues)"], ["vl", "2", "1"])
    }

    func testValidationNamesTheToken() {
        let bad: [(String, Int, Int, String)] = [
            ("vl", 0, 1, "--vms: '0'"), ("vl", 4001, 1, "--vms: '4001'"), ("vl", 1, 0, "--queues: '0'"),
            ("vl", 1, 65, "--queues: '65'"), ("", 1, 1, "--prefix: ''"), ("Vl", 1, 1, "--prefix: 'Vl'"),
            ("1vl", 1, 1, "--prefix: '1vl'"), ("abcdefghi", 1, 1, "--prefix: 'abcdefghi'"),
            ("a_b", 1, 1, "--prefix: 'a_b'"), ("a/b", 1, 1, "--prefix: 'a/b'"), ("é", 1, 1, "--prefix: 'é'"),
        ]
        for (prefix, vms, queues, message) in bad {
            XCTAssertThrowsError(try LabTopology(prefix: prefix, vms: vms, queues: queues)) { error in
                let e = error as? VnicError
                XCTAssertEqual(e?.exitCode, 2)
                XCTAssertTrue(e?.message.hasPrefix(message) ?? false, "\(e?.message ?? "?") vs \(message)")
            }
        }
        for prefix in ["a", "vl", "t-1", "abcdefgh", "z9-"] {
            XCTAssertNoThrow(try LabTopology(prefix: prefix), prefix)
        }
    }

    func testOnlyExactNamesBelongToALab() {
        for ns in ["vl-host", "vl-wire", "vl-vm1", "vl-vm244"] {
            XCTAssertTrue(LabTopology.belongsToLab(namespace: ns, prefix: "vl"), ns)
        }
        for ns in ["vl-a-host", "vl-vm", "vl-vm01", "vl-vmx", "vlx-host", "vl-hostx", "xvl-wire", "vl-vm1-host", "vl-vm12345"] {
            XCTAssertFalse(LabTopology.belongsToLab(namespace: ns, prefix: "vl"), ns)
        }
        XCTAssertEqual(LabTopology.vmNumber(namespace: "vl-vm12", prefix: "vl"), 12)
    }

    /// Every command of a plan names a namespace of the lab: nothing can touch the root namespace.
    func testAPlanOnlyTouchesTheLabsNamespaces() throws {
        let t = try LabTopology(prefix: "p", vms: 3, queues: 2)
        let steps = LabPlan.steps(t, observed: [:])
        XCTAssertFalse(steps.isEmpty)
        let namespaces = Set(t.namespaces)
        for step in steps {
            let a = step.ipArguments
            let ns = a.first == "-n" ? a[1] : (a.first == "netns" && a.count > 2 ? a[2] : nil)
            XCTAssertNotNil(ns.map(namespaces.contains), "\(step) names no namespace")
            XCTAssertTrue(ns.map(namespaces.contains) ?? false, "\(step) is outside the lab")
            if let add = a.firstIndex(of: "add"), a[add - 1] == "link" {
                // The peer is created straight into its namespace, never in the caller's.
                let peerNS = a.firstIndex(of: "netns").map { a[$0 + 1] }
                XCTAssertTrue(peerNS.map(namespaces.contains) ?? false, "\(step) creates a peer outside the lab")
            }
        }
        // Namespaces first, the host's IPv6 off before any interface is made there.
        let sysctl = try XCTUnwrap(steps.firstIndex { $0.ipArguments.contains("sysctl") })
        let firstLink = try XCTUnwrap(steps.firstIndex { $0.ipArguments.contains("add") && $0.ipArguments.contains("veth") })
        let lastNetns = try XCTUnwrap(steps.lastIndex { $0.ipArguments.starts(with: ["netns", "add"]) })
        XCTAssertLessThan(lastNetns, sysctl)
        XCTAssertLessThan(sysctl, firstLink)
        XCTAssertEqual(steps.filter { $0.ipArguments.contains("veth") }.count, 4)
        XCTAssertTrue(steps.filter { $0.ipArguments.starts(with: ["netns", "add"]) }.allSatisfy { $0.undo != nil })
    }

    /// The observed state of a complete lab plans nothing.
    func testACompleteLabPlansNothing() throws {
        let t = try LabTopology(prefix: "p", vms: 2, queues: 2)
        let observed = complete(t)
        XCTAssertEqual(LabPlan.steps(t, observed: observed), [])
        XCTAssertNil(LabPlan.conflict(t, namespaces: t.namespaces, host: observed[t.hostNamespace]))

        // One thing off at a time: exactly the fix for it.
        var down = observed
        down[t.vmNamespace(2)]!.links[1].flags = ["BROADCAST"]
        XCTAssertEqual(LabPlan.steps(t, observed: down).map(\.description), ["ip -n p-vm2 link set dev vnic0 up"])
        var noAddress = observed
        noAddress[t.wireNamespace]!.links[1].addresses = []
        XCTAssertEqual(LabPlan.steps(t, observed: noAddress).map(\.description), ["ip -n p-wire addr add 10.77.0.1/24 dev wire0"])
        var extraAddress = observed
        extraAddress[t.vmNamespace(1)]!.links[1].addresses.append(.init(family: "inet", local: "10.77.0.99", prefixLength: 24))
        XCTAssertEqual(LabPlan.steps(t, observed: extraAddress), [], "up removes nothing it did not make")
        // wire0's offload is kept off; the VMs' ends keep the kernel's default (on) unless asked off.
        var offload = observed
        offload[t.wireNamespace]!.txChecksumOff = []
        offload[t.vmNamespace(1)]!.txChecksumOff = ["vnic0"]
        XCTAssertEqual(LabPlan.steps(t, observed: offload).map(\.description),
                       ["ip netns exec p-wire ethtool -K wire0 tx off", "ip netns exec p-vm1 ethtool -K vnic0 tx on"])
        var off = t
        off.vmChecksumOffload = false
        XCTAssertEqual(LabPlan.steps(off, observed: observed).map(\.description),
                       (1...t.vms).map { "ip netns exec p-vm\($0) ethtool -K vnic0 tx off" })

        // A VM namespace gone: made again, with its pair; the rest untouched.
        var partial = observed
        partial[t.vmNamespace(2)] = nil
        partial[t.hostNamespace]!.links.removeAll { $0.name == t.port(2) }
        let steps = LabPlan.steps(t, observed: partial).map(\.description)
        XCTAssertEqual(steps.first, "ip netns add p-vm2")
        XCTAssertTrue(steps.allSatisfy { $0.contains("p-vm2") || $0.contains("vm2p") }, "\(steps)")
    }

    func testAnotherShapeConflicts() throws {
        let two = try LabTopology(prefix: "p", vms: 2, queues: 2)
        let observed = complete(two)
        let host = observed[two.hostNamespace]
        for (vms, queues) in [(3, 2), (1, 2), (2, 1)] {
            let other = try LabTopology(prefix: "p", vms: vms, queues: queues)
            let conflict = LabPlan.conflict(other, namespaces: two.namespaces, host: host)
            XCTAssertEqual(conflict, "a lab with prefix 'p' already exists with --vms 2 --queues 2, not --vms \(vms) "
                           + "--queues \(queues); remove it first with 'vnic-lab down --prefix p'")
        }
        // Without the alias (a lab from elsewhere), VM namespaces beyond N still conflict, fewer do not.
        var bare = host!
        bare.links[1].alias = nil
        XCTAssertNotNil(LabPlan.conflict(try LabTopology(prefix: "p", vms: 1, queues: 2), namespaces: two.namespaces, host: bare))
        XCTAssertNil(LabPlan.conflict(try LabTopology(prefix: "p", vms: 3, queues: 2), namespaces: two.namespaces, host: bare))
        XCTAssertNil(LabPlan.conflict(two, namespaces: [], host: nil))
    }

    /// `--qemu K`: the last K VMs are guests: a tap port `vmIt`, no namespace, no veth pair.
    func testGuestsAreTheLastVMsOnTaps() throws {
        let t = try LabTopology(prefix: "p", vms: 3, queues: 2, qemuGuests: 2, guestQueues: 2)
        XCTAssertEqual(t.guestVMs, [2, 3])
        XCTAssertEqual(t.namespaceVMs, [1])
        XCTAssertEqual(t.namespaces, ["p-host", "p-wire", "p-vm1"])
        XCTAssertEqual(t.ports, ["vm1p", "vm2t", "vm3t"])
        XCTAssertEqual(t.vethPairs.map(\.hostName), ["uplink0", "vm1p"])
        XCTAssertEqual(t.vmMAC(3).description, "02:00:00:00:01:03")
        XCTAssertEqual(t.vmIP(3).description, "10.77.0.13/24")
        XCTAssertEqual(t.shapeAlias, "vnic-lab vms=3 queues=2 qemu=2 guest-queues=2")
        let shape = try XCTUnwrap(LabTopology.shape(fromAlias: t.shapeAlias))
        XCTAssertEqual([shape.vms, shape.queues, shape.qemu, shape.guestQueues], [3, 2, 2, 2])
        // A lab without guests keeps the old alias, which means no guests.
        let plain = try LabTopology(prefix: "p", vms: 3, queues: 2)
        XCTAssertEqual(plain.shapeAlias, "vnic-lab vms=3 queues=2")
        XCTAssertEqual(LabTopology.shape(fromAlias: plain.shapeAlias)?.qemu, 0)
        XCTAssertNil(LabTopology.shape(fromAlias: "vnic-lab vms=3 queues=2 qemu=2"))
        XCTAssertEqual(LabTopology.vmNumber(port: "vm12t"), 12)
        XCTAssertEqual(LabTopology.vmNumber(port: "vm12p"), 12)
        XCTAssertNil(LabTopology.vmNumber(port: "vm012t"))
        XCTAssertNil(LabTopology.vmNumber(port: "uplink0"))
        XCTAssertEqual(try LabTopology(prefix: "p", vms: 2, qemuGuests: 2).namespaces, ["p-host", "p-wire"])
        for (k, g, message) in [(4, 1, "--qemu: '4'"), (-1, 1, "--qemu: '-1'"), (1, 0, "--guest-queues: '0'"), (1, 17, "--guest-queues: '17'")] {
            XCTAssertThrowsError(try LabTopology(prefix: "p", vms: 3, qemuGuests: k, guestQueues: g)) { error in
                let e = error as? VnicError
                XCTAssertEqual(e?.exitCode, 2)
                XCTAssertTrue(e?.message.hasPrefix(message) ?? false, "\(e?.message ?? "?") vs \(message)")
            }
        }
    }

    /// QEMU's tap of a running guest is complete as it is; the plan only fixes what up owns.
    func testAGuestTapIsFixedNeverCreated() throws {
        let t = try LabTopology(prefix: "p", vms: 2, queues: 1, qemuGuests: 1)
        var observed = complete(t)
        // No tap (the guest is not running): nothing to plan; QEMU makes it.
        XCTAssertEqual(LabPlan.steps(t, observed: observed), [])
        XCTAssertNil(LabPlan.conflict(t, namespaces: t.namespaces, host: observed[t.hostNamespace]))
        var tap = LinkState(ifindex: 9, name: "vm2t", flags: ["BROADCAST", "UP", "LOWER_UP"], mtu: 1500, operstate: "UNKNOWN",
                            address: "02:00:00:00:02:02", kind: "tun")
        observed[t.hostNamespace]!.links.append(tap)
        XCTAssertEqual(LabPlan.steps(t, observed: observed), [])
        tap.flags = ["BROADCAST"]
        tap.address = "fe:54:00:12:34:56"
        observed[t.hostNamespace]!.links[observed[t.hostNamespace]!.links.count - 1] = tap
        XCTAssertEqual(LabPlan.steps(t, observed: observed).map(\.description),
                       ["ip -n p-host link set dev vm2t address 02:00:00:00:02:02 up"])
        // A veth port left where a guest now is goes.
        var stale = complete(t)
        stale[t.hostNamespace]!.links.append(LinkState(ifindex: 20, name: "vm2p", kind: "veth"))
        XCTAssertEqual(LabPlan.steps(t, observed: stale).map(\.description), ["ip -n p-host link del dev vm2p"])
    }

    func testGuestsOfAnotherShapeConflict() throws {
        let plain = try LabTopology(prefix: "p", vms: 2, queues: 1)
        let observed = complete(plain)
        let withGuest = try LabTopology(prefix: "p", vms: 2, queues: 1, qemuGuests: 1)
        XCTAssertEqual(LabPlan.conflict(withGuest, namespaces: plain.namespaces, host: observed[plain.hostNamespace]),
                       "a lab with prefix 'p' already exists with --vms 2 --queues 1, not --vms 2 --queues 1 --qemu 1; "
                       + "remove it first with 'vnic-lab down --prefix p'")
        let guestLab = complete(withGuest)
        XCTAssertNotNil(LabPlan.conflict(plain, namespaces: withGuest.namespaces, host: guestLab[withGuest.hostNamespace]))
        let more = try LabTopology(prefix: "p", vms: 2, queues: 1, qemuGuests: 1, guestQueues: 2)
        XCTAssertEqual(LabPlan.conflict(more, namespaces: withGuest.namespaces, host: guestLab[withGuest.hostNamespace]),
                       "a lab with prefix 'p' already exists with --vms 2 --queues 1 --qemu 1, not --vms 2 --queues 1 --qemu 1 "
                       + "--guest-queues 2; remove it first with 'vnic-lab down --prefix p'")
        // Without the alias: a VM namespace where a guest is asked for conflicts.
        var bare = observed[plain.hostNamespace]!
        bare.links[1].alias = nil
        XCTAssertNotNil(LabPlan.conflict(withGuest, namespaces: plain.namespaces, host: bare))
    }

    /// QEMU's arguments: the tap as libvirt gets it (not persistent, no vhost, no
    /// script), QEMU's default offloads, multi-queue only when asked for.
    func testQEMUArgumentsAttachTheTapAsLibvirtDoes() throws {
        let t = try LabTopology(prefix: "p", vms: 2, queues: 1, qemuGuests: 1)
        let image = GuestImage(directory: "/img")
        let one = QEMUGuest(configuration: .init(topology: t, vm: 2, image: image, accelerator: .tcg), ip: "/usr/sbin/ip")
        let a = one.qemuArguments
        func value(_ flag: String) -> String? { a.firstIndex(of: flag).map { a[$0 + 1] } }
        XCTAssertEqual(value("-netdev"), "tap,id=n0,ifname=vm2t,script=no,downscript=no,vhost=off")
        XCTAssertEqual(value("-device"), "virtio-net-pci,netdev=n0,mac=02:00:00:00:01:02")
        XCTAssertEqual(value("-accel"), "tcg")
        XCTAssertEqual(value("-m"), "512")
        XCTAssertEqual(value("-smp"), "1")
        XCTAssertEqual(value("-kernel"), "/img/vmlinuz")
        XCTAssertEqual(value("-initrd"), "/img/initrd.img")
        XCTAssertEqual(value("-pidfile"), "/run/vnic-lab/p/vm2.pid")
        XCTAssertTrue(a.contains("-daemonize"))
        XCTAssertTrue(value("-append")?.contains("vnic.ip=10.77.0.12/24 vnic.gw=10.77.0.1") ?? false, "\(a)")
        XCTAssertTrue(value("-chardev")?.contains("path=/run/vnic-lab/p/vm2.console,server=on,wait=off") ?? false)
        XCTAssertFalse(a.joined(separator: " ").contains("csum"), "QEMU's default offloads, not csum=off")
        let mq = try LabTopology(prefix: "p", vms: 2, queues: 1, qemuGuests: 1, guestQueues: 4)
        let four = QEMUGuest(configuration: .init(topology: mq, vm: 2, image: image, accelerator: .kvm), ip: "/usr/sbin/ip")
        let b = four.qemuArguments
        XCTAssertEqual(b[b.firstIndex(of: "-netdev")! + 1], "tap,id=n0,ifname=vm2t,script=no,downscript=no,vhost=off,queues=4")
        XCTAssertEqual(b[b.firstIndex(of: "-device")! + 1], "virtio-net-pci,netdev=n0,mac=02:00:00:00:01:02,mq=on,vectors=10")
        XCTAssertEqual(b[b.firstIndex(of: "-smp")! + 1], "4")
        XCTAssertEqual(b[b.firstIndex(of: "-accel")! + 1], "kvm")
    }

    /// Output of `ip -n NS -j -d addr show` with iproute2 6.1, trimmed.
    func testDecodesIproute2JSON() throws {
        let json = """
            [{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"operstate":"UNKNOWN",
              "address":"00:00:00:00:00:00","num_tx_queues":1,"num_rx_queues":1,
              "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
             {"ifindex":2,"link_index":3,"ifname":"uplink0","flags":["BROADCAST","MULTICAST","UP"],"mtu":1500,
              "operstate":"UP","address":"02:00:00:00:00:02","link_netnsid":0,"ifalias":"vnic-lab vms=2 queues=2",
              "linkinfo":{"info_kind":"veth"},"num_tx_queues":2,"num_rx_queues":2,
              "xdp":{"mode":1,"prog":{"id":101,"name":"xdp_pass","tag":"d4f8542f2b42fac5","jited":1},
                     "attached":[{"mode":1,"prog":{"id":101,"name":"xdp_pass","tag":"d4f8542f2b42fac5","jited":1}}]},
              "addr_info":[]}]
            """
        let links = try LinkState.decode(ipJSON: json)
        XCTAssertEqual(links.map(\.name), ["lo", "uplink0"])
        XCTAssertNil(links[0].peerIfindex)
        XCTAssertEqual(links[0].ipv4.map(\.description), ["127.0.0.1/8"])
        let u = links[1]
        XCTAssertEqual(u.mac, MACAddress("02:00:00:00:00:02"))
        XCTAssertEqual([u.peerIfindex, u.peerNetnsID], [3, 0])
        XCTAssertEqual([u.txQueues, u.rxQueues], [2, 2])
        XCTAssertTrue(u.isAdminUp)
        XCTAssertEqual(u.kind, "veth")
        XCTAssertEqual(u.xdp, XDPAttachment(mode: "native", programs: [.init(id: 101, name: "xdp_pass")]))
        XCTAssertEqual(LabTopology.shape(fromAlias: u.alias ?? "")?.queues, 2)
        XCTAssertEqual(try LinkState.decode(ipJSON: ""), [])
    }

    // MARK: Helpers

    /// What the kernel shows for a complete lab of topology `t`.
    private func complete(_ t: LabTopology) -> [String: NamespaceState] {
        var next = 2
        func lo() -> LinkState {
            LinkState(ifindex: 1, name: "lo", flags: ["LOOPBACK", "UP", "LOWER_UP"], mtu: 65536, operstate: "UNKNOWN",
                      address: "00:00:00:00:00:00", kind: nil, txQueues: 1, rxQueues: 1, xdp: nil, addresses: [])
        }
        var result: [String: NamespaceState] = [:]
        for ns in t.namespaces { result[ns] = NamespaceState(name: ns, links: [lo()]) }
        result[t.hostNamespace]!.ipv6Disabled = true
        for pair in t.vethPairs {
            let hostIndex = next, peerIndex = next + 1
            next += 2
            var host = LinkState(ifindex: hostIndex, name: pair.hostName, flags: ["BROADCAST", "UP"], mtu: 1500,
                                 operstate: "UP", address: pair.hostMAC.description, peerIfindex: peerIndex,
                                 peerNetnsID: 0, kind: "veth", txQueues: t.queues, rxQueues: t.queues, xdp: nil,
                                 addresses: [])
            if pair.hostName == t.uplink { host.alias = t.shapeAlias }
            let peer = LinkState(ifindex: peerIndex, name: pair.peerName, flags: ["BROADCAST", "UP"], mtu: 1500,
                                 operstate: "UP", address: pair.peerMAC.description, peerIfindex: hostIndex,
                                 peerNetnsID: 0, kind: "veth", txQueues: t.queues, rxQueues: t.queues, xdp: nil,
                                 addresses: [.init(family: "inet", local: "\(pair.peerIP.address)", prefixLength: 24)])
            result[pair.hostNamespace]!.links.append(host)
            result[pair.peerNamespace]!.links.append(peer)
            if pair.hostName == t.uplink { result[pair.peerNamespace]!.txChecksumOff.insert(pair.peerName) }
        }
        return result
    }
}

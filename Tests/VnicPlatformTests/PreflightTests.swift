// `vnicadm check`'s logic without a kernel (VnicPlatform/Preflight.swift): the /proc
// parsers, the netlink encoding and the two replies it decodes, and the verdicts
// and fixes for facts as a lab, a NIC or a misconfigured host would give them.
import CVnicShared
import VnicCore
import VnicPlatform
import XCTest

final class PreflightTests: XCTestCase {
    // MARK: /proc

    func testCapEffFromStatus() {
        let status = "Name:\tvnicadm\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n"
        let caps = CapabilitySet.effective(status: status)
        XCTAssertEqual(caps?.bits, 0x1ff_ffff_ffff)
        XCTAssertTrue(caps?.has(CapabilitySet.bpf) ?? false)
        // Only CAP_NET_RAW (13) and CAP_BPF (39).
        let some = CapabilitySet.effective(status: "CapEff:\t0000008000002000\n")
        XCTAssertEqual(some.map { [$0.has(13), $0.has(39), $0.has(12), $0.has(14)] }, [true, true, false, false])
        XCTAssertNil(CapabilitySet.effective(status: "Name:\tx\n"))
        XCTAssertNil(CapabilitySet.effective(status: "CapEff:\tzz\n"))
    }

    func testBPFFSInMountinfo() {
        let base = """
            22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
            30 22 0:26 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:11 - bpf bpf rw,mode=700
            """
        XCTAssertTrue(Preflight.isBPFFS(mountinfo: base))
        XCTAssertFalse(Preflight.isBPFFS(mountinfo: "22 1 0:21 / /sys rw shared:7 - sysfs sysfs rw\n"))
        // A tmpfs mounted over it hides it (the last mount on a path is on top).
        XCTAssertFalse(Preflight.isBPFFS(mountinfo: base + "\n40 30 0:40 / /sys/fs/bpf rw - tmpfs tmpfs rw\n"))
        // No optional fields, and an escaped mount point.
        XCTAssertTrue(Preflight.isBPFFS(mountinfo: "31 22 0:27 / /my\\040bpf rw - bpf bpf rw\n", at: "/my bpf"))
        XCTAssertFalse(Preflight.isBPFFS(mountinfo: "garbage\n- bpf\n\n"))
    }

    // MARK: Netlink

    func testMessageRoundTrip() {
        let m = Netlink.message(type: Netlink.Route.getLink, flags: Netlink.flagRequest, sequence: 7,
                                body: Netlink.ifinfo(index: 5), attributes: [(3, Netlink.string("up0"))])
        XCTAssertEqual(m.count, 16 + 16 + 8)  // header, ifinfomsg, "up0\0" padded to 4 after its 4-byte header
        let back = Netlink.messages(in: m)
        XCTAssertEqual(back.count, 1)
        XCTAssertEqual(back.first?.type, Netlink.Route.getLink)
        XCTAssertEqual(back.first?.sequence, 7)
        XCTAssertEqual(back.first?.payload.count, 24)
        XCTAssertNil(back.first?.errorCode)
    }

    func testErrorReplyAndTruncatedInput() {
        var payload = Netlink.bytes(Int32(-19))  // -ENODEV, then the request's header
        payload += [UInt8](repeating: 0, count: 16)
        let reply = Netlink.message(type: Netlink.error, flags: 0, sequence: 1, body: payload)
        XCTAssertEqual(Netlink.messages(in: reply).first?.errorCode, 19)
        // A length that lies, a short datagram, attributes that overrun: nothing, no trap.
        XCTAssertTrue(Netlink.messages(in: Array(reply.prefix(20))).isEmpty)
        XCTAssertTrue(Netlink.messages(in: [1, 2, 3]).isEmpty)
        XCTAssertTrue(Netlink.attributes([200, 0, 1, 0, 9][...]).isEmpty)
        XCTAssertNil(Netlink.decodeLink([0, 0, 1]))
        XCTAssertNil(Netlink.decodeXDPFeatures([1]))
    }

    /// An RTM_NEWLINK as the kernel sends it for a veth with a native program
    /// attached: ifinfomsg (index 4, IFF_UP), IFLA_LINKINFO { IFLA_INFO_KIND "veth" },
    /// IFLA_XDP { IFLA_XDP_ATTACHED = 1 (driver), IFLA_XDP_PROG_ID = 42 }.
    func testDecodeLink() {
        let ifinfo = [UInt8(0), 0] + Netlink.bytes(UInt16(1)) + Netlink.bytes(Int32(4)) + Netlink.bytes(UInt32(0x1003)) + Netlink.bytes(UInt32(0))
        let linkinfo = Netlink.attribute(1, Netlink.string("veth"))
        let xdp = Netlink.attribute(2, [1]) + Netlink.attribute(4, Netlink.bytes(UInt32(42)))
        let payload = ifinfo + Netlink.attribute(3, Netlink.string("up0")) + Netlink.attribute(18 | 0x8000, linkinfo)
            + Netlink.attribute(43 | 0x8000, xdp)
        let link = Netlink.decodeLink(payload)
        XCTAssertEqual(link?.index, 4)
        XCTAssertEqual(link?.isUp, true)
        XCTAssertEqual(link?.kind, "veth")
        XCTAssertEqual(link?.attached, XDPAttachment(programs: [(.native, 42)]))

        // Nothing attached; and MULTI (4): one id per mode.
        let none = Netlink.decodeLink(ifinfo + Netlink.attribute(43, Netlink.attribute(2, [0])))
        XCTAssertEqual(none?.attached, XDPAttachment())
        XCTAssertNil(none?.kind)
        let multi = Netlink.attribute(2, [4]) + Netlink.attribute(5, Netlink.bytes(UInt32(7))) + Netlink.attribute(7, Netlink.bytes(UInt32(9)))
        XCTAssertEqual(Netlink.decodeLink(ifinfo + Netlink.attribute(43, multi))?.attached,
                       XDPAttachment(programs: [(.native, 7), (.offload, 9)]))
    }

    func testDecodeGenericReplies() {
        let family = Netlink.genl(command: 1) + Netlink.attribute(2, Netlink.string("netdev")) + Netlink.attribute(1, Netlink.bytes(UInt16(0x1b)))
        XCTAssertEqual(Netlink.decodeFamilyID(family), 0x1b)
        let dev = Netlink.genl(command: 1) + Netlink.attribute(1, Netlink.bytes(UInt32(4)))
            + Netlink.attribute(3, Netlink.bytes(UInt64(Preflight.XDPAct.basic | Preflight.XDPAct.redirect | Preflight.XDPAct.rxSG)))
        XCTAssertEqual(Netlink.decodeXDPFeatures(dev), 35)
        XCTAssertEqual(Preflight.XDPAct.describe(35), "basic,redirect,rx-sg")
        XCTAssertEqual(Preflight.XDPAct.describe(0), "none")
    }

    // MARK: Verdicts

    static let root = CapabilitySet(bits: 0x1ff_ffff_ffff)

    /// What the lab's uplink0 looks like from its namespace, as root.
    func labFacts() -> PreflightFacts {
        PreflightFacts(linkName: "uplink0",
                       link: .init(index: 4, kind: "veth", queues: .init(rx: 2, tx: 2), xdpFeatures: 35, attached: XDPAttachment()),
                       memlockLimit: 8 << 20, capabilities: Self.root, bpffsMounted: true, btfPresent: true)
    }

    func item(_ items: [PreflightItem], _ name: String) -> PreflightItem? { items.first { $0.item == name } }

    func testLabUplinkIsReady() {
        let items = Preflight.evaluate(labFacts())
        XCTAssertEqual(items.map(\.item), ["link", "queues", "xdp", "xdp-program", "af-xdp", "memlock", "capabilities", "bpffs", "btf"])
        XCTAssertEqual(items.filter { $0.verdict != .ok }, [])
        XCTAssertTrue(item(items, "queues")!.detail.contains("2 workers"))
        XCTAssertTrue(item(items, "xdp")!.detail.hasPrefix("native"))
        XCTAssertTrue(item(items, "af-xdp")!.detail.contains("no zero-copy"))
        XCTAssertTrue(item(items, "memlock")!.detail.contains("64 MiB"), item(items, "memlock")!.detail)
        XCTAssertTrue(items.allSatisfy { $0.fix == nil })
    }

    func testMissingLinkFailsAndNamesIt() {
        var f = labFacts()
        f.linkName = "nosuchif"
        f.link = nil
        let items = Preflight.evaluate(f)
        XCTAssertEqual(items.first?.verdict, .fail)
        XCTAssertTrue(items.first!.detail.contains("nosuchif"))
        XCTAssertTrue(items.first!.fix?.contains("vnicadm check -l nosuchif") ?? false)
        XCTAssertNil(item(items, "queues"))
        XCTAssertTrue(item(items, "memlock")!.detail.contains("32 MiB per worker"))
    }

    func testSingleQueueFixes() {
        var f = labFacts()
        f.link!.queues = .init(rx: 1, tx: 1)
        let veth = item(Preflight.evaluate(f), "queues")!
        XCTAssertEqual(veth.verdict, .warn)
        XCTAssertTrue(veth.fix!.contains("numrxqueues 2 numtxqueues 2 type veth"), veth.fix!)

        f.linkName = "eth1"
        f.link!.kind = nil
        f.link!.queues = .init(rx: 1, tx: 1, maxCombined: 8)
        XCTAssertEqual(item(Preflight.evaluate(f), "queues")!.fix, "ethtool -L eth1 combined 8")

        f.link!.queues = .init(rx: 96, tx: 96, maxCombined: 96)
        let many = item(Preflight.evaluate(f), "queues")!
        XCTAssertEqual(many.verdict, .warn)
        XCTAssertEqual(many.fix, "vnicd --queues \(VNIC_MAX_QUEUES)")

        f.link!.queues = nil
        f.link!.queueError = "Operation not permitted"
        XCTAssertEqual(item(Preflight.evaluate(f), "queues")!.verdict, .fail)
    }

    func testXDPFeatures() {
        var f = labFacts()
        f.link!.xdpFeatures = 0
        let generic = item(Preflight.evaluate(f), "xdp")!
        XCTAssertEqual(generic.verdict, .warn)
        XCTAssertEqual(generic.fix, "vnicd --xdp-mode generic")

        f.link!.xdpFeatures = nil  // a kernel before 6.3
        XCTAssertEqual(item(Preflight.evaluate(f), "xdp")!.verdict, .warn)
        XCTAssertEqual(item(Preflight.evaluate(f), "af-xdp")!.verdict, .ok)

        f.link!.xdpFeatures = Preflight.XDPAct.basic | Preflight.XDPAct.redirect | Preflight.XDPAct.xskZeroCopy
        let items = Preflight.evaluate(f)
        XCTAssertEqual(item(items, "xdp")!.verdict, .ok)
        XCTAssertTrue(item(items, "af-xdp")!.detail.contains("also offers zero-copy"))
    }

    func testAttachedProgramFails() {
        var f = labFacts()
        f.link!.attached = XDPAttachment(programs: [(.generic, 3056)])
        let a = item(Preflight.evaluate(f), "xdp-program")!
        XCTAssertEqual(a.verdict, .fail)
        XCTAssertTrue(a.detail.contains("3056"))
        XCTAssertTrue(a.fix!.hasPrefix("ip link set dev uplink0 xdpgeneric off"), a.fix!)
    }

    func testMemlock() {
        var f = labFacts()
        f.capabilities.bits &= ~(1 << 14)  // no CAP_IPC_LOCK: the UMEM counts against 8 MiB
        var items = Preflight.evaluate(f)
        XCTAssertEqual(item(items, "memlock")!.verdict, .fail)
        XCTAssertTrue(item(items, "memlock")!.fix!.hasPrefix("ulimit -l unlimited"))
        XCTAssertEqual(item(items, "capabilities")!.verdict, .warn)
        XCTAssertTrue(item(items, "capabilities")!.fix!.contains("--ambient-caps=+ipc_lock"))

        f.memlockLimit = nil  // unlimited
        XCTAssertEqual(item(Preflight.evaluate(f), "memlock")!.verdict, .ok)
        f.memlockLimit = 64 << 20  // exactly 2 workers x 32 MiB
        XCTAssertEqual(item(Preflight.evaluate(f), "memlock")!.verdict, .ok)
        f.framesPerWorker = 32768
        items = Preflight.evaluate(f)
        XCTAssertEqual(item(items, "memlock")!.verdict, .fail)
        XCTAssertTrue(item(items, "memlock")!.detail.contains("128 MiB"))
    }

    func testCapabilities() {
        var f = labFacts()
        f.capabilities = CapabilitySet(bits: Self.root.bits & ~(1 << 13))  // no CAP_NET_RAW
        let raw = item(Preflight.evaluate(f), "capabilities")!
        XCTAssertEqual(raw.verdict, .fail)
        XCTAssertTrue(raw.detail.contains("CAP_NET_RAW"))
        XCTAssertTrue(raw.fix!.contains("--inh-caps=+net_raw --ambient-caps=+net_raw"), raw.fix!)

        // CAP_SYS_ADMIN stands in for CAP_NET_ADMIN and CAP_BPF.
        f.capabilities = CapabilitySet(bits: 1 << 21 | 1 << 13 | 1 << 14)
        let sys = item(Preflight.evaluate(f), "capabilities")!
        XCTAssertEqual(sys.verdict, .ok, sys.detail)
        f.capabilities = CapabilitySet(bits: Self.root.bits & ~(1 << 12 | 1 << 21))
        let admin = item(Preflight.evaluate(f), "capabilities")!
        XCTAssertEqual(admin.verdict, .fail)
        XCTAssertTrue(admin.detail.contains("CAP_NET_ADMIN"))
        XCTAssertFalse(admin.detail.contains("CAP_BPF"))

        // An unprivileged process lacks all four.
        f.capabilities = CapabilitySet(bits: 0)
        let none = item(Preflight.evaluate(f), "capabilities")!
        XCTAssertTrue(none.fix!.contains("AmbientCapabilities=CAP_NET_ADMIN CAP_BPF CAP_NET_RAW CAP_IPC_LOCK"), none.fix!)
    }

    func testEveryItemThatIsNotOkHasAFix() {
        var f = labFacts()
        f.link = .init(index: 9, kind: "veth", isUp: false, queues: .init(rx: 1, tx: 1), xdpFeatures: 0,
                       attached: XDPAttachment(programs: [(.native, 1)]))
        f.capabilities = CapabilitySet(bits: 0)
        f.bpffsMounted = false
        f.btfPresent = false
        let items = Preflight.evaluate(f)
        XCTAssertEqual(items.filter { $0.verdict == .ok }.map(\.item), ["af-xdp"])
        for i in items where i.verdict != .ok { XCTAssertNotNil(i.fix, i.item) }
        XCTAssertEqual(item(items, "link")!.fix, "ip link set dev uplink0 up")
        XCTAssertEqual(item(items, "bpffs")!.fix, "mount -t bpf bpf /sys/fs/bpf before vnicd starts (vnicd.service's ExecStartPre does)")
    }

    /// No bpffs: vnicd mounts one when it holds CAP_SYS_ADMIN, else it does not
    /// start, and check says so with the fix.
    func testBPFFSVerdictFollowsWhatVnicdWillDo() {
        var f = labFacts()
        XCTAssertEqual(item(Preflight.evaluate(f), "bpffs")!.verdict, .ok)
        f.bpffsMounted = false
        let root = item(Preflight.evaluate(f), "bpffs")!
        XCTAssertEqual(root.verdict, .ok)
        XCTAssertTrue(root.detail.contains("vnicd mounts one"), root.detail)
        f.capabilities = CapabilitySet(bits: 1 << 12 | 1 << 13 | 1 << 14 | 1 << 39)   // the service's four
        let service = item(Preflight.evaluate(f), "bpffs")!
        XCTAssertEqual(service.verdict, .fail)
        XCTAssertTrue(service.detail.contains("without CAP_SYS_ADMIN"), service.detail)
        XCTAssertTrue(service.fix!.hasPrefix("mount -t bpf bpf /sys/fs/bpf"), service.fix!)
    }

    /// A tap is a VM's port: no ethtool advice (taps have no channels), its
    /// queues are its guest's, and no carrier means no guest.
    func testTapGetsPortVerdicts() {
        var f = labFacts()
        f.linkName = "vm2t"
        f.link = .init(index: 12, kind: "tun", isUp: true, queues: .init(rx: 1, tx: 1), xdpFeatures: 7,
                       attached: XDPAttachment())
        f.link!.carrier = false
        let items = Preflight.evaluate(f)
        XCTAssertFalse(items.contains { ($0.fix ?? "").contains("ethtool") || $0.detail.contains("ethtool") }, "\(items)")
        XCTAssertEqual(item(items, "queues")!.verdict, .ok)
        XCTAssertTrue(item(items, "queues")!.detail.contains("queues=N"), item(items, "queues")!.detail)
        let carrier = item(items, "carrier")!
        XCTAssertEqual(carrier.verdict, .warn)
        XCTAssertTrue(carrier.fix!.contains("ifname=vm2t"), carrier.fix!)
        f.link!.carrier = true
        XCTAssertEqual(item(Preflight.evaluate(f), "carrier")!.verdict, .ok)
        // An uplink keeps its queue advice and has no carrier item.
        XCTAssertNil(item(Preflight.evaluate(labFacts()), "carrier"))
    }

    func testByteSizes() {
        XCTAssertEqual(Preflight.bytes(8 << 20), "8 MiB")
        XCTAssertEqual(Preflight.bytes(3 << 29), "1.5 GiB")
        XCTAssertEqual(Preflight.bytes(65536), "64 KiB")
        XCTAssertEqual(Preflight.bytes(100), "100 B")
    }
}

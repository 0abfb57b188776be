// VnicLabKit: the test and bench topology, built from network namespaces.
//
// Design: `LabTopology` is the one source of truth for every name, MAC and
// address of a lab (the vnic-lab contract); `LabPlan` turns a topology and the
// observed kernel state into the `ip` commands that make the kernel match it;
// `Lab` runs them (up, down, status). Everything the CLI does, the integration
// tests can reuse by name instead of repeating strings.
//
// Invariants:
// - Every interface is created directly inside a namespace of the lab
//   (`ip -n NS link add ... peer name X netns OTHER`); nothing ever touches the
//   root network namespace, not even briefly.
// - Every namespace of a lab is named `P-<role>` with P the prefix, and only
//   namespaces that match `P-host`, `P-wire` or `P-vm<digits>` belong to it.
// - The only external tool is `ip` (iproute2); `ethtool` and `sysctl` run through
//   `ip netns exec` inside the lab's namespaces. QEMU guests (`--qemu K`) are
//   started by `QEMUGuest` inside P-host (nsenter), where QEMU makes their taps.
import VnicCore

/// The names and addresses of one lab: prefix P, N VMs, Q queues per interface,
/// the last K of the VMs QEMU guests.
///
///     P-host   uplink0 (02:00:00:00:00:02), vm1p .. vmNp (02:00:00:HH:02:LL), no IPs, no IPv6
///     P-wire   wire0   (02:00:00:00:00:01, 10.77.0.1/24), the peer of uplink0
///     P-vmI    vnic0   (02:00:00:HH:01:LL, 10.77.0.(10+I)/24), the peer of vmIp
///
/// HH and LL are I's high and low byte (00 and I up to 255). Up to 244 VMs the
/// addresses are in 10.77.0.0/24; a larger lab uses 10.77.0.0/16: VM I gets
/// 10.77.0.0 + 10 + I (VM 300 is 10.77.1.54/16) and wire0 10.77.0.1/16.
///
/// A guest VM I (I > N - K) has no namespace: its port is the tap `vmIt` in P-host
/// (02:00:00:00:02:XX), made by QEMU, whose virtio-net device (the guest's eth0)
/// has the VM's MAC and address.
public struct LabTopology: Hashable, Sendable, CustomStringConvertible {
    public static let defaultPrefix = "vl"
    /// Up to 4,000 VMs (a host's worth of containers); the address plan would
    /// take 65,524 and the MAC plan 65,535.
    public static let vmRange = 1...4000
    /// VM I's address is 10.77.0.(10+I)/24 up to I = 244 (10.77.0.254; .255 is
    /// the broadcast address): larger labs use a /16.
    public static let largestSlash24Lab = 244
    public static let queueRange = 1...64
    /// Keeps namespace names short (at most 15 bytes with `-vm4000`), like interface names.
    public static let maxPrefixLength = 8

    public let prefix: String
    public let vms: Int
    public let queues: Int
    /// K: the last K VMs are QEMU guests (`--qemu K`), 0...vms.
    public let qemuGuests: Int
    /// Queues of each guest's tap and virtio-net device (`--guest-queues`), and its vCPUs.
    public let guestQueues: Int
    /// A guest's queues: 1 (libvirt's default single-queue tap) up to 16.
    public static let guestQueueRange = 1...16

    /// Validates like the CLI: a bad value throws a usage error naming the flag and the token.
    /// Transmit checksum offload on the VMs' ends (`vnic-lab up --checksum-offload`):
    /// on, the kernel's default, unless asked off. wire0's is always off.
    public var vmChecksumOffload = true

    public init(prefix: String = LabTopology.defaultPrefix, vms: Int = 2, queues: Int = 1,
                qemuGuests: Int = 0, guestQueues: Int = 1) throws(VnicError) {
        try Self.validate(prefix: prefix)
        guard Self.vmRange.contains(vms) else { throw .usage("--vms: '\(vms)' is not in \(Self.vmRange)") }
        guard Self.queueRange.contains(queues) else { throw .usage("--queues: '\(queues)' is not in \(Self.queueRange)") }
        guard (0...vms).contains(qemuGuests) else { throw .usage("--qemu: '\(qemuGuests)' is not in 0...\(vms) (--vms)") }
        guard Self.guestQueueRange.contains(guestQueues) else {
            throw .usage("--guest-queues: '\(guestQueues)' is not in \(Self.guestQueueRange)")
        }
        self.prefix = prefix
        self.vms = vms
        self.queues = queues
        self.qemuGuests = qemuGuests
        self.guestQueues = guestQueues
    }

    /// A prefix is 1...8 characters of a-z, 0-9 and '-', starting with a letter.
    public static func validate(prefix: String) throws(VnicError) {
        let ok = (1...maxPrefixLength).contains(prefix.utf8.count)
            && prefix.utf8.first.map { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) } == true
            && prefix.utf8.allSatisfy { c in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "-")
            }
        guard ok else {
            throw .usage("--prefix: '\(prefix)' must be 1 to \(maxPrefixLength) characters of a-z, 0-9 and '-', starting with a letter")
        }
    }

    public var description: String {
        "lab '\(prefix)' (--vms \(vms) --queues \(queues)"
            + (qemuGuests > 0 ? " --qemu \(qemuGuests)" : "") + (guestQueues > 1 ? " --guest-queues \(guestQueues)" : "") + ")"
    }

    // MARK: Namespaces

    public var hostNamespace: String { Self.hostNamespace(prefix: prefix) }
    public var wireNamespace: String { "\(prefix)-wire" }
    public func vmNamespace(_ vm: Int) -> String { "\(prefix)-vm\(vm)" }
    /// VM numbers, 1-based like the names.
    public var vmNumbers: ClosedRange<Int> { 1...vms }
    /// Whether VM `vm` is a QEMU guest (one of the last `qemuGuests`) rather than a namespace.
    public func isGuest(_ vm: Int) -> Bool { vm > vms - qemuGuests && vmNumbers.contains(vm) }
    /// The VMs that are namespaces (`P-vmI`), then the QEMU guests.
    public var namespaceVMs: [Int] { vmNumbers.filter { !isGuest($0) } }
    public var guestVMs: [Int] { vmNumbers.filter(isGuest) }
    /// Every namespace of the lab, host first; guests have none.
    public var namespaces: [String] { [hostNamespace, wireNamespace] + namespaceVMs.map(vmNamespace) }

    public static func hostNamespace(prefix: String) -> String { "\(prefix)-host" }

    /// Whether `namespace` belongs to the lab with `prefix`: `P-host`, `P-wire` or `P-vm<I>`.
    /// Exact, so prefix `vl` never claims the namespaces of prefix `vl-a`.
    public static func belongsToLab(namespace: String, prefix: String) -> Bool {
        vmNumber(namespace: namespace, prefix: prefix) != nil
            || namespace == "\(prefix)-host" || namespace == "\(prefix)-wire"
    }

    /// The VM number of a `P-vm<I>` namespace name (no leading zeros), else nil.
    public static func vmNumber(namespace: String, prefix: String) -> Int? {
        let head = "\(prefix)-vm"
        guard namespace.hasPrefix(head) else { return nil }
        let digits = namespace.dropFirst(head.count)
        guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              digits.first != "0" else { return nil }
        return Int(digits)
    }

    // MARK: Interfaces

    public static let uplink = "uplink0"
    public static let wire = "wire0"
    public static let vmInterface = "vnic0"
    public static let mtu = 1500
    public var uplink: String { Self.uplink }
    public var wire: String { Self.wire }
    /// The interface inside every VM namespace.
    public var vmInterface: String { Self.vmInterface }
    /// The host-side port of VM `vm`, in the host namespace: `vm<I>p` (a veth), or
    /// `vm<I>t` (the tap QEMU makes) for a guest.
    public func port(_ vm: Int) -> String { isGuest(vm) ? Self.tap(vm) : Self.vethPort(vm) }
    public static func vethPort(_ vm: Int) -> String { "vm\(vm)p" }
    public static func tap(_ vm: Int) -> String { "vm\(vm)t" }
    /// The VM number of a port name (`vm<I>p` or `vm<I>t`), else nil.
    public static func vmNumber(port: String) -> Int? {
        guard port.hasPrefix("vm"), port.hasSuffix("p") || port.hasSuffix("t") else { return nil }
        let digits = port.dropFirst(2).dropLast()
        guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.first != "0"
        else { return nil }
        return Int(digits)
    }
    public var ports: [String] { vmNumbers.map(port) }

    public static let wireMAC = MACAddress(rawValue: 0x02_00_00_00_00_01)
    public static let uplinkMAC = MACAddress(rawValue: 0x02_00_00_00_00_02)
    public var wireMAC: MACAddress { Self.wireMAC }
    public var uplinkMAC: MACAddress { Self.uplinkMAC }
    /// The prefix length of the lab's network: /24 up to 244 VMs, else /16.
    public var prefixLength: UInt8 { vms <= Self.largestSlash24Lab ? 24 : 16 }
    /// wire0's address: 10.77.0.1 in the lab's network.
    public var wireIP: IPv4Interface {
        IPv4Interface(address: IPv4Address(rawValue: 0x0A4D_0001), prefixLength: prefixLength)
    }

    /// VM I's MAC on vnic0: 02:00:00:HH:01:LL (HH, LL = I's high and low byte).
    public func vmMAC(_ vm: Int) -> MACAddress { Self.mac(vm, role: 0x01) }
    /// VM I's port MAC on vmIp (host side): 02:00:00:HH:02:LL.
    public func portMAC(_ vm: Int) -> MACAddress { Self.mac(vm, role: 0x02) }
    private static func mac(_ vm: Int, role: UInt64) -> MACAddress {
        MACAddress(rawValue: 0x02_00_00_00_00_00 | UInt64((vm >> 8) & 0xFF) << 16 | role << 8 | UInt64(vm & 0xFF))
    }
    /// VM I's address on vnic0: 10.77.0.0 + 10 + I in the lab's network
    /// (10.77.0.(10+I)/24 up to 244 VMs).
    public func vmIP(_ vm: Int) -> IPv4Interface {
        IPv4Interface(address: IPv4Address(rawValue: 0x0A4D_0000 + UInt32(10 + vm)), prefixLength: prefixLength)
    }

    /// The interface alias written on uplink0 that records the lab's shape, so a
    /// later `up` can tell a partial lab from one built with other arguments (and
    /// `guest start` knows which VMs are guests): `vnic-lab vms=N queues=Q`, plus
    /// ` qemu=K guest-queues=G` when there are guests.
    public var shapeAlias: String {
        "vnic-lab vms=\(vms) queues=\(queues)" + (qemuGuests > 0 ? " qemu=\(qemuGuests) guest-queues=\(guestQueues)" : "")
    }

    /// Parses a `shapeAlias`; nil when it is not one. No `qemu=` means no guests.
    public static func shape(fromAlias alias: String) -> (vms: Int, queues: Int, qemu: Int, guestQueues: Int)? {
        let words = alias.split(separator: " ")
        func value(_ i: Int, _ key: String) -> Int? {
            guard i < words.count, words[i].hasPrefix(key + "=") else { return nil }
            return Int(words[i].dropFirst(key.count + 1))
        }
        guard words.count == 3 || words.count == 5, words[0] == "vnic-lab",
              let v = value(1, "vms"), let q = value(2, "queues") else { return nil }
        if words.count == 3 { return (v, q, 0, 1) }
        guard let k = value(3, "qemu"), let g = value(4, "guest-queues") else { return nil }
        return (v, q, k, g)
    }

    /// The veth pairs of the lab: host end first.
    public var vethPairs: [VethPair] {
        [VethPair(hostNamespace: hostNamespace, hostName: uplink, hostMAC: uplinkMAC,
                  peerNamespace: wireNamespace, peerName: wire, peerMAC: wireMAC, peerIP: wireIP)]
            + namespaceVMs.map { i in
                VethPair(hostNamespace: hostNamespace, hostName: port(i), hostMAC: portMAC(i),
                         peerNamespace: vmNamespace(i), peerName: vmInterface, peerMAC: vmMAC(i), peerIP: vmIP(i))
            }
    }
}

/// One veth pair of a lab: the end in the host namespace (no address) and its
/// peer in the wire or a VM namespace (with an address, like a real NIC's far side).
public struct VethPair: Hashable, Sendable {
    public var hostNamespace: String
    public var hostName: String
    public var hostMAC: MACAddress
    public var peerNamespace: String
    public var peerName: String
    public var peerMAC: MACAddress
    public var peerIP: IPv4Interface
}

// Preflight: the verdicts of `vnicadm check -l LINK`, an uplink's readiness for
// vnicd. Pure: the CLI gathers the facts from the kernel (netlink, ethtool,
// /proc) into `PreflightFacts`; this file decodes the netlink replies, parses
// the /proc text, and turns facts into items (ok / warn / FAIL) with the
// command that fixes each one that is not ok. Tests feed it fakes.
// Invariant: every item that is not ok has a fix; nothing here traps on what
// the kernel or /proc hand back (short or odd input decodes to "unknown").
import CVnicShared

/// How an item stands. `fail` items make `vnicadm check` exit 1.
public enum PreflightVerdict: String, Sendable, Equatable {
    case ok
    case warn
    case fail = "FAIL"
}

/// One line of the report.
public struct PreflightItem: Sendable, Equatable {
    public var item: String
    public var verdict: PreflightVerdict
    public var detail: String
    /// The command (or unit setting) that fixes it; nil when the item is ok.
    public var fix: String?

    public init(_ item: String, _ verdict: PreflightVerdict, _ detail: String, fix: String? = nil) {
        self.item = item
        self.verdict = verdict
        self.detail = detail
        self.fix = fix
    }
}

/// What was found, as the kernel said it. nil means "could not be read".
public struct PreflightFacts: Sendable {
    /// An uplink as it exists in the calling process's network namespace.
    public struct Link: Sendable {
        public var index: Int32
        /// `IFLA_INFO_KIND` ("veth", "bond", ...); nil for a plain NIC.
        public var kind: String?
        public var isUp: Bool
        /// IFF_LOWER_UP: for a tap, a guest has it open.
        public var carrier: Bool = true
        public var queues: Queues?
        /// Why the queue count could not be read (when `queues` is nil).
        public var queueError: String?
        /// `NETDEV_XDP_ACT_*` bits; nil when the kernel does not say (before 6.3).
        public var xdpFeatures: UInt64?
        public var attached: XDPAttachment?

        public init(index: Int32, kind: String? = nil, isUp: Bool = true, queues: Queues? = nil, queueError: String? = nil,
                    xdpFeatures: UInt64? = nil, attached: XDPAttachment? = nil) {
            self.index = index
            self.kind = kind
            self.isUp = isUp
            self.queues = queues
            self.queueError = queueError
            self.xdpFeatures = xdpFeatures
            self.attached = attached
        }
    }

    /// ETHTOOL_GCHANNELS, as vnicd reads it: combined channels count for both.
    public struct Queues: Sendable, Equatable {
        public var rx: UInt32
        public var tx: UInt32
        /// The most combined channels the driver allows (`ethtool -L` up to this).
        public var maxCombined: UInt32

        public init(rx: UInt32, tx: UInt32, maxCombined: UInt32 = 0) {
            self.rx = rx
            self.tx = tx
            self.maxCombined = maxCombined
        }
    }

    public var linkName: String
    /// nil: no such link in this network namespace.
    public var link: Link?
    /// RLIMIT_MEMLOCK soft limit in bytes; nil is unlimited.
    public var memlockLimit: UInt64?
    /// CapEff of the calling process.
    public var capabilities: CapabilitySet
    public var bpffsMounted: Bool
    public var btfPresent: Bool
    /// vnicd's `--frames` (UMEM frames per worker).
    public var framesPerWorker: UInt32

    public init(linkName: String, link: Link?, memlockLimit: UInt64?, capabilities: CapabilitySet,
                bpffsMounted: Bool, btfPresent: Bool, framesPerWorker: UInt32 = Preflight.defaultFrames) {
        self.linkName = linkName
        self.link = link
        self.memlockLimit = memlockLimit
        self.capabilities = capabilities
        self.bpffsMounted = bpffsMounted
        self.btfPresent = btfPresent
        self.framesPerWorker = framesPerWorker
    }
}

/// What `IFLA_XDP` says is attached to a link.
public struct XDPAttachment: Sendable, Equatable {
    /// Program ids by mode; empty when nothing is attached.
    public var programs: [(mode: Mode, id: UInt32)]

    public enum Mode: String, Sendable { case native, generic, offload }

    public init(programs: [(mode: Mode, id: UInt32)] = []) { self.programs = programs }

    public static func == (a: XDPAttachment, b: XDPAttachment) -> Bool {
        a.programs.map(\.mode) == b.programs.map(\.mode) && a.programs.map(\.id) == b.programs.map(\.id)
    }
}

/// A capability set (CapEff of /proc/PID/status), by capability number.
public struct CapabilitySet: Sendable, Equatable {
    public var bits: UInt64

    public init(bits: UInt64) { self.bits = bits }

    public static let netAdmin = 12, netRaw = 13, ipcLock = 14, sysAdmin = 21, perfmon = 38, bpf = 39

    public func has(_ capability: Int) -> Bool { capability < 64 && bits & (1 << UInt64(capability)) != 0 }

    /// The `CapEff:` line of a /proc/PID/status text; nil when it is missing or not hex.
    public static func effective(status text: String) -> CapabilitySet? {
        for line in text.split(separator: "\n") where line.hasPrefix("CapEff:") {
            let hex = line.dropFirst("CapEff:".count).filter { $0 != " " && $0 != "\t" }
            return UInt64(hex, radix: 16).map(CapabilitySet.init(bits:))
        }
        return nil
    }
}

public enum Preflight {
    /// vnicd's defaults, defined here once (the dataplane's UMEM and
    /// `Dataplane.defaultFrames` are these): `--frames` and the UMEM frame size.
    public static let defaultFrames: UInt32 = 16384
    public static let frameSize: UInt64 = 2048
    /// The most workers vnicd runs: VNIC_MAX_QUEUES of bpf/vnic.shared.h.
    public static let maxQueues: UInt32 = VNIC_MAX_QUEUES
    public static let bpffsPath = "/sys/fs/bpf"
    public static let btfPath = "/sys/kernel/btf/vmlinux"

    /// NETDEV_XDP_ACT_* (linux/netdev.h).
    public enum XDPAct {
        public static let basic: UInt64 = 1, redirect: UInt64 = 2, ndoXmit: UInt64 = 4, xskZeroCopy: UInt64 = 8,
                          hwOffload: UInt64 = 16, rxSG: UInt64 = 32, ndoXmitSG: UInt64 = 64
        static let names: [(UInt64, String)] = [(basic, "basic"), (redirect, "redirect"), (ndoXmit, "ndo-xmit"),
                                                (xskZeroCopy, "xsk-zerocopy"), (hwOffload, "hw-offload"),
                                                (rxSG, "rx-sg"), (ndoXmitSG, "ndo-xmit-sg")]
        /// "basic,redirect,rx-sg", or "none".
        public static func describe(_ bits: UInt64) -> String {
            let on = names.filter { bits & $0.0 != 0 }.map(\.1)
            return on.isEmpty ? "none" : on.joined(separator: ",")
        }
    }

    /// Whether the mount on top at `path` in a /proc/PID/mountinfo text is a bpf
    /// file system (fields: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS..] - FSTYPE SOURCE SUPER).
    public static func isBPFFS(mountinfo text: String, at path: String = bpffsPath) -> Bool {
        var top: Bool?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 7, let dash = fields.firstIndex(of: "-"), dash >= 6, dash + 1 < fields.count,
                  unescapeMountField(fields[4]) == path else { continue }
            top = fields[dash + 1] == "bpf"  // later lines are mounted over earlier ones
        }
        return top ?? false
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo octal.
    static func unescapeMountField(_ s: Substring) -> String {
        guard s.contains("\\") else { return String(s) }
        var out: [UInt8] = [], bytes = Array(s.utf8), i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count,
               let v = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The items, in the order they are printed. Items about the link are left
    /// out when it does not exist (the link item says so).
    public static func evaluate(_ f: PreflightFacts) -> [PreflightItem] {
        var items: [PreflightItem] = []
        let name = f.linkName
        var workers: UInt32?
        if let link = f.link, link.kind == "tun" {
            // A tap is a VM's port, never an uplink: its queues and carrier are its guest's.
            items.append(linkItem(name, link))
            items.append(tapQueueItem(name, link))
            items.append(carrierItem(name, link))
            items.append(xdpItem(name, link))
            items.append(attachedItem(name, link))
            items.append(afxdpItem(link))
        } else if let link = f.link {
            items.append(linkItem(name, link))
            let q = queueItem(name, link)
            items.append(q.item)
            workers = q.workers
            items.append(xdpItem(name, link))
            items.append(attachedItem(name, link))
            items.append(afxdpItem(link))
        } else {
            items.append(PreflightItem("link", .fail, "\(name): no such link in this network namespace",
                                       fix: "ip -br link (the links here); a link in namespace NS: nsenter --net=/run/netns/NS vnicadm check -l \(name)"))
        }
        items.append(memlockItem(f, workers: workers))
        items.append(capabilityItem(f.capabilities))
        items.append(bpffsItem(f))
        items.append(f.btfPresent
            ? PreflightItem("btf", .ok, "kernel BTF at \(btfPath)")
            : PreflightItem("btf", .warn, "no kernel BTF at \(btfPath) (vnicd does not need it; bpftool and CO-RE tools do)",
                            fix: "a kernel built with CONFIG_DEBUG_INFO_BTF=y"))
        return items
    }

    /// vnicd pins its classifier in the bpffs at /sys/fs/bpf, mounting one there
    /// when there is none; without CAP_SYS_ADMIN it cannot, and does not start
    /// (unless told --no-pin).
    static func bpffsItem(_ f: PreflightFacts) -> PreflightItem {
        if f.bpffsMounted { return PreflightItem("bpffs", .ok, "mounted at \(bpffsPath)") }
        if f.capabilities.has(CapabilitySet.sysAdmin) {
            return PreflightItem("bpffs", .ok, "no bpf file system at \(bpffsPath) yet: vnicd mounts one there to pin its classifier (CAP_SYS_ADMIN)")
        }
        return PreflightItem("bpffs", .fail,
                             "no bpf file system at \(bpffsPath), and without CAP_SYS_ADMIN vnicd cannot mount one: it will not start (unless --no-pin)",
                             fix: "mount -t bpf bpf \(bpffsPath) before vnicd starts (vnicd.service's ExecStartPre does)")
    }

    static func linkItem(_ name: String, _ link: PreflightFacts.Link) -> PreflightItem {
        let what = "\(name): \(link.kind ?? "device"), ifindex \(link.index)"
        return link.isUp
            ? PreflightItem("link", .ok, "\(what), up")
            : PreflightItem("link", .warn, "\(what), down (vnicd attaches, but nothing arrives)", fix: "ip link set dev \(name) up")
    }

    static func queueItem(_ name: String, _ link: PreflightFacts.Link) -> (item: PreflightItem, workers: UInt32?) {
        guard let q = link.queues else {
            return (PreflightItem("queues", .fail, "cannot read the queue count of \(name) (ETHTOOL_GCHANNELS: \(link.queueError ?? "unknown error")); vnicd reads it the same way",
                                  fix: "ethtool -l \(name) (shows what the driver says)"), nil)
        }
        let have = min(q.rx, q.tx)
        let counts = "\(q.rx) rx, \(q.tx) tx"
        if have > maxQueues {
            return (PreflightItem("queues", .warn, "\(counts): more than vnicd's \(maxQueues) workers",
                                  fix: "vnicd --queues \(maxQueues)"), maxQueues)
        }
        if have >= 2 {
            let uneven = q.rx != q.tx ? " (one per rx/tx pair)" : ""
            return (PreflightItem("queues", .ok, "\(counts): vnicd runs \(have) workers\(uneven)"), have)
        }
        let fix: String
        if link.kind == "veth" {
            fix = "recreate the veth pair with queues: ip link add \(name) numrxqueues 2 numtxqueues 2 type veth peer name PEER numrxqueues 2 numtxqueues 2"
        } else if q.maxCombined > 1 {
            fix = "ethtool -L \(name) combined \(q.maxCombined)"
        } else {
            fix = "ethtool -L \(name) combined N (the driver reports no more channels: a multi-queue NIC is needed)"
        }
        return (PreflightItem("queues", .warn, "\(counts): vnicd runs 1 worker (one core)", fix: fix), 1)
    }

    /// A tap has the queues its guest attached (QEMU opens one file per queue;
    /// taps have no ethtool channels, so `ethtool -L` does not apply).
    static func tapQueueItem(_ name: String, _ link: PreflightFacts.Link) -> PreflightItem {
        PreflightItem("queues", .ok, "tap: its queues are those its guest attached (QEMU: -netdev tap,queues=N,vhost=off with -device virtio-net-pci,mq=on and N vCPUs; libvirt: <driver queues='N'/>); vnicd serves a port with fewer queues than workers by handing frames between workers")
    }

    static func carrierItem(_ name: String, _ link: PreflightFacts.Link) -> PreflightItem {
        link.carrier
            ? PreflightItem("carrier", .ok, "a guest has \(name) open")
            : PreflightItem("carrier", .warn, "no carrier: no guest has \(name) open; vnicd shows its VNIC 'down: no carrier' and counts what it sends there as port-drop",
                            fix: "start the guest on it: qemu-system-x86_64 ... -netdev tap,id=n0,ifname=\(name),script=no,downscript=no,vhost=off -device virtio-net-pci,netdev=n0,mac=MAC (libvirt: <interface type='ethernet'><target dev='\(name)' managed='no'/><model type='virtio'/></interface>)")
    }

    static func xdpItem(_ name: String, _ link: PreflightFacts.Link) -> PreflightItem {
        guard let bits = link.xdpFeatures else {
            return PreflightItem("xdp", .warn, "the kernel does not report XDP features (netdev netlink, Linux 6.3+): native mode unknown",
                                 fix: "if vnicd cannot attach: vnicd --xdp-mode generic")
        }
        let features = "features \(XDPAct.describe(bits))"
        if bits & XDPAct.basic != 0 && bits & XDPAct.redirect != 0 {
            return PreflightItem("xdp", .ok, "native (driver) mode supported; \(features)")
        }
        let why = bits & XDPAct.basic == 0 ? "the driver has no native XDP" : "the driver's native XDP cannot redirect to AF_XDP"
        return PreflightItem("xdp", .warn, "generic (skb) mode only: \(why); \(features)", fix: "vnicd --xdp-mode generic")
    }

    static func attachedItem(_ name: String, _ link: PreflightFacts.Link) -> PreflightItem {
        guard let a = link.attached else {
            return PreflightItem("xdp-program", .warn, "cannot tell whether an XDP program is attached",
                                 fix: "ip -d link show dev \(name)")
        }
        guard let first = a.programs.first else { return PreflightItem("xdp-program", .ok, "none attached") }
        let list = a.programs.map { "id \($0.id) (\($0.mode.rawValue))" }.joined(separator: ", ")
        let off = switch first.mode {
        case .native: "xdpdrv"
        case .generic: "xdpgeneric"
        case .offload: "xdpoffload"
        }
        return PreflightItem("xdp-program", .fail, "already attached: program \(list); vnicd cannot attach its own",
                             fix: "ip link set dev \(name) \(off) off (when a bpf_link holds it, e.g. a running vnicd's: stop that process; bpftool net show dev \(name) names it)")
    }

    static func afxdpItem(_ link: PreflightFacts.Link) -> PreflightItem {
        guard let bits = link.xdpFeatures else {
            return PreflightItem("af-xdp", .ok, "copy mode (vnicd binds XDP_COPY); zero-copy support unknown")
        }
        return bits & XDPAct.xskZeroCopy != 0
            ? PreflightItem("af-xdp", .ok, "copy mode (vnicd binds XDP_COPY); the driver also offers zero-copy")
            : PreflightItem("af-xdp", .ok, "copy mode (vnicd binds XDP_COPY); the driver has no zero-copy")
    }

    static func memlockItem(_ f: PreflightFacts, workers: UInt32?) -> PreflightItem {
        let perWorker = UInt64(f.framesPerWorker) * frameSize
        let need = perWorker * UInt64(workers ?? 1)
        let needs = workers.map { "vnicd's UMEM needs \(bytes(need)) (\($0) worker\($0 == 1 ? "" : "s") x \(f.framesPerWorker) frames x 2 KiB)" }
            ?? "vnicd's UMEM needs \(bytes(perWorker)) per worker (\(f.framesPerWorker) frames x 2 KiB)"
        let limit = f.memlockLimit.map(bytes) ?? "unlimited"
        let bpfNote = "BPF maps are charged to the memory cgroup (5.11+), not to it"
        if f.capabilities.has(CapabilitySet.ipcLock) {
            return PreflightItem("memlock", .ok, "limit \(limit); CAP_IPC_LOCK: UMEM is not counted against it; \(needs)")
        }
        if f.memlockLimit.map({ $0 >= need }) ?? true {
            return PreflightItem("memlock", .ok, "limit \(limit): enough, \(needs); \(bpfNote)")
        }
        return PreflightItem("memlock", .fail, "limit \(limit) and no CAP_IPC_LOCK: \(needs); registering it will fail; \(bpfNote)",
                             fix: "ulimit -l unlimited (or LimitMEMLOCK=infinity in vnicd's unit, or grant CAP_IPC_LOCK)")
    }

    static func capabilityItem(_ caps: CapabilitySet) -> PreflightItem {
        typealias C = CapabilitySet
        var missing: [(name: String, why: String)] = []
        // CAP_SYS_ADMIN stands in for CAP_NET_ADMIN and CAP_BPF, as the kernel allows.
        let sysAdmin = caps.has(C.sysAdmin)
        if !caps.has(C.netAdmin) && !sysAdmin { missing.append(("net_admin", "XSKMAP, attaching XDP")) }
        if !caps.has(C.bpf) && !sysAdmin { missing.append(("bpf", "every bpf() call")) }
        if !caps.has(C.netRaw) { missing.append(("net_raw", "AF_XDP sockets")) }
        let ipcLock = caps.has(C.ipcLock)
        if missing.isEmpty {
            let held = [(C.netAdmin, "CAP_NET_ADMIN"), (C.bpf, "CAP_BPF")].map { caps.has($0.0) ? $0.1 : "CAP_SYS_ADMIN (for \($0.1))" }
            let list = (held + ["CAP_NET_RAW"]).joined(separator: ", ")
            return ipcLock
                ? PreflightItem("capabilities", .ok, "\(list), CAP_IPC_LOCK")
                : PreflightItem("capabilities", .warn, "\(list); no CAP_IPC_LOCK (the UMEM counts against memlock)",
                                fix: capabilityFix(["ipc_lock"]))
        }
        let names = missing.map { "CAP_\($0.name.uppercased()) (\($0.why))" }.joined(separator: ", ")
        return PreflightItem("capabilities", .fail, "this process lacks \(names)",
                             fix: capabilityFix(missing.map(\.name) + (ipcLock ? [] : ["ipc_lock"])))
    }

    static func capabilityFix(_ names: [String]) -> String {
        let plus = names.map { "+" + $0 }.joined(separator: ",")
        let unit = names.map { "CAP_" + $0.uppercased() }.joined(separator: " ")
        return "as root: setpriv --reuid=USER --regid=GROUP --init-groups --inh-caps=\(plus) --ambient-caps=\(plus) vnicd ... "
            + "(systemd unit: AmbientCapabilities=\(unit)); or run vnicd as root with every capability"
    }

    /// "8 MiB", "32 MiB", "1.5 GiB", "512 KiB", "100 B".
    public static func bytes(_ n: UInt64) -> String {
        let units: [(UInt64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (size, unit) in units where n >= size {
            if n % size == 0 { return "\(n / size) \(unit)" }
            let tenths = (n * 10 + size / 2) / size
            return "\(tenths / 10).\(tenths % 10) \(unit)"
        }
        return "\(n) B"
    }
}

// MARK: Netlink messages (the facts' wire format)

/// Netlink messages and attributes, in the host's byte order: building a
/// request, splitting a reply into messages, and decoding the two replies the
/// preflight reads (RTM_NEWLINK, the netdev family's DEV_GET).
public enum Netlink {
    public static let error: UInt16 = 2, done: UInt16 = 3
    public static let flagRequest: UInt16 = 1, flagAck: UInt16 = 4
    public static let headerSize = 16

    /// rtnetlink: RTM_NEWLINK / RTM_GETLINK, and the IFLA_* attributes read.
    public enum Route {
        public static let newLink: UInt16 = 16, getLink: UInt16 = 18
        static let ifName: UInt16 = 3, linkInfo: UInt16 = 18, infoKind: UInt16 = 1, xdp: UInt16 = 43
        static let xdpAttached: UInt16 = 2, xdpProgID: UInt16 = 4, xdpDrvProgID: UInt16 = 5,
                   xdpSkbProgID: UInt16 = 6, xdpHwProgID: UInt16 = 7
        static let iffUp: UInt32 = 1
        static let iffLowerUp: UInt32 = 0x10000
    }

    /// Generic netlink: the controller and the netdev family (linux/netdev.h).
    public enum Generic {
        public static let controller: UInt16 = 0x10
        public static let getFamily: UInt8 = 3
        static let familyID: UInt16 = 1, familyName: UInt16 = 2
        public static let netdevDevGet: UInt8 = 1
        static let devIfindex: UInt16 = 1, devXDPFeatures: UInt16 = 3
    }

    public struct Message: Sendable {
        public var type: UInt16
        public var flags: UInt16
        public var sequence: UInt32
        public var payload: [UInt8]

        /// For an NLMSG_ERROR: the errno (0 is an acknowledgement).
        public var errorCode: Int32? {
            guard type == Netlink.error, payload.count >= 4 else { return nil }
            return -Netlink.load(Int32.self, payload[0..<4])
        }
    }

    /// One message: header, `body` (a fixed header such as ifinfomsg), attributes.
    public static func message(type: UInt16, flags: UInt16, sequence: UInt32, body: [UInt8],
                               attributes: [(UInt16, [UInt8])] = []) -> [UInt8] {
        var payload = body
        for (t, v) in attributes { payload += attribute(t, v) }
        var m: [UInt8] = []
        m += bytes(UInt32(headerSize + payload.count)) + bytes(type) + bytes(flags) + bytes(sequence) + bytes(UInt32(0))
        return m + payload
    }

    /// One attribute: length, type, value, padded to 4 bytes.
    public static func attribute(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
        let a = bytes(UInt16(4 + value.count)) + bytes(type) + value
        return a + [UInt8](repeating: 0, count: (4 - a.count % 4) % 4)
    }

    /// A string attribute's value: the bytes and a terminating NUL.
    public static func string(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

    public static func bytes<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: v) { Array($0) }
    }

    static func load<T: FixedWidthInteger>(_: T.Type, _ s: ArraySlice<UInt8>) -> T {
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { dst in
            for (i, b) in s.prefix(MemoryLayout<T>.size).enumerated() { dst[i] = b }
        }
        return v
    }

    /// The messages of one datagram; a truncated tail is dropped.
    public static func messages(in datagram: [UInt8]) -> [Message] {
        var result: [Message] = [], at = 0
        while at + headerSize <= datagram.count {
            let length = Int(load(UInt32.self, datagram[at..<(at + 4)]))
            guard length >= headerSize, at + length <= datagram.count else { break }
            result.append(Message(type: load(UInt16.self, datagram[(at + 4)..<(at + 6)]),
                                  flags: load(UInt16.self, datagram[(at + 6)..<(at + 8)]),
                                  sequence: load(UInt32.self, datagram[(at + 8)..<(at + 12)]),
                                  payload: Array(datagram[(at + headerSize)..<(at + length)])))
            at += (length + 3) & ~3
        }
        return result
    }

    /// Attributes by type (the nested flag masked off; the first of a type wins).
    public static func attributes(_ s: ArraySlice<UInt8>) -> [UInt16: ArraySlice<UInt8>] {
        var result: [UInt16: ArraySlice<UInt8>] = [:], at = s.startIndex
        while at + 4 <= s.endIndex {
            let length = Int(load(UInt16.self, s[at..<(at + 2)]))
            let type = load(UInt16.self, s[(at + 2)..<(at + 4)]) & 0x3FFF
            guard length >= 4, at + length <= s.endIndex else { break }
            if result[type] == nil { result[type] = s[(at + 4)..<(at + length)] }
            at += (length + 3) & ~3
        }
        return result
    }

    static func string(_ s: ArraySlice<UInt8>) -> String {
        String(decoding: s.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// struct ifinfomsg for RTM_GETLINK of one index.
    public static func ifinfo(index: Int32) -> [UInt8] {
        [0, 0] + bytes(UInt16(0)) + bytes(index) + bytes(UInt32(0)) + bytes(UInt32(0))
    }

    /// struct genlmsghdr.
    public static func genl(command: UInt8, version: UInt8 = 1) -> [UInt8] { [command, version, 0, 0] }

    /// What an RTM_NEWLINK payload says: index, up, kind, the XDP programs attached.
    public static func decodeLink(_ payload: [UInt8]) -> (index: Int32, isUp: Bool, carrier: Bool, kind: String?, attached: XDPAttachment?)? {
        guard payload.count >= 16 else { return nil }
        let index = load(Int32.self, payload[4..<8]), flags = load(UInt32.self, payload[8..<12])
        let attrs = attributes(payload[16...])
        let kind = attrs[Route.linkInfo].flatMap { attributes($0)[Route.infoKind] }.map(string)
        var attached: XDPAttachment?
        if let xdp = attrs[Route.xdp].map(attributes) {
            var a = XDPAttachment()
            let mode = xdp[Route.xdpAttached].flatMap(\.first) ?? 0
            func id(_ t: UInt16) -> UInt32 { xdp[t].map { load(UInt32.self, $0) } ?? 0 }
            switch mode {
            case 0: break
            case 1: a.programs = [(.native, id(Route.xdpProgID))]
            case 2: a.programs = [(.generic, id(Route.xdpProgID))]
            case 3: a.programs = [(.offload, id(Route.xdpProgID))]
            default:  // MULTI: one id per mode
                for (t, m) in [(Route.xdpDrvProgID, XDPAttachment.Mode.native), (Route.xdpSkbProgID, .generic),
                               (Route.xdpHwProgID, .offload)] where id(t) != 0 {
                    a.programs.append((m, id(t)))
                }
            }
            attached = a
        }
        return (index, flags & Route.iffUp != 0, flags & Route.iffLowerUp != 0, kind, attached)
    }

    /// The family id in a CTRL_CMD_GETFAMILY reply (after its genlmsghdr).
    public static func decodeFamilyID(_ payload: [UInt8]) -> UInt16? {
        guard payload.count >= 4 else { return nil }
        return attributes(payload[4...])[Generic.familyID].map { load(UInt16.self, $0) }
    }

    /// NETDEV_A_DEV_XDP_FEATURES in a DEV_GET reply (after its genlmsghdr).
    public static func decodeXDPFeatures(_ payload: [UInt8]) -> UInt64? {
        guard payload.count >= 4 else { return nil }
        return attributes(payload[4...])[Generic.devXDPFeatures].map { load(UInt64.self, $0) }
    }
}

// vnicadm check -l LINK [--frames N] [-p -o FIELD[,..]] [--json]
// A preflight of an uplink before vnicd starts on it: the link, its queues,
// native XDP and AF_XDP zero-copy support, an XDP program already attached,
// locked memory, the process's capabilities, bpffs and BTF. Reads only: it
// attaches nothing and changes nothing. The verdicts are decided in
// VnicPlatform/Preflight.swift; this file gathers the facts from the kernel of the
// calling process's network namespace (rtnetlink, the netdev generic netlink
// family, ETHTOOL_GCHANNELS, /proc/self). vnicadm links no C shim or libbpf
// (Debian's libbpf 1.1 has no XDP feature query either), so the two netlink
// requests and the ethtool ioctl are made here, as vnicd's vnic_queue_counts
// makes the latter.
import ArgumentParser
import Foundation
import VnicCLI
import VnicConfig
import VnicCore
import VnicPlatform
#if canImport(Glibc)
import Glibc
#endif

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that an uplink and this process are ready for vnicd (a preflight; changes nothing).",
        discussion: """
            Items: link (exists in this network namespace, up), queues (ETHTOOL_GCHANNELS: one worker per \
            queue), xdp (native mode from the driver's XDP features, Linux 6.3+), xdp-program (one already \
            attached makes vnicd fail), af-xdp (copy or zero-copy), memlock (vnicd's UMEM: --frames x 2 KiB \
            per worker), capabilities (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW, CAP_IPC_LOCK of this process: run \
            check as vnicd will run), bpffs, btf. Each is ok, warn or FAIL; a warn or FAIL comes with the \
            command that fixes it. Fields: \(fields.joined(separator: ",")). Exit status: 0 when nothing \
            FAILs, 1 when an item FAILs, 2 for bad arguments. Run it in the uplink's namespace \
            (nsenter --net=/run/netns/NS; not ip netns exec, which hides /sys/fs/bpf).
            """)

    static let fields = ["item", "verdict", "detail", "fix"]
    static let defaults = ["item", "verdict", "detail"]

    @Option(name: [.customShort("l"), .customLong("link")], help: ArgumentHelp("The uplink vnicd will serve.", valueName: "link"))
    var link: String

    @Option(name: .customLong("frames"), help: ArgumentHelp("vnicd's --frames: UMEM frames (2 KiB) per worker.", valueName: "n"))
    var frames: UInt32 = Preflight.defaultFrames

    @OptionGroup var format: OutputOptions

    func validate() throws {
        if link.isEmpty || link.utf8.count >= Int(IFNAMSIZ) || link.contains("/") || link.contains(where: \.isWhitespace) {
            throw ValidationError("-l: '\(link)' is not a link name (1 to \(IFNAMSIZ - 1) bytes, no '/' or blanks)")
        }
        if frames < 4096 { throw ValidationError("--frames: '\(frames)' is below 4096 (vnicd's minimum)") }
        try format.check(known: Self.fields, defaults: Self.defaults, example: "item,verdict")
    }

    func run() throws {
        let name = link
        let items = Preflight.evaluate(KernelFacts.gather(link: name, frames: frames))
        let fields = try Output.fields(format.output, known: Self.fields, defaults: format.json ? Self.fields : Self.defaults)
        let rows: [[String: String?]] = items.map {
            ["item": $0.item, "verdict": $0.verdict.rawValue, "detail": $0.detail, "fix": $0.fix]
        }
        if format.json || format.parseable || format.output != nil {
            Output(parseable: format.parseable, json: format.json, fields: fields).print(rows: rows)
        } else {
            for line in Self.table(items) { print(line) }
        }
        let failed = items.filter { $0.verdict == .fail }.map(\.item)
        if !failed.isEmpty {
            throw VnicError("check \(name): \(failed.count) item\(failed.count == 1 ? "" : "s") FAILED (\(failed.joined(separator: ", ")))")
        }
    }

    /// ITEM VERDICT DETAIL columns, each warn or FAIL followed by its fix under DETAIL.
    static func table(_ items: [PreflightItem]) -> [String] {
        let lines = FieldOutput.table(fields: defaults, rows: items.map { [$0.item, $0.verdict.rawValue, $0.detail] })
        let indent = String(repeating: " ", count: lines[0].count - "DETAIL".count)
        var out = [lines[0]]
        for (item, line) in zip(items, lines.dropFirst()) {
            out.append(line)
            if let fix = item.fix { out.append(indent + "fix: " + fix) }
        }
        return out
    }
}

/// The facts of `PreflightFacts`, read from the kernel and /proc.
enum KernelFacts {
    static func gather(link name: String, frames: UInt32) -> PreflightFacts {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return PreflightFacts(
            linkName: name, link: link(name), memlockLimit: memlockLimit(),
            capabilities: CapabilitySet.effective(status: status) ?? CapabilitySet(bits: 0),
            bpffsMounted: Preflight.isBPFFS(mountinfo: mountinfo),
            btfPresent: access(Preflight.btfPath, F_OK) == 0, framesPerWorker: frames)
    }

    /// The link, or nil when this namespace has none of that name.
    static func link(_ name: String) -> PreflightFacts.Link? {
        let index = Int32(bitPattern: if_nametoindex(name))
        guard index != 0 else { return nil }
        var link = PreflightFacts.Link(index: index)
        var route = NetlinkSocket(protocol: 0)  // NETLINK_ROUTE
        if let m = route.ask(type: Netlink.Route.getLink, body: Netlink.ifinfo(index: index)).message,
           let l = Netlink.decodeLink(m.payload) {
            link.isUp = l.isUp
            link.carrier = l.carrier
            link.kind = l.kind
            link.attached = l.attached ?? XDPAttachment()  // no IFLA_XDP: nothing attached
        }
        link.xdpFeatures = xdpFeatures(index: index)
        switch queueCounts(name) {
        case .success(let q): link.queues = q
        case .failure(let e): link.queueError = String(cString: strerror(e.code))
        }
        return link
    }

    /// NETDEV_A_DEV_XDP_FEATURES from the netdev generic netlink family (what
    /// libbpf's bpf_xdp_query reports as feature_flags); nil before Linux 6.3.
    static func xdpFeatures(index: Int32) -> UInt64? {
        var genl = NetlinkSocket(protocol: 16)  // NETLINK_GENERIC
        guard let family = genl.ask(type: Netlink.Generic.controller, body: Netlink.genl(command: Netlink.Generic.getFamily),
                                    attributes: [(2, Netlink.string("netdev"))]).message.flatMap({ Netlink.decodeFamilyID($0.payload) }),
              let reply = genl.ask(type: family, body: Netlink.genl(command: Netlink.Generic.netdevDevGet),
                                   attributes: [(1, Netlink.bytes(UInt32(bitPattern: index)))]).message
        else { return nil }
        return Netlink.decodeXDPFeatures(reply.payload)
    }

    struct Errno: Error { var code: Int32 }

    /// rx and tx queues as vnicd counts them (vnic_queue_counts: ETHTOOL_GCHANNELS,
    /// combined channels count for both; a driver without channels has one).
    static func queueCounts(_ name: String) -> Result<PreflightFacts.Queues, Errno> {
        let siocethtool: UInt = 0x8946, ethtoolGChannels: UInt32 = 0x3c
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(Errno(code: errno)) }
        defer { close(fd) }
        // struct ethtool_channels: cmd, max_rx, max_tx, max_other, max_combined,
        // rx_count, tx_count, other_count, combined_count.
        var channels = [UInt32](repeating: 0, count: 9)
        channels[0] = ethtoolGChannels
        var ifreq = [UInt8](repeating: 0, count: 40)  // struct ifreq: ifr_name[16], then ifr_data
        for (i, b) in name.utf8.prefix(15).enumerated() { ifreq[i] = b }
        let rc = channels.withUnsafeMutableBytes { ch in
            ifreq.withUnsafeMutableBytes { req in
                req.storeBytes(of: ch.baseAddress, toByteOffset: 16, as: UnsafeMutableRawPointer?.self)
                return ioctl(fd, siocethtool, req.baseAddress!)
            }
        }
        if rc < 0 {
            let e = errno
            return e == EOPNOTSUPP ? .success(.init(rx: 1, tx: 1, maxCombined: 1)) : .failure(Errno(code: e))
        }
        return .success(.init(rx: max(channels[5] + channels[8], 1), tx: max(channels[6] + channels[8], 1),
                              maxCombined: channels[4]))
    }

    /// The RLIMIT_MEMLOCK soft limit in bytes; nil when unlimited.
    static func memlockLimit() -> UInt64? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return UInt64(limit.rlim_cur)
    }
}

/// A netlink socket for request and reply, one at a time (no dumps).
struct NetlinkSocket: ~Copyable {
    let fd: Int32
    var sequence: UInt32 = 0

    init(protocol proto: Int32) {
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), proto)
        guard fd >= 0 else { return }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Sends one request and returns the reply to it, or the errno it failed with.
    mutating func ask(type: UInt16, body: [UInt8], attributes: [(UInt16, [UInt8])] = []) -> (message: Netlink.Message?, errno: Int32) {
        guard fd >= 0 else { return (nil, EBADF) }
        sequence += 1
        let request = Netlink.message(type: type, flags: Netlink.flagRequest, sequence: sequence, body: body, attributes: attributes)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return (nil, errno) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<8 {  // skip replies to earlier requests, if any
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return (nil, n == 0 ? EIO : errno) }
            for m in Netlink.messages(in: Array(buffer[0..<n])) where m.sequence == sequence {
                if let code = m.errorCode { return (nil, code == 0 ? ENODATA : code) }
                return (m, 0)
            }
        }
        return (nil, EIO)
    }
}

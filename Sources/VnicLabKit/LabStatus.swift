// What `vnic-lab status` shows: per namespace of a lab, its interfaces with MAC,
// addresses, queues, state, XDP program and veth peer. As text (a table per
// namespace) or as JSON (this struct, encoded).
import Foundation

public struct LabStatus: Sendable, Codable {
    public var prefix: String
    /// The shape recorded by `up` (or inferred); nil when it cannot be told.
    public var vms: Int?
    public var queues: Int?
    /// How many of the VMs are QEMU guests (nil: none, or not recorded).
    public var qemu: Int?
    /// The QEMU guests; nil when the lab has none.
    public var guests: [Guest]?
    public var namespaces: [Namespace]

    public init(prefix: String, vms: Int?, queues: Int?, qemu: Int? = nil, guests: [Guest]? = nil, namespaces: [Namespace]) {
        self.prefix = prefix
        self.vms = vms
        self.queues = queues
        self.qemu = qemu
        self.guests = guests
        self.namespaces = namespaces
    }

    /// One QEMU guest: its QEMU process and its tap in P-host.
    public struct Guest: Sendable, Codable {
        public var vm: Int
        public var tap: String
        public var running: Bool
        public var pid: Int32?
        /// The tap's ifindex and state, when it exists (only while QEMU runs).
        public var tapIfindex: Int?
        public var tapState: String?
        public var mac: String?
        public var address: String?
        public var accelerator: String?
        public var queues: Int?
        /// The console's unix socket (`vnic-lab guest exec` talks to it).
        public var console: String?

        public init(vm: Int, tap: String, running: Bool) {
            self.vm = vm
            self.tap = tap
            self.running = running
        }
    }

    public struct Namespace: Sendable, Codable {
        public var name: String
        public var interfaces: [Interface]
    }

    public struct Interface: Sendable, Codable {
        public var name: String
        public var mac: String?
        public var addresses: [String]
        public var txQueues: Int
        public var rxQueues: Int
        /// The kernel's operstate, lowercased: `up`, `down`, `lowerlayerdown`, `unknown` (lo).
        public var state: String
        public var adminUp: Bool
        public var mtu: Int
        public var xdp: XDPAttachment?
        /// `NAME@NAMESPACE` of a veth's other end.
        public var peer: String?

        public init(_ link: LinkState, peer: String?) {
            name = link.name
            mac = link.address
            addresses = link.addresses.map(\.description)
            txQueues = link.txQueues
            rxQueues = link.rxQueues
            state = link.operstate.lowercased()
            adminUp = link.isAdminUp
            mtu = link.mtu
            xdp = link.xdp
            self.peer = peer
        }
    }

    /// Rows as aligned columns, indented by two spaces; the last column is not padded.
    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        var out = ""
        for row in rows {
            let cells = row.enumerated().map { c, cell in
                c == row.count - 1 ? cell : cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
            }
            out += "  " + cells.joined(separator: "  ") + "\n"
        }
        return out
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    public func text() -> String {
        let shape = [vms.map { "--vms \($0)" }, queues.map { "--queues \($0)" }, qemu.map { "--qemu \($0)" }].compactMap { $0 }
        var out = "lab \(prefix): \(namespaces.count) namespace\(namespaces.count == 1 ? "" : "s")"
            + (shape.isEmpty ? "" : " (\(shape.joined(separator: " ")))") + "\n"
        for ns in namespaces {
            out += ns.name + "\n"
            let rows = [["IFNAME", "MAC", "QUEUES", "STATE", "XDP", "PEER", "ADDRESSES"]] + ns.interfaces.map { i in
                [i.name, i.mac ?? "-", "\(i.txQueues)/\(i.rxQueues)",
                 i.adminUp ? i.state : "\(i.state),admin-down",
                 i.xdp?.description ?? "-", i.peer ?? "-",
                 i.addresses.isEmpty ? "-" : i.addresses.joined(separator: " ")]
            }
            out += Self.table(rows)
        }
        if let guests, !guests.isEmpty {
            out += "guests (QEMU)\n"
            let rows = [["VM", "STATE", "PID", "TAP", "TAP-STATE", "MAC", "ADDRESS", "ACCEL", "QUEUES"]] + guests.map { g in
                ["vm\(g.vm)", g.running ? "running" : "stopped", g.pid.map(String.init) ?? "-",
                 g.tap + (g.tapIfindex.map { " (ifindex \($0))" } ?? " (absent)"), g.tapState ?? "-",
                 g.mac ?? "-", g.address ?? "-", g.accelerator ?? "-", g.queues.map(String.init) ?? "-"]
            }
            out += Self.table(rows)
        }
        return out
    }
}

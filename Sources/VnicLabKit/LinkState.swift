// The kernel's view of a namespace, decoded from `ip -j -d addr show` (iproute2's
// JSON: one object per link with its details and its addresses). Only what the
// lab needs is decoded; unknown fields are ignored, so newer iproute2 still parses.
import Foundation
import VnicCore

/// One network interface as `ip -j -d addr show` reports it.
public struct LinkState: Hashable, Sendable, Codable {
    public var ifindex: Int
    public var name: String
    public var flags: [String]
    public var mtu: Int
    /// `UP`, `DOWN`, `LOWERLAYERDOWN`, `UNKNOWN` (loopback) ...
    public var operstate: String
    /// The link-layer address as text; nil for links without one.
    public var address: String?
    /// veth: the peer's ifindex (in the namespace `peerNetnsID` names, else in this one).
    public var peerIfindex: Int?
    /// veth: the peer's namespace as this namespace's id for it; nil when the peer is here.
    public var peerNetnsID: Int?
    public var alias: String?
    /// `veth`, `bridge`, ...; nil for loopback and other kindless links.
    public var kind: String?
    public var txQueues: Int
    public var rxQueues: Int
    public var xdp: XDPAttachment?
    public var addresses: [Address]

    public init(ifindex: Int, name: String, flags: [String] = [], mtu: Int = 1500, operstate: String = "DOWN",
                address: String? = nil, peerIfindex: Int? = nil, peerNetnsID: Int? = nil, alias: String? = nil,
                kind: String? = nil, txQueues: Int = 1, rxQueues: Int = 1, xdp: XDPAttachment? = nil,
                addresses: [Address] = []) {
        self.ifindex = ifindex
        self.name = name
        self.flags = flags
        self.mtu = mtu
        self.operstate = operstate
        self.address = address
        self.peerIfindex = peerIfindex
        self.peerNetnsID = peerNetnsID
        self.alias = alias
        self.kind = kind
        self.txQueues = txQueues
        self.rxQueues = rxQueues
        self.xdp = xdp
        self.addresses = addresses
    }

    public struct Address: Hashable, Sendable, Codable {
        /// `inet` or `inet6`.
        public var family: String
        public var local: String
        public var prefixLength: Int
        public init(family: String, local: String, prefixLength: Int) {
            self.family = family
            self.local = local
            self.prefixLength = prefixLength
        }
        public var description: String { "\(local)/\(prefixLength)" }
    }

    /// `flags` contains UP: the administrator brought it up (the carrier may still be down).
    public var isAdminUp: Bool { flags.contains("UP") }
    public var mac: MACAddress? { address.flatMap { MACAddress($0) } }
    public var ipv4: [IPv4Interface] {
        addresses.filter { $0.family == "inet" }.compactMap { IPv4Interface($0.description) }
    }
    public var ipv6: [Address] { addresses.filter { $0.family == "inet6" } }
}

/// An XDP program attached to a link.
public struct XDPAttachment: Hashable, Sendable, Codable {
    /// `native` (driver), `generic` (skb), `offload` (hardware) or `multi`.
    public var mode: String
    public var programs: [Program]

    public struct Program: Hashable, Sendable, Codable {
        public var id: Int
        public var name: String?
        public init(id: Int, name: String?) {
            self.id = id
            self.name = name
        }
    }

    public init(mode: String, programs: [Program]) {
        self.mode = mode
        self.programs = programs
    }
    public var description: String {
        ([mode] + programs.map { p in "id \(p.id)" + (p.name.map { " (\($0))" } ?? "") }).joined(separator: " ")
    }
}

extension LinkState {
    /// Decodes the output of `ip -j -d addr show` (an empty output means no links).
    public static func decode(ipJSON text: String) throws -> [LinkState] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        let raw = try JSONDecoder().decode([RawLink].self, from: Data(trimmed.utf8))
        return raw.map(\.state)
    }

    /// iproute2's JSON field names and shapes, as seen with iproute2 6.1.
    private struct RawLink: Decodable {
        var ifindex: Int
        var ifname: String
        var flags: [String]?
        var mtu: Int?
        var operstate: String?
        var address: String?
        var link_index: Int?
        var link_netnsid: Int?
        var ifalias: String?
        var linkinfo: LinkInfo?
        var num_tx_queues: Int?
        var num_rx_queues: Int?
        var xdp: RawXDP?
        var addr_info: [AddrInfo]?

        struct LinkInfo: Decodable { var info_kind: String? }
        struct AddrInfo: Decodable { var family: String?; var local: String?; var prefixlen: Int? }
        struct RawProgram: Decodable { var id: Int; var name: String? }
        struct RawXDP: Decodable {
            var mode: Int
            var prog: RawProgram?
            var attached: [Attached]?
            struct Attached: Decodable { var mode: Int?; var prog: RawProgram? }
        }

        var state: LinkState {
            LinkState(
                ifindex: ifindex, name: ifname, flags: flags ?? [], mtu: mtu ?? 0,
                operstate: operstate ?? "UNKNOWN", address: address,
                // A link without a peer reports its own ifindex, or nothing.
                peerIfindex: link_index == ifindex && link_netnsid == nil ? nil : link_index,
                peerNetnsID: link_netnsid, alias: ifalias, kind: linkinfo?.info_kind,
                txQueues: num_tx_queues ?? 1, rxQueues: num_rx_queues ?? 1,
                xdp: xdp.map { x in
                    let progs = (x.attached?.compactMap(\.prog) ?? []).isEmpty
                        ? (x.prog.map { [$0] } ?? []) : x.attached!.compactMap(\.prog)
                    return XDPAttachment(mode: Self.xdpMode(x.mode),
                                         programs: progs.map { .init(id: $0.id, name: $0.name) })
                },
                addresses: (addr_info ?? []).compactMap { a in
                    guard let f = a.family, let l = a.local, let p = a.prefixlen else { return nil }
                    return .init(family: f, local: l, prefixLength: p)
                })
        }

        /// XDP_ATTACHED_* from <linux/if_link.h>.
        static func xdpMode(_ mode: Int) -> String {
            switch mode {
            case 1: "native"
            case 2: "generic"
            case 3: "offload"
            case 4: "multi"
            default: "mode \(mode)"
            }
        }
    }
}

/// One namespace's links, plus what `up` needs beyond `ip link` (IPv6 sysctls,
/// checksum offload) when it was asked for.
public struct NamespaceState: Hashable, Sendable {
    public var name: String
    public var links: [LinkState]
    /// net.ipv6.conf.{all,default}.disable_ipv6 are both 1 (read for the host namespace only).
    public var ipv6Disabled: Bool?
    /// Links whose transmit checksum offload is off (read for wire and VM namespaces only).
    public var txChecksumOff: Set<String>

    public init(name: String, links: [LinkState], ipv6Disabled: Bool? = nil, txChecksumOff: Set<String> = []) {
        self.name = name
        self.links = links
        self.ipv6Disabled = ipv6Disabled
        self.txChecksumOff = txChecksumOff
    }

    public subscript(link name: String) -> LinkState? { links.first { $0.name == name } }
}

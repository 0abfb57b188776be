// InterfaceFacts: what the agent reads of its interface from the kernel, through
// `ip -j addr show` and `ip -j route show default` (iproute2's JSON).
import Foundation
import VnicCore

public struct InterfaceFacts: Equatable, Sendable {
    public var name: String
    public var index: Int32
    public var mac: MACAddress
    public var mtu: Int
    public var isUp: Bool
    public var isLoopback: Bool
    public var addresses: [IPv4Interface]
    /// Its global IPv6 addresses that someone configured (not SLAAC's or temporary ones: the kernel keeps those).
    public var addresses6: [IPv6Interface] = []

    /// The interface's first IPv4 address, or 0.0.0.0.
    public var sourceAddress: IPv4Address { addresses.first?.address ?? IPv4Address(rawValue: 0) }

    /// Parses `ip -j addr show` output: one entry per interface.
    public static func parse(addrJSON data: Data) throws(VnicError) -> [InterfaceFacts] {
        guard let list = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
            throw VnicError("ip -j addr show: output is not a JSON list")
        }
        return list.compactMap { o in
            guard let name = o["ifname"] as? String, let index = o["ifindex"] as? Int else { return nil }
            let flags = o["flags"] as? [String] ?? []
            let infos = o["addr_info"] as? [[String: Any]] ?? []
            let addrs: [IPv4Interface] = infos.compactMap { a in
                guard a["family"] as? String == "inet", let local = a["local"] as? String,
                      let ip = IPv4Address(local), let len = a["prefixlen"] as? Int, (0...32).contains(len) else { return nil }
                return IPv4Interface(address: ip, prefixLength: UInt8(len))
            }
            let addrs6: [IPv6Interface] = infos.compactMap { a in
                guard a["family"] as? String == "inet6", a["scope"] as? String == "global",
                      a["dynamic"] as? Bool != true, a["temporary"] as? Bool != true,
                      let local = a["local"] as? String, let ip = IPv6Address(local),
                      let len = a["prefixlen"] as? Int, (0...128).contains(len) else { return nil }
                return IPv6Interface(address: ip, prefixLength: UInt8(len))
            }
            return InterfaceFacts(name: name, index: Int32(index),
                                  mac: (o["address"] as? String).flatMap { MACAddress($0) } ?? MACAddress(rawValue: 0),
                                  mtu: o["mtu"] as? Int ?? 0, isUp: flags.contains("UP"),
                                  isLoopback: flags.contains("LOOPBACK") || o["link_type"] as? String == "loopback",
                                  addresses: addrs, addresses6: addrs6)
        }
    }

    /// The gateway of the first default route in `ip -j route show default` output.
    public static func parse(defaultRouteJSON data: Data) -> IPv4Address? {
        guard let list = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else { return nil }
        return list.lazy.compactMap { ($0["gateway"] as? String).flatMap { IPv4Address($0) } }.first
    }

    /// The interface the agent uses: `name` when given, else the only non-loopback
    /// interface that is up (a usage error when there are none or several).
    public static func choose(_ name: String?, among all: [InterfaceFacts]) throws(VnicError) -> InterfaceFacts {
        if let name {
            guard let f = all.first(where: { $0.name == name }) else { throw .usage("-i: '\(name)': no such interface") }
            return f
        }
        let up = all.filter { $0.isUp && !$0.isLoopback }
        guard up.count == 1 else {
            throw .usage(up.isEmpty ? "no non-loopback interface is up; name one with -i"
                         : "several interfaces are up (\(up.map(\.name).joined(separator: ", "))); name one with -i")
        }
        return up[0]
    }

    /// Reads the interface (`name`, or the only one that is up) from the kernel.
    public static func read(_ name: String?) throws(VnicError) -> InterfaceFacts {
        let argv = name.map { ["ip", "-j", "addr", "show", "dev", $0] } ?? ["ip", "-j", "addr", "show"]
        let r = try Subprocess.run(argv)
        guard r.status == 0 else {
            if let name, r.stderr.contains("does not exist") { throw .usage("-i: '\(name)': no such interface") }
            throw VnicError("\(argv.joined(separator: " ")): \(r.stderr.oneLine)")
        }
        return try choose(name, among: parse(addrJSON: Data(r.stdout.utf8)))
    }

    /// The interface's state for the apply mapping (addresses and default gateway).
    public func state() throws(VnicError) -> InterfaceState {
        let r = try Subprocess.run(["ip", "-j", "route", "show", "default", "dev", name])
        let gw = r.status == 0 ? InterfaceFacts.parse(defaultRouteJSON: Data(r.stdout.utf8)) : nil
        return InterfaceState(name: name, addresses: addresses, defaultGateway: gw, addresses6: addresses6, mac: mac)
    }
}

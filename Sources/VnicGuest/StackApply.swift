// StackApply: the one place that turns a parameter and its value into the
// commands that apply it to this guest's stack (pure: argv lists, tested), and
// the runner that executes them.
import VnicCore

/// What the mapping needs to know of the interface before a change.
public struct InterfaceState: Equatable, Sendable {
    public var name: String
    public var addresses: [IPv4Interface]
    /// The gateway of the default route through this interface, if there is one.
    public var defaultGateway: IPv4Address?
    /// Its configured global IPv6 addresses (InterfaceFacts.addresses6).
    public var addresses6: [IPv6Interface]
    /// Its MAC: the interface identifier of an address in a SLAAC prefix.
    public var mac: MACAddress?

    public init(name: String, addresses: [IPv4Interface], defaultGateway: IPv4Address?,
                addresses6: [IPv6Interface] = [], mac: MACAddress? = nil) {
        self.name = name
        self.addresses = addresses
        self.defaultGateway = defaultGateway
        self.addresses6 = addresses6
        self.mac = mac
    }
}

/// One command to run. A best-effort step that fails is reported as a warning;
/// any other failure stops the change.
public struct ApplyStep: Equatable, Sendable, CustomStringConvertible {
    public var argv: [String]
    public var bestEffort: Bool
    public init(_ argv: [String], bestEffort: Bool = false) {
        self.argv = argv
        self.bestEffort = bestEffort
    }
    public var description: String { argv.joined(separator: " ") }
}

public enum StackApply {
    /// Kernel defaults for the minimum and default of tcp_rmem / tcp_wmem, and the
    /// maxima an empty tcp-buffer value restores.
    public static let tcpRmemDefault = "4096 131072 6291456"
    public static let tcpWmemDefault = "4096 16384 4194304"

    /// The commands that apply `value` of `parameter` to `state`'s interface, in
    /// order; empty when there is nothing to apply (tcp-ports, transport).
    /// A usage error when the value is not one the parameter takes.
    public static func steps(_ parameter: GuestParameter, _ value: String,
                             on state: InterfaceState) throws(VnicError) -> [ApplyStep] {
        let dev = state.name
        switch parameter {
        case .ip:
            // The whole list of both families: what is not in it goes.
            var wanted: [IPv4Interface] = [], wanted6: [IPv6Interface] = []
            for item in value.split(separator: ",") {
                if item.contains(":") {
                    guard item.contains("/"), let a = IPv6Interface(item) else {
                        throw .usage("ip: '\(item)' is not an address with a prefix length (e.g. fd00:77::21/64)")
                    }
                    // A SLAAC prefix: the address the MAC gives there, as the database's anti-spoof expects.
                    let own = a.isSLAACPrefix && state.mac != nil
                        ? IPv6Interface(address: a.address(for: state.mac!), prefixLength: 64) : a
                    if !wanted6.contains(own) { wanted6.append(own) }
                    continue
                }
                guard item.contains("/"), let a = IPv4Interface(item) else {
                    throw .usage("ip: '\(item)' is not an address with a prefix length (e.g. 10.77.0.21/24)")
                }
                if !wanted.contains(a) { wanted.append(a) }
            }
            var steps = wanted.map { ApplyStep(["ip", "addr", "replace", $0.description, "dev", dev]) }
            steps += wanted6.map { ApplyStep(["ip", "-6", "addr", "replace", $0.description, "dev", dev]) }
            steps += state.addresses6.filter { !wanted6.contains($0) }.map { ApplyStep(["ip", "-6", "addr", "del", $0.description, "dev", dev]) }
            let old = state.addresses.filter { !wanted.contains($0) }
            if !old.isEmpty {
                // Deleting a primary address would take its secondaries (the new
                // addresses in the same subnet) with it unless they are promoted.
                steps.append(ApplyStep(sysctl("net.ipv4.conf.\(dev).promote_secondaries", "1"), bestEffort: true))
                steps += old.map { ApplyStep(["ip", "addr", "del", $0.description, "dev", dev]) }
                if let gw = state.defaultGateway {
                    steps.append(ApplyStep(["ip", "route", "replace", "default", "via", gw.description, "dev", dev],
                                           bestEffort: true))
                }
            }
            return steps
        case .mac:
            guard let m = MACAddress(value), !m.isMulticast, !m.isZero else {
                throw .usage("mac: '\(value)' is not a unicast MAC address")
            }
            return [ApplyStep(["ip", "link", "set", "dev", dev, "address", m.description])]
        case .gateway:
            // An IPv4 and/or an IPv6 gateway; a family not in the value is left as it is, an empty value removes both.
            if value.isEmpty {
                return [ApplyStep(["ip", "route", "del", "default"], bestEffort: true),
                        ApplyStep(["ip", "-6", "route", "del", "default", "dev", dev], bestEffort: true)]
            }
            var steps: [ApplyStep] = []
            for item in value.split(separator: ",") {
                if let gw = IPv4Address(item) {
                    steps.append(ApplyStep(["ip", "route", "replace", "default", "via", gw.description, "dev", dev]))
                } else if let gw = IPv6Address(item) {
                    steps.append(ApplyStep(["ip", "-6", "route", "replace", "default", "via", gw.description, "dev", dev]))
                } else {
                    throw .usage("gateway: '\(item)' is not an IPv4 or IPv6 address")
                }
            }
            return steps
        case .mtu:
            guard let n = UInt32(value), String(n) == value, (68...65535).contains(n) else {
                throw .usage("mtu: '\(value)' is not a number 68-65535")
            }
            return [ApplyStep(["ip", "link", "set", "dev", dev, "mtu", String(n)])]
        case .routing:
            let bit: String
            switch value {
            case "on": bit = "1"
            case "off": bit = "0"
            default: throw .usage("routing: '\(value)' is not off or on")
            }
            return [ApplyStep(sysctl("net.ipv4.conf.\(dev).forwarding", bit))]
        case .tcpBuffer:
            if value.isEmpty {
                return [ApplyStep(sysctl("net.ipv4.tcp_rmem", tcpRmemDefault)),
                        ApplyStep(sysctl("net.ipv4.tcp_wmem", tcpWmemDefault))]
            }
            guard let n = ByteSize.parse(value), (4096...UInt64(Int32.max)).contains(n) else {
                throw .usage("tcp-buffer: '\(value)' is not a size 4K-2G (e.g. 256K, 4M)")
            }
            // The maximum is the value; the default stays the kernel's unless above it.
            return [ApplyStep(sysctl("net.ipv4.tcp_rmem", "4096 \(min(131072, n)) \(n)")),
                    ApplyStep(sysctl("net.ipv4.tcp_wmem", "4096 \(min(16384, n)) \(n)"))]
        case .tcpPorts, .transport:
            return []
        }
    }

    /// `sysctl -w KEY=VALUE`; the key with `/` separators when the interface name
    /// has a dot (sysctl(8) reads dots as separators).
    static func sysctl(_ key: String, _ value: String) -> [String] {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        let k = parts.count > 5 && key.hasPrefix("net.ipv4.conf.")
            ? "net/ipv4/conf/" + parts[3..<(parts.count - 1)].joined(separator: ".") + "/" + parts[parts.count - 1]
            : key
        return ["sysctl", "-q", "-w", "\(k)=\(value)"]
    }

    /// Runs `steps` in order; stops at the first failure of a required step.
    /// Returns the warnings of best-effort steps that failed.
    public static func run(_ steps: [ApplyStep]) throws(VnicError) -> [String] {
        var warnings: [String] = []
        for step in steps {
            let r = try Subprocess.run(step.argv)
            if r.status != 0 {
                let why = r.stderr.oneLine.isEmpty ? "exit status \(r.status)" : r.stderr.oneLine
                if step.bestEffort { warnings.append("\(step): \(why)"); continue }
                throw VnicError("\(step): \(why)")
            }
        }
        return warnings
    }
}

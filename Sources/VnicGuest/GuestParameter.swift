// GuestParameter: the parameters a guest may ask for or be told about, the
// PARAM=VALUE argument's checks, and the completion of a request's value
// (a bare `ip` address gets the prefix length of the interface's first address).
import VnicCore

/// The database's parameter names that travel in the guest protocol.
public enum GuestParameter: String, CaseIterable, Sendable {
    case ip, mac, gateway, mtu
    case tcpPorts = "tcp-ports"
    case routing
    case tcpBuffer = "tcp-buffer"
    case transport

    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// A checked `PARAM=VALUE` argument.
public struct GuestAssignment: Equatable, Sendable {
    public var parameter: GuestParameter
    public var value: String

    public init(parameter: GuestParameter, value: String) {
        self.parameter = parameter
        self.value = value
    }

    /// Parses `PARAM=VALUE`; a usage error (exit 2) naming what is wrong otherwise.
    public init(parsing text: String) throws(VnicError) {
        guard let eq = text.firstIndex(of: "=") else {
            throw .usage("'\(text)': expected PARAM=VALUE (PARAM one of \(GuestParameter.names))")
        }
        let name = String(text[..<eq]), value = String(text[text.index(after: eq)...])
        guard let p = GuestParameter(rawValue: name) else {
            throw .usage("'\(name)' is not a parameter (one of \(GuestParameter.names))")
        }
        guard !value.isEmpty else { throw .usage("\(name): the value is empty") }
        guard value.utf8.count <= GuestProtocol.maxValueLength else {
            throw .usage("\(name): the value is \(value.utf8.count) bytes; at most \(GuestProtocol.maxValueLength)")
        }
        self.init(parameter: p, value: value)
    }

    /// The value to send: for `ip`, every bare address of the comma list gets the
    /// prefix length of `current`'s first address of its family (else /32 for
    /// IPv4, /64 for IPv6); others unchanged.
    public func completed(current: [IPv4Interface], current6: [IPv6Interface] = []) -> GuestAssignment {
        guard parameter == .ip else { return self }
        let length = current.first?.prefixLength ?? 32, length6 = current6.first?.prefixLength ?? 64
        let items = value.split(separator: ",", omittingEmptySubsequences: false).map { item in
            if item.contains("/") { return String(item) }
            if IPv4Address(item) != nil { return "\(item)/\(length)" }
            if IPv6Address(item) != nil { return "\(item)/\(length6)" }
            return String(item)
        }
        return GuestAssignment(parameter: .ip, value: items.joined(separator: ","))
    }
}

/// `262144`, `256K`, `4M`, `1G` (binary units), as the database's tcp-buffer takes them.
public func parseByteSize(_ text: String) -> UInt64? {
    var body = Substring(text), unit: UInt64 = 1
    switch body.last {
    case "K", "k": unit = 1 << 10; body = body.dropLast()
    case "M", "m": unit = 1 << 20; body = body.dropLast()
    case "G", "g": unit = 1 << 30; body = body.dropLast()
    default: break
    }
    guard (1...19).contains(body.count), body.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
          !(body.count > 1 && body.first == "0"), let n = UInt64(body) else { return nil }
    let (v, overflow) = n.multipliedReportingOverflow(by: unit)
    return overflow ? nil : v
}

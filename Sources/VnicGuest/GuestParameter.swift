// GuestParameter: the parameters a guest may ask for or be told about, the
// PARAM=VALUE argument's checks, and the completion of a request's value
// (a bare `ip` address gets the prefix length of the interface's first address).
import VnicCore

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

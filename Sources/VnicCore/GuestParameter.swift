// Values shared by the database, the daemon and the guest agent that are not
// one field's type: the parameters a VM may hold, and byte sizes with units.

/// The parameters a VM may hold: the ones it may ask to change (the database's
/// policy parameters: VnicConfig's table takes its VM policies from this list)
/// and be told about, by their names in the database and the guest protocol.
public enum GuestParameter: String, CaseIterable, Sendable {
    case ip, mac, gateway, mtu
    case tcpPorts = "tcp-ports"
    case routing
    case tcpBuffer = "tcp-buffer"
    case transport

    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Byte sizes: `262144`, `256K`, `4M`, `1G` (K = 1024 bytes), whole numbers
/// only; what tcp-buffer, the database's map size and --buffer-memory take.
public enum ByteSize {
    public static let units: [(Character, UInt64)] = [("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)]

    public static func parse(_ text: String) -> UInt64? {
        var body = Substring(text)
        var unit: UInt64 = 1
        if let last = body.last, let u = units.first(where: { $0.0 == Character(last.uppercased()) }) {
            unit = u.1
            body = body.dropLast()
        }
        guard let n = parseUnsigned(body) else { return nil }
        let (v, overflow) = n.multipliedReportingOverflow(by: unit)
        return overflow ? nil : v
    }

    /// Decimal digits only, no sign, no leading zero, within UInt64.
    public static func parseUnsigned(_ s: Substring) -> UInt64? {
        guard (1...20).contains(s.count), s.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              !(s.count > 1 && s.first == "0") else { return nil }
        return UInt64(s)
    }
}

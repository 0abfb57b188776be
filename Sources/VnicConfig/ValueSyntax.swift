// ValueSyntax: the text forms of numbers with units and of lists that the
// parameter table (VNICParameter.swift) and the policy value sets share.
// Parsers return nil on bad input; the table turns that into a message naming
// the token. Every printed form parses back to the same value.
import VnicCore

public enum ValueSyntax {
    // MARK: bandwidth (bits per second, decimal units like dladm's maxbw)

    static let bandwidthUnits: [(Character, UInt64)] = [("K", 1_000), ("M", 1_000_000), ("G", 1_000_000_000),
                                                        ("T", 1_000_000_000_000)]

    /// `100M`, `1.5G`, `800K`; a bare number is megabits (dladm's rule). Up to
    /// three decimals; the result is whole bits per second.
    static func parseBandwidth(_ text: String) -> UInt64? {
        var body = Substring(text)
        var unit: UInt64 = 1_000_000
        if let last = body.last, let u = bandwidthUnits.first(where: { $0.0 == Character(last.uppercased()) }) {
            unit = u.1
            body = body.dropLast()
        }
        return parseDecimal(body, unit: unit)
    }

    /// The shortest exact form with the largest unit: `1.5G`, `100M`, `64K`.
    static func formatBandwidth(_ bits: UInt64) -> String {
        for (symbol, unit) in bandwidthUnits.reversed() where bits >= unit && (bits % unit) * 1000 % unit == 0 {
            return formatDecimal(bits, unit: unit) + String(symbol)
        }
        // Below 1K (not a valid maxbw, but printable): a bare number would read as megabits.
        return String(bits) + "bps"
    }

    // MARK: byte sizes (binary units)

    /// `262144`, `256K`, `4M`, `1G` (K = 1024 bytes). Whole numbers only (VnicCore's `ByteSize`).
    public static func parseSize(_ text: String) -> UInt64? { ByteSize.parse(text) }

    /// The largest binary unit that divides exactly: `256K`, `4M`, `1000`.
    static func formatSize(_ bytes: UInt64) -> String {
        for (symbol, unit) in ByteSize.units.reversed() where bytes >= unit && bytes % unit == 0 {
            return String(bytes / unit) + String(symbol)
        }
        return String(bytes)
    }

    // MARK: numbers

    /// Decimal digits only: no sign, no blanks, no leading zero (except "0").
    static func parseUnsigned(_ s: Substring) -> UInt64? { ByteSize.parseUnsigned(s) }

    static func parseDecimal(_ s: Substring, unit: UInt64) -> UInt64? {
        let parts = s.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parseUnsigned(parts[0]) else { return nil }
        var milli: UInt64 = 0
        if parts.count == 2 {
            let f = parts[1]
            guard (1...3).contains(f.count), f.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
            milli = UInt64(f + String(repeating: "0", count: 3 - f.count))!
        }
        let (w, o1) = whole.multipliedReportingOverflow(by: unit)
        guard !o1, (milli * unit) % 1000 == 0 else { return nil }
        let (v, o2) = w.addingReportingOverflow(milli * unit / 1000)
        return o2 ? nil : v
    }

    static func formatDecimal(_ v: UInt64, unit: UInt64) -> String {
        let whole = v / unit, rest = v % unit
        guard rest != 0 else { return String(whole) }
        var frac = String(rest * 1000 / unit)
        frac = String(repeating: "0", count: 3 - frac.count) + frac
        while frac.last == "0" { frac.removeLast() }
        return "\(whole).\(frac)"
    }

    // MARK: lists

    /// Comma-separated items; the empty text is the empty list.
    static func items(_ text: String) -> [Substring] {
        text.isEmpty ? [] : text.split(separator: ",", omittingEmptySubsequences: false)
    }

    /// CPU numbers and ranges (`0,2-3`) printed compactly, sorted.
    static func formatCPUs(_ cpus: [Int]) -> String {
        var out: [String] = []
        var i = 0
        let s = cpus.sorted()
        while i < s.count {
            var j = i
            while j + 1 < s.count && s[j + 1] == s[j] + 1 { j += 1 }
            out.append(j == i ? String(s[i]) : j == i + 1 ? "\(s[i]),\(s[j])" : "\(s[i])-\(s[j])")
            i = j + 1
        }
        return out.joined(separator: ",")
    }
}

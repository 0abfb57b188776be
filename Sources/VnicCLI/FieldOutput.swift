// FieldOutput: how the CLI prints rows of named fields, dladm-style, in its
// three forms: human columns, `-p -o` parseable lines, and JSON. Every show-*
// subcommand prints through here so the forms stay alike.

public enum FieldOutput {
    /// Human output: a header of the field names in capitals, columns padded to
    /// the widest value, "--" for an empty value; no trailing spaces.
    public static func table(fields: [String], rows: [[String?]]) -> [String] {
        let cells = [fields.map { $0.uppercased() }] + rows.map { row in row.map { v in (v?.isEmpty ?? true) ? "--" : v! } }
        var widths = [Int](repeating: 0, count: fields.count)
        for row in cells {
            for (i, c) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) }
        }
        return cells.map { row in
            var line = ""
            for (i, c) in row.enumerated() {
                if i == row.count - 1 {
                    line += c
                } else {
                    line += c + String(repeating: " ", count: widths[i] - c.count + 2)
                }
            }
            return line
        }
    }

    /// Parseable output (`-p -o`): one line per row, fields joined by ':'; an
    /// empty value is empty. With more than one field, ':' and '\' inside a
    /// value are escaped with '\' so the line splits unambiguously (dladm's rule).
    public static func parseable(rows: [[String?]]) -> [String] {
        rows.map { row in
            let escape = row.count > 1
            return row.map { v in escape ? escapeParseable(v ?? "") : (v ?? "") }.joined(separator: ":")
        }
    }

    public static func escapeParseable(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            if c == ":" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out
    }
}

/// A JSON value for CLI output; objects keep their keys in the order given.
public indirect enum JSONValue: Equatable, Sendable {
    case string(String)
    case number(UInt64)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])
    case null

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case let (.string(x), .string(y)): x == y
        case let (.number(x), .number(y)): x == y
        case let (.bool(x), .bool(y)): x == y
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.null, .null): true
        default: false
        }
    }

    /// Compact JSON text.
    public var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .number(let n): out += String(n)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                v.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(k, to: &out)
                out += ":"
                v.write(to: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}

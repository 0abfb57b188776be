// VnicCore: platform-free value types shared by the database, the CLI, the daemon
// and the lab. No Foundation, no kernel: parsing and formatting only.
// Invariant: every parser returns nil (or throws a ParseError naming the token) on
// bad input; nothing here traps on user data.

/// A user-facing error: one line naming what was wrong. `exitCode` follows the
/// contract: 2 for a usage error (bad argument), 1 for a runtime failure.
public struct VnicError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var exitCode: Int32
    public init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }
    public static func usage(_ message: String) -> VnicError { VnicError(message, exitCode: 2) }
    public var description: String { message }
}

extension StringProtocol {
    /// The text on one line, for a one-line error message: its non-empty lines,
    /// trimmed of leading and trailing blanks, joined with "; ".
    public var oneLine: String {
        split(whereSeparator: \.isNewline)
            .map { line in
                let start = line.firstIndex(where: { $0 != " " && $0 != "\t" }) ?? line.endIndex
                let end = line.lastIndex(where: { $0 != " " && $0 != "\t" }).map { line.index(after: $0) } ?? start
                return line[start..<end]
            }
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }
}

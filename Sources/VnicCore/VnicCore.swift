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

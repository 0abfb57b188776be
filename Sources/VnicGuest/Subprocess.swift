// Subprocess: runs a command (ip, sysctl) and collects its output.
import Foundation
import VnicCore

public struct SubprocessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public enum Subprocess {
    static let searchPath = ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"]

    /// The full path of `name`, searched in $PATH and the usual sbin folders.
    public static func find(_ name: String) -> String? {
        if name.contains("/") { return name }
        let env = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").map(String.init) ?? []
        for dir in env + searchPath where FileManager.default.isExecutableFile(atPath: dir + "/" + name) {
            return dir + "/" + name
        }
        return nil
    }

    public static func run(_ argv: [String]) throws(VnicError) -> SubprocessResult {
        guard let exe = find(argv[0]) else { throw VnicError("\(argv[0]): not found (needs iproute2 / procps)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = Array(argv.dropFirst())
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw VnicError("\(argv[0]): \(error.localizedDescription)") }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return SubprocessResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                                stderr: String(decoding: e, as: UTF8.self))
    }
}

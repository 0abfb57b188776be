// Reading and writing the RuntimeStatus file (the type is in VnicCore).
import Foundation
import Glibc
import VnicCore

extension RuntimeStatus {
    public static func path(forDatabase db: String) -> String { db + "-status.json" }

    /// Reads the status of a live daemon: nil when there is no file, it does not
    /// parse, its process is gone, or it is older than `maxAge` seconds.
    public static func readLive(database db: String, maxAge: Double = 3) -> RuntimeStatus? {
        guard let data = FileManager.default.contents(atPath: path(forDatabase: db)),
              let s = try? JSONDecoder().decode(RuntimeStatus.self, from: data) else { return nil }
        guard kill(s.pid, 0) == 0 || errno == EPERM else { return nil }
        guard Date().timeIntervalSince1970 - s.updated <= maxAge else { return nil }
        return s
    }

    /// The status as JSON (what the status file and a fleet host's status key hold).
    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return Array(try enc.encode(self))
    }

    /// A status from its JSON.
    public static func decode(_ bytes: [UInt8]) throws -> RuntimeStatus {
        try JSONDecoder().decode(RuntimeStatus.self, from: Data(bytes))
    }

    /// Atomically replaces the status file.
    public func write(database db: String) throws {
        let data = try encoded()
        let target = RuntimeStatus.path(forDatabase: db)
        let tmp = target + ".tmp"
        // Plain open/write/close: a status is replaced a few times a second and
        // means nothing after a reboot, so no fsync (Foundation's Data.write
        // flushes, which stalled vnicd's control thread for ~0.4 ms each time).
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw VnicError("write \(tmp): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let writeErrno = errno
        close(fd)
        guard written == data.count else {
            unlink(tmp)
            throw VnicError("write \(tmp): \(written < 0 ? String(cString: strerror(writeErrno)) : "short write")")
        }
        guard rename(tmp, target) == 0 else {
            throw VnicError("rename \(tmp) to \(target): \(String(cString: strerror(errno)))")
        }
    }

    public static func remove(database db: String) {
        unlink(path(forDatabase: db))
    }
}

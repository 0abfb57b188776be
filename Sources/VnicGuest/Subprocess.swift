// Subprocess: runs a command (ip, sysctl) with posix_spawn and collects its
// output. Not Foundation's Process: that one needs a working loopback in the
// namespace (CFSocket's wakeup pair), which a guest may not have.
import Glibc
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
        let env = getenv("PATH").map { String(cString: $0).split(separator: ":").map(String.init) } ?? []
        for dir in env + searchPath where access(dir + "/" + name, X_OK) == 0 {
            return dir + "/" + name
        }
        return nil
    }

    public static func run(_ argv: [String]) throws(VnicError) -> SubprocessResult {
        guard let exe = find(argv[0]) else { throw VnicError("\(argv[0]): not found (needs iproute2 / procps)") }
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0 else { throw VnicError("pipe: \(String(cString: strerror(errno)))") }
        guard pipe(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw VnicError("pipe: \(String(cString: strerror(errno)))")
        }
        // Not inherited as such (dup2 onto 1 and 2 gives the child its copies).
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, cArgs, environ)
        close(outPipe[1]); close(errPipe[1])
        defer { close(outPipe[0]); close(errPipe[0]) }
        guard rc == 0 else { throw VnicError("\(argv[0]): \(String(cString: strerror(rc)))") }

        var out: [UInt8] = [], err: [UInt8] = []
        var open = [true, true]
        var chunk = [UInt8](repeating: 0, count: 4096)
        while open[0] || open[1] {
            var fds = [pollfd(fd: open[0] ? outPipe[0] : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: open[1] ? errPipe[0] : -1, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 { if errno == EINTR { continue } else { break } }
            for k in 0..<2 where open[k] && fds[k].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { read(fds[k].fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if k == 0 { out += chunk[0..<n] } else { err += chunk[0..<n] }
                } else if n == 0 || errno != EINTR {
                    open[k] = false
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS; a signal reads as 128 + its number.
        let code = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return SubprocessResult(status: code, stdout: String(decoding: out, as: UTF8.self),
                                stderr: String(decoding: err, as: UTF8.self))
    }
}

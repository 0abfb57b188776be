// Running external programs (ip, nsenter, the vnic binaries) with a timeout.
//
// Output goes to unlinked temporary files rather than pipes: a chatty child can
// never block on a full pipe, a grandchild that inherits the descriptors cannot
// keep a reader waiting, and nothing is left behind if we crash.
import Foundation
import Synchronization
import VnicCore

/// What a finished program left: its exit status and output.
public struct CommandResult: Sendable, CustomStringConvertible {
    public var argv: [String]
    /// The exit status, or 128 + signal number when a signal ended it.
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// Whether it was killed because it ran past its timeout.
    public var timedOut: Bool

    public var succeeded: Bool { status == 0 && !timedOut }
    /// The command line as a shell would show it.
    public var commandLine: String { Command.commandLine(argv) }
    /// stderr on one line (for error messages), else stdout, else the status.
    public var diagnostic: String {
        if timedOut { return "timed out" }
        let text = stderr.oneLine.isEmpty ? stdout.oneLine : stderr.oneLine
        return text.isEmpty ? "exit status \(status)" : text
    }
    public var description: String { "\(commandLine): status \(status)\(timedOut ? " (timed out)" : "")" }
}

/// An external program: an absolute path (or a name looked up in PATH) and its arguments.
public enum Command {
    /// Directories searched after $PATH: iproute2 lives in /sbin or /usr/sbin,
    /// which a non-login root shell may not have in its PATH.
    static let fallbackPath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    /// The absolute path of an executable named `name`, searching $PATH then the sbin directories.
    public static func find(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").map(String.init) ?? []
        for dir in path + fallbackPath where !dir.isEmpty {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `argv` to completion and returns its status and output; on timeout the
    /// program gets SIGTERM, then SIGKILL two seconds later.
    public static func run(_ argv: [String], timeout: Duration = .seconds(60),
                           environment: [String: String]? = nil) throws(VnicError) -> CommandResult {
        let running = try start(argv, environment: environment)
        return running.wait(timeout: timeout)
    }

    /// Starts `argv` in the background.
    public static func start(_ argv: [String], environment: [String: String]? = nil) throws(VnicError) -> RunningCommand {
        try RunningCommand(argv: argv, environment: environment)
    }

    /// Runs a program that daemonizes (QEMU's `-daemonize`) and waits for its
    /// foreground part. Not with Foundation's Process: that notices an exit only
    /// when every holder of a socket it hands the child has closed it, so a daemon
    /// forked from the child would keep it waiting as long as the daemon lives.
    /// Here posix_spawn passes only stdin (/dev/null) and stdout/stderr (an unlinked
    /// temporary file, read back); every other descriptor is closed in the child,
    /// signals are at their defaults and none is blocked; waitpid collects it.
    public static func runDaemonizing(_ argv: [String], timeout: Duration = .seconds(60)) throws(VnicError) -> CommandResult {
        guard let first = argv.first else { throw VnicError("empty command") }
        guard let path = find(first) else { throw VnicError("\(first) not found") }
        var template = Array((NSTemporaryDirectory() + "/vnic-lab.XXXXXX").utf8CString)
        let out = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard out >= 0 else { throw VnicError("temporary file for \(first): \(String(cString: strerror(errno)))") }
        _ = fcntl(out, F_SETFD, FD_CLOEXEC)  // not inherited by what others spawn meanwhile
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        defer { close(out) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out, 1)
        posix_spawn_file_actions_adddup2(&actions, out, 2)
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for fd in open where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }  // a closed one is ignored

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for sig in Int32(1)..<32 where sig != SIGKILL && sig != SIGSTOP { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var pid: pid_t = 0
        let rc = cArgs.withUnsafeBufferPointer { posix_spawn(&pid, path, &actions, &attr, $0.baseAddress!, environ) }
        guard rc == 0 else { throw VnicError("\(commandLine(argv)): \(String(cString: strerror(rc)))") }

        var status: Int32 = 0
        var timedOut = false
        let clock = ContinuousClock(), deadline = clock.now + timeout
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { status = 0x7f00; break }  // not ours to wait for any more
            if clock.now > deadline && !timedOut {
                timedOut = true
                kill(pid, SIGKILL)
            }
            usleep(10_000)
        }
        let signaled = status & 0x7f != 0 && status & 0x7f != 0x7f
        let code: Int32 = signaled ? 128 + (status & 0x7f) : (status >> 8) & 0xff
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(out, $0.baseAddress, $0.count, offset) }
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
            offset += off_t(n)
        }
        let text = String(decoding: data, as: UTF8.self)
        return CommandResult(argv: argv, status: code, stdout: "", stderr: text, timedOut: timedOut)
    }

    public static func commandLine(_ argv: [String]) -> String {
        argv.map { arg in
            arg.isEmpty || arg.contains(where: { " \"'$\\|&;<>()*?[]{}\t\n".contains($0) }) ? "'" + arg.replacingOccurrences(of: "'", with: "'\\''") + "'" : arg
        }.joined(separator: " ")
    }
}

/// A started program: signal it, wait for it (with a timeout), read its output so far.
/// Owned by whoever started it; `terminate()` is safe to call more than once.
public final class RunningCommand: @unchecked Sendable {  // Process is only read after it exits; the rest is immutable or a Mutex
    public let argv: [String]
    public let pid: Int32
    private let process: Process
    private let exited = DispatchSemaphore(value: 0)
    private let outFile: FileHandle
    private let errFile: FileHandle
    private let state = Mutex<(done: Bool, timedOut: Bool)>((false, false))

    init(argv: [String], environment: [String: String]?) throws(VnicError) {
        guard let first = argv.first else { throw VnicError("empty command") }
        guard let path = Command.find(first) else { throw VnicError("\(first) not found") }
        self.argv = argv
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(argv.dropFirst())
        if let environment { process.environment = environment }
        do {
            outFile = try Self.anonymousFile()
            errFile = try Self.anonymousFile()
        } catch { throw VnicError("temporary file for \(first): \(error)") }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = outFile
        process.standardError = errFile
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        do { try process.run() } catch {
            throw VnicError("\(Command.commandLine(argv)): \(error.localizedDescription)")
        }
        self.process = process
        pid = process.processIdentifier
    }

    /// An unlinked file in the temporary directory, opened read-write.
    private static func anonymousFile() throws -> FileHandle {
        var template = Array((NSTemporaryDirectory() + "/vnic-lab.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    public var isRunning: Bool { !state.withLock { $0.done } && process.isRunning }

    /// Sends `signal` (SIGTERM by default) if the program still runs.
    public func signal(_ signal: Int32 = SIGTERM) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits up to `timeout` for the program to exit; past it, SIGTERM, then SIGKILL.
    @discardableResult
    public func wait(timeout: Duration = .seconds(60)) -> CommandResult {
        if exited.wait(timeout: .now() + timeout.timeInterval) == .timedOut {
            state.withLock { $0.timedOut = true }
            stop(grace: .seconds(2))
        } else {
            exited.signal()  // let later waits return at once
        }
        state.withLock { $0.done = true }
        let status: Int32 = process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus : process.terminationStatus
        return CommandResult(argv: argv, status: status, stdout: Self.contents(outFile),
                             stderr: Self.contents(errFile), timedOut: state.withLock { $0.timedOut })
    }

    /// SIGTERM, then SIGKILL after `grace`; returns once it has exited.
    @discardableResult
    public func terminate(grace: Duration = .seconds(2)) -> CommandResult {
        if isRunning { stop(grace: grace) }
        return wait(timeout: .seconds(10))
    }

    private func stop(grace: Duration) {
        kill(pid, SIGTERM)
        if exited.wait(timeout: .now() + grace.timeInterval) == .timedOut {
            kill(pid, SIGKILL)
            exited.wait()
        }
        exited.signal()
    }

    /// What the program has written so far to stdout.
    public var stdoutSoFar: String { Self.contents(outFile) }
    /// What the program has written so far to stderr.
    public var stderrSoFar: String { Self.contents(errFile) }

    private static func contents(_ file: FileHandle) -> String {
        let fd = file.fileDescriptor
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
            offset += off_t(n)
        }
        return String(decoding: data, as: UTF8.self)
    }
}

extension Duration {
    var timeInterval: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}

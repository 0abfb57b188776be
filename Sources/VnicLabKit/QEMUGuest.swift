// Real VMs for the lab: QEMU guests on tap ports, attached the way libvirt
// attaches them (`vnic-lab up --qemu K`, `vnic-lab guest exec|start|stop`).
//
// Design: a guest is one daemonized QEMU process started inside the lab's host
// namespace (nsenter, never `ip netns exec`), which creates its tap itself,
// non-persistent (`-netdev tap,ifname=vmIt,script=no,downscript=no,vhost=off`):
// the tap exists exactly while QEMU runs, and every start is a new ifindex. The
// virtio-net device keeps QEMU's default offloads (the guest hands TCP/UDP over
// with partial checksums, as real guests do). The guest image (scripts/guest-image.sh)
// is a kernel and a busybox initramfs whose /init configures eth0 from the kernel
// command line, prints `QEMUGuest.readyMarker` on the serial console and runs a
// root shell there (no echo, empty prompt); `exec` drives that shell over the
// console's unix socket.
//
// Files, per lab P and guest VM I, in /run/vnic-lab/P:
//   vmI.json     the guest's configuration (what `guest start` boots again)
//   vmI.pid      QEMU's pidfile          vmI.console  the console's unix socket
//   vmI.log      everything the console printed since this QEMU started
//   vmI.lock     serialises console users (exec, stop)
// /run/vnic-lab/accel caches the `--accel auto` verdict (KVM probed once per boot).
//
// Invariants: a guest's PID is only trusted when /proc/PID/cmdline names its own
// pidfile (no stale PID is ever signalled); QEMU never runs in the root network
// namespace, except the KVM probe, which has no network device at all.
import Foundation
import Glibc
import VnicCore
import VnicPlatform

/// A QEMU accelerator a guest runs under.
public enum Accelerator: String, Codable, Sendable, CaseIterable {
    case kvm, tcg
}

/// `--accel`: `auto` probes KVM once per boot (cached in /run/vnic-lab/accel) and
/// falls back to TCG when it does not boot a guest.
public enum AcceleratorChoice: String, Sendable, CaseIterable {
    case auto, kvm, tcg
}

/// The kernel and initramfs guests boot (`scripts/guest-image.sh OUTDIR`).
public struct GuestImage: Codable, Sendable, Hashable {
    public var directory: String
    public var kernel: String { directory + "/vmlinuz" }
    public var initrd: String { directory + "/initrd.img" }

    public init(directory: String) { self.directory = directory }

    /// `scripts/guest-image.sh` of the package checkout that holds `path` (a
    /// built binary: `.build/<triple>/release/vnic-lab`), found upwards; nil when
    /// `path` is not inside one (an installed binary).
    public static func findScript(near path: String) -> String? {
        var dir = URL(fileURLWithPath: path).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("scripts/guest-image.sh").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return nil
    }

    /// The running program's directory (from /proc/self/exe).
    static var executableDirectory: String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
    }

    /// The image, made or refreshed first. `directory`: $VNIC_GUEST_DIR, else
    /// `<package>/.build/guest`. `script`: $VNIC_GUEST_IMAGE_SCRIPT, else the
    /// checkout's `scripts/guest-image.sh` found from this program's path; it is run
    /// (with VNIC_BIN_DIR=`binDirectory`, default this program's directory, where
    /// vnic-guest is) and does nothing when its inputs are unchanged. Without a
    /// script (an installed vnic-lab) the directory must already hold the image.
    public static func prepare(directory: String? = nil, binDirectory: String? = nil, script: String? = nil,
                               log: @Sendable (String) -> Void = { _ in }) throws(VnicError) -> GuestImage {
        let env = ProcessInfo.processInfo.environment
        let exeDir = executableDirectory
        let script = script ?? env["VNIC_GUEST_IMAGE_SCRIPT"].flatMap { $0.isEmpty ? nil : $0 }
            ?? exeDir.flatMap { findScript(near: $0 + "/x") }
        let packageRoot = script.map { URL(fileURLWithPath: $0).deletingLastPathComponent().deletingLastPathComponent().path }
        guard let dir = directory ?? env["VNIC_GUEST_DIR"].flatMap({ $0.isEmpty ? nil : $0 })
                ?? packageRoot.map({ $0 + "/.build/guest" }) else {
            throw VnicError("no guest image: set VNIC_GUEST_DIR (or --guest-image) to a directory made by scripts/guest-image.sh")
        }
        let image = GuestImage(directory: URL(fileURLWithPath: dir).standardizedFileURL.path)
        if let script {
            var environment = env
            if let bin = binDirectory ?? exeDir { environment["VNIC_BIN_DIR"] = bin }
            let result = try Command.run(["bash", script, image.directory], timeout: .seconds(600), environment: environment)
            guard result.succeeded else {
                throw VnicError("\(Command.commandLine(["bash", script, image.directory])) failed: \(result.diagnostic)")
            }
            if result.stdout.contains("built") { log(result.stdout.oneLine) }
        }
        for file in [image.kernel, image.initrd] where !FileManager.default.isReadableFile(atPath: file) {
            throw VnicError("guest image: \(file) not found (make it with scripts/guest-image.sh \(image.directory))")
        }
        return image
    }
}

/// What a command run in a guest left: its exit status and its output (stdout
/// and stderr together, as the console carries them; "\r\n" turned into "\n").
public struct GuestExecResult: Sendable, Hashable {
    public var status: Int32
    public var output: String
    public init(status: Int32, output: String) {
        self.status = status
        self.output = output
    }
}

/// One QEMU guest of a lab: start it, wait for it, run commands in it, stop it.
/// Values are cheap descriptions; the state is the QEMU process and the files in
/// `runDirectory`, so any process (vnic-lab, a test) can act on any guest.
///
///     let guest = try QEMUGuest.load(prefix: "vl", vm: 2)
///     let r = try guest.exec("ip -j addr show dev eth0", timeout: .seconds(20))
///     try guest.stop()         // the tap vm2t goes with QEMU
///     try guest.start()        // a new QEMU, a new tap (new ifindex); waits for the ready line
public struct QEMUGuest: Sendable {
    /// Everything a guest boots with; stored as `vmI.json`.
    public struct Configuration: Codable, Sendable, Hashable {
        public var prefix: String
        public var vm: Int
        public var hostNamespace: String
        public var tap: String
        /// The guest's virtio-net MAC (its eth0), and the tap's (host side) MAC.
        public var mac: String
        public var portMAC: String
        /// eth0's static address and default gateway (kernel command line vnic.ip, vnic.gw); nil: none.
        public var address: String?
        public var gateway: String?
        /// Tap and virtio-net queues; as many vCPUs.
        public var queues: Int
        public var memoryMiB: Int
        public var accelerator: Accelerator
        public var image: GuestImage

        public init(topology t: LabTopology, vm: Int, image: GuestImage, accelerator: Accelerator) {
            prefix = t.prefix
            self.vm = vm
            hostNamespace = t.hostNamespace
            tap = LabTopology.tap(vm)
            mac = t.vmMAC(vm).description
            portMAC = t.portMAC(vm).description
            address = t.vmIP(vm).description
            gateway = t.wireIP.address.description
            queues = t.guestQueues
            memoryMiB = QEMUGuest.defaultMemoryMiB
            self.accelerator = accelerator
            self.image = image
        }
    }

    /// The line /init prints on the console once eth0 is configured and the shell is about to start.
    public static let readyMarker = "VNIC-GUEST-READY"
    public static let runRoot = "/run/vnic-lab"
    public static let defaultMemoryMiB = 512
    /// How long `up` and `start` wait for the ready line (TCG on 2 cores boots in about 10 s, more when loaded).
    public static let defaultBootTimeout: Duration = .seconds(90)
    public static let qemuBinary = "qemu-system-x86_64"

    public let configuration: Configuration
    /// The absolute path of `ip`, for the tap (set in P-host).
    public var ip: String
    /// Called with each command that changes something (for `--verbose`).
    public var log: @Sendable (String) -> Void = { _ in }

    public init(configuration: Configuration, ip: String) {
        self.configuration = configuration
        self.ip = ip
    }

    public var vm: Int { configuration.vm }
    public var name: String { "vm\(configuration.vm)" }
    public static func runDirectory(prefix: String) -> String { "\(runRoot)/\(prefix)" }
    public var runDirectory: String { Self.runDirectory(prefix: configuration.prefix) }
    public var pidFile: String { "\(runDirectory)/\(name).pid" }
    public var consoleSocket: String { "\(runDirectory)/\(name).console" }
    public var consoleLog: String { "\(runDirectory)/\(name).log" }
    public var configFile: String { Self.configFile(prefix: configuration.prefix, vm: vm) }
    var lockFile: String { "\(runDirectory)/\(name).lock" }
    static func configFile(prefix: String, vm: Int) -> String { "\(runDirectory(prefix: prefix))/vm\(vm).json" }

    /// The guest of lab `prefix` that `up` (or `start`) configured, from its `vmI.json`.
    public static func load(prefix: String, vm: Int, ip: String? = nil) throws(VnicError) -> QEMUGuest {
        let path = configFile(prefix: prefix, vm: vm)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VnicError("vm\(vm) of lab \(prefix) is not a QEMU guest that vnic-lab started (no \(path))")
        }
        let configuration: Configuration
        do { configuration = try JSONDecoder().decode(Configuration.self, from: data) } catch {
            throw VnicError("\(path): \(error)")
        }
        return QEMUGuest(configuration: configuration, ip: ip ?? Command.find("ip") ?? "/usr/sbin/ip")
    }

    /// Whether guest `vm` of lab `prefix` runs (its pidfile names a live QEMU of its own).
    public static func isRunning(prefix: String, vm: Int) -> Bool { runningPID(prefix: prefix, vm: vm) != nil }

    static func runningPID(prefix: String, vm: Int) -> Int32? {
        let pidFile = "\(runDirectory(prefix: prefix))/vm\(vm).pid"
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
              isQEMU(pid: pid, pidFile: pidFile) else { return nil }
        return pid
    }

    /// Ends every QEMU of lab `prefix` (by pidfile; SIGTERM, then SIGKILL) and returns
    /// their VM numbers: what `vnic-lab down` does before removing the namespaces.
    @discardableResult
    public static func killAll(prefix: String, log: @Sendable (String) -> Void = { _ in }) -> [Int] {
        let dir = runDirectory(prefix: prefix)
        let vms = PinLayout.entries(dir).compactMap { name -> Int? in
            guard name.hasPrefix("vm"), name.hasSuffix(".pid") else { return nil }
            return Int(name.dropFirst(2).dropLast(4))
        }.sorted()
        var killed: [Int] = []
        for vm in vms {
            let pidFile = "\(dir)/vm\(vm).pid"
            guard let pid = runningPID(prefix: prefix, vm: vm) else { unlink(pidFile); continue }
            log("kill \(pid)  # QEMU of guest vm\(vm)")
            Glibc.kill(pid, SIGTERM)
            if !waitGone(pid: pid, pidFile: pidFile, within: .seconds(5)) {
                Glibc.kill(pid, SIGKILL)
                _ = waitGone(pid: pid, pidFile: pidFile, within: .seconds(5))
            }
            unlink(pidFile)
            killed.append(vm)
        }
        return killed
    }

    static func waitGone(pid: Int32, pidFile: String, within limit: Duration) -> Bool {
        let clock = ContinuousClock(), end = clock.now + limit
        while isQEMU(pid: pid, pidFile: pidFile) {
            if clock.now > end { return false }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return true
    }

    /// The VM numbers with a configuration in the lab's run directory.
    public static func configured(prefix: String) -> [Int] {
        PinLayout.entries(runDirectory(prefix: prefix)).compactMap { name -> Int? in
            guard name.hasPrefix("vm"), name.hasSuffix(".json") else { return nil }
            return Int(name.dropFirst(2).dropLast(5))
        }.sorted()
    }

    // MARK: The process

    /// The running QEMU's PID: the pidfile's, when that process is this guest's QEMU
    /// (its command line names the pidfile); nil otherwise (stopped, exited, a zombie).
    public var pid: Int32? { Self.runningPID(prefix: configuration.prefix, vm: vm) }

    public var isRunning: Bool { pid != nil }

    static func isQEMU(pid: Int32, pidFile: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return args.first?.contains("qemu") == true && args.contains(pidFile)
    }

    /// QEMU's arguments (after the binary): the tap as libvirt's `<interface
    /// type='ethernet'>` gets it, QEMU's default virtio-net offloads, the console
    /// on a unix socket (logged to `consoleLog`), daemonized with a pidfile.
    public var qemuArguments: [String] {
        let c = configuration
        func esc(_ s: String) -> String { s.replacingOccurrences(of: ",", with: ",,") }  // QEMU option values
        var append = "console=ttyS0 quiet panic=-1 vnic.name=\(name)"
        if let a = c.address { append += " vnic.ip=\(a)" }
        if let g = c.gateway { append += " vnic.gw=\(g)" }
        var netdev = "tap,id=n0,ifname=\(c.tap),script=no,downscript=no,vhost=off"
        var device = "virtio-net-pci,netdev=n0,mac=\(c.mac)"
        if c.queues > 1 {
            netdev += ",queues=\(c.queues)"
            device += ",mq=on,vectors=\(2 * c.queues + 2)"
        }
        return ["-name", "vnic-lab-\(c.prefix)-\(name)", "-accel", c.accelerator.rawValue,
                "-m", "\(c.memoryMiB)", "-smp", "\(c.queues)",
                "-display", "none", "-nodefaults", "-no-user-config", "-no-reboot",
                "-kernel", c.image.kernel, "-initrd", c.image.initrd, "-append", append,
                "-chardev", "socket,id=console,path=\(esc(consoleSocket)),server=on,wait=off,logfile=\(esc(consoleLog))",
                "-serial", "chardev:console",
                "-netdev", netdev, "-device", device,
                "-daemonize", "-pidfile", pidFile]
    }

    /// Starts QEMU (daemonized) in the host namespace, then brings its tap up with
    /// the port MAC; does not wait for the guest. Writes `configFile` first.
    public func launch() throws(VnicError) {
        guard let qemu = Command.find(Self.qemuBinary) else {
            throw VnicError("\(Self.qemuBinary) not found (install the Debian package qemu-system-x86)")
        }
        guard let nsenter = Command.find("nsenter") else { throw VnicError("nsenter not found (install the Debian package util-linux)") }
        let netns = "/run/netns/\(configuration.hostNamespace)"
        guard FileManager.default.fileExists(atPath: netns) else {
            throw VnicError("no namespace \(configuration.hostNamespace): bring the lab up first (vnic-lab up --prefix \(configuration.prefix))")
        }
        try writeConfiguration()
        for stale in [pidFile, consoleSocket] { unlink(stale) }
        let argv = [nsenter, "--net=\(netns)", "--", qemu] + qemuArguments
        log(Command.commandLine(argv))
        let result = try Command.runDaemonizing(argv, timeout: .seconds(60))
        guard result.succeeded else {
            throw VnicError("guest \(name): \(Self.qemuBinary) failed: \(result.diagnostic)")
        }
        guard isRunning else { throw VnicError("guest \(name): QEMU exited right after it started (see \(consoleLog))") }
        let set = ["-n", configuration.hostNamespace, "link", "set", "dev", configuration.tap,
                   "address", configuration.portMAC, "mtu", String(LabTopology.mtu), "up"]
        log(Command.commandLine(["ip"] + set))
        let up = try Command.run([ip] + set, timeout: .seconds(30))
        guard up.succeeded else {
            kill()
            throw VnicError("guest \(name): \(Command.commandLine(["ip"] + set)) failed: \(up.diagnostic)")
        }
    }

    func writeConfiguration() throws(VnicError) {
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(configuration).write(to: URL(fileURLWithPath: configFile), options: .atomic)
        } catch {
            throw VnicError("\(configFile): \(error.localizedDescription)")
        }
    }

    /// Waits until the console printed `readyMarker` (since this QEMU started);
    /// returns how long it waited. Fails early when QEMU exits, or when
    /// `interrupted()` says so; the error names the guest and the console's last lines.
    @discardableResult
    public func waitUntilReady(timeout: Duration = QEMUGuest.defaultBootTimeout,
                               interrupted: () -> Bool = { false }) throws(VnicError) -> Duration {
        let times = try Self.waitUntilReady([self], timeout: timeout, interrupted: interrupted)
        return times[vm] ?? .zero
    }

    /// `waitUntilReady` for several guests booting at once; returns each one's wait, by VM.
    public static func waitUntilReady(_ guests: [QEMUGuest], timeout: Duration = QEMUGuest.defaultBootTimeout,
                                      interrupted: () -> Bool = { false }) throws(VnicError) -> [Int: Duration] {
        let clock = ContinuousClock(), start = clock.now
        var ready: [Int: Duration] = [:]
        while true {
            for g in guests where ready[g.vm] == nil {
                if g.consoleLines().contains(readyMarker) { ready[g.vm] = clock.now - start; continue }
                if !g.isRunning {
                    // It may have printed the line and powered off at once.
                    if g.consoleLines().contains(readyMarker) { ready[g.vm] = clock.now - start; continue }
                    throw VnicError("guest \(g.name): QEMU exited before the guest was ready; console: \(g.consoleTail())")
                }
                if clock.now - start > timeout {
                    throw VnicError("guest \(g.name): not ready after \(Int(timeout.timeInterval)) s (no \(readyMarker) line "
                                    + "on its console, accel \(g.configuration.accelerator.rawValue)); console: \(g.consoleTail())")
                }
            }
            if ready.count == guests.count { return ready }
            if interrupted() { throw VnicError("interrupted while guests were booting") }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Boots the guest: `launch`, then `waitUntilReady`; returns the boot time (QEMU
    /// start to the ready line). A guest that does not come up is killed. A running
    /// guest is left alone (nil).
    @discardableResult
    public func start(timeout: Duration = QEMUGuest.defaultBootTimeout) throws(VnicError) -> Duration? {
        guard !isRunning else { return nil }
        let clock = ContinuousClock(), begin = clock.now
        try launch()
        do { try waitUntilReady(timeout: timeout - (clock.now - begin)) } catch {
            kill()
            throw error
        }
        return clock.now - begin
    }

    /// Powers the guest off (`poweroff -f` on its console), waits for QEMU to exit
    /// and its tap to go; SIGTERM, then SIGKILL, when it does not within `grace`.
    /// Returns false when it was not running.
    @discardableResult
    public func stop(grace: Duration = .seconds(15)) throws(VnicError) -> Bool {
        guard let pid else { return false }
        // Not behind an exec that is still running: then straight to the signals.
        if let lock = try? ConsoleLock(path: lockFile, wait: false) {
            if let console = try? ConsoleConnection(path: consoleSocket) {
                // ^C ends whatever the shell runs (and flushes its input), then power off.
                try? console.send(Array("\u{3}\n/sbin/poweroff -f\n".utf8))
                _ = waitForExit(pid: pid, within: grace)
            }
            lock.release()
        }
        if Self.isQEMU(pid: pid, pidFile: pidFile) { signalAndWait(pid: pid) }
        guard !Self.isQEMU(pid: pid, pidFile: pidFile) else {
            throw VnicError("guest \(name): QEMU (pid \(pid)) did not exit after SIGKILL")
        }
        try waitForTapGone()
        unlink(pidFile)
        unlink(consoleSocket)
        return true
    }

    /// Ends QEMU at once (SIGTERM, then SIGKILL): what `vnic-lab down` does. Best effort.
    public func kill() {
        guard let pid else { return }
        signalAndWait(pid: pid)
        unlink(pidFile)
        unlink(consoleSocket)
    }

    private func signalAndWait(pid: Int32) {
        log("kill \(pid)  # QEMU of guest \(name)")
        Glibc.kill(pid, SIGTERM)
        if !waitForExit(pid: pid, within: .seconds(5)) {
            Glibc.kill(pid, SIGKILL)
            _ = waitForExit(pid: pid, within: .seconds(5))
        }
    }

    private func waitForExit(pid: Int32, within limit: Duration) -> Bool {
        Self.waitGone(pid: pid, pidFile: pidFile, within: limit)
    }

    /// The tap is unregistered when QEMU's file descriptor closes; wait until `ip` no longer sees it.
    private func waitForTapGone() throws(VnicError) {
        let argv = [ip, "-n", configuration.hostNamespace, "link", "show", "dev", configuration.tap]
        let clock = ContinuousClock(), end = clock.now + .seconds(10)
        while clock.now < end {
            let r = try Command.run(argv, timeout: .seconds(10))
            if !r.succeeded { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw VnicError("guest \(name): tap \(configuration.tap) still exists after QEMU exited")
    }

    // MARK: The console

    /// The console's lines since this QEMU started ("\r" removed).
    public func consoleLines() -> [String] {
        guard let data = FileManager.default.contents(atPath: consoleLog) else { return [] }
        return String(decoding: data, as: UTF8.self).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .map { String($0).replacingOccurrences(of: "\r", with: "") }
    }

    /// The last non-empty console lines on one line (for error messages).
    public func consoleTail(_ count: Int = 6) -> String {
        let lines = consoleLines().map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.suffix(count)
        return lines.isEmpty ? "(nothing printed)" : lines.joined(separator: " | ")
    }

    /// Runs `command` with /bin/sh in the guest (stdin /dev/null, stderr into the
    /// output) over the console and returns its exit status and output. The
    /// command travels base64-encoded in a here-document, so any text is fine; the
    /// output is framed by begin/end lines carrying a fresh nonce, written with
    /// printf from split words, so neither echo nor old console output can fake them.
    /// Past `timeout` the guest gets ^C (the shell's job is interrupted) and this
    /// throws. Callers of one guest are serialised (a lock file).
    public func exec(_ command: String, timeout: Duration = .seconds(30)) throws(VnicError) -> GuestExecResult {
        guard isRunning else {
            throw VnicError("guest \(name) of lab \(configuration.prefix) is not running "
                            + "(vnic-lab guest start --prefix \(configuration.prefix) \(vm))")
        }
        let lock = try ConsoleLock(path: lockFile, wait: true)
        defer { lock.release() }
        let console = try ConsoleConnection(path: consoleSocket)
        let nonce = String(UInt64.random(in: 1...UInt64.max), radix: 16)
        let file = "/tmp/vnic-exec.\(nonce)"
        let encoded = Data(command.utf8).base64EncodedString()
        var lines = stride(from: 0, to: encoded.count, by: 76).map { i -> String in
            let start = encoded.index(encoded.startIndex, offsetBy: i)
            return String(encoded[start..<(encoded.index(start, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex)])
        }
        if lines.isEmpty { lines = [""] }
        let script = "rm -f /tmp/vnic-exec.*; base64 -d > \(file) <<'VNIC_EOF_\(nonce)'\n"
            + lines.joined(separator: "\n") + "\nVNIC_EOF_\(nonce)\n"
            + "printf '%s%s\\n' vnic-exec- begin:\(nonce); /bin/sh \(file) </dev/null 2>&1; "
            + "printf '\\n%s%s:%d\\n' vnic-exec- end:\(nonce) $?; rm -f \(file)\n"
        try console.send(Array(script.utf8))

        let begin = Array("vnic-exec-begin:\(nonce)\r\n".utf8), end = Array("\r\nvnic-exec-end:\(nonce):".utf8)
        var received: [UInt8] = []
        let clock = ContinuousClock(), deadline = clock.now + timeout
        while true {
            if let b = received.firstRange(of: begin), let e = received[b.upperBound...].firstRange(of: end),
               let newline = received[e.upperBound...].firstIndex(of: UInt8(ascii: "\r")) {
                let status = Int32(String(decoding: received[e.upperBound..<newline], as: UTF8.self)) ?? -1
                let output = String(decoding: received[b.upperBound..<e.lowerBound], as: UTF8.self)
                    .replacingOccurrences(of: "\r\n", with: "\n")
                return GuestExecResult(status: status, output: output)
            }
            let left = deadline - clock.now
            if left <= .zero {
                try? console.send([3])  // ^C: the console is the shell's controlling terminal
                throw VnicError("guest \(name): command timed out after \(Int(timeout.timeInterval)) s (interrupted with ^C): "
                                + command.prefix(80).oneLine)
            }
            guard let chunk = try console.receive(timeout: min(left, .milliseconds(500))) else {
                throw VnicError("guest \(name): the console closed (QEMU exited?); console: \(consoleTail())")
            }
            received += chunk
        }
    }
}

/// The resolution of `--accel`.
public enum AcceleratorProbe {
    public static var cacheFile: String { QEMUGuest.runRoot + "/accel" }

    /// The accelerator for `choice`, and why. `auto`: the cached verdict, else a probe
    /// (a KVM boot of `image` without network, with early console output: the ready
    /// line within 20 s, some output within 10 s and never 8 s without more, or TCG),
    /// cached until the next boot of the machine (/run is a tmpfs).
    public static func resolve(_ choice: AcceleratorChoice, image: GuestImage,
                               log: @Sendable (String) -> Void = { _ in }) throws(VnicError) -> (Accelerator, String) {
        switch choice {
        case .kvm: return (.kvm, "--accel kvm")
        case .tcg: return (.tcg, "--accel tcg")
        case .auto: break
        }
        try? FileManager.default.createDirectory(atPath: QEMUGuest.runRoot, withIntermediateDirectories: true)
        let lock = try ConsoleLock(path: cacheFile + ".lock", wait: true)  // one probe at a time
        defer { lock.release() }
        if let cached = try? String(contentsOfFile: cacheFile, encoding: .utf8),
           let word = cached.split(separator: "\t").first, let accel = Accelerator(rawValue: String(word)) {
            let reason = cached.split(separator: "\t", maxSplits: 1).dropFirst().first.map { String($0).oneLine } ?? ""
            return (accel, "\(reason) (cached in \(cacheFile))")
        }
        let (accel, reason) = try probe(image: image, log: log)
        try? "\(accel.rawValue)\t\(reason)\n".write(toFile: cacheFile, atomically: true, encoding: .utf8)
        return (accel, reason)
    }

    static func probe(image: GuestImage, log: @Sendable (String) -> Void) throws(VnicError) -> (Accelerator, String) {
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return (.tcg, "/dev/kvm: \(String(cString: strerror(errno)))") }
        close(fd)
        guard let qemu = Command.find(QEMUGuest.qemuBinary) else {
            throw VnicError("\(QEMUGuest.qemuBinary) not found (install the Debian package qemu-system-x86)")
        }
        let consoleFile = QEMUGuest.runRoot + "/accel-probe.log"
        unlink(consoleFile)
        let argv = [qemu, "-accel", "kvm", "-m", "\(QEMUGuest.defaultMemoryMiB)", "-display", "none", "-nodefaults",
                    "-no-user-config", "-no-reboot", "-kernel", image.kernel, "-initrd", image.initrd,
                    "-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1 vnic.probe",
                    "-serial", "file:" + consoleFile]
        log(Command.commandLine(argv) + "  # KVM probe")
        let running = try Command.start(argv)
        defer { running.terminate(grace: .seconds(1)); unlink(consoleFile) }
        let clock = ContinuousClock(), start = clock.now
        var lastSize = 0, lastGrowth = start
        while true {
            let text = (FileManager.default.contents(atPath: consoleFile)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            if text.utf8.count != lastSize { (lastSize, lastGrowth) = (text.utf8.count, clock.now) }
            if text.contains(QEMUGuest.readyMarker) {
                return (.kvm, "KVM probe booted the guest in \(String(format: "%.1f", (clock.now - start).timeInterval)) s")
            }
            if !running.isRunning {
                let r = running.wait(timeout: .seconds(1))
                return (.tcg, "KVM probe: QEMU exited (\(r.diagnostic))")
            }
            let waited = clock.now - start
            if text.isEmpty && waited > .seconds(10) { return (.tcg, "KVM probe: no console output within 10 s (the boot hangs)") }
            if !text.isEmpty && clock.now - lastGrowth > .seconds(8) {
                let last = text.split(whereSeparator: \.isNewline).last.map { String($0).oneLine } ?? ""
                return (.tcg, "KVM probe: the boot stopped after \(Int((lastGrowth - start).timeInterval)) s (no console output for 8 s; last: \(last.prefix(60)))")
            }
            if waited > .seconds(20) { return (.tcg, "KVM probe: no ready line within 20 s") }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }
}

/// An flock(2) on a file, held until `release()` (or the process exits).
final class ConsoleLock {
    private var fd: Int32

    init(path: String, wait: Bool) throws(VnicError) {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VnicError("open \(path): \(String(cString: strerror(errno)))") }
        while flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0 {
            let err = errno
            guard err == EINTR else {
                close(fd)
                throw VnicError("lock \(path): \(String(cString: strerror(err)))")
            }
        }
    }

    func release() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    deinit { release() }
}

/// A connection to a guest's console socket (QEMU's `-chardev socket,server=on`).
final class ConsoleConnection {
    private let fd: Int32

    init(path: String) throws(VnicError) {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw VnicError("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw VnicError("\(path): path too long for a unix socket")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let err = errno
            close(fd)
            throw VnicError("console \(path): \(String(cString: strerror(err)))")
        }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws(VnicError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw VnicError("console: send: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// What arrives within `timeout` (empty: nothing yet); nil once the other end closed.
    func receive(timeout: Duration) throws(VnicError) -> [UInt8]? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = poll(&pfd, 1, Int32(max(1, timeout.timeInterval * 1000)))
        if rc < 0 {
            if errno == EINTR { return [] }
            throw VnicError("console: poll: \(String(cString: strerror(errno)))")
        }
        if rc == 0 { return [] }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { return [] }
            throw VnicError("console: recv: \(String(cString: strerror(errno)))")
        }
        return n == 0 ? nil : Array(buffer[0..<n])
    }
}

// The lab's actions: up, down, status. Each reads the kernel through `ip -j`,
// plans with `LabPlan`, and runs `ip` commands; nothing is cached between runs.
//
// Invariants: every command names a namespace of the lab (`ip -n NS`, `ip netns
// exec NS`, `ip netns add/del NS`), so the root namespace is never changed; a
// failed `up` undoes what it created (QEMU guests it started included); runs of
// up and down are serialised by a lock file, so two concurrent runs cannot
// interleave (guests boot outside the lock: other labs are not held up by a boot).
import Foundation
import Synchronization
import VnicCore
import VnicPlatform

public struct Lab: Sendable {
    /// The absolute path of `ip`.
    public let ip: String
    /// Called with each changing command before it runs (for `--verbose`).
    public var log: @Sendable (String) -> Void = { _ in }
    /// Per `ip` command; `netns add` and `link add` take milliseconds, but a loaded machine may be slow.
    public var commandTimeout: Duration = .seconds(30)

    public init(ip: String) { self.ip = ip }

    /// Finds `ip` and checks the privileges every action needs.
    public static func preflight() throws(VnicError) -> Lab {
        guard let ip = Command.find("ip") else { throw VnicError("ip (iproute2) not found") }
        guard Privileges.canManageNamespaces else {
            throw VnicError("root (CAP_NET_ADMIN and CAP_SYS_ADMIN) is needed to manage network namespaces")
        }
        return Lab(ip: ip)
    }

    // MARK: Reading the kernel

    /// Runs `ip ARGS` and returns its stdout; a failure throws one line naming the command.
    @discardableResult
    func ipOutput(_ arguments: [String]) throws(VnicError) -> String {
        let result = try Command.run([ip] + arguments, timeout: commandTimeout)
        guard result.succeeded else { throw Self.failure(result, arguments) }
        return result.stdout
    }

    static func failure(_ result: CommandResult, _ arguments: [String]) -> VnicError {
        VnicError("\(Command.commandLine(["ip"] + arguments)) failed: \(result.diagnostic)")
    }

    /// The namespaces of the lab with `prefix`, host first, then wire, then VMs by number.
    public func namespaces(prefix: String) throws(VnicError) -> [String] {
        let text = try ipOutput(["-j", "netns", "list"])
        struct Entry: Decodable { var name: String }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let all: [Entry]
        do { all = trimmed.isEmpty ? [] : try JSONDecoder().decode([Entry].self, from: Data(trimmed.utf8)) } catch {
            throw VnicError("ip -j netns list: unexpected output: \(trimmed.prefix(200).oneLine)")
        }
        func rank(_ ns: String) -> Int {
            if ns == LabTopology.hostNamespace(prefix: prefix) { return -2 }
            if ns == "\(prefix)-wire" { return -1 }
            return LabTopology.vmNumber(namespace: ns, prefix: prefix) ?? Int.max
        }
        return all.map(\.name).filter { LabTopology.belongsToLab(namespace: $0, prefix: prefix) }
            .sorted { rank($0) < rank($1) }
    }

    /// The links of `namespace` with their details and addresses.
    public func links(in namespace: String) throws(VnicError) -> [LinkState] {
        let text = try ipOutput(["-n", namespace, "-j", "-d", "addr", "show"])
        do { return try LinkState.decode(ipJSON: text) } catch {
            throw VnicError("ip -n \(namespace) -j -d addr show: unexpected output: \(error)")
        }
    }

    /// The namespace's links, plus the IPv6 switch (host) or checksum offload (others) that `up` manages.
    func observe(_ namespace: String, topology t: LabTopology) throws(VnicError) -> NamespaceState {
        var state = NamespaceState(name: namespace, links: try links(in: namespace))
        if namespace == t.hostNamespace {
            let text = try ipOutput(["netns", "exec", namespace, "sysctl", "-n",
                                     "net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"])
            state.ipv6Disabled = text.split(whereSeparator: \.isNewline) == ["1", "1"]
        } else {
            let name = namespace == t.wireNamespace ? t.wire : t.vmInterface
            if state[link: name] != nil, try txChecksumOff(name, in: namespace) {
                state.txChecksumOff.insert(name)
            }
        }
        return state
    }

    func txChecksumOff(_ link: String, in namespace: String) throws(VnicError) -> Bool {
        let text = try ipOutput(["netns", "exec", namespace, "ethtool", "--json", "-k", link])
        struct Feature: Decodable { var active: Bool }
        struct Features: Decodable {
            var tx: Feature?
            enum CodingKeys: String, CodingKey { case tx = "tx-checksumming" }
        }
        let features = try? JSONDecoder().decode([Features].self, from: Data(text.utf8))
        return features?.first?.tx?.active == false
    }

    // MARK: up

    /// What `up` did.
    public struct UpReport: Sendable {
        public var createdNamespaces: [String]
        public var steps: [LabStep]
        /// The QEMU guests this run booted, with their boot times (QEMU start to the ready line).
        public var startedGuests: [Int] = []
        public var bootTimes: [Int: Duration] = [:]
        /// The guests' accelerator and why it was chosen (nil: no guest was started).
        public var accelerator: Accelerator?
        public var acceleratorReason: String?
        public var changed: Bool { !steps.isEmpty || !startedGuests.isEmpty }
    }

    /// How `up` starts QEMU guests (`LabTopology.qemuGuests`).
    public struct GuestSettings: Sendable {
        public var accelerator: AcceleratorChoice = .auto
        /// The guest image's directory, the directory vnic-guest is taken from, the
        /// image script (see `GuestImage.prepare`); nil: the defaults.
        public var imageDirectory: String?
        public var binDirectory: String?
        public var imageScript: String?
        public var bootTimeout: Duration = QEMUGuest.defaultBootTimeout
        public init() {}
    }

    /// Makes the lab match `topology`: builds it, completes a partial one, changes
    /// nothing on a complete one. A lab of another shape is an error. QEMU guests
    /// that do not run are booted (the image made or refreshed first), and `up`
    /// returns once each printed its ready line. On failure, what this run created
    /// (guests included) is removed before the error is thrown.
    @discardableResult
    public func up(_ t: LabTopology, guests settings: GuestSettings = GuestSettings()) throws(VnicError) -> UpReport {
        var report = try withLabLock { () throws(VnicError) in try lockedUp(t) }
        let missing = t.guestVMs.filter { !QEMUGuest.isRunning(prefix: t.prefix, vm: $0) }
        guard !missing.isEmpty else { return report }
        var launched: [QEMUGuest] = []
        do throws(VnicError) {
            guard Command.find(QEMUGuest.qemuBinary) != nil else {
                throw VnicError("\(QEMUGuest.qemuBinary) not found (install the Debian package qemu-system-x86)")
            }
            guard FileManager.default.fileExists(atPath: "/dev/net/tun") else {
                throw VnicError("/dev/net/tun not found: QEMU cannot make the guests' taps (load the tun module)")
            }
            let image = try GuestImage.prepare(directory: settings.imageDirectory, binDirectory: settings.binDirectory,
                                               script: settings.imageScript, log: log)
            let (accel, reason) = try AcceleratorProbe.resolve(settings.accelerator, image: image, log: log)
            report.accelerator = accel
            report.acceleratorReason = reason
            let clock = ContinuousClock(), start = clock.now
            try withLabLock { () throws(VnicError) in
                for vm in missing where !QEMUGuest.isRunning(prefix: t.prefix, vm: vm) {  // another up's meanwhile
                    var guest = QEMUGuest(configuration: .init(topology: t, vm: vm, image: image, accelerator: accel), ip: ip)
                    guest.log = log
                    try guest.launch()
                    launched.append(guest)
                }
            }
            let launchTime = clock.now - start
            let waits = try QEMUGuest.waitUntilReady(launched, timeout: settings.bootTimeout,
                                                     interrupted: { LabInterrupt.requested })
            report.startedGuests = launched.map(\.vm)
            report.bootTimes = waits.mapValues { $0 + launchTime }
        } catch {
            for guest in launched { guest.kill() }
            // Their configurations go too (the console logs stay, for a look at what happened).
            for guest in launched { unlink(guest.configFile) }
            try? withLabLock { () throws(VnicError) in rollBack(report.steps) }
            throw error
        }
        return report
    }

    private func lockedUp(_ t: LabTopology) throws(VnicError) -> UpReport {
        let existing = try namespaces(prefix: t.prefix)
        var observed: [String: NamespaceState] = [:]
        if existing.contains(t.hostNamespace) {
            observed[t.hostNamespace] = try observe(t.hostNamespace, topology: t)
        }
        if let conflict = LabPlan.conflict(t, namespaces: existing, host: observed[t.hostNamespace]) {
            throw VnicError(conflict)
        }
        for ns in t.namespaces where existing.contains(ns) && observed[ns] == nil {
            observed[ns] = try observe(ns, topology: t)
        }
        let steps = LabPlan.steps(t, observed: observed)
        var done: [LabStep] = []
        do throws(VnicError) {
            for step in steps {
                log(step.description)
                let result = try Command.run([ip] + step.ipArguments, timeout: commandTimeout)
                if !result.succeeded && !step.mayFail { throw Self.failure(result, step.ipArguments) }
                done.append(step)
                if LabInterrupt.requested { throw VnicError("interrupted (what this run created is removed)") }
            }
        } catch {
            rollBack(done)
            throw error
        }
        return UpReport(createdNamespaces: steps.filter { $0.ipArguments.starts(with: ["netns", "add"]) }
                            .map { $0.ipArguments[2] }, steps: steps)
    }

    /// Undoes the steps that created something, newest first; best effort.
    private func rollBack(_ done: [LabStep]) {
        for undo in done.reversed().compactMap(\.undo) {
            log("rollback: " + Command.commandLine(["ip"] + undo))
            _ = try? Command.run([ip] + undo, timeout: commandTimeout)
        }
    }

    // MARK: down

    /// What `down` removed.
    public struct DownReport: Sendable {
        public var namespaces: [String]
        /// The QEMU guests that were running (now ended).
        public var guests: [Int]
    }

    /// Removes every namespace of the lab (which removes its interfaces); returns
    /// their names. Nothing there is not an error.
    @discardableResult
    public func down(prefix: String) throws(VnicError) -> [String] {
        try tearDown(prefix: prefix).namespaces
    }

    /// `down`, saying which guests it ended too: the lab's QEMU processes first (by
    /// pidfile), then the namespaces, then /run/vnic-lab/P.
    @discardableResult
    public func tearDown(prefix: String) throws(VnicError) -> DownReport {
        try LabTopology.validate(prefix: prefix)
        return try withLabLock { () throws(VnicError) in try lockedDown(prefix: prefix) }
    }

    private func lockedDown(prefix: String) throws(VnicError) -> DownReport {
        // Guests first: their taps go with QEMU, and no QEMU keeps P-host alive.
        let guests = QEMUGuest.killAll(prefix: prefix, log: log)
        let existing = try namespaces(prefix: prefix)
        var failures: [String: String] = [:]
        // What a vnicd killed in the host namespace left pinned in bpffs (PinLayout) goes too.
        for dir in PinLayout.directories(netns: "/run/netns/" + LabTopology.hostNamespace(prefix: prefix)) {
            log("rm -r \(dir)")
            PinLayout.remove(dir)
        }
        // VMs and wire first: their veth ends go with them, so the host has less to tear down.
        for ns in existing.reversed() {
            let arguments = ["netns", "del", ns]
            log(Command.commandLine(["ip"] + arguments))
            let result = try Command.run([ip] + arguments, timeout: commandTimeout)
            if !result.succeeded { failures[ns] = Self.failure(result, arguments).message }
        }
        // A namespace removed by someone else meanwhile is fine; one still there is not.
        let left = try namespaces(prefix: prefix)
        if let stuck = left.first(where: existing.contains) {
            throw VnicError(failures[stuck] ?? "ip netns del \(stuck): the namespace is still there")
        }
        let run = QEMUGuest.runDirectory(prefix: prefix)
        if FileManager.default.fileExists(atPath: run) {
            log("rm -r \(run)")
            try? FileManager.default.removeItem(atPath: run)
        }
        return DownReport(namespaces: existing, guests: guests)
    }

    // MARK: guests

    /// Guest `vm` of lab `prefix`: the configuration `up` stored, else, for a VM that
    /// the lab's recorded shape (uplink0's alias) makes a guest, a new one (the
    /// image prepared and the accelerator resolved as `up` does).
    public func guest(prefix: String, vm: Int, settings: GuestSettings = GuestSettings()) throws(VnicError) -> QEMUGuest {
        try LabTopology.validate(prefix: prefix)
        if var guest = try? QEMUGuest.load(prefix: prefix, vm: vm, ip: ip) {
            guest.log = log
            return guest
        }
        let host = LabTopology.hostNamespace(prefix: prefix)
        guard try namespaces(prefix: prefix).contains(host) else { throw VnicError("no lab with prefix \(prefix)") }
        let alias = try links(in: host).first { $0.name == LabTopology.uplink }?.alias
        guard let shape = alias.flatMap(LabTopology.shape(fromAlias:)) else {
            throw VnicError("lab \(prefix) has no recorded shape (uplink0's alias); bring it up again with vnic-lab up --qemu K")
        }
        let t = try LabTopology(prefix: prefix, vms: shape.vms, queues: shape.queues,
                                qemuGuests: shape.qemu, guestQueues: shape.guestQueues)
        guard t.isGuest(vm) else {
            let which = t.guestVMs.isEmpty ? "none" : t.guestVMs.map { "vm\($0)" }.joined(separator: " ")
            throw VnicError("vm\(vm) of lab \(prefix) is not a QEMU guest (its guests: \(which))")
        }
        let image = try GuestImage.prepare(directory: settings.imageDirectory, binDirectory: settings.binDirectory,
                                           script: settings.imageScript, log: log)
        let (accel, _) = try AcceleratorProbe.resolve(settings.accelerator, image: image, log: log)
        var guest = QEMUGuest(configuration: .init(topology: t, vm: vm, image: image, accelerator: accel), ip: ip)
        guest.log = log
        return guest
    }

    /// Boots `guest` like `QEMUGuest.start` (nil when it already runs), holding the
    /// lab lock while QEMU starts (so no `down` runs in between) but not while it boots.
    @discardableResult
    public func start(_ guest: QEMUGuest, timeout: Duration = QEMUGuest.defaultBootTimeout) throws(VnicError) -> Duration? {
        guard !guest.isRunning else { return nil }
        let clock = ContinuousClock(), begin = clock.now
        try withLabLock { () throws(VnicError) in try guest.launch() }
        do { try guest.waitUntilReady(timeout: timeout - (clock.now - begin), interrupted: { LabInterrupt.requested }) } catch {
            guest.kill()
            throw error
        }
        return clock.now - begin
    }

    // MARK: status

    /// The lab's namespaces and interfaces, and its QEMU guests; nil when no
    /// namespace has the prefix and no guest was configured.
    public func status(prefix: String) throws(VnicError) -> LabStatus? {
        try LabTopology.validate(prefix: prefix)
        let existing = try namespaces(prefix: prefix)
        let configured = QEMUGuest.configured(prefix: prefix)
        guard !existing.isEmpty || !configured.isEmpty else { return nil }
        var states: [String: [LinkState]] = [:]
        var ids: [String: [Int: String]] = [:]
        for ns in existing {
            states[ns] = try links(in: ns)
            ids[ns] = try netnsIDs(in: ns)
        }
        let host = states[LabTopology.hostNamespace(prefix: prefix)].map {
            NamespaceState(name: LabTopology.hostNamespace(prefix: prefix), links: $0)
        }
        let shape = LabPlan.existingShape(prefix: prefix, namespaces: existing, host: host)
        // Guests: the shape's last K VMs and any that has a configuration.
        let shapeGuests = shape.vms.flatMap { n in shape.qemu.map { k in Array(stride(from: n - k + 1, through: n, by: 1)) } } ?? []
        let guestVMs = Set(shapeGuests + configured).sorted()
        let guests = guestVMs.map { vm -> LabStatus.Guest in
            let tapName = LabTopology.tap(vm)
            let tap = host?[link: tapName]
            var g = LabStatus.Guest(vm: vm, tap: tapName, running: false)
            if let guest = try? QEMUGuest.load(prefix: prefix, vm: vm, ip: ip) {
                let c = guest.configuration
                g.pid = guest.pid
                g.running = g.pid != nil
                g.mac = c.mac
                g.address = c.address
                g.accelerator = c.accelerator.rawValue
                g.queues = c.queues
                g.console = guest.consoleSocket
            }
            g.tapIfindex = tap?.ifindex
            g.tapState = tap.map { $0.isAdminUp ? $0.operstate.lowercased() : "\($0.operstate.lowercased()),admin-down" }
            return g
        }
        return LabStatus(prefix: prefix, vms: shape.vms, queues: shape.queues,
                         qemu: shape.qemu.flatMap { $0 > 0 ? $0 : nil }, guests: guests.isEmpty ? nil : guests,
                         namespaces: existing.map { ns in
            LabStatus.Namespace(name: ns, interfaces: (states[ns] ?? []).map { link in
                var peer: String?
                if let index = link.peerIfindex {
                    let peerNS = link.peerNetnsID.map { ids[ns]?[$0] ?? "nsid \($0)" } ?? ns
                    let peerName = states[peerNS]?.first { $0.ifindex == index }?.name ?? "if\(index)"
                    peer = "\(peerName)@\(peerNS)"
                }
                return LabStatus.Interface(link, peer: peer)
            })
        })
    }

    /// This namespace's ids for other namespaces, by id.
    func netnsIDs(in namespace: String) throws(VnicError) -> [Int: String] {
        let text = try ipOutput(["-n", namespace, "-j", "netns", "list-id"])
        struct Entry: Decodable { var nsid: Int; var name: String? }
        let entries = (try? JSONDecoder().decode([Entry].self, from: Data(text.utf8))) ?? []
        return Dictionary(entries.compactMap { e in e.name.map { (e.nsid, $0) } }, uniquingKeysWith: { a, _ in a })
    }
}

/// SIGINT, SIGTERM and SIGHUP during `up` stop it between two commands, so it can
/// roll back instead of leaving half a lab. Handlers only set a flag; children get
/// the default dispositions back when they exec.
public enum LabInterrupt {
    private static let flag = Atomic<Bool>(false)

    public static var requested: Bool { flag.load(ordering: .relaxed) }

    public static func install() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { _ in LabInterrupt.flag.store(true, ordering: .relaxed) }
        }
    }
}

/// Whether this process may create namespaces and configure links in them.
enum Privileges {
    static let netAdmin = 12, sysAdmin = 21   // <linux/capability.h>

    /// CAP_NET_ADMIN and CAP_SYS_ADMIN in the effective set (root has both unless a
    /// container dropped them); when /proc cannot tell, euid 0.
    static var canManageNamespaces: Bool {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let caps = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return geteuid() == 0 }
        return caps & (1 << netAdmin) != 0 && caps & (1 << sysAdmin) != 0
    }
}

/// Runs `body` holding the lab lock (flock on /run/lock/vnic-lab.lock), so no two
/// runs of up or down interleave. One lock for every prefix: runs take
/// milliseconds to seconds, and no lock file is left per prefix. The file stays; it
/// is empty and reused.
func withLabLock<T>(_ body: () throws(VnicError) -> T) throws(VnicError) -> T {
    let dir = FileManager.default.fileExists(atPath: "/run/lock") ? "/run/lock" : NSTemporaryDirectory()
    let path = "\(dir)/vnic-lab.lock"
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw VnicError("open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    while flock(fd, LOCK_EX) != 0 {
        guard errno == EINTR else { throw VnicError("lock \(path): \(String(cString: strerror(errno)))") }
    }
    return try body()
}

// The lab's actions: up, down, status. Each reads the kernel through `ip -j`,
// plans with `LabPlan`, and runs `ip` commands; nothing is cached between runs.
//
// Invariants: every command names a namespace of the lab (`ip -n NS`, `ip netns
// exec NS`, `ip netns add/del NS`), so the root namespace is never changed; a
// failed `up` undoes what it created; runs of up and down are serialised by a
// lock file, so two concurrent runs cannot interleave.
import Foundation
import Synchronization
import VnicCore

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
        public var changed: Bool { !steps.isEmpty }
    }

    /// Makes the lab match `topology`: builds it, completes a partial one, changes
    /// nothing on a complete one. A lab of another shape is an error. On failure,
    /// what this run created is removed before the error is thrown.
    @discardableResult
    public func up(_ t: LabTopology) throws(VnicError) -> UpReport {
        try withLabLock { () throws(VnicError) in try lockedUp(t) }
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

    /// Removes every namespace of the lab (which removes its interfaces); returns
    /// their names. Nothing there is not an error.
    @discardableResult
    public func down(prefix: String) throws(VnicError) -> [String] {
        try LabTopology.validate(prefix: prefix)
        return try withLabLock { () throws(VnicError) in try lockedDown(prefix: prefix) }
    }

    private func lockedDown(prefix: String) throws(VnicError) -> [String] {
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
        return existing
    }

    // MARK: status

    /// The lab's namespaces and interfaces, or nil when no namespace has the prefix.
    public func status(prefix: String) throws(VnicError) -> LabStatus? {
        try LabTopology.validate(prefix: prefix)
        let existing = try namespaces(prefix: prefix)
        guard !existing.isEmpty else { return nil }
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
        return LabStatus(prefix: prefix, vms: shape.vms, queues: shape.queues, namespaces: existing.map { ns in
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

// The integration-test harness: a lab per test (unique prefix, built by the real
// vnic-lab binary, torn down even when the test fails), commands run inside its
// namespaces, and background processes that are killed at teardown.
//
// Usage:
//
//     func testSomething() throws {
//         let lab = try LabFixture(test: self, vms: 2, queues: 2)
//         let t = lab.topology
//         let vnicd = try lab.start(in: t.hostNamespace, lab.bin("vnicd"), "--db", lab.path("vnic.db"))
//         let ping = try lab.run(in: t.wireNamespace, "ping", "-c", "1", "-W", "2", "\(t.vmIP(1).address)")
//         XCTAssertEqual(ping.status, 0, ping.stderr)
//     }
//
// Preconditions (root, `ip`, `nsenter`, a built binary) fail the test when env
// CI is "true" and skip it otherwise, with the reason either way.
//
// Commands run through `nsenter --net=/run/netns/NS --`, not `ip netns exec`:
// the latter remounts /sys and hides pinned BPF objects under /sys/fs/bpf.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

/// Facts about the machine the tests run on, and where the binaries are.
enum TestEnvironment {
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The package root, derived from this file's path (Tests/IntegrationTests/LabFixture.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `$VNIC_BIN_DIR`, else `<package root>/.build/release`.
    static var binDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["VNIC_BIN_DIR"], !dir.isEmpty { return dir }
        return packageRoot.appendingPathComponent(".build/release").path
    }

    /// Fails (CI) or skips (elsewhere) the current test, saying why.
    static func unavailable(_ reason: String) -> any Error {
        isCI ? FixtureError(message: "\(reason) (CI=true: required)") : XCTSkip(reason)
    }

    /// The path of a vnic binary (`vnic-lab`, `vnicd`, ...); unavailable when it is not built.
    static func binary(_ name: String) throws -> String {
        let path = binDirectory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw unavailable("\(name) not built at \(path) (run `make build`, or set VNIC_BIN_DIR)")
        }
        return path
    }

    /// What QEMU guests (`vnic-lab up --qemu K`) need besides a lab: QEMU, /dev/net/tun,
    /// what scripts/guest-image.sh builds the image from, and vnic-guest built.
    static func requireQEMU() throws {
        guard Command.find(QEMUGuest.qemuBinary) != nil else {
            throw unavailable("\(QEMUGuest.qemuBinary) not found (install the Debian package qemu-system-x86)")
        }
        guard FileManager.default.fileExists(atPath: "/dev/net/tun") else { throw unavailable("/dev/net/tun not found (tun module)") }
        let kernels = (try? FileManager.default.contentsOfDirectory(atPath: "/boot"))?.filter { $0.hasPrefix("vmlinuz-") } ?? []
        guard !kernels.isEmpty else { throw unavailable("no /boot/vmlinuz-* (install the Debian package linux-image-amd64)") }
        guard FileManager.default.isExecutableFile(atPath: "/bin/busybox") else {
            throw unavailable("/bin/busybox not found (install the Debian package busybox-static)")
        }
        guard Command.find("cpio") != nil else { throw unavailable("cpio not found (install the Debian package cpio)") }
        _ = try binary("vnic-guest")
    }

    /// Root (CAP_NET_ADMIN, CAP_SYS_ADMIN), `ip` and `nsenter`: what every lab needs.
    static func requireLabPrivileges() throws {
        guard Command.find("ip") != nil else { throw unavailable("ip (iproute2) not found") }
        guard Command.find("nsenter") != nil else { throw unavailable("nsenter (util-linux) not found") }
        guard geteuid() == 0 else { throw unavailable("lab tests need root (CAP_NET_ADMIN) to create namespaces") }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Runs `argv` inside network namespace `namespace` (`nsenter --net=/run/netns/NS --`)
/// and waits for it, up to `timeout`.
func inNamespace(_ namespace: String, _ argv: [String], timeout: Duration = .seconds(30)) throws -> CommandResult {
    try Command.run(nsenter(namespace, argv), timeout: timeout)
}

/// Starts `argv` inside network namespace `namespace` in the background. The caller
/// owns the handle; `LabFixture.start(in:)` also kills it at teardown.
func startInNamespace(_ namespace: String, _ argv: [String]) throws -> RunningCommand {
    try Command.start(nsenter(namespace, argv))
}

/// Variadic form: `inNamespace(t.wireNamespace, "ping", "-c", "1", "10.77.0.11")`.
func inNamespace(_ namespace: String, _ argv: String..., timeout: Duration = .seconds(30)) throws -> CommandResult {
    try inNamespace(namespace, argv, timeout: timeout)
}

/// Variadic form of `startInNamespace(_:_:)`.
func startInNamespace(_ namespace: String, _ argv: String...) throws -> RunningCommand {
    try startInNamespace(namespace, argv)
}

private func nsenter(_ namespace: String, _ argv: [String]) -> [String] {
    ["nsenter", "--net=/run/netns/\(namespace)", "--"] + argv
}

/// One lab for one test: a unique prefix, brought up by `vnic-lab up` and removed
/// by `vnic-lab down` at teardown, whether the test passed or not.
final class LabFixture: @unchecked Sendable {  // used from the test's thread and its teardown only
    let topology: LabTopology
    var prefix: String { topology.prefix }
    /// A scratch directory for this test (databases, captures); removed at teardown.
    let directory: URL
    private unowned let test: XCTestCase
    private var started: [RunningCommand] = []
    /// Where the lab's database lives when not in `directory` (VnicdSupport's `database`).
    var databaseDirectory: URL?

    /// Brings up a lab with `vms` VMs and `queues` queues under a fresh prefix
    /// ("t" + 5 random characters); the last `qemu` VMs are QEMU guests with
    /// `guestQueues` queues (`vnic-lab up --qemu K --guest-queues G`: `up` returns
    /// once they booted). Skips or fails the test (see `TestEnvironment`) when the
    /// machine cannot host it.
    init(test: XCTestCase, vms: Int = 2, queues: Int = 1, qemu: Int = 0, guestQueues: Int = 1, up: Bool = true,
         file: StaticString = #filePath, line: UInt = #line) throws {
        try TestEnvironment.requireLabPrivileges()
        _ = try TestEnvironment.binary("vnic-lab")
        if qemu > 0 { try TestEnvironment.requireQEMU() }
        self.test = test
        topology = try LabTopology(prefix: try Self.freshPrefix(), vms: vms, queues: queues,
                                   qemuGuests: qemu, guestQueues: guestQueues)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vnic-it-\(topology.prefix)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Registered before `up`, so a half-built lab is removed too. Teardown blocks run
        // newest first: processes started later are stopped before the lab goes away.
        let prefix = topology.prefix, directory = directory
        test.addTeardownBlock {
            Self.removeLab(prefix: prefix, file: file, line: line)
            try? FileManager.default.removeItem(at: directory)
        }
        if up {
            // A first guest lab on a machine also builds the image and probes KVM (about 30 s).
            let guests = qemu > 0 ? ["--qemu", "\(qemu)", "--guest-queues", "\(guestQueues)"] : []
            let result = try lab(["up", "--vms", "\(vms)", "--queues", "\(queues)"] + guests,
                                 timeout: .seconds(qemu > 0 ? 300 : 120))
            guard result.succeeded else {
                throw FixtureError(message: "vnic-lab up --prefix \(prefix) failed (\(result.status)): \(result.stderr)")
            }
        }
    }

    /// A prefix no namespace uses yet.
    private static func freshPrefix() throws -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        for _ in 0..<20 {
            let prefix = "t" + String((0..<5).map { _ in alphabet.randomElement()! })
            if try namespaces(startingWith: prefix + "-").isEmpty { return prefix }
        }
        throw FixtureError(message: "no free lab prefix after 20 tries")
    }

    private static func removeLab(prefix: String, file: StaticString, line: UInt) {
        guard let binary = try? TestEnvironment.binary("vnic-lab"),
              let result = try? Command.run([binary, "down", "--prefix", prefix], timeout: .seconds(120)),
              result.succeeded else {
            // down itself is broken or missing: remove the namespaces directly, and say so.
            XCTFail("vnic-lab down --prefix \(prefix) failed at teardown; removing the namespaces directly",
                    file: file, line: line)
            QEMUGuest.killAll(prefix: prefix)
            if let ip = Command.find("ip"), let names = try? Lab(ip: ip).namespaces(prefix: prefix) {
                for ns in names { _ = try? Command.run([ip, "netns", "del", ns]) }
            }
            return
        }
    }

    /// QEMU guest `vm` of this lab (`qemu:` in `init`): exec, stop, start (see QEMUGuest).
    func guest(_ vm: Int) throws -> QEMUGuest { try QEMUGuest.load(prefix: prefix, vm: vm) }

    // MARK: Binaries and paths

    /// The path of a vnic binary (`vnicd`, `vnicadm`, `vnic-pktgen`, ...) under the
    /// binary directory; skips or fails the test when it is not built.
    func bin(_ name: String) throws -> String { try TestEnvironment.binary(name) }

    /// A path in the test's scratch directory.
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    // MARK: Running things

    /// Runs `vnic-lab ARGS --prefix P` (the prefix is added unless `ARGS` names one;
    /// before a `--`, as in `guest exec VM -- COMMAND`).
    @discardableResult
    func lab(_ arguments: String..., timeout: Duration = .seconds(120)) throws -> CommandResult {
        try lab(arguments, timeout: timeout)
    }

    @discardableResult
    func lab(_ arguments: [String], timeout: Duration = .seconds(120)) throws -> CommandResult {
        var withPrefix = arguments
        if !arguments.contains("--prefix") && !arguments.contains("--help") {
            withPrefix.insert(contentsOf: ["--prefix", prefix], at: arguments.firstIndex(of: "--") ?? arguments.endIndex)
        }
        return try Command.run([try bin("vnic-lab")] + withPrefix, timeout: timeout)
    }

    /// Runs a command inside namespace `namespace` and waits for it.
    @discardableResult
    func run(in namespace: String, _ argv: String..., timeout: Duration = .seconds(30)) throws -> CommandResult {
        try inNamespace(namespace, argv, timeout: timeout)
    }

    /// Runs a command inside namespace `namespace` and waits for it.
    @discardableResult
    func run(in namespace: String, _ argv: [String], timeout: Duration = .seconds(30)) throws -> CommandResult {
        try inNamespace(namespace, argv, timeout: timeout)
    }

    /// Starts a command inside namespace `namespace`; it gets SIGTERM (then SIGKILL)
    /// at teardown if it still runs. Read its output with `stdoutSoFar`, stop it
    /// with `terminate()`, or `wait(timeout:)` for it.
    func start(in namespace: String, _ argv: String...) throws -> RunningCommand {
        try start(in: namespace, argv)
    }

    func start(in namespace: String, _ argv: [String]) throws -> RunningCommand {
        let handle = try startInNamespace(namespace, argv)
        test.addTeardownBlock { handle.terminate() }
        return handle
    }

    // MARK: Looking at the lab

    /// The links of a namespace of the lab, as `ip -j -d addr show` reports them.
    func links(in namespace: String) throws -> [LinkState] {
        try Lab(ip: Command.find("ip") ?? "ip").links(in: namespace)
    }

    /// One link; fails the test with a clear message when it is missing.
    func link(_ name: String, in namespace: String) throws -> LinkState {
        guard let link = try links(in: namespace).first(where: { $0.name == name }) else {
            throw FixtureError(message: "no link \(name) in namespace \(namespace)")
        }
        return link
    }

    /// The namespaces that exist with this lab's prefix (any `P-*`, not only the contract's).
    func existingNamespaces() throws -> [String] {
        try Self.namespaces(startingWith: prefix + "-")
    }

    static func namespaces(startingWith head: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: "/run/netns") else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: "/run/netns").filter { $0.hasPrefix(head) }.sorted()
    }

    /// Packets received by `link` in `namespace` so far (from `ip -s -j link`).
    func rxPackets(_ link: String, in namespace: String) throws -> Int {
        let result = try Command.run(["ip", "-n", namespace, "-s", "-j", "link", "show", "dev", link])
        struct Entry: Decodable {
            struct Stats: Decodable { struct Dir: Decodable { var packets: Int }; var rx: Dir }
            var stats64: Stats
        }
        guard result.succeeded, let entry = try JSONDecoder().decode([Entry].self, from: Data(result.stdout.utf8)).first
        else { throw FixtureError(message: "\(result.commandLine): \(result.diagnostic)") }
        return entry.stats64.rx.packets
    }
}

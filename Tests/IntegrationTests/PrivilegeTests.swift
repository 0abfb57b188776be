// vnicd without root: the capability set of contrib/vnicd.service is enough to
// forward, and without any one of them vnicd stops with one line naming it.
// vnicd runs in the lab's host namespace as uid/gid 65534 through util-linux
// `setpriv` (the capabilities as ambient ones, the bounding set cut to them, no
// new privileges: what systemd's User=, AmbientCapabilities=,
// CapabilityBoundingSet= and NoNewPrivileges= do) under `prlimit --memlock`
// at 8 MiB, so that the UMEMs (32 MiB per worker) need CAP_IPC_LOCK whatever
// limit the test runner has. In a mount namespace of its own, with /sys/fs/bpf
// a plain directory (a fresh host), the unit's own ExecStartPre= lines run
// first, as root: they mount a bpffs and give the service user its directory.
import Foundation
import VnicCore
import VnicPlatform
import VnicLabKit
import XCTest

final class PrivilegeTests: XCTestCase {
    /// The unprivileged user vnicd runs as (nobody/nogroup on Debian; only numbers are used).
    static let uid = 65534, gid = 65534
    /// The service's capabilities, as setpriv names them, with the kernel's names and bits.
    static let capabilities: [(setpriv: String, name: String, bit: UInt64)] = [
        ("net_admin", "CAP_NET_ADMIN", 12), ("bpf", "CAP_BPF", 39),
        ("net_raw", "CAP_NET_RAW", 13), ("ipc_lock", "CAP_IPC_LOCK", 14),
    ]
    static let memlockBytes = 8 << 20

    /// The contract's lab with one VNIC per VM, and a copy of vnicd and its BPF
    /// object in the lab's scratch directory, which (with the database) belongs to
    /// the unprivileged user: the build directory may not be reachable by it.
    private func makeLab() throws -> (LabFixture, vnicd: String) {
        for tool in ["setpriv", "prlimit"] where Command.find(tool) == nil {
            throw TestEnvironment.unavailable("\(tool) (util-linux) not found")
        }
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        try lab.createVNICs()
        let fm = FileManager.default
        let vnicd = lab.path("vnicd")
        let source = try lab.bin("vnicd")
        let object = URL(fileURLWithPath: source).deletingLastPathComponent().appendingPathComponent("vnic.bpf.o").path
        guard fm.fileExists(atPath: object) else {
            throw TestEnvironment.unavailable("vnic.bpf.o not found beside \(source) (run make build)")
        }
        try fm.copyItem(atPath: source, toPath: vnicd)
        try fm.copyItem(atPath: object, toPath: lab.path("vnic.bpf.o"))
        for path in [lab.directory.path] + (try fm.contentsOfDirectory(atPath: lab.directory.path)).map(lab.path) {
            guard chown(path, uid_t(Self.uid), gid_t(Self.gid)) == 0 else {
                throw FixtureError(message: "chown \(path): \(String(cString: strerror(errno)))")
            }
        }
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: lab.directory.path)
        return (lab, vnicd)
    }

    /// A host where nothing mounted a bpffs: /sys/fs/bpf is a plain directory.
    static let noBPFFS = "mount -t tmpfs -o size=64k,mode=0755 none /sys/fs/bpf"
    /// The unit's own ExecStartPre= lines (contrib/vnicd.service), as systemd runs
    /// them with "+" (as root, before the sandbox), on such a host; user vnic is
    /// the test's uid/gid. They mount a bpffs of this mount namespace's own.
    static var unitBPFFS: String {
        get throws {
            let unit = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("contrib/vnicd.service"),
                                  encoding: .utf8)
            let steps = unit.split(separator: "\n").filter { $0.hasPrefix("ExecStartPre=+") }.map {
                $0.dropFirst("ExecStartPre=+".count).replacingOccurrences(of: "$$", with: "$")
                    .replacingOccurrences(of: "%%", with: "%").replacingOccurrences(of: "-o vnic -g vnic", with: "-o \(uid) -g \(gid)")
            }
            guard steps.count >= 2 else { throw FixtureError(message: "contrib/vnicd.service has no ExecStartPre=+ lines") }
            return ([noBPFFS] + steps).joined(separator: " && ")
        }
    }

    /// The command line that runs vnicd as the unprivileged user with exactly `caps`,
    /// in a mount namespace of its own after `setup` ran there as root.
    private func unprivileged(_ vnicd: String, _ lab: LabFixture, caps: [String], setup: String? = nil) throws -> [String] {
        let setup = try setup ?? Self.unitBPFFS
        let set = (["-all"] + caps.map { "+" + $0 }).joined(separator: ",")
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", setup + " && exec \"$@\"", "sh",
                "prlimit", "--memlock=\(Self.memlockBytes):\(Self.memlockBytes)", "--",
                "setpriv", "--reuid=\(Self.uid)", "--regid=\(Self.gid)", "--clear-groups",
                "--inh-caps=\(set)", "--ambient-caps=\(set)", "--bounding-set=\(set)", "--no-new-privs",
                vnicd, "--db", lab.database]
    }

    /// With the service's four capabilities and nothing else, as uid 65534, vnicd
    /// brings both VNICs up and forwards: wire to VM, VM to wire, VM to VM.
    func testForwardsWithTheServiceCapabilitiesOnly() throws {
        let (lab, vnicd) = try makeLab()
        let t = lab.topology
        let cmd = try lab.start(in: t.hostNamespace, try unprivileged(vnicd, lab, caps: Self.capabilities.map(\.setpriv)))
        let deadline = Date().addingTimeInterval(10)
        while cmd.isRunning && Date() < deadline {
            if let s = lab.status(), s.vnics.count == t.vms, s.vnics.values.allSatisfy({ $0.state == "up" }) { break }
            usleep(50_000)
        }
        guard cmd.isRunning, let s = lab.status(), s.vnics.values.allSatisfy({ $0.state == "up" }) else {
            let r = cmd.terminate()
            return XCTFail("unprivileged vnicd did not bring every VNIC up: \(r.stderr) \(cmd.stderrSoFar)")
        }
        // nsenter, unshare, sh, prlimit and setpriv exec in turn: the pid is vnicd's.
        let proc = try String(contentsOfFile: "/proc/\(cmd.pid)/status", encoding: .utf8)
        func field(_ name: String) -> String {
            proc.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) } ?? ""
        }
        XCTAssertEqual(field("Uid").split(separator: "\t").first.map(String.init), "\(Self.uid)")
        let expected = Self.capabilities.reduce(UInt64(0)) { $0 | (1 << $1.bit) }
        XCTAssertEqual(UInt64(field("CapEff"), radix: 16), expected, "vnicd's effective capabilities")
        let owner = try FileManager.default.attributesOfItem(atPath: lab.database + "-status.json")[.ownerAccountID] as? Int
        XCTAssertEqual(owner, Self.uid, "the status file is written by the unprivileged vnicd")
        // It pinned its classifier in the bpffs prepared for it (seen in its mount namespace).
        let pins = "/proc/\(cmd.pid)/root" + (PinLayout.directory(netns: "/run/netns/" + t.hostNamespace, uplink: t.uplink) ?? "?")
        XCTAssertTrue(FileManager.default.fileExists(atPath: pins + "/link-uplink-native"), "not pinned: \(PinLayout.entries(pins))")

        for vm in t.vmNumbers {
            var r = try lab.run(in: t.wireNamespace, "ping", "-c", "2", "-i", "0.2", "-W", "2", "\(t.vmIP(vm).address)")
            XCTAssertTrue(r.succeeded, "wire -> vm\(vm): \(r.stdout) \(r.stderr)")
            r = try lab.run(in: t.vmNamespace(vm), "ping", "-c", "2", "-i", "0.2", "-W", "2", "\(t.wireIP.address)")
            XCTAssertTrue(r.succeeded, "vm\(vm) -> wire: \(r.stdout) \(r.stderr)")
        }
        let r = try lab.run(in: t.vmNamespace(1), "ping", "-c", "2", "-i", "0.2", "-W", "2", "\(t.vmIP(2).address)")
        XCTAssertTrue(r.succeeded, "vm1 -> vm2: \(r.stdout) \(r.stderr)")
        let stopped = cmd.terminate()
        XCTAssertEqual(stopped.status, 0, "vnicd stops cleanly on SIGTERM: \(stopped.stderr)")
    }

    /// With no bpffs at /sys/fs/bpf and no CAP_SYS_ADMIN to mount one, vnicd does
    /// not start without its pins: one line names the path and the capability.
    func testWithoutABPFFSVnicdSaysWhatIsMissing() throws {
        let (lab, vnicd) = try makeLab()
        let caps = Self.capabilities.map(\.setpriv)
        let r = try lab.run(in: lab.topology.hostNamespace, try unprivileged(vnicd, lab, caps: caps, setup: Self.noBPFFS),
                            timeout: .seconds(30))
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertEqual(r.status, 1, r.diagnostic)
        XCTAssertTrue(last.hasPrefix("vnicd: mount a bpf file system at /sys/fs/bpf"), last)
        XCTAssertTrue(last.contains("CAP_SYS_ADMIN is missing"), last)
        XCTAssertTrue(last.contains("--no-pin"), last)
        // --no-pin: it runs, unpinned.
        let cmd = try lab.start(in: lab.topology.hostNamespace,
                                try unprivileged(vnicd, lab, caps: caps, setup: Self.noBPFFS) + ["--no-pin"])
        let deadline = Date().addingTimeInterval(10)
        while cmd.isRunning && Date() < deadline && lab.status()?.vnics.values.allSatisfy({ $0.state == "up" }) != true {
            usleep(50_000)
        }
        XCTAssertTrue(cmd.isRunning, cmd.stderrSoFar)
        XCTAssertEqual(lab.status()?.vnics.values.filter { $0.state == "up" }.count, 2, cmd.stderrSoFar)
        XCTAssertEqual(cmd.terminate().status, 0)
    }

    /// Without any one of the four, vnicd exits 1 and its last line names the one missing.
    func testEachMissingCapabilityIsNamed() throws {
        let (lab, vnicd) = try makeLab()
        for left in Self.capabilities {
            let caps = Self.capabilities.filter { $0.name != left.name }.map(\.setpriv)
            let r = try lab.run(in: lab.topology.hostNamespace, try unprivileged(vnicd, lab, caps: caps), timeout: .seconds(30))
            let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
            XCTAssertEqual(r.status, 1, "without \(left.name): \(r.diagnostic)")
            XCTAssertTrue(last.hasPrefix("vnicd: "), "without \(left.name): \(last)")
            XCTAssertTrue(last.contains("\(left.name) is missing"), "without \(left.name), the message names it: \(last)")
            for other in Self.capabilities where other.name != left.name {
                XCTAssertFalse(last.contains("\(other.name) is missing"), "without \(left.name): \(last)")
            }
        }
    }
}

// `vnicadm check -l LINK` against the real kernel: what an operator looks at
// before starting vnicd. In a lab's host namespace the uplink (a 2-queue veth)
// is ready: 2 queues, native XDP, AF_XDP in copy mode, bpffs; a link that does
// not exist, an XDP program already attached and a capability dropped (setpriv)
// each FAIL with their fix and exit 1; no -l is a usage error (exit 2).
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class CheckIntegrationTests: XCTestCase {
    /// `vnicadm check ARGS` in the lab's host namespace, optionally under `wrapper` (setpriv ...).
    func check(_ lab: LabFixture, _ args: [String], wrapper: [String] = []) throws -> CommandResult {
        try lab.run(in: lab.topology.hostNamespace, wrapper + [try lab.bin("vnicadm"), "check"] + args)
    }

    /// The items of a `--json` report, by name.
    func items(_ r: CommandResult, file: StaticString = #filePath, line: UInt = #line) throws -> [String: [String: String]] {
        let rows = try JSONDecoder().decode([[String: String?]].self, from: Data(r.stdout.utf8))
        var byName: [String: [String: String]] = [:]
        for row in rows {
            let item = row["item"].flatMap { $0 } ?? ""
            byName[item] = row.compactMapValues { $0 }
        }
        return byName
    }

    func testLabUplinkIsReady() throws {
        let lab = try LabFixture(test: self, vms: 1, queues: 2)
        let uplink = lab.topology.uplink

        let human = try check(lab, ["-l", uplink])
        XCTAssertEqual(human.status, 0, human.diagnostic)
        XCTAssertTrue(human.stdout.hasPrefix("ITEM"), human.stdout)
        XCTAssertFalse(human.stdout.contains("FAIL"), human.stdout)

        let r = try check(lab, ["-l", uplink, "--json"])
        XCTAssertEqual(r.status, 0, r.diagnostic)
        let items = try items(r)
        XCTAssertEqual(items["link"]?["verdict"], "ok")
        XCTAssertEqual(items["queues"]?["verdict"], "ok")
        XCTAssertTrue(items["queues"]?["detail"]?.hasPrefix("2 rx, 2 tx") ?? false, "\(items["queues"] ?? [:])")
        XCTAssertEqual(items["xdp"]?["verdict"], "ok")
        XCTAssertTrue(items["xdp"]?["detail"]?.hasPrefix("native") ?? false, "\(items["xdp"] ?? [:])")
        XCTAssertEqual(items["xdp-program"]?["detail"], "none attached")
        XCTAssertTrue(items["af-xdp"]?["detail"]?.hasPrefix("copy mode") ?? false, "\(items["af-xdp"] ?? [:])")
        XCTAssertTrue(items["af-xdp"]?["detail"]?.contains("no zero-copy") ?? false, "veth has no AF_XDP zero-copy")
        XCTAssertEqual(items["bpffs"]?["verdict"], "ok", "bpffs must be mounted at /sys/fs/bpf")
        XCTAssertEqual(items["capabilities"]?["verdict"], "ok", "tests run as root")
        XCTAssertEqual(items["memlock"]?["verdict"], "ok")

        // Parseable: item:verdict per line, every one ok here.
        let p = try check(lab, ["-l", uplink, "-p", "-o", "item,verdict"])
        XCTAssertEqual(p.status, 0, p.diagnostic)
        XCTAssertTrue(p.stdout.split(separator: "\n").contains("queues:ok"), p.stdout)
    }

    func testMissingLinkFailsWithItsFix() throws {
        let lab = try LabFixture(test: self, vms: 1, queues: 1)
        let r = try check(lab, ["-l", "nosuchif"])
        XCTAssertEqual(r.status, 1, r.diagnostic)
        let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("link") }.map(String.init) ?? ""
        XCTAssertTrue(line.contains("FAIL") && line.contains("nosuchif"), r.stdout)
        XCTAssertTrue(r.stdout.contains("fix: ") && r.stdout.contains("vnicadm check -l nosuchif"), r.stdout)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("nosuchif"), r.stderr)
    }

    func testAttachedProgramFails() throws {
        let lab = try LabFixture(test: self, vms: 1, queues: 1)
        // vnicd holds the uplink through a bpf_link: a second one could not attach.
        try lab.createVNICs()
        let vnicd = try lab.startVnicd()
        let r = try check(lab, ["-l", lab.topology.uplink, "--json"])
        XCTAssertEqual(r.status, 1, r.diagnostic)
        let item = try items(r)["xdp-program"] ?? [:]
        XCTAssertEqual(item["verdict"], "FAIL", "\(item)")
        XCTAssertTrue(item["fix"]?.contains("xdpdrv off") ?? false, "\(item)")
        _ = vnicd.terminate()
    }

    func testDroppedCapabilityFails() throws {
        let lab = try LabFixture(test: self, vms: 1, queues: 2)
        guard Command.find("setpriv") != nil else { throw TestEnvironment.unavailable("setpriv (util-linux) not found") }
        // Root without CAP_NET_RAW (nothing stands in for it), nor CAP_NET_ADMIN and
        // CAP_SYS_ADMIN (which would stand in for CAP_NET_ADMIN).
        let drop = ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-net_raw,-net_admin,-sys_admin", "--"]
        let r = try check(lab, ["-l", lab.topology.uplink, "-p", "-o", "item,verdict,detail,fix"], wrapper: drop)
        XCTAssertEqual(r.status, 1, r.diagnostic)
        let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("capabilities:") }.map(String.init) ?? ""
        XCTAssertTrue(line.hasPrefix("capabilities:FAIL:"), r.stdout)
        XCTAssertTrue(line.contains("CAP_NET_RAW") && line.contains("CAP_NET_ADMIN"), line)
        XCTAssertTrue(line.contains("--ambient-caps=+net_admin,+net_raw"), line)
        XCTAssertTrue(r.stderr.contains("capabilities"), r.stderr)
        // Reading the link needs none of them: the link's items are still ok.
        XCTAssertTrue(r.stdout.contains("queues:ok:"), r.stdout)
    }

    func testUsageErrors() throws {
        let vnicadm = try TestEnvironment.binary("vnicadm")
        let missing = try Command.run([vnicadm, "check"])
        XCTAssertEqual(missing.status, 2, missing.diagnostic)
        XCTAssertTrue(missing.stderr.contains("-l"), missing.stderr)
        XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, missing.stderr)
        let long = try Command.run([vnicadm, "check", "-l", "a-name-longer-than-15"])
        XCTAssertEqual(long.status, 2, long.diagnostic)
        XCTAssertTrue(long.stderr.contains("a-name-longer-than-15"), long.stderr)
        let field = try Command.run([vnicadm, "check", "-l", "lo", "-p", "-o", "bogus"])
        XCTAssertEqual(field.status, 2, field.diagnostic)
    }
}

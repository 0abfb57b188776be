// vnic-cni driven exactly as a container runtime drives a CNI plugin: the
// CNI_* variables, the network config on stdin, host-local IPAM from Debian's
// containernetworking-plugins, namespaces made by the test as the containers'.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class CNITests: XCTestCase {
    static let cniPath = "/usr/lib/cni"
    static let containers = 20

    struct Plugin {
        let lab: LabFixture
        let binary: String
        let dataDir: String
        var config: [String: Any] {
            ["cniVersion": "1.0.0", "name": "vnicnet", "type": "vnic-cni", "uplink": lab.topology.uplink,
             "db": lab.database, "protection": "mac-nospoof,ip-nospoof",
             "ipam": ["type": "host-local", "dataDir": dataDir,
                      "ranges": [[["subnet": "10.77.0.0/24", "rangeStart": "10.77.0.100", "rangeEnd": "10.77.0.199",
                                   "gateway": "10.77.0.1"]]]] as [String: Any]]
        }

        /// Runs the plugin in the host namespace (where vnicd runs): its status and stdout.
        func run(_ command: String, id: String, netns: String, config: Data) throws -> CommandResult {
            let env = ["CNI_COMMAND": command, "CNI_CONTAINERID": id, "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
                       "CNI_PATH": CNITests.cniPath, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
            let input = FileManager.default.temporaryDirectory.appendingPathComponent("cni-\(id)-\(command).json")
            try config.write(to: input)
            defer { try? FileManager.default.removeItem(at: input) }
            let envArgs = env.map { "\($0.key)=\($0.value)" }.sorted()
            return try inNamespace(lab.topology.hostNamespace,
                                   ["env", "-i"] + envArgs + ["sh", "-c", "exec \"$0\" < \"$1\"", binary, input.path],
                                   timeout: .seconds(30))
        }
        func run(_ command: String, id: String, netns: String, extra: [String: Any] = [:]) throws -> CommandResult {
            try run(command, id: id, netns: netns,
                    config: JSONSerialization.data(withJSONObject: config.merging(extra) { _, b in b }))
        }
    }

    private func errorCode(_ r: CommandResult) -> Int? {
        ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any])?["code"] as? Int
    }

    func testRuntimeLifecycleOfTwentyContainers() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.cniPath + "/host-local") else {
            throw TestEnvironment.unavailable("\(Self.cniPath)/host-local not found (install the Debian package containernetworking-plugins)")
        }
        let lab = try LabFixture(test: self, vms: 1, queues: 2)
        let t = lab.topology
        try lab.createVNICs()
        _ = try lab.startVnicd(["--queues", "2"])
        let plugin = Plugin(lab: lab, binary: try lab.bin("vnic-cni"), dataDir: lab.path("ipam"))
        // The containers' namespaces, named P-vmN so that the lab's teardown removes them too.
        let numbers = (2...(Self.containers + 1))
        for i in numbers { XCTAssertTrue(try Command.run(["ip", "netns", "add", t.vmNamespace(i)]).succeeded) }
        func netns(_ i: Int) -> String { "/run/netns/\(t.vmNamespace(i))" }

        let version = try plugin.run("VERSION", id: "x", netns: "", config: Data("{\"cniVersion\":\"1.0.0\"}".utf8))
        XCTAssertTrue(version.succeeded && version.stdout.contains("\"1.0.0\""), version.diagnostic)

        // ADD for every container.
        var results: [Int: [String: Any]] = [:], addresses: [Int: String] = [:]
        for i in numbers {
            let r = try plugin.run("ADD", id: "ctr\(i)", netns: netns(i))
            XCTAssertEqual(r.status, 0, "ADD ctr\(i): \(r.diagnostic)")
            guard let result = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any],
                  let ip = (result["ips"] as? [[String: Any]])?.first?["address"] as? String else { continue }
            XCTAssertEqual(result["cniVersion"] as? String, "1.0.0")
            results[i] = result
            addresses[i] = String(ip.split(separator: "/")[0])
        }
        XCTAssertEqual(Set(addresses.values).count, Self.containers, "host-local gave each its own address")
        let status = try lab.freshStatus()
        XCTAssertEqual(status.vnics.filter { $0.key.hasPrefix("cni-") && $0.value.state == "up" }.count, Self.containers)
        // The container's end keeps Linux's default offloads.
        let features = try lab.run(in: t.vmNamespace(2), "ethtool", "-k", "eth0").stdout
        XCTAssertTrue(features.contains("tx-checksumming: on"), features)

        // Each pings the wire and another container through vnicd.
        for i in numbers {
            let other = addresses[i == numbers.upperBound ? numbers.lowerBound : i + 1] ?? "?"
            for dst in [t.wireIP.address.description, other] {
                let p = try lab.run(in: t.vmNamespace(i), "ping", "-c", "1", "-W", "2", dst)
                XCTAssertTrue(p.succeeded, "container \(i) -> \(dst): \(p.diagnostic)")
            }
        }
        // Anti-spoof is on: a foreign address from container 2 is dropped.
        _ = try lab.run(in: t.vmNamespace(2), "ip", "addr", "add", "10.77.0.250/24", "dev", "eth0")
        _ = try lab.run(in: t.vmNamespace(2), "ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", "10.77.0.250", t.wireIP.address.description)
        usleep(300_000)
        let spoofed = try lab.freshStatus().vnics.filter { $0.key.hasPrefix("cni-") }.values.reduce(0) { $0 + ($1.drops["spoof-ip"] ?? 0) }
        XCTAssertGreaterThanOrEqual(spoofed, 3, "pings from a foreign address dropped as spoof-ip")
        _ = try lab.run(in: t.vmNamespace(2), "ip", "addr", "del", "10.77.0.250/24", "dev", "eth0")

        // CHECK passes with the ADD's result, then reports a VNIC deleted by hand.
        let prev = try XCTUnwrap(results[3])
        let check = try plugin.run("CHECK", id: "ctr3", netns: netns(3), extra: ["prevResult": prev])
        XCTAssertEqual(check.status, 0, check.diagnostic)
        let vnic3 = try XCTUnwrap(lab.vnicadm("show-vnic", "-p", "-o", "name,port").stdout.split(separator: "\n")
            .first { line in (prev["interfaces"] as? [[String: Any]])?.first?["name"].map { line.hasSuffix(":\($0)") } ?? false })
        try lab.vnicadm("delete-vnic", String(vnic3.split(separator: ":")[0]))
        let drift = try plugin.run("CHECK", id: "ctr3", netns: netns(3), extra: ["prevResult": prev])
        XCTAssertNotEqual(drift.status, 0)
        XCTAssertEqual(errorCode(drift), 100, drift.stdout)

        // Errors as the spec has them: bad JSON (6), a netns that does not exist (3).
        let bad = try plugin.run("ADD", id: "bad", netns: netns(2), config: Data("{not json".utf8))
        XCTAssertEqual(errorCode(bad), 6, bad.diagnostic)
        XCTAssertNotEqual(bad.status, 0)
        let missing = try plugin.run("ADD", id: "gone", netns: "/run/netns/\(lab.prefix)-nosuch")
        XCTAssertEqual(errorCode(missing), 3, missing.diagnostic)

        // DEL of all leaves no VNIC, veth or lease; a second DEL succeeds.
        for i in numbers {
            let r = try plugin.run("DEL", id: "ctr\(i)", netns: netns(i))
            XCTAssertEqual(r.status, 0, "DEL ctr\(i): \(r.diagnostic)")
        }
        let left = try lab.vnicadm("show-vnic", "-p", "-o", "name").stdout.split(separator: "\n").filter { $0.hasPrefix("cni-") }
        XCTAssertEqual(left, [], "no VNIC left")
        XCTAssertEqual(try lab.links(in: t.hostNamespace).map(\.name).filter { $0.hasPrefix("vc") }, [], "no veth left")
        let leases = (try? FileManager.default.contentsOfDirectory(atPath: plugin.dataDir + "/vnicnet")) ?? []
        XCTAssertEqual(leases.filter { $0.hasPrefix("10.") }, [], "no address left in host-local")
        let again = try plugin.run("DEL", id: "ctr2", netns: netns(2))
        XCTAssertEqual(again.status, 0, "a second DEL: \(again.diagnostic)")
    }
}

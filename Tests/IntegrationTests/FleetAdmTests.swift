// vnicadm --etcd ENDPOINTS --host HOST: the local subcommands on the fleet's
// desired state of HOST in etcd (a real 3-member cluster): same syntax,
// errors and exit codes; a batch is one etcd revision; hosts do not see each
// other's VNICs; a dead cluster is one line and exit 1.
import Foundation
import VnicConfig
import VnicCore
import VnicFleet
import VnicLabKit
import XCTest

final class FleetAdmTests: XCTestCase {
    func testTheLocalSubcommandsWorkOnAHostsVNICsInEtcd() throws {
        let cluster = try EtcdCluster(test: self)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        let vnicadm = try TestEnvironment.binary("vnicadm")
        func adm(_ host: String, _ args: String...) throws -> CommandResult {
            try Command.run([vnicadm, "--etcd", cluster.endpoints, "--host", host] + args)
        }
        var r = try adm("A", "create-vnic", "-l", "uplink0", "-m", "02:00:00:00:01:01", "--port", "vm1p", "-i", "10.77.0.11/24", "vnic1")
        XCTAssertTrue(r.succeeded, r.diagnostic)
        let stored = try XCTUnwrap(client.get(FleetSync.key(host: "A", vnic: "vnic1")))
        XCTAssertEqual(try VNICRecordCodec.decode(stored.value).ips.map(\.description), ["10.77.0.11/24"], "the record in etcd")
        r = try adm("A", "set", "vnic1", "mtu=1400")
        XCTAssertTrue(r.succeeded, r.diagnostic)
        XCTAssertTrue(r.stdout.contains("committed to the fleet"), r.stdout)
        r = try adm("A", "set-policy", "-p", "mtu=1280-9000", "vnic1")
        XCTAssertTrue(r.succeeded, r.diagnostic)
        r = try adm("A", "show-vnic", "-p", "-o", "mtu", "vnic1")
        XCTAssertEqual(r.stdout, "1400\n", r.diagnostic)
        XCTAssertTrue(try adm("A", "show-policy", "-p", "-o", "parameter,policy", "vnic1").stdout.contains("mtu:1280-9000\n"))

        // Errors and exit codes as the local ones.
        r = try adm("A", "create-vnic", "-l", "uplink0", "-m", "02:00:00:00:01:01", "--port", "vm2p", "vnic2")
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("mac 02:00:00:00:01:01 is already used by VNIC 'vnic1'"), r.stderr)
        XCTAssertEqual(try adm("A", "set", "vnic1", "mtu=abc").status, 2)
        XCTAssertEqual(try Command.run([vnicadm, "--etcd", cluster.endpoints, "show-vnic"]).status, 2, "--etcd without --host")
        XCTAssertEqual(try Command.run([vnicadm, "--etcd", "nohost", "--host", "A", "show-vnic"]).status, 2)

        // A batch is one transaction: one etcd revision.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-batch-\(getpid()).txt").path
        try "create-vnic -l uplink0 -m 02:00:00:00:01:05 --port vm5p vnic5\ncreate-vnic -l uplink0 -m 02:00:00:00:01:06 --port vm6p vnic6\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        r = try adm("A", "batch", "-f", file)
        XCTAssertTrue(r.succeeded, r.diagnostic)
        let five = try XCTUnwrap(client.get(FleetSync.key(host: "A", vnic: "vnic5"))).modRevision
        XCTAssertEqual(try client.get(FleetSync.key(host: "A", vnic: "vnic6"))?.modRevision, five)

        // Hosts are apart; a delete deletes the key.
        XCTAssertEqual(try adm("B", "show-vnic", "-p", "-o", "link").stdout, "")
        r = try adm("A", "delete-vnic", "vnic5")
        XCTAssertTrue(r.succeeded, r.diagnostic)
        XCTAssertEqual(try client.list(prefix: FleetSync.vnicsPrefix(host: "A")).kvs.map(\.key),
                       ["vnic1", "vnic6"].map { FleetSync.key(host: "A", vnic: $0) })

        for i in cluster.members.indices { cluster.kill(i) }
        r = try adm("A", "show-vnic")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("vnicadm: etcd unreachable"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one line")
    }
}

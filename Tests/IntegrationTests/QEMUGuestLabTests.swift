// A lab with a real QEMU guest on a tap port (`vnic-lab up --vms 2 --qemu 1`), as
// libvirt attaches one: the guest boots from scripts/guest-image.sh's image, its
// eth0 has the contract's MAC and address, commands run over its console with
// their exit status, and stopping and starting it removes and remakes the tap
// (a new ifindex). No vnicd here: these are the lab's own guarantees.
//
// Needs, besides a lab: qemu-system-x86, linux-image-amd64, busybox-static, cpio
// and a built vnic-guest (CI=true: a missing one fails the test, else it skips).
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class QEMUGuestLabTests: XCTestCase {

    func testGuestOnATapBootsRunsCommandsStopsAndStartsAgain() throws {
        let clock = ContinuousClock(), begin = clock.now
        let lab = try LabFixture(test: self, vms: 2, qemu: 1)
        let t = lab.topology, p = lab.prefix
        print("QEMUGuestLabTests: vnic-lab up with a guest took \(clock.now - begin)")

        // VM 1 is a namespace on vm1p, VM 2 the guest on vm2t: no namespace of its own.
        XCTAssertEqual(try lab.existingNamespaces(), ["\(p)-host", "\(p)-vm1", "\(p)-wire"])
        XCTAssertEqual([t.port(1), t.port(2)], ["vm1p", "vm2t"])
        let hostLinks = try lab.links(in: t.hostNamespace)
        XCTAssertEqual(Set(hostLinks.map(\.name)), ["lo", "uplink0", "vm1p", "vm2t"])

        // The tap: QEMU's (not persistent), the port MAC, up, and carrier: a guest is attached.
        let tap = try lab.link("vm2t", in: t.hostNamespace)
        XCTAssertEqual(tap.kind, "tun")
        XCTAssertEqual(tap.mac, t.portMAC(2))
        XCTAssertTrue(tap.isAdminUp, "\(tap.flags)")
        XCTAssertTrue(tap.flags.contains("LOWER_UP") && !tap.flags.contains("NO-CARRIER"), "no carrier: \(tap.flags)")
        let details = try lab.run(in: t.hostNamespace, "ip", "-d", "link", "show", "dev", "vm2t")
        XCTAssertTrue(details.stdout.contains("tun type tap") && details.stdout.contains("persist off"), details.stdout)

        // QEMU runs inside P-host (its network namespace is the lab's, not the root's).
        let guest = try QEMUGuest.load(prefix: p, vm: 2)
        let pid = try XCTUnwrap(guest.pid, "no QEMU pid for vm2")
        XCTAssertEqual(try netnsInode("/proc/\(pid)/ns/net"), try netnsInode("/run/netns/\(t.hostNamespace)"))

        // Commands over the console, through the CLI: output and exit status.
        let cmdline = try lab.lab("guest", "exec", "2", "--", "cat", "/proc/cmdline")
        XCTAssertEqual(cmdline.status, 0, cmdline.stderr)
        XCTAssertTrue(cmdline.stdout.contains("vnic.ip=10.77.0.12/24 vnic.gw=10.77.0.1"), cmdline.stdout)
        let addr = try lab.lab("guest", "exec", "vm2", "--", "ip", "-j", "addr", "show", "dev", "eth0")
        XCTAssertEqual(addr.status, 0, addr.stderr)
        let eth0 = try XCTUnwrap(try LinkState.decode(ipJSON: addr.stdout).first, addr.stdout)
        XCTAssertEqual(eth0.name, "eth0")
        XCTAssertEqual(eth0.mac, t.vmMAC(2))
        XCTAssertEqual(eth0.address, "02:00:00:00:01:02")
        XCTAssertEqual(eth0.ipv4, [t.vmIP(2)])
        XCTAssertEqual(eth0.ipv4.map(\.description), ["10.77.0.12/24"])
        XCTAssertTrue(eth0.isAdminUp)
        let exit3 = try lab.lab("guest", "exec", "2", "--", "exit", "3")
        XCTAssertEqual(exit3.status, 3, exit3.stderr)
        XCTAssertEqual(exit3.stdout, "")
        let route = try lab.lab("guest", "exec", "2", "--", "ip", "route", "show", "default")
        XCTAssertTrue(route.stdout.contains("default via 10.77.0.1 dev eth0"), route.stdout)

        // The API: stderr in the output, no newline added, any text (quotes, $, newlines) travels intact.
        let mixed = try guest.exec("echo out; echo err >&2; printf 'a \"b\" $HOME\\nlast'", timeout: .seconds(30))
        XCTAssertEqual(mixed, GuestExecResult(status: 0, output: "out\nerr\na \"b\" $HOME\nlast"))
        let agent = try guest.exec("vnic-guest --help", timeout: .seconds(60))
        XCTAssertEqual(agent.status, 0, agent.output)
        XCTAssertTrue(agent.output.contains("USAGE: vnic-guest"), agent.output)
        // Past the timeout the command is interrupted (^C) and the console stays usable.
        XCTAssertThrowsError(try guest.exec("sleep 60", timeout: .seconds(2))) { error in
            XCTAssertTrue("\(error)".contains("timed out"), "\(error)")
        }
        XCTAssertEqual(try guest.exec("echo still here", timeout: .seconds(30)).output, "still here\n")

        // status shows the guest running, with its pid and tap.
        let json = try lab.lab("status", "--json")
        XCTAssertEqual(json.status, 0, json.stderr)
        let status = try JSONDecoder().decode(LabStatus.self, from: Data(json.stdout.utf8))
        let shown = try XCTUnwrap(status.guests?.first, json.stdout)
        XCTAssertEqual([shown.vm, shown.tapIfindex], [2, tap.ifindex])
        XCTAssertEqual(shown.pid, pid)
        XCTAssertTrue(shown.running)
        XCTAssertEqual(status.qemu, 1)

        // stop: QEMU exits and its tap goes with it.
        let stop = try lab.lab("guest", "stop", "2")
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertFalse(try lab.links(in: t.hostNamespace).contains { $0.name == "vm2t" }, "vm2t outlived its QEMU")
        XCTAssertFalse(guest.isRunning)
        let stopped = try lab.lab("guest", "exec", "2", "--", "true")
        XCTAssertEqual(stopped.status, 1)
        XCTAssertTrue(stopped.stderr.contains("not running"), stopped.stderr)
        let again = try lab.lab("status")
        XCTAssertTrue(again.stdout.contains("stopped"), again.stdout)

        // start: a new QEMU makes a new tap (a new ifindex), the guest is configured again.
        let bootStart = clock.now
        let start = try lab.lab("guest", "start", "2", timeout: .seconds(180))
        XCTAssertEqual(start.status, 0, start.stderr)
        print("QEMUGuestLabTests: guest start took \(clock.now - bootStart): \(start.stdout)")
        let newTap = try lab.link("vm2t", in: t.hostNamespace)
        XCTAssertNotEqual(newTap.ifindex, tap.ifindex, "the tap kept its ifindex: it is persistent")
        XCTAssertTrue(newTap.flags.contains("LOWER_UP"), "\(newTap.flags)")
        XCTAssertEqual(newTap.mac, t.portMAC(2))
        let newPid = try XCTUnwrap(guest.pid)
        XCTAssertNotEqual(newPid, pid)
        let after = try guest.exec("ip -j addr show dev eth0", timeout: .seconds(30))
        XCTAssertEqual(try LinkState.decode(ipJSON: after.output).first?.ipv4, [t.vmIP(2)], after.output)

        // down: no QEMU of the lab left, no namespace, no run directory.
        let down = try lab.lab("down")
        XCTAssertEqual(down.status, 0, down.stderr)
        XCTAssertTrue(down.stdout.contains("stopped 1 guest (vm2)"), down.stdout)
        XCTAssertEqual(try lab.existingNamespaces(), [])
        XCTAssertEqual(qemuProcesses(of: p), [], "QEMU processes of lab \(p) left after down")
        XCTAssertFalse(FileManager.default.fileExists(atPath: QEMUGuest.runDirectory(prefix: p)))
    }

    // MARK: Helpers

    private func netnsInode(_ path: String) throws -> UInt64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw FixtureError(message: "stat \(path): \(String(cString: strerror(errno)))") }
        return UInt64(st.st_ino)
    }

    /// PIDs of processes whose command line names the lab's run directory (its QEMUs).
    private func qemuProcesses(of prefix: String) -> [Int32] {
        let dir = QEMUGuest.runDirectory(prefix: prefix) + "/"
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        return pids.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data, as: UTF8.self).contains(dir)
        }
    }
}

// make demo's script, run as a user runs it (scripts/demo.sh with the release
// binaries), in its own namespace prefix: the story's key lines, and that it
// leaves nothing behind, also when interrupted.
import Foundation
import VnicLabKit
import XCTest

final class DemoTests: XCTestCase {
    private func demo(_ lab: LabFixture) throws -> RunningCommand {
        let script = TestEnvironment.packageRoot.appendingPathComponent("scripts/demo.sh").path
        var env = ProcessInfo.processInfo.environment
        env["DEMO_PREFIX"] = lab.topology.prefix
        return try Command.start(["bash", script, TestEnvironment.binDirectory], environment: env)
    }

    private func namespaces(_ prefix: String) throws -> [String] {
        let r = try Command.run(["ip", "netns", "list"])
        return r.stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) }.filter { $0.hasPrefix(prefix + "-") }
    }

    private func line(_ out: String, _ start: String) -> String? {
        out.split(separator: "\n").first { $0.hasPrefix(start) }.map(String.init)
    }

    func testDemoTellsTheStory() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 2, up: false)
        let r = try demo(lab).wait(timeout: .seconds(300))
        XCTAssertEqual(r.status, 0, r.diagnostic)
        let out = r.stdout
        XCTAssertEqual(line(out, "RESULT spoof blocked:"), "RESULT spoof blocked: 500 of 500 frames with a forged source MAC dropped (counter spoof-mac)", out)
        XCTAssertNotNil(line(out, "RESULT request accepted: VM1 asked for ip=10.77.0.21 and got it"), out)
        XCTAssertNotNil(line(out, "RESULT request denied: VM1 asked for ip=10.77.0.99"), out)
        XCTAssertEqual(line(out, "RESULT change applied in the guest:"),
                       "RESULT change applied in the guest: vnicadm set vnic1 mtu=1400, VM1's interface MTU is now 1400", out)
        XCTAssertTrue(out.contains("vnic1 mtu=1400: guest acknowledged"), out)
        // The audit log as the demo prints it: the accepted and the denied request.
        XCTAssertTrue(out.contains("10.77.0.21/24                 accepted"), out)
        XCTAssertTrue(out.contains("denied    policy ip=10.77.0.20-10.77.0.29 does not allow it"), out)
        let traffic = try XCTUnwrap(line(out, "RESULT traffic: VM1 received "), out)
        let numbers = traffic.split(separator: " ").compactMap { Int($0) }
        XCTAssertEqual(numbers.count, 3, traffic)   // received, of, pps
        XCTAssertGreaterThanOrEqual(numbers.first ?? 0, 95_000, traffic)
        XCTAssertGreaterThan(numbers.last ?? 0, 0, traffic)
        XCTAssertTrue(out.contains("vnic_drops_total{vnic=\"vnic1\",reason=\"spoof-mac\"} 500"), "metrics shown: \(out)")
        XCTAssertNotNil(line(out, "RESULT cleanup: lab removed, nothing left behind"), out)
        XCTAssertEqual(try namespaces(lab.topology.prefix), [])
    }

    func testInterruptedDemoLeavesNothingBehind() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 2, up: false)
        let running = try demo(lab)
        let deadline = Date().addingTimeInterval(120)
        while !running.stdoutSoFar.contains("== 5.") && running.isRunning && Date() < deadline { usleep(100_000) }
        XCTAssertTrue(running.isRunning, "the demo ended before step 5: \(running.stdoutSoFar) \(running.stderrSoFar)")
        XCTAssertFalse(try namespaces(lab.topology.prefix).isEmpty, "the lab is up while the demo runs")
        running.signal(SIGINT)
        let r = running.wait(timeout: .seconds(60))
        XCTAssertEqual(r.status, 130, r.diagnostic)
        XCTAssertTrue(r.stdout.contains("interrupted: cleaning up"), r.stdout)
        XCTAssertEqual(try namespaces(lab.topology.prefix), [], "namespaces left after an interrupted demo")
        let left = try Command.run(["pgrep", "-f", "/run/netns/\(lab.topology.prefix)-"])
        XCTAssertNotEqual(left.status, 0, "processes left in the lab: \(left.stdout)")
    }
}

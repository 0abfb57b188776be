// What the dataplane tests share: a lab with one VNIC per VM, vnicd started in
// it and waited for, its published status, and vnic-pktgen sinks.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

extension LabFixture {
    /// The database of this lab's VNICs.
    var database: String { (databaseDirectory ?? directory).appendingPathComponent("vnic.db").path }

    /// Puts the database on tmpfs (/dev/shm), removed at teardown: for tests
    /// that time the control thread, so that the disk's flush of each commit
    /// (bench/protocol.sh measures it) is not what they measure.
    func useDatabaseOnTmpfs(_ test: XCTestCase) throws {
        let dir = URL(fileURLWithPath: "/dev/shm/vnic-it-\(prefix)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        databaseDirectory = dir
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    }

    /// Creates vnic1..vnicN in `database`, one per VM, as the contract's lab
    /// wants them (one `vnicadm batch`: one transaction however many).
    func createVNICs() throws {
        let t = topology
        let lines = t.vmNumbers.map { vm in
            "create-vnic -l \(t.uplink) -m \(t.vmMAC(vm)) --port \(t.port(vm)) -i \(t.vmIP(vm)) vnic\(vm)"
        }
        let file = path("create-vnics.txt")
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try Command.run([try bin("vnicadm"), "batch", "--db", database, "-f", file])
        guard r.succeeded else { throw FixtureError(message: "vnicadm batch (create vnic1..vnic\(t.vms)): \(r.diagnostic)") }
    }

    /// Runs vnicadm with `--db` of this lab; fails the test on a non-zero exit.
    @discardableResult
    func vnicadm(_ subcommand: String, _ arguments: String..., file: StaticString = #filePath, line: UInt = #line) throws -> CommandResult {
        let r = try Command.run([try bin("vnicadm"), subcommand, "--db", database] + arguments)
        XCTAssertTrue(r.succeeded, "vnicadm \(subcommand) \(arguments): \(r.diagnostic)", file: file, line: line)
        return r
    }

    /// Starts vnicd in the host namespace (through `wrapper`, a command that execs
    /// the rest, when given) and waits until every VNIC is up.
    func startVnicd(_ extra: [String] = [], wrapper: [String] = []) throws -> RunningCommand {
        let cmd = try start(in: topology.hostNamespace, wrapper + [try bin("vnicd"), "--db", database] + extra)
        let deadline = Date().addingTimeInterval(10)   // issue 15: 1,000 VNICs are up within 10 s
        while Date() < deadline {
            if let s = status(), s.vnics.count == topology.vms, s.vnics.values.allSatisfy({ $0.state == "up" }) {
                return cmd
            }
            if !cmd.isRunning { break }
            usleep(50_000)
        }
        let r = cmd.terminate()
        throw FixtureError(message: "vnicd did not bring every VNIC up: \(r.stderr) \(cmd.stderrSoFar)")
    }

    /// What vnicd published last, if anything.
    func status() -> RuntimeStatus? {
        guard let data = FileManager.default.contents(atPath: database + "-status.json") else { return nil }
        return try? JSONDecoder().decode(RuntimeStatus.self, from: data)
    }

    /// Waits for vnicd's next rewrite of its status (every 250 ms).
    func freshStatus() throws -> RuntimeStatus {
        let before = status()?.updated ?? 0
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline {
            if let s = status(), s.updated > before { return s }
            usleep(50_000)
        }
        throw FixtureError(message: "vnicd did not rewrite \(database)-status.json")
    }

    /// A vnic-pktgen sink on VM `vm`'s interface, ready when this returns.
    func startSink(vm: Int, seconds: Int) throws -> RunningCommand {
        try startSink(in: topology.vmNamespace(vm), interface: topology.vmInterface, seconds: seconds)
    }

    func startSink(in namespace: String, interface: String, seconds: Int) throws -> RunningCommand {
        let s = try start(in: namespace, try bin("vnic-pktgen"), "--sink", "-i", interface, "--duration", "\(seconds)", "--json")
        let deadline = Date().addingTimeInterval(5)
        while !s.stderrSoFar.contains("sink ready") && Date() < deadline { usleep(20_000) }
        return s
    }
}

/// A sink's JSON report.
struct SinkReport: Decodable {
    var received: Int
    var out_of_order: Int
    var bytes: Int
    var seconds: Double
    var first_arrival_ns: UInt64

    init(_ cmd: RunningCommand) throws {
        let r = cmd.wait(timeout: .seconds(30))
        guard r.succeeded, let line = r.stdout.split(separator: "\n").last else {
            throw FixtureError(message: "sink failed: \(r.diagnostic)")
        }
        self = try JSONDecoder().decode(SinkReport.self, from: Data(line.utf8))
    }
}

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// CPU share of each vnic-worker thread of `pid` over `seconds`, from /proc.
func workerCPU(pid: Int32, seconds: Double) throws -> [String: Double] {
    func sample() throws -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        let dir = "/proc/\(pid)/task"
        for tid in try FileManager.default.contentsOfDirectory(atPath: dir) {
            guard let comm = try? String(contentsOfFile: "\(dir)/\(tid)/comm", encoding: .utf8),
                  comm.hasPrefix("vnic-worker"),
                  let stat = try? String(contentsOfFile: "\(dir)/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let f = stat[stat.index(after: close)...].split(separator: " ")
            // fields after the name: state(0) ... utime(11) stime(12)
            out[comm.trimmingCharacters(in: .whitespacesAndNewlines)] = (UInt64(f[11]) ?? 0) + (UInt64(f[12]) ?? 0)
        }
        return out
    }
    let a = try sample()
    usleep(UInt32(seconds * 1_000_000))
    let b = try sample()
    let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
    return b.reduce(into: [:]) { r, kv in r[kv.key] = Double(kv.value &- (a[kv.key] ?? 0)) / hz / seconds }
}

// The configuration database through the real vnicadm binary: kill -9 during a
// batch (one transaction, and per line), concurrent writers, a read-only and a
// full database, the output of the show-* subcommands, and exit codes.
// No network namespaces: a scratch directory per test; the read-only test uses a
// private mount namespace (unshare -m) that disappears with its process.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class ConfigIntegrationTests: XCTestCase {
    var dir = ""
    var db: String { dir + "/vnic.db" }
    var vnicadm = ""

    override func setUpWithError() throws {
        vnicadm = try TestEnvironment.binary("vnicadm")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("vnic-cfg-it-\(getpid())-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let dir = dir
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// Runs `vnicadm SUBCOMMAND --db DB ARGS`.
    @discardableResult
    func adm(_ sub: String, _ args: String..., db: String? = nil, env: [String: String] = [:],
             timeout: Duration = .seconds(120)) throws -> CommandResult {
        try adm(sub, args, db: db, env: env, timeout: timeout)
    }

    func adm(_ sub: String, _ args: [String], db: String? = nil, env: [String: String] = [:],
             timeout: Duration = .seconds(120)) throws -> CommandResult {
        let environment = env.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(env) { $1 }
        return try Command.run([vnicadm, sub, "--db", db ?? self.db] + args, timeout: timeout, environment: environment)
    }

    /// Asserts success and returns stdout.
    @discardableResult
    func ok(_ r: CommandResult, file: StaticString = #filePath, line: UInt = #line) -> String {
        XCTAssertEqual(r.status, 0, "\(r.commandLine): \(r.diagnostic)", file: file, line: line)
        return r.stdout
    }

    /// Asserts exit `code` with exactly one line on stderr containing every fragment.
    func fails(_ r: CommandResult, _ code: Int32, _ fragments: String..., file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, code, "\(r.commandLine): \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "\(r.commandLine) printed: \(r.stderr)", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(r.stderr.contains(f), "\(r.commandLine): '\(r.stderr)' lacks '\(f)'", file: file, line: line)
        }
        XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump"), file: file, line: line)
    }

    // MARK: a batch of VNICs and how to check it

    /// VNIC i of a test batch: its create-vnic line and what must be stored for it.
    struct Expected {
        var name, mac, port, ip, maxbw, priority, allowed: String
        var line: String {
            "create-vnic -l uplink0 -m \(mac) --port \(port) -i \(ip) -p maxbw=\(maxbw),priority=\(priority),"
                + "protection=mac-nospoof,ip-nospoof,allowed-ips=\(allowed) \(name)"
        }
    }

    func expected(_ i: Int, group: Int = 1) -> Expected {
        Expected(name: "g\(group)v\(i)", mac: String(format: "02:00:%02x:00:%02x:%02x", group, i >> 8, i & 0xFF),
                 port: "g\(group)p\(i)", ip: "10.\(group).\(i >> 8).\(i & 0xFF)/8", maxbw: "\(i % 900 + 1)M",
                 priority: ["low", "medium", "high"][i % 3], allowed: "10.\(group).\(i >> 8).\(i & 0xFF),192.168.0.0/16")
    }

    func writeBatch(_ count: Int, group: Int = 1) throws -> String {
        let path = dir + "/batch-\(group).txt"
        let text = (1...count).map { expected($0, group: group).line }.joined(separator: "\n") + "\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The VNICs of `group` in the database, each checked to be wholly there:
    /// every field and property as its batch line said. Returns their numbers.
    func presentVNICs(group: Int = 1, db: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> [Int] {
        let vnics = ok(try adm("show-vnic", "-p", "-o", "name,mac,port,ip", db: db), file: file, line: line)
        let props = ok(try adm("show-linkprop", "-c", "-o", "link,property,value", db: db), file: file, line: line)
        var values: [String: [String: String]] = [:]
        for l in props.split(separator: "\n") {
            let f = Self.splitParseable(String(l))
            values[f[0], default: [:]][f[1]] = f[2]
        }
        var found: [Int] = []
        for l in vnics.split(separator: "\n") {
            let f = Self.splitParseable(String(l))
            guard f[0].hasPrefix("g\(group)v"), let i = Int(f[0].dropFirst("g\(group)v".count)) else { continue }
            let e = expected(i, group: group)
            XCTAssertEqual(f, [e.name, e.mac, e.port, e.ip], "VNIC \(e.name) is not wholly there", file: file, line: line)
            XCTAssertEqual(values[e.name], ["maxbw": e.maxbw, "priority": e.priority, "cpus": "",
                                            "protection": "mac-nospoof,ip-nospoof", "allowed-ips": e.allowed,
                                            "denied-requests": "drop", "dhcp": "off", "dhcp-lease": "3600", "ra-guard": "on", "ipv6-ra": "off"],
                           "properties of \(e.name)", file: file, line: line)
            found.append(i)
        }
        return found.sorted()
    }

    /// Splits a `-p -o` line at unescaped ':' and unescapes.
    static func splitParseable(_ line: String) -> [String] {
        var fields: [String] = [], cur = "", escaped = false
        for c in line {
            if escaped { cur.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == ":" {
                fields.append(cur); cur = ""
            } else { cur.append(c) }
        }
        fields.append(cur)
        return fields
    }

    /// Waits until `running` has written `marker` to stderr (or exited).
    func waitForStderr(_ running: RunningCommand, _ marker: String, timeout: TimeInterval = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if running.stderrSoFar.contains(marker) { return true }
            if !running.isRunning { return running.stderrSoFar.contains(marker) }
            usleep(500)
        }
        return false
    }

    // MARK: kill -9

    func testKillDuringABatchTransactionLeavesAllOrNothing() throws {
        let count = 6000
        let batch = try writeBatch(count)
        // Calibrate: how long the transaction itself takes (from "applying" to exit).
        let scratch = dir + "/scratch.db"
        let probe = try Command.start([vnicadm, "batch", "-v", "--db", scratch, "-f", batch])
        XCTAssertTrue(waitForStderr(probe, "applying"))
        let t0 = Date()
        XCTAssertTrue(probe.wait(timeout: .seconds(120)).succeeded, probe.stderrSoFar)
        let applySeconds = Date().timeIntervalSince(t0)
        XCTAssertEqual(ok(try adm("show-vnic", "-p", "-o", "name", db: scratch)).split(separator: "\n").count, count)

        // A database with VNICs of another group that must survive every kill untouched.
        ok(try adm("batch", "-f", try writeBatch(20, group: 2)))
        var killedMidway = 0
        for fraction in [0.1, 0.3, 0.5, 0.7, 0.9] {
            let run = try Command.start([vnicadm, "batch", "-v", "--db", db, "-f", batch])
            XCTAssertTrue(waitForStderr(run, "applying"), run.stderrSoFar)
            usleep(UInt32(applySeconds * fraction * 1_000_000))
            let wasRunning = run.isRunning
            run.signal(SIGKILL)
            let result = run.wait(timeout: .seconds(30))
            let present = try presentVNICs(group: 1)
            XCTAssertTrue(present.isEmpty || present == Array(1...count),
                          "after kill at \(fraction): \(present.count) of \(count) VNICs: not all or nothing")
            XCTAssertEqual(try presentVNICs(group: 2), Array(1...20), "the other VNICs are untouched")
            if wasRunning && result.status == 128 + SIGKILL && present.isEmpty { killedMidway += 1 }
            if !present.isEmpty {   // it committed before the kill: start over
                ok(try adm("batch", "-f", try writeDeleteBatch(count)))
            }
        }
        XCTAssertGreaterThan(killedMidway, 0, "no kill landed inside the transaction (apply took \(applySeconds) s)")
        // The writer lock a killed vnicadm held is free, and the indexes are intact:
        // a dead batch's MAC is free, a live VNIC's is not.
        ok(try adm("create-vnic", "-l", "uplink0", "-m", expected(1).mac, "fresh1"))
        fails(try adm("create-vnic", "-l", "uplink0", "-m", expected(5, group: 2).mac, "fresh2"), 2, "already used by VNIC 'g2v5'")
        fails(try adm("batch", "-f", batch), 2, "batch: line 1: mac \(expected(1).mac) is already used by VNIC 'fresh1'")
        ok(try adm("delete-vnic", "fresh1"))
        ok(try adm("batch", "-f", batch))
        XCTAssertEqual(try presentVNICs(group: 1), Array(1...count))
    }

    func writeDeleteBatch(_ count: Int, group: Int = 1) throws -> String {
        let path = dir + "/delete-\(group).txt"
        try (1...count).map { "delete-vnic g\(group)v\($0)" }.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testKillDuringAPerLineBatchLeavesWholeVNICs() throws {
        let count = 3000
        let batch = try writeBatch(count)
        for round in 1...3 {
            let path = dir + "/perline-\(round).db"
            let run = try Command.start([vnicadm, "batch", "--per-line", "--db", path, "-f", batch])
            // Kill once some lines are committed (polling the database like any reader).
            let target = 200 * round
            let deadline = Date().addingTimeInterval(60)
            var seen = 0
            while Date() < deadline && run.isRunning {
                if FileManager.default.fileExists(atPath: path),
                   let r = try? Command.run([vnicadm, "show-events", "--db", path, "-p", "-o", "seq"]), r.succeeded {
                    seen = r.stdout.split(separator: "\n").count
                    if seen >= target { break }
                }
                usleep(20_000)
            }
            XCTAssertTrue(run.isRunning, "round \(round): the batch finished before the kill (saw \(seen))")
            run.signal(SIGKILL)
            XCTAssertEqual(run.wait(timeout: .seconds(30)).status, 128 + SIGKILL)
            let present = try presentVNICs(group: 1, db: path)
            XCTAssertGreaterThanOrEqual(present.count, target, "round \(round)")
            XCTAssertLessThan(present.count, count, "round \(round)")
            guard !present.isEmpty else { continue }
            XCTAssertEqual(present, Array(1...present.count), "round \(round): the committed lines are the first ones, each whole")
            // It continues where it stopped: the rest of the lines commit.
            let rest = dir + "/rest.txt"
            try (present.count + 1...count).map { expected($0).line }.joined(separator: "\n").write(toFile: rest, atomically: true, encoding: .utf8)
            ok(try adm("batch", "--per-line", "-f", rest, db: path))
            XCTAssertEqual(try presentVNICs(group: 1, db: path), Array(1...count))
        }
    }

    // MARK: concurrency

    func testConcurrentVnicadmWritersSerialize() throws {
        ok(try adm("create-vnic", "-l", "uplink0", "-m", "02:00:00:00:00:01", "first"))
        let writers = try (1...24).map { i in
            try Command.start([vnicadm, "create-vnic", "--db", db, "-l", "uplink0", "-m", String(format: "02:00:00:00:10:%02x", i),
                               "-p", "maxbw=\(i)M", "par\(i)"])
        }
        let setters = try (1...8).map { i in
            try Command.start([vnicadm, "set", "--db", db, "first", "mtu=\(1400 + i)"])
        }
        for w in writers + setters {
            let r = w.wait(timeout: .seconds(60))
            XCTAssertEqual(r.status, 0, "\(r.commandLine): \(r.stderr)")
        }
        let names = ok(try adm("show-vnic", "-p", "-o", "name,index")).split(separator: "\n").map { Self.splitParseable(String($0)) }
        XCTAssertEqual(names.count, 25)
        XCTAssertEqual(Set(names.map { $0[1] }), Set((1...25).map(String.init)), "unique indexes, none skipped")
        let events = ok(try adm("show-events", "-p", "-o", "seq,parameter")).split(separator: "\n")
        XCTAssertEqual(events.count, 25 + 8, "one entry per create and per set")
        XCTAssertEqual(events.map { Int(Self.splitParseable(String($0))[0])! }, Array(1...33), "sequence numbers without gaps")
    }

    // MARK: read-only and full

    func testReadOnlyDatabaseFailsClearlyAndChangesNothing() throws {
        guard geteuid() == 0, let unshare = Command.find("unshare"), Command.find("mount") != nil else {
            throw TestEnvironment.unavailable("needs root, unshare and mount for a private read-only mount")
        }
        let mnt = dir + "/ro", out = dir + "/out"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let batch = dir + "/ro-batch.txt"
        try "create-vnic -l uplink0 -m 02:00:00:00:09:01 b1\n".write(toFile: batch, atomically: true, encoding: .utf8)
        // Everything happens in a private mount namespace; the tmpfs goes away with it.
        let a = vnicadm, d = mnt + "/vnic.db"
        let script = """
            set -u
            mount -t tmpfs -o size=16m vnic-ro-test '\(mnt)' || exit 90
            trap "umount -l '\(mnt)'" EXIT
            '\(a)' create-vnic --db '\(d)' -l uplink0 -m 02:00:00:00:01:01 -p maxbw=1G vm1 || exit 91
            '\(a)' show-vnic --db '\(d)' -p -o name,mtu > '\(out)/before' 2>&1
            '\(a)' show-events --db '\(d)' -p -o seq > '\(out)/events-before' 2>&1
            mount -o remount,ro '\(mnt)' || exit 92
            run() { n=$1; shift; "$@" > "\(out)/$n.out" 2> "\(out)/$n.err"; echo $? > "\(out)/$n.rc"; }
            run create '\(a)' create-vnic --db '\(d)' -l uplink0 -m 02:00:00:00:01:02 vm2
            run set '\(a)' set --db '\(d)' vm1 mtu=9000
            run linkprop '\(a)' set-linkprop --db '\(d)' -p maxbw=2G vm1
            run policy '\(a)' set-policy --db '\(d)' -p mtu=any vm1
            run delete '\(a)' delete-vnic --db '\(d)' vm1
            run batch '\(a)' batch --db '\(d)' -f '\(batch)'
            run newdb '\(a)' create-vnic --db '\(mnt)/other.db' -l uplink0 -m 02:00:00:00:01:03 vm3
            run show '\(a)' show-vnic --db '\(d)' -p -o name,mtu
            run linkshow '\(a)' show-linkprop --db '\(d)' -c -o property,value -p maxbw vm1
            run events '\(a)' show-events --db '\(d)' -p -o seq
            ls '\(mnt)' > '\(out)/files'
            exit 0
            """
        let r = try Command.run([unshare, "-m", "--propagation", "private", "sh", "-c", script], timeout: .seconds(120))
        XCTAssertEqual(r.status, 0, "setup in the mount namespace failed: \(r.diagnostic)")
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        XCTAssertFalse(mounts.contains(mnt), "the tmpfs leaked into this namespace")
        func file(_ name: String) -> String { (try? String(contentsOfFile: out + "/" + name, encoding: .utf8)) ?? "<missing \(name)>" }
        for name in ["create", "set", "linkprop", "policy", "delete", "batch"] {
            XCTAssertEqual(file(name + ".rc"), "1\n", "\(name): \(file(name + ".err"))")
            let err = file(name + ".err")
            XCTAssertEqual(err.split(separator: "\n").count, 1, "\(name): \(err)")
            XCTAssertTrue(err.contains("database \(d) is read-only (Read-only file system)"), "\(name): \(err)")
            XCTAssertTrue(err.contains("nothing was changed"), "\(name): \(err)")
        }
        XCTAssertEqual(file("newdb.rc"), "1\n")
        XCTAssertTrue(file("newdb.err").contains("create database \(mnt)/other.db: Read-only file system"), file("newdb.err"))
        // Reads work, and show nothing changed.
        XCTAssertEqual(file("show.rc"), "0\n", file("show.err"))
        XCTAssertEqual(file("show.out"), file("before"))
        XCTAssertEqual(file("show.out"), "vm1:1500\n")
        XCTAssertEqual(file("linkshow.out"), "maxbw:1G\n")
        XCTAssertEqual(file("events.out"), file("events-before"))
        XCTAssertEqual(file("files"), "vnic.db\nvnic.db-lock\n", "no new file on the read-only mount")
    }

    func testFullDatabaseFailsClearlyAndChangesNothing() throws {
        ok(try adm("batch", "-f", try writeBatch(50, group: 2)))
        let size = try XCTUnwrap((try FileManager.default.attributesOfItem(atPath: db)[.size] as? NSNumber)?.intValue)
        let before = ok(try adm("show-vnic", "-p", "-o", "name,mac"))
        let events = ok(try adm("show-events", "-p", "-o", "seq"))
        let small = ["VNIC_DB_MAP_SIZE": String(size)]
        let batch = try writeBatch(3000)
        for args in [["batch", "-f", batch], ["batch", "--per-line", "-f", batch]] {
            let r = try adm(args[0], Array(args.dropFirst()), env: small)
            fails(r, 1, "database \(db) is full", "VNIC_DB_MAP_SIZE raises it")
            if args.count == 3 {
                XCTAssertEqual(ok(try adm("show-vnic", "-p", "-o", "name,mac")), before, "the one-transaction batch left nothing")
            }
        }
        // The one-transaction batch left nothing; the per-line one stopped at the line that did not fit.
        let present = try presentVNICs(group: 1)
        XCTAssertEqual(present, present.isEmpty ? [] : Array(1...present.count), "whole VNICs, the first lines")
        XCTAssertLessThan(present.count, 3000)
        XCTAssertEqual(try presentVNICs(group: 2), Array(1...50))
        if present.isEmpty { XCTAssertEqual(ok(try adm("show-events", "-p", "-o", "seq")), events) }
        fails(try adm("batch", "-f", batch, env: ["VNIC_DB_MAP_SIZE": "10Q"]), 2, "VNIC_DB_MAP_SIZE: '10Q'")
        // With room again, the same batch goes through.
        if !present.isEmpty { ok(try adm("batch", "-f", try writeDeleteBatch(present.count))) }
        ok(try adm("batch", "-f", batch))
        XCTAssertEqual(try presentVNICs(group: 1).count, 3000)
    }

    /// A truncated file, a file that is not LMDB, and a record that does not
    /// decode: vnicadm and vnicd say which in one line and exit 1; vnicd does
    /// not start with the VNICs it could read (never half-configured).
    func testCorruptedDatabasesFailClearly() throws {
        try makeTwoVNICs()
        let good = try Data(contentsOf: URL(fileURLWithPath: db))
        let vnicd = try TestEnvironment.binary("vnicd")
        func both(_ path: String, _ fragments: String...) throws {
            for argv in [[vnicadm, "show-vnic", "--db", path], [vnicd, "--db", path, "--link", "vnic-no-such-if"]] {
                let r = try Command.run(argv)
                XCTAssertEqual(r.status, 1, "\(r.commandLine): \(r.stderr)")
                XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(r.commandLine) printed: \(r.stderr)")
                for f in fragments { XCTAssertTrue(r.stderr.contains(f), "\(r.commandLine): '\(r.stderr)' lacks '\(f)'") }
            }
        }
        let truncated = dir + "/truncated.db"
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: truncated))
        try both(truncated, "database \(truncated) is truncated", "restore it from a copy")

        let garbage = dir + "/garbage.db"
        var bytes = [UInt8](good)
        for i in 0..<8192 { bytes[i] = UInt8.random(in: 0...255) }
        try Data(bytes).write(to: URL(fileURLWithPath: garbage))
        try both(garbage, "database \(garbage) is not an LMDB database")

        // vnic2's record: its name field (tag 1, length 5, "vnic2") now claims 65535 bytes.
        let corrupt = dir + "/corrupt.db"
        bytes = [UInt8](good)
        let field: [UInt8] = [1, 0, 5, 0] + Array("vnic2".utf8)
        var hits = 0
        for i in 0..<(bytes.count - field.count) where Array(bytes[i..<(i + field.count)]) == field {
            bytes[i + 2] = 0xFF; bytes[i + 3] = 0xFF; hits += 1
        }
        XCTAssertGreaterThan(hits, 0, "vnic2's record found in the file")
        try Data(bytes).write(to: URL(fileURLWithPath: corrupt))
        try both(corrupt, "VNIC index 2: corrupt VNIC record")
        XCTAssertEqual(ok(try adm("show-vnic", "-p", "-o", "name")), "vnic1\nvnic2\n", "the original is untouched")
    }

    // MARK: output shapes

    func makeTwoVNICs() throws {
        ok(try adm("create-vnic", "-l", "uplink0", "-m", "02:00:00:00:01:01", "--port", "vm1p", "-i", "10.77.0.11/24",
                   "-p", "maxbw=100M,cpus=0,2-3,allowed-ips=10.77.0.11,10.77.1.0/24", "vnic1"))
        ok(try adm("create-vnic", "-l", "uplink0", "-m", "02:00:00:00:01:02", "vnic2"))
    }

    func testShowLinkpropShape() throws {
        try makeTwoVNICs()
        let lines = ok(try adm("show-linkprop")).split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(lines.first, ["LINK", "PROPERTY", "PERM", "VALUE", "DEFAULT", "POSSIBLE"])
        XCTAssertEqual(lines.count, 1 + 2 * 10)
        XCTAssertEqual(lines.dropFirst().prefix(10).map { $0[1] },
                       ["maxbw", "priority", "cpus", "protection", "allowed-ips", "denied-requests", "dhcp", "dhcp-lease", "ra-guard", "ipv6-ra"])
        XCTAssertEqual(lines[1], ["vnic1", "maxbw", "rw", "100M", "--", "--"])
        XCTAssertEqual(lines[2], ["vnic1", "priority", "rw", "high", "high", "low,medium,high"])
        XCTAssertEqual(lines[3], ["vnic1", "cpus", "rw", "0,2,3", "--", "--"])
        XCTAssertEqual(lines[4], ["vnic1", "protection", "rw", "mac-nospoof", "mac-nospoof", "mac-nospoof,ip-nospoof,dhcp-nospoof,restricted"])
        XCTAssertEqual(lines[5], ["vnic1", "allowed-ips", "rw", "10.77.0.11,10.77.1.0/24", "--", "--"])
        XCTAssertEqual(lines[6], ["vnic1", "denied-requests", "rw", "drop", "drop", "drop,reply"])
        XCTAssertEqual(lines[7], ["vnic1", "dhcp", "rw", "off", "off", "off,on"])
        XCTAssertEqual(lines[8], ["vnic1", "dhcp-lease", "rw", "3600", "3600", "--"])
        XCTAssertEqual(lines[9], ["vnic1", "ra-guard", "rw", "on", "on", "on,off"])
        XCTAssertEqual(lines[10], ["vnic1", "ipv6-ra", "rw", "off", "off", "off,slaac,managed"])
        XCTAssertEqual(lines[11], ["vnic2", "maxbw", "rw", "--", "--", "--"])
        // Columns line up: every row's VALUE starts where the header's does.
        let raw = ok(try adm("show-linkprop", "vnic1")).split(separator: "\n")
        let column = raw[0].range(of: "VALUE")!.lowerBound.utf16Offset(in: raw[0])
        for row in raw.dropFirst() { XCTAssertNotEqual(row[row.index(row.startIndex, offsetBy: column)], " ") }
        // -c -o: parseable, escaped only with several fields.
        XCTAssertEqual(ok(try adm("show-linkprop", "-c", "-o", "value", "-p", "allowed-ips", "vnic1")), "10.77.0.11,10.77.1.0/24\n")
        XCTAssertEqual(ok(try adm("show-linkprop", "-c", "-o", "link,property,value,default", "-p", "maxbw,priority")),
                       "vnic1:maxbw:100M:\nvnic1:priority:high:high\nvnic2:maxbw::\nvnic2:priority:high:high\n")
        XCTAssertEqual(ok(try adm("show-linkprop", "-c", "-o", "all", "-p", "maxbw", "vnic2")), "vnic2:maxbw:rw:::\n")
        // JSON.
        let json = try JSONSerialization.jsonObject(with: Data(ok(try adm("show-linkprop", "--json", "-p", "maxbw,protection", "vnic1")).utf8))
        let rows = try XCTUnwrap(json as? [[String: Any]])
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows[0]["property"] as? String, "maxbw")
        XCTAssertEqual(rows[0]["value"] as? String, "100M")
        XCTAssertTrue(rows[0]["default"] is NSNull)
        XCTAssertEqual(rows[1]["possible"] as? String, "mac-nospoof,ip-nospoof,dhcp-nospoof,restricted")
        // set, reset, and what they print afterwards.
        ok(try adm("set-linkprop", "-p", "maxbw=1.5G", "-p", "protection=mac-nospoof,restricted,priority=low", "vnic2"))
        XCTAssertEqual(ok(try adm("show-linkprop", "-c", "-o", "property,value", "vnic2")),
                       "maxbw:1.5G\npriority:low\ncpus:\nprotection:mac-nospoof,restricted\nallowed-ips:\n"
                       + "denied-requests:drop\ndhcp:off\ndhcp-lease:3600\nra-guard:on\nipv6-ra:off\n")
        ok(try adm("reset-linkprop", "-p", "maxbw,protection", "vnic2"))
        XCTAssertEqual(ok(try adm("show-linkprop", "-c", "-o", "value", "-p", "maxbw,priority,protection", "vnic2")), "\nlow\nmac-nospoof\n")
        ok(try adm("reset-linkprop", "vnic2"))
        XCTAssertEqual(ok(try adm("show-linkprop", "-c", "-o", "value", "-p", "priority", "vnic2")), "high\n")
    }

    func testShowPolicyShape() throws {
        try makeTwoVNICs()
        ok(try adm("set-policy", "-p", "ip=10.77.0.20-10.77.0.29,10.77.1.0/24", "-p", "mtu=1280-9000", "-p", "transport=any", "vnic1"))
        let lines = ok(try adm("show-policy", "vnic1")).split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(lines.first, ["LINK", "PARAMETER", "POLICY", "VALUE"])
        XCTAssertEqual(lines.dropFirst().map { $0[1] }, ["mac", "ip", "gateway", "mtu", "tcp-ports", "transport", "routing", "tcp-buffer"])
        XCTAssertEqual(lines[1], ["vnic1", "mac", "deny", "02:00:00:00:01:01"])
        XCTAssertEqual(lines[2], ["vnic1", "ip", "10.77.0.20-10.77.0.29,10.77.1.0/24", "10.77.0.11/24"])
        XCTAssertEqual(lines[3], ["vnic1", "gateway", "deny", "--"])
        XCTAssertEqual(lines[4], ["vnic1", "mtu", "1280-9000", "1500"])
        XCTAssertEqual(lines[6], ["vnic1", "transport", "any", "both"])
        XCTAssertEqual(ok(try adm("show-policy", "-p", "-o", "link,parameter,policy")).split(separator: "\n").count, 16)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(ok(try adm("show-policy", "--json", "vnic2")).utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.count, 8)
        XCTAssertEqual(rows.map { $0["policy"] as? String }, Array(repeating: "deny", count: 8))
        XCTAssertTrue(rows[2]["value"] is NSNull, "an unset gateway is null")
        // Back to deny, and errors.
        ok(try adm("set-policy", "-p", "mtu=deny", "vnic1"))
        XCTAssertEqual(ok(try adm("show-policy", "-p", "-o", "policy", "vnic1")).split(separator: "\n")[3], "deny")
        fails(try adm("set-policy", "-p", "ip=10.77.0.1/24", "vnic1"), 2, "ip: '10.77.0.1/24' has host bits set")
        fails(try adm("set-policy", "-p", "mtu=10.0.0.1", "vnic1"), 2, "mtu: '10.0.0.1' is not a number or range")
        fails(try adm("set-policy", "-p", "mtu=9000-1280", "vnic1"), 2, "'9000-1280'")
        fails(try adm("set-policy", "-p", "maxbw=any", "vnic1"), 2, "maxbw: is a link property")
        fails(try adm("set-policy", "-p", "colour=any", "vnic1"), 2, "unknown parameter 'colour'")
        fails(try adm("set-policy", "vnic1"), 2, "-p PARAM=deny|any|VALUES is required")
        fails(try adm("set-policy", "-p", "mtu=any", "ghost"), 2, "VNIC 'ghost' does not exist")
    }

    func testShowEventsShapeAndFollow() throws {
        try makeTwoVNICs()
        ok(try adm("set", "vnic1", "mtu=9000", "gateway=10.77.0.1"))
        ok(try adm("set-linkprop", "-p", "priority=low", "vnic1"))
        ok(try adm("delete-vnic", "vnic2"))
        let lines = ok(try adm("show-events")).split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(lines.first, ["TIME", "VNIC", "ORIGIN", "PARAMETER", "OLD", "NEW", "VERDICT", "REASON"])
        XCTAssertEqual(lines.count, 1 + 6)
        XCTAssertEqual(lines.dropFirst().map { $0[3] }, ["vnic", "vnic", "gateway", "mtu", "priority", "vnic"])
        XCTAssertEqual(Array(lines[4][1...7]), ["vnic1", "host", "mtu", "1500", "9000", "applied", "vnicadm"])
        XCTAssertTrue(lines[1][0].hasSuffix("Z") && lines[1][0].count == 24, "UTC time with milliseconds: \(lines[1][0])")
        XCTAssertEqual(ok(try adm("show-events", "-p", "-o", "seq,vnic,parameter,old,new", "vnic1")),
                       "1:vnic1:vnic::02\\:00\\:00\\:00\\:01\\:01 on uplink0\n3:vnic1:gateway::10.77.0.1\n4:vnic1:mtu:1500:9000\n5:vnic1:priority:high:low\n")
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(ok(try adm("show-events", "--json", "vnic2")).utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["parameter"] as? String }, ["vnic", "vnic"])
        XCTAssertEqual(rows[1]["old"] as? String, "02:00:00:00:01:02 on uplink0")
        XCTAssertTrue(rows[1]["new"] is NSNull)
        XCTAssertEqual(rows[1]["verdict"] as? String, "applied")
        XCTAssertEqual(rows[1]["origin"] as? String, "host")
        fails(try adm("show-events", "nosuch"), 2, "VNIC 'nosuch' does not exist")

        // -f prints what is there, then new entries as they are committed.
        let follow = try Command.start([vnicadm, "show-events", "--db", db, "-f", "--json", "vnic1"])
        defer { follow.terminate() }
        let deadline = Date().addingTimeInterval(10)
        while follow.stdoutSoFar.split(separator: "\n").count < 4 && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(follow.stdoutSoFar.split(separator: "\n").count, 4, follow.stdoutSoFar)
        ok(try adm("set", "vnic1", "mtu=1400"))
        ok(try adm("create-vnic", "-l", "uplink0", "-m", "02:00:00:00:01:03", "vnic3"))   // another VNIC: not shown
        ok(try adm("set-policy", "-p", "mtu=any", "vnic1"))
        while follow.stdoutSoFar.split(separator: "\n").count < 6 && Date() < deadline { usleep(20_000) }
        let followed = follow.stdoutSoFar.split(separator: "\n").map(String.init)
        XCTAssertEqual(followed.count, 6, followed.joined(separator: "\n"))
        let objects = try followed.map { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertEqual(objects.suffix(2).map { $0["parameter"] as? String }, ["mtu", "policy.mtu"])
        XCTAssertEqual(objects.last?["new"] as? String, "any")
        XCTAssertTrue(follow.isRunning, "-f keeps following")
    }

    func testShowStatsWithAndWithoutADaemon() throws {
        try makeTwoVNICs()
        fails(try adm("show-stats"), 1, "no vnicd is running for database \(db)")
        fails(try adm("show-stats", "--json", "vnic1"), 1, "no vnicd is running")
        // A status file as vnicd writes it, from a live process (this one).
        func publish(_ rx: UInt64, drops: [String: UInt64]) throws {
            var v1 = RuntimeStatus.VNIC(state: "up")
            v1.rxPackets = rx; v1.rxBytes = rx * 64; v1.txPackets = rx / 2; v1.txBytes = rx * 32; v1.drops = drops
            let s = RuntimeStatus(pid: getpid(), updated: Date().timeIntervalSince1970, generation: 3, classifier: [:],
                                  queues: [], vnics: ["vnic1": v1, "vnic2": RuntimeStatus.VNIC(state: "down")])
            let tmp = db + "-status.json.tmp"
            try JSONEncoder().encode(s).write(to: URL(fileURLWithPath: tmp))
            XCTAssertEqual(rename(tmp, db + "-status.json"), 0)
        }
        try publish(1000, drops: ["spoof-mac": 3, "vsq-full": 1])
        let lines = ok(try adm("show-stats")).split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(lines, [["LINK", "STATE", "IPACKETS", "RBYTES", "OPACKETS", "OBYTES", "DROPS", "REASONS"],
                               ["vnic1", "up", "1000", "64000", "500", "32000", "4", "spoof-mac=3,vsq-full=1"],
                               ["vnic2", "down", "0", "0", "0", "0", "0", "--"]])
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(ok(try adm("show-stats", "--json", "vnic1")).utf8)) as? [[String: Any]])
        XCTAssertEqual(json.first?["rx_packets"] as? Int, 1000)
        XCTAssertEqual((json.first?["drops"] as? [String: Int])?["spoof-mac"], 3)
        XCTAssertEqual(ok(try adm("show-stats", "-p", "-o", "link,ipackets,reasons", "vnic1")), "vnic1:1000:spoof-mac=3,vsq-full=1\n")
        // -i: the totals, then the change per interval.
        let interval = try Command.start([vnicadm, "show-stats", "--db", db, "-p", "-o", "link,ipackets,drops", "-i", "1", "--count", "2", "vnic1"])
        usleep(300_000)
        try publish(1500, drops: ["spoof-mac": 5, "vsq-full": 1])
        let r = interval.wait(timeout: .seconds(20))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "vnic1:1000:4\nvnic1:500:2\n")
        fails(try adm("show-stats", "ghost"), 2, "VNIC 'ghost' does not exist")
        fails(try adm("show-stats", "-i", "0"), 2, "-i")
        // A status file whose process is gone is no daemon.
        try publish(1, drops: [:])
        var s = try JSONDecoder().decode(RuntimeStatus.self, from: Data(contentsOf: URL(fileURLWithPath: db + "-status.json")))
        s.pid = 999_999_999 & 0x3FFF_FFFF
        try JSONEncoder().encode(s).write(to: URL(fileURLWithPath: db + "-status.json"))
        fails(try adm("show-stats"), 1, "no vnicd is running")
    }

    // MARK: exit codes

    func testExitCodesAndMessages() throws {
        try makeTwoVNICs()
        fails(try adm("set-linkprop", "-p", "maxbw=10Q", "vnic1"), 2, "maxbw: '10Q' is not a bandwidth (e.g. 100M, 1G)")
        fails(try adm("set-linkprop", "-p", "protection=foo", "vnic1"), 2, "protection: 'foo'")
        fails(try adm("set-linkprop", "-p", "colour=red", "vnic1"), 2, "unknown property 'colour'")
        fails(try adm("set-linkprop", "-p", "mtu=9000", "vnic1"), 2, "mtu: not a property here (it is a VNIC parameter: use vnicadm set)")
        fails(try adm("set-linkprop", "-p", "maxbw=1G", "ghost"), 2, "VNIC 'ghost' does not exist")
        fails(try adm("set", "vnic1", "maxbw=1G"), 2, "maxbw: not a parameter here (it is a link property: use set-linkprop)")
        fails(try adm("set", "vnic1", "mtu=99999"), 2, "mtu: 99999 is out of range")
        fails(try adm("set", "vnic1", "mac=02:00:00:00:01:02"), 2, "mac 02:00:00:00:01:02 is already used by VNIC 'vnic2'")
        fails(try adm("set", "vnic1", "mtu"), 2, "'mtu' is not PARAM=VALUE")
        fails(try adm("reset-linkprop", "-p", "mtu", "vnic1"), 2, "mtu: not a property here")
        fails(try adm("show-linkprop", "-c", "vnic1"), 2, "-c requires -o")
        fails(try adm("show-linkprop", "-o", "bogus"), 2, "unknown field 'bogus'")
        fails(try adm("create-vnic", "-l", "uplink0", "-m", "02:00:00:00:01:09", "-p", "cpus=0,0", "vnic9"), 2, "cpus: CPU 0 is given twice")
        fails(try adm("create-vnic", "-l", "uplink0", "-m", "02:00:00:00:01:09", "-p", "allowed-ips=10.0.0.1/8", "vnic9"), 2,
              "allowed-ips: '10.0.0.1/8' has host bits set")
        fails(try adm("show-vnic", db: dir + "/missing.db"), 1, dir + "/missing.db")
        fails(try adm("set", "vnic1", "mtu=9000", db: dir + "/missing.db"), 1, "does not exist")
        // batch: the failing line is named; nothing of it is committed.
        let bad = dir + "/bad.txt"
        try "set vnic1 mtu=9000\nset-linkprop -p maxbw=1G vnic1\n\n# comment\nset-linkprop -p maxbw=10Q vnic2\n".write(toFile: bad, atomically: true, encoding: .utf8)
        fails(try adm("batch", "-f", bad), 2, "batch: line 5: maxbw: '10Q' is not a bandwidth")
        fails(try adm("batch", "--per-line", "-f", bad), 2, "batch: line 5: maxbw: '10Q'")
        XCTAssertEqual(ok(try adm("show-vnic", "-p", "-o", "mtu", "vnic1")), "1500\n", "a syntax error anywhere stops the batch before it writes")
        try "set vnic1 mtu=9000\nset-linkprop -p maxbw=1G vnic1\nset ghost mtu=1400\n".write(toFile: bad, atomically: true, encoding: .utf8)
        fails(try adm("batch", "-f", bad), 2, "batch: line 3: VNIC 'ghost' does not exist; nothing was committed")
        XCTAssertEqual(ok(try adm("show-vnic", "-p", "-o", "mtu", "vnic1")), "1500\n")
        fails(try adm("batch", "--per-line", "-f", bad), 2, "batch: line 3: VNIC 'ghost' does not exist; 2 line(s) before it were committed")
        XCTAssertEqual(ok(try adm("show-vnic", "-p", "-o", "mtu", "vnic1")), "9000\n")
        try "show-vnic\n".write(toFile: bad, atomically: true, encoding: .utf8)
        fails(try adm("batch", "-f", bad), 2, "line 1: show-vnic is not a write subcommand")
        try "set --db /x vnic1 mtu=1400\n".write(toFile: bad, atomically: true, encoding: .utf8)
        fails(try adm("batch", "-f", bad), 2, "line 1: --db is not allowed")
        try "set vnic1 'mtu=1400\n".write(toFile: bad, atomically: true, encoding: .utf8)
        fails(try adm("batch", "-f", bad), 2, "line 1: unterminated ' quote")
        fails(try adm("batch", "-f", dir + "/nosuch.txt"), 1, "cannot read \(dir)/nosuch.txt")
        // Success is 0; with no vnicd running, set says that the VM was not notified.
        let r = try adm("set", "vnic1", "routing=on", "tcp-ports=22,8000-8080", "tcp-buffer=256K", "transport=tcp")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")
        XCTAssertTrue(r.stdout.hasPrefix("vnic1: the VM was not notified: no vnicd is running"), r.stdout)
        XCTAssertEqual(ok(try adm("show-vnic", "-p", "-o", "routing,tcp-ports,tcp-buffer,transport", "vnic1")), "on:22,8000-8080:256K:tcp\n")
        XCTAssertTrue(ok(try Command.run([vnicadm, "--help"])).contains("batch"))
    }
}

import Foundation
import XCTest
@testable import VnicConfig
import VnicCore

final class ConcurrencyTests: XCTestCase {
    func testTwoThreadsOfWritersSerialize() throws {
        let path = try makeTemporaryDirectory(self) + "/vnic.db"
        let store = try ConfigStore.open(path: path, create: true)
        let initial = try store.generation()
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { t in
            for n in 0..<200 {
                do { try store.create(sampleRecord(n, group: UInt8(t + 1))) } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        XCTAssertEqual(failures.withLock { $0 }, [])
        let all = try store.vnics()
        XCTAssertEqual(all.count, 400)
        XCTAssertEqual(Set(all.map(\.index)), Set(1...400))
        XCTAssertEqual(Set(all.map(\.mac)).count, 400)
        XCTAssertEqual(try store.generation(), initial + 400)
        XCTAssertEqual(try store.consistencyProblems(), [])
    }

    func testReadersDuringWritesSeeWholeCommits() throws {
        let path = try makeTemporaryDirectory(self) + "/vnic.db"
        let store = try ConfigStore.open(path: path, create: true)
        let done = Atomic<Bool>(false)
        let problems = Mutex<[String]>([])
        let reader = Thread {
            while !done.load(ordering: .acquiring) {
                do {
                    let s = try store.snapshot()
                    // Generation 1 + one per create: the snapshot never shows half a write.
                    if s.generation != UInt64(s.vnics.count) + 1 {
                        problems.withLock { $0.append("generation \(s.generation) with \(s.vnics.count) VNICs") }
                    }
                } catch {
                    problems.withLock { $0.append("\(error)") }
                }
            }
        }
        reader.start()
        for n in 0..<100 { try store.create(sampleRecord(n)) }
        done.store(true, ordering: .releasing)
        while !reader.isFinished { usleep(1000) }
        XCTAssertEqual(problems.withLock { $0 }, [])
    }
}

import Synchronization

/// Writers in other processes: this test binary run again as a child
/// (`VNIC_TEST_CHILD_DB` set), creating VNICs of its group in a loop.
final class MultiProcessTests: XCTestCase {
    func testWritersInTwoProcessesSerialize() throws {
        let path = try makeTemporaryDirectory(self) + "/vnic.db"
        let store = try ConfigStore.open(path: path, create: true)
        let children = try (1...2).map { try spawnWriter(path: path, group: $0, count: 100) }
        for child in children {
            child.waitUntilExit()
            XCTAssertEqual(child.terminationStatus, 0, "writer child failed")
        }
        XCTAssertEqual(try store.vnics().count, 200)
        XCTAssertEqual(try store.generation(), 201)
        XCTAssertEqual(try store.consistencyProblems(), [])
    }

    func testKillDashNineMidWriteLeavesTheDatabaseConsistent() throws {
        let path = try makeTemporaryDirectory(self) + "/vnic.db"
        let store = try ConfigStore.open(path: path, create: true)
        for round in 1...3 {
            let child = try spawnWriter(path: path, group: round, count: 0)   // writes until killed
            let start = try store.generation()
            let deadline = Date().addingTimeInterval(30)
            while try store.generation() < start + 15 && Date() < deadline && child.isRunning { usleep(2000) }
            XCTAssertTrue(child.isRunning, "writer child ended early")
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            XCTAssertEqual(child.terminationReason, .uncaughtSignal)

            let s = try store.snapshot()
            XCTAssertEqual(s.generation, UInt64(s.vnics.count) + 1, "round \(round)")
            XCTAssertEqual(Set(s.vnics.map(\.index)).count, s.vnics.count)
            XCTAssertEqual(try store.consistencyProblems(), [], "round \(round)")
            // The writer lock the child may have held is usable again.
            try store.create(sampleRecord(10_000 + round, group: 200))
        }
        // And a fresh open in another process (the next child) works too: covered by the rounds above.
    }

    /// The child half: runs only when spawned by the tests above.
    func testChildWriter() throws {
        let env = ProcessInfo.processInfo.environment
        guard let path = env["VNIC_TEST_CHILD_DB"], let group = UInt8(env["VNIC_TEST_CHILD_GROUP"] ?? ""),
              let count = Int(env["VNIC_TEST_CHILD_COUNT"] ?? "") else { return }
        let store = try ConfigStore.open(path: path, create: false)
        var n = 0
        while count == 0 || n < count {
            try store.create(sampleRecord(n, group: group))
            n += 1
        }
    }

    private func spawnWriter(path: String, group: Int, count: Int) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        p.arguments = ["VnicConfigTests.MultiProcessTests/testChildWriter"]
        var env = ProcessInfo.processInfo.environment
        env["VNIC_TEST_CHILD_DB"] = path
        env["VNIC_TEST_CHILD_GROUP"] = String(group)
        env["VNIC_TEST_CHILD_COUNT"] = String(count)
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }
}

import Foundation
import XCTest
import VnicConfig
import VnicCore

/// A temporary directory removed at the end of the test.
func makeTemporaryDirectory(_ test: XCTestCase) throws -> String {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("vnic-config-tests-\(getpid())-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}

/// A valid record: VNIC `n` gets MAC 02:00:00:00:HH:LL (from `group` and `n`)
/// and address 10.77.x.y/16.
func sampleRecord(_ n: Int, group: UInt8 = 1, port: Bool = true) -> VNICRecord {
    let mac = MACAddress(bytes: (0x02, 0x00, 0x00, group, UInt8(n >> 8), UInt8(n & 0xFF)))
    let ip = IPv4Interface(address: IPv4Address(rawValue: 0x0A4D_0000 | UInt32(group) << 12 | UInt32(n + 1)), prefixLength: 16)
    return VNICRecord(name: "vm\(group)x\(n)", link: "uplink0", port: port ? "p\(group)x\(n)" : nil, mac: mac, ips: [ip])
}

/// Asserts that `body` throws a VnicError with `exitCode` whose message contains every one of `fragments`.
func assertVnicError<T>(_ body: @autoclosure () throws -> T, exitCode: Int32, _ fragments: String...,
                        file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("no error thrown", file: file, line: line)
    } catch let e as VnicError {
        XCTAssertEqual(e.exitCode, exitCode, "exit code of: \(e.message)", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(e.message.contains(f), "'\(e.message)' does not mention '\(f)'", file: file, line: line)
        }
        XCTAssertFalse(e.message.contains("\n"), "message is not one line: \(e.message)", file: file, line: line)
    } catch {
        XCTFail("not a VnicError: \(error)", file: file, line: line)
    }
}

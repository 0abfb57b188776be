// The XDP classifier loaded into the kernel and run on frames with
// BPF_PROG_TEST_RUN: verdicts and counters. Frames are built with FrameBuilder
// (Ethernet II + IPv4 + UDP); redirection into real sockets is covered by the
// integration tests.
import CLibXDP
import CVnicShim
import Foundation
import VnicCore
@testable import VnicDataplane
import XCTest

final class ClassifierTests: XCTestCase {
    private func loadClassifier() throws -> BPFObject {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("build/vnic.bpf.o").path
        let ci = ProcessInfo.processInfo.environment["CI"] == "true"
        guard FileManager.default.fileExists(atPath: path) else {
            if ci { XCTFail("\(path) missing (make bpf)"); throw XCTSkip("no object") }
            throw XCTSkip("\(path) missing: run make bpf")
        }
        guard geteuid() == 0 else {
            if ci { XCTFail("loading BPF needs root"); throw XCTSkip("not root") }
            throw XCTSkip("loading BPF needs root")
        }
        let obj = try BPFObject(path: path)
        try obj.setSettings(vnic_settings(queue_count: 2, pad: 0))
        try obj.setMaxEntries(map: "uplink_xsks", 64)
        try obj.setMaxEntries(map: "port_xsks", 64)
        try obj.load()
        return obj
    }

    private func frame(to dst: String) -> [UInt8] {
        FrameBuilder.udp(dst: MACAddress(dst)!, src: MACAddress("02:00:00:00:00:01")!,
                         srcIP: IPv4Address("10.77.0.1")!, dstIP: IPv4Address("10.77.0.11")!,
                         srcPort: 1024, dstPort: 9, length: 60)
    }

    func testUnknownUnicastIsDroppedAndCounted() throws {
        let obj = try loadClassifier()
        let counters = try obj.mapFD(named: "vnic_counters")
        for _ in 0..<3 {
            XCTAssertEqual(try obj.testRun(program: "vnic_uplink", frame: frame(to: "02:00:00:00:09:09")), UInt32(XDP_DROP.rawValue))
        }
        XCTAssertEqual(counters.perCPUSum(index: UInt32(VNIC_XDP_UNKNOWN_DST.rawValue)), 3)
        XCTAssertEqual(counters.perCPUSum(index: UInt32(VNIC_XDP_REDIRECTED.rawValue)), 0)
    }

    func testKnownMACWithoutSocketIsDroppedAsNoSocket() throws {
        let obj = try loadClassifier()
        let macs = try obj.mapFD(named: "vnic_macs")
        let mac = MACAddress("02:00:00:00:01:01")!.bytes
        try macs.update(vnic_mac_key(addr: (mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]), pad: 0),
                        vnic_mac_entry(vnic_index: 1, flags: 0))
        XCTAssertEqual(try obj.testRun(program: "vnic_uplink", frame: frame(to: "02:00:00:00:01:01")), UInt32(XDP_DROP.rawValue))
        let counters = try obj.mapFD(named: "vnic_counters")
        XCTAssertEqual(counters.perCPUSum(index: UInt32(VNIC_XDP_NO_SOCKET.rawValue)), 1)
        XCTAssertEqual(counters.perCPUSum(index: UInt32(VNIC_XDP_UNKNOWN_DST.rawValue)), 0)
    }

    func testBroadcastAndMulticastGoToTheFloodSlot() throws {
        let obj = try loadClassifier()
        // No uplink socket in slot 0: the flood path drops as no-socket, never as unknown.
        _ = try obj.testRun(program: "vnic_uplink", frame: frame(to: "ff:ff:ff:ff:ff:ff"))
        _ = try obj.testRun(program: "vnic_uplink", frame: frame(to: "33:33:ff:00:01:01"))
        let counters = try obj.mapFD(named: "vnic_counters")
        XCTAssertEqual(counters.perCPUSum(index: UInt32(VNIC_XDP_NO_SOCKET.rawValue)), 2)
        XCTAssertEqual(counters.perCPUSum(index: UInt32(VNIC_XDP_UNKNOWN_DST.rawValue)), 0)
    }

    func testPortProgramDropsFramesOfUnknownPorts() throws {
        let obj = try loadClassifier()
        XCTAssertEqual(try obj.testRun(program: "vnic_port", frame: frame(to: "02:00:00:00:00:01")), UInt32(XDP_DROP.rawValue))
        let counters = try obj.mapFD(named: "vnic_counters")
        XCTAssertEqual(counters.perCPUSum(index: UInt32(VNIC_XDP_PORT_UNKNOWN.rawValue)), 1)
    }
}

import Foundation
import VnicConfig
import VnicCore
@testable import VnicDataplane
@testable import VnicDataplaneTools
import XCTest

/// `Worker.loopOnce` through the in-memory rings (InMemoryPipeline: the rings
/// shaped like the kernel's, a real LMDB database for the VNIC's record): what
/// a VM's frames become, and that every policy fact comes from the record,
/// read in the loop that uses it.
final class WorkerLoopTests: XCTestCase {
    static let vm = MACAddress("02:00:00:00:01:01")!, gw = MACAddress("02:00:00:00:00:01")!
    var dir: URL!
    var store: ConfigStore!
    var pipeline: InMemoryPipeline!
    var index: UInt32 = 0

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("vnic-loop-\(getpid())-\(UUID().uuidString)")
        store = try ConfigStore.open(path: dir.appendingPathComponent("vnic.db").path, create: true)
        var r = VNICRecord(name: "vnic1", link: "uplink0", port: "vm1p", mac: Self.vm, ips: [IPv4Interface("10.77.0.11/24")!])
        r.protection = .all
        index = try store.create(r).index
        pipeline = InMemoryPipeline(frames: 4096, index: index, mac: Self.vm, reader: try ConfigReader(store: store),
                                    frame: udp(from: "10.77.0.11"))
        pipeline.loopOnce()   // fills the fill rings, as a starting worker does
    }

    override func tearDown() {
        pipeline = nil
        store = nil
        try? FileManager.default.removeItem(at: dir)
    }

    func udp(from source: String, to destination: String = "10.77.0.1", port: UInt16 = 9, length: Int = 60) -> [UInt8] {
        FrameBuilder.udp(dst: Self.gw, src: Self.vm, srcIP: IPv4Address(source)!, dstIP: IPv4Address(destination)!,
                         srcPort: 1024, dstPort: port, length: length)
    }

    func change(_ body: @escaping (inout VNICRecord) -> Void) throws {
        try store.update { (tx) throws(VnicError) in
            try tx.update(name: "vnic1", reason: "test") { (r) throws(VnicError) in body(&r) }
        }
    }

    func testForwardsWhatPassesAndDropsWhatTheRecordForbids() {
        let good = udp(from: "10.77.0.11"), spoofed = udp(from: "10.77.0.99")
        pipeline.vmSends([good, spoofed, good])
        XCTAssertTrue(pipeline.loopOnce())
        XCTAssertEqual(pipeline.wireReceives(), [good, good], "the two frames from its own address, unchanged, in order")
        XCTAssertEqual(pipeline.sent, 2)
        XCTAssertEqual(pipeline.dropsByName, ["spoof-ip": 1])
        XCTAssertFalse(pipeline.loopOnce(), "nothing left to move")
        XCTAssertFalse(pipeline.worker.stalled)
    }

    /// One road: a change committed to the record applies at the worker's next
    /// loop, with no new worker table (nothing republished here).
    func testACommittedChangeAppliesAtTheNextLoop() throws {
        let other = udp(from: "10.77.0.99")
        pipeline.vmSends([other])
        pipeline.loopOnce()
        XCTAssertEqual(pipeline.wireReceives().count, 0)
        try change { $0.allowedIPs = [IPv4CIDR("10.77.0.96/29")!] }
        pipeline.vmSends([other, self.udp(from: "10.77.0.11")])
        pipeline.loopOnce()
        XCTAssertEqual(pipeline.wireReceives(), [other], "allowed-ips now covers .99 and replaces the VNIC's own address")
        XCTAssertEqual(pipeline.dropsByName, ["spoof-ip": 2])
        try change { $0.protection = [] }
        pipeline.vmSends([udp(from: "192.0.2.1")])
        pipeline.loopOnce()
        XCTAssertEqual(pipeline.wireReceives().count, 1, "protection none: any source")
    }

    /// Sources are resolved into the VNIC's slots once per snapshot; a record
    /// with more of a family than the slots hold (RecordPolicy.capacity4/6) is
    /// asked per packet: every one of them passes, nothing else does, loop
    /// after loop, and a commit that shrinks the list applies.
    func testMoreSourcesThanTheSlotsHold() throws {
        let n4 = RecordPolicy.capacity4 + 4, n6 = RecordPolicy.capacity6 + 4
        func v6(_ i: Int, host: UInt8 = 1) -> [UInt8] { [0x20, 0x01, 0x0d, 0xb8, 0, UInt8(i), 0, 0] + [UInt8](repeating: 0, count: 7) + [host] }
        try change {
            $0.allowedIPs = (0..<n4).map { IPv4CIDR("10.78.\($0).0/24")! }
            $0.allowedIPs6 = (0..<n6).map { IPv6CIDR(network: IPv6Address(bytes: v6($0, host: 0))!, prefixLength: 64)! }
        }
        let router = [UInt8](repeating: 0, count: 15) + [1]
        func frame6(_ i: Int) -> [UInt8] {
            FrameBuilder.ipv6UDP(dst: Self.gw, src: Self.vm, srcIP: v6(i), dstIP: router, srcPort: 1024, dstPort: 9)
        }
        for round in 0..<2 {
            let good = (0..<n4).map { udp(from: "10.78.\($0).9") } + (0..<n6).map(frame6)
            pipeline.vmSends(good + [udp(from: "10.79.0.9"), frame6(n6)])
            pipeline.loopOnce()
            XCTAssertEqual(pipeline.wireReceives(), good, "round \(round): every allowed source, in order")
            XCTAssertEqual(pipeline.dropsByName, ["spoof-ip": UInt64(round + 1), "spoof-ipv6": UInt64(round + 1)], "round \(round)")
        }
        try change { $0.allowedIPs = [IPv4CIDR("10.78.0.0/24")!]; $0.allowedIPs6 = [] }
        pipeline.vmSends([udp(from: "10.78.0.9"), udp(from: "10.78.\(n4 - 1).9")])
        pipeline.loopOnce()
        XCTAssertEqual(pipeline.wireReceives(), [udp(from: "10.78.0.9")], "the shorter list, at the next loop")
    }

    /// No record (the VNIC deleted while the table still names it): its policy
    /// is unknown, so nothing of its passes either way, counted no-config.
    func testAVNICWithoutARecordForwardsNothing() throws {
        try store.delete(name: "vnic1")
        pipeline.vmSends([udp(from: "10.77.0.11")])
        pipeline.wireSends([udp(from: "10.77.0.1", to: "10.77.0.11")])
        pipeline.loopOnce()
        XCTAssertEqual(pipeline.wireReceives().count, 0)
        XCTAssertEqual(pipeline.vmReceives().count, 0)
        XCTAssertEqual(pipeline.dropsByName, ["no-config": 2])
    }

    func testWireToVMIsCopiedToThePort() {
        let frames = (0..<5).map { udp(from: "10.77.0.1", to: "10.77.0.11", port: UInt16(100 + $0), length: 60 + $0 * 100) }
        pipeline.wireSends(frames)
        pipeline.loopOnce()
        XCTAssertEqual(pipeline.vmReceives(), frames)
        XCTAssertEqual(pipeline.received, 5)
    }

    /// The guest protocol's requests and (with dhcp=on) DHCP go to the control
    /// thread, tagged with the VNIC's index, never to the wire; other service
    /// traffic goes nowhere.
    func testServiceTrafficAndDHCPGoToTheControlThread() throws {
        let request = udp(from: "10.77.0.11", to: "169.254.169.254", port: GuestProtocol.servicePort)
        let otherService = udp(from: "10.77.0.11", to: "169.254.169.254", port: 80)
        let discover = FrameBuilder.dhcp(op: 1, src: Self.vm, dst: MACAddress("ff:ff:ff:ff:ff:ff")!, srcIP: IPv4Address("0.0.0.0")!,
                                         dstIP: IPv4Address("255.255.255.255")!, chaddr: Self.vm, options: [53, 1, 1, 255])
        pipeline.vmSends([request, otherService, discover])
        pipeline.loopOnce()
        XCTAssertEqual(pipeline.controlReceives().map(\.0), [index], "the request only")
        XCTAssertEqual(pipeline.wireReceives(), [discover], "dhcp off: the VM's DHCP goes to the wire")
        try change { $0.dhcp = .on }
        pipeline.vmSends([discover])
        pipeline.loopOnce()
        XCTAssertEqual(pipeline.controlReceives().map(\.1), [discover], "dhcp on: vnic's server gets it")
        XCTAssertEqual(pipeline.wireReceives().count, 0)
        XCTAssertEqual(pipeline.dropsByName, [:])
    }

    /// maxbw from the record: 10 Mbit/s admits its burst allowance at once and
    /// leaves the rest waiting in the port's ring (the VSQ), not dropped.
    func testMaxbwHoldsTheRestInTheRing() throws {
        try change { $0.maxbw = 10_000_000 }
        let frames = (0..<64).map { _ in udp(from: "10.77.0.11", length: 1500) }
        pipeline.vmSends(frames)
        pipeline.loopOnce()
        let first = pipeline.wireReceives().count
        XCTAssertGreaterThan(first, 0)
        XCTAssertLessThan(first, 64, "not the whole burst at once at 10 Mbit/s")
        XCTAssertEqual(pipeline.dropsByName, [:], "held, not dropped")
        XCTAssertTrue(pipeline.worker.stalled, "frames wait on maxbw's clock, which raises no event: an idle wait must time out")
        try change { $0.maxbw = nil }
        pipeline.loopOnce()
        XCTAssertEqual(first + pipeline.wireReceives().count, 64, "the rest follows once the limit is lifted")
        pipeline.loopOnce()
        XCTAssertFalse(pipeline.worker.stalled, "nothing waits: an idle wait needs no timeout")
    }
}

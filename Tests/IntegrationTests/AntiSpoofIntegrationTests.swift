// Anti-spoof against the real kernel: VM1 (every protection on) sends spoofed
// frames from its namespace through AF_XDP (vnic-pktgen --frame-hex); a capture
// on the wire (tcpdump, a filter per spoof) must see none of them and vnicd's
// counter for the reason must equal the number sent. Legitimate frames of the
// same kinds must all reach the wire, with every drop counter at zero.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class AntiSpoofIntegrationTests: XCTestCase {
    static let count = 200

    private struct Case {
        var name: String
        var frame: [UInt8]
        var filter: String
        var counter: String?      // nil: legitimate, must pass
    }

    private func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    private func cases(_ t: LabTopology) -> [Case] {
        let vm = t.vmMAC(1), wire = t.wireMAC, bcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)
        let vmIP = t.vmIP(1).address, wireIP = t.wireIP.address
        let forged = MACAddress("02:00:00:00:01:99")!
        let v6LinkLocal: [UInt8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0xff, 0xfe, 0, 0x01, 0x01]
        let v6Foreign: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x99]
        let v6AllNodes: [UInt8] = [0xff, 0x02] + [UInt8](repeating: 0, count: 13) + [1]
        func udp(_ src: MACAddress, _ ip: IPv4Address, sport: UInt16 = 40000) -> [UInt8] {
            FrameBuilder.udp(dst: wire, src: src, srcIP: ip, dstIP: wireIP, srcPort: sport, dstPort: 7777, length: 60)
        }
        return [
            Case(name: "forged source MAC", frame: udp(forged, vmIP), filter: "ether src \(forged)", counter: "spoof-mac"),
            Case(name: "forged IPv4 source", frame: udp(vm, IPv4Address("10.77.0.99")!), filter: "src host 10.77.0.99",
                 counter: "spoof-ip"),
            Case(name: "forged ARP reply", frame: FrameBuilder.arp(op: 2, src: vm, dst: wire, senderMAC: vm,
                 senderIP: t.vmIP(2).address, targetMAC: wire, targetIP: wireIP),
                 filter: "arp and arp[6:2] = 2 and arp[14:4] = 0x0a4d000c", counter: "spoof-arp"),
            Case(name: "IPv6 foreign source", frame: FrameBuilder.ipv6UDP(dst: wire, src: vm, srcIP: v6Foreign,
                 dstIP: v6AllNodes, srcPort: 40000, dstPort: 7777), filter: "ip6 src 2001:db8::99", counter: "spoof-ipv6"),
            Case(name: "DHCP offer", frame: FrameBuilder.dhcp(op: 2, src: vm, dst: bcast, srcIP: vmIP,
                 dstIP: IPv4Address("255.255.255.255")!, chaddr: wire, options: [53, 1, 2]),
                 filter: "udp src port 67", counter: "spoof-dhcp"),
            Case(name: "other ethertype", frame: FrameBuilder.ethernet(dst: wire, src: vm, type: 0x88B5, payload: [1, 2, 3]),
                 filter: "ether proto 0x88b5", counter: "restricted"),
            // Legitimate counterparts.
            Case(name: "IPv4 from its address", frame: udp(vm, vmIP, sport: 40001), filter: "udp src port 40001", counter: nil),
            Case(name: "ARP request", frame: FrameBuilder.arp(op: 1, src: vm, dst: bcast, senderMAC: vm, senderIP: vmIP,
                 targetMAC: MACAddress(rawValue: 0), targetIP: IPv4Address("10.77.0.250")!),
                 filter: "arp and arp[24:4] = 0x0a4d00fa", counter: nil),
            Case(name: "IPv6 from its link-local address", frame: FrameBuilder.ipv6UDP(dst: wire, src: vm, srcIP: v6LinkLocal,
                 dstIP: v6AllNodes, srcPort: 40002, dstPort: 7777), filter: "ip6 and udp src port 40002", counter: nil),
            Case(name: "DHCP discover", frame: FrameBuilder.dhcp(op: 1, src: vm, dst: bcast, srcIP: IPv4Address("0.0.0.0")!,
                 dstIP: IPv4Address("255.255.255.255")!, chaddr: vm, options: [53, 1, 1]),
                 filter: "udp src port 68", counter: nil),
        ]
    }

    func testSpoofsNeverReachTheWireAndAreCounted() throws {
        guard Command.find("tcpdump") != nil else { throw TestEnvironment.unavailable("tcpdump not found") }
        let lab = try LabFixture(test: self, vms: 2, queues: 1)
        let t = lab.topology
        try lab.createVNICs()
        try lab.vnicadm("set-linkprop", "-p", "protection=mac-nospoof,ip-nospoof,dhcp-nospoof,restricted", "vnic1")
        _ = try lab.startVnicd()

        for c in cases(t) {
            let file = lab.path("capture-\(c.name.replacingOccurrences(of: " ", with: "-")).pcap")
            let capture = try lab.start(in: t.wireNamespace, ["tcpdump", "-i", t.wire, "-n", "--immediate-mode", "-U", "-w", file] + c.filter.split(separator: " ").map(String.init))
            let ready = Date().addingTimeInterval(5)
            while !capture.stderrSoFar.contains("listening on") && Date() < ready { usleep(20_000) }
            let send = try lab.run(in: t.vmNamespace(1), try lab.bin("vnic-pktgen"), "-i", t.vmInterface,
                                   "--frame-hex", hex(c.frame), "--count", "\(Self.count)", "--rate", "20000")
            XCTAssertTrue(send.succeeded, "\(c.name): \(send.diagnostic)")
            usleep(500_000)
            // tcpdump's "received by filter": every matching frame the wire saw,
            // also those its own buffer had to drop on a loaded machine.
            let stopped = capture.terminate()
            let seen = stopped.stderr.split(separator: "\n")
                .first { $0.hasSuffix("packets received by filter") || $0.hasSuffix("packet received by filter") }
                .flatMap { Int($0.split(separator: " ")[0]) } ?? -1
            if c.counter != nil {
                XCTAssertEqual(seen, 0, "\(c.name): spoofed frames reached the wire")
            } else {
                XCTAssertGreaterThanOrEqual(seen, Self.count, "\(c.name): legitimate frames dropped; capture: \(stopped.stderr); drops \(lab.status()?.vnics["vnic1"]?.drops ?? [:]) tx \(lab.status()?.vnics["vnic1"]?.txPackets ?? 0) queues \(lab.status()?.queues ?? []) wire rx \((try? lab.rxPackets(t.wire, in: t.wireNamespace)) ?? -1)")
            }
        }
        let s = try lab.freshStatus()
        let drops = s.vnics["vnic1"]?.drops ?? [:]
        for c in cases(t) {
            if let counter = c.counter { XCTAssertEqual(drops[counter], UInt64(Self.count), "\(c.name): counter \(counter)") }
        }
        let expected = Set(cases(t).compactMap(\.counter))
        for (reason, n) in drops where !expected.contains(reason) {
            XCTAssertEqual(n, 0, "unexpected drops \(reason)=\(n) (false positives?)")
        }

        // Warnings reach the audit log, at most one per second per reason, and
        // together they account for every dropped frame.
        usleep(1_300_000)
        struct Event: Decodable { var vnic: String; var origin: String; var verdict: String; var reason: String; var time: String }
        let events = try JSONDecoder().decode([Event].self, from: Data(try lab.vnicadm("show-events", "--json", "vnic1").stdout.utf8))
        for reason in expected {
            let warnings = events.filter { $0.origin == "vm" && $0.verdict == "denied" && $0.reason.hasPrefix(reason + ":") }
            XCTAssertFalse(warnings.isEmpty, "no audit warning for \(reason)")
            let frames = warnings.compactMap { w in Int(w.reason.split(separator: " ")[1]) }.reduce(0, +)
            XCTAssertEqual(frames, Self.count, "\(reason): warnings account for \(frames) frames")
            XCTAssertEqual(Set(warnings.map { String($0.time.prefix(19)) }).count, warnings.count,
                           "\(reason): more than one warning in a second")
        }
    }
}

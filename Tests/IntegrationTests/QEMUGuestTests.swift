// Real guests through vnicd, as libvirt attaches them: a Debian kernel under
// QEMU (TCG here) with QEMU's default virtio-net (partial checksums, TSO) on a
// tap QEMU makes at each start, a 2-queue uplink served by two workers. The
// guest is driven over its console (vnic-lab guest exec); see QEMUGuestLabTests
// for the lab's own guarantees.
import Foundation
import VnicCore
import VnicLabKit
import XCTest

final class QEMUGuestTests: XCTestCase {
    static let python = ChecksumOffloadTests.python

    private func exec(_ guest: QEMUGuest, _ command: String, timeout: Int = 60,
                      file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try guest.exec(command, timeout: .seconds(Int64(timeout)))
        XCTAssertEqual(r.status, 0, "guest: \(command): \(r.output)", file: file, line: line)
        return r.output
    }

    /// The guest's TCP and UDP checksum errors (/proc/net/snmp).
    private func guestChecksumErrors(_ guest: QEMUGuest) throws -> [String: Int] {
        let snmp = try exec(guest, "cat /proc/net/snmp")
        var out: [String: Int] = [:]
        let lines = snmp.split(separator: "\n").map { $0.split(separator: " ") }
        for (i, names) in lines.enumerated() where i + 1 < lines.count && names.first == lines[i + 1].first {
            for (k, v) in zip(names, lines[i + 1]) where k == "InCsumErrors" { out[String(names[0]) + "InCsumErrors"] = Int(v) }
        }
        return out
    }

    private func wireChecksumErrors(_ lab: LabFixture) throws -> [String: Int] {
        let r = try lab.run(in: lab.topology.wireNamespace, "nstat", "-az", "TcpInCsumErrors", "UdpInCsumErrors")
        var out: [String: Int] = [:]
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 2, let v = Int(f[1]) { out[String(f[0])] = v }
        }
        return out
    }

    private func waitFor(_ what: String, seconds: Double, _ condition: () throws -> Bool) throws -> Double {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            if try condition() { return Date().timeIntervalSince(start) }
            usleep(50_000)
        }
        XCTFail("\(what): not within \(seconds) s")
        return seconds
    }

    /// A 1-vCPU guest on a single-queue tap (libvirt's default) on a 2-queue
    /// uplink with two workers, QEMU's default offloads: DHCP from vnicd, ping
    /// both ways, 2 MiB over TCP each way with matching SHA-256, UDP both ways,
    /// no checksum error anywhere; in-band requests inside and outside its
    /// policy; vnicadm set reaching its agent; a spoof from its own kernel
    /// dropped; then a reboot (QEMU stopped, its tap gone, a new one at the next
    /// start) with vnicd left running.
    func testSingleQueueGuestWithDefaultOffloads() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 2, qemu: 1)
        let t = lab.topology
        let guest = try lab.guest(2)
        XCTAssertEqual(t.port(2), "vm2t")
        try lab.vnicadm("create-vnic", "-l", t.uplink, "-m", "\(t.vmMAC(1))", "--port", t.port(1), "-i", "\(t.vmIP(1))", "vnic1")
        try lab.vnicadm("create-vnic", "-l", t.uplink, "-m", "\(t.vmMAC(2))", "--port", t.port(2), "-i", "\(t.vmIP(2))",
                        "-p", "gateway=\(t.wireIP.address)", "vnic2")
        try lab.vnicadm("set-linkprop", "-p", "dhcp=on", "vnic2")
        try lab.vnicadm("set-linkprop", "-p", "protection=mac-nospoof,ip-nospoof,dhcp-nospoof", "vnic2")
        try lab.vnicadm("set-policy", "-p", "ip=10.77.0.20-10.77.0.29", "vnic2")
        let vnicd = try lab.startVnicd(["--queues", "2"])
        let features = try exec(guest, "ethtool -k eth0 | grep -E '^(tx-checksumming|tcp-segmentation-offload):'")
        XCTAssertTrue(features.contains("tx-checksumming: on") && features.contains("tcp-segmentation-offload: on"),
                      "QEMU's defaults: \(features)")

        // DHCP from vnicd (the lab's static address removed first).
        _ = try exec(guest, "ip addr flush dev eth0 && udhcpc -i eth0 -n -q -t 5 -T 2 >/dev/null 2>&1; ip -4 -o addr show dev eth0")
        let leased = try exec(guest, "ip -4 -o addr show dev eth0")
        XCTAssertTrue(leased.contains("10.77.0.12/24"), "the lease: \(leased)")
        XCTAssertTrue(try exec(guest, "ip route show default").contains("via 10.77.0.1"))

        // Ping both ways.
        XCTAssertTrue(try exec(guest, "ping -c 3 -W 2 10.77.0.1").contains("3 packets received"))
        let ping = try lab.run(in: t.wireNamespace, "ping", "-c", "3", "-W", "2", "10.77.0.12")
        XCTAssertTrue(ping.succeeded, ping.diagnostic)

        // TCP, 2 MiB guest -> wire: same SHA-256 on both sides.
        _ = try exec(guest, "dd if=/dev/urandom of=/tmp/out bs=1024 count=2048 2>/dev/null")
        let mine = try exec(guest, "sha256sum /tmp/out").split(separator: " ").first.map(String.init) ?? "?"
        let sink = try lab.start(in: t.wireNamespace, Self.python, "-c", ChecksumOffloadTests.script, "tcp-sink", "9001")
        _ = try waitFor("TCP sink ready", seconds: 5) { sink.stderrSoFar.contains("ready") }
        _ = try exec(guest, "nc -w 20 10.77.0.1 9001 < /tmp/out", timeout: 120)
        let got = sink.wait(timeout: .seconds(60)).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(got, "2097152 \(mine)", "guest -> wire: 2 MiB over TCP arrive whole")

        // TCP, 2 MiB wire -> guest.
        _ = try exec(guest, "(nc -l -p 9002 > /tmp/in &) ; sleep 0.5")
        let sent = try lab.run(in: t.wireNamespace, [Self.python, "-c", ChecksumOffloadTests.script, "tcp-source",
                                                     "10.77.0.12", "9002", "\(2 << 20)"], timeout: .seconds(120))
        XCTAssertTrue(sent.succeeded, sent.diagnostic)
        let theirs = sent.stdout.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? "?"
        _ = try waitFor("wire -> guest transfer complete", seconds: 30) {
            (try? exec(guest, "stat -c %s /tmp/in").trimmingCharacters(in: .whitespacesAndNewlines)) == "\(2 << 20)"
        }
        XCTAssertEqual(try exec(guest, "sha256sum /tmp/in").split(separator: " ").first.map(String.init), theirs,
                       "wire -> guest: 2 MiB over TCP arrive whole")

        // UDP both ways (iperf3): every datagram arrives.
        let server = try lab.start(in: t.wireNamespace, "iperf3", "-s", "-1", "-p", "5201")
        usleep(500_000)
        let up = try exec(guest, "iperf3 -c 10.77.0.1 -p 5201 -u -b 2M -t 2 -l 1200 | grep -E 'receiver'", timeout: 60)
        _ = server.wait(timeout: .seconds(20))
        XCTAssertTrue(up.contains(" 0/") || up.contains("(0%)"), "guest -> wire UDP: \(up)")
        let server2 = try lab.start(in: t.wireNamespace, "iperf3", "-s", "-1", "-p", "5202")
        usleep(500_000)
        let down = try exec(guest, "iperf3 -c 10.77.0.1 -p 5202 -u -b 2M -t 2 -l 1200 -R | grep -E 'receiver'", timeout: 60)
        _ = server2.wait(timeout: .seconds(20))
        XCTAssertTrue(down.contains(" 0/") || down.contains("(0%)"), "wire -> guest UDP: \(down)")

        for (name, n) in try wireChecksumErrors(lab) { XCTAssertEqual(n, 0, "wire \(name)") }
        let inGuest = try guestChecksumErrors(guest)
        XCTAssertEqual(inGuest["Tcp:InCsumErrors"] ?? -1, 0, "\(inGuest)")
        XCTAssertEqual(inGuest["Udp:InCsumErrors"] ?? -1, 0, "\(inGuest)")
        let s = try lab.freshStatus()
        XCTAssertEqual(s.vnics["vnic2"]?.state, "up")
        XCTAssertGreaterThan(s.queues[1].rxPackets, 0, "uplink queue 1 carried frames for the guest (handed to worker 0): \(s.queues)")
        XCTAssertEqual(s.vnics["vnic2"]?.drops ?? [:], [:], "no drop: \(s.vnics["vnic2"]!)")

        // In-band: inside the policy accepted and applied in the guest kernel; outside denied.
        let inside = try guest.exec("vnic-guest request ip=10.77.0.21", timeout: .seconds(30))
        XCTAssertEqual(inside.status, 0, inside.output)
        XCTAssertTrue(try exec(guest, "ip -4 -o addr show dev eth0").contains("10.77.0.21/24"))
        XCTAssertEqual(try lab.vnicadm("show-vnic", "-p", "-o", "ip", "vnic2").stdout, "10.77.0.21/24\n")
        let outside = try guest.exec("vnic-guest request ip=10.77.0.99 --timeout 1", timeout: .seconds(30))
        XCTAssertEqual(outside.status, 3, outside.output)
        let events = try lab.vnicadm("show-events", "-p", "-o", "origin,parameter,new,verdict", "vnic2").stdout
        XCTAssertTrue(events.contains("vm:ip:10.77.0.99/24:denied"), events)

        // Host-initiated: vnicadm set reaches the guest's vnic-guest listen.
        _ = try exec(guest, "(vnic-guest listen > /tmp/listen.log 2>&1 &) ; sleep 1")
        let set = try lab.vnicadm("set", "vnic2", "mtu=1400")
        XCTAssertTrue(set.stdout.contains("mtu=1400: guest acknowledged"), set.stdout)
        XCTAssertTrue(try exec(guest, "ip link show eth0").contains("mtu 1400"))

        // A spoof from the guest's own kernel: a foreign address, dropped and counted.
        _ = try exec(guest, "ip addr add 10.77.0.99/24 dev eth0")
        _ = try guest.exec("ping -c 5 -i 0.2 -W 1 -I 10.77.0.99 10.77.0.1", timeout: .seconds(30))
        _ = try exec(guest, "ip addr del 10.77.0.99/24 dev eth0")
        usleep(300_000)
        let spoofs = try lab.freshStatus().vnics["vnic2"]?.drops["spoof-ip"] ?? 0
        XCTAssertGreaterThanOrEqual(spoofs, 5, "pings from 10.77.0.99 dropped as spoof-ip")

        // Reboot: QEMU stops (its tap goes), starts again (a new tap, a new ifindex); vnicd keeps running.
        let before = try lab.link("vm2t", in: t.hostNamespace).ifindex
        try guest.stop()
        _ = try waitFor("vnic2 down without its tap", seconds: 2) {
            lab.status()?.vnics["vnic2"]?.state == "down: port vm2t not found"
        }
        try guest.start()
        let booted = Date()
        XCTAssertNotEqual(try lab.link("vm2t", in: t.hostNamespace).ifindex, before)
        // As a DHCP guest's boot would: its lease is the address it obtained in-band.
        _ = try exec(guest, "ip addr flush dev eth0 && udhcpc -i eth0 -n -q -t 5 -T 2 >/dev/null 2>&1")
        let back = try waitFor("the rebooted guest answers the wire", seconds: 10) {
            try lab.run(in: t.wireNamespace, "ping", "-c", "1", "-W", "1", "10.77.0.21").succeeded
        }
        let reachable = Date().timeIntervalSince(booted)
        XCTAssertLessThan(reachable, 10, "reachable within 10 s of its boot")
        print("QEMUGuestTests: the rebooted guest answered the wire \(String(format: "%.1f", reachable)) s after its boot (its DHCP included; first ping \(String(format: "%.1f", back)) s)")
        XCTAssertEqual(lab.status()?.vnics["vnic2"]?.state, "up")
        XCTAssertTrue(vnicd.isRunning, "vnicd was never restarted")
    }

    /// A 2-vCPU guest on a 2-queue tap: both queues carry its traffic, also
    /// after a restart during which QEMU attaches the second queue only when the
    /// guest enables it; shut down, no worker spins.
    func testTwoQueueGuestUsesBothQueuesAndIdlesWhenGone() throws {
        let lab = try LabFixture(test: self, vms: 2, queues: 2, qemu: 1, guestQueues: 2)
        let t = lab.topology
        let guest = try lab.guest(2)
        try lab.createVNICs()
        let vnicd = try lab.startVnicd(["--queues", "2"])
        XCTAssertTrue(try exec(guest, "ethtool -l eth0 | tail -n 4").contains("Combined:\t2"))
        // Traffic from both vCPUs (each transmits on its own queue), TCP so both directions carry a flow.
        for cpu in 0...1 {
            _ = try exec(guest, "taskset -c \(cpu) ping -c 20 -i 0.05 -W 1 10.77.0.1 >/dev/null")
        }
        let server = try lab.start(in: t.wireNamespace, "iperf3", "-s", "-p", "5201")
        defer { _ = server.terminate() }
        usleep(500_000)
        let tcp = try exec(guest, "iperf3 -c 10.77.0.1 -p 5201 -t 3 -P 4 | grep -E 'SUM.*receiver'", timeout: 60)
        XCTAssertFalse(tcp.isEmpty, tcp)
        let s = try lab.freshStatus()
        XCTAssertEqual(s.vnics["vnic2"]?.state, "up")
        XCTAssertTrue(vnicd.stderrSoFar.contains("vnic vnic2 up on port vm2t"), vnicd.stderrSoFar)
        let rx = try lab.run(in: t.hostNamespace, "ip", "-s", "-j", "link", "show", "dev", "vm2t").stdout
        // Per queue: what the workers sent to the wire (each took the guest's frames from its own queue).
        XCTAssertGreaterThan(s.queues[0].txPackets, 10, "\(s.queues) \(rx)")
        XCTAssertGreaterThan(s.queues[1].txPackets, 10, "worker 1 served the tap's queue 1: \(s.queues)")

        // A start while vnicd runs: QEMU makes the tap with one queue attached, the guest
        // enables the second as it boots; vnicd follows (within a second of the change).
        try guest.stop()
        try guest.start()
        _ = try waitFor("vnicd re-attached the tap with its second queue", seconds: 5) {
            vnicd.stderrSoFar.contains("port vm2t has 2 queues now")
        }
        let before = try lab.freshStatus().queues.map(\.txPackets)
        for cpu in 0...1 {
            _ = try exec(guest, "taskset -c \(cpu) ping -c 20 -i 0.05 -W 1 10.77.0.1 >/dev/null")
        }
        let after = try lab.freshStatus().queues.map(\.txPackets)
        XCTAssertGreaterThanOrEqual(after[0] - before[0], 20, "queue 0 after the restart: \(before) -> \(after)")
        XCTAssertGreaterThanOrEqual(after[1] - before[1], 20, "queue 1 after the restart: \(before) -> \(after)")

        try guest.stop()
        usleep(2_500_000)   // past the idle workers' short waits
        let cpu = try workerCPU(pid: vnicd.pid, seconds: 2)
        for (name, share) in cpu { XCTAssertLessThan(share, 0.05, "\(name) with the guest shut down: \(cpu)") }
    }
}

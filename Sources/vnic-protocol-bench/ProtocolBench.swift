// vnic-protocol-bench: latency of the configuration paths.
//
//   vnic-protocol-bench requests -i IF --count N [--param mtu --values 1500,1400]
//       run inside a VM's namespace: N requests through the real protocol, one at
//       a time, each a real change (values alternate), the time from sending the
//       request to receiving the reply; prints p50/p99/max in microseconds as JSON.
//   vnic-protocol-bench commit --db DB --vnic NAME --ip A/L
//       commits a host-initiated change in-process and prints the CLOCK_MONOTONIC
//       nanoseconds just before the commit (the script compares the first frame
//       the new address gets through the dataplane with it).
import Foundation
import VnicConfig
import VnicCore
import VnicGuest

@main
struct ProtocolBench {
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func arg(_ name: String) -> String? {
        let a = CommandLine.arguments
        guard let i = a.firstIndex(of: name), i + 1 < a.count else { return nil }
        return a[i + 1]
    }

    static func main() throws {
        let mode = CommandLine.arguments.dropFirst().first ?? ""
        switch mode {
        case "requests": try requests()
        case "commit": try commit()
        default:
            printError("usage: vnic-protocol-bench requests -i IF --count N | commit --db DB --vnic NAME --ip A/L")
            exit(2)
        }
    }

    static func requests() throws {
        let facts = try InterfaceFacts.read(arg("-i"))
        let socket = try PacketSocket(ifindex: facts.index, ifname: facts.name)
        let count = Int(arg("--count") ?? "200") ?? 200
        let param = arg("--param") ?? "mtu"
        let values = (arg("--values") ?? "1500,1400").split(separator: ",").map(String.init)
        let port: UInt16 = 50123
        var latencies: [Double] = []
        var lost = 0
        for i in 0..<count {
            let id = UInt32(i + 1) &* 2_654_435_761 | 1
            let frame = FrameBuilder.guestFrame(
                dst: MACAddress(rawValue: 0xFFFF_FFFF_FFFF), src: facts.mac, srcIP: facts.sourceAddress,
                dstIP: GuestProtocol.serviceAddress, srcPort: port, dstPort: GuestProtocol.servicePort,
                message: GuestMessage(kind: .request, id: id, parameter: param, value: values[i % values.count]))
            let t0 = now()
            try socket.send(frame)
            var got = false
            while now() - t0 < 1_000_000_000 {
                guard let (f, out) = socket.receive(timeoutMs: 100) else { continue }
                if FrameMatch.reply(f, outgoing: out, id: id, port: port) != nil { got = true; break }
            }
            if got { latencies.append(Double(now() - t0) / 1000) } else { lost += 1 }
            usleep(25_000)   // under the VNIC's request rate (50/s)
        }
        latencies.sort()
        func pct(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(p / 100 * Double(latencies.count)))] }
        let out: [String: Any] = ["requests": count, "answered": latencies.count, "lost": lost,
                                  "p50_us": pct(50), "p99_us": pct(99), "max_us": latencies.last ?? 0]
        print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
    }

    static func commit() throws {
        guard let db = arg("--db"), let name = arg("--vnic"), let ip = arg("--ip"), let address = IPv4Interface(ip) else {
            printError("commit needs --db DB --vnic NAME --ip A/L"); exit(2)
        }
        let store = try ConfigStore.open(path: db, create: false)
        let t0 = now()
        try store.update { (tx) throws(VnicError) in
            try tx.update(name: name, reason: "vnic-protocol-bench") { r in r.ips = [address] }
        }
        print(t0)
    }
}

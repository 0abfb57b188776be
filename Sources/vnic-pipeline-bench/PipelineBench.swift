// vnic-pipeline-bench: the in-memory pipeline (rings without the kernel) with
// every check on, next to the plain C forwarding loop, in one run.
//
// Pipeline: a VM's 64-byte UDP frames, port receive ring -> anti-spoof with all
// four protections (mac-, ip-, dhcp-nospoof, restricted) -> the VNIC's record
// read through the fast-path reader once per burst (a real LMDB file) -> the
// maxbw rate limiter (1 Tbit/s: it runs, it does not limit) -> the uplink's
// transmit ring. Baseline: bench/c-forwarder's loop over the same kind of rings,
// driven the same way. Prints ns per packet (median of runs, with min and max)
// and, under LD_PRELOAD=build/malloc_count.so, the pipeline's heap allocations
// are counted (only while this thread is named vnic-worker-bench).
import CPlainForwarder
import CVnicShim
import Foundation
import VnicConfig
import VnicCore
import VnicDataplane

@main
struct PipelineBench {
    static func main() throws {
        let args = CommandLine.arguments
        let packets = args.count > 1 ? Int(args[1]) ?? 5_000_000 : 5_000_000
        let runs = args.count > 2 ? Int(args[2]) ?? 5 : 5
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vnic-pipeline-bench-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try ConfigStore.open(path: dir.appendingPathComponent("vnic.db").path, create: true)
        let mac = MACAddress("02:00:00:00:01:01")!
        var record = VNICRecord(name: "vnic1", link: "uplink0", port: "vm1p", mac: mac,
                                ips: [IPv4Interface("10.77.0.11/24")!])
        record.protection = .all
        record.maxbw = 1_000_000_000_000
        let stored = try store.create(record)
        let reader = try ConfigReader(store: store)
        let frame = FrameBuilder.udp(dst: MACAddress("02:00:00:00:00:01")!, src: mac, srcIP: IPv4Address("10.77.0.11")!,
                                     dstIP: IPv4Address("10.77.0.1")!, srcPort: 1024, dstPort: 9, length: 60)
        let pipeline = InMemoryPipeline(index: stored.index, mac: mac, protection: .all,
                                        sources: stored.effectiveAllowedIPs, maxbw: record.maxbw!, reader: reader, frame: frame)

        var swiftNs: [Double] = [], plainNs: [Double] = []
        _ = pipeline.runWorker(packets: 100_000)   // warm up
        for _ in 0..<runs {
            vnic_set_current_thread_name("vnic-worker-bench")
            let w = pipeline.runWorker(packets: packets)
            vnic_set_current_thread_name("vnic-bench")
            swiftNs.append(Double(w.nanos) / Double(w.forwarded))
            let p = pipeline.runPlain(packets: packets) { rx, tx, fill, comp, pool, count in
                vnic_plain_forward(rx, tx, fill, comp, pool, count)
            }
            plainNs.append(Double(p.nanos) / Double(p.forwarded))
        }
        let drops = pipeline.drops.reduce(0, +)
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        let s = median(swiftNs), c = median(plainNs)
        let result: [String: Any] = [
            "packets_per_run": packets, "runs": runs,
            "pipeline_ns_per_packet": ["median": s, "min": swiftNs.min()!, "max": swiftNs.max()!],
            "plain_c_ns_per_packet": ["median": c, "min": plainNs.min()!, "max": plainNs.max()!],
            "ratio": s / c, "pipeline_drops": drops,
        ]
        print(String(format: "pipeline (all checks, record per burst, maxbw): %.2f ns/packet (min %.2f, max %.2f)",
                     s, swiftNs.min()!, swiftNs.max()!))
        print(String(format: "plain C forwarding loop:                         %.2f ns/packet (min %.2f, max %.2f)",
                     c, plainNs.min()!, plainNs.max()!))
        print(String(format: "ratio %.2f; frames dropped by the checks: %llu (legitimate frames: expected 0)", s / c, drops))
        if let out = ProcessInfo.processInfo.environment["VNIC_BENCH_JSON"] {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .prettyPrinted])
            try data.write(to: URL(fileURLWithPath: out))
        }
        print("pipeline packets measured: \(packets * runs)")
    }
}

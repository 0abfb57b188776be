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
// The other direction (wire -> VM: the VNIC's receive ring on the uplink to the
// VM's port, with the copy between the two UMEMs and the limiter towards the VM)
// is timed the same way. For callgrind (bench/pipeline.sh --callgrind),
// VNIC_BENCH_ONLY=to-wire|to-vm|plain runs one of them alone, `packets` frames
// once, in bursts of VNIC_BENCH_BURST frames (default 64), and nothing else.
// VNIC_BENCH_FRAME=tcp uses 64-byte TCP segments with a full checksum instead
// (what a stack sends; the checksum-completion check reads them). Last, the
// cost of completing a partial checksum (ChecksumCompletion) on a 64-byte and
// a 1514-byte TCP segment.
import CPlainForwarder
import CVnicShim
import Foundation
import VnicConfig
import VnicCore
import VnicDataplane
import VnicDataplaneTools

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
        let tcp = ProcessInfo.processInfo.environment["VNIC_BENCH_FRAME"] == "tcp"
        var frame = tcp ? tcpSegment(mac, length: 64) : FrameBuilder.udp(dst: MACAddress("02:00:00:00:00:01")!, src: mac,
                                                                           srcIP: IPv4Address("10.77.0.11")!, dstIP: IPv4Address("10.77.0.1")!,
                                                                           srcPort: 1024, dstPort: 9, length: 60)
        if tcp { _ = frame.withUnsafeMutableBytes { ChecksumCompletion.complete($0.baseAddress!, len: 64) } }   // a full checksum
        let pipeline = InMemoryPipeline(index: stored.index, mac: mac, reader: reader, frame: frame)

        let env = ProcessInfo.processInfo.environment
        if let only = env["VNIC_BENCH_ONLY"] {
            let burst = env["VNIC_BENCH_BURST"].flatMap(UInt32.init) ?? InMemoryPipeline.burst
            switch only {
            case "to-wire": _ = pipeline.runWorker(packets: packets, burst: burst)
            case "to-vm": _ = pipeline.runWorkerToVM(packets: packets, burst: burst)
            case "plain": _ = pipeline.runPlain(packets: packets) { vnic_plain_forward($0, $1, $2, $3, $4, $5) }
            default: fatalError("VNIC_BENCH_ONLY: '\(only)' is not to-wire, to-vm or plain")
            }
            return
        }
        var swiftNs: [Double] = [], toVMNs: [Double] = [], plainNs: [Double] = []
        _ = pipeline.runWorker(packets: 100_000)   // warm up
        _ = pipeline.runWorkerToVM(packets: 100_000)
        for _ in 0..<runs {
            vnic_set_current_thread_name("vnic-worker-bench")
            let w = pipeline.runWorker(packets: packets)
            let v = pipeline.runWorkerToVM(packets: packets)
            vnic_set_current_thread_name("vnic-bench")
            swiftNs.append(Double(w.nanos) / Double(w.forwarded))
            toVMNs.append(Double(v.nanos) / Double(v.forwarded))
            let p = pipeline.runPlain(packets: packets) { rx, tx, fill, comp, pool, count in
                vnic_plain_forward(rx, tx, fill, comp, pool, count)
            }
            plainNs.append(Double(p.nanos) / Double(p.forwarded))
        }
        let drops = pipeline.drops.reduce(0, +)
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        let s = median(swiftNs), c = median(plainNs), v = median(toVMNs)
        let idle = pipeline.idleLoopNanos()
        let result: [String: Any] = [
            "packets_per_run": packets, "runs": runs,
            "pipeline_ns_per_packet": ["median": s, "min": swiftNs.min()!, "max": swiftNs.max()!],
            "pipeline_to_vm_ns_per_packet": ["median": v, "min": toVMNs.min()!, "max": toVMNs.max()!],
            "plain_c_ns_per_packet": ["median": c, "min": plainNs.min()!, "max": plainNs.max()!],
            "ratio": s / c, "pipeline_drops": drops,
            "idle_loop_ns": idle, "idle_spin_loops": InMemoryPipeline.spinLoops,
            "idle_spin_us": idle * Double(InMemoryPipeline.spinLoops) / 1000,
        ]
        print(String(format: "pipeline (all checks, record per burst, maxbw): %.2f ns/packet (min %.2f, max %.2f)",
                     s, swiftNs.min()!, swiftNs.max()!))
        print(String(format: "pipeline wire -> VM (copy to the port, maxbw):   %.2f ns/packet (min %.2f, max %.2f)",
                     v, toVMNs.min()!, toVMNs.max()!))
        print(String(format: "plain C forwarding loop:                         %.2f ns/packet (min %.2f, max %.2f)",
                     c, plainNs.min()!, plainNs.max()!))
        print(String(format: "ratio %.2f; frames dropped by the checks: %llu (legitimate frames: expected 0)", s / c, drops))
        print(String(format: "an empty loop (one VNIC): %.1f ns; the spin before an idle wait (%d loops): %.0f us",
                     idle, InMemoryPipeline.spinLoops, idle * Double(InMemoryPipeline.spinLoops) / 1000))
        if let out = ProcessInfo.processInfo.environment["VNIC_BENCH_JSON"] {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .prettyPrinted])
            try data.write(to: URL(fileURLWithPath: out))
        }
        print("pipeline packets measured: \(packets * runs)")
        for length in [64, 1514] {
            print(String(format: "checksum completion of a partial %d-byte TCP segment: %.2f ns", length, completionNanos(mac, length: length)))
        }
        let (cut, segments) = segmentationNanos(mac)
        print(String(format: "segmentation of a guest's 64 KiB TSO frame into %d segments (MTU 1500): %.0f ns (%.1f ns per segment)",
                     segments, cut, cut / Double(segments)))
    }
}

/// A TCP segment from VM1 to the wire of `length` bytes whose checksum field
/// holds the folded pseudo-header sum (partial, as Linux leaves it for the device).
func tcpSegment(_ mac: MACAddress, length: Int) -> [UInt8] {
    var f = FrameBuilder.udp(dst: MACAddress("02:00:00:00:00:01")!, src: mac, srcIP: IPv4Address("10.77.0.11")!,
                             dstIP: IPv4Address("10.77.0.1")!, srcPort: 40000, dstPort: 80, length: length)
    f[23] = 6
    f[24] = 0; f[25] = 0
    let ip = Array(f[14..<34]), c = FrameBuilder.checksum(ip)
    f[24] = UInt8(c >> 8); f[25] = UInt8(c & 0xFF)
    for i in 34..<(34 + 20) { f[i] = 0 }
    f[34] = 0x9c; f[35] = 0x40; f[36] = 0; f[37] = 80; f[46] = 0x50; f[47] = 0x18; f[48] = 0xff; f[49] = 0xff
    var sum = 0x0A4D + 0x000B + 0x0A4D + 0x0001 + 6 + (length - 34)
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    f[50] = UInt8(sum >> 8); f[51] = UInt8(sum & 0xFF)
    return f
}

/// Nanoseconds to complete one partial checksum (the field put back to partial each time).
func completionNanos(_ mac: MACAddress, length: Int) -> Double {
    let partial = tcpSegment(mac, length: length)
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 64)
    defer { buffer.deallocate() }
    partial.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: length) }
    let field = buffer.loadUnaligned(fromByteOffset: 50, as: UInt16.self)
    let n = 2_000_000
    var done = 0
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<n {
        buffer.storeBytes(of: field, toByteOffset: 50, as: UInt16.self)
        if ChecksumCompletion.complete(buffer, len: length) { done &+= 1 }
    }
    let nanos = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(n)
    precondition(done == n, "every partial checksum is completed")
    return nanos
}

/// Nanoseconds to cut one 64 KiB TCP frame (a guest's TSO frame, partial
/// checksum) into MTU-sized segments with their headers and checksums, and how many.
func segmentationNanos(_ mac: MACAddress) -> (Double, Int) {
    var big = tcpSegment(mac, length: 14 + 20 + 20 + 65_000)
    for i in 54..<big.count { big[i] = UInt8(truncatingIfNeeded: i &* 7) }
    let out = UnsafeMutableRawPointer.allocate(byteCount: 2 * big.count, alignment: 64)
    defer { out.deallocate() }
    var count = 0
    let n = 20_000
    let start = DispatchTime.now().uptimeNanoseconds
    big.withUnsafeBytes { src in
        for _ in 0..<n { count = TCPSegmentation.segment(src.baseAddress!, len: src.count, mtu: 1500, into: out)?.count ?? 0 }
    }
    let nanos = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(n)
    precondition(count > 1, "the frame is cut")
    return (nanos, count)
}

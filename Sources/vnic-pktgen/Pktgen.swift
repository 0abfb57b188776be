// vnic-pktgen: a pktgen-style generator (AF_XDP transmit) and sink.
import ArgumentParser
import Foundation
import VnicCLI
import VnicCore
import VnicDataplane
import VnicDataplaneTools

struct Pktgen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vnic-pktgen",
        abstract: "Send UDP frames through AF_XDP (pktgen's knobs), or count them as a --sink.")

    @Option(name: .short, help: "The interface to send on, or to listen on with --sink.")
    var i: String

    @Flag(help: "Count what arrives instead of sending.")
    var sink = false

    @Option(name: .customLong("dst-mac")) var dstMAC: String?
    @Option(name: .customLong("src-mac")) var srcMAC: String = "02:00:00:00:00:01"
    @Option(name: .customLong("dst-ip")) var dstIP: String = "10.77.0.11"
    @Option(name: .customLong("src-ip"), help: "Source address (default 10.77.0.1); with --sink, count only frames from it.")
    var srcIP: String?
    @Option(help: "Frame size in bytes, FCS included (64...1518).") var size: Int = 64
    @Option(help: "Frames to send (sink: stop after this many).") var count: UInt64?
    @Option(help: "Seconds to run.") var duration: Double?
    @Option(help: "Frames per second (all queues together).") var rate: UInt64?
    @Option(help: "Flows per queue (UDP source ports).") var flows: Int = 1
    @Option(help: "Transmit queues, one thread each.") var queues: Int = 1
    @Option(name: .customLong("first-queue"), help: "The first transmit queue to use (pktgen's queue_map_min).")
    var firstQueue: Int = 0
    @Option(help: "Sink: stop once nothing arrived for this many seconds.") var idle: Double?
    @Option(name: .customLong("frame-hex"), help: "Send this frame (hex, no FCS) as it is instead of UDP frames.")
    var frameHex: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        if !(64...1518).contains(size) { throw ValidationError("--size: '\(size)' is not in 64...1518") }
        if !(1...64).contains(queues) { throw ValidationError("--queues: '\(queues)' is not in 1...64") }
        if !(0...63).contains(firstQueue) { throw ValidationError("--first-queue: '\(firstQueue)' is not in 0...63") }
        if !(1...4096).contains(flows) { throw ValidationError("--flows: '\(flows)' is not in 1...4096") }
        if MACAddress(srcMAC) == nil { throw ValidationError("--src-mac: '\(srcMAC)' is not a MAC address") }
        if let d = dstMAC, MACAddress(d) == nil { throw ValidationError("--dst-mac: '\(d)' is not a MAC address") }
        if let s = srcIP, IPv4Address(s) == nil { throw ValidationError("--src-ip: '\(s)' is not an IPv4 address") }
        if IPv4Address(dstIP) == nil { throw ValidationError("--dst-ip: '\(dstIP)' is not an IPv4 address") }
        if let d = duration, d <= 0 { throw ValidationError("--duration: '\(d)' must be positive") }
        if let r = rate, r == 0 { throw ValidationError("--rate: must be positive") }
        if let h = frameHex {
            guard let bytes = Self.hexBytes(h) else { throw ValidationError("--frame-hex: not an even number of hex digits") }
            guard (14...1514).contains(bytes.count) else { throw ValidationError("--frame-hex: \(bytes.count) bytes is not in 14...1514") }
        }
        if !sink {
            if dstMAC == nil && frameHex == nil { throw ValidationError("--dst-mac is required to send") }
            if count == nil && duration == nil { throw ValidationError("give --count or --duration") }
        }
    }

    func run() throws {
        if sink { return try runSink() }
        var cfg = GeneratorConfig(ifname: i, dst: dstMAC.flatMap { MACAddress($0) } ?? MACAddress(rawValue: 0xFFFF_FFFF_FFFF),
                                  src: MACAddress(srcMAC)!, srcIP: IPv4Address(srcIP ?? "10.77.0.1")!, dstIP: IPv4Address(dstIP)!)
        cfg.size = size; cfg.count = count; cfg.duration = duration; cfg.rate = rate
        cfg.rawFrame = frameHex.flatMap(Self.hexBytes)
        cfg.flows = flows; cfg.queues = queues; cfg.firstQueue = firstQueue
        let r = try PacketGenerator.run(cfg)
        let pps = r.seconds > 0 ? Double(r.sent) / r.seconds : 0
        let gbps = pps * Double(size) * 8 / 1e9
        if json {
            emit(["mode": "send", "interface": i, "sent": r.sent, "bytes": r.bytes, "seconds": r.seconds,
                  "pps": pps.rounded(), "gbps": gbps, "size": size, "queues": queues, "flows": flows])
        } else {
            print("sent \(r.sent) frames of \(size) B in \(String(format: "%.3f", r.seconds)) s: \(String(format: "%.0f", pps)) pps, \(String(format: "%.3f", gbps)) Gbps")
        }
    }

    func runSink() throws {
        let r = try PacketSink.run(ifname: i, duration: duration ?? 10, count: count, idle: idle,
                                   from: srcIP.flatMap { IPv4Address($0) }) {
            FileHandle.standardError.write("vnic-pktgen: sink ready on \(i)\n".data(using: .utf8)!)
        }
        let pps = r.seconds > 0 ? Double(r.packets) / r.seconds : 0
        let p50 = r.percentile(50), p99 = r.percentile(99), p999 = r.percentile(99.9)
        if json {
            var o: [String: Any] = ["mode": "sink", "interface": i, "received": r.packets, "bytes": r.bytes,
                                    "out_of_order": r.outOfOrder, "other": r.other, "flows": r.flows,
                                    "seconds": r.seconds, "pps": pps.rounded(),
                                    "first_arrival_ns": r.firstArrival, "last_arrival_ns": r.lastArrival]
            if let p50, let p99, let p999 {
                o["latency_ns"] = ["p50": p50, "p99": p99, "p99.9": p999]
            }
            emit(o)
        } else {
            var line = "received \(r.packets) frames (\(r.flows) flows, \(r.outOfOrder) out of order, \(r.other) other) at \(String(format: "%.0f", pps)) pps"
            if let p50, let p99, let p999 { line += ", latency p50 \(p50 / 1000) us p99 \(p99 / 1000) us p99.9 \(p999 / 1000) us" }
            print(line)
        }
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.filter { !$0.isWhitespace && $0 != ":" })
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let b = UInt8(String(digits[i...i + 1]), radix: 16) else { return nil }
            out.append(b)
        }
        return out
    }

    func emit(_ o: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

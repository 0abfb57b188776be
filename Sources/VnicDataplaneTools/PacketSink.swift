// PacketSink: counts the generator's frames arriving on an interface (AF_PACKET),
// checks the order per flow and records latency from the payload's timestamp.
import CLibXDP
import CVnicShim
import Glibc
import VnicCore
import VnicDataplane

public struct SinkResult: Sendable {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    /// Frames whose sequence was not above the last one seen on their flow.
    public var outOfOrder: UInt64 = 0
    /// Frames that were not the generator's (ARP, IPv6, ...): seen, not counted.
    public var other: UInt64 = 0
    public var flows: Int = 0
    /// Seconds between the first and the last counted frame.
    public var seconds: Double = 0
    /// CLOCK_MONOTONIC nanoseconds when the first and the last counted frame arrived (0: none).
    public var firstArrival: UInt64 = 0
    public var lastArrival: UInt64 = 0
    /// Latency samples in nanoseconds, sorted.
    public var latencies: [UInt64] = []

    public func percentile(_ p: Double) -> UInt64? {
        guard !latencies.isEmpty else { return nil }
        let i = min(latencies.count - 1, Int((p / 100 * Double(latencies.count)).rounded(.up)) - 1)
        return latencies[max(i, 0)]
    }
}

public enum PacketSink {
    /// Receives until `duration` seconds passed, or `count` frames were counted,
    /// or (once something arrived) nothing arrived for `idle` seconds.
    /// Only frames from `source` count, when given. `ready` is called once the socket is bound.
    public static func run(ifname: String, duration: Double, count: UInt64?, idle: Double?, from source: IPv4Address? = nil,
                           ready: () -> Void) throws(VnicError) -> SinkResult {
        let ifindex = if_nametoindex(ifname)
        guard ifindex != 0 else { throw VnicError("sink: \(ifname): no such interface") }
        let proto = UInt16(ETH_P_ALL).bigEndian
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(proto))
        guard fd >= 0 else { throw VnicError("sink: AF_PACKET socket: \(errnoString(errno)) (needs CAP_NET_RAW)") }
        defer { close(fd) }
        var size: Int32 = 64 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
        var sll = sockaddr_ll()
        sll.sll_family = UInt16(AF_PACKET)
        sll.sll_protocol = proto
        sll.sll_ifindex = Int32(ifindex)
        let rc = withUnsafePointer(to: &sll) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_ll>.size)) }
        }
        guard rc == 0 else { throw VnicError("sink: bind to \(ifname): \(errnoString(errno))") }
        ready()

        var result = SinkResult()
        var lastSeq: [Int: UInt32] = [:]
        var buf = [UInt8](repeating: 0, count: 2048)
        let start = monotonicNanos()
        let end = start + UInt64(duration * 1e9)
        var first: UInt64 = 0, last: UInt64 = 0
        while true {
            let now = monotonicNanos()
            if now >= end { break }
            if let c = count, result.packets >= c { break }
            if let idle, result.packets > 0, now - last > UInt64(idle * 1e9) { break }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let waitMs = Int32(min(100, (end - now) / 1_000_000 + 1))
            if poll(&pfd, 1, waitMs) <= 0 { continue }
            var from = sockaddr_ll()
            var fromLen = socklen_t(MemoryLayout<sockaddr_ll>.size)
            let n = buf.withUnsafeMutableBytes { b in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, b.baseAddress, b.count, vnic_msg_dontwait, $0, &fromLen)
                    }
                }
            }
            if n <= 0 { continue }
            if Int32(from.sll_pkttype) == PACKET_OUTGOING { continue }
            let at = monotonicNanos()
            guard let (flow, seq, sentAt) = parse(buf, n),
                  source.map({ UInt32(buf[26]) << 24 | UInt32(buf[27]) << 16 | UInt32(buf[28]) << 8 | UInt32(buf[29]) == $0.rawValue }) ?? true
            else { result.other += 1; continue }
            if first == 0 { first = at }
            last = at
            result.packets += 1
            result.bytes += UInt64(n) + 4
            if let prev = lastSeq[flow], seq <= prev { result.outOfOrder += 1 }
            lastSeq[flow] = seq
            if at > sentAt { result.latencies.append(at - sentAt) }
        }
        result.flows = lastSeq.count
        result.firstArrival = first
        result.lastArrival = last
        result.seconds = last > first ? Double(last - first) / 1e9 : 0
        result.latencies.sort()
        return result
    }

    /// (flow, sequence, send time) of a generator frame, or nil.
    static func parse(_ b: [UInt8], _ n: Int) -> (Int, UInt32, UInt64)? {
        let o = PktgenPayload.offset
        guard n >= o + PktgenPayload.length, b[12] == 0x08, b[13] == 0x00, b[14] >> 4 == 4, b[23] == 17 else { return nil }
        let ihl = Int(b[14] & 0x0F) * 4
        guard ihl == 20 else { return nil }
        guard UInt16(b[36]) << 8 | UInt16(b[37]) == PktgenPayload.udpPort,
              UInt16(b[o]) << 8 | UInt16(b[o + 1]) == PktgenPayload.magic else { return nil }
        let flow = Int(b[o + 2]) << 8 | Int(b[o + 3])
        var seq: UInt32 = 0
        for i in 0..<4 { seq = seq << 8 | UInt32(b[o + 4 + i]) }
        var ts: UInt64 = 0
        for i in 0..<8 { ts = ts << 8 | UInt64(b[o + 8 + i]) }
        return (flow, seq, ts)
    }
}

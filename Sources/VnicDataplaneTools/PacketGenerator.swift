// PacketGenerator: the engine of vnic-pktgen. Transmit side: one thread per
// queue, each with its own UMEM and a transmit-only AF_XDP socket (no XDP program
// is needed to transmit), frames pre-built in the UMEM and only the per-frame
// fields rewritten (UDP source port = flow, sequence, timestamp). Receive side
// (sink): an AF_PACKET socket that counts the generator's frames, checks order per
// flow and measures latency from the timestamp.
//
// Payload after the UDP header (16 bytes, so a 64-byte frame holds it):
//   u16 magic 0x5650 ("VP"), u16 flow, u32 sequence (per flow, from 1), u64 send time (ns, CLOCK_MONOTONIC)
import CLibXDP
import CVnicShim
import Glibc
import VnicCore
import VnicDataplane

public enum PktgenPayload {
    public static let magic: UInt16 = 0x5650
    public static let udpPort: UInt16 = 9
    public static let offset = FrameBuilder.headers
    public static let length = 16
    public static let minFrame = 64
}

public struct GeneratorConfig: Sendable {
    public var ifname: String
    public var dst: MACAddress
    public var src: MACAddress
    public var srcIP: IPv4Address
    public var dstIP: IPv4Address
    /// Frame size including the 4-byte FCS, as pktgen counts (64 ... 1518).
    public var size: Int = 64
    public var count: UInt64? = nil
    public var duration: Double? = nil
    public var rate: UInt64? = nil
    public var flows: Int = 1
    public var queues: Int = 1
    /// The first transmit queue; threads use firstQueue ..< firstQueue + queues.
    public var firstQueue: Int = 0
    /// A frame to send as it is (no FCS) instead of the generated UDP frames:
    /// no per-frame fields are rewritten.
    public var rawFrame: [UInt8]? = nil
    public init(ifname: String, dst: MACAddress, src: MACAddress, srcIP: IPv4Address, dstIP: IPv4Address) {
        self.ifname = ifname; self.dst = dst; self.src = src; self.srcIP = srcIP; self.dstIP = dstIP
    }
}

public struct GeneratorResult: Sendable {
    public var sent: UInt64
    public var bytes: UInt64
    public var seconds: Double
}

public enum PacketGenerator {
    public static func run(_ cfg: GeneratorConfig) throws(VnicError) -> GeneratorResult {
        var senders: [QueueSender] = []
        for q in 0..<cfg.queues {
            var quota: UInt64? = nil
            if let c = cfg.count { quota = c / UInt64(cfg.queues) + (UInt64(q) < c % UInt64(cfg.queues) ? 1 : 0) }
            let rate = cfg.rate.map { max($0 / UInt64(cfg.queues), 1) }
            senders.append(try QueueSender(cfg: cfg, queue: cfg.firstQueue + q, quota: quota, rate: rate))
        }
        let start = monotonicNanos()
        var threads: [pthread_t] = []
        for s in senders {
            var t = pthread_t()
            let ctx = Unmanaged.passRetained(s).toOpaque()
            guard pthread_create(&t, nil, { arg in
                let s = Unmanaged<QueueSender>.fromOpaque(arg!).takeRetainedValue()
                s.run()
                return nil
            }, ctx) == 0 else { throw VnicError("start sender thread: \(errnoString(errno))") }
            threads.append(t)
        }
        for t in threads { pthread_join(t, nil) }
        let secs = Double(monotonicNanos() - start) / 1e9
        let sent = senders.reduce(0) { $0 + $1.sent }
        return GeneratorResult(sent: sent, bytes: sent * UInt64(cfg.size), seconds: secs)
    }
}

final class QueueSender: @unchecked Sendable {
    let umem: UMEM
    let socket: XSKSocket
    let frames: UInt32 = 4096
    let len: UInt32
    let raw: Bool
    let flows: Int
    let flowBase: Int
    let quota: UInt64?
    let deadline: UInt64?
    let nanosPerFrame: UInt64
    var sent: UInt64 = 0

    init(cfg: GeneratorConfig, queue: Int, quota: UInt64?, rate: UInt64?) throws(VnicError) {
        umem = try UMEM(frameCount: frames, fillSize: 2048, compSize: 2048)
        socket = try XSKSocket(ifname: cfg.ifname, queue: UInt32(queue), umem: umem, pair: umem.firstPair,
                               rxSize: 0, txSize: 2048, bind: .copy)
        len = UInt32(cfg.rawFrame?.count ?? cfg.size - 4)
        raw = cfg.rawFrame != nil
        flows = cfg.flows
        flowBase = queue * cfg.flows
        self.quota = quota
        deadline = cfg.duration.map { monotonicNanos() + UInt64($0 * 1e9) }
        nanosPerFrame = rate.map { 1_000_000_000 / max($0, 1) } ?? 0
        let template = cfg.rawFrame ?? FrameBuilder.udp(dst: cfg.dst, src: cfg.src, srcIP: cfg.srcIP, dstIP: cfg.dstIP,
                                                        srcPort: 1024, dstPort: PktgenPayload.udpPort, length: Int(len))
        for i in 0..<Int(frames) {
            let p = umem.area + i * Int(UMEM.frameSize)
            template.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: template.count) }
            if !raw { p.storeBytes(of: PktgenPayload.magic.bigEndian, toByteOffset: PktgenPayload.offset, as: UInt16.self) }
        }
    }

    func run() {
        let tx = socket.tx!
        let comp = umem.firstPair.comp
        var seq = [UInt32](repeating: 0, count: flows)
        var next = 0
        var outstanding: UInt32 = 0
        var flow = 0
        let start = monotonicNanos()
        var idx: UInt32 = 0
        while true {
            if let q = quota, sent >= q { break }
            let now = monotonicNanos()
            if let d = deadline, now >= d { break }
            let done = xsk_ring_cons__peek(comp, 2048, &idx)
            if done > 0 { xsk_ring_cons__release(comp, done); outstanding -= done }
            var n = min(Worker.burst, frames - outstanding - 64)
            if let q = quota { n = UInt32(min(UInt64(n), q - sent)) }
            if nanosPerFrame > 0 {
                let due = (now - start) / nanosPerFrame
                n = due > sent ? UInt32(min(UInt64(n), due - sent)) : 0
                if n == 0 && outstanding == 0 {
                    // Ahead of schedule with nothing in flight: give the core away
                    // until the next frame is due (the dataplane may share it).
                    let wait = (sent + 1) * nanosPerFrame - (now - start)
                    usleep(UInt32(min(max(wait / 1000, 1), 1000)))
                    continue
                }
            }
            if n > 0, xsk_ring_prod__reserve(tx, n, &idx) == n {
                for i in 0..<n {
                    let addr = UInt64(next) * UInt64(UMEM.frameSize)
                    next = next + 1 == Int(frames) ? 0 : next + 1
                    if !raw {
                        let p = umem.area + Int(addr)
                        seq[flow] &+= 1
                        let id = flowBase + flow
                        p.storeBytes(of: UInt16(truncatingIfNeeded: 1024 + id).bigEndian, toByteOffset: 34, as: UInt16.self)
                        p.storeBytes(of: UInt16(truncatingIfNeeded: id).bigEndian, toByteOffset: PktgenPayload.offset + 2, as: UInt16.self)
                        p.storeBytes(of: seq[flow].bigEndian, toByteOffset: PktgenPayload.offset + 4, as: UInt32.self)
                        p.storeBytes(of: monotonicNanos().bigEndian, toByteOffset: PktgenPayload.offset + 8, as: UInt64.self)
                        flow = flow + 1 == flows ? 0 : flow + 1
                    }
                    let d = xsk_ring_prod__tx_desc(tx, idx &+ i)!
                    d.pointee.addr = addr
                    d.pointee.len = len
                    d.pointee.options = 0
                }
                xsk_ring_prod__submit(tx, n)
                outstanding += n
                sent += UInt64(n)
            }
            if outstanding > 0 { _ = sendto(socket.fd, nil, 0, vnic_msg_dontwait, nil, 0) }
        }
        // Let the kernel take (and complete) what is queued, for at most a second.
        let until = monotonicNanos() + 1_000_000_000
        while outstanding > 0 && monotonicNanos() < until {
            _ = sendto(socket.fd, nil, 0, vnic_msg_dontwait, nil, 0)
            let done = xsk_ring_cons__peek(comp, 2048, &idx)
            if done > 0 { xsk_ring_cons__release(comp, done); outstanding -= done } else { usleep(100) }
        }
    }
}

// InMemoryPipeline: the worker's loop over rings in plain memory, shaped like
// the kernel's (producer, consumer and flags words, descriptor arrays), with a
// driver that plays the kernel's part: it turns fill-ring frames into received
// descriptors on a VM port and completes what the worker puts on the uplink's
// transmit ring. What it measures is the userspace pipeline alone (checks,
// per-burst record reads, rate limiter, forwarding), next to a plain loop
// driven the same way.
import CLibXDP
import CVnicShim
import Glibc
import VnicConfig
import VnicCore
import VnicDataplane

/// One ring in plain memory: its words on separate cache lines, then the entries.
final class MemoryRing {
    let size: UInt32
    let words: UnsafeMutableRawPointer
    let entries: UnsafeMutableRawPointer
    var producer: UnsafeMutablePointer<UInt32> { words.assumingMemoryBound(to: UInt32.self) }
    var consumer: UnsafeMutablePointer<UInt32> { (words + 64).assumingMemoryBound(to: UInt32.self) }
    var flags: UnsafeMutablePointer<UInt32> { (words + 128).assumingMemoryBound(to: UInt32.self) }
    /// The application's view, as libxdp sets it up after mmap.
    let cons: UnsafeMutablePointer<xsk_ring_cons>
    let prod: UnsafeMutablePointer<xsk_ring_prod>

    init(size: UInt32, entrySize: Int) {
        self.size = size
        words = .allocate(byteCount: 192, alignment: 64)
        words.initializeMemory(as: UInt8.self, repeating: 0, count: 192)
        entries = .allocate(byteCount: Int(size) * entrySize, alignment: 64)
        cons = .allocate(capacity: 1)
        prod = .allocate(capacity: 1)
        let p = words.assumingMemoryBound(to: UInt32.self)
        let c = (words + 64).assumingMemoryBound(to: UInt32.self)
        let f = (words + 128).assumingMemoryBound(to: UInt32.self)
        cons.initialize(to: xsk_ring_cons(cached_prod: 0, cached_cons: 0, mask: size - 1, size: size,
                                          producer: p, consumer: c, ring: entries, flags: f))
        prod.initialize(to: xsk_ring_prod(cached_prod: 0, cached_cons: size, mask: size - 1, size: size,
                                          producer: p, consumer: c, ring: entries, flags: f))
    }
    deinit { words.deallocate(); entries.deallocate(); cons.deallocate(); prod.deallocate() }

    // The kernel's side.
    var pending: UInt32 { producer.pointee &- consumer.pointee }
    var space: UInt32 { size &- pending }
}

public final class InMemoryPipeline {
    public static let frameSize = Int(UMEM.frameSize)
    /// The worker's burst (frames a ring is read for at once).
    public static let burst = Worker.burst
    let frames: UInt32
    let area: UnsafeMutableRawPointer
    // The uplink's rings and one VM port's.
    let uplinkRX = MemoryRing(size: 2048, entrySize: 16), uplinkTX = MemoryRing(size: 2048, entrySize: 16)
    let uplinkFill = MemoryRing(size: 4096, entrySize: 8), uplinkComp = MemoryRing(size: 4096, entrySize: 8)
    let vnicRX = MemoryRing(size: 1024, entrySize: 16)
    let portRX = MemoryRing(size: 1024, entrySize: 16), portTX = MemoryRing(size: 1024, entrySize: 16)
    let portFill = MemoryRing(size: 4096, entrySize: 8), portComp = MemoryRing(size: 4096, entrySize: 8)
    let worker: Worker
    let portArea: UnsafeMutableRawPointer
    let portPool: UnsafeMutablePointer<FramePool>
    let portRings: UnsafeMutablePointer<QueueRings>
    let counters: UnsafeMutablePointer<vnic_counters>
    let tat: UnsafeMutablePointer<UInt64>
    let frameLength: UInt32

    /// One VNIC (`index`, `mac`) on a port, whose policy the worker reads from
    /// its record through `reader` once per loop, as vnicd's workers do. Every
    /// UMEM frame holds `frame`.
    public init(frames: UInt32 = Dataplane.defaultFrames, index: UInt32, mac: MACAddress, reader: ConfigReader, frame: [UInt8]) {
        self.frames = frames
        frameLength = UInt32(frame.count)
        let area = UnsafeMutableRawPointer.allocate(byteCount: Int(frames) * Self.frameSize, alignment: 4096)
        for i in 0..<Int(frames) {
            frame.withUnsafeBytes { (area + i * Self.frameSize).copyMemory(from: $0.baseAddress!, byteCount: frame.count) }
        }
        self.area = area
        worker = Worker(queue: 0, core: 0, busyPoll: true, reader: reader, area: area, frameCount: frames,
                        rx: uplinkRX.cons, tx: uplinkTX.prod, fill: uplinkFill.prod, comp: uplinkComp.cons)
        // The port's own frames, as vnicd gives each port socket (every one holds `frame` too).
        let portArea = UnsafeMutableRawPointer.allocate(byteCount: Int(Dataplane.defaultPortFrames) * Self.frameSize, alignment: 4096)
        for i in 0..<Int(Dataplane.defaultPortFrames) {
            frame.withUnsafeBytes { (portArea + i * Self.frameSize).copyMemory(from: $0.baseAddress!, byteCount: frame.count) }
        }
        self.portArea = portArea
        portPool = FramePool.make(area: portArea, frames: Int(Dataplane.defaultPortFrames))
        portRings = .allocate(capacity: 1)
        portRings.initialize(to: QueueRings(rx: portRX.cons, tx: portTX.prod, fill: portFill.prod, comp: portComp.cons,
                                            fd: -1, frames: portPool,
                                            fillTarget: Dataplane.defaultPortFrames - Worker.towardsVM(Dataplane.defaultPortFrames)))
        counters = .allocate(capacity: 1); counters.initialize(to: vnic_counters())
        tat = .allocate(capacity: 4); tat.initialize(repeating: 0, count: 4)
        let entry = VNICEntry(index: index, mac: MACKey.from(mac), uplinkRX: vnicRX.cons, port: portRings,
                              counters: counters, tat: tat)
        _ = worker.publish(WorkerTable.make(generation: 1, entries: [entry]))
        worker.install()
    }

    deinit {
        area.deallocate(); portArea.deallocate(); FramePool.destroy(portPool)
        portRings.deallocate(); counters.deallocate(); tat.deallocate()
    }

    /// The kernel's part: fill-ring frames become `burst` received frames on the
    /// VM port; what the uplink transmitted completes.
    @inline(__always)
    func kernelStep(burst: UInt32, fill: MemoryRing, rx: MemoryRing, tx: MemoryRing, comp: MemoryRing) -> UInt32 {
        let n = min(burst, fill.pending, rx.space)
        let fills = fill.entries.assumingMemoryBound(to: UInt64.self)
        let descs = rx.entries.assumingMemoryBound(to: xdp_desc.self)
        var fc = fill.consumer.pointee, rp = rx.producer.pointee
        for _ in 0..<n {
            descs[Int(rp & (rx.size &- 1))] = xdp_desc(addr: fills[Int(fc & (fill.size &- 1))], len: frameLength, options: 0)
            fc &+= 1; rp &+= 1
        }
        fill.consumer.pointee = fc
        vnic_store_u32_release(rx.producer, rp)
        let sent = min(tx.pending, comp.space)
        let txd = tx.entries.assumingMemoryBound(to: xdp_desc.self)
        let done = comp.entries.assumingMemoryBound(to: UInt64.self)
        var tc = tx.consumer.pointee, cp = comp.producer.pointee
        for _ in 0..<sent {
            done[Int(cp & (comp.size &- 1))] = txd[Int(tc & (tx.size &- 1))].addr
            tc &+= 1; cp &+= 1
        }
        tx.consumer.pointee = tc
        vnic_store_u32_release(comp.producer, cp)
        return sent
    }

    /// Runs `packets` frames VM -> wire through the worker's loop, `burst` at a
    /// time; returns the nanoseconds it took and the frames that reached the uplink.
    public func runWorker(packets: Int, burst: UInt32 = InMemoryPipeline.burst) -> (nanos: UInt64, forwarded: UInt64) {
        run(packets: packets, burst: burst, fill: portFill, rx: portRX, tx: uplinkTX, comp: uplinkComp)
    }

    /// Runs `packets` frames wire -> VM (the VNIC's receive ring on the uplink,
    /// where the classifier put them, to the VM's port) through the worker's loop.
    public func runWorkerToVM(packets: Int, burst: UInt32 = InMemoryPipeline.burst) -> (nanos: UInt64, forwarded: UInt64) {
        run(packets: packets, burst: burst, fill: uplinkFill, rx: vnicRX, tx: portTX, comp: portComp)
    }

    private func run(packets: Int, burst: UInt32, fill: MemoryRing, rx: MemoryRing, tx: MemoryRing,
                     comp: MemoryRing) -> (nanos: UInt64, forwarded: UInt64) {
        var out: UInt64 = 0
        _ = worker.loopOnce()   // fills the fill rings
        let start = monotonicNanos()
        while out < UInt64(packets) {
            out &+= UInt64(kernelStep(burst: burst, fill: fill, rx: rx, tx: tx, comp: comp))
            _ = worker.loopOnce()
        }
        return (monotonicNanos() - start, out)
    }

    // MARK: single frames (unit tests of the worker's loop)

    /// The VM sends `list`: each written into a frame its port's fill ring
    /// offers and received on the port, as the kernel would.
    func vmSends(_ list: [[UInt8]]) { receive(list, fill: portFill, rx: portRX, area: portArea) }

    /// The wire sends `list` to this VNIC: into frames of the uplink's fill
    /// ring, received on the VNIC's socket, as the classifier would steer them.
    func wireSends(_ list: [[UInt8]]) { receive(list, fill: uplinkFill, rx: vnicRX, area: area) }

    private func receive(_ list: [[UInt8]], fill: MemoryRing, rx: MemoryRing, area: UnsafeMutableRawPointer) {
        precondition(list.count <= Int(fill.pending) && list.count <= Int(rx.space), "no room in the rings")
        let fills = fill.entries.assumingMemoryBound(to: UInt64.self)
        let descs = rx.entries.assumingMemoryBound(to: xdp_desc.self)
        var fc = fill.consumer.pointee, rp = rx.producer.pointee
        for f in list {
            let addr = fills[Int(fc & (fill.size &- 1))]
            f.withUnsafeBytes { (area + Int(addr)).copyMemory(from: $0.baseAddress!, byteCount: f.count) }
            descs[Int(rp & (rx.size &- 1))] = xdp_desc(addr: addr, len: UInt32(f.count), options: 0)
            fc &+= 1; rp &+= 1
        }
        fill.consumer.pointee = fc
        vnic_store_u32_release(rx.producer, rp)
    }

    /// What the worker put on the uplink's transmit ring, taken off it (and completed).
    func wireReceives() -> [[UInt8]] { transmitted(uplinkTX, comp: uplinkComp, area: area) }

    /// What the worker put on the VM port's transmit ring, taken off it (and completed).
    func vmReceives() -> [[UInt8]] { transmitted(portTX, comp: portComp, area: portArea) }

    private func transmitted(_ tx: MemoryRing, comp: MemoryRing, area: UnsafeMutableRawPointer) -> [[UInt8]] {
        var out: [[UInt8]] = []
        let txd = tx.entries.assumingMemoryBound(to: xdp_desc.self)
        let done = comp.entries.assumingMemoryBound(to: UInt64.self)
        var tc = tx.consumer.pointee, cp = comp.producer.pointee
        while tc != tx.producer.pointee {
            let d = txd[Int(tc & (tx.size &- 1))]
            out.append(Array(UnsafeRawBufferPointer(start: area + Int(d.addr), count: Int(d.len))))
            done[Int(cp & (comp.size &- 1))] = d.addr
            tc &+= 1; cp &+= 1
        }
        tx.consumer.pointee = tc
        vnic_store_u32_release(comp.producer, cp)
        return out
    }

    /// One turn of the worker's loop; whether it moved frames.
    @discardableResult
    func loopOnce() -> Bool { worker.loopOnce() }

    /// Frames the VNIC sent (passed its checks) and received, by the worker's counters.
    var sent: UInt64 { vnic_counter_load(counters.pointer(to: \.tx_packets)!) }
    var received: UInt64 { vnic_counter_load(counters.pointer(to: \.rx_packets)!) }

    /// What the worker handed to the control thread so far, taken off its ring: (VNIC index, frame).
    func controlReceives() -> [(UInt32, [UInt8])] {
        var out: [(UInt32, [UInt8])] = []
        while worker.toControl.pop({ index, bytes in out.append((index, Array(bytes))) }) {}
        return out
    }

    /// Dropped frames so far by reason name (those not zero).
    var dropsByName: [String: UInt64] {
        var out: [String: UInt64] = [:]
        for (i, n) in drops.enumerated() where n > 0 { out[Dataplane.dropNames[i]] = n }
        return out
    }

    /// Nanoseconds of one empty loop of the worker (nothing to move): what
    /// its spin before an idle wait costs per loop (`Worker.spinLoops` of them).
    public func idleLoopNanos(loops: Int = 200_000) -> Double {
        _ = worker.loopOnce()
        let start = monotonicNanos()
        for _ in 0..<loops { _ = worker.loopOnce() }
        return Double(monotonicNanos() - start) / Double(loops)
    }

    /// Empty loops an idle worker spins before it waits.
    public static var spinLoops: Int { Worker.spinLoops }

    /// Spoofed or otherwise dropped frames so far, by reason index.
    public var drops: [UInt64] {
        let d = (UnsafeMutableRawPointer(counters) + vnicCountersDropsOffset).assumingMemoryBound(to: UInt64.self)
        return (0..<Int(VNIC_DROP_REASON_MAX.rawValue)).map { d[$0] }
    }

    /// The same rings and driver around a plain forwarding step (port receive ->
    /// uplink transmit, no checks), e.g. the C loop in bench/c-forwarder. The
    /// step gets (rx, tx, fill, comp, pool, poolCount) and returns frames moved.
    public func runPlain(packets: Int, step: (UnsafeMutableRawPointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer,
                                              UnsafeMutableRawPointer, UnsafeMutablePointer<UInt64>,
                                              UnsafeMutablePointer<UInt32>) -> UInt32) -> (nanos: UInt64, forwarded: UInt64) {
        let pool = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(frames))
        defer { pool.deallocate() }
        for i in 0..<Int(frames) { pool[i] = UInt64(i * Self.frameSize) }
        var count = frames
        // Separate rings from the worker's: fresh ones of the same sizes.
        let rx = MemoryRing(size: 1024, entrySize: 16), tx = MemoryRing(size: 2048, entrySize: 16)
        let fill = MemoryRing(size: 4096, entrySize: 8), comp = MemoryRing(size: 4096, entrySize: 8)
        var out: UInt64 = 0
        _ = step(UnsafeMutableRawPointer(rx.cons), UnsafeMutableRawPointer(tx.prod), UnsafeMutableRawPointer(fill.prod),
                 UnsafeMutableRawPointer(comp.cons), pool, &count)
        let start = monotonicNanos()
        while out < UInt64(packets) {
            out &+= UInt64(kernelStep(burst: Worker.burst, fill: fill, rx: rx, tx: tx, comp: comp))
            _ = step(UnsafeMutableRawPointer(rx.cons), UnsafeMutableRawPointer(tx.prod), UnsafeMutableRawPointer(fill.prod),
                     UnsafeMutableRawPointer(comp.cons), pool, &count)
        }
        return (monotonicNanos() - start, out)
    }
}

// Worker: one thread per uplink queue, pinned to a core, run to completion over
// its sockets in bursts of 64. It owns its UMEM (the uplink side: its uplink
// socket and every VNIC's receive socket on its queue) and the frames of its
// ports' sockets, each of which has a small UMEM of its own: frames cross
// between them by copy. (Sharing one UMEM with every port cost each port a
// kernel descriptor array over all of its frames, and made every port's fill
// ring draw on one pool: past about 28 ports the fill rings starved.)
//
// Per loop: take a new table if one was published; reap completions and refill
// fill rings; move frames
//   uplink VNIC sockets -> a copy to that VNIC's port,
//   uplink socket (broadcast/multicast) -> a copy to every VNIC's port,
//   port sockets -> checked (source MAC, addresses), then a copy to the uplink,
//                    or to a local VNIC's port (VM to VM), or both for
//                    broadcast/multicast;
// then submit the transmit rings it touched and kick the kernel where needed.
// It looks only at the VNICs that moved frames lately or were queued some, and
// at a window of the others that walks round them all: its cost per loop
// follows its busy VNICs, not how many it serves.
// A port with fewer queues than there are workers has sockets on the workers
// that own its queues only; another worker copies a frame for it into a
// single-producer/single-consumer ring to the owning worker (the handoff: one
// ring per pair of workers, made when first needed), which delivers it in its
// next loop. One flow arrives on one uplink queue, so it keeps its order; a
// full ring drops and counts (handoff-full).
// No allocation, no locks, no ARC, no syscalls but the transmit kick. After a
// stretch of idle loops (unless busy polling) it waits in epoll on its sockets
// and its wake eventfd, which the control thread writes when it publishes a
// table or queues a frame: traffic or control work wakes it at once.
import CLibXDP
import CVnicShim
import Glibc
import Logging
import VnicConfig
import VnicCore

package final class Worker: @unchecked Sendable {
    package static let burst: UInt32 = 64
    /// Frames a loop takes from the VNICs' rings before it services the rest
    /// again: what makes priority matter when the worker is saturated.
    static let loopBudget = 256
    /// A port socket's frames are its own UMEM's (`Dataplane.Options.portFrames`):
    /// its fill ring holds all of them but a third (at least 64), which carry
    /// what goes to the VM: a TCP window towards a slow guest, a burst from the
    /// wire (its transmit ring gives them back as soon as the kernel copied them).
    package static func towardsVM(_ frames: UInt32) -> UInt32 { max(64, frames / 3) }
    /// An entry that moved nothing for this many loops is no longer looked at
    /// every loop; the sweep looks at `sweepWidth` of the others per loop.
    static let hotLoops: UInt32 = 64
    static let sweepWidth = 32
    /// Empty loops an idle worker spins before it waits (unless busy polling):
    /// with one VNIC an empty loop takes about 64 ns on this machine
    /// (vnic-pipeline-bench's `idle_loop_ns`), so about 0.13 ms; a burst that
    /// follows within it costs no wakeup.
    package static let spinLoops = 2000

    let queue: UInt32
    let core: Int
    let busyPoll: Bool
    /// The UMEM and uplink socket it owns (nil for an in-memory pipeline).
    let umem: UMEM?
    let uplinkSocket: XSKSocket?
    /// The packet buffer area of its UMEM (the uplink side) and its free frames.
    let area: UnsafeMutableRawPointer
    let frames: UnsafeMutablePointer<FramePool>
    let uplink: UnsafeMutablePointer<QueueRings>

    // Shared with the control thread (accessed through the shim's atomics).
    let mailbox: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let installedGeneration: UnsafeMutablePointer<UInt64>
    let stopFlag: UnsafeMutablePointer<UInt64>
    /// [0] frames received from the uplink, [1] frames sent to the uplink,
    /// [2] frames free in the pool (a gauge, stored once per loop),
    /// [3] cycles in loops that moved frames, [4] cycles in all loops.
    let queueCounters: UnsafeMutablePointer<UInt64>

    var table: UnsafeMutablePointer<WorkerTable>
    private var thread: pthread_t?
    /// The fast-path reader of the configuration database, where every VNIC's
    /// policy comes from (one read transaction, renewed in a loop with traffic
    /// only when something was committed). Retained by `init`, released in
    /// `deinit`: unmanaged so the loop does no reference counting.
    private let reader: Unmanaged<ConfigReader>
    private var inBurst = false
    /// Loops run (wraps), and where the sweep window starts next.
    private var loops: UInt32 = 0
    /// Which of the reader's snapshots the `LoopRecord`s read now are of
    /// (never wraps): a new one at each new snapshot the reader takes.
    private var epoch: UInt64 = 0
    /// The reader's snapshot count when `epoch` last moved.
    private var epochSnapshot: UInt64 = .max
    /// The last loop left frames waiting on something that raises no event:
    /// maxbw's clock, a port with no room or free frames, a transmit ring the
    /// kernel has not emptied. An idle worker then waits with a timeout;
    /// otherwise only a descriptor ends its wait.
    package private(set) var stalled = false
    private var sweep = 0
    /// Where a segment of a guest's TSO frame is written before it is forwarded.
    private let segmentScratch = UnsafeMutableRawPointer.allocate(byteCount: Int(UMEM.frameSize), alignment: 64)
    /// Guest protocol traffic: requests up to the control thread, replies and
    /// notifications down to the VMs; `wakeFD` (an eventfd) wakes the control
    /// thread when a request arrives.
    package let toControl = FrameRing.allocate()
    let fromControl = FrameRing.allocate()
    let wakeFD: Int32
    /// The control thread wakes this worker from an idle wait (eventfd).
    let wakeEvent: Int32
    /// What an idle worker waits on: its wake eventfd, its uplink socket and
    /// every socket of the VNICs it serves (registered by the dataplane when it
    /// makes them, tagged `Worker.tag(index:port:)`), edge-triggered: new frames
    /// wake it, frames left waiting (a port that cannot take them) do not. Its
    /// cost does not grow with idle sockets, as ppoll's did.
    let epollFD: Int32
    static let wakeTag = UInt64.max, uplinkTag64 = UInt64.max - 1
    /// The epoll tag of VNIC `index`'s uplink (port: false) or port socket.
    static func tag(index: UInt32, port: Bool) -> UInt64 { UInt64(index) << 1 | (port ? 1 : 0) }
    private let readyTags = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
    static let requestLimiter = RateLimiter(perSecond: 50, burst: 50)
    /// Set while this worker sleeps in its idle wait (a worker handing it frames
    /// then writes `wakeEvent`).
    let sleeping: UnsafeMutablePointer<UInt64>
    /// The other workers' `sleeping` words and wake eventfds, by worker number
    /// (set by the dataplane before the workers start).
    var peers: UnsafeMutablePointer<(sleeping: UnsafeMutablePointer<UInt64>, wake: Int32)>
    var peerCount = 0
    /// Workers handed frames in this loop (bit i: worker i), woken at its end if asleep.
    private var handedTo: UInt64 = 0
    /// Where a chain of descriptors (a guest's TSO frame, up to 64 KiB) is gathered before it is cut.
    static let chainCapacity = 65536 + 256
    private let chainScratch = UnsafeMutableRawPointer.allocate(byteCount: Worker.chainCapacity, alignment: 64)

    /// A worker on the uplink's queue `queue`: its UMEM and uplink socket.
    convenience init(queue: UInt32, core: Int, uplinkName: String, frames: UInt32, busyPoll: Bool,
                     bind: XSKBindMode, reader: ConfigReader, wakeFD: Int32) throws(VnicError) {
        let umem = try UMEM(frameCount: frames, fillSize: 2048, compSize: 2048)
        // The UMEM's first socket sets the bind flags of every socket that shares it
        // (libxdp binds those with XDP_SHARED_UMEM alone): multi-buffer, so that a
        // guest's TSO frame reaches its port socket as a chain (Segmentation).
        let socket = try XSKSocket(ifname: uplinkName, queue: queue, umem: umem, pair: umem.firstPair,
                                   rxSize: 2048, txSize: 2048, bind: bind, nilIfNoQueue: false, multiBuffer: true)!
        self.init(queue: queue, core: core, busyPoll: busyPoll, reader: reader, area: umem.area,
                  frameCount: frames, rx: socket.rx!, tx: socket.tx!, fill: umem.firstPair.fill,
                  comp: umem.firstPair.comp, fd: socket.fd, umem: umem, uplinkSocket: socket, wakeFD: wakeFD)
    }

    /// A worker over rings in plain memory (benchmarks, tests): no kernel.
    /// `area` holds `frames` frames: the uplink side's.
    package init(queue: UInt32, core: Int, busyPoll: Bool, reader: ConfigReader, area: UnsafeMutableRawPointer,
         frameCount frames: UInt32, rx: UnsafeMutablePointer<xsk_ring_cons>, tx: UnsafeMutablePointer<xsk_ring_prod>,
         fill: UnsafeMutablePointer<xsk_ring_prod>, comp: UnsafeMutablePointer<xsk_ring_cons>, fd: Int32 = -1,
         umem: UMEM? = nil, uplinkSocket: XSKSocket? = nil, wakeFD: Int32 = -1) {
        self.reader = Unmanaged.passRetained(reader)
        self.wakeFD = wakeFD
        let event = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        wakeEvent = event
        epollFD = vnic_epoll_create()
        if epollFD >= 0 {
            if event >= 0 { _ = vnic_epoll_add(epollFD, event, Worker.wakeTag) }
            if let fd = uplinkSocket?.fd { _ = vnic_epoll_add(epollFD, fd, Worker.uplinkTag64) }
        }
        self.queue = queue
        self.core = core
        self.busyPoll = busyPoll
        self.umem = umem
        self.uplinkSocket = uplinkSocket
        self.area = area
        self.frames = FramePool.make(area: area, frames: Int(frames))
        uplink = .allocate(capacity: 1)
        uplink.initialize(to: QueueRings(rx: rx, tx: tx, fill: fill, comp: comp, fd: fd, frames: self.frames,
                                         fillTarget: min(2048, frames / 2)))
        mailbox = .allocate(capacity: 1); mailbox.initialize(to: nil)
        installedGeneration = .allocate(capacity: 1); installedGeneration.initialize(to: 0)
        stopFlag = .allocate(capacity: 1); stopFlag.initialize(to: 0)
        queueCounters = .allocate(capacity: 5); queueCounters.initialize(repeating: 0, count: 5)
        sleeping = .allocate(capacity: 1); sleeping.initialize(to: 0)
        peers = .allocate(capacity: Int(VNIC_MAX_QUEUES))
        table = WorkerTable.make(generation: 0, entries: [])
    }

    deinit {
        reader.release()
        if wakeEvent >= 0 { close(wakeEvent) }
        if epollFD >= 0 { close(epollFD) }
        readyTags.deallocate()
        chainScratch.deallocate()
        segmentScratch.deallocate()
        uplink.deallocate(); FramePool.destroy(frames)
        mailbox.deallocate(); installedGeneration.deallocate(); stopFlag.deallocate()
        queueCounters.deallocate()
        sleeping.deallocate(); peers.deallocate()
        toControl.deallocate(); fromControl.deallocate()
        WorkerTable.destroy(table)
    }

    // MARK: control side

    func start() throws(VnicError) {
        let ctx = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            let w = Unmanaged<Worker>.fromOpaque(arg!).takeRetainedValue()
            w.run()
            return nil
        }, ctx)
        guard rc == 0 else {
            Unmanaged<Worker>.fromOpaque(ctx).release()
            throw VnicError("start worker for queue \(queue): \(errnoString(rc))")
        }
        thread = t
    }

    func stop() {
        vnic_store_u64_release(stopFlag, 1)
        wake()
        if let t = thread { pthread_join(t, nil); thread = nil }
    }

    /// Publishes a table; returns a table that was published but never installed
    /// (the caller frees it), or nil.
    package func publish(_ t: UnsafeMutablePointer<WorkerTable>) -> UnsafeMutablePointer<WorkerTable>? {
        let old = vnic_exchange_pointer(UnsafeMutableRawPointer(mailbox).assumingMemoryBound(to: UnsafeMutableRawPointer?.self), UnsafeMutableRawPointer(t))
        return old?.assumingMemoryBound(to: WorkerTable.self)
    }

    var installed: UInt64 { vnic_load_u64_acquire(installedGeneration) }

    /// Ends the worker's idle wait, if it is in one.
    func wake() {
        var one: UInt64 = 1
        if wakeEvent >= 0 { _ = write(wakeEvent, &one, 8) }
    }

    /// Registers a socket of VNIC `index` for this worker's idle wait.
    func watch(fd: Int32, index: UInt32, port: Bool) {
        if epollFD >= 0 { _ = vnic_epoll_add(epollFD, fd, Worker.tag(index: index, port: port)) }
    }

    // MARK: worker thread

    private func run() {
        vnic_set_current_thread_name("vnic-worker-\(queue)")
        let rc = vnic_pin_current_thread(Int32(core))
        if rc != 0 {
            Logger(label: "vnicd").error("pin worker \(queue) to core \(core): \(errnoString(rc))")
        }
        var idle = 0
        var last = vnic_rdtsc()
        while vnic_load_u64_acquire(stopFlag) == 0 {
            if vnic_load_pointer_relaxed(UnsafeMutableRawPointer(mailbox).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)) != nil {
                install()
            }
            let work = loopOnce()
            vnic_store_u64_release(queueCounters + 2, UInt64(frames.pointee.count))
            let now = vnic_rdtsc()
            if work { vnic_counter_add(queueCounters + 3, now &- last) }
            vnic_counter_add(queueCounters + 4, now &- last)
            last = now
            if work || busyPoll {
                idle = 0
            } else {
                idle += 1
                if idle > Worker.spinLoops {
                    // Frames handed over by another worker come with no descriptor to
                    // wait on: announce the sleep, look once more, and that worker wakes us.
                    let t = table.pointee
                    vnic_store_u64_relaxed(sleeping, 1)
                    // Writers may reuse the pages of the database snapshot while it sleeps.
                    reader._withUnsafeGuaranteedRef { $0.releaseSnapshot() }
                    vnic_fence_seq_cst()
                    var handed = false
                    for i in 0..<t.incomingCount where !t.incoming[i].isEmpty { handed = true }
                    // Traffic and control work end the wait through a descriptor (new
                    // frames on a socket, the control thread's or another worker's
                    // eventfd): no timeout. Only frames left waiting on what raises no
                    // event (`stalled`) bound it, from 50 µs growing to 10 ms. (A
                    // timeout growing from 50 µs on every wait made one probe in 25 wait
                    // 0.4-3 ms: bench/suite.sh's latency, p99 873 µs against 151 µs without.)
                    let timeout = stalled ? min(50_000 << min(idle - Worker.spinLoops - 1, 8), 10_000_000) : -1
                    if handed { idle = 0 } else {
                        let n = vnic_epoll_wait(epollFD, readyTags, 256, timeout, Worker.wakeTag, wakeEvent)
                        if n > 0 {
                            idle = 0
                            markReady(t, count: Int(n))
                        }
                    }
                    vnic_store_u64_relaxed(sleeping, 0)
                }
            }
        }
    }

    /// After a wait: the entries whose sockets woke it are looked at in the next loop.
    @inline(never)
    private func markReady(_ t: WorkerTable, count: Int) {
        for i in 0..<count where readyTags[i] < Worker.uplinkTag64 {
            let e = t.lookup(index: UInt32(truncatingIfNeeded: readyTags[i] >> 1))
            if e >= 0 { t.markBusy(e, loop: loops) }
        }
    }

    package func install() {
        guard let raw = vnic_exchange_pointer(UnsafeMutableRawPointer(mailbox).assumingMemoryBound(to: UnsafeMutableRawPointer?.self), nil) else { return }
        let t = raw.assumingMemoryBound(to: WorkerTable.self)
        // A VNIC leaving this worker: its uplink receive socket is about to close and
        // shares the uplink pair, so take back what it still holds (its map slots
        // are already gone, nothing new arrives). Its port socket's frames are its
        // own UMEM's: they go with it.
        let old = table.pointee
        for e in 0..<old.count {
            let entry = old.entries[e]
            let now = t.pointee.lookup(entry.mac)
            if now >= 0 && t.pointee.entries[now].uplinkRX == entry.uplinkRX { continue }
            var idx: UInt32 = 0
            let n = xsk_ring_cons__peek(entry.uplinkRX, UInt32.max, &idx)
            for i in 0..<n { free(xsk_ring_cons__rx_desc(entry.uplinkRX, idx &+ i).pointee.addr) }
            if n > 0 { xsk_ring_cons__release(entry.uplinkRX, n) }
        }
        table = t   // the previous table is freed by the control thread after the ack
        if sweep >= t.pointee.count { sweep = 0 }
        vnic_store_u64_release(installedGeneration, t.pointee.generation)
    }

    /// A frame of the worker's UMEM back to its pool.
    @inline(__always)
    private func free(_ addr: UInt64) { give(frames, addr) }

    @inline(__always)
    private func give(_ p: UnsafeMutablePointer<FramePool>, _ addr: UInt64) {
        p.pointee.free[p.pointee.count] = addr & ~UInt64(UMEM.frameSize - 1)
        p.pointee.count &+= 1
    }

    /// The bytes of frame `addr` of pool `p`.
    @inline(__always)
    private func bytes(_ p: UnsafeMutablePointer<FramePool>, _ addr: UInt64) -> UnsafeMutableRawPointer {
        p.pointee.area + Int(truncatingIfNeeded: addr)
    }

    /// Returns completed transmit frames to their pool and tops up the fill
    /// ring; true if it moved frames.
    @inline(__always)
    private func service(_ q: UnsafeMutablePointer<QueueRings>) -> Bool {
        var idx: UInt32 = 0
        let p = q.pointee.frames
        let done = xsk_ring_cons__peek(q.pointee.comp, 1024, &idx)
        if done > 0 {
            // The ring and the pool in locals: stores to the pool would
            // otherwise reload the ring's fields and the count every frame.
            let comp = q.pointee.comp.pointee
            let ring = comp.ring.assumingMemoryBound(to: UInt64.self), mask = comp.mask
            let free = p.pointee.free
            var count = p.pointee.count
            for i in 0..<done {
                free[count] = ring[Int(truncatingIfNeeded: (idx &+ i) & mask)] & ~UInt64(UMEM.frameSize - 1)
                count &+= 1
            }
            p.pointee.count = count
            xsk_ring_cons__release(q.pointee.comp, done)
        }
        let fill = q.pointee.fill
        let size = fill.pointee.size
        let level = size &- xsk_prod_nb_free(fill, size)   // frames the kernel holds in the ring
        let target = q.pointee.fillTarget
        guard level < target else { return done > 0 }
        let want = target - level
        // Refill in steps of at least a burst (half a small ring), so a busy ring
        // is not topped up one by one; a ring below half its target at once.
        let n = UInt32(min(Int(want), p.pointee.count))
        guard n > 0, n >= min(Worker.burst, target / 2) || level * 2 < target else { return done > 0 }
        guard xsk_ring_prod__reserve(fill, n, &idx) == n else { return done > 0 }
        let ring = fill.pointee.ring.assumingMemoryBound(to: UInt64.self), mask = fill.pointee.mask
        let free = p.pointee.free
        var count = p.pointee.count
        for i in 0..<n {
            count &-= 1
            ring[Int(truncatingIfNeeded: (idx &+ i) & mask)] = free[count]
        }
        p.pointee.count = count
        xsk_ring_prod__submit(fill, n)
        return true
    }

    /// Puts frame `addr` of the ring's own pool on its transmit ring (submitted
    /// at the end of the loop); false when the ring is full (the caller still owns the frame).
    @inline(__always)
    private func enqueue(_ q: UnsafeMutablePointer<QueueRings>, addr: UInt64, len: UInt32) -> Bool {
        var idx: UInt32 = 0
        guard xsk_ring_prod__reserve(q.pointee.tx, 1, &idx) == 1 else { return false }
        let d = xsk_ring_prod__tx_desc(q.pointee.tx, idx)!
        d.pointee.addr = addr
        d.pointee.len = len
        d.pointee.options = 0
        q.pointee.reserved &+= 1
        return true
    }

    /// Copies a frame into a free frame of the ring's pool and enqueues the copy;
    /// false when it has no free frame or a full ring.
    @inline(__always)
    private func enqueueCopy(_ q: UnsafeMutablePointer<QueueRings>, from src: UnsafeRawPointer, len: UInt32) -> Bool {
        let p = q.pointee.frames
        guard p.pointee.count > 0 else { return false }
        let a = p.pointee.free[p.pointee.count &- 1]
        guard enqueue(q, addr: a, len: len) else { return false }
        p.pointee.count &-= 1
        copyFrame(bytes(p, a), src, Int(len))
        return true
    }

    /// Copies a frame to the port of every VNIC in `entries` but `except` (-1:
    /// none). A router solicitation goes only to the VNICs that are routers:
    /// those that sent a router advertisement (one that passed their checks)
    /// in the last hour, as a bridge learns its multicast router ports. Linux
    /// retries its solicitations for ever, and with 1,000 VMs and no router,
    /// copying them to every VM was most of an idle worker's work. A router
    /// VM announces itself unsolicited when it starts and at least every 30
    /// minutes (RFC 4861's MaxRtrAdvInterval), which reaches every VM.
    @inline(__always)
    private func flood(_ data: UnsafeRawPointer, len: UInt32, to entries: UnsafeMutablePointer<VNICEntry>,
                       count: Int, except: Int) {
        let routersOnly = Worker.isRouterSolicitation(data, len: len)
        let now = routersOnly ? monotonicNanos() : 0
        for e in 0..<count where e != except {
            let entry = entries + e   // not a copy of the entry per VNIC
            if routersOnly {
                let advertised = vnic_counter_load(entry.pointee.tat + Worker.lastAdvertisement)
                if advertised == 0 || now &- advertised > Worker.routerMemory { continue }
            }
            let counters = entry.pointee.counters
            guard let port = entry.pointee.port else { _ = handOver(entry.pointee, data, len: len); continue }
            if enqueueCopy(port, from: data, len: len) {
                table.pointee.markBusy(e, loop: loops)
                vnic_counter_add(&counters.pointee.rx_packets, 1)
                vnic_counter_add(&counters.pointee.rx_bytes, UInt64(len))
            } else {
                // No frame to copy into, or the VM's transmit ring is full (its VSQ towards the VM).
                countDrop(counters, port.pointee.frames.pointee.count == 0 ? VNIC_DROP_NO_BUFFER : VNIC_DROP_TX_FULL)
            }
        }
    }

    /// An untagged ICMPv6 router solicitation (type 133, no extension header).
    @inline(__always)
    static func isRouterSolicitation(_ f: UnsafeRawPointer, len: UInt32) -> Bool { isICMPv6(f, len: len, type: 133) }

    /// An untagged ICMPv6 router advertisement (type 134, no extension header).
    @inline(__always)
    static func isRouterAdvertisement(_ f: UnsafeRawPointer, len: UInt32) -> Bool { isICMPv6(f, len: len, type: 134) }

    @inline(__always)
    static func isICMPv6(_ f: UnsafeRawPointer, len: UInt32, type: UInt8) -> Bool {
        len >= 58 && f.loadUnaligned(fromByteOffset: 12, as: UInt16.self) == UInt16(0x86DD).bigEndian
            && f.load(fromByteOffset: 20, as: UInt8.self) == 58 && f.load(fromByteOffset: 54, as: UInt8.self) == type
    }

    /// The slot of a VNIC's shared state (`VNICEntry.tat`) holding when it last
    /// sent a router advertisement (monotonic ns; 0: never), and how long that makes it a router.
    static let lastAdvertisement = 3
    static let routerMemory: UInt64 = 3_600_000_000_000

    /// Copies a frame for VNIC `entry`, whose port this worker has no socket
    /// on, into the ring to the worker that has one; false (counted) when that
    /// ring is full. That worker counts it as received when it delivers it.
    @inline(never)
    private func handOver(_ entry: VNICEntry, _ data: UnsafeRawPointer, len: UInt32) -> Bool {
        let to = Int(entry.handoff)
        guard to >= 0, to < table.pointee.outgoingCount, let ring = table.pointee.outgoing[to],
              ring.push(tag: entry.index, data, count: Int(len)) else {
            countDrop(entry.counters, VNIC_DROP_HANDOFF_FULL)
            return false
        }
        handedTo |= 1 << UInt64(to)
        return true
    }

    /// Delivers what other workers handed over (at most a burst per ring).
    @inline(never)
    private func receiveHandoffs(_ t: WorkerTable) -> Bool {
        var work = false
        for r in 0..<t.incomingCount {
            let ring = t.incoming[r]
            var n = 0
            while n < Int(Worker.burst), ring.pop({ index, bytes in
                let e = t.lookup(index: index)
                guard e >= 0, let port = t.entries[e].port else { return }   // gone meanwhile
                let c = t.entries[e].counters
                if enqueueCopy(port, from: bytes.baseAddress!, len: UInt32(bytes.count)) {
                    t.markBusy(e, loop: loops)
                    vnic_counter_add(&c.pointee.rx_packets, 1)
                    vnic_counter_add(&c.pointee.rx_bytes, UInt64(bytes.count))
                } else {
                    countDrop(c, VNIC_DROP_TX_FULL)
                }
            }) { n += 1 }
            if n > 0 { work = true }
        }
        return work
    }

    /// Wakes the workers handed frames in this loop that are asleep.
    @inline(__always)
    private func wakeHandedTo() {
        guard handedTo != 0 else { return }
        vnic_fence_seq_cst()
        var m = handedTo
        handedTo = 0
        while m != 0 {
            let i = m.trailingZeroBitCount
            m &= m &- 1
            if i < peerCount && vnic_load_u64_acquire(peers[i].sleeping) != 0 {
                var one: UInt64 = 1
                _ = write(peers[i].wake, &one, 8)
            }
        }
    }

    /// Checks and forwards `n` frames from VNIC `e`'s port ring, starting at
    /// `first`, then releases them; returns how many went to the wire.
    @inline(__always)
    private func forwardFromVM<P: FramePolicy>(_ e: Int, entries: UnsafeMutablePointer<VNICEntry>, count: Int,
                                               table t: WorkerTable, first: UInt32, n: UInt32, mtu: UInt32,
                                               _ policy: P) -> UInt64 {
        let entry = entries[e]
        let rx = entry.port!.pointee.rx
        let pp = entry.port!.pointee.frames
        var accepted: UInt64 = 0, bytes: UInt64 = 0, toWire: UInt64 = 0
        var i: UInt32 = 0
        while i < n {
            let d = xsk_ring_cons__rx_desc(rx, first &+ i).pointee
            if d.options & Worker.packetContinues != 0 {
                // A frame larger than a UMEM frame (a guest's TSO): a chain of descriptors.
                var j = i
                while j < n && xsk_ring_cons__rx_desc(rx, first &+ j).pointee.options & Worker.packetContinues != 0 { j += 1 }
                if j == n {
                    if i > 0 || n < Worker.burst { break }   // its end comes with the next loop: leave it in the ring
                    // Longer than a whole burst: it can never be taken whole.
                    for k in 0..<n { give(pp, xsk_ring_cons__rx_desc(rx, first &+ k).pointee.addr) }
                    countDrop(entry.counters, VNIC_DROP_MALFORMED)
                    i = n; break
                }
                segmentChain(e, entries: entries, count: count, table: t, rx: rx, pool: pp, first: first &+ i,
                             last: first &+ j, mtu: mtu, policy, accepted: &accepted, bytes: &bytes, toWire: &toWire)
                i = j &+ 1
                continue
            }
            forwardFrame(e, entries: entries, count: count, table: t, data: self.bytes(pp, d.addr), len: d.len, policy,
                         accepted: &accepted, bytes: &bytes, toWire: &toWire)
            give(pp, d.addr)
            i &+= 1
        }
        xsk_ring_cons__release(rx, i)
        if i < n { xsk_ring_cons__cancel(rx, n &- i); stalled = true }
        vnic_counter_add(&entry.counters.pointee.tx_packets, accepted)
        vnic_counter_add(&entry.counters.pointee.tx_bytes, bytes)
        return toWire
    }

    /// XDP_PKT_CONTD (linux/if_xdp.h, 6.6+): more of this packet follows in the next descriptor.
    static let packetContinues: UInt32 = 1

    /// Whether an uplink descriptor belongs to a frame larger than a UMEM frame
    /// (a jumbo frame from the wire: not forwarded, counted malformed at its
    /// end); `inChain` carries the state from one descriptor to the next.
    @inline(__always)
    private func partOfChain(_ options: UInt32, _ inChain: inout Bool, _ counters: UnsafeMutablePointer<vnic_counters>) -> Bool {
        let continues = options & Worker.packetContinues != 0
        guard continues || inChain else { return false }
        if !continues { countDrop(counters, VNIC_DROP_MALFORMED) }
        inChain = continues
        return true
    }

    /// Checks one frame from VNIC `e` (`data`, in its port's frame, which the
    /// caller gives back) and forwards copies: to the wire, a local VNIC, or both.
    @inline(__always)
    private func forwardFrame<P: FramePolicy>(_ e: Int, entries: UnsafeMutablePointer<VNICEntry>, count: Int,
                                               table t: WorkerTable, data: UnsafeMutableRawPointer, len: UInt32,
                                               _ policy: P, accepted: inout UInt64, bytes: inout UInt64,
                                               toWire: inout UInt64) {
        // Through the pointer: a copy of the whole entry is a memcpy per frame.
        let entry = entries + e
        var plain = false
        switch Classify.classify(data, len: Int(len), policy, plain: &plain) {
        case .forward: break
        case .toControl: toControlThread(entry.pointee, data, len: Int(len)); return
        case .discard: return
        case .drop(let verdict): countDrop(entry.pointee.counters, vnic_drop_reason(verdict.rawValue)); return
        }
        // A checksum the VM's stack left to the device (ChecksumCompletion).
        _ = plain ? ChecksumCompletion.completePlainIPv4(data) : ChecksumCompletion.complete(data, len: Int(len))
        accepted &+= 1; bytes &+= UInt64(len)
        let dst = MACKey.load(data)
        let local = MACKey.isGroup(dst) ? -1 : t.lookup(dst)
        if local < 0 {
            // Broadcast/multicast: to every other VNIC too. Anything not local: the wire.
            if MACKey.isGroup(dst) {
                if Worker.isRouterAdvertisement(data, len: len) {   // it is a router: solicitations reach it
                    vnic_store_u64_relaxed(entry.pointee.tat + Worker.lastAdvertisement, monotonicNanos())
                }
                flood(data, len: len, to: entries, count: count, except: e)
            }
            if enqueueCopy(uplink, from: data, len: len) { toWire &+= 1 } else {
                countDrop(entry.pointee.counters, frames.pointee.count == 0 ? VNIC_DROP_NO_BUFFER : VNIC_DROP_TX_FULL)
            }
        } else if local != e {
            let other = entries[local]
            guard let otherPort = other.port else { _ = handOver(other, data, len: len); return }
            if enqueueCopy(otherPort, from: data, len: len) {
                t.markBusy(local, loop: loops)
                vnic_counter_add(&other.counters.pointee.rx_packets, 1)
                vnic_counter_add(&other.counters.pointee.rx_bytes, UInt64(len))
            } else {
                countDrop(other.counters, otherPort.pointee.frames.pointee.count == 0 ? VNIC_DROP_NO_BUFFER : VNIC_DROP_TX_FULL)
            }
        }
        // To itself: a bridge does not reflect it.
    }

    /// A chain of descriptors `first`...`last` (one frame larger than a UMEM
    /// frame: a guest's TSO) from VNIC `e`: gathered, cut into segments of at
    /// most `mtu` (Segmentation), each checked and forwarded as a frame of its
    /// own; the chain's frames return to the port's pool. Anything but TCP is
    /// dropped and counted (malformed).
    @inline(never)
    private func segmentChain<P: FramePolicy>(_ e: Int, entries: UnsafeMutablePointer<VNICEntry>, count: Int,
                                               table t: WorkerTable, rx: UnsafeMutablePointer<xsk_ring_cons>,
                                               pool pp: UnsafeMutablePointer<FramePool>,
                                               first: UInt32, last: UInt32, mtu: UInt32, _ policy: P,
                                               accepted: inout UInt64, bytes: inout UInt64, toWire: inout UInt64) {
        var total = 0
        var k = first
        while true {
            let d = xsk_ring_cons__rx_desc(rx, k).pointee
            if total + Int(d.len) <= Worker.chainCapacity {
                (chainScratch + total).copyMemory(from: self.bytes(pp, d.addr), byteCount: Int(d.len))
            }
            total += Int(d.len)
            give(pp, d.addr)
            if k == last { break }
            k &+= 1
        }
        let mtu = Int(min(mtu, UMEM.frameSize - 18))
        guard total <= Worker.chainCapacity, let frame = TCPSuperFrame(chainScratch, len: total, mtu: mtu),
              frame.headers + frame.mss <= Int(UMEM.frameSize) else {
            countDrop(entries[e].counters, VNIC_DROP_MALFORMED)
            return
        }
        for s in 0..<frame.segments {
            let len = frame.write(s, from: chainScratch, to: segmentScratch)
            forwardFrame(e, entries: entries, count: count, table: t, data: segmentScratch, len: UInt32(len), policy,
                         accepted: &accepted, bytes: &bytes, toWire: &toWire)
        }
    }

    /// A guest protocol or DHCP datagram, or a router solicitation, from VNIC `entry`: to the control
    /// thread, tagged with the VNIC's index (the port it came in on, never what
    /// it claims), within the VNIC's request rate; the excess is dropped and counted.
    @inline(never)
    private func toControlThread(_ entry: VNICEntry, _ data: UnsafeRawPointer, len: Int) {
        let admitted = Worker.requestLimiter.admit(entry.tat + 2, now: monotonicNanos(), lengths: { _ in 1 }, count: 1)
        guard admitted == 1, toControl.push(tag: entry.index, data, count: len) else {
            countDrop(entry.counters, VNIC_DROP_REQUEST_RATE)
            return
        }
        var one: UInt64 = 1
        if wakeFD >= 0 { _ = write(wakeFD, &one, 8) }
    }

    /// Frames the control thread wants sent to VMs, on their ports' rings.
    @inline(never)
    private func sendFromControl(_ t: WorkerTable) {
        while fromControl.pop({ index, bytes in
            let e = t.lookup(index: index)
            guard e >= 0 else { return }
            let entry = t.entries[e]
            if let port = entry.port {
                if enqueueCopy(port, from: bytes.baseAddress!, len: UInt32(bytes.count)) { t.markBusy(e, loop: loops) }
            } else {
                _ = handOver(entry, bytes.baseAddress!, len: UInt32(bytes.count))
            }
        }) {}
    }

    /// Entry e's record in the reader's snapshot of the database (the burst
    /// begins at the loop's first lookup: a new snapshot only after a commit
    /// or a sleep), read and decoded once per snapshot, not per loop; nil when
    /// the database has none (the VNIC is being deleted) or cannot be read.
    @inline(__always)
    private func record(_ e: Int, _ t: WorkerTable) -> UnsafeMutablePointer<LoopRecord>? {
        if !inBurst {
            let snapshot: UInt64? = reader._withUnsafeGuaranteedRef { r in (try? r.beginBurst()) != nil ? r.snapshots : nil }
            guard let snapshot else { return nil }
            inBurst = true
            if snapshot != epochSnapshot { epochSnapshot = snapshot; epoch &+= 1 }
        }
        let cached = t.records + e
        if cached.pointee.epoch != epoch { readRecord(e, t) }
        return cached.pointee.view == nil ? nil : cached
    }

    @inline(never)
    private func readRecord(_ e: Int, _ t: WorkerTable) {
        let view = reader._withUnsafeGuaranteedRef { $0.vnic(index: t.entries[e].index) }
        t.records[e] = LoopRecord(epoch: epoch, view: view, fields: view.map(DataplaneFields.init) ?? DataplaneFields())
        t.sourceCounts[2 * e] = -1
        t.sourceCounts[2 * e + 1] = -1
    }

    @inline(__always)
    private func endBurst() {
        if inBurst {
            reader._withUnsafeGuaranteedRef { $0.endBurst() }
            inBurst = false
        }
    }

    /// Frames `first`..<`first + n` of `rx` (of `pool`) from a VNIC whose record
    /// cannot be read: its policy is unknown, so they go nowhere (counted `no-config`).
    @inline(never)
    private func dropUnconfigured(_ rx: UnsafeMutablePointer<xsk_ring_cons>, pool: UnsafeMutablePointer<FramePool>,
                                  first: UInt32, n: UInt32, _ counters: UnsafeMutablePointer<vnic_counters>) {
        for i in 0..<n { give(pool, xsk_ring_cons__rx_desc(rx, first &+ i).pointee.addr) }
        xsk_ring_cons__release(rx, n)
        for _ in 0..<n { countDrop(counters, VNIC_DROP_NO_CONFIG) }
    }

    /// Submits what was reserved and kicks the kernel when it asks for it.
    @inline(__always)
    private func flush(_ q: UnsafeMutablePointer<QueueRings>) {
        let n = q.pointee.reserved
        if n > 0 {
            xsk_ring_prod__submit(q.pointee.tx, n)
            q.pointee.reserved = 0
            q.pointee.kick = true
        }
        guard q.pointee.kick else { return }
        if xsk_ring_prod__needs_wakeup(q.pointee.tx) != 0 {
            _ = sendto(q.pointee.fd, nil, 0, vnic_msg_dontwait, nil, 0)
        }
        // Copy mode sends a bounded batch per kick: kick again while some are left.
        let tx = q.pointee.tx
        q.pointee.kick = tx.pointee.producer.pointee != consumerIndex(tx)
    }

    @inline(__always)
    private func consumerIndex(_ tx: UnsafeMutablePointer<xsk_ring_prod>) -> UInt32 {
        UnsafeMutableRawPointer(tx.pointee.consumer).load(as: UInt32.self)
    }

    /// How many of the `n` frames from `first` in VNIC `entry`'s uplink ring
    /// maxbw (its record's, `maxbw` bits/s) admits towards the VM now.
    @inline(__always)
    private func admittedTowardsVM(_ entry: VNICEntry, maxbw: UInt64, rx: UnsafeMutablePointer<xsk_ring_cons>, first: UInt32,
                                   upTo n: UInt32) -> UInt32 {
        let limiter = RateLimiter(bitsPerSecond: maxbw)
        guard n > 0 && !limiter.isUnlimited else { return n }
        return UInt32(limiter.admit(entry.tat, now: monotonicNanos(), lengths: {
            xsk_ring_cons__rx_desc(rx, first &+ UInt32($0)).pointee.len
        }, count: Int(n)))
    }

    /// The uplink frames of VNIC `entry`, whose port this worker has no socket
    /// on: as many as maxbw admits are copied to the owning worker (the rest wait
    /// in the VNIC's receive ring), and their descriptors return to the pool.
    @inline(never)
    private func handOverFromUplink(_ entry: VNICEntry, maxbw: UInt64, first: UInt32, got: UInt32) -> UInt32 {
        let rx = entry.uplinkRX
        let ring = entry.handoff >= 0 && Int(entry.handoff) < table.pointee.outgoingCount
            ? table.pointee.outgoing[Int(entry.handoff)] : nil
        var room = ring?.freeSlots ?? 0
        // The owning worker copies them into the port's frames: no more than it
        // has free (its count, read here as a hint, less what already waits in
        // the ring), so a slow VM's frames wait here instead of being dropped there.
        if let p = entry.handoffPort, let ring {
            let count = UnsafeMutableRawPointer(p.pointee.frames.pointer(to: \.count)!).assumingMemoryBound(to: UInt64.self)
            let free = Int(truncatingIfNeeded: vnic_counter_load(count))   // a relaxed load
            room = min(room, max(free - (ring.capacity - room), 0))
        }
        let n = admittedTowardsVM(entry, maxbw: maxbw, rx: rx, first: first, upTo: min(got, UInt32(room)))   // the rest waits in the VNIC's receive ring
        if n < got { xsk_ring_cons__cancel(rx, got &- n); stalled = true }
        var inChain = false
        for i in 0..<n {
            let d = xsk_ring_cons__rx_desc(rx, first &+ i).pointee
            if !partOfChain(d.options, &inChain, entry.counters) {
                _ = handOver(entry, self.bytes(frames, d.addr), len: d.len)
            }
            free(d.addr)
        }
        if n > 0 { xsk_ring_cons__release(rx, n) }
        vnic_counter_add(queueCounters, UInt64(n))
        return n
    }

    package func loopOnce() -> Bool {
        let t = table.pointee
        let entries = t.entries
        let count = t.count
        let hot = t.hot
        var work = false
        var idx: UInt32 = 0
        loops &+= 1
        stalled = false
        let loop = loops

        // The sweep window joins this loop's hot entries (those idle leave again at its end).
        if count > 0 {
            for _ in 0..<min(Worker.sweepWidth, count) {
                hot[sweep >> 6] |= 1 << UInt64(sweep & 63)
                sweep += 1
                if sweep == count { sweep = 0 }
            }
        }

        _ = service(uplink)
        var w = 0
        while w < t.hotWords {
            var bits = hot[w]
            while bits != 0 {
                let e = w << 6 | bits.trailingZeroBitCount
                bits &= bits &- 1
                if let p = entries[e].port, service(p) { t.markBusy(e, loop: loop) }
            }
            w += 1
        }
        if !fromControl.isEmpty { sendFromControl(t); work = true }
        if t.incomingCount > 0 && receiveHandoffs(t) { work = true }

        // Entries come in priority order (high first), and so do the bits. Under
        // saturation the loop's budget runs out before the low ones; their frames
        // wait in their rings.
        var budget = Worker.loopBudget

        // Uplink, per VNIC: a copy into the VNIC's port's own frames. Only as many
        // as maxbw admits and the port's ring and free frames take: the rest wait
        // in the VNIC's receive ring (its inbound VSQ), in order.
        w = 0
        while w < t.hotWords && budget > 0 {
            var bits = hot[w]
            while bits != 0 && budget > 0 {
                let e = w << 6 | bits.trailingZeroBitCount
                bits &= bits &- 1
                let entry = entries[e]
                let rx = entry.uplinkRX
                let got = xsk_ring_cons__peek(rx, UInt32(min(Int(Worker.burst), budget)), &idx)
                if got == 0 { continue }
                work = true
                t.markBusy(e, loop: loop)
                let first = idx
                guard let rec = record(e, t) else {
                    dropUnconfigured(rx, pool: frames, first: first, n: got, entry.counters)
                    budget &-= Int(got)
                    continue
                }
                let maxbw = rec.pointee.fields.maxbw
                guard let port = entry.port else {
                    budget &-= Int(handOverFromUplink(entry, maxbw: maxbw, first: first, got: got))
                    continue
                }
                // As many as the port's ring and free frames take (the rest waits).
                let room = min(xsk_prod_nb_free(port.pointee.tx, got), UInt32(truncatingIfNeeded: port.pointee.frames.pointee.count))
                let n = admittedTowardsVM(entry, maxbw: maxbw, rx: rx, first: first, upTo: min(got, room))
                if n < got { xsk_ring_cons__cancel(rx, got &- n); stalled = true }
                if n == 0 { continue }
                var bytes: UInt64 = 0
                var inChain = false
                for i in 0..<n {
                    let d = xsk_ring_cons__rx_desc(rx, first &+ i).pointee
                    if !partOfChain(d.options, &inChain, entry.counters) {
                        _ = enqueueCopy(port, from: self.bytes(frames, d.addr), len: d.len)   // room was checked above
                        bytes &+= UInt64(d.len)
                    }
                    free(d.addr)
                }
                xsk_ring_cons__release(rx, n)
                budget &-= Int(n)
                vnic_counter_add(&entry.counters.pointee.rx_packets, UInt64(n))
                vnic_counter_add(&entry.counters.pointee.rx_bytes, bytes)
                vnic_counter_add(queueCounters, UInt64(n))
            }
            w += 1
        }

        // Uplink socket: broadcast and multicast, copied to every VNIC.
        let fn = xsk_ring_cons__peek(uplink.pointee.rx, Worker.burst, &idx)
        if fn > 0 {
            work = true
            var inChain = false
            for i in 0..<fn {
                let d = xsk_ring_cons__rx_desc(uplink.pointee.rx, idx &+ i).pointee
                if d.options & Worker.packetContinues != 0 || inChain {
                    inChain = d.options & Worker.packetContinues != 0   // a jumbo frame: not forwarded
                } else {
                    flood(self.bytes(frames, d.addr), len: d.len,
                          to: entries, count: count, except: -1)
                }
                free(d.addr)
            }
            xsk_ring_cons__release(uplink.pointee.rx, fn)
            vnic_counter_add(queueCounters, UInt64(fn))
        }

        // Ports: what the VMs send, checked against the VNIC's record read for the
        // loop (none readable: dropped, counted no-config). maxbw admits a
        // prefix of the burst; the rest stays in the port's receive ring (the
        // outbound VSQ): the VM's frames wait there instead of being dropped,
        // until the ring is full.
        var toWire: UInt64 = 0
        budget = Worker.loopBudget   // each direction has its own
        w = 0
        while w < t.hotWords && budget > 0 {
            var bits = hot[w]
            while bits != 0 && budget > 0 {
                let e = w << 6 | bits.trailingZeroBitCount
                bits &= bits &- 1
                let entry = entries[e]
                guard let port = entry.port else { continue }
                let rx = port.pointee.rx
                let got = xsk_ring_cons__peek(rx, UInt32(min(Int(Worker.burst), budget)), &idx)
                if got == 0 { continue }
                work = true
                t.markBusy(e, loop: loop)
                let first = idx
                guard let rec = record(e, t) else {
                    dropUnconfigured(rx, pool: port.pointee.frames, first: first, n: got, entry.counters)
                    budget &-= Int(got)
                    continue
                }
                let policy = RecordPolicy(rec.pointee.view!, rec.pointee.fields, prefixes: t.sources4 + e * RecordPolicy.capacity4,
                                          prefixes6: t.sources6 + e * RecordPolicy.capacity6, counts: t.sourceCounts + 2 * e)
                let limiter = RateLimiter(bitsPerSecond: policy.maxbw)
                var n = got
                if !limiter.isUnlimited {
                    n = UInt32(limiter.admit(entry.tat + 1, now: monotonicNanos(), lengths: {
                        xsk_ring_cons__rx_desc(rx, first &+ UInt32($0)).pointee.len
                    }, count: Int(n)))
                    if n < got { xsk_ring_cons__cancel(rx, got &- n); stalled = true }
                    if n == 0 { continue }
                }
                toWire &+= forwardFromVM(e, entries: entries, count: count, table: t, first: first, n: n,
                                         mtu: policy.mtu, policy)
                budget &-= Int(n)
            }
            w += 1
        }
        endBurst()
        if toWire > 0 { vnic_counter_add(queueCounters + 1, toWire) }

        // Submit what was queued (hot now: every entry a frame was queued for is),
        // then let go of the entries idle for `hotLoops` loops with nothing left to kick.
        flush(uplink)
        if uplink.pointee.kick { stalled = true }
        w = 0
        while w < t.hotWords {
            var bits = hot[w]
            while bits != 0 {
                let e = w << 6 | bits.trailingZeroBitCount
                bits &= bits &- 1
                if let p = entries[e].port {
                    flush(p)
                    if p.pointee.kick { t.lastBusy[e] = loop; stalled = true; continue }
                }
                if loop &- t.lastBusy[e] > Worker.hotLoops { hot[w] &= ~(1 << UInt64(e & 63)) }
            }
            w += 1
        }
        wakeHandedTo()
        return work
    }
}

/// Offset of `drops` in `struct vnic_counters` (four u64 before it); a test checks it.
package let vnicCountersDropsOffset = 32

@inline(__always)
func countDrop(_ c: UnsafeMutablePointer<vnic_counters>, _ reason: vnic_drop_reason) {
    let drops = (UnsafeMutableRawPointer(c) + vnicCountersDropsOffset).assumingMemoryBound(to: UInt64.self)
    vnic_counter_add(drops + Int(reason.rawValue), 1)
}

/// Copies a frame between UMEMs: frames of 32 to 128 bytes (most of what a
/// small-packet flood is) as two or four overlapping 32-byte moves inline,
/// the rest by memcpy (callgrind, 60-byte frames: the call to memcpy took
/// about 11 instructions a frame, these moves about 5).
@inline(__always)
func copyFrame(_ d: UnsafeMutableRawPointer, _ s: UnsafeRawPointer, _ n: Int) {
    typealias V = SIMD32<UInt8>
    if n >= 32 && n <= 64 {
        let a = s.loadUnaligned(as: V.self), b = s.loadUnaligned(fromByteOffset: n &- 32, as: V.self)
        d.storeBytes(of: a, as: V.self)
        d.storeBytes(of: b, toByteOffset: n &- 32, as: V.self)
    } else if n > 64 && n <= 128 {
        let a = s.loadUnaligned(as: V.self), b = s.loadUnaligned(fromByteOffset: 32, as: V.self)
        let c = s.loadUnaligned(fromByteOffset: n &- 64, as: V.self), e = s.loadUnaligned(fromByteOffset: n &- 32, as: V.self)
        d.storeBytes(of: a, as: V.self)
        d.storeBytes(of: b, toByteOffset: 32, as: V.self)
        d.storeBytes(of: c, toByteOffset: n &- 64, as: V.self)
        d.storeBytes(of: e, toByteOffset: n &- 32, as: V.self)
    } else {
        memcpy(d, s, n)
    }
}

/// The monotonic clock in nanoseconds (the workers' rate and router clocks).
@inline(__always)
package func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

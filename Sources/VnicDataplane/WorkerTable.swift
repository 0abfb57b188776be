// WorkerTable: what a worker needs to forward, as plain memory (no ARC, no
// existentials): the VNICs it serves with their rings and counters, and a
// destination-MAC hash for VM-to-VM forwarding.
//
// Publication protocol (one writer, the control thread; one reader, the worker):
// the control thread builds a new table, stores it in the worker's mailbox with
// an acquire-release exchange, and keeps the old one. The worker takes the
// mailbox at the top of its loop, installs the table and stores its generation
// (release). A table, and any ring it names that the new table no longer names,
// is freed only after the worker reports a later generation: a worker never
// touches memory the control thread has freed.
import CLibXDP
import CVnicShim
import VnicConfig
import VnicCore

/// UMEM frames and the stack of the free ones: a worker's (the uplink side:
/// its uplink socket and every VNIC's receive socket on its queue share them)
/// or one port socket's own. After publication only the worker that uses it
/// touches it.
package struct FramePool {
    var area: UnsafeMutableRawPointer
    var free: UnsafeMutablePointer<UInt64>
    /// Frames free now (another worker reads it as a hint), and in all.
    var count: Int
    let size: Int

    package static func make(area: UnsafeMutableRawPointer, frames: Int) -> UnsafeMutablePointer<FramePool> {
        let free = UnsafeMutablePointer<UInt64>.allocate(capacity: max(frames, 1))
        for i in 0..<frames { free[i] = UInt64(i) * UInt64(UMEM.frameSize) }
        let p = UnsafeMutablePointer<FramePool>.allocate(capacity: 1)
        p.initialize(to: FramePool(area: area, free: free, count: frames, size: frames))
        return p
    }

    package static func destroy(_ p: UnsafeMutablePointer<FramePool>) {
        p.pointee.free.deallocate()
        p.deallocate()
    }
}

/// A socket's rings as the worker uses them. For a port socket, `fill`/`comp` are
/// the pair of the port's own UMEM; for the uplink socket, the (uplink, queue) pair.
/// After publication only the owning worker writes it.
package struct QueueRings {
    var rx: UnsafeMutablePointer<xsk_ring_cons>
    var tx: UnsafeMutablePointer<xsk_ring_prod>
    var fill: UnsafeMutablePointer<xsk_ring_prod>
    var comp: UnsafeMutablePointer<xsk_ring_cons>
    var fd: Int32
    /// The frames its rings take and give back: the worker's for the uplink, the
    /// port's own for a port socket (frames cross between them by copy).
    var frames: UnsafeMutablePointer<FramePool>
    /// How many frames to keep in the fill ring: the uplink's 2,048; a port's
    /// all of its frames but `Worker.towardsVM`.
    var fillTarget: UInt32
    /// Transmit descriptors reserved in this loop and not yet submitted.
    var reserved: UInt32 = 0
    /// The kernel has not yet taken everything submitted: kick again.
    var kick: Bool = false

    package init(rx: UnsafeMutablePointer<xsk_ring_cons>, tx: UnsafeMutablePointer<xsk_ring_prod>,
                 fill: UnsafeMutablePointer<xsk_ring_prod>, comp: UnsafeMutablePointer<xsk_ring_cons>, fd: Int32,
                 frames: UnsafeMutablePointer<FramePool>, fillTarget: UInt32) {
        self.rx = rx; self.tx = tx; self.fill = fill; self.comp = comp; self.fd = fd
        self.frames = frames; self.fillTarget = fillTarget
    }
}

/// One VNIC as one worker sees it: where its frames come from and go. What
/// its frames are checked against, and its rates, are its database record's
/// (RecordPolicy), read once per database snapshot: nothing of its policy is here.
package struct VNICEntry {
    var index: UInt32
    /// The MAC as `MACKey` (frame byte order packed into a UInt64).
    var mac: UInt64
    /// The VNIC's receive socket on the uplink, on this worker's queue.
    var uplinkRX: UnsafeMutablePointer<xsk_ring_cons>
    /// The VNIC's port socket on this worker, or nil when the port has fewer
    /// queues than there are workers and this worker owns none of them: frames
    /// for the VM are then copied to worker `handoff`, which owns one.
    var port: UnsafeMutablePointer<QueueRings>?
    var counters: UnsafeMutablePointer<vnic_counters>
    /// State shared by the VNIC's workers: maxbw's theoretical arrival times,
    /// [0] towards the VM, [1] from the VM; [2] its requests' rate; [3] when it
    /// last sent a router advertisement (Worker.lastAdvertisement).
    var tat: UnsafeMutablePointer<UInt64>
    /// The worker that delivers to the port when `port` is nil (-1: this one),
    /// and that worker's port rings (read only for how many free frames they have).
    var handoff: Int32 = -1
    var handoffPort: UnsafeMutablePointer<QueueRings>? = nil

    package init(index: UInt32, mac: UInt64, uplinkRX: UnsafeMutablePointer<xsk_ring_cons>, port: UnsafeMutablePointer<QueueRings>?,
                 counters: UnsafeMutablePointer<vnic_counters>, tat: UnsafeMutablePointer<UInt64>, handoff: Int32 = -1,
                 handoffPort: UnsafeMutablePointer<QueueRings>? = nil) {
        self.index = index; self.mac = mac; self.uplinkRX = uplinkRX; self.port = port; self.counters = counters
        self.tat = tat; self.handoff = handoff; self.handoffPort = handoffPort
    }
}

/// Entry e's record as read in the worker's snapshot `epoch` (a view into the
/// reader's snapshot, and its fields decoded once; view nil: the database has
/// none). Both directions, and every loop until the reader takes a new
/// snapshot (a commit, or a sleep), use one read and one decode.
struct LoopRecord {
    var epoch: UInt64 = 0
    var view: VNICView? = nil
    var fields = DataplaneFields()
}

package struct WorkerTable {
    var generation: UInt64
    var count: Int
    var entries: UnsafeMutablePointer<VNICEntry>
    /// Open addressing, linear probing: key MACKey+1 (0 = empty) -> entry index.
    var hashMask: Int
    var hashKeys: UnsafeMutablePointer<UInt64>
    var hashValues: UnsafeMutablePointer<Int32>
    /// VNIC index + 1 (0 = empty) -> entry index: where a frame handed over by
    /// another worker, or queued by the control thread, goes.
    var indexMask: Int
    var indexKeys: UnsafeMutablePointer<UInt32>
    var indexValues: UnsafeMutablePointer<Int32>
    /// Rings to the other workers, by worker number (nil: none yet), and the
    /// rings from them that this worker drains.
    var outgoingCount: Int
    var outgoing: UnsafeMutablePointer<FrameRing?>
    var incomingCount: Int
    var incoming: UnsafeMutablePointer<FrameRing>
    /// The entries a loop looks at (bit e: entry e): those that moved frames in
    /// the last `Worker.hotLoops` loops, those a frame was queued for, and a
    /// window of `Worker.sweepWidth` that walks round all of them. A worker's
    /// cost per loop follows its busy VNICs, not how many it serves; an idle
    /// one is found by the sweep or, when the worker slept, by its descriptor.
    var hotWords: Int
    var hot: UnsafeMutablePointer<UInt64>
    /// The loop (low 32 bits of the worker's count) in which entry e last moved frames.
    var lastBusy: UnsafeMutablePointer<UInt32>
    /// Entry e's record in the worker's current snapshot (the worker's alone).
    var records: UnsafeMutablePointer<LoopRecord>
    /// Entry e's source prefixes as its record's policy resolved them
    /// (RecordPolicy: `RecordPolicy.capacity4` IPv4 and `capacity6` IPv6 slots
    /// from e times each), and how many of each (two words from 2e; -1: not
    /// resolved in this snapshot yet). The worker's alone.
    var sources4: UnsafeMutablePointer<(UInt32, UInt32)>
    var sources6: UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>
    var sourceCounts: UnsafeMutablePointer<Int>

    /// Allocates a table; free it with `destroy`.
    package static func make(generation: UInt64, entries list: [VNICEntry],
                     outgoing out: [FrameRing?] = [], incoming inc: [FrameRing] = [])
        -> UnsafeMutablePointer<WorkerTable> {
        let entries = UnsafeMutablePointer<VNICEntry>.allocate(capacity: max(list.count, 1))
        entries.initialize(from: list, count: list.count)
        var capacity = 8
        while capacity < list.count * 2 { capacity <<= 1 }
        let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        keys.initialize(repeating: 0, count: capacity)
        let values = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        values.initialize(repeating: -1, count: capacity)
        for (i, e) in list.enumerated() {
            var h = MACKey.hash(e.mac) & (capacity - 1)
            while keys[h] != 0 { h = (h + 1) & (capacity - 1) }
            keys[h] = e.mac &+ 1
            values[h] = Int32(i)
        }
        let indexKeys = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        indexKeys.initialize(repeating: 0, count: capacity)
        let indexValues = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        indexValues.initialize(repeating: -1, count: capacity)
        for (i, e) in list.enumerated() {
            var h = WorkerTable.hash(index: e.index) & (capacity - 1)
            while indexKeys[h] != 0 { h = (h + 1) & (capacity - 1) }
            indexKeys[h] = e.index &+ 1
            indexValues[h] = Int32(i)
        }
        let outgoing = UnsafeMutablePointer<FrameRing?>.allocate(capacity: max(out.count, 1))
        outgoing.initialize(from: out, count: out.count)
        let incoming = UnsafeMutablePointer<FrameRing>.allocate(capacity: max(inc.count, 1))
        incoming.initialize(from: inc, count: inc.count)
        // Every entry starts hot: the first loops look at all of them.
        let words = (list.count + 63) / 64
        let hot = UnsafeMutablePointer<UInt64>.allocate(capacity: max(words, 1))
        hot.initialize(repeating: ~0, count: max(words, 1))
        if list.count % 64 != 0 { hot[words - 1] = (1 << UInt64(list.count % 64)) - 1 }
        if list.isEmpty { hot[0] = 0 }
        let lastBusy = UnsafeMutablePointer<UInt32>.allocate(capacity: max(list.count, 1))
        lastBusy.initialize(repeating: 0, count: max(list.count, 1))
        let records = UnsafeMutablePointer<LoopRecord>.allocate(capacity: max(list.count, 1))
        records.initialize(repeating: LoopRecord(), count: max(list.count, 1))
        let n = max(list.count, 1)
        let sources4 = UnsafeMutablePointer<(UInt32, UInt32)>.allocate(capacity: n * RecordPolicy.capacity4)
        let sources6 = UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>.allocate(capacity: n * RecordPolicy.capacity6)
        let sourceCounts = UnsafeMutablePointer<Int>.allocate(capacity: 2 * n)
        sourceCounts.initialize(repeating: -1, count: 2 * n)
        let t = UnsafeMutablePointer<WorkerTable>.allocate(capacity: 1)
        t.initialize(to: WorkerTable(generation: generation, count: list.count, entries: entries,
                                     hashMask: capacity - 1, hashKeys: keys, hashValues: values,
                                     indexMask: capacity - 1, indexKeys: indexKeys, indexValues: indexValues,
                                     outgoingCount: out.count, outgoing: outgoing, incomingCount: inc.count, incoming: incoming,
                                     hotWords: words, hot: hot, lastBusy: lastBusy, records: records,
                                     sources4: sources4, sources6: sources6, sourceCounts: sourceCounts))
        return t
    }

    static func destroy(_ t: UnsafeMutablePointer<WorkerTable>) {
        t.pointee.entries.deallocate()
        t.pointee.hashKeys.deallocate()
        t.pointee.hashValues.deallocate()
        t.pointee.indexKeys.deallocate()
        t.pointee.indexValues.deallocate()
        t.pointee.outgoing.deallocate()
        t.pointee.incoming.deallocate()
        t.pointee.hot.deallocate()
        t.pointee.lastBusy.deallocate()
        t.pointee.records.deallocate()
        t.pointee.sources4.deallocate()
        t.pointee.sources6.deallocate()
        t.pointee.sourceCounts.deallocate()
        t.deallocate()
    }

    /// Entry `e` moved frames (or was queued some) in loop `loop`: looked at until it has been idle a while.
    @inline(__always)
    func markBusy(_ e: Int, loop: UInt32) {
        hot[e >> 6] |= 1 << UInt64(e & 63)
        lastBusy[e] = loop
    }

    @inline(__always)
    static func hash(index: UInt32) -> Int { Int(truncatingIfNeeded: (UInt64(index) &* 0x9E37_79B9_7F4A_7C15) >> 40) }

    /// The entry index of VNIC `index`, or -1.
    @inline(__always)
    func lookup(index: UInt32) -> Int {
        var h = WorkerTable.hash(index: index) & indexMask
        let k = index &+ 1
        while true {
            let stored = indexKeys[h]
            if stored == k { return Int(indexValues[h]) }
            if stored == 0 { return -1 }
            h = (h + 1) & indexMask
        }
    }

    /// The entry index of a destination MAC key, or -1.
    @inline(__always)
    func lookup(_ key: UInt64) -> Int {
        var h = MACKey.hash(key) & hashMask
        let k = key &+ 1
        while true {
            let stored = hashKeys[h]
            if stored == k { return Int(hashValues[h]) }
            if stored == 0 { return -1 }
            h = (h + 1) & hashMask
        }
    }
}

/// MAC addresses as the hot path compares them: the six bytes as they sit in a
/// frame, loaded little-endian into the low 48 bits of a UInt64 (no byte swaps).
package enum MACKey {
    @inline(__always)
    static func load(_ p: UnsafeRawPointer) -> UInt64 {
        UInt64(p.loadUnaligned(as: UInt32.self)) | UInt64(p.loadUnaligned(fromByteOffset: 4, as: UInt16.self)) << 32
    }

    /// From a MACAddress (wire order in the low 48 bits), without allocating.
    @inline(__always)
    package static func from(_ mac: MACAddress) -> UInt64 { (mac.rawValue << 16).byteSwapped }

    static func from(_ bytes: [UInt8]) -> UInt64 {
        precondition(bytes.count == 6)
        var k: UInt64 = 0
        for (i, b) in bytes.enumerated() { k |= UInt64(b) << (8 * UInt64(i)) }
        return k
    }

    @inline(__always)
    static func hash(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 40)
    }

    /// Broadcast or multicast: the group bit of the first octet.
    @inline(__always)
    static func isGroup(_ key: UInt64) -> Bool { key & 1 == 1 }
}

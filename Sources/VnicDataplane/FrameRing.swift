// FrameRing: a bounded single-producer/single-consumer ring of small frames
// between a worker and the control thread (guest protocol requests up, replies
// and notifications down). Fixed slots, no allocation after init; a full ring
// refuses (the caller drops and counts), nobody ever waits.
import CVnicShim

final class FrameRing: @unchecked Sendable {   // one producer thread, one consumer thread
    static let slotBytes = 1536
    let capacity: Int
    /// Producer and consumer positions (monotonic), on separate cache lines.
    let positions: UnsafeMutableRawPointer
    var head: UnsafeMutablePointer<UInt64> { positions.assumingMemoryBound(to: UInt64.self) }
    var tail: UnsafeMutablePointer<UInt64> { (positions + 64).assumingMemoryBound(to: UInt64.self) }
    let tags: UnsafeMutablePointer<UInt32>
    let lengths: UnsafeMutablePointer<UInt16>
    let slots: UnsafeMutableRawPointer

    init(capacity: Int = 256) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "ring capacity must be a power of two")
        self.capacity = capacity
        positions = .allocate(byteCount: 128, alignment: 64)
        positions.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
        tags = .allocate(capacity: capacity); tags.initialize(repeating: 0, count: capacity)
        lengths = .allocate(capacity: capacity); lengths.initialize(repeating: 0, count: capacity)
        slots = .allocate(byteCount: capacity * FrameRing.slotBytes, alignment: 64)
    }
    deinit { positions.deallocate(); tags.deallocate(); lengths.deallocate(); slots.deallocate() }

    /// Producer: copies a frame in; false when full or too long.
    @inline(__always)
    func push(tag: UInt32, _ bytes: UnsafeRawPointer, count: Int) -> Bool {
        guard count <= FrameRing.slotBytes else { return false }
        let h = head.pointee
        guard h &- vnic_load_u64_acquire(tail) < UInt64(capacity) else { return false }
        let i = Int(h & UInt64(capacity - 1))
        tags[i] = tag
        lengths[i] = UInt16(count)
        (slots + i * FrameRing.slotBytes).copyMemory(from: bytes, byteCount: count)
        vnic_store_u64_release(head, h &+ 1)
        return true
    }

    /// Consumer: whether something waits (one acquire load).
    @inline(__always)
    var isEmpty: Bool { vnic_load_u64_acquire(head) == tail.pointee }

    /// Consumer: hands the oldest frame to `body` (valid only inside it) and
    /// removes it; false when empty.
    @inline(__always)
    func pop(_ body: (UInt32, UnsafeRawBufferPointer) -> Void) -> Bool {
        let t = tail.pointee
        guard vnic_load_u64_acquire(head) != t else { return false }
        let i = Int(t & UInt64(capacity - 1))
        body(tags[i], UnsafeRawBufferPointer(start: slots + i * FrameRing.slotBytes, count: Int(lengths[i])))
        vnic_store_u64_release(tail, t &+ 1)
        return true
    }
}

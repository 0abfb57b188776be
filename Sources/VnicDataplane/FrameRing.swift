// FrameRing: a bounded single-producer/single-consumer ring of frame copies
// between two threads: a worker and the control thread (guest protocol
// requests up, replies and notifications down), or two workers (a frame for a
// port whose queue another worker owns: see Worker's handoff). Fixed slots, no
// allocation after `allocate`, no reference counting (a struct of raw
// pointers, freed once with `deallocate`); a full ring refuses (the caller
// drops and counts), nobody ever waits.
import CVnicShim

package struct FrameRing: @unchecked Sendable {   // one producer thread, one consumer thread
    let capacity: Int
    let slotBytes: Int
    /// Producer and consumer positions (monotonic), on separate cache lines.
    let positions: UnsafeMutableRawPointer
    var head: UnsafeMutablePointer<UInt64> { positions.assumingMemoryBound(to: UInt64.self) }
    var tail: UnsafeMutablePointer<UInt64> { (positions + 64).assumingMemoryBound(to: UInt64.self) }
    let tags: UnsafeMutablePointer<UInt32>
    let lengths: UnsafeMutablePointer<UInt16>
    let slots: UnsafeMutableRawPointer

    static func allocate(capacity: Int = 256, slotBytes: Int = 1536) -> FrameRing {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "ring capacity must be a power of two")
        let positions = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)
        positions.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
        let tags = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        tags.initialize(repeating: 0, count: capacity)
        let lengths = UnsafeMutablePointer<UInt16>.allocate(capacity: capacity)
        lengths.initialize(repeating: 0, count: capacity)
        let slots = UnsafeMutableRawPointer.allocate(byteCount: capacity * slotBytes, alignment: 64)
        return FrameRing(capacity: capacity, slotBytes: slotBytes, positions: positions, tags: tags,
                         lengths: lengths, slots: slots)
    }

    func deallocate() { positions.deallocate(); tags.deallocate(); lengths.deallocate(); slots.deallocate() }

    /// Producer: copies a frame in; false when full or too long.
    @inline(__always)
    func push(tag: UInt32, _ bytes: UnsafeRawPointer, count: Int) -> Bool {
        guard count <= slotBytes else { return false }
        let h = head.pointee
        guard h &- vnic_load_u64_acquire(tail) < UInt64(capacity) else { return false }
        let i = Int(h & UInt64(capacity - 1))
        tags[i] = tag
        lengths[i] = UInt16(count)
        (slots + i * slotBytes).copyMemory(from: bytes, byteCount: count)
        vnic_store_u64_release(head, h &+ 1)
        return true
    }

    /// Producer: how many more frames fit now.
    @inline(__always)
    var freeSlots: Int { capacity - Int(head.pointee &- vnic_load_u64_acquire(tail)) }

    /// Consumer: whether something waits (one acquire load).
    @inline(__always)
    var isEmpty: Bool { vnic_load_u64_acquire(head) == tail.pointee }

    /// Consumer: hands the oldest frame to `body` (valid only inside it) and
    /// removes it; false when empty.
    @inline(__always)
    package func pop(_ body: (UInt32, UnsafeRawBufferPointer) -> Void) -> Bool {
        let t = tail.pointee
        guard vnic_load_u64_acquire(head) != t else { return false }
        let i = Int(t & UInt64(capacity - 1))
        body(tags[i], UnsafeRawBufferPointer(start: slots + i * slotBytes, count: Int(lengths[i])))
        vnic_store_u64_release(tail, t &+ 1)
        return true
    }
}

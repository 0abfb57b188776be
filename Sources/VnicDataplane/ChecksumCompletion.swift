// ChecksumCompletion: TCP and UDP checksums a VM's stack left for the device
// to fill in. With Linux's default transmit checksum offload (a container's
// veth end) or QEMU's default virtio-net (CHECKSUM_PARTIAL in the tap's virtio
// header), a segment reaches the port holding only the folded pseudo-header sum
// in its checksum field, and the kernel's "complete it at csum_start +
// csum_offset" note does not survive the copy into the AF_XDP socket: forwarded
// as it is, the receiver discards it (TcpInCsumErrors).
//
// The worker completes such segments before forwarding (one mechanism for veth
// and tap ports): when the field equals the pseudo-header sum, the checksum is
// computed over the segment and written in place. A complete checksum that
// happens to equal the pseudo-header sum (about 1 in 65536) is recomputed to the
// same value, so the rule never changes a correct frame. Only unfragmented IPv4
// and IPv6 without extension headers are looked at (what a stack offloads),
// behind at most one 802.1Q tag; everything is bounded by the frame.

public enum ChecksumCompletion {
    /// Completes the TCP or UDP checksum of the frame at `f` (`len` bytes) when
    /// it is partial; returns whether it wrote one.
    @inline(__always)
    public static func complete(_ f: UnsafeMutableRawPointer, len: Int) -> Bool {
        // The common case inline: untagged IPv4 without options, unfragmented,
        // TCP or UDP. One's complement sums do not depend on byte order, so the
        // pseudo-header is summed as the frame's words load natively.
        guard len >= 14 + 20 + 8 else { return false }
        guard f.loadUnaligned(fromByteOffset: 12, as: UInt16.self) == UInt16(0x0800).bigEndian, byte(f, 14) == 0x45 else {
            return completeOther(f, len: len)
        }
        let proto = byte(f, 23)
        guard proto == 6 || proto == 17, f.loadUnaligned(fromByteOffset: 20, as: UInt16.self) & UInt16(0x3FFF).bigEndian == 0,
              14 + Int(be16(f, 16)) <= len else { return false }
        return completePlainIPv4(f)
    }

    /// `complete` for a frame known to be untagged IPv4 without options,
    /// unfragmented, TCP or UDP, its total length within the frame (what
    /// AntiSpoof.plainIPv4 takes: the worker knows it from Classify): the rest
    /// of the test.
    @inline(__always)
    package static func completePlainIPv4(_ f: UnsafeMutableRawPointer) -> Bool {
        let proto = byte(f, 23)
        let at = proto == 6 ? 34 + 16 : 34 + 6
        let total = Int(be16(f, 16))
        guard total >= 20 + (proto == 6 ? 20 : 8) else { return false }
        let field = f.loadUnaligned(fromByteOffset: at, as: UInt16.self)
        if proto == 17 && field == 0 { return false }                   // IPv4 UDP without a checksum
        let pseudo = UInt64(f.loadUnaligned(fromByteOffset: 26, as: UInt32.self)) &+ UInt64(f.loadUnaligned(fromByteOffset: 30, as: UInt32.self))
            &+ UInt64(UInt16(UInt16(proto) &+ UInt16(total - 20)).bigEndian)
        guard field == fold(pseudo) else { return false }
        fill(f, at: at, l4: 34, l4len: total - 20, pseudo: UInt64(UInt16(fold(pseudo)).bigEndian), udp: proto == 17)
        return true
    }

    /// A tag, IP options or IPv6: the general parse.
    @inline(never)
    static func completeOther(_ f: UnsafeMutableRawPointer, len: Int) -> Bool {
        var o = 14
        var type = be16(f, 12)
        if type == 0x8100 { type = be16(f, 16); o = 18 }
        var pseudo: UInt64, l4: Int, l4len: Int, proto: UInt8
        if type == 0x0800 {
            let vihl = byte(f, o), ihl = Int(vihl & 0x0F) * 4
            guard vihl >> 4 == 4, ihl >= 20, len >= o + ihl + 8 else { return false }
            let total = Int(be16(f, o + 2))
            guard total >= ihl + 8, o + total <= len, be16(f, o + 6) & 0x3FFF == 0 else { return false }   // not a fragment
            proto = byte(f, o + 9)
            l4 = o + ihl; l4len = total - ihl
            let a = UInt64(be32(f, o + 12)), b = UInt64(be32(f, o + 16))
            pseudo = (a >> 16) &+ (a & 0xFFFF) &+ (b >> 16) &+ (b & 0xFFFF)
        } else if type == 0x86DD {
            guard len >= o + 40 + 8, byte(f, o) >> 4 == 6 else { return false }
            l4len = Int(be16(f, o + 4))
            guard o + 40 + l4len <= len else { return false }
            proto = byte(f, o + 6)
            l4 = o + 40
            pseudo = sum16(f, o + 8, 32)
        } else {
            return false
        }
        let at: Int
        if proto == 6 {
            guard l4len >= 20 else { return false }
            at = l4 + 16
        } else if proto == 17 {
            guard l4len >= 8 else { return false }
            at = l4 + 6
        } else {
            return false
        }
        pseudo &+= UInt64(proto) &+ UInt64(l4len)
        let field = be16(f, at)
        if proto == 17 && type == 0x0800 && field == 0 { return false }   // IPv4 UDP without a checksum
        guard field == fold(pseudo) else { return false }
        fill(f, at: at, l4: l4, l4len: l4len, pseudo: pseudo, udp: proto == 17)
        return true
    }

    /// Writes the checksum of the segment at `l4` (its field at `at`) under the
    /// pseudo-header sum `pseudo` (big-endian words).
    @inline(never)
    static func fill(_ f: UnsafeMutableRawPointer, at: Int, l4: Int, l4len: Int, pseudo: UInt64, udp: Bool) {
        f.storeBytes(of: 0, toByteOffset: at, as: UInt16.self)
        var c = ~fold(pseudo &+ sum16(f, l4, l4len))
        if udp && c == 0 { c = 0xFFFF }                                   // UDP sends a zero sum as all ones
        f.storeBytes(of: c.bigEndian, toByteOffset: at, as: UInt16.self)
    }

    /// The one's complement sum of `count` bytes at `o`, as 16-bit big-endian
    /// words (an odd last byte padded with zero), not yet folded (below 2^32).
    /// Eight bytes at a time in the host's order, two 32-bit halves each; the
    /// folded sum is then turned into big-endian order (sums do not depend on it).
    @inline(__always)
    static func sum16(_ f: UnsafeRawPointer, _ o: Int, _ count: Int) -> UInt64 {
        var s: UInt64 = 0
        var i = 0
        while i + 8 <= count {
            let w = f.loadUnaligned(fromByteOffset: o + i, as: UInt64.self)
            s &+= (w >> 32) &+ (w & 0xFFFF_FFFF)
            i += 8
        }
        var t = UInt64(UInt16(bigEndian: fold(s)))
        while i + 2 <= count { t &+= UInt64(be16(f, o + i)); i += 2 }
        if i < count { t &+= UInt64(byte(f, o + i)) << 8 }
        return t
    }

    /// Folds a one's complement sum to 16 bits.
    @inline(__always)
    static func fold(_ s: UInt64) -> UInt16 {
        var x = s
        while x >> 16 != 0 { x = (x & 0xFFFF) &+ (x >> 16) }
        return UInt16(truncatingIfNeeded: x)
    }
}

// Segmentation: TCP segmentation of a guest's TSO frames. QEMU's default
// virtio-net offers the guest TCP segmentation offload, so a guest on a tap hands
// over TCP "frames" of up to 64 KiB (one virtio header, gso_size in it); the tap
// runs the XDP program on them as one linear frame, and the port socket (bound
// with XDP_USE_SG) receives it as a chain of 2 KiB descriptors. Neither the wire
// nor a receiving VM takes such a frame, and gso_size does not survive the copy,
// so the worker cuts it into segments of at most the VNIC's MTU: each gets the
// headers with its own lengths, sequence number, IPv4 id and checksums, then goes
// through the same checks as any frame from the VM.
//
// Only TCP over IPv4 without fragments, or IPv6 without extension headers
// (what a stack segments), behind at most one 802.1Q tag; anything else
// arriving as a chain is refused (the caller drops and counts it).

/// The cut as tests and benchmarks call it: every segment of the TCP frame at
/// `src` (`len` bytes) for an IP MTU of `mtu`, written one after another at
/// `dst` (room for `len` plus the headers of every segment); returns their
/// lengths, or nil when the frame is not one that can be cut.
public enum TCPSegmentation {
    public static func segment(_ src: UnsafeRawPointer, len: Int, mtu: Int, into dst: UnsafeMutableRawPointer) -> [Int]? {
        guard let f = TCPSuperFrame(src, len: len, mtu: mtu) else { return nil }
        var lengths: [Int] = [], at = 0
        for k in 0..<f.segments {
            let n = f.write(k, from: src, to: dst + at)
            lengths.append(n)
            at += n
        }
        return lengths
    }
}

struct TCPSuperFrame {
    /// Where the network header starts (14, or 18 behind a tag), its length,
    /// and the TCP header's length: the first `headers` bytes repeat in every segment.
    let l3: Int
    let ipHeader: Int
    let tcpHeader: Int
    let ipv4: Bool
    let payload: Int
    let mss: Int
    var headers: Int { l3 + ipHeader + tcpHeader }
    var segments: Int { payload == 0 ? 1 : (payload + mss - 1) / mss }

    /// Parses the frame at `f` (`len` bytes, contiguous); `mtu` bounds each
    /// segment's IP packet. nil: not a TCP frame that can be cut.
    init?(_ f: UnsafeRawPointer, len: Int, mtu: Int) {
        var o = 14
        guard len >= 14 + 40 else { return nil }
        var type = be16(f, 12)
        if type == 0x8100 { type = be16(f, 16); o = 18 }
        if type == 0x0800 {
            let vihl = byte(f, o), ihl = Int(vihl & 0x0F) * 4
            guard vihl >> 4 == 4, ihl >= 20, len >= o + ihl + 20, byte(f, o + 9) == 6,
                  be16(f, o + 6) & 0x3FFF == 0 else { return nil }   // TCP, not a fragment (DF allowed)
            // The total length is not checked: the frame's length rules (each segment gets its own).
            ipHeader = ihl
            ipv4 = true
        } else if type == 0x86DD {
            guard byte(f, o) >> 4 == 6, byte(f, o + 6) == 6, len >= o + 40 + 20 else { return nil }
            ipHeader = 40
            ipv4 = false
        } else {
            return nil
        }
        l3 = o
        let thl = Int(byte(f, o + ipHeader + 12) >> 4) * 4
        guard thl >= 20, len >= o + ipHeader + thl else { return nil }
        tcpHeader = thl
        payload = len - (o + ipHeader + thl)
        mss = mtu - ipHeader - thl
        guard mss >= 64 else { return nil }
    }

    /// Writes segment `k` of the frame at `src` into `dst` (room for the
    /// headers and `mss` bytes); returns its length.
    func write(_ k: Int, from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer) -> Int {
        let off = k * mss
        let n = min(mss, payload - off)
        let h = headers, l4 = l3 + ipHeader
        dst.copyMemory(from: src, byteCount: h)
        if n > 0 { (dst + h).copyMemory(from: src + h + off, byteCount: n) }
        let l4len = tcpHeader + n
        var pseudo: UInt64
        if ipv4 {
            put16(dst, l3 + 2, UInt16(ipHeader + l4len))
            put16(dst, l3 + 4, be16(src, l3 + 4) &+ UInt16(truncatingIfNeeded: k))   // id
            dst.storeBytes(of: 0, toByteOffset: l3 + 10, as: UInt16.self)
            put16(dst, l3 + 10, ~ChecksumCompletion.fold(ChecksumCompletion.sum16(dst, l3, ipHeader)))
            let a = UInt64(be32(dst, l3 + 12)), b = UInt64(be32(dst, l3 + 16))
            pseudo = (a >> 16) &+ (a & 0xFFFF) &+ (b >> 16) &+ (b & 0xFFFF)
        } else {
            put16(dst, l3 + 4, UInt16(l4len))
            pseudo = ChecksumCompletion.sum16(dst, l3 + 8, 32)
        }
        // Sequence number; FIN and PSH only on the last segment, CWR only on the first.
        let seq = be32(src, l4 + 4) &+ UInt32(truncatingIfNeeded: off)
        dst.storeBytes(of: seq.bigEndian, toByteOffset: l4 + 4, as: UInt32.self)
        var flags = byte(src, l4 + 13)
        if k != segments - 1 { flags &= ~0x09 }
        if k != 0 { flags &= ~0x80 }
        dst.storeBytes(of: flags, toByteOffset: l4 + 13, as: UInt8.self)
        pseudo &+= 6 &+ UInt64(l4len)
        ChecksumCompletion.fill(dst, at: l4 + 16, l4: l4, l4len: l4len, pseudo: pseudo, udp: false)
        return h + n
    }
}

@inline(__always)
private func put16(_ f: UnsafeMutableRawPointer, _ o: Int, _ v: UInt16) {
    f.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt16.self)
}

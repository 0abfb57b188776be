// XSK: owning wrappers for a UMEM and its AF_XDP sockets (libxdp).
//
// Each worker owns one UMEM. Its first socket is the uplink socket of the
// worker's queue, which creates the (uplink, queue) fill/completion pair. Every
// VNIC's receive socket on that queue shares that pair (XDP_SHARED_UMEM, same
// device and queue); every port socket gets a pair of its own (shared UMEM on
// another device). libxdp keeps pointers to the ring structs, so they live in
// allocated memory owned by these objects, never on the stack.
import CLibXDP
import CVnicShim
import Glibc
import VnicCore
import VnicPlatform

/// A fill/completion ring pair for one (device, queue) of a UMEM.
package final class RingPair {
    package let fill: UnsafeMutablePointer<xsk_ring_prod>
    package let comp: UnsafeMutablePointer<xsk_ring_cons>
    init() {
        fill = .allocate(capacity: 1); fill.initialize(to: xsk_ring_prod())
        comp = .allocate(capacity: 1); comp.initialize(to: xsk_ring_cons())
    }
    deinit { fill.deallocate(); comp.deallocate() }
}

/// The packet buffer area of one worker, registered with the kernel.
/// The C function is `xsk_umem__create`.
package final class UMEM {
    package static let frameSize = UInt32(Preflight.frameSize)
    package let area: UnsafeMutableRawPointer
    let frameCount: UInt32
    let size: Int
    let umem: OpaquePointer
    /// The pair of the first socket's (device, queue).
    package let firstPair = RingPair()
    let fillSize: UInt32
    let compSize: UInt32

    package init(frameCount: UInt32, fillSize: UInt32, compSize: UInt32) throws(VnicError) {
        self.frameCount = frameCount
        self.fillSize = fillSize
        self.compSize = compSize
        size = Int(frameCount) * Int(UMEM.frameSize)
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0),
              p != MAP_FAILED else {
            throw VnicError("allocate \(size) bytes of UMEM: \(errnoString(errno))")
        }
        area = p
        var cfg = xsk_umem_config(fill_size: fillSize, comp_size: compSize, frame_size: UMEM.frameSize,
                                  frame_headroom: 0, flags: 0)
        var u: OpaquePointer?
        let rc = xsk_umem__create(&u, area, UInt64(size), firstPair.fill, firstPair.comp, &cfg)
        guard rc == 0, let u else {
            munmap(area, size)
            var hint = ""
            if -rc == EPERM { hint = capabilityHint([.netRaw]) }   // libxdp opens the AF_XDP socket here
            if -rc == ENOBUFS || -rc == ENOMEM {   // the pages are counted against RLIMIT_MEMLOCK without CAP_IPC_LOCK
                let limit = memlockLimit().map { "RLIMIT_MEMLOCK is \($0 >> 10) KiB" } ?? "RLIMIT_MEMLOCK is unlimited"
                hint = Capability.ipcLock.isHeld ? " (\(limit))"
                    : " (needs CAP_IPC_LOCK or an RLIMIT_MEMLOCK above every worker's UMEM: CAP_IPC_LOCK is missing, \(limit))"
            }
            throw VnicError("register UMEM of \(size) bytes: \(errnoString(-rc))\(hint)")
        }
        umem = u
    }

    deinit {
        _ = xsk_umem__delete(umem)
        munmap(area, size)
    }
}

/// How a socket binds: copy mode works everywhere (veth); zero copy needs a driver that supports it.
public enum XSKBindMode: Sendable { case copy, zeroCopy }

/// One AF_XDP socket bound to (device, queue). The C function is `xsk_socket__create_shared`.
package final class XSKSocket {
    let ifname: String
    let queue: UInt32
    let xsk: OpaquePointer
    package let fd: Int32
    package let rx: UnsafeMutablePointer<xsk_ring_cons>?
    package let tx: UnsafeMutablePointer<xsk_ring_prod>?
    /// Kept alive while the socket exists: libxdp unmaps the pair with its last socket.
    let pair: RingPair

    /// Frames in the receive ring now (written by the kernel, taken by a worker).
    var rxLevel: UInt32 {
        guard let r = rx else { return 0 }
        return vnic_ring_level(r.pointee.producer, r.pointee.consumer)
    }

    /// Binds a socket; with `nilIfNoQueue`, a queue the device does not have
    /// (now: a tap's queues come and go with its guest) gives nil instead of an error.
    /// With `multiBuffer`, a frame larger than a UMEM frame (a guest's TSO
    /// frame on a tap) arrives as a chain of descriptors instead of being
    /// dropped (XDP_USE_SG, Linux 6.6+; an older kernel binds without it).
    /// Only the UMEM's first socket's flags count: the others inherit them.
    package init?(ifname: String, queue: UInt32, umem: UMEM, pair: RingPair, rxSize: UInt32, txSize: UInt32,
          bind: XSKBindMode, nilIfNoQueue: Bool, multiBuffer: Bool = false) throws(VnicError) {
        self.ifname = ifname
        self.queue = queue
        self.pair = pair
        var rxRing: UnsafeMutablePointer<xsk_ring_cons>?
        var txRing: UnsafeMutablePointer<xsk_ring_prod>?
        if rxSize > 0 { rxRing = .allocate(capacity: 1); rxRing!.initialize(to: xsk_ring_cons()) }
        if txSize > 0 { txRing = .allocate(capacity: 1); txRing!.initialize(to: xsk_ring_prod()) }
        var cfg = xsk_socket_config()
        cfg.rx_size = rxSize
        cfg.tx_size = txSize
        cfg.libxdp_flags = UInt32(XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD)
        cfg.xdp_flags = 0
        let plain = UInt16(XDP_USE_NEED_WAKEUP) | UInt16(bind == .copy ? XDP_COPY : XDP_ZEROCOPY)
        cfg.bind_flags = plain | (multiBuffer ? XSKSocket.useSG : 0)
        var s: OpaquePointer?
        var rc: Int32 = 0
        // Re-binding a queue right after its previous socket closed fails (EBUSY, and
        // seen here also ENODEV) until the kernel's deferred teardown of the old
        // buffer pool ran: retry with a short backoff for up to about 2 s.
        for attempt in 0..<100 {
            rc = xsk_socket__create_shared(&s, ifname, queue, umem.umem, rxRing, txRing,
                                           pair.fill, pair.comp, &cfg)
            if rc == -EINVAL && cfg.bind_flags != plain {   // a kernel without multi-buffer sockets?
                cfg.bind_flags = plain
                continue
            }
            if rc != -EBUSY && rc != -ENODEV { break }
            if rc == -ENODEV && if_nametoindex(ifname) == 0 { break }   // really gone
            usleep(UInt32(min(1000 * (attempt + 1), 20_000)))
        }
        guard rc == 0, let s else {
            rxRing?.deallocate(); txRing?.deallocate()
            if nilIfNoQueue && -rc == EINVAL { return nil }
            var hint = ""
            if -rc == EPERM { hint = capabilityHint([.netRaw]) }
            if -rc == EINVAL { hint = " (does \(ifname) have queue \(queue)?)" }
            throw VnicError("bind AF_XDP socket on \(ifname) queue \(queue): \(errnoString(-rc))\(hint)")
        }
        xsk = s
        fd = xsk_socket__fd(s)
        rx = rxRing
        tx = txRing
    }

    /// XDP_USE_SG (linux/if_xdp.h, 6.6+; Debian 12's headers lack it).
    static let useSG: UInt16 = 1 << 4

    package convenience init(ifname: String, queue: UInt32, umem: UMEM, pair: RingPair, rxSize: UInt32, txSize: UInt32,
                     bind: XSKBindMode) throws(VnicError) {
        try self.init(ifname: ifname, queue: queue, umem: umem, pair: pair, rxSize: rxSize, txSize: txSize,
                      bind: bind, nilIfNoQueue: false)!
    }

    /// The kernel's drop counters of this socket (XDP_STATISTICS).
    func statistics() -> xdp_statistics {
        var st = xdp_statistics()
        var len = socklen_t(MemoryLayout<xdp_statistics>.size)
        _ = getsockopt(fd, Int32(SOL_XDP), XDP_STATISTICS, &st, &len)
        return st
    }

    deinit {
        xsk_socket__delete(xsk)
        rx?.deallocate()
        tx?.deallocate()
    }
}

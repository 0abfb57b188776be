// PacketSocket: an AF_PACKET SOCK_RAW socket bound to one interface, to send and
// receive whole Ethernet frames (the agent needs no route or ARP entry).
import Glibc
import VnicCore

/// `struct sockaddr_ll` (linux/if_packet.h, which Glibc's module does not
/// export) as its 20 bytes: family, protocol (network order), ifindex, hatype,
/// pkttype, halen, addr[8].
struct LinkAddress {
    static let size = 20
    static let ethPAll: UInt16 = 0x0003
    static let packetOutgoing: UInt8 = 4
    var bytes = [UInt8](repeating: 0, count: LinkAddress.size)

    init() {}
    init(ifindex: Int32, protocol proto: UInt16) {
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
            b.storeBytes(of: proto.bigEndian, toByteOffset: 2, as: UInt16.self)
            b.storeBytes(of: ifindex, toByteOffset: 4, as: Int32.self)
            b[11] = 6   // halen
        }
    }
    var packetType: UInt8 { bytes[10] }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        bytes.withUnsafeBytes { b in
            body(b.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(LinkAddress.size))
        }
    }
}

public final class PacketSocket {
    public let fd: Int32
    public let ifindex: Int32
    private var buffer = [UInt8](repeating: 0, count: 65536)

    /// Opens and binds the socket; EPERM says that root is needed.
    public init(ifindex: Int32, ifname: String) throws(VnicError) {
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(LinkAddress.ethPAll.bigEndian))
        guard fd >= 0 else {
            let e = errno
            if e == EPERM || e == EACCES {
                throw VnicError("needs root (CAP_NET_RAW, CAP_NET_ADMIN) to open an AF_PACKET socket")
            }
            throw VnicError("AF_PACKET socket: \(String(cString: strerror(e)))")
        }
        let rc = LinkAddress(ifindex: ifindex, protocol: LinkAddress.ethPAll).withSockaddr { bind(fd, $0, $1) }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw VnicError("bind AF_PACKET socket to \(ifname): \(String(cString: strerror(e)))")
        }
        self.fd = fd
        self.ifindex = ifindex
    }

    deinit { close(fd) }

    public func send(_ frame: [UInt8]) throws(VnicError) {
        let to = LinkAddress(ifindex: ifindex, protocol: LinkAddress.ethPAll)
        let n = frame.withUnsafeBytes { b in to.withSockaddr { sendto(fd, b.baseAddress, b.count, 0, $0, $1) } }
        guard n == frame.count else { throw VnicError("send on AF_PACKET socket: \(String(cString: strerror(errno)))") }
    }

    /// The next frame within `timeoutMs` (nil: none), and whether it was one we sent.
    public func receive(timeoutMs: Int32) -> (frame: [UInt8], outgoing: Bool)? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, max(0, timeoutMs)) > 0 else { return nil }
        var from = [UInt8](repeating: 0, count: 32)   // room beyond sockaddr_ll's 20 bytes
        var fromLen = socklen_t(from.count)
        let n = buffer.withUnsafeMutableBytes { b in
            from.withUnsafeMutableBytes { f in
                recvfrom(fd, b.baseAddress, b.count, Int32(MSG_DONTWAIT),
                         f.baseAddress!.assumingMemoryBound(to: sockaddr.self), &fromLen)
            }
        }
        guard n > 0 else { return ([], false) }
        return (Array(buffer[0..<n]), from[10] == LinkAddress.packetOutgoing)
    }
}

/// CLOCK_MONOTONIC in milliseconds.
func monotonicMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

// GuestIntercept: recognising what a VM's port hands to the control thread:
// the guest protocol's datagrams (IPv4 to 169.254.169.254; requests and acks to
// UDP port 7177) and, for VNICs served by vnic's DHCP server, DHCP client
// messages (IPv4/UDP to port 67, IPv6/UDP to port 547). Bounds-checked loads only; see VnicCore's
// GuestProtocol and DHCP for the protocols.
import VnicCore

enum GuestIntercept {
    /// IPv4 (untagged) to the service address: never forwarded.
    @inline(__always)
    static func isServiceTraffic(_ f: UnsafeRawPointer, len: Int) -> Bool {
        len >= 34 && be16(f, 12) == 0x0800 && be32(f, 30) == GuestProtocol.serviceAddressValue
    }

    /// IPv4 (untagged) UDP to port 67, the DHCP server port, header inside the frame.
    @inline(__always)
    static func isDHCPToServer(_ f: UnsafeRawPointer, len: Int) -> Bool {
        guard len >= 42, be16(f, 12) == 0x0800 else { return false }
        let ihl = Int(f.load(fromByteOffset: 14, as: UInt8.self) & 0x0F) * 4
        guard ihl >= 20, f.load(fromByteOffset: 23, as: UInt8.self) == 17, len >= 14 + ihl + 8 else { return false }
        return be16(f, 14 + ihl + 2) == 67
    }

    /// IPv6 (untagged, no extension header) UDP to port 547, the DHCPv6 server port, header inside the frame.
    @inline(__always)
    static func isDHCPv6ToServer(_ f: UnsafeRawPointer, len: Int) -> Bool {
        len >= 62 && be16(f, 12) == 0x86DD && f.load(fromByteOffset: 20, as: UInt8.self) == 17 && be16(f, 56) == 547
    }

    /// UDP to the service port, with the header inside the frame.
    @inline(__always)
    static func isRequestPort(_ f: UnsafeRawPointer, len: Int) -> Bool {
        let ihl = Int(f.load(fromByteOffset: 14, as: UInt8.self) & 0x0F) * 4
        guard ihl >= 20, f.load(fromByteOffset: 23, as: UInt8.self) == 17, len >= 14 + ihl + 8 else { return false }
        return be16(f, 14 + ihl + 2) == GuestProtocol.servicePort
    }
}

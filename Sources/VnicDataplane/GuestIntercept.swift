// GuestIntercept: recognising the guest protocol's datagrams on a VM's port
// (IPv4 to 169.254.169.254; requests and acks to UDP port 7177). Bounds-checked
// loads only; see VnicCore's GuestProtocol for the protocol.
import VnicCore

enum GuestIntercept {
    /// IPv4 (untagged) to the service address: never forwarded.
    @inline(__always)
    static func isServiceTraffic(_ f: UnsafeRawPointer, len: Int) -> Bool {
        len >= 34 && be16(f, 12) == 0x0800 && be32(f, 30) == GuestProtocol.serviceAddress.rawValue
    }

    /// UDP to the service port, with the header inside the frame.
    @inline(__always)
    static func isRequestPort(_ f: UnsafeRawPointer, len: Int) -> Bool {
        let ihl = Int(f.load(fromByteOffset: 14, as: UInt8.self) & 0x0F) * 4
        guard ihl >= 20, f.load(fromByteOffset: 23, as: UInt8.self) == 17, len >= 14 + ihl + 8 else { return false }
        return be16(f, 14 + ihl + 2) == GuestProtocol.servicePort
    }
}

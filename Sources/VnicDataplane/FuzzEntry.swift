// FuzzEntry: the frame checks a worker runs on every frame a VM sends, exposed
// in one public place for the fuzzers (Sources/vnic-fuzz-frames) and nothing
// else. `GuestIntercept` stays internal; this runs it in the worker's order
// (service traffic first, then the request port; DHCP to the server), so a
// fuzzer sees the same calls with the same preconditions as `forwardFromVM`.
import VnicCore

public enum FrameChecks {
    /// What the worker's intercept decides for a frame.
    public struct Intercept: Equatable, Sendable {
        /// IPv4 to the service address: never forwarded.
        public var service: Bool
        /// ... and UDP to the service port: handed to the control thread.
        public var request: Bool
        /// IPv4/UDP to port 67 (handed up for VNICs with dhcp=on).
        public var dhcpToServer: Bool
    }

    /// The intercept checks on `len` bytes at `f`, as `Worker.forwardFromVM` calls them.
    public static func intercept(_ f: UnsafeRawPointer, len: Int) -> Intercept {
        let service = GuestIntercept.isServiceTraffic(f, len: len)
        let request = service && GuestIntercept.isRequestPort(f, len: len)
        return Intercept(service: service, request: request, dhcpToServer: GuestIntercept.isDHCPToServer(f, len: len))
    }

    /// A MAC as `SpoofPolicy.mac` takes it (`MACKey`, internal to the hot path).
    public static func macKey(_ mac: MACAddress) -> UInt64 { MACKey.from(mac) }
}

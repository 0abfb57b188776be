// Classify: what the worker does with one frame a VM sent, as a pure function
// of the frame's bytes and the VNIC's policy, in the one order the worker and
// the fuzzer (FrameChecks.classify) both run:
//   1. IPv4 to the service address (untagged): the guest protocol's requests
//      (UDP to its port) go to the control thread, anything else is discarded;
//      never forwarded, whatever the protection.
//   2. DHCP to the server port (IPv4 67, IPv6 547, untagged) from a VNIC that
//      vnic's DHCP server answers (`dhcp=on`): to the control thread.
//   3. The anti-spoof checks (AntiSpoof): a verdict other than pass drops the
//      frame, counted by that verdict.
//   4. A router solicitation from a VNIC that vnicd sends router
//      advertisements (`ipv6-ra` on): to the control thread, which answers it.
//   5. Anything else is forwarded.
import VnicCore

/// A VNIC's policy as the frame checks use it: its sources (`SourcePolicy`),
/// and which of its frames vnicd's services take.
public protocol FramePolicy: SourcePolicy {
    /// vnic's DHCP server answers this VNIC: its DHCP client messages go to the control thread.
    var dhcp: Bool { get }
    /// vnicd answers its router solicitations: they go to the control thread.
    var answersRS: Bool { get }
}

/// What becomes of a frame a VM sent.
public enum FrameAction: Equatable, Sendable {
    case forward
    /// To vnicd's control thread (a guest request, DHCP for vnic's server, a solicitation it answers).
    case toControl
    /// Service traffic that is no request: never forwarded, not counted.
    case discard
    /// Dropped and counted by the verdict.
    case drop(SpoofVerdict)
}

package enum Classify {
    @inline(__always)
    package static func classify<P: FramePolicy>(_ f: UnsafeRawPointer, len: Int, _ p: P) -> FrameAction {
        var plain = false
        return classify(f, len: len, p, plain: &plain)
    }

    /// `plain`: set when the frame is plain untagged IPv4 TCP or UDP (what
    /// `ChecksumCompletion.completePlainIPv4` takes), whatever the action.
    @inline(__always)
    package static func classify<P: FramePolicy>(_ f: UnsafeRawPointer, len: Int, _ p: P, plain: inout Bool) -> FrameAction {
        // The common frame first: plain IPv4 TCP or UDP, never to or from the
        // service address nor on a DHCP port (AntiSpoof.plainIPv4 leaves those
        // to the general way), so steps 1, 2 and 4 cannot take it.
        if let v = AntiSpoof.plainIPv4(f, len: len, p) {
            plain = true
            return v == .pass ? .forward : .drop(v)
        }
        if GuestIntercept.isServiceTraffic(f, len: len) {
            return GuestIntercept.isRequestPort(f, len: len) ? .toControl : .discard
        }
        if p.dhcp && (GuestIntercept.isDHCPToServer(f, len: len) || GuestIntercept.isDHCPv6ToServer(f, len: len)) {
            return .toControl
        }
        let verdict = AntiSpoof.general(f, len: len, p)
        if verdict != .pass { return .drop(verdict) }
        if p.answersRS && Worker.isRouterSolicitation(f, len: UInt32(truncatingIfNeeded: len)) { return .toControl }
        return .forward
    }
}

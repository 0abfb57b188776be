// RecordPolicy: the anti-spoof policy of a VNIC read from its database record
// for one burst (the fast-path read API: a ConfigReader's snapshot, renewed once
// per worker loop, one lookup per VNIC per burst, zero copy). Valid only inside
// the burst the view was taken in.
import VnicConfig
import VnicCore

struct RecordPolicy: SourcePolicy {
    let view: VNICView
    let mac: UInt64
    let protection: Protection

    @inline(__always)
    init(_ view: VNICView) {
        self.view = view
        mac = MACKey.from(view.mac)
        protection = view.protection
    }

    @inline(__always)
    func allowsIPv4(_ address: UInt32) -> Bool { view.permitsSource(IPv4Address(rawValue: address)) }

    /// Its EUI-64 link-local address (records hold no IPv6 addresses yet).
    @inline(__always)
    func allowsIPv6(_ hi: UInt64, _ lo: UInt64) -> Bool {
        hi == 0xFE80_0000_0000_0000 && lo == AntiSpoof.eui64(mac)
    }
}

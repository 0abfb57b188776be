// RecordPolicy: the anti-spoof policy of a VNIC read from its database record
// for one burst (the fast-path read API: a ConfigReader's snapshot, renewed once
// per worker loop, one lookup per VNIC per burst, zero copy). The record's
// source prefixes are resolved once per burst into the worker's scratch memory,
// so the per-packet check is a short loop. Valid only inside the burst.
import VnicConfig
import VnicCore

struct RecordPolicy: SourcePolicy {
    static let scratchCapacity = 64
    let view: VNICView
    let mac: UInt64
    let protection: Protection
    let raGuard: Bool
    let prefixes: UnsafeMutablePointer<(UInt32, UInt32)>
    let count: Int
    /// More prefixes than the scratch holds: ask the record per packet.
    let overflow: Bool

    @inline(__always)
    init(_ view: VNICView, scratch: UnsafeMutablePointer<(UInt32, UInt32)>) {
        self.view = view
        mac = MACKey.from(view.mac)
        protection = view.protection
        raGuard = !protection.contains(.ipNospoof) || view.raGuard == .on
        prefixes = scratch
        var n = 0
        if protection.contains(.ipNospoof) {
            view.forEachSource { network, length in
                if n < RecordPolicy.scratchCapacity {
                    let mask = IPv4CIDR.mask(length)
                    scratch[n] = (network & mask, mask)
                }
                n += 1
            }
        }
        count = min(n, RecordPolicy.scratchCapacity)
        overflow = n > RecordPolicy.scratchCapacity
    }

    @inline(__always)
    func allowsIPv4(_ address: UInt32) -> Bool {
        if overflow { return view.permitsSource(IPv4Address(rawValue: address)) }
        for i in 0..<count where address & prefixes[i].1 == prefixes[i].0 { return true }
        return false
    }

    /// Its EUI-64 link-local address (records hold no IPv6 addresses yet).
    @inline(__always)
    func allowsIPv6(_ hi: UInt64, _ lo: UInt64) -> Bool {
        hi == 0xFE80_0000_0000_0000 && lo == AntiSpoof.eui64(mac)
    }
}

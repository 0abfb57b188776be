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
    /// The IPv6 prefixes, (network high, network low, mask high, mask low),
    /// besides the link-local address: resolved at the burst's first IPv6
    /// source check (`count6` -1 until then), so IPv4 bursts never pay for them.
    let prefixes6: UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>
    let count6: UnsafeMutablePointer<Int>

    @inline(__always)
    init(_ view: VNICView, scratch: UnsafeMutablePointer<(UInt32, UInt32)>,
         scratch6: UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>, count6: UnsafeMutablePointer<Int>) {
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
        prefixes6 = scratch6
        self.count6 = count6
        count6.pointee = -1
    }

    /// Resolves the IPv6 prefixes into the scratch. The record holds at most
    /// VNICRecord.maxAddresses (64) of each family: the scratch holds them all.
    @inline(never)
    func resolve6() {
        var n = 0
        view.forEachSource6 { hi, lo, length in
            guard n < RecordPolicy.scratchCapacity else { return }
            let (mh, ml) = IPv6CIDR.mask(length)
            prefixes6[n] = (hi & mh, lo & ml, mh, ml)
            n += 1
        }
        count6.pointee = n
    }

    @inline(__always)
    func allowsIPv4(_ address: UInt32) -> Bool {
        if overflow { return view.permitsSource(IPv4Address(rawValue: address)) }
        for i in 0..<count where address & prefixes[i].1 == prefixes[i].0 { return true }
        return false
    }

    /// Its EUI-64 link-local address, or one of its IPv6 prefixes.
    @inline(__always)
    func allowsIPv6(_ hi: UInt64, _ lo: UInt64) -> Bool {
        if hi == 0xFE80_0000_0000_0000 && lo == AntiSpoof.eui64(mac) { return true }
        if count6.pointee < 0 { resolve6() }
        for i in 0..<count6.pointee where hi & prefixes6[i].2 == prefixes6[i].0 && lo & prefixes6[i].3 == prefixes6[i].1 { return true }
        return false
    }
}

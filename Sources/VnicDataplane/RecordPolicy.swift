// RecordPolicy: a VNIC's configuration as the worker applies it to a burst,
// read from its database record (the fast-path read API: a ConfigReader's
// snapshot, one lookup per VNIC per loop, zero copy) and nowhere else: the
// worker table holds sockets, rings and the forwarding map only. Decoded in one
// walk over the record's fields (DataplaneFields); the record's source
// prefixes are resolved into the worker's scratch memory at the burst's first
// source check of each family, so the per-packet check is a short loop and a
// burst that needs none never pays for them. Valid only inside the loop.
import VnicConfig
import VnicCore

struct RecordPolicy: FramePolicy {
    static let scratchCapacity = 64
    let view: VNICView
    let mac: UInt64
    let protection: Protection
    let raGuard: Bool
    let dhcp: Bool
    let answersRS: Bool
    /// maxbw in bits/s; 0: unlimited.
    let maxbw: UInt64
    let mtu: UInt32
    /// The IPv4 prefixes, (network, mask), and how many (-1: not resolved yet;
    /// more than the scratch holds: the record is asked per packet).
    let prefixes: UnsafeMutablePointer<(UInt32, UInt32)>
    let count: UnsafeMutablePointer<Int>
    /// The IPv6 prefixes, (network high, network low, mask high, mask low),
    /// besides the link-local address, and how many (-1: not resolved yet).
    let prefixes6: UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>
    let count6: UnsafeMutablePointer<Int>

    /// `counts` holds two words: the IPv4 and IPv6 prefix counts.
    @inline(__always)
    init(_ view: VNICView, scratch: UnsafeMutablePointer<(UInt32, UInt32)>,
         scratch6: UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>, counts: UnsafeMutablePointer<Int>) {
        self.view = view
        let f = DataplaneFields(view)
        mac = MACKey.from(f.mac)
        protection = f.protection
        raGuard = !protection.contains(.ipNospoof) || f.raGuard == .on
        dhcp = f.dhcp == .on
        answersRS = f.ipv6RA != .off
        maxbw = f.maxbw
        mtu = f.mtu
        prefixes = scratch
        count = counts
        prefixes6 = scratch6
        count6 = counts + 1
        counts[0] = -1
        counts[1] = -1
    }

    /// Resolves the IPv4 prefixes into the scratch.
    @inline(never)
    func resolve() {
        var n = 0
        view.forEachSource { network, length in
            if n < RecordPolicy.scratchCapacity {
                let mask = IPv4CIDR.mask(length)
                prefixes[n] = (network & mask, mask)
            }
            n += 1
        }
        count.pointee = n
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
        if count.pointee < 0 { resolve() }
        let n = count.pointee
        if n > RecordPolicy.scratchCapacity { return view.permitsSource(IPv4Address(rawValue: address)) }
        for i in 0..<n where address & prefixes[i].1 == prefixes[i].0 { return true }
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

// RecordPolicy: a VNIC's configuration as the worker applies it to a burst,
// read from its database record (the fast-path read API: a ConfigReader's
// snapshot, zero copy) and nowhere else: the worker table holds sockets, rings
// and the forwarding map only. The record is looked up and decoded in one walk
// over its fields (DataplaneFields) once per VNIC per snapshot the worker's
// reader takes (a new one after a commit or a sleep), not per loop; its source
// prefixes are resolved into the table's slots for the VNIC at the first
// source check of each family in that snapshot, so the per-packet check is a
// short loop and a VNIC that needs none never pays for them. Valid only
// inside a loop (the snapshot may be let go between loops).
import VnicConfig
import VnicCore

struct RecordPolicy: FramePolicy {
    /// A VNIC's slots for resolved prefixes (WorkerTable.sources4/6); a record
    /// with more sources of a family is asked per packet instead.
    static let capacity4 = 16
    static let capacity6 = 8
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
    /// more than `capacity4`: the record is asked per packet).
    let prefixes: UnsafeMutablePointer<(UInt32, UInt32)>
    let count: UnsafeMutablePointer<Int>
    /// The IPv6 prefixes, (network high, network low, mask high, mask low),
    /// besides the link-local address, and how many (-1: not resolved yet;
    /// more than `capacity6`: the record is asked per packet).
    let prefixes6: UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>
    let count6: UnsafeMutablePointer<Int>

    /// `f`: the view's fields (DataplaneFields(view), decoded once per
    /// snapshot); `prefixes`, `prefixes6`: the VNIC's slots; `counts`: two
    /// words, the IPv4 and IPv6 prefix counts (-1 at each new snapshot).
    @inline(__always)
    init(_ view: VNICView, _ f: DataplaneFields, prefixes: UnsafeMutablePointer<(UInt32, UInt32)>,
         prefixes6: UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>, counts: UnsafeMutablePointer<Int>) {
        self.view = view
        mac = MACKey.from(f.mac)
        protection = f.protection
        raGuard = !protection.contains(.ipNospoof) || f.raGuard == .on
        dhcp = f.dhcp == .on
        answersRS = f.ipv6RA != .off
        maxbw = f.maxbw
        mtu = f.mtu
        self.prefixes = prefixes
        count = counts
        self.prefixes6 = prefixes6
        count6 = counts + 1
    }

    /// Resolves the IPv4 prefixes into the VNIC's slots.
    @inline(never)
    func resolve() {
        var n = 0
        view.forEachSource { network, length in
            if n < RecordPolicy.capacity4 {
                let mask = IPv4CIDR.mask(length)
                prefixes[n] = (network & mask, mask)
            }
            n += 1
        }
        count.pointee = n
    }

    /// Resolves the IPv6 prefixes into the VNIC's slots.
    @inline(never)
    func resolve6() {
        var n = 0
        view.forEachSource6 { hi, lo, length in
            if n < RecordPolicy.capacity6 {
                let (mh, ml) = IPv6CIDR.mask(length)
                prefixes6[n] = (hi & mh, lo & ml, mh, ml)
            }
            n += 1
        }
        count6.pointee = n
    }

    /// More IPv6 sources than the slots hold: the record, per packet.
    @inline(never)
    func recordAllowsIPv6(_ hi: UInt64, _ lo: UInt64) -> Bool {
        var found = false
        view.forEachSource6 { nh, nl, length in
            let (mh, ml) = IPv6CIDR.mask(length)
            if hi & mh == nh & mh && lo & ml == nl & ml { found = true }
        }
        return found
    }

    @inline(__always)
    func allowsIPv4(_ address: UInt32) -> Bool {
        if count.pointee < 0 { resolve() }
        let n = count.pointee
        if n > RecordPolicy.capacity4 { return view.permitsSource(IPv4Address(rawValue: address)) }
        for i in 0..<n where address & prefixes[i].1 == prefixes[i].0 { return true }
        return false
    }

    /// Its EUI-64 link-local address, or one of its IPv6 prefixes.
    @inline(__always)
    func allowsIPv6(_ hi: UInt64, _ lo: UInt64) -> Bool {
        if hi == 0xFE80_0000_0000_0000 && lo == AntiSpoof.eui64(mac) { return true }
        if count6.pointee < 0 { resolve6() }
        if count6.pointee > RecordPolicy.capacity6 { return recordAllowsIPv6(hi, lo) }
        for i in 0..<count6.pointee where hi & prefixes6[i].2 == prefixes6[i].0 && lo & prefixes6[i].3 == prefixes6[i].1 { return true }
        return false
    }
}

// vnic-fuzz-frames: libFuzzer target for the frame checks a worker runs on
// every frame a VM sends (AntiSpoof.check under every combination of
// protections, and the guest-protocol/DHCP intercept), then, for what the
// intercept hands to the control thread, the control thread's parsers.
//
// Built two ways (scripts/fuzz.sh; the driver is VnicDataplaneTools' FuzzDriver):
//   -sanitize=fuzzer,address -DVNIC_FUZZ (and the experimental feature
//     Extern): libFuzzer's driver calls `LLVMFuzzerTestOneInput`; ASan catches
//     any read past the frame (libFuzzer hands each input in a heap buffer of
//     exactly its size).
//   plain: a replayer, `vnic-fuzz-frames [-v] FILE|DIR...`, that runs every
//     file through the same function (the seed corpus as a regression test);
//     -v prints each file's verdicts.
// Properties checked (a failure traps, which libFuzzer records as a crash):
//   - protections are monotone: a frame dropped under a set of protections is
//     dropped under every superset; without protections the only drops are
//     `malformed` and `spoof-service`;
//   - differential: a frame that passes carries, by an independent reading of
//     its bytes (`oracle`), the VNIC's MAC under mac-nospoof and, under
//     ip-nospoof, one of its addresses at every layer the checks cover (ARP
//     sender, IPv4 and IPv6 source, ND target and link-layer options), no
//     router advertisement or redirect, never the service address, and only
//     IPv4, IPv6 or ARP behind at most one 802.1Q tag;
//   - the worker's order (FrameChecks.classify) forwards only what the checks
//     pass and drops by the checks' verdict.
import Foundation
import VnicCore
import VnicDataplane
import VnicDataplaneTools

/// VM1 of the lab and the unit tests: 02:00:00:00:01:01, 10.77.0.11/32 and
/// allowed-ips 192.168.7.0/24 and 2001:db8:0:1::/64.
nonisolated(unsafe) let ipv4Prefixes: UnsafeMutablePointer<(UInt32, UInt32)> = {
    let p = UnsafeMutablePointer<(UInt32, UInt32)>.allocate(capacity: 2)
    p[0] = (0x0A4D_000B, 0xFFFF_FFFF)
    p[1] = (0xC0A8_0700, 0xFFFF_FF00)
    return p
}()
nonisolated(unsafe) let ipv6Prefixes: UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)> = {
    let p = UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>.allocate(capacity: 1)
    p[0] = (0x2001_0DB8_0000_0001, 0, 0xFFFF_FFFF_FFFF_FFFF, 0)
    return p
}()
let vmMAC = FrameChecks.macKey(MACAddress(bytes: (0x02, 0, 0, 0, 0x01, 0x01)))
let protections: [Protection] = [.macNospoof, .ipNospoof, .dhcpNospoof, .restricted]

func policy(_ mask: Int) -> SpoofPolicy {
    var p: Protection = []
    for (i, bit) in protections.enumerated() where mask & (1 << i) != 0 { p.insert(bit) }
    return SpoofPolicy(mac: vmMAC, protection: p, ipv4: ipv4Prefixes, ipv4Count: 2, ipv6: ipv6Prefixes, ipv6Count: 1)
}
/// Index: a bit per element of `protections`.
nonisolated(unsafe) let policies = (0..<16).map(policy)

func fail(_ what: String, _ f: UnsafeRawPointer, _ len: Int) -> Never {
    let bytes = (0..<min(len, 64)).map { String(f.load(fromByteOffset: $0, as: UInt8.self), radix: 16) }
    fatalError("vnic-fuzz-frames: \(what) (len \(len): \(bytes.joined(separator: " ")))")
}

/// One input: the frame's bytes.
func checkFrame(_ f: UnsafeRawPointer, _ len: Int) {
    var verdicts = [SpoofVerdict](repeating: .pass, count: 16)
    for m in 0..<16 { verdicts[m] = AntiSpoof.check(f, len: len, policies[m]) }
    if verdicts[0] != .pass && verdicts[0] != .malformed && verdicts[0] != .spoofService {
        fail("no protection gave \(verdicts[0])", f, len)
    }
    let bytes = [UInt8](UnsafeRawBufferPointer(start: f, count: len))
    for m in 0..<16 where verdicts[m] == .pass {
        if let wrong = oracle(bytes, policies[m].protection) { fail("passed under protections \(m) with \(wrong)", f, len) }
    }
    for m in 0..<16 where verdicts[m] != .pass {
        for sup in 0..<16 where sup & m == m && verdicts[sup] == .pass {
            fail("dropped (\(verdicts[m])) under protections \(m) but passed under superset \(sup)", f, len)
        }
    }
    // The worker's order (Classify): the checks' verdict unless a service takes
    // the frame first; with dhcp=on and ipv6-ra on, DHCP and solicitations go up.
    var served = policies[15]
    served.dhcp = true
    served.answersRS = true
    for p in [policies[0], policies[15], served] {
        switch FrameChecks.classify(f, len: len, p) {
        case .forward: if AntiSpoof.check(f, len: len, p) != .pass { fail("forwarded what the checks drop", f, len) }
        case .drop(let v): if AntiSpoof.check(f, len: len, p) != v { fail("dropped as \(v), not as the checks say", f, len) }
        case .toControl, .discard: break
        }
    }
    if FrameChecks.classify(f, len: len, served) == .toControl {
        // What the control thread then does with it (vnicd's GuestService.handle).
        let frame = [UInt8](UnsafeRawBufferPointer(start: f, count: len))
        if let u = FrameBuilder.udpPayload(frame) {
            if u.dstPort == 67 { _ = DHCPMessage.parse(u.payload) } else { _ = GuestMessage.decode(u.payload) }
        } else if let d = DHCPv6Message.clientDatagram(frame) {
            _ = DHCPv6Message.parse(d.payload)
        }
    }
}

/// What a frame that passed must hold, read independently of AntiSpoof (plain
/// array indexing, its own walk of the IPv6 header chain); nil when it holds.
/// It may be weaker than the checks, never stricter: a legitimate frame passes it.
func oracle(_ b: [UInt8], _ p: Protection) -> String? {
    let vm: [UInt8] = [0x02, 0, 0, 0, 0x01, 0x01]
    guard b.count >= 14 else { return "a frame shorter than Ethernet" }
    func u16(_ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
    func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) << 16 | UInt32(u16(i + 2)) }
    func v4ok(_ a: UInt32) -> Bool { a == 0x0A4D_000B || a & 0xFFFF_FF00 == 0xC0A8_0700 }
    func v6ok(_ a: ArraySlice<UInt8>) -> Bool {
        let x = Array(a)
        let linkLocal: [UInt8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0x01, 0x01]
        return x == linkLocal || Array(x.prefix(8)) == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1]
    }
    let service: UInt32 = 0xA9FE_A9FE
    if p.contains(.macNospoof) && Array(b[6..<12]) != vm { return "another source MAC" }
    var o = 14, type = u16(12)
    if type == 0x8100 {
        guard b.count >= 18 else { return "a cut tag" }
        type = u16(16); o = 18
    }
    switch type {
    case 0x0800:
        guard b.count >= o + 20 else { return "a cut IPv4 header" }
        let src = u32(o + 12), ihl = Int(b[o] & 0x0F) * 4
        if src == service || u32(o + 16) == service { return "the service address" }
        if p.contains(.ipNospoof) && !v4ok(src) {
            guard src == 0, b[o + 9] == 17, b.count >= o + ihl + 8, u16(o + ihl) == 68, u16(o + ihl + 2) == 67 else {
                return "IPv4 source \(src)"
            }
        }
        if p.contains(.ipNospoof), b[o + 9] == 1, u16(o + 6) & 0x1FFF == 0, b.count > o + ihl, b[o + ihl] == 5 || b[o + ihl] == 9 {
            return "an ICMP redirect or router advertisement"
        }
    case 0x0806:
        guard b.count >= o + 28 else { return "a cut ARP message" }
        if u32(o + 14) == service { return "the service address as ARP sender" }
        if p.contains(.ipNospoof) {
            if Array(b[(o + 8)..<(o + 14)]) != vm { return "another ARP sender MAC" }
            let spa = u32(o + 14)
            if spa == 0 {
                if u16(o + 6) != 1 || !v4ok(u32(o + 24)) { return "ARP from 0.0.0.0 that is not a probe for its address" }
            } else if !v4ok(spa) { return "ARP sender \(spa)" }
        }
    case 0x86DD:
        guard p.contains(.ipNospoof) else { break }
        guard b.count >= o + 40 else { return "a cut IPv6 header" }
        let src = b[(o + 8)..<(o + 24)]
        let end = min(b.count, o + 40 + u16(o + 4))
        var next = Int(b[o + 6]), at = o + 40, fragmented = false, first = true
        while [0, 43, 44, 51, 60, 135, 139, 140, 253, 254].contains(next) && at + 8 <= end {
            if next == 44 {
                fragmented = true; first = u16(at + 2) & 0xFFF8 == 0
                next = Int(b[at]); at += 8
                if !first { break }
            } else if next == 51 {
                next = Int(b[at]); at += (Int(b[at + 1]) + 2) * 4
            } else {
                next = Int(b[at]); at += (Int(b[at + 1]) + 1) * 8
            }
        }
        let icmp = first && next == 58 && at + 4 <= end ? Int(b[at]) : -1
        let unspecified = src.allSatisfy { $0 == 0 }
        if !v6ok(src) && !(unspecified && [131, 132, 133, 135, 143].contains(icmp)) { return "IPv6 source" }
        guard (133...137).contains(icmp) else { break }
        if fragmented { return "fragmented ND" }
        if b[o + 7] != 255 { return "ND with hop limit \(b[o + 7])" }
        if icmp == 134 || icmp == 137 { return "a router advertisement or redirect" }
        if icmp == 136 || (icmp == 135 && unspecified) {
            guard at + 24 <= end, v6ok(b[(at + 8)..<(at + 24)]) else { return "an ND target not its own" }
        }
        var opt = at + (icmp == 133 ? 8 : icmp == 134 ? 16 : icmp == 137 ? 40 : 24)
        while opt + 8 <= end && b[opt + 1] > 0 {
            if (b[opt] == 1 || b[opt] == 2) && Array(b[(opt + 2)..<(opt + 8)]) != vm { return "another link-layer address option" }
            opt += Int(b[opt + 1]) * 8
        }
    default:
        if p.contains(.ipNospoof) || p.contains(.restricted) { return "ethertype \(type) under ip-nospoof or restricted" }
    }
    return nil
}

@main
struct Fuzzer {
    static func main() {
        FuzzDriver.main(name: "frames", check: checkFrame) { f, n in
            "every protection: \(FrameChecks.classify(f, len: n, policies[15])), none: \(FrameChecks.classify(f, len: n, policies[0]))"
        }
    }
}

// vnic-fuzz-requests: libFuzzer target for the parsers of what a VM asks the
// appliance (the control thread's side): FrameBuilder.udpPayload on the frame,
// GuestMessage.decode and DHCPMessage.parse on a UDP payload, and
// DHCPv6Message.clientDatagram/parse and RouterAdvertisement.solicitation for
// IPv6. Every input is tried as a guest-protocol message, as a DHCP and a
// DHCPv6 message, and as a whole frame whose payload then goes to the parser
// its port selects.
//
// Built two ways (scripts/fuzz.sh; the driver is VnicDataplaneTools'
// FuzzDriver): with -sanitize=fuzzer,address -DVNIC_FUZZ for libFuzzer, or
// plain as a replayer `vnic-fuzz-requests FILE|DIR...`.
// Properties checked (a failure traps, which libFuzzer records as a crash):
//   - round trips: a decoded GuestMessage re-encodes to the same bytes (but
//     the reserved u16, which decode ignores); a
//     parsed DHCPMessage re-parses from `encoded()` to an equal message;
//   - the DHCP parser gives the same answer on a slice that does not start at
//     index 0 (how vnicd calls it, on udpPayload's slice);
//   - udpPayload's payload lies inside the frame and agrees with its ports;
//   - a parsed DHCPv6Message re-parses from `encoded()` to an equal message
//     (unknown options dropped), on any slice; clientDatagram's payload lies
//     inside the frame.
import Foundation
import VnicCore
import VnicDataplaneTools

func fail(_ what: String, _ b: [UInt8]) -> Never {
    let bytes = b.prefix(64).map { String($0, radix: 16) }
    fatalError("vnic-fuzz-requests: \(what) (\(b.count) bytes: \(bytes.joined(separator: " ")))")
}

func guestMessage(_ b: some Collection<UInt8>, _ input: [UInt8]) {
    guard case .success(let m) = GuestMessage.decode(b) else { return }
    var bytes = Array(b); bytes[2] = 0; bytes[3] = 0            // reserved: ignored by decode, 0 when encoded
    if m.encoded() != bytes { fail("GuestMessage re-encodes differently", input) }
    guard case .success(let again) = GuestMessage.decode(m.encoded()), again == m else {
        fail("GuestMessage round trip", input)
    }
}

/// `b` parsed (and, when `other` holds the same bytes at another start index,
/// compared with its parse), then round-tripped.
func dhcpMessage(_ b: ArraySlice<UInt8>, _ other: ArraySlice<UInt8>?, _ input: [UInt8]) {
    let m = DHCPMessage.parse(b)
    if let other, m != DHCPMessage.parse(other) { fail("DHCPMessage.parse depends on the slice's start index", input) }
    guard let m else { return }
    guard let again = DHCPMessage.parse(m.encoded()), again == m else { fail("DHCPMessage round trip", input) }
}

func dhcpv6Message(_ b: ArraySlice<UInt8>, _ input: [UInt8]) {
    let m = DHCPv6Message.parse(b)
    if m != DHCPv6Message.parse(Array(b)) { fail("DHCPv6Message.parse depends on the slice's start index", input) }
    guard let m else { return }
    guard let again = DHCPv6Message.parse(m.encoded()), again == m else { fail("DHCPv6Message round trip", input) }
}

/// One input, every way.
func checkRequest(_ input: [UInt8]) {
    guestMessage(input, input)
    dhcpMessage(input[...], nil, input)
    dhcpv6Message(input[...], input)
    if let d = DHCPv6Message.clientDatagram(input) {
        guard d.payload.startIndex >= 62, d.payload.endIndex <= input.count else { fail("clientDatagram outside the frame", input) }
        dhcpv6Message(d.payload, input)
    }
    _ = RouterAdvertisement.solicitation(input)
    if let u = FrameBuilder.udpPayload(input) {
        guard u.payload.startIndex >= 42, u.payload.endIndex <= input.count,
              u.srcPort == UInt16(input[u.payload.startIndex - 8]) << 8 | UInt16(input[u.payload.startIndex - 7]),
              u.dstPort == UInt16(input[u.payload.startIndex - 6]) << 8 | UInt16(input[u.payload.startIndex - 5]) else {
            fail("udpPayload outside the frame or ports elsewhere", input)
        }
        // vnicd parses udpPayload's slice (start index 42 or more): compare with a 0-based copy.
        if u.dstPort == 67 { dhcpMessage(u.payload, Array(u.payload)[...], input) } else { guestMessage(u.payload, input) }
    }
}

@main
struct Fuzzer {
    static func main() {
        FuzzDriver.main(name: "requests") { p, n in
            checkRequest(Array(UnsafeRawBufferPointer(start: p, count: n)))
        }
    }
}

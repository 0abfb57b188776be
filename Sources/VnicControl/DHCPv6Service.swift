// DHCPv6Service: vnic's stateful DHCPv6 server (RFC 8415), for VNICs whose
// `dhcp` property is on, beside the DHCPv4 one and under the same policy. A
// worker hands up every untagged IPv6/UDP datagram to port 547 that such a
// VNIC's port receives (it never reaches the wire); here it is answered from
// the database, on that port only, from the appliance's link-local address:
//   SOLICIT  -> ADVERTISE of the VNIC's IPv6 addresses in each IA_NA (a SLAAC
//               prefix is the VM's to fill; it is not given), or of the
//               client's hinted address when the VNIC's ip policy allows it;
//   REQUEST  -> REPLY with them; a hinted address the VNIC does not have is a
//               change request checked against the ip policy like an in-band
//               one (allowed: committed with its audit entry, dataplane
//               reconciled, REPLY; denied: audited, NoAddrsAvail);
//   RENEW, REBIND -> REPLY with the VNIC's addresses, lifetimes 0 for any the
//               client holds that the VNIC no longer has (RFC 8415 18.3.4);
//   CONFIRM  -> Success when every address is still the VNIC's, else NotOnLink;
//   RELEASE, DECLINE -> REPLY Success (logged); INFORMATION-REQUEST -> REPLY.
// Lifetimes follow `dhcp-lease` (T1 half of it, T2 four fifths). A host change
// reaches the client at its next renewal (no RECONFIGURE: it needs the
// reconfigure key exchange of RFC 8415 20.4, not built). The M flag that tells
// a client to ask comes from `ipv6-ra=managed`. Malformed messages are counted
// (`dhcp6-malformed`) and dropped.
import VnicConfig
import VnicCore

extension GuestService {
    func dhcp6(index: UInt32, queue: Int, frame: [UInt8]) {
        guard let d = DHCPv6Message.clientDatagram(frame), let m = DHCPv6Message.parse(d.payload), let client = m.clientID else {
            return count("dhcp6-malformed")
        }
        let record: VNICRecord
        do {
            guard let r = try store.vnic(index: index), r.dhcp == .on else { return count("dhcp6-ignored") }
            record = r
        } catch {
            logger.error("dhcpv6 on vnic #\(index): \(error.message)")
            return count("dhcp6-error")
        }
        let server = DHCPv6Message.duid(Self.applianceMAC)
        if let s = m.serverID, s != server { return count("dhcp6-other-server") }
        var out = DHCPv6Message(kind: m.kind == .solicit ? .advertise : .reply, transactionID: m.transactionID)
        out.clientID = client
        out.serverID = server
        let lease = record.dhcpLease
        func ia(_ iaid: UInt32, _ addresses: [IPv6Address], expired: [IPv6Address] = []) -> DHCPv6Message.IANA {
            DHCPv6Message.IANA(iaid: iaid, t1: lease / 2, t2: lease / 5 * 4,
                               addresses: addresses.map { ($0, lease, lease) } + expired.map { ($0, 0, 0) })
        }
        let own = Self.dhcp6Addresses(record)
        switch m.kind {
        case .solicit, .request:
            for want in m.iaNA {
                let hint = want.addresses.first?.address
                if let hint, !own.contains(hint) {
                    if m.kind == .solicit {
                        if allowsIP(record, Self.ipValue6(record, hint)) { out.iaNA.append(ia(want.iaid, [hint])); continue }
                    } else if let given = changeRequest6(record, hint) {
                        out.iaNA.append(ia(want.iaid, [given])); continue
                    } else {
                        var refused = DHCPv6Message.IANA(iaid: want.iaid)
                        refused.status = (.noAddrsAvail, "address \(hint) is not allowed to this VNIC")
                        out.iaNA.append(refused); continue
                    }
                }
                if own.isEmpty {
                    var none = DHCPv6Message.IANA(iaid: want.iaid)
                    none.status = (.noAddrsAvail, "the VNIC has no IPv6 address to give")
                    out.iaNA.append(none)
                } else {
                    out.iaNA.append(ia(want.iaid, own))
                }
            }
            count(m.kind == .solicit ? "dhcp6-advertise" : "dhcp6-reply")
        case .renew, .rebind:
            for held in m.iaNA {
                let gone = held.addresses.map(\.address).filter { !own.contains($0) }
                out.iaNA.append(ia(held.iaid, own, expired: gone))
            }
            count("dhcp6-reply")
        case .confirm:
            let all = m.iaNA.flatMap { $0.addresses.map(\.address) }
            out.status = all.allSatisfy(own.contains) ? (.success, "") : (.notOnLink, "not this VNIC's addresses")
            count("dhcp6-confirm")
        case .release, .decline:
            log("vnic \(record.name): DHCPv6 \(m.kind) of \(m.iaNA.flatMap { $0.addresses.map { "\($0.address)" } }.joined(separator: ","))")
            out.status = (.success, "")
            count("dhcp6-\(m.kind)")
        case .informationRequest:
            count("dhcp6-information")
        default:
            return count("dhcp6-malformed")   // a server's message from a VM: not for us
        }
        dp.send(toVNIC: index, queue: queue,
                frame: DHCPv6Message.serverFrame(out, applianceMAC: Self.applianceMAC, dstMAC: d.mac, dstIP: d.source, port: d.sourcePort))
    }

    /// The addresses DHCPv6 gives a VNIC: its IPv6 addresses but SLAAC prefixes.
    static func dhcp6Addresses(_ r: VNICRecord) -> [IPv6Address] { r.ips6.filter { !$0.isSLAACPrefix }.map(\.address) }

    /// The `ip` value a DHCPv6 client's request for `wanted` stands for: the
    /// VNIC's IPv4 addresses and SLAAC prefixes kept, `wanted` (with the prefix
    /// length of its first IPv6 address, else 64) instead of its other IPv6 addresses.
    static func ipValue6(_ r: VNICRecord, _ wanted: IPv6Address) -> String {
        let length = r.ips6.first { !$0.isSLAACPrefix }?.prefixLength ?? 64
        let kept = r.ips.map(\.description) + r.ips6.filter(\.isSLAACPrefix).map(\.description)
        return (kept + ["\(wanted)/\(length)"]).joined(separator: ",")
    }

    /// A REQUEST for an address the VNIC does not have: the ip policy decides,
    /// as for an in-band request. The address given, or nil when denied.
    private func changeRequest6(_ record: VNICRecord, _ wanted: IPv6Address) -> IPv6Address? {
        let outcome: VMRequestOutcome
        do {
            outcome = try store.handleVMRequest(index: record.index, parameter: "ip", value: Self.ipValue6(record, wanted),
                                                via: "DHCPv6 request")
        } catch {
            logger.error("vnic \(record.name): DHCPv6 request for \(wanted): \(error.message)")
            count("dhcp6-error")
            return nil
        }
        guard outcome.accepted, let r = outcome.record else {
            log("vnic \(record.name): DHCPv6 request ip=\(wanted) denied: \(outcome.entry.reason)")
            count("dhcp6-denied")
            return nil
        }
        known[record.index] = r   // the VM's own change: no notification back
        reconcile()               // database and VNIC first, then the answer
        log("vnic \(record.name): DHCPv6 request ip=\(wanted) accepted")
        return wanted
    }
}

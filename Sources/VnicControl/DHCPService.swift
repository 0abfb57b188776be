// DHCPService: vnic's DHCPv4 server, for VNICs whose `dhcp` property is on. A
// worker hands up every IPv4/UDP datagram to port 67 that such a VNIC's port
// receives (it never reaches the wire); here, on the control thread, it is
// answered from the database, on that port only:
//   DISCOVER  -> OFFER of the VNIC's address (or of option 50's address when
//                the VNIC's ip policy would allow it);
//   REQUEST   -> ACK when it names the VNIC's address; a REQUEST for another
//                address (option 50) is a change request, checked against the
//                ip policy like an in-band one: allowed -> committed with its
//                audit entry, dataplane reconciled, ACK; denied -> audited, NAK;
//                a renewal (no option 50) of an address the VNIC no longer has
//                -> NAK, and the client starts over and gets the new one;
//   INFORM    -> ACK with the options only; RELEASE, DECLINE -> logged.
// A host-initiated change of the address, gateway or MTU sends FORCERENEW
// (RFC 3203) to the address the client holds, with the xid of its last
// exchange, signed (RFC 3118 protocol 3, HMAC-MD5) with the reconfigure key
// every ACK hands the client: dhcpcd renews at once, gets a NAK (or the new
// options) and starts over. Clients without FORCERENEW (udhcpc) learn the
// change at their next renewal.
// Replies carry the prefix (option 1), gateway (3), MTU (26), lease time (51)
// with T1/T2 (58/59) and the server identifier (54): the VNIC's gateway, else
// the link-local service address. Undecodable datagrams are counted
// (`dhcp-malformed`) and dropped.
import VnicConfig
import VnicCore

extension GuestService {
    func dhcp(index: UInt32, queue: Int, payload: ArraySlice<UInt8>) {
        guard let m = DHCPMessage.parse(payload), m.op == 1, let kind = m.kind else { return count("dhcp-malformed") }
        dhcpXIDs[index] = m.xid
        let record: VNICRecord
        do {
            guard let r = try store.vnic(index: index), r.dhcp == .on else { return count("dhcp-ignored") }
            record = r
        } catch {
            logger.error("dhcp on vnic #\(index): \(error.message)")
            return count("dhcp-error")
        }
        guard let own = record.ips.first else {
            logger.warning("vnic \(record.name): DHCP \(kind) but the VNIC has no address to give")
            return count("dhcp-no-address")
        }
        switch kind {
        case .discover:
            var offer = own
            if let wanted = m.requestedAddress, wanted != own.address,
               allowsIP(record, Self.ipValue(record, IPv4Interface(address: wanted, prefixLength: own.prefixLength))) {
                offer.address = wanted
            }
            reply(record, queue: queue, to: m, .offer, address: offer)
            count("dhcp-offer")
        case .request:
            if let wanted = m.requestedAddress {
                if let server = m.serverIdentifier, server != serverIdentifier(record) { return count("dhcp-other-server") }
                if wanted == own.address { reply(record, queue: queue, to: m, .ack, address: own); return count("dhcp-ack") }
                changeRequest(record, queue: queue, m, IPv4Interface(address: wanted, prefixLength: own.prefixLength))
            } else if m.ciaddr == own.address {
                reply(record, queue: queue, to: m, .ack, address: own)   // renewing or rebinding
                count("dhcp-ack")
            } else {
                logger.info("vnic \(record.name): DHCP renewal of \(m.ciaddr), which the VNIC no longer has: NAK")
                nak(record, queue: queue, to: m, "address \(m.ciaddr) is not this VNIC's (it has \(own.address))")
            }
        case .inform:
            reply(record, queue: queue, to: m, .ack, address: nil)
            count("dhcp-inform")
        case .release, .decline:
            logger.info("vnic \(record.name): DHCP \(kind) of \(m.ciaddr == IPv4Address(rawValue: 0) ? m.requestedAddress.map { "\($0)" } ?? "?" : "\(m.ciaddr)")")
            count("dhcp-\(kind)")
        default:
            count("dhcp-malformed")   // server messages from a VM: not for us
        }
    }

    /// Option 50 asking for another address: the VNIC's ip policy decides, as for an in-band request.
    private func changeRequest(_ record: VNICRecord, queue: Int, _ m: DHCPMessage, _ wanted: IPv4Interface) {
        let outcome: VMRequestOutcome
        do {
            outcome = try store.handleVMRequest(index: record.index, parameter: "ip", value: Self.ipValue(record, wanted),
                                                via: "DHCP request")
        } catch {
            logger.error("vnic \(record.name): DHCP request for \(wanted): \(error.message)")
            return count("dhcp-error")
        }
        if outcome.accepted, let r = outcome.record {
            known[record.index] = r   // the VM's own change: no notification back
            reconcile()               // database and VNIC first, then the answer
            reply(r, queue: queue, to: m, .ack, address: wanted)
            count("dhcp-ack")
            log("vnic \(record.name): DHCP request ip=\(wanted) accepted")
        } else {
            log("vnic \(record.name): DHCP request ip=\(wanted) denied: \(outcome.entry.reason)")
            nak(record, queue: queue, to: m, outcome.entry.reason)
        }
    }

    /// The `ip` value a DHCPv4 client's request for `wanted` stands for: that
    /// address instead of the VNIC's IPv4 ones, its IPv6 addresses kept.
    static func ipValue(_ record: VNICRecord, _ wanted: IPv4Interface) -> String {
        (["\(wanted)"] + record.ips6.map(\.description)).joined(separator: ",")
    }

    /// Whether the VNIC's ip policy lets its VM make `ip` this value (DHCPv4 and
    /// DHCPv6 ask before they offer an address the client hinted at).
    func allowsIP(_ record: VNICRecord, _ value: String) -> Bool {
        (try? record.requesting(.ip, value)) != nil
    }

    /// Tells the DHCP client of a VNIC whose configuration the host changed to
    /// renew now; `held` is the address the client has (unicast to it, as RFC 3203 wants).
    func forceRenew(_ record: VNICRecord, held: IPv4Address) {
        var m = DHCPMessage()
        // The client takes only a message with the xid of its last exchange (dhcpcd checks it).
        m.xid = dhcpXIDs[record.index] ?? UInt32.random(in: 1...UInt32.max); m.chaddr = record.mac; m.ciaddr = held
        m.options = [(53, [DHCPMessage.Kind.forceRenew.rawValue]), DHCPMessage.addressOption(54, serverIdentifier(record))]
        send(record, queue: 0, payload: m.encoded(signedWith: reconfigureKey(record.index), replay: monotonicNow()), to: held)
        count("dhcp-forcerenew")
        log("vnic \(record.name): DHCP FORCERENEW to \(held)")
    }

    func serverIdentifier(_ r: VNICRecord) -> IPv4Address { r.gateway ?? GuestProtocol.serviceAddress }

    private func nak(_ record: VNICRecord, queue: Int, to m: DHCPMessage, _ why: String) {
        var out = DHCPMessage()
        out.xid = m.xid; out.flags = m.flags; out.giaddr = m.giaddr; out.chaddr = m.chaddr
        out.options = [(53, [DHCPMessage.Kind.nak.rawValue]), DHCPMessage.addressOption(54, serverIdentifier(record)),
                       (56, Array(why.utf8.prefix(200)))]
        // Broadcast (RFC 2131 4.3.2), but to a renewing client's address: it listens
        // on a socket bound to that address, which a broadcast does not reach.
        send(record, queue: queue, out, to: m.ciaddr.rawValue != 0 ? m.ciaddr : IPv4Address(rawValue: .max))
        count("dhcp-nak")
    }

    /// OFFER or ACK: `address` nil for an INFORM's ACK (options only).
    private func reply(_ record: VNICRecord, queue: Int, to m: DHCPMessage, _ kind: DHCPMessage.Kind, address: IPv4Interface?) {
        var out = DHCPMessage()
        out.xid = m.xid; out.flags = m.flags; out.giaddr = m.giaddr; out.chaddr = m.chaddr; out.ciaddr = m.ciaddr
        let prefix = address?.prefixLength ?? record.ips.first?.prefixLength ?? 32
        out.options = [(53, [kind.rawValue]), DHCPMessage.addressOption(54, serverIdentifier(record))]
        if let address {
            out.yiaddr = address.address
            let lease = record.dhcpLease
            out.options += [DHCPMessage.u32Option(51, lease), DHCPMessage.u32Option(58, lease / 2),
                            DHCPMessage.u32Option(59, lease / 8 * 7)]
            if kind == .ack { out.options.append(DHCPMessage.reconfigureKeyOption(reconfigureKey(record.index), replay: monotonicNow())) }
        }
        out.options.append(DHCPMessage.addressOption(1, IPv4Address(rawValue: IPv4CIDR.mask(prefix))))
        if let gw = record.gateway { out.options.append(DHCPMessage.addressOption(3, gw)) }
        out.options.append((26, FrameBuilder.be16(UInt16(clamping: record.mtu))))
        // Broadcast when the client asked for it or has no address yet to receive on.
        let unicast = kind == .ack && address == nil ? m.ciaddr : (m.broadcast ? nil : address?.address)
        send(record, queue: queue, out, to: unicast ?? IPv4Address(rawValue: .max))
    }

    private func reconfigureKey(_ index: UInt32) -> [UInt8] {
        if let k = dhcpKeys[index] { return k }
        let k = MessageAuthentication.randomKey(16)
        dhcpKeys[index] = k
        return k
    }

    private func send(_ record: VNICRecord, queue: Int, _ m: DHCPMessage, to ip: IPv4Address) {
        send(record, queue: queue, payload: m.encoded(), to: ip)
    }

    private func send(_ record: VNICRecord, queue: Int, payload: [UInt8], to ip: IPv4Address) {
        var f = FrameBuilder.udp(dst: record.mac, src: Self.applianceMAC, srcIP: serverIdentifier(record), dstIP: ip,
                                 srcPort: 67, dstPort: 68, length: FrameBuilder.headers + payload.count)
        f.replaceSubrange(FrameBuilder.headers..<f.count, with: payload)
        dp.send(toVNIC: record.index, queue: queue, frame: f)
    }
}

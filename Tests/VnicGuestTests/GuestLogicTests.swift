// The guest agent's pure parts: argument checks, value completion, the apply
// mapping (argv lists), and which frames count as a reply or a notification.
import VnicCore
@testable import VnicGuest
import XCTest

final class GuestArgumentTests: XCTestCase {
    private func usageMessage(_ text: String) -> String? {
        do { _ = try GuestAssignment(parsing: text); return nil } catch {
            XCTAssertEqual(error.exitCode, 2, text)
            return error.message
        }
    }

    func testValidAssignments() throws {
        XCTAssertEqual(try GuestAssignment(parsing: "ip=10.77.0.21"), GuestAssignment(parameter: .ip, value: "10.77.0.21"))
        XCTAssertEqual(try GuestAssignment(parsing: "tcp-ports=22,80"), GuestAssignment(parameter: .tcpPorts, value: "22,80"))
        // Only the first '=' separates.
        XCTAssertEqual(try GuestAssignment(parsing: "transport=a=b").value, "a=b")
        for p in GuestParameter.allCases { XCTAssertNoThrow(try GuestAssignment(parsing: "\(p.rawValue)=x")) }
    }

    func testUsageErrors() {
        XCTAssertEqual(usageMessage("maxbw=10M"), "'maxbw' is not a parameter (one of ip, mac, gateway, mtu, tcp-ports, routing, tcp-buffer, transport)")
        XCTAssertTrue(usageMessage("ip")?.contains("expected PARAM=VALUE") ?? false)
        XCTAssertEqual(usageMessage("mtu="), "mtu: the value is empty")
        XCTAssertNotNil(usageMessage("=1400"))
        XCTAssertNotNil(usageMessage("mtu=" + String(repeating: "1", count: 1025)))
        XCTAssertNil(usageMessage("mtu=" + String(repeating: "1", count: 1024)))
    }

    func testIPCompletion() throws {
        let current = [IPv4Interface("10.77.0.11/24")!, IPv4Interface("10.9.0.1/16")!]
        XCTAssertEqual(try GuestAssignment(parsing: "ip=10.77.0.21").completed(current: current).value, "10.77.0.21/24")
        XCTAssertEqual(try GuestAssignment(parsing: "ip=10.77.0.21/28").completed(current: current).value, "10.77.0.21/28")
        XCTAssertEqual(try GuestAssignment(parsing: "ip=10.77.0.21,10.78.0.1/16").completed(current: current).value,
                       "10.77.0.21/24,10.78.0.1/16")
        XCTAssertEqual(try GuestAssignment(parsing: "ip=10.77.0.21").completed(current: []).value, "10.77.0.21/32")
        // Other parameters and things that are not addresses are sent as given.
        XCTAssertEqual(try GuestAssignment(parsing: "gateway=10.77.0.1").completed(current: current).value, "10.77.0.1")
        XCTAssertEqual(try GuestAssignment(parsing: "ip=bogus").completed(current: current).value, "bogus")
    }

    func testByteSizes() {
        XCTAssertEqual(ByteSize.parse("262144"), 262144)
        XCTAssertEqual(ByteSize.parse("256K"), 262144)
        XCTAssertEqual(ByteSize.parse("4M"), 4 << 20)
        XCTAssertNil(ByteSize.parse("K"))
        XCTAssertNil(ByteSize.parse("-1"))
        XCTAssertNil(ByteSize.parse("04K"))
        XCTAssertNil(ByteSize.parse("18446744073709551615K"), "overflow")
    }

    /// The guest's parameters are the database's policy parameters: one list (VnicCore's GuestParameter).
    func testGuestParametersAreOneList() {
        XCTAssertEqual(Set(GuestParameter.allCases.map(\.rawValue)),
                       ["ip", "mac", "gateway", "mtu", "tcp-ports", "routing", "tcp-buffer", "transport"])
    }
}

final class StackApplyTests: XCTestCase {
    let state = InterfaceState(name: "vnic0", addresses: [IPv4Interface("10.77.0.11/24")!],
                               defaultGateway: IPv4Address("10.77.0.1"))

    private func argv(_ p: GuestParameter, _ v: String, _ s: InterfaceState? = nil) throws -> [[String]] {
        try StackApply.steps(p, v, on: s ?? state).map(\.argv)
    }

    func testIPAddsBeforeDeletingAndRestoresTheDefaultRoute() throws {
        let steps = try StackApply.steps(.ip, "10.77.0.21/24", on: state)
        XCTAssertEqual(steps.map(\.argv), [
            ["ip", "addr", "replace", "10.77.0.21/24", "dev", "vnic0"],
            ["sysctl", "-q", "-w", "net.ipv4.conf.vnic0.promote_secondaries=1"],
            ["ip", "addr", "del", "10.77.0.11/24", "dev", "vnic0"],
            ["ip", "route", "replace", "default", "via", "10.77.0.1", "dev", "vnic0"],
        ])
        XCTAssertEqual(steps.map(\.bestEffort), [false, true, false, true])
    }

    func testIPKeepsAddressesInTheListAndNeedsNoRouteWithoutGateway() throws {
        var s = state
        s.defaultGateway = nil
        s.addresses.append(IPv4Interface("10.78.0.5/16")!)
        XCTAssertEqual(try argv(.ip, "10.78.0.5/16,10.79.0.1/24", s), [
            ["ip", "addr", "replace", "10.78.0.5/16", "dev", "vnic0"],
            ["ip", "addr", "replace", "10.79.0.1/24", "dev", "vnic0"],
            ["sysctl", "-q", "-w", "net.ipv4.conf.vnic0.promote_secondaries=1"],
            ["ip", "addr", "del", "10.77.0.11/24", "dev", "vnic0"],
        ])
        // Nothing to delete: no route restore either.
        XCTAssertEqual(try argv(.ip, "10.77.0.11/24"), [["ip", "addr", "replace", "10.77.0.11/24", "dev", "vnic0"]])
        // The same address with another prefix length is another address.
        XCTAssertEqual(try argv(.ip, "10.77.0.11/16").last, ["ip", "route", "replace", "default", "via", "10.77.0.1", "dev", "vnic0"])
        XCTAssertThrowsError(try argv(.ip, "10.77.0.21"))      // a reply always carries the prefix length
        XCTAssertThrowsError(try argv(.ip, "10.77.0.21/33"))
    }

    func testOtherParameters() throws {
        XCTAssertEqual(try argv(.mac, "02:00:00:00:01:AA"), [["ip", "link", "set", "dev", "vnic0", "address", "02:00:00:00:01:aa"]])
        XCTAssertThrowsError(try argv(.mac, "01:00:5e:00:00:01"))
        XCTAssertEqual(try argv(.gateway, "10.77.0.254"), [["ip", "route", "replace", "default", "via", "10.77.0.254", "dev", "vnic0"]])
        XCTAssertEqual(try argv(.gateway, ""), [["ip", "route", "del", "default"], ["ip", "-6", "route", "del", "default", "dev", "vnic0"]])
        XCTAssertThrowsError(try argv(.gateway, "10.77.0"))
        XCTAssertEqual(try argv(.gateway, "10.77.0.1,fe80::1"), [["ip", "route", "replace", "default", "via", "10.77.0.1", "dev", "vnic0"],
                                                                  ["ip", "-6", "route", "replace", "default", "via", "fe80::1", "dev", "vnic0"]])
        XCTAssertEqual(try argv(.mtu, "1400"), [["ip", "link", "set", "dev", "vnic0", "mtu", "1400"]])
        XCTAssertThrowsError(try argv(.mtu, "14x"))
        XCTAssertThrowsError(try argv(.mtu, "01400"))
        XCTAssertEqual(try argv(.routing, "on"), [["sysctl", "-q", "-w", "net.ipv4.conf.vnic0.forwarding=1"]])
        XCTAssertEqual(try argv(.routing, "off"), [["sysctl", "-q", "-w", "net.ipv4.conf.vnic0.forwarding=0"]])
        XCTAssertThrowsError(try argv(.routing, "yes"))
        XCTAssertEqual(try argv(.tcpBuffer, "4M"), [["sysctl", "-q", "-w", "net.ipv4.tcp_rmem=4096 131072 4194304"],
                                                     ["sysctl", "-q", "-w", "net.ipv4.tcp_wmem=4096 16384 4194304"]])
        XCTAssertEqual(try argv(.tcpBuffer, "64K"), [["sysctl", "-q", "-w", "net.ipv4.tcp_rmem=4096 65536 65536"],
                                                      ["sysctl", "-q", "-w", "net.ipv4.tcp_wmem=4096 16384 65536"]])
        XCTAssertEqual(try argv(.tcpBuffer, "").count, 2)
        XCTAssertEqual(try argv(.tcpPorts, "22,80"), [])
        XCTAssertEqual(try argv(.transport, "udp"), [])
    }

    func testIPv6AddressesAreAppliedAndTheOldOnesGo() throws {
        var s = state
        s.addresses6 = [IPv6Interface("fd00:77::11/64")!, IPv6Interface("fd00:78::5/64")!]
        s.mac = MACAddress("02:00:00:00:01:01")
        XCTAssertEqual(try argv(.ip, "10.77.0.11/24,fd00:77::21/64,fd00:78::5/64", s), [
            ["ip", "addr", "replace", "10.77.0.11/24", "dev", "vnic0"],
            ["ip", "-6", "addr", "replace", "fd00:77::21/64", "dev", "vnic0"],
            ["ip", "-6", "addr", "replace", "fd00:78::5/64", "dev", "vnic0"],
            ["ip", "-6", "addr", "del", "fd00:77::11/64", "dev", "vnic0"],
        ])
        // A SLAAC prefix: the address the MAC gives there. An IPv6-only list takes the IPv4 address away.
        XCTAssertEqual(try argv(.ip, "fd00:79::/64", s).prefix(1).map { $0 }, [["ip", "-6", "addr", "replace", "fd00:79::ff:fe00:101/64", "dev", "vnic0"]])
        XCTAssertTrue(try argv(.ip, "fd00:79::/64", s).contains(["ip", "addr", "del", "10.77.0.11/24", "dev", "vnic0"]))
        XCTAssertThrowsError(try argv(.ip, "fd00:77::21", s))
        XCTAssertThrowsError(try argv(.ip, "fd00:77:::21/64", s))
    }

    func testInterfaceFactsKeepConfiguredIPv6Addresses() throws {
        let json = #"[{"ifindex":3,"ifname":"vnic0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"address":"02:00:00:00:01:01","addr_info":[{"family":"inet","local":"10.1.1.1","prefixlen":24,"scope":"global"},{"family":"inet6","local":"fd00::5","prefixlen":64,"scope":"global","valid_life_time":4294967295},{"family":"inet6","local":"fd00:1::ff:fe00:101","prefixlen":64,"scope":"global","dynamic":true,"mngtmpaddr":true},{"family":"inet6","local":"fd00:1::1234","prefixlen":64,"scope":"global","temporary":true,"dynamic":true},{"family":"inet6","local":"fe80::ff:fe00:101","prefixlen":64,"scope":"link"}]}]"#
        let f = try XCTUnwrap(try InterfaceFacts.parse(addrJSON: Data(json.utf8)).first)
        XCTAssertEqual(f.addresses, [IPv4Interface("10.1.1.1/24")!])
        XCTAssertEqual(f.addresses6, [IPv6Interface("fd00::5/64")!], "not link-local, not SLAAC's, not temporary")
        XCTAssertEqual(try GuestAssignment(parsing: "ip=fd00::9,10.1.1.2").completed(current: f.addresses, current6: f.addresses6).value,
                       "fd00::9/64,10.1.1.2/24")
    }

    func testSysctlKeyForDottedInterfaceNames() throws {
        let s = InterfaceState(name: "eth0.100", addresses: [], defaultGateway: nil)
        XCTAssertEqual(try argv(.routing, "on", s), [["sysctl", "-q", "-w", "net/ipv4/conf/eth0.100/forwarding=1"]])
    }
}

final class FrameMatchTests: XCTestCase {
    let guestMAC = MACAddress("02:00:00:00:01:01")!
    let hostMAC = MACAddress("02:00:00:00:00:fe")!
    let guestIP = IPv4Address("10.77.0.11")!

    private func reply(kind: GuestMessage.Kind = .accepted, id: UInt32 = 7, from ip: IPv4Address = GuestProtocol.serviceAddress,
                       srcPort: UInt16 = GuestProtocol.servicePort, to port: UInt16 = 50000) -> [UInt8] {
        FrameBuilder.guestFrame(dst: guestMAC, src: hostMAC, srcIP: ip, dstIP: guestIP, srcPort: srcPort, dstPort: port,
                                message: GuestMessage(kind: kind, id: id, parameter: "ip", value: "10.77.0.21/24"))
    }

    func testReplyMatching() {
        XCTAssertEqual(FrameMatch.reply(reply(), outgoing: false, id: 7, port: 50000)?.value, "10.77.0.21/24")
        XCTAssertEqual(FrameMatch.reply(reply(kind: .denied), outgoing: false, id: 7, port: 50000)?.kind, .denied)
        XCTAssertNil(FrameMatch.reply(reply(id: 8), outgoing: false, id: 7, port: 50000), "wrong id")
        XCTAssertNil(FrameMatch.reply(reply(to: 50001), outgoing: false, id: 7, port: 50000), "wrong port")
        XCTAssertNil(FrameMatch.reply(reply(srcPort: 7178), outgoing: false, id: 7, port: 50000), "wrong source port")
        XCTAssertNil(FrameMatch.reply(reply(from: IPv4Address("10.77.0.1")!), outgoing: false, id: 7, port: 50000), "not the service")
        XCTAssertNil(FrameMatch.reply(reply(), outgoing: true, id: 7, port: 50000), "our own outgoing frame")
        XCTAssertNil(FrameMatch.reply(reply(kind: .request), outgoing: false, id: 7, port: 50000), "a request is no reply")
        XCTAssertNil(FrameMatch.reply(reply(kind: .notify), outgoing: false, id: 7, port: 50000))
        // Not the protocol: a UDP frame with other bytes, an ARP frame, a truncated frame.
        var junk = FrameBuilder.udp(dst: guestMAC, src: hostMAC, srcIP: GuestProtocol.serviceAddress, dstIP: guestIP,
                                    srcPort: GuestProtocol.servicePort, dstPort: 50000, length: 80)
        junk[42] = 9
        XCTAssertNil(FrameMatch.reply(junk, outgoing: false, id: 7, port: 50000))
        let arp = FrameBuilder.arp(op: 1, src: hostMAC, dst: MACAddress(rawValue: 0xFFFF_FFFF_FFFF), senderMAC: hostMAC,
                                   senderIP: GuestProtocol.serviceAddress, targetMAC: MACAddress(rawValue: 0), targetIP: guestIP)
        XCTAssertNil(FrameMatch.reply(arp, outgoing: false, id: 7, port: 50000))
        XCTAssertNil(FrameMatch.reply(Array(reply().prefix(30)), outgoing: false, id: 7, port: 50000))
    }

    func testNotificationMatching() {
        func notify(kind: GuestMessage.Kind = .notify, to port: UInt16 = GuestProtocol.guestPort) -> [UInt8] {
            FrameBuilder.guestFrame(dst: guestMAC, src: hostMAC, srcIP: GuestProtocol.serviceAddress, dstIP: guestIP,
                                    srcPort: GuestProtocol.servicePort, dstPort: port,
                                    message: GuestMessage(kind: kind, id: 42, parameter: "mtu", value: "1400"))
        }
        let n = FrameMatch.notification(notify(), outgoing: false)
        XCTAssertEqual(n?.message, GuestMessage(kind: .notify, id: 42, parameter: "mtu", value: "1400"))
        XCTAssertEqual(n?.from, hostMAC)
        XCTAssertNil(FrameMatch.notification(notify(), outgoing: true))
        XCTAssertNil(FrameMatch.notification(notify(kind: .ack), outgoing: false))
        XCTAssertNil(FrameMatch.notification(notify(to: 7177), outgoing: false))
    }

    /// A notification signed with the VNIC's key checks out under that key only,
    /// through the frame and back; a changed byte or a missing authenticator fails.
    func testSignedNotifications() throws {
        let key = MessageAuthentication.randomKey(32), other = MessageAuthentication.randomKey(32)
        let m = GuestMessage(kind: .notify, id: 42, parameter: "mtu", value: "1400").signed(with: key)
        XCTAssertEqual(m.authenticator.count, 32)
        let frame = FrameBuilder.guestFrame(dst: guestMAC, src: hostMAC, srcIP: GuestProtocol.serviceAddress, dstIP: guestIP,
                                            srcPort: GuestProtocol.servicePort, dstPort: GuestProtocol.guestPort, message: m)
        let got = try XCTUnwrap(FrameMatch.notification(frame, outgoing: false)).message
        XCTAssertEqual(got, m)
        XCTAssertTrue(got.isSigned(by: key))
        XCTAssertFalse(got.isSigned(by: other))
        var changed = got; changed.value = "9000"
        XCTAssertFalse(changed.isSigned(by: key))
        XCTAssertFalse(GuestMessage(kind: .notify, id: 42, parameter: "mtu", value: "1400").isSigned(by: key), "unsigned")
        // Only a notification carries an authenticator; a short one is malformed.
        var request = m; request.kind = .request
        guard case .failure = GuestMessage.decode(request.encoded()) else { return XCTFail("a signed request decoded") }
        guard case .failure = GuestMessage.decode(m.encoded().dropLast()) else { return XCTFail("a cut authenticator decoded") }
    }

    func testKeyExchange() throws {
        let key = MessageAuthentication.randomKey(32)
        let answer = GuestMessage.keyMessage(id: 9, key)
        XCTAssertEqual(answer.value.count, 64)
        XCTAssertEqual(answer.key, key)
        func frame(_ m: GuestMessage, to port: UInt16 = GuestProtocol.guestPort) -> [UInt8] {
            FrameBuilder.guestFrame(dst: guestMAC, src: hostMAC, srcIP: GuestProtocol.serviceAddress, dstIP: guestIP,
                                    srcPort: GuestProtocol.servicePort, dstPort: port, message: m)
        }
        XCTAssertEqual(FrameMatch.key(frame(answer), outgoing: false, id: 9), key)
        XCTAssertNil(FrameMatch.key(frame(answer), outgoing: false, id: 10), "another hello's")
        XCTAssertNil(FrameMatch.key(frame(answer, to: 50000), outgoing: false, id: 9))
        var bad = answer; bad.value = String(repeating: "g", count: 64)
        XCTAssertNil(FrameMatch.key(frame(bad), outgoing: false, id: 9))
    }
}

final class InterfaceFactsTests: XCTestCase {
    let json = """
    [{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"link_type":"loopback","address":"00:00:00:00:00:00",
      "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
     {"ifindex":6,"ifname":"vnic0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"link_type":"ether",
      "address":"02:00:00:00:01:01","addr_info":[{"family":"inet","local":"10.77.0.11","prefixlen":24},
      {"family":"inet6","local":"fe80::1","prefixlen":64},{"family":"inet","local":"10.78.0.1","prefixlen":16}]},
     {"ifindex":7,"ifname":"eth1","flags":["BROADCAST","MULTICAST"],"mtu":1500,"link_type":"ether","address":"02:00:00:00:01:02","addr_info":[]}]
    """

    func testParseAndChoose() throws {
        let all = try InterfaceFacts.parse(addrJSON: Data(json.utf8))
        let f = try InterfaceFacts.choose(nil, among: all)
        XCTAssertEqual(f.name, "vnic0")
        XCTAssertEqual(f.index, 6)
        XCTAssertEqual(f.mac, MACAddress("02:00:00:00:01:01"))
        XCTAssertEqual(f.addresses.map(\.description), ["10.77.0.11/24", "10.78.0.1/16"])
        XCTAssertEqual(f.sourceAddress, IPv4Address("10.77.0.11"))
        XCTAssertEqual(try InterfaceFacts.choose("eth1", among: all).sourceAddress, IPv4Address(rawValue: 0))
        var two = all
        two[2].isUp = true
        XCTAssertThrowsError(try InterfaceFacts.choose(nil, among: two)) { XCTAssertEqual(($0 as? VnicError)?.exitCode, 2) }
        XCTAssertThrowsError(try InterfaceFacts.choose("nope", among: all)) { XCTAssertEqual(($0 as? VnicError)?.exitCode, 2) }
        XCTAssertEqual(InterfaceFacts.parse(defaultRouteJSON: Data(#"[{"dst":"default","gateway":"10.77.0.1","dev":"vnic0"}]"#.utf8)),
                       IPv4Address("10.77.0.1"))
        XCTAssertNil(InterfaceFacts.parse(defaultRouteJSON: Data("[]".utf8)))
    }
}

// Every row of the parameter table: valid values (text -> field -> the same or
// canonical text), invalid values (a usage error naming the token), validation
// edges, defaults and reset, and a round trip through the database.
import Foundation
import XCTest
@testable import VnicConfig
import VnicCore

final class ParameterTableTests: XCTestCase {
    /// Per field: (input, canonical text) pairs that parse, and (input, message fragment) pairs that do not.
    struct Cases {
        var valid: [(String, String?)]
        var invalid: [(String, String)]
        /// Values that parse but fail validation (the record's rules).
        var invalidValues: [(String, String)] = []
    }

    let cases: [String: Cases] = [
        "name": Cases(valid: [("vm1", "vm1"), ("A.b-c_d", "A.b-c_d"), (String(repeating: "x", count: 31), String(repeating: "x", count: 31))],
                      invalid: [("", "name: ''"), ("1vm", "'1vm'"), (String(repeating: "x", count: 32), "name:"), ("vm 1", "name:")]),
        "link": Cases(valid: [("uplink0", "uplink0"), (String(repeating: "i", count: 15), String(repeating: "i", count: 15))],
                      invalid: [("", "link:"), ("a/b", "'a/b'"), ("a:b", "link:"), (String(repeating: "i", count: 16), "link:")]),
        "port": Cases(valid: [("vm1p", "vm1p")], invalid: [("a b", "port: 'a b'"), ("..", "port:")],
                      invalidValues: [("uplink0", "port: 'uplink0' is the VNIC's link")]),
        "mac": Cases(valid: [("02:00:00:00:01:01", "02:00:00:00:01:01"), ("2:0:0:0:1:a", "02:00:00:00:01:0a"),
                             ("02-AA-00-00-01-01", "02:aa:00:00:01:01")],
                     invalid: [("zz", "mac: 'zz' is not a MAC address"), ("02:00:00:00:01", "mac:"), ("", "mac: ''"),
                               ("02:00:00:00:01:001", "mac:")],
                     invalidValues: [("01:00:5e:00:00:01", "multicast"), ("00:00:00:00:00:00", "not an assignable"),
                                     ("ff:ff:ff:ff:ff:ff", "multicast")]),
        "ip": Cases(valid: [("10.0.0.1/24", "10.0.0.1/24"), ("10.0.0.1/24,10.1.0.1/16", "10.0.0.1/24,10.1.0.1/16"),
                            ("", nil), ("10.0.0.0/31", "10.0.0.0/31"), ("FD00:77:0::11/64,10.0.0.1/24", "10.0.0.1/24,fd00:77::11/64"),
                            ("fd00:77::/64", "fd00:77::/64")],
                    invalid: [("10.0.0.1", "needs a prefix length"), ("10.0.0.1/33", "'10.0.0.1/33'"), ("10.0.0.1/24,", "ip: ''"),
                              ("010.0.0.1/24", "ip:"), ("fd00::1", "needs a prefix length"), ("fd00::1/129", "ip: 'fd00::1/129'")],
                    invalidValues: [("10.0.0.0/24", "network address"), ("10.0.0.255/24", "broadcast address"),
                                    ("10.0.0.1/0", "prefix length 0"), ("127.0.0.1/8", "unicast"),
                                    ("10.0.0.1/24,10.0.0.1/16", "twice")]),
        "gateway": Cases(valid: [("10.77.0.1", "10.77.0.1"), ("", nil), ("fe80::1,10.77.0.1", "10.77.0.1,fe80::1"), ("fd00:77::1", "fd00:77::1")],
                         invalid: [("10.77.0.1/24", "gateway: '10.77.0.1/24'"), ("x", "gateway:"), ("fe80::1,fe80::2", "one per family"),
                                   ("10.0.0.1,10.0.0.2", "one per family"), ("fe80::1/64", "gateway: 'fe80::1/64'")],
                         invalidValues: [("0.0.0.0", "unicast"), ("239.1.1.1", "unicast"), ("ff02::2", "unicast"), ("fe80::", "unicast")]),
        "mtu": Cases(valid: [("68", "68"), ("9216", "9216"), ("1500", "1500")],
                     invalid: [("+9000", "mtu: '+9000'"), ("", "mtu: ''"), ("99999999999", "mtu:"), ("09000", "mtu:"), ("1.5", "mtu:")],
                     invalidValues: [("67", "68-9216"), ("9217", "out of range")]),
        "tcp-ports": Cases(valid: [("22", "22"), ("", nil),
                                   ("80,22,8000-8080", "22,80,8000-8080"), ("1", "1"), ("65535", "65535"), ("1-65535", "1-65535")],
                           invalid: [("0", "tcp-ports: '0'"), ("65536", "'65536'"), ("8080-8000", "'8080-8000'"), ("22,", "tcp-ports: ''"),
                                     ("http", "'http'")],
                           invalidValues: [("22,20-30", "overlap"), ("80,80", "overlap")]),
        "transport": Cases(valid: [("tcp", "tcp"), ("udp", "udp"), ("both", "both")],
                           invalid: [("TCP", "transport: 'TCP' is not tcp, udp or both"), ("", "transport: ''"), ("sctp", "'sctp'")]),
        "routing": Cases(valid: [("on", "on"), ("off", "off")], invalid: [("yes", "routing: 'yes' is not off or on")]),
        "tcp-buffer": Cases(valid: [("256K", "256K"), ("4096", "4K"), ("4M", "4M"), ("262144", "256K"), ("5000", "5000"), ("", nil)],
                            invalid: [("1.5M", "tcp-buffer: '1.5M'"), ("256KB", "'256KB'"), ("-1", "tcp-buffer:"), ("8G", "out of range")],
                            invalidValues: [("4095", "out of range"), ("257M", "out of range")]),
        "state": Cases(valid: [("up", "up"), ("down", "down")], invalid: [("off", "state: 'off' is not up or down")]),
        "maxbw": Cases(valid: [("100M", "100M"), ("1G", "1G"), ("1.5G", "1.5G"), ("100", "100M"), ("800k", "800K"),
                               ("1000K", "1M"), ("1K", "1K"), ("1T", "1T"), ("2.125M", "2.125M")],
                       invalid: [("10Q", "maxbw: '10Q' is not a bandwidth (e.g. 100M, 1G)"), ("", "maxbw: ''"), ("-1M", "maxbw:"),
                                 ("1.0001G", "maxbw:"), ("M", "maxbw: 'M'"), ("99999999999999999999G", "maxbw:")],
                       invalidValues: [("2T", "out of range"), ("0.5K", "out of range")]),
        "priority": Cases(valid: [("low", "low"), ("medium", "medium"), ("high", "high")],
                          invalid: [("urgent", "priority: 'urgent' is not low, medium or high")]),
        "cpus": Cases(valid: [("0", "0"), ("3,1,2", "1-3"), ("0,2-3", "0,2,3"), ("0-3,6", "0-3,6"), ("", nil), ("4095", "4095")],
                      invalid: [("a", "cpus: 'a'"), ("3-1", "cpus: '3-1'"), ("1,1", "CPU 1 is given twice"), ("0-2,1", "twice"),
                                ("4096", "cpus: '4096'"), ("-1", "cpus:")]),
        "protection": Cases(valid: [("mac-nospoof", "mac-nospoof"), ("ip-nospoof,mac-nospoof", "mac-nospoof,ip-nospoof"),
                                    ("mac-nospoof,ip-nospoof,dhcp-nospoof,restricted", "mac-nospoof,ip-nospoof,dhcp-nospoof,restricted"),
                                    ("none", "none"), ("restricted", "restricted")],
                            invalid: [("foo", "protection: 'foo'"), ("mac-nospoof,mac-nospoof", "'mac-nospoof'"), ("", "protection: ''"),
                                      ("none,mac-nospoof", "'none'")]),
        "allowed-ips": Cases(valid: [("10.0.0.1", "10.0.0.1"), ("10.0.0.1/32", "10.0.0.1"), ("10.0.1.0/24,10.0.0.5", "10.0.1.0/24,10.0.0.5"),
                                     ("0.0.0.0/0", "0.0.0.0/0"), ("", nil)],
                             invalid: [("10.0.0.1/24", "has host bits set (did you mean 10.0.0.0/24?)"), ("10.0.0", "allowed-ips: '10.0.0'"),
                                       ("10.0.0.0/33", "allowed-ips:")],
                             invalidValues: [("10.0.0.1,10.0.0.1", "twice")]),
        "denied-requests": Cases(valid: [("drop", "drop"), ("reply", "reply")],
                                 invalid: [("nak", "denied-requests: 'nak' is not drop or reply")]),
        "dhcp": Cases(valid: [("off", "off"), ("on", "on")], invalid: [("yes", "dhcp: 'yes' is not off or on")]),
        "dhcp-lease": Cases(valid: [("60", "60"), ("86400", "86400")],
                            invalid: [("1h", "dhcp-lease: '1h' is not a number of seconds")],
                            invalidValues: [("59", "dhcp-lease: 59 s is out of range")]),
        "ra-guard": Cases(valid: [("on", "on"), ("off", "off")], invalid: [("no", "ra-guard: 'no' is not on or off")]),
        "ipv6-ra": Cases(valid: [("off", "off"), ("slaac", "slaac"), ("managed", "managed")],
                         invalid: [("on", "ipv6-ra: 'on' is not off, slaac or managed")]),
        "index": Cases(valid: [], invalid: [("3", "index: is assigned by the database")]),
    ]

    func base() -> VNICRecord {
        VNICRecord(name: "vm1", link: "uplink0", port: "vm1p", mac: MACAddress("02:00:00:00:01:01")!,
                   ips: [IPv4Interface("10.77.0.11/24")!], gateway: IPv4Address("10.77.0.1"))
    }

    func testEveryRowHasCases() {
        XCTAssertEqual(Set(cases.keys), Set(VNICParameter.allCases.map(\.rawValue)), "a row without test cases, or a case without a row")
        for (name, c) in cases where name != "index" {
            XCTAssertFalse(c.valid.isEmpty, "\(name): no valid values")
            XCTAssertFalse(c.invalid.isEmpty, "\(name): no invalid values")
        }
    }

    func testValidValuesParseAndPrintBack() throws {
        for p in VNICParameter.allCases {
            for (input, canonical) in cases[p.rawValue]?.valid ?? [] {
                var r = base()
                try p.parse(input, into: &r)
                XCTAssertNoThrow(try r.validate(), "\(p.rawValue)=\(input)")
                XCTAssertEqual(p.text(of: r), canonical, "\(p.rawValue)=\(input)")
                // The printed form parses to the same record.
                if let canonical {
                    var again = base()
                    try p.parse(canonical, into: &again)
                    XCTAssertEqual(again, r, "\(p.rawValue): '\(canonical)' does not read back")
                }
            }
        }
    }

    func testInvalidValuesAreUsageErrorsNamingTheToken() {
        for p in VNICParameter.allCases {
            for (input, fragment) in cases[p.rawValue]?.invalid ?? [] {
                var r = base()
                assertVnicError(try p.parse(input, into: &r), exitCode: 2, fragment)
            }
            for (input, fragment) in cases[p.rawValue]?.invalidValues ?? [] {
                var r = base()
                do {
                    try p.parse(input, into: &r)
                } catch {
                    XCTFail("\(p.rawValue)=\(input) should parse (it fails validation): \(error)")
                    continue
                }
                assertVnicError(try r.validate(), exitCode: 2, "\(p.rawValue):", fragment)
            }
        }
    }

    func testRowAttributes() {
        XCTAssertEqual(VNICParameter.properties.map(\.rawValue), ["maxbw", "priority", "cpus", "protection", "allowed-ips", "denied-requests", "dhcp", "dhcp-lease", "ra-guard", "ipv6-ra"])
        XCTAssertEqual(VNICParameter.parameters.map(\.rawValue),
                       ["mac", "ip", "gateway", "mtu", "tcp-ports", "transport", "routing", "tcp-buffer", "state"])
        XCTAssertEqual(VNICParameter.policyParameters.map(\.rawValue),
                       ["mac", "ip", "gateway", "mtu", "tcp-ports", "transport", "routing", "tcp-buffer"])
        XCTAssertTrue(VNICParameter.properties.allSatisfy { !$0.vmMayChange }, "link properties are admin-only")
        XCTAssertEqual(VNICParameter.allCases.filter(\.affectsDataplane).map(\.rawValue),
                       ["mac", "ip", "mtu", "transport", "state", "maxbw", "priority", "cpus", "protection", "allowed-ips", "dhcp", "ra-guard", "ipv6-ra"])
        XCTAssertEqual(VNICParameter.protection.defaultText, "mac-nospoof")
        XCTAssertEqual(VNICParameter.priority.defaultText, "high")
        XCTAssertNil(VNICParameter.maxbw.defaultText)
        XCTAssertEqual(VNICParameter.mtu.defaultText, "1500")
        XCTAssertEqual(VNICParameter.transport.defaultText, "both")
        XCTAssertEqual(VNICParameter.priority.possible, "low,medium,high")
        XCTAssertEqual(VNICParameter(rawValue: "allowed-ips"), .allowedIPs)
        XCTAssertNil(VNICParameter(rawValue: "allowed_ips"))
        XCTAssertEqual(VNICParameter(tag: 14), .maxbw)
        XCTAssertFalse(VNICParameter.mac.isCreateProperty)
        XCTAssertTrue(VNICParameter.maxbw.isCreateProperty)
    }

    func testDefaultsOfANewRecordAndReset() {
        var r = base()
        XCTAssertEqual(r.protection, [.macNospoof], "mac-nospoof is on by default")
        XCTAssertEqual(r.priority, .high)
        XCTAssertNil(r.maxbw)
        XCTAssertEqual(r.cpus, [])
        XCTAssertEqual(r.allowedIPs, [])
        XCTAssertEqual(r.state, .up)
        XCTAssertEqual(r.transport, .both)
        XCTAssertEqual(r.policy, VNICPolicy())
        XCTAssertEqual(r.deniedRequests, .drop, "denied requests are dropped by default (the seed's behaviour)")
        r.deniedRequests = .reply; r.dhcp = .on; r.dhcpLease = 120; r.raGuard = .off
        r.maxbw = 5_000_000; r.priority = .low; r.cpus = [1]; r.protection = []; r.allowedIPs = [IPv4CIDR("10.0.0.0/8")!]
        r.mtu = 9000; r.tcpBuffer = 65536
        for p in VNICParameter.allCases where p.kind != .identity { p.reset(&r) }
        var expected = base()
        expected.gateway = nil; expected.ips = []
        XCTAssertEqual(r, expected, "reset sets every parameter and property to its default")
        XCTAssertEqual(r.name, "vm1", "identity fields stay")
    }

    func testEffectiveAllowedIPs() {
        var r = base()
        XCTAssertEqual(r.effectiveAllowedIPs, [IPv4CIDR("10.77.0.11")!], "no allowed-ips: the VNIC's own addresses")
        r.allowedIPs = [IPv4CIDR("10.77.1.0/24")!]
        XCTAssertEqual(r.effectiveAllowedIPs, [IPv4CIDR("10.77.1.0/24")!])
    }

    /// A record with every field away from its default, through the database and back.
    func fullRecord(_ n: Int = 1) throws -> VNICRecord {
        var r = sampleRecord(n)
        let p: [(VNICParameter, String)] = [
            (.mac, "02:00:00:00:99:01"), (.ip, "10.77.99.11/24,10.78.0.5/16,fd00:77::11/64"), (.gateway, "10.77.0.1,fe80::1"), (.mtu, "9000"), (.tcpPorts, "22,8000-8080"), (.transport, "tcp"), (.routing, "on"),
            (.tcpBuffer, "4M"), (.state, "down"), (.maxbw, "1.5G"), (.priority, "low"), (.cpus, "0,2-3"),
            (.protection, "mac-nospoof,ip-nospoof,dhcp-nospoof,restricted"), (.allowedIPs, "10.77.0.11,10.77.1.0/24,fd00:77::/64"),
            (.deniedRequests, "reply"), (.dhcp, "on"), (.dhcpLease, "600"), (.raGuard, "off"), (.ipv6RA, "slaac"),
        ]
        for (param, value) in p { try param.parse(value, into: &r) }
        r.policy[.ip] = try VNICParameter.ip.parsePolicy("10.77.0.20-10.77.0.29,10.77.1.0/24")
        r.policy[.mtu] = .any
        r.policy[.mac] = try VNICParameter.mac.parsePolicy("02:00:00:00:01:00-02:00:00:00:01:ff")
        return r
    }

    func testEveryFieldRoundTripsThroughTheDatabase() throws {
        let dir = try makeTemporaryDirectory(self)
        let expected: VNICRecord
        do {
            let store = try ConfigStore.open(path: dir + "/vnic.db", create: true)
            expected = try store.create(try fullRecord())
            XCTAssertEqual(try store.vnic(named: expected.name), expected)
        }
        let reopened = try ConfigStore.open(path: dir + "/vnic.db", create: false)
        let got = try XCTUnwrap(try reopened.vnic(named: expected.name))
        XCTAssertEqual(got, expected)
        for p in VNICParameter.allCases {
            XCTAssertEqual(p.text(of: got), p.text(of: expected), p.rawValue)
            XCTAssertNotEqual(p.text(of: got), p.defaultText, "\(p.rawValue) should be away from its default in this test")
        }
        XCTAssertEqual(got.policy.text(.ip), "10.77.0.20-10.77.0.29,10.77.1.0/24")
        XCTAssertEqual(got.policy.text(.mtu), "any")
        XCTAssertEqual(got.policy.text(.gateway), "deny")
        XCTAssertEqual(try reopened.consistencyProblems(), [])
    }

    func testEveryParameterChangesThroughAnUpdate() throws {
        let dir = try makeTemporaryDirectory(self)
        let store = try ConfigStore.open(path: dir + "/vnic.db", create: true)
        try store.create(sampleRecord(1))
        let target = try fullRecord()
        var generation = try store.generation()
        for p in VNICParameter.allCases where p.isSettable {
            let value = try XCTUnwrap(p.text(of: target))
            try store.update { (tx) throws(VnicError) in
                try tx.update(name: target.name, reason: "test") { (r) throws(VnicError) in try p.parse(value, into: &r) }
            }
            XCTAssertEqual(try store.generation(), generation + 1, "\(p.rawValue): one commit, one generation")
            generation += 1
            XCTAssertEqual(p.text(of: try XCTUnwrap(try store.vnic(named: target.name))), value, p.rawValue)
            let last = try XCTUnwrap(try store.auditEntries().last)
            XCTAssertEqual(last.parameter, p.rawValue)
            XCTAssertEqual(last.new, value)
            XCTAssertEqual(last.origin, .host)
            XCTAssertEqual(last.verdict, .applied)
        }
        // An invalid value changes nothing.
        assertVnicError(try store.update { (tx) throws(VnicError) in
            try tx.update(name: target.name, reason: "test") { (r) throws(VnicError) in try VNICParameter.mtu.parse("20", into: &r) }
        }, exitCode: 2, "mtu:")
        XCTAssertEqual(try store.generation(), generation)
    }

    /// The VM may hold exactly VnicCore's GuestParameter list (what the guest agent knows), each with a policy domain.
    func testPolicyParametersAreTheGuestsList() {
        XCTAssertEqual(Set(VNICParameter.policyParameters.map(\.rawValue)), Set(GuestParameter.allCases.map(\.rawValue)))
        XCTAssertNil(VNICParameter.state.policyDomain, "a choice row the guest does not hold has no policy")
        XCTAssertNotNil(VNICParameter.transport.policyDomain)
    }
}

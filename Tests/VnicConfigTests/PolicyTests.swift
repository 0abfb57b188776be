// The VM's change policy: parsing (deny, any, value sets of values, ranges,
// CIDRs, lists; wrong types), matching with its edges, and VM requests
// through the store (applied and audited, or refused and audited).
import Foundation
import XCTest
@testable import VnicConfig
import VnicCore

final class PolicyTests: XCTestCase {
    func rule(_ p: VNICParameter, _ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> PolicyRule {
        try p.parsePolicy(text)
    }

    /// Whether a VNIC whose `p` is `value` passes `policy` for `p`.
    func allows(_ p: VNICParameter, _ policy: String, _ value: String, file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        var r = sampleRecord(1)
        r.policy[p] = try p.parsePolicy(policy)
        try p.parse(value, into: &r)
        return r.policy.allows(p, in: r)
    }

    func testDenyIsTheDefaultAndDeniesEverything() throws {
        let r = sampleRecord(1)
        for p in VNICParameter.policyParameters {
            XCTAssertEqual(r.policy[p], .deny)
            XCTAssertFalse(r.policy.allows(p, in: r), "\(p.rawValue): deny refuses even the current value")
            XCTAssertEqual(r.policy.text(p), "deny")
        }
        XCTAssertFalse(try allows(.mtu, "deny", "1500"))
    }

    func testAnyAllowsEveryValidValue() throws {
        XCTAssertTrue(try allows(.mtu, "any", "68"))
        XCTAssertTrue(try allows(.mtu, "any", "9216"))
        XCTAssertTrue(try allows(.ip, "any", "192.168.7.7/24"))
        XCTAssertTrue(try allows(.mac, "any", "02:aa:bb:cc:dd:ee"))
        XCTAssertTrue(try allows(.transport, "any", "udp"))
    }

    func testRangesIncludeBothEnds() throws {
        XCTAssertTrue(try allows(.mtu, "1280-9000", "1280"))
        XCTAssertTrue(try allows(.mtu, "1280-9000", "9000"))
        XCTAssertFalse(try allows(.mtu, "1280-9000", "1279"))
        XCTAssertFalse(try allows(.mtu, "1280-9000", "9001"))
        XCTAssertTrue(try allows(.ip, "10.0.0.20-10.0.0.29", "10.0.0.20/24"))
        XCTAssertTrue(try allows(.ip, "10.0.0.20-10.0.0.29", "10.0.0.29/24"))
        XCTAssertFalse(try allows(.ip, "10.0.0.20-10.0.0.29", "10.0.0.19/24"))
        XCTAssertFalse(try allows(.ip, "10.0.0.20-10.0.0.29", "10.0.0.30/24"))
        XCTAssertTrue(try allows(.tcpBuffer, "64K-4M", "64K"))
        XCTAssertTrue(try allows(.tcpBuffer, "64K-4M", "4M"))
        XCTAssertFalse(try allows(.tcpBuffer, "64K-4M", "4194305"))
        XCTAssertFalse(try allows(.tcpBuffer, "64K-4M", "65535"))
        XCTAssertTrue(try allows(.mtu, "1500-1500", "1500"), "a one-value range")
    }

    func testCIDRs() throws {
        XCTAssertTrue(try allows(.ip, "10.0.1.0/24", "10.0.1.1/24"))
        XCTAssertTrue(try allows(.ip, "10.0.1.0/24", "10.0.1.254/24"))
        XCTAssertFalse(try allows(.ip, "10.0.1.0/24", "10.0.2.1/24"))
        XCTAssertFalse(try allows(.ip, "10.0.1.0/24", "10.0.0.254/24"))
        // /32: exactly one address.
        XCTAssertTrue(try allows(.ip, "10.0.1.5/32", "10.0.1.5/24"))
        XCTAssertFalse(try allows(.ip, "10.0.1.5/32", "10.0.1.6/24"))
        XCTAssertTrue(try allows(.gateway, "10.0.1.5/32", "10.0.1.5"))
        // /0: every address.
        XCTAssertTrue(try allows(.ip, "0.0.0.0/0", "1.2.3.4/8"))
        XCTAssertTrue(try allows(.gateway, "0.0.0.0/0", "223.255.255.254"))
        // The prefix length of the requested interface is not constrained, only its address.
        XCTAssertTrue(try allows(.ip, "10.0.1.0/24", "10.0.1.7/8"))
    }

    func testListsAndOverlaps() throws {
        let set = "10.0.0.5,10.0.0.20-10.0.0.29,10.0.1.0/24"
        XCTAssertTrue(try allows(.ip, set, "10.0.0.5/24"))
        XCTAssertTrue(try allows(.ip, set, "10.0.0.25/24,10.0.1.9/24"), "every address of the list inside")
        XCTAssertFalse(try allows(.ip, set, "10.0.0.25/24,10.0.2.9/24"), "one address outside refuses the list")
        XCTAssertFalse(try allows(.ip, set, "10.0.0.6/24"))
        XCTAssertTrue(try allows(.ip, set, ""), "clearing the list sets nothing outside")
        // Overlapping and adjacent items count as their union.
        XCTAssertTrue(try allows(.tcpPorts, "8000-8100,8050-9000", "8000-9000"))
        XCTAssertTrue(try allows(.tcpPorts, "8000-8099,8100-9000", "8090-8110"), "adjacent ranges join")
        XCTAssertFalse(try allows(.tcpPorts, "8000-8098,8100-9000", "8090-8110"), "8099 is missing")
        XCTAssertTrue(try allows(.tcpPorts, "22,80,443,8000-8080", "22,443,8000-8010"))
        XCTAssertFalse(try allows(.tcpPorts, "22,80,443,8000-8080", "22,8000-8081"))
        XCTAssertTrue(try allows(.mtu, "1500,9000,1280-1400", "1400"))
        XCTAssertFalse(try allows(.mtu, "1500,9000,1280-1400", "1401"))
        XCTAssertTrue(try allows(.mtu, "1280-9000,1500", "1500"), "a value inside a range of the same set")
        // Choices.
        XCTAssertTrue(try allows(.transport, "tcp,both", "both"))
        XCTAssertFalse(try allows(.transport, "tcp,both", "udp"))
        XCTAssertTrue(try allows(.routing, "off", "off"))
        XCTAssertFalse(try allows(.routing, "off", "on"))
        // MACs, also written with '-'.
        XCTAssertTrue(try allows(.mac, "02:00:00:00:01:00-02:00:00:00:01:ff", "02:00:00:00:01:80"))
        XCTAssertFalse(try allows(.mac, "02:00:00:00:01:00-02:00:00:00:01:ff", "02:00:00:00:02:00"))
        XCTAssertTrue(try allows(.mac, "02-00-00-00-01-00-02-00-00-00-01-ff", "02:00:00:00:01:ff"))
        XCTAssertTrue(try allows(.mac, "02:00:00:00:01:01,02:00:00:00:01:03", "02:00:00:00:01:03"))
        XCTAssertFalse(try allows(.mac, "02:00:00:00:01:01,02:00:00:00:01:03", "02:00:00:00:01:02"))
        // Unset optional values set nothing outside a value set.
        XCTAssertTrue(try allows(.gateway, "10.0.0.1", ""))
        XCTAssertTrue(try allows(.tcpBuffer, "64K-4M", ""))
    }

    func testPoliciesPrintAsWrittenAndReadBack() throws {
        for (p, text) in [(VNICParameter.ip, "10.0.0.5,10.0.0.20-10.0.0.29,10.0.1.0/24,10.0.2.1/32,0.0.0.0/0"),
                          (.mtu, "1280-9000,1500"), (.tcpBuffer, "64K-4M,5000"), (.tcpPorts, "22,8000-8080"),
                          (.mac, "02:00:00:00:01:00-02:00:00:00:01:ff"), (.transport, "tcp,both"), (.gateway, "any"),
                          (.routing, "deny")] {
            let r = try p.parsePolicy(text)
            XCTAssertEqual(p.policyDomain?.text(of: r), text, p.rawValue)
            XCTAssertEqual(try p.parsePolicy(text), r)
            // And through the record codec.
            var rec = sampleRecord(1)
            rec.policy[p] = r
            XCTAssertEqual(try VNICRecordCodec.decode(VNICRecordCodec.encode(rec)).policy, rec.policy, p.rawValue)
        }
    }

    func testBadPoliciesNameTheToken() {
        // Wrong type for the parameter.
        assertVnicError(try VNICParameter.mtu.parsePolicy("10.0.0.1"), exitCode: 2, "mtu: '10.0.0.1' is not a number or range")
        assertVnicError(try VNICParameter.ip.parsePolicy("1280-9000"), exitCode: 2, "ip: '1280-9000' is not an IPv4 or IPv6 address, range or CIDR")
        assertVnicError(try VNICParameter.mac.parsePolicy("10.0.0.0/24"), exitCode: 2, "mac: '10.0.0.0/24'")
        assertVnicError(try VNICParameter.transport.parsePolicy("fast"), exitCode: 2, "transport: 'fast' is not one of tcp, udp, both")
        assertVnicError(try VNICParameter.tcpPorts.parsePolicy("0-80"), exitCode: 2, "tcp-ports: '0-80'")
        assertVnicError(try VNICParameter.tcpPorts.parsePolicy("ssh"), exitCode: 2, "'ssh'")
        assertVnicError(try VNICParameter.mtu.parsePolicy("10-20"), exitCode: 2, "mtu: '10-20'", "68-9216")
        // Empty, reversed, host bits, keywords mixed with values.
        assertVnicError(try VNICParameter.mtu.parsePolicy(""), exitCode: 2, "mtu: the policy is empty")
        assertVnicError(try VNICParameter.mtu.parsePolicy("1500,"), exitCode: 2, "mtu: ''")
        assertVnicError(try VNICParameter.mtu.parsePolicy("9000-1280"), exitCode: 2, "'9000-1280'", "9000 is above 1280")
        assertVnicError(try VNICParameter.ip.parsePolicy("10.0.0.29-10.0.0.20"), exitCode: 2, "'10.0.0.29-10.0.0.20'")
        assertVnicError(try VNICParameter.ip.parsePolicy("10.0.1.1/24"), exitCode: 2, "host bits set (did you mean 10.0.1.0/24?)")
        assertVnicError(try VNICParameter.ip.parsePolicy("10.0.1.0/33"), exitCode: 2, "'10.0.1.0/33'")
        assertVnicError(try VNICParameter.mtu.parsePolicy("any,1500"), exitCode: 2, "'any' cannot be combined")
        assertVnicError(try VNICParameter.mtu.parsePolicy("1500,deny"), exitCode: 2, "'deny' cannot be combined")
        assertVnicError(try VNICParameter.mtu.parsePolicy((0..<300).map { String(1000 + $0) }.joined(separator: ",")),
                        exitCode: 2, "at most 256")
        // Fields the VM may never change.
        assertVnicError(try VNICParameter.maxbw.parsePolicy("any"), exitCode: 2, "maxbw: is a link property")
        assertVnicError(try VNICParameter.state.parsePolicy("any"), exitCode: 2, "state: is not changeable by the VM")
        assertVnicError(try VNICParameter.name.parsePolicy("any"), exitCode: 2, "name: is fixed at create-vnic")
    }

    func testMergeOfItems() {
        func item(_ a: UInt128, _ b: UInt128) -> PolicyItem { PolicyItem(lower: a, upper: b, form: .range) }
        XCTAssertEqual(PolicyRule.merge([item(5, 9), item(1, 3), item(4, 4), item(20, 30), item(25, 26)]), [1...9, 20...30])
        XCTAssertEqual(PolicyRule.merge([item(0, .max), item(5, 6)]), [0...UInt128.max], "no overflow at the top")
        XCTAssertEqual(PolicyRule.merge([]), [])
        XCTAssertFalse(PolicyRule.values([]).covers([1...1]))
        XCTAssertTrue(PolicyRule.values([]).covers([]))
    }

    // MARK: VM requests through the store

    func makeStore() throws -> (ConfigStore, VNICRecord) {
        let store = try ConfigStore.open(path: try makeTemporaryDirectory(self) + "/vnic.db", create: true)
        var r = sampleRecord(1)
        r.policy[.mtu] = try VNICParameter.mtu.parsePolicy("1280-9000")
        r.policy[.ip] = try VNICParameter.ip.parsePolicy("10.77.0.20-10.77.0.29")
        r.policy[.mac] = .any
        let stored = try store.create(r)
        try store.create(sampleRecord(2))
        return (store, stored)
    }

    func testAcceptedRequestIsAppliedAndAudited() throws {
        let (store, vnic) = try makeStore()
        let g = try store.generation()
        let outcome = try store.handleVMRequest(index: vnic.index, parameter: "mtu", value: "9000")
        XCTAssertTrue(outcome.accepted, outcome.entry.reason)
        XCTAssertEqual(outcome.record?.mtu, 9000)
        XCTAssertEqual(try store.vnic(named: vnic.name)?.mtu, 9000)
        XCTAssertEqual(try store.generation(), g + 1)
        let e = try XCTUnwrap(try store.auditEntries(vnic: vnic.name).last)
        XCTAssertEqual(e.origin, .vm)
        XCTAssertEqual(e.verdict, .accepted)
        XCTAssertEqual(e.parameter, "mtu")
        XCTAssertEqual(e.old, "1500")
        XCTAssertEqual(e.new, "9000")
        XCTAssertTrue(try store.handleVMRequest(index: vnic.index, parameter: "ip", value: "10.77.0.25/24").accepted)
    }

    func testDeniedRequestsChangeNothingButAreAudited() throws {
        let (store, vnic) = try makeStore()
        let other = try XCTUnwrap(try store.vnic(named: sampleRecord(2).name))
        let g = try store.generation()
        let before = try store.auditEntries().count
        let requests: [(String, String, String)] = [
            ("mtu", "9216", "does not allow"),                 // outside the range
            ("ip", "10.77.0.30/24", "does not allow"),         // one past the range
            ("gateway", "10.77.0.1", "does not allow"),        // deny (default)
            ("maxbw", "10G", "not changeable by the VM"),      // a link property
            ("state", "down", "not changeable by the VM"),
            ("mtu", "abc", "mtu: 'abc' is not a number"),      // invalid value
            ("mtu", "20", "out of range"),
            ("mac", "\(other.mac)", "already used by VNIC '\(other.name)'"),   // policy any, but taken
            ("colour", "blue", "unknown parameter"),
        ]
        for (p, v, why) in requests {
            let o = try store.handleVMRequest(index: vnic.index, parameter: p, value: v)
            XCTAssertFalse(o.accepted, "\(p)=\(v)")
            XCTAssertEqual(o.entry.verdict, .denied)
            XCTAssertTrue(o.entry.reason.contains(why), "\(p)=\(v): '\(o.entry.reason)' lacks '\(why)'")
        }
        let unknown = try store.handleVMRequest(index: 999, parameter: "mtu", value: "9000")
        XCTAssertFalse(unknown.accepted)
        XCTAssertNil(unknown.record)
        XCTAssertEqual(try store.vnic(named: vnic.name), vnic, "nothing changed")
        XCTAssertEqual(try store.generation(), g, "audit-only commits do not bump the generation")
        let entries = try store.auditEntries()
        XCTAssertEqual(entries.count, before + requests.count + 1)
        XCTAssertTrue(entries.suffix(requests.count + 1).allSatisfy { $0.origin == .vm && $0.verdict == .denied })
    }
}

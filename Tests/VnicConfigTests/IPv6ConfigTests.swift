// IPv6 in the database: the `ip` and `allowed-ips` rows take both families,
// policies take IPv6 values, records round-trip, the fast path reads the IPv6
// sources by the same rule as the record, and a schema 2 database migrates.
import Foundation
import XCTest
@testable import VnicConfig
import VnicCore

final class IPv6ConfigTests: XCTestCase {
    func testIPTakesBothFamiliesAndPrintsThemBack() throws {
        var r = sampleRecord(1)
        try VNICParameter.ip.parse("10.77.0.11/24,fd00:77::11/64,fd00:78::/64", into: &r)
        try r.validate()
        XCTAssertEqual(r.ips, [IPv4Interface("10.77.0.11/24")!])
        XCTAssertEqual(r.ips6, [IPv6Interface("fd00:77::11/64")!, IPv6Interface("fd00:78::/64")!])
        XCTAssertEqual(VNICParameter.ip.text(of: r), "10.77.0.11/24,fd00:77::11/64,fd00:78::/64")
        // ip-nospoof's sources: the fixed address, and the SLAAC address the MAC gives in the prefix.
        XCTAssertEqual(r.effectiveAllowedIPs6.map(\.description), ["fd00:77::11", "fd00:78::ff:fe01:1"])
        try VNICParameter.ip.parse("fd00:77::11/64", into: &r)
        XCTAssertEqual(r.ips, [], "an IPv6-only VNIC")
        try r.validate()
    }

    func testIPRefusesWhatNoVMMayOwnInOneLine() {
        var r = sampleRecord(1)
        func refuse(_ text: String, _ fragment: String) {
            assertVnicError(try { var c = r; try VNICParameter.ip.parse(text, into: &c); try c.validate() }(), exitCode: 2, "ip:", fragment)
        }
        refuse("fd00::11", "needs a prefix length")
        refuse("fd00::1::1/64", "is not an IPv6 address")
        refuse("fe80::5/64", "link-local")
        refuse("ff02::1/64", "not a unicast host")
        refuse("::1/128", "not a unicast host")
        refuse("fd00:77::/48", "subnet-router anycast")
        refuse("fd00:77::11/64,fd00:77::11/64", "given twice")
        refuse("fd00:77::/64,fd00:77::ff:fe01:1/64", "given twice")
        refuse("fd00::11/0", "prefix length 0")
        r.ips6 = []
    }

    func testAllowedIPsTakesIPv6NetworksPerFamily() throws {
        var r = sampleRecord(1)
        try VNICParameter.allowedIPs.parse("10.77.1.0/24,fd00:77::/64,fd00:99::5", into: &r)
        XCTAssertEqual(r.allowedIPs, [IPv4CIDR("10.77.1.0/24")!])
        XCTAssertEqual(r.allowedIPs6, [IPv6CIDR("fd00:77::/64")!, IPv6CIDR("fd00:99::5")!])
        XCTAssertEqual(VNICParameter.allowedIPs.text(of: r), "10.77.1.0/24,fd00:77::/64,fd00:99::5")
        assertVnicError(try VNICParameter.allowedIPs.parse("fd00:77::1/64", into: &r), exitCode: 2,
                        "allowed-ips: 'fd00:77::1/64' has host bits set", "fd00:77::/64")
        assertVnicError(try VNICParameter.allowedIPs.parse("fd00:::1", into: &r), exitCode: 2, "not an IPv6 address or CIDR")
        // Only IPv4 allowed-ips: the IPv6 sources stay the VNIC's own addresses.
        r.ips6 = [IPv6Interface("fd00:77::11/64")!]
        r.allowedIPs6 = []
        XCTAssertEqual(r.effectiveAllowedIPs6, [IPv6CIDR("fd00:77::11")!])
    }

    func testPolicyOnIPv6Values() throws {
        let rule = try VNICParameter.ip.parsePolicy("10.77.0.20-10.77.0.29,fd00:77::/64,fd00:88::10-fd00:88::1f")
        XCTAssertEqual(VNICParameter.ip.policyDomain?.text(of: rule), "10.77.0.20-10.77.0.29,fd00:77::/64,fd00:88::10-fd00:88::1f")
        var p = VNICPolicy()
        p[.ip] = rule
        var r = sampleRecord(1)
        func allowed(_ text: String) throws -> Bool {
            try VNICParameter.ip.parse(text, into: &r)
            return p.allows(.ip, in: r)
        }
        XCTAssertTrue(try allowed("fd00:77::21/64"))
        XCTAssertTrue(try allowed("10.77.0.21/24,fd00:88::1a/64"))
        XCTAssertTrue(try allowed("fd00:77::/64"), "the SLAAC address fd00:77::ff:fe01:1 is in the set")
        XCTAssertFalse(try allowed("fd00:88::20/64"))
        XCTAssertFalse(try allowed("fd00:99::1/64"))
        XCTAssertFalse(try allowed("10.77.0.21/24,fd00:99::1/64"), "every address must be allowed")
        // A policy's IPv6 values never cover IPv4 ones or the reverse.
        p[.ip] = try VNICParameter.ip.parsePolicy("2000::/3,fc00::/7")
        XCTAssertFalse(try allowed("10.77.0.21/24"))
        assertVnicError(try VNICParameter.ip.parsePolicy("10.0.0.1-fd00::1"), exitCode: 2, "two address families")
        assertVnicError(try VNICParameter.ip.parsePolicy("fd00::1/64"), exitCode: 2, "host bits set", "fd00::/64")
        assertVnicError(try VNICParameter.ip.parsePolicy("::5"), exitCode: 2, "ip: '::5'")
        // The gateway's policy takes both families too.
        p[.gateway] = try VNICParameter.gateway.parsePolicy("10.77.0.1,fe80::1")
        try VNICParameter.gateway.parse("10.77.0.1,fe80::1", into: &r)
        XCTAssertTrue(p.allows(.gateway, in: r))
        try VNICParameter.gateway.parse("fe80::2", into: &r)
        XCTAssertFalse(p.allows(.gateway, in: r))
    }

    func testRecordsRoundTripWithIPv6() throws {
        var r = sampleRecord(3)
        r.ips6 = [IPv6Interface("fd00:77::11/64")!, IPv6Interface("fd00:78::/64")!]
        r.allowedIPs6 = [IPv6CIDR("fd00:99::/48")!]
        r.allowedIPs = [IPv4CIDR("10.1.0.0/16")!]
        r.policy[.ip] = try VNICParameter.ip.parsePolicy("fd00:77::/64,10.77.0.20-10.77.0.29")
        r.policy[.mtu] = try VNICParameter.mtu.parsePolicy("1280-9000")
        let bytes = VNICRecordCodec.encode(r)
        XCTAssertEqual(Array(bytes[0..<2]), [3, 0], "format 3")
        XCTAssertEqual(try VNICRecordCodec.decode(bytes), r)
        // A policy of IPv4 values only keeps the 64-bit layout (rule 2).
        XCTAssertEqual(VNICRecordCodec.encodePolicy(try VNICParameter.ip.parsePolicy("10.0.0.1")).first, 2)
        XCTAssertEqual(VNICRecordCodec.encodePolicy(try VNICParameter.ip.parsePolicy("fd00::1")).first, 3)
        // A truncated IPv6 field is corrupt, not misread.
        var bad = bytes
        let at = try XCTUnwrap((0..<bad.count - 3).first { bad[$0] == 5 && bad[$0 + 1] == 0 && bad[$0 + 2] == 17 })
        bad[at + 2] = 9
        bad.removeSubrange(at + 4 + 9..<at + 4 + 17)
        assertVnicError(try VNICRecordCodec.decode(bad), exitCode: 1, "corrupt VNIC record", "ip")
    }

    func testFastPathReadsTheSameIPv6SourcesAsTheRecord() throws {
        let store = try ConfigStore.open(path: try makeTemporaryDirectory(self) + "/vnic.db", create: true)
        var a = sampleRecord(1)
        a.ips6 = [IPv6Interface("fd00:77::11/64")!, IPv6Interface("fd00:78::/64")!]
        var b = sampleRecord(2)
        b.ips6 = a.ips6.map { IPv6Interface(address: IPv6Address(hi: $0.address.hi, lo: $0.address.lo | 0x100), prefixLength: 64) }
        b.allowedIPs6 = [IPv6CIDR("fd00:99::/48")!, IPv6CIDR("fd00:77::1")!]
        let c = sampleRecord(3)
        let stored = try [a, b, c].map { try store.create($0) }
        let reader = try ConfigReader(store: store)
        try reader.beginBurst()
        defer { reader.endBurst() }
        for r in stored {
            let v = try XCTUnwrap(reader.vnic(index: r.index))
            var seen: [IPv6CIDR] = []
            v.forEachSource6 { hi, lo, len in seen.append(IPv6CIDR(network: IPv6Address(hi: hi, lo: lo), prefixLength: len)!) }
            // The rule, restated: its IPv6 allowed-ips, else its own addresses (a SLAAC prefix as its MAC's address).
            let expected = r.allowedIPs6.isEmpty ? r.ips6.map { IPv6CIDR(network: $0.address(for: r.mac), prefixLength: 128)! } : r.allowedIPs6
            XCTAssertEqual(seen, expected, r.name)
        }
        XCTAssertEqual(stored[0].effectiveAllowedIPs6.map(\.description), ["fd00:77::11", "fd00:78::ff:fe01:1"])
    }

    /// Writes the database back as the schema 2 build stored it: records in
    /// format 2 (no tag 23), schema version 2.
    func downgradeToSchema2(_ path: String) throws {
        let env = try LMDBEnvironment.open(path: path)
        try env.write { txn in
            let meta = try XCTUnwrap(try txn.openDatabase("meta", create: false))
            let vnics = try XCTUnwrap(try txn.openDatabase("vnics", create: false))
            var rewritten: [([UInt8], [UInt8])] = []
            try txn.forEach(in: vnics) { key, value in
                var out: [UInt8] = [2, 0]
                var o = 2
                while o < value.count {
                    let tag = UInt16(value[o]) | UInt16(value[o + 1]) << 8, n = Int(value[o + 2]) | Int(value[o + 3]) << 8
                    if tag != FieldTag.allowedIPs6 { out += value[o..<o + 4 + n] }
                    o += 4 + n
                }
                rewritten.append((Array(key), out))
                return true
            }
            for (k, v) in rewritten { try txn.put(vnics, key: k, value: v) }
            try txn.put(meta, key: Array("schema-version".utf8), value: [2, 0, 0, 0])
        }
    }

    func testSchema2DatabaseMigratesWithNothingLost() throws {
        let path = try makeTemporaryDirectory(self) + "/vnic.db"
        var before: [VNICRecord] = []
        var audit: [AuditEntry] = []
        var generation: UInt64 = 0
        do {
            let store = try ConfigStore.open(path: path, create: true)
            for n in 1...5 {
                var r = sampleRecord(n)
                r.protection = [.macNospoof, .ipNospoof]
                r.allowedIPs = n == 2 ? [IPv4CIDR("10.1.0.0/16")!] : []
                r.maxbw = n == 3 ? 100_000_000 : nil
                r.policy[.ip] = try VNICParameter.ip.parsePolicy("10.77.0.20-10.77.0.29,10.78.0.0/24")
                r.policy[.mtu] = try VNICParameter.mtu.parsePolicy("any")
                _ = try store.create(r)
            }
            _ = try store.handleVMRequest(index: 1, parameter: "ip", value: "10.77.0.21/16")
            _ = try store.handleVMRequest(index: 1, parameter: "ip", value: "10.99.0.1/16")
            _ = try store.delete(name: "vm1x4")
            before = try store.vnics()
            audit = try store.auditEntries()
            generation = try store.generation()
            XCTAssertEqual(audit.count, 8, "5 creates, 2 requests, 1 delete")
        }
        try downgradeToSchema2(path)
        let store = try ConfigStore.open(path: path, create: false)
        XCTAssertEqual(try store.storedSchemaVersion(), 3)
        XCTAssertEqual(try store.generation(), generation + 1, "the migration is one commit")
        XCTAssertEqual(try store.vnics(), before, "every VNIC, property and policy")
        XCTAssertEqual(try store.auditEntries(), audit, "every audit entry")
        XCTAssertEqual(try store.consistencyProblems(), [])
        for r in before {
            let raw = try XCTUnwrap(try store.environment.read { txn in try txn.get(store.tables.vnics, key: Schema.indexKey(r.index)).map(Array.init) })
            XCTAssertEqual(raw, VNICRecordCodec.encode(r), "\(r.name) rewritten in format 3")
        }
        // And it takes IPv6 now: an in-band request inside the policy, one outside.
        try store.update { (tx) throws(VnicError) in
            try tx.update(name: "vm1x2", reason: "test") { (r) throws(VnicError) in
                r.policy[.ip] = try VNICParameter.ip.parsePolicy("fd00:77::/64")
            }
        }
        let idx = try XCTUnwrap(try store.vnic(named: "vm1x2")?.index)
        XCTAssertEqual(try store.handleVMRequest(index: idx, parameter: "ip", value: "fd00:77::21/64").entry.verdict, .accepted)
        XCTAssertEqual(try store.vnic(named: "vm1x2")?.ips6, [IPv6Interface("fd00:77::21/64")!])
        let denied = try store.handleVMRequest(index: idx, parameter: "ip", value: "fd00:78::21/64").entry
        XCTAssertEqual(denied.verdict, .denied)
        XCTAssertTrue(denied.reason.contains("policy ip=fd00:77::/64 does not allow it"), denied.reason)
    }
}

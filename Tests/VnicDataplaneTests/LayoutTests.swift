// The shared header's structs as Swift imports them: sizes and offsets must match
// what the BPF program and the kernel see (bpf/vnic.shared.h).
import CVnicShim
@testable import VnicDataplane
import XCTest

final class LayoutTests: XCTestCase {
    func testSharedStructSizes() {
        XCTAssertEqual(MemoryLayout<vnic_mac_key>.size, 8)
        XCTAssertEqual(MemoryLayout<vnic_mac_entry>.size, 8)
        XCTAssertEqual(MemoryLayout<vnic_settings>.size, 8)
        XCTAssertEqual(MemoryLayout<vnic_counters>.size, 8 * (4 + Int(VNIC_DROP_REASON_MAX.rawValue)))
    }

    func testDropsOffsetMatchesHeader() {
        XCTAssertEqual(MemoryLayout<vnic_counters>.offset(of: \vnic_counters.drops), vnicCountersDropsOffset)
    }

    func testSpoofVerdictsAreDropReasons() {
        XCTAssertEqual(SpoofVerdict.spoofMAC.rawValue, VNIC_DROP_SPOOF_MAC.rawValue)
        XCTAssertEqual(SpoofVerdict.malformed.rawValue, VNIC_DROP_MALFORMED.rawValue)
        XCTAssertEqual(SpoofVerdict.spoofIP.rawValue, VNIC_DROP_SPOOF_IP.rawValue)
        XCTAssertEqual(SpoofVerdict.spoofARP.rawValue, VNIC_DROP_SPOOF_ARP.rawValue)
        XCTAssertEqual(SpoofVerdict.spoofIPv6.rawValue, VNIC_DROP_SPOOF_IPV6.rawValue)
        XCTAssertEqual(SpoofVerdict.spoofDHCP.rawValue, VNIC_DROP_SPOOF_DHCP.rawValue)
        XCTAssertEqual(SpoofVerdict.restricted.rawValue, VNIC_DROP_RESTRICTED.rawValue)
        XCTAssertEqual(SpoofVerdict.spoofND.rawValue, VNIC_DROP_SPOOF_ND.rawValue)
        XCTAssertEqual(SpoofVerdict.raGuard.rawValue, VNIC_DROP_RA_GUARD.rawValue)
        XCTAssertEqual(SpoofVerdict.fragment.rawValue, VNIC_DROP_FRAGMENT.rawValue)
        XCTAssertEqual(SpoofVerdict.uncheckable.rawValue, VNIC_DROP_UNCHECKABLE.rawValue)
        XCTAssertEqual(SpoofVerdict.spoofService.rawValue, VNIC_DROP_SPOOF_SERVICE.rawValue)
    }

    func testSpoofReasonsAreTheSpoofVerdicts() {
        XCTAssertEqual(Dataplane.spoofReasons, ["spoof-mac", "spoof-ip", "spoof-arp", "spoof-ipv6", "spoof-dhcp", "restricted",
                                                "spoof-nd", "ra-guard", "fragment", "uncheckable", "spoof-service"])
    }

    /// The names come from the header's lists: one per enum value, distinct, in
    /// the enums' order, and what `vnicadm show-stats` and the metrics print.
    func testCounterNamesComeFromTheHeader() {
        for names in [Dataplane.dropNames, Dataplane.xdpCounterNames] {
            XCTAssertFalse(names.contains(""))
            XCTAssertEqual(Set(names).count, names.count)
        }
        XCTAssertEqual(Dataplane.dropNames.count, Int(VNIC_DROP_REASON_MAX.rawValue))
        XCTAssertEqual(Dataplane.dropNames[Int(VNIC_DROP_SPOOF_MAC.rawValue)], "spoof-mac")
        XCTAssertEqual(Dataplane.dropNames[Int(VNIC_DROP_NO_CONFIG.rawValue)], "no-config")
        XCTAssertEqual(Dataplane.xdpCounterNames, ["redirected", "flooded", "unknown-dst", "no-socket", "malformed",
                                                   "bad-queue", "port-redirected", "port-unknown"])
        XCTAssertEqual(String(cString: vnic_drop_name(VNIC_DROP_REASON_MAX.rawValue)), "", "past the end")
    }
}

import XCTest
@testable import VnicCore

/// The dataplane's reconcile plan (VNICPlan): running and desired VNICs in,
/// updates, removals and additions out, before anything is touched.
final class VNICPlanTests: XCTestCase {
    func spec(_ name: String, _ index: UInt32, mac: UInt8? = nil, port: String? = nil, priority: Priority = .default) -> VNICSpec {
        var s = VNICSpec(name: name, index: index, mac: MACAddress(bytes: (2, 0, 0, 0, 1, mac ?? UInt8(index))), port: port ?? "\(name)p")
        s.priority = priority
        return s
    }

    func testNothingChangedIsNothingToDo() {
        let vnics = [spec("a", 1), spec("b", 2)]
        XCTAssertTrue(VNICPlan(running: vnics, desired: vnics.reversed()).isEmpty)
    }

    func testNewVNICsAreAddedByIndexAndGoneOnesRemoved() {
        let plan = VNICPlan(running: [spec("a", 1), spec("gone", 9)], desired: [spec("c", 3), spec("a", 1), spec("b", 2)])
        XCTAssertEqual(plan.actions, [.remove(spec("gone", 9), why: .removed), .add(spec("b", 2)), .add(spec("c", 3))])
        XCTAssertEqual(plan.desired.map(\.name), ["c", "a", "b"])
    }

    func testAMACOrPriorityChangeIsAppliedInPlace() {
        let plan = VNICPlan(running: [spec("a", 1), spec("b", 2)],
                            desired: [spec("a", 1, mac: 0x21), spec("b", 2, priority: .low)])
        XCTAssertEqual(plan.actions, [.update(from: spec("a", 1), to: spec("a", 1, mac: 0x21)),
                                      .update(from: spec("b", 2), to: spec("b", 2, priority: .low))])
        XCTAssertEqual(plan.actions.map(\.description),
                       ["vnic a mac 02:00:00:00:01:01 -> 02:00:00:00:01:21", "vnic b priority high -> low"])
    }

    func testANewPortOrIndexIsRemovedThenAddedAgain() {
        let plan = VNICPlan(running: [spec("a", 1), spec("b", 2)], desired: [spec("a", 1, port: "other"), spec("b", 5, mac: 2)])
        XCTAssertEqual(plan.actions, [.remove(spec("a", 1), why: .changed), .remove(spec("b", 2), why: .changed),
                                      .add(spec("a", 1, port: "other")), .add(spec("b", 5, mac: 2))],
                       "every removal before any addition: a re-added VNIC's slot is free by then")
    }

    func testReattachTakesDownAndBringsUpWhateverTheSpec() {
        let plan = VNICPlan(running: [spec("a", 1), spec("b", 2)], desired: [spec("a", 1, mac: 0x21)],
                            reattach: ["a": "port ap recreated", "b": "port bp removed"])
        XCTAssertEqual(plan.actions, [.remove(spec("a", 1), why: .reattach("port ap recreated")),
                                      .remove(spec("b", 2), why: .removed), .add(spec("a", 1, mac: 0x21))],
                       "a: re-attached with its new spec, not updated in place; b: not desired, so removed")
        XCTAssertEqual(plan.actions[0].description, "vnic a port ap recreated: re-attaching")
    }

    func testADesiredVNICThatIsNotRunningIsAddedAgainAndNamesAreUnique() {
        let plan = VNICPlan(running: [], desired: [spec("a", 1), spec("a", 7)])
        XCTAssertEqual(plan.actions, [.add(spec("a", 1))], "the first of a name wins")
        XCTAssertEqual(plan.desired, [spec("a", 1)])
    }
}

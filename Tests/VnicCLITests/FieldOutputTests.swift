// The CLI's three output forms (human columns, -p -o lines, JSON).
import Foundation
import VnicCLI
import XCTest

final class FieldOutputTests: XCTestCase {
    func testParseableEscapesOnlyWithSeveralFields() {
        XCTAssertEqual(FieldOutput.parseable(rows: [["vm1", "02:00:00:00:01:01", nil, "a\\b"]]),
                       ["vm1:02\\:00\\:00\\:00\\:01\\:01::a\\\\b"])
        XCTAssertEqual(FieldOutput.parseable(rows: [["02:00:00:00:01:01"]]), ["02:00:00:00:01:01"])
        XCTAssertEqual(FieldOutput.parseable(rows: [[nil]]), [""])
        XCTAssertEqual(FieldOutput.parseable(rows: []), [])
    }

    func testTable() {
        XCTAssertEqual(FieldOutput.table(fields: ["name", "port", "mtu"], rows: [["vm1", nil, "1500"], ["longname", "p", ""]]),
                       ["NAME      PORT  MTU",
                        "vm1       --    1500",
                        "longname  p     --"])
        XCTAssertEqual(FieldOutput.table(fields: ["name"], rows: []), ["NAME"])
    }

    func testJSON() {
        let v = JSONValue.array([.object([("name", .string("a\"b\\c\n\u{01}")), ("mtu", .number(1500)), ("port", .null),
                                          ("ip", .array([.string("10.0.0.1/24")])), ("up", .bool(true))])])
        XCTAssertEqual(v.text, #"[{"name":"a\"b\\c\n\u0001","mtu":1500,"port":null,"ip":["10.0.0.1/24"],"up":true}]"#)
        XCTAssertEqual(JSONValue.array([]).text, "[]")
        // It is JSON that Foundation reads back.
        let parsed = try? JSONSerialization.jsonObject(with: Data(v.text.utf8)) as? [[String: Any]]
        XCTAssertEqual(parsed?.first?["name"] as? String, "a\"b\\c\n\u{01}")
    }
}

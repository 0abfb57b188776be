// What `make install` ships besides the binaries: man pages and shell completions
// generated from the argument parsers (scripts/gen-docs.sh against the built
// binaries), and the systemd unit, whose capabilities must be the ones
// PrivilegeTests shows to be enough (and each needed).
import Foundation
import VnicLabKit
import XCTest

final class InstallTests: XCTestCase {
    static let tools = ["vnicd", "vnicadm", "vnic-guest", "vnic-pktgen", "vnic-lab"]
    /// vnicadm's subcommands in the contract (DESIGN.md), plus batch.
    static let vnicadmSubcommands = ["create-vnic", "delete-vnic", "show-vnic", "set-linkprop", "reset-linkprop",
                                     "show-linkprop", "set-policy", "show-policy", "set", "show-stats",
                                     "show-events", "batch"]

    private func generate() throws -> URL {
        for tool in ["bash", "python3"] where Command.find(tool) == nil {
            throw TestEnvironment.unavailable("\(tool) not found (scripts/gen-docs.sh needs it)")
        }
        for tool in Self.tools { _ = try TestEnvironment.binary(tool) }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vnic-docs-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: out) }
        let script = TestEnvironment.packageRoot.appendingPathComponent("scripts/gen-docs.sh").path
        let r = try Command.run(["bash", script, TestEnvironment.binDirectory, out.path], timeout: .seconds(120))
        guard r.succeeded else { throw FixtureError(message: "gen-docs.sh: \(r.diagnostic)") }
        return out
    }

    private func read(_ dir: URL, _ path: String) throws -> String {
        try String(contentsOf: dir.appendingPathComponent(path), encoding: .utf8)
    }

    func testManPagesComeFromTheParsers() throws {
        let out = try generate()
        for tool in Self.tools {
            let page = try read(out, "man8/\(tool).8")
            XCTAssertTrue(page.contains(".TH \"\(tool.uppercased())\" \"8\""), "\(tool).8 has no title line")
            XCTAssertTrue(page.contains(".SH SYNOPSIS"), "\(tool).8 has no synopsis")
        }
        let vnicadm = try read(out, "man8/vnicadm.8")
        for sub in Self.vnicadmSubcommands {
            // roff escapes the hyphens: "show\-stats".
            let escaped = sub.replacingOccurrences(of: "-", with: "\\-")
            XCTAssertTrue(vnicadm.contains(".SS \(escaped)\n"), "vnicadm.8 documents no \(sub)")
        }
        let vnicd = try read(out, "man8/vnicd.8")
        for option in ["--db", "--link", "--queues", "--cores", "--xdp-mode", "--bpf-object"] {
            XCTAssertTrue(vnicd.contains(option.replacingOccurrences(of: "-", with: "\\-")), "vnicd.8 lacks \(option)")
        }
        // Formats without warnings where groff is there.
        if let groff = Command.find("groff") {
            let r = try Command.run([groff, "-man", "-Tutf8", "-ww", "-z", out.appendingPathComponent("man8/vnicadm.8").path])
            XCTAssertTrue(r.succeeded && r.stderr.isEmpty, "groff: \(r.diagnostic)")
        }
    }

    func testCompletionsComeFromTheParsers() throws {
        let out = try generate()
        for tool in Self.tools {
            for path in ["bash/\(tool)", "zsh/_\(tool)", "fish/\(tool).fish"] {
                XCTAssertFalse(try read(out, path).isEmpty, "\(path) is empty")
            }
        }
        let bash = try read(out, "bash/vnicadm")
        for sub in Self.vnicadmSubcommands {
            XCTAssertTrue(bash.contains(sub), "the bash completion of vnicadm does not offer \(sub)")
        }
        XCTAssertTrue(bash.contains("complete -o filenames -F _vnicadm vnicadm") || bash.contains("-F _vnicadm vnicadm"),
                      "the bash completion does not register itself for vnicadm")
        // It completes: "vnicadm show-<TAB>" offers the show subcommands (bash-completion
        // turns extglob on; so does this).
        let script = out.appendingPathComponent("bash/vnicadm").path
        let r = try Command.run(["bash", "-c", """
            shopt -s extglob; source '\(script)'
            COMP_WORDS=(vnicadm show-); COMP_CWORD=1; COMP_LINE='vnicadm show-'; COMP_POINT=${#COMP_LINE}
            _vnicadm vnicadm show- vnicadm; echo "${COMPREPLY[@]}"
            """])
        XCTAssertTrue(r.succeeded, "running the bash completion: \(r.diagnostic)")
        XCTAssertEqual(Set(r.stdout.split(whereSeparator: \.isWhitespace).map(String.init)),
                       Set(Self.vnicadmSubcommands.filter { $0.hasPrefix("show-") }), "vnicadm show-<TAB>")
        XCTAssertTrue(try read(out, "zsh/_vnicadm").contains("show-stats"))
        XCTAssertTrue(try read(out, "fish/vnicadm.fish").contains("create-vnic"))
    }

    /// The unit grants exactly the capabilities PrivilegeTests runs vnicd with, as
    /// ambient and bounding sets, to a fixed non-root user.
    func testServiceUnitGrantsTheTestedCapabilities() throws {
        let unit = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("contrib/vnicd.service"),
                              encoding: .utf8)
        func values(_ key: String) -> [String] {
            unit.split(separator: "\n").filter { $0.hasPrefix(key + "=") }
                .flatMap { $0.dropFirst(key.count + 1).split(separator: " ").map(String.init) }
        }
        let tested = Set(PrivilegeTests.capabilities.map(\.name))
        XCTAssertEqual(Set(values("AmbientCapabilities")), tested)
        XCTAssertEqual(Set(values("CapabilityBoundingSet")), tested)
        XCTAssertEqual(values("User"), ["vnic"])
        XCTAssertEqual(values("NoNewPrivileges"), ["yes"])
        XCTAssertEqual(values("StateDirectory"), ["vnic"])
        XCTAssertEqual(values("Environment"), ["VNIC_DB=/var/lib/vnic/vnic.db"])
        XCTAssertTrue(values("ExecStart").first?.hasSuffix("/bin/vnicd") ?? false)
        XCTAssertTrue(values("PrivateNetwork").isEmpty, "vnicd must see the host's interfaces")
    }
}

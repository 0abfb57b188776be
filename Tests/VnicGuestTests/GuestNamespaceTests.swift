// End to end, without vnicd: two network namespaces joined by a veth pair (made
// inside them; the root namespace is never touched). The built vnic-guest runs
// in one; in the other a small python3 AF_PACKET script plays the appliance.
import Foundation
import XCTest

enum GuestTestEnvironment {
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// `$VNIC_BIN_DIR`, else `<package root>/.build/release`.
    static var binDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["VNIC_BIN_DIR"], !dir.isEmpty { return dir }
        return packageRoot.appendingPathComponent(".build/release").path
    }
    /// Fails (CI=true) or skips the test, saying why.
    static func unavailable(_ reason: String) -> any Error {
        isCI ? GuestTestError("\(reason) (CI=true: required)") : XCTSkip(reason)
    }
    static func find(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        return (path + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]).map { $0 + "/" + name }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

struct GuestTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

struct Finished {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
}

/// A started process whose output goes to files (no pipe can fill up).
final class Started: @unchecked Sendable {
    let process = Process()
    let out: URL, err: URL
    init(_ argv: [String], dir: URL) throws {
        let tag = UUID().uuidString
        out = dir.appendingPathComponent("\(tag).out")
        err = dir.appendingPathComponent("\(tag).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: GuestTestEnvironment.find(argv[0]) ?? argv[0])
        process.arguments = Array(argv.dropFirst())
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }
    var stdout: String { (try? String(contentsOf: out, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }

    /// Waits until `stdout` contains `text`, up to `timeout` seconds.
    func waitFor(_ text: String, timeout: Double = 5) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if stdout.contains(text) { return true }
            if !process.isRunning { return stdout.contains(text) }
            usleep(20_000)
        }
        return false
    }

    /// Waits for the exit (killing it after `timeout` seconds).
    func wait(timeout: Double = 30) -> Finished {
        let start = Date(), end = start.addingTimeInterval(timeout)
        while process.isRunning && Date() < end { usleep(10_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return Finished(status: process.terminationStatus, stdout: stdout, stderr: stderr,
                        seconds: Date().timeIntervalSince(start))
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }
}

final class GuestNamespaceTests: XCTestCase {
    private var nsName = ""
    private var dir = URL(fileURLWithPath: "/tmp")
    private var guestNS: String { nsName + "-g" }
    private var applianceNS: String { nsName + "-a" }
    private var binary = ""
    private var responder = ""

    override func setUpWithError() throws {
        guard GuestTestEnvironment.find("ip") != nil else { throw GuestTestEnvironment.unavailable("ip (iproute2) not found") }
        guard GuestTestEnvironment.find("nsenter") != nil else { throw GuestTestEnvironment.unavailable("nsenter (util-linux) not found") }
        guard GuestTestEnvironment.find("python3") != nil else { throw GuestTestEnvironment.unavailable("python3 not found") }
        guard geteuid() == 0 else { throw GuestTestEnvironment.unavailable("namespace tests need root (CAP_NET_ADMIN)") }
        binary = GuestTestEnvironment.binDirectory + "/vnic-guest"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw GuestTestEnvironment.unavailable("vnic-guest not built at \(binary) (run `make build`, or set VNIC_BIN_DIR)")
        }
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        nsName = "vgtest-" + String((0..<6).map { _ in alphabet.randomElement()! })
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(nsName)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let ns = [guestNS, applianceNS], d = dir
        addTeardownBlock {
            for n in ns { _ = try? Self.run(["ip", "netns", "del", n], dir: d) }
            try? FileManager.default.removeItem(at: d)
        }
        responder = dir.appendingPathComponent("responder.py").path
        try Self.script.write(toFile: responder, atomically: true, encoding: .utf8)
        for argv in [
            ["ip", "netns", "add", guestNS], ["ip", "netns", "add", applianceNS],
            // Made inside the namespaces: no interface of the root namespace is involved.
            // The guest's loopback stays down: the agent must not need it.
            ["ip", "link", "add", "vnic0", "netns", guestNS, "type", "veth", "peer", "name", "p0", "netns", applianceNS],
            ["ip", "-n", guestNS, "link", "set", "vnic0", "up"],
            ["ip", "-n", applianceNS, "link", "set", "p0", "up"],
            ["ip", "-n", guestNS, "addr", "add", "10.77.0.11/24", "dev", "vnic0"],
            ["ip", "-n", guestNS, "route", "add", "default", "via", "10.77.0.1"],
        ] {
            let r = try Self.run(argv, dir: dir)
            guard r.status == 0 else { throw GuestTestError("\(argv.joined(separator: " ")): \(r.stderr)") }
        }
    }

    static func run(_ argv: [String], dir: URL, timeout: Double = 30) throws -> Finished {
        try Started(argv, dir: dir).wait(timeout: timeout)
    }

    private func inNS(_ ns: String, _ argv: [String]) -> [String] { ["nsenter", "--net=/run/netns/\(ns)", "--"] + argv }

    private func guestJSON(_ argv: [String]) throws -> [[String: Any]] {
        let r = try Self.run(inNS(guestNS, argv), dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
    }

    private func guestAddresses() throws -> [String] {
        try guestJSON(["ip", "-j", "addr", "show", "dev", "vnic0"]).flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
            .filter { $0["family"] as? String == "inet" }
            .map { "\($0["local"] as? String ?? "?")/\($0["prefixlen"] as? Int ?? -1)" }
    }

    private func guestMAC() throws -> String { try guestJSON(["ip", "-j", "link", "show", "dev", "vnic0"]).first?["address"] as? String ?? "" }
    private func guestMTU() throws -> Int { try guestJSON(["ip", "-j", "link", "show", "dev", "vnic0"]).first?["mtu"] as? Int ?? 0 }

    func testAcceptedRequestIsAppliedToTheGuest() throws {
        let appliance = try Started(inNS(applianceNS, ["python3", responder, "respond", "p0", "15"]), dir: dir)
        defer { appliance.stop(); _ = appliance.wait(timeout: 5) }
        XCTAssertTrue(appliance.waitFor("ready"), appliance.stderr)
        let r = try Self.run(inNS(guestNS, [binary, "request", "ip=10.77.0.21"]), dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "accepted: ip=10.77.0.21/24\n")
        // The appliance got the completed value from the guest's address and MAC.
        XCTAssertTrue(appliance.stdout.contains("ip=10.77.0.21/24 from 10.77.0.11:"), appliance.stdout)
        XCTAssertEqual(try guestAddresses(), ["10.77.0.21/24"])
        let routes = try guestJSON(["ip", "-j", "route", "show", "default"])
        XCTAssertEqual(routes.first?["gateway"] as? String, "10.77.0.1", "the default route survives the address change")
    }

    func testNegativeReplyExits3AndChangesNothing() throws {
        let appliance = try Started(inNS(applianceNS, ["python3", responder, "respond", "p0", "15", "deny"]), dir: dir)
        defer { appliance.stop(); _ = appliance.wait(timeout: 5) }
        XCTAssertTrue(appliance.waitFor("ready"), appliance.stderr)
        let r = try Self.run(inNS(guestNS, [binary, "request", "mtu=1400"]), dir: dir)
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertEqual(r.stderr, "vnic-guest: denied: outside the policy\n")
        XCTAssertLessThan(r.seconds, 2, "a denial ends the wait")
        XCTAssertEqual(try guestMTU(), 1500)
    }

    func testNoAnswerExits3WithinTheTimeout() throws {
        let r = try Self.run(inNS(guestNS, [binary, "request", "mtu=1400", "--timeout", "1"]), dir: dir)
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertEqual(r.stderr, "vnic-guest: no answer from 169.254.169.254 within 1 s (denied requests are dropped)\n")
        XCTAssertGreaterThanOrEqual(r.seconds, 0.9)
        XCTAssertLessThan(r.seconds, 2.5)
        XCTAssertEqual(try guestMTU(), 1500, "nothing applied")
        XCTAssertEqual(try guestAddresses(), ["10.77.0.11/24"])
    }

    func testListenAppliesANotificationOnceAndAcksEveryCopy() throws {
        let listen = try Started(inNS(guestNS, [binary, "listen"]), dir: dir)
        defer { listen.stop(); _ = listen.wait(timeout: 5) }
        let mac = try guestMAC()
        // The appliance's script resends the notification every 200 ms until an ack with its id.
        let first = try Self.run(inNS(applianceNS, ["python3", responder, "notify", "p0", mac, "4242", "mtu", "1400", "5"]), dir: dir)
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr + listen.stderr)
        XCTAssertTrue(first.stdout.contains("ack 4242 mtu=1400"), first.stdout)
        XCTAssertEqual(try guestMTU(), 1400)
        // The same id again (a retransmission): acknowledged with the applied value, not applied again.
        let again = try Self.run(inNS(applianceNS, ["python3", responder, "notify", "p0", mac, "4242", "mtu", "1300", "5"]), dir: dir)
        XCTAssertEqual(again.status, 0, again.stdout + again.stderr)
        XCTAssertTrue(again.stdout.contains("ack 4242 mtu=1400"), again.stdout)
        XCTAssertEqual(try guestMTU(), 1400)
        listen.stop()
        let done = listen.wait(timeout: 5)
        XCTAssertEqual(done.status, 0, "SIGTERM ends listen with 0")
        XCTAssertEqual(done.stdout, "applied mtu=1400\n", done.stderr)
    }

    /// A notification signed with another key than the one the agent was given is
    /// never applied nor acknowledged, and the agent says so.
    func testListenIgnoresANotificationItsKeyDoesNotSign() throws {
        let listen = try Started(inNS(guestNS, [binary, "listen"]), dir: dir)
        defer { listen.stop(); _ = listen.wait(timeout: 5) }
        let mac = try guestMAC()
        let forged = try Self.run(inNS(applianceNS, ["python3", responder, "notify", "p0", mac, "4343", "mtu", "1400", "3", "forge"]), dir: dir)
        XCTAssertEqual(forged.status, 1, "acknowledged: \(forged.stdout)")
        XCTAssertTrue(forged.stdout.contains("key for hello"), "the agent asked for its key: \(forged.stdout)")
        XCTAssertEqual(try guestMTU(), 1500)
        listen.stop()
        let done = listen.wait(timeout: 5)
        XCTAssertTrue(done.stderr.contains("notification 4343 mtu=1400: not signed with this VNIC's key; ignored"), done.stderr)
        XCTAssertEqual(done.stdout, "")
    }

    /// The appliance's side, in python3: `respond IF SECONDS [deny]` accepts every
    /// request with its value (or denies it: a negative reply); `notify IF GUESTMAC ID PARAM VALUE SECONDS` sends a
    /// notification every 200 ms until an ack comes (exit 0) or the time is up (1).
    static let script = #"""
import hashlib, hmac, os, socket, struct, sys, time, select
SERVICE = socket.inet_aton("169.254.169.254")
def csum(b):
    s = sum(struct.unpack("!10H", b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def frame(dst, src, sip, dip, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    f = dst + src + b"\x08\x00" + ip + udp
    return f + b"\x00" * max(0, 60 - len(f))
def msg(kind, mid, p, v):
    p, v = p.encode(), v.encode()
    return struct.pack("!BBHIB", 1, kind, 0, mid, len(p)) + p + struct.pack("!H", len(v)) + v
def parse(f):
    if len(f) < 42 or f[12:14] != b"\x08\x00" or f[23] != 17: return None
    ihl = (f[14] & 15) * 4; u = 14 + ihl
    sport, dport, ulen = struct.unpack("!HHH", f[u:u+6])
    pl = f[u+8:u+ulen]
    if len(pl) < 11 or pl[0] != 1: return None
    kind, mid, plen = pl[1], struct.unpack("!I", pl[4:8])[0], pl[8]
    p = pl[9:9+plen].decode(); vlen = struct.unpack("!H", pl[9+plen:11+plen])[0]
    v = pl[11+plen:11+plen+vlen].decode()
    return dict(src=f[6:12], sip=f[26:30], dip=f[30:34], sport=sport, dport=dport, kind=kind, id=mid, p=p, v=v)
mode, ifname = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); s.bind((ifname, 0))
mymac = s.getsockname()[4][:6]
print("ready", flush=True)
if mode == "respond":
    deadline = time.time() + float(sys.argv[3])
    while time.time() < deadline:
        r, _, _ = select.select([s], [], [], 0.1)
        if not r: continue
        f, addr = s.recvfrom(65536)
        if addr[2] == socket.PACKET_OUTGOING: continue
        m = parse(f)
        if not m or m["dip"] != SERVICE or m["dport"] != 7177 or m["kind"] != 1: continue
        print("request %d %s=%s from %s:%d" % (m["id"], m["p"], m["v"], socket.inet_ntoa(m["sip"]), m["sport"]), flush=True)
        deny = len(sys.argv) > 4 and sys.argv[4] == "deny"
        reply = msg(3, m["id"], m["p"], "outside the policy") if deny else msg(2, m["id"], m["p"], m["v"])
        s.send(frame(m["src"], mymac, SERVICE, m["sip"], 7177, m["sport"], reply))
elif mode == "notify":
    # Answers the agent's hello with a key and signs the notification with it
    # (HMAC-SHA256); "forge" signs it with another key instead.
    dst = bytes.fromhex(sys.argv[3].replace(":", "")); mid = int(sys.argv[4]); p, v = sys.argv[5], sys.argv[6]
    key = os.urandom(32)
    signer = os.urandom(32) if len(sys.argv) > 8 and sys.argv[8] == "forge" else key
    body = msg(4, mid, p, v)
    f = frame(dst, mymac, SERVICE, socket.inet_aton("0.0.0.0"), 7177, 7178, body + bytes([32]) + hmac.new(signer, body, hashlib.sha256).digest())
    deadline = time.time() + float(sys.argv[7]); nxt = 0; acks = 0
    while time.time() < deadline:
        if time.time() >= nxt: s.send(f); nxt = time.time() + 0.2
        r, _, _ = select.select([s], [], [], 0.05)
        if not r: continue
        g, addr = s.recvfrom(65536)
        if addr[2] == socket.PACKET_OUTGOING: continue
        m = parse(g)
        if m and m["kind"] == 6 and m["dip"] == SERVICE and m["dport"] == 7177:
            s.send(frame(m["src"], mymac, SERVICE, m["sip"], 7177, m["sport"], msg(7, m["id"], "key", key.hex())))
            print("key for hello %d" % m["id"], flush=True)
        if m and m["kind"] == 5 and m["dip"] == SERVICE and m["sport"] == 7178 and m["dport"] == 7177:
            print("ack %d %s=%s" % (m["id"], m["p"], m["v"]), flush=True); sys.exit(0 if m["id"] == mid else 4)
    print("no ack", flush=True); sys.exit(1)
"""#
}

// A real etcd cluster for the fleet's tests: `members` etcd processes (Debian's
// etcd-server) on loopback, each with its own client and peer port and data
// directory, started together and killed and removed at teardown (also when
// the test fails). Ports come from a random base below the kernel's ephemeral
// range (32768 up), so that parallel tests, a system etcd (2379/2380) and
// outgoing connections do not meet, and tried for a bind first (another base
// when one is taken).
import Foundation
import VnicCore
import VnicFleet
import VnicLabKit
import XCTest

final class EtcdCluster {
    let directory: URL
    let clientPorts: [Int]
    let peerPorts: [Int]
    private(set) var members: [RunningCommand?]
    let names: [String]
    /// The network namespace the members run in (a lab's host namespace, where
    /// vnicd runs), or nil: this one.
    let namespace: String?
    let alsoListen: String?

    /// Starts the cluster and waits until it has a leader (fails, or skips
    /// outside CI, when etcd is not installed).
    /// `alsoListen`: another address the members serve clients on (in `namespace`), besides 127.0.0.1.
    init(members count: Int = 3, namespace: String? = nil, alsoListen: String? = nil, test: XCTestCase) throws {
        guard Command.find("etcd") != nil else {
            throw TestEnvironment.unavailable("etcd not found (install the Debian package etcd-server)")
        }
        var ports: (client: [Int], peer: [Int], base: Int) = ([], [], 0)
        var busy = true
        for _ in 0..<5 where busy {
            let base = 20000 + Int.random(in: 0..<600) * 20
            ports = ((0..<count).map { base + 2 * $0 }, (0..<count).map { base + 2 * $0 + 1 }, base)
            busy = (ports.client + ports.peer).contains(where: EtcdCluster.inUse)
        }
        clientPorts = ports.client
        peerPorts = ports.peer
        names = (0..<count).map { "m\($0 + 1)" }
        self.namespace = namespace
        self.alsoListen = alsoListen
        if let namespace { _ = try inNamespace(namespace, "ip", "link", "set", "lo", "up") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vnic-etcd-\(getpid())-\(ports.base)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        members = Array(repeating: nil, count: count)
        test.addTeardownBlock { [self] in stop() }
        for i in 0..<count { try start(i, state: "new") }
        try waitForLeader()
    }

    /// Whether something listens on TCP `port` of loopback.
    static func inUse(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        a.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        return withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) != 0 }
        }
    }

    /// "127.0.0.1:P,..." of every member, as `--etcd` takes it (or at `address`).
    var endpoints: String { endpoints(at: "127.0.0.1") }
    func endpoints(at address: String) -> String { clientPorts.map { "\(address):\($0)" }.joined(separator: ",") }

    func start(_ i: Int, state: String = "existing") throws {
        let initial = zip(names, peerPorts).map { "\($0)=http://127.0.0.1:\($1)" }.joined(separator: ",")
        let nsenter = namespace.map { ["nsenter", "--net=/run/netns/\($0)", "--"] } ?? []
        members[i] = try Command.start(nsenter + [
            "etcd", "--name", names[i], "--data-dir", directory.appendingPathComponent(names[i]).path,
            "--listen-client-urls", (["127.0.0.1"] + (alsoListen.map { [$0] } ?? [])).map { "http://\($0):\(clientPorts[i])" }
                .joined(separator: ","),
            "--advertise-client-urls", "http://127.0.0.1:\(clientPorts[i])",
            "--listen-peer-urls", "http://127.0.0.1:\(peerPorts[i])",
            "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPorts[i])",
            "--initial-cluster", initial, "--initial-cluster-token", directory.lastPathComponent,
            "--initial-cluster-state", state,
            // Short elections, so a lost leader is replaced within a few seconds.
            "--heartbeat-interval", "100", "--election-timeout", "1000",
        ])
    }

    /// Kills member `i` (SIGKILL: as a crash).
    func kill(_ i: Int) {
        members[i]?.signal(SIGKILL)
        _ = members[i]?.wait(timeout: .seconds(5))
        members[i] = nil
    }

    /// The index of the member that leads now, waiting up to `seconds` for one.
    @discardableResult
    func waitForLeader(seconds: Double = 15) throws -> Int {
        let client = try EtcdClient(endpoints: endpoints, timeout: 0.5)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            for i in members.indices where members[i] != nil {
                if namespace == nil, let s = client.status(of: i), s.leader != 0, s.leader == s.member { return i }
                if namespace != nil, let s = try? gateway(i, "/v3/maintenance/status", [:]),
                   let leader = s["leader"] as? String, let header = s["header"] as? [String: Any],
                   leader == header["member_id"] as? String {
                    return i
                }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let logs = members.compactMap { $0?.stderrSoFar.split(separator: "\n").suffix(3).joined(separator: "\n") }
        throw FixtureError(message: "etcd cluster at \(endpoints): no leader after \(seconds) s; last lines: \(logs)")
    }

    /// One call of etcd's JSON gateway on member `i`, from inside `namespace`
    /// (python3's urllib there: this process's sockets are in its own namespace).
    func gateway(_ i: Int, _ path: String, _ body: [String: Any]) throws -> [String: Any] {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let script = """
            import sys, urllib.request
            r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST"), timeout=3)
            print(r.read().decode())
            """
        let argv = ["python3", "-c", script, "http://127.0.0.1:\(clientPorts[i])\(path)", json]
        let r = try namespace.map { try inNamespace($0, argv, timeout: .seconds(10)) } ?? Command.run(argv, timeout: .seconds(10))
        guard r.succeeded, let out = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] else {
            throw FixtureError(message: "etcd \(path) on member \(i): \(r.diagnostic)")
        }
        return out
    }

    func stop() {
        for i in members.indices { kill(i) }
        try? FileManager.default.removeItem(at: directory)
    }
}

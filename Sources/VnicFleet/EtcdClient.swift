// EtcdClient: etcd's v3 API (the fleet's store, issue 19) through its JSON
// gateway (etcd's grpc-gateway: POST /v3/kv/range, /v3/kv/put,
// /v3/kv/deleterange, /v3/kv/txn, /v3/kv/compaction, /v3/lease/grant,
// /v3/lease/keepalive, /v3/maintenance/status, /v3/watch; keys and values
// base64 in JSON, 64-bit numbers as strings), over HTTP/1.1 with
// FoundationNetworking's URLSession. That client is part of the Swift
// toolchain (libcurl underneath), so it adds nothing to build, where
// async-http-client or grpc-swift-2 would add minutes to each of CI's builds
// (debug, release, ASan, TSan); etcd 3.4 serves the gateway on its client port.
//
// Calls are synchronous (vnicadm, and vnicd's control thread, which must not
// wait long: each call has a timeout, 2 s by default). A call goes to the
// member that answered last; when it cannot be reached it goes to the next
// member of `endpoints`, and so on once round (also when a member answers
// that the cluster is electing a leader): a leader's loss costs a retry, not
// an error. An answer of etcd's (a failed compare is not one) is
// an error with etcd's message.
//
// A watch (`watch`) is a long-lived streaming request: its messages (one
// JSON object each) reach the handler on URLSession's queue; when the stream
// ends (the member went away), the watch resumes on the next member from the
// revision after the last one it delivered, and a revision etcd has compacted
// away is reported (`.compacted`) so that the caller lists again.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import VnicCore

/// A key and its value as etcd stores them.
public struct KeyValue: Equatable, Sendable {
    public var key: String
    public var value: [UInt8]
    public var createRevision: Int64
    public var modRevision: Int64
    public var version: Int64
    public var lease: Int64

    public var text: String { String(decoding: value, as: UTF8.self) }
}

public final class EtcdClient: Sendable {
    public let endpoints: [URL]
    public let timeout: Double
    private let current = Mutex(0)
    private let session: URLSession

    /// `endpoints`: "host:port" or "http://host:port", comma-separated (as
    /// etcdctl's --endpoints).
    public init(endpoints text: String, timeout: Double = 2) throws(VnicError) {
        let list = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !list.isEmpty else { throw VnicError("--etcd: no endpoints in '\(text)'") }
        var urls: [URL] = []
        for e in list {
            let full = e.contains("://") ? e : "http://" + e
            guard let url = URL(string: full), url.scheme == "http", url.host != nil, url.port != nil else {
                throw VnicError("--etcd: '\(e)' is not an endpoint (host:port or http://host:port)")
            }
            urls.append(url)
        }
        endpoints = urls
        self.timeout = timeout
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        session = URLSession(configuration: config)
    }

    // MARK: key-value

    /// The last key under `prefix` and its value, or nil (one key read, sorted descending).
    public func last(prefix: String) throws(VnicError) -> KeyValue? {
        try range(["key": base64(prefix), "range_end": base64(EtcdClient.prefixEnd(prefix)), "limit": "1",
                   "sort_order": "DESCEND", "sort_target": "KEY"]).kvs.first
    }

    /// The value under `key`, or nil.
    public func get(_ key: String) throws(VnicError) -> KeyValue? {
        try range(["key": base64(key)]).kvs.first
    }

    /// Every key under `prefix` (sorted by key), and the store's revision they are of;
    /// `revision`: as of that revision (0: the latest).
    public func list(prefix: String, revision: Int64 = 0) throws(VnicError) -> (revision: Int64, kvs: [KeyValue]) {
        var body: [String: Any] = ["key": base64(prefix), "range_end": base64(EtcdClient.prefixEnd(prefix))]
        if revision > 0 { body["revision"] = String(revision) }
        return try range(body)
    }

    /// Puts `value` under `key` (with `lease`, if not 0); returns the new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) throws(VnicError) -> Int64 {
        var body: [String: Any] = ["key": base64(key), "value": Data(value).base64EncodedString()]
        if lease != 0 { body["lease"] = String(lease) }
        return try revision(of: call("/v3/kv/put", body))
    }

    /// Deletes `key`, or every key under it with `prefix`; returns how many went.
    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) throws(VnicError) -> Int {
        var body: [String: Any] = ["key": base64(key)]
        if prefix { body["range_end"] = base64(EtcdClient.prefixEnd(key)) }
        return Int(string(try call("/v3/kv/deleterange", body)["deleted"]) ?? "0") ?? 0
    }

    /// Deletes every key in [`key`, `end`); returns how many went.
    @discardableResult
    public func delete(from key: String, to end: String) throws(VnicError) -> Int {
        Int(string(try call("/v3/kv/deleterange", ["key": base64(key), "range_end": base64(end)])["deleted"]) ?? "0") ?? 0
    }

    /// A condition of a transaction.
    public enum Compare: Sendable {
        /// The key's last modification is at `revision` (0: the key does not exist).
        case modRevision(String, Int64)
    }

    /// An operation of a transaction.
    public enum Operation: Sendable {
        case put(String, [UInt8])
        case delete(String)
    }

    /// Applies `success` when every compare holds, else `failure`, atomically;
    /// returns whether the compares held, and the revision after it.
    public func transaction(if compares: [Compare], then success: [Operation],
                            else failure: [Operation] = []) throws(VnicError) -> (succeeded: Bool, revision: Int64) {
        let body: [String: Any] = [
            "compare": compares.map { c -> [String: Any] in
                switch c {
                case .modRevision(let key, let rev):
                    return ["key": base64(key), "target": "MOD", "result": "EQUAL", "mod_revision": String(rev)]
                }
            },
            "success": success.map(operation), "failure": failure.map(operation),
        ]
        let r = try call("/v3/kv/txn", body)
        return ((r["succeeded"] as? Bool) ?? false, try revision(of: r))
    }

    /// Compacts the store's history up to `revision`.
    public func compact(_ revision: Int64) throws(VnicError) {
        _ = try call("/v3/kv/compaction", ["revision": String(revision), "physical": true])
    }

    // MARK: leases

    /// A new lease of `ttl` seconds; returns its id.
    public func grantLease(ttl: Int64) throws(VnicError) -> Int64 {
        let r = try call("/v3/lease/grant", ["TTL": String(ttl)])
        guard let id = string(r["ID"]).flatMap({ Int64($0) }) else { throw VnicError("etcd: lease grant without an ID") }
        return id
    }

    /// Renews lease `id` once; returns its TTL (0 or less: it has expired).
    @discardableResult
    public func keepAlive(_ id: Int64) throws(VnicError) -> Int64 {
        let r = try call("/v3/lease/keepalive", ["ID": String(id)])
        let result = r["result"] as? [String: Any] ?? r
        return string(result["TTL"]).flatMap { Int64($0) } ?? 0
    }

    // MARK: cluster

    /// The member at `endpoint` (an index into `endpoints`): its id, the
    /// leader's id and the store's revision; nil when it cannot be reached.
    public func status(of endpoint: Int) -> (member: UInt64, leader: UInt64, revision: Int64)? {
        guard let r = try? post(endpoints[endpoint], "/v3/maintenance/status", [:]).get() else { return nil }
        let header = r["header"] as? [String: Any] ?? [:]
        guard let member = string(header["member_id"]).flatMap({ UInt64($0) }),
              let leader = string(r["leader"]).flatMap({ UInt64($0) }) else { return nil }
        return (member, leader, string(header["revision"]).flatMap { Int64($0) } ?? 0)
    }

    // MARK: the wire

    private func range(_ body: [String: Any]) throws(VnicError) -> (revision: Int64, kvs: [KeyValue]) {
        let r = try call("/v3/kv/range", body)
        let kvs = (r["kvs"] as? [[String: Any]] ?? []).compactMap(EtcdClient.keyValue)
        return (try revision(of: r), kvs)
    }

    private func operation(_ op: Operation) -> [String: Any] {
        switch op {
        case .put(let key, let value):
            return ["request_put": ["key": base64(key), "value": Data(value).base64EncodedString()]]
        case .delete(let key):
            return ["request_delete_range": ["key": base64(key)]]
        }
    }

    private func revision(of r: [String: Any]) throws(VnicError) -> Int64 {
        guard let h = r["header"] as? [String: Any], let rev = string(h["revision"]).flatMap({ Int64($0) }) else {
            throw VnicError("etcd: an answer without a revision")
        }
        return rev
    }

    /// POSTs `body` to `path` on the member that answered last, then on each
    /// other member in turn while the member cannot be reached.
    func call(_ path: String, _ body: [String: Any]) throws(VnicError) -> [String: Any] {
        let start = current.withLock { $0 }
        var unreachable: [String] = []
        for k in 0..<endpoints.count {
            let i = (start + k) % endpoints.count
            switch post(endpoints[i], path, body) {
            case .success(let r):
                if k > 0 { current.withLock { $0 = i } }
                return r
            case .failure(.etcd(let message)) where EtcdClient.transient.contains(where: message.contains):
                unreachable.append("\(endpoints[i].host ?? ""):\(endpoints[i].port ?? 0): \(message)")
            case .failure(.etcd(let message)):
                throw VnicError("etcd \(endpoints[i].host ?? ""):\(endpoints[i].port ?? 0): \(message)")
            case .failure(.unreachable(let why)):
                unreachable.append("\(endpoints[i].host ?? ""):\(endpoints[i].port ?? 0): \(why)")
            }
        }
        throw VnicError("etcd unreachable (\(unreachable.joined(separator: "; ")))")
    }

    /// What a member answers while the cluster elects a leader: the next member is asked.
    static let transient = ["leader changed", "no leader", "request timed out", "not capable"]

    enum CallError: Error {
        /// The member answered with an error.
        case etcd(String)
        /// No answer (refused, timed out, not etcd's JSON).
        case unreachable(String)
    }

    private func post(_ endpoint: URL, _ path: String, _ body: [String: Any]) -> Result<[String: Any], CallError> {
        var request = URLRequest(url: endpoint.appendingPathComponent(path))
        request.httpMethod = "POST"
        request.timeoutInterval = timeout
        request.httpBody = try? JSONSerialization.data(withJSONObject: body)
        let done = DispatchSemaphore(value: 0)
        let result = Answer()
        session.dataTask(with: request) { data, response, error in
            defer { done.signal() }
            let r: Result<[String: Any], CallError>
            if let error {
                r = .failure(.unreachable(error.localizedDescription))
            } else if let data, let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
                let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                if status == 200 {
                    r = .success(json)
                } else {
                    let message = (json["error"] as? String) ?? (json["message"] as? String) ?? "HTTP \(status)"
                    r = .failure(.etcd(message))
                }
            } else {
                r = .failure(.unreachable("not an etcd answer"))
            }
            result.set(r)
        }.resume()
        if done.wait(timeout: .now() + timeout + 1) == .timedOut { return .failure(.unreachable("timed out")) }
        return result.get()
    }

    /// One call's answer, handed from URLSession's queue to the caller.
    private final class Answer: @unchecked Sendable {   // @unchecked: the lock guards `value`
        private let lock = NSLock()
        private var value: Result<[String: Any], CallError> = .failure(.unreachable("no answer"))
        func set(_ v: Result<[String: Any], CallError>) { lock.lock(); value = v; lock.unlock() }
        func get() -> Result<[String: Any], CallError> { lock.lock(); defer { lock.unlock() }; return value }
    }

    static func keyValue(_ kv: [String: Any]) -> KeyValue? {
        guard let key = (kv["key"] as? String).flatMap({ Data(base64Encoded: $0) }) else { return nil }
        let value = (kv["value"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
        func number(_ name: String) -> Int64 { (kv[name] as? String).flatMap { Int64($0) } ?? 0 }
        return KeyValue(key: String(decoding: key, as: UTF8.self), value: [UInt8](value), createRevision: number("create_revision"),
                        modRevision: number("mod_revision"), version: number("version"), lease: number("lease"))
    }

    /// The end of the range of keys that start with `prefix` (etcd's
    /// prefix-end: the prefix with its last byte below 0xff incremented).
    static func prefixEnd(_ prefix: String) -> [UInt8] {
        var b = Array(prefix.utf8)
        while let last = b.last {
            if last < 0xFF { b[b.count - 1] = last + 1; return b }
            b.removeLast()
        }
        return [0]   // every key
    }
}

func base64(_ key: String) -> String { Data(key.utf8).base64EncodedString() }
func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

/// A JSON number etcd's gateway writes as a string (64-bit), or a number.
func string(_ v: Any?) -> String? {
    if let s = v as? String { return s }
    if let n = v as? NSNumber { return n.stringValue }
    return nil
}

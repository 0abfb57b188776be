// EtcdWatch: one watch on a key prefix through etcd's JSON gateway (POST
// /v3/watch: a streaming answer, one JSON message per line). Events reach the
// handler in revision order on the watch's own serial queue, one message's at
// a time (etcd never splits one revision's events across messages, so a
// handler that applies each call in one transaction applies whole
// revisions). When the stream ends for any reason but `cancel()` (the member
// died, or restarted), the watch starts again 0.2 s later on the next member
// from the revision after the last one it delivered; if etcd has compacted
// that revision away, the handler hears `.compacted` and the watch stops: the
// caller lists again and watches anew.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import VnicCore

public enum WatchEvent: Equatable, Sendable {
    case put(KeyValue)
    case delete(key: String, revision: Int64)
    /// Everything up to `revision` has been delivered (etcd's progress notification).
    case progress(Int64)
    /// The revision the watch was to start from is no longer in etcd's
    /// history (it keeps revisions from `compactRevision` on): list again.
    case compacted(Int64)
}

public final class EtcdWatch: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // @unchecked: `state` is a Mutex; the rest is set in init, or touched only
    // on `queue` (URLSession's delegate calls, which are serial on it).
    private let client: EtcdClient
    private let prefix: String
    private let handler: @Sendable ([WatchEvent]) -> Void
    private let queue: OperationQueue
    private var session: URLSession!
    private var buffer = Data()
    private struct State {
        var next: Int64
        var endpoint: Int
        var cancelled = false
        var task: URLSessionDataTask?
        var restarts = 0
    }
    private let state: Mutex<State>

    /// Watches every key under `prefix` from revision `from` on.
    public init(client: EtcdClient, prefix: String, from revision: Int64, handler: @escaping @Sendable ([WatchEvent]) -> Void) {
        self.client = client
        self.prefix = prefix
        self.handler = handler
        queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        state = Mutex(State(next: revision, endpoint: 0))
        super.init()
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = 24 * 3600      // a quiet watch is no failure
        config.timeoutIntervalForResource = 365 * 24 * 3600
        session = URLSession(configuration: config, delegate: self, delegateQueue: queue)
        start()
    }

    /// How many times the stream was started again (a member lost).
    public var restarts: Int { state.withLock { $0.restarts } }

    /// Stops the watch: messages that arrive after it reach no handler (one
    /// already on the watch's queue may still run).
    public func cancel() {
        let task = state.withLock { s -> URLSessionDataTask? in s.cancelled = true; return s.task }
        task?.cancel()
        session.invalidateAndCancel()
    }

    private func start() {
        let (endpoint, next, cancelled) = state.withLock { ($0.endpoint, $0.next, $0.cancelled) }
        guard !cancelled else { return }
        var request = URLRequest(url: client.endpoints[endpoint].appendingPathComponent("/v3/watch"))
        request.httpMethod = "POST"
        let create: [String: Any] = ["key": base64(prefix), "range_end": base64(EtcdClient.prefixEnd(prefix)),
                                     "start_revision": String(next), "progress_notify": true]
        request.httpBody = try? JSONSerialization.data(withJSONObject: ["create_request": create])
        let task = session.dataTask(with: request)
        state.withLock { $0.task = task }
        buffer.removeAll()
        task.resume()
    }

    public func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        buffer.append(data)
        while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            let line = buffer[buffer.startIndex..<nl]
            buffer.removeSubrange(buffer.startIndex...nl)
            guard !line.isEmpty, let json = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else { continue }
            handle(json["result"] as? [String: Any] ?? json)
        }
    }

    private func handle(_ result: [String: Any]) {
        if state.withLock({ $0.cancelled }) { return }
        let header = result["header"] as? [String: Any] ?? [:]
        let revision = string(header["revision"]).flatMap { Int64($0) } ?? 0
        if let compact = string(result["compact_revision"]).flatMap({ Int64($0) }), compact > 0 {
            state.withLock { $0.cancelled = true }
            handler([.compacted(compact)])
            return
        }
        var out: [WatchEvent] = []
        for e in result["events"] as? [[String: Any]] ?? [] {
            guard let kv = (e["kv"] as? [String: Any]).flatMap(EtcdClient.keyValue) else { continue }
            out.append((e["type"] as? String) == "DELETE" ? .delete(key: kv.key, revision: kv.modRevision) : .put(kv))
            state.withLock { $0.next = max($0.next, kv.modRevision + 1) }
        }
        if out.isEmpty && revision > 0 && (result["created"] as? Bool) != true {
            // A progress notification: nothing up to `revision` is left to come. (The
            // message that says the watch was created carries the store's revision,
            // with the events from the start revision still to follow.)
            state.withLock { $0.next = max($0.next, revision + 1) }
            out.append(.progress(revision))
        }
        if !out.isEmpty { handler(out) }
    }

    public func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        let again = state.withLock { s -> Bool in
            guard !s.cancelled else { return false }
            s.endpoint = (s.endpoint + 1) % client.endpoints.count
            s.restarts += 1
            return true
        }
        guard again else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { [weak self] in
            self?.queue.addOperation { [weak self] in self?.start() }
        }
    }
}

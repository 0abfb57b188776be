// vnicadm --etcd ENDPOINTS --host HOST SUBCOMMAND ...: the same subcommands,
// syntax, checks, errors and exit codes, on the fleet's desired state of HOST
// in etcd (/vnic/v1/hosts/HOST/vnics/NAME, see VnicFleet's FleetSync) instead
// of a local database. The host's VNICs are listed into a scratch database
// (FleetCopy), the subcommand runs on it unchanged, and what it changed is
// written back as one etcd transaction (a batch too), on condition that none
// of the VNICs it touches changed in etcd since the listing: a concurrent
// writer makes it fail with nothing written, to be run again. Host HOST's
// vnicd applies it, audits it and notifies the VM.
import Foundation
import VnicConfig
import VnicCore
import VnicFleet

enum FleetMode {
    /// `--etcd`/`--host` when given (set once in main, before any subcommand runs).
    nonisolated(unsafe) static var target: (client: EtcdClient, host: String)?
    /// The copy the subcommand opened, to write back.
    nonisolated(unsafe) static var copy: FleetCopy?

    /// Takes `--etcd ENDPOINTS --host HOST` (also `--etcd=...`) from before the
    /// subcommand; returns the other arguments.
    static func take(_ arguments: [String]) throws(VnicError) -> [String] {
        var rest = arguments
        var etcd: String?, host: String?
        while let first = rest.first, first.hasPrefix("--etcd") || first.hasPrefix("--host") {
            let (name, value): (String, String)
            if let eq = first.firstIndex(of: "=") {
                (name, value) = (String(first[..<eq]), String(first[first.index(after: eq)...]))
                rest.removeFirst()
            } else {
                guard rest.count >= 2, !rest[1].hasPrefix("-") else { throw .usage("\(first): missing value") }
                (name, value) = (first, rest[1])
                rest.removeFirst(2)
            }
            switch name {
            case "--etcd": etcd = value
            case "--host": host = value
            default: throw .usage("unknown option '\(name)'")
            }
        }
        guard etcd != nil || host != nil else { return arguments }
        guard let etcd, let host else { throw .usage("--etcd and --host go together") }
        guard !host.isEmpty, !host.contains("/") else { throw .usage("--host: '\(host)' is not a host name (no '/')") }
        do {
            target = (try EtcdClient(endpoints: etcd), host)
        } catch {
            throw .usage(error.message)
        }
        return rest
    }

    /// Writes back what the subcommand changed in the copy (nothing locally).
    static func commit() throws(VnicError) {
        try copy?.commit()
    }
}

/// A host's VNICs in etcd as a scratch database, and the revisions they were listed at.
final class FleetCopy {
    let store: ConfigStore
    let client: EtcdClient
    let host: String
    /// Name -> (the key's mod revision, the record as listed, index 0); after
    /// each commit, as committed (a `batch --per-line` commits line by line).
    private var listed: [String: (revision: Int64, record: VNICRecord)]

    init(client: EtcdClient, host: String) throws(VnicError) {
        self.client = client
        self.host = host
        let (_, kvs) = try client.list(prefix: FleetSync.vnicsPrefix(host: host))
        var listed: [String: (Int64, VNICRecord)] = [:]
        var records: [VNICRecord] = []
        for kv in kvs {
            do {
                var r = try VNICRecordCodec.decode(kv.value)
                r.index = 0
                listed[r.name] = (kv.modRevision, r)
                records.append(r)
            } catch {
                throw VnicError("etcd \(kv.key): \(error.message)")
            }
        }
        self.listed = listed
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vnicadm-fleet-\(getpid())-\(UUID().uuidString)")
        store = try ConfigStore.open(path: dir.appendingPathComponent("vnic.db").path, create: true, mapSize: 256 << 20)
        // The files go now; the open database keeps them until vnicadm exits.
        try? FileManager.default.removeItem(at: dir)
        try store.update { (tx) throws(VnicError) in
            for r in records { try tx.create(r, reason: "fleet copy") }
        }
    }

    /// One etcd transaction: the VNICs the subcommand created, changed or
    /// deleted, each on condition that its key is as listed.
    func commit() throws(VnicError) {
        let now = Dictionary(uniqueKeysWithValues: try store.vnics().map { r in var r = r; r.index = 0; return (r.name, r) })
        var compares: [EtcdClient.Compare] = [], ops: [EtcdClient.Operation] = []
        for (name, r) in now.sorted(by: { $0.key < $1.key }) where listed[name]?.record != r {
            let key = FleetSync.key(host: host, vnic: name)
            compares.append(.modRevision(key, listed[name]?.revision ?? 0))
            ops.append(.put(key, VNICRecordCodec.encode(r)))
        }
        for (name, l) in listed.sorted(by: { $0.key < $1.key }) where now[name] == nil {
            let key = FleetSync.key(host: host, vnic: name)
            compares.append(.modRevision(key, l.revision))
            ops.append(.delete(key))
        }
        guard !ops.isEmpty else { return }
        let done = try client.transaction(if: compares, then: ops)
        guard done.succeeded else {
            throw VnicError("host \(host)'s VNICs changed in etcd meanwhile; nothing was written (run it again)")
        }
        listed = now.mapValues { (done.revision, $0) }.merging(listed.filter { now[$0.key] == $0.value.record }) { _, kept in kept }
    }
}

// vnic-fleet-bench: the fleet's latencies (bench/fleet.sh runs it against a
// real 3-member etcd cluster on loopback), with vnicd's own code in process
// (FleetSync, a real LMDB file; the workers read that file, so a record
// committed there is enforced at their next loop):
//   put-to-enforced  an etcd put of a VNIC's record (an MTU change) to its
//                    commit in the host's database, as vnicd's watch applies it;
//   initial-sync     listing N VNICs from etcd and converging an empty database
//                    to them (one transaction), as a new host's vnicd starts;
//   vm-request       a VM's request checked and committed through etcd (the
//                    compare-and-put on the VNIC's revision, then the database),
//                    what a request's reply waits for on a fleet host.
// Prints one JSON object.
//
//   vnic-fleet-bench --etcd ENDPOINTS [--count N] [--vnics N]
import Foundation
import VnicConfig
import VnicCore
import VnicFleet

@main
struct FleetBench {
    static func main() throws {
        var args = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String) -> String? {
            guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
            defer { args.removeSubrange(i...(i + 1)) }
            return args[i + 1]
        }
        guard let endpoints = option("--etcd") else {
            FileHandle.standardError.write(Data("usage: vnic-fleet-bench --etcd ENDPOINTS [--count N] [--vnics N]\n".utf8))
            exit(2)
        }
        let count = Int(option("--count") ?? "200") ?? 200
        let vnics = Int(option("--vnics") ?? "1000") ?? 1000
        let client = try EtcdClient(endpoints: endpoints)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vnic-fleet-bench-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let host = "bench-\(getpid())"

        func record(_ n: Int, mtu: UInt32 = 1500) -> VNICRecord {
            var r = VNICRecord(name: "vnic\(n)", link: "uplink0", port: "vm\(n)p", mac: MACAddress(rawValue: 0x0200_0000_0000 + UInt64(n)),
                               ips: [IPv4Interface("10.\(64 + n / 65536).\(n / 256 % 256).\(n % 256)/8")!])
            r.mtu = mtu
            r.policy[.mtu] = try! VNICParameter.mtu.parsePolicy("1280-9000")
            return r
        }
        func put(_ r: VNICRecord) throws { try client.put(FleetSync.key(host: host, vnic: r.name), VNICRecordCodec.encode(r)) }
        func percentiles(_ ns: [UInt64]) -> [String: Double] {
            let s = ns.sorted()
            func at(_ p: Double) -> Double { Double(s[min(s.count - 1, Int(Double(s.count) * p))]) / 1000 }
            return ["p50_us": at(0.5), "p99_us": at(0.99), "max_us": Double(s.last ?? 0) / 1000, "samples": Double(s.count)]
        }
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

        // Initial sync of `vnics` VNICs into an empty database.
        var batch: [EtcdClient.Operation] = []
        for n in 1...vnics {
            batch.append(.put(FleetSync.key(host: host, vnic: "vnic\(n)"), VNICRecordCodec.encode(record(n))))
            if batch.count == 100 || n == vnics { _ = try client.transaction(if: [], then: batch); batch.removeAll() }
        }
        let store = try ConfigStore.open(path: dir.appendingPathComponent("vnic.db").path, create: true)
        let t0 = now()
        let sync = FleetSync(client: client, store: store, host: host)
        try sync.resync()
        let initial = Double(now() - t0) / 1e6
        let synced = try store.vnics().count
        guard synced == vnics else { throw VnicError("initial sync: \(synced) of \(vnics) VNICs") }

        // Put to enforced: each put of vnic1's record with a new MTU, to its commit here.
        try sync.start()
        var enforced: [UInt64] = []
        for k in 0..<count {
            let mtu = UInt32(1300 + k % 2 * 100)
            let start = now()
            try put(record(1, mtu: mtu))
            while try store.vnic(named: "vnic1")?.mtu != mtu {
                guard now() - start < 5_000_000_000 else { throw VnicError("put \(k): not in the database within 5 s") }
                usleep(50)
            }
            enforced.append(now() - start)
        }

        // A VM's request through etcd: vnic2's MTU, alternating, as vnicd's GuestService does it.
        let index = try store.vnic(named: "vnic2")!.index
        var requests: [UInt64] = []
        for k in 0..<count {
            let start = now()
            let outcome = try store.handleVMRequest(index: index, parameter: "mtu", value: k % 2 == 0 ? "1400" : "1500",
                                                    confirm: sync.commitVMRequest)
            guard outcome.accepted else { throw VnicError("request \(k): \(outcome.entry.reason)") }
            requests.append(now() - start)
            // The watch brings the same record back: let it land before the next request compares.
            let rev = try client.get(FleetSync.key(host: host, vnic: "vnic2"))!.modRevision
            while try (store.fleetRevision() ?? 0) < UInt64(rev) { usleep(50) }
        }
        sync.stop()
        try client.delete(FleetSync.vnicsPrefix(host: host), prefix: true)

        let result: [String: Any] = [
            "initial_sync": ["vnics": vnics, "ms": initial],
            "put_to_enforced": percentiles(enforced),
            "vm_request_through_etcd": percentiles(requests),
        ]
        print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
    }
}

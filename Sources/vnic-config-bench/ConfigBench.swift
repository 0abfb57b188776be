// vnic-config-bench: the cost of the fast-path configuration reads a dataplane
// worker makes (FastPath.swift), against the slow path, on N VNICs.
//
//   vnic-config-bench [--vnics N] [--lookups L] [--bursts B] [--db PATH]
//                     [--mode fast|baseline] [--writer]
//
// Builds a database of N VNICs (one transaction through the library), then on a
// thread named vnic-worker-0 (what bench/malloc_count.so counts):
//   fast:     `lookup`: L random lookups inside one burst, each reading the hot
//             fields (mac, protection, priority, maxbw, allowed-ips match);
//             `burst`: B bursts of beginBurst + one such lookup + endBurst, the
//             configuration cost of a burst of 64 packets from one VNIC's socket.
//   baseline: L lookups through ConfigStore.vnic(index:) (a renewed transaction
//             and a decoded, allocated VNICRecord per lookup).
// With --writer another thread commits a change every millisecond meanwhile.
// Prints `key value` lines; bench/config-bench.sh runs it and adds the
// allocation counts from malloc_count.so.
import CVnicShim
import Foundation
import Synchronization
import VnicConfig
import VnicCore

enum ConfigBench {
    struct Options {
        var vnics = 10_000
        var lookups = 5_000_000
        var bursts = 2_000_000
        var db: String?
        var mode = "fast"
        var writer = false
    }

    static func main() {
        do {
            try run(try parse(Array(CommandLine.arguments.dropFirst())))
        } catch {
            printError("vnic-config-bench: \(error)")
            exit(error is VnicError && (error as! VnicError).exitCode == 2 ? 2 : 1)
        }
    }

    static func parse(_ args: [String]) throws -> Options {
        var o = Options()
        var i = 0
        func value() throws -> String {
            i += 1
            guard i < args.count else { throw VnicError.usage("\(args[i - 1]) needs a value") }
            return args[i]
        }
        func number(_ s: String, _ flag: String) throws -> Int {
            guard let n = Int(s), n > 0 else { throw VnicError.usage("\(flag): '\(s)' is not a positive number") }
            return n
        }
        while i < args.count {
            switch args[i] {
            case "--vnics": o.vnics = try number(try value(), "--vnics")
            case "--lookups": o.lookups = try number(try value(), "--lookups")
            case "--bursts": o.bursts = try number(try value(), "--bursts")
            case "--db": o.db = try value()
            case "--mode":
                o.mode = try value()
                guard o.mode == "fast" || o.mode == "baseline" else { throw VnicError.usage("--mode: '\(o.mode)' is not fast or baseline") }
            case "--writer": o.writer = true
            case "--help", "-h":
                print("usage: vnic-config-bench [--vnics N] [--lookups L] [--bursts B] [--db PATH] [--mode fast|baseline] [--writer]")
                exit(0)
            default: throw VnicError.usage("unknown argument '\(args[i])'")
            }
            i += 1
        }
        guard o.vnics <= Int(VNICRecord.indexRange.upperBound) else { throw VnicError.usage("--vnics: at most 65535") }
        return o
    }

    static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func run(_ o: Options) throws {
        let dir = o.db == nil ? NSTemporaryDirectory() + "vnic-config-bench-\(getpid())" : nil
        let path = o.db ?? dir! + "/vnic.db"
        defer { if let dir { try? FileManager.default.removeItem(atPath: dir) } }
        let store = try ConfigStore.open(path: path, create: true)

        // N VNICs with the hot properties set, one transaction.
        let t0 = nanos()
        let existing = try store.vnics().count
        if existing < o.vnics {
            try store.update { (tx) throws(VnicError) in
                for n in existing..<o.vnics {
                    let i = UInt32(n + 1)
                    var r = VNICRecord(name: "vnic\(i)", link: "uplink0", port: "p\(i)",
                                       mac: MACAddress(rawValue: 0x0200_0000_0000 | UInt64(i)),
                                       ips: [IPv4Interface(address: IPv4Address(rawValue: 0x0A00_0000 | i), prefixLength: 8)])
                    r.maxbw = 100_000_000
                    r.protection = [.macNospoof, .ipNospoof]
                    r.allowedIPs = [IPv4CIDR(network: IPv4Address(rawValue: 0x0A00_0000 | i), prefixLength: 32)!,
                                    IPv4CIDR("192.168.0.0/16")!]
                    try tx.create(r)
                }
            }
        }
        print("vnics \(o.vnics)")
        print("create_ms \(Double(nanos() - t0) / 1e6)")

        // Random indexes, precomputed (xorshift): the lookup order of a worker serving many VNICs.
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        let indexes: [UInt32] = (0..<65536).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return UInt32(x % UInt64(o.vnics)) + 1
        }

        let stop = Atomic<Bool>(false)
        let commits = Atomic<Int>(0)
        var writerThread: Thread?
        if o.writer {
            let t = Thread {
                vnic_set_current_thread_name("bench-writer")
                var n = 0
                while !stop.load(ordering: .relaxed) {
                    n += 1
                    let name = "vnic\(n % o.vnics + 1)"
                    _ = try? store.update { (tx) throws(VnicError) in
                        try tx.update(name: name, reason: "bench") { r in r.mtu = r.mtu == 1500 ? 9000 : 1500 }
                    }
                    commits.add(1, ordering: .relaxed)
                    usleep(1000)
                }
            }
            t.start()
            writerThread = t
        }

        let results = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        let worker = Thread {
            defer { done.signal() }
            do {
                let lines = try o.mode == "fast" ? fastPath(store, indexes, o) : baseline(store, indexes, o)
                results.withLock { $0 = lines }
            } catch {
                results.withLock { $0 = ["error \(error)"] }
            }
        }
        worker.stackSize = 1 << 20
        worker.start()
        done.wait()
        stop.store(true, ordering: .relaxed)
        while let t = writerThread, !t.isFinished { usleep(1000) }
        for line in results.withLock({ $0 }) { print(line) }
        if o.writer { print("writer_commits \(commits.load(ordering: .relaxed))") }
    }

    /// Reads the fields a worker needs from one VNIC and folds them into `sum`
    /// (so the optimizer cannot drop the reads).
    @inline(__always)
    static func touch(_ v: VNICView, _ sum: inout UInt64) {
        sum &+= v.mac.rawValue
        sum &+= UInt64(v.protection.rawValue)
        sum &+= UInt64(v.priority.rawValue)
        sum &+= v.maxbw ?? 0
        sum &+= v.allowedIPs.contains(IPv4Address(rawValue: 0xC0A8_0101)) ? 1 : 0
    }

    static func fastPath(_ store: ConfigStore, _ indexes: [UInt32], _ o: Options) throws -> [String] {
        let reader = try ConfigReader(store: store)
        var sum: UInt64 = 0
        var missing = 0
        try indexes.withUnsafeBufferPointer { idx throws in
            // Warm up (page in the map, fault the stack) before counting.
            try reader.beginBurst()
            for i in 0..<idx.count { if let v = reader.vnic(index: idx[i]) { touch(v, &sum) } }
            reader.endBurst()
        }
        vnic_set_current_thread_name("vnic-worker-0")   // malloc_count.so counts from here
        let (lookupNs, burstNs) = try indexes.withUnsafeBufferPointer { idx throws in
            let mask = idx.count - 1
            try reader.beginBurst()
            let a = nanos()
            for i in 0..<o.lookups {
                if let v = reader.vnic(index: idx[i & mask]) { touch(v, &sum) } else { missing += 1 }
            }
            let b = nanos()
            reader.endBurst()
            let c = nanos()
            for i in 0..<o.bursts {
                try reader.beginBurst()
                if let v = reader.vnic(index: idx[i & mask]) { touch(v, &sum) } else { missing += 1 }
                reader.endBurst()
            }
            let d = nanos()
            return (Double(b - a) / Double(o.lookups), Double(d - c) / Double(o.bursts))
        }
        vnic_set_current_thread_name("bench-main")
        return [
            "mode fast",
            "lookup_ns \(lookupNs)",
            "burst_ns \(burstNs)",
            "per_packet_ns \(burstNs / 64)",
            "lookups \(o.lookups)",
            "bursts \(o.bursts)",
            "counted_operations \(o.lookups + o.bursts)",
            "missing \(missing)",
            "checksum \(sum)",
        ]
    }

    static func baseline(_ store: ConfigStore, _ indexes: [UInt32], _ o: Options) throws -> [String] {
        let n = min(o.lookups, 500_000)
        var sum: UInt64 = 0
        for i in 0..<1000 { sum &+= UInt64(try store.vnic(index: indexes[i])?.mtu ?? 0) }
        vnic_set_current_thread_name("vnic-worker-0")
        let a = nanos()
        for i in 0..<n {
            if let r = try store.vnic(index: indexes[i & 65535]) {
                sum &+= r.mac.rawValue &+ UInt64(r.protection.rawValue) &+ (r.maxbw ?? 0)
            }
        }
        let b = nanos()
        vnic_set_current_thread_name("bench-main")
        return ["mode baseline", "lookup_ns \(Double(b - a) / Double(n))", "counted_operations \(n)", "checksum \(sum)"]
    }
}

// vnicd: the dataplane daemon. Reads the VNICs from the LMDB database, loads and
// attaches the classifier, starts one pinned worker per uplink queue, and follows
// the database: it polls the generation number every few milliseconds from its
// control thread (one cheap read transaction, never per packet) and applies only
// what changed. SIGINT/SIGTERM stop it cleanly; the XDP programs are attached
// through bpf_links, so even kill -9 leaves nothing attached. With --etcd and
// --host the database is the host's local copy of its VNICs in the fleet's
// etcd (VnicFleet's FleetSync), VM requests are committed to etcd first, and
// the host's status and audit go there (HostPublisher).
import ArgumentParser
import CVnicShim
import Glibc
import Logging
import VnicCLI
import VnicConfig
import VnicControl
import VnicCore
import VnicPlatform
import VnicDataplane
import VnicFleet
import VnicMetrics

struct VnicD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vnicd",
        abstract: "The vnic dataplane daemon: XDP steering into per-VNIC AF_XDP sockets, pinned workers.")

    @Option(help: "The configuration database (else $\(ConfigStore.pathVariable), else \(ConfigStore.defaultPath)).")
    var db: String?

    @Option(name: .long, help: "The uplink interface (default: the link the database's VNICs name).")
    var link: String?

    @Option(help: "Workers, one per uplink queue 0..<N (default: every queue of the uplink).")
    var queues: Int?

    @Option(help: "Cores to pin the workers to, comma separated (worker i on the i-th).")
    var cores: String?

    @Option(name: .customLong("xdp-mode"), help: "native (driver) or generic (skb) XDP.")
    var xdpMode: String = "native"

    @Option(name: .customLong("bpf-object"), help: "The compiled classifier (default: vnic.bpf.o beside vnicd, or $VNIC_BPF_OBJECT).")
    var bpfObject: String?

    @Flag(name: .customLong("busy-poll"), help: "Never sleep when idle (lowest latency, one core per worker).")
    var busyPoll = false

    @Flag(name: .customLong("no-pin"), help: "Do not pin the classifier and its tables in bpffs (a restart then re-attaches).")
    var noPin = false

    @Option(name: .customLong("max-vnics"), help: "The highest VNIC index the XSKMAPs hold.")
    var maxVNICs: UInt32 = VNIC_MAX_VNICS - 1

    @Option(help: "UMEM frames (\(Preflight.frameSize / 1024) KiB each) per worker, the uplink side (default \(Preflight.defaultFrames): \((UInt64(Preflight.defaultFrames) * Preflight.frameSize) >> 20) MiB).")
    var frames: UInt32?

    @Option(name: .customLong("port-frames"),
            help: "Frames of each port socket's own UMEM: a multiple of 64, 128...4096 (default 384: 768 KiB). Its fill ring holds two thirds of them (what a VM's burst finds); the rest carry what goes to the VM.")
    var portFrames: UInt32 = Dataplane.defaultPortFrames

    @Option(name: .customLong("buffer-memory"),
            help: ArgumentHelp("The most packet buffer memory (UMEM) vnicd may take: 256M, 2G, ... The workers' UMEMs take at most half of it; a VNIC whose port buffers would pass it stays down, saying so. Default: no limit (32 MiB per worker and 768 KiB per port queue).",
                               valueName: "SIZE"))
    var bufferMemory: String?

    @Option(help: ArgumentHelp("Serve Prometheus metrics at http://ADDR/metrics: PORT (loopback), IPV4:PORT or [IPV6]:PORT. Off by default.",
                               valueName: "ADDR"))
    var metrics: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: ArgumentHelp("Take this host's VNICs from the fleet's etcd cluster (host:port,...; with --host): the database becomes their local copy, kept when etcd is unreachable.",
                               valueName: "ENDPOINTS"))
    var etcd: String?

    @Option(help: ArgumentHelp("This host's name in the fleet (with --etcd): its VNICs are under /vnic/v1/hosts/NAME/.", valueName: "NAME"))
    var host: String?

    func validate() throws {
        if let q = queues, q < 1 { throw ValidationError("--queues: '\(q)' must be at least 1") }
        if xdpMode != "native" && xdpMode != "generic" {
            throw ValidationError("--xdp-mode: '\(xdpMode)' is not native or generic")
        }
        if let c = cores { _ = try parseCores(c) }
        if let m = metrics {
            do { _ = try MetricsExporter.Address(parsing: m) } catch { throw ValidationError(error.message) }
        }
        if let f = frames, f < 4096 { throw ValidationError("--frames: '\(f)' is below 4096") }
        if portFrames < 128 || portFrames > 4096 || portFrames % 64 != 0 {
            throw ValidationError("--port-frames: '\(portFrames)' is not a multiple of 64 in 128...4096")
        }
        if let m = bufferMemory, ValueSyntax.parseSize(m) == nil {
            throw ValidationError("--buffer-memory: '\(m)' is not a size (256M, 2G, a number of bytes)")
        }
        if maxVNICs < 1 || maxVNICs >= VNIC_MAX_VNICS {
            throw ValidationError("--max-vnics: '\(maxVNICs)' is not in 1...\(VNIC_MAX_VNICS - 1)")
        }
        if (etcd == nil) != (host == nil) { throw ValidationError("--etcd and --host go together") }
        if let h = host, h.isEmpty || h.contains("/") { throw ValidationError("--host: '\(h)' is not a host name (no '/')") }
        if let e = etcd {
            do { _ = try EtcdClient(endpoints: e) } catch { throw ValidationError(error.message) }
        }
    }

    func parseCores(_ text: String) throws -> [Int] {
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_CONF)))
        var list: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let c = Int(part), c >= 0 else { throw ValidationError("--cores: '\(part)' is not a core number") }
            guard c < cpus else { throw ValidationError("--cores: core \(c) does not exist (this machine has \(cpus))") }
            list.append(c)
        }
        return list
    }

    func run() throws {
        VnicLogHandler.bootstrap(program: "vnicd", level: logLevel)
        // Before any thread starts (the fleet's, the workers): they inherit this
        // mask, so the signals reach only the control thread's signalfd.
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, s) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        let path = ConfigStore.databasePath(option: db)
        let store = try ConfigStore.open(path: path, create: etcd != nil)
        try? store.setSyncMetadata(false)   // one flush per commit of vnicd's own (see ConfigStore)
        // A fleet host: the database follows etcd (FleetSync) from the revision it
        // holds; with none yet, it is listed first, which needs etcd now.
        var fleet: FleetSync?, publisher: HostPublisher?
        if let etcd, let host {
            let client = try EtcdClient(endpoints: etcd)
            let sync = FleetSync(client: client, store: store, host: host)
            let held = try store.fleetRevision()
            do {
                try sync.start()
            } catch {
                throw VnicError("--etcd: \(error.message); \(path) holds no copy of host \(host)'s VNICs yet to start from")
            }
            let from = held.map { "revision \($0) (the copy held)" } ?? "revision \((try? store.fleetRevision()).flatMap { $0 } ?? 0) (listed)"
            log("fleet: host \(host) follows etcd at \(etcd) from \(from)")
            fleet = sync
            // The host's liveness and status: under a lease, from a thread of its own.
            publisher = HostPublisher(client: client, host: host, store: store)
            publisher?.start()
        }
        defer { fleet?.stop(); publisher?.stop() }
        let first = try store.snapshot()
        let generation = first.generation
        let records = first.vnics
        guard let uplink = link ?? records.first?.link else {
            throw VnicError("nothing to serve: \(path) has no VNICs and no --link was given")
        }
        var opts = Dataplane.Options(uplink: uplink, bpfObject: try locateObject(), store: store)
        opts.queues = queues
        opts.cores = try cores.map(parseCores)
        opts.xdpMode = xdpMode == "generic" ? .generic : .native
        opts.busyPoll = busyPoll
        opts.pin = !noPin
        opts.maxVNICs = maxVNICs
        opts.framesPerWorker = frames
        opts.portFrames = portFrames
        opts.bufferMemory = bufferMemory.flatMap(ValueSyntax.parseSize)
        raiseDescriptorLimit(vnics: records.filter { $0.link == uplink }.count)

        let dp = try Dataplane(options: opts)
        let others = Set(records.map(\.link)).subtracting([uplink])
        if !others.isEmpty {
            log("VNICs on \(others.sorted().joined(separator: ", ")) are ignored: this vnicd serves \(uplink)")
        }
        // The control thread (guest requests, reconciles) keeps off the workers'
        // cores where others are left: sharing one, a woken worker preempts it.
        let allowed = vnic_current_thread_affinity_mask()
        let spare = dp.cores.reduce(allowed) { mask, c in c < 64 ? mask & ~(UInt64(1) << UInt64(c)) : mask }
        if spare != 0 { _ = vnic_set_current_thread_affinity_mask(spare) }
        log("serving \(uplink): \(dp.queueCount) worker(s) on core(s) \(dp.cores.map(String.init).joined(separator: ",")), XDP \(xdpMode), database \(path) generation \(generation)")
        let started = monotonicNow()
        log(changes: dp.apply(Reconciler.specs(records, uplink: uplink)))
        let firstStatus = dp.status(generation: generation)
        try? firstStatus.write(database: path)
        if let m = firstStatus.memory {
            let up = firstStatus.vnics.values.filter { $0.state == "up" }.count
            log("\(up) of \(firstStatus.vnics.count) VNICs up in \((monotonicNow() - started) / 1_000_000) ms; memory: \(m.residentBytes >> 20) MiB resident, \(m.residentBytesPerVNIC >> 10) KiB per VNIC, packet buffers \(m.packetBufferBytes >> 20) MiB (\(dp.frames) frames per worker)")
        }
        var exporter: MetricsExporter?
        if let m = metrics {
            let address = try MetricsExporter.Address(parsing: m)
            let e = MetricsExporter()
            e.update(dp.status(generation: generation))
            do { try e.serve(on: address) } catch { dp.shutdown(); throw error }
            exporter = e
            log("metrics at http://\(address)/metrics")
        }

        // The control loop: woken by a signal, a guest request (the workers'
        // eventfd) or every 5 ms to look at the database's generation.
        let signalFD = signalfd(-1, &signals, Int32(SFD_NONBLOCK | SFD_CLOEXEC))
        var spoofWarnings = SpoofWarnings(reasons: Dataplane.spoofReasons)
        let reconciler = Reconciler(store: store, uplink: uplink, dataplane: dp, generation: generation)
        let guest = GuestService(store: store, dataplane: dp, records: records.filter { $0.link == uplink },
                                 reconcile: { reconciler.reconcile() })
        reconciler.guest = guest
        if let fleet { guest.confirmRequest = fleet.commitVMRequest }
        var nextStatus = monotonicNow(), nextSecond = monotonicNow() + 1_000_000_000, nextFollow = nextSecond
        var fds = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: dp.controlEvents, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: dp.ports?.fd ?? -1, events: Int16(POLLIN), revents: 0)]
        while true {
            _ = poll(&fds, 3, 5)
            if fds[0].revents != 0 {
                var info = signalfd_siginfo()
                _ = read(signalFD, &info, MemoryLayout<signalfd_siginfo>.size)
                log("signal \(info.ssi_signo): stopping")
                break
            }
            if fds[1].revents != 0 {
                dp.drainRequests { index, queue, frame in guest.handle(index: index, queue: queue, frame: frame) }
            }
            if fds[2].revents != 0, dp.ports?.drain() == true {
                log(changes: dp.followPorts())   // a port appeared, went or changed
            }
            let now = monotonicNow()
            reconciler.poll()
            guest.tick(now: now)
            if now >= nextStatus {
                nextStatus = now + 250_000_000
                var status = dp.status(generation: reconciler.generation)
                status.requests = guest.counts.merging(guest.advertiser.counts) { a, _ in a }
                try? status.write(database: path)
                exporter?.update(status)
                if let publisher, let json = try? status.encoded() { publisher.publish(json) }
                if now >= nextSecond {
                    nextSecond = now + 1_000_000_000
                    spoofWarnings.check(status, store: store)
                    for e in fleet?.newErrors() ?? [] { logger.warning("fleet: \(e)") }
                }
                if now >= nextFollow {
                    nextFollow = now + dp.portFollowInterval
                    log(changes: dp.followPorts())
                }
            }
        }
        close(signalFD)
        let final = dp.status(generation: reconciler.generation)
        dp.shutdown()
        RuntimeStatus.remove(database: path)
        printSummary(final)
    }

    /// Each VNIC takes two sockets per worker and a link: the soft limit on open
    /// descriptors (1,024 under systemd) goes up to the hard one; a hard limit
    /// too low for the VNICs there are is said once.
    func raiseDescriptorLimit(vnics: Int) {
        var l = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &l) == 0 else { return }
        if l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max
            _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &l)
        }
        let need = UInt64(vnics) * (2 * UInt64(max(queues ?? 1, 1)) + 1) + 64
        if UInt64(l.rlim_cur) < need {
            logger.warning("open files are limited to \(l.rlim_cur): \(vnics) VNICs need about \(need) (raise LimitNOFILE / ulimit -n)")
        }
    }

    func locateObject() throws -> String {
        if let p = bpfObject { return p }
        if let p = ProcessInfoLite.env("VNIC_BPF_OBJECT") { return p }
        let exe = ProcessInfoLite.executableDirectory()
        for candidate in [exe + "/vnic.bpf.o", exe + "/../lib/vnic/vnic.bpf.o", "/usr/local/lib/vnic/vnic.bpf.o"]
        where access(candidate, R_OK) == 0 {
            return candidate
        }
        throw VnicError("vnic.bpf.o not found beside vnicd or in /usr/local/lib/vnic (run make build, or pass --bpf-object)")
    }

    func printSummary(_ s: RuntimeStatus) {
        log("stopped; classifier: " + s.classifier.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        for q in s.queues { log("queue \(q.queue) (core \(q.core)): rx \(q.rxPackets) tx \(q.txPackets)") }
        for (name, v) in s.vnics.sorted(by: { $0.key < $1.key }) {
            let drops = v.drops.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            log("vnic \(name): \(v.state) rx \(v.rxPackets) pkts \(v.rxBytes) B, tx \(v.txPackets) pkts \(v.txBytes) B\(drops.isEmpty ? "" : ", drops " + drops)")
        }
    }
}



enum ProcessInfoLite {
    static func env(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }
    static func executableDirectory() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }
}

/// The dataplane as the control plane uses it.
extension Dataplane: ControlDataplane {}

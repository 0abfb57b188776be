// Dataplane: the control side of forwarding. It loads the classifier, attaches it
// to the uplink through a bpf_link, starts one pinned worker per uplink queue,
// and reconciles the set of VNICs against what the database says: only the
// difference is applied (a VNIC added, removed or changed), other VNICs'
// sockets, rings and frames are left alone.
//
// Order on add: sockets, XSKMAP slots, a new worker table (workers start filling
// the port's fill ring), then the port and MAC entries that send traffic to it.
// Order on remove: the reverse; sockets are closed only after every worker
// acknowledged a table without them (a port socket's frames go with its UMEM).
import CLibXDP
import CVnicShim
import Glibc
import Logging
import VnicConfig
import VnicCore
import VnicPlatform


public final class Dataplane {
    public struct Options: Sendable {
        public var uplink: String
        /// Workers, one per uplink queue 0..<queues; nil: every queue the uplink has.
        public var queues: Int?
        /// Cores for the workers (worker i on cores[i % count]); nil: worker i on core i % CPUs.
        public var cores: [Int]?
        public var xdpMode: XDPLink.Mode = .native
        public var bind: XSKBindMode = .copy
        public var bpfObject: String
        /// UMEM frames (2 KiB) per worker (the uplink side); nil: `defaultFrames`.
        public var framesPerWorker: UInt32? = nil
        /// Frames of each port socket's own UMEM (a multiple of 64, 128...4096).
        public var portFrames: UInt32 = Dataplane.defaultPortFrames
        /// The most packet buffer memory (bytes) the workers' and the ports'
        /// UMEMs may take together: a VNIC whose port buffers would pass it stays down.
        public var bufferMemory: UInt64? = nil
        public var busyPoll = false
        /// The configuration database: each worker reads every VNIC's policy
        /// from its record there (read again after each commit).
        public var store: ConfigStore
        /// Upper bound of VNIC indexes (sizes the XSKMAPs).
        public var maxVNICs: UInt32 = VNIC_MAX_VNICS - 1
        /// Pin the links and tables in bpffs (kept across restarts; see BPF.swift).
        public var pin = true
        public init(uplink: String, bpfObject: String, store: ConfigStore) {
            self.uplink = uplink; self.bpfObject = bpfObject; self.store = store
        }
    }

    final class Active {
        var spec: VNICSpec
        let portIfindex: UInt32
        var portLink: XDPLink?
        var uplinkSockets: [XSKSocket] = []
        var portSockets: [XSKSocket] = []
        /// Each port socket's own UMEM and its free frames (freed after the sockets).
        var portUMEMs: [UMEM] = []
        var portPools: [UnsafeMutablePointer<FramePool>] = []
        var portRings: [UnsafeMutablePointer<QueueRings>] = []
        var counters: [UnsafeMutablePointer<vnic_counters>] = []
        /// The port's own transmit drops when it was attached (status shows what came after).
        var portDropBase: UInt64 = 0
        /// State shared by the VNIC's workers (VNICEntry.tat): maxbw [0] towards
        /// the VM, [1] from it; [2] its configuration requests; [3] its last router advertisement.
        let tat = UnsafeMutablePointer<UInt64>.allocate(capacity: 4)
        init(spec: VNICSpec, portIfindex: UInt32) {
            self.spec = spec; self.portIfindex = portIfindex
            tat.initialize(repeating: 0, count: 4)
        }
        /// Takes a changed spec in place (same index and port).
        func update(_ new: VNICSpec) { spec = new }
        deinit {
            portLink = nil
            uplinkSockets.removeAll(); portSockets.removeAll()
            portUMEMs.removeAll()   // after their sockets
            portPools.forEach(FramePool.destroy)
            portRings.forEach { $0.deallocate() }
            counters.forEach { $0.deallocate() }
            tat.deallocate()
        }
    }

    public let options: Options
    public let queueCount: Int
    /// UMEM frames per worker.
    public let frames: UInt32
    public let cores: [Int]
    let object: BPFObject
    let uplinkLink: XDPLink
    /// Where the links and tables are pinned (nil: not pinned), and whether they
    /// were an earlier vnicd's (then the first `apply` removes stale entries).
    let pins: PinDirectory?
    public private(set) var adopted: Bool
    private var pruned = false
    let macs: BPFMap, uplinkXSKs: BPFMap, portVNICs: BPFMap, portXSKs: BPFMap, xdpCounters: BPFMap
    let portProgramFD: Int32
    var workers: [Worker] = []
    var active: [String: Active] = [:]
    /// Desired VNICs by name, and why a desired VNIC is not up.
    var desired: [String: VNICSpec] = [:]
    var down: [String: String] = [:]
    var tableGeneration: UInt64 = 0
    /// Tables published but maybe still in use: freed when every worker moved past them.
    var retired: [(generation: UInt64, tables: [UnsafeMutablePointer<WorkerTable>])] = []
    var current: [UnsafeMutablePointer<WorkerTable>]? = nil
    /// Rings between workers, [from][to], made when a port first needs one
    /// (fewer queues than workers), freed at shutdown.
    var handoffRings: [[FrameRing?]] = []
    static let handoffSlots = 512

    /// An eventfd the workers signal when a guest request arrives (poll it, then
    /// `drainRequests`).
    public let controlEvents: Int32
    /// rtnetlink: the ports' notifications (poll `ports.fd`, then `followPorts`)
    /// and facts; nil when rtnetlink could not be opened (then ports are looked
    /// up by name only and no carrier or port drops are known).
    public let ports: PortMonitor?
    /// The last dump of the namespace's links, by name, and of their receive
    /// queues, by ifindex (nil: the kernel does not list queues).
    var portFacts: [String: PortFacts] = [:]
    var portQueues: [UInt32: Int]?
    private var portError: String?

    /// UMEM frames per worker (the uplink side) when not told: 32 MiB. The
    /// ports do not draw on it: each port socket has a UMEM of its own
    /// (`portFrames`). (The kernel gives every (device, queue) bound to a UMEM
    /// a descriptor array over all of its frames, about 128 bytes a frame: a
    /// port sharing the worker's 16,384 frames cost 2 MiB of kernel memory, one
    /// with 256 of its own costs 32 KiB.)
    public static let defaultFrames = Preflight.defaultFrames
    static let minimumFrames: UInt32 = 4096

    /// The frames per worker for `workers` workers: the option, else the
    /// default; with --buffer-memory, the workers take at most half of it (the
    /// rest is the ports'). An error names what does not fit.
    static func framesPerWorker(_ o: Options, workers: Int) throws(VnicError) -> UInt32 {
        var frames = o.framesPerWorker ?? defaultFrames
        if let cap = o.bufferMemory {
            let allowed = cap / 2 / UInt64(workers) / UInt64(UMEM.frameSize)
            guard allowed >= UInt64(minimumFrames) else {
                throw VnicError.usage("--buffer-memory: half of \(cap >> 20) MiB gives \(allowed) frames to each of \(workers) workers, fewer than \(minimumFrames) (\(UInt64(minimumFrames) * UInt64(workers) * 4) KiB at least)")
            }
            if o.framesPerWorker == nil { frames = UInt32(min(UInt64(frames), allowed)) }
            else if UInt64(frames) > allowed {
                throw VnicError.usage("--frames: \(frames) frames for each of \(workers) workers is more than half of --buffer-memory \(cap >> 20) MiB allows (\(allowed))")
            }
        }
        let bytes = UInt64(frames) * UInt64(UMEM.frameSize) * UInt64(workers)
        if let available = availableMemory(), bytes > available {
            throw VnicError("packet buffers of \(bytes >> 20) MiB (\(workers) workers x \(frames) frames of 2 KiB) are more than this host has available (\(available >> 20) MiB): lower --frames, or serve fewer queues (--queues)")
        }
        return frames
    }

    /// This process's resident set (/proc/self/statm), in bytes.
    static func residentBytes() -> UInt64 {
        guard let text = readProcFile("/proc/self/statm") else { return 0 }
        let pages = text.split(separator: " ").dropFirst().first.flatMap { UInt64($0) } ?? 0
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// MemAvailable of /proc/meminfo, in bytes.
    static func availableMemory() -> UInt64? {
        guard let text = readProcFile("/proc/meminfo") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let kib = line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }
            return kib.map { $0 * 1024 }
        }
        return nil
    }

    /// Frames of a port socket's own UMEM by default: 768 KiB, of which its
    /// fill ring holds 256 (what a VM's burst finds: QEMU's virtio-net queues
    /// have 256 entries by default) and 128 carry what goes to the VM
    /// (`Worker.towardsVM`).
    public static let defaultPortFrames: UInt32 = 384

    /// The depth of a VNIC's receive ring on the uplink: its VSQ towards the VM,
    /// which holds what its port's own frames cannot yet (a 4,096-frame burst
    /// at a generator's speed, faster than a worker copies into a veth).
    static let towardsVMDepth: UInt32 = 4096

    /// The packet buffer bytes in use: the workers' UMEMs and every port socket's.
    var bufferBytes: UInt64 {
        let ports = active.values.reduce(0) { $0 + $1.portUMEMs.count }
        return (UInt64(frames) * UInt64(workers.count) + UInt64(ports) * UInt64(options.portFrames)) * UInt64(UMEM.frameSize)
    }

    /// Throws when one more port UMEM (besides `pending` made for a VNIC
    /// not up yet) would pass --buffer-memory.
    private func checkBufferMemory(pending: Int) throws(VnicError) {
        guard let cap = options.bufferMemory else { return }
        let more = UInt64(options.portFrames) * UInt64(UMEM.frameSize)
        guard bufferBytes + UInt64(pending + 1) * more <= cap else {
            throw VnicError("its port buffers (\(more >> 10) KiB a queue) would pass --buffer-memory \(cap >> 20) MiB (\(bufferBytes >> 20) MiB in use)")
        }
    }

    public init(options: Options) throws(VnicError) {
        self.options = options
        controlEvents = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard controlEvents >= 0 else { throw VnicError("eventfd: \(errnoString(errno))") }
        do {
            ports = try PortMonitor()
        } catch {
            Logger(label: "vnicd").warning("\(error.message): ports are not followed (a recreated tap needs a restart)")
            ports = nil
        }
        let up = options.uplink
        guard if_nametoindex(up) != 0 else { throw VnicError("uplink \(up): no such interface") }
        var rxq: UInt32 = 0, txq: UInt32 = 0
        let rc = vnic_queue_counts(up, &rxq, &txq)
        guard rc == 0 else { throw VnicError("read queue count of \(up): \(errnoString(rc))") }
        let have = Int(min(rxq, txq))
        let queues = options.queues ?? have
        guard queues >= 1, queues <= have, queues <= Int(VNIC_MAX_QUEUES) else {
            throw VnicError.usage("--queues: \(up) has \(have) queue\(have == 1 ? "" : "s"), asked for \(queues)")
        }
        queueCount = queues
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let coreList = options.cores ?? Array(0..<queues).map { $0 % max(cpus, 1) }
        cores = (0..<queues).map { coreList[$0 % coreList.count] }
        frames = try Dataplane.framesPerWorker(options, workers: queues)

        // Tables and links pinned by an earlier vnicd on this uplink are adopted;
        // with none (or ones this object cannot use), it starts afresh and pins its own.
        let pins = options.pin ? try PinDirectory.prepare(uplink: up) : nil
        if let m = pins?.mounted {
            let logger = Logger(label: "vnicd")
            logger.info("mounted a bpf file system at \(Preflight.bpffsPath) (there was none) to pin the classifier")
            if m.hostNamespace == false {
                logger.warning("that mount is in a mount namespace of vnicd's own (ip netns exec?): the pins go with it, and a restart elsewhere re-attaches")
            }
        }
        adopted = pins?.existed ?? false
        func loadObject() throws(VnicError) -> BPFObject {
            let o = try BPFObject(path: options.bpfObject)
            try o.setSettings(vnic_settings(queue_count: UInt32(queues), pad: 0))
            let slots = (options.maxVNICs + 1) * UInt32(queues)
            try o.setMaxEntries(map: "uplink_xsks", slots)
            try o.setMaxEntries(map: "port_xsks", slots)
            if let pins { try o.pinMaps(PinDirectory.maps, in: pins.path) }
            try o.load()
            return o
        }
        do {
            object = try loadObject()
        } catch where adopted {
            PinLayout.remove(pins!.path)   // an older layout: start afresh
            adopted = false
            object = try loadObject()
        }
        self.pins = pins
        macs = try object.mapFD(named: "vnic_macs")
        uplinkXSKs = try object.mapFD(named: "uplink_xsks")
        portVNICs = try object.mapFD(named: "port_vnics")
        portXSKs = try object.mapFD(named: "port_xsks")
        xdpCounters = try object.mapFD(named: "vnic_counters")
        portProgramFD = try object.programFD(named: "vnic_port")
        let uplinkProgram = try object.programFD(named: "vnic_uplink")
        do {
            uplinkLink = try Dataplane.attach(uplinkProgram, to: up, name: "uplink", mode: options.xdpMode, pins: pins)
            for q in 0..<queues {
                let reader = try ConfigReader(store: options.store)
                let w = try Worker(queue: UInt32(q), core: cores[q], uplinkName: up, frames: frames,
                                   busyPoll: options.busyPoll, bind: options.bind, reader: reader, wakeFD: controlEvents)
                try uplinkXSKs.update(UInt32(q), w.uplinkSocket!.fd)
                workers.append(w)
            }
            handoffRings = Array(repeating: Array(repeating: nil, count: queues), count: queues)
            for w in workers {
                for (i, peer) in workers.enumerated() { w.peers[i] = (peer.sleeping, peer.wakeEvent) }
                w.peerCount = workers.count
            }
            for w in workers { try w.start() }
        } catch {
            // Nothing of a failed start stays attached, unless an earlier vnicd left it so.
            if !adopted, let pins { PinLayout.remove(pins.path) }
            for w in workers { w.stop() }
            close(controlEvents)
            throw error
        }
    }

    /// Attaches `program` to `ifname`: into the link pinned for it (replacing
    /// the program in place), else through a new link, pinned when `pins` is set.
    static func attach(_ program: Int32, to ifname: String, name: String, mode: XDPLink.Mode,
                       pins: PinDirectory?) throws(VnicError) -> XDPLink {
        guard let pins else { return try XDPLink(programFD: program, ifname: ifname, mode: mode) }
        unlink(pins.link(name, mode: mode == .native ? .generic : .native))   // the other mode's link: detach it
        if let l = XDPLink.adopt(pinned: pins.link(name, mode: mode), programFD: program, ifname: ifname) { return l }
        let l = try XDPLink(programFD: program, ifname: ifname, mode: mode)
        try l.pin(pins.link(name, mode: mode))
        return l
    }

    /// Stops the workers and releases everything: the pins go, and the XDP
    /// links detach.
    public func shutdown() {
        for w in workers { w.stop() }
        close(controlEvents)
        for (_, a) in active { unmap(a) }
        active.removeAll()
        uplinkLink.unpin()
        if let pins { PinLayout.remove(pins.path) }
        for r in retired { r.tables.forEach(WorkerTable.destroy) }
        retired.removeAll()
        workers.removeAll()
        for row in handoffRings { for r in row { r?.deallocate() } }
        handoffRings.removeAll()
    }

    // MARK: reconcile

    /// Makes the running set of VNICs match `specs` (those on this uplink).
    /// Returns one line per change or failure, for the log.
    @discardableResult
    public func apply(_ specs: [VNICSpec]) -> [String] {
        refreshPortFacts(queues: true)
        return perform(VNICPlan(running: running, desired: specs))
    }

    /// The VNICs that are up (the running side of a `VNICPlan`).
    public var running: [VNICSpec] { active.values.map(\.spec) }

    /// Carries out `plan` (computed against `running`, which nothing has
    /// changed since): updates in place, removals, additions; a desired VNIC
    /// that cannot come up is kept down with its reason and tried again at the
    /// next plan. Returns one line per change or failure, for the log.
    @discardableResult
    public func perform(_ plan: VNICPlan) -> [String] {
        var log: [String] = []
        desired = Dictionary(plan.desired.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var updated = false, gone: [Active] = [], toAdd: [VNICSpec] = []
        for action in plan.actions {
            switch action {
            case .update(let old, let new):
                guard let a = active[old.name] else { continue }
                if new.mac != old.mac {
                    do {
                        try macs.update(macKey(new.mac), vnic_mac_entry(vnic_index: new.index, flags: 0))
                    } catch {
                        log.append("vnic \(old.name): \(error.message)")
                    }
                    macs.delete(macKey(old.mac))
                }
                log.append(action.description)
                a.update(new)
                updated = true
            case .remove(let old, _):
                guard let a = active[old.name] else { continue }
                gone.append(a)
                log.append(action.description)
            case .add(let spec):
                toAdd.append(spec)
            }
        }
        if updated { publish() }
        // Removed or otherwise changed (port, index): taken down, then re-added.
        if !gone.isEmpty {
            for a in gone { unmap(a) }
            for a in gone { active[a.spec.name] = nil }
            publish()   // the workers take back what the VNICs' uplink sockets held
            for a in gone { a.portLink = nil; a.uplinkSockets.removeAll(); a.portSockets.removeAll(); a.portUMEMs.removeAll() }
        }
        for name in down.keys where desired[name] == nil { down[name] = nil }
        // Added (or previously down).
        var added: [Active] = []
        for spec in toAdd where active[spec.name] == nil {
            do {
                let a = try bringUp(spec)
                active[spec.name] = a
                added.append(a)
                down[spec.name] = nil
                let q = a.portRings.count
                log.append("vnic \(spec.name) up on port \(spec.port ?? "-")"
                           + (q < workers.count ? " (\(q) queue\(q == 1 ? "" : "s") for \(workers.count) workers: the others hand over)" : ""))
            } catch {
                if down[spec.name] != error.message { log.append("vnic \(spec.name) down: \(error.message)") }
                down[spec.name] = error.message
            }
        }
        if !added.isEmpty {
            publish()
            for a in added {
                do {
                    try portVNICs.update(a.portIfindex, a.spec.index)
                    try macs.update(macKey(a.spec.mac), vnic_mac_entry(vnic_index: a.spec.index, flags: 0))
                } catch {
                    log.append("vnic \(a.spec.name): \(error.message)")
                }
            }
        }
        if adopted && !pruned {
            pruned = true
            log += pruneStale()
        }
        return log
    }

    /// Follows the kernel's ports (after a link notification, and once a
    /// second): a VNIC whose port was removed goes down, one whose port was
    /// recreated (a new ifindex: QEMU and libvirt make a tap at each guest
    /// start) or whose queue count changed (QEMU attaches and detaches a
    /// multi-queue tap's queues as its guest enables them) is re-attached, and a
    /// down VNIC whose port appeared comes up. Other VNICs are not touched.
    public func followPorts() -> [String] {
        refreshPortFacts(queues: true)
        var reattach: [String: String] = [:]
        for (name, a) in active {
            guard let port = a.spec.port else { continue }
            guard let f = portFacts[port] else {
                if ports != nil || if_nametoindex(port) == 0 { reattach[name] = "port \(port) removed" }
                continue
            }
            if f.ifindex != a.portIfindex {
                reattach[name] = "port \(port) recreated (ifindex \(a.portIfindex) -> \(f.ifindex))"
            } else if let real = portQueues?[f.ifindex] {
                // QEMU attaches and detaches a tap's queues as its guest enables them.
                if min(real, workers.count) != a.portRings.count {
                    reattach[name] = "port \(port) has \(real) queue\(real == 1 ? "" : "s") now (\(a.portRings.count) bound)"
                }
            } else if portQueues == nil, a.portRings.count < workers.count, f.allocatedRXQueues > a.portRings.count,
                      hasQueue(port, a.portRings.count) {
                reattach[name] = "port \(port) has queue \(a.portRings.count) now"
            }
        }
        guard !reattach.isEmpty || !down.isEmpty else { return [] }
        return perform(VNICPlan(running: running, desired: Array(desired.values), reattach: reattach))
    }

    /// How often to follow the ports by a full dump (nanoseconds): once a
    /// second, and 4 ms per port beyond 250 ports (the kernel looks up each
    /// veth peer's namespace id in a dump: with 1,000 ports in 1,000
    /// namespaces, dumps 4 times a second took about a quarter of a core).
    /// Link notifications still arrive at once.
    public var portFollowInterval: UInt64 { max(1_000_000_000, UInt64(active.count) * 4_000_000) }

    /// Whether `port` has queue `q` now, where the kernel does not list a
    /// device's queues (before Linux 6.8): a socket tries to bind.
    private func hasQueue(_ port: String, _ q: Int) -> Bool {
        guard q < workers.count, let umem = workers[q].umem else { return false }
        return ((try? XSKSocket(ifname: port, queue: UInt32(q), umem: umem, pair: RingPair(), rxSize: 64, txSize: 0,
                                bind: options.bind, nilIfNoQueue: true)) ?? nil) != nil
    }

    /// One link dump; with `queues`, one queue dump too (what attaching needs,
    /// not what the status shows).
    private func refreshPortFacts(queues: Bool) {
        guard let ports else { return }
        do {
            portFacts = try ports.links()
            if queues { portQueues = ports.receiveQueues() }
            portError = nil
        } catch {
            if portError != error.message { Logger(label: "vnicd").warning("\(error.message)") }
            portError = error.message
        }
    }

    private func macKey(_ mac: MACAddress) -> vnic_mac_key {
        let b = mac.bytes
        return vnic_mac_key(addr: (b[0], b[1], b[2], b[3], b[4], b[5]), pad: 0)
    }

    private func slot(_ index: UInt32, _ q: Int) -> UInt32 { index * UInt32(queueCount) + UInt32(q) }

    /// After adopting an earlier vnicd's pins: removes the table entries and
    /// port links of VNICs that are no longer active (deleted, changed or down
    /// while no vnicd ran).
    private func pruneStale() -> [String] {
        let liveMACs = Set(active.values.map { MACKey.from($0.spec.mac.bytes) })
        let livePorts = Set(active.values.map(\.portIfindex))
        var removed = 0
        for key in macs.keys(as: vnic_mac_key.self) {
            let a = key.addr
            if !liveMACs.contains(MACKey.from([a.0, a.1, a.2, a.3, a.4, a.5])) { macs.delete(key); removed += 1 }
        }
        for key in portVNICs.keys(as: UInt32.self) where !livePorts.contains(key) { portVNICs.delete(key); removed += 1 }
        var links = 0
        if let pins {
            let live = Set(active.values.compactMap { $0.portLink?.pinPath })
            for name in PinLayout.entries(pins.path) where name.hasPrefix("link-port-") && !live.contains(pins.path + "/" + name) {
                unlink(pins.path + "/" + name); links += 1
            }
        }
        return ["adopted the classifier pinned at \(pins?.path ?? "?"): \(removed) stale table entr\(removed == 1 ? "y" : "ies"), \(links) stale port link\(links == 1 ? "" : "s") removed"]
    }

    private func bringUp(_ spec: VNICSpec) throws(VnicError) -> Active {
        guard spec.index >= 1, spec.index <= options.maxVNICs else {
            throw VnicError("index \(spec.index) is above --max-vnics \(options.maxVNICs)")
        }
        guard let port = spec.port else { throw VnicError("no port") }
        let ifindex = if_nametoindex(port)
        guard ifindex != 0 else { throw VnicError("port \(port) not found") }
        // A port that is down carries nothing: bring it up, as libvirt does for
        // the tap it makes (QEMU with script=no leaves its tap down).
        if let ports, portFacts[port]?.up == false {
            try ports.setUp(port)
            Logger(label: "vnicd").info("port \(port) was down: set it up")
        }
        let a = Active(spec: spec, portIfindex: ifindex)
        a.portDropBase = portFacts[port].map { $0.ifindex == ifindex ? $0.txDropped : 0 } ?? 0
        do throws(VnicError) {
            // Port sockets on the port's queues 0, 1, ... as far as it has them (a
            // tap has as many as its guest attached, libvirt's default is one):
            // worker q owns port queue q; a worker beyond them hands its frames
            // for the VM to worker q % queues (see publish).
            // The kernel lists a device's real queues (6.8+); else binding probes them.
            let real = portQueues?[ifindex] ?? workers.count
            for (q, w) in workers.enumerated() {
                let up = try XSKSocket(ifname: options.uplink, queue: UInt32(q), umem: w.umem!, pair: w.umem!.firstPair,
                                       rxSize: Dataplane.towardsVMDepth, txSize: 0, bind: options.bind)
                a.uplinkSockets.append(up)
                // A port socket is the first socket of a small UMEM of its own
                // (multi-buffer, so a guest's TSO frame arrives as a chain).
                if q == a.portSockets.count, q == 0 || q < real {
                    try checkBufferMemory(pending: a.portUMEMs.count)
                    let n = options.portFrames
                    var ring: UInt32 = 64
                    while ring < n { ring <<= 1 }
                    let pu = try UMEM(frameCount: n, fillSize: ring, compSize: ring)
                    if let ps = try XSKSocket(ifname: port, queue: UInt32(q), umem: pu, pair: pu.firstPair,
                                              rxSize: ring, txSize: ring, bind: options.bind, nilIfNoQueue: q > 0,
                                              multiBuffer: true) {
                        a.portSockets.append(ps)
                        a.portUMEMs.append(pu)
                        let pool = FramePool.make(area: pu.area, frames: Int(n))
                        a.portPools.append(pool)
                        let rings = UnsafeMutablePointer<QueueRings>.allocate(capacity: 1)
                        rings.initialize(to: QueueRings(rx: ps.rx!, tx: ps.tx!, fill: pu.firstPair.fill, comp: pu.firstPair.comp,
                                                        fd: ps.fd, frames: pool, fillTarget: n - Worker.towardsVM(n)))
                        a.portRings.append(rings)
                    }
                }
                let c = UnsafeMutablePointer<vnic_counters>.allocate(capacity: 1)
                c.initialize(to: vnic_counters())
                a.counters.append(c)
            }
            a.portLink = try Dataplane.attach(portProgramFD, to: port, name: "port-\(port)", mode: options.xdpMode, pins: pins)
            // The workers' idle waits (a socket leaves them when it closes).
            for (q, w) in workers.enumerated() {
                w.watch(fd: a.uplinkSockets[q].fd, index: spec.index, port: false)
                if q < a.portSockets.count { w.watch(fd: a.portSockets[q].fd, index: spec.index, port: true) }
            }
            for q in 0..<queueCount { try uplinkXSKs.update(slot(spec.index, q), a.uplinkSockets[q].fd) }
            for q in a.portSockets.indices { try portXSKs.update(slot(spec.index, q), a.portSockets[q].fd) }
        } catch {
            unmap(a)
            throw error
        }
        return a
    }

    /// Removes a VNIC's map entries (traffic stops reaching its sockets).
    private func unmap(_ a: Active) {
        a.portLink?.unpin()
        macs.delete(macKey(a.spec.mac))
        portVNICs.delete(a.portIfindex)
        for q in 0..<queueCount {
            uplinkXSKs.delete(slot(a.spec.index, q))
            portXSKs.delete(slot(a.spec.index, q))
        }
    }

    /// Publishes a table per worker built from `active` and waits until every worker
    /// installed it; then frees the tables no worker can still be using.
    private func publish() {
        tableGeneration += 1
        let gen = tableGeneration
        // Priority order (high first), then index: the workers serve them in this order.
        let list = active.values.sorted {
            ($0.spec.priority.rawValue, $1.spec.index) > ($1.spec.priority.rawValue, $0.spec.index)
        }
        var tables: [UnsafeMutablePointer<WorkerTable>] = []
        // A port with P < workers queues: worker q >= P hands over to worker q % P.
        for a in list where a.portRings.count < workers.count {
            for q in a.portRings.count..<workers.count where handoffRings[q][q % a.portRings.count] == nil {
                handoffRings[q][q % a.portRings.count] = FrameRing.allocate(capacity: Dataplane.handoffSlots,
                                                                           slotBytes: Int(UMEM.frameSize))
            }
        }
        for (q, w) in workers.enumerated() {
            let entries = list.map { a in
                let own = q < a.portRings.count
                return VNICEntry(index: a.spec.index, mac: MACKey.from(a.spec.mac.bytes),
                                 uplinkRX: a.uplinkSockets[q].rx!, port: own ? a.portRings[q] : nil, counters: a.counters[q],
                                 tat: a.tat, handoff: own ? -1 : Int32(q % a.portRings.count),
                                 handoffPort: own ? nil : a.portRings[q % a.portRings.count])
            }
            let incoming = workers.indices.compactMap { handoffRings[$0][q] }
            let t = WorkerTable.make(generation: gen, entries: entries, outgoing: handoffRings[q], incoming: incoming)
            tables.append(t)
            if let never = w.publish(t) { WorkerTable.destroy(never) }
            w.wake()
        }
        if let cur = current { retired.append((gen - 1, cur)) }
        current = tables
        // Woken, a worker takes the table within microseconds. Wait for every one:
        // the caller closes sockets the previous table named right after this.
        var waited = 0
        while workers.contains(where: { $0.installed < gen }) {
            waited += 1
            if waited < 200 { sched_yield() } else { usleep(50) }
            if waited == 20_200 { Logger(label: "vnicd").warning("a worker has not taken a new table for 1 s (is its core starved?)") }
        }
        let oldest = gen
        retired.removeAll { r in
            guard r.generation < oldest else { return false }
            r.tables.forEach(WorkerTable.destroy)
            return true
        }
    }

    // MARK: guest protocol

    /// Hands every guest request the workers intercepted to `body`: the VNIC
    /// index of the port it came in on, the worker queue, the frame.
    public func drainRequests(_ body: (UInt32, Int, [UInt8]) -> Void) {
        var counter: UInt64 = 0
        _ = read(controlEvents, &counter, 8)
        for (q, w) in workers.enumerated() {
            while w.toControl.pop({ index, bytes in body(index, q, Array(bytes)) }) {}
        }
    }

    /// Queues a frame for VNIC `index`'s port, sent by worker `queue`; false
    /// when that worker's ring is full.
    @discardableResult
    public func send(toVNIC index: UInt32, queue: Int, frame: [UInt8]) -> Bool {
        guard workers.indices.contains(queue) else { return false }
        let queued = frame.withUnsafeBytes { workers[queue].fromControl.push(tag: index, $0.baseAddress!, count: $0.count) }
        workers[queue].wake()
        return queued
    }

    // MARK: status

    /// The control thread's reader of the VNICs' records (status only).
    private lazy var statusReader = try? ConfigReader(store: options.store)

    /// The port facts (carrier, transmit drops) are those of the last link
    /// dump: `followPorts`' once a second, or a link notification's. (A dump
    /// 4 times a second cost a quarter of a core with 1,000 ports in 1,000
    /// namespaces: the kernel looks up each veth peer's namespace id.)
    public func status(generation: UInt64) -> RuntimeStatus {
        var vnics: [String: RuntimeStatus.VNIC] = [:]
        for (name, reason) in down { vnics[name] = RuntimeStatus.VNIC(state: "down: \(reason)") }
        // The VNICs with maxbw set, as their records say now (a full ring is then the limiter's doing).
        var limited = Set<UInt32>()
        if let reader = statusReader, (try? reader.beginBurst()) != nil {
            for a in active.values where (reader.vnic(index: a.spec.index)?.maxbw ?? 0) > 0 { limited.insert(a.spec.index) }
            reader.releaseSnapshot()
        }
        for (name, a) in active {
            // Attached, but the port carries nothing: a tap with no guest, a veth
            // whose peer is down. It comes back up with the carrier.
            let facts = a.spec.port.flatMap { portFacts[$0] }.flatMap { $0.ifindex == a.portIfindex ? $0 : nil }
            var v = RuntimeStatus.VNIC(state: facts?.carrier == false ? "down: no carrier" : "up")
            if let f = facts, f.txDropped > a.portDropBase { v.drops["port-drop"] = f.txDropped &- a.portDropBase }
            for c in a.counters {
                v.rxPackets &+= vnic_counter_load(c.pointer(to: \.rx_packets)!)
                v.rxBytes &+= vnic_counter_load(c.pointer(to: \.rx_bytes)!)
                v.txPackets &+= vnic_counter_load(c.pointer(to: \.tx_packets)!)
                v.txBytes &+= vnic_counter_load(c.pointer(to: \.tx_bytes)!)
                let drops = (UnsafeMutableRawPointer(c) + vnicCountersDropsOffset).assumingMemoryBound(to: UInt64.self)
                for (i, name) in Dataplane.dropNames.enumerated() {
                    let n = vnic_counter_load(drops + i)
                    if n > 0 { v.drops[name, default: 0] &+= n }
                }
            }
            // Drops in the kernel before a worker saw the frame: towards the VM on the
            // uplink sockets, from the VM on the port sockets.
            // A full ring is a full VSQ; with maxbw set, frames wait there for the
            // limiter, so what overflows is the rate limit's doing.
            for sock in a.uplinkSockets { v.vsqToVM &+= UInt64(sock.rxLevel) }
            for sock in a.portSockets { v.vsqFromVM &+= UInt64(sock.rxLevel) }
            // A port socket's frames are its own: its fill ring is empty when they
            // all wait in its receive ring (the VSQ from the VM) or on their way,
            // so that too is a full VSQ. The kernel counts such a frame in
            // rx_dropped as well: once here. The VNIC's receive sockets on the
            // uplink share their queue's fill ring, whose empty count the kernel
            // reports on each of them: it is the queue's (Queue.noBuffer), and a
            // socket's own rx_dropped is what it lost for want of a frame
            // (no-buffer, or a frame longer than a UMEM frame).
            let full = limited.contains(a.spec.index) ? "rate-limit" : "vsq-full"
            for sock in a.portSockets {
                let st = sock.statistics()
                for (reason, n) in [(full, st.rx_ring_full &+ st.rx_fill_ring_empty_descs),
                                    ("kernel", st.rx_invalid_descs &+ (st.rx_dropped &- min(st.rx_dropped, st.rx_fill_ring_empty_descs)))]
                where n > 0 {
                    v.drops[reason, default: 0] &+= n
                }
            }
            for sock in a.uplinkSockets {
                let st = sock.statistics()
                for (reason, n) in [(full, st.rx_ring_full), ("no-buffer", st.rx_dropped), ("kernel", st.rx_invalid_descs)]
                where n > 0 {
                    v.drops[reason, default: 0] &+= n
                }
            }
            vnics[name] = v
        }
        let queues = workers.enumerated().map { q, w in
            var queue = RuntimeStatus.Queue(queue: q, core: w.core, rxPackets: vnic_counter_load(w.queueCounters),
                                txPackets: vnic_counter_load(w.queueCounters + 1),
                                freeFrames: vnic_load_u64_acquire(w.queueCounters + 2),
                                busyCycles: vnic_counter_load(w.queueCounters + 3), cycles: vnic_counter_load(w.queueCounters + 4))
            queue.noBuffer = w.uplinkSocket?.statistics().rx_fill_ring_empty_descs
            return queue
        }
        var classifier: [String: UInt64] = [:]
        for (i, name) in Dataplane.xdpCounterNames.enumerated() {
            classifier[name] = xdpCounters.perCPUSum(index: UInt32(i))
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var s = RuntimeStatus(pid: getpid(), updated: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9, generation: generation,
                              classifier: classifier, queues: queues, vnics: vnics, uplink: options.uplink)
        let resident = Dataplane.residentBytes()
        s.memory = RuntimeStatus.Memory(residentBytes: resident, packetBufferBytes: bufferBytes,
                                        residentBytesPerVNIC: resident / UInt64(max(active.count, 1)))
        return s
    }

    /// Names of enum vnic_drop_reason, in order (bpf/vnic.shared.h's list).
    package static let dropNames = (0..<VNIC_DROP_REASON_MAX.rawValue).map { String(cString: vnic_drop_name($0)) }
    /// The drop reasons that are spoofing (the AntiSpoof verdicts but malformed):
    /// what vnicd warns the host about.
    public static let spoofReasons = dropNames.prefix(Int(VNIC_DROP_SPOOF_SERVICE.rawValue) + 1).filter { $0 != "malformed" }
    /// Names of enum vnic_xdp_counter, in order (bpf/vnic.shared.h's list).
    static let xdpCounterNames = (0..<VNIC_XDP_COUNTER_MAX.rawValue).map { String(cString: vnic_xdp_counter_name($0)) }
}

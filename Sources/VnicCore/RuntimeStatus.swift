// RuntimeStatus: what a running vnicd publishes for the CLI (VNIC state, counters).
// The type lives in VnicCore (Codable only); reading and writing the file, in
// VnicConfig. vnicd rewrites it atomically (temp file + rename) a few times a
// second from its control thread, never from a worker; readers treat a missing,
// stale or unparsable file as "no daemon". Path: the database path + "-status.json".
public struct RuntimeStatus: Codable, Sendable, Equatable {
    public struct Queue: Codable, Sendable, Equatable {
        public var queue: Int
        public var core: Int
        public var rxPackets: UInt64
        public var txPackets: UInt64
        /// Frames of the worker's UMEM free in its pool (not in any ring).
        public var freeFrames: UInt64
        /// Cycles (TSC) the worker spent in loops that moved frames, and in all:
        /// the busy ratio over an interval is the ratio of their increments.
        public var busyCycles: UInt64
        public var cycles: UInt64
        /// Frames the uplink's queue found no fill frame for (the worker's UMEM
        /// short: every VNIC's receive socket on the queue shares that fill ring).
        public var noBuffer: UInt64? = nil
        public init(queue: Int, core: Int, rxPackets: UInt64, txPackets: UInt64, freeFrames: UInt64,
                    busyCycles: UInt64 = 0, cycles: UInt64 = 0) {
            self.queue = queue; self.core = core; self.rxPackets = rxPackets; self.txPackets = txPackets
            self.freeFrames = freeFrames; self.busyCycles = busyCycles; self.cycles = cycles
        }
    }
    public struct VNIC: Codable, Sendable, Equatable {
        /// "up" (sockets bound, forwarding), "down" (its port is missing), or a short reason.
        public var state: String
        public var rxPackets: UInt64 = 0
        public var rxBytes: UInt64 = 0
        public var txPackets: UInt64 = 0
        public var txBytes: UInt64 = 0
        /// Drops by reason (`spoof-mac`, `vsq-full`, ...); only non-zero reasons need appear.
        public var drops: [String: UInt64] = [:]
        /// Frames waiting in the VNIC's VSQs now: towards the VM (its receive
        /// rings on the uplink) and from the VM (its port's receive rings).
        public var vsqToVM: UInt64 = 0
        public var vsqFromVM: UInt64 = 0
        public init(state: String) { self.state = state }
    }
    /// Guest protocol requests by outcome (accepted, denied, duplicate, malformed, ...).
    public var requests: [String: UInt64]?
    /// The uplink vnicd serves (absent in files of older daemons).
    public var uplink: String?
    public var pid: Int32
    /// Seconds since 1970 of the last rewrite.
    public var updated: Double
    public var generation: UInt64
    /// Classifier counters summed over CPUs: `unknown-dst`, `redirected`, `flooded`, ...
    public var classifier: [String: UInt64]
    public var queues: [Queue]
    public var vnics: [String: VNIC]
    /// The daemon's memory: its resident set (bytes, /proc) and its packet
    /// buffers (every worker's UMEM, bytes), and the resident set per VNIC
    /// that is up (absent in files of older daemons).
    public var memory: Memory?
    public struct Memory: Codable, Sendable, Equatable {
        public var residentBytes: UInt64
        public var packetBufferBytes: UInt64
        public var residentBytesPerVNIC: UInt64
        public init(residentBytes: UInt64, packetBufferBytes: UInt64, residentBytesPerVNIC: UInt64) {
            self.residentBytes = residentBytes; self.packetBufferBytes = packetBufferBytes
            self.residentBytesPerVNIC = residentBytesPerVNIC
        }
    }

    public init(pid: Int32, updated: Double, generation: UInt64, classifier: [String: UInt64],
                queues: [Queue], vnics: [String: VNIC], uplink: String? = nil) {
        self.uplink = uplink
        self.pid = pid; self.updated = updated; self.generation = generation
        self.classifier = classifier; self.queues = queues; self.vnics = vnics
    }
}

// FastPath: configuration reads for a dataplane worker, once per snapshot.
//
// A `ConfigReader` owns one LMDB read transaction (the environment is opened
// with MDB_NOTLS, so the transaction belongs to the reader, not to a thread).
// A worker brackets each burst with `beginBurst()` and `endBurst()`, and in
// between looks VNICs up by index. `beginBurst()` takes a snapshot of the
// latest commit (mdb_txn_renew) only when there was a commit since the one it
// holds: the last transaction id, read from the map's meta pages
// (mdb_env_info, no syscall), tells; otherwise the held snapshot serves, so a
// burst of one frame does not pay an LMDB round. `releaseSnapshot()`
// (mdb_txn_reset) lets writers reuse the snapshot's pages; a worker calls it
// before it sleeps. `snapshots` counts the snapshots taken: what a worker read
// and decoded from a view stays valid while the count stays. In a burst it
// looks VNICs up by index:
// `vnic(index:)` is one `mdb_get` that returns a `VNICView` over the record's
// bytes in the map. Nothing here allocates: keys live on the stack, the view is
// a pointer and a length, and its accessors decode the TLV fields in place.
//
// Invariants: a view is valid while its snapshot is held: until a
// `beginBurst()` takes a new one (`snapshots` moves) or `releaseSnapshot()`
// (the pages it points at may be reused by a writer once the snapshot is let
// go); it is read only inside a burst, whose `beginBurst()` tells whether the
// snapshot is still the same. A reader is used by one thread at a time. Records are in format 3, whose hot prefix (index, mac, protection,
// priority, maxbw, allowed-ips and its IPv6 part, ra-guard) comes first, so each
// accessor stops within the first eight fields; an older or damaged record reads
// as defaults, never traps.
import CLMDB
import VnicCore

public final class ConfigReader: @unchecked Sendable {
    // @unchecked: used by one thread at a time (the worker that owns it); the
    // transaction may move between threads (MDB_NOTLS).
    @usableFromInline let handle: OpaquePointer
    @usableFromInline let vnicsDBI: MDB_dbi
    @usableFromInline let metaDBI: MDB_dbi
    @usableFromInline var inBurst = false
    /// Whether the transaction holds a snapshot (renewed, not reset), and of which commit.
    @usableFromInline var held = false
    @usableFromInline var heldTxnID = 0
    /// How many snapshots this reader has taken: views from an earlier one are
    /// invalid; those taken since the count last changed stay valid, burst
    /// after burst (a worker keeps what it decoded from them).
    @inlinable public var snapshots: UInt64 { snapshotCount }
    @usableFromInline var snapshotCount: UInt64 = 0
    @usableFromInline let env: OpaquePointer
    private var txn: ReadTransaction
    /// Keeps the environment (and its map) alive as long as the reader.
    public let store: ConfigStore

    /// A reader on `store`'s database, outside any burst.
    public init(store: ConfigStore) throws(VnicError) {
        self.store = store
        do {
            var t = try ReadTransaction(store.environment)
            t.reset()
            handle = t.handle
            txn = t
        } catch {
            throw VnicError("reader on database \(store.path): \(error)")
        }
        vnicsDBI = store.tables.vnics.dbi
        metaDBI = store.tables.meta.dbi
        env = store.environment.handle
    }

    /// Starts a burst on a snapshot of the latest commit: the one held when
    /// nothing was committed since, else a new one (the corresponding C
    /// function is `mdb_txn_renew`). Throws only when the database cannot be
    /// read (the worker then forwards nothing it cannot check: `no-config`).
    @inlinable
    public func beginBurst() throws(VnicError) {
        if held {
            var info = MDB_envinfo()
            mdb_env_info(env, &info)
            if info.me_last_txnid == heldTxnID { inBurst = true; return }
            mdb_txn_reset(handle)
            held = false
        }
        let rc = mdb_txn_renew(handle)
        if rc != MDB_SUCCESS { try renewFailed(rc) }
        held = true
        heldTxnID = mdb_txn_id(handle)
        snapshotCount &+= 1
        inBurst = true
    }

    /// Ends the burst: every view taken in it becomes invalid. The snapshot is
    /// kept for the next burst unless something is committed meanwhile.
    @inlinable
    public func endBurst() {
        inBurst = false
    }

    /// Lets go of the held snapshot (the corresponding C function is
    /// `mdb_txn_reset`), so writers may reuse its pages: before a worker sleeps.
    @inlinable
    public func releaseSnapshot() {
        inBurst = false
        if held {
            mdb_txn_reset(handle)
            held = false
        }
    }

    /// Runs `body` inside a burst: `beginBurst()`, `body`, `endBurst()`.
    @inlinable
    public func withBurst<R>(_ body: (ConfigReader) -> R) throws(VnicError) -> R {
        try beginBurst()
        defer { endBurst() }
        return body(self)
    }

    /// The record of the VNIC at `index` in this burst's snapshot, or nil.
    /// Call only inside a burst; the view is valid until `endBurst()`.
    @inlinable
    public func vnic(index: UInt32) -> VNICView? {
        var key = index.bigEndian
        return withUnsafeMutableBytes(of: &key) { kb -> VNICView? in
            var k = MDB_val(mv_size: 4, mv_data: kb.baseAddress)
            var v = MDB_val()
            guard mdb_get(handle, vnicsDBI, &k, &v) == MDB_SUCCESS, let data = v.mv_data else { return nil }
            return VNICView(bytes: UnsafeRawBufferPointer(start: data, count: v.mv_size))
        }
    }

    /// The generation of this burst's snapshot (0 when unreadable). Inside a burst only.
    @inlinable
    public func generation() -> UInt64 {
        // "generation" as UTF-8, on the stack.
        var key: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0x67, 0x65, 0x6E, 0x65, 0x72, 0x61, 0x74, 0x69, 0x6F, 0x6E)
        return withUnsafeMutableBytes(of: &key) { kb -> UInt64 in
            var k = MDB_val(mv_size: 10, mv_data: kb.baseAddress)
            var v = MDB_val()
            guard mdb_get(handle, metaDBI, &k, &v) == MDB_SUCCESS, v.mv_size == 8, let data = v.mv_data else { return 0 }
            return UInt64(littleEndian: data.loadUnaligned(as: UInt64.self))
        }
    }

    @usableFromInline @inline(never)
    func renewFailed(_ code: Int32) throws(VnicError) {
        var rc = code
        if rc == MDB_MAP_RESIZED {   // another process grew the map: adopt it once
            rc = mdb_env_set_mapsize(store.environment.handle, 0)
            if rc == MDB_SUCCESS { rc = mdb_txn_renew(handle) }
            if rc == MDB_SUCCESS { held = true; heldTxnID = mdb_txn_id(handle); return }
        }
        throw VnicError(LMDBError(code: rc, operation: "renew read transaction on database \(store.path)").description)
    }

    deinit {
        releaseSnapshot()
    }
}

/// A VNIC record in place, in the map: valid only inside the burst it was
/// looked up in. Accessors decode the field they need; missing or malformed
/// fields read as the defaults.
@frozen
public struct VNICView {
    /// The record's bytes (format version, then tag-length-value fields).
    public let bytes: UnsafeRawBufferPointer

    @inlinable
    public init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The value bytes of the first field with `tag`, or nil.
    @inlinable
    public func field(_ tag: UInt16) -> UnsafeRawBufferPointer? {
        var fields = Fields(self)
        while let (t, value) = fields.next() { if t == tag { return value } }
        return nil
    }

    /// Walks the fields in order, each (tag, value bytes), while `body` returns
    /// true; stops at the first field that runs past the record.
    @inlinable
    public func forEachField(_ body: (UInt16, UnsafeRawBufferPointer) -> Bool) {
        var fields = Fields(self)
        while let (t, v) = fields.next() { if !body(t, v) { return } }
    }

    /// The fields in order, (tag, value bytes), up to the first that runs past
    /// the record: the one walk every reader of a view uses (a loop over it
    /// compiles to plain code, where a closure per field did not).
    @frozen
    public struct Fields: IteratorProtocol {
        @usableFromInline let base: UnsafeRawPointer?
        @usableFromInline let count: Int
        @usableFromInline var offset = 2

        @inlinable
        public init(_ view: VNICView) { base = view.bytes.baseAddress; count = view.bytes.count }

        @inlinable
        public mutating func next() -> (UInt16, UnsafeRawBufferPointer)? {
            guard let base, offset &+ 4 <= count else { return nil }
            let t = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let length = Int(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset &+ 2, as: UInt16.self)))
            let start = offset &+ 4
            guard start &+ length <= count else { offset = count; return nil }
            offset = start &+ length
            return (t, UnsafeRawBufferPointer(start: base + start, count: length))
        }
    }

    @inlinable
    func u8(_ tag: UInt16) -> UInt8? {
        guard let v = field(tag), v.count == 1 else { return nil }
        return v.load(as: UInt8.self)
    }

    public var index: UInt32 {
        @inlinable get {
            guard let v = field(FieldTag.index), v.count == 4, let p = v.baseAddress else { return 0 }
            return UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))
        }
    }

    /// The VNIC's MAC (zero when missing).
    public var mac: MACAddress {
        @inlinable get {
            guard let v = field(FieldTag.mac), v.count == 6, let p = v.baseAddress else { return MACAddress(rawValue: 0) }
            let hi = UInt64(UInt16(bigEndian: p.loadUnaligned(as: UInt16.self)))
            let lo = UInt64(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
            return MACAddress(rawValue: hi << 32 | lo)
        }
    }

    public var protection: Protection {
        @inlinable get { u8(FieldTag.protection).map { Protection(rawValue: $0) } ?? .default }
    }

    public var raGuard: RAGuard {
        @inlinable get { u8(FieldTag.raGuard).flatMap { RAGuard(rawValue: $0) } ?? .default }
    }

    public var priority: Priority {
        @inlinable get { u8(FieldTag.priority).flatMap { Priority(rawValue: $0) } ?? .default }
    }

    /// Bits per second; nil: unlimited.
    public var maxbw: UInt64? {
        @inlinable get {
            guard let v = field(FieldTag.maxbw), v.count == 8, let p = v.baseAddress else { return nil }
            let b = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
            return b == 0 ? nil : b
        }
    }

    public var mtu: UInt32 {
        @inlinable get {
            guard let v = field(FieldTag.mtu), v.count == 4, let p = v.baseAddress else { return VNICRecord.defaultMTU }
            return UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))
        }
    }

    /// vnic's DHCP server for this VNIC (`dhcp`).
    public var dhcp: DHCPServer {
        @inlinable get { u8(FieldTag.dhcp).flatMap { DHCPServer(rawValue: $0) } ?? .default }
    }

    /// vnicd's router advertisements for this VNIC (`ipv6-ra`).
    public var ipv6RA: IPv6RA {
        @inlinable get { u8(FieldTag.ipv6RA).flatMap { IPv6RA(rawValue: $0) } ?? .default }
    }

    public var state: AdminState {
        @inlinable get { u8(FieldTag.state).flatMap { AdminState(rawValue: $0) } ?? .default }
    }

    public var transport: Transport {
        @inlinable get { u8(FieldTag.transport).flatMap { Transport(rawValue: $0) } ?? .default }
    }

    /// The allowed-ips property (empty: the VNIC's own `ip` addresses apply).
    public var allowedIPs: CIDRListView {
        @inlinable get { CIDRListView(bytes: field(FieldTag.allowedIPs) ?? UnsafeRawBufferPointer(start: nil, count: 0)) }
    }

    /// Whether ip-nospoof lets the VNIC send from `address`: inside one of its
    /// allowed-ips, or when there are none, one of its own addresses.
    @inlinable
    public func permitsSource(_ address: IPv4Address) -> Bool {
        var found = false
        forEachSource { network, prefixLength in
            let mask = IPv4CIDR.mask(prefixLength)
            if address.rawValue & mask == network & mask { found = true }
        }
        return found
    }

    /// Calls `body` with every IPv4 prefix ip-nospoof lets the VNIC send from
    /// (network in host order, prefix length): its allowed-ips, or when there
    /// are none, its own addresses as /32. For a worker that resolves them once
    /// per burst instead of once per packet.
    @inlinable
    public func forEachSource(_ body: (UInt32, UInt8) -> Void) {
        let allowed = allowedIPs
        if !allowed.isEmpty {
            for i in allowed.indices { body(allowed[i].network, allowed[i].prefixLength) }
            return
        }
        var fields = Fields(self)
        while let (t, v) = fields.next() {
            if t == FieldTag.ip && v.count == 5, let p = v.baseAddress { body(UInt32(bigEndian: p.loadUnaligned(as: UInt32.self)), 32) }
        }
    }
}

extension VNICView {
    /// The allowed-ips property's IPv6 networks (empty: the VNIC's own IPv6 `ip` addresses apply).
    public var allowedIPs6: CIDR6ListView {
        @inlinable get { CIDR6ListView(bytes: field(FieldTag.allowedIPs6) ?? UnsafeRawBufferPointer(start: nil, count: 0)) }
    }

    /// Calls `body` with every IPv6 prefix ip-nospoof lets the VNIC send from
    /// besides its link-local address, as (network high, network low, prefix
    /// length): its IPv6 allowed-ips, or when there are none its own IPv6
    /// addresses as /128 (a SLAAC prefix as the address its MAC gives there).
    /// `VNICRecord.effectiveAllowedIPs6` reads it through this rule too.
    @inlinable
    public func forEachSource6(_ body: (UInt64, UInt64, UInt8) -> Void) {
        let allowed = allowedIPs6
        if !allowed.isEmpty {
            for i in allowed.indices { body(allowed[i].hi, allowed[i].lo, allowed[i].prefixLength) }
            return
        }
        var iid: UInt64? = nil
        var fields = Fields(self)
        while let (t, v) = fields.next() {
            guard t == FieldTag.ip && v.count == 17, let p = v.baseAddress else { continue }
            let hi = UInt64(bigEndian: p.loadUnaligned(as: UInt64.self))
            var lo = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            if lo == 0 && p.load(fromByteOffset: 16, as: UInt8.self) == 64 {   // a SLAAC prefix
                if iid == nil { iid = IPv6Address.interfaceIdentifier(mac) }
                lo = iid!
            }
            body(hi, lo, 128)
        }
    }
}

/// What a dataplane worker needs of a VNIC's record besides its source
/// prefixes, decoded in one walk over the fields (each accessor of `VNICView`
/// walks to its own field): a worker decodes it once per VNIC per snapshot. A
/// missing or malformed field reads as the accessor's default; a test checks
/// that both readings agree.
@frozen
public struct DataplaneFields {
    public var mac = MACAddress(rawValue: 0)
    public var protection = Protection.default
    public var raGuard = RAGuard.default
    /// Bits per second, each way; 0: unlimited.
    public var maxbw: UInt64 = 0
    public var mtu = VNICRecord.defaultMTU
    public var dhcp = DHCPServer.default
    public var ipv6RA = IPv6RA.default

    /// The defaults (a record with none of these fields).
    @inlinable
    public init() {}

    @inlinable
    public init(_ view: VNICView) {
        var fields = VNICView.Fields(view)
        while let (t, v) = fields.next() {
            guard let p = v.baseAddress else { continue }
            switch t {
            case FieldTag.mac where v.count == 6:
                let hi = UInt64(UInt16(bigEndian: p.loadUnaligned(as: UInt16.self)))
                mac = MACAddress(rawValue: hi << 32 | UInt64(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))))
            case FieldTag.protection where v.count == 1: protection = Protection(rawValue: p.load(as: UInt8.self))
            case FieldTag.raGuard where v.count == 1: raGuard = RAGuard(rawValue: p.load(as: UInt8.self)) ?? .default
            case FieldTag.maxbw where v.count == 8: maxbw = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
            case FieldTag.mtu where v.count == 4: mtu = UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))
            case FieldTag.dhcp where v.count == 1: dhcp = DHCPServer(rawValue: p.load(as: UInt8.self)) ?? .default
            case FieldTag.ipv6RA where v.count == 1: ipv6RA = IPv6RA(rawValue: p.load(as: UInt8.self)) ?? .default
            default: break
            }
        }
    }
}

/// IPv6 networks stored in place (16 bytes network order + 1 byte prefix each).
@frozen
public struct CIDR6ListView: RandomAccessCollection {
    public let bytes: UnsafeRawBufferPointer

    @inlinable
    public init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var startIndex: Int { @inlinable get { 0 } }
    public var endIndex: Int { @inlinable get { bytes.count / 17 } }

    @inlinable
    public subscript(i: Int) -> (hi: UInt64, lo: UInt64, prefixLength: UInt8) {
        let p = bytes.baseAddress! + i &* 17
        return (UInt64(bigEndian: p.loadUnaligned(as: UInt64.self)), UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                p.load(fromByteOffset: 16, as: UInt8.self))
    }
}

/// IPv4 networks stored in place (4 bytes network order + 1 byte prefix each).
@frozen
public struct CIDRListView: RandomAccessCollection {
    public let bytes: UnsafeRawBufferPointer

    @inlinable
    public init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var startIndex: Int { @inlinable get { 0 } }
    public var endIndex: Int { @inlinable get { bytes.count / 5 } }

    @inlinable
    public subscript(i: Int) -> (network: UInt32, prefixLength: UInt8) {
        let p = bytes.baseAddress! + i &* 5
        return (UInt32(bigEndian: p.loadUnaligned(as: UInt32.self)), p.load(fromByteOffset: 4, as: UInt8.self))
    }

    @inlinable
    public func contains(_ address: IPv4Address) -> Bool {
        var i = 0
        let n = endIndex
        while i < n {
            let (network, len) = self[i]
            if address.rawValue & IPv4CIDR.mask(len) == network { return true }
            i &+= 1
        }
        return false
    }
}

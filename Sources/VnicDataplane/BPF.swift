// BPF: small owning wrappers around libbpf for the classifier object, its maps
// and the XDP links that attach its programs. vnicd pins the links and the
// configuration maps in bpffs (PinDirectory): a restart, kill -9 included,
// finds the classifier still attached with its MAC and port tables and its
// counters, replaces the programs in place (bpf_link_update: no detach, no
// driver reset) and reconciles the tables with the database. A clean stop
// unpins everything, and the programs detach with the last link fd.
import CLibXDP
import CVnicShim
import Glibc
import VnicCore
import VnicPlatform

/// A libbpf object: opened from an ELF file, configured, then loaded into the kernel.
/// The corresponding C type is `struct bpf_object`.
public final class BPFObject {
    let object: OpaquePointer
    public let path: String
    private(set) var loaded = false

    /// Opens the object file (nothing is loaded yet). The C function is `bpf_object__open_file`.
    public init(path: String) throws(VnicError) {
        guard access(path, R_OK) == 0 else {
            throw VnicError("BPF object \(path): \(errnoString(errno)) (build it with make build, or pass --bpf-object)")
        }
        libbpf_set_print(nil)
        guard let obj = bpf_object__open_file(path, nil), libbpf_get_error(UnsafeRawPointer(obj)) == 0 else {
            throw VnicError("open BPF object \(path): \(errnoString(errno))")
        }
        object = obj
        self.path = path
    }

    deinit { bpf_object__close(object) }

    func map(named name: String) throws(VnicError) -> OpaquePointer {
        guard let m = bpf_object__find_map_by_name(object, name) else {
            throw VnicError("BPF object \(path) has no map \(name)")
        }
        return m
    }

    /// Writes the load-time settings (the program's only .rodata variable).
    func setSettings(_ settings: vnic_settings) throws(VnicError) {
        var rodata: OpaquePointer?
        var m = bpf_object__next_map(object, nil)
        while let cur = m {
            if String(cString: bpf_map__name(cur)).hasSuffix(".rodata") { rodata = cur; break }
            m = bpf_object__next_map(object, cur)
        }
        guard let rodata else { throw VnicError("BPF object \(path) has no .rodata section") }
        var size = 0
        guard let data = bpf_map__initial_value(rodata, &size), size == MemoryLayout<vnic_settings>.size else {
            throw VnicError("BPF object \(path): .rodata is not one struct vnic_settings (rebuild bpf/)")
        }
        UnsafeMutableRawPointer(mutating: data).storeBytes(of: settings, as: vnic_settings.self)
    }

    /// Maps named here are reused from `dir` at load when pinned there (and
    /// compatible), else created and pinned there. The C function is `bpf_map__set_pin_path`.
    func pinMaps(_ names: [String], in dir: String) throws(VnicError) {
        for name in names {
            let rc = bpf_map__set_pin_path(try map(named: name), dir + "/" + name)
            guard rc == 0 else { throw VnicError("pin path of map \(name): \(errnoString(-rc))") }
        }
    }

    func setMaxEntries(map name: String, _ entries: UInt32) throws(VnicError) {
        let m = try map(named: name)
        let rc = bpf_map__set_max_entries(m, entries)
        guard rc == 0 else { throw VnicError("size map \(name) to \(entries): \(errnoString(-rc))") }
    }

    /// Loads every program and map into the kernel. The C function is `bpf_object__load`.
    func load() throws(VnicError) {
        let rc = bpf_object__load(object)
        guard rc == 0 else {
            let e = -rc
            var hint = ""
            if e == EPERM { hint = capabilityHint([.bpf, .netAdmin]) }
            throw VnicError("load BPF object \(path): \(errnoString(e))\(hint)")
        }
        loaded = true
    }

    func programFD(named name: String) throws(VnicError) -> Int32 {
        guard let p = bpf_object__find_program_by_name(object, name) else {
            throw VnicError("BPF object \(path) has no program \(name)")
        }
        return bpf_program__fd(p)
    }

    /// Runs a loaded program once on `frame` (BPF_PROG_TEST_RUN) and returns its
    /// verdict; for tests of the classifier without a device.
    func testRun(program name: String, frame: [UInt8]) throws(VnicError) -> UInt32 {
        let fd = try programFD(named: name)
        var opts = bpf_test_run_opts()
        opts.sz = MemoryLayout<bpf_test_run_opts>.size
        var data = frame
        let rc = data.withUnsafeMutableBytes { buf in
            opts.data_in = UnsafeRawPointer(buf.baseAddress)
            opts.data_size_in = UInt32(buf.count)
            opts.repeat = 1
            return bpf_prog_test_run_opts(fd, &opts)
        }
        guard rc == 0 else { throw VnicError("test run of \(name): \(errnoString(-rc))") }
        return opts.retval
    }

    func mapFD(named name: String) throws(VnicError) -> BPFMap {
        let m = try map(named: name)
        return BPFMap(fd: bpf_map__fd(m), name: name)
    }
}

/// A loaded map, by fd (owned by its BPFObject).
public struct BPFMap: Sendable {
    public let fd: Int32
    public let name: String

    func update<K, V>(_ key: K, _ value: V) throws(VnicError) {
        let rc = withUnsafeBytes(of: key) { k in
            withUnsafeBytes(of: value) { v in bpf_map_update_elem(fd, k.baseAddress, v.baseAddress, UInt64(BPF_ANY)) }
        }
        guard rc == 0 else { throw VnicError("update map \(name): \(errnoString(-rc))") }
    }

    /// Every key of the map (BPF_MAP_GET_NEXT_KEY), for the control thread.
    func keys<K>(as: K.Type) -> [K] {
        var out: [K] = []
        let size = MemoryLayout<K>.size
        var cur = [UInt8](repeating: 0, count: size), next = [UInt8](repeating: 0, count: size)
        var first = true
        while true {
            let rc = next.withUnsafeMutableBytes { n in
                cur.withUnsafeBytes { c in bpf_map_get_next_key(fd, first ? nil : c.baseAddress, n.baseAddress) }
            }
            guard rc == 0 else { break }
            out.append(next.withUnsafeBytes { $0.loadUnaligned(as: K.self) })
            cur = next
            first = false
        }
        return out
    }

    /// Deletes a key; a missing key is not an error.
    func delete<K>(_ key: K) {
        _ = withUnsafeBytes(of: key) { bpf_map_delete_elem(fd, $0.baseAddress) }
    }

    /// Sums a per-CPU u64 array entry over all possible CPUs.
    func perCPUSum(index: UInt32) -> UInt64 {
        let cpus = Int(max(libbpf_num_possible_cpus(), 1))
        var values = [UInt64](repeating: 0, count: cpus)
        let rc = withUnsafeBytes(of: index) { k in
            values.withUnsafeMutableBytes { bpf_map_lookup_elem(fd, k.baseAddress, $0.baseAddress) }
        }
        guard rc == 0 else { return 0 }
        return values.reduce(0, &+)
    }
}

/// An XDP program attached to a device through a bpf_link. Closing the link (or the
/// process ending) detaches the program. The C function is `bpf_link_create`.
public final class XDPLink {
    public let ifname: String
    let fd: Int32

    public enum Mode: Sendable { case native, generic }

    /// Where the link is pinned (nil: not pinned; it detaches with its last fd).
    private(set) var pinPath: String?

    /// The link pinned at `path`, now running `programFD` (replaced atomically),
    /// or nil when nothing usable is pinned there (a stale pin is removed).
    static func adopt(pinned path: String, programFD: Int32, ifname: String) -> XDPLink? {
        guard access(path, F_OK) == 0 else { return nil }
        let fd = bpf_obj_get(path)
        var info = bpf_link_info()
        var len = UInt32(MemoryLayout<bpf_link_info>.size)
        guard fd >= 0, bpf_obj_get_info_by_fd(fd, &info, &len) == 0, info.type == BPF_LINK_TYPE_XDP.rawValue,
              info.xdp.ifindex == if_nametoindex(ifname), info.xdp.ifindex != 0,
              bpf_link_update(fd, programFD, nil) == 0 else {
            if fd >= 0 { close(fd) }
            unlink(path)   // its device is gone or it is not ours: start afresh
            return nil
        }
        return XDPLink(fd: fd, ifname: ifname, pinPath: path)
    }

    private init(fd: Int32, ifname: String, pinPath: String) {
        self.fd = fd; self.ifname = ifname; self.pinPath = pinPath
    }

    /// Pins the link at `path`: it stays attached when vnicd ends until unpinned.
    func pin(_ path: String) throws(VnicError) {
        unlink(path)
        guard bpf_obj_pin(fd, path) == 0 else { throw VnicError("pin XDP link of \(ifname) at \(path): \(errnoString(errno))") }
        pinPath = path
    }

    /// Removes the pin: the program detaches when this object goes.
    func unpin() {
        if let p = pinPath { unlink(p) }
        pinPath = nil
    }

    init(programFD: Int32, ifname: String, mode: Mode) throws(VnicError) {
        let ifindex = if_nametoindex(ifname)
        guard ifindex != 0 else { throw VnicError("attach XDP to \(ifname): no such interface") }
        var opts = bpf_link_create_opts()
        opts.sz = MemoryLayout<bpf_link_create_opts>.size
        opts.flags = UInt32(mode == .native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE)
        let fd = bpf_link_create(programFD, Int32(ifindex), BPF_XDP, &opts)
        guard fd >= 0 else {
            let e = -fd
            var hint = ""
            if e == EBUSY || e == EEXIST { hint = " (another XDP program is attached: ip link set dev \(ifname) xdp off)" }
            if e == EOPNOTSUPP && mode == .native { hint = " (the driver lacks native XDP: try --xdp-mode generic)" }
            if e == EPERM { hint = capabilityHint([.netAdmin, .bpf]) }
            throw VnicError("attach XDP to \(ifname): \(errnoString(e))\(hint)")
        }
        self.fd = fd
        self.ifname = ifname
        pinPath = nil
    }

    deinit { close(fd) }
}

/// An uplink's pin directory (PinLayout): the links and tables a vnicd leaves
/// for the next one.
public struct PinDirectory: Sendable {
    /// The maps that outlive a vnicd: the configuration tables and the counters
    /// (the socket maps empty themselves when their sockets close).
    static let maps = ["vnic_macs", "port_vnics", "vnic_counters"]
    public let path: String
    /// Whether the directory was there already: an earlier vnicd's pins to adopt.
    public let existed: Bool
    /// The bpffs that `prepare` mounted at /sys/fs/bpf; nil when one was there.
    public let mounted: Mounted?

    /// What `prepare` mounted, and whether its mount namespace is the init
    /// process's (else the bpffs, and the pins in it, go with that namespace:
    /// `ip netns exec` makes one per command).
    public struct Mounted: Sendable { public let hostNamespace: Bool? }

    /// The pin directory of `uplink` in this network namespace, with a bpffs under
    /// it: when /sys/fs/bpf is not one, one is mounted there (as iproute2, bpftool
    /// and systemd do), else this throws one line naming the path and what is missing.
    public static func prepare(uplink: String) throws(VnicError) -> PinDirectory {
        let root = Preflight.bpffsPath
        var mounted: Mounted?
        // Two vnicds starting at once must not stack two bpffs there: the check
        // and the mount hold a lock on what /sys/fs/bpf is before the mount.
        let lock = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer { if lock >= 0 { close(lock) } }
        if !isBPFFS(root) {
            guard mount("bpf", root, "bpf", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=0700") == 0 else {
                let e = errno
                let hint = e == EPERM ? capabilityHint([.sysAdmin]) + ": mount it before vnicd starts (mount -t bpf bpf \(root))"
                                      : ""
                throw VnicError("mount a bpf file system at \(root) to pin the classifier: \(errnoString(e))\(hint), or run vnicd with --no-pin")
            }
            mounted = Mounted(hostNamespace: sameInode("/proc/self/ns/mnt", "/proc/1/ns/mnt"))
        }
        guard let dir = PinLayout.directory(netns: "/proc/self/ns/net", uplink: uplink) else {
            throw VnicError("read /proc/self/ns/net: \(errnoString(errno))")
        }
        let pins = PinDirectory(path: dir, existed: access(dir, F_OK) == 0, mounted: mounted)
        for d in [PinLayout.root, dir] where mkdir(d, 0o700) != 0 && errno != EEXIST {
            let e = errno
            let hint = e == EACCES ? " (make it the service user's: install -d -o USER -m 0700 \(PinLayout.root), as vnicd.service does)" : ""
            throw VnicError("create \(d) to pin the classifier: \(errnoString(e))\(hint), or run vnicd with --no-pin")
        }
        return pins
    }

    private init(path: String, existed: Bool, mounted: Mounted?) {
        self.path = path
        self.existed = existed
        self.mounted = mounted
    }

    static func isBPFFS(_ path: String) -> Bool {
        var fs = statfs()
        return statfs(path, &fs) == 0 && UInt(fs.f_type) == 0xCAFE4A11   // BPF_FS_MAGIC
    }

    /// Whether two paths are the same inode; nil when either cannot be read.
    private static func sameInode(_ a: String, _ b: String) -> Bool? {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return nil }
        return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev
    }

    func link(_ name: String, mode: XDPLink.Mode) -> String { "\(path)/link-\(name)-\(mode == .native ? "native" : "generic")" }
}

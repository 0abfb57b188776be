// BPF: small owning wrappers around libbpf for the classifier object, its maps
// and the XDP links that attach its programs. An XDP link (bpf_link) detaches by
// itself when its last fd closes, so a crash of vnicd (kill -9 included) leaves
// no program attached.
import CLibXDP
import CVnicShim
import Glibc
import VnicCore

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
    }

    deinit { close(fd) }
}

// Where vnicd pins an uplink's classifier, links and tables in bpffs:
// ROOT/NETNS-UPLINK, NETNS the inode of the network namespace (uplinks of the
// same name in other namespaces are other uplinks). vnicd's PinDirectory
// (VnicDataplane) creates and adopts them; `vnic-lab down` and the tests find
// a namespace's directories here.
#if canImport(Glibc)
import Glibc
#endif

public enum PinLayout {
    public static let root = "/sys/fs/bpf/vnic"

    /// The directory of `uplink` in the network namespace `netns` (a path such
    /// as /proc/self/ns/net or /run/netns/NAME); nil when it cannot be read.
    public static func directory(netns: String, uplink: String) -> String? {
        inode(netns).map { "\(root)/\($0)-\(uplink)" }
    }

    /// Every pin directory of the network namespace `netns`.
    public static func directories(netns: String) -> [String] {
        guard let ino = inode(netns) else { return [] }
        return entries(root).filter { $0.hasPrefix("\(ino)-") }.map { root + "/" + $0 }
    }

    /// The names in a directory (not . and ..); empty when it cannot be read.
    public static func entries(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Unpins everything in a pin directory and removes it.
    public static func remove(_ dir: String) {
        for n in entries(dir) { unlink(dir + "/" + n) }
        rmdir(dir)
    }

    private static func inode(_ path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : nil
    }
}

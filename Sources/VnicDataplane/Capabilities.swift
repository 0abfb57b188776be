// Capabilities: when the kernel refuses vnicd (EPERM, or ENOBUFS for locked
// memory), the error names the capability the process lacks, so an administrator
// running it as a service sees "CAP_BPF is missing" instead of a bare
// "Operation not permitted". Read from the calling thread's effective set
// (`CapEff` in /proc/thread-self/status); nothing here asks the kernel to
// change anything.
//
// What each step needs (found by running vnicd as a non-root uid with one
// capability left out, see Tests/IntegrationTests/PrivilegeTests.swift):
//   CAP_BPF        every bpf() call (maps, BTF, programs)
//   CAP_NET_ADMIN  the XSKMAP maps and XDP programs, attaching them to links
//   CAP_NET_RAW    socket(AF_XDP) (also inside UMEM registration)
//   CAP_IPC_LOCK   registering the UMEM without counting it against RLIMIT_MEMLOCK
// CAP_SYS_ADMIN stands in for CAP_BPF and CAP_NET_ADMIN, as the kernel allows.
import Glibc

/// One Linux capability, by its bit number in the capability sets.
public struct Capability: Sendable, Hashable, CustomStringConvertible {
    public let bit: UInt64
    public let name: String
    /// Whether CAP_SYS_ADMIN satisfies the kernel's check for this one too.
    let sysAdminSuffices: Bool

    public static let netAdmin = Capability(bit: 12, name: "CAP_NET_ADMIN", sysAdminSuffices: true)
    public static let netRaw = Capability(bit: 13, name: "CAP_NET_RAW", sysAdminSuffices: false)
    public static let ipcLock = Capability(bit: 14, name: "CAP_IPC_LOCK", sysAdminSuffices: false)
    public static let sysAdmin = Capability(bit: 21, name: "CAP_SYS_ADMIN", sysAdminSuffices: true)
    public static let bpf = Capability(bit: 39, name: "CAP_BPF", sysAdminSuffices: true)

    /// What vnicd needs when it does not run as root.
    public static let vnicd: [Capability] = [.netAdmin, .bpf, .netRaw, .ipcLock]

    public var description: String { name }

    /// The calling thread's effective capability set, or nil when it cannot be read.
    public static func effective() -> UInt64? {
        guard let text = readProcFile("/proc/thread-self/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).filter { !$0.isWhitespace }, radix: 16)
        }
        return nil
    }

    /// Whether the calling thread holds this capability (or CAP_SYS_ADMIN where that suffices).
    /// Unknown (the set cannot be read) counts as held, so no false "missing" is reported.
    public var isHeld: Bool {
        guard let set = Capability.effective() else { return true }
        func has(_ c: Capability) -> Bool { set & (1 << c.bit) != 0 }
        return has(self) || (sysAdminSuffices && has(.sysAdmin))
    }
}

/// The parenthesised hint for a refusal by the kernel: which capabilities the step
/// needs and which of them the process lacks,
/// e.g. " (needs CAP_BPF and CAP_NET_ADMIN: CAP_BPF is missing)".
func capabilityHint(_ needed: [Capability]) -> String {
    let list = needed.map(\.name).joined(separator: " and ")
    let missing = needed.filter { !$0.isHeld }.map(\.name)
    if missing.isEmpty { return " (needs \(list), which this process has: a security module or sysctl refused it)" }
    return " (needs \(list): \(missing.joined(separator: " and ")) \(missing.count == 1 ? "is" : "are") missing)"
}

/// The current RLIMIT_MEMLOCK soft limit in bytes, nil when unlimited.
func memlockLimit() -> UInt64? {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
    return UInt64(limit.rlim_cur)
}

/// A small file of /proc (or /sys) as text, or nil when it cannot be read.
func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

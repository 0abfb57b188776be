// vnic-fuzz-frames: libFuzzer target for the frame checks a worker runs on
// every frame a VM sends (AntiSpoof.check under every combination of
// protections, and the guest-protocol/DHCP intercept), then, for what the
// intercept hands to the control thread, the control thread's parsers.
//
// Built two ways (scripts/fuzz.sh):
//   -sanitize=fuzzer,address -DVNIC_FUZZ (and the experimental feature
//     Extern): libFuzzer's driver calls `LLVMFuzzerTestOneInput`; ASan catches
//     any read past the frame (libFuzzer hands each input in a heap buffer of
//     exactly its size).
//   plain: a replayer, `vnic-fuzz-frames [-v] FILE|DIR...`, that runs every
//     file through the same function (the seed corpus as a regression test);
//     -v prints each file's verdicts.
// Properties checked (a failure traps, which libFuzzer records as a crash):
//   - protections are monotone: a frame dropped under a set of protections is
//     dropped under every superset; without protections the only drop is
//     `malformed`;
//   - the intercept is consistent: a request is service traffic.
import Foundation
import VnicCore
import VnicDataplane

/// VM1 of the lab and the unit tests: 02:00:00:00:01:01, 10.77.0.11/32 and
/// allowed-ips 192.168.7.0/24 and 2001:db8:0:1::/64.
nonisolated(unsafe) let ipv4Prefixes: UnsafeMutablePointer<(UInt32, UInt32)> = {
    let p = UnsafeMutablePointer<(UInt32, UInt32)>.allocate(capacity: 2)
    p[0] = (0x0A4D_000B, 0xFFFF_FFFF)
    p[1] = (0xC0A8_0700, 0xFFFF_FF00)
    return p
}()
nonisolated(unsafe) let ipv6Prefixes: UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)> = {
    let p = UnsafeMutablePointer<(UInt64, UInt64, UInt64, UInt64)>.allocate(capacity: 1)
    p[0] = (0x2001_0DB8_0000_0001, 0, 0xFFFF_FFFF_FFFF_FFFF, 0)
    return p
}()
let vmMAC = FrameChecks.macKey(MACAddress(bytes: (0x02, 0, 0, 0, 0x01, 0x01)))
let protections: [Protection] = [.macNospoof, .ipNospoof, .dhcpNospoof, .restricted]

func policy(_ mask: Int) -> SpoofPolicy {
    var p: Protection = []
    for (i, bit) in protections.enumerated() where mask & (1 << i) != 0 { p.insert(bit) }
    return SpoofPolicy(mac: vmMAC, protection: p, ipv4: ipv4Prefixes, ipv4Count: 2, ipv6: ipv6Prefixes, ipv6Count: 1)
}
/// Index: a bit per element of `protections`.
nonisolated(unsafe) let policies = (0..<16).map(policy)

func fail(_ what: String, _ f: UnsafeRawPointer, _ len: Int) -> Never {
    let bytes = (0..<min(len, 64)).map { String(f.load(fromByteOffset: $0, as: UInt8.self), radix: 16) }
    fatalError("vnic-fuzz-frames: \(what) (len \(len): \(bytes.joined(separator: " ")))")
}

/// One input: the frame's bytes.
func checkFrame(_ f: UnsafeRawPointer, _ len: Int) {
    var verdicts = [SpoofVerdict](repeating: .pass, count: 16)
    for m in 0..<16 { verdicts[m] = AntiSpoof.check(f, len: len, policies[m]) }
    if verdicts[0] != .pass && verdicts[0] != .malformed { fail("no protection gave \(verdicts[0])", f, len) }
    for m in 0..<16 where verdicts[m] != .pass {
        for sup in 0..<16 where sup & m == m && verdicts[sup] == .pass {
            fail("dropped (\(verdicts[m])) under protections \(m) but passed under superset \(sup)", f, len)
        }
    }
    let i = FrameChecks.intercept(f, len: len)
    if i.request && !i.service { fail("request port without service traffic", f, len) }
    if i.service || i.dhcpToServer {
        // What the control thread then does with it (vnicd's GuestService.handle).
        let frame = [UInt8](UnsafeRawBufferPointer(start: f, count: len))
        if let u = FrameBuilder.udpPayload(frame) {
            if u.dstPort == 67 { _ = DHCPMessage.parse(u.payload) } else { _ = GuestMessage.decode(u.payload) }
        }
    }
}

#if VNIC_FUZZ
/// libFuzzer's driver (libclang_rt.fuzzer). SwiftPM names this executable's
/// entry point and makes it `main`, which replaces libFuzzer's own `main`, so
/// `@main` starts the driver itself, as libFuzzer's `main` would.
@_extern(c, "LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    checkFrame(UnsafeRawPointer(data), size)
    return 0
}

@main
struct Fuzzer {
    static func main() {
        var argc = CommandLine.argc, argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzz))
    }
}
#else
/// The replayer: every file named, or in a directory named, through `checkFrame`.
@main
struct Replay {
    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        let verbose = args.first == "-v"
        if verbose { args.removeFirst() }
        let files = replayFiles(args)
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { fatalError("cannot read \(file)") }
            // An exact-size heap buffer, as libFuzzer hands it.
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(data.count, 1), alignment: 1)
            data.copyBytes(to: buffer.assumingMemoryBound(to: UInt8.self), count: data.count)
            checkFrame(buffer, data.count)
            if verbose {
                let i = FrameChecks.intercept(buffer, len: data.count)
                print("\(file): every protection: \(AntiSpoof.check(buffer, len: data.count, policies[15])), none: "
                      + "\(AntiSpoof.check(buffer, len: data.count, policies[0])), service \(i.service), request \(i.request), "
                      + "dhcp \(i.dhcpToServer)")
            }
            buffer.deallocate()
        }
        print("vnic-fuzz-frames: \(files.count) inputs, no failures")
    }
}

/// Files in `paths`, directories expanded (one level), sorted.
func replayFiles(_ paths: [String]) -> [String] {
    var out: [String] = []
    for path in paths {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { fatalError("no such file: \(path)") }
        if isDir.boolValue {
            out += ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
        } else {
            out.append(path)
        }
    }
    return out
}
#endif

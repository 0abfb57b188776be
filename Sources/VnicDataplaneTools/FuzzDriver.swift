// FuzzDriver: the one `main` of both fuzz targets (Sources/vnic-fuzz-frames,
// Sources/vnic-fuzz-requests). Built with -DVNIC_FUZZ (scripts/fuzz.sh: with
// -sanitize=fuzzer,address and the experimental feature Extern), it starts
// libFuzzer's driver, which calls the target's check with each input in a heap
// buffer of exactly its size; built plain, it replays every file named, or in a
// directory named (one level, sorted), through the same check, in such a
// buffer, and says how many it ran: the seed corpus as a regression test.
import Foundation

public enum FuzzDriver {
    /// The target's check, set once by `main` before any input arrives.
    nonisolated(unsafe) static var check: (UnsafeRawPointer, Int) -> Void = { _, _ in }

    /// Runs target `name` (`vnic-fuzz-NAME`): `check` gets each input;
    /// `describe`, when the replayer is given `-v`, says what became of one.
    public static func main(name: String, check: @escaping (UnsafeRawPointer, Int) -> Void,
                            describe: ((UnsafeRawPointer, Int) -> String)? = nil) -> Never {
        self.check = check
        #if VNIC_FUZZ
        var argc = CommandLine.argc, argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
        #else
        var args = Array(CommandLine.arguments.dropFirst())
        let verbose = args.first == "-v"
        if verbose { args.removeFirst() }
        let files = replayFiles(args)
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { fatalError("cannot read \(file)") }
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(data.count, 1), alignment: 1)
            data.copyBytes(to: buffer.assumingMemoryBound(to: UInt8.self), count: data.count)
            check(buffer, data.count)
            if verbose, let describe { print("\(file): \(describe(buffer, data.count))") }
            buffer.deallocate()
        }
        print("vnic-fuzz-\(name): \(files.count) inputs, no failures")
        exit(0)
        #endif
    }

    /// Files in `paths`, directories expanded (one level), sorted.
    static func replayFiles(_ paths: [String]) -> [String] {
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
}

#if VNIC_FUZZ
/// libFuzzer's driver (libclang_rt.fuzzer). SwiftPM names an executable's
/// entry point and makes it `main`, which replaces libFuzzer's own `main`, so
/// the target's `@main` starts the driver itself, as libFuzzer's `main` would.
@_extern(c, "LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) private let empty = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)

/// One input (`data` may be nil for the empty input); also under libFuzzer's
/// own entry name, which its runtime may reference.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.check(data.map(UnsafeRawPointer.init) ?? UnsafeRawPointer(empty), data == nil ? 0 : size)
    return 0
}
#endif

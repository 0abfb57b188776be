#if canImport(Glibc)
import Glibc
#endif

/// Writes one line to standard error with a single write(2): safe from any
/// thread (the C `stderr` global is not concurrency-safe in Swift 6).
public func printError(_ line: String) {
    var s = line + "\n"
    s.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

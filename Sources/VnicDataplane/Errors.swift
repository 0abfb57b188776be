import Glibc

/// The text of an errno value ("Device or resource busy").
func errnoString(_ code: Int32) -> String { String(cString: strerror(code)) }

/// Writes one line to standard error (for threads that have no logger).
func stderrLine(_ line: String) {
    var s = line + "\n"
    s.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

import Glibc

/// The text of an errno value ("Device or resource busy").
package func errnoString(_ code: Int32) -> String { String(cString: strerror(code)) }

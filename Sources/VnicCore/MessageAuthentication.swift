// MessageAuthentication: the keyed MACs the appliance signs its messages to a
// VM with, from swift-crypto (BoringSSL underneath): HMAC-SHA256 for the guest
// protocol's notifications, HMAC-MD5 for DHCP's reconfigure-key authentication
// (RFC 3118 protocol 3, RFC 6704, which fixes MD5; a keyed MAC over a message
// the server builds does not rely on MD5's broken collision resistance).
import Crypto

public enum MessageAuthentication {
    /// HMAC-SHA256 (RFC 2104, RFC 4231) of `message` under `key`: 32 bytes.
    public static func hmacSHA256(key: [UInt8], _ message: some Collection<UInt8>) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message), using: SymmetricKey(data: key)))
    }

    /// HMAC-MD5 (RFC 2104) of `message` under `key`: 16 bytes.
    public static func hmacMD5(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<Insecure.MD5>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// Whether two MACs are equal, in time that does not depend on where they differ.
    public static func equal(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// `count` bytes from the system's random number generator.
    public static func randomKey(_ count: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &g) }
    }
}

// RateLimiter: a VNIC's maxbw as a generic cell rate algorithm (GCRA), the
// token bucket written as one "theoretical arrival time" (TAT). All workers of
// a VNIC share it through one 64-bit word updated with compare-and-swap, once
// per burst: lock-free, exact over time, no refill timer.
//
// Sending B bytes at R bit/s costs B*8/R seconds of TAT. A burst may go while
// the TAT stays within `tolerance` of now; the tolerance is the bucket depth:
// max(2 ms at the rate, 16 full-size frames), so a VNIC may burst a little but
// its average rate is the limit.
import CVnicShim

public struct RateLimiter: Sendable {
    /// Nanoseconds one byte costs at the limit, times 1024 (fixed point), so
    /// rates up to 100 Gbit/s keep precision; 0 means unlimited.
    public let scaledNanosPerByte: UInt64
    public let toleranceNanos: UInt64

    public init(bitsPerSecond: UInt64) {
        guard bitsPerSecond > 0 else { scaledNanosPerByte = 0; toleranceNanos = 0; return }
        // 8e9 ns per byte-second, scaled by 1024.
        scaledNanosPerByte = max(1, (8_000_000_000 * 1024) / bitsPerSecond)
        let twoMs: UInt64 = 2_000_000
        let frames16 = 16 * 1514 * scaledNanosPerByte / 1024
        toleranceNanos = max(twoMs, frames16)
    }

    /// Counts events instead of bytes: `perSecond` on average, `burst` at once
    /// (admit with lengths of 1).
    public init(perSecond: UInt64, burst: UInt64) {
        scaledNanosPerByte = (1_000_000_000 * 1024) / max(perSecond, 1)
        toleranceNanos = burst * 1_000_000_000 / max(perSecond, 1)
    }

    public var isUnlimited: Bool { scaledNanosPerByte == 0 }

    @inline(__always)
    func cost(_ bytes: UInt64) -> UInt64 { bytes &* scaledNanosPerByte >> 10 }

    /// How many of `lengths` (in order) may go now; charges them to `tat`.
    /// Frames that do not fit stay for a later burst (order is kept).
    @inline(__always)
    public func admit(_ tat: UnsafeMutablePointer<UInt64>, now: UInt64,
                      lengths: (Int) -> UInt32, count: Int) -> Int {
        if isUnlimited { return count }
        var current = vnic_load_u64_acquire(tat)
        while true {
            var t = max(current, now)
            var n = 0
            while n < count {
                let next = t &+ cost(UInt64(lengths(n)))
                if next &- now > toleranceNanos { break }
                t = next
                n += 1
            }
            if n == 0 { return 0 }
            if vnic_cas_u64(tat, &current, t) { return n }
        }
    }
}

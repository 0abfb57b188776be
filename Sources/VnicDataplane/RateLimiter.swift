// RateLimiter: a VNIC's maxbw as a generic cell rate algorithm (GCRA), the
// token bucket written as one "theoretical arrival time" (TAT). All workers of
// a VNIC share it through one 64-bit word updated with compare-and-swap, once
// per burst: lock-free, exact over time, no refill timer.
//
// Sending B bytes at R bit/s costs B*8/R seconds of TAT. A burst may go while
// the TAT stays within `tolerance` of now; the tolerance is the bucket depth:
// max(2 ms at the rate, 16 full-size frames), so a VNIC may burst a little but
// its average rate is the limit.
//
// Arithmetic (exact to within 1% from 1 Mbit/s to 100 Gbit/s at 64 and 1,500 B;
// RateLimiterTests checks it). The TAT counts ticks of 1/16 ns (now x 16: a
// 64-bit word lasts 36 years of uptime). A byte costs 8e9*16/R ticks, kept as
// a 32.32 fixed-point number, `scaledTicksPerByte` = round(8e9 * 16 * 2^32 / R):
// at 100 Gbit/s 1.28 ticks = 5,497,558,139 (relative error 2e-10), at
// 1,000 bit/s (the least maxbw) 5.5e17, below 2^64. A frame's cost,
// round(B * scaled / 2^32), takes the 128-bit product. Rounding to the nearest
// tick is the only loss: at most 0.5 tick a frame, 0.61% of the 81.92 ticks a
// 64-byte frame costs at 100 Gbit/s, and rounding goes both ways; a burst that
// fits the bucket whole is charged its bytes at once (0.5 tick a burst). (Before:
// whole nanoseconds, truncated, with the per-byte cost in 1/1024 ns: 64 B at
// 100 Gbit/s cost 5 ns instead of 5.12, 2.3% too little; at 1 Tbit/s 0 ns.)
import CVnicShim

public struct RateLimiter: Sendable {
    /// Ticks (1/16 ns) one byte costs at the limit, as 32.32 fixed point; 0 means unlimited.
    public let scaledTicksPerByte: UInt64
    /// The bucket depth in ticks.
    public let toleranceTicks: UInt64

    /// Ticks per nanosecond.
    static let ticksPerNano: UInt64 = 16

    public init(bitsPerSecond: UInt64) {
        guard bitsPerSecond > 0 else { scaledTicksPerByte = 0; toleranceTicks = 0; return }
        scaledTicksPerByte = RateLimiter.scaled(numerator: 8_000_000_000 * RateLimiter.ticksPerNano, per: bitsPerSecond)
        let twoMs = 2_000_000 * RateLimiter.ticksPerNano
        let frames16 = RateLimiter.cost(16 * 1514, scaledTicksPerByte)
        toleranceTicks = max(twoMs, frames16)
    }

    /// Counts events instead of bytes: `perSecond` on average, `burst` at once
    /// (admit with lengths of 1).
    public init(perSecond: UInt64, burst: UInt64) {
        scaledTicksPerByte = RateLimiter.scaled(numerator: 1_000_000_000 * RateLimiter.ticksPerNano, per: max(perSecond, 1))
        toleranceTicks = RateLimiter.cost(burst, scaledTicksPerByte)
    }

    /// round(numerator * 2^32 / divisor), saturating at UInt64.max.
    static func scaled(numerator: UInt64, per divisor: UInt64) -> UInt64 {
        guard numerator >> 32 < divisor else { return .max }   // the quotient would not fit
        let (q, r) = divisor.dividingFullWidth((high: numerator >> 32, low: numerator << 32))
        guard r >= divisor - r else { return q }
        return q == .max ? .max : q + 1
    }

    /// round(units * scaled / 2^32).
    @inline(__always)
    static func cost(_ units: UInt64, _ scaled: UInt64) -> UInt64 {
        let p = units.multipliedFullWidth(by: scaled)
        let rounded = p.low.addingReportingOverflow(1 << 31)
        return (p.high &+ (rounded.overflow ? 1 : 0)) << 32 | rounded.partialValue >> 32
    }

    public var isUnlimited: Bool { scaledTicksPerByte == 0 }

    /// The bucket depth in nanoseconds.
    public var toleranceNanos: UInt64 { toleranceTicks / RateLimiter.ticksPerNano }

    /// How many of `lengths` (in order) may go now (monotonic ns); charges them to `tat`.
    /// Frames that do not fit stay for a later burst (order is kept).
    @inline(__always)
    public func admit(_ tat: UnsafeMutablePointer<UInt64>, now: UInt64,
                      lengths: (Int) -> UInt32, count: Int) -> Int {
        if isUnlimited { return count }
        let ticks = now &* RateLimiter.ticksPerNano
        // The common case, a whole burst within the bucket, costs one product:
        // the burst's bytes, rounded once (closer than frame by frame).
        var total: UInt64 = 0
        for i in 0..<count { total &+= UInt64(lengths(i)) }
        let whole = RateLimiter.cost(total, scaledTicksPerByte)
        var current = vnic_load_u64_acquire(tat)
        while true {
            var t = max(current, ticks)
            if (t &+ whole) &- ticks <= toleranceTicks {
                if vnic_cas_u64(tat, &current, t &+ whole) { return count }
                continue
            }
            var n = 0
            while n < count {
                let next = t &+ RateLimiter.cost(UInt64(lengths(n)), scaledTicksPerByte)
                if next &- ticks > toleranceTicks { break }
                t = next
                n += 1
            }
            if n == 0 { return 0 }
            if vnic_cas_u64(tat, &current, t) { return n }
        }
    }
}

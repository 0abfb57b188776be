@testable import VnicDataplane
import XCTest

final class RateLimiterTests: XCTestCase {
    /// Offers `perBurst` frames of `size` bytes every `interval` ns for `seconds` of
    /// simulated time, from `workers` workers sharing one limiter; returns bits/s admitted.
    func admittedRate(bitsPerSecond: UInt64, size: UInt32, perBurst: Int, interval: UInt64,
                      seconds: Double, workers: Int = 1) -> Double {
        let limiter = RateLimiter(bitsPerSecond: bitsPerSecond)
        let tat = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        tat.initialize(to: 0)
        defer { tat.deallocate() }
        var bytes: UInt64 = 0
        let start: UInt64 = 1_000_000_000
        var now = start
        let end = start + UInt64(seconds * 1e9)
        while now < end {
            for _ in 0..<workers {
                let n = limiter.admit(tat, now: now, lengths: { _ in size }, count: perBurst)
                bytes += UInt64(n) * UInt64(size)
            }
            now += interval
        }
        return Double(bytes * 8) / seconds
    }

    func testLimitIsHeldWithinTwoPercent() {
        for (rate, size) in [(100_000_000 as UInt64, 1514 as UInt32), (1_000_000_000, 64), (10_000_000, 512)] {
            // Offer at least twice the limit, in bursts every 100 us (a worker polls far more often).
            let bitsPer100us = 2 * Double(rate) / 10_000
            let perBurst = Int((bitsPer100us / (Double(size) * 8)).rounded(.up))
            let got = admittedRate(bitsPerSecond: rate, size: size, perBurst: perBurst, interval: 100_000, seconds: 2)
            XCTAssertEqual(got, Double(rate), accuracy: Double(rate) * 0.02, "\(rate) bit/s with \(size) B frames")
        }
    }

    /// Exact to within 1% at 64 and 1,500 B, 1 Mbit/s to 100 Gbit/s: frames
    /// offered faster than the limit in bursts of up to 64, the rate measured
    /// over the last three quarters of the run (after the bucket's initial depth).
    func testLimitIsExactWithinOnePercentFrom1MbitTo100Gbit() {
        for rate in [1_000_000 as UInt64, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000, 40_000_000_000, 100_000_000_000] {
            for size in [64 as UInt32, 1500] {
                let limiter = RateLimiter(bitsPerSecond: rate)
                let tat = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
                tat.initialize(to: 0)
                defer { tat.deallocate() }
                let frameNanos = Double(size) * 8 / Double(rate) * 1e9
                // 4,000 frames' time plus the bucket, in steps of a third of a frame (64 offered a step).
                let total = UInt64(4_000 * frameNanos) + limiter.toleranceNanos
                let step = max(1, UInt64(frameNanos / 3))
                let start: UInt64 = 5_000_000_000
                var now = start, bytes: UInt64 = 0, measuredFrom: UInt64 = 0, bytesAtFrom: UInt64 = 0
                while now < start + total {
                    if measuredFrom == 0 && now >= start + limiter.toleranceNanos + (total - limiter.toleranceNanos) / 4 {
                        measuredFrom = now; bytesAtFrom = bytes
                    }
                    bytes += UInt64(limiter.admit(tat, now: now, lengths: { _ in size }, count: 64)) * UInt64(size)
                    now += step
                }
                let got = Double(bytes - bytesAtFrom) * 8 / (Double(now - measuredFrom) / 1e9)
                XCTAssertEqual(got, Double(rate), accuracy: Double(rate) * 0.01, "\(rate) bit/s with \(size) B frames")
            }
        }
    }

    func testFixedPointArithmetic() {
        // round(8e9 * 16 * 2^32 / 1e11) = round(5,497,558,138.88) (1.28 ticks a byte at 100 Gbit/s).
        XCTAssertEqual(RateLimiter(bitsPerSecond: 100_000_000_000).scaledTicksPerByte, 5_497_558_139)
        XCTAssertEqual(RateLimiter.cost(64, 5_497_558_139), 82, "81.92 ticks round to 82")
        XCTAssertEqual(RateLimiter.cost(1500, 5_497_558_139), 1920, "120 ns exactly")
        // The least maxbw fits: 1,000 bit/s is 8 ms a byte, 1.28e8 ticks.
        XCTAssertEqual(RateLimiter.cost(1, RateLimiter(bitsPerSecond: 1_000).scaledTicksPerByte), 128_000_000)
        XCTAssertEqual(RateLimiter.cost(65_535, RateLimiter(bitsPerSecond: 1_000).scaledTicksPerByte), 65_535 * 128_000_000,
                       "no overflow for the largest frame at the least rate")
    }

    func testWorkersSharingTheLimiterShareTheRate() {
        let got = admittedRate(bitsPerSecond: 100_000_000, size: 1514, perBurst: 64, interval: 50_000, seconds: 2, workers: 2)
        XCTAssertEqual(got, 1e8, accuracy: 2e6)
    }

    func testBelowTheLimitEverythingPasses() {
        // 10 frames of 1000 B every ms = 80 Mbit/s under a 100 Mbit/s limit.
        let got = admittedRate(bitsPerSecond: 100_000_000, size: 1000, perBurst: 10, interval: 1_000_000, seconds: 1)
        XCTAssertEqual(got, 80_000_000, accuracy: 1)
    }

    func testUnlimitedAdmitsAll() {
        let limiter = RateLimiter(bitsPerSecond: 0)
        var tat: UInt64 = 0
        XCTAssertTrue(limiter.isUnlimited)
        XCTAssertEqual(limiter.admit(&tat, now: 5, lengths: { _ in 1514 }, count: 64), 64)
    }

    func testBurstIsBoundedByTheTolerance() {
        // After a long idle time, one offer of 10,000 frames admits only about the bucket depth.
        let limiter = RateLimiter(bitsPerSecond: 100_000_000)
        var tat: UInt64 = 0
        let n = limiter.admit(&tat, now: 10_000_000_000, lengths: { _ in 1514 }, count: 10_000)
        let depthFrames = Double(limiter.toleranceNanos) / (1514 * 8 / 0.1)   // ns per frame at 100 Mbit/s
        XCTAssertEqual(Double(n), depthFrames, accuracy: 2)
    }
}
